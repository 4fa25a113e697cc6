//! A container's log in Docker's json-file shape: one JSON object per line
//! of output, `{"log": "...\n", "stream": "stdout"|"stderr", "time": RFC
//! 3339 with nanoseconds}`, and Docker's rotation (`--log-opt
//! max-size=…,max-file=…`): a record that would take the file past
//! max-size first moves `container.log` to `container.log.1` (`.1` to
//! `.2`, ... keeping max-file files in all). The monitor writes it; the
//! engine reads it (`logs`, `attach`) and appends its own messages.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

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
    /// A line read from a log file; a line that is not a record (a log
    /// written by an older strata: raw bytes) reads as stdout without a time.
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

/// Now, as Docker writes a record's time: RFC 3339 with all nine digits.
fn now() -> String {
    let t = time::OffsetDateTime::now_utc();
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

/// The `n`th rotated file of the log at `path` (1 is the newest).
pub fn rotated_path(path: &Path, n: u32) -> PathBuf {
    PathBuf::from(format!("{}.{n}", path.display()))
}

/// Appends records to a log, rotating it.
pub struct Writer {
    file: File,
    path: PathBuf,
    size: u64,
    keep: bool,
    max_size: Option<u64>,
    max_file: u32,
}

impl Writer {
    /// Append to the log at `path` (created if missing); with `keep` false
    /// nothing is kept (`--log-driver none`).
    pub fn open(path: &Path, keep: bool, max_size: Option<u64>, max_file: u32) -> std::io::Result<Self> {
        let target = if keep { path } else { Path::new("/dev/null") };
        let file = File::options().create(true).append(true).open(target)?;
        let size = file.metadata()?.len();
        Ok(Writer { file, path: path.to_path_buf(), size, keep, max_size, max_file: max_file.max(1) })
    }

    /// Append one record: `line` (a line of `stream`, or a piece of one) as
    /// read now. One write per record: a reader never sees half of one.
    pub fn append(&mut self, stream: Stream, line: &[u8]) -> std::io::Result<()> {
        let rec = Record { log: String::from_utf8_lossy(line).into_owned(), stream, time: now() };
        let mut text = serde_json::to_vec(&rec).expect("a record serializes");
        text.push(b'\n');
        if let Some(max) = self.max_size.filter(|_| self.keep) {
            if self.size > 0 && self.size + text.len() as u64 > max {
                self.rotate()?;
            }
        }
        self.file.write_all(&text)?;
        self.size += text.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        if self.max_file > 1 {
            for n in (1..self.max_file - 1).rev() {
                let _ = std::fs::rename(rotated_path(&self.path, n), rotated_path(&self.path, n + 1));
            }
            std::fs::rename(&self.path, rotated_path(&self.path, 1))?;
            self.file = File::options().create(true).append(true).open(&self.path)?;
        } else {
            self.file.set_len(0)?;
        }
        self.size = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_old_lines_read_as_stdout() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let mut w = Writer::open(&path, true, None, 1).unwrap();
        w.append(Stream::Stderr, b"oops\n").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let r = Record::parse(text.trim_end());
        assert_eq!((r.log.as_str(), r.stream), ("oops\n", Stream::Stderr));
        assert!(r.nanos() > 0, "{}", r.time);
        let old = Record::parse("plain text");
        assert_eq!((old.log.as_str(), old.stream, old.nanos()), ("plain text\n", Stream::Stdout, 0));
    }

    #[test]
    fn rotation_keeps_max_file_files_of_at_most_max_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("container.log");
        let mut w = Writer::open(&path, true, Some(1024), 3).unwrap();
        for i in 0..200 {
            w.append(Stream::Stdout, format!("line {i}\n").as_bytes()).unwrap();
        }
        for f in [rotated_path(&path, 1), rotated_path(&path, 2), path.clone()] {
            assert!(std::fs::metadata(&f).unwrap().len() <= 1024, "{f:?}");
        }
        assert!(!rotated_path(&path, 3).exists(), "max-file 3: two rotated and the current");
    }
}
