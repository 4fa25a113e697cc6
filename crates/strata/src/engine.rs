//! The engine: the one API the CLI calls. It opens a store root (layout
//! below), holds its lock, and carries out image operations over the
//! content store, the unpacker, the snapshot backend and the metadata store.
//!
//! ```text
//! <root>/strata.db            metadata (SQLite, WAL)
//! <root>/lock                 flock: shared while a command runs, exclusive to sweep and collect garbage
//! <root>/blobs/sha256/<hex>   blobs: layer tars as received, manifests, configs
//! <root>/layers/<chain>/diff  one directory per layer (overlay form, or full trees with the copy driver)
//! <root>/layers/<chain>/flat  a flattened stack, only for images deeper than overlayfs allows
//! <root>/mounts/<image>       read-only image mounts (`image mount`)
//! <root>/tmp/                 in-flight writes; swept when the store is opened alone
//! ```

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use serde::Serialize;

use crate::content::ContentStore;
use crate::digest::{chain_ids, Digest};
use crate::error::{Error, IoContext, Result};
use crate::image::archive::{self, Archive, ArchiveImage, SaveFormat, SaveImage};
use crate::image::{self, LayerDescriptor, Platform, Reference};
use crate::layer::Compression;
use crate::snapshot::{self, mount, Driver, Snapshotter};
use crate::store::{now, ContainerState, ImageRecord, LayerRecord, Store};
use crate::unpack::{layer_dir, LayerSpec, Unpacker};

/// Where the store is and how to open it.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Store root.
    pub root: PathBuf,
    /// Force a snapshot driver (must match the store's, once chosen).
    pub driver: Option<Driver>,
}

/// An open store.
pub struct Engine {
    pub(crate) root: PathBuf,
    pub(crate) tmp: PathBuf,
    pub(crate) layers_dir: PathBuf,
    pub(crate) content: ContentStore,
    pub(crate) store: Store,
    pub(crate) snapshots: Box<dyn Snapshotter>,
    lock: File,
    /// Whether this process holds the lock exclusively (and has swept since).
    exclusive_held: AtomicBool,
}

/// An image as `images` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct ImageSummary {
    /// Image ID.
    pub id: Digest,
    /// Full tag names.
    pub tags: Vec<String>,
    /// Created (seconds since the epoch).
    pub created: i64,
    /// Sum of its layers' sizes.
    pub size: u64,
}

/// One row of `history`.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryRow {
    /// The image ID on the top row, else None (`<missing>`).
    pub id: Option<Digest>,
    /// Created (seconds since the epoch).
    pub created: i64,
    /// The command that made it.
    pub created_by: String,
    /// Its layer's size; 0 for entries without a layer.
    pub size: u64,
    /// Comment.
    pub comment: String,
    /// No layer for this entry.
    pub empty_layer: bool,
}

/// What `rmi` did, line by line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    /// A tag was removed.
    Untagged(String),
    /// An image or layer was deleted.
    Deleted(Digest),
}

/// What a prune removed.
#[derive(Debug, Clone, Default)]
pub struct PruneReport {
    /// Containers removed (`system prune`: the stopped ones).
    pub containers: Vec<String>,
    /// Images deleted.
    pub images: Vec<Digest>,
    /// Layers deleted.
    pub layers: Vec<Digest>,
    /// Bytes freed (layer file bytes plus blob bytes).
    pub reclaimed: u64,
}

/// Per-image disk use.
#[derive(Debug, Clone, Serialize)]
pub struct ImageUsage {
    /// Image ID.
    pub id: Digest,
    /// Full tag names.
    pub tags: Vec<String>,
    /// Created.
    pub created: i64,
    /// All its layers.
    pub size: u64,
    /// Bytes in layers other images use too.
    pub shared_size: u64,
    /// Bytes in layers only it uses.
    pub unique_size: u64,
    /// Containers using it.
    pub containers: u64,
}

/// `system df`.
#[derive(Debug, Clone, Serialize)]
pub struct DiskUsage {
    /// Per image.
    pub images: Vec<ImageUsage>,
    /// Number of layers stored.
    pub layers: u64,
    /// Number of layers some image uses.
    pub layers_in_use: u64,
    /// Bytes of all layers, each counted once.
    pub layers_size: u64,
    /// Bytes of layers used by more than one image.
    pub shared_size: u64,
    /// Bytes of layers used by exactly one image.
    pub unique_size: u64,
    /// Bytes of layers no image uses.
    pub unused_size: u64,
    /// Bytes of blobs (compressed layers, manifests, configs).
    pub blobs_size: u64,
    /// Bytes the layer directories occupy on disk.
    pub layers_disk: u64,
    /// Number of containers.
    pub containers: u64,
    /// Running containers.
    pub containers_running: u64,
    /// Bytes in container layers (and their logs).
    pub containers_size: u64,
    /// Number of volumes.
    pub volumes: u64,
    /// Volumes some container uses.
    pub volumes_active: u64,
    /// Bytes in volumes.
    pub volumes_size: u64,
}

/// What `load` brought in.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// Image ID.
    pub id: Digest,
    /// Tags set.
    pub tags: Vec<String>,
}

fn flock(f: &File, op: rustix::fs::FlockOperation) -> io::Result<()> {
    rustix::fs::flock(f.as_fd(), op).map_err(io::Error::from)
}

impl Engine {
    /// Open (creating) a store.
    pub fn open(opts: EngineOptions) -> Result<Self> {
        let root = opts.root;
        for d in ["", "tmp", "layers", "mounts", "containers", "runtime", "volumes"] {
            let p = root.join(d);
            fs::create_dir_all(&p).at(&p)?;
        }
        // Only root may look into the store: layers and container layers hold
        // setuid files and secrets, the database every container's environment.
        // Existing stores made before this rule are fixed here.
        fs::set_permissions(&root, fs::Permissions::from_mode(0o700)).at(&root)?;
        let tmp = root.join("tmp");
        let lock_path = root.join("lock");
        let lock =
            File::options().create(true).truncate(false).write(true).mode(0o600).open(&lock_path).at(&lock_path)?;
        let content = ContentStore::open(&root, &tmp)?;
        let store = Store::open(&root.join("strata.db"))?;
        for f in ["lock", "strata.db", "strata.db-wal", "strata.db-shm"] {
            let p = root.join(f);
            match fs::set_permissions(&p, fs::Permissions::from_mode(0o600)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e).at(&p),
                _ => {}
            }
        }
        let driver = match store.setting("driver")? {
            Some(d) => {
                let d: Driver = d.parse()?;
                if let Some(want) = opts.driver {
                    if want != d {
                        return Err(Error::invalid(format!(
                            "the store at {} uses the {d} storage driver; it cannot be opened with {want}",
                            root.display()
                        )));
                    }
                }
                d
            }
            None => {
                let d = opts.driver.unwrap_or_else(|| {
                    if snapshot::overlay_works(&tmp) {
                        Driver::Overlay
                    } else {
                        Driver::Copy
                    }
                });
                store.setting_or_init("driver", &d.to_string())?.parse()?
            }
        };
        let engine = Engine {
            layers_dir: root.join("layers"),
            snapshots: snapshot::for_driver(driver, &tmp),
            root,
            tmp,
            content,
            store,
            lock,
            exclusive_held: AtomicBool::new(false),
        };
        // Alone on the store and something may have been left behind: sweep now.
        // (Not on every command: a sweep walks every layer and blob.)
        if flock(&engine.lock, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_ok() && engine.needs_sweep()? {
            engine.sweep()?;
        }
        flock(&engine.lock, rustix::fs::FlockOperation::LockShared).at(&lock_path)?;
        Ok(engine)
    }

    /// The store root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The snapshot driver in use.
    pub fn driver(&self) -> Driver {
        self.snapshots.driver()
    }

    /// Become the only strata process on this store (waiting for others),
    /// then sweep. Needed before anything is deleted.
    pub(crate) fn exclusive(&self) -> Result<()> {
        if self.exclusive_held.load(Ordering::SeqCst) {
            return Ok(());
        }
        flock(&self.lock, rustix::fs::FlockOperation::LockExclusive).at(self.root.join("lock"))?;
        self.exclusive_held.store(true, Ordering::SeqCst);
        self.sweep()
    }

    /// Stop holding the store lock while waiting (on a container, a log, a
    /// build's RUN): others' deletes must not wait on it. What is used
    /// meanwhile is protected by a lease (`Store::lease_layers`) or a record.
    pub fn unlock(&self) {
        self.exclusive_held.store(false, Ordering::SeqCst);
        let _ = flock(&self.lock, rustix::fs::FlockOperation::Unlock);
    }

    /// Take the store lock shared again after [`unlock`](Self::unlock).
    pub(crate) fn relock(&self) -> Result<()> {
        self.exclusive_held.store(false, Ordering::SeqCst);
        flock(&self.lock, rustix::fs::FlockOperation::LockShared).at(self.root.join("lock"))
    }

    /// Whether a crashed or failed command may have left something to sweep.
    fn needs_sweep(&self) -> Result<bool> {
        let stale_tmp = fs::read_dir(&self.tmp)
            .at(&self.tmp)?
            .flatten()
            .any(|e| !crate::tmp::owner_alive(&e.file_name().to_string_lossy()));
        Ok(stale_tmp || self.store.needs_sweep()?)
    }

    /// Remove what crashed or failed commands left: temp files, incomplete
    /// layers, layer directories without a ready record, and layers and
    /// blobs no image references. Only called while holding the lock exclusively.
    fn sweep(&self) -> Result<()> {
        self.store.drop_dead_leases()?;
        // What a live process owns in tmp/ stays (a build waiting on its RUN holds
        // no lock). A killed build leaves its step's snapshot mounted: unmount first.
        let live = |p: &Path| {
            p.strip_prefix(&self.tmp)
                .ok()
                .and_then(|r| r.components().next())
                .is_some_and(|c| crate::tmp::owner_alive(&c.as_os_str().to_string_lossy()))
        };
        for m in mount::mounts_below(&self.tmp) {
            if !live(&m) {
                mount::unmount(&m)?;
            }
        }
        for e in fs::read_dir(&self.tmp).at(&self.tmp)? {
            let e = e.at(&self.tmp)?;
            if !live(&e.path()) {
                crate::tree::remove(&e.path())?;
            }
        }
        for chain in self.store.abandoned_layers()? {
            crate::tree::remove(&self.layers_dir.join(chain.hex()))?;
            self.store.delete_layer(&chain)?;
        }
        let ready: HashSet<String> = self.store.layers()?.into_iter().map(|l| l.chain_id.hex().to_string()).collect();
        for e in fs::read_dir(&self.layers_dir).at(&self.layers_dir)? {
            let e = e.at(&self.layers_dir)?;
            if !ready.contains(e.file_name().to_string_lossy().as_ref()) {
                tracing::debug!(dir = %e.path().display(), "removing layer directory without a record");
                crate::tree::remove(&e.path())?;
            }
        }
        for c in self.store.containers()? {
            if c.state == ContainerState::Incomplete {
                crate::tree::remove(&self.root.join("containers").join(&c.id))?;
                self.store.delete_container(&c.id)?;
            }
        }
        let known: HashSet<String> = self.store.containers()?.into_iter().map(|c| c.id).collect();
        let containers = self.root.join("containers");
        for e in fs::read_dir(&containers).at(&containers)? {
            let e = e.at(&containers)?;
            if !known.contains(e.file_name().to_string_lossy().as_ref()) {
                crate::tree::remove(&e.path())?;
            }
        }
        self.collect_garbage()?;
        Ok(())
    }

    /// Delete layers no image references, then blobs nothing references.
    /// Returns (deleted layers, bytes freed).
    pub(crate) fn collect_garbage(&self) -> Result<(Vec<Digest>, u64)> {
        let mut deleted = Vec::new();
        let mut freed = 0;
        loop {
            let unused = self.store.unreferenced_layers()?;
            if unused.is_empty() {
                break;
            }
            for chain in unused {
                let dir = self.layers_dir.join(chain.hex());
                freed += crate::tree::usage(&dir)?;
                // Record first: a directory without a record is swept, a record without its directory would be corrupt.
                self.store.delete_layer(&chain)?;
                crate::tree::remove(&dir)?;
                deleted.push(chain);
            }
        }
        let mut referenced = HashSet::new();
        for l in self.store.layers()? {
            referenced.insert(l.blob);
        }
        for img in self.store.images()? {
            referenced.insert(img.id.clone());
            referenced.insert(img.manifest.clone());
            if let Ok(bytes) = self.content.read(&img.manifest) {
                if let Ok(m) = image::parse_manifest(&bytes, img.manifest.as_str()) {
                    for l in m.layers() {
                        referenced.insert(image::digest_of(l)?);
                    }
                }
            }
        }
        for b in self.content.list()? {
            if !referenced.contains(&b) {
                freed += self.content.size(&b).unwrap_or(0);
                self.content.remove(&b)?;
            }
        }
        Ok((deleted, freed))
    }

    /// After a failed operation: drop whatever it stored that nothing uses,
    /// so the store is as it was.
    pub(crate) fn roll_back(&self) {
        // Swept afresh even if this process held the lock exclusively already.
        self.exclusive_held.store(false, Ordering::SeqCst);
        if let Err(e) = self.exclusive() {
            tracing::warn!("cleaning up after a failed operation: {e}");
        }
        self.exclusive_held.store(false, Ordering::SeqCst);
        let _ = flock(&self.lock, rustix::fs::FlockOperation::LockShared);
    }

    pub(crate) fn unpacker(&self) -> Unpacker<'_> {
        Unpacker {
            layers_dir: &self.layers_dir,
            tmp: &self.tmp,
            content: &self.content,
            snapshots: self.snapshots.as_ref(),
        }
    }

    // ---- names ----

    /// Resolve a name (tag, full or short ID) to an image ID.
    pub fn resolve_image(&self, name: &str) -> Result<Digest> {
        if let Ok(r) = Reference::parse(name) {
            if r.digest.is_none() {
                if let Some(id) = self.store.tag(&r.to_string())? {
                    return Ok(id);
                }
            }
        }
        let hex = name.strip_prefix("sha256:").unwrap_or(name);
        if !hex.is_empty() && hex.len() <= 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            let found = self.store.images_by_prefix(&hex.to_ascii_lowercase())?;
            match found.len() {
                1 => return Ok(found.into_iter().next().expect("one")),
                0 => {}
                _ => return Err(Error::invalid(format!("image ID prefix {name:?} is ambiguous"))),
            }
        }
        Err(Error::not_found("image", name))
    }

    pub(crate) fn image_record(&self, id: &Digest) -> Result<ImageRecord> {
        self.store.image(id)?.ok_or_else(|| Error::not_found("image", id.to_string()))
    }

    // ---- bringing images in ----

    /// Record an image from its config, manifest (if it came with one), tags
    /// and layer sources; unpacks layers in parallel where the backend allows.
    pub(crate) fn ingest(
        &self,
        img: ArchiveImage,
        open_layer: &(dyn Fn(&str) -> Result<Box<dyn Read + Send>> + Sync),
        label: &str,
        workers: usize,
    ) -> Result<Digest> {
        let id = Digest::of(&img.config);
        let cfg = image::parse_config(&img.config, id.as_str())?;
        let diff_ids = image::diff_ids(&cfg)?;
        if diff_ids.len() != img.layers.len() {
            return Err(Error::invalid(format!(
                "{label}: image {id} config lists {} layers but the archive has {}",
                diff_ids.len(),
                img.layers.len()
            )));
        }
        let chains = chain_ids(&diff_ids);
        // The same image is here already: only its names are new.
        if self.store.image(&id)?.is_some() && self.store.image_layers(&id)?.len() == chains.len() {
            let rec = self.image_record(&id)?;
            self.store.put_image(&rec, &chains, &img.tags)?;
            return Ok(id);
        }
        let manifest = img.manifest.as_ref().map(|m| image::parse_manifest(m, label)).transpose()?;
        let specs: Vec<LayerSpec> = img
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| LayerSpec {
                chain_id: chains[i].clone(),
                diff_id: diff_ids[i].clone(),
                lowers: chains[..i].iter().rev().cloned().collect(),
                blob: l.digest.clone(),
                media_type: manifest.as_ref().map(|m| m.layers()[i].media_type().to_string()),
                label: format!("{} ({} of {} in {label})", l.entry, i + 1, img.layers.len()),
            })
            .collect();
        let records = self.unpack_all(&specs, &img, open_layer, workers)?;
        // A layer already present under another blob (e.g. gzip vs plain): the manifest still needs its own,
        // unless it can be fetched again from where it came (push and save fetch or replace it then).
        if let Some(m) = manifest.as_ref().filter(|_| !img.blobs_remote) {
            for (l, d) in img.layers.iter().zip(m.layers()) {
                let digest = image::digest_of(d)?;
                if !self.content.has(&digest) && self.store.split_layer_with_blob(&digest)?.is_none() {
                    self.unpacker().ensure_blob(&digest, open_layer(&l.entry)?)?;
                }
            }
        }
        self.content.write_bytes(&img.config, Some(&id))?;
        let manifest_bytes = match img.manifest {
            Some(m) => m,
            None => {
                let layers: Vec<LayerDescriptor> = records
                    .iter()
                    .map(|r| LayerDescriptor {
                        media_type: r.media_type.clone(),
                        digest: r.blob.clone(),
                        size: r.blob_size,
                    })
                    .collect();
                image::make_manifest(&id, img.config.len() as u64, &layers)?
            }
        };
        let manifest_digest = self.content.write_bytes(&manifest_bytes, None)?;
        let rec = ImageRecord {
            id: id.clone(),
            manifest: manifest_digest,
            created: image::parse_time(cfg.created().as_deref()),
            added: now(),
        };
        self.store.put_image(&rec, &chains, &img.tags)?;
        Ok(id)
    }

    fn unpack_all(
        &self,
        specs: &[LayerSpec],
        img: &ArchiveImage,
        open_layer: &(dyn Fn(&str) -> Result<Box<dyn Read + Send>> + Sync),
        workers: usize,
    ) -> Result<Vec<LayerRecord>> {
        let parallel = self.snapshots.independent_layers();
        let workers = if parallel { specs.len().clamp(1, workers.max(1)) } else { 1 };
        let next = AtomicUsize::new(0);
        let failed = AtomicBool::new(false);
        let results: Mutex<Vec<Option<Result<LayerRecord>>>> = Mutex::new((0..specs.len()).map(|_| None).collect());
        let unpacker = self.unpacker();
        let store = &self.store;
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= specs.len() || failed.load(Ordering::SeqCst) {
                        break;
                    }
                    let entry = img.layers[i].entry.clone();
                    let r = unpacker.ensure_layer(store, &specs[i], &|| open_layer(&entry));
                    if r.is_err() {
                        failed.store(true, Ordering::SeqCst);
                    }
                    results.lock().expect("not poisoned")[i] = Some(r);
                });
            }
        });
        let mut out = Vec::new();
        for r in results.into_inner().expect("not poisoned") {
            match r {
                Some(Ok(rec)) => out.push(rec),
                Some(Err(e)) => return Err(e),
                None => {}
            }
        }
        if out.len() != specs.len() {
            return Err(Error::Corrupt("a layer was not unpacked".into()));
        }
        Ok(out)
    }

    // ---- sending images out ----

    // ---- looking at images ----

    pub(crate) fn config_of(&self, id: &Digest) -> Result<(serde_json::Value, oci_spec::image::ImageConfiguration)> {
        let bytes = self.content.read(id)?;
        let v: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt(format!("config {id}: {e}")))?;
        Ok((v, image::parse_config(&bytes, id.as_str())?))
    }

    // ---- names and removal ----

    /// `system df`.
    pub fn disk_usage(&self) -> Result<DiskUsage> {
        let counts = self.store.layer_use_counts()?;
        let all_layers = self.store.layers()?;
        let mut images = Vec::new();
        for img in self.store.images()? {
            let layers = self.store.image_layers(&img.id)?;
            let (mut shared, mut unique) = (0, 0);
            for l in &layers {
                if counts.get(&l.chain_id).copied().unwrap_or(0) > 1 {
                    shared += l.size;
                } else {
                    unique += l.size;
                }
            }
            images.push(ImageUsage {
                tags: self.store.tags_of(&img.id)?,
                containers: self.store.containers_using(&img.id)?.len() as u64,
                id: img.id,
                created: img.created,
                size: shared + unique,
                shared_size: shared,
                unique_size: unique,
            });
        }
        let (mut shared_size, mut unique_size, mut unused_size) = (0, 0, 0);
        for l in &all_layers {
            match counts.get(&l.chain_id).copied().unwrap_or(0) {
                0 => unused_size += l.size,
                1 => unique_size += l.size,
                _ => shared_size += l.size,
            }
        }
        let blobs_size = self.content.list()?.iter().map(|b| self.content.size(b).unwrap_or(0)).sum();
        let (containers, volumes) = (self.store.containers()?, self.store.volumes()?);
        Ok(DiskUsage {
            images,
            layers: all_layers.len() as u64,
            layers_in_use: all_layers.iter().filter(|l| counts.contains_key(&l.chain_id)).count() as u64,
            layers_size: all_layers.iter().map(|l| l.size).sum(),
            shared_size,
            unique_size,
            unused_size,
            blobs_size,
            layers_disk: crate::tree::usage(&self.layers_dir)?,
            containers: containers.len() as u64,
            containers_running: containers.iter().filter(|c| c.state == ContainerState::Running).count() as u64,
            containers_size: crate::tree::usage(&self.root.join("containers"))?,
            volumes: volumes.len() as u64,
            volumes_active: {
                let mut n = 0;
                for v in &volumes {
                    n += u64::from(!self.volumes().users(&v.name)?.is_empty());
                }
                n
            },
            volumes_size: crate::tree::usage(&self.root.join("volumes"))?,
        })
    }

    /// `system prune`: with nothing but images in the store yet, dangling
    /// (or with `all`, unused) images and whatever only they held.
    /// `system prune`: stopped containers, then the images nothing uses any
    /// more (dangling ones, or with `all` every image no container uses),
    /// then the build cache and what only it kept.
    pub fn system_prune(&self, all: bool) -> Result<PruneReport> {
        self.exclusive()?;
        let (containers, container_bytes) = self.prune_containers()?;
        let mut report = self.images().prune(all)?;
        report.containers = containers;
        report.reclaimed += container_bytes + self.builds().prune_cache()?.1;
        Ok(report)
    }

    /// `container prune`: remove every container that is not running;
    /// returns their IDs and the bytes their layers held.
    pub fn prune_containers(&self) -> Result<(Vec<String>, u64)> {
        let mut removed = Vec::new();
        let mut bytes = 0;
        for c in self.containers().list(true)? {
            if c.state == ContainerState::Running {
                continue;
            }
            bytes += crate::tree::usage(&self.root.join("containers").join(&c.id)).unwrap_or(0);
            self.containers().remove(&c.id, false)?;
            removed.push(c.id);
        }
        Ok((removed, bytes))
    }

    // ---- seeing inside ----

    /// The images service.
    pub fn images(&self) -> Images<'_> {
        Images { engine: self }
    }
}

/// The images service: load, import, save, list, inspect, history, tag,
/// remove, prune, mount; what they add goes through the engine's ingest.
pub struct Images<'e> {
    engine: &'e Engine,
}

impl Images<'_> {
    /// `load`: bring in every image of a docker-archive or oci-archive
    /// (plain, gzip or zstd). `None` reads standard input.
    pub fn load(&self, input: Option<&Path>) -> Result<Vec<Loaded>> {
        let r = self.load_inner(input);
        if r.is_err() {
            self.engine.roll_back();
        }
        r
    }

    fn load_inner(&self, input: Option<&Path>) -> Result<Vec<Loaded>> {
        let label = input.map(|p| p.display().to_string()).unwrap_or_else(|| "standard input".into());
        let (file, _spool) = self.seekable_tar(input, &label)?;
        let archive = Archive::open(file, &label)?;
        let images = archive.images()?;
        let mut out = Vec::new();
        for img in images {
            let tags = img.tags.clone();
            let open = |entry: &str| -> Result<Box<dyn Read + Send>> { Ok(Box::new(archive.reader(entry)?)) };
            let id = self.engine.ingest(img, &open, &label, 4)?;
            out.push(Loaded { id, tags });
        }
        Ok(out)
    }

    /// An uncompressed, seekable tar for `input`: the file itself when it is
    /// one, else a decompressed copy in tmp/ (removed when the guard drops).
    fn seekable_tar(&self, input: Option<&Path>, label: &str) -> Result<(File, Option<crate::tmp::TempDir>)> {
        if let Some(p) = input {
            let mut f = File::open(p).at(p)?;
            let mut head = [0u8; 4];
            let n = f.read(&mut head).at(p)?;
            if Compression::detect(&head[..n]) == Compression::None && f.metadata().at(p)?.is_file() {
                return Ok((File::open(p).at(p)?, None));
            }
        }
        let reader: Box<dyn Read> = match input {
            Some(p) => Box::new(File::open(p).at(p)?),
            None => Box::new(io::stdin().lock()),
        };
        let (_, mut dec) = crate::layer::decompress(BufReader::with_capacity(1 << 20, reader))
            .map_err(|e| Error::stream(format!("reading {label}"), e))?;
        let dir = crate::tmp::TempDir::new(&self.engine.tmp, "spool")?;
        let path = dir.path().join("archive.tar");
        let mut f = File::create(&path).at(&path)?;
        io::copy(&mut dec, &mut f).map_err(|e| Error::stream(format!("reading {label}"), e))?;
        Ok((File::open(&path).at(&path)?, Some(dir)))
    }

    /// `import`: a rootfs tarball (plain or compressed) becomes a one-layer image.
    pub fn import(&self, input: Option<&Path>, reference: Option<&str>, message: Option<&str>) -> Result<Digest> {
        let tag = reference.map(Reference::parse).transpose()?;
        let r = self.import_inner(input, tag, message);
        if r.is_err() {
            self.engine.roll_back();
        }
        r
    }

    fn import_inner(&self, input: Option<&Path>, tag: Option<Reference>, message: Option<&str>) -> Result<Digest> {
        let label = input.map(|p| p.display().to_string()).unwrap_or_else(|| "standard input".into());
        let mut reader: Box<dyn Read> = match input {
            Some(p) => Box::new(File::open(p).at(p)?),
            None => Box::new(io::stdin().lock()),
        };
        let layer = self.engine.unpacker().import_layer(&self.engine.store, &mut reader, &label)?;
        let created = image::format_time(now());
        let host = Platform::host();
        let config = serde_json::json!({
            "architecture": host.architecture,
            "os": host.os,
            "created": created,
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id.as_str()]},
            "history": [{"created": created, "created_by": "strata import", "comment": message.unwrap_or("Imported from tarball")}],
        });
        let config = serde_json::to_vec(&config).expect("config serializes");
        let id = self.engine.content.write_bytes(&config, None)?;
        let manifest = image::make_manifest(
            &id,
            config.len() as u64,
            &[LayerDescriptor {
                media_type: layer.media_type.clone(),
                digest: layer.blob.clone(),
                size: layer.blob_size,
            }],
        )?;
        let manifest = self.engine.content.write_bytes(&manifest, None)?;
        let rec = ImageRecord { id: id.clone(), manifest, created: now(), added: now() };
        let tags: Vec<String> = tag.into_iter().map(|t| t.to_string()).collect();
        self.engine.store.put_image(&rec, &[layer.chain_id], &tags)?;
        Ok(id)
    }

    fn save_image(&self, name: &str) -> Result<SaveImage> {
        let id = self.engine.resolve_image(name)?;
        let rec = self.engine.image_record(&id)?;
        let by_tag = Reference::parse(name)
            .ok()
            .map(|r| r.to_string())
            .filter(|t| self.engine.store.tag(t).ok().flatten().as_ref() == Some(&id));
        let layers = self.engine.store.image_layers(&id)?;
        Ok(SaveImage {
            config: id.clone(),
            manifest: self.manifest_of_local_blobs(&id, &rec.manifest, &layers)?,
            tags: by_tag.into_iter().collect(),
            layers,
        })
    }

    /// The image's manifest when it names exactly the blobs its layers are
    /// stored as; otherwise (a pull that found a layer here under another
    /// blob, gzip vs plain, and left the registry's copy there) a manifest
    /// of the same config and layers naming the stored blobs, so what `save`
    /// writes is whole. The image ID is the same either way.
    fn manifest_of_local_blobs(&self, id: &Digest, manifest: &Digest, layers: &[LayerRecord]) -> Result<Digest> {
        let bytes = self.engine.content.read(manifest)?;
        let m = image::parse_manifest(&bytes, manifest.as_str())?;
        let names: Vec<Digest> = m.layers().iter().map(image::digest_of).collect::<Result<_>>()?;
        if names.len() == layers.len() && names.iter().zip(layers).all(|(d, l)| d == &l.blob) {
            return Ok(manifest.clone());
        }
        let descriptors: Vec<LayerDescriptor> = layers
            .iter()
            .map(|l| LayerDescriptor { media_type: l.media_type.clone(), digest: l.blob.clone(), size: l.blob_size })
            .collect();
        let config_size = self.engine.content.read(id)?.len() as u64;
        self.engine.content.write_bytes(&image::make_manifest(id, config_size, &descriptors)?, None)
    }

    /// `save`: write images to `output` (a file, or a directory for oci-dir);
    /// `None` writes a tar to `out`. The output appears whole or not at all.
    pub fn save(&self, names: &[String], format: SaveFormat, output: Option<&Path>, out: &mut dyn Write) -> Result<()> {
        let images = names.iter().map(|n| self.save_image(n)).collect::<Result<Vec<_>>>()?;
        let blobs = StoredBlobs { content: &self.engine.content, layers_dir: &self.engine.layers_dir };
        let Some(path) = output else {
            return match format {
                SaveFormat::DockerArchive => archive::write_docker_archive(&blobs, &images, out).map(|_| ()),
                SaveFormat::OciArchive => archive::write_oci_archive(&blobs, &images, out).map(|_| ()),
                SaveFormat::OciDir => Err(Error::invalid("oci-dir needs an output directory (-o)")),
            };
        };
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = path.file_name().ok_or_else(|| Error::invalid(format!("bad output path {}", path.display())))?;
        let partial = parent.join(format!(".{}.strata-partial-{}", name.to_string_lossy(), std::process::id()));
        let result = (|| -> Result<()> {
            match format {
                SaveFormat::OciDir => {
                    if path.exists() && fs::read_dir(path).at(path)?.next().is_some() {
                        return Err(Error::AlreadyExists(format!("{} exists and is not empty", path.display())));
                    }
                    fs::create_dir(&partial).at(&partial)?;
                    archive::write_oci_dir(&blobs, &images, &partial)?;
                    if path.exists() {
                        fs::remove_dir(path).at(path)?;
                    }
                }
                _ => {
                    let f = io::BufWriter::with_capacity(1 << 20, File::create(&partial).at(&partial)?);
                    let f = if format == SaveFormat::DockerArchive {
                        archive::write_docker_archive(&blobs, &images, f)?
                    } else {
                        archive::write_oci_archive(&blobs, &images, f)?
                    };
                    f.into_inner()
                        .map_err(|e| Error::stream("writing archive", e.into_error()))?
                        .sync_all()
                        .at(&partial)?;
                }
            }
            fs::rename(&partial, path).at(path)
        })();
        if result.is_err() {
            let _ = crate::tree::remove(&partial);
        }
        result
    }

    /// Every image, newest first.
    pub fn list(&self) -> Result<Vec<ImageSummary>> {
        let mut out = Vec::new();
        for img in self.engine.store.images()? {
            let size = self.engine.store.image_layers(&img.id)?.iter().map(|l| l.size).sum();
            out.push(ImageSummary {
                tags: self.engine.store.tags_of(&img.id)?,
                id: img.id,
                created: img.created,
                size,
            });
        }
        Ok(out)
    }

    /// `inspect`: Docker's fields plus the layers with their sizes.
    pub fn inspect(&self, name: &str) -> Result<serde_json::Value> {
        let id = self.engine.resolve_image(name)?;
        let rec = self.engine.image_record(&id)?;
        let (raw, cfg) = self.engine.config_of(&id)?;
        let layers = self.engine.store.image_layers(&id)?;
        let tags: Vec<String> = self.engine.store.tags_of(&id)?.iter().map(|t| display_tag(t)).collect();
        Ok(serde_json::json!({
            "Id": id.as_str(),
            "Digest": rec.manifest.as_str(),
            "RepoTags": tags,
            "RepoDigests": [],
            "Created": raw.get("created").cloned().unwrap_or(serde_json::Value::Null),
            "Author": raw.get("author").cloned().unwrap_or_default(),
            "Architecture": cfg.architecture().to_string(),
            "Os": cfg.os().to_string(),
            "Variant": cfg.variant(),
            "Config": raw.get("config").cloned().unwrap_or_default(),
            "Size": layers.iter().map(|l| l.size).sum::<u64>(),
            "RootFS": {"Type": "layers", "Layers": layers.iter().map(|l| l.diff_id.as_str()).collect::<Vec<_>>()},
            "Layers": layers.iter().map(|l| serde_json::json!({
                "DiffID": l.diff_id.as_str(),
                "ChainID": l.chain_id.as_str(),
                "Digest": l.blob.as_str(),
                "MediaType": l.media_type,
                "CompressedSize": l.blob_size,
                "Size": l.size,
            })).collect::<Vec<_>>(),
            "GraphDriver": {"Name": self.engine.driver().to_string(), "Data": {
                "LowerDirs": layers.iter().rev().map(|l| layer_dir(&self.engine.layers_dir, &l.chain_id).display().to_string()).collect::<Vec<_>>(),
            }},
        }))
    }

    /// `history`: newest first.
    pub fn history(&self, name: &str) -> Result<Vec<HistoryRow>> {
        let id = self.engine.resolve_image(name)?;
        let (_, cfg) = self.engine.config_of(&id)?;
        let layers = self.engine.store.image_layers(&id)?;
        let mut sizes = layers.iter().map(|l| l.size);
        let mut rows = Vec::new();
        for h in cfg.history().clone().unwrap_or_default() {
            let empty = h.empty_layer().unwrap_or(false);
            rows.push(HistoryRow {
                id: None,
                created: image::parse_time(h.created().as_deref()),
                created_by: h.created_by().clone().unwrap_or_default(),
                size: if empty { 0 } else { sizes.next().unwrap_or(0) },
                comment: h.comment().clone().unwrap_or_default(),
                empty_layer: empty,
            });
        }
        rows.reverse();
        if let Some(top) = rows.first_mut() {
            top.id = Some(id);
        }
        Ok(rows)
    }

    /// `tag SOURCE TARGET`.
    pub fn tag(&self, source: &str, target: &str) -> Result<()> {
        let id = self.engine.resolve_image(source)?;
        let r = Reference::parse(target)?;
        if r.digest.is_some() {
            return Err(Error::invalid(format!("refusing to create a tag with a digest reference: {target}")));
        }
        self.engine.store.set_tag(&r.to_string(), &id)
    }

    /// `rmi`: untag, and delete images left without tags, then every layer
    /// and blob nothing else uses. Refuses images containers use.
    pub fn remove(&self, names: &[String], force: bool) -> Result<Vec<Removal>> {
        self.engine.exclusive()?;
        let mut out = Vec::new();
        let mut first_err = None;
        for name in names {
            match self.remove_one(name, force) {
                Ok(mut r) => out.append(&mut r),
                Err(e) => {
                    if first_err.is_none() {
                        first_err = Some(e);
                    }
                }
            }
        }
        let (layers, _) = self.engine.collect_garbage()?;
        out.extend(layers.into_iter().map(Removal::Deleted));
        match first_err {
            Some(e) if out.is_empty() => Err(e),
            Some(e) => {
                tracing::error!("{e}");
                Err(e)
            }
            None => Ok(out),
        }
    }

    fn remove_one(&self, name: &str, force: bool) -> Result<Vec<Removal>> {
        let id = self.engine.resolve_image(name)?;
        let tags = self.engine.store.tags_of(&id)?;
        let by_tag = Reference::parse(name).ok().map(|r| r.to_string()).filter(|t| tags.contains(t));
        let containers = self.engine.store.containers_using(&id)?;
        let mut out = Vec::new();
        if let Some(t) = &by_tag {
            if tags.len() > 1 {
                self.engine.store.remove_tag(t)?;
                return Ok(vec![Removal::Untagged(display_tag(t))]);
            }
        } else if tags.len() > 1 && !force {
            return Err(Error::InUse(format!(
                "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
                id.short()
            )));
        }
        if !containers.is_empty() {
            return Err(Error::InUse(format!(
                "conflict: unable to remove image {name} - image {} is in use by container(s): {}",
                id.short(),
                containers.join(", ")
            )));
        }
        let _ = mount::unmount(&self.engine.root.join("mounts").join(id.hex()));
        let _ = fs::remove_dir(self.engine.root.join("mounts").join(id.hex()));
        for t in &tags {
            out.push(Removal::Untagged(display_tag(t)));
        }
        self.engine.store.delete_image(&id)?;
        out.push(Removal::Deleted(id));
        Ok(out)
    }

    /// `image prune`: delete dangling images (no tag), or with `all` every
    /// image no container uses, and what only they used.
    pub fn prune(&self, all: bool) -> Result<PruneReport> {
        self.engine.exclusive()?;
        let mut report = PruneReport::default();
        for img in self.engine.store.images()? {
            let tags = self.engine.store.tags_of(&img.id)?;
            if (all || tags.is_empty()) && self.engine.store.containers_using(&img.id)?.is_empty() {
                let _ = mount::unmount(&self.engine.root.join("mounts").join(img.id.hex()));
                self.engine.store.delete_image(&img.id)?;
                report.images.push(img.id);
            }
        }
        let (layers, freed) = self.engine.collect_garbage()?;
        report.layers = layers;
        report.reclaimed = freed;
        Ok(report)
    }

    /// Mount an image's merged tree read-only; returns the mount point.
    pub fn mount(&self, name: &str) -> Result<PathBuf> {
        let id = self.engine.resolve_image(name)?;
        let target = self.engine.root.join("mounts").join(id.hex());
        if mount::is_mounted(&target) {
            return Ok(target);
        }
        fs::create_dir_all(&target).at(&target)?;
        let layers: Vec<PathBuf> = self
            .engine
            .store
            .image_layers(&id)?
            .iter()
            .rev()
            .map(|l| layer_dir(&self.engine.layers_dir, &l.chain_id))
            .collect();
        if layers.is_empty() {
            return Err(Error::invalid(format!("image {} has no layers to mount", id.short())));
        }
        let mounts = self.engine.snapshots.view(&layers, &target)?;
        mount::mount_all(&mounts)?;
        Ok(target)
    }

    /// Undo [`Engine::mount_image`].
    pub fn unmount(&self, name: &str) -> Result<()> {
        let id = self.engine.resolve_image(name)?;
        let target = self.engine.root.join("mounts").join(id.hex());
        mount::unmount(&target)?;
        let _ = fs::remove_dir(&target);
        Ok(())
    }
}

/// Blobs as `save` reads them from this store.
struct StoredBlobs<'a> {
    content: &'a ContentStore,
    layers_dir: &'a Path,
}

impl archive::BlobSource for StoredBlobs<'_> {
    fn read(&self, d: &Digest) -> Result<Vec<u8>> {
        self.content.read(d)
    }
    fn open_layer(&self, l: &LayerRecord) -> Result<Box<dyn Read + Send>> {
        crate::unpack::open_layer_blob(self.layers_dir, self.content, l)
    }
}

pub use crate::image::reference::display_tag;
