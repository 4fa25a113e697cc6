//! The overlay backend: each layer directory holds only its own changes in
//! overlayfs form; views stack them as lowerdirs.
//!
//! overlayfs stacks at most 500 lower layers (OVL_MAX_STACK). A deeper
//! image is shown by flattening its bottom layers once into a merged tree
//! kept beside the layer (`layers/<id>/flat`, built in tmp/ and renamed in),
//! which then stands in for all of them as one lowerdir.

use std::path::{Path, PathBuf};

use super::{Driver, Mount, Snapshotter};
use crate::error::{IoContext, Result};
use crate::layer::DiffFormat;

/// The kernel's limit on stacked lower layers.
pub const MAX_LOWERS: usize = 500;

/// overlayfs snapshots.
#[derive(Debug, Clone)]
pub struct Overlay {
    tmp: PathBuf,
    max_lowers: usize,
}

impl Overlay {
    /// A backend whose temp work goes under `tmp`.
    pub fn new(tmp: &Path) -> Self {
        Overlay { tmp: tmp.to_path_buf(), max_lowers: MAX_LOWERS }
    }

    /// A backend that stacks at most `max_lowers` layers before flattening
    /// (the kernel's limit is [`MAX_LOWERS`]; tests use less).
    pub fn with_max_lowers(tmp: &Path, max_lowers: usize) -> Self {
        Overlay { tmp: tmp.to_path_buf(), max_lowers }
    }

    /// Lower directories for a stack (top first), flattening below the limit.
    /// `reserve` slots are kept free for other lowers the caller adds.
    pub fn lowers(&self, layers: &[PathBuf], reserve: usize) -> Result<Vec<PathBuf>> {
        let limit = self.max_lowers.saturating_sub(reserve).max(2);
        if layers.len() <= limit {
            return Ok(layers.to_vec());
        }
        // Keep the top `limit - 1` layers as they are; merge the rest into one.
        let keep = limit - 1;
        let bottom = &layers[keep..];
        let flat = self.flat(bottom)?;
        let mut out = layers[..keep].to_vec();
        out.push(flat);
        Ok(out)
    }

    /// The flattened tree of `layers` (top first), built once and kept.
    fn flat(&self, layers: &[PathBuf]) -> Result<PathBuf> {
        let top = &layers[0];
        let flat = top.parent().expect("layer dir has a parent").join("flat");
        if flat.is_dir() {
            return Ok(flat);
        }
        let work = crate::tmp::TempDir::new(&self.tmp, "flat")?;
        for l in layers.iter().rev() {
            crate::tree::merge_overlay_diff(l, work.path())?;
        }
        match std::fs::rename(work.path(), &flat) {
            Ok(()) => {
                work.keep();
                Ok(flat)
            }
            // Another process flattened the same stack first.
            Err(_) if flat.is_dir() => Ok(flat),
            Err(e) => Err(e).at(&flat),
        }
    }
}

impl Snapshotter for Overlay {
    fn driver(&self) -> Driver {
        Driver::Overlay
    }

    fn format(&self) -> DiffFormat {
        DiffFormat::Overlay
    }

    fn prepare(&self, _dir: &Path, _parent: Option<&Path>) -> Result<()> {
        Ok(())
    }

    fn view(&self, layers: &[PathBuf], target: &Path) -> Result<Vec<Mount>> {
        if layers.len() == 1 {
            return Ok(vec![Mount::Bind { source: layers[0].clone(), target: target.to_path_buf(), readonly: true }]);
        }
        Ok(vec![Mount::overlay(self.lowers(layers, 0)?, None, target.to_path_buf())])
    }
}
