//! The container commands: flags to engine calls, Docker's output and exit codes.

use std::io::{self, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use strata::container::{inherit_stdio, Attach, CreateOptions};
use strata::store::ContainerState;
use strata::Engine;

use crate::format::{human_duration, human_size, truncate, Table};
use crate::{
    CommitArgs, ContainerArg, InspectArgs, KillArgs, LogsArgs, PruneArgs, PsArgs, RmArgs, RunArgs, StartArgs, StopArgs,
};

/// `--memory`: a size above zero, in Docker's units.
fn parse_memory(s: &str) -> Result<u64> {
    match strata::units::parse_size("-m, --memory", s)? {
        0 => bail!("invalid argument {s:?} for \"-m, --memory\" flag: want a size above zero"),
        n => Ok(n),
    }
}

fn options(a: &RunArgs) -> Result<CreateOptions> {
    let memory = a.memory.as_deref().map(parse_memory).transpose()?;
    let cpus = match &a.cpus {
        Some(c) => match c.parse::<f64>() {
            Ok(n) if n > 0.0 => Some(n),
            _ => bail!("invalid argument {c:?} for \"--cpus\" flag: want a positive number"),
        },
        None => None,
    };
    if let Some(p) = a.pids_limit {
        if p == 0 || p < -1 {
            bail!("invalid argument {p} for \"--pids-limit\" flag");
        }
    }
    if let Some(u) = a.userns.as_deref().filter(|u| *u != "host" && !u.is_empty()) {
        bail!("invalid --userns {u:?}: only host is supported");
    }
    let mut env = Vec::new();
    for f in &a.env_file {
        let text = std::fs::read_to_string(f).with_context(|| format!("reading env file {}", f.display()))?;
        env.extend(text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(String::from));
    }
    env.extend(a.env.iter().cloned());
    Ok(CreateOptions {
        name: a.name.clone(),
        env,
        workdir: a.workdir.clone(),
        user: a.user.clone(),
        entrypoint: a.entrypoint.clone(),
        cmd: a.command.clone(),
        hostname: a.hostname.clone(),
        networks: a.network.clone(),
        network_aliases: a.network_alias.clone(),
        ip: a.ip.clone(),
        mac_address: a.mac_address.clone(),
        publish: a.publish.clone(),
        publish_all: a.publish_all,
        dns: a.dns.clone(),
        dns_search: a.dns_search.clone(),
        add_hosts: a.add_host.clone(),
        labels: a.label.clone(),
        read_only: a.read_only,
        auto_remove: a.rm,
        memory: memory.map(|m| m as i64),
        cpus,
        pids_limit: a.pids_limit,
        runtime: a.runtime.clone(),
        tty: a.tty,
        open_stdin: a.interactive,
        security: strata::container::security::SecurityFlags {
            cap_add: a.cap_add.clone(),
            cap_drop: a.cap_drop.clone(),
            privileged: a.privileged,
            security_opt: a.security_opt.clone(),
            devices: a.device.clone(),
            device_cgroup_rules: a.device_cgroup_rule.clone(),
            group_add: a.group_add.clone(),
        },
        init: a.init,
        restart: a.restart.clone(),
        log_driver: a.log_driver.clone(),
        log_opts: a.log_opt.clone(),
        health: strata::container::health::HealthFlags {
            cmd: a.health_cmd.clone(),
            interval: a.health_interval.clone(),
            timeout: a.health_timeout.clone(),
            start_period: a.health_start_period.clone(),
            retries: a.health_retries,
            disabled: a.no_healthcheck,
        },
        stop_signal: a.stop_signal.clone(),
        stop_timeout: a.stop_timeout,
        volumes: a.volume.clone(),
        mounts: a.mount.clone(),
        volumes_from: a.volumes_from.clone(),
        tmpfs: a.tmpfs.clone(),
        resources: strata::container::resources::ResourceFlags {
            ulimits: a.ulimit.clone(),
            shm_size: a.shm_size.clone(),
            sysctls: a.sysctl.clone(),
            memory_swap: a.memory_swap.clone(),
            memory_reservation: a.memory_reservation.clone(),
            cpu_shares: a.cpu_shares,
            cpuset_cpus: a.cpuset_cpus.clone(),
            oom_score_adj: a.oom_score_adj,
            pid: a.pid.clone(),
            ipc: a.ipc.clone(),
            uts: a.uts.clone(),
            cgroupns: a.cgroupns.clone(),
        },
    })
}

/// Run a container attached to this terminal; its exit code is ours.
/// Without `-i` its standard input is /dev/null, as Docker's; `streams`
/// (`-a`) limits what is attached, the rest going to /dev/null. A waiter
/// process holds the container, so its exit is recorded even if this
/// process is killed.
fn run_attached(engine: &Engine, id: &str, attach: Attach, streams: &Streams, global: &[String]) -> Result<ExitCode> {
    let mut stdio = inherit_stdio()?;
    if !(attach.interactive && streams.stdin) {
        stdio.stdin = strata::container::dev_null()?;
    }
    if !streams.stdout {
        stdio.stdout = strata::container::dev_null()?;
    }
    if !streams.stderr {
        stdio.stderr = strata::container::dev_null()?;
    }
    let exe = std::env::current_exe().context("finding the strata binary")?;
    let attach = Attach { interactive: attach.interactive && streams.stdin, ..attach };
    let code = engine.containers().run_attached(id, stdio, attach, &exe, global)?;
    Ok(ExitCode::from(code as u8))
}

/// The waiter of an attached run (`__attached`): runs the container with
/// this process's streams and tells the caller its pid on fd 3.
pub fn attached_waiter(engine: &Engine, a: crate::AttachedArgs) -> Result<ExitCode> {
    let started = std::fs::OpenOptions::new().write(true).open("/proc/self/fd/3").context("the caller's pid pipe")?;
    let attach = Attach { interactive: a.interactive, sig_proxy: false };
    let (code, msg) = engine.containers().run_for_caller(&a.container, attach, started)?;
    if let Some(m) = msg {
        eprintln!("Error: {m}");
    }
    Ok(ExitCode::from(code as u8))
}

/// The streams `-a` attaches (all when none is named).
pub(crate) struct Streams {
    stdin: bool,
    stdout: bool,
    stderr: bool,
}

impl Streams {
    const ALL: Streams = Streams { stdin: true, stdout: true, stderr: true };

    fn parse(names: &[String]) -> Result<Self> {
        if names.is_empty() {
            return Ok(Streams::ALL);
        }
        let mut s = Streams { stdin: false, stdout: false, stderr: false };
        for n in names {
            match n.to_ascii_lowercase().as_str() {
                "stdin" => s.stdin = true,
                "stdout" => s.stdout = true,
                "stderr" => s.stderr = true,
                _ => bail!("-a {n}: valid streams are STDIN, STDOUT and STDERR"),
            }
        }
        Ok(s)
    }
}

/// The image `run`/`create` names, pulled as `--pull` says.
fn image_for(engine: &Engine, a: &RunArgs) -> Result<()> {
    let policy: strata::engine::PullPolicy = a.pull.parse()?;
    let opts = strata::registry::PullOptions { platform: a.platform.clone(), registry: Default::default() };
    let announce = |name: &str| eprintln!("Unable to find image '{name}' locally");
    engine.image_for_run(&a.image, policy, &opts, crate::registry::progress(a.quiet), &announce)?;
    Ok(())
}

/// `--cidfile`: refused before anything is created if the file exists
/// (Docker's rule: another container may be using it).
fn check_cidfile(a: &RunArgs) -> Result<()> {
    match &a.cidfile {
        Some(f) if f.exists() => {
            bail!("container ID file found, make sure the other container isn't running or delete {}", f.display())
        }
        _ => Ok(()),
    }
}

/// Write the new container's ID to `--cidfile`.
fn write_cidfile(a: &RunArgs, id: &str) -> Result<()> {
    if let Some(f) = &a.cidfile {
        std::fs::write(f, id).with_context(|| format!("writing --cidfile {}", f.display()))?;
    }
    Ok(())
}

pub fn run(engine: &Engine, a: RunArgs, global: &[String]) -> Result<ExitCode> {
    check_cidfile(&a)?;
    image_for(engine, &a)?;
    if a.detach && !a.attach.is_empty() {
        bail!("conflicting options: -a and -d");
    }
    let streams = Streams::parse(&a.attach)?;
    let o = options(&a)?;
    let rec = engine.containers().create(&a.image, &o)?;
    write_cidfile(&a, &rec.id)?;
    if a.detach {
        let exe = std::env::current_exe().context("finding the strata binary")?;
        engine.containers().start_detached(&rec.id, &exe, global)?;
        println!("{}", rec.id);
        return Ok(ExitCode::SUCCESS);
    }
    run_attached(engine, &rec.id, Attach { interactive: a.interactive, sig_proxy: a.sig_proxy }, &streams, global)
}

pub fn create(engine: &Engine, a: RunArgs) -> Result<ExitCode> {
    check_cidfile(&a)?;
    image_for(engine, &a)?;
    let o = options(&a)?;
    let id = engine.containers().create(&a.image, &o)?.id;
    write_cidfile(&a, &id)?;
    println!("{id}");
    Ok(ExitCode::SUCCESS)
}

pub fn start(engine: &Engine, a: StartArgs, global: &[String]) -> Result<ExitCode> {
    if a.attach {
        if a.containers.len() != 1 {
            bail!("you cannot start and attach multiple containers at once");
        }
        let attach = Attach { interactive: a.interactive, sig_proxy: true };
        return run_attached(engine, &a.containers[0], attach, &Streams::ALL, global);
    }
    let exe = std::env::current_exe().context("finding the strata binary")?;
    let mut names = a.containers.clone();
    if a.all {
        let keys =
            ["id", "name", "label", "status", "ancestor", "exited", "volume", "network", "health", "restart-policy"];
        let filters = strata::filter::Filters::parse(&a.filter, &keys)?;
        names.extend(engine.containers().to_start(&filters)?.into_iter().map(|c| c.name));
    }
    for c in &names {
        engine.containers().start_detached(c, &exe, global)?;
        println!("{c}");
    }
    Ok(ExitCode::SUCCESS)
}

fn status(c: &strata::container::ContainerSummary, now: i64) -> String {
    match c.state {
        ContainerState::Running => {
            let up = format!("Up {}", human_duration(now - c.started.unwrap_or(now)).trim_end_matches(" ago"));
            match (c.paused, c.health.as_deref()) {
                (true, _) => format!("{up} (Paused)"),
                (false, Some("starting")) => format!("{up} (health: starting)"),
                (false, Some(h)) => format!("{up} ({h})"),
                (false, None) => up,
            }
        }
        ContainerState::Exited => {
            let word = if c.restarting { "Restarting" } else { "Exited" };
            format!("{word} ({}) {}", c.exit_code.unwrap_or(0), human_duration(now - c.finished.unwrap_or(now)))
        }
        ContainerState::Created => "Created".into(),
        ContainerState::Incomplete => "Incomplete".into(),
    }
}

pub fn ps(engine: &Engine, a: PsArgs) -> Result<ExitCode> {
    let filters = strata::filter::Filters::parse(
        &a.filter,
        &[
            "id",
            "name",
            "label",
            "status",
            "ancestor",
            "exited",
            "volume",
            "network",
            "health",
            "restart-policy",
            "before",
            "since",
        ],
    )?;
    let last = if a.latest { Some(1) } else { a.last };
    let mut list = engine.containers().list_filtered(a.all || last.is_some(), &filters)?;
    if let Some(n) = last {
        list.truncate(n);
    }
    let now = crate::now();
    let id = |full: &str| if a.no_trunc { full.to_string() } else { full[..12].to_string() };
    if a.quiet {
        for c in &list {
            println!("{}", id(&c.id));
        }
        return Ok(ExitCode::SUCCESS);
    }
    // Sizes only when asked: they walk each container's layer.
    let mut sizes = std::collections::HashMap::new();
    if a.size {
        for c in &list {
            let (own, virt) = engine.containers().sizes(&c.id)?;
            sizes.insert(
                c.id.clone(),
                format!("{} (virtual {})", crate::format::human_size(own), crate::format::human_size(virt)),
            );
        }
    }
    let rows = || -> Vec<serde_json::Value> {
        list.iter()
            .map(|c| {
                serde_json::json!({
                    "Size": sizes.get(&c.id).cloned().unwrap_or_default(),
                    "ID": id(&c.id), "Image": c.image, "Command": format!("\"{}\"", c.command),
                    "CreatedAt": strata::image::format_time(c.created), "RunningFor": human_duration(now - c.created),
                    "State": if c.restarting { serde_json::json!("restarting") } else { serde_json::json!(c.state) },
                    "Status": status(c, now), "Names": c.name, "Ports": crate::network::ports_column(&c.ports),
                    "Labels": c.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","),
                    "Networks": c.networks.join(","), "Mounts": c.mounts.join(","),
                })
            })
            .collect()
    };
    match crate::template::Format::parse(&a.format)? {
        crate::template::Format::Json => rows().iter().for_each(|v| println!("{v}")),
        crate::template::Format::Template(t) => {
            t.print(&rows(), &[("ID", "CONTAINER ID"), ("RunningFor", "CREATED"), ("CreatedAt", "CREATED AT")])?
        }
        crate::template::Format::Table => {
            let mut cols = vec!["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"];
            if a.size {
                cols.push("SIZE");
            }
            let mut t = Table::new(&cols);
            for c in &list {
                let cmd = if a.no_trunc { c.command.clone() } else { truncate(&c.command, 20) };
                let mut row = vec![
                    id(&c.id),
                    c.image.clone(),
                    format!("\"{cmd}\""),
                    human_duration(now - c.created),
                    status(c, now),
                    crate::network::ports_column(&c.ports),
                    c.name.clone(),
                ];
                if a.size {
                    row.push(sizes.get(&c.id).cloned().unwrap_or_default());
                }
                t.row(row);
            }
            t.print();
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether a followed container is done: not running, and its waiter (the
/// monitor, which writes the last lines of the log after recording the
/// exit) gone too.
fn stopped_and_logged(engine: &Engine, name: &str) -> Result<bool> {
    let rec = engine.containers().get(name)?;
    Ok(rec.state != ContainerState::Running && !rec.waiter.as_deref().is_some_and(strata::store::owner_alive))
}

pub fn logs(engine: &Engine, a: LogsArgs) -> Result<ExitCode> {
    use strata::container::logs::{Record, Stream};
    let tail: Option<usize> = match a.tail.as_str() {
        "all" | "-1" => None,
        n => Some(n.parse().with_context(|| format!("invalid --tail {n:?}: want a number or all"))?),
    };
    let since = a.since.as_deref().map(strata::filter::parse_time).transpose()?;
    let until = a.until.as_deref().map(strata::filter::parse_time).transpose()?;
    let path = engine.containers().log_path(&a.container)?;
    let mut reader = match strata::container::logs::Follower::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound && !a.follow => return Ok(ExitCode::SUCCESS),
        Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
    };
    // Reading (and following) a log needs no store lock: deletes elsewhere must not wait on it.
    engine.unlock();
    let (stdout, stderr) = (io::stdout(), io::stderr());
    let (mut out, mut err) = (stdout.lock(), stderr.lock());
    let mut show = |r: &Record| -> Result<()> {
        let t = r.nanos();
        if since.is_some_and(|s| t < s) || until.is_some_and(|u| t > u) {
            return Ok(());
        }
        let w: &mut dyn Write = if r.stream == Stream::Stderr { &mut err } else { &mut out };
        if a.timestamps {
            write!(w, "{} ", r.time)?;
        }
        w.write_all(r.log.as_bytes())?;
        if a.follow {
            w.flush()?;
        }
        Ok(())
    };
    // What is there now, rotated files first: all of it, or the last --tail lines.
    let mut lines = Vec::new();
    for old in strata::container::logs::rotated(&path) {
        let text = std::fs::read_to_string(&old).with_context(|| format!("reading {}", old.display()))?;
        lines.extend(text.lines().map(|l| format!("{l}\n")));
    }
    let mut partial = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            break;
        }
        if !line.ends_with('\n') {
            partial = line; // being written: read again when following
            break;
        }
        lines.push(line);
    }
    let skip = tail.map(|n| lines.len().saturating_sub(n)).unwrap_or(0);
    for l in &lines[skip..] {
        show(&Record::parse(l.trim_end_matches('\n')))?;
    }
    if !a.follow {
        return Ok(ExitCode::SUCCESS);
    }
    loop {
        let mut line = std::mem::take(&mut partial);
        let n = reader.read_line(&mut line)?;
        if line.ends_with('\n') {
            show(&Record::parse(line.trim_end_matches('\n')))?;
            continue;
        }
        partial = line;
        if n == 0 && stopped_and_logged(engine, &a.container)? {
            // One last read: lines written just before the exit.
            let rest = reader.read_rest()?;
            for l in (partial + &rest).lines() {
                show(&Record::parse(l))?;
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn exec(engine: &Engine, a: crate::ExecArgs) -> Result<ExitCode> {
    let mut stdio = inherit_stdio()?;
    if !a.interactive {
        stdio.stdin = strata::container::dev_null()?;
    }
    let tty = a.tty.then_some(a.interactive);
    let (code, msg) = engine.containers().exec(
        &a.container,
        &a.command,
        &a.env,
        a.workdir.as_deref(),
        a.user.as_deref(),
        stdio,
        tty,
    )?;
    if let Some(m) = msg {
        eprintln!("Error: {m}");
    }
    Ok(ExitCode::from(code as u8))
}

pub fn stop(engine: &Engine, a: StopArgs) -> Result<ExitCode> {
    for c in &a.containers {
        engine.containers().stop(c, a.time.map(Duration::from_secs))?;
        println!("{c}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `top`: the host's `ps` (with the given options, `-ef` by default), only
/// the rows of the container's processes, found by the PID column.
pub fn top(engine: &Engine, a: crate::TopArgs) -> Result<ExitCode> {
    let pids = engine.containers().pids(&a.container)?;
    let args = if a.ps_args.is_empty() { vec!["-ef".to_string()] } else { a.ps_args.clone() };
    let o = std::process::Command::new("ps").args(&args).output().context("running ps")?;
    if !o.status.success() {
        bail!("ps {}: {}", args.join(" "), String::from_utf8_lossy(&o.stderr).trim());
    }
    let text = String::from_utf8_lossy(&o.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let Some(col) = header.split_whitespace().position(|h| h == "PID") else {
        bail!("ps {} shows no PID column", args.join(" "));
    };
    println!("{header}");
    for l in lines {
        if l.split_whitespace().nth(col).and_then(|p| p.parse::<u32>().ok()).is_some_and(|p| pids.contains(&p)) {
            println!("{l}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Bytes in binary units, as Docker shows memory (`49.5MiB`).
fn binary_size(b: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < units.len() {
        v /= 1024.0;
        i += 1;
    }
    // Four significant digits, as Go's %.4g in Docker's units.BytesSize.
    let decimals = if v >= 1000.0 {
        0
    } else if v >= 100.0 {
        1
    } else if v >= 10.0 {
        2
    } else {
        3
    };
    let text = format!("{v:.decimals$}");
    let text = if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.').to_string() } else { text };
    text + units[i]
}

/// `stats`: two samples half a second apart give the CPU percentage; without
/// `--no-stream`, a table every second until interrupted.
pub fn stats(engine: &Engine, a: crate::StatsArgs) -> Result<ExitCode> {
    let names = |engine: &Engine| -> Result<Vec<String>> {
        Ok(if a.containers.is_empty() {
            engine.containers().list(false)?.into_iter().map(|c| c.id).collect()
        } else {
            a.containers.clone()
        })
    };
    let template = match a.format.as_deref() {
        None | Some("table") => None,
        Some(f) => Some(crate::template::Format::parse(f)?),
    };
    engine.unlock();
    let interval = Duration::from_millis(500);
    loop {
        let ids = names(engine)?;
        let first: Vec<_> = ids.iter().map(|n| engine.containers().stats(n)).collect::<strata::Result<_>>()?;
        let t0 = std::time::Instant::now();
        std::thread::sleep(interval);
        let mut rows = Vec::new();
        for (before, n) in first.iter().zip(&ids) {
            let now = engine.containers().stats(n)?;
            let wall = t0.elapsed().as_nanos().max(1) as f64;
            let cpu = (now.cpu_ns.saturating_sub(before.cpu_ns)) as f64 / wall * 100.0;
            let mem_pct = if now.memory_limit > 0 { now.memory as f64 / now.memory_limit as f64 * 100.0 } else { 0.0 };
            rows.push(serde_json::json!({
                "ID": &now.id[..12], "Container": n, "Name": now.name,
                "CPUPerc": format!("{cpu:.2}%"),
                "MemUsage": format!("{} / {}", binary_size(now.memory), binary_size(now.memory_limit)),
                "MemPerc": format!("{mem_pct:.2}%"),
                "NetIO": format!("{} / {}", human_size(now.net_rx), human_size(now.net_tx)),
                "BlockIO": format!("{} / {}", human_size(now.block_read), human_size(now.block_write)),
                "PIDs": now.pids.to_string(),
            }));
        }
        if !a.no_stream && io::IsTerminal::is_terminal(&io::stdout()) {
            print!("\x1b[2J\x1b[H");
        }
        match &template {
            Some(crate::template::Format::Json) => rows.iter().for_each(|r| println!("{r}")),
            Some(crate::template::Format::Template(t)) => t.print(
                &rows,
                &[
                    ("ID", "CONTAINER ID"),
                    ("CPUPerc", "CPU %"),
                    ("MemUsage", "MEM USAGE / LIMIT"),
                    ("MemPerc", "MEM %"),
                    ("NetIO", "NET I/O"),
                    ("BlockIO", "BLOCK I/O"),
                ],
            )?,
            _ => {
                let mut t = Table::new(&[
                    "CONTAINER ID",
                    "NAME",
                    "CPU %",
                    "MEM USAGE / LIMIT",
                    "MEM %",
                    "NET I/O",
                    "BLOCK I/O",
                    "PIDS",
                ]);
                for r in &rows {
                    let s = |k: &str| r[k].as_str().unwrap_or_default().to_string();
                    t.row(vec![
                        s("ID"),
                        s("Name"),
                        s("CPUPerc"),
                        s("MemUsage"),
                        s("MemPerc"),
                        s("NetIO"),
                        s("BlockIO"),
                        s("PIDs"),
                    ]);
                }
                t.print();
            }
        }
        if a.no_stream {
            return Ok(ExitCode::SUCCESS);
        }
        io::stdout().flush()?;
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// `attach`: the output of a running detached container from now on (its
/// log, followed; stdout and stderr apart), signals passed on to it with
/// `--sig-proxy`, and this terminal's keys sent to it when it was created
/// with `-i` or `-t` (through its monitor) until the detach keys; exits with
/// the container's exit code, or 1 on detaching (as Docker).
pub fn attach(engine: &Engine, a: crate::AttachArgs) -> Result<ExitCode> {
    use strata::container::logs::{Record, Stream};
    let rec = engine.containers().get(&a.container)?;
    let Some(pid) = rec.pid.filter(|_| rec.state == ContainerState::Running) else {
        bail!("you cannot attach to a stopped container, start it first");
    };
    let path = engine.containers().log_path(&a.container)?;
    let mut reader =
        strata::container::logs::Follower::open(&path).with_context(|| format!("opening {}", path.display()))?;
    reader.seek_end()?;
    let input = if a.no_stdin { None } else { engine.containers().attach_input(&rec.id)? };
    let detached = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let _raw = input.as_ref().map(|_| strata::container::tty::RawMode::enter());
    if let Some(mut conn) = input {
        let (detached, keys) = (detached.clone(), a.detach_keys.clone());
        // Never joined: it blocks on this terminal and ends with the process.
        std::thread::spawn(move || {
            let mut scanner = strata::container::attach::EscapeScanner::new(keys);
            let mut buf = [0u8; 4096];
            while let Ok(n) = io::Read::read(&mut io::stdin(), &mut buf) {
                if n == 0 {
                    break;
                }
                let (pass, detach) = scanner.scan(&buf[..n]);
                if conn.write_all(&pass).is_err() {
                    break;
                }
                if detach {
                    detached.store(true, std::sync::atomic::Ordering::SeqCst);
                    break;
                }
            }
            let _ = conn.shutdown(std::net::Shutdown::Write);
        });
    }
    let proxy = a.sig_proxy.then(strata::container::runtime::SignalProxy::install);
    if let Some(p) = &proxy {
        p.forward_to(pid as i32);
    }
    engine.unlock();
    let (mut out, mut err) = (io::stdout(), io::stderr());
    let mut partial = String::new();
    let mut show = |line: &str| -> Result<()> {
        let r = Record::parse(line.trim_end_matches('\n'));
        let w: &mut dyn Write = if r.stream == Stream::Stderr { &mut err } else { &mut out };
        w.write_all(r.log.as_bytes())?;
        w.flush()?;
        Ok(())
    };
    loop {
        let mut line = std::mem::take(&mut partial);
        let n = reader.read_line(&mut line)?;
        if line.ends_with('\n') {
            show(&line)?;
            continue;
        }
        partial = line;
        if detached.load(std::sync::atomic::Ordering::SeqCst) {
            drop(_raw);
            eprintln!("read escape sequence");
            return Ok(ExitCode::from(1));
        }
        if n == 0 && stopped_and_logged(engine, &rec.id)? {
            let rest = reader.read_rest()?;
            for l in (partial + &rest).lines() {
                show(l)?;
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(proxy);
    let code = engine.containers().wait(&rec.id)?;
    Ok(ExitCode::from(code as u8))
}

pub fn update(engine: &Engine, a: crate::UpdateArgs) -> Result<ExitCode> {
    let limits = strata::container::stats::Limits {
        memory: a.memory.as_deref().map(parse_memory).transpose()?.map(|m| m as i64),
        cpus: a.cpus,
        pids: a.pids_limit,
    };
    if limits.memory.is_none() && limits.cpus.is_none() && limits.pids.is_none() {
        bail!("update needs --memory, --cpus or --pids-limit");
    }
    for c in &a.containers {
        engine.containers().update(c, &limits)?;
        println!("{c}");
    }
    Ok(ExitCode::SUCCESS)
}

pub fn restart(engine: &Engine, a: StopArgs, global: &[String]) -> Result<ExitCode> {
    let exe = std::env::current_exe().context("finding the strata binary")?;
    for c in &a.containers {
        engine.containers().restart(c, a.time.map(Duration::from_secs), &exe, global)?;
        println!("{c}");
    }
    Ok(ExitCode::SUCCESS)
}

pub fn kill(engine: &Engine, a: KillArgs) -> Result<ExitCode> {
    let sig = strata::container::signal::parse(&a.signal)?;
    for c in &a.containers {
        engine.containers().kill(c, sig)?;
        println!("{c}");
    }
    Ok(ExitCode::SUCCESS)
}

pub fn rm(engine: &Engine, a: RmArgs) -> Result<ExitCode> {
    let mut failed = false;
    for c in &a.containers {
        let removed = if a.volumes {
            engine.containers().remove_with_volumes(c, a.force)
        } else {
            engine.containers().remove(c, a.force)
        };
        match removed {
            Ok(_) => println!("{c}"),
            Err(e) => {
                eprintln!("Error: {e}");
                failed = true;
            }
        }
    }
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

pub fn wait(engine: &Engine, a: crate::WaitArgs) -> Result<ExitCode> {
    for c in &a.containers {
        println!("{}", engine.containers().wait_for(c, &a.condition)?);
    }
    Ok(ExitCode::SUCCESS)
}

pub fn diff(engine: &Engine, a: ContainerArg) -> Result<ExitCode> {
    for (k, p) in engine.containers().changes(&a.container)? {
        println!("{k} {p}");
    }
    Ok(ExitCode::SUCCESS)
}

pub fn commit(engine: &Engine, a: CommitArgs) -> Result<ExitCode> {
    let msg = match (&a.message, &a.author) {
        (Some(m), Some(au)) => Some(format!("{m} (by {au})")),
        (Some(m), None) => Some(m.clone()),
        (None, Some(au)) => Some(format!("by {au}")),
        (None, None) => None,
    };
    let id = engine.containers().commit(&a.container, a.reference.as_deref(), msg.as_deref(), &a.change)?;
    println!("{id}");
    Ok(ExitCode::SUCCESS)
}

pub fn prune(engine: &Engine, a: PruneArgs) -> Result<ExitCode> {
    let filters = strata::filter::Filters::parse(&a.filter, &["until", "label"])?;
    if !a.force
        && !crate::system::confirm(
            "WARNING! This will remove all stopped containers.\nAre you sure you want to continue?",
        )?
    {
        return Ok(ExitCode::SUCCESS);
    }
    let (removed, bytes) = engine.prune_containers(&filters)?;
    if !removed.is_empty() {
        println!("Deleted Containers:");
    }
    for id in removed {
        println!("{id}");
    }
    println!("\nTotal reclaimed space: {}", crate::format::human_size(bytes));
    Ok(ExitCode::SUCCESS)
}

pub fn inspect(engine: &Engine, a: InspectArgs) -> Result<ExitCode> {
    let mut out = Vec::new();
    for n in &a.names {
        out.push(engine.containers().inspect(n)?);
    }
    crate::template::print_inspect(&out, a.format.as_deref())?;
    Ok(ExitCode::SUCCESS)
}

/// `inspect NAME`: a container if one has that name or ID, else an image.
pub fn inspect_any(engine: &Engine, a: InspectArgs) -> Result<ExitCode> {
    crate::template::inspect_each(&a.names, a.format.as_deref(), |n| match engine.containers().inspect(n) {
        Err(e) if e.kind() == strata::ErrorKind::NotFound => match engine.images().inspect(n) {
            Err(e) if e.kind() == strata::ErrorKind::NotFound => {
                Err(strata::Error::NotFound { what: "container or image", name: n.to_string() })
            }
            r => r,
        },
        r => r,
    })
}

pub fn volume(engine: &Engine, cmd: crate::VolumeCommand) -> Result<ExitCode> {
    use crate::VolumeCommand as V;
    match cmd {
        V::Create(a) => println!("{}", engine.volumes().create(a.name.as_deref(), &a.label, &a.opt)?),
        V::Ls(a) => {
            let filters = strata::filter::Filters::parse(&a.filter, &["dangling", "name", "label", "driver"])?;
            let vols = engine.volumes().list_filtered(&filters)?;
            if a.quiet {
                vols.iter().for_each(|v| println!("{}", v.name));
            } else if a.format != "table" {
                let rows: Vec<serde_json::Value> = vols
                    .iter()
                    .map(|v| serde_json::json!({"Driver": v.driver, "Name": v.name, "Mountpoint": v.mountpoint, "Scope": v.scope, "Labels": v.labels}))
                    .collect();
                match crate::template::Format::parse(&a.format)? {
                    crate::template::Format::Template(t) => t.print(&rows, &[("Name", "VOLUME NAME")])?,
                    _ => rows.iter().for_each(|r| println!("{r}")),
                }
            } else {
                let mut t = Table::new(&["DRIVER", "VOLUME NAME"]);
                vols.iter().for_each(|v| t.row(vec![v.driver.to_string(), v.name.clone()]));
                t.print();
            }
        }
        V::Inspect(a) => {
            let v = a.names.iter().map(|n| engine.volumes().inspect(n)).collect::<strata::Result<Vec<_>>>()?;
            let v: Vec<serde_json::Value> = v.iter().map(serde_json::to_value).collect::<Result<_, _>>()?;
            crate::template::print_inspect(&v, a.format.as_deref())?;
        }
        V::Rm(a) => {
            let mut failed = false;
            for n in &a.names {
                match engine.volumes().remove(n) {
                    Ok(()) => println!("{n}"),
                    Err(e) => {
                        eprintln!("Error: {e}");
                        failed = true;
                    }
                }
            }
            if failed {
                return Ok(ExitCode::from(1));
            }
        }
        V::Prune(a) => {
            let filters = strata::filter::Filters::parse(&a.filter, &["label"])?;
            if !a.force && !crate::system::confirm("WARNING! This will remove all volumes not used by at least one container.\nAre you sure you want to continue?")? {
                return Ok(ExitCode::SUCCESS);
            }
            let (removed, bytes) = engine.volumes().prune(&filters)?;
            if !removed.is_empty() {
                println!("Deleted Volumes:");
                removed.iter().for_each(|n| println!("{n}"));
                println!();
            }
            println!("Total reclaimed space: {}", crate::format::human_size(bytes));
        }
    }
    Ok(ExitCode::SUCCESS)
}
