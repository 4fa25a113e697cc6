//! Tar-split: enough of a layer tar to rebuild it byte for byte from the
//! unpacked layer directory. Headers, padding and every other byte are
//! kept; the contents of regular files are kept only as a (path, size)
//! reference into the directory. An uncompressed layer then costs its
//! unpacked files plus a small split file, not a second full copy.
//!
//! Written by hand: containers/storage's tar-split (Go) has no Rust
//! implementation, and its JSON-lines form would be three times larger.
//!
//! Format (zstd-compressed): `STSPLIT1`, then records: `0 u32 len bytes`
//! (raw), `1 u16 len path u64 size` (file content), `0xff` (end).

use std::cell::RefCell;
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};

const MAGIC: &[u8; 8] = b"STSPLIT1";

/// The longest stretch of non-file bytes kept in memory. Real tars have a
/// header or two between files; a longer run (data after the archive's
/// end, say, from a hostile registry) makes the split unusable instead of
/// growing without bound, and the layer's blob is stored as received.
const MAX_RAW_RUN: usize = 16 << 20;

/// One stretch of the tar stream.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Raw(Vec<u8>),
    File(PathBuf, u64),
}

/// A tar-split being recorded while a layer is applied.
#[derive(Debug, Default)]
pub struct Split {
    segments: Vec<Segment>,
    raw: Vec<u8>,
    in_file: bool,
    /// Set when this layer removed or replaced a path it had itself
    /// written: the directory no longer holds what the tar held.
    pub(crate) lossy: bool,
}

impl Split {
    fn flush_raw(&mut self) {
        if !self.raw.is_empty() {
            self.segments.push(Segment::Raw(std::mem::take(&mut self.raw)));
        }
    }

    /// The next bytes read are a regular file's content.
    pub(crate) fn begin_file(&mut self) {
        self.flush_raw();
        self.in_file = true;
    }

    /// Bytes of the tar stream outside file contents (headers, padding).
    pub(crate) fn record_raw(&mut self, b: &[u8]) {
        if !self.in_file && !self.lossy {
            self.raw.extend_from_slice(b);
            if self.raw.len() > MAX_RAW_RUN {
                self.lossy = true;
                self.raw = Vec::new();
            }
        }
    }

    /// The content of `rel` (of `size` bytes) has been read.
    pub(crate) fn end_file(&mut self, rel: &Path, size: u64) {
        self.in_file = false;
        self.segments.push(Segment::File(rel.to_path_buf(), size));
    }

    /// Whether the directory can rebuild the tar.
    pub fn is_usable(&self) -> bool {
        !self.lossy
    }

    /// Write the split (zstd-compressed) to `path`.
    pub fn save(mut self, path: &Path) -> Result<()> {
        self.flush_raw();
        let f = File::create(path).at(path)?;
        let mut z = zstd::stream::write::Encoder::new(f, 3).at(path)?;
        let mut w = || -> io::Result<()> {
            z.write_all(MAGIC)?;
            for s in &self.segments {
                match s {
                    Segment::Raw(b) => {
                        z.write_all(&[0])?;
                        z.write_all(&(b.len() as u32).to_le_bytes())?;
                        z.write_all(b)?;
                    }
                    Segment::File(p, size) => {
                        let pb = p.as_os_str().as_bytes();
                        z.write_all(&[1])?;
                        z.write_all(&(pb.len() as u16).to_le_bytes())?;
                        z.write_all(pb)?;
                        z.write_all(&size.to_le_bytes())?;
                    }
                }
            }
            z.write_all(&[0xff])
        };
        w().at(path)?;
        z.finish().at(path)?;
        Ok(())
    }
}

/// A reader that records every byte passing through it into a [`Split`],
/// except file contents, which the applier marks.
pub struct Recorder<'a, R> {
    inner: R,
    split: Option<&'a RefCell<Split>>,
}

impl<'a, R: Read> Recorder<'a, R> {
    /// Record what is read from `inner` (or only pass it on, without a split).
    pub fn new(inner: R, split: Option<&'a RefCell<Split>>) -> Self {
        Recorder { inner, split }
    }
}

impl<R: Read> Read for Recorder<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(sp) = self.split {
            sp.borrow_mut().record_raw(&buf[..n]);
        }
        Ok(n)
    }
}

/// The name of a layer's split file, beside its `diff/` directory.
pub const SPLIT_FILE: &str = "tar-split.zst";

/// Rebuilds a layer tar from its split and its unpacked directory.
pub struct SplitReader {
    split: zstd::stream::read::Decoder<'static, BufReader<File>>,
    dir: PathBuf,
    label: String,
    /// Bytes of the current segment still to emit.
    current: Option<Box<dyn Read + Send>>,
    done: bool,
    /// Read files' contents from the directory (false: zeros in their place).
    contents: bool,
}

impl SplitReader {
    /// Open the split at `path` for the layer directory `dir`.
    pub fn open(path: &Path, dir: &Path) -> Result<Self> {
        let f = File::open(path).at(path)?;
        let mut split = zstd::stream::read::Decoder::new(f).at(path)?;
        let mut magic = [0u8; 8];
        split.read_exact(&mut magic).at(path)?;
        if &magic != MAGIC {
            return Err(Error::Corrupt(format!("{} is not a tar-split file", path.display())));
        }
        Ok(SplitReader {
            split,
            dir: dir.to_path_buf(),
            label: path.display().to_string(),
            current: None,
            done: false,
            contents: true,
        })
    }

    /// The tar of the split at `path` with zeros for every file's content:
    /// its headers are exact, and no file of the layer is opened (for
    /// listing a layer, not for its bytes).
    pub fn headers_only(path: &Path) -> Result<Self> {
        let mut r = Self::open(path, Path::new("/nonexistent"))?;
        r.contents = false;
        Ok(r)
    }

    fn next_segment(&mut self) -> io::Result<()> {
        let mut tag = [0u8; 1];
        self.split.read_exact(&mut tag)?;
        match tag[0] {
            0 => {
                let mut len = [0u8; 4];
                self.split.read_exact(&mut len)?;
                let mut b = vec![0u8; u32::from_le_bytes(len) as usize];
                self.split.read_exact(&mut b)?;
                self.current = Some(Box::new(io::Cursor::new(b)));
            }
            1 => {
                let mut len = [0u8; 2];
                self.split.read_exact(&mut len)?;
                let mut p = vec![0u8; u16::from_le_bytes(len) as usize];
                self.split.read_exact(&mut p)?;
                let mut size = [0u8; 8];
                self.split.read_exact(&mut size)?;
                let size = u64::from_le_bytes(size);
                if !self.contents {
                    self.current = Some(Box::new(io::repeat(0).take(size)));
                    return Ok(());
                }
                let rel = Path::new(std::ffi::OsStr::from_bytes(&p));
                let path = self.dir.join(rel);
                // Opened below the layer directory through no symlink: the tar is rebuilt from the layer's own files only.
                let f = crate::confined::open_beneath(&self.dir, rel)
                    .map_err(|e| io::Error::other(e.to_string()))?
                    .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{}: missing", path.display())))?;
                self.current = Some(Box::new(ExactReader { inner: f.take(size), left: size, path }));
            }
            0xff => self.done = true,
            t => return Err(io::Error::new(io::ErrorKind::InvalidData, format!("{}: bad record {t}", self.label))),
        }
        Ok(())
    }
}

/// Reads exactly `left` bytes, failing if the file is shorter.
struct ExactReader {
    inner: io::Take<File>,
    left: u64,
    path: PathBuf,
}

impl Read for ExactReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && self.left > 0 && !buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{} is shorter than the layer recorded", self.path.display()),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

impl Read for SplitReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.done || buf.is_empty() {
                return Ok(0);
            }
            if let Some(cur) = self.current.as_mut() {
                let n = cur.read(buf)?;
                if n > 0 {
                    return Ok(n);
                }
                self.current = None;
            }
            self.next_segment()?;
        }
    }
}
