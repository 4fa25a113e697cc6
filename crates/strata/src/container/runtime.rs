//! Runtimes: what turns a bundle into a running process. The built-in one
//! is youki's libcontainer, in this process: no external binary. The
//! container's init process is a child of the calling process (libcontainer
//! clones it as a sibling of its intermediate process), so the caller waits
//! for it and records its exit.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
// The signals an attached CLI or a monitor passes on to its container (Docker's sig-proxy).
use strata_monitor::signals::{exit_code, FORWARDED};

/// The container process's standard streams.
pub struct Stdio {
    /// Standard input.
    pub stdin: OwnedFd,
    /// Standard output.
    pub stdout: OwnedFd,
    /// Standard error.
    pub stderr: OwnedFd,
    /// With a terminal: where to send the pty master (OCI console socket).
    pub console_socket: Option<PathBuf>,
}

/// A small runtime interface: start a bundle, clean up after it.
pub trait Runtime {
    /// Create the container from `bundle` and start its process; returns the
    /// pid of the container's init process, a child of this process.
    fn start(&self, id: &str, bundle: &Path, stdio: Stdio) -> Result<i32>;
    /// Start another process in a running container; returns its pid, a
    /// child of this process.
    fn exec(&self, id: &str, process: &ExecProcess, stdio: Stdio) -> Result<i32>;
    /// Forget a container whose process is gone (state, cgroups).
    fn delete(&self, id: &str) -> Result<()>;
    /// Freeze every process of a running container (cgroup freezer).
    fn pause(&self, id: &str) -> Result<()>;
    /// Thaw a paused container.
    fn resume(&self, id: &str) -> Result<()>;
    /// Whether the container is paused now.
    fn paused(&self, id: &str) -> bool;
}

/// A process to start in a running container.
#[derive(Debug, Clone)]
pub struct ExecProcess {
    /// Program and arguments.
    pub args: Vec<String>,
    /// `KEY=VALUE` pairs.
    pub env: Vec<String>,
    /// Working directory.
    pub cwd: String,
    /// uid, gid and supplementary groups.
    pub user: (u32, u32, Vec<u32>),
    /// The container's capabilities.
    pub capabilities: Vec<&'static str>,
    /// The container's no-new-privileges.
    pub no_new_privileges: bool,
}

/// youki's libcontainer, in process.
pub struct BuiltIn {
    state_root: PathBuf,
}

impl BuiltIn {
    /// A runtime keeping its per-container state under `state_root`.
    pub fn new(state_root: &Path) -> Self {
        BuiltIn { state_root: state_root.to_path_buf() }
    }
}

fn lc(e: impl std::fmt::Display) -> Error {
    Error::Runtime(e.to_string())
}

impl BuiltIn {
    /// The libcontainer builder both init and tenant processes start from.
    fn builder(&self, id: &str, stdio: Stdio) -> Result<libcontainer::container::builder::ContainerBuilder> {
        use libcontainer::container::builder::ContainerBuilder;
        use libcontainer::syscall::syscall::SyscallType;
        use libcontainer::workload::default::DefaultExecutor;
        let stdio = Stdio { stdout: writable_null(stdio.stdout)?, stderr: writable_null(stdio.stderr)?, ..stdio };
        std::fs::create_dir_all(&self.state_root).map_err(lc)?;
        Ok(ContainerBuilder::new(id.to_string(), SyscallType::default())
            .with_executor(DefaultExecutor {})
            .with_root_path(&self.state_root)
            .map_err(lc)?
            .with_stdin(stdio.stdin)
            .with_stdout(stdio.stdout)
            .with_stderr(stdio.stderr)
            .with_console_socket(stdio.console_socket.as_ref()))
    }
}

/// An output stream for libcontainer: /dev/null becomes a pipe drained
/// here until the last writer closes it. libcontainer 0.7 reopens any
/// standard stream that is /dev/null from inside the container, read-only
/// (runc reopens it read-write), so `run IMAGE echo hi >/dev/null` would
/// fail with EBADF.
fn writable_null(fd: OwnedFd) -> Result<OwnedFd> {
    let st = rustix::fs::fstat(&fd).map_err(|e| Error::Runtime(format!("a standard stream: {e}")))?;
    let is_null = (st.st_mode & libc::S_IFMT) == libc::S_IFCHR
        && rustix::fs::major(st.st_rdev) == 1
        && rustix::fs::minor(st.st_rdev) == 3;
    if !is_null {
        return Ok(fd);
    }
    let (mut r, w) = std::io::pipe().map_err(|e| Error::Runtime(format!("a pipe for a discarded stream: {e}")))?;
    std::thread::spawn(move || std::io::copy(&mut r, &mut std::io::sink()));
    Ok(w.into())
}

impl Runtime for BuiltIn {
    fn start(&self, id: &str, bundle: &Path, stdio: Stdio) -> Result<i32> {
        let mut c =
            self.builder(id, stdio)?.as_init(bundle).with_systemd(false).with_detach(true).build().map_err(lc)?;
        if let Err(e) = c.start() {
            let _ = c.delete(true);
            return Err(lc(e));
        }
        c.pid().map(|p| p.as_raw()).ok_or_else(|| Error::Runtime(format!("container {id} started without a pid")))
    }

    fn exec(&self, id: &str, p: &ExecProcess, stdio: Stdio) -> Result<i32> {
        // The whole process as an OCI process object: the one way to ask libcontainer for a terminal.
        let caps = &p.capabilities;
        let process = serde_json::json!({
            "terminal": stdio.console_socket.is_some(),
            "user": {"uid": p.user.0, "gid": p.user.1, "additionalGids": p.user.2},
            "args": p.args,
            "env": p.env,
            "cwd": p.cwd,
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
        });
        let mut process = process;
        // Absent rather than false (see security::Security::apply).
        if p.no_new_privileges {
            process["noNewPrivileges"] = true.into();
        }
        let file = tempfile_in(&self.state_root.join(id), "exec")?;
        let stdio_has_console = stdio.console_socket.is_some();
        std::fs::write(&file, serde_json::to_vec(&process).expect("process serializes")).map_err(lc)?;
        let built = self
            .builder(id, stdio)?
            .validate_id()
            .map_err(lc)?
            .as_tenant()
            // libcontainer takes a console socket only from a "detached" tenant; we still wait for it.
            .with_detach(stdio_has_console)
            .with_process(Some(&file))
            .build();
        let _ = std::fs::remove_file(&file);
        Ok(built.map_err(lc)?.as_raw())
    }

    fn delete(&self, id: &str) -> Result<()> {
        let dir = self.state_root.join(id);
        if !dir.exists() {
            return Ok(());
        }
        match libcontainer::container::Container::load(dir.clone()) {
            Ok(mut c) => c.delete(true).map_err(lc),
            Err(_) => crate::tree::remove(&dir),
        }
    }

    fn pause(&self, id: &str) -> Result<()> {
        libcontainer::container::Container::load(self.state_root.join(id)).and_then(|mut c| c.pause()).map_err(lc)
    }

    fn resume(&self, id: &str) -> Result<()> {
        libcontainer::container::Container::load(self.state_root.join(id)).and_then(|mut c| c.resume()).map_err(lc)
    }

    fn paused(&self, id: &str) -> bool {
        libcontainer::container::Container::load(self.state_root.join(id))
            .is_ok_and(|c| c.status() == libcontainer::container::ContainerStatus::Paused)
    }
}

fn tempfile_in(dir: &Path, prefix: &str) -> Result<PathBuf> {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    Ok(dir.join(format!("{prefix}-{}-{nanos}.json", std::process::id())))
}

/// [`wait`] for at most `limit`: None when the process still runs then.
pub fn wait_timeout(pid: i32, limit: std::time::Duration) -> Result<Option<i32>> {
    let deadline = std::time::Instant::now() + limit;
    loop {
        let mut status = 0;
        // SAFETY: waitpid on a pid this process started, with a valid status pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            return Ok(Some(exit_code(status)));
        }
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(Error::Runtime(format!("waiting for process {pid}: {e}")));
            }
        }
        if std::time::Instant::now() >= deadline {
            return Ok(None);
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Wait for a child process; Docker's exit code (128+signal when killed).
pub fn wait(pid: i32) -> Result<i32> {
    let mut status = 0;
    loop {
        // SAFETY: waitpid on a pid this process started, with a valid status pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(Error::Runtime(format!("waiting for container process {pid}: {e}")));
        }
    }
    Ok(exit_code(status))
}

/// An external OCI runtime binary (runc, crun, youki or a path) driven on
/// the same bundle. This process becomes a child subreaper before `create`,
/// so the container's init, orphaned when the runtime exits, is re-parented
/// here and can be waited for like the built-in runtime's.
pub struct External {
    binary: PathBuf,
    state_root: PathBuf,
}

impl External {
    /// `name` is a binary on PATH (runc, crun, youki) or a path.
    pub fn new(name: &str, state_root: &Path) -> Result<Self> {
        let binary = if name.contains('/') {
            PathBuf::from(name)
        } else {
            std::env::var_os("PATH")
                .and_then(|p| std::env::split_paths(&p).map(|d| d.join(name)).find(|c| c.is_file()))
                .ok_or_else(|| Error::invalid(format!("runtime {name:?} not found in PATH")))?
        };
        if !binary.is_file() {
            return Err(Error::invalid(format!("runtime {} does not exist", binary.display())));
        }
        let state_root = state_root.join(binary.file_name().unwrap_or_default());
        Ok(External { binary, state_root })
    }

    fn cmd(&self) -> std::process::Command {
        let mut c = std::process::Command::new(&self.binary);
        c.arg("--root").arg(&self.state_root);
        c
    }

    fn check(&self, what: &str, out: std::io::Result<std::process::Output>) -> Result<()> {
        let out = out.map_err(|e| Error::Runtime(format!("{} {what}: {e}", self.binary.display())))?;
        if !out.status.success() {
            return Err(Error::Runtime(format!(
                "{} {what} failed: {}",
                self.binary.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(())
    }
}

impl Runtime for External {
    fn start(&self, id: &str, bundle: &Path, stdio: Stdio) -> Result<i32> {
        if stdio.console_socket.is_some() {
            return Err(Error::invalid(format!(
                "-t is supported with the built-in runtime only, not {}",
                self.binary.display()
            )));
        }
        std::fs::create_dir_all(&self.state_root).map_err(lc)?;
        // SAFETY: prctl with constant arguments.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        let pid_file = bundle.join("runtime.pid");
        let _ = std::fs::remove_file(&pid_file);
        let status = self
            .cmd()
            .args(["create", "--bundle"])
            .arg(bundle)
            .arg("--pid-file")
            .arg(&pid_file)
            .arg(id)
            .stdin(std::process::Stdio::from(stdio.stdin))
            .stdout(std::process::Stdio::from(stdio.stdout))
            .stderr(std::process::Stdio::from(stdio.stderr))
            .status()
            .map_err(|e| Error::Runtime(format!("{} create: {e}", self.binary.display())))?;
        if !status.success() {
            return Err(Error::Runtime(format!("{} create {id} failed ({status})", self.binary.display())));
        }
        let pid: i32 = std::fs::read_to_string(&pid_file)
            .map_err(lc)?
            .trim()
            .parse()
            .map_err(|e| Error::Runtime(format!("bad pid file {}: {e}", pid_file.display())))?;
        let started = self.cmd().args(["start", id]).output();
        if let Err(e) = self.check("start", started) {
            let _ = self.delete(id);
            return Err(e);
        }
        Ok(pid)
    }

    fn exec(&self, id: &str, p: &ExecProcess, stdio: Stdio) -> Result<i32> {
        if stdio.console_socket.is_some() {
            return Err(Error::invalid(format!(
                "-t is supported with the built-in runtime only, not {}",
                self.binary.display()
            )));
        }
        let mut c = self.cmd();
        c.arg("exec").arg("--cwd").arg(&p.cwd).arg("--user").arg(format!("{}:{}", p.user.0, p.user.1));
        for g in &p.user.2 {
            c.arg("--additional-gids").arg(g.to_string());
        }
        for e in &p.env {
            c.arg("--env").arg(e);
        }
        c.arg(id).args(&p.args);
        c.stdin(std::process::Stdio::from(stdio.stdin))
            .stdout(std::process::Stdio::from(stdio.stdout))
            .stderr(std::process::Stdio::from(stdio.stderr));
        let child = c.spawn().map_err(|e| Error::Runtime(format!("{} exec: {e}", self.binary.display())))?;
        Ok(child.id() as i32)
    }

    fn pause(&self, id: &str) -> Result<()> {
        let out = self.cmd().args(["pause", id]).output();
        self.check("pause", out)
    }

    fn resume(&self, id: &str) -> Result<()> {
        let out = self.cmd().args(["resume", id]).output();
        self.check("resume", out)
    }

    fn paused(&self, id: &str) -> bool {
        self.cmd()
            .args(["state", id])
            .output()
            .ok()
            .and_then(|o| serde_json::from_slice::<serde_json::Value>(&o.stdout).ok())
            .is_some_and(|v| v["status"] == "paused")
    }

    fn delete(&self, id: &str) -> Result<()> {
        let out = self.cmd().args(["delete", "--force", id]).output();
        match out {
            Ok(o) if o.status.success() => Ok(()),
            Ok(o) if String::from_utf8_lossy(&o.stderr).contains("does not exist") => Ok(()),
            other => self.check("delete", other),
        }
    }
}

/// The runtime a container was created with: built-in unless named.
pub fn for_name(name: Option<&str>, state_root: &Path) -> Result<Box<dyn Runtime>> {
    match name {
        None | Some("") | Some("builtin") | Some("strata") => Ok(Box::new(BuiltIn::new(state_root))),
        Some(n) => Ok(Box::new(External::new(n, state_root)?)),
    }
}

static FORWARD_TO: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// Signals that arrived before the container's process was known (bit n = signal n).
static PENDING: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

extern "C" fn forward(sig: libc::c_int) {
    let pid = FORWARD_TO.load(std::sync::atomic::Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill(2) is async-signal-safe.
        unsafe { libc::kill(pid, sig) };
    } else if (0..64).contains(&sig) {
        PENDING.fetch_or(1 << sig, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Block the forwarded signals and SIGCHLD, for handing a launched
/// container over to the monitor program: one that arrives before the
/// monitor reads them waits for it instead of ending this process.
pub fn hold_signals() {
    mask_signals(libc::SIG_BLOCK);
}

/// Unblock what [`hold_signals`] blocked.
pub fn release_signals() {
    mask_signals(libc::SIG_UNBLOCK);
}

fn mask_signals(how: libc::c_int) {
    let set = strata_monitor::signals::handed_over();
    // SAFETY: pthread_sigmask with a filled set.
    unsafe { libc::pthread_sigmask(how, &set, std::ptr::null_mut()) };
}

/// Replace this process with `program PLAN`, `passed` left open for it.
/// execv(2) directly: std's `exec` empties the signal mask, which would
/// let a held signal end the process between the two programs. Returns
/// only on failure.
pub fn exec(program: &Path, plan: &str, passed: &[OwnedFd]) -> std::io::Error {
    use std::ffi::CString;
    use std::os::fd::AsRawFd;
    use std::os::unix::ffi::OsStrExt;
    for fd in passed {
        // SAFETY: fcntl on a descriptor this process owns.
        unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, 0) };
    }
    let (Ok(p), Ok(arg)) = (CString::new(program.as_os_str().as_bytes()), CString::new(plan)) else {
        return std::io::Error::new(std::io::ErrorKind::InvalidInput, "a NUL in the monitor's command");
    };
    let argv = [p.as_ptr(), arg.as_ptr(), std::ptr::null()];
    // SAFETY: NUL-terminated strings and a NULL-terminated argv that outlive the call.
    unsafe { libc::execv(p.as_ptr(), argv.as_ptr()) };
    let e = std::io::Error::last_os_error();
    for fd in passed {
        // SAFETY: as above.
        unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    e
}

/// For a process that waits on a container for a caller which passes its
/// signals on (an attached run's waiter): the signals the caller forwards
/// (which a terminal also sends to this process, in the caller's process
/// group) neither end this process nor reach the container twice. Handlers,
/// not SIG_IGN: a container started from here gets default dispositions.
pub fn shield_signals() {
    extern "C" fn nothing(_: libc::c_int) {}
    for sig in FORWARDED {
        // SAFETY: installs a handler that does nothing.
        unsafe { libc::signal(sig, nothing as *const () as libc::sighandler_t) };
    }
}

/// While the guard lives, signals sent to this process go to `pid` instead.
pub struct SignalProxy;

impl SignalProxy {
    /// Take the signals over before the container starts: one that arrives
    /// before its process is known is held, not fatal to this process (which
    /// would leave the container running unwatched).
    pub fn install() -> Self {
        FORWARD_TO.store(0, std::sync::atomic::Ordering::SeqCst);
        PENDING.store(0, std::sync::atomic::Ordering::SeqCst);
        for sig in FORWARDED {
            // SAFETY: installs a handler that only calls async-signal-safe kill(2) and atomics.
            unsafe { libc::signal(sig, forward as *const () as libc::sighandler_t) };
        }
        // A monitor that restarts its container got them blocked from the
        // monitor program (see [`hold_signals`]): those that waited are
        // held for the new process now, and its process must not start with a mask.
        release_signals();
        SignalProxy
    }

    /// From now on signals go to `pid`; those held meanwhile are delivered.
    pub fn forward_to(&self, pid: i32) {
        FORWARD_TO.store(pid, std::sync::atomic::Ordering::SeqCst);
        let held = PENDING.swap(0, std::sync::atomic::Ordering::SeqCst);
        for sig in FORWARDED.into_iter().filter(|s| held & (1 << s) != 0) {
            // SAFETY: kill(2) with a pid and a signal number.
            unsafe { libc::kill(pid, sig) };
        }
    }
}

impl Drop for SignalProxy {
    fn drop(&mut self) {
        FORWARD_TO.store(0, std::sync::atomic::Ordering::SeqCst);
        for sig in FORWARDED {
            // SAFETY: restores the default disposition.
            unsafe { libc::signal(sig, libc::SIG_DFL) };
        }
    }
}
