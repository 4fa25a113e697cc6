//! Health checks: the image's HEALTHCHECK or `--health-*` flags, run by the
//! container's monitor inside the container every interval, and the
//! result as Docker keeps it (`State.Health`: status `starting`, `healthy`
//! or `unhealthy`, the failing streak, the last five probes), written by
//! the monitor to `health.json` in the container's directory for `ps`,
//! `inspect` and `events` to read.
//!
//! Docker's rules: a probe that fails during the start period does not
//! count until one succeeds; `retries` failures in a row make it
//! unhealthy; a probe over its timeout fails; output is kept to 4 KiB.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};

/// What to run and how often (Docker's `Config.Healthcheck`, durations in ns).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Check {
    /// `["CMD", arg...]` or `["CMD-SHELL", command]`.
    pub test: Vec<String>,
    /// Between probes.
    pub interval: u64,
    /// A probe's limit.
    pub timeout: u64,
    /// Failures in this first stretch do not count.
    pub start_period: u64,
    /// Failures in a row that make it unhealthy.
    pub retries: u32,
}

/// The `--health-*` flags as given.
#[derive(Debug, Clone, Default)]
pub struct HealthFlags {
    /// `--health-cmd` (run by /bin/sh -c).
    pub cmd: Option<String>,
    /// `--health-interval`.
    pub interval: Option<String>,
    /// `--health-timeout`.
    pub timeout: Option<String>,
    /// `--health-start-period`.
    pub start_period: Option<String>,
    /// `--health-retries`.
    pub retries: Option<u32>,
    /// `--no-healthcheck`.
    pub disabled: bool,
}

const SECOND: u64 = 1_000_000_000;

impl Check {
    /// The check a container gets: the flags over the image's
    /// `Healthcheck` (its raw config JSON); none for `--no-healthcheck`,
    /// `NONE`, or when neither gives a command.
    pub fn resolve(image: &serde_json::Value, f: &HealthFlags) -> Result<Option<Check>> {
        if f.disabled {
            if f.cmd.is_some() {
                return Err(Error::invalid("--no-healthcheck conflicts with --health-cmd"));
            }
            return Ok(None);
        }
        let test: Vec<String> = match &f.cmd {
            Some(c) => vec!["CMD-SHELL".into(), c.clone()],
            None => serde_json::from_value(image["Test"].clone()).unwrap_or_default(),
        };
        if test.is_empty() || test[0] == "NONE" {
            return Ok(None);
        }
        if !matches!(test[0].as_str(), "CMD" | "CMD-SHELL") || test.len() < 2 {
            return Err(Error::invalid(format!("invalid health check {test:?}: want CMD or CMD-SHELL and a command")));
        }
        let duration = |flag: &str, given: &Option<String>, image_key: &str, default: u64| -> Result<u64> {
            match given {
                Some(s) => crate::dockerfile::parse_duration(s).ok_or_else(|| {
                    Error::invalid(format!("invalid {flag} {s:?}: want a duration such as 30s or 500ms"))
                }),
                None => Ok(image[image_key].as_u64().filter(|n| *n > 0).unwrap_or(default)),
            }
        };
        let check = Check {
            test,
            interval: duration("--health-interval", &f.interval, "Interval", 30 * SECOND)?,
            timeout: duration("--health-timeout", &f.timeout, "Timeout", 30 * SECOND)?,
            start_period: duration("--health-start-period", &f.start_period, "StartPeriod", 0)?,
            retries: f.retries.or(image["Retries"].as_u64().map(|r| r as u32)).filter(|r| *r > 0).unwrap_or(3),
        };
        if check.interval < SECOND / 1000 || check.timeout < SECOND / 1000 {
            return Err(Error::invalid("--health-interval and --health-timeout must be at least 1ms"));
        }
        Ok(Some(check))
    }

    /// The probe's command line.
    pub fn command(&self) -> Vec<String> {
        match self.test[0].as_str() {
            "CMD-SHELL" => vec!["/bin/sh".into(), "-c".into(), self.test[1].clone()],
            _ => self.test[1..].to_vec(),
        }
    }

    /// Between probes.
    pub fn interval(&self) -> Duration {
        Duration::from_nanos(self.interval)
    }

    /// A probe's limit.
    pub fn timeout(&self) -> Duration {
        Duration::from_nanos(self.timeout)
    }

    /// The start period.
    pub fn start_period(&self) -> Duration {
        Duration::from_nanos(self.start_period)
    }

    /// Docker's `Config.Healthcheck`.
    pub fn docker_json(&self) -> serde_json::Value {
        serde_json::json!({"Test": self.test, "Interval": self.interval, "Timeout": self.timeout,
            "StartPeriod": self.start_period, "Retries": self.retries})
    }
}

/// One probe's result.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Probe {
    /// RFC 3339 times.
    #[serde(rename = "Start")]
    pub start: String,
    /// When it ended.
    #[serde(rename = "End")]
    pub end: String,
    /// Its exit code (-1 when it timed out or could not run).
    #[serde(rename = "ExitCode")]
    pub exit_code: i64,
    /// The first 4 KiB of its output.
    #[serde(rename = "Output")]
    pub output: String,
}

/// `State.Health`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Health {
    /// `starting`, `healthy` or `unhealthy`.
    #[serde(rename = "Status")]
    pub status: String,
    /// Failures in a row (not counting those in the start period).
    #[serde(rename = "FailingStreak")]
    pub failing_streak: u32,
    /// The last five probes.
    #[serde(rename = "Log")]
    pub log: Vec<Probe>,
}

impl Default for Health {
    fn default() -> Self {
        Health { status: "starting".into(), failing_streak: 0, log: Vec::new() }
    }
}

/// Now, as RFC 3339 with nanoseconds (a probe's start and end).
pub fn timestamp() -> String {
    time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// The most of a probe's output kept.
pub const OUTPUT_LIMIT: usize = 4096;

impl Health {
    /// Take a probe's result; the new status when it changed.
    pub fn record(&mut self, check: &Check, probe: Probe, in_start_period: bool) -> Option<String> {
        let before = self.status.clone();
        if probe.exit_code == 0 {
            self.failing_streak = 0;
            self.status = "healthy".into();
        } else if !(in_start_period && self.status == "starting") {
            self.failing_streak += 1;
            if self.failing_streak >= check.retries {
                self.status = "unhealthy".into();
            }
        }
        self.log.push(probe);
        if self.log.len() > 5 {
            self.log.remove(0);
        }
        (self.status != before).then(|| self.status.clone())
    }
}

/// The monitor's record for the container in `dir`, if it has a check.
pub fn read(dir: &Path) -> Option<Health> {
    std::fs::read(dir.join("health.json")).ok().and_then(|b| serde_json::from_slice(&b).ok())
}

/// Record `health` (whole: written aside, then renamed).
pub fn write(dir: &Path, health: &Health) -> Result<()> {
    let tmp = dir.join("health.json.tmp");
    std::fs::write(&tmp, serde_json::to_vec(health).expect("health serializes")).at(&tmp)?;
    std::fs::rename(&tmp, dir.join("health.json")).at(dir.join("health.json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(code: i64) -> Probe {
        Probe { start: String::new(), end: String::new(), exit_code: code, output: String::new() }
    }

    #[test]
    fn health_goes_starting_healthy_unhealthy_by_docker_s_rules() {
        let image = serde_json::json!({"Test": ["CMD-SHELL", "true"], "Interval": 5 * SECOND, "Retries": 2});
        let check = Check::resolve(&image, &HealthFlags::default()).unwrap().unwrap();
        assert_eq!((check.interval, check.timeout, check.retries), (5 * SECOND, 30 * SECOND, 2));
        assert_eq!(check.command(), ["/bin/sh", "-c", "true"]);
        let mut h = Health::default();
        assert_eq!(h.record(&check, probe(1), true), None, "a failure in the start period does not count");
        assert_eq!(h.failing_streak, 0);
        assert_eq!(h.record(&check, probe(0), true).as_deref(), Some("healthy"));
        assert_eq!(h.record(&check, probe(1), true), None, "after a success, failures count");
        assert_eq!(h.record(&check, probe(1), false).as_deref(), Some("unhealthy"));
        for _ in 0..5 {
            h.record(&check, probe(1), false);
        }
        assert_eq!(h.log.len(), 5);
        let off = HealthFlags { disabled: true, ..Default::default() };
        assert_eq!(Check::resolve(&image, &off).unwrap(), None);
        assert_eq!(Check::resolve(&serde_json::json!({"Test": ["NONE"]}), &HealthFlags::default()).unwrap(), None);
        let bad = HealthFlags { cmd: Some("true".into()), interval: Some("soon".into()), ..Default::default() };
        assert!(Check::resolve(&image, &bad).unwrap_err().to_string().contains("soon"));
    }
}
