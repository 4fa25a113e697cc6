//! The seccomp filter a container runs under: strata's default (Docker's
//! default profile: an allow list, everything else EPERM) and profiles in
//! Docker's JSON format (`--security-opt seccomp=FILE`), both turned into
//! the runtime spec's filter for the capabilities the container holds.
//!
//! The default is written here as a Docker-format profile, from Docker's
//! published behaviour (its documented profile and what dockerd does on
//! this machine, compared syscall by syscall in `tests/docker.rs`): no
//! crate carries it. The rules a Docker profile has are kept: a syscall
//! allowed only to holders of a capability (`ptrace` with SYS_PTRACE,
//! `mount` with SYS_ADMIN), allowed only with some arguments (`clone`
//! without namespace flags, five `personality` values, `socket` but for
//! AF_VSOCK), or only on some architectures; `clone3` answers ENOSYS
//! without SYS_ADMIN so that a C library falls back to `clone`, whose flags
//! the filter can see.
//!
//! As runc does for Docker, a syscall newer than every one the filter
//! names answers ENOSYS, not EPERM, so that programs built for a newer
//! kernel fall back to the older call (`fchmodat2` to `fchmodat`).
//! libcontainer cannot express "every number above N", so strata lists
//! by name the newer syscalls libseccomp knows; a number libseccomp does
//! not know gets EPERM.

use libseccomp::{ScmpArch, ScmpSyscall};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::{Error, Result};

/// The seccomp filter a container runs under.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub enum Seccomp {
    /// strata's default filter, opened up by the capabilities granted.
    #[default]
    Default,
    /// No filter (`seccomp=unconfined`, `--privileged`).
    Unconfined,
    /// A profile in Docker's JSON format, as given (`seccomp=FILE`).
    Profile(Value),
}

impl Seccomp {
    /// The runtime spec's filter for a container holding `caps`; `None`
    /// for no filter.
    pub fn filter(&self, caps: &[&str]) -> Result<Option<Value>> {
        match self {
            Seccomp::Unconfined => Ok(None),
            Seccomp::Default => profile_filter(&default_profile(), caps).map(Some),
            Seccomp::Profile(p) => profile_filter(p, caps).map(Some),
        }
    }
}

/// Syscalls every container may make.
const ALLOWED: &[&str] = &[
    "accept",
    "accept4",
    "access",
    "adjtimex",
    "alarm",
    "bind",
    "brk",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "chown32",
    "clock_adjtime",
    "clock_adjtime64",
    "clock_getres",
    "clock_getres_time64",
    "clock_gettime",
    "clock_gettime64",
    "clock_nanosleep",
    "clock_nanosleep_time64",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fadvise64_64",
    "fallocate",
    "fanotify_mark",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchown",
    "fchown32",
    "fchownat",
    "fcntl",
    "fcntl64",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstat64",
    "fstatat64",
    "fstatfs",
    "fstatfs64",
    "fsync",
    "ftruncate",
    "ftruncate64",
    "futex",
    "futex_time64",
    "futex_waitv",
    "futimesat",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "getegid32",
    "geteuid",
    "geteuid32",
    "getgid",
    "getgid32",
    "getgroups",
    "getgroups32",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresgid32",
    "getresuid",
    "getresuid32",
    "getrlimit",
    "get_robust_list",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "get_thread_area",
    "gettid",
    "gettimeofday",
    "getuid",
    "getuid32",
    "getxattr",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "ioctl",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_pgetevents_time64",
    "ioprio_get",
    "ioprio_set",
    "io_setup",
    "io_submit",
    "io_uring_enter",
    "io_uring_register",
    "io_uring_setup",
    "ipc",
    "kill",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "lchown",
    "lchown32",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listxattr",
    "llistxattr",
    "_llseek",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "lstat64",
    "madvise",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mmap2",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedreceive_time64",
    "mq_timedsend",
    "mq_timedsend_time64",
    "mq_unlink",
    "mremap",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "name_to_handle_at",
    "nanosleep",
    "newfstatat",
    "_newselect",
    "open",
    "openat",
    "openat2",
    "pause",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "poll",
    "ppoll",
    "ppoll_time64",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "process_mrelease",
    "process_vm_readv",
    "process_vm_writev",
    "pselect6",
    "pselect6_time64",
    "ptrace",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recv",
    "recvfrom",
    "recvmmsg",
    "recvmmsg_time64",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_rr_get_interval_time64",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "semtimedop_time64",
    "send",
    "sendfile",
    "sendfile64",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setfsgid",
    "setfsgid32",
    "setfsuid",
    "setfsuid32",
    "setgid",
    "setgid32",
    "setgroups",
    "setgroups32",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setregid32",
    "setresgid",
    "setresgid32",
    "setresuid",
    "setresuid32",
    "setreuid",
    "setreuid32",
    "setrlimit",
    "set_robust_list",
    "setsid",
    "setsockopt",
    "set_thread_area",
    "set_tid_address",
    "setuid",
    "setuid32",
    "setxattr",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "sigprocmask",
    "sigreturn",
    "socketcall",
    "socketpair",
    "splice",
    "stat",
    "stat64",
    "statfs",
    "statfs64",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_gettime64",
    "timer_settime",
    "timer_settime64",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_gettime64",
    "timerfd_settime",
    "timerfd_settime64",
    "times",
    "tkill",
    "truncate",
    "truncate64",
    "ugetrlimit",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "utime",
    "utimensat",
    "utimensat_time64",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "waitpid",
    "write",
    "writev",
];

/// Syscalls allowed to a container holding a capability.
const ALLOWED_WITH: &[(&str, &[&str])] = &[
    ("CAP_DAC_READ_SEARCH", &["open_by_handle_at"]),
    (
        "CAP_SYS_ADMIN",
        &[
            "bpf",
            "clone",
            "clone3",
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "mount",
            "mount_setattr",
            "move_mount",
            "open_tree",
            "perf_event_open",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "syslog",
            "umount",
            "umount2",
            "unshare",
        ],
    ),
    ("CAP_SYS_BOOT", &["reboot"]),
    ("CAP_SYS_CHROOT", &["chroot"]),
    ("CAP_SYS_MODULE", &["delete_module", "init_module", "finit_module"]),
    ("CAP_SYS_PACCT", &["acct"]),
    ("CAP_SYS_PTRACE", &["kcmp", "pidfd_getfd", "process_madvise"]),
    ("CAP_SYS_RAWIO", &["iopl", "ioperm"]),
    ("CAP_SYS_TIME", &["settimeofday", "stime", "clock_settime", "clock_settime64"]),
    ("CAP_SYS_TTY_CONFIG", &["vhangup"]),
    ("CAP_SYS_NICE", &["get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"]),
    ("CAP_SYSLOG", &["syslog"]),
    ("CAP_BPF", &["bpf"]),
    ("CAP_PERFMON", &["perf_event_open"]),
];

/// Syscalls allowed on some architectures only (Docker's `arches` names).
const ALLOWED_ON: &[(&[&str], &[&str])] = &[
    (&["amd64", "x32"], &["arch_prctl"]),
    (&["amd64", "x32", "x86"], &["modify_ldt"]),
    (
        &["arm", "arm64"],
        &["arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint", "cacheflush", "set_tls"],
    ),
    (&["ppc64le"], &["sync_file_range2", "swapcontext"]),
    (&["s390", "s390x"], &["s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr"]),
    (&["riscv64"], &["riscv_flush_icache"]),
];

/// `personality` values a container may set: Linux, Linux32, and both
/// with UNAME26; 0xffffffff only asks for the current one.
const PERSONALITIES: &[u64] = &[0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

/// The clone flags that make namespaces (NEWNS, NEWCGROUP, NEWUTS,
/// NEWIPC, NEWUSER, NEWPID, NEWNET): only SYS_ADMIN may pass them.
const CLONE_NAMESPACE_FLAGS: u64 = 0x7E02_0000;

const AF_VSOCK: u64 = 40;
const ENOSYS: u32 = 38;

/// strata's default profile, in Docker's format.
pub fn default_profile() -> Value {
    let allow = |names: &[&str]| json!({"names": names, "action": "SCMP_ACT_ALLOW"});
    let mut rules = vec![allow(ALLOWED)];
    rules.push(json!({"names": ["socket"], "action": "SCMP_ACT_ALLOW",
        "args": [{"index": 0, "value": AF_VSOCK, "op": "SCMP_CMP_NE"}]}));
    for p in PERSONALITIES {
        rules.push(json!({"names": ["personality"], "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": p, "op": "SCMP_CMP_EQ"}]}));
    }
    for (arches, names) in ALLOWED_ON {
        let mut r = allow(names);
        r["includes"] = json!({"arches": arches});
        rules.push(r);
    }
    for (cap, names) in ALLOWED_WITH {
        let mut r = allow(names);
        r["includes"] = json!({"caps": [cap]});
        rules.push(r);
    }
    // s390 passes clone's flags second.
    for (index, arches) in [
        (0, json!({"excludes": {"arches": ["s390", "s390x"]}})),
        (1, json!({"includes": {"arches": ["s390", "s390x"]}})),
    ] {
        let mut r = json!({"names": ["clone"], "action": "SCMP_ACT_ALLOW",
            "args": [{"index": index, "value": CLONE_NAMESPACE_FLAGS, "op": "SCMP_CMP_MASKED_EQ"}],
            "excludes": {"caps": ["CAP_SYS_ADMIN"]}});
        for (k, v) in arches.as_object().into_iter().flatten() {
            for (k2, v2) in v.as_object().into_iter().flatten() {
                r[k][k2] = v2.clone();
            }
        }
        rules.push(r);
    }
    rules.push(json!({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS,
        "excludes": {"caps": ["CAP_SYS_ADMIN"]}}));
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "archMap": [
            {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
            {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]},
            {"architecture": "SCMP_ARCH_S390X", "subArchitectures": ["SCMP_ARCH_S390"]},
            {"architecture": "SCMP_ARCH_RISCV64", "subArchitectures": []},
        ],
        "syscalls": rules,
    })
}

const ACTIONS: &[&str] = &[
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_TRAP",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
];

/// Read a profile in Docker's format: JSON with a known default action.
pub fn read_profile(path: &std::path::Path) -> Result<Value> {
    let bad = |why: String| Error::invalid(format!("seccomp profile {}: {why}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let p: Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let action = p["defaultAction"].as_str().ok_or_else(|| bad("no defaultAction".into()))?;
    if !ACTIONS.contains(&action) {
        return Err(bad(format!("unknown defaultAction {action:?}")));
    }
    // Convert now as a check: every rule's fault is named before anything is created.
    profile_filter(&p, &[]).map_err(|e| bad(e.to_string()))?;
    Ok(p)
}

/// This machine's architecture: libseccomp's and Docker's names.
fn native_arch() -> (&'static str, &'static str) {
    match std::env::consts::ARCH {
        "x86_64" => ("SCMP_ARCH_X86_64", "amd64"),
        "aarch64" => ("SCMP_ARCH_AARCH64", "arm64"),
        "s390x" => ("SCMP_ARCH_S390X", "s390x"),
        "riscv64" => ("SCMP_ARCH_RISCV64", "riscv64"),
        other => (other, other),
    }
}

/// A Docker-format profile as the OCI filter for a container holding
/// `caps`: rules kept by their `includes`/`excludes` (capabilities,
/// architectures), this machine's architectures from `archMap`, and
/// ENOSYS for the syscalls newer than any it names.
fn profile_filter(p: &Value, caps: &[&str]) -> Result<Value> {
    let arch = native_arch();
    let mut archs: Vec<Value> = p["architectures"].as_array().cloned().unwrap_or_default();
    for m in p["archMap"].as_array().into_iter().flatten() {
        if m["architecture"] == arch.0 {
            archs.push(m["architecture"].clone());
            archs.extend(m["subArchitectures"].as_array().cloned().unwrap_or_default());
        }
    }
    let holds = |list: &Value| -> (bool, bool) {
        let caps_ok =
            list["caps"].as_array().is_none_or(|c| c.iter().all(|c| c.as_str().is_some_and(|c| caps.contains(&c))));
        let arch_ok = list["arches"].as_array().is_none_or(|a| a.iter().any(|a| a == arch.1));
        (caps_ok, arch_ok)
    };
    let mut syscalls = Vec::new();
    for (i, rule) in p["syscalls"].as_array().into_iter().flatten().enumerate() {
        let bad = |why: &str| Error::invalid(format!("syscalls[{i}]: {why}"));
        let action = rule["action"].as_str().ok_or_else(|| bad("no action"))?;
        if !ACTIONS.contains(&action) {
            return Err(bad(&format!("unknown action {action:?}")));
        }
        let (inc_caps, inc_arch) = holds(&rule["includes"]);
        let excluded = {
            let ex = &rule["excludes"];
            let by_caps =
                ex["caps"].as_array().is_some_and(|c| c.iter().any(|c| c.as_str().is_some_and(|c| caps.contains(&c))));
            let by_arch = ex["arches"].as_array().is_some_and(|a| a.iter().any(|a| a == arch.1));
            by_caps || by_arch
        };
        if !inc_caps || !inc_arch || excluded {
            continue;
        }
        let names = match (&rule["names"], &rule["name"]) {
            (Value::Array(n), _) => Value::Array(n.clone()),
            (_, Value::String(n)) => json!([n]),
            _ => return Err(bad("no names")),
        };
        let mut out = json!({"names": names, "action": action});
        if !rule["errnoRet"].is_null() {
            out["errnoRet"] = rule["errnoRet"].clone();
        }
        if let Some(args) = rule["args"].as_array() {
            out["args"] = Value::Array(args.iter().map(libcontainer_arg).collect());
        }
        syscalls.push(out);
    }
    if p["defaultAction"] != "SCMP_ACT_ALLOW" {
        let newer = newer_syscalls(&syscalls);
        if !newer.is_empty() {
            syscalls.push(json!({"names": newer, "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS}));
        }
    }
    let mut filter = json!({"defaultAction": p["defaultAction"], "syscalls": syscalls});
    if !archs.is_empty() {
        filter["architectures"] = Value::Array(archs);
    }
    if !p["defaultErrnoRet"].is_null() {
        filter["defaultErrnoRet"] = p["defaultErrnoRet"].clone();
    }
    Ok(filter)
}

/// An argument condition as libcontainer 0.7 reads it. For
/// `SCMP_CMP_MASKED_EQ` Docker and runc take `value` as the mask and
/// `valueTwo` as what the masked argument must equal; libcontainer takes
/// them the other way round, so they are swapped here.
fn libcontainer_arg(arg: &Value) -> Value {
    let mut a = arg.clone();
    if a["op"] == "SCMP_CMP_MASKED_EQ" {
        let mask = a["value"].as_u64().unwrap_or(0);
        a["value"] = a["valueTwo"].as_u64().unwrap_or(0).into();
        a["valueTwo"] = mask.into();
    }
    a
}

/// The syscalls of this machine's architecture, as libseccomp knows them,
/// numbered above every syscall the rules name.
fn newer_syscalls(rules: &[Value]) -> Vec<String> {
    let arch = ScmpArch::native();
    let newest = rules
        .iter()
        .flat_map(|r| r["names"].as_array().into_iter().flatten())
        .filter_map(|n| ScmpSyscall::from_name_by_arch(n.as_str()?, arch).ok())
        .map(i32::from)
        .filter(|n| *n >= 0)
        .max()
        .unwrap_or(i32::MAX);
    // Well above any syscall number a kernel has yet.
    (newest.saturating_add(1)..1024).filter_map(|n| ScmpSyscall::from(n).get_name_by_arch(arch).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(filter: &Value, action: &str) -> Vec<String> {
        let mut out = Vec::new();
        for r in filter["syscalls"].as_array().unwrap() {
            if r["action"] == action && r["args"].is_null() {
                out.extend(r["names"].as_array().unwrap().iter().map(|n| n.as_str().unwrap().to_string()));
            }
        }
        out
    }

    #[test]
    fn the_default_filter_allows_what_a_granted_capability_needs() {
        let allowed = |caps: &[&str]| names(&Seccomp::Default.filter(caps).unwrap().unwrap(), "SCMP_ACT_ALLOW");
        assert!(!allowed(&[]).contains(&"kcmp".into()));
        assert!(allowed(&["CAP_SYS_PTRACE"]).contains(&"kcmp".into()));
        assert!(allowed(&["CAP_SYS_ADMIN"]).contains(&"mount".into()));
        assert!(!allowed(&["CAP_SYS_ADMIN"]).contains(&"keyctl".into()));
        assert!(allowed(&[]).contains(&"ptrace".into()));
    }

    #[test]
    fn clone_with_namespace_flags_is_for_sys_admin_and_clone3_answers_enosys_without_it() {
        let f = Seccomp::Default.filter(&[]).unwrap().unwrap();
        let rules = f["syscalls"].as_array().unwrap();
        let clone: Vec<_> = rules.iter().filter(|r| r["names"] == json!(["clone"])).collect();
        assert_eq!(clone.len(), 1, "x86-64 keeps the first-argument rule only");
        assert_eq!(
            clone[0]["args"][0],
            json!({"index": 0, "value": 0, "valueTwo": CLONE_NAMESPACE_FLAGS, "op": "SCMP_CMP_MASKED_EQ"})
        );
        assert!(names(&f, "SCMP_ACT_ERRNO").contains(&"clone3".into()));
        let admin = Seccomp::Default.filter(&["CAP_SYS_ADMIN"]).unwrap().unwrap();
        assert!(names(&admin, "SCMP_ACT_ALLOW").contains(&"clone3".into()));
        assert!(!names(&admin, "SCMP_ACT_ERRNO").contains(&"clone3".into()));
    }

    #[test]
    fn syscalls_newer_than_the_profile_answer_enosys() {
        let f = Seccomp::Default.filter(&[]).unwrap().unwrap();
        let enosys: Vec<_> = f["syscalls"].as_array().unwrap().iter().filter(|r| r["errnoRet"] == ENOSYS).collect();
        let newer = enosys.last().unwrap()["names"].as_array().unwrap();
        // futex_waitv is the newest the profile allows; libseccomp 2.5.4 knows cachestat (451).
        assert!(newer.contains(&json!("cachestat")), "{newer:?}");
        assert!(!newer.contains(&json!("futex_waitv")));
    }

    #[test]
    fn docker_profiles_convert_by_capability_and_architecture() {
        let p = json!({
            "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
            "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]}],
            "syscalls": [
                {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_PTRACE"]}},
                {"names": ["clone"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_SYS_ADMIN"]},
                 "args": [{"index": 0, "value": 2114060288, "op": "SCMP_CMP_MASKED_EQ"}]},
            ]
        });
        let rules = |caps: &[&str]| {
            profile_filter(&p, caps).unwrap()["syscalls"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|r| r["errnoRet"] != ENOSYS)
                .count()
        };
        assert_eq!(rules(&[]), 2);
        assert_eq!(rules(&["CAP_SYS_PTRACE", "CAP_SYS_ADMIN"]), 2);
        assert!(profile_filter(
            &json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["x"], "action": "NOPE"}]}),
            &[]
        )
        .is_err());
    }
}
