//! The content store: blobs named by their sha256 digest under
//! `blobs/sha256/<hex>`. A blob is written to a temp file under `tmp/`,
//! hashed while it streams, and renamed into place only when its size and
//! digest match what the caller expected. Nothing else writes under `blobs/`,
//! so a file there always holds the bytes its name promises.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::digest::{Digest, Hasher};
use crate::error::{Error, IoContext, Result};

/// The blob directory of a store.
#[derive(Clone, Debug)]
pub struct ContentStore {
    dir: PathBuf,
    tmp: PathBuf,
}

impl ContentStore {
    /// Open (creating) `root/blobs/sha256`, with temp files in `tmp`.
    pub fn open(root: &Path, tmp: &Path) -> Result<Self> {
        let dir = root.join("blobs/sha256");
        fs::create_dir_all(&dir).at(&dir)?;
        Ok(ContentStore { dir, tmp: tmp.to_path_buf() })
    }

    /// Where a blob lives (whether or not it is there).
    pub fn path(&self, d: &Digest) -> PathBuf {
        self.dir.join(d.hex())
    }

    /// Whether the blob is present.
    pub fn has(&self, d: &Digest) -> bool {
        self.path(d).exists()
    }

    /// Open a blob for reading.
    pub fn open_blob(&self, d: &Digest) -> Result<File> {
        File::open(self.path(d)).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => Error::not_found("blob", d.to_string()),
            _ => Error::Io { path: self.path(d), source: e },
        })
    }

    /// Read a (small) blob whole: manifests and configs.
    pub fn read(&self, d: &Digest) -> Result<Vec<u8>> {
        let bytes = fs::read(self.path(d)).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => Error::not_found("blob", d.to_string()),
            _ => Error::Io { path: self.path(d), source: e },
        })?;
        let actual = Digest::of(&bytes);
        if &actual != d {
            return Err(Error::DigestMismatch {
                what: format!("stored blob {}", self.path(d).display()),
                expected: d.to_string(),
                actual: actual.to_string(),
            });
        }
        Ok(bytes)
    }

    /// Size in bytes of a stored blob.
    pub fn size(&self, d: &Digest) -> Result<u64> {
        Ok(fs::metadata(self.path(d)).at(self.path(d))?.len())
    }

    /// Start writing a new blob.
    pub fn writer(&self) -> Result<BlobWriter> {
        let (file, path) = crate::tmp::create_file(&self.tmp, "blob")?;
        Ok(BlobWriter { file: Some(file), path, hasher: Hasher::default(), dir: self.dir.clone() })
    }

    /// Store bytes held in memory, checking them against `expected` if given.
    pub fn write_bytes(&self, bytes: &[u8], expected: Option<&Digest>) -> Result<Digest> {
        let d = Digest::of(bytes);
        if let Some(e) = expected {
            if e != &d {
                return Err(Error::DigestMismatch {
                    what: "blob".into(),
                    expected: e.to_string(),
                    actual: d.to_string(),
                });
            }
        }
        if self.has(&d) {
            return Ok(d);
        }
        let mut w = self.writer()?;
        w.write_all(bytes).at(&w.path)?;
        w.commit(Some(&d), Some(bytes.len() as u64))
    }

    /// Remove a blob; a missing one is not an error.
    pub fn remove(&self, d: &Digest) -> Result<()> {
        match fs::remove_file(self.path(d)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(Error::Io { path: self.path(d), source: e }),
            _ => Ok(()),
        }
    }

    /// Every blob present, for garbage collection.
    pub fn list(&self) -> Result<Vec<Digest>> {
        let mut out = Vec::new();
        for e in fs::read_dir(&self.dir).at(&self.dir)? {
            let e = e.at(&self.dir)?;
            if let Some(d) = e.file_name().to_str().and_then(|n| Digest::parse(n).ok()) {
                out.push(d);
            }
        }
        Ok(out)
    }
}

/// A blob being written: bytes go to a temp file and a hasher; `commit`
/// verifies and renames, dropping without commit deletes the temp file.
pub struct BlobWriter {
    file: Option<File>,
    path: PathBuf,
    hasher: Hasher,
    dir: PathBuf,
}

impl BlobWriter {
    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.hasher.len()
    }

    /// True when nothing was written.
    pub fn is_empty(&self) -> bool {
        self.hasher.is_empty()
    }

    /// Verify against the expected digest and size (when given) and move the
    /// blob into place. Returns the blob's digest.
    pub fn commit(mut self, expected: Option<&Digest>, size: Option<u64>) -> Result<Digest> {
        let hasher = std::mem::take(&mut self.hasher);
        let len = hasher.len();
        let actual = hasher.finish();
        // On any error below, Drop removes the temp file (`self.file` is still set).
        if let Some(e) = expected {
            if e != &actual {
                return Err(Error::DigestMismatch {
                    what: "blob".into(),
                    expected: e.to_string(),
                    actual: actual.to_string(),
                });
            }
        }
        if let Some(s) = size {
            if s != len {
                return Err(Error::invalid(format!("blob {actual}: expected {s} bytes, got {len}")));
            }
        }
        // The content store promises its bytes survive a crash: sync before the rename makes them visible.
        crate::fault::failpoint!("blob-sync");
        self.file.as_ref().expect("not committed").sync_all().at(&self.path)?;
        let dst = self.dir.join(actual.hex());
        crate::fault::failpoint!("blob-rename");
        fs::rename(&self.path, &dst).at(&dst)?;
        self.file = None;
        Ok(actual)
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        crate::fault::failpoint!("blob-write", io);
        let n = self.file.as_mut().expect("not committed").write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.as_mut().expect("not committed").flush()
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if self.file.is_some() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, ContentStore) {
        let t = tempfile::tempdir().unwrap();
        fs::create_dir_all(t.path().join("tmp")).unwrap();
        let s = ContentStore::open(t.path(), &t.path().join("tmp")).unwrap();
        (t, s)
    }

    #[test]
    fn blob_is_named_by_its_digest() {
        let (_t, s) = store();
        let d = s.write_bytes(b"hello", None).unwrap();
        assert_eq!(d, Digest::of(b"hello"));
        assert_eq!(s.read(&d).unwrap(), b"hello");
    }

    #[test]
    fn mismatch_leaves_nothing_behind() {
        let (t, s) = store();
        let wrong = Digest::of(b"other");
        let mut w = s.writer().unwrap();
        w.write_all(b"hello").unwrap();
        let err = w.commit(Some(&wrong), None).unwrap_err();
        assert!(err.to_string().contains(wrong.as_str()), "{err}");
        assert!(s.list().unwrap().is_empty());
        assert_eq!(fs::read_dir(t.path().join("tmp")).unwrap().count(), 0);
    }
}
