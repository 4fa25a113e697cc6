//! Sizes as Docker's flags take them (`--memory 512m`, `--shm-size 1g`,
//! `--tmpfs /run:size=64m`, `--log-opt max-size=10m`): a number, optionally
//! fractional, with an optional `b`, `k`, `m`, `g`, `t` or `p` suffix (also
//! `kb`, `kib`, ...), each a power of 1024, case ignored. Written here: the
//! rule is Docker's go-units `RAMInBytes`, which size crates read with
//! powers of 1000 for `kb`/`mb`.

use crate::error::{Error, Result};

/// Bytes in `s`; the error names `flag` and the value.
pub fn parse_size(flag: &str, s: &str) -> Result<u64> {
    let bad = || Error::invalid(format!("invalid {flag} {s:?}: want a size such as 512m or 1g"));
    let lower = s.trim().to_ascii_lowercase();
    let digits_end = lower.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(lower.len());
    let (num, unit) = lower.split_at(digits_end);
    let shift = match unit.trim_end_matches("ib").trim_end_matches('b') {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        "p" => 50,
        _ => return Err(bad()),
    };
    match num.parse::<f64>() {
        Ok(n) if n >= 0.0 && n.is_finite() => Ok((n * (1u64 << shift) as f64) as u64),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_docker_reads_them() {
        for (s, n) in [
            ("512", 512),
            ("1k", 1024),
            ("64m", 64 << 20),
            ("1.5g", 3 << 29),
            ("2GB", 2 << 30),
            ("1KiB", 1024),
            ("7b", 7),
        ] {
            assert_eq!(parse_size("--x", s).unwrap(), n, "{s}");
        }
        for bad in ["", "m", "-1m", "1x", "1.2.3k"] {
            assert!(parse_size("--x", bad).is_err(), "{bad}");
        }
    }
}
