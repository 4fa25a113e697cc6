//! What a writable layer changed: an overlay upper directory (or, with the
//! copy driver, a full tree) compared with the read-only layers below it,
//! as `diff` lines; those changes written out as an overlay-form directory
//! (the input of `write_diff`); and the init lower that holds a
//! container's or build step's runtime mount points. Nothing here follows a
//! symlink out of a layer (`confined`'s `*_beneath` walks).

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::{is_whiteout_device, overlay_opaque_xattr};
use crate::confined::{list_beneath, lstat_beneath, Beneath};
use crate::error::{IoContext, Result};

/// One line of `diff`: `A`dded, `C`hanged or `D`eleted, and the path.
pub type Change = (char, String);

/// What the image's merged tree (its layer directories, top first) has at
/// `rel`, looked up as overlayfs would and without following any symlink
/// out of a layer: a whiteout, or a symlink or file on the way, hides
/// everything below it.
pub fn lower_entry(lowers: &[PathBuf], rel: &Path) -> Result<Option<fs::Metadata>> {
    for l in lowers {
        match lstat_beneath(l, rel)? {
            Beneath::Found(md) if is_whiteout_device(&md) => return Ok(None),
            Beneath::Found(md) => return Ok(Some(md)),
            Beneath::Blocked => return Ok(None),
            Beneath::Absent => continue,
        }
    }
    Ok(None)
}

fn in_lowers(lowers: &[PathBuf], rel: &Path) -> Result<bool> {
    Ok(lower_entry(lowers, rel)?.is_some())
}

/// Fill the `init` lower of an overlay container layer (Docker's "init
/// layer"): the mount points the runtime needs (/proc, /sys, /dev, the
/// /etc files it binds, and each of `mount_points`, a file or a directory)
/// live there, so they never show up in the layer's changes.
///
/// Targets are container paths from outside: cleaned (`..` stops at the
/// root) and created inside `init` only. A target whose path crosses a
/// symlink of the image (`lowers`, top first) is left to the runtime,
/// which makes it inside the container's root where the link leads: a
/// directory in `init` would hide the image's link.
pub fn make_init_dir(init: &Path, mount_points: &[(&str, bool)], lowers: &[PathBuf]) -> Result<()> {
    for d in ["proc", "sys", "dev", "etc"] {
        fs::create_dir_all(init.join(d)).at(init)?;
    }
    for f in ["hostname", "hosts", "resolv.conf"] {
        fs::write(init.join("etc").join(f), b"").at(init)?;
    }
    let root = crate::confined::Root::open(init)?;
    'points: for (target, is_file) in mount_points {
        let target = crate::confined::clean_container_path(target);
        let rel = Path::new(target.trim_start_matches('/'));
        let mut prefix = PathBuf::new();
        for c in rel.components() {
            prefix.push(c);
            if lower_entry(lowers, &prefix)?.is_some_and(|m| m.file_type().is_symlink()) {
                continue 'points;
            }
        }
        if *is_file {
            let (dir, name) = root.parent_for_write(&target, (0, 0))?;
            if dir.stat(&name)?.is_none() {
                dir.create_file(&name, 0o644)?;
            }
        } else {
            root.mkdir_all(&target, (0, 0))?;
        }
    }
    Ok(())
}

/// Changes recorded in an overlay upper directory, judged against the
/// image's layers (top first).
pub fn overlay_changes(upper: &Path, lowers: &[PathBuf]) -> Result<Vec<Change>> {
    let mut out = Vec::new();
    walk_upper(upper, Path::new(""), lowers, &mut out)?;
    Ok(out)
}

fn walk_upper(upper: &Path, rel: &Path, lowers: &[PathBuf], out: &mut Vec<Change>) -> Result<()> {
    // The upper directory may be changing under a running container: every
    // look into it and into the layers goes through no symlink.
    for name in list_beneath(upper, rel)?.unwrap_or_default() {
        let r = rel.join(&name);
        let Beneath::Found(md) = lstat_beneath(upper, &r)? else { continue };
        let shown = format!("/{}", r.display());
        if is_whiteout_device(&md) {
            out.push(('D', shown));
            continue;
        }
        out.push((if in_lowers(lowers, &r)? { 'C' } else { 'A' }, shown.clone()));
        if md.is_dir() {
            let full = upper.join(&r);
            let opaque = matches!(rustix::fs::lgetxattr(&full, overlay_opaque_xattr(), &mut [0u8; 4][..]), Ok(1));
            if opaque {
                // Everything the image had below an opaque directory is gone:
                // listed from the layer that has it as a directory, never through a link.
                for l in lowers {
                    match lstat_beneath(l, &r)? {
                        Beneath::Found(lmd) if lmd.is_dir() => {
                            for n in list_beneath(l, &r)?.unwrap_or_default() {
                                if matches!(lstat_beneath(upper, &r.join(&n))?, Beneath::Absent) {
                                    out.push(('D', format!("{shown}/{}", n.to_string_lossy())));
                                }
                            }
                            break;
                        }
                        Beneath::Absent => continue,
                        _ => break,
                    }
                }
            }
            walk_upper(upper, &r, lowers, out)?;
        }
    }
    Ok(())
}

/// Whether an entry is unchanged: type, owner, mode, and for files size
/// and mtime (the copy keeps mtimes, so a write shows), for links the target.
fn same_entry(a: &fs::Metadata, b: &fs::Metadata, pa: &Path, pb: &Path) -> bool {
    if a.file_type() != b.file_type() || a.mode() != b.mode() || a.uid() != b.uid() || a.gid() != b.gid() {
        return false;
    }
    if a.file_type().is_symlink() {
        return fs::read_link(pa).ok() == fs::read_link(pb).ok();
    }
    if a.is_file() {
        return a.len() == b.len() && a.mtime() == b.mtime() && a.mtime_nsec() == b.mtime_nsec();
    }
    a.is_dir() || a.rdev() == b.rdev()
}

/// Changes between a full copy (`rootfs`, copy driver) and the image's
/// merged tree it was copied from (`base`).
pub fn tree_changes(rootfs: &Path, base: &Path) -> Result<Vec<Change>> {
    let mut out = Vec::new();
    walk_trees(rootfs, base, Path::new(""), &mut out)?;
    Ok(out)
}

fn walk_trees(rootfs: &Path, base: &Path, rel: &Path, out: &mut Vec<Change>) -> Result<()> {
    // Neither tree is followed through a symlink: the container may be
    // changing its copy, and the image's links point inside the image.
    let here: BTreeSet<_> = list_beneath(rootfs, rel)?.unwrap_or_default().into_iter().collect();
    let there: BTreeSet<_> = list_beneath(base, rel)?.unwrap_or_default().into_iter().collect();
    for name in here.union(&there) {
        let r = rel.join(name);
        let shown = format!("/{}", r.display());
        let (pa, pb) = (rootfs.join(&r), base.join(&r));
        let found = |b: Beneath| match b {
            Beneath::Found(md) => Some(md),
            _ => None,
        };
        match (found(lstat_beneath(rootfs, &r)?), found(lstat_beneath(base, &r)?)) {
            (Some(a), None) => {
                out.push(('A', shown));
                if a.is_dir() {
                    walk_trees(rootfs, base, &r, out)?;
                }
            }
            (None, Some(_)) => out.push(('D', shown)),
            (Some(a), Some(b)) => {
                if a.is_dir() && b.is_dir() {
                    let before = out.len();
                    walk_trees(rootfs, base, &r, out)?;
                    if out.len() > before || !same_entry(&a, &b, &pa, &pb) {
                        out.insert(before, ('C', shown));
                    }
                } else if !same_entry(&a, &b, &pa, &pb) {
                    out.push(('C', shown));
                    if a.is_dir() {
                        walk_trees(rootfs, base, &r, out)?;
                    }
                }
            }
            (None, None) => {}
        }
    }
    Ok(())
}

/// Build an overlay-form directory holding `changes` of `rootfs` (copy
/// driver), so the layer writer can turn it into a tar like an upperdir.
pub fn changes_to_overlay_dir(rootfs: &Path, changes: &[Change], out: &Path) -> Result<()> {
    let mut dirs = Vec::new();
    for (kind, shown) in changes {
        let rel = Path::new(shown.trim_start_matches('/'));
        let dst = out.join(rel);
        if let Some(p) = dst.parent() {
            if !p.exists() {
                fs::create_dir_all(p).at(p)?;
            }
        }
        match kind {
            'D' => {
                rustix::fs::mknodat(
                    rustix::fs::CWD,
                    &dst,
                    rustix::fs::FileType::CharacterDevice,
                    rustix::fs::Mode::empty(),
                    0,
                )
                .at(&dst)?;
            }
            _ => {
                // Read below a parent reached through no symlink: a running container may be changing its tree.
                let parent = rel.parent().unwrap_or(Path::new(""));
                let Some(dir) = crate::confined::dir_beneath(rootfs, parent)? else { continue };
                let name = rel.file_name().unwrap_or_default().to_os_string();
                let src = dir.child_path(&name);
                let md = fs::symlink_metadata(&src).at(rootfs.join(rel))?;
                if md.is_dir() {
                    if !dst.exists() {
                        fs::create_dir(&dst).at(&dst)?;
                    }
                    dirs.push((dir, name, dst, md));
                } else {
                    crate::tree::copy_entry(&src, &dst, &md)?;
                }
            }
        }
    }
    // Directories last, deepest first: filling them changed their times.
    for (dir, name, dst, md) in dirs.iter().rev() {
        crate::tree::copy_meta(&dir.child_path(name), dst, md)?;
    }
    Ok(())
}
