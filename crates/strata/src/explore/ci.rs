//! `image layers --ci`: dive's three rules, with dive's meaning, so CI
//! configurations written for dive (`.dive-ci`) carry over.
//!
//! - `lowestEfficiency` (a ratio 0–1): broken when the efficiency is below it;
//! - `highestWastedBytes` (`20MB`, `1GiB`, bytes): broken when more bytes are wasted;
//! - `highestUserWastedPercent` (a ratio 0–1, despite the name, as dive):
//!   broken when the user layers' wasted bytes, relative to the user
//!   layers' bytes, are above it.
//!
//! A value `disabled` (or a key left out) turns a rule off.

use yaml_rust2::{Yaml, YamlLoader};

use super::ImageLayers;
use crate::error::{Error, Result};

/// The thresholds; `None` is a rule turned off.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Rules {
    /// Lowest efficiency allowed (0–1).
    pub lowest_efficiency: Option<f64>,
    /// Most wasted bytes allowed.
    pub highest_wasted_bytes: Option<u64>,
    /// Highest ratio of user-wasted bytes to user bytes allowed (0–1).
    pub highest_user_wasted_percent: Option<f64>,
}

impl Rules {
    /// The rules of a `.dive-ci` file's text; `file` names it in errors.
    pub fn from_dive_ci(text: &str, file: &str) -> Result<Rules> {
        let docs = YamlLoader::load_from_str(text).map_err(|e| Error::invalid(format!("{file}: {e}")))?;
        let mut rules = Rules::default();
        let Some(doc) = docs.first() else { return Ok(rules) };
        let section = match doc {
            Yaml::Hash(h) => h.get(&Yaml::String("rules".into())),
            Yaml::Null => None,
            _ => return Err(Error::invalid(format!("{file}: not a mapping with a `rules` key"))),
        };
        let Some(section) = section else { return Ok(rules) };
        let Yaml::Hash(h) = section else {
            return Err(Error::invalid(format!("{file}: `rules` is not a mapping")));
        };
        for (k, v) in h {
            let key = k.as_str().unwrap_or_default();
            let value = match v {
                Yaml::Real(s) | Yaml::String(s) => s.clone(),
                Yaml::Integer(i) => i.to_string(),
                _ => return Err(Error::invalid(format!("{file}: rules.{key}: not a number or size"))),
            };
            let at = format!("{file}: rules.{key}");
            match key {
                "lowestEfficiency" => rules.lowest_efficiency = ratio(&value, &at)?,
                "highestWastedBytes" => rules.highest_wasted_bytes = bytes(&value, &at)?,
                "highestUserWastedPercent" => rules.highest_user_wasted_percent = ratio(&value, &at)?,
                _ => {
                    return Err(Error::invalid(format!(
                        "{file}: unknown rule {key:?} (lowestEfficiency, highestWastedBytes, highestUserWastedPercent)"
                    )))
                }
            }
        }
        Ok(rules)
    }

    /// Each rule `img` breaks, said as a sentence; empty when it passes.
    pub fn check(&self, img: &ImageLayers) -> Vec<String> {
        let mut broken = Vec::new();
        if let Some(t) = self.lowest_efficiency.filter(|&t| img.efficiency < t) {
            broken.push(format!("lowestEfficiency: the efficiency {:.4} is below {t}", img.efficiency));
        }
        if let Some(t) = self.highest_wasted_bytes.filter(|&t| img.wasted > t) {
            broken.push(format!("highestWastedBytes: {} bytes are wasted, more than {t}", img.wasted));
        }
        if let Some(t) = self.highest_user_wasted_percent.filter(|&t| img.user_wasted_ratio > t) {
            broken.push(format!(
                "highestUserWastedPercent: the user layers waste {:.4} of their bytes, more than {t}",
                img.user_wasted_ratio
            ));
        }
        broken
    }
}

/// A ratio 0–1, or `disabled`.
pub fn ratio(value: &str, at: &str) -> Result<Option<f64>> {
    if value.trim() == "disabled" {
        return Ok(None);
    }
    match value.trim().parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(Some(r)),
        _ => Err(Error::invalid(format!("{at}: {value:?} is not a ratio between 0 and 1 (or `disabled`)"))),
    }
}

/// A byte count as dive reads it (go-humanize: `20MB` is 20·1000², `20MiB`
/// 20·1024²; a bare number is bytes), or `disabled`.
pub fn bytes(value: &str, at: &str) -> Result<Option<u64>> {
    let v = value.trim();
    if v == "disabled" {
        return Ok(None);
    }
    let split = v.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let factor: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "t" | "tb" => 1e12,
        "ki" | "kib" => 1024.0,
        "mi" | "mib" => 1024.0 * 1024.0,
        "gi" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "ti" | "tib" => 1024f64.powi(4),
        _ => return Err(Error::invalid(format!("{at}: {value:?} is not a size (20MB, 1GiB, 1024)"))),
    };
    match num.parse::<f64>() {
        Ok(n) if n >= 0.0 => Ok(Some((n * factor).round() as u64)),
        _ => Err(Error::invalid(format!("{at}: {value:?} is not a size (20MB, 1GiB, 1024)"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dive_ci_file_reads_as_dive_reads_it() {
        let r = Rules::from_dive_ci(
            "rules:\n  lowestEfficiency: 0.95\n  highestWastedBytes: 20MB\n  highestUserWastedPercent: disabled\n",
            ".dive-ci",
        )
        .unwrap();
        assert_eq!(
            r,
            Rules {
                lowest_efficiency: Some(0.95),
                highest_wasted_bytes: Some(20_000_000),
                highest_user_wasted_percent: None
            }
        );
        assert_eq!(bytes("1.5KiB", "x").unwrap(), Some(1536));
        for bad in [
            "rules:\n  lowestEfficiency: 2\n",
            "rules:\n  highestWastedBytes: lots\n",
            "rules: [1\n",
            "rules:\n  tooBig: 1\n",
        ] {
            let e = Rules::from_dive_ci(bad, ".dive-ci").unwrap_err().to_string();
            assert!(e.starts_with(".dive-ci"), "{e}");
        }
    }
}
