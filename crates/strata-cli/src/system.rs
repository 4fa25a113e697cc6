//! System commands and what several commands share: prompts, prune, df.

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::{bail, Result};
use strata::image::reference::{familiar, split_tag};
use strata::Engine;

use crate::format::{human_duration, human_size, Table};
use crate::*;

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

pub(crate) fn prune(engine: &Engine, a: PruneArgs, system: bool) -> Result<ExitCode> {
    let filters = strata::filter::Filters::parse(&a.filter, &["until", "label"])?;
    let what = match (system, a.all) {
        (true, _) => "This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n  - all dangling images\n  - all build cache\n  - unused layers and blobs\nAre you sure you want to continue?",
        (false, false) => "WARNING! This will remove all dangling images.\nAre you sure you want to continue?",
        (false, true) => "WARNING! This will remove all images without at least one container associated to them.\nAre you sure you want to continue?",
    };
    if !a.force && !confirm(what)? {
        return Ok(ExitCode::SUCCESS);
    }
    let report = if system { engine.system_prune(a.all, &filters)? } else { engine.images().prune(a.all, &filters)? };
    if !report.containers.is_empty() {
        println!("Deleted Containers:");
        for c in &report.containers {
            println!("{c}");
        }
        println!();
    }
    if !report.networks.is_empty() {
        println!("Deleted Networks:");
        for n in &report.networks {
            println!("{n}");
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

pub(crate) fn df(engine: &Engine, a: DfArgs) -> Result<ExitCode> {
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
    let reclaimable = u.images_reclaimable;
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

pub(crate) fn info(engine: &Engine, a: crate::FormatArg) -> Result<ExitCode> {
    let v = engine.info()?;
    match a.format.as_deref() {
        Some("json") => println!("{v}"),
        Some(t) => println!("{}", crate::template::Template::parse(t)?.render(&v)?),
        None => {
            for (k, label) in [
                ("ServerVersion", "Server Version"),
                ("Containers", "Containers"),
                ("ContainersRunning", " Running"),
                ("ContainersStopped", " Stopped"),
                ("Images", "Images"),
                ("Driver", "Storage Driver"),
                ("DockerRootDir", "Root Dir"),
                ("CgroupVersion", "Cgroup Version"),
                ("DefaultRuntime", "Default Runtime"),
                ("KernelVersion", "Kernel Version"),
                ("OperatingSystem", "Operating System"),
                ("Architecture", "Architecture"),
                ("NCPU", "CPUs"),
                ("MemTotal", "Total Memory"),
                ("Name", "Name"),
            ] {
                let val = &v[k];
                let shown = match (k, val) {
                    ("MemTotal", serde_json::Value::Number(n)) => human_size(n.as_u64().unwrap_or(0)),
                    (_, serde_json::Value::String(s)) => s.clone(),
                    (_, other) => other.to_string(),
                };
                println!("{label}: {shown}");
            }
            if v["Rootless"] == true {
                println!("Rootless: true");
                for (k, label) in [("UIDMap", "UID Map"), ("GIDMap", "GID Map")] {
                    for r in v["IDMappings"][k].as_array().into_iter().flatten() {
                        println!(" {label}: {} -> {} ({} IDs)", r["inside"], r["outside"], r["count"]);
                    }
                }
                for u in v["RootlessUnavailable"].as_array().into_iter().flatten() {
                    println!(" Unavailable: {}", u.as_str().unwrap_or_default());
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn version(a: crate::FormatArg) -> Result<ExitCode> {
    let v = serde_json::json!({
        "Client": {"Version": env!("CARGO_PKG_VERSION"), "Os": std::env::consts::OS, "Arch": std::env::consts::ARCH},
        "Server": {"Version": env!("CARGO_PKG_VERSION"), "Os": std::env::consts::OS, "Arch": std::env::consts::ARCH,
                   "Components": [{"Name": "Engine", "Version": env!("CARGO_PKG_VERSION"), "Details": {"daemonless": "true"}}]},
    });
    match a.format.as_deref() {
        Some("json") => println!("{v}"),
        Some(t) => println!("{}", crate::template::Template::parse(t)?.render(&v)?),
        None => {
            println!(
                "Client:\n Version:\t{}\n OS/Arch:\t{}/{}",
                env!("CARGO_PKG_VERSION"),
                std::env::consts::OS,
                std::env::consts::ARCH
            );
            println!(
                "\nServer: strata (daemonless: the engine is this binary)\n Version:\t{}",
                env!("CARGO_PKG_VERSION")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `events`: the recorded events in the range, then new ones as they come
/// (until `--until`, or until interrupted).
pub(crate) fn events(engine: &Engine, a: crate::EventsArgs) -> Result<ExitCode> {
    let since = a.since.as_deref().map(strata::filter::parse_time).transpose()?;
    let until = a.until.as_deref().map(strata::filter::parse_time).transpose()?;
    let filters = strata::filter::Filters::parse(&a.filter, &["type", "event", "container", "image", "network"])?;
    let template = match a.format.as_deref() {
        None => None,
        Some(f) => Some(crate::template::Format::parse(f)?),
    };
    engine.unlock();
    let mut last = 0;
    let mut out = io::stdout().lock();
    loop {
        for e in engine.events_since(last)? {
            last = e.seq;
            if since.is_some_and(|s| e.time < s) || until.is_some_and(|u| e.time > u) {
                continue;
            }
            let name = e.attributes.get("name").cloned().unwrap_or_default();
            let ok = filters.any("type", |v| v == e.kind)
                && filters.any("event", |v| v == e.action)
                && filters.any("container", |v| e.kind == "container" && (e.id.starts_with(v) || name == v))
                && filters.any("image", |v| e.kind == "image" && (e.id.starts_with(v) || name == v))
                && filters.any("network", |v| e.kind == "network" && (e.id.starts_with(v) || name == v));
            if !ok {
                continue;
            }
            let secs = (e.time / 1_000_000_000) as i64;
            let stamp = format!(
                "{}.{:09}Z",
                strata::image::format_time(secs).trim_end_matches('Z'),
                (e.time % 1_000_000_000) as u32
            );
            let v = serde_json::json!({
                "Type": e.kind, "Action": e.action, "status": e.action, "id": e.id,
                "Actor": {"ID": e.id, "Attributes": e.attributes},
                "scope": "local", "time": secs, "timeNano": e.time as i64,
            });
            match &template {
                Some(crate::template::Format::Json) => writeln!(out, "{v}")?,
                Some(crate::template::Format::Template(t)) => writeln!(out, "{}", t.render(&v)?)?,
                _ => {
                    let attrs: Vec<String> = e.attributes.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    writeln!(out, "{stamp} {} {} {} ({})", e.kind, e.action, e.id, attrs.join(", "))?;
                }
            }
        }
        out.flush()?;
        let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
        if until.is_some_and(|u| now > u) {
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

#[derive(clap::Args)]
pub(crate) struct CheckArgs {
    /// Only records, directories and mounts: leave blob bytes and layer files unread.
    #[arg(long)]
    quick: bool,
    /// Fix what can be fixed without losing anything still good, then check again.
    #[arg(long)]
    repair: bool,
    /// Output format: table or json.
    #[arg(long, default_value = "table")]
    format: String,
}

/// `system check`: exit 0 on a healthy store, 1 when something is wrong.
pub(crate) fn check(engine: &Engine, a: CheckArgs) -> Result<ExitCode> {
    let r = if a.repair {
        let done = engine.checker().repair(a.quick)?;
        if a.format == "json" {
            println!("{}", serde_json::to_string_pretty(&done)?);
            return Ok(if done.after.problems.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) });
        }
        for r in &done.repairs {
            let how = if r.fixed { "fixed" } else { "NOT fixed" };
            println!("{how}: {}: {}: {}", r.problem.kind, r.problem.object, r.action);
        }
        done.after
    } else {
        engine.checker().check(a.quick)?
    };
    match a.format.as_str() {
        "json" => println!("{}", serde_json::to_string_pretty(&r)?),
        "table" => {
            for p in &r.problems {
                println!("{}: {}: {}", p.kind, p.object, p.detail);
                if !p.affects.is_empty() {
                    println!("  affects: {}", p.affects.join(", "));
                }
            }
            let mut kinds: Vec<_> = r.checked.iter().collect();
            kinds.sort();
            let looked: Vec<String> = kinds.iter().map(|(k, n)| format!("{n} {k}")).collect();
            println!(
                "{} problem{} in {}{}",
                r.problems.len(),
                if r.problems.len() == 1 { "" } else { "s" },
                looked.join(", "),
                if r.quick { " (quick: contents not read)" } else { "" }
            );
        }
        other => anyhow::bail!("unknown --format {other:?}: want table or json"),
    }
    Ok(if r.problems.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
