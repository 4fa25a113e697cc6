//! Where COPY, ADD and bind mounts take files from: the build context (a
//! directory, filtered by its ignore file) or another stage's or image's
//! root. Resolves sources (paths and globs, never outside the root), keys
//! them by content for the build cache (paths, types, modes, bytes and link
//! targets; never mtimes), and copies them into a step's snapshot.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use crate::wildcard::Wildcard;
use rustix::fs::{Gid, Timespec, Timestamps, Uid};

use super::ignore::{clean, Ignore};
use crate::confined::{Dir, Root};
use crate::digest::Hasher;
use crate::error::{Error, IoContext, Result};

/// A tree files are copied from.
#[derive(Debug, Clone)]
pub struct SourceRoot {
    /// Its directory on the host.
    pub root: PathBuf,
    /// Exclusions (the context's ignore file; empty for stages and images).
    pub ignore: Ignore,
    /// Whether copies keep the files' owners (stages and images) or make them root's (the context).
    pub keep_owner: bool,
    /// `COPY --exclude` patterns, matched against paths inside each source.
    pub exclude: Ignore,
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
    /// `root` with no ignore file and no `--exclude`.
    pub fn of(root: PathBuf, keep_owner: bool) -> SourceRoot {
        SourceRoot { root, ignore: Ignore::default(), keep_owner, exclude: Ignore::default() }
    }

    /// What a COPY source names, each with the path it keeps below the
    /// destination: its name or, with `--parents`, its path (below a `/./`
    /// in the source, if any). What `--exclude` names is left out.
    pub fn sources(&self, source: &str, parents: bool) -> std::result::Result<Vec<(String, String)>, String> {
        let (pivot, pattern) = match source.find("/./").filter(|_| parents) {
            Some(i) => (clean(&source[..i]).unwrap_or_default(), source.replacen("/./", "/", 1)),
            None => (String::new(), source.to_string()),
        };
        let mut out = Vec::new();
        for rel in self.resolve(&pattern)? {
            let name = rel.rsplit('/').next().unwrap_or(&rel);
            if self.exclude.excluded(&rel) || self.exclude.excluded(name) {
                continue;
            }
            let kept = match rel.strip_prefix(&format!("{pivot}/")).filter(|_| !pivot.is_empty()) {
                _ if !parents => name.to_string(),
                Some(below) => below.to_string(),
                None => rel.clone(),
            };
            out.push((rel, kept));
        }
        Ok(out)
    }

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
            let pat = Wildcard::new(part, true).map_err(|e| format!("{source}: bad pattern: {e}"))?;
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
                    if pat.matches(&name) {
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
        Some(tree.relative_path(&e)?.to_string_lossy().into_owned())
    }

    fn ignored(&self, tree: &Root, rel: &str) -> bool {
        self.ignore.excluded(rel) || self.real_rel(tree, rel).is_some_and(|r| !r.is_empty() && self.ignore.excluded(&r))
    }

    /// The directory holding `rel` (its symlinks resolved inside the root)
    /// and `rel`'s last name, which is not followed; for the root itself,
    /// the root and an empty name.
    fn locate(&self, tree: &Root, rel: &str) -> Result<(Dir, OsString)> {
        match rel.rsplit_once('/') {
            _ if rel.is_empty() => Ok((tree.dir("/")?, OsString::new())),
            Some((parent, name)) => Ok((tree.dir(parent)?, name.into())),
            None => Ok((tree.dir("/")?, rel.into())),
        }
    }

    /// What a named source stands for: `rel` itself, or, when `rel` is a
    /// symlink, its target inside the root (as BuildKit: a source that is a
    /// link is copied as what it points to, under its own name; links below
    /// a copied directory stay links). A dangling link stands for itself.
    pub fn followed(&self, rel: &str) -> Result<String> {
        if !self.metadata(rel)?.file_type().is_symlink() {
            return Ok(rel.to_string());
        }
        let tree = self.tree()?;
        Ok(match tree.resolve(rel)? {
            Some(e) => tree.relative_path(&e).map(|p| p.to_string_lossy().into_owned()).unwrap_or(rel.to_string()),
            None => rel.to_string(),
        })
    }

    /// `rel`'s own metadata (a link's, not its target's).
    pub fn metadata(&self, rel: &str) -> Result<fs::Metadata> {
        let (dir, name) = self.locate(&self.tree()?, rel)?;
        dir.stat(&name)?.ok_or_else(|| Error::not_found("source", rel.to_string()))
    }

    /// `rel` opened for reading when it is a regular file (not a link).
    pub fn open_regular(&self, rel: &str) -> Result<Option<File>> {
        let (dir, name) = self.locate(&self.tree()?, rel)?;
        match dir.stat(&name)? {
            Some(md) if md.is_file() => dir.open_file(&name).map(Some),
            _ => Ok(None),
        }
    }

    /// The ignore rules' name for `rel`: its real path in the root.
    fn key_of(&self, tree: &Root, rel: &str) -> String {
        self.real_rel(tree, rel).unwrap_or_else(|| rel.to_string())
    }

    /// The entries of the source directory `dir` (named `rel`, `key` to the
    /// ignore rules), sorted; excluded ones left out unless a directory
    /// whose contents a later rule may bring back.
    fn children(&self, dir: &Dir, rel: &str, key: &str, within: &str) -> Result<Vec<Child>> {
        let join = |a: &str, b: &str| if a.is_empty() { b.to_string() } else { format!("{a}/{b}") };
        let mut out = Vec::new();
        for name in dir.names()? {
            let n = name.to_string_lossy().into_owned();
            let Some(md) = dir.stat(&name)? else { continue };
            let key = join(key, &n);
            let within = join(within, &n);
            let (by_ignore, by_exclude) = (self.ignore.excluded(&key), self.exclude.excluded(&within));
            let walked = md.is_dir()
                && (!by_ignore || self.ignore.may_reinclude_below(&key))
                && (!by_exclude || self.exclude.may_reinclude_below(&within));
            let excluded = by_ignore || by_exclude;
            if excluded && !walked {
                continue;
            }
            out.push(Child { rel: join(rel, &n), name, key, within, md, excluded });
        }
        Ok(out)
    }

    /// Feed the content identity of `rels` (and everything under them) to `h`.
    pub fn hash_into(&self, rels: &[String], h: &mut Hasher, log: &mut Vec<(String, String)>) -> Result<()> {
        let tree = self.tree()?;
        for rel in rels {
            h.update(format!("source {rel}\n").as_bytes());
            let rel = &self.followed(rel)?;
            let (dir, name) = self.locate(&tree, rel)?;
            let md = dir.stat(&name)?.ok_or_else(|| Error::not_found("source", rel.to_string()))?;
            self.hash_entry(h, "", &md, &dir, &name, rel, log)?;
            if md.is_dir() {
                let sub = if name.is_empty() { dir } else { dir.subdir(&name)? };
                self.hash_dir(h, &sub, rel, &self.key_of(&tree, rel), "", "", log)?;
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn hash_dir(
        &self,
        h: &mut Hasher,
        dir: &Dir,
        rel: &str,
        key: &str,
        shown: &str,
        within: &str,
        log: &mut Vec<(String, String)>,
    ) -> Result<()> {
        for c in self.children(dir, rel, key, within)? {
            let shown = format!("{shown}/{}", c.name.to_string_lossy());
            if !c.excluded {
                self.hash_entry(h, &shown, &c.md, dir, &c.name, &c.rel, log)?;
            }
            if c.md.is_dir() {
                self.hash_dir(h, &dir.subdir(&c.name)?, &c.rel, &c.key, &shown, &c.within, log)?;
            }
        }
        Ok(())
    }

    /// Paths, types, modes, owners (when kept), bytes and link targets; never mtimes.
    /// What was hashed is logged under the entry's context path `rel`
    /// (for `build --explain`: which file changed).
    #[allow(clippy::too_many_arguments)]
    fn hash_entry(
        &self,
        h: &mut Hasher,
        shown: &str,
        md: &fs::Metadata,
        dir: &Dir,
        name: &OsStr,
        rel: &str,
        log: &mut Vec<(String, String)>,
    ) -> Result<()> {
        let owner = if self.keep_owner { format!("{}:{}", md.uid(), md.gid()) } else { String::new() };
        let head = format!("{:o}{}{owner}", md.mode(), if owner.is_empty() { "" } else { " " });
        h.update(format!("{shown}\0{:o}\0{owner}\0", md.mode()).as_bytes());
        let what = if md.is_file() {
            let (d, _) = crate::digest::HashingReader::new(dir.open_file(name)?).drain_finish().at(shown)?;
            h.update(d.as_str().as_bytes());
            format!("mode {head} {d}")
        } else if md.file_type().is_symlink() {
            let target = dir.read_link(name)?;
            h.update(target.as_os_str().as_encoded_bytes());
            format!("mode {head} -> {}", target.display())
        } else {
            format!("mode {head}")
        };
        h.update(b"\n");
        log.push((rel.to_string(), what));
        Ok(())
    }

    /// Copy `rel` to the container path `dest` inside the snapshot `rootfs`:
    /// a file or link becomes `dest`; a directory's contents go into `dest`.
    /// `dest` is resolved inside `rootfs` (its symlinks followed as the
    /// container would); below it source and target are walked together by
    /// directory descriptors, every entry read and written relative to one
    /// and nothing followed, so nothing is read or written outside the roots.
    pub fn copy(&self, rel: &str, rootfs: &Root, dest: &str, mode: CopyMode) -> Result<()> {
        let tree = self.tree()?;
        let owner = mode.chown.unwrap_or((0, 0));
        let (dir, name) = self.locate(&tree, rel)?;
        let md = dir.stat(&name)?.ok_or_else(|| Error::not_found("source", rel.to_string()))?;
        if !md.is_dir() {
            let (to, to_name) = rootfs.parent_for_write(dest, owner)?;
            return self.write_entry(&dir, &name, &md, &to, &to_name, mode);
        }
        let src = if name.is_empty() { dir } else { dir.subdir(&name)? };
        let top = dest_dir(rootfs, dest, owner)?;
        self.copy_dir(&src, &top, rel, &self.key_of(&tree, rel), "", mode)
    }

    fn copy_dir(&self, src: &Dir, dst: &Dir, rel: &str, key: &str, within: &str, mode: CopyMode) -> Result<()> {
        for c in self.children(src, rel, key, within)? {
            if !c.md.is_dir() {
                self.write_entry(src, &c.name, &c.md, dst, &c.name, mode)?;
                continue;
            }
            let existed = match dst.stat(&c.name)? {
                Some(t) if t.is_dir() => true,
                Some(_) => {
                    dst.remove(&c.name)?;
                    false
                }
                None => false,
            };
            if !existed {
                dst.mkdir(&c.name, 0o700)?;
            }
            let sub = dst.subdir(&c.name)?;
            self.copy_dir(&src.subdir(&c.name)?, &sub, &c.rel, &c.key, &c.within, mode)?;
            if c.excluded && !existed && sub.names()?.is_empty() {
                // Excluded, and nothing below it brought back: it was never there.
                dst.remove(&c.name)?;
                continue;
            }
            // After its children: filling it changed its times.
            let (uid, gid, perm, times) = self.meta(&c.md, mode);
            fd_meta(sub.fd(), uid, gid, perm, &times).at(&c.rel)?;
        }
        Ok(())
    }

    /// Owner, mode and times a copy of an entry described by `md` gets.
    fn meta(&self, md: &fs::Metadata, mode: CopyMode) -> (u32, u32, u32, Timestamps) {
        let (uid, gid) = mode.chown.unwrap_or(if self.keep_owner { (md.uid(), md.gid()) } else { (0, 0) });
        let perm = mode.chmod.unwrap_or(md.mode() & 0o7777);
        let t = Timespec { tv_sec: md.mtime(), tv_nsec: md.mtime_nsec() as _ };
        (uid, gid, perm, Timestamps { last_access: t, last_modification: t })
    }

    /// Write one non-directory entry `name` of `src` as `to_name` in `dst`, replacing what is there.
    fn write_entry(
        &self,
        src: &Dir,
        name: &OsStr,
        md: &fs::Metadata,
        dst: &Dir,
        to_name: &OsStr,
        mode: CopyMode,
    ) -> Result<()> {
        if dst.stat(to_name)?.is_some() {
            dst.remove(to_name)?;
        }
        let (uid, gid, perm, times) = self.meta(md, mode);
        let ft = md.file_type();
        if ft.is_file() {
            let mut out = dst.create_file(to_name, 0o600)?;
            io::copy(&mut src.open_file(name)?, &mut out).at(to_name)?;
            return fd_meta(out.as_fd(), uid, gid, perm, &times).at(to_name);
        }
        if ft.is_symlink() {
            dst.symlink(src.read_link(name)?, to_name)?;
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
            dst.mknod(to_name, kind, md.mode() & 0o7777, md.rdev())?;
            dst.chown(to_name, uid, gid)?;
            dst.chmod(to_name, perm).at(to_name)?;
            return dst.set_times(to_name, &times);
        }
        dst.chown(to_name, uid, gid)?;
        dst.set_times(to_name, &times)
    }
}

/// An entry of a source directory being walked.
struct Child {
    name: OsString,
    /// Its path as the copy names it.
    rel: String,
    /// Its real path, which the ignore rules are checked against.
    key: String,
    /// Its path inside the source being copied, which `--exclude` is checked against.
    within: String,
    md: fs::Metadata,
    /// Excluded itself, walked only for what a later rule brings back.
    excluded: bool,
}

/// Owner, then mode (a chown clears setuid bits), through the descriptor.
pub(super) fn fd_owner_mode(fd: BorrowedFd<'_>, uid: u32, gid: u32, perm: u32) -> io::Result<()> {
    rustix::fs::fchown(fd, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))?;
    rustix::fs::fchmod(fd, rustix::fs::Mode::from_raw_mode(perm))?;
    Ok(())
}

/// Owner and mode, then times, through the descriptor.
fn fd_meta(fd: BorrowedFd<'_>, uid: u32, gid: u32, perm: u32, times: &Timestamps) -> io::Result<()> {
    fd_owner_mode(fd, uid, gid, perm)?;
    rustix::fs::futimens(fd, times)?;
    Ok(())
}

/// The directory a directory source is copied into: `dest` resolved inside
/// `rootfs` (a link to a directory followed inside it), made when missing
/// (owned by `owner`; an existing one keeps its metadata). A file there is
/// an error, as BuildKit's "cannot copy to non-directory".
fn dest_dir(rootfs: &Root, dest: &str, owner: (u32, u32)) -> Result<Dir> {
    if let Some(e) = rootfs.resolve(dest)? {
        if e.metadata()?.is_dir() {
            return e.open_dir();
        }
        return Err(Error::invalid(format!("{dest}: cannot copy a directory onto a file")));
    }
    rootfs.mkdir_all(dest, owner)
}
