//! `image layers`: the explorer's answers as a table or JSON, and dive's
//! CI check (`--ci`, `.dive-ci`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use strata::explore::ci::{self, Rules};
use strata::explore::ImageLayers;
use strata::Engine;

use crate::format::{human_size, truncate, Table};

#[derive(Args)]
pub(crate) struct LayersArgs {
    /// Output format: table or json.
    #[arg(long, default_value = "table")]
    format: String,
    /// Don't truncate output.
    #[arg(long)]
    no_trunc: bool,
    /// Check the image against the CI rules (from the flags below and the
    /// --ci-config file); exit 1 naming each rule broken.
    #[arg(long)]
    ci: bool,
    /// dive's CI configuration file; read when present.
    #[arg(long, default_value = ".dive-ci")]
    ci_config: PathBuf,
    /// Fail --ci when the efficiency is below this ratio (0-1), or `disabled`.
    #[arg(long, value_name = "RATIO")]
    lowest_efficiency: Option<String>,
    /// Fail --ci when more bytes than this are wasted (20MB, 1GiB), or `disabled`.
    #[arg(long, value_name = "SIZE")]
    highest_wasted_bytes: Option<String>,
    /// Fail --ci when the user layers waste more than this ratio (0-1) of their bytes, or `disabled`.
    #[arg(long, value_name = "RATIO")]
    highest_user_wasted_percent: Option<String>,
    image: String,
}

pub(crate) fn layers(engine: &Engine, a: LayersArgs) -> Result<ExitCode> {
    let rules = if a.ci { Some(rules(&a)?) } else { None };
    let img = engine.explorer().layers(&a.image)?;
    match a.format.as_str() {
        "json" => println!("{}", serde_json::to_string_pretty(&img)?),
        "table" => print_table(&img, a.no_trunc),
        other => anyhow::bail!("unknown --format {other:?}: want table or json"),
    }
    let Some(rules) = rules else { return Ok(ExitCode::SUCCESS) };
    let broken = rules.check(&img);
    if a.format == "table" {
        println!();
    }
    for b in &broken {
        println!("FAIL {b}");
    }
    if broken.is_empty() {
        println!("PASS");
        Ok(ExitCode::SUCCESS)
    } else {
        Ok(ExitCode::from(1))
    }
}

/// The CI rules: the config file's, if there is one, under the flags'.
fn rules(a: &LayersArgs) -> Result<Rules> {
    let from_file = match std::fs::read_to_string(&a.ci_config) {
        Ok(text) => Rules::from_dive_ci(&text, &a.ci_config.display().to_string())?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Rules::default(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", a.ci_config.display())),
    };
    // A flag, `disabled` included, overrides the file's rule.
    let mut rules = from_file;
    if let Some(v) = &a.lowest_efficiency {
        rules.lowest_efficiency = ci::ratio(v, "--lowest-efficiency")?;
    }
    if let Some(v) = &a.highest_wasted_bytes {
        rules.highest_wasted_bytes = ci::bytes(v, "--highest-wasted-bytes")?;
    }
    if let Some(v) = &a.highest_user_wasted_percent {
        rules.highest_user_wasted_percent = ci::ratio(v, "--highest-user-wasted-percent")?;
    }
    Ok(rules)
}

fn print_table(img: &ImageLayers, no_trunc: bool) {
    let mut t =
        Table::new(&["LAYER", "CHAIN ID", "SIZE", "ADDED", "MODIFIED", "DELETED", "WASTED", "SHARED", "CREATED BY"]);
    for r in &img.rows {
        let by = if no_trunc { r.created_by.clone() } else { truncate(&r.created_by, 45) };
        match (&r.layer, &r.chain_id) {
            (Some(i), Some(chain)) => {
                let id = if no_trunc { chain.to_string() } else { chain.hex()[..12].to_string() };
                let c = &r.changes;
                t.row(vec![
                    format!("{i}{}", if r.user { "" } else { " (base)" }),
                    id,
                    human_size(c.size),
                    c.added.to_string(),
                    c.modified.to_string(),
                    c.deleted.to_string(),
                    human_size(c.wasted),
                    r.shared_with.len().to_string(),
                    by,
                ]);
            }
            _ => t.row(vec![
                "-".into(),
                "-".into(),
                "0B".into(),
                "".into(),
                "".into(),
                "".into(),
                "".into(),
                "".into(),
                by,
            ]),
        }
    }
    t.print();
    println!();
    let base = match &img.base {
        Some(b) => format!("above {b} ({} layer{})", img.base_layers, if img.base_layers == 1 { "" } else { "s" }),
        None => format!("above layer {}", img.base_layers.saturating_sub(1)),
    };
    println!("Image size:          {}", human_size(img.size));
    println!("Wasted:              {}", human_size(img.wasted));
    println!("Efficiency:          {:.2} %", img.efficiency * 100.0);
    println!("User wasted:         {:.2} % ({base})", img.user_wasted_ratio * 100.0);
    if img.hidden.is_empty() {
        return;
    }
    println!();
    println!("Largest hidden copies:");
    let mut w = Table::new(&["SIZE", "IN LAYER", "HIDDEN BY", "HOW", "PATH"]);
    for h in img.hidden.iter().take(10) {
        w.row(vec![
            human_size(h.size),
            h.layer.to_string(),
            h.by.to_string(),
            if h.deleted { "deleted" } else { "overwritten" }.into(),
            format!("/{}", h.path),
        ]);
    }
    w.print();
}

#[derive(Args)]
pub(crate) struct DiffArgs {
    /// Output format: table or json.
    #[arg(long, default_value = "table")]
    format: String,
    /// The image compared from.
    a: String,
    /// The image compared to.
    b: String,
}

pub(crate) fn diff(engine: &Engine, a: DiffArgs) -> Result<ExitCode> {
    let d = engine.explorer().diff(&a.a, &a.b)?;
    match a.format.as_str() {
        "json" => println!("{}", serde_json::to_string_pretty(&d)?),
        "table" => {
            let short =
                |v: &[strata::Digest]| v.iter().map(|c| c.hex()[..12].to_string()).collect::<Vec<_>>().join(" ");
            println!("Shared layers: {} {}", d.shared.len(), short(&d.shared));
            println!("Only in {}: {} {}", a.a, d.only_a.len(), short(&d.only_a));
            println!("Only in {}: {} {}", a.b, d.only_b.len(), short(&d.only_b));
            for c in &d.changes {
                match c.change {
                    'C' => println!("C {} ({})", c.path, c.what.join(", ")),
                    other => println!("{other} {}", c.path),
                }
            }
        }
        other => anyhow::bail!("unknown --format {other:?}: want table or json"),
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Args)]
pub(crate) struct TreeArgs {
    /// Output format: table or json.
    #[arg(long, default_value = "table")]
    format: String,
    /// Show the layers and images built on IMAGE instead of IMAGE's own.
    #[arg(long, requires = "image")]
    whatrequires: bool,
    /// Show this image's layers and what `rmi` of it would free (default: every layer).
    image: Option<String>,
}

pub(crate) fn tree(engine: &Engine, a: TreeArgs) -> Result<ExitCode> {
    let t = engine.explorer().tree(a.image.as_deref(), a.whatrequires)?;
    match a.format.as_str() {
        "json" => {
            println!("{}", serde_json::to_string_pretty(&t)?);
            return Ok(ExitCode::SUCCESS);
        }
        "table" => {}
        other => anyhow::bail!("unknown --format {other:?}: want table or json"),
    }
    let mut table = Table::new(&["LAYER", "ON DISK", "USED BY", "IMAGES"]);
    fn rows(n: &strata::explore::sharing::LayerNode, prefix: &str, last: bool, root: bool, table: &mut Table) {
        let branch = if root {
            ""
        } else if last {
            "└─ "
        } else {
            "├─ "
        };
        let names: Vec<String> = n
            .images
            .iter()
            .map(|i| match i.names.first() {
                Some(t) => strata::image::reference::display_tag(t),
                None => i.id.hex()[..12].to_string(),
            })
            .collect();
        table.row(vec![
            format!("{prefix}{branch}{}", &n.chain_id.hex()[..12]),
            human_size(n.on_disk),
            n.used_by.to_string(),
            names.join(", "),
        ]);
        let next = if root { String::new() } else { format!("{prefix}{}", if last { "   " } else { "│  " }) };
        for (i, c) in n.children.iter().enumerate() {
            rows(c, &next, i + 1 == n.children.len(), false, table);
        }
    }
    for r in &t.roots {
        rows(r, "", true, true, &mut table);
    }
    table.print();
    println!();
    println!("On disk: {}; saved by sharing: {}", human_size(t.on_disk), human_size(t.saved_by_sharing));
    if let Some(r) = &t.rmi {
        let name = a.image.as_deref().unwrap_or_default();
        if r.untag_only {
            println!("rmi {name} would only untag it (the image has other tags): frees 0B");
        } else {
            println!(
                "rmi {name} would free {} ({} layers, {} blobs){}",
                human_size(r.frees),
                r.layers.len(),
                r.blobs.len(),
                if r.containers > 0 {
                    format!("; {} containers use it: rmi refuses without -f", r.containers)
                } else {
                    String::new()
                }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Args)]
pub(crate) struct ExplainArgs {
    /// Output format: table or json.
    #[arg(long, default_value = "table")]
    format: String,
    /// An image built by strata on this store.
    image: String,
}

pub(crate) fn explain(engine: &Engine, a: ExplainArgs) -> Result<ExitCode> {
    let steps = engine.builds().explain(&a.image)?;
    match a.format.as_str() {
        "json" => println!("{}", serde_json::to_string_pretty(&steps)?),
        "table" => {
            for s in &steps {
                println!("STEP {}: {}", s.step, s.text);
                if s.cached {
                    println!("--> CACHED");
                }
                for r in &s.reasons {
                    println!("--> not cached: {r}");
                }
            }
        }
        other => anyhow::bail!("unknown --format {other:?}: want table or json"),
    }
    Ok(ExitCode::SUCCESS)
}
