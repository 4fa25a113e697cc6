//! COPY and ADD: sources from the context, another stage or image, heredocs
//! and (ADD) URLs and local archives, written into a snapshot of the stage
//! with Docker's destination rules, owners and modes; and the directory a
//! WORKDIR names, made when missing.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use super::context::{CopyMode, SourceRoot};
use super::snapshot::Snapshot;
use super::{is_archive, is_url, read_head, Builder, Ignore, State};
use crate::confined::Root;
use crate::container::spec;
use crate::dockerfile::words::{self, Vars};
use crate::dockerfile::{self, Instruction, Located, Source};
use crate::error::{Error, IoContext, Result};
use crate::store::LayerRecord;
use crate::tmp::TempDir;

impl Builder<'_> {
    /// COPY/ADD `--link`: the step's layer, made apart from the stage's files
    /// and kept in the cache under `link_key` (which leaves the stage out),
    /// so on a changed stage the same layer is laid on it again rather than
    /// made anew, as BuildKit's. Returns the layer and whether it was reused.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn linked_copy_step(
        &mut self,
        stage: usize,
        state: &State,
        c: &dockerfile::Copy,
        vars: &Vars,
        st: &Located<Instruction>,
        add: bool,
        link_key: &crate::digest::Digest,
    ) -> Result<(LayerRecord, bool)> {
        let top: Vec<crate::digest::Digest> = state.layers.iter().rev().map(|l| l.chain_id.clone()).collect();
        if !self.opts.no_cache {
            let made = self.core.store.cached_step(link_key)?.and_then(|(_, chain)| chain);
            if let Some(made) = made.map(|c| self.core.store.layer(&c)).transpose()?.flatten() {
                if made.parent.as_ref() == top.first() {
                    return Ok((made, true));
                }
                // The same files on another stage: a copy of the layer's tree, laid on it.
                let work = TempDir::new(&self.core.tmp, "layer")?;
                let diff = work.path().join("diff");
                std::fs::create_dir(&diff).at(&diff)?;
                crate::tree::copy_tree(&crate::unpack::layer_dir(&self.core.layers_dir, &made.chain_id), &diff)?;
                let l = self.core.unpacker().install_tree(
                    &self.core.store,
                    work,
                    &top,
                    &crate::layer::WriteOptions::from_env(),
                )?;
                return Ok((l, true));
            }
        }
        let l = self.copy_step(stage, state, c, vars, st, add, true)?;
        self.core.store.put_cached_step(link_key, "{}", Some(&l.chain_id))?;
        Ok((l, false))
    }

    /// `root` with the step's `--exclude` patterns, expanded.
    pub(super) fn with_excludes(
        &self,
        mut root: SourceRoot,
        c: &dockerfile::Copy,
        vars: &Vars,
        line: usize,
    ) -> Result<SourceRoot> {
        if c.exclude.is_empty() {
            return Ok(root);
        }
        let mut text = String::new();
        for e in &c.exclude {
            text.push_str(&words::expand(e, vars, self.df.escape).map_err(|e| self.err(line, e))?);
            text.push('\n');
        }
        root.exclude = Ignore::parse(&text, "--exclude").map_err(|e| self.err(line, e))?;
        Ok(root)
    }

    /// WORKDIR's directory, made when the stage lacks it (as BuildKit: mode
    /// 755 with its missing parents, owned by the USER at that point), as a
    /// layer of its own; `None` when it is already there.
    pub(super) fn workdir_step(&self, state: &State, next: &State, line: usize) -> Result<Option<LayerRecord>> {
        let dir = next.workdir();
        if dir.trim_matches('/').is_empty() {
            return Ok(None);
        }
        let snap = Snapshot::new(self.core, state, &[])?;
        let rootfs = Root::open(&snap.rootfs())?;
        if rootfs.resolve(&dir)?.map(|e| e.metadata()).transpose()?.is_some_and(|m| m.is_dir()) {
            return Ok(None);
        }
        let user = next.cfg("User").as_str().unwrap_or_default().to_string();
        let owner = spec::resolve_user(&user, &rootfs).map_err(|e| self.err(line, e))?;
        rootfs.mkdir_all(&dir, (owner.uid, owner.gid)).map_err(|e| self.err(line, format!("WORKDIR: {e}")))?;
        drop(rootfs);
        snap.commit(self.core, state, &[], false, &format!("{}:{line}", self.df.file)).map(Some)
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn copy_step(
        &mut self,
        stage: usize,
        state: &State,
        c: &dockerfile::Copy,
        vars: &Vars,
        st: &Located<Instruction>,
        add: bool,
        linked: bool,
    ) -> Result<LayerRecord> {
        let line = st.line;
        let esc = self.df.escape;
        let what = if add { "ADD" } else { "COPY" };
        let dest_raw = words::expand(&c.dest, vars, esc).map_err(|e| self.err(line, e))?;
        let dest = if dest_raw.starts_with('/') {
            dest_raw.clone()
        } else {
            format!("{}/{dest_raw}", state.workdir().trim_end_matches('/'))
        };
        let from = c.from.as_ref().map(|f| words::expand(f, vars, esc).map_err(|e| self.err(line, e))).transpose()?;
        let view = from.as_ref().map(|f| self.view(f, stage, line)).transpose()?;
        // Files from a directory --build-context are root's, as the context's; a stage's or image's keep their owners.
        let keep_owner = !matches!(from.as_deref().and_then(|f| self.named.get(f)), Some(super::NamedContext::Dir(_)));
        let root = match &view {
            Some(v) => SourceRoot::of(v.target.clone(), keep_owner),
            None => self.context.clone(),
        };
        let root = self.with_excludes(root, c, vars, line)?;
        // Sources, resolved before anything is written: each with the path
        // it keeps below the destination (`--parents`), else its name.
        let mut files: Vec<(String, String)> = Vec::new();
        let mut heredocs: Vec<String> = Vec::new();
        let mut urls: Vec<(String, PathBuf)> = Vec::new();
        // ADD of git repositories: each fetched tree (and the directory it is in).
        let mut repos = Vec::new();
        for s in &c.sources {
            match s {
                Source::Path(p) => {
                    let p = words::expand(p, vars, esc).map_err(|e| self.err(line, e))?;
                    if add && super::git::GitSource::is_git(&p) {
                        let g = super::git::GitSource::parse(&p).map_err(|e| self.err(line, e))?;
                        let fetched =
                            g.fetch(&self.core.tmp, c.keep_git_dir).map_err(|e| self.err(line, format!("ADD {e}")))?;
                        repos.push(fetched);
                        continue;
                    }
                    if is_url(&p) {
                        let file = self.download(&p, line)?;
                        if let Some(want) = &c.checksum {
                            let (got, _) = crate::digest::HashingReader::new(File::open(&file).at(&file)?)
                                .drain_finish()
                                .at(&file)?;
                            if got.as_str() != want {
                                return Err(self
                                    .err(line, format!("{what} {p}: checksum mismatch: expected {want}, got {got}")));
                            }
                        }
                        urls.push((p.clone(), file));
                        continue;
                    }
                    if c.checksum.is_some() {
                        return Err(self.err(line, format!("{what} --checksum takes URL sources only, not {p}")));
                    }
                    files.extend(
                        root.sources(&p, c.parents).map_err(|e| self.err(line, format!("{what} failed: {e}")))?,
                    );
                }
                Source::Heredoc(hd) => heredocs.push(if hd.expand {
                    words::expand_heredoc(&hd.body, vars).map_err(|e| self.err(line, e))?
                } else {
                    hd.body.clone()
                }),
            }
        }
        let many = files.len() + heredocs.len() + urls.len() + repos.len() > 1;
        let dir_form = dest_raw.ends_with('/') || dest_raw == "." || dest_raw.ends_with("/.");
        if many && !dir_form {
            return Err(self.err(
                line,
                format!("{what} with more than one source file: the destination must be a directory and end with a /"),
            ));
        }
        if !heredocs.is_empty() && dir_form {
            return Err(self.err(line, format!("{what} <<heredoc: give a file path as the destination")));
        }
        // --link: written on nothing, so the layer holds only what the step brings.
        let on = if linked { State { layers: Vec::new(), ..state.clone() } } else { state.clone() };
        let snap = Snapshot::new(self.core, &on, &[])?;
        let rootfs = Root::open(&snap.rootfs())?;
        let chown = c
            .chown
            .as_ref()
            .map(|u| {
                let u = words::expand(u, vars, esc).map_err(|e| self.err(line, e))?;
                match u.split_once(':') {
                    None => match u.parse::<u32>() {
                        Ok(n) => Ok((n, n)),
                        Err(_) => {
                            spec::resolve_user(&u, &rootfs).map(|x| (x.uid, x.gid)).map_err(|e| self.err(line, e))
                        }
                    },
                    Some(_) => spec::resolve_user(&u, &rootfs).map(|x| (x.uid, x.gid)).map_err(|e| self.err(line, e)),
                }
            })
            .transpose()?;
        let mode = CopyMode { chown, chmod: c.chmod };
        let dest_is_dir = dir_form
            || many
            || rootfs.resolve(&dest).ok().flatten().and_then(|e| e.metadata().ok()).is_some_and(|m| m.is_dir());
        for (rel, kept) in &files {
            let src = root.followed(rel)?;
            let md = &root.metadata(&src)?;
            if add && md.is_file() {
                if let Some(mut f) = root.open_regular(&src)? {
                    if is_archive(&read_head(&mut f).at(rel)?) {
                        io::Seek::rewind(&mut f).at(rel)?;
                        self.extract(f, rel, &rootfs, &dest, mode)
                            .map_err(|e| self.err(line, format!("{what} {rel}: {e}")))?;
                        continue;
                    }
                }
            }
            let target = if c.parents && !kept.is_empty() {
                format!("{}/{kept}", dest.trim_end_matches('/'))
            } else if md.is_dir() {
                dest.clone()
            } else if dest_is_dir {
                format!("{}/{kept}", dest.trim_end_matches('/'))
            } else {
                dest.clone()
            };
            root.copy(&src, &rootfs, &target, mode)?;
        }
        for (_, tree, _) in &repos {
            // As a directory source: its contents go into the destination.
            let from = SourceRoot { exclude: root.exclude.clone(), ..SourceRoot::of(tree.clone(), false) };
            from.copy("", &rootfs, &dest, mode)?;
        }
        for (url, file) in &urls {
            // As Docker: a downloaded file is not unpacked, and gets mode 600 unless --chmod says otherwise.
            let name = url
                .split(['?', '#'])
                .next()
                .unwrap_or(url)
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or("download");
            let target = if dest_is_dir { format!("{}/{name}", dest.trim_end_matches('/')) } else { dest.clone() };
            let mut src = File::open(file).at(file)?;
            write_file(&rootfs, &target, &mut src, chown.unwrap_or((0, 0)), c.chmod.unwrap_or(0o600))?;
        }
        for body in &heredocs {
            if rootfs.resolve(&dest)?.map(|e| e.metadata()).transpose()?.is_some_and(|m| m.is_dir()) {
                return Err(self.err(line, format!("{what} <<heredoc: {dest} is a directory")));
            }
            write_file(&rootfs, &dest, &mut body.as_bytes(), chown.unwrap_or((0, 0)), c.chmod.unwrap_or(0o644))?;
        }
        drop(view);
        snap.commit(self.core, state, &[], false, &format!("{}:{line}", self.df.file))
    }

    /// ADD of a local archive: unpack it (safely, in tmp/) and copy its tree in, owners kept.
    fn extract(&self, src: File, name: &str, rootfs: &Root, dest: &str, mode: CopyMode) -> Result<()> {
        let tmp = TempDir::new(&self.core.tmp, "build-add")?;
        let (_, r) = crate::layer::decompress(io::BufReader::new(src)).map_err(|e| Error::stream(name, e))?;
        let mut ar = tar::Archive::new(r);
        ar.set_preserve_permissions(true);
        ar.set_preserve_ownerships(true);
        ar.set_unpack_xattrs(false);
        // Entry by entry (tar's own `unpack` skips `..` silently and names no entry
        // when it refuses one); directories last, as `unpack` does, so their modes
        // do not stop the files below them.
        let bad =
            |path: &Path, e: &dyn std::fmt::Display| Error::invalid(format!("{name}: entry {}: {e}", path.display()));
        let mut dirs = Vec::new();
        for entry in ar.entries().map_err(|e| Error::stream(format!("unpacking {name}"), e))? {
            let mut entry = entry.map_err(|e| Error::stream(format!("unpacking {name}"), e))?;
            let path = entry.path().map_err(|e| Error::stream(format!("unpacking {name}"), e))?.into_owned();
            if path.components().any(|c| c == std::path::Component::ParentDir) {
                return Err(bad(&path, &"\"..\" leaves the destination"));
            }
            if entry.header().entry_type().is_dir() {
                dirs.push((path, entry));
                continue;
            }
            entry.unpack_in(tmp.path()).map_err(|e| bad(&path, &e))?;
        }
        for (path, mut d) in dirs {
            d.unpack_in(tmp.path()).map_err(|e| bad(&path, &e))?;
        }
        let from = SourceRoot::of(tmp.path().to_path_buf(), true);
        let dest = if dest.trim_end_matches('/').is_empty() { "/" } else { dest };
        from.copy("", rootfs, dest, mode)
    }

    /// An `ADD URL` source, downloaded once per build.
    pub(super) fn download(&mut self, url: &str, line: usize) -> Result<PathBuf> {
        if let Some(p) = self.downloads.get(url) {
            return Ok(p.clone());
        }
        if self.download_dir.is_none() {
            self.download_dir = Some(TempDir::new(&self.core.tmp, "build-download")?);
        }
        let dir = self.download_dir.as_ref().expect("made above").path();
        let file = dir.join(format!("{}", self.downloads.len()));
        crate::registry::download(url, &file).map_err(|e| self.err(line, format!("ADD {url}: {e}")))?;
        self.downloads.insert(url.to_string(), file.clone());
        Ok(file)
    }
}

/// Write a new regular file at the container path `dest` inside `rootfs`
/// (replacing what is there, parents made for `owner`), from `src`.
fn write_file(rootfs: &Root, dest: &str, src: &mut impl io::Read, owner: (u32, u32), mode: u32) -> Result<()> {
    let (dir, name) = rootfs.parent_for_write(dest, owner)?;
    if dir.stat(&name)?.is_some() {
        dir.remove(&name)?;
    }
    let mut out = dir.create_file(&name, 0o600)?;
    io::copy(src, &mut out).at(dest)?;
    super::context::fd_owner_mode(std::os::fd::AsFd::as_fd(&out), owner.0, owner.1, mode).at(dest)
}
