//! RUN: the command in a container (the built-in runtime, host network
//! unless `--network=none`) on a writable snapshot of the stage, with its
//! cache and bind mounts; a non-zero exit stops the build with its code.

use std::fs::{self, File};
use std::io;
use std::os::fd::OwnedFd;
use std::path::PathBuf;

use super::secrets::{AgentRelay, SecretFiles};
use super::snapshot::Snapshot;
use super::{command_args, ignore, Builder, State, PREDEFINED_ARGS};
use crate::confined::Root;
use crate::container::runtime::{self, Stdio};
use crate::container::spec::{self, RunConfig};
use crate::digest::Digest;
use crate::dockerfile::words::{self, Vars};
use crate::dockerfile::{self, CommandForm, Instruction, Located, RunMount};
use crate::error::{Error, IoContext, Result};
use crate::store::LayerRecord;
use crate::tmp::TempDir;
use crate::volume::{MountKind, MountSpec};

impl Builder<'_> {
    pub(super) fn run_step(
        &mut self,
        stage: usize,
        state: &State,
        r: &dockerfile::Run,
        args: &super::StageArgs,
        vars: &Vars,
        st: &Located<Instruction>,
    ) -> Result<(LayerRecord, String)> {
        let line = st.line;
        let shell = state.shell();
        let mut argv = command_args(&r.command, &shell);
        if !r.heredocs.is_empty() {
            let cmd = match &r.command {
                CommandForm::Shell(s) => s.trim().to_string(),
                CommandForm::Exec(_) => return Err(self.err(line, "a heredoc needs the shell form of RUN")),
            };
            let mut script = String::new();
            for (n, hd) in r.heredocs.iter().enumerate() {
                if cmd.is_empty() && r.heredocs.len() == 1 {
                    script = hd.body.clone();
                } else {
                    let delim = format!("STRATA_EOF_{n}");
                    let q = if hd.expand { delim.clone() } else { format!("'{delim}'") };
                    script = format!("{}{cmd} <<{q}\n{}{delim}\n", script, hd.body);
                }
            }
            argv = shell.clone();
            argv.push(script);
        }
        let created_by = format!("RUN {}", argv.join(" "));
        // Mounts: cache directories, tmpfs, and binds from the context or another stage.
        let mut views = Vec::new();
        let mut volumes: Vec<(MountSpec, PathBuf)> = Vec::new();
        let mut points = Vec::new();
        let mut scratch = Vec::new();
        // What the build lends this RUN only: secret files, secret variables, agent relays.
        let mut secret_files: Option<SecretFiles> = None;
        let mut lent_env: Vec<String> = Vec::new();
        let mut relays: Vec<AgentRelay> = Vec::new();
        for m in &r.mounts {
            let id = m.id.as_deref().unwrap_or_default();
            let lent = match m.kind.as_str() {
                "secret" => match self.secrets.get(id) {
                    Some(v) => Some(v),
                    None if m.required => {
                        return Err(self.err(
                            line,
                            format!(
                                "secret {id:?} is required but the build was not given it (--secret id={id},src=FILE)"
                            ),
                        ))
                    }
                    None => continue,
                },
                "ssh" if self.agents.get(id).is_none() => {
                    if m.required {
                        return Err(self.err(
                            line,
                            format!(
                                "ssh agent {id:?} is required but the build was not given it (--ssh {id}[=SOCKET])"
                            ),
                        ));
                    }
                    continue;
                }
                _ => None,
            };
            if let (Some(value), Some(var)) = (lent, &m.env) {
                lent_env.push(format!("{var}={}", String::from_utf8_lossy(value)));
            }
            if m.target.is_empty() && m.kind == "secret" {
                continue;
            }
            let ssh_index = relays.len();
            let target = if m.target.is_empty() {
                format!("/run/buildkit/ssh_agent.{ssh_index}")
            } else {
                words::expand(&m.target, vars, self.df.escape).map_err(|e| self.err(line, e))?
            };
            let target = crate::confined::clean_container_path(&if target.starts_with('/') {
                target
            } else {
                format!("{}/{target}", state.workdir().trim_end_matches('/'))
            });
            if target == "/" {
                return Err(self.err(line, "--mount target=/: cannot mount over the root"));
            }
            let (uid, gid) = (m.uid.unwrap_or(0), m.gid.unwrap_or(0));
            let lent_source = match (m.kind.as_str(), lent) {
                ("secret", Some(value)) => {
                    if secret_files.is_none() {
                        secret_files = Some(SecretFiles::new(&self.core.tmp)?);
                    }
                    let files = secret_files.as_mut().expect("made above");
                    Some(files.add(value, uid, gid, m.mode.unwrap_or(0o400))?)
                }
                ("ssh", _) => {
                    let agent = self.agents.get(id).expect("checked above");
                    let relay = AgentRelay::new(&self.core.tmp, agent, uid, gid, m.mode.unwrap_or(0o600))?;
                    // As BuildKit: the RUN finds its agent through SSH_AUTH_SOCK.
                    lent_env.retain(|e| !e.starts_with("SSH_AUTH_SOCK="));
                    lent_env.push(format!("SSH_AUTH_SOCK={target}"));
                    let sock = relay.socket();
                    relays.push(relay);
                    Some(sock)
                }
                _ => None,
            };
            if let Some(source) = lent_source {
                points.push((target.clone(), true));
                let spec = MountSpec {
                    kind: MountKind::Bind,
                    source: source.display().to_string(),
                    target,
                    readonly: m.kind == "secret",
                    anonymous: false,
                    options: Vec::new(),
                };
                volumes.push((spec, source));
                continue;
            }
            if m.kind == "tmpfs" {
                points.push((target.clone(), false));
                let spec = MountSpec {
                    kind: MountKind::Tmpfs,
                    source: String::new(),
                    target,
                    readonly: false,
                    anonymous: false,
                    options: Vec::new(),
                };
                volumes.push((spec, PathBuf::from("tmpfs")));
                continue;
            }
            let (source, is_file) = match m.kind.as_str() {
                "cache" => (self.cache_dir(m, &target)?, false),
                _ => {
                    let src = m.source.clone().unwrap_or_default();
                    let root = match &m.from {
                        Some(f) => {
                            let v = self.view(f, stage, line)?;
                            let t = v.target.clone();
                            views.push(v);
                            t
                        }
                        None => self.context.root.clone(),
                    };
                    let rel = ignore::clean(&src)
                        .ok_or_else(|| self.err(line, format!("--mount source={src}: outside its root")))?;
                    // Resolved inside its root (symlinks too), as the stage or context itself sees it.
                    let entry = Root::open(&root)?
                        .resolve(&rel)?
                        .ok_or_else(|| self.err(line, format!("--mount source={src}: not found")))?;
                    let md = entry.metadata()?;
                    if !m.readonly {
                        // rw binds may be written; the writes are thrown away, never reaching the source.
                        let copy = TempDir::new(&self.core.tmp, "build-bind")?;
                        let dst = copy.path().join("src");
                        if md.is_dir() {
                            fs::create_dir(&dst).at(&dst)?;
                            crate::tree::copy_tree(&entry.proc_path(), &dst)?;
                        } else {
                            io::copy(&mut entry.open_read()?, &mut File::create(&dst).at(&dst)?).at(&dst)?;
                        }
                        scratch.push(copy);
                        (dst, md.is_file())
                    } else {
                        // The runtime mounts a path: the resolved object's own, which has no
                        // symlink left in it and lies inside the root the kernel resolved it in.
                        if Root::open(&root)?.relative_path(&entry).is_none() {
                            return Err(self.err(line, format!("--mount source={src}: resolves outside its root")));
                        }
                        (fs::read_link(entry.proc_path()).at(&src)?, md.is_file())
                    }
                }
            };
            points.push((target.clone(), is_file));
            let readonly = m.readonly;
            volumes.push((
                MountSpec {
                    kind: MountKind::Bind,
                    source: source.display().to_string(),
                    target,
                    readonly,
                    anonymous: false,
                    options: Vec::new(),
                },
                source,
            ));
        }
        let mut env = args.run_env(state.env());
        for k in PREDEFINED_ARGS {
            if let Some(v) = self.build_args.get(k) {
                if !env.iter().any(|e| e.split('=').next() == Some(k)) {
                    env.push(format!("{k}={v}"));
                }
            }
        }
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.insert(0, spec::DEFAULT_PATH.to_string());
        }
        for e in lent_env {
            let name = e.split('=').next().unwrap_or_default().to_string();
            env.retain(|x| x.split('=').next() != Some(name.as_str()));
            env.push(e);
        }
        let snap = Snapshot::new(self.core, state, &points)?;
        let rootfs = snap.rootfs();
        let root = Root::open(&rootfs)?;
        let workdir = state.workdir();
        root.mkdir_all(&workdir, (0, 0))?;
        let id = crate::tmp::random_hex(32)?;
        let cfg = RunConfig {
            args: argv.clone(),
            env: env.clone(),
            workdir: workdir.clone(),
            user: state.cfg("User").as_str().unwrap_or_default().to_string(),
            hostname: id[..12].to_string(),
            // RUN --network=none|host, else the build's --network, else the default bridge.
            network: match r.network.as_deref().filter(|n| *n != "default").or(self.opts.network.as_deref()) {
                Some("none") => "none".into(),
                Some("host") => "host".into(),
                _ => crate::network::DEFAULT_NETWORK.into(),
            },
            add_hosts: self.opts.add_hosts.clone(),
            resources: self.run_resources.clone(),
            ..Default::default()
        };
        let user = spec::resolve_user(&cfg.user, &root).map_err(|e| self.err(line, e))?;
        let targets: Vec<&str> = points.iter().map(|(t, _)| t.as_str()).collect();
        if let Err((code, msg)) = spec::check_command(&argv, &env, &root, &workdir, &targets) {
            if !self.opts.quiet {
                eprintln!("{msg}");
            }
            return Err(Error::StepFailed { file: self.df.file.clone(), line, instruction: st.text.clone(), code });
        }
        let bundle = snap.dir.path().to_path_buf();
        // Held until the step's command is done: its namespace (and, on the
        // bridge, its setup, torn down when this is dropped).
        let (netns, step_net, view) = match cfg.network.as_str() {
            "host" => (None, None, spec::NetworkView::default()),
            "none" => (Some(crate::network::namespace::LoopbackNamespace::new()?), None, spec::NetworkView::default()),
            _ => {
                let net = StepNetwork::set_up(self.core, &id).map_err(|e| self.err(line, e))?;
                let view = spec::NetworkView::of(&net.setup);
                (None, Some(net), view)
            }
        };
        spec::write_etc_files(&bundle, &cfg, &view)?;
        let ns_path = match &step_net {
            Some(n) => Some(n.setup.netns.clone()),
            None => netns.as_ref().map(|n| n.path()),
        };
        let no_containers =
            |id: &str| Err(crate::error::Error::invalid(format!("a build step shares no namespace ({id})")));
        let spec = spec::build_spec(&id, &cfg, &user, &rootfs, &bundle, &volumes, ns_path.as_deref(), &no_containers)?;
        let cfg_path = bundle.join("config.json");
        fs::write(&cfg_path, serde_json::to_vec(&spec).expect("spec serializes")).at(&cfg_path)?;
        let log = bundle.join("output.log");
        let stdio = if self.opts.quiet {
            let f = File::create(&log).at(&log)?;
            let fd: OwnedFd = f.into();
            Stdio {
                stdin: crate::container::dev_null()?,
                stdout: fd.try_clone().at(&log)?,
                stderr: fd,
                console_socket: None,
            }
        } else {
            self.out.flush().map_err(|e| Error::stream("writing output", e))?;
            Stdio { stdin: crate::container::dev_null()?, ..crate::container::inherit_stdio()? }
        };
        let rt = runtime::for_name(None, &self.core.root.join("runtime"))?;
        // While the command runs, no store lock: rmi and prunes elsewhere must not
        // wait for it. The snapshot's layers are leased, its tmp/ directory is
        // this process's by name, and the build cache keeps earlier steps.
        let chains: Vec<Digest> = state.layers.iter().map(|l| l.chain_id.clone()).collect();
        self.core.store.lease_layers(&chains)?;
        self.core.unlock();
        let proxy = self.opts.sig_proxy.then(runtime::SignalProxy::install);
        let pid = match rt.start(&id, &bundle, stdio) {
            Ok(pid) => {
                if let Some(p) = &proxy {
                    p.forward_to(pid);
                }
                pid
            }
            Err(e) => {
                let _ = rt.delete(&id);
                self.core.relock()?;
                return Err(e);
            }
        };
        let code = runtime::wait(pid);
        drop(proxy);
        let _ = rt.delete(&id);
        drop(relays);
        drop(secret_files);
        self.core.relock()?;
        let code = code?;
        drop(views);
        if code != 0 {
            if self.opts.quiet {
                let _ = io::copy(&mut File::open(&log).at(&log)?, &mut io::stderr());
            }
            return Err(Error::StepFailed { file: self.df.file.clone(), line, instruction: st.text.clone(), code });
        }
        let targets: Vec<&str> = points.iter().map(|(t, _)| t.as_str()).collect();
        let layer = snap.commit(self.core, state, &targets, true, &format!("{}:{line}", self.df.file))?;
        drop(scratch);
        Ok((layer, created_by))
    }

    fn cache_dir(&self, m: &RunMount, target: &str) -> Result<PathBuf> {
        let id = m.id.clone().unwrap_or_else(|| target.to_string());
        let dir = self.core.root.join("build-mounts").join(&Digest::of(id.as_bytes()).hex()[..32]);
        if !dir.exists() {
            let tmp = TempDir::new(&self.core.tmp, "cache-mount")?;
            let p = tmp.path();
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(p, fs::Permissions::from_mode(m.mode.unwrap_or(0o755))).at(p)?;
            rustix::fs::chown(
                p,
                Some(rustix::fs::Uid::from_raw(m.uid.unwrap_or(0))),
                Some(rustix::fs::Gid::from_raw(m.gid.unwrap_or(0))),
            )
            .at(p)?;
            fs::create_dir_all(dir.parent().expect("has parent")).at(&dir)?;
            if fs::rename(p, &dir).is_ok() {
                tmp.keep();
            }
        }
        Ok(dir)
    }
}

/// A RUN step's place on the default network (rootless: on pasta): an
/// endpoint and a setup owned by this build process (no container record),
/// torn down on drop, or by a sweep if the build is killed.
struct StepNetwork<'c> {
    core: &'c crate::core::Core,
    id: String,
    setup: crate::network::Setup,
}

impl<'c> StepNetwork<'c> {
    fn set_up(core: &'c crate::core::Core, id: &str) -> Result<Self> {
        let networks = crate::network::Networks::new(core);
        if crate::rootless::current().is_some() {
            // An ordinary user has no bridge: the step gets a namespace of
            // its own with pasta's user-mode connection, like `run`.
            let attachee = crate::network::Attachee { id, name: &id[..12] };
            let setup = networks.setup_user_mode(&attachee, Vec::new(), Some(crate::store::this_owner()))?;
            return Ok(StepNetwork { core, id: id.to_string(), setup });
        }
        let net = networks.default_network()?;
        networks.attach(id, &net, None, None, &[])?;
        let attachee = crate::network::Attachee { id, name: &id[..12] };
        match networks.setup(&attachee, Vec::new(), &[], Some(crate::store::this_owner())) {
            Ok(setup) => Ok(StepNetwork { core, id: id.to_string(), setup }),
            Err(e) => {
                let _ = networks.detach(id, &net.name);
                Err(e)
            }
        }
    }
}

impl Drop for StepNetwork<'_> {
    fn drop(&mut self) {
        if let Err(e) = crate::network::Networks::new(self.core).teardown(&self.id) {
            tracing::warn!("tearing down a build step's network: {e}");
        }
    }
}
