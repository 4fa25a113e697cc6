//! In-flight files and directories under the store's `tmp/`. Every write
//! that will become visible starts here and is renamed into place; whatever
//! a killed process leaves here is swept when the store is next opened alone;
//! what a live process owns (its name says which) is left alone.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{IoContext, Result};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// `PREFIX-PID_STARTTIME-NANOS-N`: the owner (as `store::this_owner`, with
/// `_` for `:`) is part of the name, so a sweep can leave alone what a live
/// process is still using.
fn unique_name(prefix: &str) -> String {
    static OWNER: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let owner = OWNER.get_or_init(|| crate::store::this_owner().replace(':', "_"));
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("{prefix}-{owner}-{nanos:x}-{}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// Whether the process that made the temp entry `name` is still running
/// (false for names not made by [`unique_name`]).
pub fn owner_alive(name: &str) -> bool {
    let mut parts = name.rsplitn(4, '-');
    let (Some(_), Some(_), Some(owner)) = (parts.next(), parts.next(), parts.next()) else { return false };
    owner.contains('_') && crate::store::owner_alive(&owner.replacen('_', ":", 1))
}

/// Create a new, empty temp file.
pub fn create_file(tmp: &Path, prefix: &str) -> Result<(File, PathBuf)> {
    loop {
        let path = tmp.join(unique_name(prefix));
        match OpenOptions::new().write(true).read(true).create_new(true).mode(0o644).open(&path) {
            Ok(f) => return Ok((f, path)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).at(&path),
        }
    }
}

/// Create a new, empty temp directory.
pub fn create_dir(tmp: &Path, prefix: &str) -> Result<PathBuf> {
    loop {
        let path = tmp.join(unique_name(prefix));
        match fs::create_dir(&path) {
            Ok(()) => return Ok(path),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).at(&path),
        }
    }
}

/// A temp directory removed on drop unless `keep` was called.
pub struct TempDir {
    path: Option<PathBuf>,
}

impl TempDir {
    /// Make one under `tmp`.
    pub fn new(tmp: &Path, prefix: &str) -> Result<Self> {
        Ok(TempDir { path: Some(create_dir(tmp, prefix)?) })
    }
    /// Its path.
    pub fn path(&self) -> &Path {
        self.path.as_deref().expect("not kept")
    }
    /// Stop owning it (it has been renamed into place).
    pub fn keep(mut self) -> PathBuf {
        self.path.take().expect("kept once")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Some(p) = self.path.take() {
            let _ = crate::tree::remove(&p);
        }
    }
}

/// `bytes` random bytes as hex (container IDs, anonymous volume names).
pub fn random_hex(bytes: usize) -> Result<String> {
    use std::io::Read;
    let mut b = vec![0u8; bytes];
    File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b)).at("/dev/urandom")?;
    Ok(hex::encode(b))
}
