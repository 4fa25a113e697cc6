//! Image commands: build, builder prune, import, load, save, images, rmi, inspect, history.

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use strata::engine::Removal;
use strata::image::archive::SaveFormat;
use strata::image::reference::display_tag;
use strata::image::reference::{familiar, split_tag};
use strata::Engine;

use crate::format::{human_duration, human_size, Table};
use crate::*;

pub(crate) fn build(engine: &Engine, a: BuildArgs) -> Result<ExitCode> {
    let context = if a.context == "-" {
        strata::build::ContextSource::Stream(Box::new(io::stdin()))
    } else if a.context.contains("://") || a.context.starts_with("git@") {
        strata::build::ContextSource::Remote(a.context.clone())
    } else {
        strata::build::ContextSource::Dir(PathBuf::from(&a.context))
    };
    let mut opts = strata::build::BuildOptions {
        context,
        explain: a.explain,
        file: a.file,
        tags: a.tag,
        build_args: a.build_arg,
        target: a.target,
        no_cache: a.no_cache,
        quiet: a.quiet,
        platform: a.platform,
        labels: a.label,
        pull: a.pull,
        progress: crate::registry::progress(a.quiet),
        sig_proxy: true,
        network: a.network,
        secrets: a.secret,
        ssh: a.ssh,
        output: a.output.clone(),
        add_hosts: a.add_host,
        ulimits: a.ulimit,
        build_contexts: a.build_context,
        cache_to: a.cache_to,
        cache_from: a.cache_from,
    };
    // A tar on standard output leaves no room for progress: it goes to standard error.
    let to_stdout =
        matches!(a.output.as_deref(), Some("-")) || a.output.as_deref().is_some_and(|o| o.ends_with("dest=-"));
    let mut out: Box<dyn Write> = if to_stdout { Box::new(io::stderr()) } else { Box::new(io::stdout()) };
    match engine.builds().build(&mut opts, &mut out) {
        Ok(Some(id)) => {
            if let Some(f) = &a.iidfile {
                std::fs::write(f, id.as_str()).with_context(|| format!("writing --iidfile {}", f.display()))?;
            }
            println!("{}", if a.quiet { id.to_string() } else { id.hex().to_string() });
            Ok(ExitCode::SUCCESS)
        }
        Ok(None) => Ok(ExitCode::SUCCESS),
        Err(e @ strata::Error::StepFailed { code, .. }) => {
            eprintln!("Error: {e}");
            Ok(ExitCode::from(code.clamp(1, 255) as u8))
        }
        Err(e) => Err(e.into()),
    }
}

pub(crate) fn builder_prune(engine: &Engine, a: PruneArgs) -> Result<ExitCode> {
    if !a.force
        && !crate::system::confirm("WARNING! This will remove all build cache.\nAre you sure you want to continue?")?
    {
        return Ok(ExitCode::SUCCESS);
    }
    let (_, freed) = engine.builds().prune_cache()?;
    println!("Total reclaimed space: {}", human_size(freed));
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn import(engine: &Engine, a: ImportArgs) -> Result<ExitCode> {
    let input = (a.file != "-").then(|| PathBuf::from(&a.file));
    let id = engine.images().import(input.as_deref(), a.reference.as_deref(), a.message.as_deref())?;
    println!("{id}");
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn load(engine: &Engine, a: LoadArgs) -> Result<ExitCode> {
    if a.input.is_none() && io::stdin().is_terminal() {
        bail!("requested load from stdin, but stdin is empty");
    }
    let loaded = engine.images().load(a.input.as_deref())?;
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

pub(crate) fn save(engine: &Engine, a: SaveArgs) -> Result<ExitCode> {
    let format: SaveFormat = a.format.parse()?;
    if a.output.is_none() && io::stdout().is_terminal() {
        bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
    }
    let stdout = io::stdout();
    let mut out = io::BufWriter::with_capacity(1 << 20, stdout.lock());
    engine.images().save(&a.images, format, a.output.as_deref(), &mut out)?;
    out.flush().context("writing to standard output")?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn short_id(id: &strata::Digest, no_trunc: bool) -> String {
    if no_trunc {
        id.to_string()
    } else {
        id.short().to_string()
    }
}

pub(crate) fn images(engine: &Engine, a: ImagesArgs) -> Result<ExitCode> {
    let filters = strata::filter::Filters::parse(&a.filter, &["dangling", "reference", "label", "before", "since"])?;
    let mut images = match a.reference.as_deref() {
        Some(r) => engine.images().list_matching(r)?,
        None => engine.images().list_filtered(&filters)?,
    };
    if a.reference.is_some() && !filters.is_empty() {
        let keep: Vec<strata::Digest> = engine.images().list_filtered(&filters)?.into_iter().map(|i| i.id).collect();
        images.retain(|i| keep.contains(&i.id));
    }
    let now = now();
    let mut rows = Vec::new();
    for img in images {
        let mut tags: Vec<(String, String)> = img
            .tags
            .iter()
            .map(|t| {
                let (n, tag) = split_tag(t);
                (n.to_string(), tag.to_string())
            })
            .collect();
        if tags.is_empty() {
            tags.push(("<none>".into(), "<none>".into()));
        }
        for (name, tag) in tags {
            // One line per name, as Docker's `images -q` (an image with two tags twice).
            if a.quiet {
                println!("{}", short_id(&img.id, a.no_trunc));
                continue;
            }
            let repo = if name == "<none>" { name } else { familiar(&name) };
            rows.push((repo, tag, img.clone()));
        }
    }
    if a.quiet {
        return Ok(ExitCode::SUCCESS);
    }
    // repo digests per image (name as shown -> digest), only when they are shown or asked for
    let mut digests: std::collections::HashMap<strata::Digest, Vec<(String, String)>> = Default::default();
    for (_, _, img) in &rows {
        if !digests.contains_key(&img.id) {
            let d = engine
                .images()
                .repo_digests(&img.id)?
                .into_iter()
                .filter_map(|rd| rd.split_once('@').map(|(n, d)| (n.to_string(), d.to_string())))
                .collect();
            digests.insert(img.id.clone(), d);
        }
    }
    let digest_of = |repo: &str, img: &strata::engine::ImageSummary| -> String {
        digests
            .get(&img.id)
            .and_then(|ds| ds.iter().find(|(n, _)| n == repo).map(|(_, d)| d.clone()))
            .unwrap_or_else(|| "<none>".into())
    };
    let values = || -> Vec<serde_json::Value> {
        rows.iter()
            .map(|(repo, tag, img)| {
                serde_json::json!({
                    "Repository": repo,
                    "Tag": tag,
                    "ID": short_id(&img.id, a.no_trunc),
                    "Digest": digest_of(repo, img),
                    "CreatedAt": strata::image::format_time(img.created),
                    "CreatedSince": human_duration(now - img.created),
                    "Size": human_size(img.size),
                    "VirtualSize": human_size(img.size),
                })
            })
            .collect()
    };
    match crate::template::Format::parse(&a.format)? {
        crate::template::Format::Json => values().iter().for_each(|v| println!("{v}")),
        crate::template::Format::Template(t) => {
            t.print(&values(), &[("ID", "IMAGE ID"), ("CreatedSince", "CREATED"), ("CreatedAt", "CREATED AT")])?
        }
        crate::template::Format::Table => {
            let mut t = if a.digests {
                Table::new(&["REPOSITORY", "TAG", "DIGEST", "IMAGE ID", "CREATED", "SIZE"])
            } else {
                Table::new(&["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"])
            };
            for (repo, tag, img) in &rows {
                let mut row = vec![repo.clone(), tag.clone()];
                if a.digests {
                    row.push(digest_of(repo, img));
                }
                row.extend([short_id(&img.id, a.no_trunc), human_duration(now - img.created), human_size(img.size)]);
                t.row(row);
            }
            t.print();
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn rmi(engine: &Engine, a: RmiArgs) -> Result<ExitCode> {
    for r in engine.images().remove(&a.images, a.force)? {
        match r {
            Removal::Untagged(t) => println!("Untagged: {t}"),
            Removal::Deleted(d) => println!("Deleted: {d}"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn inspect(engine: &Engine, a: InspectArgs) -> Result<ExitCode> {
    crate::template::inspect_each(&a.names, a.format.as_deref(), |n| engine.images().inspect(n))
}

pub(crate) fn history(engine: &Engine, a: HistoryArgs) -> Result<ExitCode> {
    let rows = engine.images().history(&a.image)?;
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
    let values = || -> Vec<serde_json::Value> {
        rows.iter()
            .map(|r| {
                serde_json::json!({
                    "ID": id_col(&r.id),
                    "CreatedAt": strata::image::format_time(r.created),
                    "CreatedSince": human_duration(now - r.created),
                    "CreatedBy": r.created_by,
                    "Size": human_size(r.size),
                    "Comment": r.comment,
                })
            })
            .collect()
    };
    match crate::template::Format::parse(&a.format)? {
        crate::template::Format::Json => values().iter().for_each(|v| println!("{v}")),
        crate::template::Format::Template(t) => {
            t.print(&values(), &[("ID", "IMAGE"), ("CreatedSince", "CREATED"), ("CreatedBy", "CREATED BY")])?
        }
        crate::template::Format::Table => {
            let mut t = Table::new(&["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"]);
            for r in &rows {
                let by = if a.no_trunc { r.created_by.clone() } else { format::truncate(&r.created_by, 45) };
                t.row(vec![id_col(&r.id), human_duration(now - r.created), by, human_size(r.size), r.comment.clone()]);
            }
            t.print();
        }
    }
    Ok(ExitCode::SUCCESS)
}
