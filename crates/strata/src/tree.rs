//! Whole-tree filesystem operations the store needs: copying a tree with
//! everything a layer can hold (owners, modes, times, xattrs, devices,
//! hardlinks), merging an overlay diff onto a tree, removing, measuring.
//!
//! Written by hand because no maintained crate copies ownership, xattrs,
//! device nodes and hardlink identity together; `std::fs::copy` (which uses
//! copy_file_range, so reflinks where the filesystem has them) moves the bytes.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Gid, Mode, Timespec, Timestamps, Uid, XattrFlags, CWD};

use crate::error::{IoContext, Result};

/// Whether this process runs in a user namespace other than the host's
/// (rootless mode, or strata inside a container). overlayfs there cannot
/// use `trusted.*` xattrs: it is mounted with `userxattr` and keeps its
/// markers under `user.overlay.*` instead.
pub fn in_user_namespace() -> bool {
    static IN: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *IN.get_or_init(|| {
        // The host's namespace maps every ID: "0 0 4294967295".
        fs::read_to_string("/proc/self/uid_map")
            .map(|m| m.split_whitespace().collect::<Vec<_>>() != ["0", "0", "4294967295"])
            .unwrap_or(false)
    })
}

/// The xattr overlayfs reads to make a directory opaque, in the namespace
/// this process runs in (see [`in_user_namespace`]).
pub fn overlay_opaque_xattr() -> &'static str {
    if in_user_namespace() {
        "user.overlay.opaque"
    } else {
        "trusted.overlay.opaque"
    }
}

/// Whether `name` is one of overlayfs' own xattrs (either namespace's):
/// they would change what lower layers show, so they are never taken from
/// a tar, written to one, or kept from an upper directory.
pub fn is_overlay_xattr(name: &[u8]) -> bool {
    name.starts_with(b"trusted.overlay.") || name.starts_with(b"user.overlay.")
}

/// Whether an entry of an overlay-form directory is a whiteout (char device 0/0).
pub fn is_whiteout_device(md: &fs::Metadata) -> bool {
    md.file_type().is_char_device() && md.rdev() == 0
}

/// Remove a file or a whole directory tree; absent is fine. Symlinks are
/// removed, never followed.
pub fn remove(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(md) if md.is_dir() => fs::remove_dir_all(path).at(path),
        Ok(_) => fs::remove_file(path).at(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).at(path),
    }
}

/// Copy one entry (not a directory's contents) with its metadata.
pub fn copy_entry(src: &Path, dst: &Path, md: &fs::Metadata) -> Result<()> {
    let ft = md.file_type();
    if ft.is_dir() {
        fs::create_dir(dst).at(dst)?;
    } else if ft.is_symlink() {
        let target = fs::read_link(src).at(src)?;
        std::os::unix::fs::symlink(&target, dst).at(dst)?;
    } else if ft.is_file() {
        copy_file_nofollow(src, dst)?;
    } else {
        let kind = if ft.is_char_device() {
            FileType::CharacterDevice
        } else if ft.is_block_device() {
            FileType::BlockDevice
        } else if ft.is_fifo() {
            FileType::Fifo
        } else {
            // Sockets do not belong in images; skip them as tar writers do.
            return Ok(());
        };
        rustix::fs::mknodat(CWD, dst, kind, Mode::from_raw_mode(md.mode() & 0o7777), md.rdev()).at(dst)?;
    }
    copy_meta(src, dst, md)
}

/// Copy a regular file's bytes to a new file `dst`, never following a
/// symlink at `src` (a tree being copied may be a container's, changing).
fn copy_file_nofollow(src: &Path, dst: &Path) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut from = fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(src).at(src)?;
    let mut to = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(dst).at(dst)?;
    // io::copy between files uses copy_file_range, as fs::copy does.
    io::copy(&mut from, &mut to).at(dst)?;
    Ok(())
}

/// Copy owner, mode, xattrs and times from `src` (described by `md`) to `dst`.
pub(crate) fn copy_meta(src: &Path, dst: &Path, md: &fs::Metadata) -> Result<()> {
    let is_link = md.file_type().is_symlink();
    rustix::fs::chownat(
        CWD,
        dst,
        Some(Uid::from_raw(md.uid())),
        Some(Gid::from_raw(md.gid())),
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .at(dst)?;
    if !is_link {
        rustix::fs::chmodat(CWD, dst, Mode::from_raw_mode(md.mode() & 0o7777), AtFlags::empty()).at(dst)?;
    }
    for (k, v) in xattrs(src)? {
        if is_overlay_xattr(&k) {
            continue;
        }
        match rustix::fs::lsetxattr(dst, OsStr::from_bytes(&k), &v, XattrFlags::empty()) {
            Ok(()) | Err(rustix::io::Errno::OPNOTSUPP) | Err(rustix::io::Errno::PERM) => {}
            Err(e) => return Err(e).at(dst),
        }
    }
    let ts = Timestamps {
        last_access: Timespec { tv_sec: md.atime(), tv_nsec: md.atime_nsec() },
        last_modification: Timespec { tv_sec: md.mtime(), tv_nsec: md.mtime_nsec() },
    };
    rustix::fs::utimensat(CWD, dst, &ts, AtFlags::SYMLINK_NOFOLLOW).at(dst)
}

/// The extended attributes of a path (not following symlinks).
pub fn xattrs(path: &Path) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut names = vec![0u8; 64 * 1024];
    let n = match rustix::fs::llistxattr(path, &mut names[..]) {
        Ok(n) => n,
        Err(rustix::io::Errno::OPNOTSUPP) => 0,
        Err(e) => return Err(e).at(path),
    };
    let mut out = Vec::new();
    for name in names[..n].split(|b| *b == 0).filter(|s| !s.is_empty()) {
        let mut val = vec![0u8; 64 * 1024];
        match rustix::fs::lgetxattr(path, OsStr::from_bytes(name), &mut val[..]) {
            Ok(len) => {
                val.truncate(len);
                out.push((name.to_vec(), val));
            }
            Err(rustix::io::Errno::NODATA) => {}
            Err(e) => return Err(e).at(path),
        }
    }
    out.sort();
    Ok(out)
}

/// Copy the tree at `src` into the (existing, empty) directory `dst`,
/// keeping hardlinked files hardlinked.
pub fn copy_tree(src: &Path, dst: &Path) -> Result<()> {
    let mut links = HashMap::new();
    copy_dir_contents(src, dst, &mut links)?;
    let md = fs::symlink_metadata(src).at(src)?;
    copy_meta(src, dst, &md)
}

fn copy_dir_contents(src: &Path, dst: &Path, links: &mut HashMap<(u64, u64), PathBuf>) -> Result<()> {
    for e in fs::read_dir(src).at(src)? {
        let e = e.at(src)?;
        let (s, d) = (e.path(), dst.join(e.file_name()));
        let md = fs::symlink_metadata(&s).at(&s)?;
        if md.is_dir() {
            fs::create_dir(&d).at(&d)?;
            copy_dir_contents(&s, &d, links)?;
            copy_meta(&s, &d, &md)?;
        } else if md.nlink() > 1 && !md.is_dir() {
            if let Some(first) = links.get(&(md.dev(), md.ino())) {
                fs::hard_link(first, &d).at(&d)?;
            } else {
                copy_entry(&s, &d, &md)?;
                links.insert((md.dev(), md.ino()), d);
            }
        } else {
            copy_entry(&s, &d, &md)?;
        }
    }
    Ok(())
}

/// Apply an overlay-form diff directory onto a merged tree, as overlayfs
/// would show it: whiteout devices delete, opaque directories hide what
/// was below. Used to flatten stacks deeper than overlayfs allows.
pub fn merge_overlay_diff(diff: &Path, merged: &Path) -> Result<()> {
    let mut links = HashMap::new();
    merge_dir(diff, merged, &mut links)
}

fn merge_dir(diff: &Path, merged: &Path, links: &mut HashMap<(u64, u64), PathBuf>) -> Result<()> {
    for e in fs::read_dir(diff).at(diff)? {
        let e = e.at(diff)?;
        let (s, d) = (e.path(), merged.join(e.file_name()));
        let md = fs::symlink_metadata(&s).at(&s)?;
        if is_whiteout_device(&md) {
            remove(&d)?;
            continue;
        }
        if md.is_dir() {
            let opaque = matches!(rustix::fs::lgetxattr(&s, overlay_opaque_xattr(), &mut [0u8; 4][..]), Ok(1));
            match fs::symlink_metadata(&d) {
                Ok(m) if m.is_dir() && !opaque => {}
                Ok(_) => {
                    remove(&d)?;
                    fs::create_dir(&d).at(&d)?;
                }
                Err(_) => fs::create_dir(&d).at(&d)?,
            }
            merge_dir(&s, &d, links)?;
            copy_meta(&s, &d, &md)?;
            continue;
        }
        remove(&d)?;
        let key = (md.dev(), md.ino());
        match links.get(&key) {
            Some(first) if md.nlink() > 1 => fs::hard_link(first, &d).at(&d)?,
            _ => {
                copy_entry(&s, &d, &md)?;
                if md.nlink() > 1 {
                    links.insert(key, d);
                }
            }
        }
    }
    Ok(())
}

/// Apparent bytes of the files under `path`, each inode counted once.
pub fn usage(path: &Path) -> Result<u64> {
    let mut seen = HashSet::new();
    usage_inner(path, &mut seen)
}

fn usage_inner(path: &Path, seen: &mut HashSet<(u64, u64)>) -> Result<u64> {
    let mut total = 0;
    let rd = match fs::read_dir(path) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e).at(path),
    };
    for e in rd {
        let e = e.at(path)?;
        let md = e.metadata().at(e.path())?;
        if md.is_dir() {
            total += usage_inner(&e.path(), seen)?;
        } else if md.is_file() && (md.nlink() == 1 || seen.insert((md.dev(), md.ino()))) {
            total += md.len();
        }
    }
    Ok(total)
}
