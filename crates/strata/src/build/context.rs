//! Where COPY, ADD and bind mounts take files from: the build context (a
//! directory, filtered by its ignore file) or another stage's or image's
//! root. Resolves sources (paths and globs, never outside the root), keys
//! them by content for the build cache (paths, types, modes, bytes and link
//! targets; never mtimes), and copies them into a step's snapshot.

use std::fs::{self, File};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use glob::{MatchOptions, Pattern};
use rustix::fs::{AtFlags, Gid, Timespec, Timestamps, Uid, CWD};

use super::ignore::{clean, Ignore};
use crate::confined::{Dir, Root};
use crate::digest::Hasher;
use crate::error::{Error, IoContext, Result};

const GLOB: MatchOptions =
    MatchOptions { case_sensitive: true, require_literal_separator: true, require_literal_leading_dot: false };

/// A tree files are copied from.
#[derive(Debug, Clone)]
pub struct SourceRoot {
    /// Its directory on the host.
    pub root: PathBuf,
    /// Exclusions (the context's ignore file; empty for stages and images).
    pub ignore: Ignore,
    /// Whether copies keep the files' owners (stages and images) or make them root's (the context).
    pub keep_owner: bool,
}

/// Owner and mode a copy gives its files.
#[derive(Debug, Clone, Copy, Default)]
pub struct CopyMode {
    /// `--chown`, resolved.
    pub chown: Option<(u32, u32)>,
    /// `--chmod`.
    pub chmod: Option<u32>,
}

impl SourceRoot {
    /// The tree, opened for lookups confined to it.
    fn tree(&self) -> Result<Root> {
        Root::open(&self.root)
    }

    /// The context-relative paths a COPY source names: a path, or a glob
    /// whose matches are returned sorted. Errors say what was not found.
    /// Every lookup stays inside the root: a symlink to a host path names
    /// that path inside the root, where it is usually missing.
    pub fn resolve(&self, source: &str) -> std::result::Result<Vec<String>, String> {
        let rel = clean(source).ok_or_else(|| format!("{source}: outside the build context"))?;
        let tree = self.tree().map_err(|e| e.to_string())?;
        let exists = |rel: &str| tree.lookup(rel).ok().flatten().is_some();
        if !rel.contains(['*', '?', '[']) {
            if !exists(&rel) || (!rel.is_empty() && self.ignored(&tree, &rel)) {
                return Err(format!("{source}: not found in the build context (or excluded by .dockerignore)"));
            }
            return Ok(vec![rel]);
        }
        let mut found = vec![String::new()];
        for part in rel.split('/') {
            let mut next = Vec::new();
            let pat = Pattern::new(part).map_err(|e| format!("{source}: bad pattern: {}", e.msg))?;
            for base in &found {
                if !part.contains(['*', '?', '[']) {
                    let cand = if base.is_empty() { part.to_string() } else { format!("{base}/{part}") };
                    if exists(&cand) {
                        next.push(cand);
                    }
                    continue;
                }
                let Ok(Some(dir)) = tree.resolve(base) else { continue };
                let Ok(rd) = fs::read_dir(dir.proc_path()) else { continue };
                for e in rd.flatten() {
                    let name = e.file_name().to_string_lossy().into_owned();
                    if pat.matches_with(&name, GLOB) {
                        next.push(if base.is_empty() { name } else { format!("{base}/{name}") });
                    }
                }
            }
            found = next;
        }
        found.retain(|r| !self.ignored(&tree, r));
        found.sort();
        if found.is_empty() {
            return Err(format!("{source}: no source files were specified (nothing matches)"));
        }
        Ok(found)
    }

    /// `rel` inside the root with its symlinks resolved, as a relative path:
    /// what the ignore file is checked against, so a link to an excluded
    /// file or directory does not bring it in.
    fn real_rel(&self, tree: &Root, rel: &str) -> Option<String> {
        let e = tree.lookup(rel).ok()??;
        let real = fs::read_link(e.proc_path()).ok()?;
        let root = fs::canonicalize(&self.root).ok()?;
        Some(real.strip_prefix(&root).ok()?.to_string_lossy().into_owned())
    }

    fn ignored(&self, tree: &Root, rel: &str) -> bool {
        self.ignore.excluded(rel) || self.real_rel(tree, rel).is_some_and(|r| !r.is_empty() && self.ignore.excluded(&r))
    }

    /// Entries under `rel` (itself first), sorted, without excluded ones.
    /// `rel`'s own symlinks are followed inside the root except its last
    /// component; below it nothing is followed.
    pub fn walk(&self, rel: &str) -> Result<Vec<(String, fs::Metadata)>> {
        let tree = self.tree()?;
        let entry = tree.lookup(rel)?.ok_or_else(|| Error::not_found("source", rel.to_string()))?;
        let md = entry.metadata()?;
        let is_dir = md.is_dir();
        let mut out = vec![(rel.to_string(), md)];
        if is_dir {
            let key = self.real_rel(&tree, rel).unwrap_or_else(|| rel.to_string());
            self.walk_dir(&entry.open_dir()?, rel, &key, &mut out)?;
        }
        Ok(out)
    }

    /// `rel` names entries in the result; `key` is the same directory's real
    /// path in the root, which the ignore rules are checked against.
    fn walk_dir(&self, dir: &Dir, rel: &str, key: &str, out: &mut Vec<(String, fs::Metadata)>) -> Result<()> {
        let path = dir.child_path("");
        let mut names: Vec<String> = fs::read_dir(&path)
            .at(rel)?
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<io::Result<_>>()
            .at(rel)?;
        names.sort();
        for n in names {
            let child = if rel.is_empty() { n.clone() } else { format!("{rel}/{n}") };
            let child_key = if key.is_empty() { n.clone() } else { format!("{key}/{n}") };
            let Some(md) = dir.stat(&n)? else { continue };
            let excluded = self.ignore.excluded(&child_key);
            if excluded && !(md.is_dir() && self.ignore.may_reinclude_below(&child_key)) {
                continue;
            }
            let is_dir = md.is_dir();
            if !excluded {
                out.push((child.clone(), md));
            }
            if is_dir {
                self.walk_dir(&dir.subdir(&n)?, &child, &child_key, out)?;
            }
        }
        Ok(())
    }

    /// `rel` opened for reading when it is a regular file (not a link).
    pub fn open_regular(&self, rel: &str) -> Result<Option<File>> {
        match self.tree()?.lookup(rel)? {
            Some(e) if e.metadata()?.is_file() => e.open_read().map(Some),
            _ => Ok(None),
        }
    }

    /// Open a regular file the walk found, without following anything outside the root.
    fn open_file(tree: &Root, rel: &str) -> Result<File> {
        let e = tree.lookup(rel)?.ok_or_else(|| Error::not_found("source", rel.to_string()))?;
        if !e.metadata()?.is_file() {
            return Err(Error::invalid(format!("{rel}: changed while it was read")));
        }
        e.open_read()
    }

    fn read_link(tree: &Root, rel: &str) -> Result<PathBuf> {
        let e = tree.lookup(rel)?.ok_or_else(|| Error::not_found("source", rel.to_string()))?;
        let t = rustix::fs::readlinkat(e.fd(), "", Vec::new()).at(rel)?;
        Ok(PathBuf::from(std::ffi::OsStr::from_bytes(t.as_bytes())))
    }

    /// Feed the content identity of `rels` (and everything under them) to `h`.
    pub fn hash_into(&self, rels: &[String], h: &mut Hasher) -> Result<()> {
        let tree = self.tree()?;
        for rel in rels {
            h.update(format!("source {rel}\n").as_bytes());
            for (path, md) in self.walk(rel)? {
                let sub = path.strip_prefix(rel.as_str()).unwrap_or(&path);
                let mode = md.mode();
                let owner = if self.keep_owner { format!("{}:{}", md.uid(), md.gid()) } else { String::new() };
                h.update(format!("{sub}\0{mode:o}\0{owner}\0").as_bytes());
                if md.is_file() {
                    let (d, _) =
                        crate::digest::HashingReader::new(Self::open_file(&tree, &path)?).drain_finish().at(&path)?;
                    h.update(d.as_str().as_bytes());
                } else if md.file_type().is_symlink() {
                    h.update(Self::read_link(&tree, &path)?.as_os_str().as_encoded_bytes());
                }
                h.update(b"\n");
            }
        }
        Ok(())
    }

    /// Copy `rel` to the container path `dest` inside the snapshot `rootfs`:
    /// a file or link becomes `dest`; a directory's contents go into `dest`.
    /// `dest` is resolved inside `rootfs` (its symlinks followed as the
    /// container would); below it every entry is written relative to a
    /// directory descriptor and nothing is followed, so nothing is written
    /// outside `rootfs`.
    pub fn copy(&self, rel: &str, rootfs: &Root, dest: &str, mode: CopyMode) -> Result<()> {
        let tree = self.tree()?;
        let entries = self.walk(rel)?;
        let owner = mode.chown.unwrap_or((0, 0));
        let (first, first_md) = &entries[0];
        if !first_md.is_dir() {
            let (dir, name) = rootfs.parent_for_write(dest, owner)?;
            return self.write_entry(&tree, first, first_md, &dir, Path::new(&name), mode);
        }
        let top = dest_dir(rootfs, dest, owner)?;
        // Directories are entered depth first; each gets its times once its children are in.
        let mut stack: Vec<(String, Dir, Option<&fs::Metadata>)> = vec![(first.clone(), top, None)];
        for (path, md) in &entries[1..] {
            let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
            while stack.last().is_some_and(|(p, _, _)| p != parent) {
                let (_, d, md) = stack.pop().expect("checked");
                if let Some(md) = md {
                    self.finish_dir(&d, md, mode)?;
                }
            }
            let Some((_, dir, _)) = stack.last() else {
                return Err(Error::invalid(format!("{path}: changed while it was copied")));
            };
            if md.is_dir() {
                match dir.stat(name)? {
                    Some(t) if t.is_dir() => {}
                    Some(_) => {
                        dir.remove(name)?;
                        dir.mkdir(name, 0o700)?;
                    }
                    None => dir.mkdir(name, 0o700)?,
                }
                let sub = dir.subdir(name)?;
                stack.push((path.clone(), sub, Some(md)));
            } else {
                self.write_entry(&tree, path, md, dir, Path::new(name), mode)?;
            }
        }
        while let Some((_, d, md)) = stack.pop() {
            if let Some(md) = md {
                self.finish_dir(&d, md, mode)?;
            }
        }
        Ok(())
    }

    /// Write one non-directory entry `name` into `dir`, replacing what is there.
    fn write_entry(
        &self,
        tree: &Root,
        rel: &str,
        md: &fs::Metadata,
        dir: &Dir,
        name: &Path,
        mode: CopyMode,
    ) -> Result<()> {
        if dir.stat(name)?.is_some() {
            dir.remove(name)?;
        }
        let ft = md.file_type();
        if ft.is_symlink() {
            dir.symlink(Self::read_link(tree, rel)?, name)?;
        } else if ft.is_file() {
            let mut out = dir.create_file(name, 0o600)?;
            io::copy(&mut Self::open_file(tree, rel)?, &mut out).at(name)?;
        } else {
            use std::os::unix::fs::FileTypeExt;
            let kind = if ft.is_char_device() {
                rustix::fs::FileType::CharacterDevice
            } else if ft.is_block_device() {
                rustix::fs::FileType::BlockDevice
            } else if ft.is_fifo() {
                rustix::fs::FileType::Fifo
            } else {
                return Ok(()); // sockets do not belong in images
            };
            dir.mknod(name, kind, md.mode() & 0o7777, md.rdev())?;
        }
        self.set_meta(dir, name, md, mode)
    }

    /// A copied directory's owner, mode and times, set through its own descriptor's parent-free path.
    fn finish_dir(&self, d: &Dir, md: &fs::Metadata, mode: CopyMode) -> Result<()> {
        self.set_meta(d, Path::new(""), md, mode)
    }

    fn set_meta(&self, dir: &Dir, name: &Path, md: &fs::Metadata, mode: CopyMode) -> Result<()> {
        let (uid, gid) = mode.chown.unwrap_or(if self.keep_owner { (md.uid(), md.gid()) } else { (0, 0) });
        let target = dir.child_path(name);
        rustix::fs::chownat(
            CWD,
            &target,
            Some(Uid::from_raw(uid)),
            Some(Gid::from_raw(gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .at(name)?;
        if !md.file_type().is_symlink() {
            let perm = mode.chmod.unwrap_or(md.mode() & 0o7777);
            if name.as_os_str().is_empty() {
                // The directory itself, through its own descriptor.
                rustix::fs::chmodat(CWD, &target, rustix::fs::Mode::from_raw_mode(perm), AtFlags::empty()).at(name)?;
            } else {
                dir.chmod(name, perm).at(name)?;
            }
        }
        let t = Timespec { tv_sec: md.mtime(), tv_nsec: md.mtime_nsec() as _ };
        rustix::fs::utimensat(
            CWD,
            &target,
            &Timestamps { last_access: t, last_modification: t },
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .at(name)?;
        Ok(())
    }
}

/// The directory a directory source is copied into: `dest` resolved inside
/// `rootfs` (a link to a directory followed inside it), made when missing
/// (owned by `owner`; an existing one keeps its metadata), or replacing a
/// file that is in the way.
fn dest_dir(rootfs: &Root, dest: &str, owner: (u32, u32)) -> Result<Dir> {
    if let Some(e) = rootfs.resolve(dest)? {
        if e.metadata()?.is_dir() {
            return e.open_dir();
        }
        let (parent, name) = rootfs.parent_for_write(dest, owner)?;
        if parent.stat(&name)?.is_some_and(|m| !m.file_type().is_symlink()) {
            parent.remove(&name)?;
        }
    }
    rootfs.mkdir_all(dest, owner)
}
