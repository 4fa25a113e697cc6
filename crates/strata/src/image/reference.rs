//! Image references in Docker's syntax: `[REGISTRY[:PORT]/]REPO[:TAG][@sha256:DIGEST]`,
//! normalised as Docker does (`docker.io` by default, `library/` for
//! single-component names on Docker Hub, `latest` when no tag or digest).

use std::fmt;

use crate::digest::Digest;
use crate::error::{Error, Result};

/// The default registry.
pub const DEFAULT_REGISTRY: &str = "docker.io";

/// A parsed, normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// Registry host, with port if any.
    pub registry: String,
    /// Repository path within the registry.
    pub repository: String,
    /// Tag, if given (or defaulted).
    pub tag: Option<String>,
    /// Digest, if given.
    pub digest: Option<Digest>,
}

fn valid_component(c: &str) -> bool {
    !c.is_empty()
        && c.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        && c.as_bytes()[0].is_ascii_alphanumeric()
        && c.as_bytes()[c.len() - 1].is_ascii_alphanumeric()
}

fn valid_tag(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 128
        && t.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && (t.as_bytes()[0].is_ascii_alphanumeric() || t.as_bytes()[0] == b'_')
}

impl Reference {
    /// Parse a reference; a missing tag becomes `latest` unless a digest is given.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = |why: &str| Error::invalid(format!("invalid reference format {s:?}: {why}"));
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (r, Some(Digest::parse(d).map_err(|_| bad("bad digest"))?)),
            None => (s, None),
        };
        let (name, tag) = match rest.rfind(':') {
            Some(i) if !rest[i + 1..].contains('/') => (&rest[..i], Some(rest[i + 1..].to_string())),
            _ => (rest, None),
        };
        if let Some(t) = &tag {
            if !valid_tag(t) {
                return Err(bad("bad tag"));
            }
        }
        if name.is_empty() {
            return Err(bad("empty name"));
        }
        let (registry, path) = match name.split_once('/') {
            Some((first, path)) if first.contains('.') || first.contains(':') || first == "localhost" => {
                (first.to_string(), path.to_string())
            }
            _ => (DEFAULT_REGISTRY.to_string(), name.to_string()),
        };
        if name.bytes().any(|b| b.is_ascii_uppercase()) && registry == DEFAULT_REGISTRY {
            return Err(bad("repository name must be lowercase"));
        }
        if !path.split('/').all(valid_component) {
            return Err(bad("repository name must be lowercase letters, digits and separators"));
        }
        let repository =
            if registry == DEFAULT_REGISTRY && !path.contains('/') { format!("library/{path}") } else { path };
        let tag = if tag.is_none() && digest.is_none() { Some("latest".to_string()) } else { tag };
        Ok(Reference { registry, repository, tag, digest })
    }

    /// `registry/repository`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The name as Docker shows it: without `docker.io/` and `library/`.
    pub fn familiar_name(&self) -> String {
        familiar(&self.name())
    }
}

/// Shorten a full `registry/repository` name as Docker displays it.
pub fn familiar(full: &str) -> String {
    match full.strip_prefix("docker.io/") {
        Some(rest) => rest.strip_prefix("library/").unwrap_or(rest).to_string(),
        None => full.to_string(),
    }
}

/// A stored tag as Docker prints it (`busybox:latest`).
pub fn display_tag(stored: &str) -> String {
    let (n, t) = split_tag(stored);
    format!("{}:{t}", familiar(n))
}

/// Split a stored tag name (`registry/repo:tag`) into name and tag.
pub fn split_tag(stored: &str) -> (&str, &str) {
    match stored.rfind(':') {
        Some(i) if !stored[i + 1..].contains('/') => (&stored[..i], &stored[i + 1..]),
        _ => (stored, ""),
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_like_docker() {
        let cases = [
            ("busybox", "docker.io/library/busybox:latest"),
            ("me/app:1.0", "docker.io/me/app:1.0"),
            ("localhost:5000/app", "localhost:5000/app:latest"),
            ("127.0.0.1:5000/a/b:t", "127.0.0.1:5000/a/b:t"),
            ("quay.io/x/y:v", "quay.io/x/y:v"),
        ];
        for (input, want) in cases {
            assert_eq!(Reference::parse(input).unwrap().to_string(), want, "{input}");
        }
        let d = format!("sha256:{}", "a".repeat(64));
        let r = Reference::parse(&format!("busybox@{d}")).unwrap();
        assert_eq!(r.tag, None);
        assert_eq!(r.digest.unwrap().as_str(), d);
        assert_eq!(Reference::parse("busybox").unwrap().familiar_name(), "busybox");
    }

    #[test]
    fn rejects_bad_references() {
        for bad in ["", "Busybox", "a:b:c", "x/:t", "a@sha256:12", "a:-t"] {
            assert!(Reference::parse(bad).is_err(), "{bad}");
        }
    }
}
