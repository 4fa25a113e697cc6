//! `build --output`: the final stage's filesystem written out instead of
//! an image, as a directory (`type=local,dest=DIR`, or `-o DIR`) or a tar
//! (`type=tar,dest=FILE`, or `-o -` for standard output). Written beside
//! its destination and renamed into place, so a failed build leaves no
//! partial directory or file.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::snapshot::View;
use crate::core::Core;
use crate::error::{Error, IoContext, Result};
use crate::store::LayerRecord;

/// Where `--output` sends the filesystem.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// A directory: made, or, when it is there, its top-level entries replaced.
    Local(PathBuf),
    /// A tar file, or standard output for `-`.
    Tar(PathBuf),
}

impl Output {
    /// Parse `type=local,dest=DIR`, `type=tar,dest=FILE|-`, `DIR` or `-`.
    pub fn parse(spec: &str) -> Result<Output> {
        let bad = |why: &str| Error::invalid(format!("--output {spec:?}: {why}"));
        if spec == "-" {
            return Ok(Output::Tar(PathBuf::from("-")));
        }
        if !spec.contains('=') {
            if spec.is_empty() {
                return Err(bad("give type=local,dest=DIR or type=tar,dest=FILE"));
            }
            return Output::parse(&format!("type=local,dest={spec}"));
        }
        let (mut kind, mut dest) = (None, None);
        for part in spec.split(',') {
            match part.split_once('=') {
                Some(("type", v)) => kind = Some(v),
                Some(("dest", v)) if !v.is_empty() => dest = Some(PathBuf::from(v)),
                _ => return Err(bad(&format!("unknown part {part:?} (want type=local|tar and dest=PATH)"))),
            }
        }
        let out = match (kind, dest) {
            (Some("local"), Some(d)) => Output::Local(d),
            (Some("tar"), Some(d)) => Output::Tar(d),
            (Some("local" | "tar"), None) => return Err(bad("give dest=PATH")),
            (Some(other), _) => return Err(bad(&format!("type={other} is not supported (want local or tar)"))),
            (None, _) => return Err(bad("give type=local or type=tar")),
        };
        // Checked before the build, not after it.
        let (Output::Local(d) | Output::Tar(d)) = &out;
        let d: &Path = d;
        if d.as_os_str() != "-" {
            let parent = parent_of(d);
            if !parent.is_dir() {
                return Err(bad(&format!("{} is not a directory", parent.display())));
            }
        }
        Ok(out)
    }

    /// Write the filesystem of `layers` (bottom first).
    pub(super) fn write(&self, core: &Core, layers: &[LayerRecord]) -> Result<()> {
        let view = View::of(core, layers)?;
        match self {
            Output::Tar(p) if p.as_os_str() == "-" => {
                let out = io::BufWriter::new(io::stdout().lock());
                let mut out = crate::layer::write_diff(&view.target, out, &crate::layer::WriteOptions::default())?;
                out.flush().map_err(|e| Error::stream("writing the output tar", e))
            }
            Output::Tar(p) => {
                let (tmp, f) = beside(p, |t| File::create_new(t).map(Some))?;
                let f = f.expect("made");
                let done = crate::layer::write_diff(&view.target, io::BufWriter::new(f), &Default::default())
                    .and_then(|w| w.into_inner().map_err(|e| Error::stream("writing the output tar", e.into_error())))
                    .and_then(|f| f.sync_all().at(&tmp));
                finish(done, &tmp, || fs::rename(&tmp, p).at(p))
            }
            Output::Local(dest) => {
                let (tmp, _) = beside(dest, |t| fs::create_dir(t).map(|_| None::<File>))?;
                let done = crate::tree::copy_tree(&view.target, &tmp);
                finish(done, &tmp, || {
                    if !dest.exists() {
                        return fs::rename(&tmp, dest).at(dest);
                    }
                    // As BuildKit: what is there stays, but for what the output replaces.
                    for e in fs::read_dir(&tmp).at(&tmp)? {
                        let e = e.at(&tmp)?;
                        let to = dest.join(e.file_name());
                        if fs::symlink_metadata(&to).is_ok() {
                            crate::tree::remove(&to)?;
                        }
                        fs::rename(e.path(), &to).at(&to)?;
                    }
                    crate::tree::remove(&tmp)
                })
            }
        }
    }
}

/// A new entry next to `dest` (same filesystem, so it can be renamed onto it).
fn beside<T>(dest: &Path, make: impl Fn(&Path) -> io::Result<Option<T>>) -> Result<(PathBuf, Option<T>)> {
    let parent = parent_of(dest);
    let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "output".into());
    let tmp = parent.join(format!(".{name}.strata-{}", crate::tmp::random_hex(8)?));
    let made = make(&tmp).at(&tmp)?;
    Ok((tmp, made))
}

/// The directory `dest` goes in.
fn parent_of(dest: &Path) -> PathBuf {
    match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Put the output in place if it was written, else remove what was begun.
fn finish(done: Result<()>, tmp: &Path, place: impl FnOnce() -> Result<()>) -> Result<()> {
    let placed = done.and_then(|_| place());
    if placed.is_err() && fs::symlink_metadata(tmp).is_ok() {
        let _ = crate::tree::remove(tmp);
    }
    placed
}
