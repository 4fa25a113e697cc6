//! A build step's file systems: the writable [`Snapshot`] a RUN, COPY or
//! ADD works in (overlay: an `init` lower holding mount points, the stage's
//! layers, an upper that collects the step's changes; copy driver: a full
//! copy), committed as exactly one layer; and the read-only [`View`] of
//! another stage or image that `--from` reads.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::State;
use crate::core::Core;
use crate::digest::Digest;
use crate::error::{IoContext, Result};
use crate::layers::Layers;
use crate::snapshot::{mount, Driver, Mount};
use crate::store::LayerRecord;
use crate::tmp::TempDir;

/// A writable snapshot of a stage's layers for one step, under tmp/:
/// overlay (an `init` lower holding mount points, then the layers, and an
/// upper that collects the step's changes) or, for the copy driver, a full
/// copy. Unmounted and removed when dropped.
pub(super) struct Snapshot {
    pub(super) dir: TempDir,
    mounted: bool,
    driver: Driver,
    lowers: Vec<PathBuf>,
}

impl Snapshot {
    pub(super) fn new(core: &Core, state: &State, mount_points: &[(String, bool)]) -> Result<Self> {
        let dir = TempDir::new(&core.tmp, "build")?;
        let rootfs = dir.path().join("rootfs");
        fs::create_dir(&rootfs).at(&rootfs)?;
        let lowers = state.lowers(&core.layers_dir);
        let mut snap = Snapshot { dir, mounted: false, driver: core.driver(), lowers };
        match snap.driver {
            Driver::Overlay => {
                let d = snap.dir.path().to_path_buf();
                for sub in ["upper", "work", "init"] {
                    fs::create_dir(d.join(sub)).at(d.join(sub))?;
                }
                let init = d.join("init");
                let points: Vec<(&str, bool)> = mount_points.iter().map(|(t, f)| (t.as_str(), *f)).collect();
                crate::layer::changes::make_init_dir(&init, &points, &snap.lowers)?;
                let mut lowers = vec![init];
                if snap.lowers.is_empty() {
                    lowers.push(Layers::new(core).empty_dir()?);
                } else {
                    lowers.extend(crate::snapshot::Overlay::new(&core.tmp).lowers(&snap.lowers, 1)?);
                }
                mount::mount_all(&[Mount::overlay(lowers, Some((d.join("upper"), d.join("work"))), rootfs)])?;
                snap.mounted = true;
            }
            Driver::Copy => {
                if let Some(top) = snap.lowers.first() {
                    crate::tree::copy_tree(top, &rootfs)?;
                }
            }
        }
        Ok(snap)
    }

    pub(super) fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    fn unmount(&mut self) -> Result<()> {
        if self.mounted {
            mount::unmount(&self.rootfs())?;
            self.mounted = false;
        }
        Ok(())
    }

    /// The step's changes as one new layer on `state`'s layers. A RUN's
    /// (`runtime_dirs`) also holds /dev, /proc and /sys, empty, when the
    /// stage lacked them: as BuildKit, whose RUN leaves the runtime's mount
    /// points in the layer (strata's overlay keeps them in the `init` lower,
    /// so they are added here on either driver).
    pub(super) fn commit(
        mut self,
        core: &Core,
        state: &State,
        mount_targets: &[&str],
        runtime_dirs: bool,
        label: &str,
    ) -> Result<LayerRecord> {
        crate::fault::failpoint!("build-step");
        self.unmount()?;
        let mut added = Vec::new();
        if runtime_dirs {
            let tree = self.dir.path().join(match self.driver {
                Driver::Overlay => "upper",
                Driver::Copy => "rootfs",
            });
            for d in RUNTIME_DIRS {
                if crate::layer::changes::lower_entry(&self.lowers, Path::new(d))?.is_some() {
                    continue;
                }
                let p = tree.join(d);
                match fs::symlink_metadata(&p) {
                    Ok(md) if md.is_dir() => {}
                    // Not a mount point left by the runtime: the step's own doing, kept as it is.
                    Ok(_) => continue,
                    Err(_) => fs::create_dir(&p).at(&p)?,
                }
                fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).at(&p)?;
                added.push(('A', format!("/{d}")));
            }
        }
        if self.driver == Driver::Overlay && mount_targets.is_empty() {
            // The upper directory holds exactly the step's changes, in the layer
            // directories' own form: it becomes the layer as it is, nothing copied.
            let work = TempDir::new(&core.tmp, "layer")?;
            let upper = self.dir.path().join("upper");
            fs::rename(&upper, work.path().join("diff")).at(&upper)?;
            let lowers: Vec<Digest> = state.layers.iter().rev().map(|l| l.chain_id.clone()).collect();
            return core.unpacker().install_tree(&core.store, work, &lowers, &crate::layer::WriteOptions::from_env());
        }
        let (source, mut changes) = Layers::new(core).changes(self.dir.path(), &self.lowers, mount_targets)?;
        for a in added {
            if !changes.contains(&a) {
                changes.push(a);
            }
        }
        Layers::new(core).from_changes(&source, &changes, &state.layers, label)
    }
}

/// The runtime's mount points a RUN's layer keeps when the stage lacks them.
const RUNTIME_DIRS: [&str; 3] = ["dev", "proc", "sys"];

impl Drop for Snapshot {
    fn drop(&mut self) {
        let _ = self.unmount();
    }
}

/// A read-only view of another stage's or an image's root, for COPY --from
/// and RUN --mount from=.
pub(super) struct View {
    pub(super) target: PathBuf,
    pub(super) _dir: TempDir,
    pub(super) mounted: bool,
}

impl View {
    /// A directory as it is (a `--build-context`): nothing mounted.
    pub(super) fn of_dir(core: &Core, dir: &std::path::Path) -> Result<View> {
        Ok(View { target: dir.to_path_buf(), _dir: TempDir::new(&core.tmp, "build-from")?, mounted: false })
    }

    /// The merged, read-only root of `layers` (bottom first), under tmp/.
    pub(super) fn of(core: &Core, layers: &[LayerRecord]) -> Result<View> {
        // A RUN holds no store lock while it runs: what it may mount is leased.
        let chains: Vec<Digest> = layers.iter().map(|l| l.chain_id.clone()).collect();
        core.store.lease_layers(&chains)?;
        let dir = TempDir::new(&core.tmp, "build-from")?;
        let target = dir.path().join("root");
        fs::create_dir(&target).at(&target)?;
        let dirs: Vec<PathBuf> =
            layers.iter().rev().map(|l| crate::unpack::layer_dir(&core.layers_dir, &l.chain_id)).collect();
        if dirs.is_empty() {
            return Ok(View { target, _dir: dir, mounted: false });
        }
        let mounts = core.snapshots.view(&dirs, &target)?;
        mount::mount_all(&mounts)?;
        Ok(View { target, _dir: dir, mounted: true })
    }
}

impl Drop for View {
    fn drop(&mut self) {
        if self.mounted {
            let _ = mount::unmount(&self.target);
        }
    }
}
