//! The signals a container's watcher passes on to it, and the exit code of
//! a wait status, shared by the engine
//! (an attached run's sig-proxy, the hand-over to the monitor) and the
//! monitor, which must agree on them: what the engine blocks before it
//! execs the monitor is what the monitor reads from its signalfd.

/// Passed on to the container (Docker's sig-proxy set): a host's shutdown
/// signalling the monitor, or a terminal the caller's, reaches it.
pub const FORWARDED: [libc::c_int; 6] =
    [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT, libc::SIGUSR1, libc::SIGUSR2];

/// [`FORWARDED`] and SIGCHLD: what stays blocked while a container is
/// handed between the engine and the monitor.
pub fn handed_over() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data filled by sigemptyset/sigaddset.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        for s in FORWARDED {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

/// The exit code Docker reports for a wait status (128+signal when killed).
pub fn exit_code(status: libc::c_int) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        255
    }
}
