//! The copy backend: each layer directory is the whole merged tree. A new
//! layer starts as a full copy of its parent; views are read-only binds.

use std::path::{Path, PathBuf};

use super::{Driver, Mount, Snapshotter};
use crate::error::Result;
use crate::layer::DiffFormat;

/// Full-copy snapshots.
#[derive(Debug, Clone, Copy, Default)]
pub struct Copy;

impl Snapshotter for Copy {
    fn driver(&self) -> Driver {
        Driver::Copy
    }

    fn format(&self) -> DiffFormat {
        DiffFormat::Merged
    }

    fn prepare(&self, dir: &Path, parent: Option<&Path>) -> Result<()> {
        match parent {
            Some(p) => crate::tree::copy_tree(p, dir),
            None => Ok(()),
        }
    }

    fn view(&self, layers: &[PathBuf], target: &Path) -> Result<Vec<Mount>> {
        let top = layers.first().ok_or_else(|| crate::error::Error::invalid("view of no layers"))?;
        Ok(vec![Mount::Bind { source: top.clone(), target: target.to_path_buf(), readonly: true }])
    }
}
