//! `cp` and `export`: tar streams out of and into a container's file
//! system, running or not. Paths name places inside the container and are
//! resolved inside it (`confined`: a symlink to `/etc/shadow` or `../..`
//! means the container's own); a path under a volume or bind mount goes to
//! that mount's source, as it would inside the container. Writes land in
//! the container layer (copy-on-write over the image's layers).

use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use super::ops::Containers;
use crate::confined::Root;
use crate::error::{Error, Result};
use crate::snapshot::mount;
use crate::store::{ContainerRecord, ContainerState};

/// What a path inside a container is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathKind {
    /// A directory.
    Dir,
    /// Anything else (a file, a symlink, a device).
    Other,
}

/// The container's root (mounted while this lives, if it was not).
struct RootView<'a, 'c> {
    containers: &'a Containers<'c>,
    rec: ContainerRecord,
    mounted_here: bool,
}

impl Drop for RootView<'_, '_> {
    fn drop(&mut self) {
        if self.mounted_here {
            let _ = mount::unmount(&self.containers.rootfs_of(&self.rec.id));
        }
    }
}

impl<'a, 'c> RootView<'a, 'c> {
    fn open(containers: &'a Containers<'c>, name: &str) -> Result<Self> {
        let rec = containers.get(name)?;
        let rootfs = containers.rootfs_of(&rec.id);
        let mut view = RootView { containers, rec, mounted_here: false };
        if view.rec.state != ContainerState::Running && !mount::is_mounted(&rootfs) {
            let mounts = containers.rootfs_mounts(&view.rec)?;
            if !mounts.is_empty() {
                mount::mount_all(&mounts)?;
                view.mounted_here = true;
            }
        }
        Ok(view)
    }

    /// The root a container path is under (the container's, or a volume's or
    /// bind mount's source) and the path relative to it.
    fn place(&self, path: &str) -> Result<(PathBuf, PathBuf)> {
        let clean = crate::confined::clean_container_path(path);
        let cfg = super::run_config(&self.rec)?;
        let mut best: Option<(&crate::volume::MountSpec, usize)> = None;
        for m in cfg.mounts.iter().filter(|m| m.kind != crate::volume::MountKind::Tmpfs) {
            let t = m.target.trim_end_matches('/');
            if (clean == t || clean.starts_with(&format!("{t}/"))) && best.is_none_or(|(_, l)| t.len() > l) {
                best = Some((m, t.len()));
            }
        }
        Ok(match best {
            Some((m, len)) => (self.containers.mount_source(m), PathBuf::from(clean[len..].trim_start_matches('/'))),
            None => (self.containers.rootfs_of(&self.rec.id), PathBuf::from(clean.trim_start_matches('/'))),
        })
    }
}

fn base_name(path: &str) -> String {
    Path::new(path)
        .components()
        .rev()
        .find_map(|c| match c {
            Component::Normal(n) => Some(n.to_string_lossy().to_string()),
            _ => None,
        })
        .unwrap_or_else(|| ".".into())
}

impl Containers<'_> {
    /// What `path` is inside the container, if anything (symlinks followed inside it).
    pub fn stat_path(&self, name: &str, path: &str) -> Result<Option<PathKind>> {
        let view = RootView::open(self, name)?;
        let (root, rel) = view.place(path)?;
        let root = Root::open(&root)?;
        Ok(root.resolve(&rel)?.map(|e| e.metadata()).transpose()?.map(|md| {
            if md.is_dir() {
                PathKind::Dir
            } else {
                PathKind::Other
            }
        }))
    }

    /// `cp CONTAINER:SRC -`: SRC as a tar stream whose one top entry is
    /// SRC's base name (a directory with all it holds). A final symlink is
    /// copied as a link unless `follow` (`-L`).
    pub fn copy_out(&self, name: &str, src: &str, follow: bool, out: &mut dyn Write) -> Result<()> {
        let view = RootView::open(self, name)?;
        let (root_dir, rel) = view.place(src)?;
        let root = Root::open(&root_dir)?;
        let entry = if follow { root.resolve(&rel)? } else { root.lookup(&rel)? };
        let entry = entry.ok_or_else(|| Error::not_found("path", format!("{src} in container {}", view.rec.name)))?;
        let md = entry.metadata()?;
        let top = base_name(src);
        let mut tar = tar::Builder::new(out);
        tar.follow_symlinks(false);
        let err = |e: std::io::Error| Error::stream(format!("copying {src} out of {}", view.rec.name), e);
        if md.is_dir() {
            tar.append_dir_all(&top, entry.proc_path()).map_err(err)?;
        } else if md.file_type().is_symlink() {
            let mut h = tar::Header::new_gnu();
            h.set_metadata(&md);
            h.set_size(0);
            let target = std::fs::read_link(entry.proc_path()).map_err(err)?;
            tar.append_link(&mut h, &top, target).map_err(err)?;
        } else {
            let mut f = entry.open_read()?;
            tar.append_file(&top, &mut f).map_err(err)?;
        }
        tar.finish().map_err(err)
    }

    /// `cp - CONTAINER:DEST`: a tar stream unpacked into the directory DEST
    /// inside the container; `keep_owner` (`-a`) keeps the archive's owners,
    /// else what is written belongs to root, as Docker's. An entry that
    /// would land outside DEST (`..`, a link on the way) is refused.
    pub fn copy_in(&self, name: &str, dest: &str, keep_owner: bool, input: &mut dyn Read) -> Result<()> {
        let view = RootView::open(self, name)?;
        let (root_dir, rel) = view.place(dest)?;
        let root = Root::open(&root_dir)?;
        let entry = root
            .resolve(&rel)?
            .ok_or_else(|| Error::not_found("directory", format!("{dest} in container {}", view.rec.name)))?;
        if !entry.metadata()?.is_dir() {
            return Err(Error::invalid(format!("{dest} in container {} is not a directory", view.rec.name)));
        }
        let mut ar = tar::Archive::new(input);
        ar.set_preserve_permissions(true);
        ar.set_preserve_ownerships(keep_owner);
        ar.set_overwrite(true);
        ar.set_unpack_xattrs(false);
        // unpack checks each entry stays inside the directory it is given.
        ar.unpack(entry.proc_path()).map_err(|e| Error::stream(format!("copying into {dest} of {}", view.rec.name), e))
    }

    /// `export`: the container's whole file system (its layers merged, its
    /// own changes over them) as one tar stream.
    pub fn export(&self, name: &str, out: &mut dyn Write) -> Result<()> {
        let view = RootView::open(self, name)?;
        let rootfs = self.rootfs_of(&view.rec.id);
        // The merged view holds no whiteouts; the layer writer gives Docker's
        // export: entries sorted by name, hard links kept, xattrs, numeric owners.
        crate::layer::write_diff(&rootfs, out, &crate::layer::WriteOptions::default())?;
        Ok(())
    }
}
