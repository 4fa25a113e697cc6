//! The engine: the facade a front end (the CLI today) calls. It opens the
//! [`Core`] and hands out the services over it; what spans services
//! (`system df`, `system prune`, `container prune`) is composed here, so
//! no service needs another's whole API and a second front end stays thin.

use std::path::Path;

use serde::Serialize;

use crate::build::Builds;
use crate::container::Containers;
use crate::core::Core;
pub use crate::core::EngineOptions;
use crate::digest::Digest;
use crate::error::Result;
pub use crate::images::{HistoryRow, ImageSummary, Images, Loaded, PruneReport, Removal};
use crate::layers::Layers;
use crate::registry::Registries;
use crate::snapshot::Driver;
use crate::store::ContainerState;
use crate::volume::Volumes;

/// When `run` and `create` pull their image (`--pull`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicy {
    /// Pull when the store lacks it (Docker's default).
    Missing,
    /// Pull every time (only what changed is fetched).
    Always,
    /// Never pull.
    Never,
}

impl std::str::FromStr for PullPolicy {
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "missing" => Ok(PullPolicy::Missing),
            "always" => Ok(PullPolicy::Always),
            "never" => Ok(PullPolicy::Never),
            other => Err(crate::Error::invalid(format!("invalid --pull {other:?}: want missing, always or never"))),
        }
    }
}

/// An open store and its services.
pub struct Engine {
    core: Core,
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
    /// What removing every image no container uses would free: their
    /// unique layers, plus layers no image uses (`system df`'s RECLAIMABLE).
    pub images_reclaimable: u64,
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

impl Engine {
    /// Open (creating) a store; sweeps it first if something may have been left behind.
    pub fn open(opts: EngineOptions) -> Result<Self> {
        Ok(Engine {
            core: Core::open(
                opts,
                &[crate::container::sweep_killed_steps, crate::network::sweep, crate::check::verify_after_reboot],
            )?,
        })
    }

    /// The store root.
    pub fn root(&self) -> &Path {
        self.core.root()
    }

    /// The snapshot driver in use.
    pub fn driver(&self) -> Driver {
        self.core.driver()
    }

    /// Stop holding the store lock (a front end about to wait on something).
    pub fn unlock(&self) {
        self.core.unlock()
    }

    /// Resolve a name (tag, full or short ID) to an image ID.
    pub fn resolve_image(&self, name: &str) -> Result<Digest> {
        self.core.resolve_image(name)
    }

    /// The image `run` or `create` names: from the store, or pulled as
    /// `policy` says (`missing` tells `announce` first, as Docker prints
    /// "Unable to find image ... locally").
    pub fn image_for_run(
        &self,
        name: &str,
        policy: PullPolicy,
        opts: &crate::registry::PullOptions,
        progress: std::sync::Arc<dyn crate::registry::Progress>,
        announce: &dyn Fn(&str),
    ) -> Result<Digest> {
        let local = self.core.resolve_image(name);
        match (policy, local) {
            (PullPolicy::Never, r) => r.map_err(|e| match e {
                crate::Error::NotFound { .. } => crate::Error::invalid(format!(
                    "image {name} is not in the store, and --pull never forbids pulling it"
                )),
                e => e,
            }),
            (PullPolicy::Missing, Ok(id)) => Ok(id),
            (PullPolicy::Missing, Err(crate::Error::NotFound { .. })) => {
                announce(name);
                self.registries().pull(name, opts, progress)
            }
            (PullPolicy::Missing, Err(e)) => Err(e),
            (PullPolicy::Always, _) => self.registries().pull(name, opts, progress),
        }
    }

    /// The images service.
    pub fn images(&self) -> Images<'_> {
        Images::new(&self.core)
    }

    /// The store check (`system check`).
    pub fn checker(&self) -> crate::check::Checker<'_> {
        crate::check::Checker::new(&self.core)
    }

    /// The layer explorer (`image layers`).
    pub fn explorer(&self) -> crate::explore::Explorer<'_> {
        crate::explore::Explorer::new(&self.core)
    }

    /// The layers service.
    pub fn layers(&self) -> Layers<'_> {
        Layers::new(&self.core)
    }

    /// The containers service.
    pub fn containers(&self) -> Containers<'_> {
        Containers::new(&self.core)
    }

    /// The volumes service.
    pub fn volumes(&self) -> Volumes<'_> {
        crate::container::volumes(&self.core)
    }

    /// The networks service.
    pub fn networks(&self) -> crate::network::Networks<'_> {
        crate::network::Networks::new(&self.core)
    }

    /// The builds service.
    pub fn builds(&self) -> Builds<'_> {
        Builds::new(&self.core)
    }

    /// The registries service (pull, push, login).
    pub fn registries(&self) -> Registries<'_> {
        Registries::new(&self.core)
    }

    /// Events recorded after sequence number `after`, oldest first.
    pub fn events_since(&self, after: i64) -> Result<Vec<crate::events::Event>> {
        crate::events::since(&self.core, after)
    }

    /// `info`: what this engine is and holds, in Docker's field names.
    pub fn info(&self) -> Result<serde_json::Value> {
        let containers = self.containers().list(true)?;
        let running = containers.iter().filter(|c| c.state == ContainerState::Running).count();
        let exited = containers.len() - running;
        let uname = rustix::system::uname();
        let cgroup_version = if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() { "2" } else { "1" };
        let mem_total = crate::container::stats::host_memory();
        let os = std::fs::read_to_string("/etc/os-release")
            .ok()
            .and_then(|t| {
                t.lines().find_map(|l| l.strip_prefix("PRETTY_NAME=").map(|v| v.trim_matches('"').to_string()))
            })
            .unwrap_or_default();
        let rootless = crate::rootless::current();
        Ok(serde_json::json!({
            "ID": "",
            "Containers": containers.len(),
            "ContainersRunning": running,
            "ContainersPaused": 0,
            "ContainersStopped": exited,
            "Images": self.images().list()?.len(),
            "Driver": self.driver().to_string(),
            "DockerRootDir": self.root().display().to_string(),
            "CgroupVersion": cgroup_version,
            "KernelVersion": uname.release().to_string_lossy(),
            "OperatingSystem": os,
            "OSType": "linux",
            "Architecture": uname.machine().to_string_lossy(),
            "NCPU": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            "MemTotal": mem_total,
            "Runtimes": {"strata": {"path": "built-in (libcontainer)"}, "runc": {"path": "runc"}, "crun": {"path": "crun"}},
            "DefaultRuntime": "strata",
            "ServerVersion": env!("CARGO_PKG_VERSION"),
            "Name": uname.nodename().to_string_lossy(),
            "Rootless": rootless.is_some(),
            "SecurityOptions": if rootless.is_some() { vec!["name=rootless"] } else { Vec::new() },
            "IDMappings": rootless.map(|r| serde_json::json!({"UIDMap": r.uid_map, "GIDMap": r.gid_map})),
            "RootlessUnavailable": rootless.map(|r| r.unavailable()).unwrap_or_default(),
        }))
    }

    /// `system df`.
    pub fn disk_usage(&self) -> Result<DiskUsage> {
        let counts = self.core.store.layer_use_counts()?;
        let all_layers = self.core.store.layers()?;
        let mut images = Vec::new();
        for img in self.core.store.images()? {
            let layers = self.core.store.image_layers(&img.id)?;
            let (mut shared, mut unique) = (0, 0);
            for l in &layers {
                if counts.get(&l.chain_id).copied().unwrap_or(0) > 1 {
                    shared += l.size;
                } else {
                    unique += l.size;
                }
            }
            images.push(ImageUsage {
                tags: self.core.store.tags_of(&img.id)?,
                containers: self.core.store.containers_using(&img.id)?.len() as u64,
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
        let blobs_size = self.core.content.list()?.iter().map(|b| self.core.content.size(b).unwrap_or(0)).sum();
        let (containers, volumes) = (self.core.store.containers()?, self.core.store.volumes()?);
        Ok(DiskUsage {
            layers: all_layers.len() as u64,
            layers_in_use: all_layers.iter().filter(|l| counts.contains_key(&l.chain_id)).count() as u64,
            layers_size: all_layers.iter().map(|l| l.size).sum(),
            shared_size,
            unique_size,
            unused_size,
            images_reclaimable: images.iter().filter(|i| i.containers == 0).map(|i| i.unique_size).sum::<u64>()
                + unused_size,
            blobs_size,
            layers_disk: crate::tree::usage(&self.core.layers_dir)?,
            images,
            containers: containers.len() as u64,
            containers_running: containers.iter().filter(|c| c.state == ContainerState::Running).count() as u64,
            containers_size: crate::tree::usage(&self.core.root.join("containers"))?,
            volumes: volumes.len() as u64,
            volumes_active: {
                let mut n = 0;
                for v in &volumes {
                    n += u64::from(!self.volumes().users(&v.name)?.is_empty());
                }
                n
            },
            volumes_size: crate::tree::usage(&self.core.root.join("volumes"))?,
        })
    }

    /// `system prune`: with nothing but images in the store yet, dangling
    /// (or with `all`, unused) images and whatever only they held.
    /// `system prune`: stopped containers, then the images nothing uses any
    /// more (dangling ones, or with `all` every image no container uses),
    /// then the build cache and what only it kept.
    pub fn system_prune(&self, all: bool, filters: &crate::filter::Filters) -> Result<PruneReport> {
        self.core.exclusive()?;
        let (containers, container_bytes) = self.prune_containers(filters)?;
        let networks = self.networks().prune()?;
        let mut report = self.images().prune(all, filters)?;
        report.containers = containers;
        report.networks = networks;
        report.reclaimed += container_bytes + self.builds().prune_cache()?.1;
        Ok(report)
    }

    /// `container prune`: remove every container that is not running;
    /// returns their IDs and the bytes their layers held.
    pub fn prune_containers(&self, filters: &crate::filter::Filters) -> Result<(Vec<String>, u64)> {
        let mut removed = Vec::new();
        let mut bytes = 0;
        for c in self.containers().list(true)? {
            if c.state == ContainerState::Running
                || !filters.before_until(c.created)?
                || !filters.any("label", |l| crate::filter::label_matches(&c.labels, l))
            {
                continue;
            }
            bytes += crate::tree::usage(&self.core.root.join("containers").join(&c.id)).unwrap_or(0);
            self.containers().remove(&c.id, false)?;
            removed.push(c.id);
        }
        Ok((removed, bytes))
    }
}
