//! The library's one error type: a kind a caller can match on, plus the path,
//! digest, reference or tar entry at fault.

use std::io;
use std::path::{Path, PathBuf};

/// What went wrong, coarsely: the CLI maps these to messages and exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The named object does not exist.
    NotFound,
    /// The object exists already.
    AlreadyExists,
    /// The object is used by another and cannot be removed.
    InUse,
    /// The caller's input (reference, archive, flag) is wrong.
    InvalidInput,
    /// Bytes did not hash to the digest that named them.
    DigestMismatch,
    /// Stored data is damaged or inconsistent.
    Corrupt,
    /// The operating system refused.
    Io,
    /// A command the caller asked to run (a build's RUN) failed.
    CommandFailed,
}

/// Every error the library returns.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A named object is missing.
    #[error("{what} not found: {name}")]
    NotFound {
        /// What kind of object ("image", "layer", ...).
        what: &'static str,
        /// The name the caller used.
        name: String,
    },
    /// An object exists already.
    #[error("{0}")]
    AlreadyExists(String),
    /// An object is in use.
    #[error("{0}")]
    InUse(String),
    /// Bad input from the caller.
    #[error("{0}")]
    InvalidInput(String),
    /// A layer tar entry that cannot be applied safely or at all.
    #[error("layer entry {entry:?}: {reason}")]
    BadEntry {
        /// The entry's path as written in the tar.
        entry: String,
        /// Why it was refused.
        reason: String,
    },
    /// Bytes did not match the digest that names them.
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        /// What was being verified (a blob, a layer's diff ID, ...).
        what: String,
        /// The digest the bytes should have.
        expected: String,
        /// The digest they have.
        actual: String,
    },
    /// Damaged or inconsistent data.
    #[error("corrupt: {0}")]
    Corrupt(String),
    /// An I/O error on a path.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// An I/O error while reading a stream (archive, layer tar).
    #[error("{context}: {source}")]
    Stream {
        /// What was being read.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The container runtime failed.
    #[error("runtime: {0}")]
    Runtime(String),
    /// A Dockerfile that cannot be built as written.
    #[error("{file}:{line}: {message}")]
    Dockerfile {
        /// The Dockerfile's name.
        file: String,
        /// 1-based line of the instruction at fault.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A build's RUN step exited non-zero.
    #[error("{file}:{line}: {instruction}: the command returned a non-zero code: {code}")]
    StepFailed {
        /// The Dockerfile's name.
        file: String,
        /// 1-based line of the RUN.
        line: usize,
        /// The instruction.
        instruction: String,
        /// Its exit code.
        code: i32,
    },
    /// A registry refused or failed a request.
    #[error("{reference}: {message}")]
    Registry {
        /// The reference (or registry) involved.
        reference: String,
        /// What went wrong.
        message: String,
    },
    /// The metadata database failed.
    #[error("metadata database: {0}")]
    Db(#[from] rusqlite::Error),
}

impl Error {
    /// The coarse kind, for callers that branch on it.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::AlreadyExists(_) => ErrorKind::AlreadyExists,
            Error::InUse(_) => ErrorKind::InUse,
            Error::InvalidInput(_) | Error::BadEntry { .. } | Error::Dockerfile { .. } => ErrorKind::InvalidInput,
            Error::StepFailed { .. } => ErrorKind::CommandFailed,
            Error::DigestMismatch { .. } => ErrorKind::DigestMismatch,
            Error::Corrupt(_) => ErrorKind::Corrupt,
            Error::Io { .. } | Error::Stream { .. } | Error::Db(_) | Error::Runtime(_) | Error::Registry { .. } => {
                ErrorKind::Io
            }
        }
    }

    /// Whether the filesystem ran out of space (or quota): the front end
    /// says so, with the store's root, above whatever step it stopped.
    pub fn is_no_space(&self) -> bool {
        fn io_full(e: &io::Error) -> bool {
            matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
                || e.get_ref().and_then(|inner| inner.downcast_ref::<Error>()).is_some_and(Error::is_no_space)
        }
        match self {
            Error::Io { source, .. } | Error::Stream { source, .. } => io_full(source),
            // SQLite's full disk, and its shared-memory index that could not grow.
            Error::Db(e) => {
                e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull)
                    || matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.extended_code == SQLITE_IOERR_SHMSIZE)
            }
            _ => false,
        }
    }

    pub(crate) fn not_found(what: &'static str, name: impl Into<String>) -> Self {
        Error::NotFound { what, name: name.into() }
    }

    pub(crate) fn invalid(msg: impl Into<String>) -> Self {
        Error::InvalidInput(msg.into())
    }

    pub(crate) fn entry(entry: impl AsRef<Path>, reason: impl Into<String>) -> Self {
        Error::BadEntry { entry: entry.as_ref().display().to_string(), reason: reason.into() }
    }

    pub(crate) fn stream(context: impl Into<String>, source: io::Error) -> Self {
        Error::Stream { context: context.into(), source }
    }
}

/// SQLite's extended code for a shared-memory file it could not extend.
const SQLITE_IOERR_SHMSIZE: i32 = 10 | (19 << 8);

/// Result with the library's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attach a path to an io error (youki's habit: every io error says where).
pub(crate) trait IoContext<T> {
    fn at(self, path: impl AsRef<Path>) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: impl AsRef<Path>) -> Result<T> {
        self.map_err(|source| Error::Io { path: path.as_ref().to_path_buf(), source })
    }
}

impl<T> IoContext<T> for Result<T, rustix::io::Errno> {
    fn at(self, path: impl AsRef<Path>) -> Result<T> {
        self.map_err(|e| Error::Io { path: path.as_ref().to_path_buf(), source: e.into() })
    }
}
