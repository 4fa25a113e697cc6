//! `strata`: the command line. Parses Docker's command names and flags,
//! calls the engine, prints Docker's tables and JSON, and maps errors to
//! Docker's exit codes (1 for a failed command, 125 for bad usage).

mod containers;
mod copy;
mod explore;
mod explore_view;
mod format;
mod images;
mod network;
mod registry;
mod system;
mod template;

use std::io::{self};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use strata::snapshot::Driver;
use strata::{Engine, EngineOptions};

#[derive(Parser)]
#[command(name = "strata", version, about = "A daemonless container engine built on shared, content-addressed layers")]
struct Cli {
    /// Store root directory (default /var/lib/strata; for an ordinary user $XDG_DATA_HOME/strata or ~/.local/share/strata).
    #[arg(long, global = true, env = "STRATA_ROOT")]
    root: Option<PathBuf>,
    /// Snapshot driver: overlay or copy (chosen automatically when a store is created).
    #[arg(long = "storage-driver", global = true, env = "STRATA_STORAGE_DRIVER")]
    storage_driver: Option<String>,
    /// Log level (error, warn, info, debug, trace).
    #[arg(long = "log-level", global = true, env = "STRATA_LOG", default_value = "warn")]
    log_level: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build an image from a Dockerfile.
    Build(BuildArgs),
    /// Manage the build cache.
    #[command(subcommand)]
    Builder(BuilderCommand),
    /// Pull an image from a registry.
    Pull(PullArgs),
    /// Push an image to a registry.
    Push(PushArgs),
    /// Log in to a registry.
    Login(LoginArgs),
    /// Log out from a registry.
    Logout(LogoutArgs),
    /// Import a rootfs tarball as a one-layer image.
    Import(ImportArgs),
    /// Load images from a docker-archive or oci-archive.
    Load(LoadArgs),
    /// Save images to an archive.
    Save(SaveArgs),
    /// List images.
    Images(ImagesArgs),
    /// Add a tag to an image.
    Tag(TagArgs),
    /// Remove images.
    Rmi(RmiArgs),
    /// Show an image's details as JSON.
    Inspect(InspectArgs),
    /// Show an image's history.
    History(HistoryArgs),
    /// Create a container and run a command in it.
    Run(RunArgs),
    /// Create a container without starting it.
    Create(RunArgs),
    /// Start created or stopped containers.
    Start(StartArgs),
    /// List containers.
    Ps(PsArgs),
    /// Show a container's output.
    Logs(LogsArgs),
    /// Stop running containers (SIGTERM, then SIGKILL).
    Stop(StopArgs),
    /// Send a signal to running containers.
    Kill(KillArgs),
    /// Remove containers.
    Rm(RmArgs),
    /// Run a command in a running container.
    Exec(ExecArgs),
    /// Wait for containers to exit and print their exit codes.
    Wait(WaitArgs),
    /// Show what a container changed in its layer.
    Diff(ContainerArg),
    /// Make a new image from a container's changes.
    Commit(CommitArgs),
    /// Manage containers.
    #[command(subcommand)]
    Container(ContainerCommand),
    /// Manage images.
    #[command(subcommand)]
    Image(ImageCommand),
    /// Manage volumes.
    #[command(subcommand)]
    Volume(VolumeCommand),
    /// Manage networks.
    #[command(subcommand)]
    Network(NetworkCommand),
    /// List a container's published ports, or the host address of one.
    Port(PortArgs),
    /// Copy files between a container and the host (or a tar stream: -).
    Cp(CpArgs),
    /// Write a container's file system as a tar archive.
    Export(ExportArgs),
    /// Restart containers.
    Restart(StopArgs),
    /// Rename a container.
    Rename(RenameArgs),
    /// Show running containers' resource use (CPU, memory, PIDs, network and block I/O).
    Stats(StatsArgs),
    /// Change containers' limits (memory, CPUs, processes), running or not.
    Update(UpdateArgs),
    /// Follow a running container's output until it exits (its exit code is ours).
    Attach(AttachArgs),
    /// Freeze the processes of running containers.
    Pause(NamesArg),
    /// Thaw paused containers.
    Unpause(NamesArg),
    /// List a running container's processes (ps options after the name; default -ef).
    Top(TopArgs),
    /// Show events (container, image, network), then follow new ones until --until.
    Events(EventsArgs),
    /// Show what this strata is and holds.
    Info(FormatArg),
    /// Show strata's version.
    Version(FormatArg),
    /// (internal) Launch a detached container and hand it to strata-monitor;
    /// with --exited, record the exit it saw and apply the restart policy.
    #[command(name = "__monitor", hide = true)]
    Monitor(MonitorArgs),
    /// (internal) One health probe of a running container, for its monitor.
    #[command(name = "__probe", hide = true)]
    Probe(ProbeArgs),
    /// (internal) Run a container for an attached caller and record its exit.
    #[command(name = "__attached", hide = true)]
    Attached(AttachedArgs),
    /// Manage the store.
    #[command(subcommand)]
    System(SystemCommand),
}

#[derive(Subcommand)]
enum BuilderCommand {
    /// Remove the build cache (cached steps, their layers, cache mounts).
    Prune(PruneArgs),
    /// Say for each step of the build that made an image whether it came from the cache, and why not.
    Explain(explore::ExplainArgs),
}

#[derive(Args)]
struct TransportArgs {
    /// Require verified HTTPS (true), or allow plain HTTP and unverified TLS (false).
    #[arg(long = "tls-verify")]
    tls_verify: Option<bool>,
    /// A directory of CA certificates (*.crt) to trust.
    #[arg(long = "cert-dir")]
    cert_dir: Option<PathBuf>,
}

impl TransportArgs {
    fn options(&self, max_concurrent: usize) -> strata::registry::RegistryOptions {
        strata::registry::RegistryOptions {
            tls_verify: self.tls_verify,
            cert_dir: self.cert_dir.clone(),
            max_concurrent,
        }
    }
}

#[derive(Args)]
struct PullArgs {
    /// Print only the image ID.
    #[arg(short, long)]
    quiet: bool,
    /// OS/ARCH[/VARIANT] (default: the host's).
    #[arg(long)]
    platform: Option<String>,
    /// Layers downloaded at once.
    #[arg(long = "max-concurrent-downloads", default_value_t = 3)]
    max_concurrent_downloads: usize,
    #[command(flatten)]
    transport: TransportArgs,
    /// NAME[:TAG|@DIGEST]
    image: String,
}

#[derive(Args)]
struct PushArgs {
    /// Print only the manifest digest.
    #[arg(short, long)]
    quiet: bool,
    /// Layers uploaded at once.
    #[arg(long = "max-concurrent-uploads", default_value_t = 3)]
    max_concurrent_uploads: usize,
    #[command(flatten)]
    transport: TransportArgs,
    /// The image to push.
    image: String,
    /// Where to (default: the image's name).
    destination: Option<String>,
}

#[derive(Args)]
struct LoginArgs {
    /// User name.
    #[arg(short, long)]
    username: Option<String>,
    /// Password (prefer --password-stdin).
    #[arg(short, long)]
    password: Option<String>,
    /// Read the password from standard input.
    #[arg(long = "password-stdin")]
    password_stdin: bool,
    #[command(flatten)]
    transport: TransportArgs,
    /// The registry (host[:port]).
    registry: String,
}

#[derive(Args)]
struct LogoutArgs {
    /// The registry (host[:port]).
    registry: String,
}

#[derive(Args)]
struct BuildArgs {
    /// Say why each step that did not come from the cache was rebuilt.
    #[arg(long)]
    explain: bool,
    /// Name and optionally a tag (NAME[:TAG]); may be given more than once.
    #[arg(short, long = "tag")]
    tag: Vec<String>,
    /// RUN steps' network: default (the bridge), host or none.
    #[arg(long)]
    network: Option<String>,
    /// The Dockerfile (default: CONTEXT/Dockerfile, then CONTEXT/Containerfile).
    #[arg(short, long)]
    file: Option<PathBuf>,
    /// Set a build-time variable (KEY=VALUE, or KEY to take it from the environment).
    #[arg(long = "build-arg")]
    build_arg: Vec<String>,
    /// Build up to this stage.
    #[arg(long)]
    target: Option<String>,
    /// Do not use the build cache.
    #[arg(long)]
    no_cache: bool,
    /// Always pull the base images.
    #[arg(long)]
    pull: bool,
    /// Print only the image ID.
    #[arg(short, long)]
    quiet: bool,
    /// Target platform (only the host's).
    #[arg(long)]
    platform: Option<String>,
    /// Set a label on the image (KEY=VALUE).
    #[arg(long)]
    label: Vec<String>,
    /// A secret RUN --mount=type=secret may mount: id=ID,src=FILE or id=ID,env=VAR.
    #[arg(long)]
    secret: Vec<String>,
    /// An ssh agent RUN --mount=type=ssh may reach: default (SSH_AUTH_SOCK), or ID=SOCKET or ID=KEY[,KEY...].
    #[arg(long)]
    ssh: Vec<String>,
    /// Write the final stage's filesystem instead of storing an image: type=local,dest=DIR, type=tar,dest=FILE, DIR, or - (a tar on standard output).
    #[arg(short, long)]
    output: Option<String>,
    /// Write the image ID to this file.
    #[arg(long)]
    iidfile: Option<PathBuf>,
    /// Add NAME:IP to RUN steps' /etc/hosts.
    #[arg(long = "add-host")]
    add_host: Vec<String>,
    /// RUN steps' resource limit, NAME=SOFT[:HARD] (as run --ulimit).
    #[arg(long)]
    ulimit: Vec<String>,
    /// A named context for FROM, COPY --from and RUN --mount from=: NAME=DIR, NAME=docker-image://REF or NAME=GIT-URL.
    #[arg(long = "build-context")]
    build_context: Vec<String>,
    /// Export the build cache to a registry: type=registry,ref=REF[,mode=min|max][,ignore-error=true].
    #[arg(long = "cache-to")]
    cache_to: Vec<String>,
    /// Import a build cache from a registry: type=registry,ref=REF, or REF.
    #[arg(long = "cache-from")]
    cache_from: Vec<String>,
    /// The context: a directory, or - for a tar (or a lone Dockerfile) on standard input.
    context: String,
}

#[derive(Subcommand)]
enum ImageCommand {
    /// Build an image from a Dockerfile.
    Build(Box<BuildArgs>),
    /// List images.
    #[command(alias = "list")]
    Ls(ImagesArgs),
    /// Remove images.
    Rm(RmiArgs),
    /// Show an image's details as JSON.
    Inspect(InspectArgs),
    /// Show an image's history.
    History(HistoryArgs),
    /// Show what each layer of an image added, modified, deleted and wasted, and which images share it.
    Layers(explore::LayersArgs),
    /// Show the layers two images share and the files that differ above them.
    Diff(explore::DiffArgs),
    /// Show the store's layers as a tree: which images use them, bytes on disk and saved by sharing, what rmi would free.
    Tree(explore::TreeArgs),
    /// Look through an image's layers and files interactively (keys: ? for help).
    Explore(explore_view::ExploreArgs),
    /// Add a tag to an image.
    Tag(TagArgs),
    /// Import a rootfs tarball as a one-layer image.
    Import(ImportArgs),
    /// Load images from an archive.
    Load(LoadArgs),
    /// Save images to an archive.
    Save(SaveArgs),
    /// Remove unused images.
    Prune(PruneArgs),
    /// Mount an image's file tree read-only and print where.
    Mount(NameArg),
    /// Unmount an image mounted with `image mount`.
    Unmount(NameArg),
}

#[derive(Subcommand)]
pub(crate) enum VolumeCommand {
    /// Create a volume.
    Create(VolumeCreateArgs),
    /// List volumes.
    #[command(alias = "list")]
    Ls(VolumeLsArgs),
    /// Show volumes' details as JSON.
    Inspect(InspectArgs),
    /// Remove volumes (refused while a container uses one).
    Rm(VolumeRmArgs),
    /// Remove every volume no container uses.
    Prune(PruneArgs),
}

#[derive(Subcommand)]
pub(crate) enum NetworkCommand {
    /// Create a network.
    Create(NetworkCreateArgs),
    /// List networks.
    #[command(alias = "list")]
    Ls(VolumeLsArgs),
    /// Show networks' details as JSON.
    Inspect(InspectArgs),
    /// Remove networks (refused while a container is on one).
    #[command(alias = "remove")]
    Rm(VolumeNames),
    /// Remove every user network no container is on.
    Prune(PruneArgs),
    /// Connect a container to a network.
    Connect(NetworkConnectArgs),
    /// Disconnect a container from a network.
    Disconnect(NetworkDisconnectArgs),
}

#[derive(Args)]
pub(crate) struct NetworkCreateArgs {
    /// Driver (bridge).
    #[arg(short, long)]
    pub(crate) driver: Option<String>,
    /// Subnet in CIDR form (one IPv4, and one IPv6 with --ipv6).
    #[arg(long)]
    pub(crate) subnet: Vec<String>,
    /// Gateway address in the subnet.
    #[arg(long)]
    pub(crate) gateway: Option<String>,
    /// No route out of the network.
    #[arg(long)]
    pub(crate) internal: bool,
    /// Set a label (KEY=VALUE).
    #[arg(long)]
    pub(crate) label: Vec<String>,
    /// Give the network an IPv6 subnet too (a random unique-local /64 unless --subnet gives one).
    #[arg(long)]
    pub(crate) ipv6: bool,
    pub(crate) name: String,
}

#[derive(Args)]
pub(crate) struct NetworkConnectArgs {
    /// A DNS name for the container on this network.
    #[arg(long)]
    pub(crate) alias: Vec<String>,
    /// IPv4 address on this network.
    #[arg(long)]
    pub(crate) ip: Option<String>,
    pub(crate) network: String,
    pub(crate) container: String,
}

#[derive(Args)]
pub(crate) struct NetworkDisconnectArgs {
    /// Accepted for Docker's sake.
    #[arg(short, long)]
    pub(crate) force: bool,
    pub(crate) network: String,
    pub(crate) container: String,
}

#[derive(Args)]
pub(crate) struct CpArgs {
    /// Keep owners (uid/gid) of what is copied in.
    #[arg(short, long)]
    pub(crate) archive: bool,
    /// Follow a symbolic link given as SRC.
    #[arg(short = 'L', long)]
    pub(crate) follow_link: bool,
    /// CONTAINER:PATH, a local path, or - (a tar stream on stdin).
    pub(crate) src: String,
    /// CONTAINER:PATH, a local path, or - (a tar stream on stdout).
    pub(crate) dest: String,
}

#[derive(Args)]
pub(crate) struct ExportArgs {
    /// Write to this file instead of stdout.
    #[arg(short, long)]
    pub(crate) output: Option<PathBuf>,
    pub(crate) container: String,
}

#[derive(Args)]
pub(crate) struct StatsArgs {
    /// One sample, then exit.
    #[arg(long)]
    pub(crate) no_stream: bool,
    /// Format with a Go template (or json).
    #[arg(long)]
    pub(crate) format: Option<String>,
    /// Containers (default: every running one).
    pub(crate) containers: Vec<String>,
}

#[derive(Args)]
pub(crate) struct UpdateArgs {
    /// Memory limit (e.g. 512m, 1g).
    #[arg(short, long)]
    pub(crate) memory: Option<String>,
    /// CPUs (e.g. 1.5).
    #[arg(long)]
    pub(crate) cpus: Option<f64>,
    /// Process limit (0 or -1: none).
    #[arg(long)]
    pub(crate) pids_limit: Option<i64>,
    #[arg(required = true)]
    pub(crate) containers: Vec<String>,
}

#[derive(Args)]
pub(crate) struct WaitArgs {
    /// not-running (default), next-exit or removed.
    #[arg(long, default_value = "not-running")]
    pub(crate) condition: String,
    #[arg(required = true)]
    pub(crate) containers: Vec<String>,
}

#[derive(Args)]
pub(crate) struct AttachArgs {
    /// Do not attach standard input.
    #[arg(long)]
    pub(crate) no_stdin: bool,
    /// The key sequence that detaches, leaving the container running
    /// (`ctrl-X` or single characters, comma-separated).
    #[arg(long, default_value = "ctrl-p,ctrl-q")]
    pub(crate) detach_keys: strata::container::attach::DetachKeys,
    /// Proxy received signals to the container.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub(crate) sig_proxy: bool,
    pub(crate) container: String,
}

#[derive(Args)]
pub(crate) struct TopArgs {
    pub(crate) container: String,
    /// ps options (default -ef).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub(crate) ps_args: Vec<String>,
}

#[derive(Args)]
pub(crate) struct EventsArgs {
    /// Events since this time (RFC 3339, Unix seconds, or a duration ago: 10m).
    #[arg(long)]
    pub(crate) since: Option<String>,
    /// Events until this time; without it, events are followed until interrupted.
    #[arg(long)]
    pub(crate) until: Option<String>,
    /// Filter (KEY=VALUE: type, event, container, image, network).
    #[arg(short, long)]
    pub(crate) filter: Vec<String>,
    /// Format each event with a Go template (or json).
    #[arg(long)]
    pub(crate) format: Option<String>,
}

#[derive(Args)]
pub(crate) struct FormatArg {
    /// Format with a Go template (or json).
    #[arg(short, long)]
    pub(crate) format: Option<String>,
}

#[derive(Args)]
pub(crate) struct RenameArgs {
    pub(crate) container: String,
    pub(crate) new_name: String,
}

#[derive(Args)]
pub(crate) struct PortArgs {
    pub(crate) container: String,
    /// PORT[/PROTO] to show.
    pub(crate) port: Option<String>,
}

#[derive(Args)]
pub(crate) struct VolumeCreateArgs {
    /// Set a label (KEY=VALUE).
    #[arg(long)]
    pub(crate) label: Vec<String>,
    /// Driver options (none are supported by the local driver here).
    #[arg(short, long)]
    pub(crate) opt: Vec<String>,
    pub(crate) name: Option<String>,
}

#[derive(Args)]
pub(crate) struct VolumeLsArgs {
    /// Only show names.
    #[arg(short, long)]
    pub(crate) quiet: bool,
    /// Output format: table, json or a Go template.
    #[arg(long, default_value = "table")]
    pub(crate) format: String,
    /// Filter (KEY=VALUE; volumes: dangling, name, label, driver; networks: name, id, driver, label, type).
    #[arg(short, long)]
    pub(crate) filter: Vec<String>,
}

#[derive(Args)]
pub(crate) struct VolumeNames {
    #[arg(required = true)]
    pub(crate) names: Vec<String>,
}

#[derive(Args)]
pub(crate) struct VolumeRmArgs {
    /// Accepted for Docker compatibility; a volume in use is still refused.
    #[arg(short, long)]
    pub(crate) force: bool,
    #[arg(required = true)]
    pub(crate) names: Vec<String>,
}

#[derive(Subcommand)]
enum ContainerCommand {
    /// List containers.
    #[command(alias = "list")]
    Ls(PsArgs),
    /// Remove containers.
    Rm(RmArgs),
    /// Remove all stopped containers.
    Prune(PruneArgs),
    /// Show a container's details as JSON.
    Inspect(InspectArgs),
}

#[derive(Args, Clone)]
pub(crate) struct RunArgs {
    /// Remove the container when it exits.
    #[arg(long)]
    pub(crate) rm: bool,
    /// Run in the background and print the container ID.
    #[arg(short, long)]
    pub(crate) detach: bool,
    /// Name the container.
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// Set environment variables (KEY=VALUE, or KEY to take this shell's value).
    #[arg(short, long = "env")]
    pub(crate) env: Vec<String>,
    /// Read environment variables from a file.
    #[arg(long = "env-file")]
    pub(crate) env_file: Vec<PathBuf>,
    /// Working directory inside the container.
    #[arg(short, long)]
    pub(crate) workdir: Option<String>,
    /// USER[:GROUP] to run as.
    #[arg(short, long)]
    pub(crate) user: Option<String>,
    /// Override the image's entrypoint.
    #[arg(long)]
    pub(crate) entrypoint: Option<String>,
    /// Connect to a network (repeatable): a network's name or ID, bridge
    /// (the default), none (loopback only), host, or container:NAME.
    #[arg(long = "network", alias = "net")]
    pub(crate) network: Vec<String>,
    /// A DNS name for the container on user networks.
    #[arg(long = "network-alias", alias = "net-alias")]
    pub(crate) network_alias: Vec<String>,
    /// IPv4 address on the (first) network.
    #[arg(long)]
    pub(crate) ip: Option<String>,
    /// MAC address on the (first) network.
    #[arg(long = "mac-address")]
    pub(crate) mac_address: Option<String>,
    /// Publish a port: [IP:][HOSTPORT:]CONTAINERPORT[/tcp|udp], ranges A-B.
    #[arg(short = 'p', long = "publish")]
    pub(crate) publish: Vec<String>,
    /// Publish every port the image exposes on a random host port.
    #[arg(short = 'P', long = "publish-all")]
    pub(crate) publish_all: bool,
    /// A DNS server.
    #[arg(long)]
    pub(crate) dns: Vec<String>,
    /// A DNS search domain.
    #[arg(long = "dns-search")]
    pub(crate) dns_search: Vec<String>,
    /// Set a label (KEY=VALUE).
    #[arg(short = 'l', long = "label")]
    pub(crate) label: Vec<String>,
    /// Add a line to /etc/hosts (NAME:IP).
    #[arg(long = "add-host")]
    pub(crate) add_host: Vec<String>,
    /// Container hostname.
    #[arg(long)]
    pub(crate) hostname: Option<String>,
    /// Mount the root file system read-only.
    #[arg(long)]
    pub(crate) read_only: bool,
    /// Keep standard input open.
    #[arg(short, long)]
    pub(crate) interactive: bool,
    /// Allocate a pseudo-terminal.
    #[arg(short, long)]
    pub(crate) tty: bool,
    /// Pull the image: missing (when the store lacks it), always, or never.
    #[arg(long, default_value = "missing")]
    pub(crate) pull: String,
    /// Platform of the image to pull (OS/ARCH[/VARIANT]).
    #[arg(long)]
    pub(crate) platform: Option<String>,
    /// Suppress the pull's progress.
    #[arg(short = 'q', long)]
    pub(crate) quiet: bool,
    /// Proxy received signals to the container (attached runs).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub(crate) sig_proxy: bool,
    /// Attach only these streams: stdin, stdout, stderr (repeatable; default all).
    #[arg(short = 'a', long = "attach")]
    pub(crate) attach: Vec<String>,
    /// Memory limit (e.g. 512m, 1g).
    #[arg(short, long)]
    pub(crate) memory: Option<String>,
    /// CPUs (e.g. 1.5).
    #[arg(long)]
    pub(crate) cpus: Option<String>,
    /// Maximum number of processes.
    #[arg(long = "pids-limit")]
    pub(crate) pids_limit: Option<i64>,
    /// Mount a volume or host path: NAME:/path[:ro], /host/path:/path[:ro|rw], or /path (anonymous).
    #[arg(short = 'v', long = "volume")]
    pub(crate) volume: Vec<String>,
    /// Mount: type=volume|bind|tmpfs,source=...,target=...[,readonly].
    #[arg(long)]
    pub(crate) mount: Vec<String>,
    /// Mount every volume of another container (CONTAINER[:ro|rw]).
    #[arg(long = "volumes-from")]
    pub(crate) volumes_from: Vec<String>,
    /// Add a capability (CAP_NAME or NAME, ALL).
    #[arg(long = "cap-add")]
    pub(crate) cap_add: Vec<String>,
    /// Drop a capability (CAP_NAME or NAME, ALL).
    #[arg(long = "cap-drop")]
    pub(crate) cap_drop: Vec<String>,
    /// All capabilities and host devices, no seccomp filter, writable /sys.
    #[arg(long)]
    pub(crate) privileged: bool,
    /// no-new-privileges[=BOOL], seccomp=PROFILE.json|unconfined.
    #[arg(long = "security-opt")]
    pub(crate) security_opt: Vec<String>,
    /// Give a host device: HOST[:CONTAINER][:rwm].
    #[arg(long)]
    pub(crate) device: Vec<String>,
    /// Allow devices in the device cgroup: 'c|b|a MAJOR:MINOR rwm'.
    #[arg(long = "device-cgroup-rule")]
    pub(crate) device_cgroup_rule: Vec<String>,
    /// Add a supplementary group (name or gid).
    #[arg(long = "group-add")]
    pub(crate) group_add: Vec<String>,
    /// A health check command (run by /bin/sh -c in the container).
    #[arg(long = "health-cmd")]
    pub(crate) health_cmd: Option<String>,
    /// Time between health checks (e.g. 30s).
    #[arg(long = "health-interval")]
    pub(crate) health_interval: Option<String>,
    /// A health check's time limit.
    #[arg(long = "health-timeout")]
    pub(crate) health_timeout: Option<String>,
    /// Failures in a row that make it unhealthy.
    #[arg(long = "health-retries")]
    pub(crate) health_retries: Option<u32>,
    /// Failures in this first stretch do not count.
    #[arg(long = "health-start-period")]
    pub(crate) health_start_period: Option<String>,
    /// No health check, not even the image's.
    #[arg(long = "no-healthcheck")]
    pub(crate) no_healthcheck: bool,
    /// Restart policy of a detached container: no, on-failure[:N], always or unless-stopped.
    #[arg(long)]
    pub(crate) restart: Option<String>,
    /// Logging driver: json-file (default) or none.
    #[arg(long = "log-driver")]
    pub(crate) log_driver: Option<String>,
    /// Log option: max-size=SIZE, max-file=N (rotation).
    #[arg(long = "log-opt")]
    pub(crate) log_opt: Vec<String>,
    /// Write the container's ID to this file (which must not exist).
    #[arg(long)]
    pub(crate) cidfile: Option<PathBuf>,
    /// Run a minimal init (tini) as PID 1 that forwards signals and reaps zombies.
    #[arg(long)]
    pub(crate) init: bool,
    /// Mount a tmpfs: PATH[:OPTIONS] (size=64m, mode=1777, exec, ro, ...).
    #[arg(long)]
    pub(crate) tmpfs: Vec<String>,
    /// A process limit: NAME=SOFT[:HARD] (nofile, nproc, core, ...; -1 unlimited).
    #[arg(long)]
    pub(crate) ulimit: Vec<String>,
    /// Size of /dev/shm (default 64m).
    #[arg(long = "shm-size")]
    pub(crate) shm_size: Option<String>,
    /// A namespaced kernel parameter: KEY=VALUE (net.*, kernel.shm*, kernel.msg*, fs.mqueue.*).
    #[arg(long)]
    pub(crate) sysctl: Vec<String>,
    /// Memory plus swap (-1: unlimited swap).
    #[arg(long = "memory-swap")]
    pub(crate) memory_swap: Option<String>,
    /// Soft memory limit.
    #[arg(long = "memory-reservation")]
    pub(crate) memory_reservation: Option<String>,
    /// CPU shares (relative weight).
    #[arg(short = 'c', long = "cpu-shares")]
    pub(crate) cpu_shares: Option<u64>,
    /// CPUs to run on (0-1,3).
    #[arg(long = "cpuset-cpus")]
    pub(crate) cpuset_cpus: Option<String>,
    /// The OOM killer's score adjustment (-1000 to 1000).
    #[arg(long = "oom-score-adj", allow_hyphen_values = true)]
    pub(crate) oom_score_adj: Option<i32>,
    /// PID namespace: host or container:NAME.
    #[arg(long)]
    pub(crate) pid: Option<String>,
    /// IPC namespace: host, container:NAME, private or shareable.
    #[arg(long)]
    pub(crate) ipc: Option<String>,
    /// UTS namespace: host or container:NAME.
    #[arg(long)]
    pub(crate) uts: Option<String>,
    /// Cgroup namespace: host or private.
    #[arg(long)]
    pub(crate) cgroupns: Option<String>,
    /// The user namespace: only host (the one strata runs in) is supported.
    #[arg(long)]
    pub(crate) userns: Option<String>,
    /// The signal `stop` sends first (default: the image's STOPSIGNAL, else SIGTERM).
    #[arg(long = "stop-signal")]
    pub(crate) stop_signal: Option<String>,
    /// Seconds `stop` waits for the stop signal before SIGKILL (default 10).
    #[arg(long = "stop-timeout")]
    pub(crate) stop_timeout: Option<u64>,
    /// OCI runtime: builtin (youki's libcontainer, in process), runc, crun, or a path.
    #[arg(long)]
    pub(crate) runtime: Option<String>,
    /// The image.
    pub(crate) image: String,
    /// The command and its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub(crate) command: Vec<String>,
}

#[derive(Args)]
pub(crate) struct StartArgs {
    /// Attach to the container's output and wait for it.
    #[arg(short, long)]
    pub(crate) attach: bool,
    /// Attach standard input.
    #[arg(short, long)]
    pub(crate) interactive: bool,
    /// Start every stopped container (that the filters select).
    #[arg(long)]
    pub(crate) all: bool,
    /// With --all: ps's filters (e.g. restart-policy=always).
    #[arg(short, long)]
    pub(crate) filter: Vec<String>,
    #[arg(required_unless_present = "all")]
    pub(crate) containers: Vec<String>,
}

#[derive(Args)]
pub(crate) struct PsArgs {
    /// Show all containers, not only running ones.
    #[arg(short, long)]
    pub(crate) all: bool,
    /// Only show IDs.
    #[arg(short, long)]
    pub(crate) quiet: bool,
    /// Don't truncate output.
    #[arg(long)]
    pub(crate) no_trunc: bool,
    /// Output format: table, json or a Go template.
    #[arg(long, default_value = "table")]
    pub(crate) format: String,
    /// Filter (KEY=VALUE: id, name, label, status, ancestor, exited, volume, network, health, restart-policy, before, since).
    #[arg(short, long)]
    pub(crate) filter: Vec<String>,
    /// Show the N last created containers (all states).
    #[arg(short = 'n', long)]
    pub(crate) last: Option<usize>,
    /// Show the latest created container (all states).
    #[arg(short, long)]
    pub(crate) latest: bool,
    /// Show sizes: the container's own layer, and with its image (virtual).
    #[arg(short, long)]
    pub(crate) size: bool,
}

#[derive(Args)]
pub(crate) struct LogsArgs {
    /// Keep following the output.
    #[arg(short, long)]
    pub(crate) follow: bool,
    /// Only the last N lines ("all" for every line).
    #[arg(short = 'n', long, default_value = "all")]
    pub(crate) tail: String,
    /// Only lines since this time (RFC 3339, Unix seconds, or a duration ago: 10m, 2h).
    #[arg(long)]
    pub(crate) since: Option<String>,
    /// Only lines before this time (same forms as --since).
    #[arg(long)]
    pub(crate) until: Option<String>,
    /// Show each line's time.
    #[arg(short, long)]
    pub(crate) timestamps: bool,
    pub(crate) container: String,
}

#[derive(Args)]
pub(crate) struct StopArgs {
    /// Seconds to wait before killing (default: the container's --stop-timeout, else 10).
    #[arg(short, long)]
    pub(crate) time: Option<u64>,
    #[arg(required = true)]
    pub(crate) containers: Vec<String>,
}

#[derive(Args)]
pub(crate) struct KillArgs {
    /// Signal to send (name or number).
    #[arg(short, long, default_value = "KILL")]
    pub(crate) signal: String,
    #[arg(required = true)]
    pub(crate) containers: Vec<String>,
}

#[derive(Args)]
pub(crate) struct RmArgs {
    /// Kill and remove running containers.
    #[arg(short, long)]
    pub(crate) force: bool,
    /// Remove anonymous volumes too (none exist yet).
    #[arg(short, long)]
    pub(crate) volumes: bool,
    #[arg(required = true)]
    pub(crate) containers: Vec<String>,
}

#[derive(Args)]
pub(crate) struct ExecArgs {
    /// Keep standard input open.
    #[arg(short, long)]
    pub(crate) interactive: bool,
    /// Allocate a pseudo-terminal.
    #[arg(short, long)]
    pub(crate) tty: bool,
    /// Set environment variables.
    #[arg(short, long = "env")]
    pub(crate) env: Vec<String>,
    /// Working directory inside the container.
    #[arg(short, long)]
    pub(crate) workdir: Option<String>,
    /// USER[:GROUP] to run as.
    #[arg(short, long)]
    pub(crate) user: Option<String>,
    pub(crate) container: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub(crate) command: Vec<String>,
}

#[derive(Args)]
pub(crate) struct NamesArg {
    #[arg(required = true)]
    pub(crate) containers: Vec<String>,
}

#[derive(Args)]
pub(crate) struct ContainerArg {
    pub(crate) container: String,
}

#[derive(Args)]
pub(crate) struct MonitorArgs {
    pub(crate) container: String,
    #[arg(long)]
    pub(crate) exited: Option<i32>,
}

#[derive(Args)]
pub(crate) struct ProbeArgs {
    pub(crate) container: String,
    #[arg(long)]
    pub(crate) in_start_period: bool,
}

#[derive(Args)]
pub(crate) struct AttachedArgs {
    pub(crate) container: String,
    #[arg(long)]
    pub(crate) interactive: bool,
}

#[derive(Args)]
pub(crate) struct CommitArgs {
    /// Commit message.
    #[arg(short, long)]
    pub(crate) message: Option<String>,
    /// Author (recorded in the history comment).
    #[arg(short, long)]
    pub(crate) author: Option<String>,
    /// Apply a Dockerfile instruction to the new image's config (CMD, ENTRYPOINT, ENV, LABEL, EXPOSE, USER, WORKDIR, VOLUME).
    #[arg(short = 'c', long = "change")]
    pub(crate) change: Vec<String>,
    pub(crate) container: String,
    pub(crate) reference: Option<String>,
}

#[derive(Subcommand)]
enum SystemCommand {
    /// Show disk usage.
    Df(DfArgs),
    /// Remove unused data.
    Prune(PruneArgs),
    /// Check the store: blobs, layers, images, containers, volumes and mounts against their records.
    Check(system::CheckArgs),
}

#[derive(Args)]
struct ImportArgs {
    /// Tarball path, or - for standard input.
    file: String,
    /// Name for the image.
    reference: Option<String>,
    /// Commit message for the history entry.
    #[arg(short, long)]
    message: Option<String>,
}

#[derive(Args)]
struct LoadArgs {
    /// Read from this file instead of standard input.
    #[arg(short, long)]
    input: Option<PathBuf>,
    /// Suppress the load output.
    #[arg(short, long)]
    quiet: bool,
}

#[derive(Args)]
struct SaveArgs {
    /// Write to this file (a directory for oci-dir) instead of standard output.
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// docker-archive, oci-archive or oci-dir.
    #[arg(long, default_value = "docker-archive")]
    format: String,
    /// Images to save.
    #[arg(required = true)]
    images: Vec<String>,
}

#[derive(Args)]
struct ImagesArgs {
    /// Only show image IDs.
    #[arg(short, long)]
    quiet: bool,
    /// Show all images (there are no intermediate images to hide).
    #[arg(short, long)]
    all: bool,
    /// Don't truncate IDs.
    #[arg(long)]
    no_trunc: bool,
    /// Output format: table, json or a Go template.
    #[arg(long, default_value = "table")]
    format: String,
    /// Filter (KEY=VALUE: dangling, reference, label, before, since).
    #[arg(short, long)]
    filter: Vec<String>,
    /// Show digests (the manifest digest of a repository it was pulled from or pushed to).
    #[arg(long)]
    digests: bool,
    /// Only images matching this reference.
    reference: Option<String>,
}

#[derive(Args)]
struct TagArgs {
    source: String,
    target: String,
}

#[derive(Args)]
struct RmiArgs {
    /// Remove an image even when it has several tags.
    #[arg(short, long)]
    force: bool,
    #[arg(required = true)]
    images: Vec<String>,
}

#[derive(Args)]
pub(crate) struct InspectArgs {
    /// Format each object with a Go template (or json).
    #[arg(short, long)]
    pub(crate) format: Option<String>,
    #[arg(required = true)]
    pub(crate) names: Vec<String>,
}

#[derive(Args)]
struct HistoryArgs {
    /// Don't truncate output.
    #[arg(long)]
    no_trunc: bool,
    /// Only show image IDs.
    #[arg(short, long)]
    quiet: bool,
    /// Output format: table or json.
    #[arg(long, default_value = "table")]
    format: String,
    image: String,
}

#[derive(Args)]
pub(crate) struct PruneArgs {
    /// Remove all unused images, not just dangling ones.
    #[arg(short, long)]
    pub(crate) all: bool,
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    pub(crate) force: bool,
    /// Only what matches (until=TIME, label=KEY[=VALUE]).
    #[arg(long)]
    pub(crate) filter: Vec<String>,
}

#[derive(Args)]
struct DfArgs {
    /// Show per-image and per-layer detail.
    #[arg(short, long)]
    verbose: bool,
    /// Output format: table or json.
    #[arg(long, default_value = "table")]
    format: String,
}

#[derive(Args)]
struct NameArg {
    image: String,
}

impl Cli {
    /// The store root (resolved in `main`: the flag, or the user's default).
    fn root(&self) -> PathBuf {
        self.root.clone().unwrap_or_else(strata::rootless::default_root)
    }
}

fn main() -> ExitCode {
    if std::env::var_os(strata::rootless::PAUSE_ENV).is_some() {
        strata::rootless::pause();
    }
    strata::fault::setup();
    let parsed = Cli::command().try_get_matches().and_then(|m| Ok((Cli::from_arg_matches(&m)?, m)));
    let (cli, matches) = match parsed {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 125 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    // An ordinary user's commands run in their user namespace (before any thread starts).
    match strata::rootless::enter() {
        Ok(warnings) => warnings.iter().for_each(|w| eprintln!("[Warning] {w}")),
        Err(e) => {
            eprintln!("Error: rootless mode: {e}");
            return ExitCode::from(125);
        }
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(format!(
                "{},libcgroups=error{}",
                cli.log_level,
                if strata::trace::enabled() { ",strata::trace=info" } else { "" }
            ))
            .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(io::stderr)
        .with_ansi(io::IsTerminal::is_terminal(&io::stderr()))
        .without_time()
        .init();
    // Docker: a failure of strata itself while running a container is 125; other commands fail with 1.
    let failure = if matches!(
        cli.command,
        Command::Run(_) | Command::Create(_) | Command::Start(_) | Command::Exec(_) | Command::Attached(_)
    ) {
        125
    } else {
        1
    };
    let root = cli.root();
    // The command's name, for an error that must say what stopped.
    let mut verb = Vec::new();
    let mut m = &matches;
    while let Some((name, sub)) = m.subcommand() {
        verb.push(name);
        m = sub;
    }
    let verb = verb.join(" ");
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            let no_space = e.chain().any(|c| c.downcast_ref::<strata::error::Error>().is_some_and(|e| e.is_no_space()));
            if no_space {
                eprintln!("Error: no space left on {}: {verb} stopped: {}", root.display(), error_text(&e));
            } else {
                eprintln!("Error: {}", error_text(&e));
            }
            ExitCode::from(failure)
        }
    }
}

/// An error and its causes, each said once: the library's errors already
/// end with their OS error, which is also their `source`.
fn error_text(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let c = cause.to_string();
        if text.is_empty() {
            text = c;
        } else if !text.ends_with(&c) {
            text.push_str(": ");
            text.push_str(&c);
        }
    }
    text
}

fn open(cli: &Cli) -> Result<Engine> {
    let driver = cli.storage_driver.as_deref().map(str::parse::<Driver>).transpose()?;
    Ok(Engine::open(EngineOptions { root: cli.root(), driver })?)
}

fn run(cli: Cli) -> Result<ExitCode> {
    let engine = open(&cli)?;
    let global = vec![
        "--root".to_string(),
        cli.root().display().to_string(),
        "--storage-driver".to_string(),
        engine.driver().to_string(),
        "--log-level".to_string(),
        cli.log_level.clone(),
    ];
    match cli.command {
        Command::Build(a) => images::build(&engine, a),
        Command::Image(ImageCommand::Build(a)) => images::build(&engine, *a),
        Command::Builder(BuilderCommand::Prune(a)) => images::builder_prune(&engine, a),
        Command::Builder(BuilderCommand::Explain(a)) => explore::explain(&engine, a),
        Command::Pull(a) => registry::pull(&engine, a),
        Command::Push(a) => registry::push(&engine, a),
        Command::Login(a) => registry::login(a),
        Command::Logout(a) => {
            if strata::registry::auth::remove(&a.registry)? {
                println!("Removed login credentials for {}", a.registry);
                Ok(ExitCode::SUCCESS)
            } else {
                bail!("not logged in to {}", a.registry)
            }
        }
        Command::Run(a) => containers::run(&engine, a, &global),
        Command::Create(a) => containers::create(&engine, a),
        Command::Start(a) => containers::start(&engine, a, &global),
        Command::Ps(a) | Command::Container(ContainerCommand::Ls(a)) => containers::ps(&engine, a),
        Command::Logs(a) => containers::logs(&engine, a),
        Command::Stop(a) => containers::stop(&engine, a),
        Command::Kill(a) => containers::kill(&engine, a),
        Command::Rm(a) | Command::Container(ContainerCommand::Rm(a)) => containers::rm(&engine, a),
        Command::Wait(a) => containers::wait(&engine, a),
        Command::Exec(a) => containers::exec(&engine, a),
        Command::Volume(v) => containers::volume(&engine, v),
        Command::Network(n) => network::network(&engine, n),
        Command::Port(a) => network::port(&engine, a),
        Command::Cp(a) => copy::cp(&engine, a),
        Command::Export(a) => copy::export(&engine, a),
        Command::Restart(a) => containers::restart(&engine, a, &global),
        Command::Top(a) => containers::top(&engine, a),
        Command::Attach(a) => containers::attach(&engine, a),
        Command::Stats(a) => containers::stats(&engine, a),
        Command::Update(a) => containers::update(&engine, a),
        Command::Pause(a) => {
            for c in &a.containers {
                engine.containers().pause(c)?;
                println!("{c}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Unpause(a) => {
            for c in &a.containers {
                engine.containers().unpause(c)?;
                println!("{c}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Info(a) => system::info(&engine, a),
        Command::Events(a) => system::events(&engine, a),
        Command::Version(a) => system::version(a),
        Command::Rename(a) => {
            engine.containers().rename(&a.container, &a.new_name)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Diff(a) => containers::diff(&engine, a),
        Command::Commit(a) => containers::commit(&engine, a),
        Command::Container(ContainerCommand::Prune(a)) => containers::prune(&engine, a),
        Command::Container(ContainerCommand::Inspect(a)) => containers::inspect(&engine, a),
        Command::Attached(a) => containers::attached_waiter(&engine, a),
        Command::Monitor(a) => {
            let exe = std::env::current_exe().map_err(|e| anyhow::anyhow!("finding the strata binary: {e}"))?;
            let code = engine.containers().monitor(&a.container, a.exited, &exe, &global)?;
            Ok(ExitCode::from(code as u8))
        }
        Command::Probe(a) => {
            engine.containers().probe_health(&a.container, a.in_start_period)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Import(a) | Command::Image(ImageCommand::Import(a)) => images::import(&engine, a),
        Command::Load(a) | Command::Image(ImageCommand::Load(a)) => images::load(&engine, a),
        Command::Save(a) | Command::Image(ImageCommand::Save(a)) => images::save(&engine, a),
        Command::Images(a) | Command::Image(ImageCommand::Ls(a)) => images::images(&engine, a),
        Command::Tag(a) | Command::Image(ImageCommand::Tag(a)) => {
            engine.images().tag(&a.source, &a.target)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Rmi(a) | Command::Image(ImageCommand::Rm(a)) => images::rmi(&engine, a),
        Command::Inspect(a) => containers::inspect_any(&engine, a),
        Command::Image(ImageCommand::Inspect(a)) => images::inspect(&engine, a),
        Command::History(a) | Command::Image(ImageCommand::History(a)) => images::history(&engine, a),
        Command::Image(ImageCommand::Prune(a)) => system::prune(&engine, a, false),
        Command::Image(ImageCommand::Layers(a)) => explore::layers(&engine, a),
        Command::Image(ImageCommand::Diff(a)) => explore::diff(&engine, a),
        Command::Image(ImageCommand::Tree(a)) => explore::tree(&engine, a),
        Command::Image(ImageCommand::Explore(a)) => explore_view::explore(&engine, a),
        Command::Image(ImageCommand::Mount(a)) => {
            println!("{}", engine.images().mount(&a.image)?.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Image(ImageCommand::Unmount(a)) => {
            engine.images().unmount(&a.image)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::System(SystemCommand::Df(a)) => system::df(&engine, a),
        Command::System(SystemCommand::Prune(a)) => system::prune(&engine, a, true),
        Command::System(SystemCommand::Check(a)) => system::check(&engine, a),
    }
}

pub(crate) fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}
