//! `.dockerignore` with Docker's rules: one pattern per line, `#`
//! comments, paths relative to the context root (a leading `/` means the
//! same), `*` and `?` within one path element, `**` across any number of
//! them, `!` re-including what an earlier line excluded, the last matching
//! line winning, and a pattern that matches a directory covering all of it.
//! Patterns are [`Wildcard`]s.

use crate::error::{Error, Result};
use crate::wildcard::Wildcard;

#[derive(Debug, Clone)]
struct Rule {
    pattern: Wildcard,
    exception: bool,
    text: String,
}

/// The parsed patterns of a context's ignore file.
#[derive(Debug, Clone, Default)]
pub struct Ignore {
    rules: Vec<Rule>,
}

/// Lexically clean a slash path: no `.`, no empty elements, `..` resolved
/// (never above the start). Returns `None` for a path that climbs out.
pub fn clean(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

impl Ignore {
    /// Parse an ignore file's text (`file` names it in errors).
    pub fn parse(text: &str, file: &str) -> Result<Self> {
        let mut rules = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (exception, pat) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            let cleaned = clean(pat).unwrap_or_default();
            let pattern = Wildcard::new(if cleaned.is_empty() { "." } else { &cleaned }, true)
                .map_err(|e| Error::invalid(format!("{file}:{}: bad pattern {pat:?}: {e}", n + 1)))?;
            rules.push(Rule { pattern, exception, text: cleaned });
        }
        Ok(Ignore { rules })
    }

    /// Whether a context-relative path (cleaned, `/`-separated) is excluded.
    pub fn excluded(&self, rel: &str) -> bool {
        let mut out = false;
        for r in &self.rules {
            if r.exception == out && matches(&r.pattern, rel) {
                out = !r.exception;
            }
        }
        out
    }

    /// Whether an exception could re-include something below the excluded
    /// directory `rel` (so a walk must still look inside it).
    pub fn may_reinclude_below(&self, rel: &str) -> bool {
        self.rules
            .iter()
            .any(|r| r.exception && (r.text.starts_with(&format!("{rel}/")) || r.text.contains(['*', '?', '['])))
    }

    /// No patterns at all.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

/// The path or one of its parent directories matches.
fn matches(p: &Wildcard, rel: &str) -> bool {
    if p.matches(rel) {
        return true;
    }
    let mut end = rel.len();
    while let Some(i) = rel[..end].rfind('/') {
        if p.matches(&rel[..i]) {
            return true;
        }
        end = i;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_rules() {
        let ig = Ignore::parse("# c\n*.log\n/build\n**/tmp\n!keep.log\ndocs/*.md\n!docs/README.md\n", "x").unwrap();
        assert!(ig.excluded("a.log"));
        assert!(!ig.excluded("keep.log"));
        assert!(!ig.excluded("sub/a.log"), "* does not cross /");
        assert!(ig.excluded("build"));
        assert!(ig.excluded("build/out/x"));
        assert!(ig.excluded("tmp/x"));
        assert!(ig.excluded("a/b/tmp"));
        assert!(ig.excluded("docs/x.md"));
        assert!(!ig.excluded("docs/README.md"));
        assert!(!ig.excluded("src/main.rs"));
        assert_eq!(clean("./a//b/../c"), Some("a/c".into()));
        assert_eq!(clean("../x"), None);
        assert!(Ignore::parse("[", "f").unwrap_err().to_string().starts_with("f:1:"));
    }
}
