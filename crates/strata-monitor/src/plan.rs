//! What the engine hands the monitor: one JSON document as its argument.
//! Descriptors named here are open in the monitor (inherited across exec).

use std::os::fd::RawFd;

use serde::{Deserialize, Serialize};

/// Everything the monitor needs about one running container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    /// The container's ID (for messages).
    pub id: String,
    /// Its init process: a child of this process.
    pub pid: i32,
    /// Where its output goes.
    pub log: Log,
    /// Its output: a pipe each for stdout and stderr, or a terminal.
    pub output: Output,
    /// `attach` clients' input (`-i`/`-t`): the listening socket and where
    /// their bytes go (the container's stdin pipe, or the terminal).
    pub input: Option<Input>,
    /// Descriptors held open while the container runs (the sockets keeping
    /// its published host ports), closed when it has exited.
    #[serde(default)]
    pub held: Vec<RawFd>,
    /// A health check, if it has one.
    pub health: Option<Health>,
    /// The command run (exec'd) once the container has exited and its
    /// output is drained; its exit code is appended.
    pub after: Vec<String>,
}

/// The log file and its rotation.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Log {
    /// `container.log`.
    pub path: std::path::PathBuf,
    /// Whether output is kept at all (`--log-driver none`: not).
    pub keep: bool,
    /// Rotate before the file passes this many bytes.
    pub max_size: Option<u64>,
    /// Files kept in all, the current one included.
    pub max_file: u32,
}

/// The container's output descriptors.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Output {
    /// Read ends of its stdout and stderr pipes.
    Pipes { stdout: RawFd, stderr: RawFd },
    /// The pty master of its terminal (everything reads as stdout).
    Terminal { master: RawFd },
}

/// Where attach clients' input goes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Input {
    /// A listening unix socket (`attach.sock`).
    pub listener: RawFd,
    /// The write end of the container's stdin pipe, or the pty master.
    pub sink: RawFd,
}

/// When and how to probe the container's health.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Health {
    /// Between the end of one probe and the start of the next.
    pub interval_ms: u64,
    /// Failures in this long after the start do not count.
    pub start_period_ms: u64,
    /// The probe command (an engine process that runs one probe and records
    /// it); `--in-start-period` is appended while the start period lasts.
    pub probe: Vec<String>,
}
