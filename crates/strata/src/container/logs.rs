//! A detached container's log (`<root>/containers/<id>/container.log`), in
//! Docker's json-file shape: one JSON object per line of output,
//! `{"log": "...\n", "stream": "stdout"|"stderr", "time": RFC 3339 with
//! nanoseconds}`, so `logs` can give stdout and stderr back apart, with
//! times, `--tail`, `--since` and `--until`. The monitor reads the
//! container's two pipes and appends records; lines of a log written by an
//! older strata (raw bytes) read back as stdout without a time.
//!
//! Rotation (`--log-opt max-size=…,max-file=…`, Docker's json-file rules):
//! a record that would take the file past max-size first moves
//! `container.log` to `container.log.1` (`.1` to `.2`, ... keeping
//! max-file files in all); readers read the rotated files oldest first and
//! follow `container.log` across rotations ([`Follower`]).

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

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

/// The log a monitor appends to, rotating it as its config says.
pub struct LogWriter {
    file: File,
    path: PathBuf,
    size: u64,
    config: LogConfig,
}

impl LogWriter {
    /// Append to the log at `path` (created if missing).
    pub fn open(path: &Path, config: LogConfig) -> std::io::Result<Self> {
        let target = if config.keeps_output() { path } else { Path::new("/dev/null") };
        let file = File::options().create(true).append(true).open(target)?;
        let size = file.metadata()?.len();
        Ok(LogWriter { file, path: path.to_path_buf(), size, config })
    }

    fn write_record(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if let Some(max) = self.config.max_size.filter(|_| self.config.keeps_output()) {
            if self.size > 0 && self.size + bytes.len() as u64 > max {
                self.rotate()?;
            }
        }
        self.file.write_all(bytes)?;
        self.size += bytes.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        let keep = self.config.max_file.unwrap_or(1);
        let numbered = |n: u32| PathBuf::from(format!("{}.{n}", self.path.display()));
        if keep > 1 {
            for n in (1..keep - 1).rev() {
                let _ = std::fs::rename(numbered(n), numbered(n + 1));
            }
            std::fs::rename(&self.path, numbered(1))?;
            self.file = File::options().create(true).append(true).open(&self.path)?;
        } else {
            self.file.set_len(0)?;
        }
        self.size = 0;
        Ok(())
    }
}

/// The rotated files of the log at `path`, oldest first.
pub fn rotated(path: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for n in 1.. {
        let p = PathBuf::from(format!("{}.{n}", path.display()));
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

/// Which stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// One line of output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The line, with its newline (none on a last line that had none).
    pub log: String,
    /// Where it came from.
    pub stream: Stream,
    /// When the monitor read it (RFC 3339, nanoseconds); empty for old logs.
    #[serde(default)]
    pub time: String,
}

impl Record {
    /// A line read from a log file.
    pub fn parse(line: &str) -> Record {
        serde_json::from_str(line).unwrap_or_else(|_| Record {
            log: format!("{line}\n"),
            stream: Stream::Stdout,
            time: String::new(),
        })
    }

    /// Its time as nanoseconds since the epoch (0 when unknown).
    pub fn nanos(&self) -> i128 {
        time::OffsetDateTime::parse(&self.time, &time::format_description::well_known::Rfc3339)
            .map(|t| t.unix_timestamp_nanos())
            .unwrap_or(0)
    }
}

fn now() -> String {
    let t = time::OffsetDateTime::now_utc();
    // RFC 3339 with all nine digits, as Docker writes them.
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.nanosecond()
    )
}

/// Append one record (a line of `stream`) to the log.
pub fn append(log: &Mutex<LogWriter>, stream: Stream, line: &[u8]) {
    let rec = Record { log: String::from_utf8_lossy(line).into_owned(), stream, time: now() };
    let mut text = serde_json::to_string(&rec).expect("a record serializes");
    text.push('\n');
    if let Ok(mut w) = log.lock() {
        // One write per record: lines of the two streams never interleave mid-record.
        let _ = w.write_record(text.as_bytes());
    }
}

/// Copy a stream into the log, a record per line, until it ends.
pub fn copy_lines(
    input: impl Read + Send + 'static,
    stream: Stream,
    log: Arc<Mutex<LogWriter>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut r = BufReader::new(input);
        let mut line = Vec::new();
        loop {
            line.clear();
            match r.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => append(&log, stream, &line),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_old_lines_read_as_stdout() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let f = Mutex::new(LogWriter::open(&path, LogConfig::default()).unwrap());
        append(&f, Stream::Stderr, b"oops\n");
        let text = std::fs::read_to_string(&path).unwrap();
        let r = Record::parse(text.trim_end());
        assert_eq!((r.log.as_str(), r.stream), ("oops\n", Stream::Stderr));
        assert!(r.nanos() > 0, "{}", r.time);
        let old = Record::parse("plain text");
        assert_eq!((old.log.as_str(), old.stream, old.nanos()), ("plain text\n", Stream::Stdout, 0));
    }

    #[test]
    fn rotation_keeps_max_file_files_of_about_max_size_and_followers_cross_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("container.log");
        let config = LogConfig::from_flags(None, &["max-size=1k".into(), "max-file=3".into()]).unwrap();
        let w = Mutex::new(LogWriter::open(&path, config).unwrap());
        append(&w, Stream::Stdout, b"first\n");
        let mut follower = Follower::open(&path).unwrap();
        let mut line = String::new();
        assert!(follower.read_line(&mut line).unwrap() > 0);
        for i in 0..200 {
            append(&w, Stream::Stdout, format!("line {i}\n").as_bytes());
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
