//! Layer tars: applying an OCI layer (uncompressed, gzip or zstd) to a
//! directory, and producing a layer tar from a directory of changes. Pure
//! tar-and-filesystem logic over paths and readers: it knows nothing of
//! images, digests or the store.
//!
//! Whiteouts come in two shapes. In a tar they are `.wh.NAME` files and
//! `.wh..wh..opq` markers (OCI image spec, "Representing Changes"). In an
//! overlay diff directory they are what the kernel's overlayfs understands:
//! a character device 0/0 named NAME, and the `trusted.overlay.opaque=y`
//! xattr on a directory (`user.overlay.opaque` in a user namespace, where
//! overlayfs is mounted with `userxattr`). [`DiffFormat`] says which shape a directory holds.

mod apply;
pub mod changes;
mod compression;
pub mod split;
mod write;

pub use apply::{apply, ApplyOptions, ApplyStats};
pub use compression::{decompress, Compression};
pub use write::{source_date_epoch, write_diff, write_diff_split, WriteOptions};

/// Prefix of a whiteout entry in a layer tar.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// Name of the opaque-directory marker in a layer tar.
pub const OPAQUE_MARKER: &str = ".wh..wh..opq";
// An overlay-form directory's own markers: defined with the tree
// operations that merge such directories (tree sits below layer).
pub use crate::tree::{is_whiteout_device, overlay_opaque_xattr};

/// How a directory records a layer's changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiffFormat {
    /// Only this layer's changes, whiteouts as overlayfs expects them
    /// (char device 0/0, opaque xattr); lower layers are stacked by the kernel.
    Overlay,
    /// The whole merged tree: whiteouts are applied by deleting.
    Merged,
}
