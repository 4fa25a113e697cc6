//! Applying a layer tar to a directory.
//!
//! Written by hand over the `tar` crate's reader, not with its `unpack_in`:
//! OCI whiteouts, their translation to overlayfs form, hardlinks to files in
//! lower layers, and refusing to write through symlinks are layer semantics
//! no tar crate implements.
//!
//! Safety: every entry path is resolved lexically inside the root (`..`
//! that would leave it is an error naming the entry), and every parent
//! directory is checked not to be a symlink before anything is created
//! under it, so no entry, however crafted, writes outside the root.

use std::cell::RefCell;
use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Gid, Mode, Timespec, Timestamps, Uid, XattrFlags, CWD};

use super::split::Split;
use super::{is_whiteout_device, overlay_opaque_xattr, DiffFormat, OPAQUE_MARKER, WHITEOUT_PREFIX};
use crate::error::{Error, IoContext, Result};

/// How to apply a layer.
pub struct ApplyOptions<'a> {
    /// The shape of the target directory.
    pub format: DiffFormat,
    /// For [`DiffFormat::Overlay`]: the lower layers' directories, top first,
    /// where hardlinks to files this layer does not contain are looked up.
    pub lowers: Vec<PathBuf>,
    /// Called once before the first lookup in `lowers`: layers may be
    /// unpacked in parallel, and this waits until the lower ones are in place.
    pub before_lower_lookup: Option<&'a (dyn Fn() -> Result<()> + Sync)>,
    /// Record a tar-split while applying: the reader must be a
    /// [`super::split::Recorder`] over the same split.
    pub split: Option<&'a RefCell<Split>>,
}

/// What an apply did.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApplyStats {
    /// Entries applied.
    pub entries: u64,
    /// The layer's size as Docker counts it: regular file content plus
    /// symlink targets (what `lstat` gives), each hard-linked file once.
    pub size: u64,
}

/// Ownership, permissions, times and xattrs of one entry.
struct Meta {
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: Timespec,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Apply the (uncompressed) layer tar read from `reader` to `root`.
pub fn apply<R: Read>(reader: R, root: &Path, opts: &ApplyOptions<'_>) -> Result<ApplyStats> {
    let mut ar = tar::Archive::new(reader);
    let mut applier = Applier {
        root,
        opts,
        known_dirs: HashSet::new(),
        created: HashSet::new(),
        dir_times: Vec::new(),
        stats: ApplyStats::default(),
        buf: vec![0u8; 256 * 1024],
        lowers_waited: false,
        implicit_dirs: Vec::new(),
    };
    let entries = ar.entries().map_err(|e| Error::stream("reading layer tar", e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| Error::stream("reading layer tar", e))?;
        applier.entry(&mut entry)?;
        crate::fault::failpoint!("layer-unpack");
    }
    applier.finish()
}

struct Applier<'a> {
    root: &'a Path,
    opts: &'a ApplyOptions<'a>,
    lowers_waited: bool,
    /// Directories this layer made without an entry for them, with the entry
    /// that needed them: checked against lower layers' symlinks at the end,
    /// so layers unpacking in parallel need not wait for each other.
    implicit_dirs: Vec<(PathBuf, PathBuf)>,
    /// Directories (relative) already checked to be real directories.
    known_dirs: HashSet<PathBuf>,
    /// Paths this layer created: whiteouts only hide what lower layers had.
    created: HashSet<PathBuf>,
    /// Directory mtimes are set last: creating children changes them.
    dir_times: Vec<(PathBuf, Timespec)>,
    stats: ApplyStats,
    buf: Vec<u8>,
}

/// Resolve an entry path lexically to normal components inside the root.
fn clean(raw: &Path) -> Result<PathBuf> {
    let mut out = PathBuf::new();
    for c in raw.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return Err(Error::entry(raw, "path escapes the layer root through '..'"));
                }
            }
            Component::Prefix(_) => return Err(Error::entry(raw, "path has a prefix")),
        }
    }
    Ok(out)
}

/// The first ancestor of `rel` under `root` that is a symlink, if any.
fn symlinked_ancestor(root: &Path, rel: &Path) -> Option<PathBuf> {
    let mut cur = PathBuf::new();
    for c in rel.parent()?.components() {
        cur.push(c);
        if fs::symlink_metadata(root.join(&cur)).is_ok_and(|m| m.file_type().is_symlink()) {
            return Some(cur);
        }
    }
    None
}

impl Applier<'_> {
    fn entry<R: Read>(&mut self, e: &mut tar::Entry<'_, R>) -> Result<()> {
        let kind = e.header().entry_type();
        if kind.is_pax_global_extensions()
            || kind.is_pax_local_extensions()
            || kind.is_gnu_longname()
            || kind.is_gnu_longlink()
        {
            return Ok(());
        }
        let raw = e.path().map_err(|err| Error::stream("reading layer tar entry path", err))?.into_owned();
        let rel = clean(&raw)?;
        if rel.as_os_str().is_empty() {
            // The layer root itself ("./"): its metadata belongs to the snapshot, not the layer.
            return Ok(());
        }
        let name = rel.file_name().expect("non-empty normal path").as_bytes().to_vec();
        self.ensure_parent(&rel, &raw)?;
        if name.starts_with(WHITEOUT_PREFIX.as_bytes()) {
            self.whiteout(&rel, &raw, &name)?;
            self.stats.entries += 1;
            return Ok(());
        }
        let meta = self.meta(e, &raw)?;
        let full = self.root.join(&rel);
        use tar::EntryType as T;
        match kind {
            T::Directory => {
                match fs::symlink_metadata(&full) {
                    Ok(md) if md.is_dir() => {}
                    Ok(_) => {
                        self.replace(&rel, &full)?;
                        fs::create_dir(&full).at(&full)?;
                    }
                    Err(_) => fs::create_dir(&full).at(&full)?,
                }
                self.set_meta_path(&full, &meta, &raw, false)?;
                self.dir_times.push((rel.clone(), meta.mtime));
                self.known_dirs.insert(rel.clone());
            }
            T::Regular | T::Continuous => {
                let file = self.create_file(&rel, &full)?;
                let recording = self.opts.split.filter(|_| e.size() > 0);
                if let Some(sp) = recording {
                    sp.borrow_mut().begin_file();
                }
                let n = self.copy_data(e, &file, &raw)?;
                if let Some(sp) = recording {
                    sp.borrow_mut().end_file(&rel, n);
                }
                self.stats.size += n;
                set_meta_fd(&file, &meta).map_err(|err| Error::entry(&raw, format!("setting metadata: {err}")))?;
            }
            T::Symlink => {
                let target = e
                    .link_name()
                    .map_err(|err| Error::stream("reading symlink target", err))?
                    .ok_or_else(|| Error::entry(&raw, "symlink without a target"))?
                    .into_owned();
                self.replace(&rel, &full)?;
                std::os::unix::fs::symlink(&target, &full).at(&full)?;
                self.stats.size += target.as_os_str().len() as u64;
                self.set_meta_path(&full, &meta, &raw, true)?;
            }
            T::Link => {
                let target_raw = e
                    .link_name()
                    .map_err(|err| Error::stream("reading hardlink target", err))?
                    .ok_or_else(|| Error::entry(&raw, "hardlink without a target"))?
                    .into_owned();
                let target = clean(&target_raw)?;
                self.ensure_parent(&target, &raw)?;
                let target_full = self.root.join(&target);
                if fs::symlink_metadata(&target_full).is_err() {
                    self.copy_up_link_target(&target, &raw)?;
                }
                self.replace(&rel, &full)?;
                fs::hard_link(&target_full, &full)
                    .map_err(|err| Error::entry(&raw, format!("hardlink to {}: {err}", target_raw.display())))?;
            }
            T::Char | T::Block if crate::tree::in_user_namespace() => {
                // Rootless: no device can be made in a user namespace, and a
                // container's /dev is a tmpfs of its own anyway. Skipped, as
                // Docker's and containers/storage's extractors do there; the
                // layer's digests are of the tar, which is unchanged.
                tracing::debug!("skipping device {} in a user namespace", raw.display());
                return Ok(());
            }
            T::Char | T::Block | T::Fifo => {
                let ft = match kind {
                    T::Char => FileType::CharacterDevice,
                    T::Block => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                let major = e.header().device_major().ok().flatten().unwrap_or(0);
                let minor = e.header().device_minor().ok().flatten().unwrap_or(0);
                self.replace(&rel, &full)?;
                rustix::fs::mknodat(
                    CWD,
                    &full,
                    ft,
                    Mode::from_raw_mode(meta.mode & 0o7777),
                    rustix::fs::makedev(major, minor),
                )
                .map_err(|err| Error::entry(&raw, format!("mknod: {err}")))?;
                self.set_meta_path(&full, &meta, &raw, false)?;
            }
            other => return Err(Error::entry(&raw, format!("unsupported tar entry type {other:?}"))),
        }
        self.created.insert(rel);
        self.stats.entries += 1;
        Ok(())
    }

    /// Make sure every ancestor of `rel` is a real directory inside the root,
    /// creating missing ones and refusing symlinks.
    fn ensure_parent(&mut self, rel: &Path, raw: &Path) -> Result<()> {
        let Some(parent) = rel.parent() else {
            return Ok(());
        };
        if parent.as_os_str().is_empty() || self.known_dirs.contains(parent) {
            return Ok(());
        }
        let mut cur = PathBuf::new();
        for c in parent.components() {
            cur.push(c);
            if self.known_dirs.contains(&cur) {
                continue;
            }
            let full = self.root.join(&cur);
            match fs::symlink_metadata(&full) {
                Ok(md) if md.is_dir() => {}
                Ok(md) if md.file_type().is_symlink() => {
                    let to = fs::read_link(&full).map(|t| t.display().to_string()).unwrap_or_default();
                    return Err(Error::entry(
                        raw,
                        format!("would be written through the symlink {} -> {to}; refused", cur.display()),
                    ));
                }
                Ok(_) => {
                    self.replace(&cur, &full)?;
                    fs::create_dir(&full).at(&full)?;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    if self.opts.format == DiffFormat::Overlay && !self.opts.lowers.is_empty() {
                        self.implicit_dirs.push((cur.clone(), raw.to_path_buf()));
                    }
                    fs::create_dir(&full).at(&full)?
                }
                Err(e) => return Err(e).at(&full),
            }
            self.known_dirs.insert(cur.clone());
        }
        Ok(())
    }

    /// Overlay form: a directory this layer does not have may be a symlink
    /// in a lower layer; writing through it would follow it in the merged
    /// tree, so it is refused as it is for a symlink in this layer.
    fn refuse_lower_symlink(&self, rel: &Path, raw: &Path) -> Result<()> {
        for lower in &self.opts.lowers {
            let p = lower.join(rel);
            match fs::symlink_metadata(&p) {
                Ok(md) if md.file_type().is_symlink() => {
                    let to = fs::read_link(&p).map(|t| t.display().to_string()).unwrap_or_default();
                    return Err(Error::entry(
                        raw,
                        format!(
                            "would be written through the symlink {} -> {to} of a lower layer; refused",
                            rel.display()
                        ),
                    ));
                }
                Ok(_) => return Ok(()),
                Err(_) => continue,
            }
        }
        Ok(())
    }

    fn wait_for_lowers(&mut self) -> Result<()> {
        if let (false, Some(wait)) = (self.lowers_waited, self.opts.before_lower_lookup) {
            wait()?;
            self.lowers_waited = true;
        }
        Ok(())
    }

    fn whiteout(&mut self, rel: &Path, raw: &Path, name: &[u8]) -> Result<()> {
        let parent = rel.parent().unwrap_or(Path::new(""));
        if name == OPAQUE_MARKER.as_bytes() {
            let dir = self.root.join(parent);
            match self.opts.format {
                DiffFormat::Overlay => rustix::fs::lsetxattr(&dir, overlay_opaque_xattr(), b"y", XattrFlags::empty())
                    .map_err(|e| Error::entry(raw, format!("marking directory opaque: {e}")))?,
                DiffFormat::Merged => self.clear_lower(parent)?,
            }
            return Ok(());
        }
        let hidden = &name[WHITEOUT_PREFIX.len()..];
        if hidden.is_empty() || hidden == b"." || hidden == b".." {
            return Err(Error::entry(raw, "whiteout names no file"));
        }
        let target = parent.join(OsStr::from_bytes(hidden));
        // OCI: a whiteout hides only what lower layers had, never this layer's own files.
        if self.created.contains(&target) {
            return Ok(());
        }
        let full = self.root.join(&target);
        if self.created_under(&target) {
            if let Some(sp) = self.opts.split {
                sp.borrow_mut().lossy = true;
            }
        }
        crate::tree::remove(&full)?;
        if self.opts.format == DiffFormat::Overlay {
            rustix::fs::mknodat(CWD, &full, FileType::CharacterDevice, Mode::empty(), rustix::fs::makedev(0, 0))
                .map_err(|e| Error::entry(raw, format!("creating whiteout device: {e}")))?;
        }
        self.known_dirs.retain(|d| !d.starts_with(&target));
        Ok(())
    }

    /// Merged format, opaque directory: remove everything under `dir` that
    /// this layer did not create itself.
    fn clear_lower(&mut self, dir: &Path) -> Result<()> {
        let full = self.root.join(dir);
        for child in fs::read_dir(&full).at(&full)? {
            let child = child.at(&full)?;
            let rel = dir.join(child.file_name());
            if self.created.contains(&rel) || self.created_under(&rel) {
                if child.file_type().at(child.path())?.is_dir() {
                    self.clear_lower(&rel)?;
                }
            } else {
                crate::tree::remove(&child.path())?;
                self.known_dirs.retain(|d| !d.starts_with(&rel));
            }
        }
        Ok(())
    }

    /// Whether this layer wrote anything below `rel`.
    fn created_under(&self, rel: &Path) -> bool {
        self.created.iter().any(|c| c != rel && c.starts_with(rel))
    }

    /// A hardlink whose target is not in this layer: in overlay form the
    /// target lives in a lower layer, so copy it into this layer (at its own
    /// path, so both names are one inode in the merged view), then link.
    fn copy_up_link_target(&mut self, target: &Path, raw: &Path) -> Result<()> {
        if self.opts.format == DiffFormat::Overlay {
            self.wait_for_lowers()?;
            for lower in &self.opts.lowers {
                let src = lower.join(target);
                if let Ok(md) = fs::symlink_metadata(&src) {
                    if is_whiteout_device(&md) {
                        break;
                    }
                    // Reading through a lower layer's symlink could copy a host file into the layer.
                    if let Some(link) = symlinked_ancestor(lower, target) {
                        return Err(Error::entry(
                            raw,
                            format!(
                                "hardlink target {} lies under the symlink {}; refused",
                                target.display(),
                                link.display()
                            ),
                        ));
                    }
                    crate::tree::copy_entry(&src, &self.root.join(target), &md)?;
                    self.created.insert(target.to_path_buf());
                    return Ok(());
                }
            }
        }
        Err(Error::entry(raw, format!("hardlink target {} does not exist", target.display())))
    }

    fn create_file(&mut self, rel: &Path, full: &Path) -> Result<File> {
        let open =
            || OpenOptions::new().write(true).create_new(true).custom_flags(libc::O_NOFOLLOW).mode(0o600).open(full);
        match open() {
            Ok(f) => Ok(f),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                self.replace(rel, full)?;
                open().at(full)
            }
            Err(e) => Err(e).at(full),
        }
    }

    /// Remove what is at `rel` before writing something else there. If this
    /// layer wrote it, the directory no longer matches the tar: a tar-split
    /// being recorded cannot rebuild it.
    fn replace(&mut self, rel: &Path, full: &Path) -> Result<()> {
        if self.created.contains(rel) {
            if let Some(sp) = self.opts.split {
                sp.borrow_mut().lossy = true;
            }
        }
        crate::tree::remove(full)
    }

    fn copy_data<R: Read>(&mut self, e: &mut tar::Entry<'_, R>, mut file: &File, raw: &Path) -> Result<u64> {
        let mut total = 0u64;
        loop {
            let n = match e.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => {
                    return Err(Error::stream(
                        format!("reading data of layer entry {:?}", raw.display().to_string()),
                        err,
                    ))
                }
            };
            crate::trace::timed(crate::trace::Stage::FileWrite, || file.write_all(&self.buf[..n])).at(raw)?;
            total += n as u64;
        }
        if total != e.size() {
            return Err(Error::entry(raw, format!("truncated: {total} of {} bytes", e.size())));
        }
        Ok(total)
    }

    fn meta<R: Read>(&self, e: &mut tar::Entry<'_, R>, raw: &Path) -> Result<Meta> {
        let h = e.header();
        let bad = |what: &str, err: io::Error| Error::entry(raw, format!("bad {what} in header: {err}"));
        let mut meta = Meta {
            mode: h.mode().map_err(|err| bad("mode", err))?,
            uid: h.uid().map_err(|err| bad("uid", err))?,
            gid: h.gid().map_err(|err| bad("gid", err))?,
            mtime: Timespec { tv_sec: h.mtime().map_err(|err| bad("mtime", err))? as i64, tv_nsec: 0 },
            xattrs: Vec::new(),
        };
        if let Some(pax) = e.pax_extensions().map_err(|err| Error::stream("reading pax header", err))? {
            for ext in pax {
                let ext = ext.map_err(|err| Error::stream("reading pax header", err))?;
                let key = ext.key_bytes();
                if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                    // overlayfs' own xattrs would change what lower layers show; never take them from a tar.
                    if !crate::tree::is_overlay_xattr(name) {
                        meta.xattrs.push((name.to_vec(), ext.value_bytes().to_vec()));
                    }
                } else if key == b"mtime" {
                    if let Some(t) = parse_pax_time(ext.value_bytes()) {
                        meta.mtime = t;
                    }
                }
            }
        }
        Ok(meta)
    }

    fn set_meta_path(&self, full: &Path, m: &Meta, raw: &Path, is_symlink: bool) -> Result<()> {
        let err = |what: &str, e: rustix::io::Errno| Error::entry(raw, format!("{what}: {e}"));
        rustix::fs::chownat(
            CWD,
            full,
            Some(Uid::from_raw(m.uid as u32)),
            Some(Gid::from_raw(m.gid as u32)),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| err("chown", e))?;
        if !is_symlink {
            rustix::fs::chmodat(CWD, full, Mode::from_raw_mode(m.mode & 0o7777), AtFlags::empty())
                .map_err(|e| err("chmod", e))?;
        }
        for (k, v) in &m.xattrs {
            set_xattr(|| rustix::fs::lsetxattr(full, OsStr::from_bytes(k), v, XattrFlags::empty()))
                .map_err(|e| err("setxattr", e))?;
        }
        let ts = Timestamps { last_access: m.mtime, last_modification: m.mtime };
        rustix::fs::utimensat(CWD, full, &ts, AtFlags::SYMLINK_NOFOLLOW).map_err(|e| err("utimensat", e))
    }

    fn finish(mut self) -> Result<ApplyStats> {
        if !self.implicit_dirs.is_empty() {
            self.wait_for_lowers()?;
            for (rel, raw) in &self.implicit_dirs {
                self.refuse_lower_symlink(rel, raw)?;
            }
        }
        for (rel, t) in self.dir_times.iter().rev() {
            let full = self.root.join(rel);
            let ts = Timestamps { last_access: *t, last_modification: *t };
            // A later whiteout may have removed the directory.
            match rustix::fs::utimensat(CWD, &full, &ts, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(()) | Err(rustix::io::Errno::NOENT) => {}
                Err(e) => return Err(e).at(&full),
            }
        }
        Ok(self.stats)
    }
}

/// xattrs a filesystem does not support are skipped, as Docker does.
fn set_xattr(f: impl FnOnce() -> rustix::io::Result<()>) -> rustix::io::Result<()> {
    match f() {
        Err(rustix::io::Errno::OPNOTSUPP) => Ok(()),
        r => r,
    }
}

fn set_meta_fd(f: &File, m: &Meta) -> rustix::io::Result<()> {
    rustix::fs::fchown(f, Some(Uid::from_raw(m.uid as u32)), Some(Gid::from_raw(m.gid as u32)))?;
    // After chown: chown clears set-id bits.
    rustix::fs::fchmod(f, Mode::from_raw_mode(m.mode & 0o7777))?;
    for (k, v) in &m.xattrs {
        set_xattr(|| rustix::fs::fsetxattr(f, OsStr::from_bytes(k), v, XattrFlags::empty()))?;
    }
    rustix::fs::futimens(f, &Timestamps { last_access: m.mtime, last_modification: m.mtime })
}

fn parse_pax_time(v: &[u8]) -> Option<Timespec> {
    let s = std::str::from_utf8(v).ok()?;
    let (sec, frac) = s.split_once('.').unwrap_or((s, ""));
    let tv_sec: i64 = sec.parse().ok()?;
    let mut digits: String = frac.chars().take(9).collect();
    while digits.len() < 9 {
        digits.push('0');
    }
    Some(Timespec { tv_sec, tv_nsec: digits.parse().ok()? })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_keeps_paths_inside() {
        assert_eq!(clean(Path::new("/a/./b/../c")).unwrap(), PathBuf::from("a/c"));
        assert_eq!(clean(Path::new("./")).unwrap(), PathBuf::new());
        let err = clean(Path::new("a/../../etc/passwd")).unwrap_err();
        assert!(err.to_string().contains("a/../../etc/passwd"), "{err}");
    }

    #[test]
    fn pax_time_parses_fractions() {
        let t = parse_pax_time(b"1700000000.5").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (1700000000, 500_000_000));
    }
}
