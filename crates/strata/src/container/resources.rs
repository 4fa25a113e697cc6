//! A container's limits and the namespaces it shares: `--ulimit`,
//! `--shm-size`, `--sysctl`, `--memory-swap`, `--memory-reservation`,
//! `--cpu-shares`, `--cpuset-cpus`, `--oom-score-adj`, `--pid`, `--ipc`,
//! `--uts` and `--cgroupns`. Checked at create ([`Resources::from_flags`]),
//! written into the runtime spec at start ([`Resources::apply`]), with
//! Docker's rules: only namespaced sysctls, and none of a namespace shared
//! with the host.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::units::parse_size;

/// The flags as given.
#[derive(Debug, Clone, Default)]
pub struct ResourceFlags {
    /// `--ulimit NAME=SOFT[:HARD]`.
    pub ulimits: Vec<String>,
    /// `--shm-size`.
    pub shm_size: Option<String>,
    /// `--sysctl KEY=VALUE`.
    pub sysctls: Vec<String>,
    /// `--memory-swap` (memory plus swap; -1 unlimited).
    pub memory_swap: Option<String>,
    /// `--memory-reservation`.
    pub memory_reservation: Option<String>,
    /// `--cpu-shares`.
    pub cpu_shares: Option<u64>,
    /// `--cpuset-cpus`.
    pub cpuset_cpus: Option<String>,
    /// `--oom-score-adj`.
    pub oom_score_adj: Option<i32>,
    /// `--pid`.
    pub pid: Option<String>,
    /// `--ipc`.
    pub ipc: Option<String>,
    /// `--uts`.
    pub uts: Option<String>,
    /// `--cgroupns`.
    pub cgroupns: Option<String>,
}

/// One resource limit of the container's process.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Ulimit {
    /// Docker's name (`nofile`).
    pub name: String,
    /// Soft limit (`u64::MAX`: unlimited).
    pub soft: u64,
    /// Hard limit.
    pub hard: u64,
}

/// Whose namespace a container uses.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub enum Namespace {
    /// Its own.
    #[default]
    Private,
    /// The host's (strata's own).
    Host,
    /// Another container's, by ID (it must be running).
    Container(String),
}

/// Limits and namespaces, fixed at create.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Resources {
    /// `--ulimit`s.
    pub ulimits: Vec<Ulimit>,
    /// /dev/shm's size in bytes (64 MiB when absent, as Docker's).
    pub shm_size: Option<u64>,
    /// `--sysctl`s.
    pub sysctls: BTreeMap<String, String>,
    /// Memory plus swap, bytes (-1 unlimited).
    pub memory_swap: Option<i64>,
    /// Soft memory limit, bytes.
    pub memory_reservation: Option<i64>,
    /// CPU shares (relative weight).
    pub cpu_shares: Option<u64>,
    /// CPUs it may run on (`0-1,3`).
    pub cpuset_cpus: Option<String>,
    /// The OOM killer's score adjustment.
    pub oom_score_adj: Option<i32>,
    /// PID namespace.
    pub pid: Namespace,
    /// IPC namespace.
    pub ipc: Namespace,
    /// UTS namespace (hostname).
    pub uts: Namespace,
    /// A cgroup namespace of its own.
    pub cgroupns_private: bool,
}

const ULIMITS: &[(&str, &str)] = &[
    ("as", "RLIMIT_AS"),
    ("core", "RLIMIT_CORE"),
    ("cpu", "RLIMIT_CPU"),
    ("data", "RLIMIT_DATA"),
    ("fsize", "RLIMIT_FSIZE"),
    ("locks", "RLIMIT_LOCKS"),
    ("memlock", "RLIMIT_MEMLOCK"),
    ("msgqueue", "RLIMIT_MSGQUEUE"),
    ("nice", "RLIMIT_NICE"),
    ("nofile", "RLIMIT_NOFILE"),
    ("nproc", "RLIMIT_NPROC"),
    ("rss", "RLIMIT_RSS"),
    ("rtprio", "RLIMIT_RTPRIO"),
    ("rttime", "RLIMIT_RTTIME"),
    ("sigpending", "RLIMIT_SIGPENDING"),
    ("stack", "RLIMIT_STACK"),
];

/// `--ulimit NAME=SOFT[:HARD]` (-1: unlimited).
fn parse_ulimit(s: &str) -> Result<Ulimit> {
    let bad = |why: &str| Error::invalid(format!("invalid --ulimit {s:?}: {why}"));
    let (name, values) = s.split_once('=').ok_or_else(|| bad("want NAME=SOFT[:HARD]"))?;
    if !ULIMITS.iter().any(|(n, _)| *n == name) {
        return Err(bad(&format!("unknown limit {name:?}")));
    }
    let value = |v: &str| -> Result<u64> {
        match v.parse::<i64>() {
            Ok(-1) => Ok(u64::MAX),
            Ok(n) if n >= 0 => Ok(n as u64),
            _ => Err(bad(&format!("{v:?} is not a number"))),
        }
    };
    let (soft, hard) = match values.split_once(':') {
        Some((s, h)) => (value(s)?, value(h)?),
        None => (value(values)?, value(values)?),
    };
    if soft > hard {
        return Err(bad("the soft limit is above the hard one"));
    }
    if name == "nofile" && !holds_sys_resource() {
        let mut own = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit fills the struct it is given.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut own) } == 0 && hard > own.rlim_max {
            return Err(bad(&format!(
                "the hard limit is above strata's own ({}), which only CAP_SYS_RESOURCE may raise",
                own.rlim_max
            )));
        }
    }
    Ok(Ulimit { name: name.into(), soft, hard })
}

fn holds_sys_resource() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        .is_some_and(|m| m & (1 << 24) != 0)
}

/// `host`, `container:NAME` (resolved by `find`), or private.
fn parse_namespace(flag: &str, v: Option<&str>, find: &dyn Fn(&str) -> Result<String>) -> Result<Namespace> {
    match v.unwrap_or("") {
        "" | "private" | "shareable" => Ok(Namespace::Private),
        "host" => Ok(Namespace::Host),
        other => match other.strip_prefix("container:") {
            Some(name) => Ok(Namespace::Container(find(name)?)),
            None => Err(Error::invalid(format!("invalid {flag} {other:?}: want host, container:NAME or private"))),
        },
    }
}

/// Whether a sysctl lives in a namespace a container has, and which.
fn sysctl_namespace(key: &str) -> Option<&'static str> {
    const IPC: &[&str] = &[
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    if IPC.contains(&key) || key.starts_with("fs.mqueue.") {
        Some("ipc")
    } else if key.starts_with("net.") {
        Some("network")
    } else if key == "kernel.domainname" || key == "kernel.hostname" {
        Some("uts")
    } else {
        None
    }
}

fn valid_cpuset(s: &str) -> bool {
    !s.is_empty()
        && s.split(',').all(|part| {
            let mut ends = part.splitn(2, '-');
            ends.all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
}

impl Resources {
    /// Check the flags. `network` is the container's network mode (a
    /// `net.*` sysctl needs a network namespace of its own); `find` turns a
    /// container name into its ID.
    pub fn from_flags(f: &ResourceFlags, network: &str, find: &dyn Fn(&str) -> Result<String>) -> Result<Self> {
        let mut r = Resources {
            pid: parse_namespace("--pid", f.pid.as_deref(), find)?,
            ipc: parse_namespace("--ipc", f.ipc.as_deref(), find)?,
            uts: parse_namespace("--uts", f.uts.as_deref(), find)?,
            cpu_shares: f.cpu_shares,
            ..Default::default()
        };
        r.cgroupns_private = match f.cgroupns.as_deref().unwrap_or("host") {
            "host" => false,
            "private" => true,
            other => return Err(Error::invalid(format!("invalid --cgroupns {other:?}: want host or private"))),
        };
        for u in &f.ulimits {
            let u = parse_ulimit(u)?;
            r.ulimits.retain(|x| x.name != u.name);
            r.ulimits.push(u);
        }
        r.shm_size = f.shm_size.as_deref().map(|s| parse_size("--shm-size", s)).transpose()?;
        if r.shm_size == Some(0) {
            return Err(Error::invalid("invalid --shm-size 0: want a size above zero"));
        }
        for kv in &f.sysctls {
            let (k, v) =
                kv.split_once('=').ok_or_else(|| Error::invalid(format!("invalid --sysctl {kv:?}: want KEY=VALUE")))?;
            let shared = match sysctl_namespace(k) {
                None => {
                    return Err(Error::invalid(format!(
                        "--sysctl {k}: not a namespaced sysctl, so it would change the host: not allowed"
                    )))
                }
                Some("ipc") => r.ipc != Namespace::Private,
                Some("uts") => r.uts != Namespace::Private || k == "kernel.hostname",
                Some(_) => network == "host" || network.starts_with("container:"),
            };
            if shared {
                return Err(Error::invalid(format!(
                    "--sysctl {k}: its namespace is shared with the host or another container: not allowed"
                )));
            }
            r.sysctls.insert(k.to_string(), v.to_string());
        }
        let size = |flag: &str, v: &Option<String>| -> Result<Option<i64>> {
            match v.as_deref() {
                None => Ok(None),
                Some("-1") => Ok(Some(-1)),
                Some(s) => Ok(Some(parse_size(flag, s)? as i64)),
            }
        };
        r.memory_swap = size("--memory-swap", &f.memory_swap)?;
        r.memory_reservation = size("--memory-reservation", &f.memory_reservation)?;
        if let Some(c) = &f.cpuset_cpus {
            if !valid_cpuset(c) {
                return Err(Error::invalid(format!("invalid --cpuset-cpus {c:?}: want a list such as 0-1,3")));
            }
            r.cpuset_cpus = Some(c.clone());
        }
        if let Some(o) = f.oom_score_adj {
            if !(-1000..=1000).contains(&o) {
                return Err(Error::invalid(format!("invalid --oom-score-adj {o}: want -1000 to 1000")));
            }
            r.oom_score_adj = Some(o);
        }
        Ok(r)
    }

    /// Write the limits into `spec`; `pid_of` gives a running container's
    /// pid (for `container:NAME` namespaces), `memory` is `--memory`.
    pub fn apply(
        &self,
        spec: &mut serde_json::Value,
        memory: Option<i64>,
        pid_of: &dyn Fn(&str) -> Result<i64>,
    ) -> Result<()> {
        let rlimits = spec["process"]["rlimits"].as_array_mut().expect("the spec has rlimits");
        for u in &self.ulimits {
            let kind = ULIMITS.iter().find(|(n, _)| *n == u.name).map(|(_, k)| *k).expect("checked at create");
            rlimits.retain(|r| r["type"] != kind);
            rlimits.push(serde_json::json!({"type": kind, "soft": u.soft, "hard": u.hard}));
        }
        if let Some(o) = self.oom_score_adj {
            spec["process"]["oomScoreAdj"] = o.into();
        }
        let shm = self.shm_size.unwrap_or(64 << 20);
        let host_ipc = self.ipc == Namespace::Host;
        if let Some(mounts) = spec["mounts"].as_array_mut() {
            for m in mounts.iter_mut().filter(|m| m["destination"] == "/dev/shm") {
                if host_ipc {
                    *m = serde_json::json!({"destination": "/dev/shm", "type": "bind", "source": "/dev/shm",
                        "options": ["rbind", "rprivate"]});
                } else if let Some(o) = m["options"].as_array_mut() {
                    o.retain(|o| !o.as_str().is_some_and(|o| o.starts_with("size=")));
                    o.push(format!("size={}k", shm.div_ceil(1024)).into());
                }
            }
        }
        let linux = &mut spec["linux"];
        if !self.sysctls.is_empty() {
            linux["sysctl"] = serde_json::to_value(&self.sysctls).expect("a map serializes");
        }
        let res = &mut linux["resources"];
        if let Some(s) = self.memory_swap {
            if memory.is_none() && s != -1 {
                return Err(Error::invalid("--memory-swap needs --memory (it is memory plus swap)"));
            }
            res["memory"]["swap"] = s.into();
        }
        if let Some(r) = self.memory_reservation {
            res["memory"]["reservation"] = r.into();
        }
        if let Some(s) = self.cpu_shares {
            res["cpu"]["shares"] = s.into();
        }
        if let Some(c) = &self.cpuset_cpus {
            res["cpu"]["cpus"] = c.clone().into();
        }
        let namespaces = linux["namespaces"].as_array_mut().expect("the spec has namespaces");
        for (ns, kind) in [(&self.pid, "pid"), (&self.ipc, "ipc"), (&self.uts, "uts")] {
            match ns {
                Namespace::Private => {}
                Namespace::Host => namespaces.retain(|n| n["type"] != kind),
                Namespace::Container(id) => {
                    let pid = pid_of(id)?;
                    for n in namespaces.iter_mut().filter(|n| n["type"] == kind) {
                        n["path"] = format!("/proc/{pid}/ns/{kind}").into();
                    }
                }
            }
        }
        if self.cgroupns_private {
            namespaces.push(serde_json::json!({"type": "cgroup"}));
        }
        // The host's (or another container's) UTS namespace keeps its hostname.
        if self.uts != Namespace::Private {
            spec.as_object_mut().map(|s| s.remove("hostname"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(f: impl FnOnce(&mut ResourceFlags)) -> Result<Resources> {
        let mut r = ResourceFlags::default();
        f(&mut r);
        Resources::from_flags(&r, "bridge", &|n| Ok(format!("id-of-{n}")))
    }

    #[test]
    fn ulimits_sysctls_and_namespaces_follow_docker_s_rules() {
        let r = flags(|f| f.ulimits = vec!["nofile=1024:2048".into(), "core=-1".into()]).unwrap();
        assert_eq!(r.ulimits[0], Ulimit { name: "nofile".into(), soft: 1024, hard: 2048 });
        assert_eq!(r.ulimits[1].hard, u64::MAX);
        for bad in ["nofile=2:1", "nope=1", "nofile", "nofile=x"] {
            assert!(flags(|f| f.ulimits = vec![bad.into()]).is_err(), "{bad}");
        }
        assert!(flags(|f| f.sysctls = vec!["net.ipv4.ip_forward=1".into()]).is_ok());
        assert!(flags(|f| f.sysctls = vec!["kernel.shmmax=1".into()]).is_ok());
        assert!(flags(|f| f.sysctls = vec!["vm.swappiness=1".into()]).is_err());
        assert!(flags(|f| {
            f.sysctls = vec!["kernel.shmmax=1".into()];
            f.ipc = Some("host".into())
        })
        .is_err());
        assert_eq!(
            flags(|f| f.pid = Some("container:web".into())).unwrap().pid,
            Namespace::Container("id-of-web".into())
        );
        assert!(flags(|f| f.uts = Some("nope".into())).is_err());
        assert!(flags(|f| f.cpuset_cpus = Some("0-1,3".into())).is_ok());
        assert!(flags(|f| f.cpuset_cpus = Some("0-,a".into())).is_err());
    }
}
