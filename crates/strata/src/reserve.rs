//! The store's space reserve: a small file of real blocks kept in the store
//! root, given back to the filesystem when it is full, so that the
//! commands that free space (rm, rmi, prune, volume rm, `system check
//! --repair`) and those that only read still open the metadata database,
//! whose WAL and shared-memory files need a few pages even to delete, and
//! whose first write on a full disk is otherwise "disk I/O error" for every
//! command. Made again by the first command that finds room for it.
//!
//! Written by hand: it is a file and a statvfs, no crate does less.

use std::fs;
use std::io::Write;
use std::path::Path;

use crate::error::{IoContext, Result};

/// The reserve's size: the database's pages for a removal, many times over.
pub const SIZE: u64 = 4 << 20;

const NAME: &str = "space-reserve";

/// Bytes free on the filesystem holding `dir`, as this user may use them.
pub fn free_bytes(dir: &Path) -> Result<u64> {
    let st = rustix::fs::statvfs(dir).at(dir)?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

/// Before the store is used: give the reserve back if the filesystem is
/// (nearly) full, or make it if it is missing and there is ample room.
/// Returns true when it was given back.
pub fn balance(root: &Path, tmp: &Path) -> Result<bool> {
    let path = root.join(NAME);
    let free = free_bytes(root)?;
    let present = path.exists();
    if present && free < SIZE {
        fs::remove_file(&path).at(&path)?;
        tracing::warn!(
            "the filesystem of {} is full: gave back strata's {} MiB reserve so that rm, rmi and prune can free space",
            root.display(),
            SIZE >> 20
        );
        return Ok(true);
    }
    if !present && free > 4 * SIZE {
        // Best effort: a store without its reserve works as any other store does.
        if let Err(e) = make(&path, tmp) {
            tracing::debug!("no space reserve in {}: {e}", root.display());
        }
    }
    Ok(false)
}

fn make(path: &Path, tmp: &Path) -> Result<()> {
    let (mut f, tmp_path) = crate::tmp::create_file(tmp, "reserve")?;
    let made = (|| -> Result<()> {
        // Allocated blocks where the filesystem can; written zeros where it cannot.
        if rustix::fs::fallocate(&f, rustix::fs::FallocateFlags::empty(), 0, SIZE).is_err() {
            let zeros = vec![0u8; 1 << 20];
            for _ in 0..SIZE >> 20 {
                f.write_all(&zeros).at(&tmp_path)?;
            }
        }
        fs::rename(&tmp_path, path).at(path)
    })();
    if made.is_err() {
        let _ = fs::remove_file(&tmp_path);
    }
    made
}
