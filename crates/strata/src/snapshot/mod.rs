//! Snapshots: one directory per layer (`layers/<chain-id hex>/diff`), and
//! the read-only or writable views that stack them. Two backends behind
//! one small trait:
//!
//! - [`Overlay`]: a layer directory holds only that layer's changes in
//!   overlayfs form; the kernel stacks them as lowerdirs.
//! - [`Copy`]: a layer directory holds the whole merged tree (its parent's
//!   tree copied, then the layer applied); portable, costs full copies.
//!
//! Backends return [`Mount`]s as data; only [`mount`] performs them.

mod copy;
pub mod mount;
mod overlay;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

pub use copy::Copy;
pub use mount::Mount;
pub use overlay::Overlay;

use crate::error::{Error, Result};
use crate::layer::DiffFormat;

/// Which snapshot backend a store uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    /// Kernel overlayfs.
    Overlay,
    /// Full copies.
    Copy,
}

impl fmt::Display for Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Driver::Overlay => "overlay",
            Driver::Copy => "copy",
        })
    }
}

impl FromStr for Driver {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "overlay" | "overlay2" | "overlayfs" => Ok(Driver::Overlay),
            "copy" | "vfs" => Ok(Driver::Copy),
            _ => Err(Error::invalid(format!("unknown storage driver {s:?}: want overlay or copy"))),
        }
    }
}

/// A snapshot backend.
pub trait Snapshotter: Send + Sync {
    /// Which backend this is.
    fn driver(&self) -> Driver;

    /// The form a layer directory of this backend holds.
    fn format(&self) -> DiffFormat;

    /// Fill a new layer directory `dir` before its layer tar is applied.
    /// `parent` is the parent layer's directory.
    fn prepare(&self, dir: &Path, parent: Option<&Path>) -> Result<()>;

    /// Whether a layer's tar can be applied before its parent's is: true
    /// when layer directories are independent of each other.
    fn independent_layers(&self) -> bool {
        self.format() == DiffFormat::Overlay
    }

    /// The mounts that show the read-only merged tree of `layers` (layer
    /// directories, top first) at `target`.
    fn view(&self, layers: &[PathBuf], target: &Path) -> Result<Vec<Mount>>;
}

/// The backend for a driver.
pub fn for_driver(d: Driver, tmp: &Path) -> Box<dyn Snapshotter> {
    match d {
        Driver::Overlay => Box::new(Overlay::new(tmp)),
        Driver::Copy => Box::new(Copy),
    }
}

/// Whether overlayfs mounts here: try a real one in `tmp`.
pub fn overlay_works(tmp: &Path) -> bool {
    let Ok(dir) = crate::tmp::TempDir::new(tmp, "probe") else {
        return false;
    };
    let p = dir.path();
    for d in ["l1", "l2", "m"] {
        if std::fs::create_dir(p.join(d)).is_err() {
            return false;
        }
    }
    let m = Mount::overlay(vec![p.join("l1"), p.join("l2")], None, p.join("m"));
    let ok = mount::mount_all(std::slice::from_ref(&m)).is_ok();
    if ok {
        let _ = mount::unmount(&p.join("m"));
    }
    ok
}
