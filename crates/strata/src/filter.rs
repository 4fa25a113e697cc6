//! Docker's `--filter KEY=VALUE` lists: parsed and checked against the keys
//! a command knows (an unknown key is an error naming it), then asked per
//! key. Values of one key are alternatives (any may match); different keys
//! must all match, as Docker's. What each key means is the listing
//! service's business (`Containers::list_filtered`, `Images::list_filtered`).

use std::collections::BTreeMap;

use crate::error::{Error, Result};

/// Parsed filters.
#[derive(Debug, Clone, Default)]
pub struct Filters(BTreeMap<String, Vec<String>>);

impl Filters {
    /// Parse `KEY=VALUE` specs, allowing only `keys`.
    pub fn parse(specs: &[String], keys: &[&str]) -> Result<Self> {
        let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for s in specs {
            let Some((k, v)) = s.split_once('=') else {
                return Err(Error::invalid(format!("bad format of filter {s:?} (expected name=value)")));
            };
            let k = k.trim().to_ascii_lowercase();
            if !keys.contains(&k.as_str()) {
                return Err(Error::invalid(format!("invalid filter {k:?}: want one of {}", keys.join(", "))));
            }
            map.entry(k).or_default().push(v.to_string());
        }
        Ok(Filters(map))
    }

    /// No filter given.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The values given for `key`.
    pub fn values(&self, key: &str) -> &[String] {
        self.0.get(key).map(Vec::as_slice).unwrap_or(&[])
    }

    /// True when `key` was not given, or `test` holds for one of its values.
    pub fn any(&self, key: &str, test: impl Fn(&str) -> bool) -> bool {
        match self.0.get(key) {
            None => true,
            Some(vs) => vs.iter().any(|v| test(v)),
        }
    }
}

/// Whether `labels` satisfy a `label=KEY` or `label=KEY=VALUE` filter value.
pub fn label_matches(labels: &BTreeMap<String, String>, want: &str) -> bool {
    match want.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|have| have == v),
        None => labels.contains_key(want),
    }
}

/// A shell-style pattern (`*` any run, `?` one character) matched against
/// all of `text`, as Docker's `reference` filter matches names.
pub fn glob(pattern: &str, text: &str) -> bool {
    glob::Pattern::new(pattern).is_ok_and(|p| p.matches(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked_and_values_are_alternatives() {
        let f =
            Filters::parse(&["name=a".into(), "name=b".into(), "status=running".into()], &["name", "status"]).unwrap();
        assert!(f.any("name", |v| v == "b"));
        assert!(!f.any("name", |v| v == "c"));
        assert!(f.any("label", |_| false), "a key not given passes");
        let e = Filters::parse(&["nope=1".into()], &["name"]).unwrap_err().to_string();
        assert!(e.contains("nope"), "{e}");
        assert!(Filters::parse(&["novalue".into()], &["name"]).is_err());
        let labels = BTreeMap::from([("a".to_string(), "1".to_string())]);
        assert!(label_matches(&labels, "a") && label_matches(&labels, "a=1") && !label_matches(&labels, "a=2"));
        assert!(glob("busy*:1", "busybox:1") && !glob("busy*", "other:1"));
    }
}
