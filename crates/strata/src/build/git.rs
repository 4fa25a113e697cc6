//! Git sources of a build: a git repository as the context (`build
//! URL#REF:SUBDIR`) and as an ADD source (`ADD URL#REF DEST`). Fetched by
//! Git itself (Debian's `git`: cloning, refs, submodules and transports are
//! its own business, not strata's), one commit deep, into tmp/; keyed for
//! the build cache by the commit the ref names. What the repository holds
//! is hostile like any context: its subdirectory is resolved inside it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::confined::Root;
use crate::error::{Error, Result};
use crate::tmp::TempDir;

/// A git source: the repository, the ref (`HEAD` when not given) and a subdirectory.
#[derive(Debug, Clone, PartialEq)]
pub struct GitSource {
    /// The repository.
    pub url: String,
    /// The branch, tag or commit (`HEAD` when not given).
    pub reference: String,
    /// The directory inside the repository ("" for its top).
    pub subdir: String,
}

impl GitSource {
    /// Whether `s` names a git repository, as Docker tells: `git://`,
    /// `git@`, an http(s) URL ending in `.git` (before any `#`), or
    /// `file://` (a local repository, for tests and mirrors).
    pub fn is_git(s: &str) -> bool {
        let base = s.split('#').next().unwrap_or(s);
        s.starts_with("git://")
            || s.starts_with("git@")
            || s.starts_with("file://")
            || ((s.starts_with("https://") || s.starts_with("http://")) && base.ends_with(".git"))
    }

    /// Parse `URL[#REF[:SUBDIR]]`.
    pub fn parse(s: &str) -> Result<GitSource> {
        let (url, fragment) = s.split_once('#').unwrap_or((s, ""));
        let (reference, subdir) = fragment.split_once(':').unwrap_or((fragment, ""));
        if url.is_empty() || reference.starts_with('-') {
            return Err(Error::invalid(format!("{s}: want a git URL[#REF[:SUBDIR]]")));
        }
        Ok(GitSource {
            url: url.to_string(),
            reference: if reference.is_empty() { "HEAD".to_string() } else { reference.to_string() },
            subdir: subdir.trim_matches('/').to_string(),
        })
    }

    fn shown(&self) -> String {
        format!("{}#{}", self.url, self.reference)
    }

    /// The commit the ref names now (`git ls-remote`), for the cache key.
    pub fn commit(&self) -> Result<String> {
        let out = git(None, &["ls-remote", "--", &self.url, &self.reference], &self.shown())?;
        // A tag's peeled line (`^{}`) names its commit; else the first match.
        let lines: Vec<(&str, &str)> = out.lines().filter_map(|l| l.split_once('\t')).collect();
        let pick = lines.iter().find(|(_, r)| r.ends_with("^{}")).or(lines.first()).map(|(h, _)| h.to_string());
        match pick {
            Some(h) => Ok(h),
            // A commit named by its hash is not listed: it is its own identity.
            None if self.reference.len() >= 7 && self.reference.bytes().all(|b| b.is_ascii_hexdigit()) => {
                Ok(self.reference.clone())
            }
            None => Err(Error::invalid(format!("{}: no such ref in the repository", self.shown()))),
        }
    }

    /// Fetch the ref's tree (with submodules) into a new directory under
    /// `tmp`. Returns the directory, the path of `subdir` in it, and the commit.
    pub fn fetch(&self, tmp: &Path, keep_git_dir: bool) -> Result<(TempDir, PathBuf, String)> {
        let dir = TempDir::new(tmp, "build-git")?;
        let d = dir.path();
        let shown = self.shown();
        git(Some(d), &["init", "-q"], &shown)?;
        git(Some(d), &["remote", "add", "origin", "--", &self.url], &shown)?;
        git(Some(d), &["fetch", "-q", "--depth", "1", "--no-tags", "origin", "--", &self.reference], &shown)?;
        git(Some(d), &["checkout", "-q", "FETCH_HEAD"], &shown)?;
        git(Some(d), &["submodule", "update", "-q", "--init", "--recursive", "--depth", "1"], &shown)?;
        let commit = git(Some(d), &["rev-parse", "HEAD"], &shown)?.trim().to_string();
        if !keep_git_dir {
            crate::tree::remove(&d.join(".git"))?;
        }
        let sub = if self.subdir.is_empty() {
            d.to_path_buf()
        } else {
            // Inside the repository, its links followed there and no further.
            let root = Root::open(d)?;
            let e =
                root.resolve(&self.subdir)?.filter(|e| e.metadata().is_ok_and(|m| m.is_dir())).ok_or_else(|| {
                    Error::invalid(format!("{shown}:{}: no such directory in the repository", self.subdir))
                })?;
            let rel = root
                .relative_path(&e)
                .ok_or_else(|| Error::invalid(format!("{shown}:{}: outside the repository", self.subdir)))?;
            d.join(rel)
        };
        Ok((dir, sub, commit))
    }
}

/// Run git (in `dir`), never asking for credentials on a terminal; its
/// standard output, or an error naming the source and git's complaint.
fn git(dir: Option<&Path>, args: &[&str], shown: &str) -> Result<String> {
    let mut cmd = Command::new("git");
    if let Some(d) = dir {
        cmd.arg("-C").arg(d);
    }
    let out = cmd
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_PROTOCOL_FROM_USER", "0")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::invalid(format!("{shown}: running git (apt-get install git): {e}")))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(Error::invalid(format!("{shown}: git {}: {}", args[0], err.trim())));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
