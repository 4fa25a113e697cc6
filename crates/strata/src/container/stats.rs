//! `stats` and `update`: a running container's resource use, read where the kernel
//! keeps it: its cgroup (found from `/proc/<pid>/cgroup`, v1 controllers or
//! the v2 unified hierarchy, mounted where `/proc/self/mountinfo` says) for
//! CPU time, memory, PIDs and block I/O, and its network namespace's
//! `/proc/<pid>/net/dev` for network I/O. One call is one sample; a CPU
//! percentage needs two (the front end takes them). `update` writes new
//! limits into the same cgroup files and the container's record.

use std::fs;
use std::path::PathBuf;

use serde::Serialize;

use super::ops::Containers;
use crate::error::{Error, Result};
use crate::store::ContainerState;

/// One sample.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Sample {
    /// Container ID.
    pub id: String,
    /// Name.
    pub name: String,
    /// CPU time used so far, nanoseconds.
    pub cpu_ns: u64,
    /// Memory in use, bytes (page cache that can be dropped left out, as Docker does).
    pub memory: u64,
    /// Memory limit, bytes (the host's memory when unlimited).
    pub memory_limit: u64,
    /// Processes and threads.
    pub pids: u64,
    /// Bytes read from block devices.
    pub block_read: u64,
    /// Bytes written to block devices.
    pub block_write: u64,
    /// Bytes received on its interfaces (loopback left out).
    pub net_rx: u64,
    /// Bytes sent.
    pub net_tx: u64,
}

/// Where each hierarchy is mounted: (v1 controller or "" for v2, mount point).
fn cgroup_mounts() -> Vec<(String, PathBuf)> {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut out = Vec::new();
    for l in info.lines() {
        let Some((left, right)) = l.split_once(" - ") else { continue };
        let mut r = right.split_whitespace();
        let (fstype, _src, opts) = (r.next().unwrap_or(""), r.next(), r.next().unwrap_or(""));
        let mount_point = left.split_whitespace().nth(4).unwrap_or("");
        match fstype {
            "cgroup2" => out.push((String::new(), PathBuf::from(mount_point))),
            "cgroup" => {
                for o in opts.split(',') {
                    if ["memory", "cpu", "cpuacct", "pids", "blkio"].contains(&o) {
                        out.push((o.to_string(), PathBuf::from(mount_point)));
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// SIGKILL every process in the cgroup `strata/ID` of every hierarchy: what
/// a container left when the runtime has no usable state for it (a build
/// killed while its step's container was starting).
pub(crate) fn kill_cgroup(id: &str) {
    for (_, mount) in cgroup_mounts() {
        let procs = mount.join("strata").join(id).join("cgroup.procs");
        let Ok(text) = fs::read_to_string(&procs) else { continue };
        for pid in text.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            if let Some(pid) = rustix::process::Pid::from_raw(pid) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        }
    }
}

/// The host's memory in bytes (`MemTotal` of /proc/meminfo; 0 when unreadable).
pub(crate) fn host_memory() -> u64 {
    fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().find(|l| l.starts_with("MemTotal:"))?.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .unwrap_or(0)
}

fn read_u64(p: PathBuf) -> Option<u64> {
    fs::read_to_string(p).ok()?.trim().parse().ok()
}

fn stat_field(p: PathBuf, key: &str) -> Option<u64> {
    fs::read_to_string(p).ok()?.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
}

/// A process's cgroup directory for a v1 controller ("" for the v2 hierarchy).
struct Cgroups {
    paths: Vec<(String, String)>,
    mounts: Vec<(String, PathBuf)>,
}

impl Cgroups {
    fn of(pid: i64, name: &str) -> Result<Self> {
        let groups = fs::read_to_string(format!("/proc/{pid}/cgroup"))
            .map_err(|e| Error::invalid(format!("container {name} is not running ({e})")))?;
        // controller (or "" for v2) -> path inside its hierarchy
        let mut paths = Vec::new();
        for l in groups.lines() {
            let mut f = l.splitn(3, ':');
            let (_, ctrls, path) = (f.next(), f.next().unwrap_or(""), f.next().unwrap_or(""));
            for c in ctrls.split(',') {
                paths.push((c.to_string(), path.to_string()));
            }
        }
        Ok(Cgroups { paths, mounts: cgroup_mounts() })
    }

    fn dir(&self, ctrl: &str) -> Option<PathBuf> {
        let (_, mp) = self.mounts.iter().find(|(c, _)| c == ctrl)?;
        let (_, p) = self.paths.iter().find(|(c, _)| c == ctrl)?;
        Some(mp.join(p.trim_start_matches('/')))
    }
}

/// New limits (`update`); None leaves one as it is.
#[derive(Debug, Clone, Default)]
pub struct Limits {
    /// `--memory`, bytes.
    pub memory: Option<i64>,
    /// `--cpus`.
    pub cpus: Option<f64>,
    /// `--pids-limit` (0 or less: none).
    pub pids: Option<i64>,
}

fn write_limit(p: PathBuf, value: &str) -> Result<()> {
    fs::write(&p, value).map_err(|e| Error::invalid(format!("setting {} to {value}: {e}", p.display())))
}

impl Containers<'_> {
    /// `update`: new limits for a container, kept in its record (so later
    /// starts have them) and, while it runs, written into its cgroup.
    pub fn update(&self, name: &str, limits: &Limits) -> Result<()> {
        super::ops::refuse_cgroups_rootless("update")?;
        let rec = self.get(name)?;
        let mut cfg = super::run_config(&rec)?;
        if let Some(m) = limits.memory {
            cfg.memory = Some(m);
        }
        if let Some(c) = limits.cpus {
            cfg.cpu_quota = Some((c * 100_000.0) as i64);
        }
        if let Some(p) = limits.pids {
            cfg.pids_limit = Some(p).filter(|p| *p > 0);
        }
        if let Some(pid) = rec.pid.filter(|_| rec.state == ContainerState::Running) {
            let cg = Cgroups::of(pid, &rec.name)?;
            if let Some(m) = limits.memory {
                match cg.dir("memory") {
                    Some(d) => write_limit(d.join("memory.limit_in_bytes"), &m.to_string())?,
                    None => write_limit(cg.dir("").unwrap_or_default().join("memory.max"), &m.to_string())?,
                }
            }
            if let Some(q) = limits.cpus.map(|c| (c * 100_000.0) as i64) {
                match cg.dir("cpu") {
                    Some(d) => {
                        write_limit(d.join("cpu.cfs_period_us"), "100000")?;
                        write_limit(d.join("cpu.cfs_quota_us"), &q.to_string())?
                    }
                    None => write_limit(cg.dir("").unwrap_or_default().join("cpu.max"), &format!("{q} 100000"))?,
                }
            }
            if let Some(p) = limits.pids {
                let v = if p > 0 { p.to_string() } else { "max".into() };
                write_limit(cg.dir("pids").or_else(|| cg.dir("")).unwrap_or_default().join("pids.max"), &v)?;
            }
        }
        self.set_run_config(&rec, &cfg)
    }

    /// One sample of a running container's resource use.
    pub fn stats(&self, name: &str) -> Result<Sample> {
        super::ops::refuse_cgroups_rootless("stats")?;
        let rec = self.get(name)?;
        let pid = rec
            .pid
            .filter(|_| rec.state == ContainerState::Running)
            .ok_or_else(|| Error::invalid(format!("container {} is not running", rec.name)))?;
        let cg = Cgroups::of(pid, &rec.name)?;
        let dir = |ctrl: &str| cg.dir(ctrl);
        let mut s = Sample { id: rec.id.clone(), name: rec.name.clone(), ..Default::default() };
        let host_mem = host_memory();
        if let Some(m) = dir("memory") {
            let usage = read_u64(m.join("memory.usage_in_bytes")).unwrap_or(0);
            let cache = stat_field(m.join("memory.stat"), "total_inactive_file").unwrap_or(0);
            s.memory = usage.saturating_sub(cache);
            s.memory_limit = read_u64(m.join("memory.limit_in_bytes")).unwrap_or(u64::MAX).min(host_mem);
        } else if let Some(u) = dir("") {
            let usage = read_u64(u.join("memory.current")).unwrap_or(0);
            let cache = stat_field(u.join("memory.stat"), "inactive_file").unwrap_or(0);
            s.memory = usage.saturating_sub(cache);
            s.memory_limit = read_u64(u.join("memory.max")).unwrap_or(u64::MAX).min(host_mem);
        }
        s.cpu_ns = match dir("cpuacct") {
            Some(c) => read_u64(c.join("cpuacct.usage")).unwrap_or(0),
            None => dir("").and_then(|u| stat_field(u.join("cpu.stat"), "usage_usec")).unwrap_or(0) * 1000,
        };
        s.pids = dir("pids").or_else(|| dir("")).and_then(|p| read_u64(p.join("pids.current"))).unwrap_or(0);
        if let Some(b) = dir("blkio") {
            let text = fs::read_to_string(b.join("blkio.throttle.io_service_bytes")).unwrap_or_default();
            for l in text.lines() {
                let f: Vec<&str> = l.split_whitespace().collect();
                match (f.get(1), f.get(2).and_then(|n| n.parse::<u64>().ok())) {
                    (Some(&"Read"), Some(n)) => s.block_read += n,
                    (Some(&"Write"), Some(n)) => s.block_write += n,
                    _ => {}
                }
            }
        } else if let Some(u) = dir("") {
            for l in fs::read_to_string(u.join("io.stat")).unwrap_or_default().lines() {
                for kv in l.split_whitespace() {
                    match kv.split_once('=') {
                        Some(("rbytes", n)) => s.block_read += n.parse::<u64>().unwrap_or(0),
                        Some(("wbytes", n)) => s.block_write += n.parse::<u64>().unwrap_or(0),
                        _ => {}
                    }
                }
            }
        }
        for l in fs::read_to_string(format!("/proc/{pid}/net/dev")).unwrap_or_default().lines().skip(2) {
            let Some((iface, rest)) = l.split_once(':') else { continue };
            if iface.trim() == "lo" {
                continue;
            }
            let f: Vec<u64> = rest.split_whitespace().filter_map(|n| n.parse().ok()).collect();
            s.net_rx += f.first().copied().unwrap_or(0);
            s.net_tx += f.get(8).copied().unwrap_or(0);
        }
        Ok(s)
    }
}
