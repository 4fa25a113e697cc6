//! `cp` and `export`: Docker's rules for the local side (where a copy lands,
//! `/.` for a directory's contents, `-` for a tar stream) over the
//! library's tar streams out of and into containers.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use strata::container::copy::PathKind;
use strata::Engine;

use crate::{CpArgs, ExportArgs};

/// `NAME:PATH` names a container's path; a path starting with `/` or `.`, or without `:`, is local.
fn split_container(arg: &str) -> Option<(&str, &str)> {
    if arg.starts_with('/') || arg.starts_with('.') {
        return None;
    }
    arg.split_once(':').filter(|(c, _)| !c.is_empty())
}

fn file_name(p: &str) -> String {
    Path::new(p).file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| ".".into())
}

fn parent(p: &str) -> String {
    let t = p.trim_end_matches('/');
    match Path::new(t).parent() {
        Some(x) if x.as_os_str().is_empty() => ".".into(),
        Some(x) => x.display().to_string(),
        None => "/".into(),
    }
}

pub(crate) fn cp(engine: &Engine, a: CpArgs) -> Result<ExitCode> {
    match (split_container(&a.src), split_container(&a.dest)) {
        (Some((c, src)), None) => copy_out(engine, c, src, &a.dest, a.follow_link),
        (None, Some((c, dest))) => copy_in(engine, &a.src, c, dest, a.archive, a.follow_link),
        (Some(_), Some(_)) => bail!("copying between containers is not supported: copy to a local path first"),
        (None, None) => bail!("one of SRC and DEST must be CONTAINER:PATH"),
    }?;
    Ok(ExitCode::SUCCESS)
}

/// Run `produce` writing a tar into a pipe while `consume` reads it.
fn through_pipe(
    produce: impl FnOnce(&mut dyn Write) -> Result<()> + Send,
    consume: impl FnOnce(&mut dyn Read) -> Result<()>,
) -> Result<()> {
    let (mut r, mut w) = io::pipe().context("making a pipe")?;
    std::thread::scope(|s| {
        let producer = s.spawn(move || {
            let res = produce(&mut w);
            drop(w);
            res
        });
        let consumed = consume(&mut r);
        // A tar reader stops at the first end block: read the rest, so the
        // writer's last blocks do not meet a closed pipe.
        let _ = io::copy(&mut r, &mut io::sink());
        drop(r);
        let produced = producer.join().map_err(|_| anyhow::anyhow!("the copy thread panicked"))?;
        // The producer's error is the cause when both failed (the reader saw a cut stream).
        produced.and(consumed)
    })
}

fn copy_out(engine: &Engine, container: &str, src: &str, dest: &str, follow: bool) -> Result<()> {
    if dest == "-" {
        let mut out = io::stdout().lock();
        engine.containers().copy_out(container, src, follow, &mut out)?;
        return Ok(out.flush()?);
    }
    let kind = engine
        .containers()
        .stat_path(container, src)?
        .with_context(|| format!("no such file or directory in container {container}: {src}"))?;
    let contents = src.ends_with("/.") && kind == PathKind::Dir;
    let dest_md = std::fs::metadata(dest).ok();
    // (directory to unpack in, the name the top entry gets there; None: its children go there)
    let (dir, top): (PathBuf, Option<String>) = match (&dest_md, kind) {
        (Some(m), _) if m.is_dir() => (PathBuf::from(dest), if contents { None } else { Some(file_name(src)) }),
        (Some(_), PathKind::Dir) => bail!("cannot copy a directory to a file: {dest}"),
        (Some(_), PathKind::Other) => (PathBuf::from(parent(dest)), Some(file_name(dest))),
        (None, PathKind::Other) if dest.ends_with('/') => bail!("{dest}: no such directory"),
        (None, _) => {
            let p = PathBuf::from(parent(dest));
            if !p.is_dir() {
                bail!("{}: no such directory", p.display());
            }
            (p, Some(file_name(dest)))
        }
    };
    let src_top = file_name(src.trim_end_matches("/."));
    through_pipe(
        |w| Ok(engine.containers().copy_out(container, src.trim_end_matches("/."), follow, w)?),
        |r| {
            let mut ar = tar::Archive::new(r);
            ar.set_preserve_permissions(true);
            ar.set_overwrite(true);
            for e in ar.entries()? {
                let mut e = e?;
                let path = e.path()?.into_owned();
                let mut parts = path.components();
                let first = parts.next().map(|c| c.as_os_str().to_string_lossy().to_string());
                if first.as_deref() != Some(src_top.as_str()) {
                    bail!("unexpected entry {} in the copy of {src}", path.display());
                }
                let rest: PathBuf = parts.collect();
                let target = match &top {
                    Some(t) if rest.as_os_str().is_empty() => dir.join(t),
                    Some(t) => dir.join(t).join(&rest),
                    None if rest.as_os_str().is_empty() => continue,
                    None => dir.join(&rest),
                };
                e.unpack(&target).with_context(|| format!("writing {}", target.display()))?;
            }
            Ok(())
        },
    )
}

fn copy_in(engine: &Engine, src: &str, container: &str, dest: &str, keep_owner: bool, follow: bool) -> Result<()> {
    if src == "-" {
        return Ok(engine.containers().copy_in(container, dest, keep_owner, &mut io::stdin().lock())?);
    }
    let src_md = std::fs::symlink_metadata(src).with_context(|| format!("{src}: no such file or directory"))?;
    let src_is_dir = std::fs::metadata(src).map(|m| m.is_dir()).unwrap_or(false) && (follow || src_md.is_dir());
    let contents = src.ends_with("/.") && src_is_dir;
    let kind = engine.containers().stat_path(container, dest)?;
    // (directory in the container to unpack in, name of the top entry; None: the children)
    let (dir, top): (String, Option<String>) = match kind {
        Some(PathKind::Dir) => {
            (dest.to_string(), if contents { None } else { Some(file_name(src.trim_end_matches("/."))) })
        }
        Some(PathKind::Other) if src_is_dir => bail!("cannot copy a directory to a file: {container}:{dest}"),
        Some(PathKind::Other) => (parent(dest), Some(file_name(dest))),
        None if dest.ends_with('/') && !src_is_dir => bail!("{container}:{dest}: no such directory"),
        None => (parent(dest), Some(file_name(dest))),
    };
    let src_path = PathBuf::from(src.trim_end_matches("/."));
    through_pipe(
        |w| {
            let mut tar = tar::Builder::new(w);
            tar.follow_symlinks(follow);
            match &top {
                Some(t) if src_is_dir => tar.append_dir_all(t, &src_path)?,
                Some(t) => tar.append_path_with_name(&src_path, t)?,
                None => {
                    for e in std::fs::read_dir(&src_path)? {
                        let e = e?;
                        let p = e.path();
                        if e.file_type()?.is_dir() {
                            tar.append_dir_all(e.file_name(), &p)?;
                        } else {
                            tar.append_path_with_name(&p, e.file_name())?;
                        }
                    }
                }
            }
            tar.finish()?;
            Ok(())
        },
        |r| Ok(engine.containers().copy_in(container, &dir, keep_owner, r)?),
    )
}

pub(crate) fn export(engine: &Engine, a: ExportArgs) -> Result<ExitCode> {
    match &a.output {
        Some(path) => {
            // Written beside, renamed when whole: no partial archive under the name.
            let tmp = PathBuf::from(format!("{}.strata-partial", path.display()));
            let mut f = std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
            let r = engine.containers().export(&a.container, &mut f).map_err(anyhow::Error::from);
            if let Err(e) = r.and_then(|()| Ok(f.sync_all()?)) {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
            std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
        }
        None => {
            let mut out = io::stdout().lock();
            engine.containers().export(&a.container, &mut out)?;
            out.flush()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
