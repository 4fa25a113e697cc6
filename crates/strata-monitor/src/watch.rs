//! The monitor's one loop: a single thread polling the container's output,
//! the attach socket and its clients, and a signalfd (the container's exit,
//! probes' exits, signals to forward), with health probes on a timer.
//!
//! Written by hand over poll(2): no crate does a container monitor's job
//! (conmon, which this stands in for, is C), and an async runtime or a
//! thread per stream would cost more memory than the rest of the program.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use crate::logfile::{Stream, Writer};
use crate::plan::{self, Plan};
use crate::signals::exit_code;

/// Docker's json-file splits a line longer than this into several records.
const MAX_RECORD: usize = 16 * 1024;

/// How long output may stay open after the container's init exited (a
/// process that left its namespace, `--pid host`) before the monitor stops
/// waiting for it.
const DRAIN: Duration = Duration::from_secs(2);

/// The monitor program: read the plan, watch the container, then exec the
/// plan's `after` command with the exit code.
pub fn main() -> ! {
    // A write to a closed attach input or client is an error to handle,
    // not a reason to die (std's runtime would set this; the monitor's
    // entry point skips that runtime).
    // SAFETY: signal(2) with SIG_IGN installs no handler code.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    let plan: Plan = match std::env::args().nth(1).map(|a| serde_json::from_str(&a)) {
        Some(Ok(p)) => p,
        Some(Err(e)) => fail(&format!("strata-monitor: a bad plan: {e}")),
        None => fail("strata-monitor: run by `strata` only (it takes a plan)"),
    };
    let code = watch(&plan);
    let mut argv = plan.after.clone();
    argv.push(code.to_string());
    let e = exec(&argv);
    fail(&format!("strata-monitor: running {:?} after container {} exited with {code}: {e}", argv, plan.id))
}

fn fail(msg: &str) -> ! {
    let _ = writeln!(std::io::stderr(), "{msg}");
    std::process::exit(125)
}

/// execv(2) directly rather than std's `exec`: std empties the signal mask
/// first, and the signals blocked here must stay pending for the engine.
fn exec(argv: &[String]) -> std::io::Error {
    let Ok(args) = argv.iter().map(|a| std::ffi::CString::new(a.as_bytes())).collect::<Result<Vec<_>, _>>() else {
        return std::io::Error::new(std::io::ErrorKind::InvalidInput, "a NUL in an argument");
    };
    let Some(program) = args.first() else {
        return std::io::Error::new(std::io::ErrorKind::InvalidInput, "no command");
    };
    let mut ptrs: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    // SAFETY: a NUL-terminated array of pointers into live CStrings; execv returns only on failure.
    unsafe { libc::execv(program.as_ptr(), ptrs.as_ptr()) };
    std::io::Error::last_os_error()
}

/// Take a descriptor named in the plan, closed on exec from now on (the
/// engine run after must not inherit the container's pipes).
fn adopt(fd: RawFd) -> OwnedFd {
    // SAFETY: the engine opened `fd` for this process and passes its ownership in the plan.
    unsafe {
        libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
        OwnedFd::from_raw_fd(fd)
    }
}

/// Block SIGCHLD and the forwarded signals and read them from a signalfd.
/// They stay blocked across the exec at the end: one that arrives then
/// waits for the engine, which takes them over.
fn signals() -> OwnedFd {
    let set = crate::signals::handed_over();
    // SAFETY: sigprocmask with a filled set; signalfd returns a new descriptor or -1.
    unsafe {
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        let fd = libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK);
        if fd < 0 {
            fail(&format!("strata-monitor: signalfd: {}", std::io::Error::last_os_error()));
        }
        OwnedFd::from_raw_fd(fd)
    }
}

/// One of the container's output streams, cut into records at newlines.
struct Output {
    file: File,
    stream: Stream,
    partial: Vec<u8>,
    open: bool,
}

impl Output {
    fn new(fd: RawFd, stream: Stream) -> Self {
        Output { file: File::from(adopt(fd)), stream, partial: Vec::new(), open: true }
    }

    /// Read what is there; whole lines (and over-long pieces) become records.
    fn read(&mut self, log: &mut Option<Writer>) {
        let mut buf = [0u8; 8192];
        match self.file.read(&mut buf) {
            // A terminal's master shares its open file with the input sink,
            // which is non-blocking: nothing to read is not the end.
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted) => {}
            Ok(0) | Err(_) => {
                // End of the pipe, or EIO from a terminal whose other side closed.
                self.open = false;
                self.flush(log);
            }
            Ok(n) => {
                self.partial.extend_from_slice(&buf[..n]);
                let mut start = 0;
                while let Some(i) = self.partial[start..].iter().position(|&b| b == b'\n') {
                    write(log, self.stream, &self.partial[start..start + i + 1]);
                    start += i + 1;
                }
                self.partial.drain(..start);
                while self.partial.len() >= MAX_RECORD {
                    write(log, self.stream, &self.partial[..MAX_RECORD]);
                    self.partial.drain(..MAX_RECORD);
                }
            }
        }
    }

    fn flush(&mut self, log: &mut Option<Writer>) {
        if !self.partial.is_empty() {
            write(log, self.stream, &self.partial);
            self.partial.clear();
        }
    }
}

fn write(log: &mut Option<Writer>, stream: Stream, bytes: &[u8]) {
    if let Some(w) = log {
        if let Err(e) = w.append(stream, bytes) {
            // Said once, on the monitor's own stderr (the log file itself, or what is left of it).
            let _ = writeln!(std::io::stderr(), "strata-monitor: writing the log: {e}; output is dropped from now on");
            *log = None;
        }
    }
}

/// Where attach clients' input goes: the container's stdin pipe or its
/// terminal, written without blocking. What the container has not taken
/// yet waits here, and clients are not read until it has: the clients
/// block, never the loop (the log, signals and probes go on).
struct Input {
    sink: File,
    pending: Vec<u8>,
}

impl Input {
    fn new(fd: RawFd) -> Self {
        let sink = adopt(fd);
        // SAFETY: fcntl(2) on a descriptor this process owns.
        unsafe {
            let flags = libc::fcntl(sink.as_raw_fd(), libc::F_GETFL);
            libc::fcntl(sink.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK);
        }
        Input { sink: File::from(sink), pending: Vec::new() }
    }

    /// Queue `bytes` and write what the container takes now; false once
    /// the container closed its input (nothing more goes in).
    fn send(&mut self, bytes: &[u8]) -> bool {
        self.pending.extend_from_slice(bytes);
        self.flush()
    }

    fn flush(&mut self) -> bool {
        while !self.pending.is_empty() {
            match self.sink.write(&self.pending) {
                Ok(n) => {
                    self.pending.drain(..n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
                Err(_) => return false,
            }
        }
        true
    }
}

/// The state of the watch.
struct Watch<'p> {
    plan: &'p Plan,
    started: Instant,
    exited: Option<(i32, Instant)>,
    probe: Option<i32>,
    next_probe: Option<Instant>,
}

impl Watch<'_> {
    /// Reap every child that has exited: the container, or a probe.
    fn reap(&mut self) {
        loop {
            let mut status = 0;
            // SAFETY: waitpid with a valid status pointer; WNOHANG never blocks.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid <= 0 {
                return;
            }
            if pid == self.plan.pid {
                self.exited = Some((exit_code(status), Instant::now()));
            } else if Some(pid) == self.probe {
                self.probe = None;
                self.next_probe = self.plan.health.as_ref().map(|h| Instant::now() + interval(h));
            }
        }
    }

    /// Start a probe if one is due.
    fn probe_if_due(&mut self) {
        let (Some(h), Some(due), None, None) = (&self.plan.health, self.next_probe, self.probe, self.exited) else {
            return;
        };
        if Instant::now() < due {
            return;
        }
        let Some((program, args)) = h.probe.split_first() else { return };
        let mut cmd = std::process::Command::new(program);
        cmd.args(args);
        if self.started.elapsed() < Duration::from_millis(h.start_period_ms) {
            cmd.arg("--in-start-period");
        }
        cmd.stdin(std::process::Stdio::null()).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
        match cmd.spawn() {
            // Reaped by `reap` (waitpid on any child), never through the Child.
            Ok(child) => self.probe = Some(child.id() as i32),
            Err(e) => {
                let _ = writeln!(std::io::stderr(), "strata-monitor: starting a health probe: {e}");
                self.next_probe = Some(Instant::now() + interval(h));
            }
        }
    }

    /// How long poll may sleep: until the next probe or the end of draining.
    fn timeout(&self) -> libc::c_int {
        let until = match self.exited {
            Some((_, at)) => Some(at + DRAIN),
            None if self.probe.is_none() => self.next_probe,
            None => None,
        };
        match until {
            None => -1,
            Some(t) => t.saturating_duration_since(Instant::now()).as_millis().min(60_000) as libc::c_int + 1,
        }
    }
}

fn interval(h: &plan::Health) -> Duration {
    Duration::from_millis(h.interval_ms.max(1))
}

/// Watch the container until it has exited and its output is drained; its exit code.
fn watch(plan: &Plan) -> i32 {
    let sigfd = signals();
    let mut log = match Writer::open(&plan.log.path, plan.log.keep, plan.log.max_size, plan.log.max_file) {
        Ok(w) => Some(w),
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "strata-monitor: opening {}: {e}", plan.log.path.display());
            None
        }
    };
    let mut outputs = match plan.output {
        plan::Output::Pipes { stdout, stderr } => {
            vec![Output::new(stdout, Stream::Stdout), Output::new(stderr, Stream::Stderr)]
        }
        plan::Output::Terminal { master } => vec![Output::new(master, Stream::Stdout)],
    };
    let (listener, mut sink) = match &plan.input {
        Some(i) => (Some(adopt(i.listener)), Some(Input::new(i.sink))),
        None => (None, None),
    };
    let held: Vec<OwnedFd> = plan.held.iter().map(|&fd| adopt(fd)).collect();
    let mut clients: Vec<File> = Vec::new();
    let mut w = Watch {
        plan,
        started: Instant::now(),
        exited: None,
        probe: None,
        next_probe: plan.health.as_ref().map(|h| Instant::now() + interval(h)),
    };
    // The container may have exited before this program blocked SIGCHLD.
    w.reap();
    loop {
        if let Some((code, at)) = w.exited {
            if outputs.iter().all(|o| !o.open) || at.elapsed() >= DRAIN {
                for o in &mut outputs {
                    o.flush(&mut log);
                }
                if let Some(p) = w.probe {
                    // SAFETY: kill(2) and waitpid(2) of this process's own child.
                    unsafe {
                        libc::kill(p, libc::SIGKILL);
                        libc::waitpid(p, std::ptr::null_mut(), 0);
                    }
                }
                drop(held);
                return code;
            }
        }
        w.probe_if_due();
        let mut fds = vec![libc::pollfd { fd: sigfd.as_raw_fd(), events: libc::POLLIN, revents: 0 }];
        let open: Vec<usize> = (0..outputs.len()).filter(|&i| outputs[i].open).collect();
        fds.extend(open.iter().map(|&i| libc::pollfd {
            fd: outputs[i].file.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }));
        let listen_at = fds.len();
        if let Some(l) = &listener {
            fds.push(libc::pollfd { fd: l.as_raw_fd(), events: libc::POLLIN, revents: 0 });
        }
        let sink_at = fds.len();
        let waiting = sink.as_ref().filter(|i| !i.pending.is_empty());
        if let Some(i) = waiting {
            fds.push(libc::pollfd { fd: i.sink.as_raw_fd(), events: libc::POLLOUT, revents: 0 });
        }
        let clients_at = fds.len();
        let polled_clients = if waiting.is_some() { 0 } else { clients.len() };
        fds.extend(clients.iter().take(polled_clients).map(|c| libc::pollfd {
            fd: c.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }));
        // SAFETY: `fds` is a live array of pollfd of the length given.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, w.timeout()) };
        if n < 0 {
            continue; // EINTR
        }
        let ready = |i: usize| fds[i].revents != 0;
        if ready(0) {
            let mut info = [0u8; std::mem::size_of::<libc::signalfd_siginfo>()];
            loop {
                // SAFETY: read(2) into a buffer of the length given; the signalfd does not block.
                let size = unsafe { libc::read(sigfd.as_raw_fd(), info.as_mut_ptr().cast(), info.len()) };
                if size < info.len() as isize {
                    break;
                }
                // SAFETY: the kernel wrote a whole signalfd_siginfo into `info`.
                let si: libc::signalfd_siginfo = unsafe { std::ptr::read_unaligned(info.as_ptr().cast()) };
                if si.ssi_signo as libc::c_int != libc::SIGCHLD && w.exited.is_none() {
                    // SAFETY: kill(2) of the container's init, still this process's unreaped child.
                    unsafe { libc::kill(plan.pid, si.ssi_signo as libc::c_int) };
                }
            }
            w.reap();
        }
        for (k, &i) in open.iter().enumerate() {
            if ready(1 + k) {
                outputs[i].read(&mut log);
            }
        }
        if clients_at > sink_at && ready(sink_at) && !sink.as_mut().is_some_and(Input::flush) {
            sink = None;
        }
        let mut gone = Vec::new();
        for (k, c) in clients.iter_mut().enumerate().take(polled_clients) {
            if !ready(clients_at + k) {
                continue;
            }
            let mut buf = [0u8; 4096];
            match c.read(&mut buf) {
                Ok(n) if n > 0 => {
                    if sink.as_mut().is_some_and(|i| !i.send(&buf[..n])) {
                        // The container closed its input: nothing more goes in.
                        sink = None;
                    }
                }
                _ => gone.push(k),
            }
        }
        for k in gone.into_iter().rev() {
            clients.remove(k);
        }
        if let Some(l) = listener.as_ref().filter(|_| ready(listen_at)) {
            // SAFETY: accept4 on a listening socket this process owns; the result is a new descriptor or -1.
            let fd =
                unsafe { libc::accept4(l.as_raw_fd(), std::ptr::null_mut(), std::ptr::null_mut(), libc::SOCK_CLOEXEC) };
            if fd >= 0 {
                // SAFETY: a descriptor accept4 just returned.
                clients.push(File::from(unsafe { OwnedFd::from_raw_fd(fd) }));
            }
        }
    }
}
