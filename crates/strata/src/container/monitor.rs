//! Detached containers, the engine's side: `run -d`/`start` spawn
//! `strata __monitor ID`, which prepares and launches the container and
//! then execs the small `strata-monitor` program (the `strata_monitor`
//! crate) in the same process, handing it the container's output pipes or
//! terminal, the attach socket and a [`Plan`]. The container's init stays
//! that process's child; the pid recorded as its waiter stays the same.
//! When the container exits, the monitor execs `strata __monitor ID
//! --exited CODE`, which records the exit, releases what the container
//! held and applies its restart policy (launching it again and handing
//! over again). Health probes run as `strata __probe ID` processes the
//! monitor starts on its interval.
//!
//! ```text
//! strata run -d ──spawn──▶ strata __monitor ID ──exec──▶ strata-monitor PLAN ──exec──▶ strata __monitor ID --exited CODE
//!                          (launch, record running)      (log, attach, signals,        (record exit, restart policy:
//!                                                         probes: strata __probe ID)    launch and exec again, or end)
//! ```

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use strata_monitor::plan::{self, Plan};

use super::ops::{Launch, Launched};
use super::runtime::{self, Stdio};
use super::{dev_null, restart, Containers, RunConfig};
use crate::error::{Error, IoContext, Result};
use crate::store::{ContainerRecord, ContainerState};

/// The monitor program, installed next to `strata`.
const MONITOR: &str = "strata-monitor";

impl Containers<'_> {
    /// Start a container under a detached `strata` monitor process (whose
    /// output goes to the container's log); returns once it is running or
    /// has already exited.
    pub fn start_detached(&self, name: &str, exe: &Path, global_args: &[String]) -> Result<ContainerRecord> {
        let rec = self.get(name)?;
        if rec.state == ContainerState::Running {
            return Ok(rec);
        }
        if self.is_restarting(&rec) {
            return Err(Error::InUse(format!("container {} is restarting: stop it first", rec.name)));
        }
        // Said here, not only in the monitor's log: an image a repair marked damaged.
        self.core.usable_layers(&rec.image_id)?;
        // A manual start: its restart policy applies again.
        super::restart::clear_stopped(&self.container_dir(&rec.id));
        let log = self.container_dir(&rec.id).join("container.log");
        let out = File::options().create(true).append(true).open(&log).at(&log)?;
        let err = out.try_clone().at(&log)?;
        let mut cmd = std::process::Command::new(exe);
        cmd.args(global_args).arg("__monitor").arg(&rec.id);
        cmd.stdin(std::process::Stdio::null()).stdout(out).stderr(err);
        // SAFETY: setsid is async-signal-safe; the monitor leaves the CLI's session so it outlives it.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        let mut child = cmd.spawn().at(exe)?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let r = self.core.store.find_container(&rec.id)?.ok_or_else(|| Error::not_found("container", name))?;
            if r.state == ContainerState::Running {
                return Ok(r);
            }
            // The monitor is done: the container ran and exited already (an
            // exited container's earlier exit does not count before this).
            if let Ok(Some(status)) = child.try_wait() {
                let r = self.core.store.find_container(&rec.id)?.ok_or_else(|| Error::not_found("container", name))?;
                if r.state == ContainerState::Exited && r.started.is_some() && r.finished >= rec.finished {
                    return Ok(r);
                }
                return Err(Error::Runtime(format!(
                    "container {} failed to start (monitor exited with {status}); see `strata logs {}`",
                    r.name, r.name
                )));
            }
            if Instant::now() > deadline {
                return Err(Error::Runtime(format!("container {} did not start within 60s", r.name)));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `strata __monitor ID [--exited CODE]`: launch the container and hand
    /// it to the monitor program (this call then does not return); with
    /// `exited`, first record the exit the monitor saw and apply the restart
    /// policy. Returns the exit code when the container stays down.
    pub fn monitor(&self, name: &str, exited: Option<i32>, exe: &Path, global_args: &[String]) -> Result<i32> {
        let rec = match (self.get(name), exited) {
            (Ok(r), _) => r,
            // Removed while it ran (`rm -f`, which released what it held).
            (Err(Error::NotFound { .. }), Some(code)) => return Ok(code),
            (Err(e), _) => return Err(e),
        };
        let dir = self.container_dir(&rec.id);
        let cfg = super::run_config(&rec)?;
        let mut state = restart::State::default();
        let mut last = None;
        if let Some(code) = exited {
            state = restart::read(&dir);
            super::attach::unlisten(&dir);
            self.finish_run(&rec, &cfg, code)?;
            let ran = self.get(&rec.id).ok().and_then(|r| Some(r.finished? - r.started?)).unwrap_or(0);
            last = Some((code, Duration::from_secs(ran.max(0) as u64)));
        }
        loop {
            if let Some((code, ran)) = last {
                // Not holding the store while it waits to restart.
                self.core.unlock();
                if !self.restarts(&dir, &cfg, code, ran, &mut state)? {
                    return Ok(code);
                }
                self.core.relock()?;
            }
            restart::write(&dir, state)?;
            let code = self.launch_watched(&rec, &cfg, exe, global_args)?;
            // It could not run at all: a failure like any other for the policy.
            last = Some((code, Duration::ZERO));
        }
    }

    /// Whether the container runs again after exiting with `code` (after
    /// running for `ran`): Docker's policy and growing delay, cut short by a stop.
    fn restarts(
        &self,
        dir: &Path,
        cfg: &RunConfig,
        code: i32,
        ran: Duration,
        state: &mut restart::State,
    ) -> Result<bool> {
        if !cfg.restart.should_restart(code as i64, state.count, restart::stopped(dir)) {
            return Ok(false);
        }
        state.quick_failures = if ran >= restart::STEADY { 0 } else { state.quick_failures + 1 };
        state.count += 1;
        state.restarting = true;
        restart::write(dir, *state)?;
        let until = Instant::now() + restart::delay(state.quick_failures.saturating_sub(1));
        while Instant::now() < until {
            if restart::stopped(dir) {
                state.restarting = false;
                restart::write(dir, *state)?;
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        state.restarting = false;
        Ok(true)
    }

    /// Launch the container with its output into pipes (or a terminal) and
    /// exec the monitor program to watch it. Returns only when the command
    /// could not be run (its exit code; the reason is in the log).
    fn launch_watched(
        &self,
        rec: &ContainerRecord,
        cfg: &RunConfig,
        exe: &Path,
        global_args: &[String],
    ) -> Result<i32> {
        let monitor = exe.with_file_name(MONITOR);
        if !monitor.is_file() {
            return Err(Error::Runtime(format!(
                "{} is missing: strata needs it next to {} to watch detached containers",
                monitor.display(),
                exe.display()
            )));
        }
        let dir = self.container_dir(&rec.id);
        let log = dir.join("container.log");
        let pipe = || io::pipe().map_err(|e| Error::Runtime(format!("making a pipe for {}'s output: {e}", rec.name)));
        let ((out_r, out_w), (err_r, err_w)) = (pipe()?, pipe()?);
        // Input: none, or what `attach` clients send (`-i`, `-t`): into the
        // terminal once it exists, else into a stdin pipe the monitor keeps open.
        let listener = if cfg.tty || cfg.open_stdin { Some(super::attach::listen(&dir)?) } else { None };
        let (stdin, stdin_sink): (OwnedFd, Option<OwnedFd>) = match &listener {
            Some(_) if !cfg.tty => {
                let (r, w) = pipe()?;
                (r.into(), Some(w.into()))
            }
            _ => (dev_null()?, None),
        };
        if cfg.health.is_some() {
            super::health::write(&dir, &super::health::Health::default())?;
        }
        let stdio = Stdio { stdin, stdout: out_w.into(), stderr: err_w.into(), console_socket: None };
        let l = match self.launch(&rec.id, stdio, true, None)? {
            Launch::Running(l) => l,
            Launch::NotRun(code, msg) => {
                super::attach::unlisten(&dir);
                if let Ok(mut w) = cfg.log.writer(&log) {
                    let _ = w.append(super::logs::Stream::Stderr, format!("{msg}\n").as_bytes());
                }
                return Ok(code);
            }
        };
        let Launched { pid, master, proxy, held, .. } = *l;
        let mut passed: Vec<OwnedFd> = Vec::new();
        let mut pass = |fd: OwnedFd| {
            let raw = fd.as_raw_fd();
            passed.push(fd);
            raw
        };
        let held = held.into_iter().map(&mut pass).collect();
        let (output, sink) = match master {
            Some(m) => {
                let sink = match &listener {
                    Some(_) => Some(m.try_clone().at("the container's terminal")?),
                    None => None,
                };
                (plan::Output::Terminal { master: pass(m) }, sink)
            }
            None => (plan::Output::Pipes { stdout: pass(out_r.into()), stderr: pass(err_r.into()) }, stdin_sink),
        };
        let input = match (listener, sink) {
            (Some(l), Some(s)) => Some(plan::Input { listener: pass(l.into()), sink: pass(s) }),
            _ => None,
        };
        let engine = |cmd: &str| -> Vec<String> {
            let mut v = vec![exe.display().to_string()];
            v.extend(global_args.iter().cloned());
            v.extend([cmd.to_string(), rec.id.clone()]);
            v
        };
        let plan = Plan {
            id: rec.id.clone(),
            pid,
            log: plan::Log {
                path: log.clone(),
                keep: cfg.log.keeps_output(),
                max_size: cfg.log.max_size,
                max_file: cfg.log.max_file.unwrap_or(1),
            },
            output,
            input,
            held,
            health: cfg.health.as_ref().map(|h| plan::Health {
                interval_ms: h.interval().as_millis() as u64,
                start_period_ms: h.start_period().as_millis() as u64,
                probe: engine("__probe"),
            }),
            after: {
                let mut v = engine("__monitor");
                v.push("--exited".into());
                v
            },
        };
        // From here until the monitor reads them, signals for the container
        // wait (blocked) rather than end this process.
        runtime::hold_signals();
        drop(proxy);
        let e = runtime::exec(&monitor, &serde_json::to_string(&plan).expect("a plan serializes"), &passed);
        // Still here: the container runs with no one to watch it. Stop it and say why.
        runtime::release_signals();
        // SAFETY: kill(2) of the container's init, this process's unreaped child.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        let code = runtime::wait(pid)?;
        self.core.relock()?;
        self.finish_run(rec, cfg, code)?;
        Err(Error::Runtime(format!("running {}: {e}", monitor.display())))
    }

    /// `strata __probe ID`: one health probe of a running container, run
    /// by its monitor on the check's interval; the result goes into
    /// health.json, a change of status into a `health_status` event.
    pub fn probe_health(&self, name: &str, in_start_period: bool) -> Result<()> {
        let rec = self.get(name)?;
        let cfg = super::run_config(&rec)?;
        let Some(check) = cfg.health.as_ref().filter(|_| rec.state == ContainerState::Running) else {
            return Ok(());
        };
        // A probe may take its whole timeout: other commands must not wait for it.
        self.core.unlock();
        let dir = self.container_dir(&rec.id);
        let mut health = super::health::read(&dir).unwrap_or_default();
        let probe = self.probe(&rec.id, check);
        if let Some(status) = health.record(check, probe, in_start_period) {
            crate::events::record(
                self.core,
                "container",
                &format!("health_status: {status}"),
                &rec.id,
                &[("name", &rec.name)],
            );
        }
        super::health::write(&dir, &health)
    }

    /// One health probe in a running container: its command as `exec`
    /// runs it, output (4 KiB at most) captured, killed at the timeout.
    fn probe(&self, id: &str, check: &super::health::Check) -> super::health::Probe {
        let start = super::health::timestamp();
        let (exit_code, output) = match self.run_probe(id, check) {
            Ok(r) => r,
            Err(e) => (-1, e.to_string()),
        };
        super::health::Probe { start, end: super::health::timestamp(), exit_code, output }
    }

    fn run_probe(&self, id: &str, check: &super::health::Check) -> Result<(i64, String)> {
        let (rec, process) = match self.exec_process(id, &check.command(), &[], None, None)? {
            Ok(p) => p,
            Err((code, msg)) => return Ok((code as i64, msg)),
        };
        let (out_r, out_w) = io::pipe().map_err(|e| Error::Runtime(format!("a pipe for a health probe: {e}")))?;
        let stdio = Stdio {
            stdin: dev_null()?,
            stdout: out_w.try_clone().map_err(|e| Error::Runtime(e.to_string()))?.into(),
            stderr: out_w.into(),
            console_socket: None,
        };
        let reader = std::thread::spawn(move || {
            let mut kept = Vec::new();
            let mut buf = [0u8; 4096];
            let mut r = out_r;
            while let Ok(n) = io::Read::read(&mut r, &mut buf) {
                if n == 0 {
                    break;
                }
                let room = super::health::OUTPUT_LIMIT.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
            String::from_utf8_lossy(&kept).into_owned()
        });
        let pid = self.runtime_of(&rec)?.exec(&rec.id, &process, stdio)?;
        let code = match runtime::wait_timeout(pid, check.timeout())? {
            Some(code) => code as i64,
            None => {
                // SAFETY: kill(2) of the probe this process started and has not reaped.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                let _ = runtime::wait(pid);
                let _ = reader.join();
                return Ok((-1, format!("Health check exceeded timeout ({:?})", check.timeout())));
            }
        };
        Ok((code, reader.join().unwrap_or_default()))
    }
}
