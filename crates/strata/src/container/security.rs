//! What a container may do: its capabilities (`--cap-add`, `--cap-drop`,
//! `--privileged`), `--security-opt` (`no-new-privileges`, `seccomp=`),
//! host devices (`--device`, `--device-cgroup-rule`) and `--group-add`.
//! Flags are checked at create ([`Security::from_flags`]) and become the
//! runtime spec's process and linux sections at start ([`Security::apply`]).
//!
//! Docker's semantics throughout: its default capability set, `ALL` in
//! add or drop, a deny-all device cgroup with the devices asked for allowed,
//! `no-new-privileges` off unless asked, seccomp off for `--privileged`
//! (the filter itself is the `seccomp` module's). The tables are written
//! here: they are the kernel's and Docker's published behaviour, and no
//! crate carries them.

use std::collections::BTreeSet;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

use super::seccomp::read_profile;
pub use super::seccomp::Seccomp;

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
        spec["process"]["capabilities"] = serde_json::json!({"bounding": caps, "effective": caps, "permitted": caps});
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
        match self.seccomp.filter(&caps)? {
            Some(f) => linux["seccomp"] = f,
            None => {
                linux.as_object_mut().map(|l| l.remove("seccomp"));
            }
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
    Ok(Device {
        host: host.into(),
        container: crate::confined::clean_container_path(container),
        permissions: permissions.into(),
    })
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
    fn devices_and_cgroup_rules_parse() {
        assert_eq!(parse_device("/dev/null:/dev/n:r").unwrap().container, "/dev/n");
        assert_eq!(parse_device("/dev/null:rw").unwrap().permissions, "rw");
        assert!(parse_device("/dev/nope").is_err());
        assert!(parse_device("dev/null").is_err());
        assert!(parse_device("/dev/null:/x:rwx").is_err());
        assert_eq!(
            parse_cgroup_rule("c 10:* rwm").unwrap(),
            serde_json::json!({"allow": true, "type": "c", "major": 10, "access": "rwm"})
        );
        assert!(parse_cgroup_rule("x 1:2 r").is_err());
        assert!(parse_cgroup_rule("c 1 r").is_err());
    }
}
