//! Producing a layer tar from an overlay-form diff directory (an overlay
//! upperdir, or a layer's own directory). The bytes are deterministic:
//! entries sorted by name, numeric owners only, no atime/ctime, and with
//! `mtime_clamp` (SOURCE_DATE_EPOCH) no time later than the clamp.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::split::Split;
use super::{overlay_opaque_xattr, OPAQUE_MARKER, WHITEOUT_PREFIX};
use crate::error::{Error, IoContext, Result};

/// How to write a layer tar.
#[derive(Debug, Clone, Copy, Default)]
pub struct WriteOptions {
    /// Clamp every mtime to at most this (seconds since the epoch).
    pub mtime_clamp: Option<u64>,
}

impl WriteOptions {
    /// The options a layer made here is written with: times clamped to
    /// `$SOURCE_DATE_EPOCH` when it is set (reproducible builds and commits).
    pub fn from_env() -> Self {
        WriteOptions { mtime_clamp: source_date_epoch() }
    }
}

/// `$SOURCE_DATE_EPOCH`, when set to a number of seconds.
pub fn source_date_epoch() -> Option<u64> {
    std::env::var("SOURCE_DATE_EPOCH").ok().and_then(|v| v.parse().ok())
}

/// Write the changes in `dir` as a layer tar to `out`; returns `out`.
pub fn write_diff<W: Write>(dir: &Path, out: W, opts: &WriteOptions) -> Result<W> {
    Ok(write_diff_split(dir, out, opts, None)?.0)
}

/// [`write_diff`], also recording the tar's split against `dir` (so `dir`
/// itself can become the layer's directory); returns `out` and the layer's
/// size (file content and symlink targets, as [`super::ApplyStats::size`]).
pub fn write_diff_split<W: Write>(
    dir: &Path,
    out: W,
    opts: &WriteOptions,
    split: Option<&RefCell<Split>>,
) -> Result<(W, u64)> {
    let out = SplitWriter { inner: out, split };
    let mut w = Writer { b: tar::Builder::new(out), opts: *opts, links: HashMap::new(), split, size: 0 };
    w.dir(dir, Path::new(""))?;
    let n = w.size;
    let out = w.b.into_inner().map_err(|e| Error::stream("writing layer tar", e))?;
    Ok((out.inner, n))
}

/// Passes the tar on, recording what is not file content into the split.
struct SplitWriter<'a, W> {
    inner: W,
    split: Option<&'a RefCell<Split>>,
}

impl<W: Write> Write for SplitWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        if let Some(s) = self.split {
            s.borrow_mut().record_raw(&buf[..n]);
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A file's content as the tar builder reads it: marks where the content
/// starts (the header is written by then) and ends in the split.
struct SplitFile<'a> {
    file: fs::File,
    split: &'a RefCell<Split>,
    rel: PathBuf,
    read: u64,
    started: bool,
}

impl io::Read for SplitFile<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.started {
            self.split.borrow_mut().begin_file();
            self.started = true;
        }
        let n = self.file.read(buf)?;
        self.read += n as u64;
        if n == 0 {
            self.split.borrow_mut().end_file(&self.rel, self.read);
        }
        Ok(n)
    }
}

struct Writer<'a, W: Write> {
    b: tar::Builder<SplitWriter<'a, W>>,
    opts: WriteOptions,
    links: HashMap<(u64, u64), PathBuf>,
    split: Option<&'a RefCell<Split>>,
    size: u64,
}

impl<W: Write> Writer<'_, W> {
    fn dir(&mut self, full: &Path, rel: &Path) -> Result<()> {
        let mut names: Vec<_> =
            fs::read_dir(full).at(full)?.map(|e| e.map(|e| e.file_name())).collect::<io::Result<_>>().at(full)?;
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for name in names {
            let (f, r) = (full.join(&name), rel.join(&name));
            let md = fs::symlink_metadata(&f).at(&f)?;
            let ft = md.file_type();
            if super::is_whiteout_device(&md) {
                let mut wh = OsStrExt::as_bytes(WHITEOUT_PREFIX.as_ref() as &std::ffi::OsStr).to_vec();
                wh.extend_from_slice(name.as_bytes());
                let wr = rel.join(std::ffi::OsStr::from_bytes(&wh));
                self.empty_file(&wr, &md)?;
                continue;
            }
            let mut h = self.header(&md);
            self.xattrs(&f)?;
            let io_err = |e| Error::stream(format!("writing layer tar entry {}", r.display()), e);
            if ft.is_dir() {
                h.set_entry_type(tar::EntryType::Directory);
                self.b.append_data(&mut h, &r, io::empty()).map_err(io_err)?;
                if matches!(rustix::fs::lgetxattr(&f, overlay_opaque_xattr(), &mut [0u8; 4][..]), Ok(1)) {
                    self.empty_file(&r.join(OPAQUE_MARKER), &md)?;
                }
                self.dir(&f, &r)?;
            } else if ft.is_symlink() {
                h.set_entry_type(tar::EntryType::Symlink);
                let target = fs::read_link(&f).at(&f)?;
                self.size += md.len();
                self.b.append_link(&mut h, &r, &target).map_err(io_err)?;
            } else if ft.is_file() {
                let key = (md.dev(), md.ino());
                if md.nlink() > 1 {
                    if let Some(first) = self.links.get(&key) {
                        h.set_entry_type(tar::EntryType::Link);
                        h.set_size(0);
                        let first = first.clone();
                        self.b.append_link(&mut h, &r, &first).map_err(io_err)?;
                        continue;
                    }
                    self.links.insert(key, r.clone());
                }
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(md.len());
                let file = fs::File::open(&f).at(&f)?;
                self.size += md.len();
                match self.split.filter(|_| md.len() > 0) {
                    Some(split) => {
                        let rd = SplitFile { file, split, rel: r.clone(), read: 0, started: false };
                        self.b.append_data(&mut h, &r, rd).map_err(io_err)?
                    }
                    None => self.b.append_data(&mut h, &r, file).map_err(io_err)?,
                }
            } else if ft.is_char_device() || ft.is_block_device() || ft.is_fifo() {
                h.set_entry_type(if ft.is_char_device() {
                    tar::EntryType::Char
                } else if ft.is_block_device() {
                    tar::EntryType::Block
                } else {
                    tar::EntryType::Fifo
                });
                let _ = h.set_device_major(rustix::fs::major(md.rdev()));
                let _ = h.set_device_minor(rustix::fs::minor(md.rdev()));
                self.b.append_data(&mut h, &r, io::empty()).map_err(io_err)?;
            }
        }
        Ok(())
    }

    fn header(&self, md: &fs::Metadata) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_mode(md.mode() & 0o7777);
        h.set_uid(md.uid() as u64);
        h.set_gid(md.gid() as u64);
        let mtime = md.mtime().max(0) as u64;
        h.set_mtime(self.opts.mtime_clamp.map_or(mtime, |c| mtime.min(c)));
        h.set_size(0);
        h
    }

    fn empty_file(&mut self, rel: &Path, md: &fs::Metadata) -> Result<()> {
        let mut h = self.header(md);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_entry_type(tar::EntryType::Regular);
        self.b
            .append_data(&mut h, rel, io::empty())
            .map_err(|e| Error::stream(format!("writing layer tar entry {}", rel.display()), e))
    }

    fn xattrs(&mut self, f: &Path) -> Result<()> {
        let xs: Vec<(String, Vec<u8>)> = crate::tree::xattrs(f)?
            .into_iter()
            .filter(|(k, _)| !crate::tree::is_overlay_xattr(k))
            .map(|(k, v)| (format!("SCHILY.xattr.{}", String::from_utf8_lossy(&k)), v))
            .collect();
        if !xs.is_empty() {
            self.b
                .append_pax_extensions(xs.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
                .map_err(|e| Error::stream("writing pax header", e))?;
        }
        Ok(())
    }
}
