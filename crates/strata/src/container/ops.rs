//! Container operations on the engine: create, run (attached or under a
//! monitor), stop, kill, wait, rm, ps, logs, diff and commit.

use std::fs::{self, File};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::runtime::{self, Runtime, Stdio};
use super::spec::{self, RunConfig};
use super::Change;
use crate::core::Core;
use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::image::{self, Reference};
use crate::images::Images;
use crate::layers::Layers;
use crate::network::netavark::PortMapping;
use crate::network::{Networks, PortSpec};
use crate::snapshot::{mount, Driver, Mount};
use crate::store::{now, ContainerRecord, ContainerState};
use crate::volume::{MountKind, Volumes};

/// Flags of `create` and `run`.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// `--name`.
    pub name: Option<String>,
    /// `-e` and `--env-file` entries, `KEY=VALUE` or `KEY` (taken from this environment).
    pub env: Vec<String>,
    /// `-w`.
    pub workdir: Option<String>,
    /// `-u`.
    pub user: Option<String>,
    /// `--entrypoint`.
    pub entrypoint: Option<String>,
    /// The command after the image name.
    pub cmd: Vec<String>,
    /// `--hostname`.
    pub hostname: Option<String>,
    /// `--network` (repeatable): a network's name or ID (`bridge`, the
    /// default network, when none is given), or one of `none`, `host`,
    /// `container:NAME`.
    pub networks: Vec<String>,
    /// `--network-alias`: DNS names on user networks besides its name.
    pub network_aliases: Vec<String>,
    /// `--ip`: its address on the (first) network.
    pub ip: Option<String>,
    /// `--mac-address`.
    pub mac_address: Option<String>,
    /// `-p` specs.
    pub publish: Vec<String>,
    /// `-P`: publish every port the image EXPOSEs on a random host port.
    pub publish_all: bool,
    /// `--dns`.
    pub dns: Vec<String>,
    /// `--dns-search`.
    pub dns_search: Vec<String>,
    /// `--add-host NAME:IP`.
    pub add_hosts: Vec<String>,
    /// `--label`/`-l KEY=VALUE`.
    pub labels: Vec<String>,
    /// `--read-only`.
    pub read_only: bool,
    /// `--rm`.
    pub auto_remove: bool,
    /// `--memory`, in bytes.
    pub memory: Option<i64>,
    /// `--cpus`.
    pub cpus: Option<f64>,
    /// `--pids-limit`.
    pub pids_limit: Option<i64>,
    /// `--runtime`: runc, crun, youki or a path; the built-in one when absent.
    pub runtime: Option<String>,
    /// `-t`.
    pub tty: bool,
    /// `-i`: keep standard input open (a detached container's comes from `attach`).
    pub open_stdin: bool,
    /// Capabilities, `--security-opt`, devices, `--group-add`.
    pub security: super::security::SecurityFlags,
    /// `--init`.
    pub init: bool,
    /// `--restart`.
    pub restart: Option<String>,
    /// `--health-*`, `--no-healthcheck`.
    pub health: super::health::HealthFlags,
    /// `--log-driver`.
    pub log_driver: Option<String>,
    /// `--log-opt`s.
    pub log_opts: Vec<String>,
    /// `--stop-signal`.
    pub stop_signal: Option<String>,
    /// `--stop-timeout`, seconds.
    pub stop_timeout: Option<u64>,
    /// `-v` specs.
    pub volumes: Vec<String>,
    /// `--mount` specs.
    pub mounts: Vec<String>,
    /// `--volumes-from CONTAINER[:ro]`.
    pub volumes_from: Vec<String>,
    /// `--tmpfs PATH[:OPTIONS]`.
    pub tmpfs: Vec<String>,
    /// Limits and shared namespaces.
    pub resources: super::resources::ResourceFlags,
}

/// What [`Containers::launch`] did.
pub(super) enum Launch {
    /// The process runs (recorded so).
    Running(Box<Launched>),
    /// The command could not be run there (126/127 and Docker's message);
    /// recorded as exited with that code.
    NotRun(i32, String),
}

/// A container process that runs, a child of this process.
pub(super) struct Launched {
    pub rec: ContainerRecord,
    pub cfg: RunConfig,
    pub pid: i32,
    /// With `-t`: the pty master of its terminal.
    pub master: Option<OwnedFd>,
    /// Forwarding this process's signals to it (`sig_proxy`).
    pub proxy: Option<runtime::SignalProxy>,
    /// Held while it runs: the sockets keeping its published host ports.
    pub held: Vec<OwnedFd>,
}

/// How an attached `run` (or `start -a`) is attached to its caller.
#[derive(Debug, Clone, Copy, Default)]
pub struct Attach {
    /// `-i`: the container reads the caller's standard input (a terminal's keys with `-t`).
    pub interactive: bool,
    /// `--sig-proxy`: signals sent to this process go to the container's (held
    /// until it is known, so none is lost between start and its pid). Process-wide
    /// while the container runs: a front end serving several operations at once
    /// (an HTTP API) leaves it off.
    pub sig_proxy: bool,
}

/// A container as `ps` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ContainerSummary {
    /// Full ID.
    pub id: String,
    /// Name.
    pub name: String,
    /// The image it runs, by the name it was created with if that still names it.
    pub image: String,
    /// The image ID.
    pub image_id: Digest,
    /// The command line.
    pub command: String,
    /// created, running or exited.
    pub state: ContainerState,
    /// Exit code once exited.
    pub exit_code: Option<i64>,
    /// Seconds since the epoch.
    pub created: i64,
    /// When it last started.
    pub started: Option<i64>,
    /// When it last exited.
    pub finished: Option<i64>,
    /// The init process while running.
    pub pid: Option<i64>,
    /// Published ports while running (host ports as chosen).
    pub ports: Vec<PortMapping>,
    /// Running but frozen (`pause`).
    pub paused: bool,
    /// Labels.
    pub labels: std::collections::BTreeMap<String, String>,
    /// Between runs under its restart policy.
    pub restarting: bool,
    /// A running container's health status, when it has a check.
    pub health: Option<String>,
    /// Its restart policy's name (`no`, `always`, ...).
    pub restart_policy: String,
    /// Networks it is on (`none`/`host`/`container:ID` for those modes).
    pub networks: Vec<String>,
    /// Volumes (their names) and bind sources it mounts.
    pub mounts: Vec<String>,
}

const NAME_WORDS: [&str; 16] = [
    "amber", "brisk", "calm", "deft", "eager", "fond", "glad", "hale", "keen", "lucid", "merry", "noble", "proud",
    "quick", "sunny", "vivid",
];
const NAME_NOUNS: [&str; 16] = [
    "basalt", "chalk", "dolomite", "flint", "gneiss", "granite", "jasper", "marble", "obsidian", "onyx", "quartz",
    "schist", "shale", "slate", "tuff", "agate",
];

/// Whether the container's process is still the one running at its
/// recorded pid: alive, not a zombie (exited, not yet collected), and the
/// same process (its start time as recorded) — not another one the kernel
/// has given the pid to since.
fn alive(rec: &ContainerRecord) -> bool {
    let Some(pid) = rec.pid else { return false };
    match &rec.process {
        Some(p) => crate::store::process_running(p),
        // Recorded before processes were (schema 1): the pid is all there is.
        None => fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| s.rfind(')').and_then(|i| s[i + 2..].chars().next()))
            .is_some_and(|state| state != 'Z'),
    }
}

fn valid_name(n: &str) -> bool {
    n.len() >= 2
        && n.as_bytes()[0].is_ascii_alphanumeric()
        && n.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

/// `HostConfig.PidMode` and its kin as Docker writes them.
fn namespace_mode(n: &super::resources::Namespace) -> String {
    match n {
        super::resources::Namespace::Private => String::new(),
        super::resources::Namespace::Host => "host".into(),
        super::resources::Namespace::Container(id) => format!("container:{id}"),
    }
}

/// `HostConfig.SecurityOpt` as Docker lists it.
fn security_opts(s: &super::security::Security) -> Vec<String> {
    let mut out = Vec::new();
    if s.no_new_privileges {
        out.push("no-new-privileges".to_string());
    }
    match &s.seccomp {
        super::security::Seccomp::Unconfined if !s.privileged => out.push("seccomp=unconfined".into()),
        super::security::Seccomp::Profile(p) => out.push(format!("seccomp={p}")),
        _ => {}
    }
    out
}

/// A command line as Docker's `ps` shows it: arguments with a space in
/// single quotes.
fn command_line(args: &[String]) -> String {
    let quoted: Vec<String> = args.iter().map(|a| if a.contains(' ') { format!("'{a}'") } else { a.clone() }).collect();
    quoted.join(" ")
}

/// Validate and complete `-e` entries: `KEY` alone takes this process's value.
fn check_env(entries: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for e in entries {
        let key = e.split('=').next().unwrap_or("");
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(Error::invalid(format!("invalid environment variable: {e:?}")));
        }
        if e.contains('=') {
            out.push(e.clone());
        } else if let Ok(v) = std::env::var(key) {
            out.push(format!("{key}={v}"));
        }
    }
    Ok(out)
}

/// The containers service: records and the lifecycle (create, run, start,
/// exec, kill, stop, wait, remove), logs, inspect, diff and commit.
pub struct Containers<'c> {
    pub(super) core: &'c Core,
}

/// The volumes service as containers see it: a volume is in use while a
/// container's run configuration mounts it.
pub fn volumes(core: &Core) -> Volumes<'_> {
    Volumes::new(core, volume_users)
}

/// Containers (by name) that mount volume `name`.
fn volume_users(core: &Core, name: &str) -> Result<Vec<String>> {
    let mut users = Vec::new();
    for c in core.store.containers()? {
        // A record that cannot be read might use the volume: an error, not "no users".
        let cfg = super::run_config(&c)?;
        if cfg.mounts.iter().any(|m| m.kind == MountKind::Volume && m.source == name) {
            users.push(c.name);
        }
    }
    Ok(users)
}

impl<'c> Containers<'c> {
    /// The service over `core`.
    pub fn new(core: &'c Core) -> Self {
        Containers { core }
    }

    fn images(&self) -> Images<'c> {
        Images::new(self.core)
    }

    fn layers(&self) -> Layers<'c> {
        Layers::new(self.core)
    }

    fn volumes(&self) -> Volumes<'c> {
        volumes(self.core)
    }

    fn networks(&self) -> Networks<'c> {
        Networks::new(self.core)
    }

    /// `--network` flags: the mode recorded in the run configuration
    /// (`none`, `host`, `container:ID`, or the first network's name) and the
    /// networks to attach to.
    fn choose_networks(&self, o: &CreateOptions) -> Result<(String, Vec<crate::store::NetworkRecord>)> {
        let rootless = crate::rootless::current().is_some();
        let wanted: Vec<&str> = if o.networks.is_empty() {
            // A rootless container cannot be on a bridge: pasta connects it (podman's default too).
            vec![if rootless { crate::network::pasta::MODE } else { crate::network::DEFAULT_NETWORK }]
        } else {
            o.networks.iter().map(String::as_str).collect()
        };
        if rootless {
            if let Some(n) = wanted.iter().find(|n| on_networks(n)) {
                return Err(Error::invalid(format!("--network {n}: {}", crate::network::pasta::NO_NETWORKS)));
            }
        }
        if let Some(s) = wanted.iter().find(|n| !on_networks(n)) {
            if wanted.len() > 1 {
                return Err(Error::invalid(format!("--network {s} cannot be combined with other networks")));
            }
            if o.ip.is_some() || o.mac_address.is_some() || !o.network_aliases.is_empty() {
                return Err(Error::invalid(format!(
                    "--ip, --mac-address and --network-alias need a network, not --network {s}"
                )));
            }
            if let Some(other) = s.strip_prefix("container:") {
                return Ok((format!("container:{}", self.get(other)?.id), Vec::new()));
            }
            return Ok((s.to_string(), Vec::new()));
        }
        let mut nets = Vec::new();
        for n in wanted {
            let rec = self.networks().get(n)?;
            if nets.iter().any(|x: &crate::store::NetworkRecord| x.name == rec.name) {
                return Err(Error::invalid(format!("network {} given twice", rec.name)));
            }
            nets.push(rec);
        }
        Ok((nets[0].name.clone(), nets))
    }

    /// Where a container's network comes from as it starts.
    fn network_place(&self, rec: &ContainerRecord, cfg: &RunConfig) -> Result<NetworkPlace> {
        Ok(match cfg.network.as_str() {
            "host" => NetworkPlace::Host,
            "none" => NetworkPlace::Loopback(crate::network::namespace::LoopbackNamespace::new()?),
            crate::network::pasta::MODE => {
                if crate::rootless::current().is_none() {
                    return Err(Error::invalid("--network pasta is for rootless mode; root's containers use networks"));
                }
                // Ports are chosen as for a network, then let go for pasta to bind.
                let (mappings, reservation) = crate::network::ports::reserve(&cfg.ports)?;
                drop(reservation);
                let setup = self.networks().setup_user_mode(
                    &crate::network::Attachee { id: &rec.id, name: &rec.name },
                    mappings,
                    None,
                )?;
                NetworkPlace::Pinned { setup, _ports: crate::network::ports::Reservation::none() }
            }
            mode => match mode.strip_prefix("container:") {
                Some(other) => {
                    let o = self.get(other)?;
                    if o.state != ContainerState::Running {
                        return Err(Error::invalid(format!(
                            "--network container:{}: that container is not running",
                            o.name
                        )));
                    }
                    let path = match self.core.store.network_setup(&o.id)? {
                        Some(s) => PathBuf::from(s.netns),
                        None => PathBuf::from(format!("/proc/{}/ns/net", o.pid.unwrap_or(0))),
                    };
                    NetworkPlace::Joined(path)
                }
                None => {
                    let (mappings, reservation) = crate::network::ports::reserve(&cfg.ports)?;
                    let setup = self.networks().setup(
                        &crate::network::Attachee { id: &rec.id, name: &rec.name },
                        mappings,
                        &cfg.dns,
                        None,
                    )?;
                    NetworkPlace::Pinned { setup, _ports: reservation }
                }
            },
        })
    }
}

/// Whether a `--network` mode puts a container on networks (a name), not
/// in a namespace of another kind: `none`, `host`, `pasta`, `container:ID`.
fn on_networks(mode: &str) -> bool {
    !["none", "host", crate::network::pasta::MODE].contains(&mode) && !mode.starts_with("container:")
}

/// What a rootless container cannot have: more than the user holds on the
/// host (`--privileged`), or limits, which need cgroups the user may write
/// (cgroup v2 with delegation; libcontainer then runs without any cgroup).
fn refuse_rootless(run: &RunConfig) -> Result<()> {
    if run.security.privileged {
        return Err(Error::invalid(
            "--privileged is not available rootless: a rootless container cannot hold more than its user does on the host",
        ));
    }
    let r = &run.resources;
    let limits = [
        ("--memory", run.memory.is_some()),
        ("--cpus", run.cpu_quota.is_some()),
        ("--pids-limit", run.pids_limit.is_some()),
        ("--memory-swap", r.memory_swap.is_some()),
        ("--memory-reservation", r.memory_reservation.is_some()),
        ("--cpu-shares", r.cpu_shares.is_some()),
        ("--cpuset-cpus", r.cpuset_cpus.is_some()),
    ];
    let given: Vec<&str> = limits.iter().filter(|(_, set)| *set).map(|(f, _)| *f).collect();
    if !given.is_empty() {
        return Err(no_cgroup(&format!("{}: resource limits are", given.join(", "))));
    }
    Ok(())
}

/// A rootless user's containers have no cgroup of their own to freeze or
/// limit: `command` (pause, update) is refused, saying why.
pub(super) fn refuse_cgroups_rootless(command: &str) -> Result<()> {
    match crate::rootless::current() {
        Some(_) => Err(no_cgroup(&format!("{command} is"))),
        None => Ok(()),
    }
}

/// "`subject` not available rootless", and why.
fn no_cgroup(subject: &str) -> Error {
    Error::invalid(format!(
        "{subject} not available rootless: no cgroup is delegated to this user \
         (that needs cgroup v2 with delegation; this host's cgroups are {})",
        crate::rootless::cgroup_layout()
    ))
}

/// A starting container's network namespace and what keeps it.
enum NetworkPlace {
    /// The host's.
    Host,
    /// Its own, loopback only.
    Loopback(crate::network::namespace::LoopbackNamespace),
    /// Its own with interfaces on networks; the host ports held while it runs.
    Pinned { setup: crate::network::Setup, _ports: crate::network::ports::Reservation },
    /// Another container's.
    Joined(PathBuf),
}

impl NetworkPlace {
    /// What must stay open while the container runs (its namespace is
    /// joined by then): the sockets holding its host ports.
    fn into_held(self) -> Vec<OwnedFd> {
        match self {
            NetworkPlace::Pinned { _ports, .. } => _ports.into_sockets(),
            _ => Vec::new(),
        }
    }

    fn path(&self) -> Option<PathBuf> {
        match self {
            NetworkPlace::Host => None,
            NetworkPlace::Loopback(n) => Some(n.path()),
            NetworkPlace::Pinned { setup, .. } => Some(setup.netns.clone()),
            NetworkPlace::Joined(p) => Some(p.clone()),
        }
    }

    /// What the container's /etc/hosts and /etc/resolv.conf say.
    fn view(&self) -> spec::NetworkView {
        match self {
            NetworkPlace::Pinned { setup, .. } => spec::NetworkView::of(setup),
            _ => spec::NetworkView::default(),
        }
    }
}

impl Containers<'_> {
    pub(super) fn container_dir(&self, id: &str) -> PathBuf {
        self.core.root.join("containers").join(id)
    }

    pub(super) fn runtime_of(&self, rec: &ContainerRecord) -> Result<Box<dyn Runtime>> {
        let cfg = super::run_config(rec)?;
        runtime::for_name(cfg.runtime.as_deref(), &self.core.root.join("runtime"))
    }

    /// A container by name, ID or ID prefix, its state refreshed.
    pub fn get(&self, name: &str) -> Result<ContainerRecord> {
        let rec = self.core.store.find_container(name)?.ok_or_else(|| Error::not_found("container", name))?;
        self.refresh(rec)
    }

    /// A running container whose process is gone (its watcher died too) is exited.
    fn refresh(&self, mut rec: ContainerRecord) -> Result<ContainerRecord> {
        // Its waiter lives: it is recording the exit and cleaning up right now.
        let waited = |r: &ContainerRecord| r.waiter.as_deref().is_some_and(crate::store::owner_alive);
        if rec.state == ContainerState::Running && !alive(&rec) && !waited(&rec) {
            std::thread::sleep(Duration::from_millis(100));
            if let Some(again) = self.core.store.find_container(&rec.id)? {
                rec = again;
            }
            if rec.state == ContainerState::Running && !alive(&rec) && !waited(&rec) {
                rec.state = ContainerState::Exited;
                rec.exit_code = rec.exit_code.or(Some(255));
                rec.finished = Some(now());
                rec.pid = None;
                rec.process = None;
                self.core.store.update_container(&rec)?;
                self.release_container(&rec.id);
            }
        }
        Ok(rec)
    }

    /// `create`: a container record and its writable layer; nothing runs.
    pub fn create(&self, image_name: &str, o: &CreateOptions) -> Result<ContainerRecord> {
        let env = check_env(&o.env)?;
        if let Some(u) = &o.user {
            spec::check_user_syntax(u)?;
        }
        if let Some(n) = &o.name {
            if !valid_name(n) {
                return Err(Error::invalid(format!(
                    "invalid container name {n:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                )));
            }
        }
        if let Some(w) = &o.workdir {
            if !w.starts_with('/') {
                return Err(Error::invalid(format!(
                    "the working directory {w:?} is invalid, it needs to be an absolute path"
                )));
            }
        }
        let image_id = self.core.resolve_image(image_name)?;
        let (raw_config, cfg) = self.core.config_of(&image_id)?;
        let os = cfg.os().to_string();
        if os != "linux" {
            return Err(Error::invalid(format!(
                "image {image_name} is for {os}/{}: strata runs linux images only",
                cfg.architecture()
            )));
        }
        let ic = cfg.config().clone().unwrap_or_default();
        let mut mounts = Vec::new();
        for v in &o.volumes {
            mounts.push(crate::volume::parse_volume_flag(v)?);
        }
        for m in &o.mounts {
            mounts.push(crate::volume::parse_mount_flag(m)?);
        }
        for t in &o.tmpfs {
            mounts.push(crate::volume::parse_tmpfs_flag(t)?);
        }
        for from in &o.volumes_from {
            let (name, mode) = from.split_once(':').unwrap_or((from, ""));
            if !matches!(mode, "" | "ro" | "rw") {
                return Err(Error::invalid(format!("invalid --volumes-from mode {mode:?} in {from:?}: want ro or rw")));
            }
            let other = self.get(name)?;
            let ocfg = super::run_config(&other)?;
            for mut m in ocfg.mounts {
                m.target = crate::confined::clean_container_path(&m.target);
                if mode == "ro" {
                    m.readonly = true;
                } else if mode == "rw" {
                    m.readonly = false;
                }
                m.anonymous = false;
                mounts.push(m);
            }
        }
        for m in &mounts {
            if m.kind == crate::volume::MountKind::Bind && !Path::new(&m.source).exists() {
                return Err(Error::invalid(format!(
                    "invalid mount config: bind source path does not exist: {}",
                    m.source
                )));
            }
        }
        for path in ic.volumes().clone().unwrap_or_default() {
            // An image's VOLUME names a place in the container, `..` and all: cleaned like a -v target.
            let path = crate::confined::clean_container_path(&path);
            if path == "/" {
                return Err(Error::invalid(format!("image {image_name}: VOLUME / cannot be mounted")));
            }
            if !mounts.iter().any(|m| m.target == path) {
                mounts.push(crate::volume::MountSpec {
                    kind: crate::volume::MountKind::Volume,
                    source: String::new(),
                    target: path,
                    readonly: false,
                    anonymous: true,
                    options: Vec::new(),
                });
            }
        }
        for m in mounts.iter_mut().filter(|m| m.kind == crate::volume::MountKind::Volume && m.source.is_empty()) {
            m.source = crate::tmp::random_hex(32)?;
        }
        let mut seen = std::collections::HashSet::new();
        for m in &mounts {
            if !seen.insert(m.target.clone()) {
                return Err(Error::invalid(format!("duplicate mount point: {}", m.target)));
            }
        }
        let (network, attach_to) = self.choose_networks(o)?;
        let mut ports = Vec::new();
        for p in &o.publish {
            ports.push(crate::network::ports::parse(p)?);
        }
        if o.publish_all {
            for e in ic.exposed_ports().clone().unwrap_or_default() {
                let (port, proto) = e.split_once('/').unwrap_or((&e, "tcp"));
                let spec = crate::network::ports::parse(&format!("{port}/{proto}"))
                    .map_err(|err| Error::invalid(format!("image {image_name}: EXPOSE {e}: {err}")))?;
                if !ports
                    .iter()
                    .any(|p: &PortSpec| p.container_port == spec.container_port && p.protocol == spec.protocol)
                {
                    ports.push(spec);
                }
            }
        }
        if !ports.is_empty() && attach_to.is_empty() && network != crate::network::pasta::MODE {
            return Err(Error::invalid(format!(
                "conflicting options: ports cannot be published with --network {network}"
            )));
        }
        // A host port something holds now is refused before anything is made.
        let fixed: Vec<PortSpec> = ports.iter().filter(|p| p.host_port != 0).cloned().collect();
        drop(crate::network::ports::reserve(&fixed)?);
        for d in &o.dns {
            d.parse::<std::net::IpAddr>()
                .map_err(|_| Error::invalid(format!("invalid --dns {d:?}: want an IP address")))?;
        }
        spec::check_add_hosts(&o.add_hosts)?;
        let mut args: Vec<String> = match &o.entrypoint {
            Some(e) if e.is_empty() => Vec::new(),
            Some(e) => vec![e.clone()],
            None => ic.entrypoint().clone().unwrap_or_default(),
        };
        let entrypoint_len = args.len();
        if !o.cmd.is_empty() {
            args.extend(o.cmd.iter().cloned());
        } else if o.entrypoint.is_none() {
            args.extend(ic.cmd().clone().unwrap_or_default());
        }
        if args.is_empty() {
            return Err(Error::invalid("no command specified"));
        }
        let mut merged: Vec<String> = ic.env().clone().unwrap_or_default();
        for e in env {
            let key = e.split('=').next().unwrap_or("").to_string();
            merged.retain(|m| m.split('=').next() != Some(key.as_str()));
            merged.push(e);
        }
        if !merged.iter().any(|e| e.starts_with("PATH=")) {
            merged.insert(0, spec::DEFAULT_PATH.to_string());
        }
        let id = crate::tmp::random_hex(32)?;
        let name = match &o.name {
            Some(n) => n.clone(),
            None => {
                let b = hex::decode(&id[..4]).unwrap_or_default();
                format!("{}_{}_{}", NAME_WORDS[b[0] as usize % 16], NAME_NOUNS[b[1] as usize % 16], &id[..4])
            }
        };
        let resources = super::resources::Resources::from_flags(&o.resources, &network, &|n| Ok(self.get(n)?.id))?;
        let run = RunConfig {
            args,
            entrypoint_len,
            image: image_name.to_string(),
            env: merged,
            workdir: o
                .workdir
                .clone()
                .or_else(|| ic.working_dir().clone())
                .filter(|w| !w.is_empty())
                .unwrap_or_else(|| "/".into()),
            user: o.user.clone().or_else(|| ic.user().clone()).unwrap_or_default(),
            hostname: o.hostname.clone().unwrap_or_else(|| id[..12].to_string()),
            network,
            read_only: o.read_only,
            auto_remove: o.auto_remove,
            memory: o.memory,
            cpu_quota: o.cpus.map(|c| (c * 100_000.0) as i64),
            pids_limit: o.pids_limit.filter(|p| *p > 0),
            runtime: o.runtime.clone().filter(|r| r != "builtin"),
            tty: o.tty,
            open_stdin: o.open_stdin,
            mounts,
            ports,
            dns: o.dns.clone(),
            dns_search: o.dns_search.clone(),
            add_hosts: o.add_hosts.clone(),
            labels: {
                let mut l: std::collections::BTreeMap<String, String> =
                    ic.labels().clone().unwrap_or_default().into_iter().collect();
                for kv in &o.labels {
                    let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                    l.insert(k.to_string(), v.to_string());
                }
                l
            },
            stop_signal: match o.stop_signal.clone().or_else(|| ic.stop_signal().clone()) {
                Some(s) => {
                    super::signal::parse(&s)
                        .map_err(|_| Error::invalid(format!("invalid stop signal {s:?}: want a name or number")))?;
                    Some(s)
                }
                None => None,
            },
            stop_timeout: o.stop_timeout,
            security: super::security::Security::from_flags(&o.security)?,
            resources,
            init: o.init,
            restart: o.restart.as_deref().unwrap_or("no").parse()?,
            health: super::health::Check::resolve(&raw_config["config"]["Healthcheck"], &o.health)?,
            log: super::logs::LogConfig::from_flags(o.log_driver.as_deref(), &o.log_opts)?,
        };
        if crate::rootless::current().is_some() {
            refuse_rootless(&run)?;
        }
        if run.auto_remove && run.restart != super::restart::Policy::default() {
            return Err(Error::invalid("conflicting options: --restart and --rm"));
        }
        if run.init {
            spec::check_init()?;
        }
        if run.tty && run.runtime.is_some() {
            return Err(Error::invalid("-t is supported with the built-in runtime only"));
        }
        runtime::for_name(run.runtime.as_deref(), &self.core.root.join("runtime"))?;
        let mut rec = ContainerRecord {
            id: id.clone(),
            name,
            image_id: image_id.clone(),
            created: now(),
            state: ContainerState::Incomplete,
            pid: None,
            exit_code: None,
            started: None,
            finished: None,
            config: serde_json::to_string(&run).expect("config serializes"),
            process: None,
            waiter: None,
        };
        self.core.store.insert_container(&rec)?;
        for (i, n) in attach_to.iter().enumerate() {
            let ip = if i == 0 { o.ip.as_deref() } else { None };
            let mac = if i == 0 { o.mac_address.as_deref() } else { None };
            if let Err(e) = self.networks().attach(&id, n, ip, mac, &o.network_aliases) {
                let _ = self.core.store.delete_container(&id);
                return Err(e);
            }
        }
        for m in run.mounts.iter().filter(|m| m.kind == crate::volume::MountKind::Volume) {
            if let Err(e) = self.volumes().ensure(&m.source, m.anonymous, "{}") {
                let _ = self.core.store.delete_container(&id);
                return Err(e);
            }
        }
        let dir = self.container_dir(&id);
        let made = (|| -> Result<()> {
            fs::create_dir(&dir).at(&dir)?;
            fs::create_dir(dir.join("rootfs")).at(&dir)?;
            match self.core.driver() {
                Driver::Overlay => {
                    fs::create_dir(dir.join("upper")).at(&dir)?;
                    fs::create_dir(dir.join("work")).at(&dir)?;
                    let points: Vec<(&str, bool)> = run
                        .mounts
                        .iter()
                        .map(|m| {
                            let is_file = m.kind == crate::volume::MountKind::Bind && Path::new(&m.source).is_file();
                            (m.target.as_str(), is_file)
                        })
                        .collect();
                    crate::layer::changes::make_init_dir(
                        &dir.join("init"),
                        &points,
                        &self.layers().lowers(&image_id)?,
                    )?;
                }
                Driver::Copy => {
                    let lowers = self.layers().lowers(&image_id)?;
                    if let Some(top) = lowers.first() {
                        crate::tree::copy_tree(top, &dir.join("rootfs"))?;
                    }
                }
            }
            crate::fault::failpoint!("container-create");
            Ok(())
        })();
        if let Err(e) = made {
            let _ = crate::tree::remove(&dir);
            let _ = self.core.store.delete_container(&id);
            return Err(e);
        }
        rec.state = ContainerState::Created;
        self.core.store.update_container(&rec)?;
        crate::events::record(self.core, "container", "create", &rec.id, &[("name", &rec.name), ("image", image_name)]);
        Ok(rec)
    }

    /// Keep a changed run configuration in the record.
    pub(super) fn set_run_config(&self, rec: &ContainerRecord, cfg: &RunConfig) -> Result<()> {
        self.core.store.set_container_config(&rec.id, &serde_json::to_string(cfg).expect("config serializes"))
    }

    /// A container's root directory (its overlay mount point, or the full copy).
    pub(super) fn rootfs_of(&self, id: &str) -> PathBuf {
        self.container_dir(id).join("rootfs")
    }

    /// The mounts that make a container's root (none with the copy driver).
    pub(super) fn rootfs_mounts(&self, rec: &ContainerRecord) -> Result<Vec<Mount>> {
        let dir = self.container_dir(&rec.id);
        match self.core.driver() {
            Driver::Copy => Ok(Vec::new()),
            Driver::Overlay => {
                let layers = self.layers().lowers(&rec.image_id)?;
                let overlay = crate::snapshot::Overlay::new(&self.core.tmp);
                let mut lowers = vec![dir.join("init")];
                lowers.extend(overlay.lowers(&layers, 1)?);
                Ok(vec![Mount::overlay(lowers, Some((dir.join("upper"), dir.join("work"))), dir.join("rootfs"))])
            }
        }
    }

    /// Unmount a container's root and forget its runtime state.
    pub(super) fn release_container(&self, id: &str) {
        if let Err(e) = self.networks().teardown(id) {
            tracing::warn!("tearing down the network of {id}: {e}");
        }
        if let Ok(Some(rec)) = self.core.store.find_container(id) {
            if let Ok(rt) = self.runtime_of(&rec) {
                let _ = rt.delete(id);
            }
        }
        let rootfs = self.container_dir(id).join("rootfs");
        if mount::is_mounted(&rootfs) {
            let _ = mount::unmount(&rootfs);
        }
    }

    /// Run a created (or exited) container in this process until it exits;
    /// returns its exit code (126/127 when the command cannot be run).
    /// Errors are strata's own failures (Docker's 125).
    pub fn run(&self, name: &str, stdio: Stdio, attach: Attach) -> Result<(i32, Option<String>)> {
        self.run_with(name, stdio, attach, None)
    }

    /// Run a container attached to the caller through a waiter process
    /// (`exe global_args __attached ID`) that holds the container as its
    /// child and records its exit, so that the code survives the caller
    /// being killed (Docker's daemon and podman's conmon do the same). The
    /// container reads and writes `stdio` directly; the caller passes its
    /// signals on (`attach.sig_proxy`) once the waiter reports the pid.
    /// Returns the container's exit code (the waiter's: 125 when strata
    /// itself failed, its message already on `stdio.stderr`).
    pub fn run_attached(
        &self,
        name: &str,
        stdio: Stdio,
        attach: Attach,
        exe: &Path,
        global_args: &[String],
    ) -> Result<i32> {
        use std::io::BufRead;
        use std::os::fd::AsRawFd;
        use std::os::unix::process::{CommandExt, ExitStatusExt};
        // The waiter refuses a running container, as an attached run does.
        let rec = self.get(name)?;
        let (pid_r, pid_w) = io::pipe().map_err(|e| Error::Runtime(format!("a pipe for {}'s pid: {e}", rec.name)))?;
        let mut cmd = std::process::Command::new(exe);
        cmd.args(global_args).arg("__attached").arg(&rec.id);
        if attach.interactive {
            cmd.arg("--interactive");
        }
        cmd.stdin(stdio.stdin).stdout(stdio.stdout).stderr(stdio.stderr);
        let w = pid_w.as_raw_fd();
        // SAFETY: dup2 and fcntl are async-signal-safe; the waiter finds the
        // pipe at fd 3 (dup2 onto itself would keep close-on-exec).
        unsafe {
            cmd.pre_exec(move || {
                let r = if w == 3 { libc::fcntl(3, libc::F_SETFD, 0) } else { libc::dup2(w, 3) };
                if r < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(())
                }
            });
        }
        // The waiter takes the store lock; this process only waits.
        self.core.unlock();
        let proxy = attach.sig_proxy.then(runtime::SignalProxy::install);
        let mut child = cmd.spawn().at(exe)?;
        drop(pid_w);
        let mut line = String::new();
        let _ = io::BufReader::new(pid_r).read_line(&mut line);
        if let (Some(p), Ok(pid)) = (&proxy, line.trim().parse::<i32>()) {
            p.forward_to(pid);
        }
        let status = loop {
            match child.wait() {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => break r.at(exe)?,
            }
        };
        drop(proxy);
        match (status.code(), status.signal()) {
            (Some(code), _) => Ok(code),
            (None, sig) => Err(Error::Runtime(format!(
                "the process waiting on container {} was killed (signal {}); `strata wait {}` gives its exit code",
                rec.name,
                sig.unwrap_or(0),
                rec.name
            ))),
        }
    }

    /// The waiter's side of [`Containers::run_attached`]: run the container
    /// with this process's standard streams, the pid written to `started`
    /// once it runs.
    pub fn run_for_caller(&self, name: &str, attach: Attach, started: File) -> Result<(i32, Option<String>)> {
        runtime::shield_signals();
        let stdio = inherit_stdio()?;
        self.run_with(name, stdio, Attach { sig_proxy: false, ..attach }, Some(started))
    }

    /// [`Containers::run`], the pid written to `started` once it runs.
    fn run_with(
        &self,
        name: &str,
        stdio: Stdio,
        attach: Attach,
        started: Option<File>,
    ) -> Result<(i32, Option<String>)> {
        let l = match self.launch(name, stdio, attach.sig_proxy, started)? {
            Launch::Running(l) => l,
            Launch::NotRun(code, msg) => return Ok((code, Some(msg))),
        };
        let input = if attach.interactive { super::tty::Input::Caller } else { super::tty::Input::None };
        let terminal = l.master.map(|m| super::tty::Attached::start(m, input)).transpose()?;
        let code = runtime::wait(l.pid)?;
        drop(l.proxy);
        if let Some(t) = terminal {
            t.finish();
        }
        self.finish_run(&l.rec, &l.cfg, code)?;
        Ok((code, None))
    }

    /// Prepare and start a container's process with `stdio`, and record it
    /// running (the store unlocked from then on: other commands must not
    /// wait for this one while it runs). With `sig_proxy`, signals to this
    /// process go to the container's from the start (held until its pid is known).
    pub(super) fn launch(
        &self,
        name: &str,
        mut stdio: Stdio,
        sig_proxy: bool,
        started: Option<File>,
    ) -> Result<Launch> {
        let mut rec = self.get(name)?;
        if rec.state == ContainerState::Running {
            return Err(Error::InUse(format!("container {} is already running", rec.name)));
        }
        let cfg = super::run_config(&rec)?;
        let dir = self.container_dir(&rec.id);
        let rootfs = dir.join("rootfs");
        let mounts = self.rootfs_mounts(&rec)?;
        mount::mount_all(&mounts)?;
        for m in &cfg.mounts {
            if let Err(e) = self.volumes().seed(m, &rootfs) {
                self.release_container(&rec.id);
                return Err(e);
            }
        }
        // Held until the container exits: its namespace, the host ports it publishes.
        let place = match self.network_place(&rec, &cfg) {
            Ok(p) => p,
            Err(e) => {
                self.release_container(&rec.id);
                self.finish_auto_remove(&rec, &cfg);
                return Err(e);
            }
        };
        let prepared = (|| -> Result<std::result::Result<PathBuf, (i32, String)>> {
            let root = crate::confined::Root::open(&rootfs)?;
            let mut user = spec::resolve_user(&cfg.user, &root)?;
            for g in &cfg.security.group_add {
                user.additional_gids.push(spec::resolve_group(g, &root)?);
            }
            let targets: Vec<&str> = cfg.mounts.iter().map(|m| m.target.as_str()).collect();
            if let Err(failure) = spec::check_command(&cfg.args, &cfg.env, &root, &cfg.workdir, &targets) {
                return Ok(Err(failure));
            }
            spec::write_etc_files(&dir, &cfg, &place.view())?;
            let volumes: Vec<(crate::volume::MountSpec, PathBuf)> =
                cfg.mounts.iter().map(|m| (m.clone(), self.mount_source(m))).collect();
            let ns_path = place.path();
            let pid_of = |id: &str| -> Result<i64> {
                let other = self.get(id)?;
                other.pid.filter(|_| other.state == ContainerState::Running).ok_or_else(|| {
                    Error::InUse(format!(
                        "container {} shares the namespaces of {}, which is not running",
                        rec.name, other.name
                    ))
                })
            };
            let spec = spec::build_spec(&rec.id, &cfg, &user, &rootfs, &dir, &volumes, ns_path.as_deref(), &pid_of)?;
            let path = dir.join("config.json");
            fs::write(&path, serde_json::to_vec(&spec).expect("spec serializes")).at(&path)?;
            crate::fault::failpoint!("container-start");
            Ok(Ok(dir.clone()))
        })();
        let bundle = match prepared {
            Ok(Ok(b)) => b,
            Ok(Err((code, msg))) => {
                self.release_container(&rec.id);
                rec.state = ContainerState::Exited;
                rec.exit_code = Some(code as i64);
                rec.finished = Some(now());
                self.core.store.update_container(&rec)?;
                self.finish_auto_remove(&rec, &cfg);
                return Ok(Launch::NotRun(code, msg));
            }
            Err(e) => {
                self.release_container(&rec.id);
                self.finish_auto_remove(&rec, &cfg);
                return Err(e);
            }
        };
        let console = if cfg.tty { Some(super::tty::ConsoleSocket::new(&rec.id)?) } else { None };
        stdio.console_socket = console.as_ref().map(|c| c.path().to_path_buf());
        let proxy = sig_proxy.then(runtime::SignalProxy::install);
        let pid = match self.runtime_of(&rec).and_then(|rt| rt.start(&rec.id, &bundle, stdio)) {
            Ok(pid) => {
                if let Some(p) = &proxy {
                    p.forward_to(pid);
                }
                pid
            }
            Err(e) => {
                self.release_container(&rec.id);
                // `--rm` means no record is left, however the start went.
                self.finish_auto_remove(&rec, &cfg);
                return Err(e);
            }
        };
        if let Some(mut f) = started {
            use std::io::Write;
            let _ = writeln!(f, "{pid}");
        }
        let master = console.as_ref().map(|c| c.receive_master()).transpose()?;
        rec.state = ContainerState::Running;
        rec.pid = Some(pid as i64);
        rec.process = crate::store::process_owner(pid as u32);
        rec.waiter = Some(crate::store::this_owner());
        rec.started = Some(now());
        rec.exit_code = None;
        rec.finished = None;
        self.core.store.update_container(&rec)?;
        crate::events::record(self.core, "container", "start", &rec.id, &[("name", &rec.name)]);
        self.core.unlock();
        Ok(Launch::Running(Box::new(Launched { rec, cfg, pid, master, proxy, held: place.into_held() })))
    }

    /// After a launched container's process exited with `code`: record it,
    /// release what it held, remove it if `--rm`.
    pub(super) fn finish_run(&self, rec: &ContainerRecord, cfg: &RunConfig, code: i32) -> Result<()> {
        crate::events::record(
            self.core,
            "container",
            "die",
            &rec.id,
            &[("name", &rec.name), ("exitCode", &code.to_string())],
        );
        // The exit code first: a command that looks while the network is torn
        // down finds the process gone and records this code, not an unknown one.
        if let Some(mut now_rec) = self.core.store.find_container(&rec.id)? {
            now_rec.exit_code = Some(code as i64);
            now_rec.finished = Some(now());
            self.core.store.update_container(&now_rec)?;
        }
        self.release_container(&rec.id);
        if let Some(mut now_rec) = self.core.store.find_container(&rec.id)? {
            now_rec.state = ContainerState::Exited;
            now_rec.pid = None;
            now_rec.process = None;
            // The waiter stays recorded: who follows the log waits for it to be
            // gone (it writes the last lines after this record).
            now_rec.exit_code = Some(code as i64);
            now_rec.finished = Some(now());
            self.core.store.update_container(&now_rec)?;
        }
        self.finish_auto_remove(rec, cfg);
        Ok(())
    }

    fn finish_auto_remove(&self, rec: &ContainerRecord, cfg: &RunConfig) {
        if cfg.auto_remove {
            if let Err(e) = self.remove(&rec.id, true) {
                tracing::warn!("removing container {}: {e}", rec.name);
            }
        }
    }

    /// `exec`: run another command in a running container and wait for it;
    /// its exit code (126/127 when it cannot be run).
    pub fn exec(
        &self,
        name: &str,
        args: &[String],
        env: &[String],
        workdir: Option<&str>,
        user: Option<&str>,
        mut stdio: Stdio,
        tty: Option<bool>,
    ) -> Result<(i32, Option<String>)> {
        let (rec, process) = match self.exec_process(name, args, env, workdir, user)? {
            Ok(p) => p,
            Err((code, msg)) => return Ok((code, Some(msg))),
        };
        self.core.unlock();
        // tty: None = no terminal; Some(interactive) = a terminal, forwarding stdin when interactive.
        let console = if tty.is_some() { Some(super::tty::ConsoleSocket::new(&rec.id)?) } else { None };
        stdio.console_socket = console.as_ref().map(|c| c.path().to_path_buf());
        let pid = self.runtime_of(&rec)?.exec(&rec.id, &process, stdio)?;
        let input = if tty == Some(true) { super::tty::Input::Caller } else { super::tty::Input::None };
        let terminal = console.as_ref().map(|c| super::tty::Attached::start(c.receive_master()?, input)).transpose()?;
        let code = runtime::wait(pid)?;
        if let Some(t) = terminal {
            t.finish();
        }
        Ok((code, None))
    }

    /// The process `exec` runs in a running container, or the 126/127
    /// failure of a command that cannot run there.
    #[allow(clippy::type_complexity)]
    pub(super) fn exec_process(
        &self,
        name: &str,
        args: &[String],
        env: &[String],
        workdir: Option<&str>,
        user: Option<&str>,
    ) -> Result<std::result::Result<(ContainerRecord, runtime::ExecProcess), (i32, String)>> {
        let rec = self.get(name)?;
        if rec.state != ContainerState::Running {
            return Err(Error::InUse(format!("container {} is not running", rec.name)));
        }
        let cfg = super::run_config(&rec)?;
        let extra = check_env(env)?;
        if let Some(u) = user {
            spec::check_user_syntax(u)?;
        }
        let rootfs = self.container_dir(&rec.id).join("rootfs");
        let mut env = cfg.env.clone();
        for e in extra {
            let key = e.split('=').next().unwrap_or("").to_string();
            env.retain(|m| m.split('=').next() != Some(key.as_str()));
            env.push(e);
        }
        let cwd = workdir.map(String::from).unwrap_or_else(|| cfg.workdir.clone());
        let root = crate::confined::Root::open(&rootfs)?;
        let u = spec::resolve_user(user.unwrap_or(&cfg.user), &root)?;
        let targets: Vec<&str> = cfg.mounts.iter().map(|m| m.target.as_str()).collect();
        if let Err((code, msg)) = spec::check_command(args, &env, &root, &cwd, &targets) {
            return Ok(Err((code, msg)));
        }
        let mut gids = u.additional_gids;
        for g in &cfg.security.group_add {
            gids.push(spec::resolve_group(g, &root)?);
        }
        let process = runtime::ExecProcess {
            args: args.to_vec(),
            env,
            cwd,
            user: (u.uid, u.gid, gids),
            capabilities: cfg.security.capabilities(),
            no_new_privileges: cfg.security.no_new_privileges,
        };
        Ok(Ok((rec, process)))
    }

    /// Send a signal to a running container's process.
    pub fn kill(&self, name: &str, signal: i32) -> Result<ContainerRecord> {
        let rec = self.get(name)?;
        // A frozen process takes no signal: thaw it first (kill, stop and rm -f of a paused container work, as Docker's).
        if self.is_paused(&rec) {
            self.runtime_of(&rec)?.resume(&rec.id)?;
        }
        match rec.pid.filter(|_| rec.state == ContainerState::Running) {
            Some(pid) => {
                // SAFETY: kill(2) with a pid and signal number; no memory involved.
                if unsafe { libc::kill(pid as i32, signal) } != 0 {
                    return Err(Error::Runtime(format!(
                        "signalling container {}: {}",
                        rec.name,
                        io::Error::last_os_error()
                    )));
                }
                Ok(rec)
            }
            None => Err(Error::InUse(format!("container {} is not running", rec.name))),
        }
    }

    /// Wait until a container has exited; its exit code.
    pub fn wait(&self, name: &str) -> Result<i64> {
        // Waiting only reads records: no store lock, so deletes elsewhere go on.
        self.core.unlock();
        loop {
            let rec = self.get(name)?;
            if rec.state == ContainerState::Exited {
                return Ok(rec.exit_code.unwrap_or(0));
            }
            if rec.state == ContainerState::Created {
                // Docker's wait on a never-started container blocks; one that was started by us is racing.
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `top`: the host PIDs of a running container's processes (every
    /// process in its PID namespace), init first.
    pub fn pids(&self, name: &str) -> Result<Vec<u32>> {
        let rec = self.get(name)?;
        let Some(init) = rec.pid.filter(|_| rec.state == ContainerState::Running) else {
            return Err(Error::invalid(format!("container {} is not running", rec.name)));
        };
        let ns = |pid: &str| fs::read_link(format!("/proc/{pid}/ns/pid")).ok();
        let want =
            ns(&init.to_string()).ok_or_else(|| Error::invalid(format!("container {} is not running", rec.name)))?;
        let mut pids: Vec<u32> = fs::read_dir("/proc")
            .at("/proc")?
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter(|p| ns(&p.to_string()).as_ref() == Some(&want))
            .collect();
        pids.sort_by_key(|p| (*p != init as u32, *p));
        Ok(pids)
    }

    /// `ps -s`: bytes the container's own layer holds, and with its image's layers.
    pub fn sizes(&self, name: &str) -> Result<(u64, u64)> {
        let rec = self.get(name)?;
        let image: u64 = self.core.store.image_layers(&rec.image_id)?.iter().map(|l| l.size).sum();
        let dir = self.container_dir(&rec.id);
        let own = match self.core.driver() {
            Driver::Overlay => crate::tree::usage(&dir.join("upper"))?,
            // A full copy: what it holds beyond the image.
            Driver::Copy => crate::tree::usage(&dir.join("rootfs"))?.saturating_sub(image),
        };
        Ok((own, own + image))
    }

    /// `pause`: freeze a running container's processes.
    pub fn pause(&self, name: &str) -> Result<()> {
        refuse_cgroups_rootless("pause")?;
        let rec = self.running(name)?;
        if self.runtime_of(&rec)?.paused(&rec.id) {
            return Err(Error::invalid(format!("container {} is already paused", rec.name)));
        }
        self.runtime_of(&rec)?.pause(&rec.id)?;
        crate::events::record(self.core, "container", "pause", &rec.id, &[("name", &rec.name)]);
        Ok(())
    }

    /// `unpause`: thaw a paused container.
    pub fn unpause(&self, name: &str) -> Result<()> {
        refuse_cgroups_rootless("unpause")?;
        let rec = self.running(name)?;
        if !self.runtime_of(&rec)?.paused(&rec.id) {
            return Err(Error::invalid(format!("container {} is not paused", rec.name)));
        }
        self.runtime_of(&rec)?.resume(&rec.id)?;
        crate::events::record(self.core, "container", "unpause", &rec.id, &[("name", &rec.name)]);
        Ok(())
    }

    fn running(&self, name: &str) -> Result<ContainerRecord> {
        let rec = self.get(name)?;
        if rec.state != ContainerState::Running {
            return Err(Error::invalid(format!("container {} is not running", rec.name)));
        }
        Ok(rec)
    }

    /// Whether a container's processes are frozen.
    fn is_paused(&self, rec: &ContainerRecord) -> bool {
        rec.state == ContainerState::Running && self.runtime_of(rec).is_ok_and(|rt| rt.paused(&rec.id))
    }

    /// The exit codes in a container's `die` events after sequence number
    /// `seen` (moved past what was read), oldest first.
    fn exits_since(&self, id: &str, seen: &mut i64) -> Result<Vec<i64>> {
        let mut codes = Vec::new();
        for e in crate::events::since(self.core, *seen)? {
            *seen = e.seq;
            if e.kind == "container" && e.action == "die" && e.id == id {
                codes.push(e.attributes.get("exitCode").and_then(|c| c.parse().ok()).unwrap_or(0));
            }
        }
        Ok(codes)
    }

    /// `wait --condition`: `not-running` (as `wait`), `next-exit` (the exit
    /// after the next start, or the current run's), or `removed` (until its
    /// record is gone; the last exit code seen). Returns the exit code.
    pub fn wait_for(&self, name: &str, condition: &str) -> Result<i64> {
        match condition {
            "not-running" | "" => self.wait(name),
            "next-exit" => {
                // The next `die` event names the exit, however short the run
                // (a poll of the record can miss a run shorter than its period,
                // and record times are in seconds); the record is the fallback.
                let mut seen = crate::events::since(self.core, 0)?.last().map_or(0, |e| e.seq);
                let rec = self.get(name)?;
                self.core.unlock();
                tracing::debug!("waiting for the next exit of {}", rec.name);
                let mut was_running = rec.state == ContainerState::Running;
                loop {
                    if let Some(code) = self.exits_since(&rec.id, &mut seen)?.first() {
                        return Ok(*code);
                    }
                    let now = self.get(&rec.id)?;
                    match now.state {
                        ContainerState::Running => was_running = true,
                        ContainerState::Exited if was_running || now.finished > rec.finished => {
                            return Ok(now.exit_code.unwrap_or(0))
                        }
                        _ => {}
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
            "removed" => {
                // The exit code is the last one recorded before the removal:
                // its die event, as a run between two polls is never seen in the record.
                let mut seen = crate::events::since(self.core, 0)?.last().map_or(0, |e| e.seq);
                let rec = self.get(name)?;
                self.core.unlock();
                tracing::debug!("waiting for {} to be removed", rec.name);
                let (mut recorded, mut died) = (rec.exit_code.unwrap_or(0), None);
                loop {
                    died = self.exits_since(&rec.id, &mut seen)?.last().copied().or(died);
                    match self.core.store.find_container(&rec.id)? {
                        None => return Ok(died.unwrap_or(recorded)),
                        Some(r) => recorded = r.exit_code.unwrap_or(recorded),
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
            other => {
                Err(Error::invalid(format!("invalid --condition {other:?}: want not-running, next-exit or removed")))
            }
        }
    }

    /// `rename`: a container's new name (the old one is free again).
    pub fn rename(&self, name: &str, new_name: &str) -> Result<()> {
        if !valid_name(new_name) {
            return Err(Error::invalid(format!(
                "invalid container name {new_name:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )));
        }
        let rec = self.get(name)?;
        self.core.store.rename_container(&rec.id, new_name)?;
        crate::events::record(self.core, "container", "rename", &rec.id, &[("name", new_name), ("oldName", &rec.name)]);
        Ok(())
    }

    /// `restart`: stop (as `stop -t` does) if running, then start detached.
    pub fn restart(
        &self,
        name: &str,
        timeout: Option<Duration>,
        exe: &Path,
        global_args: &[String],
    ) -> Result<ContainerRecord> {
        let rec = self.get(name)?;
        self.stop(&rec.id, timeout)?;
        self.start_detached(&rec.id, exe, global_args)
    }

    /// `stop`: the container's stop signal (`--stop-signal`, the image's
    /// STOPSIGNAL, else SIGTERM), then SIGKILL after `timeout` (else its
    /// `--stop-timeout`, else 10 seconds).
    pub fn stop(&self, name: &str, timeout: Option<Duration>) -> Result<()> {
        let rec = self.get(name)?;
        self.halt_restarts(&rec)?;
        if rec.state != ContainerState::Running {
            return Ok(());
        }
        let cfg = super::run_config(&rec)?;
        let signal = cfg.stop_signal.as_deref().map(super::signal::parse).transpose()?.unwrap_or(libc::SIGTERM);
        let timeout = timeout.unwrap_or(Duration::from_secs(cfg.stop_timeout.unwrap_or(10)));
        let _ = self.kill(name, signal);
        self.core.unlock();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.get(&rec.id)?.state != ContainerState::Running {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.kill(name, libc::SIGKILL);
        self.wait(&rec.id).map(|_| ())
    }

    /// Where a volume or bind mount's data is on the host.
    pub(super) fn mount_source(&self, m: &crate::volume::MountSpec) -> PathBuf {
        match m.kind {
            crate::volume::MountKind::Volume => self.volumes().data_dir(&m.source),
            _ => PathBuf::from(&m.source),
        }
    }

    /// `rm -v`: remove a container and its anonymous volumes (named ones stay).
    pub fn remove_with_volumes(&self, name: &str, force: bool) -> Result<String> {
        let rec = self.get(name)?;
        let cfg = super::run_config(&rec)?;
        let removed = self.remove(&rec.id, force)?;
        for m in cfg.mounts.iter().filter(|m| m.anonymous && m.kind == crate::volume::MountKind::Volume) {
            if self.volumes().users(&m.source)?.is_empty() {
                self.volumes().remove(&m.source)?;
            }
        }
        Ok(removed)
    }

    /// `start --all`: the stopped containers `filters` select, less those
    /// whose `unless-stopped` policy was ended by hand (the boot rule of
    /// Docker's daemon: `always` comes back, `unless-stopped` stays down).
    pub fn to_start(&self, filters: &crate::filter::Filters) -> Result<Vec<ContainerSummary>> {
        Ok(self
            .list_filtered(true, filters)?
            .into_iter()
            .filter(|c| c.state != ContainerState::Running)
            .filter(|c| !(c.restart_policy == "unless-stopped" && super::restart::stopped(&self.container_dir(&c.id))))
            .collect())
    }

    /// Whether its monitor waits to run it again (`--restart`).
    pub(super) fn is_restarting(&self, rec: &ContainerRecord) -> bool {
        rec.state != ContainerState::Running
            && rec.waiter.as_deref().is_some_and(crate::store::owner_alive)
            && super::restart::read(&self.container_dir(&rec.id)).restarting
    }

    /// Tell its monitor not to run it again, and when it is between runs,
    /// wait for the monitor to end (so the container stays down).
    fn halt_restarts(&self, rec: &ContainerRecord) -> Result<()> {
        let dir = self.container_dir(&rec.id);
        if !dir.exists() {
            return Ok(());
        }
        super::restart::mark_stopped(&dir)?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.is_restarting(&self.get(&rec.id)?) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// `rm`: remove a container and its layer; `force` kills a running one.
    pub fn remove(&self, name: &str, force: bool) -> Result<String> {
        let rec = self.get(name)?;
        if force || rec.state != ContainerState::Running {
            self.halt_restarts(&rec)?;
        }
        if rec.state == ContainerState::Running {
            if !force {
                return Err(Error::InUse(format!(
                    "cannot remove container \"/{}\": container is running: stop the container before removing or force remove",
                    rec.name
                )));
            }
            let _ = self.kill(&rec.id, libc::SIGKILL);
            let deadline = Instant::now() + Duration::from_secs(10);
            while self.get(&rec.id)?.state == ContainerState::Running && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        self.release_container(&rec.id);
        // Record first: a directory without a record is swept; a record without its directory would be broken.
        self.core.store.delete_container(&rec.id)?;
        crate::fault::failpoint!("container-remove");
        crate::events::record(self.core, "container", "destroy", &rec.id, &[("name", &rec.name)]);
        crate::tree::remove(&self.container_dir(&rec.id))?;
        Ok(rec.name)
    }

    /// The image `ps` shows: the name given at create while it still names
    /// the container's image (Docker's rule), else the image's short ID
    /// (its first tag for containers recorded before names were kept).
    fn image_shown(&self, rec: &ContainerRecord, cfg: &RunConfig) -> Result<String> {
        if !cfg.image.is_empty() {
            let same = self.core.resolve_image(&cfg.image).is_ok_and(|id| id == rec.image_id);
            return Ok(if same { cfg.image.clone() } else { rec.image_id.short().to_string() });
        }
        Ok(self
            .core
            .store
            .tags_of(&rec.image_id)?
            .first()
            .map(|t| crate::image::reference::display_tag(t))
            .unwrap_or_else(|| rec.image_id.short().to_string()))
    }

    /// `ps`: containers, newest first (only running unless `all`).
    pub fn list(&self, all: bool) -> Result<Vec<ContainerSummary>> {
        let mut out = Vec::new();
        for rec in self.core.store.containers()? {
            if rec.state == ContainerState::Incomplete {
                continue;
            }
            let rec = self.refresh(rec)?;
            if !all && rec.state != ContainerState::Running {
                continue;
            }
            let cfg = super::run_config(&rec)?;
            let image = self.image_shown(&rec, &cfg)?;
            let ports = if rec.state == ContainerState::Running { self.published(&rec.id)? } else { Vec::new() };
            let mut networks: Vec<String> =
                self.networks().endpoints(&rec.id)?.into_iter().map(|e| e.network).collect();
            if networks.is_empty() {
                networks.push(cfg.network.clone());
            }
            out.push(ContainerSummary {
                ports,
                paused: self.is_paused(&rec),
                restarting: self.is_restarting(&rec),
                restart_policy: cfg.restart.docker_name().to_string(),
                health: cfg
                    .health
                    .as_ref()
                    .filter(|_| rec.state == ContainerState::Running)
                    .map(|_| super::health::read(&self.container_dir(&rec.id)).unwrap_or_default().status),
                labels: cfg.labels.clone(),
                networks,
                mounts: cfg.mounts.iter().filter(|m| m.kind != MountKind::Tmpfs).map(|m| m.source.clone()).collect(),
                id: rec.id,
                name: rec.name,
                image,
                image_id: rec.image_id,
                command: command_line(&cfg.args),
                state: rec.state,
                exit_code: rec.exit_code,
                created: rec.created,
                started: rec.started,
                finished: rec.finished,
                pid: rec.pid,
            });
        }
        Ok(out)
    }

    /// `ps --filter`: Docker's keys (id, name, label, status, ancestor,
    /// exited, volume, network, health, before, since) and podman's
    /// `restart-policy`; a `status` or `exited` filter lists stopped
    /// containers without `all`, as Docker's does.
    pub fn list_filtered(&self, all: bool, filters: &crate::filter::Filters) -> Result<Vec<ContainerSummary>> {
        let all = all || !filters.values("status").is_empty() || !filters.values("exited").is_empty();
        let list = self.list(all)?;
        if filters.is_empty() {
            return Ok(list);
        }
        // Creation order (newest first), exact even within one second.
        let order: Vec<String> = self.core.store.containers()?.into_iter().map(|r| r.id).collect();
        let rank = |id: &str| order.iter().position(|o| o == id);
        let rank_of = |name: &str| -> Result<Option<usize>> { Ok(rank(&self.get(name)?.id)) };
        let mut before = None;
        for v in filters.values("before") {
            before = rank_of(v)?;
        }
        let mut since = None;
        for v in filters.values("since") {
            since = rank_of(v)?;
        }
        let mut ancestors = Vec::new();
        for v in filters.values("ancestor") {
            ancestors.push(self.core.resolve_image(v)?);
        }
        let status_name = |c: &ContainerSummary| match c.state {
            ContainerState::Running if c.paused => "paused",
            ContainerState::Running => "running",
            ContainerState::Exited if c.restarting => "restarting",
            ContainerState::Exited => "exited",
            ContainerState::Created | ContainerState::Incomplete => "created",
        };
        for s in filters.values("status") {
            if !["created", "restarting", "running", "removing", "paused", "exited", "dead"].contains(&s.as_str()) {
                return Err(Error::invalid(format!("invalid filter 'status={s}'")));
            }
        }
        Ok(list
            .into_iter()
            .filter(|c| {
                filters.any("id", |v| c.id.starts_with(v))
                    && filters.any("name", |v| c.name.contains(v))
                    && filters.any("label", |v| crate::filter::label_matches(&c.labels, v))
                    && filters.any("status", |v| v == status_name(c))
                    && filters.any("ancestor", |_| ancestors.contains(&c.image_id))
                    && filters.any("exited", |v| {
                        c.state == ContainerState::Exited && c.exit_code.map(|e| e.to_string()).as_deref() == Some(v)
                    })
                    && filters.any("volume", |v| c.mounts.iter().any(|m| m == v))
                    && filters.any("network", |v| c.networks.iter().any(|n| n == v))
                    && filters.any("restart-policy", |v| *v == c.restart_policy)
                    && filters.any("health", |v| c.health.as_deref().unwrap_or("none") == v)
                    && before.is_none_or(|b| rank(&c.id).is_some_and(|r| r > b))
                    && since.is_none_or(|s| rank(&c.id).is_some_and(|r| r < s))
            })
            .collect())
    }

    /// The log file of a container (its rotated files are beside it,
    /// [`super::logs::rotated`]); an error when it keeps no log (`--log-driver none`).
    pub fn log_path(&self, name: &str) -> Result<PathBuf> {
        let rec = self.get(name)?;
        if !super::run_config(&rec)?.log.keeps_output() {
            return Err(Error::invalid(format!(
                "container {}: configured logging driver does not support reading (--log-driver none)",
                rec.name
            )));
        }
        Ok(self.container_dir(&rec.id).join("container.log"))
    }

    /// A connection for sending input to a running detached container
    /// created with `-i` or `-t` (None for one that takes none).
    pub fn attach_input(&self, name: &str) -> Result<Option<std::os::unix::net::UnixStream>> {
        let rec = self.get(name)?;
        let cfg = super::run_config(&rec)?;
        if !(cfg.tty || cfg.open_stdin) {
            return Ok(None);
        }
        super::attach::connect(&self.container_dir(&rec.id))
    }

    /// `inspect` of a container.
    pub fn inspect(&self, name: &str) -> Result<serde_json::Value> {
        let rec = self.get(name)?;
        let cfg = super::run_config(&rec)?;
        let dir = self.container_dir(&rec.id);
        Ok(serde_json::json!({
            "Id": rec.id,
            "Name": format!("/{}", rec.name),
            "Created": image::format_time(rec.created),
            "Path": cfg.args.first(),
            "Args": cfg.args.get(1..).unwrap_or_default(),
            "RestartCount": super::restart::read(&dir).count,
            "State": {
                "Status": if self.is_paused(&rec) {
                    serde_json::json!("paused")
                } else if self.is_restarting(&rec) {
                    serde_json::json!("restarting")
                } else {
                    serde_json::json!(rec.state)
                },
                "Running": rec.state == ContainerState::Running,
                "Restarting": self.is_restarting(&rec),
                "Health": cfg.health.as_ref().map(|_| super::health::read(&dir).unwrap_or_default()),
                "Paused": self.is_paused(&rec),
                "Pid": rec.pid.unwrap_or(0),
                "ExitCode": rec.exit_code.unwrap_or(0),
                "StartedAt": rec.started.map(image::format_time),
                "FinishedAt": rec.finished.map(image::format_time),
            },
            "Image": rec.image_id.as_str(),
            "Config": {"Env": cfg.env, "WorkingDir": cfg.workdir, "User": cfg.user, "Hostname": cfg.hostname,
                "Entrypoint": Some(&cfg.args[..cfg.entrypoint_len.min(cfg.args.len())]).filter(|e| !e.is_empty()),
                "Cmd": Some(&cfg.args[cfg.entrypoint_len.min(cfg.args.len())..]).filter(|c| !c.is_empty()),
                "Labels": cfg.labels,
                "StopSignal": cfg.stop_signal, "StopTimeout": cfg.stop_timeout,
                "Healthcheck": cfg.health.as_ref().map(|h| h.docker_json()),
                "Image": if cfg.image.is_empty() { rec.image_id.as_str() } else { cfg.image.as_str() }},
            "HostConfig": {"NetworkMode": cfg.network, "ReadonlyRootfs": cfg.read_only, "AutoRemove": cfg.auto_remove,
                "Dns": cfg.dns, "DnsSearch": cfg.dns_search, "ExtraHosts": cfg.add_hosts,
                "CapAdd": cfg.security.cap_add, "CapDrop": cfg.security.cap_drop, "Privileged": cfg.security.privileged,
                "SecurityOpt": security_opts(&cfg.security), "GroupAdd": cfg.security.group_add,
                "Devices": cfg.security.devices.iter().map(|d| serde_json::json!({"PathOnHost": d.host,
                    "PathInContainer": d.container, "CgroupPermissions": d.permissions})).collect::<Vec<_>>(),
                "DeviceCgroupRules": cfg.security.device_cgroup_rules, "Init": cfg.init,
                "RestartPolicy": {"Name": cfg.restart.docker_name(), "MaximumRetryCount": cfg.restart.max_retries},
                "LogConfig": {"Type": if cfg.log.keeps_output() { "json-file" } else { "none" }, "Config": {
                    "max-size": cfg.log.max_size.map(|s| s.to_string()), "max-file": cfg.log.max_file.map(|n| n.to_string())}},
                "ShmSize": cfg.resources.shm_size.unwrap_or(64 << 20), "Sysctls": cfg.resources.sysctls,
                "Ulimits": cfg.resources.ulimits.iter().map(|u| serde_json::json!({"Name": u.name,
                    "Soft": if u.soft == u64::MAX { -1 } else { u.soft as i64 },
                    "Hard": if u.hard == u64::MAX { -1 } else { u.hard as i64 }})).collect::<Vec<_>>(),
                "PidMode": namespace_mode(&cfg.resources.pid), "IpcMode": namespace_mode(&cfg.resources.ipc),
                "UTSMode": namespace_mode(&cfg.resources.uts),
                "CgroupnsMode": if cfg.resources.cgroupns_private { "private" } else { "host" },
                "CpuShares": cfg.resources.cpu_shares.unwrap_or(0), "CpusetCpus": cfg.resources.cpuset_cpus.clone().unwrap_or_default(),
                "OomScoreAdj": cfg.resources.oom_score_adj.unwrap_or(0), "MemorySwap": cfg.resources.memory_swap.unwrap_or(0),
                "MemoryReservation": cfg.resources.memory_reservation.unwrap_or(0),
                "Tmpfs": cfg.mounts.iter().filter(|m| m.kind == MountKind::Tmpfs)
                    .map(|m| (m.target.clone(), m.options.join(","))).collect::<std::collections::BTreeMap<_, _>>()},
            "NetworkSettings": self.network_settings(&rec, &cfg)?,
            "GraphDriver": {"Name": self.core.driver().to_string(), "Data": {
                "UpperDir": dir.join("upper").display().to_string(),
                "MergedDir": dir.join("rootfs").display().to_string(),
                "LowerDir": self.layers().lowers(&rec.image_id)?.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(":"),
            }},
            "LogPath": dir.join("container.log").display().to_string(),
        }))
    }

    /// The ports a running container publishes, host ports as chosen.
    fn published(&self, id: &str) -> Result<Vec<PortMapping>> {
        Ok(self.networks().current(id)?.map(|(o, _)| o.port_mappings).unwrap_or_default())
    }

    /// `port CONTAINER`: a running container's published ports.
    pub fn ports(&self, name: &str) -> Result<Vec<PortMapping>> {
        let rec = self.get(name)?;
        if rec.state != ContainerState::Running {
            return Ok(Vec::new());
        }
        self.published(&rec.id)
    }

    /// `inspect`'s `NetworkSettings`, in Docker's shape.
    fn network_settings(&self, rec: &ContainerRecord, cfg: &RunConfig) -> Result<serde_json::Value> {
        let running = rec.state == ContainerState::Running;
        let mut ports = serde_json::Map::new();
        for p in &cfg.ports {
            for i in 0..p.range {
                ports.insert(format!("{}/{}", p.container_port + i, p.protocol), serde_json::Value::Null);
            }
        }
        if running {
            for m in self.published(&rec.id)? {
                let key = format!("{}/{}", m.container_port, m.protocol);
                let ip = if m.host_ip.is_empty() { "0.0.0.0".to_string() } else { m.host_ip.clone() };
                let entry = serde_json::json!({"HostIp": ip, "HostPort": m.host_port.to_string()});
                match ports.get_mut(&key) {
                    Some(serde_json::Value::Array(a)) => a.push(entry),
                    _ => {
                        ports.insert(key, serde_json::json!([entry]));
                    }
                }
            }
        }
        let mut networks = serde_json::Map::new();
        let mut first: Option<serde_json::Value> = None;
        for e in self.networks().endpoints(&rec.id)? {
            let n = self.networks().get(&e.network)?;
            let prefix: u8 = n.subnet.split('/').nth(1).and_then(|p| p.parse().ok()).unwrap_or(24);
            let aliases: Vec<String> = serde_json::from_str(&e.aliases).unwrap_or_default();
            let prefix6: u8 = n.subnet6.as_deref().and_then(|s| s.split('/').nth(1)?.parse().ok()).unwrap_or(0);
            let v = serde_json::json!({
                "Aliases": aliases,
                "NetworkID": n.id,
                "Gateway": n.gateway,
                "IPAddress": e.ip,
                "IPPrefixLen": prefix,
                "IPv6Gateway": n.gateway6.clone().unwrap_or_default(),
                "GlobalIPv6Address": e.ip6.clone().unwrap_or_default(),
                "GlobalIPv6PrefixLen": if e.ip6.is_some() { prefix6 } else { 0 },
                "MacAddress": e.mac.clone().unwrap_or_default(),
            });
            first.get_or_insert_with(|| v.clone());
            networks.insert(n.name.clone(), v);
        }
        let f = first.unwrap_or_else(|| serde_json::json!({}));
        Ok(serde_json::json!({
            "Ports": ports,
            "SandboxKey": self.core.store.network_setup(&rec.id)?.map(|s| s.netns).unwrap_or_default(),
            "IPAddress": f["IPAddress"].as_str().unwrap_or(""),
            "IPPrefixLen": f["IPPrefixLen"].as_u64().unwrap_or(0),
            "Gateway": f["Gateway"].as_str().unwrap_or(""),
            "MacAddress": f["MacAddress"].as_str().unwrap_or(""),
            "Networks": networks,
        }))
    }

    /// `network connect`: put a container on another network (its address
    /// there chosen now; its interface made now if it runs, else at start).
    pub fn connect(&self, network: &str, name: &str, ip: Option<&str>, aliases: &[String]) -> Result<()> {
        let rec = self.get(name)?;
        let cfg = super::run_config(&rec)?;
        if !on_networks(&cfg.network) {
            return Err(Error::invalid(format!(
                "container {} uses --network {}: it cannot join networks",
                rec.name, cfg.network
            )));
        }
        let n = self.networks().get(network)?;
        self.networks().attach(&rec.id, &n, ip, None, aliases)?;
        if rec.state == ContainerState::Running {
            if let Err(e) = self.networks().extend(&rec.id, &n.name) {
                let _ = self.networks().detach(&rec.id, &n.name);
                return Err(e);
            }
        }
        Ok(())
    }

    /// `network disconnect`: take a container off a network (a running one
    /// loses its interface there; refused while it publishes ports).
    pub fn disconnect(&self, network: &str, name: &str) -> Result<()> {
        let rec = self.get(name)?;
        let n = self.networks().get(network)?;
        if rec.state == ContainerState::Running {
            self.networks().shrink(&rec.id, &n.name)?;
        }
        if !self.networks().detach(&rec.id, &n.name)? {
            return Err(Error::invalid(format!("container {} is not connected to network {}", rec.name, n.name)));
        }
        Ok(())
    }

    /// A container's name by ID (for network listings).
    pub fn name_of(&self, id: &str) -> Option<String> {
        self.core.store.find_container(id).ok().flatten().map(|r| r.name)
    }

    /// `diff`: what the container changed, as A/C/D lines.
    pub fn changes(&self, name: &str) -> Result<Vec<Change>> {
        let rec = self.get(name)?;
        Ok(self.changes_of(&rec)?.1)
    }

    /// A container's changes and the directory they are read from.
    fn changes_of(&self, rec: &ContainerRecord) -> Result<(PathBuf, Vec<Change>)> {
        let cfg = super::run_config(rec)?;
        let targets: Vec<&str> = cfg.mounts.iter().map(|m| m.target.as_str()).collect();
        self.layers().changes(&self.container_dir(&rec.id), &self.layers().lowers(&rec.image_id)?, &targets)
    }

    /// `commit`: the container's changes become one new layer on top of its
    /// image's layers (shared, not copied); returns the new image's ID.
    pub fn commit(
        &self,
        name: &str,
        reference: Option<&str>,
        message: Option<&str>,
        instructions: &[String],
    ) -> Result<Digest> {
        let rec = self.get(name)?;
        let tag = reference.map(Reference::parse).transpose()?;
        // Check the --change instructions before any work is done.
        let (mut probe, _) = self.core.config_of(&rec.image_id)?;
        crate::dockerfile::metadata::apply_changes(&mut probe, instructions)?;
        let (source, changes) = self.changes_of(&rec)?;
        let base_layers = self.core.store.image_layers(&rec.image_id)?;
        let layer = self.layers().from_changes(&source, &changes, &base_layers, &format!("commit of {}", rec.name))?;
        let (mut config, _) = self.core.config_of(&rec.image_id)?;
        crate::dockerfile::metadata::apply_changes(&mut config, instructions)?;
        let entry = serde_json::json!({"created": image::format_time(now()), "created_by": format!("strata commit {}", rec.name),
            "comment": message.unwrap_or_default()});
        let base = base_layers.len();
        let mut layers = base_layers;
        layers.push(layer);
        let tags: Vec<String> = tag.into_iter().map(|t| t.to_string()).collect();
        let id = self.images().store_image(config, &layers, Some(entry), &tags, now())?;
        let base_name = self.core.store.tags_of(&rec.image_id)?.into_iter().next();
        self.core.store.set_image_base(&id, &base_name.unwrap_or_else(|| rec.image_id.to_string()), base)?;
        Ok(id)
    }
}

/// /dev/null for a container's standard stream that nothing is attached
/// to, open for reading and writing as Docker's (a process may write to
/// its fd 0 there and succeed).
pub fn dev_null() -> Result<OwnedFd> {
    Ok(File::options().read(true).write(true).open("/dev/null").at("/dev/null")?.into())
}

/// Duplicate this process's standard streams for an attached container.
pub fn inherit_stdio() -> Result<Stdio> {
    let dup = |fd: std::os::fd::BorrowedFd<'_>| -> Result<OwnedFd> { fd.try_clone_to_owned().at("standard stream") };
    Ok(Stdio {
        stdin: dup(io::stdin().as_fd())?,
        stdout: dup(io::stdout().as_fd())?,
        stderr: dup(io::stderr().as_fd())?,
        console_socket: None,
    })
}
