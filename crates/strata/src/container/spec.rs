//! The OCI runtime bundle of a container: `config.json` built from the
//! image config and the run flags, with Docker's defaults (capabilities,
//! masked paths, a minimal /dev, no-new-privileges), validated by parsing it
//! as oci-spec's `Spec` before it is written.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::confined::Root;
use crate::error::{Error, IoContext, Result};

/// How a container runs, fixed when it is created.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct RunConfig {
    /// The process: entrypoint plus command.
    pub args: Vec<String>,
    /// How many of `args` are the entrypoint (inspect's `Config.Entrypoint`;
    /// the rest is `Config.Cmd`).
    #[serde(default)]
    pub entrypoint_len: usize,
    /// The image as it was named at create (`Config.Image`, and `ps` while
    /// that name still means the same image).
    #[serde(default)]
    pub image: String,
    /// `KEY=VALUE` pairs.
    pub env: Vec<String>,
    /// Working directory inside the container.
    pub workdir: String,
    /// `USER[:GROUP]` as given (or from the image); resolved at start.
    pub user: String,
    /// Hostname.
    pub hostname: String,
    /// `none` (own network namespace, loopback only), `host`,
    /// `container:ID`, or the name of the first network it is attached to.
    pub network: String,
    /// Mount the root file system read-only.
    pub read_only: bool,
    /// Remove the container when it exits (`--rm`).
    pub auto_remove: bool,
    /// Memory limit in bytes (`--memory`).
    #[serde(default)]
    pub memory: Option<i64>,
    /// CPU quota in microseconds per 100ms period (`--cpus` × 100000).
    #[serde(default)]
    pub cpu_quota: Option<i64>,
    /// Process limit (`--pids-limit`).
    #[serde(default)]
    pub pids_limit: Option<i64>,
    /// External OCI runtime (`--runtime`); the built-in one when absent.
    #[serde(default)]
    pub runtime: Option<String>,
    /// Give the process a pseudo-terminal (`-t`).
    #[serde(default)]
    pub tty: bool,
    /// Keep standard input open (`-i`, Docker's OpenStdin): a detached
    /// container's monitor takes input from `attach` clients.
    #[serde(default)]
    pub open_stdin: bool,
    /// Volumes, bind mounts and tmpfs mounts.
    #[serde(default)]
    pub mounts: Vec<crate::volume::MountSpec>,
    /// Published ports (`-p`, `-P`); host port 0 is chosen at each start.
    #[serde(default)]
    pub ports: Vec<crate::network::PortSpec>,
    /// `--dns` servers.
    #[serde(default)]
    pub dns: Vec<String>,
    /// `--dns-search` domains.
    #[serde(default)]
    pub dns_search: Vec<String>,
    /// `--add-host NAME:IP` entries.
    #[serde(default)]
    pub add_hosts: Vec<String>,
    /// Labels: the image's, then `--label`/`-l` over them.
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    /// The signal `stop` sends first (`--stop-signal`, else the image's
    /// STOPSIGNAL); SIGTERM when absent.
    #[serde(default)]
    pub stop_signal: Option<String>,
    /// Seconds `stop` waits before SIGKILL when not told (`--stop-timeout`); 10 when absent.
    #[serde(default)]
    pub stop_timeout: Option<u64>,
    /// Capabilities, security options, devices, supplementary groups.
    #[serde(default)]
    pub security: super::security::Security,
    /// Limits and shared namespaces.
    #[serde(default)]
    pub resources: super::resources::Resources,
    /// `--init`: a minimal init (tini) is PID 1, the command its child.
    #[serde(default)]
    pub init: bool,
    /// `--restart`.
    #[serde(default)]
    pub restart: super::restart::Policy,
    /// The health check (the image's HEALTHCHECK, `--health-*`).
    #[serde(default)]
    pub health: Option<super::health::Check>,
    /// How its output is kept (`--log-driver`, `--log-opt`).
    #[serde(default)]
    pub log: super::logs::LogConfig,
}

/// Check `--add-host NAME:IP` entries.
pub fn check_add_hosts(hosts: &[String]) -> Result<()> {
    for h in hosts {
        let ok = h.split_once(':').is_some_and(|(n, ip)| !n.is_empty() && ip.parse::<std::net::IpAddr>().is_ok());
        if !ok {
            return Err(Error::invalid(format!("invalid --add-host {h:?}: want NAME:IP")));
        }
    }
    Ok(())
}

/// The init `--init` runs as PID 1: Debian's static tini (what Docker's
/// `docker-init` is), bind-mounted read-only at /dev/init as Docker does.
pub const INIT_BINARY: &str = "/usr/bin/tini-static";

/// Check that `--init` can be honoured on this host.
pub fn check_init() -> Result<()> {
    if Path::new(INIT_BINARY).is_file() {
        Ok(())
    } else {
        Err(Error::invalid(format!("--init needs tini: {INIT_BINARY} is missing (apt-get install tini)")))
    }
}

/// What a container's network setup means for its /etc/hosts and /etc/resolv.conf.
#[derive(Debug, Clone, Default)]
pub struct NetworkView {
    /// Its addresses there (the first is its hostname's).
    pub addresses: Vec<String>,
    /// Name servers the setup provides (aardvark-dns on a network's gateway).
    pub nameservers: Vec<String>,
}

impl NetworkView {
    /// What a setup gave: the interfaces' addresses, the networks' DNS servers.
    pub fn of(setup: &crate::network::Setup) -> Self {
        let mut v = NetworkView::default();
        for block in setup.status.values() {
            for iface in block.interfaces.iter().flat_map(|i| i.values()) {
                for a in iface.subnets.iter().flatten() {
                    v.addresses.push(a.ipnet.split('/').next().unwrap_or_default().to_string());
                }
            }
            v.nameservers.extend(block.dns_server_ips.iter().flatten().cloned());
        }
        v.nameservers.dedup();
        v
    }
}

/// The default PATH when neither the image nor `-e` gives one.
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A resolved user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// uid.
    pub uid: u32,
    /// gid.
    pub gid: u32,
    /// Supplementary groups from /etc/group.
    pub additional_gids: Vec<u32>,
    /// Home directory from /etc/passwd (for HOME).
    pub home: String,
}

/// Check `-u` syntax without a root file system: `name|uid[:group|gid]`.
pub fn check_user_syntax(user: &str) -> Result<()> {
    let ok = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    let valid = match user.split_once(':') {
        Some((u, g)) => ok(u) && ok(g),
        None => user.is_empty() || ok(user),
    };
    if valid {
        Ok(())
    } else {
        Err(Error::invalid(format!("invalid user {user:?}: want USER[:GROUP] (names or numeric IDs)")))
    }
}

/// The most of /etc/passwd or /etc/group read: a real one is a few KB.
const USER_DB_LIMIT: u64 = 4 << 20;

fn read_db(rootfs: &Root, file: &str) -> Result<Vec<Vec<String>>> {
    let bytes = rootfs.read_file(file, USER_DB_LIMIT + 1)?.unwrap_or_default();
    if bytes.len() as u64 > USER_DB_LIMIT {
        return Err(Error::invalid(format!("/{file} in the image is larger than {USER_DB_LIMIT} bytes")));
    }
    Ok(String::from_utf8_lossy(&bytes)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split(':').map(String::from).collect())
        .collect())
}

/// A group (name or number) as a gid, by the container's /etc/group
/// (`--group-add`): a name it lacks is an error naming it.
pub fn resolve_group(group: &str, rootfs: &Root) -> Result<u32> {
    let groups = read_db(rootfs, "etc/group")?;
    match groups.iter().find(|e| e.len() >= 3 && e[0] == group) {
        Some(e) => e[2].parse().map_err(|_| Error::invalid(format!("group {group}: bad gid {:?} in /etc/group", e[2]))),
        None => group
            .parse()
            .map_err(|_| Error::invalid(format!("unable to find group {group}: no matching entries in group file"))),
    }
}

/// Resolve `USER[:GROUP]` against the container's /etc/passwd and /etc/group
/// (read inside its root: a link out of it reads nothing from the host).
pub fn resolve_user(user: &str, rootfs: &Root) -> Result<User> {
    check_user_syntax(user)?;
    let passwd = read_db(rootfs, "etc/passwd")?;
    let groups = read_db(rootfs, "etc/group")?;
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (if u.is_empty() { "0" } else { u }, Some(g)),
        None => (if user.is_empty() { "0" } else { user }, None),
    };
    let entry = passwd.iter().find(|p| p.len() >= 6 && (p[0] == u || p[2] == u));
    let (uid, mut gid, home, name) = match (entry, u.parse::<u32>()) {
        (Some(p), _) => (p[2].parse().unwrap_or(0), p[3].parse().unwrap_or(0), p[5].clone(), p[0].clone()),
        (None, Ok(n)) => (n, 0, "/".to_string(), String::new()),
        (None, Err(_)) => {
            return Err(Error::invalid(format!("unable to find user {u}: no matching entries in passwd file")))
        }
    };
    if let Some(g) = g {
        gid = match groups.iter().find(|e| e.len() >= 3 && (e[0] == g || e[2] == g)) {
            Some(e) => e[2].parse().unwrap_or(0),
            None => g
                .parse()
                .map_err(|_| Error::invalid(format!("unable to find group {g}: no matching entries in group file")))?,
        };
    }
    let additional_gids = groups
        .iter()
        .filter(|e| e.len() >= 4 && !name.is_empty() && e[3].split(',').any(|m| m == name))
        .filter_map(|e| e[2].parse().ok())
        .filter(|g| *g != gid)
        .collect();
    Ok(User { uid, gid, additional_gids, home })
}

/// Find the program `args[0]` the way the runtime's exec will, so a missing
/// command gives Docker's 127 and a non-executable one 126, before anything
/// runs. A command at or below one of `mount_targets` is left to the
/// runtime: what the mount will put there is not in the root yet.
pub fn check_command(
    args: &[String],
    env: &[String],
    rootfs: &Root,
    workdir: &str,
    mount_targets: &[&str],
) -> Result<(), (i32, String)> {
    let Some(cmd) = args.first() else {
        return Err((125, "no command specified".into()));
    };
    let under_mount = |c: &Path| {
        let c = crate::confined::clean_container_path(&c.to_string_lossy());
        mount_targets.iter().any(|t| {
            let t = crate::confined::clean_container_path(t);
            c == t || c.starts_with(&format!("{}/", t.trim_end_matches('/')))
        })
    };
    let path = env.iter().rev().find_map(|e| e.strip_prefix("PATH=")).unwrap_or(&DEFAULT_PATH[5..]);
    let candidates: Vec<PathBuf> = if cmd.contains('/') {
        let base = if cmd.starts_with('/') { PathBuf::from("/") } else { PathBuf::from(workdir) };
        vec![base.join(cmd)]
    } else {
        path.split(':').filter(|d| !d.is_empty()).map(|d| Path::new(d).join(cmd)).collect()
    };
    let mut found_not_exec = None;
    for c in candidates {
        if under_mount(&c) {
            return Ok(());
        }
        let Ok(Some(entry)) = rootfs.resolve(&c) else { continue };
        match entry.metadata() {
            Ok(md) if md.is_file() => {
                use std::os::unix::fs::PermissionsExt;
                if md.permissions().mode() & 0o111 != 0 {
                    return Ok(());
                }
                found_not_exec = Some(c);
            }
            Ok(_) if cmd.contains('/') => found_not_exec = Some(c),
            _ => {}
        }
    }
    match found_not_exec {
        Some(c) => Err((126, format!("exec: {}: permission denied", c.display()))),
        None if cmd.contains('/') => Err((127, format!("exec: {cmd}: no such file or directory"))),
        None => Err((127, format!("exec: \"{cmd}\": executable file not found in $PATH"))),
    }
}

/// Files the container sees at /etc/hostname, /etc/hosts, /etc/resolv.conf.
pub fn write_etc_files(dir: &Path, cfg: &RunConfig, net: &NetworkView) -> Result<()> {
    let write = |name: &str, body: String| fs::write(dir.join(name), body).at(dir.join(name));
    write("hostname", format!("{}\n", cfg.hostname))?;
    let own = net.addresses.iter().find(|a| !a.contains(':')).map(String::as_str).unwrap_or("127.0.1.1");
    let mut hosts =
        format!("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n{own}\t{}\n", cfg.hostname);
    for a in net.addresses.iter().filter(|a| a.contains(':')) {
        hosts.push_str(&format!("{a}\t{}\n", cfg.hostname));
    }
    for h in &cfg.add_hosts {
        if let Some((name, ip)) = h.split_once(':') {
            hosts.push_str(&format!("{ip}\t{name}\n"));
        }
    }
    write("hosts", hosts)?;
    let host = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    // Loopback resolvers of the host mean nothing in the container's own network namespace.
    let mut resolv: Vec<String> = host
        .lines()
        .filter(|l| cfg.network == "host" || !l.trim_start().starts_with("nameserver 127."))
        .filter(|l| !(l.trim_start().starts_with("nameserver") && (!cfg.dns.is_empty() || !net.nameservers.is_empty())))
        .filter(|l| !(l.trim_start().starts_with("search") && !cfg.dns_search.is_empty()))
        .map(str::to_string)
        .collect();
    if !cfg.dns_search.is_empty() {
        resolv.push(format!("search {}", cfg.dns_search.join(" ")));
    }
    // On a network with DNS its server answers names and forwards the rest (to --dns when given).
    let servers = if net.nameservers.is_empty() { &cfg.dns } else { &net.nameservers };
    resolv.extend(servers.iter().map(|s| format!("nameserver {s}")));
    // Docker's fallback when the host has only loopback resolvers, which the container cannot reach.
    if cfg.network != "host" && !resolv.iter().any(|l| l.trim_start().starts_with("nameserver")) {
        resolv.extend(["nameserver 8.8.8.8".to_string(), "nameserver 8.8.4.4".to_string()]);
    }
    write("resolv.conf", resolv.iter().map(|l| format!("{l}\n")).collect())
}

fn resources(cfg: &RunConfig) -> serde_json::Value {
    let mut r = serde_json::json!({});
    if let Some(m) = cfg.memory {
        r["memory"] = serde_json::json!({"limit": m});
    }
    if let Some(q) = cfg.cpu_quota {
        r["cpu"] = serde_json::json!({"quota": q, "period": 100_000u64});
    }
    if let Some(p) = cfg.pids_limit {
        r["pids"] = serde_json::json!({"limit": p});
    }
    r
}

/// The runtime spec for a container whose root file system is `rootfs`
/// and whose own files (hostname, hosts, resolv.conf) are in `dir`; a
/// container not on the host network joins `netns` when given (see
/// [`super::netns`]), else a new empty one; `pid_of` finds a running
/// container whose namespace it shares (`--pid container:NAME`).
pub fn build_spec(
    id: &str,
    cfg: &RunConfig,
    user: &User,
    rootfs: &Path,
    dir: &Path,
    volumes: &[(crate::volume::MountSpec, PathBuf)],
    netns: Option<&Path>,
    pid_of: &dyn Fn(&str) -> Result<i64>,
) -> Result<serde_json::Value> {
    let mut env = cfg.env.clone();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", if user.home.is_empty() { "/" } else { &user.home }));
    }
    if !env.iter().any(|e| e.starts_with("HOSTNAME=")) {
        env.push(format!("HOSTNAME={}", cfg.hostname));
    }
    let mut namespaces = vec![
        serde_json::json!({"type": "pid"}),
        serde_json::json!({"type": "ipc"}),
        serde_json::json!({"type": "uts"}),
        serde_json::json!({"type": "mount"}),
    ];
    if cfg.network != "host" {
        namespaces.push(match netns {
            Some(p) => serde_json::json!({"type": "network", "path": p.display().to_string()}),
            None => serde_json::json!({"type": "network"}),
        });
    }
    let bind = |name: &str| {
        serde_json::json!({"destination": format!("/etc/{name}"), "type": "bind",
            "source": dir.join(name).display().to_string(), "options": ["rbind", "rprivate"]})
    };
    let spec = serde_json::json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": cfg.tty,
            "user": {"uid": user.uid, "gid": user.gid, "additionalGids": user.additional_gids},
            "args": if cfg.init {
                ["/dev/init", "--"].iter().map(|s| s.to_string()).chain(cfg.args.iter().cloned()).collect()
            } else {
                cfg.args.clone()
            },
            "env": env,
            "cwd": if cfg.workdir.is_empty() { "/" } else { &cfg.workdir },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 20000u64, "soft": 20000u64}],
        },
        "root": {"path": rootfs.display().to_string(), "readonly": cfg.read_only},
        "hostname": cfg.hostname,
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            bind("hostname"), bind("hosts"), bind("resolv.conf"),
        ],
        "linux": {
            "namespaces": namespaces,
            "cgroupsPath": format!("/strata/{id}"),
            "maskedPaths": ["/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
                            "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
            "resources": resources(cfg),
        },
    });
    let mut spec = spec;
    if cfg.init {
        check_init()?;
        spec["mounts"].as_array_mut().expect("mounts is an array").push(serde_json::json!({
            "destination": "/dev/init", "type": "bind", "source": INIT_BINARY, "options": ["bind", "ro", "nosuid", "nodev"]}));
    }
    // Capabilities, no-new-privileges, seccomp, devices, --privileged.
    cfg.security.apply(&mut spec)?;
    // Limits, /dev/shm, sysctls, shared namespaces.
    cfg.resources.apply(&mut spec, cfg.memory, pid_of)?;
    for (m, source) in volumes {
        let v = match m.kind {
            crate::volume::MountKind::Tmpfs => {
                let mut options =
                    vec!["nosuid".to_string(), "nodev".to_string(), if m.readonly { "ro" } else { "rw" }.into()];
                options.extend(m.options.iter().cloned());
                serde_json::json!({"destination": m.target, "type": "tmpfs", "source": "tmpfs", "options": options})
            }
            // "rro": read-only all the way down (mount_setattr AT_RECURSIVE), so a
            // mount below the source is not writable through a read-only bind.
            _ if m.readonly => {
                serde_json::json!({"destination": m.target, "type": "bind", "source": source.display().to_string(),
                "options": ["rbind", "rprivate", "ro", "rro"]})
            }
            _ => serde_json::json!({"destination": m.target, "type": "bind", "source": source.display().to_string(),
                "options": ["rbind", "rprivate", "rw"]}),
        };
        spec["mounts"].as_array_mut().expect("mounts is an array").push(v);
    }
    // oci-spec is the schema: a spec it cannot read is our bug, caught here.
    serde_json::from_value::<oci_spec::runtime::Spec>(spec.clone())
        .map_err(|e| Error::Corrupt(format!("generated runtime spec is invalid: {e}")))?;
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_syntax() {
        for ok in ["", "root", "1000", "1000:1000", "app:staff", "a.b-c_d"] {
            assert!(check_user_syntax(ok).is_ok(), "{ok}");
        }
        for bad in [":", "a:", ":b", "a b", "a:b:c", "x/y"] {
            assert!(check_user_syntax(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn users_resolve_from_the_rootfs() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir(d.path().join("etc")).unwrap();
        fs::write(d.path().join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n")
            .unwrap();
        fs::write(d.path().join("etc/group"), "root:x:0:\napp:x:1001:\nstaff:x:50:app\n").unwrap();
        let root = Root::open(d.path()).unwrap();
        let u = resolve_user("app", &root).unwrap();
        assert_eq!((u.uid, u.gid, u.additional_gids.clone(), u.home.as_str()), (1000, 1001, vec![50], "/home/app"));
        assert_eq!(resolve_user("app:staff", &root).unwrap().gid, 50);
        assert_eq!(resolve_user("42:43", &root).unwrap().uid, 42);
        assert!(resolve_user("nobody", &root).is_err());
    }
}
