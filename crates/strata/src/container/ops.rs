//! Container operations on the engine: create, run (attached or under a
//! monitor), stop, kill, wait, rm, ps, logs, diff and commit.

use std::fs::{self, File};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::runtime::{self, Runtime, Stdio};
use super::spec::{self, RunConfig};
use super::Change;
use crate::digest::{chain_ids, Digest, HashingReader};
use crate::engine::Engine;
use crate::error::{Error, IoContext, Result};
use crate::image::{self, LayerDescriptor, Reference};
use crate::layer::{write_diff, WriteOptions};
use crate::snapshot::{mount, Driver, Mount};
use crate::store::{now, ContainerRecord, ContainerState, ImageRecord};
use crate::unpack::{layer_dir, LayerSpec};

/// Flags of `create` and `run`.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// `--name`.
    pub name: Option<String>,
    /// `-e` and `--env-file` entries, `KEY=VALUE` or `KEY` (taken from this environment).
    pub env: Vec<String>,
    /// `-w`.
    pub workdir: Option<String>,
    /// `-u`.
    pub user: Option<String>,
    /// `--entrypoint`.
    pub entrypoint: Option<String>,
    /// The command after the image name.
    pub cmd: Vec<String>,
    /// `--hostname`.
    pub hostname: Option<String>,
    /// `--network`: `none` (default) or `host`.
    pub network: Option<String>,
    /// `--read-only`.
    pub read_only: bool,
    /// `--rm`.
    pub auto_remove: bool,
    /// `--memory`, in bytes.
    pub memory: Option<i64>,
    /// `--cpus`.
    pub cpus: Option<f64>,
    /// `--pids-limit`.
    pub pids_limit: Option<i64>,
    /// `--runtime`: runc, crun, youki or a path; the built-in one when absent.
    pub runtime: Option<String>,
    /// `-t`.
    pub tty: bool,
    /// `-v` specs.
    pub volumes: Vec<String>,
    /// `--mount` specs.
    pub mounts: Vec<String>,
    /// `--volumes-from CONTAINER[:ro]`.
    pub volumes_from: Vec<String>,
}

/// A container as `ps` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ContainerSummary {
    /// Full ID.
    pub id: String,
    /// Name.
    pub name: String,
    /// The image it runs, by the name it was created with if that still names it.
    pub image: String,
    /// The image ID.
    pub image_id: Digest,
    /// The command line.
    pub command: String,
    /// created, running or exited.
    pub state: ContainerState,
    /// Exit code once exited.
    pub exit_code: Option<i64>,
    /// Seconds since the epoch.
    pub created: i64,
    /// When it last started.
    pub started: Option<i64>,
    /// When it last exited.
    pub finished: Option<i64>,
    /// The init process while running.
    pub pid: Option<i64>,
}

const NAME_WORDS: [&str; 16] = [
    "amber", "brisk", "calm", "deft", "eager", "fond", "glad", "hale", "keen", "lucid", "merry", "noble", "proud",
    "quick", "sunny", "vivid",
];
const NAME_NOUNS: [&str; 16] = [
    "basalt", "chalk", "dolomite", "flint", "gneiss", "granite", "jasper", "marble", "obsidian", "onyx", "quartz",
    "schist", "shale", "slate", "tuff", "agate",
];

/// Whether the container's process is still the one running at its
/// recorded pid: alive, not a zombie (exited, not yet collected), and the
/// same process (its start time as recorded) — not another one the kernel
/// has given the pid to since.
fn alive(rec: &ContainerRecord) -> bool {
    let Some(pid) = rec.pid else { return false };
    match &rec.process {
        Some(p) => crate::store::process_running(p),
        // Recorded before processes were (schema 1): the pid is all there is.
        None => fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| s.rfind(')').and_then(|i| s[i + 2..].chars().next()))
            .is_some_and(|state| state != 'Z'),
    }
}

fn valid_name(n: &str) -> bool {
    n.len() >= 2
        && n.as_bytes()[0].is_ascii_alphanumeric()
        && n.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

/// Validate and complete `-e` entries: `KEY` alone takes this process's value.
fn check_env(entries: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for e in entries {
        let key = e.split('=').next().unwrap_or("");
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(Error::invalid(format!("invalid environment variable: {e:?}")));
        }
        if e.contains('=') {
            out.push(e.clone());
        } else if let Ok(v) = std::env::var(key) {
            out.push(format!("{key}={v}"));
        }
    }
    Ok(out)
}

/// The containers service: records and the lifecycle (create, run, start,
/// exec, kill, stop, wait, remove), logs, inspect, diff and commit.
pub struct Containers<'e> {
    engine: &'e Engine,
}

impl Engine {
    /// The containers service.
    pub fn containers(&self) -> Containers<'_> {
        Containers { engine: self }
    }

    fn image_lowers(&self, image_id: &Digest) -> Result<Vec<PathBuf>> {
        Ok(self.store.image_layers(image_id)?.iter().rev().map(|l| layer_dir(&self.layers_dir, &l.chain_id)).collect())
    }

    pub(crate) fn empty_dir(&self) -> Result<PathBuf> {
        let p = self.root.join("layers-empty");
        fs::create_dir_all(&p).at(&p)?;
        Ok(p)
    }

    /// What a container layer at `dir` (its `upper/` on overlay, its full
    /// `rootfs/` on the copy driver) changed over `lowers` (top first),
    /// leaving out runtime mount points and what lies under the mounts at
    /// `targets`; and the directory the changes are read from.
    pub(crate) fn layer_changes(
        &self,
        dir: &Path,
        lowers: &[PathBuf],
        targets: &[&str],
    ) -> Result<(PathBuf, Vec<Change>)> {
        let (source, changes) = match self.driver() {
            Driver::Overlay => (dir.join("upper"), super::overlay_changes(&dir.join("upper"), lowers)?),
            Driver::Copy => {
                let base = match lowers.first() {
                    Some(top) => top.clone(),
                    None => self.empty_dir()?,
                };
                (dir.join("rootfs"), super::tree_changes(&dir.join("rootfs"), &base)?)
            }
        };
        let changes = changes
            .into_iter()
            .filter(|(k, p)| !mount_point_artifact(*k, p, dir, self.driver(), targets))
            .filter(|(_, p)| !targets.iter().any(|t| p.starts_with(&format!("{t}/"))))
            .collect();
        Ok((source, changes))
    }

    /// Turn `changes` found in `source` (an overlay upper directory, or a
    /// full tree for the copy driver) into one layer on top of `below`.
    pub(crate) fn layer_from_changes(
        &self,
        source: &Path,
        changes: &[Change],
        below: &[crate::store::LayerRecord],
        label: &str,
    ) -> Result<crate::store::LayerRecord> {
        let work = crate::tmp::TempDir::new(&self.tmp, "commit")?;
        let diff_dir = work.path().join("changes");
        fs::create_dir(&diff_dir).at(&diff_dir)?;
        super::changes_to_overlay_dir(source, changes, &diff_dir)?;
        let tar_path = work.path().join("layer.tar");
        let f = io::BufWriter::new(File::create(&tar_path).at(&tar_path)?);
        write_diff(&diff_dir, f, &WriteOptions::from_env())?
            .into_inner()
            .map_err(|e| Error::stream("writing layer", e.into_error()))?;
        let (diff_id, _) = HashingReader::new(File::open(&tar_path).at(&tar_path)?).drain_finish().at(&tar_path)?;
        let mut diff_ids: Vec<Digest> = below.iter().map(|l| l.diff_id.clone()).collect();
        diff_ids.push(diff_id.clone());
        let chains = chain_ids(&diff_ids);
        let spec = LayerSpec {
            chain_id: chains.last().expect("one layer at least").clone(),
            diff_id: diff_id.clone(),
            lowers: chains[..chains.len() - 1].iter().rev().cloned().collect(),
            blob: Some(diff_id),
            media_type: None,
            label: label.to_string(),
        };
        let tp = tar_path.clone();
        self.unpacker().ensure_layer(&self.store, &spec, &move || Ok(Box::new(File::open(&tp).at(&tp)?)))
    }

    /// Record an image made here: `config` (its rootfs set from `layers`,
    /// `history` extended by `entry`) and a manifest; returns its ID.
    pub(crate) fn store_image(
        &self,
        mut config: serde_json::Value,
        layers: &[crate::store::LayerRecord],
        entry: Option<serde_json::Value>,
        tags: &[String],
        created: i64,
    ) -> Result<Digest> {
        let diff_ids: Vec<Digest> = layers.iter().map(|l| l.diff_id.clone()).collect();
        config["created"] = image::format_time(created).into();
        config["rootfs"] =
            serde_json::json!({"type": "layers", "diff_ids": diff_ids.iter().map(|d| d.as_str()).collect::<Vec<_>>()});
        if let Some(entry) = entry {
            match config["history"].as_array_mut() {
                Some(h) => h.push(entry),
                None => config["history"] = serde_json::json!([entry]),
            }
        }
        let bytes = serde_json::to_vec(&config).expect("config serializes");
        let id = self.content.write_bytes(&bytes, None)?;
        let manifest_layers: Vec<LayerDescriptor> = layers
            .iter()
            .map(|l| LayerDescriptor { media_type: l.media_type.clone(), digest: l.blob.clone(), size: l.blob_size })
            .collect();
        let manifest = image::make_manifest(&id, bytes.len() as u64, &manifest_layers)?;
        let manifest = self.content.write_bytes(&manifest, None)?;
        let img = ImageRecord { id: id.clone(), manifest, created, added: now() };
        self.store.put_image(&img, &chain_ids(&diff_ids), tags)?;
        Ok(id)
    }
}

impl Containers<'_> {
    fn container_dir(&self, id: &str) -> PathBuf {
        self.engine.root.join("containers").join(id)
    }

    fn runtime_of(&self, rec: &ContainerRecord) -> Result<Box<dyn Runtime>> {
        let cfg = super::run_config(&rec)?;
        runtime::for_name(cfg.runtime.as_deref(), &self.engine.root.join("runtime"))
    }

    /// A container by name, ID or ID prefix, its state refreshed.
    pub fn get(&self, name: &str) -> Result<ContainerRecord> {
        let rec = self.engine.store.find_container(name)?.ok_or_else(|| Error::not_found("container", name))?;
        self.refresh(rec)
    }

    /// A running container whose process is gone (its watcher died too) is exited.
    fn refresh(&self, mut rec: ContainerRecord) -> Result<ContainerRecord> {
        if rec.state == ContainerState::Running && !alive(&rec) {
            std::thread::sleep(Duration::from_millis(100));
            if let Some(again) = self.engine.store.find_container(&rec.id)? {
                rec = again;
            }
            if rec.state == ContainerState::Running && !alive(&rec) {
                rec.state = ContainerState::Exited;
                rec.exit_code = rec.exit_code.or(Some(255));
                rec.finished = Some(now());
                rec.pid = None;
                rec.process = None;
                self.engine.store.update_container(&rec)?;
                self.release_container(&rec.id);
            }
        }
        Ok(rec)
    }

    /// `create`: a container record and its writable layer; nothing runs.
    pub fn create(&self, image_name: &str, o: &CreateOptions) -> Result<ContainerRecord> {
        let env = check_env(&o.env)?;
        if let Some(u) = &o.user {
            spec::check_user_syntax(u)?;
        }
        let network = o.network.clone().unwrap_or_else(|| "none".into());
        if network != "none" && network != "host" {
            return Err(Error::invalid(format!("network {network:?} is not supported: use none or host")));
        }
        if let Some(n) = &o.name {
            if !valid_name(n) {
                return Err(Error::invalid(format!(
                    "invalid container name {n:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                )));
            }
        }
        if let Some(w) = &o.workdir {
            if !w.starts_with('/') {
                return Err(Error::invalid(format!(
                    "the working directory {w:?} is invalid, it needs to be an absolute path"
                )));
            }
        }
        let image_id = self.engine.resolve_image(image_name)?;
        let (_, cfg) = self.engine.config_of(&image_id)?;
        let os = cfg.os().to_string();
        if os != "linux" {
            return Err(Error::invalid(format!(
                "image {image_name} is for {os}/{}: strata runs linux images only",
                cfg.architecture()
            )));
        }
        let ic = cfg.config().clone().unwrap_or_default();
        let mut mounts = Vec::new();
        for v in &o.volumes {
            mounts.push(crate::volume::parse_volume_flag(v)?);
        }
        for m in &o.mounts {
            mounts.push(crate::volume::parse_mount_flag(m)?);
        }
        for from in &o.volumes_from {
            let (name, mode) = from.split_once(':').unwrap_or((from, ""));
            if !matches!(mode, "" | "ro" | "rw") {
                return Err(Error::invalid(format!("invalid --volumes-from mode {mode:?} in {from:?}: want ro or rw")));
            }
            let other = self.get(name)?;
            let ocfg = super::run_config(&other)?;
            for mut m in ocfg.mounts {
                m.target = crate::confined::clean_container_path(&m.target);
                if mode == "ro" {
                    m.readonly = true;
                } else if mode == "rw" {
                    m.readonly = false;
                }
                m.anonymous = false;
                mounts.push(m);
            }
        }
        for m in &mounts {
            if m.kind == crate::volume::MountKind::Bind && !Path::new(&m.source).exists() {
                return Err(Error::invalid(format!(
                    "invalid mount config: bind source path does not exist: {}",
                    m.source
                )));
            }
        }
        for path in ic.volumes().clone().unwrap_or_default() {
            // An image's VOLUME names a place in the container, `..` and all: cleaned like a -v target.
            let path = crate::confined::clean_container_path(&path);
            if path == "/" {
                return Err(Error::invalid(format!("image {image_name}: VOLUME / cannot be mounted")));
            }
            if !mounts.iter().any(|m| m.target == path) {
                mounts.push(crate::volume::MountSpec {
                    kind: crate::volume::MountKind::Volume,
                    source: String::new(),
                    target: path,
                    readonly: false,
                    anonymous: true,
                });
            }
        }
        for m in mounts.iter_mut().filter(|m| m.kind == crate::volume::MountKind::Volume && m.source.is_empty()) {
            m.source = crate::tmp::random_hex(32)?;
        }
        let mut seen = std::collections::HashSet::new();
        for m in &mounts {
            if !seen.insert(m.target.clone()) {
                return Err(Error::invalid(format!("duplicate mount point: {}", m.target)));
            }
        }
        let mut args: Vec<String> = match &o.entrypoint {
            Some(e) if e.is_empty() => Vec::new(),
            Some(e) => vec![e.clone()],
            None => ic.entrypoint().clone().unwrap_or_default(),
        };
        if !o.cmd.is_empty() {
            args.extend(o.cmd.iter().cloned());
        } else if o.entrypoint.is_none() {
            args.extend(ic.cmd().clone().unwrap_or_default());
        }
        if args.is_empty() {
            return Err(Error::invalid("no command specified"));
        }
        let mut merged: Vec<String> = ic.env().clone().unwrap_or_default();
        for e in env {
            let key = e.split('=').next().unwrap_or("").to_string();
            merged.retain(|m| m.split('=').next() != Some(key.as_str()));
            merged.push(e);
        }
        if !merged.iter().any(|e| e.starts_with("PATH=")) {
            merged.insert(0, spec::DEFAULT_PATH.to_string());
        }
        let id = crate::tmp::random_hex(32)?;
        let name = match &o.name {
            Some(n) => n.clone(),
            None => {
                let b = hex::decode(&id[..4]).unwrap_or_default();
                format!("{}_{}_{}", NAME_WORDS[b[0] as usize % 16], NAME_NOUNS[b[1] as usize % 16], &id[..4])
            }
        };
        let run = RunConfig {
            args,
            env: merged,
            workdir: o
                .workdir
                .clone()
                .or_else(|| ic.working_dir().clone())
                .filter(|w| !w.is_empty())
                .unwrap_or_else(|| "/".into()),
            user: o.user.clone().or_else(|| ic.user().clone()).unwrap_or_default(),
            hostname: o.hostname.clone().unwrap_or_else(|| id[..12].to_string()),
            network,
            read_only: o.read_only,
            auto_remove: o.auto_remove,
            memory: o.memory,
            cpu_quota: o.cpus.map(|c| (c * 100_000.0) as i64),
            pids_limit: o.pids_limit.filter(|p| *p > 0),
            runtime: o.runtime.clone().filter(|r| r != "builtin"),
            tty: o.tty,
            mounts,
        };
        if run.tty && run.runtime.is_some() {
            return Err(Error::invalid("-t is supported with the built-in runtime only"));
        }
        runtime::for_name(run.runtime.as_deref(), &self.engine.root.join("runtime"))?;
        let mut rec = ContainerRecord {
            id: id.clone(),
            name,
            image_id: image_id.clone(),
            created: now(),
            state: ContainerState::Incomplete,
            pid: None,
            exit_code: None,
            started: None,
            finished: None,
            config: serde_json::to_string(&run).expect("config serializes"),
            process: None,
        };
        self.engine.store.insert_container(&rec)?;
        for m in run.mounts.iter().filter(|m| m.kind == crate::volume::MountKind::Volume) {
            if let Err(e) = self.engine.volumes().ensure(&m.source, m.anonymous, "{}") {
                let _ = self.engine.store.delete_container(&id);
                return Err(e);
            }
        }
        let dir = self.container_dir(&id);
        let made = (|| -> Result<()> {
            fs::create_dir(&dir).at(&dir)?;
            fs::create_dir(dir.join("rootfs")).at(&dir)?;
            match self.engine.driver() {
                Driver::Overlay => {
                    fs::create_dir(dir.join("upper")).at(&dir)?;
                    fs::create_dir(dir.join("work")).at(&dir)?;
                    let points: Vec<(&str, bool)> = run
                        .mounts
                        .iter()
                        .map(|m| {
                            let is_file = m.kind == crate::volume::MountKind::Bind && Path::new(&m.source).is_file();
                            (m.target.as_str(), is_file)
                        })
                        .collect();
                    super::make_init_dir(&dir.join("init"), &points, &self.engine.image_lowers(&image_id)?)?;
                }
                Driver::Copy => {
                    let lowers = self.engine.image_lowers(&image_id)?;
                    if let Some(top) = lowers.first() {
                        crate::tree::copy_tree(top, &dir.join("rootfs"))?;
                    }
                }
            }
            Ok(())
        })();
        if let Err(e) = made {
            let _ = crate::tree::remove(&dir);
            let _ = self.engine.store.delete_container(&id);
            return Err(e);
        }
        rec.state = ContainerState::Created;
        self.engine.store.update_container(&rec)?;
        Ok(rec)
    }

    fn rootfs_mounts(&self, rec: &ContainerRecord) -> Result<Vec<Mount>> {
        let dir = self.container_dir(&rec.id);
        match self.engine.driver() {
            Driver::Copy => Ok(Vec::new()),
            Driver::Overlay => {
                let layers = self.engine.image_lowers(&rec.image_id)?;
                let overlay = crate::snapshot::Overlay::new(&self.engine.tmp);
                let mut lowers = vec![dir.join("init")];
                lowers.extend(overlay.lowers(&layers, 1)?);
                Ok(vec![Mount::overlay(lowers, Some((dir.join("upper"), dir.join("work"))), dir.join("rootfs"))])
            }
        }
    }

    /// Unmount a container's root and forget its runtime state.
    fn release_container(&self, id: &str) {
        if let Ok(Some(rec)) = self.engine.store.find_container(id) {
            if let Ok(rt) = self.runtime_of(&rec) {
                let _ = rt.delete(id);
            }
        }
        let rootfs = self.container_dir(id).join("rootfs");
        if mount::is_mounted(&rootfs) {
            let _ = mount::unmount(&rootfs);
        }
    }

    /// Run a created (or exited) container in this process until it exits;
    /// returns its exit code (126/127 when the command cannot be run).
    /// Errors are strata's own failures (Docker's 125).
    pub fn run(&self, name: &str, mut stdio: Stdio, interactive: bool) -> Result<(i32, Option<String>)> {
        let mut rec = self.get(name)?;
        if rec.state == ContainerState::Running {
            return Err(Error::InUse(format!("container {} is already running", rec.name)));
        }
        let cfg = super::run_config(&rec)?;
        let dir = self.container_dir(&rec.id);
        let rootfs = dir.join("rootfs");
        let mounts = self.rootfs_mounts(&rec)?;
        mount::mount_all(&mounts)?;
        for m in &cfg.mounts {
            if let Err(e) = self.engine.volumes().seed(m, &rootfs) {
                self.release_container(&rec.id);
                return Err(e);
            }
        }
        // Held until the runtime has joined it: the container's network, loopback up.
        let netns = match cfg.network.as_str() {
            "host" => None,
            _ => match super::netns::LoopbackNamespace::new() {
                Ok(n) => Some(n),
                Err(e) => {
                    self.release_container(&rec.id);
                    self.finish_auto_remove(&rec, &cfg);
                    return Err(e);
                }
            },
        };
        let prepared = (|| -> Result<std::result::Result<PathBuf, (i32, String)>> {
            let root = crate::confined::Root::open(&rootfs)?;
            let user = spec::resolve_user(&cfg.user, &root)?;
            let targets: Vec<&str> = cfg.mounts.iter().map(|m| m.target.as_str()).collect();
            if let Err(failure) = spec::check_command(&cfg.args, &cfg.env, &root, &cfg.workdir, &targets) {
                return Ok(Err(failure));
            }
            spec::write_etc_files(&dir, &cfg)?;
            let volumes: Vec<(crate::volume::MountSpec, PathBuf)> =
                cfg.mounts.iter().map(|m| (m.clone(), self.mount_source(m))).collect();
            let ns_path = netns.as_ref().map(|n| n.path());
            let spec = spec::build_spec(&rec.id, &cfg, &user, &rootfs, &dir, &volumes, ns_path.as_deref())?;
            let path = dir.join("config.json");
            fs::write(&path, serde_json::to_vec_pretty(&spec).expect("spec serializes")).at(&path)?;
            Ok(Ok(dir.clone()))
        })();
        let bundle = match prepared {
            Ok(Ok(b)) => b,
            Ok(Err((code, msg))) => {
                self.release_container(&rec.id);
                rec.state = ContainerState::Exited;
                rec.exit_code = Some(code as i64);
                rec.finished = Some(now());
                self.engine.store.update_container(&rec)?;
                self.finish_auto_remove(&rec, &cfg);
                return Ok((code, Some(msg)));
            }
            Err(e) => {
                self.release_container(&rec.id);
                self.finish_auto_remove(&rec, &cfg);
                return Err(e);
            }
        };
        let console = if cfg.tty { Some(super::tty::ConsoleSocket::new(&rec.id)?) } else { None };
        stdio.console_socket = console.as_ref().map(|c| c.path().to_path_buf());
        let proxy = runtime::SignalProxy::install();
        let pid = match self.runtime_of(&rec).and_then(|rt| rt.start(&rec.id, &bundle, stdio)) {
            Ok(pid) => {
                proxy.forward_to(pid);
                pid
            }
            Err(e) => {
                self.release_container(&rec.id);
                // `--rm` means no record is left, however the start went.
                self.finish_auto_remove(&rec, &cfg);
                return Err(e);
            }
        };
        let terminal = console.as_ref().map(|c| super::tty::Attached::start(c, interactive)).transpose()?;
        rec.state = ContainerState::Running;
        rec.pid = Some(pid as i64);
        rec.process = crate::store::process_owner(pid as u32);
        rec.started = Some(now());
        rec.exit_code = None;
        rec.finished = None;
        self.engine.store.update_container(&rec)?;
        // While it runs, other commands (rmi, prune) must not wait for this one.
        self.engine.unlock();
        let code = runtime::wait(pid)?;
        drop(proxy);
        if let Some(t) = terminal {
            t.finish();
        }
        self.release_container(&rec.id);
        if let Some(mut now_rec) = self.engine.store.find_container(&rec.id)? {
            now_rec.state = ContainerState::Exited;
            now_rec.pid = None;
            now_rec.process = None;
            now_rec.exit_code = Some(code as i64);
            now_rec.finished = Some(now());
            self.engine.store.update_container(&now_rec)?;
        }
        self.finish_auto_remove(&rec, &cfg);
        Ok((code, None))
    }

    fn finish_auto_remove(&self, rec: &ContainerRecord, cfg: &RunConfig) {
        if cfg.auto_remove {
            if let Err(e) = self.remove(&rec.id, true) {
                tracing::warn!("removing container {}: {e}", rec.name);
            }
        }
    }

    /// Start a container under a detached `strata` monitor process (whose
    /// output goes to the container's log); returns once it is running or
    /// has already exited.
    pub fn start_detached(&self, name: &str, exe: &Path, global_args: &[String]) -> Result<ContainerRecord> {
        let rec = self.get(name)?;
        if rec.state == ContainerState::Running {
            return Ok(rec);
        }
        let log = self.container_dir(&rec.id).join("container.log");
        let out = File::options().create(true).append(true).open(&log).at(&log)?;
        let err = out.try_clone().at(&log)?;
        let mut cmd = std::process::Command::new(exe);
        cmd.args(global_args).arg("__monitor").arg(&rec.id);
        cmd.stdin(std::process::Stdio::null()).stdout(out).stderr(err);
        // SAFETY: setsid is async-signal-safe; the monitor leaves the CLI's session so it outlives it.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        let mut child = cmd.spawn().at(exe)?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let r = self.engine.store.find_container(&rec.id)?.ok_or_else(|| Error::not_found("container", name))?;
            if r.state == ContainerState::Running || r.state == ContainerState::Exited {
                return Ok(r);
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(Error::Runtime(format!(
                    "container {} failed to start (monitor exited with {status}); see `strata logs {}`",
                    r.name, r.name
                )));
            }
            if Instant::now() > deadline {
                return Err(Error::Runtime(format!("container {} did not start within 60s", r.name)));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The monitor's side of [`Engine::start_detached`]: run with output to
    /// the log, record the exit.
    pub fn monitor(&self, id: &str) -> Result<i32> {
        let log = self.container_dir(id).join("container.log");
        let out = File::options().create(true).append(true).open(&log).at(&log)?;
        let stdio = Stdio {
            stdin: File::open("/dev/null").at("/dev/null")?.into(),
            stdout: out.try_clone().at(&log)?.into(),
            stderr: out.into(),
            console_socket: None,
        };
        let (code, msg) = self.run(id, stdio, false)?;
        if let Some(m) = msg {
            use std::io::Write;
            let _ = File::options().append(true).open(&log).and_then(|mut f| writeln!(f, "{m}"));
        }
        Ok(code)
    }

    /// `exec`: run another command in a running container and wait for it;
    /// its exit code (126/127 when it cannot be run).
    pub fn exec(
        &self,
        name: &str,
        args: &[String],
        env: &[String],
        workdir: Option<&str>,
        user: Option<&str>,
        mut stdio: Stdio,
        tty: Option<bool>,
    ) -> Result<(i32, Option<String>)> {
        let rec = self.get(name)?;
        if rec.state != ContainerState::Running {
            return Err(Error::InUse(format!("container {} is not running", rec.name)));
        }
        let cfg = super::run_config(&rec)?;
        let extra = check_env(env)?;
        if let Some(u) = user {
            spec::check_user_syntax(u)?;
        }
        let rootfs = self.container_dir(&rec.id).join("rootfs");
        let mut env = cfg.env.clone();
        for e in extra {
            let key = e.split('=').next().unwrap_or("").to_string();
            env.retain(|m| m.split('=').next() != Some(key.as_str()));
            env.push(e);
        }
        let cwd = workdir.map(String::from).unwrap_or_else(|| cfg.workdir.clone());
        let root = crate::confined::Root::open(&rootfs)?;
        let u = spec::resolve_user(user.unwrap_or(&cfg.user), &root)?;
        let targets: Vec<&str> = cfg.mounts.iter().map(|m| m.target.as_str()).collect();
        if let Err((code, msg)) = spec::check_command(args, &env, &root, &cwd, &targets) {
            return Ok((code, Some(msg)));
        }
        let process = runtime::ExecProcess { args: args.to_vec(), env, cwd, user: (u.uid, u.gid, u.additional_gids) };
        self.engine.unlock();
        // tty: None = no terminal; Some(interactive) = a terminal, forwarding stdin when interactive.
        let console = if tty.is_some() { Some(super::tty::ConsoleSocket::new(&rec.id)?) } else { None };
        stdio.console_socket = console.as_ref().map(|c| c.path().to_path_buf());
        let pid = self.runtime_of(&rec)?.exec(&rec.id, &process, stdio)?;
        let terminal = console.as_ref().map(|c| super::tty::Attached::start(c, tty.unwrap_or(false))).transpose()?;
        let code = runtime::wait(pid)?;
        if let Some(t) = terminal {
            t.finish();
        }
        Ok((code, None))
    }

    /// Send a signal to a running container's process.
    pub fn kill(&self, name: &str, signal: i32) -> Result<ContainerRecord> {
        let rec = self.get(name)?;
        match rec.pid.filter(|_| rec.state == ContainerState::Running) {
            Some(pid) => {
                // SAFETY: kill(2) with a pid and signal number; no memory involved.
                if unsafe { libc::kill(pid as i32, signal) } != 0 {
                    return Err(Error::Runtime(format!(
                        "signalling container {}: {}",
                        rec.name,
                        io::Error::last_os_error()
                    )));
                }
                Ok(rec)
            }
            None => Err(Error::InUse(format!("container {} is not running", rec.name))),
        }
    }

    /// Wait until a container has exited; its exit code.
    pub fn wait(&self, name: &str) -> Result<i64> {
        // Waiting only reads records: no store lock, so deletes elsewhere go on.
        self.engine.unlock();
        loop {
            let rec = self.get(name)?;
            if rec.state == ContainerState::Exited {
                return Ok(rec.exit_code.unwrap_or(0));
            }
            if rec.state == ContainerState::Created {
                // Docker's wait on a never-started container blocks; one that was started by us is racing.
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `stop`: SIGTERM, then SIGKILL after `timeout`.
    pub fn stop(&self, name: &str, timeout: Duration) -> Result<()> {
        let rec = self.get(name)?;
        if rec.state != ContainerState::Running {
            return Ok(());
        }
        let _ = self.kill(name, libc::SIGTERM);
        self.engine.unlock();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.get(&rec.id)?.state != ContainerState::Running {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.kill(name, libc::SIGKILL);
        self.wait(&rec.id).map(|_| ())
    }

    fn mount_source(&self, m: &crate::volume::MountSpec) -> PathBuf {
        match m.kind {
            crate::volume::MountKind::Volume => self.engine.volumes().data_dir(&m.source),
            _ => PathBuf::from(&m.source),
        }
    }

    /// `rm -v`: remove a container and its anonymous volumes (named ones stay).
    pub fn remove_with_volumes(&self, name: &str, force: bool) -> Result<String> {
        let rec = self.get(name)?;
        let cfg = super::run_config(&rec)?;
        let removed = self.remove(&rec.id, force)?;
        for m in cfg.mounts.iter().filter(|m| m.anonymous && m.kind == crate::volume::MountKind::Volume) {
            if self.engine.volumes().users(&m.source)?.is_empty() {
                self.engine.volumes().remove(&m.source)?;
            }
        }
        Ok(removed)
    }

    /// `rm`: remove a container and its layer; `force` kills a running one.
    pub fn remove(&self, name: &str, force: bool) -> Result<String> {
        let rec = self.get(name)?;
        if rec.state == ContainerState::Running {
            if !force {
                return Err(Error::InUse(format!(
                    "cannot remove container \"/{}\": container is running: stop the container before removing or force remove",
                    rec.name
                )));
            }
            let _ = self.kill(&rec.id, libc::SIGKILL);
            let deadline = Instant::now() + Duration::from_secs(10);
            while self.get(&rec.id)?.state == ContainerState::Running && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        self.release_container(&rec.id);
        // Record first: a directory without a record is swept; a record without its directory would be broken.
        self.engine.store.delete_container(&rec.id)?;
        crate::tree::remove(&self.container_dir(&rec.id))?;
        Ok(rec.name)
    }

    /// `ps`: containers, newest first (only running unless `all`).
    pub fn list(&self, all: bool) -> Result<Vec<ContainerSummary>> {
        let mut out = Vec::new();
        for rec in self.engine.store.containers()? {
            if rec.state == ContainerState::Incomplete {
                continue;
            }
            let rec = self.refresh(rec)?;
            if !all && rec.state != ContainerState::Running {
                continue;
            }
            let cfg = super::run_config(&rec)?;
            let image = self
                .engine
                .store
                .tags_of(&rec.image_id)?
                .first()
                .map(|t| crate::engine::display_tag(t))
                .unwrap_or_else(|| rec.image_id.short().to_string());
            out.push(ContainerSummary {
                id: rec.id,
                name: rec.name,
                image,
                image_id: rec.image_id,
                command: cfg.args.join(" "),
                state: rec.state,
                exit_code: rec.exit_code,
                created: rec.created,
                started: rec.started,
                finished: rec.finished,
                pid: rec.pid,
            });
        }
        Ok(out)
    }

    /// The log file of a container.
    pub fn log_path(&self, name: &str) -> Result<PathBuf> {
        let rec = self.get(name)?;
        Ok(self.container_dir(&rec.id).join("container.log"))
    }

    /// `inspect` of a container.
    pub fn inspect(&self, name: &str) -> Result<serde_json::Value> {
        let rec = self.get(name)?;
        let cfg = super::run_config(&rec)?;
        let dir = self.container_dir(&rec.id);
        Ok(serde_json::json!({
            "Id": rec.id,
            "Name": format!("/{}", rec.name),
            "Created": image::format_time(rec.created),
            "Path": cfg.args.first(),
            "Args": cfg.args.get(1..).unwrap_or_default(),
            "State": {
                "Status": rec.state,
                "Running": rec.state == ContainerState::Running,
                "Pid": rec.pid.unwrap_or(0),
                "ExitCode": rec.exit_code.unwrap_or(0),
                "StartedAt": rec.started.map(image::format_time),
                "FinishedAt": rec.finished.map(image::format_time),
            },
            "Image": rec.image_id.as_str(),
            "Config": {"Env": cfg.env, "Cmd": cfg.args, "WorkingDir": cfg.workdir, "User": cfg.user, "Hostname": cfg.hostname},
            "HostConfig": {"NetworkMode": cfg.network, "ReadonlyRootfs": cfg.read_only, "AutoRemove": cfg.auto_remove},
            "GraphDriver": {"Name": self.engine.driver().to_string(), "Data": {
                "UpperDir": dir.join("upper").display().to_string(),
                "MergedDir": dir.join("rootfs").display().to_string(),
                "LowerDir": self.engine.image_lowers(&rec.image_id)?.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(":"),
            }},
            "LogPath": dir.join("container.log").display().to_string(),
        }))
    }

    /// `diff`: what the container changed, as A/C/D lines.
    pub fn changes(&self, name: &str) -> Result<Vec<Change>> {
        let rec = self.get(name)?;
        Ok(self.changes_of(&rec)?.1)
    }

    /// A container's changes and the directory they are read from.
    fn changes_of(&self, rec: &ContainerRecord) -> Result<(PathBuf, Vec<Change>)> {
        let cfg = super::run_config(&rec)?;
        let targets: Vec<&str> = cfg.mounts.iter().map(|m| m.target.as_str()).collect();
        self.engine.layer_changes(&self.container_dir(&rec.id), &self.engine.image_lowers(&rec.image_id)?, &targets)
    }

    /// `commit`: the container's changes become one new layer on top of its
    /// image's layers (shared, not copied); returns the new image's ID.
    pub fn commit(
        &self,
        name: &str,
        reference: Option<&str>,
        message: Option<&str>,
        instructions: &[String],
    ) -> Result<Digest> {
        let rec = self.get(name)?;
        let tag = reference.map(Reference::parse).transpose()?;
        // Check the --change instructions before any work is done.
        let (mut probe, _) = self.engine.config_of(&rec.image_id)?;
        crate::dockerfile::metadata::apply_changes(&mut probe, instructions)?;
        let (source, changes) = self.changes_of(&rec)?;
        let base_layers = self.engine.store.image_layers(&rec.image_id)?;
        let layer =
            self.engine.layer_from_changes(&source, &changes, &base_layers, &format!("commit of {}", rec.name))?;
        let (mut config, _) = self.engine.config_of(&rec.image_id)?;
        crate::dockerfile::metadata::apply_changes(&mut config, instructions)?;
        let entry = serde_json::json!({"created": image::format_time(now()), "created_by": format!("strata commit {}", rec.name),
            "comment": message.unwrap_or_default()});
        let mut layers = base_layers;
        layers.push(layer);
        let tags: Vec<String> = tag.into_iter().map(|t| t.to_string()).collect();
        self.engine.store_image(config, &layers, Some(entry), &tags, now())
    }
}

/// Files and directories the runtime creates in the container layer only
/// as mount points (/proc, /dev, /sys, /etc/hostname, ...): not the
/// container's own changes, so `diff` and `commit` leave them out.
fn mount_point_artifact(kind: char, shown: &str, dir: &Path, driver: Driver, volumes: &[&str]) -> bool {
    const POINTS: [&str; 9] = [
        "/proc",
        "/dev",
        "/sys",
        "/dev/pts",
        "/dev/shm",
        "/dev/mqueue",
        "/etc/hostname",
        "/etc/hosts",
        "/etc/resolv.conf",
    ];
    if kind != 'A' || !(POINTS.contains(&shown) || volumes.contains(&shown)) {
        return false;
    }
    let src = match driver {
        Driver::Overlay => dir.join("upper"),
        Driver::Copy => dir.join("rootfs"),
    };
    let p = src.join(shown.trim_start_matches('/'));
    match fs::symlink_metadata(&p) {
        Ok(md) if md.is_dir() => fs::read_dir(&p).map(|mut d| d.next().is_none()).unwrap_or(false),
        Ok(md) => md.len() == 0,
        Err(_) => true,
    }
}

/// Duplicate this process's standard streams for an attached container.
pub fn inherit_stdio() -> Result<Stdio> {
    let dup = |fd: std::os::fd::BorrowedFd<'_>| -> Result<OwnedFd> { fd.try_clone_to_owned().at("standard stream") };
    Ok(Stdio {
        stdin: dup(io::stdin().as_fd())?,
        stdout: dup(io::stdout().as_fd())?,
        stderr: dup(io::stderr().as_fd())?,
        console_socket: None,
    })
}
