//! `system check`: whether the store is what its records say, and each
//! problem with what it affects. Blobs against their digests; layer
//! records against their directories both ways, and (unless quick) each
//! layer's files against its diff ID — a tar-split layer's tar rebuilt
//! from its directory and hashed, a layer with a stored blob compared file
//! by file with the blob's tar; images against their configs, manifests
//! and layers; containers against their images and directories; volumes
//! against their directories; mounts under the root against what may hold
//! them; the build cache against its layers.
//!
//! It reads only: it holds the store lock shared, as any reading command.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use serde::Serialize;

use crate::core::Core;
use crate::digest::{Digest, HashingReader};
use crate::error::{IoContext, Result};
use crate::store::{ContainerState, LayerRecord};
use crate::unpack::layer_dir;

/// One thing found wrong.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Problem {
    /// What kind of problem (`blob-corrupt`, `layer-missing`, ...).
    pub kind: &'static str,
    /// What it is in (a digest, a chain ID, a container, a path).
    pub object: String,
    /// What is wrong, in words.
    pub detail: String,
    /// The images, containers or volumes it affects.
    pub affects: Vec<String>,
}

/// `system check`'s answer.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Only records and directories, not contents.
    pub quick: bool,
    /// What was looked at, by kind.
    pub checked: HashMap<&'static str, usize>,
    /// What is wrong; empty for a healthy store.
    pub problems: Vec<Problem>,
}

/// What `--repair` did about one problem.
#[derive(Debug, Clone, Serialize)]
pub struct Repair {
    /// The problem.
    pub problem: Problem,
    /// Fixed.
    pub fixed: bool,
    /// What was done, or why nothing could be.
    pub action: String,
}

/// `system check --repair`'s answer: what was done, then the check made again.
#[derive(Debug, Clone, Serialize)]
pub struct Repaired {
    /// One per problem found first.
    pub repairs: Vec<Repair>,
    /// The store checked again afterwards.
    pub after: Report,
}

/// The check service.
pub struct Checker<'c> {
    core: &'c Core,
}

/// A sweeper: layers made before the last reboot and never synced may
/// have lost files to a power loss. Each is verified against its diff ID;
/// a damaged one is unpacked again from its blob, or, with no blob, left
/// for `system check` to report with the images it affects. Then the
/// marks go, so this runs once per reboot.
pub fn verify_after_reboot(core: &Core) -> Result<()> {
    let layers = core.store.unsynced_from_other_boots()?;
    if layers.is_empty() {
        return Ok(());
    }
    let checker = Checker::new(core);
    let mut done = Vec::new();
    for l in layers {
        if let Err(why) = checker.verify_layer(&l)? {
            if !l.split && core.content.has(&l.blob) {
                tracing::warn!(
                    "layer {} lost files before the last boot ({why}): unpacked again from its blob",
                    l.chain_id
                );
                core.unpacker().rebuild_layer(&core.store, &l)?;
                continue; // marked unsynced in this boot by the rebuild
            }
            tracing::warn!(
                "layer {} lost files before the last boot ({why}); `strata system check` names the images to pull or load again",
                l.chain_id
            );
        }
        done.push(l.chain_id);
    }
    core.store.mark_synced(&done)
}

impl<'c> Checker<'c> {
    /// The service over `core`.
    pub fn new(core: &'c Core) -> Self {
        Checker { core }
    }

    /// Check the whole store; `quick` leaves contents (blob bytes, layer files) unread.
    pub fn check(&self, quick: bool) -> Result<Report> {
        let core = self.core;
        let mut problems = Vec::new();
        let mut checked = HashMap::new();
        let layers: HashMap<Digest, LayerRecord> =
            core.store.layers()?.into_iter().map(|l| (l.chain_id.clone(), l)).collect();
        let images = core.store.images()?;
        // Who uses what, to say what a problem affects.
        let mut names: HashMap<Digest, String> = HashMap::new();
        let mut layer_users: HashMap<Digest, Vec<String>> = HashMap::new();
        let mut blob_users: HashMap<Digest, Vec<String>> = HashMap::new();
        for img in &images {
            let name = core.store.tags_of(&img.id)?.first().cloned().unwrap_or_else(|| img.id.to_string());
            names.insert(img.id.clone(), name.clone());
            for d in [&img.id, &img.manifest] {
                blob_users.entry(d.clone()).or_default().push(format!("image {name}"));
            }
            for l in core.store.image_layers(&img.id)? {
                layer_users.entry(l.chain_id.clone()).or_default().push(format!("image {name}"));
                blob_users.entry(l.blob.clone()).or_default().push(format!("image {name}"));
            }
        }
        let affects = |m: &HashMap<Digest, Vec<String>>, d: &Digest| m.get(d).cloned().unwrap_or_default();

        // Blobs: present where named, and (unless quick) their bytes match their names.
        let blobs = core.content.list()?;
        checked.insert("blobs", blobs.len());
        let present: HashSet<&Digest> = blobs.iter().collect();
        if !quick {
            let hashes = crate::work::each(&blobs, crate::work::cores(), |d| self.blob_digest(d))?;
            for (d, got) in blobs.iter().zip(hashes).filter(|(d, got)| d != &got) {
                let detail = format!("its bytes hash to {got}");
                problems.push(Problem {
                    kind: "blob-corrupt",
                    object: d.to_string(),
                    detail,
                    affects: affects(&blob_users, d),
                });
            }
        }

        // Layers: each ready record has its directory, each directory a record.
        checked.insert("layers", layers.len());
        for (c, l) in &layers {
            if !layer_dir(&core.layers_dir, c).is_dir() {
                problems.push(Problem {
                    kind: "layer-missing",
                    object: c.to_string(),
                    detail: format!("its directory {} is missing", layer_dir(&core.layers_dir, c).display()),
                    affects: affects(&layer_users, c),
                });
            } else if !l.split && !present.contains(&l.blob) {
                problems.push(Problem {
                    kind: "blob-missing",
                    object: l.blob.to_string(),
                    detail: format!("the blob of layer {c} is missing"),
                    affects: affects(&blob_users, &l.blob),
                });
            }
            if let Some(p) = &l.parent {
                if !layers.contains_key(p) {
                    problems.push(Problem {
                        kind: "layer-parent-missing",
                        object: c.to_string(),
                        detail: format!("its parent layer {p} has no record"),
                        affects: affects(&layer_users, c),
                    });
                }
            }
        }
        for e in std::fs::read_dir(&core.layers_dir).at(&core.layers_dir)? {
            let e = e.at(&core.layers_dir)?;
            let name = e.file_name().to_string_lossy().into_owned();
            let chain = Digest::parse(&format!("sha256:{name}")).ok();
            let known = chain.as_ref().is_some_and(|d| layers.contains_key(d));
            // Renamed into place but not yet marked ready by a live process: not an orphan.
            let in_flight = match &chain {
                Some(d) if !known => core.store.layer_claimed(d)?,
                _ => false,
            };
            if !known && !in_flight {
                problems.push(Problem {
                    kind: "layer-orphan",
                    object: e.path().display().to_string(),
                    detail: "a layer directory without a record".into(),
                    affects: Vec::new(),
                });
            }
        }
        if !quick {
            let present_layers: Vec<&LayerRecord> =
                layers.values().filter(|l| layer_dir(&core.layers_dir, &l.chain_id).is_dir()).collect();
            let verdicts = crate::work::each(&present_layers, crate::work::cores(), |l| self.verify_layer(l))?;
            for (l, detail) in present_layers.iter().zip(verdicts).filter_map(|(l, v)| v.err().map(|e| (l, e))) {
                problems.push(Problem {
                    kind: "layer-corrupt",
                    object: l.chain_id.to_string(),
                    detail,
                    affects: affects(&layer_users, &l.chain_id),
                });
            }
        }

        // Images: config, manifest and layers as recorded, and the config's diff IDs the layers'.
        checked.insert("images", images.len());
        for img in &images {
            let name = format!("image {}", names[&img.id]);
            // A repair found a layer of it with no good copy and removed it: said once, with why.
            if let Some(reason) = core.store.damage(&img.id)? {
                let mut affected = vec![name.clone()];
                affected.extend(core.store.containers_using(&img.id)?.into_iter().map(|c| format!("container {c}")));
                problems.push(Problem {
                    kind: "image-damaged",
                    object: img.id.to_string(),
                    detail: format!("{reason}; pull or load it again, or remove it"),
                    affects: affected,
                });
                continue;
            }
            for (d, what) in [(&img.id, "config"), (&img.manifest, "manifest")] {
                if !present.contains(d) {
                    problems.push(Problem {
                        kind: "blob-missing",
                        object: d.to_string(),
                        detail: format!("the {what} of {name} is missing"),
                        affects: vec![name.clone()],
                    });
                }
            }
            let recorded = core.store.image_layers(&img.id)?;
            for l in &recorded {
                if !layers.contains_key(&l.chain_id) {
                    problems.push(Problem {
                        kind: "layer-missing",
                        object: l.chain_id.to_string(),
                        detail: format!("a layer of {name} is not ready in the store"),
                        affects: vec![name.clone()],
                    });
                }
            }
            if present.contains(&img.id) {
                match core.config_of(&img.id) {
                    Ok((v, _)) => {
                        let want: Vec<&str> = v["rootfs"]["diff_ids"]
                            .as_array()
                            .map(|a| a.iter().filter_map(|d| d.as_str()).collect())
                            .unwrap_or_default();
                        let have: Vec<&str> = recorded.iter().map(|l| l.diff_id.as_str()).collect();
                        if want != have {
                            problems.push(Problem {
                                kind: "image-layers-mismatch",
                                object: img.id.to_string(),
                                detail: format!(
                                    "its config names {} layers that differ from the {} recorded",
                                    want.len(),
                                    have.len()
                                ),
                                affects: vec![name.clone()],
                            });
                        }
                    }
                    Err(e) => problems.push(Problem {
                        kind: "image-config-unreadable",
                        object: img.id.to_string(),
                        detail: e.to_string(),
                        affects: vec![name.clone()],
                    }),
                }
            }
        }

        // Containers: their image, their directory; volumes: their directory.
        let containers = core.store.containers()?;
        checked.insert("containers", containers.len());
        let image_ids: HashSet<&Digest> = images.iter().map(|i| &i.id).collect();
        for c in &containers {
            if c.state == ContainerState::Incomplete {
                continue; // being made, or swept by the next exclusive command
            }
            let who = format!("container {}", c.name);
            if !image_ids.contains(&c.image_id) {
                problems.push(Problem {
                    kind: "container-image-missing",
                    object: c.id.clone(),
                    detail: format!("its image {} is not in the store", c.image_id),
                    affects: vec![who.clone()],
                });
            }
            let dir = core.root.join("containers").join(&c.id);
            if !dir.is_dir() {
                problems.push(Problem {
                    kind: "container-dir-missing",
                    object: c.id.clone(),
                    detail: format!("its directory {} is missing", dir.display()),
                    affects: vec![who],
                });
            }
        }
        let volumes = core.store.volumes()?;
        checked.insert("volumes", volumes.len());
        for v in &volumes {
            let dir = core.root.join("volumes").join(&v.name).join("_data");
            if !dir.is_dir() {
                problems.push(Problem {
                    kind: "volume-dir-missing",
                    object: v.name.clone(),
                    detail: format!("its directory {} is missing", dir.display()),
                    affects: vec![format!("volume {}", v.name)],
                });
            }
        }

        // Mounts under the root that nothing holds.
        let running: HashSet<&str> =
            containers.iter().filter(|c| c.state == ContainerState::Running).map(|c| c.id.as_str()).collect();
        let setups: HashSet<String> = core.store.network_setups()?.into_iter().map(|s| s.netns).collect();
        for m in crate::snapshot::mount::mounts_below(&core.root) {
            if m == core.root || self.mount_is_held(&m, &running, &image_ids, &setups) {
                continue;
            }
            problems.push(Problem {
                kind: "mount-stale",
                object: m.display().to_string(),
                detail: "mounted, but no running container, image mount, network or live build holds it".into(),
                affects: Vec::new(),
            });
        }

        // The build cache names layers that are there.
        for c in core.store.build_cache_chains()? {
            if !layers.contains_key(&c) {
                problems.push(Problem {
                    kind: "cache-layer-missing",
                    object: c.to_string(),
                    detail: "the build cache names a layer that is not in the store".into(),
                    affects: Vec::new(),
                });
            }
        }
        problems.sort_by(|a, b| (a.kind, &a.object).cmp(&(b.kind, &b.object)));
        problems.dedup();
        Ok(Report { quick, checked, problems })
    }

    /// `system check --repair`: check, fix what can be fixed without losing
    /// anything still good, check again. Holds the store lock exclusively
    /// (no other command runs meanwhile). Fixes: a layer directory without a
    /// record is removed; a stale mount is unmounted; a layer whose files
    /// are damaged or gone is unpacked again from its stored blob when the
    /// blob is good. Never touches a running container.
    pub fn repair(&self, quick: bool) -> Result<Repaired> {
        // Checked first, then locked: taking the lock exclusively sweeps what
        // crashed commands left, which would hide it from the report. Each
        // repair looks again under the lock before it acts.
        let first = self.check(quick)?;
        self.core.exclusive()?;
        let bad_blobs: HashSet<String> =
            first.problems.iter().filter(|p| p.kind.starts_with("blob-")).map(|p| p.object.clone()).collect();
        let mut repairs = Vec::new();
        let mut todo = first.problems;
        // Blobs first: a layer is unpacked again from its blob once that is good.
        todo.sort_by_key(|p| !p.kind.starts_with("blob-"));
        for p in todo {
            let (fixed, action) = match self.repair_one(&p, &bad_blobs) {
                Ok(r) => r,
                Err(e) => (false, format!("repair failed: {e}")),
            };
            repairs.push(Repair { problem: p, fixed, action });
        }
        Ok(Repaired { repairs, after: self.check(quick)? })
    }

    fn repair_one(&self, p: &Problem, bad_blobs: &HashSet<String>) -> Result<(bool, String)> {
        let core = self.core;
        Ok(match p.kind {
            "layer-orphan" => {
                let dir = Path::new(&p.object);
                let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                if Digest::parse(&format!("sha256:{name}")).is_ok_and(|d| core.store.layer(&d).ok().flatten().is_some())
                {
                    return Ok((false, "it has a record now".into()));
                }
                crate::tree::remove(dir)?;
                (true, "removed the directory".into())
            }
            "mount-stale" => {
                let containers = core.store.containers()?;
                let running: HashSet<&str> =
                    containers.iter().filter(|c| c.state == ContainerState::Running).map(|c| c.id.as_str()).collect();
                let images = core.store.images()?;
                let ids: HashSet<&Digest> = images.iter().map(|i| &i.id).collect();
                let setups: HashSet<String> = core.store.network_setups()?.into_iter().map(|s| s.netns).collect();
                if self.mount_is_held(Path::new(&p.object), &running, &ids, &setups) {
                    return Ok((false, "something holds it now".into()));
                }
                crate::snapshot::mount::unmount(Path::new(&p.object))?;
                (true, "unmounted".into())
            }
            "blob-corrupt" | "blob-missing" => {
                let d = Digest::parse(&p.object)?;
                match crate::registry::Registries::new(core).fetch_again(&d)? {
                    Some(from) => (true, format!("fetched again from {from}")),
                    None => (
                        false,
                        format!("no registry it came from is recorded: pull or load {} again", p.affects.join(", ")),
                    ),
                }
            }
            "layer-corrupt" | "layer-missing" => {
                let chain = Digest::parse(&p.object)?;
                let Some(rec) = core.store.layer(&chain)? else {
                    return Ok((false, "the layer has no record: pull or load its image again".into()));
                };
                // A damaged or missing blob is fetched first (its own problem, repaired before).
                let blob_ok = core.content.has(&rec.blob)
                    && (!bad_blobs.contains(rec.blob.as_str()) || self.blob_digest(&rec.blob)? == rec.blob);
                if rec.split || !blob_ok {
                    return self.give_up_layer(&rec, &p.detail).map(|lost| (false, lost));
                }
                core.unpacker().rebuild_layer(&core.store, &rec)?;
                (true, format!("unpacked again from its blob {}", rec.blob))
            }
            _ => (
                false,
                format!("not repaired here: {} may need to be pulled, loaded or built again", p.affects.join(", ")),
            ),
        })
    }

    /// A layer with no good copy here: removed (its damage would otherwise
    /// be used: a container, a build, a pull that finds it "present"), and
    /// every image on it marked damaged, so that using one is refused with
    /// what to do and a pull or load of it unpacks the layer anew. Says what
    /// was lost. Only under the exclusive lock, never with a running
    /// container on it (its images are left as they are then).
    fn give_up_layer(&self, rec: &LayerRecord, detail: &str) -> Result<String> {
        let core = self.core;
        // Every image that stacks it: an image's records list all its layers.
        let mut images: Vec<Digest> = core.store.images_using_layers()?.remove(&rec.chain_id).unwrap_or_default();
        images.sort();
        images.dedup();
        let mut containers = Vec::new();
        let mut running = Vec::new();
        for c in core.store.containers()? {
            if images.contains(&c.image_id) {
                if c.state == ContainerState::Running {
                    running.push(c.name.clone());
                }
                containers.push(c.name);
            }
        }
        let names: Vec<String> = images.iter().map(|i| self.image_name(i)).collect::<Result<_>>()?;
        if !running.is_empty() {
            return Ok(format!(
                "no good copy of the layer here, and running container(s) {} use it: left as it is; stop them, then repair again, or pull or load {} again",
                running.join(", "),
                names.join(", ")
            ));
        }
        let reason = format!("its layer {} had no good copy here and was removed ({detail})", rec.chain_id);
        for i in &images {
            core.store.mark_damaged(i, &reason)?;
        }
        core.store.unready_layer(&rec.chain_id)?;
        crate::tree::remove(&core.layers_dir.join(rec.chain_id.hex()))?;
        core.store.delete_layer(&rec.chain_id)?;
        let mut lost = format!(
            "no good copy of the layer here: removed it and marked damaged {} (pull or load again to use)",
            names.join(", ")
        );
        if !containers.is_empty() {
            lost.push_str(&format!("; container(s) {} cannot start until then", containers.join(", ")));
        }
        Ok(lost)
    }

    /// An image as `images` names it: its first tag, else its short ID.
    fn image_name(&self, id: &Digest) -> Result<String> {
        Ok(self
            .core
            .store
            .tags_of(id)?
            .first()
            .map(|t| crate::image::reference::display_tag(t))
            .unwrap_or_else(|| id.short().to_string()))
    }

    /// What the stored blob `d` hashes to.
    fn blob_digest(&self, d: &Digest) -> Result<Digest> {
        let p = self.core.content.path(d);
        Ok(HashingReader::new(File::open(&p).at(&p)?).drain_finish().at(&p)?.0)
    }

    /// Whether something may hold the mount at `m`.
    fn mount_is_held(
        &self,
        m: &Path,
        running: &HashSet<&str>,
        images: &HashSet<&Digest>,
        setups: &HashSet<String>,
    ) -> bool {
        let Ok(rel) = m.strip_prefix(&self.core.root) else { return false };
        let parts: Vec<String> = rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
        match parts.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
            ["containers", id, ..] => running.contains(id),
            ["mounts", id] => Digest::parse(&format!("sha256:{id}")).is_ok_and(|d| images.contains(&d)),
            ["netns", name] => name.starts_with("network-") || setups.contains(&m.display().to_string()),
            ["tmp", entry, ..] => crate::tmp::owner_alive(entry),
            _ => false,
        }
    }

    /// Whether a layer's files are what its diff ID names: `Err(why)` if not.
    fn verify_layer(&self, l: &LayerRecord) -> Result<std::result::Result<(), String>> {
        let dir = layer_dir(&self.core.layers_dir, &l.chain_id);
        if l.split {
            let reader = match crate::unpack::open_layer_blob(&self.core.layers_dir, &self.core.content, l) {
                Ok(r) => r,
                Err(e) => return Ok(Err(format!("its tar-split cannot be read: {e}"))),
            };
            return Ok(match HashingReader::new(reader).drain_finish() {
                Ok((d, _)) if d == l.diff_id => Ok(()),
                Ok((d, _)) => Err(format!("its files rebuild a tar hashing to {d}, not its diff ID {}", l.diff_id)),
                Err(e) => Err(format!("rebuilding its tar from its files: {e}")),
            });
        }
        // A stored blob: the tar it holds, file by file, against the directory.
        let blob = self.core.content.path(&l.blob);
        let Ok(f) = File::open(&blob) else { return Ok(Ok(())) }; // reported as blob-missing
                                                                  // What the blob's tar holds: each regular file's digest (the last copy of a path), and the tar's.
        let read = || -> std::io::Result<(HashMap<String, Digest>, Digest)> {
            let (_, tar) = crate::layer::decompress(BufReader::with_capacity(1 << 20, f))?;
            let mut hashing = HashingReader::new(tar);
            let mut wanted: HashMap<String, Digest> = HashMap::new();
            {
                let mut ar = tar::Archive::new(&mut hashing);
                for e in ar.entries()? {
                    let mut e = e?;
                    if !e.header().entry_type().is_file() {
                        continue;
                    }
                    let path = e.path()?.to_string_lossy().into_owned();
                    if path.rsplit('/').next().is_some_and(|n| n.starts_with(".wh.")) {
                        continue; // a whiteout: a device or nothing in the directory, not a file
                    }
                    let mut h = crate::digest::Hasher::default();
                    let mut buf = vec![0u8; 1 << 16];
                    loop {
                        let n = e.read(&mut buf)?;
                        if n == 0 {
                            break;
                        }
                        h.update(&buf[..n]);
                    }
                    wanted.insert(path, h.finish());
                }
            }
            let (diff_id, _) = hashing.drain_finish()?;
            Ok((wanted, diff_id))
        };
        let (wanted, diff_id) = match read() {
            Ok(r) => r,
            Err(e) => return Ok(Err(format!("its blob {} cannot be read as its tar: {e}", l.blob))),
        };
        if diff_id != l.diff_id {
            return Ok(Err(format!("its blob's tar hashes to {diff_id}, not its diff ID {}", l.diff_id)));
        }
        for (path, want) in wanted {
            let rel = crate::confined::clean_container_path(&path);
            let rel = Path::new(rel.trim_start_matches('/'));
            let Some(f) = crate::confined::open_beneath(&dir, rel)? else {
                return Ok(Err(format!("its file /{} is missing", rel.display())));
            };
            let (got, _) = HashingReader::new(f).drain_finish().at(dir.join(rel))?;
            if got != want {
                return Ok(Err(format!("its file /{} differs from the layer's tar", rel.display())));
            }
        }
        Ok(Ok(()))
    }
}
