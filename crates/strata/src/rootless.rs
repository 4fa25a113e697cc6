//! Rootless mode: strata run by an ordinary user (issue 19).
//!
//! Such a user gets a store of their own (`$XDG_DATA_HOME/strata`, else
//! `~/.local/share/strata`) and a runtime directory
//! (`$XDG_RUNTIME_DIR/strata`, else `/tmp/strata-UID`, 0700). Every command
//! runs as root of a user namespace that maps the user to 0 and the user's
//! ranges in `/etc/subuid` and `/etc/subgid` above it (set by Debian's
//! `newuidmap`/`newgidmap`, the setuid helpers that check those files), and
//! in a mount namespace of its own, so files in layers keep their owners and
//! overlay mounts need no host privilege. With no subordinate ranges the
//! user alone is mapped, and strata warns that files of other owners cannot
//! be stored.
//!
//! The namespaces outlive one command: the first command starts a pause
//! process (`strata` again, doing nothing but waiting) that holds them, and
//! records its PID in the runtime directory; every command joins them with
//! `setns(2)` before it starts any thread. This is podman's design: a
//! container started by one command and entered by the next must be in the
//! same namespaces, and an image mounted by one command must stay mounted.
//! Written by hand: no crate sets up a user namespace through the setuid
//! helpers and keeps it for later processes.

use std::fs;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use crate::error::{Error, IoContext, Result};

/// The environment variable that makes `strata` the pause process.
pub const PAUSE_ENV: &str = "STRATA_ROOTLESS_PAUSE";
/// Set by a command that entered the namespaces, for the strata processes
/// it starts (a container's monitor): they are in them already.
const ENTERED_ENV: &str = "STRATA_ROOTLESS_ENTERED";

/// One line of a user namespace's ID map.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct IdRange {
    /// The first ID inside the namespace.
    pub inside: u32,
    /// The first ID on the host.
    pub outside: u32,
    /// How many IDs.
    pub count: u32,
}

/// Who runs strata rootless and how their IDs are mapped.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Rootless {
    /// The user's ID on the host.
    pub uid: u32,
    /// The user's group ID on the host.
    pub gid: u32,
    /// The user's name (what `/etc/subuid` lines may name).
    pub user: String,
    /// The user namespace's UID map.
    pub uid_map: Vec<IdRange>,
    /// Its GID map.
    pub gid_map: Vec<IdRange>,
    /// The runtime directory (the pause process's PID file).
    pub runtime_dir: PathBuf,
    /// The pause process holding the namespaces.
    pub pause_pid: i32,
}

impl Rootless {
    /// Whether only the user is mapped (no subordinate ranges).
    pub fn single_id(&self) -> bool {
        self.uid_map.len() < 2 || self.gid_map.len() < 2
    }

    /// What cannot work in this mode, for `info` and warnings.
    pub fn unavailable(&self) -> Vec<String> {
        let mut v = Vec::new();
        v.push(format!(
            "cgroups: resource limits, update, pause, stats (no cgroup is delegated; the host's cgroups are {})",
            cgroup_layout()
        ));
        v.push("networks: containers use pasta (or none, host, container:NAME); no bridge or user networks".into());
        if self.single_id() {
            v.push(format!(
                "files owned by anyone but root in an image (no ranges for {} in /etc/subuid and /etc/subgid)",
                self.user
            ));
        }
        v
    }
}

/// How the host mounts cgroups.
pub fn cgroup_layout() -> &'static str {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    // Hidden mounts are listed too: the v1 controllers under the unified view shown here.
    let has = |t: &str| info.lines().any(|l| l.split(" - ").nth(1).and_then(|r| r.split(' ').next()) == Some(t));
    match (has("cgroup"), has("cgroup2")) {
        (true, true) => "hybrid (v1 and v2)",
        (true, false) => "v1",
        _ => "v2",
    }
}

static CURRENT: OnceLock<Rootless> = OnceLock::new();

/// The rootless setup this process entered, if it runs rootless.
pub fn current() -> Option<&'static Rootless> {
    CURRENT.get()
}

/// The store a user gets when `--root` is not given: `/var/lib/strata` for
/// root, else under the user's XDG data directory.
pub fn default_root() -> PathBuf {
    if rustix::process::geteuid().is_root() && current().is_none() {
        return PathBuf::from("/var/lib/strata");
    }
    match std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d).join("strata"),
        None => home().join(".local/share/strata"),
    }
}

fn home() -> PathBuf {
    std::env::var_os("HOME").filter(|v| !v.is_empty()).map(PathBuf::from).unwrap_or_else(|| {
        let uid = rustix::process::getuid().as_raw();
        passwd_field(uid, 5).map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/"))
    })
}

/// Field `n` of the user `uid`'s line in /etc/passwd.
fn passwd_field(uid: u32, n: usize) -> Option<String> {
    let text = fs::read_to_string("/etc/passwd").ok()?;
    text.lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find_map(|f| (f.len() > n && f[2].parse::<u32>().ok() == Some(uid)).then(|| f[n].to_string()))
}

/// The user's runtime directory, made 0700 if missing; one that is not the
/// user's own, or that others can enter, is refused.
pub fn runtime_dir(uid: u32) -> Result<PathBuf> {
    let dir = runtime_dir_path(uid);
    if let Err(e) = fs::DirBuilder::new().mode(0o700).create(&dir) {
        if e.kind() != std::io::ErrorKind::AlreadyExists {
            return Err(e).at(&dir);
        }
    }
    let md = fs::symlink_metadata(&dir).at(&dir)?;
    if !md.is_dir() || md.uid() != uid || md.permissions().mode() & 0o077 != 0 {
        return Err(Error::invalid(format!(
            "runtime directory {}: not a directory of uid {uid} that only it can enter",
            dir.display()
        )));
    }
    Ok(dir)
}

fn runtime_dir_path(uid: u32) -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d).join("strata"),
        None => PathBuf::from(format!("/tmp/strata-{uid}")),
    }
}

/// The ranges `/etc/subuid`-style `text` gives the user (`name` or `uid`).
pub fn subordinate_ranges(text: &str, name: &str, uid: u32) -> Vec<(u32, u32)> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.trim().split(':');
            let (who, start, count) = (f.next()?, f.next()?.parse().ok()?, f.next()?.parse::<u32>().ok()?);
            (count > 0 && (who == name || who.parse::<u32>().ok() == Some(uid))).then_some((start, count))
        })
        .collect()
}

/// A map: the user's ID to 0, then each subordinate range from 1 on.
fn id_map(own: u32, ranges: &[(u32, u32)]) -> Vec<IdRange> {
    let mut v = vec![IdRange { inside: 0, outside: own, count: 1 }];
    let mut next = 1u32;
    for (start, count) in ranges {
        v.push(IdRange { inside: next, outside: *start, count: *count });
        next = next.saturating_add(*count);
    }
    v
}

/// The pause process: wait until killed (it holds the namespaces).
pub fn pause() -> ! {
    // Nothing to read or write: standard streams were /dev/null'ed by whoever started it.
    loop {
        // SAFETY: pause(2) has no arguments and only returns on a signal.
        unsafe { libc::pause() };
    }
}

/// Enter the user's namespaces when run by an ordinary user: join the
/// pause process's, or start one. Must run before any thread is started
/// (`setns` into a user namespace refuses multithreaded callers). Returns
/// warnings to show (no subordinate ranges). Does nothing for root.
pub fn enter() -> Result<Vec<String>> {
    if rustix::process::geteuid().is_root() {
        if std::env::var_os(ENTERED_ENV).is_some() && crate::tree::in_user_namespace() {
            if let Some(me) = inherited() {
                let _ = CURRENT.set(me);
            }
        }
        return Ok(Vec::new());
    }
    let uid = rustix::process::getuid().as_raw();
    let gid = rustix::process::getgid().as_raw();
    let user = passwd_field(uid, 0).unwrap_or_else(|| uid.to_string());
    let subuid = fs::read_to_string("/etc/subuid").unwrap_or_default();
    let subgid = fs::read_to_string("/etc/subgid").unwrap_or_default();
    let uid_map = id_map(uid, &subordinate_ranges(&subuid, &user, uid));
    let gid_map = id_map(gid, &subordinate_ranges(&subgid, &user, uid));
    let runtime_dir = runtime_dir(uid)?;
    // One command at a time decides whether the pause process lives.
    let lock_path = runtime_dir.join("pause.lock");
    let lock = fs::OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path).at(&lock_path)?;
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive).at(&lock_path)?;
    let pid_path = runtime_dir.join("pause.pid");
    let pid = match read_pause_pid(&pid_path, uid) {
        Some(pid) => pid,
        None => {
            let pid = start_pause(&uid_map, &gid_map)?;
            fs::write(&pid_path, pid.to_string()).at(&pid_path)?;
            pid
        }
    };
    join(pid)?;
    drop(lock);
    let me = Rootless { uid, gid, user, uid_map, gid_map, runtime_dir, pause_pid: pid };
    // Said on every command: the one limit that changes what images work (the rest is in `info`).
    let warnings = me
        .unavailable()
        .into_iter()
        .filter(|u| u.starts_with("files"))
        .map(|u| format!("rootless: unavailable: {u}"))
        .collect();
    let _ = CURRENT.set(me);
    // No thread runs yet (see above), so the environment may change.
    std::env::set_var(ENTERED_ENV, "1");
    Ok(warnings)
}

/// The setup of a process started inside the namespaces by a command that
/// entered them: read back from this process's ID maps.
fn inherited() -> Option<Rootless> {
    let read = |f: &str| -> Option<Vec<IdRange>> {
        let text = fs::read_to_string(format!("/proc/self/{f}")).ok()?;
        text.lines()
            .map(|l| {
                let n: Vec<u32> = l.split_whitespace().filter_map(|w| w.parse().ok()).collect();
                (n.len() == 3).then(|| IdRange { inside: n[0], outside: n[1], count: n[2] })
            })
            .collect()
    };
    let (uid_map, gid_map) = (read("uid_map")?, read("gid_map")?);
    let uid = uid_map.iter().find(|r| r.inside == 0)?.outside;
    let gid = gid_map.iter().find(|r| r.inside == 0)?.outside;
    let user = passwd_field(uid, 0).unwrap_or_else(|| uid.to_string());
    let runtime_dir = runtime_dir_path(uid);
    let pause_pid = fs::read_to_string(runtime_dir.join("pause.pid")).ok()?.trim().parse().ok()?;
    Some(Rootless { uid, gid, user, uid_map, gid_map, runtime_dir, pause_pid })
}

/// The recorded pause process, if it still runs as this user in a user namespace of its own.
fn read_pause_pid(path: &Path, uid: u32) -> Option<i32> {
    let pid: i32 = fs::read_to_string(path).ok()?.trim().parse().ok()?;
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let real_uid: u32 = status.lines().find_map(|l| l.strip_prefix("Uid:"))?.split_whitespace().next()?.parse().ok()?;
    let environ = fs::read(format!("/proc/{pid}/environ")).ok()?;
    let ours = environ.split(|b| *b == 0).any(|e| e.starts_with(PAUSE_ENV.as_bytes()));
    let own_ns = fs::read_link(format!("/proc/{pid}/ns/user")).ok()? != fs::read_link("/proc/self/ns/user").ok()?;
    (uid == real_uid && ours && own_ns).then_some(pid)
}

/// Start the pause process in new user and mount namespaces and map its IDs.
fn start_pause(uid_map: &[IdRange], gid_map: &[IdRange]) -> Result<i32> {
    let exe = fs::read_link("/proc/self/exe").at("/proc/self/exe")?;
    let (mut ready_r, ready_w) = std::io::pipe().at("pipe")?;
    let mut cmd = Command::new(&exe);
    cmd.env(PAUSE_ENV, "1").stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).current_dir("/");
    let ready_fd = ready_w.as_raw_fd();
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 || libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNS) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // Tell the parent the namespaces exist; it maps the IDs before this exec's program needs them.
            let b = [1u8];
            libc::write(ready_fd, b.as_ptr().cast(), 1);
            Ok(())
        });
    }
    let child = cmd.spawn().at(&exe)?;
    drop(ready_w);
    let mut b = [0u8; 1];
    ready_r.read_exact(&mut b).at("waiting for the pause process")?;
    let pid = child.id() as i32;
    let mapped =
        write_map("newuidmap", "uid_map", pid, uid_map).and_then(|_| write_map("newgidmap", "gid_map", pid, gid_map));
    if let Err(e) = mapped {
        // SAFETY: kill(2) of the child just started.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        return Err(e);
    }
    // Not waited for: it lives on, holding the namespaces (reparented when this command ends).
    std::mem::forget(child);
    Ok(pid)
}

/// Map IDs of `pid`: through the setuid helper when there are subordinate
/// ranges, else the single ID written directly (allowed for one's own ID;
/// groups need setgroups denied first).
fn write_map(helper: &str, file: &str, pid: i32, map: &[IdRange]) -> Result<()> {
    if map.len() > 1 {
        let mut args = vec![pid.to_string()];
        for r in map {
            args.extend([r.inside.to_string(), r.outside.to_string(), r.count.to_string()]);
        }
        let out = Command::new(helper).args(&args).output().map_err(|e| {
            Error::invalid(format!("{helper}: {e} (install Debian's uidmap package for rootless mode)"))
        })?;
        if !out.status.success() {
            return Err(Error::invalid(format!(
                "{helper} {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        return Ok(());
    }
    if file == "gid_map" {
        let p = format!("/proc/{pid}/setgroups");
        fs::write(&p, "deny").at(&p)?;
    }
    let p = format!("/proc/{pid}/{file}");
    let r = &map[0];
    fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .and_then(|mut f| f.write_all(format!("{} {} {}\n", r.inside, r.outside, r.count).as_bytes()))
        .at(&p)
}

/// Join `pid`'s user and mount namespaces (this process must have one thread).
fn join(pid: i32) -> Result<()> {
    for (ns, flag) in [("user", libc::CLONE_NEWUSER), ("mnt", libc::CLONE_NEWNS)] {
        let p = format!("/proc/{pid}/ns/{ns}");
        let f = fs::File::open(&p).at(&p)?;
        // SAFETY: setns(2) on a namespace file this process opened.
        if unsafe { libc::setns(f.as_raw_fd(), flag) } != 0 {
            return Err(std::io::Error::last_os_error()).at(&p);
        }
    }
    // Mounts made here must not reach the host's namespace (they cannot) nor
    // be kept alive by it: the joined tree receives the host's unmounts.
    // SAFETY: mount(2) changing propagation only, with valid C strings.
    unsafe {
        libc::mount(c"none".as_ptr(), c"/".as_ptr(), std::ptr::null(), libc::MS_REC | libc::MS_SLAVE, std::ptr::null());
    }
    show_unified_cgroups();
    // Root of the namespace: IDs 0 inside (the user outside).
    // SAFETY: plain ID syscalls.
    if unsafe { libc::setresgid(0, 0, 0) } != 0 || unsafe { libc::setresuid(0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error()).at("becoming root of the user namespace");
    }
    Ok(())
}

/// On a hybrid host (cgroup v1 controllers, v2 at `/sys/fs/cgroup/unified`)
/// show the v2 hierarchy at `/sys/fs/cgroup` in this mount namespace.
/// libcontainer picks its cgroup manager by what `/sys/fs/cgroup` is, and
/// only its v2 manager runs a rootless container where it may not create
/// cgroups (v1 fails on the first mkdir); no cgroup is made either way.
/// Idempotent: once mounted, `/sys/fs/cgroup` is cgroup2.
fn show_unified_cgroups() {
    let cgroup2 = |p: &std::ffi::CStr| {
        // SAFETY: statfs(2) into a zeroed struct owned here.
        let mut st: libc::statfs = unsafe { std::mem::zeroed() };
        let ok = unsafe { libc::statfs(p.as_ptr(), &mut st) } == 0;
        ok && st.f_type == libc::CGROUP2_SUPER_MAGIC
    };
    if !cgroup2(c"/sys/fs/cgroup") && cgroup2(c"/sys/fs/cgroup/unified") {
        // SAFETY: a bind mount between two valid C string paths.
        unsafe {
            libc::mount(
                c"/sys/fs/cgroup/unified".as_ptr(),
                c"/sys/fs/cgroup".as_ptr(),
                std::ptr::null(),
                libc::MS_BIND,
                std::ptr::null(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subordinate_ranges_match_by_name_or_uid() {
        let text = "alice:100000:65536\n1001:300000:10\nbob:200000:65536\nbad line\nalice:500000:0\n";
        assert_eq!(subordinate_ranges(text, "alice", 1000), vec![(100000, 65536)]);
        assert_eq!(subordinate_ranges(text, "carol", 1001), vec![(300000, 10)]);
        assert!(subordinate_ranges(text, "dave", 1002).is_empty());
    }

    #[test]
    fn the_map_puts_the_user_at_zero_and_the_ranges_after() {
        let m = id_map(1000, &[(100000, 65536), (300000, 10)]);
        assert_eq!(
            m,
            vec![
                IdRange { inside: 0, outside: 1000, count: 1 },
                IdRange { inside: 1, outside: 100000, count: 65536 },
                IdRange { inside: 65537, outside: 300000, count: 10 },
            ]
        );
    }
}
