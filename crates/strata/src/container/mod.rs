//! Containers: records and their lifecycle (created → running → exited →
//! removed), the writable layer over the image's shared layers, the runtime
//! bundle, and what changed (`diff`, `commit`).
//!
//! ```text
//! <root>/containers/<id>/upper, work   the container layer (overlay driver)
//! <root>/containers/<id>/rootfs        the mounted root (overlay), or a full copy (copy driver)
//! <root>/containers/<id>/config.json   the OCI bundle's spec
//! <root>/containers/<id>/hostname, hosts, resolv.conf
//! <root>/containers/<id>/container.log stdout and stderr of a detached container
//! <root>/runtime/<id>                  libcontainer's state while it runs
//! ```
//!
//! There is no daemon: an attached `run` waits for its container itself;
//! a detached one is watched by a `strata` monitor process started for it,
//! which records the exit code and cleans up.

mod ops;
pub mod runtime;
pub mod spec;
pub mod tty;

pub use ops::{inherit_stdio, ContainerSummary, CreateOptions};

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::{IoContext, Result};
use crate::layer::{is_whiteout_device, OVERLAY_OPAQUE_XATTR};

pub use spec::RunConfig;

/// One line of `diff`: `A`dded, `C`hanged or `D`eleted, and the path.
pub type Change = (char, String);

fn in_lowers(lowers: &[PathBuf], rel: &Path) -> bool {
    for l in lowers {
        match fs::symlink_metadata(l.join(rel)) {
            Ok(md) => return !is_whiteout_device(&md),
            Err(_) => continue,
        }
    }
    false
}

fn sorted_names(dir: &Path) -> Result<Vec<std::ffi::OsString>> {
    let mut v: Vec<_> =
        fs::read_dir(dir).at(dir)?.map(|e| e.map(|e| e.file_name())).collect::<io::Result<_>>().at(dir)?;
    v.sort();
    Ok(v)
}

/// Fill the `init` lower of an overlay container layer (Docker's "init
/// layer"): the mount points the runtime needs (/proc, /sys, /dev, the
/// /etc files it binds, and each of `mount_points`, a file or a directory)
/// live there, so they never show up in the layer's changes.
pub fn make_init_dir(init: &Path, mount_points: &[(&str, bool)]) -> Result<()> {
    for d in ["proc", "sys", "dev", "etc"] {
        fs::create_dir_all(init.join(d)).at(init)?;
    }
    for f in ["hostname", "hosts", "resolv.conf"] {
        fs::write(init.join("etc").join(f), b"").at(init)?;
    }
    for (target, is_file) in mount_points {
        let p = init.join(target.trim_start_matches('/'));
        if *is_file {
            fs::create_dir_all(p.parent().expect("below init")).at(init)?;
            fs::write(&p, b"").at(&p)?;
        } else {
            fs::create_dir_all(&p).at(&p)?;
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
    for name in sorted_names(&upper.join(rel))? {
        let r = rel.join(&name);
        let full = upper.join(&r);
        let md = fs::symlink_metadata(&full).at(&full)?;
        let shown = format!("/{}", r.display());
        if is_whiteout_device(&md) {
            out.push(('D', shown));
            continue;
        }
        out.push((if in_lowers(lowers, &r) { 'C' } else { 'A' }, shown.clone()));
        if md.is_dir() {
            let opaque = matches!(rustix::fs::lgetxattr(&full, OVERLAY_OPAQUE_XATTR, &mut [0u8; 4][..]), Ok(1));
            if opaque {
                // Everything the image had below an opaque directory is gone.
                for l in lowers {
                    if let Ok(names) = sorted_names(&l.join(&r)) {
                        for n in names {
                            if !upper.join(&r).join(&n).exists() {
                                out.push(('D', format!("{shown}/{}", n.to_string_lossy())));
                            }
                        }
                        break;
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
    let here: BTreeSet<_> = sorted_names(&rootfs.join(rel))?.into_iter().collect();
    let there: BTreeSet<_> = sorted_names(&base.join(rel)).unwrap_or_default().into_iter().collect();
    for name in here.union(&there) {
        let r = rel.join(name);
        let shown = format!("/{}", r.display());
        let (pa, pb) = (rootfs.join(&r), base.join(&r));
        match (fs::symlink_metadata(&pa).ok(), fs::symlink_metadata(&pb).ok()) {
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
                let src = rootfs.join(rel);
                let md = fs::symlink_metadata(&src).at(&src)?;
                if md.is_dir() {
                    if !dst.exists() {
                        fs::create_dir(&dst).at(&dst)?;
                    }
                    dirs.push((src, dst, md));
                } else {
                    crate::tree::copy_entry(&src, &dst, &md)?;
                }
            }
        }
    }
    // Directories last, deepest first: filling them changed their times.
    for (src, dst, md) in dirs.iter().rev() {
        crate::tree::copy_meta(src, dst, md)?;
    }
    Ok(())
}
