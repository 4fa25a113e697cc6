//! A container's own network namespace with its loopback interface up, as
//! Docker gives `--network none`: made on a short-lived thread (a thread can
//! unshare its network namespace alone), kept alive by a descriptor the
//! runtime joins through `/proc/<pid>/fd/<n>` while it creates the container.
//!
//! Written by hand: bringing one interface up is two ioctls, and netavark
//! (the networking issue's tool) does not handle `none`.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;

use crate::error::{Error, Result};

/// A network namespace holding only `lo`, up.
pub struct LoopbackNamespace(OwnedFd);

impl LoopbackNamespace {
    /// Make one.
    pub fn new() -> Result<Self> {
        let made = std::thread::spawn(|| -> std::io::Result<OwnedFd> {
            // SAFETY: unshare affects only this thread, which ends right after.
            if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
            loopback_up()?;
            let ns = std::fs::File::open("/proc/thread-self/ns/net")?;
            Ok(ns.into())
        })
        .join()
        .map_err(|_| Error::Runtime("making a network namespace: the thread panicked".into()))?;
        made.map(LoopbackNamespace).map_err(|e| Error::Runtime(format!("making a network namespace: {e}")))
    }

    /// The path a runtime opens to join it (valid while `self` lives, also in a forked child).
    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/fd/{}", std::process::id(), self.0.as_raw_fd()))
    }
}

/// Set IFF_UP on `lo` in the calling thread's network namespace.
fn loopback_up() -> std::io::Result<()> {
    // SAFETY: a plain socket call; the descriptor is owned right away.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd was just returned by socket(2) and is owned only here.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ifreq is plain data; zeroed is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    let name: &CStr = c"lo";
    for (dst, src) in req.ifr_name.iter_mut().zip(name.to_bytes_with_nul()) {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write the ifreq we own.
    unsafe {
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}
