//! The core every service borrows: the store root and its paths, the
//! content store, the metadata database (one connection behind a mutex,
//! shared by all threads), the snapshot backend, and the store lock with
//! the sweep and garbage collection that only an exclusive holder runs.
//! Services (`images`, `layers`, `containers`, `volumes`, `builds`,
//! `registry`) hold a `&Core`; nothing here knows about them.
//!
//! ```text
//! <root>/strata.db            metadata (SQLite, WAL)
//! <root>/lock                 flock: shared while an operation reads or adds, exclusive to sweep and delete
//! <root>/blobs/sha256/<hex>   blobs: layer tars as received, manifests, configs
//! <root>/layers/<chain>/diff  one directory per layer (overlay form, or full trees with the copy driver)
//! <root>/layers/<chain>/flat  a flattened stack, only for images deeper than overlayfs allows
//! <root>/mounts/<image>       read-only image mounts (`image mount`)
//! <root>/tmp/                 in-flight writes; swept when something may have been left behind
//! ```

use std::collections::HashSet;
use std::fs::{self, File};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::content::ContentStore;
use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::image::{self, Reference};
use crate::snapshot::{self, mount, Driver, Snapshotter};
use crate::store::{ContainerRecord, ContainerState, ImageRecord, Store};
use crate::unpack::Unpacker;

/// Where the store is and how to open it.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Store root.
    pub root: PathBuf,
    /// Force a snapshot driver (must match the store's, once chosen).
    pub driver: Option<Driver>,
}

/// An open store: what every service works over.
pub struct Core {
    pub(crate) root: PathBuf,
    pub(crate) tmp: PathBuf,
    pub(crate) layers_dir: PathBuf,
    pub(crate) content: ContentStore,
    pub(crate) store: Store,
    pub(crate) snapshots: Box<dyn Snapshotter>,
    lock: File,
    /// Whether this process holds the lock exclusively (and has swept since).
    exclusive_held: AtomicBool,
    /// What services above the core leave behind and sweep themselves
    /// (network setups of containers that stopped unwatched): handed in by
    /// the engine, so the core imports no service.
    sweepers: &'static [Sweeper],
}

/// How old a layer must be before a command syncs it: the kernel's own
/// writeback (`vm.dirty_expire_centisecs`, 30 s by default) has usually
/// written it by then.
const SETTLE_SECS: i64 = 30;

/// A service's part of the sweep, run while the lock is held exclusively.
pub type Sweeper = fn(&Core) -> Result<()>;

fn flock(f: &File, op: rustix::fs::FlockOperation) -> io::Result<()> {
    rustix::fs::flock(f.as_fd(), op).map_err(io::Error::from)
}

impl Core {
    /// Open (creating) a store.
    pub fn open(opts: EngineOptions, sweepers: &'static [Sweeper]) -> Result<Self> {
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
        crate::reserve::balance(&root, &tmp)?;
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
        let core = Core {
            layers_dir: root.join("layers"),
            snapshots: snapshot::for_driver(driver, &tmp),
            root,
            tmp,
            content,
            store,
            lock,
            exclusive_held: AtomicBool::new(false),
            sweepers,
        };
        // Alone on the store and something may have been left behind: sweep now.
        // (Not on every command: a sweep walks every layer and blob.)
        if flock(&core.lock, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_ok() && core.needs_sweep()? {
            core.sweep()?;
        }
        flock(&core.lock, rustix::fs::FlockOperation::LockShared).at(&lock_path)?;
        core.settle_layers()?;
        Ok(core)
    }

    /// Layers of this boot made long enough ago that the kernel has most
    /// likely written them back: one syncfs makes sure, cheaply by then,
    /// and their marks go. Layer trees are not synced as they are made (a
    /// sync before marking ready measured +0.1 to 0.2 s on a 0.6 s load of
    /// 150 MB here);
    /// what a power loss may have taken is verified after the reboot
    /// ([`crate::check::verify_after_reboot`]).
    fn settle_layers(&self) -> Result<()> {
        let settled = self.store.unsynced_before(crate::store::now() - SETTLE_SECS)?;
        if settled.is_empty() {
            return Ok(());
        }
        rustix::fs::syncfs(&self.lock).at(&self.root)?;
        self.store.mark_synced(&settled)
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
        if stale_tmp || self.store.needs_sweep()? {
            return Ok(true);
        }
        let containers = self.store.containers()?;
        Ok(!self.orphan_dirs(&containers)?.is_empty() || !self.stale_rootfs_mounts(&containers).is_empty())
    }

    /// Mounts in the directory of a container that is not running: a start
    /// killed after mounting its root filesystem, before its process ran.
    fn stale_rootfs_mounts(&self, containers: &[ContainerRecord]) -> Vec<PathBuf> {
        let dir = self.root.join("containers");
        let running: HashSet<&str> =
            containers.iter().filter(|c| c.state == ContainerState::Running).map(|c| c.id.as_str()).collect();
        mount::mounts_below(&dir)
            .into_iter()
            .filter(|m| {
                let id = m.strip_prefix(&dir).ok().and_then(|r| r.components().next());
                !id.is_some_and(|id| running.contains(id.as_os_str().to_string_lossy().as_ref()))
            })
            .collect()
    }

    /// Container and volume directories without a record: what a command
    /// killed while removing (record first) or making a volume left.
    fn orphan_dirs(&self, containers: &[ContainerRecord]) -> Result<Vec<PathBuf>> {
        let containers: HashSet<String> = containers.iter().map(|c| c.id.clone()).collect();
        let volumes: HashSet<String> = self.store.volumes()?.into_iter().map(|v| v.name).collect();
        let mut out = Vec::new();
        for (dir, known) in [("containers", containers), ("volumes", volumes)] {
            let dir = self.root.join(dir);
            for e in fs::read_dir(&dir).at(&dir)? {
                let e = e.at(&dir)?;
                if !known.contains(e.file_name().to_string_lossy().as_ref()) {
                    out.push(e.path());
                }
            }
        }
        Ok(out)
    }

    /// Remove what crashed or failed commands left: temp files, incomplete
    /// layers, layer directories without a ready record, and layers and
    /// blobs no image references. Only called while holding the lock exclusively.
    fn sweep(&self) -> Result<()> {
        self.store.drop_dead_leases()?;
        for s in self.sweepers {
            s(self)?;
        }
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
        let containers = self.store.containers()?;
        for m in self.stale_rootfs_mounts(&containers) {
            mount::unmount(&m)?;
        }
        for dir in self.orphan_dirs(&containers)? {
            tracing::debug!(dir = %dir.display(), "removing a directory without a record");
            crate::tree::remove(&dir)?;
        }
        self.collect_garbage()?;
        Ok(())
    }

    /// An image's layers, bottom first, to stack and use; refused for an
    /// image marked damaged (a layer of it was lost), saying what to do.
    pub(crate) fn usable_layers(&self, id: &Digest) -> Result<Vec<crate::store::LayerRecord>> {
        if let Some(reason) = self.store.damage(id)? {
            return Err(Error::Corrupt(format!(
                "image {} is damaged ({reason}): pull or load it again, or remove it",
                id.short()
            )));
        }
        self.store.image_layers(id)
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
                // Unready first: a layer half removed is then an abandoned one, which the sweep finishes.
                self.store.unready_layer(&chain)?;
                crate::fault::failpoint!("gc-delete");
                crate::tree::remove(&dir)?;
                self.store.delete_layer(&chain)?;
                deleted.push(chain);
            }
        }
        let referenced = self.referenced_blobs(&self.store.layers()?, &self.store.images()?)?;
        for b in self.content.list()? {
            if !referenced.contains(&b) {
                freed += self.content.size(&b).unwrap_or(0);
                self.content.remove(&b)?;
            }
        }
        Ok((deleted, freed))
    }

    /// The blobs a collection keeps while `layers` and `images` stay: each
    /// layer's blob, each image's config and manifest and the blobs its
    /// manifest names.
    pub(crate) fn referenced_blobs(
        &self,
        layers: &[crate::store::LayerRecord],
        images: &[crate::store::ImageRecord],
    ) -> Result<HashSet<Digest>> {
        let mut referenced: HashSet<Digest> = layers.iter().map(|l| l.blob.clone()).collect();
        for img in images {
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
        Ok(referenced)
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

    /// Resolve a name (tag, full or short ID) to an image ID.
    pub fn resolve_image(&self, name: &str) -> Result<Digest> {
        if let Ok(r) = Reference::parse(name) {
            match &r.digest {
                None => {
                    if let Some(id) = self.store.tag(&r.to_string())? {
                        return Ok(id);
                    }
                }
                // NAME@sha256:...: the image whose manifest that is, if this repository is known to hold it.
                Some(d) => {
                    let manifest = d.clone();
                    let known = self.store.all_blob_sources(&manifest)?;
                    if known.iter().any(|(reg, repo)| *reg == r.registry && *repo == r.repository) {
                        if let Some(id) = self.store.images_by_manifest(&manifest)?.into_iter().next() {
                            return Ok(id);
                        }
                    }
                    return Err(Error::not_found("image", name));
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

    pub(crate) fn config_of(&self, id: &Digest) -> Result<(serde_json::Value, oci_spec::image::ImageConfiguration)> {
        let bytes = self.content.read(id)?;
        let v: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt(format!("config {id}: {e}")))?;
        Ok((v, image::parse_config(&bytes, id.as_str())?))
    }
}
