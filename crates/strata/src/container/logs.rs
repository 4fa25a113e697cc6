//! A detached container's log (`<root>/containers/<id>/container.log`), in
//! Docker's json-file shape: one JSON object per line of output,
//! `{"log": "...\n", "stream": "stdout"|"stderr", "time": RFC 3339 with
//! nanoseconds}`, so `logs` can give stdout and stderr back apart, with
//! times, `--tail`, `--since` and `--until`. The monitor reads the
//! container's two pipes and appends records; lines of a log written by an
//! older strata (raw bytes) read back as stdout without a time.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::sync::{Arc, Mutex};

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
pub fn append(log: &Mutex<File>, stream: Stream, line: &[u8]) {
    let rec = Record { log: String::from_utf8_lossy(line).into_owned(), stream, time: now() };
    let mut text = serde_json::to_string(&rec).expect("a record serializes");
    text.push('\n');
    if let Ok(mut f) = log.lock() {
        // One write per record: lines of the two streams never interleave mid-record.
        let _ = f.write_all(text.as_bytes());
    }
}

/// Copy a stream into the log, a record per line, until it ends.
pub fn copy_lines(
    input: impl Read + Send + 'static,
    stream: Stream,
    log: Arc<Mutex<File>>,
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
        let f = Mutex::new(File::create(&path).unwrap());
        append(&f, Stream::Stderr, b"oops\n");
        let text = std::fs::read_to_string(&path).unwrap();
        let r = Record::parse(text.trim_end());
        assert_eq!((r.log.as_str(), r.stream), ("oops\n", Stream::Stderr));
        assert!(r.nanos() > 0, "{}", r.time);
        let old = Record::parse("plain text");
        assert_eq!((old.log.as_str(), old.stream, old.nanos()), ("plain text\n", Stream::Stdout, 0));
    }
}
