//! What a build is lent for its RUN steps and must not keep: secrets
//! (`build --secret`, `RUN --mount=type=secret`) and ssh agents (`build
//! --ssh`, `RUN --mount=type=ssh`). Secrets are read once when the build
//! starts; a RUN that mounts one sees it as a file on a private tmpfs,
//! bind-mounted read-only at its target, or as an environment variable of
//! that RUN's process only. An agent is reached through a socket strata
//! serves for the one RUN (owned as the mount asks) and relays to the real
//! agent. None of it enters a layer (mount points are left out of the
//! step's changes), the cache key (only the instruction's text does), the
//! history or the build's output.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::error::{Error, IoContext, Result};
use crate::tmp::TempDir;

/// BuildKit's limit on a secret's size, kept so a build that works here works there.
const MAX_SECRET: u64 = 500 * 1024;

/// The secrets a build was given, by id.
#[derive(Default)]
pub struct Secrets {
    by_id: HashMap<String, Vec<u8>>,
}

impl Secrets {
    /// Read `--secret` specs: `id=ID[,type=file|env][,src|source=FILE][,env=VAR]`;
    /// an `id` alone names an environment variable of that name.
    pub fn read(specs: &[String]) -> Result<Secrets> {
        let mut by_id = HashMap::new();
        for spec in specs {
            let bad = |why: &str| Error::invalid(format!("--secret {spec:?}: {why}"));
            let (mut id, mut kind, mut src, mut env) = (None, None, None, None);
            for part in spec.split(',') {
                match part.split_once('=') {
                    Some(("id", v)) => id = Some(v.to_string()),
                    Some(("type", v @ ("file" | "env"))) => kind = Some(v.to_string()),
                    Some(("src" | "source", v)) => src = Some(v.to_string()),
                    Some(("env", v)) => env = Some(v.to_string()),
                    _ => return Err(bad(&format!("unknown part {part:?} (want id=, type=file|env, src= or env=)"))),
                }
            }
            let id = id.filter(|i| !i.is_empty()).ok_or_else(|| bad("give id=ID"))?;
            let value = match (kind.as_deref(), src, env) {
                (Some("env"), Some(v), None) | (_, None, Some(v)) => std::env::var_os(&v)
                    .map(|v| v.into_encoded_bytes())
                    .ok_or_else(|| bad(&format!("the environment variable {v} is not set")))?,
                (Some("file") | None, Some(f), None) => {
                    let md = fs::metadata(&f).map_err(|e| bad(&format!("{f}: {e}")))?;
                    if md.len() > MAX_SECRET {
                        return Err(bad(&format!(
                            "{f}: larger than {} KiB, the most a secret may be",
                            MAX_SECRET / 1024
                        )));
                    }
                    fs::read(&f).map_err(|e| bad(&format!("{f}: {e}")))?
                }
                (None, None, None) => std::env::var_os(&id)
                    .map(|v| v.into_encoded_bytes())
                    .ok_or_else(|| bad("give src=FILE or env=VAR (or set an environment variable named as the id)"))?,
                _ => return Err(bad("give one of src=FILE and env=VAR")),
            };
            by_id.insert(id, value);
        }
        Ok(Secrets { by_id })
    }

    /// The secret `id`, if the build was given it.
    pub fn get(&self, id: &str) -> Option<&[u8]> {
        self.by_id.get(id).map(Vec::as_slice)
    }
}

/// A private tmpfs for one RUN's secret files; unmounted and removed when
/// dropped (a killed build's is unmounted by the next command's sweep of tmp/).
pub struct SecretFiles {
    dir: TempDir,
    mounted: bool,
    count: usize,
}

impl SecretFiles {
    pub fn new(tmp: &Path) -> Result<SecretFiles> {
        let dir = TempDir::new(tmp, "build-secrets")?;
        use rustix::mount::{mount, MountFlags};
        let flags = MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC;
        mount("tmpfs", dir.path(), "tmpfs", flags, c"mode=0700,size=4m").at(dir.path())?;
        Ok(SecretFiles { dir, mounted: true, count: 0 })
    }

    /// A file holding `value`, owned and moded as the mount asks, to bind-mount.
    pub fn add(&mut self, value: &[u8], uid: u32, gid: u32, mode: u32) -> Result<PathBuf> {
        let p = self.dir.path().join(self.count.to_string());
        self.count += 1;
        fs::write(&p, value).at(&p)?;
        rustix::fs::chown(&p, Some(rustix::fs::Uid::from_raw(uid)), Some(rustix::fs::Gid::from_raw(gid))).at(&p)?;
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).at(&p)?;
        Ok(p)
    }
}

impl Drop for SecretFiles {
    fn drop(&mut self) {
        if self.mounted {
            let _ = crate::snapshot::mount::unmount(self.dir.path());
        }
    }
}

/// The ssh agents a build was given (`--ssh ID[=SOCKET|KEY[,KEY...]]`), by id.
#[derive(Default)]
pub struct Agents {
    by_id: HashMap<String, PathBuf>,
    /// Agents strata started for keys it was given; ended when the build is.
    _started: Vec<StartedAgent>,
}

impl Agents {
    /// `default` (or any id) alone is this process's `SSH_AUTH_SOCK`; a
    /// socket path is that agent; key files are loaded into an agent
    /// strata starts (OpenSSH's `ssh-agent` and `ssh-add`: no agent is
    /// written here) that lives as long as the build.
    pub fn start(specs: &[String], tmp: &Path) -> Result<Agents> {
        let mut out = Agents::default();
        for spec in specs {
            let bad = |why: String| Error::invalid(format!("--ssh {spec:?}: {why}"));
            let (id, paths) = match spec.split_once('=') {
                Some((id, p)) => (id, p.split(',').map(PathBuf::from).collect::<Vec<_>>()),
                None => (spec.as_str(), Vec::new()),
            };
            if id.is_empty() {
                return Err(bad("give an id (default, or a name RUN --mount=type=ssh,id= uses)".into()));
            }
            let socket = match paths.as_slice() {
                [] => PathBuf::from(std::env::var_os("SSH_AUTH_SOCK").ok_or_else(|| {
                    bad("SSH_AUTH_SOCK is not set: start an agent, or give its socket or key files".into())
                })?),
                [one] if is_socket(one) => one.clone(),
                keys => {
                    for k in keys {
                        if !k.is_file() {
                            return Err(bad(format!("{}: neither an agent's socket nor a key file", k.display())));
                        }
                    }
                    let agent = StartedAgent::start(tmp, keys).map_err(|e| bad(e.to_string()))?;
                    let s = agent.socket.clone();
                    out._started.push(agent);
                    s
                }
            };
            if !is_socket(&socket) {
                return Err(bad(format!("{}: not a socket (is the agent running?)", socket.display())));
            }
            out.by_id.insert(id.to_string(), socket);
        }
        Ok(out)
    }

    /// The socket of the agent `id`, if the build was given it.
    pub fn get(&self, id: &str) -> Option<&Path> {
        self.by_id.get(id).map(PathBuf::as_path)
    }
}

fn is_socket(p: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    fs::metadata(p).is_ok_and(|m| m.file_type().is_socket())
}

/// An `ssh-agent` strata started, holding the keys it was given.
struct StartedAgent {
    _dir: TempDir,
    socket: PathBuf,
    child: Child,
}

impl StartedAgent {
    fn start(tmp: &Path, keys: &[PathBuf]) -> Result<StartedAgent> {
        let dir = TempDir::new(tmp, "build-ssh-agent")?;
        let socket = dir.path().join("agent.sock");
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| Error::invalid(format!("starting ssh-agent (OpenSSH's openssh-client): {e}")))?;
        let mut agent = StartedAgent { _dir: dir, socket, child };
        // The agent makes its socket before it serves; wait for it (bounded: a broken agent fails the build).
        for _ in 0..500 {
            if is_socket(&agent.socket) {
                break;
            }
            if let Some(status) = agent.child.try_wait().at(&agent.socket)? {
                return Err(Error::invalid(format!("ssh-agent ended at once ({status})")));
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let out = Command::new("ssh-add")
            .args(keys)
            .env("SSH_AUTH_SOCK", &agent.socket)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| Error::invalid(format!("ssh-add: {e}")))?;
        if !out.status.success() {
            return Err(Error::invalid(format!(
                "ssh-add could not load the keys: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(agent)
    }
}

impl Drop for StartedAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A socket one RUN reaches an agent through: connections to it are
/// relayed to the agent's socket until this is dropped. Its own socket
/// lets the mount give it the owner and mode a non-root RUN needs, which
/// the agent's socket on the host does not have.
pub struct AgentRelay {
    dir: TempDir,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl AgentRelay {
    pub fn new(tmp: &Path, agent: &Path, uid: u32, gid: u32, mode: u32) -> Result<AgentRelay> {
        let dir = TempDir::new(tmp, "build-ssh")?;
        let path = dir.path().join("agent.sock");
        let listener = UnixListener::bind(&path).at(&path)?;
        rustix::fs::chown(&path, Some(rustix::fs::Uid::from_raw(uid)), Some(rustix::fs::Gid::from_raw(gid)))
            .at(&path)?;
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).at(&path)?;
        let stop = Arc::new(AtomicBool::new(false));
        let (agent, flag) = (agent.to_path_buf(), stop.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if flag.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(client) = conn else { continue };
                let agent = agent.clone();
                std::thread::spawn(move || {
                    if let Ok(upstream) = UnixStream::connect(&agent) {
                        relay(client, upstream);
                    }
                });
            }
        });
        Ok(AgentRelay { dir, stop, thread: Some(thread) })
    }

    /// The socket to bind-mount into the RUN.
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("agent.sock")
    }
}

impl Drop for AgentRelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accepting thread so it sees the flag.
        let _ = UnixStream::connect(self.socket());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Copy bytes both ways until either side closes.
fn relay(a: UnixStream, b: UnixStream) {
    let (Ok(a2), Ok(b2)) = (a.try_clone(), b.try_clone()) else { return };
    let up = std::thread::spawn(move || pipe(a, b2));
    pipe(b, a2);
    let _ = up.join();
}

fn pipe(mut from: UnixStream, mut to: UnixStream) {
    let _ = io::copy(&mut from, &mut to);
    let _ = to.shutdown(std::net::Shutdown::Write);
}
