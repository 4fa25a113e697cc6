//! A detached container's log (`<root>/containers/<id>/container.log`), in
//! Docker's json-file shape: one JSON object per line of output,
//! `{"log": "...\n", "stream": "stdout"|"stderr", "time": RFC 3339 with
//! nanoseconds}`, so `logs` can give stdout and stderr back apart, with
//! times, `--tail`, `--since` and `--until`. The monitor (the
//! `strata-monitor` crate, which owns the record format and the writer)
//! reads the container's output and appends records; this module holds the
//! log's options and the reading side.
//!
//! Rotation (`--log-opt max-size=…,max-file=…`, Docker's json-file rules):
//! readers read the rotated files oldest first and follow `container.log`
//! across rotations ([`Follower`]).

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
pub use strata_monitor::logfile::{Record, Stream, Writer};

use crate::error::{Error, Result};

/// How a container's output is kept (`--log-driver`, `--log-opt`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct LogConfig {
    /// `json-file` (empty: the default) or `none`.
    pub driver: String,
    /// Rotate before the file passes this many bytes.
    pub max_size: Option<u64>,
    /// Files kept in all, the current one included (default 1).
    pub max_file: Option<u32>,
}

impl LogConfig {
    /// Check `--log-driver` and `--log-opt KEY=VALUE`s.
    pub fn from_flags(driver: Option<&str>, opts: &[String]) -> Result<Self> {
        let mut c = LogConfig::default();
        match driver.unwrap_or("json-file") {
            "json-file" | "" => {}
            "none" => c.driver = "none".into(),
            other => {
                return Err(Error::invalid(format!("invalid --log-driver {other:?}: want json-file or none")));
            }
        }
        for o in opts {
            let (k, v) =
                o.split_once('=').ok_or_else(|| Error::invalid(format!("invalid --log-opt {o:?}: want KEY=VALUE")))?;
            match k {
                "max-size" => c.max_size = Some(crate::units::parse_size("--log-opt max-size", v)?).filter(|n| *n > 0),
                "max-file" => {
                    c.max_file = Some(v.parse().ok().filter(|n| *n >= 1).ok_or_else(|| {
                        Error::invalid(format!("invalid --log-opt max-file={v}: want a number of at least 1"))
                    })?)
                }
                _ => return Err(Error::invalid(format!("unknown --log-opt {k:?}: want max-size or max-file"))),
            }
        }
        if c.max_file.is_some_and(|n| n > 1) && c.max_size.is_none() {
            return Err(Error::invalid("--log-opt max-file needs max-size"));
        }
        Ok(c)
    }

    /// Whether the output is kept at all.
    pub fn keeps_output(&self) -> bool {
        self.driver != "none"
    }
}

impl LogConfig {
    /// A writer appending to the log at `path` as this config says.
    pub fn writer(&self, path: &Path) -> std::io::Result<Writer> {
        Writer::open(path, self.keeps_output(), self.max_size, self.max_file.unwrap_or(1))
    }
}

/// The rotated files of the log at `path`, oldest first.
pub fn rotated(path: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for n in 1.. {
        let p = strata_monitor::logfile::rotated_path(path, n);
        if !p.exists() {
            break;
        }
        files.push(p);
    }
    files.reverse();
    files
}

/// Reads the current log and, at its end, moves on to the new file when
/// the log was rotated meanwhile.
pub struct Follower {
    path: PathBuf,
    reader: BufReader<File>,
    ino: u64,
}

impl Follower {
    /// Read the log at `path` from its start.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let file = File::open(path)?;
        let ino = file.metadata()?.ino();
        Ok(Follower { path: path.to_path_buf(), reader: BufReader::new(file), ino })
    }

    /// Skip what is there now (`attach`: output from now on).
    pub fn seek_end(&mut self) -> std::io::Result<()> {
        std::io::Seek::seek(&mut self.reader, std::io::SeekFrom::End(0)).map(|_| ())
    }

    /// As `BufRead::read_line`; at the end of a file that has been rotated
    /// away, continues in the new one.
    pub fn read_line(&mut self, buf: &mut String) -> std::io::Result<usize> {
        let n = self.reader.read_line(buf)?;
        if n > 0 {
            return Ok(n);
        }
        match std::fs::metadata(&self.path) {
            Ok(m) if m.ino() != self.ino => {
                *self = Follower::open(&self.path)?;
                self.reader.read_line(buf)
            }
            _ => Ok(0),
        }
    }

    /// The rest of the current file.
    pub fn read_rest(&mut self) -> std::io::Result<String> {
        let mut rest = String::new();
        self.reader.read_to_string(&mut rest)?;
        Ok(rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn followers_read_on_across_rotations_and_bad_log_options_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("container.log");
        let config = LogConfig::from_flags(None, &["max-size=1k".into(), "max-file=3".into()]).unwrap();
        let mut w = config.writer(&path).unwrap();
        w.append(Stream::Stdout, b"first\n").unwrap();
        let mut follower = Follower::open(&path).unwrap();
        let mut line = String::new();
        assert!(follower.read_line(&mut line).unwrap() > 0);
        for i in 0..200 {
            w.append(Stream::Stdout, format!("line {i}\n").as_bytes()).unwrap();
        }
        let mut files = rotated(&path);
        assert_eq!(files.len(), 2, "max-file 3: two rotated and the current");
        files.push(path.clone());
        for f in &files {
            assert!(std::fs::metadata(f).unwrap().len() <= 1024, "{f:?}");
        }
        // The follower read on through every rotation it saw, in order, ending with the last line.
        let mut seen = Vec::new();
        loop {
            line.clear();
            if follower.read_line(&mut line).unwrap() == 0 {
                break;
            }
            seen.push(Record::parse(line.trim_end()).log);
        }
        assert_eq!(seen.last().map(String::as_str), Some("line 199\n"));
        assert!(LogConfig::from_flags(Some("syslog"), &[]).is_err());
        assert!(LogConfig::from_flags(None, &["max-file=2".into()]).is_err());
        assert!(LogConfig::from_flags(None, &["colour=red".into()]).is_err());
    }
}
