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

/// A time as Docker's `--since`, `--until` and `until=` take it, in
/// nanoseconds since the epoch: RFC 3339, Unix seconds (with a fraction),
/// or a duration before now (`10m`, `1h30m`, `45s`).
pub fn parse_time(s: &str) -> Result<i128> {
    let bad = || Error::invalid(format!("invalid time {s:?}: want RFC 3339, Unix seconds, or a duration like 10m"));
    if let Ok(t) = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339) {
        return Ok(t.unix_timestamp_nanos());
    }
    if let Ok(secs) = s.parse::<f64>() {
        return Ok((secs * 1e9) as i128);
    }
    let mut total = 0f64;
    let mut num = String::new();
    for c in s.chars() {
        match c {
            '0'..='9' | '.' => num.push(c),
            'h' | 'm' | 's' if !num.is_empty() => {
                let n: f64 = num.parse().map_err(|_| bad())?;
                total += n * match c {
                    'h' => 3600.0,
                    'm' => 60.0,
                    _ => 1.0,
                };
                num.clear();
            }
            _ => return Err(bad()),
        }
    }
    if !num.is_empty() || s.is_empty() {
        return Err(bad());
    }
    Ok(time::OffsetDateTime::now_utc().unix_timestamp_nanos() - (total * 1e9) as i128)
}

impl Filters {
    /// `until=TIME`: true when not given or `created` (seconds) is before every value given.
    pub fn before_until(&self, created: i64) -> Result<bool> {
        for v in self.values("until") {
            if i128::from(created) * 1_000_000_000 >= parse_time(v)? {
                return Ok(false);
            }
        }
        Ok(true)
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
    crate::wildcard::Wildcard::new(pattern, false).is_ok_and(|p| p.matches(text))
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
