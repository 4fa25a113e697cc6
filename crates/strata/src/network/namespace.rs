//! Network namespaces strata makes for containers. `LoopbackNamespace`:
//! one with only `lo` up (`--network none`, as Docker), made on a
//! short-lived thread (a thread can unshare its network namespace alone)
//! and kept alive by a descriptor the runtime joins through
//! `/proc/<pid>/fd/<n>`. `Pinned`: one bind-mounted at a path under the
//! store, for a container on a network, so that whoever tears the network
//! down later (the container's waiter, `rm`, a sweep after a crash) can
//! still hand it to netavark.
//!
//! Written by hand: bringing one interface up is two ioctls and pinning is
//! one bind mount; netavark sets up interfaces in a namespace its caller
//! provides and does not handle `none`.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};

/// A network namespace holding only `lo`, up.
pub struct LoopbackNamespace(OwnedFd);

impl LoopbackNamespace {
    /// Make one.
    pub fn new() -> Result<Self> {
        in_new_namespace(|| Ok(std::fs::File::open("/proc/thread-self/ns/net")?.into()))
            .map(LoopbackNamespace)
            .map_err(|e| Error::Runtime(format!("making a network namespace: {e}")))
    }

    /// The path a runtime opens to join it (valid while `self` lives, also in a forked child).
    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/fd/{}", std::process::id(), self.0.as_raw_fd()))
    }
}

/// Run `keep` on a short-lived thread that has unshared its network
/// namespace and brought `lo` up: `keep` holds on to the namespace (a
/// descriptor, a bind mount) before the thread, its last user, ends.
fn in_new_namespace<T: Send + 'static>(
    keep: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    std::thread::spawn(move || {
        // SAFETY: unshare affects only this thread, which ends right after.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        loopback_up()?;
        keep()
    })
    .join()
    .map_err(|_| std::io::Error::other("the namespace thread panicked"))?
}

/// Make a namespace with `lo` up and pin it at `path` (a new file).
pub fn create_pinned(path: &Path) -> Result<()> {
    std::fs::File::options().write(true).create_new(true).open(path).at(path)?;
    let target = path.to_path_buf();
    let made = in_new_namespace(move || {
        rustix::mount::mount_bind("/proc/thread-self/ns/net", &target).map_err(std::io::Error::from)
    });
    if let Err(e) = made {
        let _ = std::fs::remove_file(path);
        return Err(Error::Runtime(format!("making a network namespace at {}: {e}", path.display())));
    }
    Ok(())
}

/// Unpin a namespace made by [`create_pinned`] (it goes away with its last
/// user); absent is fine.
pub fn remove_pinned(path: &Path) -> Result<()> {
    match rustix::mount::unmount(path, rustix::mount::UnmountFlags::DETACH) {
        Ok(()) | Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOENT) => {}
        Err(e) => return Err(std::io::Error::from(e)).at(path),
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e).at(path),
        _ => Ok(()),
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
