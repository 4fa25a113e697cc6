//! Volumes: data outside every layer. Named volumes are directories under
//! `<root>/volumes/<name>/_data`; bind mounts are host paths; tmpfs mounts
//! are memory. They are bind-mounted into the container, so its writes go
//! straight to the host directory and never into the container layer.
//!
//! A named volume used for the first time gets what the image has at its
//! mount path copied in (as Docker does); a volume any container refers to
//! cannot be removed; removing a container never removes a named volume.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::core::Core;
use crate::error::{Error, IoContext, Result};
use crate::store::{now, VolumeRecord};

/// What a container mounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MountKind {
    /// A named (or anonymous) volume.
    Volume,
    /// A host path.
    Bind,
    /// A tmpfs.
    Tmpfs,
}

/// One mount of a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountSpec {
    /// Volume, bind or tmpfs.
    pub kind: MountKind,
    /// Volume name or host path (empty for tmpfs, and for an anonymous volume until named).
    pub source: String,
    /// Absolute path in the container.
    pub target: String,
    /// Read-only.
    pub readonly: bool,
    /// An anonymous volume (removed by `rm -v`).
    #[serde(default)]
    pub anonymous: bool,
    /// Mount options of a tmpfs (`size=64m`, `mode=1777`, `noexec`, ...).
    #[serde(default)]
    pub options: Vec<String>,
}

fn valid_volume_name(n: &str) -> bool {
    n.len() >= 2
        && n.as_bytes()[0].is_ascii_alphanumeric()
        && n.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

/// A mount target must be absolute; it is cleaned (`..` stops at the
/// container's root, as Docker's) and may not be the root itself.
fn check_target(spec: &str, target: &str) -> Result<String> {
    if !target.starts_with('/') {
        return Err(Error::invalid(format!(
            "invalid mount spec {spec:?}: the container path {target:?} must be absolute"
        )));
    }
    let cleaned = crate::confined::clean_container_path(target);
    if cleaned == "/" {
        return Err(Error::invalid(format!("invalid mount spec {spec:?}: cannot mount over /")));
    }
    Ok(cleaned)
}

/// Parse `-v SOURCE:TARGET[:OPTIONS]` or `-v TARGET` (an anonymous volume).
pub fn parse_volume_flag(spec: &str) -> Result<MountSpec> {
    let bad = |why: &str| Error::invalid(format!("invalid volume specification {spec:?}: {why}"));
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, target, opts) = match parts.as_slice() {
        [t] => ("", *t, ""),
        [s, t] => (*s, *t, ""),
        [s, t, o] => (*s, *t, *o),
        _ => return Err(bad("want SOURCE:TARGET[:OPTIONS]")),
    };
    if parts.len() > 1 && source.is_empty() {
        return Err(bad("empty source"));
    }
    if target.is_empty() {
        return Err(bad("empty container path"));
    }
    let target = check_target(spec, target)?;
    let mut readonly = false;
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" => readonly = true,
            "rw" => readonly = false,
            "z" | "Z" | "rprivate" | "private" | "rshared" | "shared" | "rslave" | "slave" | "nocopy" => {}
            other => return Err(bad(&format!("unknown option {other:?}"))),
        }
    }
    let kind = if source.starts_with('/') { MountKind::Bind } else { MountKind::Volume };
    if kind == MountKind::Volume && !source.is_empty() && !valid_volume_name(source) {
        return Err(bad(&format!("{source:?} is not a valid volume name or an absolute host path")));
    }
    Ok(MountSpec { kind, source: source.into(), target, readonly, anonymous: source.is_empty(), options: Vec::new() })
}

/// Parse `--mount type=volume|bind|tmpfs,source=…,target=…[,readonly]`.
pub fn parse_mount_flag(spec: &str) -> Result<MountSpec> {
    let bad = |why: String| Error::invalid(format!("invalid --mount {spec:?}: {why}"));
    let (mut kind, mut source, mut target, mut readonly) = (None, String::new(), String::new(), false);
    for field in spec.split(',').filter(|f| !f.is_empty()) {
        let (k, v) = field.split_once('=').unwrap_or((field, ""));
        match k {
            "type" => {
                kind = Some(match v {
                    "volume" => MountKind::Volume,
                    "bind" => MountKind::Bind,
                    "tmpfs" => MountKind::Tmpfs,
                    other => return Err(bad(format!("unknown type {other:?}: want volume, bind or tmpfs"))),
                })
            }
            "source" | "src" => source = v.into(),
            "target" | "destination" | "dst" => target = v.into(),
            "readonly" | "ro" => readonly = matches!(v, "" | "true" | "1"),
            other => return Err(bad(format!("unknown key {other:?}"))),
        }
    }
    let kind = kind.unwrap_or(MountKind::Volume);
    if target.is_empty() {
        return Err(bad("no target".into()));
    }
    let target = check_target(spec, &target)?;
    match kind {
        MountKind::Bind if !source.starts_with('/') => return Err(bad("a bind mount needs an absolute source".into())),
        MountKind::Volume if !source.is_empty() && !valid_volume_name(&source) => {
            return Err(bad(format!("{source:?} is not a valid volume name")))
        }
        MountKind::Tmpfs if !source.is_empty() => return Err(bad("tmpfs takes no source".into())),
        _ => {}
    }
    let anonymous = kind == MountKind::Volume && source.is_empty();
    Ok(MountSpec { kind, source, target, readonly, anonymous, options: Vec::new() })
}

/// Parse `--tmpfs PATH[:OPTIONS]` (Docker's: `noexec,nosuid,nodev` unless
/// the options say otherwise; `size=` in Docker's units, `mode=` octal).
pub fn parse_tmpfs_flag(spec: &str) -> Result<MountSpec> {
    let bad = |why: String| Error::invalid(format!("invalid --tmpfs {spec:?}: {why}"));
    let (path, opts) = spec.split_once(':').unwrap_or((spec, ""));
    let target = check_target(spec, path)?;
    let mut options = vec!["noexec".to_string()];
    let mut readonly = false;
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        let (k, v) = o.split_once('=').unwrap_or((o, ""));
        match (k, v) {
            ("size", v) => options
                .push(format!("size={}", crate::units::parse_size("--tmpfs size", v).map_err(|e| bad(e.to_string()))?)),
            ("mode", v) if !v.is_empty() && v.bytes().all(|b| (b'0'..=b'7').contains(&b)) => {
                options.push(format!("mode={v}"))
            }
            ("uid" | "gid" | "nr_inodes" | "nr_blocks", v)
                if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) =>
            {
                options.push(o.to_string())
            }
            ("ro", "") => readonly = true,
            ("rw", "") => readonly = false,
            ("exec", "") => options.retain(|x| x != "noexec"),
            ("noexec" | "nosuid" | "nodev" | "suid" | "dev" | "noatime" | "relatime" | "strictatime", "") => {
                options.push(k.to_string())
            }
            _ => return Err(bad(format!("unknown option {o:?}"))),
        }
    }
    Ok(MountSpec { kind: MountKind::Tmpfs, source: String::new(), target, readonly, anonymous: false, options })
}

/// A volume as `volume ls` and `volume inspect` show it.
#[derive(Debug, Clone, Serialize)]
pub struct VolumeInfo {
    /// Name.
    #[serde(rename = "Name")]
    pub name: String,
    /// Always `local`.
    #[serde(rename = "Driver")]
    pub driver: &'static str,
    /// Where its data is.
    #[serde(rename = "Mountpoint")]
    pub mountpoint: PathBuf,
    /// RFC 3339.
    #[serde(rename = "CreatedAt")]
    pub created_at: String,
    /// Labels.
    #[serde(rename = "Labels")]
    pub labels: BTreeMap<String, String>,
    /// Always `local`.
    #[serde(rename = "Scope")]
    pub scope: &'static str,
    /// Options (none are supported).
    #[serde(rename = "Options")]
    pub options: BTreeMap<String, String>,
}

/// Who uses a volume is the containers' knowledge, not this module's: the
/// service is handed the question (`container::volumes` answers it from
/// the containers' run configurations), so the import arrow runs one way.
pub type UsersOf = fn(&Core, &str) -> Result<Vec<String>>;

/// The volumes service: named and anonymous volumes (`volumes/<name>/_data`,
/// records in the store), their users, seeding from an image, removal.
pub struct Volumes<'c> {
    core: &'c Core,
    users_of: UsersOf,
}

impl<'c> Volumes<'c> {
    /// The service over `core`; `users_of` names the containers that use a volume.
    pub fn new(core: &'c Core, users_of: UsersOf) -> Self {
        Volumes { core, users_of }
    }

    /// Where a volume's data lives.
    pub fn data_dir(&self, name: &str) -> PathBuf {
        self.core.root.join("volumes").join(name).join("_data")
    }

    /// `volume create`: a new (or, if it exists, the same) named volume.
    pub fn create(&self, name: Option<&str>, labels: &[String], opts: &[String]) -> Result<String> {
        if let Some(o) = opts.first() {
            return Err(Error::invalid(format!("volume option {o:?} is not supported by the local driver here")));
        }
        let mut map = BTreeMap::new();
        for l in labels {
            let (k, v) = l.split_once('=').unwrap_or((l, ""));
            map.insert(k.to_string(), v.to_string());
        }
        let (name, anonymous) = match name {
            Some(n) if !valid_volume_name(n) => {
                return Err(Error::invalid(format!(
                    "invalid volume name {n:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                )))
            }
            Some(n) => (n.to_string(), false),
            None => (crate::tmp::random_hex(32)?, true),
        };
        self.ensure(&name, anonymous, &serde_json::to_string(&map).expect("labels serialize"))?;
        Ok(name)
    }

    /// Make sure a volume's record and directory exist.
    pub(crate) fn ensure(&self, name: &str, anonymous: bool, labels: &str) -> Result<()> {
        let data = self.data_dir(name);
        fs::create_dir_all(&data).at(&data)?;
        crate::fault::failpoint!("volume-create");
        self.core.store.insert_volume(&VolumeRecord {
            name: name.to_string(),
            created: now(),
            labels: labels.to_string(),
            anonymous,
            seeded: false,
        })?;
        Ok(())
    }

    fn info(&self, v: &VolumeRecord) -> VolumeInfo {
        VolumeInfo {
            name: v.name.clone(),
            driver: "local",
            mountpoint: self.data_dir(&v.name),
            created_at: crate::image::format_time(v.created),
            labels: serde_json::from_str(&v.labels).unwrap_or_default(),
            scope: "local",
            options: BTreeMap::new(),
        }
    }

    /// `volume ls`.
    pub fn list(&self) -> Result<Vec<VolumeInfo>> {
        Ok(self.core.store.volumes()?.iter().map(|v| self.info(v)).collect())
    }

    /// `volume ls --filter`: dangling (no container uses it), name
    /// (substring), label, driver.
    pub fn list_filtered(&self, filters: &crate::filter::Filters) -> Result<Vec<VolumeInfo>> {
        let mut out = Vec::new();
        for v in self.list()? {
            let dangling = if filters.values("dangling").is_empty() { false } else { self.users(&v.name)?.is_empty() };
            let ok = filters.any("dangling", |d| (d == "true" || d == "1") == dangling)
                && filters.any("name", |n| v.name.contains(n))
                && filters.any("label", |l| crate::filter::label_matches(&v.labels, l))
                && filters.any("driver", |d| d == v.driver);
            if ok {
                out.push(v);
            }
        }
        Ok(out)
    }

    /// `volume inspect`.
    pub fn inspect(&self, name: &str) -> Result<VolumeInfo> {
        let v = self.core.store.volume(name)?.ok_or_else(|| Error::not_found("volume", name))?;
        Ok(self.info(&v))
    }

    /// Containers (by name) that mount a volume.
    pub fn users(&self, name: &str) -> Result<Vec<String>> {
        (self.users_of)(self.core, name)
    }

    /// `volume rm`: refuses a volume any container uses, naming them.
    pub fn remove(&self, name: &str) -> Result<()> {
        // Exclusive: a `run -v NAME:...` holds the lock shared from its check of
        // the volume until its container is recorded, so the users seen here are all.
        self.core.exclusive()?;
        self.core.store.volume(name)?.ok_or_else(|| Error::not_found("volume", name))?;
        let users = self.users(name)?;
        if !users.is_empty() {
            return Err(Error::InUse(format!("remove {name}: volume is in use by container(s) {}", users.join(", "))));
        }
        // Record first: a directory without a record is harmless, a record without its data is not.
        self.core.store.delete_volume(name)?;
        crate::tree::remove(&self.core.root.join("volumes").join(name))
    }

    /// `volume prune`: every volume no container refers to.
    pub fn prune(&self, filters: &crate::filter::Filters) -> Result<(Vec<String>, u64)> {
        let mut removed = Vec::new();
        let mut bytes = 0;
        for v in self.core.store.volumes()? {
            let labels: BTreeMap<String, String> = serde_json::from_str(&v.labels).unwrap_or_default();
            if !filters.any("label", |l| crate::filter::label_matches(&labels, l)) {
                continue;
            }
            if self.users(&v.name)?.is_empty() {
                bytes += crate::tree::usage(&self.data_dir(&v.name))?;
                self.remove(&v.name)?;
                removed.push(v.name);
            }
        }
        Ok((removed, bytes))
    }

    /// Copy what the image has at a volume's mount path into the volume,
    /// on the volume's first use only.
    pub(crate) fn seed(&self, m: &MountSpec, rootfs: &Path) -> Result<()> {
        if m.kind != MountKind::Volume {
            return Ok(());
        }
        let Some(v) = self.core.store.volume(&m.source)? else { return Ok(()) };
        if v.seeded {
            return Ok(());
        }
        let data = self.data_dir(&m.source);
        let empty = fs::read_dir(&data).at(&data)?.next().is_none();
        // The image's directory, resolved inside the container's root. It is
        // copied beside the store and renamed onto the empty data directory,
        // so a command killed midway leaves the volume empty, not half seeded.
        if let Some(src) = crate::confined::Root::open(rootfs)?.resolve(&m.target)? {
            if empty && src.metadata()?.is_dir() {
                let seed = crate::tmp::TempDir::new(&self.core.tmp, "seed")?;
                crate::tree::copy_tree(&src.proc_path(), seed.path())?;
                crate::fault::failpoint!("volume-seed");
                match fs::rename(seed.path(), &data) {
                    Ok(()) => {
                        seed.keep();
                    }
                    // Seeded meanwhile by another container's start: theirs stays.
                    Err(e) if e.raw_os_error() == Some(libc::ENOTEMPTY) || e.raw_os_error() == Some(libc::EEXIST) => {}
                    Err(e) => return Err(e).at(&data),
                }
            }
        }
        self.core.store.mark_seeded(&m.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_flags_parse_like_docker() {
        let m = parse_volume_flag("data:/var/lib/data:ro").unwrap();
        assert_eq!(
            (m.kind, m.source.as_str(), m.target.as_str(), m.readonly),
            (MountKind::Volume, "data", "/var/lib/data", true)
        );
        assert_eq!(parse_volume_flag("/host:/c").unwrap().kind, MountKind::Bind);
        assert!(parse_volume_flag("/anon").unwrap().anonymous);
        for bad in [":x", "data:relative", "data:/x:bogus", "a:/b:ro:c", "bad name:/x", "data:"] {
            assert!(parse_volume_flag(bad).is_err(), "{bad}");
        }
        let m = parse_mount_flag("type=bind,source=/h,target=/c,readonly").unwrap();
        assert_eq!((m.kind, m.readonly), (MountKind::Bind, true));
        assert_eq!(parse_mount_flag("type=tmpfs,target=/t").unwrap().kind, MountKind::Tmpfs);
        for bad in ["type=bind,target=/c", "type=nfs,target=/c", "source=v", "type=volume,target=/c,color=red"] {
            assert!(parse_mount_flag(bad).is_err(), "{bad}");
        }
    }
}
