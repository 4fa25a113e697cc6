//! `-t`: the container's process gets a pseudo-terminal. The runtime sends
//! the pty master over a unix socket (the OCI console-socket protocol);
//! this end puts the caller's terminal in raw mode and copies bytes both
//! ways until the container's side closes.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};

/// A listening console socket (at a short path: sun_path holds 108 bytes).
pub struct ConsoleSocket {
    listener: UnixListener,
    path: PathBuf,
}

impl ConsoleSocket {
    /// Listen on a new socket in a directory of its own under /tmp, made
    /// here with mode 0700 (so no other user can connect first and hand the
    /// container a terminal of theirs, nor plant the path beforehand).
    pub fn new(id: &str) -> Result<Self> {
        use std::os::unix::fs::DirBuilderExt;
        let dir = PathBuf::from(format!("/tmp/strata-tty-{}-{}", &id[..12.min(id.len())], crate::tmp::random_hex(4)?));
        std::fs::DirBuilder::new().mode(0o700).create(&dir).at(&dir)?;
        let path = dir.join("console.sock");
        let listener = match UnixListener::bind(&path) {
            Ok(l) => l,
            Err(e) => {
                let _ = std::fs::remove_dir(&dir);
                return Err(e).at(&path);
            }
        };
        Ok(ConsoleSocket { listener, path })
    }

    /// Where the runtime should connect.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Accept the runtime's connection and take the pty master it sends.
    pub fn receive_master(&self) -> Result<OwnedFd> {
        let (conn, _) = self.listener.accept().at(&self.path)?;
        recv_fd(conn.as_raw_fd()).map_err(|e| Error::Runtime(format!("receiving the container's terminal: {e}")))
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        if let Some(dir) = self.path.parent() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

fn recv_fd(sock: i32) -> io::Result<OwnedFd> {
    let mut data = [0u8; 256];
    let mut iov = libc::iovec { iov_base: data.as_mut_ptr().cast(), iov_len: data.len() };
    let mut control = [0u64; 8];
    // SAFETY: msghdr is plain data; every pointer set below points at live locals of the right size.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control);
        if libc::recvmsg(sock, &mut msg, 0) < 0 {
            return Err(io::Error::last_os_error());
        }
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        if cmsg.is_null() || (*cmsg).cmsg_level != libc::SOL_SOCKET || (*cmsg).cmsg_type != libc::SCM_RIGHTS {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "no file descriptor in the console message"));
        }
        let fd = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg) as *const i32);
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

/// Restores the caller's terminal mode when dropped.
pub struct RawMode {
    saved: Option<rustix::termios::Termios>,
}

impl RawMode {
    /// Put standard input in raw mode if it is a terminal.
    pub fn enter() -> Self {
        let stdin = io::stdin();
        let saved = rustix::termios::tcgetattr(stdin.as_fd()).ok();
        if let Some(t) = &saved {
            let mut raw = t.clone();
            raw.make_raw();
            let _ = rustix::termios::tcsetattr(stdin.as_fd(), rustix::termios::OptionalActions::Now, &raw);
        }
        RawMode { saved }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = rustix::termios::tcsetattr(io::stdin().as_fd(), rustix::termios::OptionalActions::Now, t);
        }
    }
}

/// Where a terminal's keys come from.
pub enum Input {
    /// Nowhere (`-t` without `-i`).
    None,
    /// The caller's standard input (`-it`).
    Caller,
}

/// Copy between the caller's stdin/stdout and the pty master. Returns the
/// thread copying the container's output; join it after the process exits.
pub fn proxy(master: OwnedFd, input: Input) -> Result<std::thread::JoinHandle<()>> {
    if let Ok(ws) = rustix::termios::tcgetwinsize(io::stdout().as_fd()) {
        let _ = rustix::termios::tcsetwinsize(master.as_fd(), ws);
    }
    let mut out_side = std::fs::File::from(master.try_clone().at("pty")?);
    if let Input::Caller = input {
        let mut in_side = std::fs::File::from(master);
        // Never joined: it blocks on the caller's stdin and ends with the process.
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let mut stdin = io::stdin();
            while let Ok(n) = stdin.read(&mut buf) {
                if n == 0 || in_side.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        });
    }
    Ok(std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        let mut stdout = io::stdout();
        // EIO once the container's side of the pty is closed.
        while let Ok(n) = out_side.read(&mut buf) {
            if n == 0 || stdout.write_all(&buf[..n]).and_then(|_| stdout.flush()).is_err() {
                break;
            }
        }
    }))
}

/// A terminal being proxied for a running process.
pub struct Attached {
    output: std::thread::JoinHandle<()>,
    raw: RawMode,
}

impl Attached {
    /// Enter raw mode, start copying to and from `master`.
    pub fn start(master: OwnedFd, input: Input) -> Result<Self> {
        let raw = RawMode::enter();
        Ok(Attached { output: proxy(master, input)?, raw })
    }

    /// After the process exited: let its last output through, restore the terminal.
    pub fn finish(self) {
        let _ = self.output.join();
        drop(self.raw);
    }
}
