//! The one place that performs mounts. Snapshot backends describe mounts as
//! [`Mount`] values; this module turns them into syscalls.
//!
//! Overlay mounts use the new mount API (`fsopen`/`fsconfig`) with one
//! `lowerdir+` per layer, so the page-size limit on mount options does not
//! cap image depth; kernels without it get the classic `mount(2)` string.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use rustix::mount::{FsMountFlags, FsOpenFlags, MountAttrFlags, MountFlags, MoveMountFlags, UnmountFlags};

use crate::error::{Error, IoContext, Result};

/// A mount to perform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mount {
    /// overlayfs.
    Overlay {
        /// Lower directories, top first.
        lowers: Vec<PathBuf>,
        /// Upper and work directories for a writable mount.
        upper: Option<(PathBuf, PathBuf)>,
        /// Mount point.
        target: PathBuf,
    },
    /// A bind mount.
    Bind {
        /// What to bind.
        source: PathBuf,
        /// Mount point.
        target: PathBuf,
        /// Read-only.
        readonly: bool,
    },
}

impl Mount {
    /// An overlay mount.
    pub fn overlay(lowers: Vec<PathBuf>, upper: Option<(PathBuf, PathBuf)>, target: PathBuf) -> Self {
        Mount::Overlay { lowers, upper, target }
    }

    /// Where it is mounted.
    pub fn target(&self) -> &Path {
        match self {
            Mount::Overlay { target, .. } | Mount::Bind { target, .. } => target,
        }
    }
}

/// Perform mounts in order; on failure, undo the ones done.
pub fn mount_all(mounts: &[Mount]) -> Result<()> {
    for (i, m) in mounts.iter().enumerate() {
        if let Err(e) = mount_one(m) {
            for done in mounts[..i].iter().rev() {
                let _ = unmount(done.target());
            }
            return Err(e);
        }
    }
    Ok(())
}

fn mount_one(m: &Mount) -> Result<()> {
    match m {
        Mount::Bind { source, target, readonly } => {
            rustix::mount::mount_bind(source, target).at(target)?;
            if *readonly {
                if let Err(e) = rustix::mount::mount_remount(target, MountFlags::BIND | MountFlags::RDONLY, "") {
                    let _ = unmount(target);
                    return Err(e).at(target);
                }
            }
            Ok(())
        }
        Mount::Overlay { lowers, upper, target } => {
            if lowers.is_empty() {
                return Err(Error::invalid("overlay mount without lower layers"));
            }
            match overlay_new_api(lowers, upper.as_ref(), target) {
                Ok(()) => Ok(()),
                Err(rustix::io::Errno::NOSYS) | Err(rustix::io::Errno::INVAL) => {
                    overlay_legacy(lowers, upper.as_ref(), target)
                }
                Err(e) => Err(Error::Io {
                    path: target.clone(),
                    source: std::io::Error::other(format!("mounting overlay ({} lower layers): {e}", lowers.len())),
                }),
            }
        }
    }
}

fn overlay_new_api(lowers: &[PathBuf], upper: Option<&(PathBuf, PathBuf)>, target: &Path) -> rustix::io::Result<()> {
    let fs = rustix::mount::fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC)?;
    for l in lowers {
        rustix::mount::fsconfig_set_string(fs.as_fd(), "lowerdir+", l)?;
    }
    if let Some((u, w)) = upper {
        rustix::mount::fsconfig_set_string(fs.as_fd(), "upperdir", u)?;
        rustix::mount::fsconfig_set_string(fs.as_fd(), "workdir", w)?;
        // An upper directory must hold whole files and directories (it may become a layer):
        // no renamed-directory redirects, no metadata-only copy-ups. With `userxattr` both
        // are off already (and may not be named).
        if !crate::tree::in_user_namespace() {
            rustix::mount::fsconfig_set_string(fs.as_fd(), "redirect_dir", "off")?;
            rustix::mount::fsconfig_set_string(fs.as_fd(), "metacopy", "off")?;
        }
    }
    if crate::tree::in_user_namespace() {
        // No trusted.* xattrs here: overlayfs keeps its markers as user.overlay.*.
        rustix::mount::fsconfig_set_flag(fs.as_fd(), "userxattr")?;
    }
    rustix::mount::fsconfig_create(fs.as_fd())?;
    let attrs = if upper.is_some() { MountAttrFlags::empty() } else { MountAttrFlags::MOUNT_ATTR_RDONLY };
    let mnt = rustix::mount::fsmount(fs.as_fd(), FsMountFlags::FSMOUNT_CLOEXEC, attrs)?;
    rustix::mount::move_mount(mnt.as_fd(), "", rustix::fs::CWD, target, MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH)
}

fn overlay_legacy(lowers: &[PathBuf], upper: Option<&(PathBuf, PathBuf)>, target: &Path) -> Result<()> {
    let joined: Vec<String> = lowers.iter().map(|p| p.display().to_string()).collect();
    let mut opts = format!("lowerdir={}", joined.join(":"));
    if let Some((u, w)) = upper {
        opts.push_str(&format!(",upperdir={},workdir={}", u.display(), w.display()));
        if !crate::tree::in_user_namespace() {
            opts.push_str(",redirect_dir=off,metacopy=off");
        }
    }
    if crate::tree::in_user_namespace() {
        opts.push_str(",userxattr");
    }
    let flags = if upper.is_some() { MountFlags::empty() } else { MountFlags::RDONLY };
    let data = std::ffi::CString::new(opts).map_err(|_| Error::invalid("NUL in a layer path"))?;
    rustix::mount::mount("overlay", target, "overlay", flags, data.as_c_str()).at(target)
}

/// Unmount (lazily if busy); not mounted is fine.
pub fn unmount(target: &Path) -> Result<()> {
    match rustix::mount::unmount(target, UnmountFlags::empty()) {
        Ok(()) | Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOENT) => Ok(()),
        Err(rustix::io::Errno::BUSY) => rustix::mount::unmount(target, UnmountFlags::DETACH).at(target),
        Err(e) => Err(e).at(target),
    }
}

/// Mount points at or below `dir`, deepest first (to unmount what a killed
/// process left before its directories are removed).
pub fn mounts_below(dir: &Path) -> Vec<PathBuf> {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(p.replace("\\040", " ")))
        .filter(|p| p.starts_with(dir))
        .collect();
    out.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    out.dedup();
    out
}

/// Whether `path` is a mount point listed in /proc/self/mountinfo.
pub fn is_mounted(path: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = path.display().to_string();
    info.lines().any(|l| l.split(' ').nth(4) == Some(want.as_str()))
}
