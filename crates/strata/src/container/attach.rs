//! Input to a detached container: the monitor of a container created with
//! `-i` or `-t` listens on `attach.sock` in the container's directory and
//! copies what each `attach` client sends into the container's terminal (or
//! its stdin pipe; that copying is the `strata-monitor` program's); the
//! client side stops at the detach keys. The output
//! side of `attach` is the container's log, followed (one path for output,
//! whoever reads it).
//!
//! Written here, not taken from a crate: Docker's detach-key grammar and
//! its escape proxy (a matched prefix is held back, then passed on if the
//! sequence breaks) are a few lines with no crate of their own.

use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

use crate::error::{Error, IoContext, Result};

const SOCKET: &str = "attach.sock";

/// Run `f` with a short path naming `dir/attach.sock`: a store's container
/// directories can be longer than a socket address holds (108 bytes), so
/// the path goes through an open descriptor of the directory.
fn at_socket<T>(dir: &Path, f: impl FnOnce(&Path) -> io::Result<T>) -> Result<T> {
    let d = std::fs::File::open(dir).at(dir)?;
    let short = format!("/proc/self/fd/{}/{SOCKET}", d.as_raw_fd());
    f(Path::new(&short)).at(dir.join(SOCKET))
}

/// The monitor's end: listen for attach clients of the container in `dir`.
pub fn listen(dir: &Path) -> Result<UnixListener> {
    let _ = std::fs::remove_file(dir.join(SOCKET));
    at_socket(dir, |p| UnixListener::bind(p))
}

/// Forget the socket once the container has exited.
pub fn unlisten(dir: &Path) {
    let _ = std::fs::remove_file(dir.join(SOCKET));
}

/// The client's end: a connection to the monitor of the container in
/// `dir`, or None when it takes no input (created without `-i`/`-t`, or
/// run attached rather than by a monitor).
pub fn connect(dir: &Path) -> Result<Option<UnixStream>> {
    if !dir.join(SOCKET).exists() {
        return Ok(None);
    }
    match at_socket(dir, |p| UnixStream::connect(p)) {
        Ok(s) => Ok(Some(s)),
        // The monitor is gone (the container exited between look and connect).
        Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::ConnectionRefused => Ok(None),
        Err(e) => Err(e),
    }
}

/// A detach sequence (`--detach-keys`), Docker's grammar: comma-separated
/// keys, each one character or `ctrl-X` with X in `a`–`z`, `@`, `[`, `\`,
/// `]`, `^`, `_`. Default `ctrl-p,ctrl-q`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetachKeys(Vec<u8>);

impl Default for DetachKeys {
    fn default() -> Self {
        DetachKeys(vec![0x10, 0x11])
    }
}

impl std::str::FromStr for DetachKeys {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = |k: &str| {
            Error::InvalidInput(format!("invalid detach key {k:?} in {s:?}: want a character or ctrl-<a-z@[\\]^_>"))
        };
        let mut keys = Vec::new();
        for k in s.split(',') {
            let key = match k.strip_prefix("ctrl-") {
                Some(c) if c.len() == 1 => {
                    let c = c.as_bytes()[0].to_ascii_lowercase();
                    match c {
                        b'a'..=b'z' => c - b'a' + 1,
                        b'@' | b'[' | b'\\' | b']' | b'^' | b'_' => c.to_ascii_uppercase() - b'@',
                        _ => return Err(bad(k)),
                    }
                }
                None if k.len() == 1 => k.as_bytes()[0],
                _ => return Err(bad(k)),
            };
            keys.push(key);
        }
        Ok(DetachKeys(keys))
    }
}

/// Input passing through the detach keys: bytes that may begin the sequence
/// are held back until it completes (detach) or breaks (they pass on).
#[derive(Debug)]
pub struct EscapeScanner {
    keys: DetachKeys,
    matched: usize,
}

impl EscapeScanner {
    /// A scanner for `keys`.
    pub fn new(keys: DetachKeys) -> Self {
        EscapeScanner { keys, matched: 0 }
    }

    /// The bytes of `input` to pass on, and whether the sequence completed
    /// (what came after it is dropped: the client is leaving).
    pub fn scan(&mut self, input: &[u8]) -> (Vec<u8>, bool) {
        let keys = &self.keys.0;
        let mut out = Vec::with_capacity(input.len());
        for &b in input {
            if b == keys[self.matched] {
                self.matched += 1;
                if self.matched == keys.len() {
                    return (out, true);
                }
                continue;
            }
            out.extend_from_slice(&keys[..self.matched]);
            self.matched = 0;
            if b == keys[0] {
                self.matched = 1;
                if keys.len() == 1 {
                    return (out, true);
                }
            } else {
                out.push(b);
            }
        }
        (out, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_parse_docker_s_grammar() {
        assert_eq!("ctrl-p,ctrl-q".parse::<DetachKeys>().unwrap(), DetachKeys::default());
        assert_eq!("a,ctrl-@,ctrl-_".parse::<DetachKeys>().unwrap(), DetachKeys(vec![b'a', 0, 0x1f]));
        assert!("ctrl-1".parse::<DetachKeys>().is_err());
        assert!("ab".parse::<DetachKeys>().is_err());
        assert!("".parse::<DetachKeys>().is_err());
    }

    #[test]
    fn scanner_holds_a_prefix_and_passes_it_on_when_the_sequence_breaks() {
        let mut s = EscapeScanner::new(DetachKeys::default());
        assert_eq!(s.scan(b"ab\x10"), (b"ab".to_vec(), false));
        assert_eq!(s.scan(b"c"), (b"\x10c".to_vec(), false));
        assert_eq!(s.scan(b"x\x10\x10"), (b"x\x10".to_vec(), false));
        assert_eq!(s.scan(b"\x11rest"), (Vec::new(), true));
        let mut one = EscapeScanner::new("q".parse().unwrap());
        assert_eq!(one.scan(b"abq"), (b"ab".to_vec(), true));
    }
}
