//! Where COPY, ADD and bind mounts take files from: the build context (a
//! directory, filtered by its ignore file) or another stage's or image's
//! root. Resolves sources (paths and globs, never outside the root), keys
//! them by content for the build cache (paths, types, modes, bytes and link
//! targets; never mtimes), and copies them into a step's snapshot.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use glob::{MatchOptions, Pattern};
use rustix::fs::{AtFlags, Gid, Timespec, Timestamps, Uid, CWD};

use super::ignore::{clean, Ignore};
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
    fn abs(&self, rel: &str) -> PathBuf {
        if rel.is_empty() {
            self.root.clone()
        } else {
            self.root.join(rel)
        }
    }

    /// The context-relative paths a COPY source names: a path, or a glob
    /// whose matches are returned sorted. Errors say what was not found.
    pub fn resolve(&self, source: &str) -> std::result::Result<Vec<String>, String> {
        let rel = clean(source).ok_or_else(|| format!("{source}: outside the build context"))?;
        if !rel.contains(['*', '?', '[']) {
            let p = self.abs(&rel);
            if fs::symlink_metadata(&p).is_err() || (!rel.is_empty() && self.ignore.excluded(&rel)) {
                return Err(format!("{source}: not found in the build context (or excluded by .dockerignore)"));
            }
            return Ok(vec![rel]);
        }
        let mut found = vec![String::new()];
        for part in rel.split('/') {
            let mut next = Vec::new();
            let pat = Pattern::new(part).map_err(|e| format!("{source}: bad pattern: {}", e.msg))?;
            for base in &found {
                let dir = self.abs(base);
                if !part.contains(['*', '?', '[']) {
                    let cand = if base.is_empty() { part.to_string() } else { format!("{base}/{part}") };
                    if fs::symlink_metadata(self.abs(&cand)).is_ok() {
                        next.push(cand);
                    }
                    continue;
                }
                let Ok(rd) = fs::read_dir(&dir) else { continue };
                for e in rd.flatten() {
                    let name = e.file_name().to_string_lossy().into_owned();
                    if pat.matches_with(&name, GLOB) {
                        next.push(if base.is_empty() { name } else { format!("{base}/{name}") });
                    }
                }
            }
            found = next;
        }
        found.retain(|r| !self.ignore.excluded(r));
        found.sort();
        if found.is_empty() {
            return Err(format!("{source}: no source files were specified (nothing matches)"));
        }
        Ok(found)
    }

    /// Entries under `rel` (itself first), sorted, without excluded ones.
    pub fn walk(&self, rel: &str) -> Result<Vec<(String, fs::Metadata)>> {
        let mut out = Vec::new();
        let p = self.abs(rel);
        let md = fs::symlink_metadata(&p).at(&p)?;
        let is_dir = md.is_dir();
        out.push((rel.to_string(), md));
        if is_dir {
            self.walk_dir(rel, &mut out)?;
        }
        Ok(out)
    }

    fn walk_dir(&self, rel: &str, out: &mut Vec<(String, fs::Metadata)>) -> Result<()> {
        let dir = self.abs(rel);
        let mut names: Vec<String> = fs::read_dir(&dir)
            .at(&dir)?
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<io::Result<_>>()
            .at(&dir)?;
        names.sort();
        for n in names {
            let child = if rel.is_empty() { n } else { format!("{rel}/{n}") };
            let p = self.abs(&child);
            let md = fs::symlink_metadata(&p).at(&p)?;
            let excluded = self.ignore.excluded(&child);
            if excluded && !(md.is_dir() && self.ignore.may_reinclude_below(&child)) {
                continue;
            }
            let is_dir = md.is_dir();
            if !excluded {
                out.push((child.clone(), md));
            }
            if is_dir {
                self.walk_dir(&child, out)?;
            }
        }
        Ok(())
    }

    /// Feed the content identity of `rels` (and everything under them) to `h`.
    pub fn hash_into(&self, rels: &[String], h: &mut Hasher) -> Result<()> {
        for rel in rels {
            h.update(format!("source {rel}\n").as_bytes());
            for (path, md) in self.walk(rel)? {
                let sub = path.strip_prefix(rel.as_str()).unwrap_or(&path);
                let mode = md.mode();
                let owner = if self.keep_owner { format!("{}:{}", md.uid(), md.gid()) } else { String::new() };
                h.update(format!("{sub}\0{mode:o}\0{owner}\0").as_bytes());
                let p = self.abs(&path);
                if md.is_file() {
                    let f = File::open(&p).at(&p)?;
                    let (d, _) = crate::digest::HashingReader::new(f).drain_finish().at(&p)?;
                    h.update(d.as_str().as_bytes());
                } else if md.file_type().is_symlink() {
                    h.update(fs::read_link(&p).at(&p)?.as_os_str().as_encoded_bytes());
                }
                h.update(b"\n");
            }
        }
        Ok(())
    }

    /// Copy `rel` to the container path `dest` inside the snapshot at
    /// `rootfs`: a file or link becomes `dest`; a directory's contents go
    /// into `dest`. Every target is resolved inside `rootfs` (its symlinks
    /// followed as the container would), so nothing is written outside it.
    pub fn copy(&self, rel: &str, rootfs: &Path, dest: &str, mode: CopyMode) -> Result<()> {
        let dest = dest.trim_end_matches('/');
        for (i, (path, md)) in self.walk(rel)?.into_iter().enumerate() {
            let sub = path.strip_prefix(rel).unwrap_or(&path).trim_start_matches('/');
            let cpath = if sub.is_empty() { dest.to_string() } else { format!("{dest}/{sub}") };
            let ft = md.file_type();
            let target = if ft.is_dir() && sub.is_empty() {
                resolve_for_write(rootfs, &cpath)?
            } else {
                let (parent, name) = cpath.rsplit_once('/').unwrap_or(("", &cpath));
                resolve_for_write(rootfs, parent)?.join(name)
            };
            if i == 0 {
                let owner = mode.chown.unwrap_or((0, 0));
                if ft.is_dir() {
                    if fs::symlink_metadata(&target).is_ok_and(|t| !t.is_dir()) {
                        crate::tree::remove(&target)?;
                    }
                    // Made if missing; an existing destination directory keeps its own metadata.
                    make_parents(rootfs, &target, owner)?;
                    continue;
                }
                make_parents(rootfs, target.parent().unwrap_or(rootfs), owner)?;
            }
            let src = self.abs(&path);
            if ft.is_dir() {
                match fs::symlink_metadata(&target) {
                    Ok(t) if t.is_dir() => {}
                    Ok(_) => {
                        crate::tree::remove(&target)?;
                        fs::create_dir(&target).at(&target)?;
                    }
                    Err(_) => fs::create_dir(&target).at(&target)?,
                }
            } else {
                if fs::symlink_metadata(&target).is_ok() {
                    crate::tree::remove(&target)?;
                }
                if ft.is_symlink() {
                    let link = fs::read_link(&src).at(&src)?;
                    std::os::unix::fs::symlink(&link, &target).at(&target)?;
                } else if ft.is_file() {
                    fs::copy(&src, &target).at(&target)?;
                } else {
                    crate::tree::copy_entry(&src, &target, &md)?;
                    continue;
                }
            }
            self.set_meta(&target, &md, mode)?;
        }
        Ok(())
    }

    fn set_meta(&self, target: &Path, md: &fs::Metadata, mode: CopyMode) -> Result<()> {
        let (uid, gid) = mode.chown.unwrap_or(if self.keep_owner { (md.uid(), md.gid()) } else { (0, 0) });
        rustix::fs::chownat(CWD, target, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)), AtFlags::SYMLINK_NOFOLLOW)
            .at(target)?;
        if !md.file_type().is_symlink() {
            let perm = mode.chmod.unwrap_or(md.mode() & 0o7777);
            fs::set_permissions(target, fs::Permissions::from_mode(perm)).at(target)?;
        }
        let t = Timespec { tv_sec: md.mtime(), tv_nsec: md.mtime_nsec() as _ };
        rustix::fs::utimensat(
            CWD,
            target,
            &Timestamps { last_access: t, last_modification: t },
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .at(target)?;
        Ok(())
    }
}

/// Resolve a container path for writing: symlinks in the part that exists
/// are followed as the container would (absolute links restart at `rootfs`),
/// the rest is appended as is.
pub fn resolve_for_write(rootfs: &Path, path: &str) -> Result<PathBuf> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
    for keep in (0..=parts.len()).rev() {
        let prefix: PathBuf = parts[..keep].iter().collect();
        if let Some(host) = crate::container::spec::resolve_in_root(rootfs, &prefix) {
            let mut out = host;
            for p in &parts[keep..] {
                if *p == ".." {
                    return Err(Error::invalid(format!("{path}: \"..\" after a path that does not exist")));
                }
                out.push(p);
            }
            if !out.starts_with(rootfs) {
                return Err(Error::invalid(format!("{path}: resolves outside the image")));
            }
            return Ok(out);
        }
    }
    Ok(rootfs.to_path_buf())
}

/// Create `dir`'s missing ancestors below `rootfs` (mode 755, owned by `owner`).
pub fn make_parents(rootfs: &Path, dir: &Path, owner: (u32, u32)) -> Result<()> {
    let mut missing = Vec::new();
    let mut cur = dir.to_path_buf();
    while cur.starts_with(rootfs) && cur != rootfs && fs::symlink_metadata(&cur).is_err() {
        missing.push(cur.clone());
        if !cur.pop() {
            break;
        }
    }
    for d in missing.into_iter().rev() {
        fs::create_dir(&d).at(&d)?;
        fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).at(&d)?;
        rustix::fs::chown(&d, Some(Uid::from_raw(owner.0)), Some(Gid::from_raw(owner.1))).at(&d)?;
    }
    Ok(())
}
