//! `strata`: the command line. Parses Docker's command names and flags,
//! calls the engine, prints Docker's tables and JSON, and maps errors to
//! Docker's exit codes (1 for a failed command, 125 for bad usage).

mod containers;
mod format;

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use strata::engine::{display_tag, Removal};
use strata::image::archive::SaveFormat;
use strata::image::reference::{familiar, split_tag};
use strata::snapshot::Driver;
use strata::{Engine, EngineOptions};

use format::{human_duration, human_size, Table};

#[derive(Parser)]
#[command(name = "strata", version, about = "A daemonless container engine built on shared, content-addressed layers")]
struct Cli {
    /// Store root directory.
    #[arg(long, global = true, env = "STRATA_ROOT", default_value = "/var/lib/strata")]
    root: PathBuf,
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
    Wait(NamesArg),
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
    /// (internal) Watch a detached container.
    #[command(name = "__monitor", hide = true)]
    Monitor(ContainerArg),
    /// Manage the store.
    #[command(subcommand)]
    System(SystemCommand),
}

#[derive(Subcommand)]
enum BuilderCommand {
    /// Remove the build cache (cached steps, their layers, cache mounts).
    Prune(PruneArgs),
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
    /// Name and optionally a tag (NAME[:TAG]); may be given more than once.
    #[arg(short, long = "tag")]
    tag: Vec<String>,
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
    /// The context: a directory, or - for a tar (or a lone Dockerfile) on standard input.
    context: String,
}

#[derive(Subcommand)]
enum ImageCommand {
    /// Build an image from a Dockerfile.
    Build(BuildArgs),
    /// List images.
    #[command(alias = "list")]
    Ls(ImagesArgs),
    /// Remove images.
    Rm(RmiArgs),
    /// Show an image's details as JSON.
    Inspect(InspectArgs),
    /// Show an image's history.
    History(HistoryArgs),
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
    Inspect(VolumeNames),
    /// Remove volumes (refused while a container uses one).
    Rm(VolumeRmArgs),
    /// Remove every volume no container uses.
    Prune(PruneArgs),
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
    /// Output format: table or json.
    #[arg(long, default_value = "table")]
    pub(crate) format: String,
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
    /// Network: none (default: loopback only) or host.
    #[arg(long)]
    pub(crate) network: Option<String>,
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
    #[arg(required = true)]
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
    /// Output format: table or json.
    #[arg(long, default_value = "table")]
    pub(crate) format: String,
}

#[derive(Args)]
pub(crate) struct LogsArgs {
    /// Keep following the output.
    #[arg(short, long)]
    pub(crate) follow: bool,
    pub(crate) container: String,
}

#[derive(Args)]
pub(crate) struct StopArgs {
    /// Seconds to wait before killing.
    #[arg(short, long, default_value_t = 10)]
    pub(crate) time: u64,
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
    /// Output format: table or json.
    #[arg(long, default_value = "table")]
    format: String,
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

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 125 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(format!("{},libcgroups=error", cli.log_level))
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(io::stderr)
        .without_time()
        .init();
    // Docker: a failure of strata itself while running a container is 125; other commands fail with 1.
    let failure = if matches!(cli.command, Command::Run(_) | Command::Create(_) | Command::Start(_) | Command::Exec(_))
    {
        125
    } else {
        1
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("Error: {e:#}");
            ExitCode::from(failure)
        }
    }
}

fn open(cli: &Cli) -> Result<Engine> {
    let driver = cli.storage_driver.as_deref().map(str::parse::<Driver>).transpose()?;
    Ok(Engine::open(EngineOptions { root: cli.root.clone(), driver })?)
}

fn run(cli: Cli) -> Result<ExitCode> {
    let mut engine = open(&cli)?;
    let global = vec![
        "--root".to_string(),
        cli.root.display().to_string(),
        "--storage-driver".to_string(),
        engine.driver().to_string(),
        "--log-level".to_string(),
        cli.log_level.clone(),
    ];
    match cli.command {
        Command::Build(a) | Command::Image(ImageCommand::Build(a)) => build(&mut engine, a),
        Command::Builder(BuilderCommand::Prune(a)) => builder_prune(&mut engine, a),
        Command::Pull(a) => pull(&mut engine, a),
        Command::Push(a) => push(&mut engine, a),
        Command::Login(a) => login(a),
        Command::Logout(a) => {
            if strata::registry::auth::remove(&a.registry)? {
                println!("Removed login credentials for {}", a.registry);
                Ok(ExitCode::SUCCESS)
            } else {
                bail!("not logged in to {}", a.registry)
            }
        }
        Command::Run(a) => containers::run(&mut engine, a, &global),
        Command::Create(a) => containers::create(&mut engine, a),
        Command::Start(a) => containers::start(&mut engine, a, &global),
        Command::Ps(a) | Command::Container(ContainerCommand::Ls(a)) => containers::ps(&mut engine, a),
        Command::Logs(a) => containers::logs(&mut engine, a),
        Command::Stop(a) => containers::stop(&mut engine, a),
        Command::Kill(a) => containers::kill(&mut engine, a),
        Command::Rm(a) | Command::Container(ContainerCommand::Rm(a)) => containers::rm(&mut engine, a),
        Command::Wait(a) => containers::wait(&mut engine, a),
        Command::Exec(a) => containers::exec(&mut engine, a),
        Command::Volume(v) => containers::volume(&mut engine, v),
        Command::Diff(a) => containers::diff(&mut engine, a),
        Command::Commit(a) => containers::commit(&mut engine, a),
        Command::Container(ContainerCommand::Prune(a)) => containers::prune(&mut engine, a),
        Command::Container(ContainerCommand::Inspect(a)) => containers::inspect(&mut engine, a),
        Command::Monitor(a) => {
            let code = engine.monitor(&a.container)?;
            Ok(ExitCode::from(code as u8))
        }
        Command::Import(a) | Command::Image(ImageCommand::Import(a)) => import(&mut engine, a),
        Command::Load(a) | Command::Image(ImageCommand::Load(a)) => load(&mut engine, a),
        Command::Save(a) | Command::Image(ImageCommand::Save(a)) => save(&engine, a),
        Command::Images(a) | Command::Image(ImageCommand::Ls(a)) => images(&engine, a),
        Command::Tag(a) | Command::Image(ImageCommand::Tag(a)) => {
            engine.tag(&a.source, &a.target)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Rmi(a) | Command::Image(ImageCommand::Rm(a)) => rmi(&mut engine, a),
        Command::Inspect(a) => containers::inspect_any(&mut engine, a),
        Command::Image(ImageCommand::Inspect(a)) => inspect(&engine, a),
        Command::History(a) | Command::Image(ImageCommand::History(a)) => history(&engine, a),
        Command::Image(ImageCommand::Prune(a)) => prune(&mut engine, a, false),
        Command::Image(ImageCommand::Mount(a)) => {
            println!("{}", engine.mount_image(&a.image)?.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Image(ImageCommand::Unmount(a)) => {
            engine.unmount_image(&a.image)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::System(SystemCommand::Df(a)) => df(&engine, a),
        Command::System(SystemCommand::Prune(a)) => prune(&mut engine, a, true),
    }
}

fn build(engine: &mut Engine, a: BuildArgs) -> Result<ExitCode> {
    let context = if a.context == "-" {
        strata::build::ContextSource::Stream(Box::new(io::stdin()))
    } else {
        strata::build::ContextSource::Dir(PathBuf::from(&a.context))
    };
    let mut opts = strata::build::BuildOptions {
        context,
        file: a.file,
        tags: a.tag,
        build_args: a.build_arg,
        target: a.target,
        no_cache: a.no_cache,
        quiet: a.quiet,
        platform: a.platform,
        labels: a.label,
        pull: a.pull,
        progress: progress(a.quiet),
    };
    let mut out = io::stdout();
    match engine.build(&mut opts, &mut out) {
        Ok(id) => {
            println!("{}", if a.quiet { id.to_string() } else { id.hex().to_string() });
            Ok(ExitCode::SUCCESS)
        }
        Err(e @ strata::Error::StepFailed { code, .. }) => {
            eprintln!("Error: {e}");
            Ok(ExitCode::from(code.clamp(1, 255) as u8))
        }
        Err(e) => Err(e.into()),
    }
}

fn progress(quiet: bool) -> std::sync::Arc<dyn strata::registry::Progress> {
    if quiet {
        std::sync::Arc::new(strata::registry::Quiet)
    } else {
        std::sync::Arc::new(format::TransferProgress::new(io::stderr().is_terminal()))
    }
}

fn pull(engine: &mut Engine, a: PullArgs) -> Result<ExitCode> {
    let opts = strata::registry::PullOptions {
        platform: a.platform.clone(),
        registry: a.transport.options(a.max_concurrent_downloads),
    };
    let id = engine.pull(&a.image, &opts, progress(a.quiet))?;
    if a.quiet {
        println!("{id}");
    } else {
        let name = strata::image::Reference::parse(&a.image)?;
        println!("Status: Downloaded image for {}", display_tag(&name.to_string()));
        println!("{id}");
    }
    Ok(ExitCode::SUCCESS)
}

fn push(engine: &mut Engine, a: PushArgs) -> Result<ExitCode> {
    let opts = a.transport.options(a.max_concurrent_uploads);
    let digest = engine.push(&a.image, a.destination.as_deref(), &opts, progress(a.quiet))?;
    if a.quiet {
        println!("{digest}");
    } else {
        let dest = a.destination.as_deref().unwrap_or(&a.image);
        println!("{dest}: digest: {digest}");
    }
    Ok(ExitCode::SUCCESS)
}

fn login(a: LoginArgs) -> Result<ExitCode> {
    let user = match a.username {
        Some(u) => u,
        None => {
            if !io::stdin().is_terminal() || a.password_stdin {
                bail!("login needs --username (-u)");
            }
            print!("Username: ");
            io::stdout().flush()?;
            let mut u = String::new();
            io::stdin().read_line(&mut u)?;
            u.trim().to_string()
        }
    };
    let password = match (a.password, a.password_stdin) {
        (Some(_), true) => bail!("--password and --password-stdin are mutually exclusive"),
        (Some(p), false) => p,
        (None, true) => {
            let mut p = String::new();
            io::stdin().read_line(&mut p)?;
            p.trim_end_matches(['\n', '\r']).to_string()
        }
        (None, false) => bail!("give the password with --password-stdin (or --password)"),
    };
    if user.is_empty() || password.is_empty() {
        bail!("user name and password must not be empty");
    }
    strata::registry::login(&a.registry, &user, &password, &a.transport.options(0))?;
    println!("Login Succeeded");
    Ok(ExitCode::SUCCESS)
}

fn builder_prune(engine: &mut Engine, a: PruneArgs) -> Result<ExitCode> {
    if !a.force && !confirm("WARNING! This will remove all build cache.\nAre you sure you want to continue?")? {
        return Ok(ExitCode::SUCCESS);
    }
    let (_, freed) = engine.prune_build_cache()?;
    println!("Total reclaimed space: {}", human_size(freed));
    Ok(ExitCode::SUCCESS)
}

fn import(engine: &mut Engine, a: ImportArgs) -> Result<ExitCode> {
    let input = (a.file != "-").then(|| PathBuf::from(&a.file));
    let id = engine.import(input.as_deref(), a.reference.as_deref(), a.message.as_deref())?;
    println!("{id}");
    Ok(ExitCode::SUCCESS)
}

fn load(engine: &mut Engine, a: LoadArgs) -> Result<ExitCode> {
    if a.input.is_none() && io::stdin().is_terminal() {
        bail!("requested load from stdin, but stdin is empty");
    }
    let loaded = engine.load(a.input.as_deref())?;
    if !a.quiet {
        for l in loaded {
            if l.tags.is_empty() {
                println!("Loaded image ID: {}", l.id);
            }
            for t in &l.tags {
                println!("Loaded image: {}", display_tag(t));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn save(engine: &Engine, a: SaveArgs) -> Result<ExitCode> {
    let format: SaveFormat = a.format.parse()?;
    if a.output.is_none() && io::stdout().is_terminal() {
        bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
    }
    let stdout = io::stdout();
    let mut out = io::BufWriter::with_capacity(1 << 20, stdout.lock());
    engine.save(&a.images, format, a.output.as_deref(), &mut out)?;
    out.flush().context("writing to standard output")?;
    Ok(ExitCode::SUCCESS)
}

fn short_id(id: &strata::Digest, no_trunc: bool) -> String {
    if no_trunc {
        id.to_string()
    } else {
        id.short().to_string()
    }
}

fn images(engine: &Engine, a: ImagesArgs) -> Result<ExitCode> {
    let filter = a.reference.as_deref().map(strata::image::Reference::parse).transpose()?;
    let now = now();
    let mut rows = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for img in engine.images()? {
        let mut tags: Vec<(String, String)> = img
            .tags
            .iter()
            .map(|t| {
                let (n, tag) = split_tag(t);
                (n.to_string(), tag.to_string())
            })
            .collect();
        if let Some(f) = &filter {
            tags.retain(|(n, t)| {
                *n == f.name()
                    && (a.reference.as_deref().is_some_and(|r| !r.contains(':')) || Some(t) == f.tag.as_ref())
            });
            if tags.is_empty() {
                continue;
            }
        }
        if tags.is_empty() {
            tags.push(("<none>".into(), "<none>".into()));
        }
        for (name, tag) in tags {
            if a.quiet {
                if seen.insert(img.id.clone()) {
                    println!("{}", short_id(&img.id, a.no_trunc));
                }
                continue;
            }
            let repo = if name == "<none>" { name } else { familiar(&name) };
            rows.push((repo, tag, img.clone()));
        }
    }
    if a.quiet {
        return Ok(ExitCode::SUCCESS);
    }
    match a.format.as_str() {
        "json" => {
            for (repo, tag, img) in rows {
                let v = serde_json::json!({
                    "Repository": repo,
                    "Tag": tag,
                    "ID": short_id(&img.id, a.no_trunc),
                    "Digest": "<none>",
                    "CreatedAt": strata::image::format_time(img.created),
                    "CreatedSince": human_duration(now - img.created),
                    "Size": human_size(img.size),
                    "VirtualSize": human_size(img.size),
                });
                println!("{v}");
            }
        }
        "table" => {
            let mut t = Table::new(&["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]);
            for (repo, tag, img) in rows {
                t.row(vec![
                    repo,
                    tag,
                    short_id(&img.id, a.no_trunc),
                    human_duration(now - img.created),
                    human_size(img.size),
                ]);
            }
            t.print();
        }
        other => bail!("unknown format {other:?}: want table or json"),
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

fn rmi(engine: &mut Engine, a: RmiArgs) -> Result<ExitCode> {
    for r in engine.rmi(&a.images, a.force)? {
        match r {
            Removal::Untagged(t) => println!("Untagged: {t}"),
            Removal::Deleted(d) => println!("Deleted: {d}"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn inspect(engine: &Engine, a: InspectArgs) -> Result<ExitCode> {
    let mut out = Vec::new();
    let mut failed = false;
    for n in &a.names {
        match engine.inspect_image(n) {
            Ok(v) => out.push(v),
            Err(e) => {
                eprintln!("Error: {e}");
                failed = true;
            }
        }
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn history(engine: &Engine, a: HistoryArgs) -> Result<ExitCode> {
    let rows = engine.history(&a.image)?;
    let now = now();
    let id_col = |id: &Option<strata::Digest>| {
        id.as_ref().map(|d| short_id(d, a.no_trunc)).unwrap_or_else(|| "<missing>".into())
    };
    if a.quiet {
        for r in &rows {
            println!("{}", id_col(&r.id));
        }
        return Ok(ExitCode::SUCCESS);
    }
    match a.format.as_str() {
        "json" => {
            for r in &rows {
                let v = serde_json::json!({
                    "ID": id_col(&r.id),
                    "CreatedAt": strata::image::format_time(r.created),
                    "CreatedSince": human_duration(now - r.created),
                    "CreatedBy": r.created_by,
                    "Size": human_size(r.size),
                    "Comment": r.comment,
                });
                println!("{v}");
            }
        }
        "table" => {
            let mut t = Table::new(&["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"]);
            for r in &rows {
                let by = if a.no_trunc { r.created_by.clone() } else { format::truncate(&r.created_by, 45) };
                t.row(vec![id_col(&r.id), human_duration(now - r.created), by, human_size(r.size), r.comment.clone()]);
            }
            t.print();
        }
        other => bail!("unknown format {other:?}: want table or json"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Ask on stdout, read the answer from stdin (a terminal or not, as Docker):
/// only "y" or "yes" is a yes; the end of input is a no.
pub(crate) fn confirm(question: &str) -> Result<bool> {
    print!("{question} [y/N] ");
    io::stdout().flush()?;
    let mut answer = String::new();
    if io::stdin().read_line(&mut answer)? == 0 {
        println!();
        return Ok(false);
    }
    Ok(matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes"))
}

fn prune(engine: &mut Engine, a: PruneArgs, system: bool) -> Result<ExitCode> {
    let what = match (system, a.all) {
        (true, _) => "This will remove:\n  - all stopped containers\n  - all dangling images\n  - all build cache\n  - unused layers and blobs\nAre you sure you want to continue?",
        (false, false) => "WARNING! This will remove all dangling images.\nAre you sure you want to continue?",
        (false, true) => "WARNING! This will remove all images without at least one container associated to them.\nAre you sure you want to continue?",
    };
    if !a.force && !confirm(what)? {
        return Ok(ExitCode::SUCCESS);
    }
    let report = if system { engine.system_prune(a.all)? } else { engine.prune_images(a.all)? };
    if !report.containers.is_empty() {
        println!("Deleted Containers:");
        for c in &report.containers {
            println!("{c}");
        }
        println!();
    }
    if !report.images.is_empty() {
        println!("Deleted Images:");
        for d in &report.images {
            println!("deleted: {d}");
        }
        for d in &report.layers {
            println!("deleted: {d}");
        }
        println!();
    }
    println!("Total reclaimed space: {}", human_size(report.reclaimed));
    Ok(ExitCode::SUCCESS)
}

fn df(engine: &Engine, a: DfArgs) -> Result<ExitCode> {
    let u = engine.disk_usage()?;
    if a.format == "json" {
        println!("{}", serde_json::to_string_pretty(&u)?);
        return Ok(ExitCode::SUCCESS);
    }
    if a.format != "table" {
        bail!("unknown format {:?}: want table or json", a.format);
    }
    let active = u.images.iter().filter(|i| i.containers > 0).count();
    let images_size: u64 = u.layers_size;
    let reclaimable: u64 =
        u.images.iter().filter(|i| i.containers == 0).map(|i| i.unique_size).sum::<u64>() + u.unused_size;
    let pct = |part: u64, whole: u64| if whole == 0 { 0 } else { part * 100 / whole };
    let mut t = Table::new(&["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]);
    t.row(vec![
        "Images".into(),
        u.images.len().to_string(),
        active.to_string(),
        human_size(images_size),
        format!("{} ({}%)", human_size(reclaimable), pct(reclaimable, images_size)),
    ]);
    t.row(vec![
        "Layers".into(),
        u.layers.to_string(),
        u.layers_in_use.to_string(),
        human_size(u.layers_size),
        format!("{} shared, {} unique", human_size(u.shared_size), human_size(u.unique_size)),
    ]);
    t.row(vec![
        "Containers".into(),
        u.containers.to_string(),
        u.containers_running.to_string(),
        human_size(u.containers_size),
        human_size(u.containers_size),
    ]);
    t.row(vec![
        "Local Volumes".into(),
        u.volumes.to_string(),
        u.volumes_active.to_string(),
        human_size(u.volumes_size),
        human_size(u.volumes_size),
    ]);
    t.print();
    if a.verbose {
        let now = now();
        println!("\nImages space usage:\n");
        let mut t = Table::new(&[
            "REPOSITORY",
            "TAG",
            "IMAGE ID",
            "CREATED",
            "SIZE",
            "SHARED SIZE",
            "UNIQUE SIZE",
            "CONTAINERS",
        ]);
        for i in &u.images {
            let (repo, tag) = match i.tags.first() {
                Some(tg) => {
                    let (n, t) = split_tag(tg);
                    (familiar(n), t.to_string())
                }
                None => ("<none>".into(), "<none>".into()),
            };
            t.row(vec![
                repo,
                tag,
                i.id.short().into(),
                human_duration(now - i.created),
                human_size(i.size),
                human_size(i.shared_size),
                human_size(i.unique_size),
                i.containers.to_string(),
            ]);
        }
        t.print();
    }
    Ok(ExitCode::SUCCESS)
}
