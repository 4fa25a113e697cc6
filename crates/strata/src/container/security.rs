//! What a container may do: its capabilities (`--cap-add`, `--cap-drop`,
//! `--privileged`), `--security-opt` (`no-new-privileges`, `seccomp=`),
//! host devices (`--device`, `--device-cgroup-rule`) and `--group-add`.
//! Flags are checked at create ([`Security::from_flags`]) and become the
//! runtime spec's process and linux sections at start ([`Security::apply`]).
//!
//! Docker's semantics throughout: its default capability set, `ALL` in
//! add or drop, a deny-all device cgroup with the devices asked for allowed,
//! `no-new-privileges` off unless asked, seccomp off for `--privileged`,
//! and a syscall allowed by the default filter once the capability that
//! needs it is granted (Docker's profile does the same). The tables are
//! written here: they are the kernel's and Docker's published behaviour, and
//! no crate carries them.

use std::collections::BTreeSet;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Every capability the kernel defines, by number.
const CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Docker's default capability set.
pub const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Syscalls the default seccomp filter refuses with EPERM, and the
/// capabilities any one of which lets a container use them (as Docker's
/// default profile: e.g. `ptrace` with SYS_PTRACE, `mount` with SYS_ADMIN).
/// Everything else is allowed. (`ptrace` and `process_vm_readv/writev`
/// are allowed: Docker's profile allows them on kernels from 4.8, whose
/// ptrace checks no longer let a filter be bypassed; compared with Docker
/// in `tests/docker.rs`.)
const SECCOMP_DENIED: &[(&str, &[&str])] = &[
    ("acct", &["CAP_SYS_PACCT"]),
    ("add_key", &[]),
    ("bpf", &["CAP_SYS_ADMIN", "CAP_BPF"]),
    ("clock_adjtime", &["CAP_SYS_TIME"]),
    ("clock_settime", &["CAP_SYS_TIME"]),
    ("create_module", &[]),
    ("delete_module", &["CAP_SYS_MODULE"]),
    ("finit_module", &["CAP_SYS_MODULE"]),
    ("fanotify_init", &["CAP_SYS_ADMIN"]),
    ("get_kernel_syms", &[]),
    ("get_mempolicy", &["CAP_SYS_NICE"]),
    ("init_module", &["CAP_SYS_MODULE"]),
    ("ioperm", &["CAP_SYS_RAWIO"]),
    ("iopl", &["CAP_SYS_RAWIO"]),
    ("kcmp", &["CAP_SYS_PTRACE"]),
    ("kexec_file_load", &[]),
    ("kexec_load", &[]),
    ("keyctl", &[]),
    ("lookup_dcookie", &["CAP_SYS_ADMIN"]),
    ("mbind", &["CAP_SYS_NICE"]),
    ("mount", &["CAP_SYS_ADMIN"]),
    ("move_pages", &[]),
    ("name_to_handle_at", &["CAP_SYS_ADMIN"]),
    ("nfsservctl", &[]),
    ("open_by_handle_at", &["CAP_DAC_READ_SEARCH"]),
    ("perf_event_open", &["CAP_SYS_ADMIN", "CAP_PERFMON"]),
    ("pivot_root", &["CAP_SYS_ADMIN"]),
    ("query_module", &[]),
    ("quotactl", &["CAP_SYS_ADMIN"]),
    ("reboot", &["CAP_SYS_BOOT"]),
    ("request_key", &[]),
    ("set_mempolicy", &["CAP_SYS_NICE"]),
    ("setdomainname", &["CAP_SYS_ADMIN"]),
    ("sethostname", &["CAP_SYS_ADMIN"]),
    ("setns", &["CAP_SYS_ADMIN"]),
    ("settimeofday", &["CAP_SYS_TIME"]),
    ("stime", &["CAP_SYS_TIME"]),
    ("swapoff", &["CAP_SYS_ADMIN"]),
    ("swapon", &["CAP_SYS_ADMIN"]),
    ("_sysctl", &[]),
    ("syslog", &["CAP_SYS_ADMIN", "CAP_SYSLOG"]),
    ("umount", &["CAP_SYS_ADMIN"]),
    ("umount2", &["CAP_SYS_ADMIN"]),
    ("unshare", &["CAP_SYS_ADMIN"]),
    ("uselib", &[]),
    ("userfaultfd", &[]),
    ("ustat", &[]),
    ("vhangup", &["CAP_SYS_TTY_CONFIG"]),
    ("vm86", &[]),
    ("vm86old", &[]),
];

/// The seccomp filter a container runs under.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub enum Seccomp {
    /// strata's default filter, opened up by the capabilities granted.
    #[default]
    Default,
    /// No filter (`seccomp=unconfined`, `--privileged`).
    Unconfined,
    /// A profile in Docker's JSON format, as given (`seccomp=FILE`).
    Profile(serde_json::Value),
}

/// A host device given to the container (`--device`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Device {
    /// Its path on the host (a device, or a directory of devices).
    pub host: String,
    /// Its path in the container.
    pub container: String,
    /// Cgroup permissions: some of `rwm`.
    pub permissions: String,
}

/// The security flags as given on the command line (or an API call).
#[derive(Debug, Clone, Default)]
pub struct SecurityFlags {
    /// `--cap-add`.
    pub cap_add: Vec<String>,
    /// `--cap-drop`.
    pub cap_drop: Vec<String>,
    /// `--privileged`.
    pub privileged: bool,
    /// `--security-opt`.
    pub security_opt: Vec<String>,
    /// `--device`.
    pub devices: Vec<String>,
    /// `--device-cgroup-rule`.
    pub device_cgroup_rules: Vec<String>,
    /// `--group-add`.
    pub group_add: Vec<String>,
}

/// What a container may do, fixed at create.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Security {
    /// `--cap-add`, as given (inspect's `HostConfig.CapAdd`).
    pub cap_add: Vec<String>,
    /// `--cap-drop`, as given.
    pub cap_drop: Vec<String>,
    /// `--privileged`.
    pub privileged: bool,
    /// `no-new-privileges` (off by default, as Docker's).
    pub no_new_privileges: bool,
    /// The seccomp filter.
    pub seccomp: Seccomp,
    /// Host devices.
    pub devices: Vec<Device>,
    /// `--device-cgroup-rule`s, checked (`c 10:229 rwm`).
    pub device_cgroup_rules: Vec<String>,
    /// Supplementary groups (`--group-add`): names resolved at start.
    pub group_add: Vec<String>,
}

/// `chown` or `CAP_CHOWN` to `CAP_CHOWN`; `ALL` stays `ALL`.
fn cap_name(c: &str) -> Result<String> {
    let upper = c.to_ascii_uppercase();
    if upper == "ALL" {
        return Ok(upper);
    }
    let name = if upper.starts_with("CAP_") { upper } else { format!("CAP_{upper}") };
    if CAPABILITIES.contains(&name.as_str()) {
        Ok(name)
    } else {
        Err(Error::invalid(format!("unknown capability: {c:?}")))
    }
}

/// The capabilities this process holds in its bounding set: a container
/// can get no other (a VM or an outer container may withhold some).
fn own_bounding_set() -> BTreeSet<&'static str> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let mask = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        .unwrap_or(u64::MAX);
    CAPABILITIES.iter().enumerate().filter(|(i, _)| mask & (1 << i) != 0).map(|(_, c)| *c).collect()
}

impl Security {
    /// Check the flags; the errors name the flag and value at fault.
    pub fn from_flags(f: &SecurityFlags) -> Result<Self> {
        let mut s = Security { privileged: f.privileged, group_add: f.group_add.clone(), ..Default::default() };
        for (given, out) in [(&f.cap_add, &mut s.cap_add), (&f.cap_drop, &mut s.cap_drop)] {
            for c in given {
                out.push(cap_name(c)?);
            }
        }
        let own = own_bounding_set();
        if let Some(c) = s.cap_add.iter().find(|c| *c != "ALL" && !own.contains(c.as_str())) {
            return Err(Error::invalid(format!("--cap-add {c}: strata itself does not hold it, so no container can")));
        }
        if f.privileged {
            s.seccomp = Seccomp::Unconfined;
        }
        for opt in &f.security_opt {
            let (key, value) = opt.split_once(['=', ':']).unwrap_or((opt, ""));
            match (key, value) {
                ("no-new-privileges", "" | "true") => s.no_new_privileges = true,
                ("no-new-privileges", "false") => s.no_new_privileges = false,
                ("seccomp", "unconfined") => s.seccomp = Seccomp::Unconfined,
                ("seccomp", "") => return Err(Error::invalid("--security-opt seccomp= needs a file or unconfined")),
                ("seccomp", file) => s.seccomp = Seccomp::Profile(read_profile(Path::new(file))?),
                ("label" | "apparmor", _) => {} // no LSM here: accepted, as Docker on a host without one
                _ => {
                    return Err(Error::invalid(format!(
                        "invalid --security-opt {opt:?}: want no-new-privileges[=BOOL], seccomp=FILE|unconfined"
                    )))
                }
            }
        }
        for d in &f.devices {
            s.devices.push(parse_device(d)?);
        }
        for r in &f.device_cgroup_rules {
            parse_cgroup_rule(r)?;
            s.device_cgroup_rules.push(r.clone());
        }
        Ok(s)
    }

    /// The capabilities the container's process gets.
    pub fn capabilities(&self) -> Vec<&'static str> {
        let own = own_bounding_set();
        let has = |list: &[String], c: &str| list.iter().any(|x| x == c);
        let set: BTreeSet<&'static str> = if self.privileged || has(&self.cap_add, "ALL") {
            own.iter().copied().filter(|c| self.privileged || !has(&self.cap_drop, c)).collect()
        } else {
            let base: &[&'static str] = if has(&self.cap_drop, "ALL") { &[] } else { DEFAULT_CAPS };
            let added = CAPABILITIES.iter().copied().filter(|c| has(&self.cap_add, c));
            base.iter().copied().chain(added).filter(|c| !has(&self.cap_drop, c) && own.contains(c)).collect()
        };
        set.into_iter().collect()
    }

    /// Make `spec` (a runtime spec as JSON) what these settings say: its
    /// capabilities, no-new-privileges, seccomp filter, devices and, for
    /// `--privileged`, no masked or read-only paths and a writable /sys.
    pub fn apply(&self, spec: &mut serde_json::Value) -> Result<()> {
        let caps = self.capabilities();
        spec["process"]["capabilities"] =
            serde_json::json!({"bounding": caps, "effective": caps, "permitted": caps});
        // Absent rather than false: libcontainer 0.7 takes any value as "set"
        // and then loads the seccomp filter after dropping the capability it needs.
        match spec["process"].as_object_mut() {
            Some(p) if self.no_new_privileges => {
                p.insert("noNewPrivileges".into(), true.into());
            }
            Some(p) => {
                p.remove("noNewPrivileges");
            }
            None => {}
        }
        let linux = &mut spec["linux"];
        match &self.seccomp {
            Seccomp::Unconfined => {
                linux.as_object_mut().map(|l| l.remove("seccomp"));
            }
            Seccomp::Default => linux["seccomp"] = default_filter(&caps),
            Seccomp::Profile(p) => linux["seccomp"] = profile_filter(p, &caps)?,
        }
        // Deny every device, then allow the runtime's defaults (the runtime
        // adds those) and what was asked for: as Docker's device cgroup.
        let mut rules = vec![serde_json::json!({"allow": false, "access": "rwm"})];
        let mut nodes = Vec::new();
        if self.privileged {
            rules.push(serde_json::json!({"allow": true, "access": "rwm"}));
            host_devices(Path::new("/dev"), "/dev", "rwm", &mut nodes, &mut Vec::new());
            linux["maskedPaths"] = serde_json::json!([]);
            linux["readonlyPaths"] = serde_json::json!([]);
            if let Some(mounts) = spec["mounts"].as_array_mut() {
                for m in mounts.iter_mut().filter(|m| m["destination"] == "/sys") {
                    if let Some(o) = m["options"].as_array_mut() {
                        o.retain(|o| o != "ro");
                        o.push(serde_json::json!("rw"));
                    }
                }
            }
        }
        for d in &self.devices {
            let mut found = Vec::new();
            host_devices(Path::new(&d.host), &d.container, &d.permissions, &mut found, &mut rules);
            if found.is_empty() {
                return Err(Error::invalid(format!("--device {}: no device there on this host", d.host)));
            }
            nodes.extend(found);
        }
        for r in &self.device_cgroup_rules {
            rules.push(parse_cgroup_rule(r)?);
        }
        let linux = &mut spec["linux"];
        linux["devices"] = serde_json::Value::Array(nodes);
        linux["resources"]["devices"] = serde_json::Value::Array(rules);
        Ok(())
    }
}

/// `--device HOST[:CONTAINER][:PERMISSIONS]`.
fn parse_device(spec: &str) -> Result<Device> {
    let bad = |why: &str| Error::invalid(format!("invalid --device {spec:?}: {why}"));
    let perms_ok = |p: &str| !p.is_empty() && p.len() <= 3 && p.chars().all(|c| "rwm".contains(c));
    let parts: Vec<&str> = spec.split(':').collect();
    let (host, container, permissions) = match parts[..] {
        [h] => (h, h, "rwm"),
        [h, p] if perms_ok(p) => (h, h, p),
        [h, c] => (h, c, "rwm"),
        [h, c, p] => (h, c, p),
        _ => return Err(bad("want HOST[:CONTAINER[:rwm]]")),
    };
    if !host.starts_with('/') || !container.starts_with('/') {
        return Err(bad("paths must be absolute"));
    }
    if !perms_ok(permissions) {
        return Err(bad("permissions are some of r, w and m"));
    }
    let md = std::fs::metadata(host).map_err(|e| bad(&format!("{host}: {e}")))?;
    let ft = md.file_type();
    if !(ft.is_char_device() || ft.is_block_device() || ft.is_dir()) {
        return Err(bad(&format!("{host} is not a device")));
    }
    Ok(Device { host: host.into(), container: crate::confined::clean_container_path(container), permissions: permissions.into() })
}

/// The devices at `host` (one, or those under a directory), as spec
/// entries under `container`, with an allow rule each.
fn host_devices(
    host: &Path,
    container: &str,
    access: &str,
    nodes: &mut Vec<serde_json::Value>,
    rules: &mut Vec<serde_json::Value>,
) {
    let Ok(md) = std::fs::symlink_metadata(host) else { return };
    let ft = md.file_type();
    if ft.is_dir() {
        // Not the pseudo-terminal and memory file systems: the container has its own.
        if ["/dev/pts", "/dev/shm", "/dev/mqueue"].iter().any(|p| host == Path::new(p)) {
            return;
        }
        let Ok(entries) = std::fs::read_dir(host) else { return };
        for e in entries.flatten() {
            let name = e.file_name();
            let child = format!("{}/{}", container.trim_end_matches('/'), name.to_string_lossy());
            host_devices(&e.path(), &child, access, nodes, rules);
        }
        return;
    }
    let kind = if ft.is_char_device() {
        "c"
    } else if ft.is_block_device() {
        "b"
    } else {
        return;
    };
    let (major, minor) = (libc::major(md.rdev()), libc::minor(md.rdev()));
    nodes.push(serde_json::json!({"path": container, "type": kind, "major": major, "minor": minor,
        "fileMode": md.mode() & 0o777, "uid": md.uid(), "gid": md.gid()}));
    rules.push(serde_json::json!({"allow": true, "type": kind, "major": major, "minor": minor, "access": access}));
}

/// `--device-cgroup-rule 'TYPE MAJOR:MINOR ACCESS'` (TYPE a, b or c;
/// numbers or `*`) as a spec rule.
fn parse_cgroup_rule(rule: &str) -> Result<serde_json::Value> {
    let bad = || Error::invalid(format!("invalid --device-cgroup-rule {rule:?}: want 'c|b|a MAJOR:MINOR rwm'"));
    let parts: Vec<&str> = rule.split_whitespace().collect();
    let [kind, numbers, access] = parts[..] else { return Err(bad()) };
    let (major, minor) = numbers.split_once(':').ok_or_else(bad)?;
    let number = |n: &str| -> Result<Option<i64>> {
        if n == "*" {
            Ok(None)
        } else {
            n.parse().map(Some).map_err(|_| bad())
        }
    };
    if !["a", "b", "c"].contains(&kind) || access.is_empty() || !access.chars().all(|c| "rwm".contains(c)) {
        return Err(bad());
    }
    let mut r = serde_json::json!({"allow": true, "type": kind, "access": access});
    if let Some(m) = number(major)? {
        r["major"] = m.into();
    }
    if let Some(m) = number(minor)? {
        r["minor"] = m.into();
    }
    Ok(r)
}

/// strata's default filter for a container holding `caps`.
fn default_filter(caps: &[&str]) -> serde_json::Value {
    let denied: Vec<&str> = SECCOMP_DENIED
        .iter()
        .filter(|(_, unlocked_by)| !unlocked_by.iter().any(|c| caps.contains(c)))
        .map(|(name, _)| *name)
        .collect();
    serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": denied, "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
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
fn read_profile(path: &Path) -> Result<serde_json::Value> {
    let bad = |why: String| Error::invalid(format!("seccomp profile {}: {why}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let p: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let action = p["defaultAction"].as_str().ok_or_else(|| bad("no defaultAction".into()))?;
    if !ACTIONS.contains(&action) {
        return Err(bad(format!("unknown defaultAction {action:?}")));
    }
    // Convert now as a check: every rule's fault is named before anything is created.
    profile_filter(&p, &[]).map_err(|e| bad(e.to_string()))?;
    Ok(p)
}

/// A Docker-format profile as the OCI filter for a container holding
/// `caps`: rules kept by their `includes`/`excludes` (capabilities,
/// architectures), this machine's architectures from `archMap`.
fn profile_filter(p: &serde_json::Value, caps: &[&str]) -> Result<serde_json::Value> {
    let arch = match std::env::consts::ARCH {
        "x86_64" => ("SCMP_ARCH_X86_64", "amd64"),
        "aarch64" => ("SCMP_ARCH_AARCH64", "arm64"),
        other => (other, other),
    };
    let mut archs: Vec<serde_json::Value> = p["architectures"].as_array().cloned().unwrap_or_default();
    for m in p["archMap"].as_array().into_iter().flatten() {
        if m["architecture"] == arch.0 {
            archs.push(m["architecture"].clone());
            archs.extend(m["subArchitectures"].as_array().cloned().unwrap_or_default());
        }
    }
    let holds = |list: &serde_json::Value| -> (bool, bool) {
        let caps_ok = list["caps"].as_array().is_none_or(|c| c.iter().all(|c| c.as_str().is_some_and(|c| caps.contains(&c))));
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
            let by_caps = ex["caps"].as_array().is_some_and(|c| c.iter().any(|c| c.as_str().is_some_and(|c| caps.contains(&c))));
            let by_arch = ex["arches"].as_array().is_some_and(|a| a.iter().any(|a| a == arch.1));
            by_caps || by_arch
        };
        if !inc_caps || !inc_arch || excluded {
            continue;
        }
        let names = match (&rule["names"], &rule["name"]) {
            (serde_json::Value::Array(n), _) => serde_json::Value::Array(n.clone()),
            (_, serde_json::Value::String(n)) => serde_json::json!([n]),
            _ => return Err(bad("no names")),
        };
        let mut out = serde_json::json!({"names": names, "action": action});
        for key in ["args", "errnoRet"] {
            if !rule[key].is_null() {
                out[key] = rule[key].clone();
            }
        }
        syscalls.push(out);
    }
    let mut filter = serde_json::json!({"defaultAction": p["defaultAction"], "syscalls": syscalls});
    if !archs.is_empty() {
        filter["architectures"] = serde_json::Value::Array(archs);
    }
    if !p["defaultErrnoRet"].is_null() {
        filter["defaultErrnoRet"] = p["defaultErrnoRet"].clone();
    }
    Ok(filter)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(add: &[&str], drop: &[&str]) -> Vec<&'static str> {
        let f = SecurityFlags {
            cap_add: add.iter().map(|s| s.to_string()).collect(),
            cap_drop: drop.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        Security::from_flags(&f).unwrap().capabilities()
    }

    #[test]
    fn capabilities_follow_docker_s_add_and_drop_rules() {
        assert_eq!(caps(&[], &[]).len(), DEFAULT_CAPS.len());
        assert!(caps(&["net_admin"], &[]).contains(&"CAP_NET_ADMIN"));
        assert_eq!(caps(&["NET_ADMIN"], &["ALL"]), vec!["CAP_NET_ADMIN"]);
        assert!(!caps(&[], &["CAP_CHOWN"]).contains(&"CAP_CHOWN"));
        assert!(caps(&["ALL"], &["CHOWN"]).len() > DEFAULT_CAPS.len());
        assert!(!caps(&["ALL"], &["CHOWN"]).contains(&"CAP_CHOWN"));
        let f = SecurityFlags { cap_add: vec!["CAP_NOPE".into()], ..Default::default() };
        assert!(Security::from_flags(&f).unwrap_err().to_string().contains("CAP_NOPE"));
    }

    #[test]
    fn the_default_filter_opens_what_a_granted_capability_needs() {
        let denied = |caps: &[&str]| default_filter(caps)["syscalls"][0]["names"].clone();
        assert!(denied(&[]).as_array().unwrap().contains(&"kcmp".into()));
        assert!(!denied(&["CAP_SYS_PTRACE"]).as_array().unwrap().contains(&"kcmp".into()));
        assert!(denied(&["CAP_SYS_ADMIN"]).as_array().unwrap().contains(&"keyctl".into()));
    }

    #[test]
    fn devices_and_cgroup_rules_parse() {
        assert_eq!(parse_device("/dev/null:/dev/n:r").unwrap().container, "/dev/n");
        assert_eq!(parse_device("/dev/null:rw").unwrap().permissions, "rw");
        assert!(parse_device("/dev/nope").is_err());
        assert!(parse_device("dev/null").is_err());
        assert!(parse_device("/dev/null:/x:rwx").is_err());
        assert_eq!(parse_cgroup_rule("c 10:* rwm").unwrap(), serde_json::json!({"allow": true, "type": "c", "major": 10, "access": "rwm"}));
        assert!(parse_cgroup_rule("x 1:2 r").is_err());
        assert!(parse_cgroup_rule("c 1 r").is_err());
    }

    #[test]
    fn docker_profiles_convert_by_capability_and_architecture() {
        let p = serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
            "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]}],
            "syscalls": [
                {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_PTRACE"]}},
                {"names": ["clone"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_SYS_ADMIN"]},
                 "args": [{"index": 0, "value": 2114060288, "op": "SCMP_CMP_MASKED_EQ"}]},
            ]
        });
        let f = profile_filter(&p, &[]).unwrap();
        assert_eq!(f["syscalls"].as_array().unwrap().len(), 2);
        assert_eq!(profile_filter(&p, &["CAP_SYS_PTRACE", "CAP_SYS_ADMIN"]).unwrap()["syscalls"].as_array().unwrap().len(), 2);
        assert!(profile_filter(&serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["x"], "action": "NOPE"}]}), &[]).is_err());
    }
}
