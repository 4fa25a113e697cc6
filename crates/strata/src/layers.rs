//! The layers service: a snapshot's lowers (an image's layer directories),
//! what a writable layer changed over them (`diff`), and those changes made
//! into one new layer (build steps, `commit`). The runtime mount points a
//! container or step had (the init lower's `/proc`, `/etc/hosts`, volume
//! targets) are not changes.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use crate::core::Core;
use crate::digest::{chain_ids, Digest, HashingReader};
use crate::error::{Error, IoContext, Result};
use crate::layer::changes::{self, Change};
use crate::layer::{write_diff, WriteOptions};
use crate::snapshot::Driver;
use crate::store::LayerRecord;
use crate::unpack::{layer_dir, LayerSpec};

/// The layers service.
pub struct Layers<'c> {
    core: &'c Core,
}

impl<'c> Layers<'c> {
    /// The service over `core`.
    pub fn new(core: &'c Core) -> Self {
        Layers { core }
    }

    /// The layer directories of an image, top first (a snapshot's lowers).
    pub fn lowers(&self, image_id: &Digest) -> Result<Vec<PathBuf>> {
        Ok(self
            .core
            .usable_layers(image_id)?
            .iter()
            .rev()
            .map(|l| layer_dir(&self.core.layers_dir, &l.chain_id))
            .collect())
    }

    pub(crate) fn empty_dir(&self) -> Result<PathBuf> {
        let p = self.core.root.join("layers-empty");
        fs::create_dir_all(&p).at(&p)?;
        Ok(p)
    }

    /// What a container layer at `dir` (its `upper/` on overlay, its full
    /// `rootfs/` on the copy driver) changed over `lowers` (top first),
    /// leaving out runtime mount points and what lies under the mounts at
    /// `targets`; and the directory the changes are read from.
    pub fn changes(&self, dir: &Path, lowers: &[PathBuf], targets: &[&str]) -> Result<(PathBuf, Vec<Change>)> {
        let (source, changes) = match self.core.driver() {
            Driver::Overlay => (dir.join("upper"), changes::overlay_changes(&dir.join("upper"), lowers)?),
            Driver::Copy => {
                let base = match lowers.first() {
                    Some(top) => top.clone(),
                    None => self.empty_dir()?,
                };
                (dir.join("rootfs"), changes::tree_changes(&dir.join("rootfs"), &base)?)
            }
        };
        let mut changes: Vec<Change> = changes
            .into_iter()
            .filter(|(k, p)| !mount_point_artifact(*k, p, dir, self.core.driver(), targets))
            .filter(|(_, p)| !targets.iter().any(|t| p.starts_with(&format!("{t}/"))))
            .collect();
        drop_mount_parents(&mut changes, targets);
        Ok((source, changes))
    }

    /// Turn `changes` found in `source` (an overlay upper directory, or a
    /// full tree for the copy driver) into one layer on top of `below`.
    pub fn from_changes(
        &self,
        source: &Path,
        changes: &[Change],
        below: &[LayerRecord],
        label: &str,
    ) -> Result<LayerRecord> {
        let work = crate::tmp::TempDir::new(&self.core.tmp, "commit")?;
        let diff_dir = work.path().join("changes");
        fs::create_dir(&diff_dir).at(&diff_dir)?;
        changes::changes_to_overlay_dir(source, changes, &diff_dir)?;
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
        self.core.unpacker().ensure_layer(&self.core.store, &spec, &move || Ok(Box::new(File::open(&tp).at(&tp)?)))
    }
}

/// Directories added only to hold a mount point (a target's parents the
/// image lacked, made by the runtime on the copy driver) with nothing else
/// added below them: not the container's own changes either. As BuildKit
/// since v0.11 (moby/buildkit#3307, #3314), whose earlier versions left
/// such stubs in RUN layers.
fn drop_mount_parents(changes: &mut Vec<Change>, targets: &[&str]) {
    let mut stubs: Vec<String> = changes
        .iter()
        .filter(|(k, p)| *k == 'A' && targets.iter().any(|t| t.starts_with(&format!("{p}/"))))
        .map(|(_, p)| p.clone())
        .collect();
    // Deepest first: a parent goes only when what was below it went.
    stubs.sort_by_key(|p| std::cmp::Reverse(p.matches('/').count()));
    for stub in stubs {
        let below = format!("{stub}/");
        if !changes.iter().any(|(_, p)| p.starts_with(&below)) {
            changes.retain(|(_, p)| p != &stub);
        }
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
