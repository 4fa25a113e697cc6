//! Restart policies (`--restart no|on-failure[:N]|always|unless-stopped`):
//! Docker's rule for whether a detached container's monitor runs it again
//! after it exits, Docker's growing delay between runs, and what the
//! monitor shares with other commands, in the container's directory:
//!
//! ```text
//! restart.json   {"count": N, "restarting": bool, "quick_failures": N}: written by the monitor only
//! stopped        present once `stop`/`rm` asked for it to stay down; `start` removes it
//! ```
//!
//! Applies to containers run by a monitor (`run -d`, `start`); an attached
//! `run` ends with its container.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};

/// A restart policy.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Policy {
    /// `no` (empty), `on-failure`, `always` or `unless-stopped`.
    pub name: String,
    /// For `on-failure`: restarts at most this many times (0: no bound).
    pub max_retries: u32,
}

impl std::str::FromStr for Policy {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad =
            || Error::invalid(format!("invalid --restart {s:?}: want no, on-failure[:N], always or unless-stopped"));
        let (name, count) = s.split_once(':').map_or((s, None), |(n, c)| (n, Some(c)));
        let max_retries = match (name, count) {
            ("on-failure", Some(c)) => c.parse().map_err(|_| bad())?,
            (_, Some(_)) => return Err(bad()),
            _ => 0,
        };
        match name {
            "" | "no" => Ok(Policy::default()),
            "on-failure" | "always" | "unless-stopped" => Ok(Policy { name: name.into(), max_retries }),
            _ => Err(bad()),
        }
    }
}

impl Policy {
    /// Whether a container that exited with `code`, restarted `restarts`
    /// times so far, runs again (never once it was stopped by hand).
    pub fn should_restart(&self, code: i64, restarts: u32, stopped: bool) -> bool {
        !stopped
            && match self.name.as_str() {
                "always" | "unless-stopped" => true,
                "on-failure" => code != 0 && (self.max_retries == 0 || restarts < self.max_retries),
                _ => false,
            }
    }

    /// Docker's name for it (`inspect`'s `HostConfig.RestartPolicy.Name`).
    pub fn docker_name(&self) -> &str {
        if self.name.is_empty() {
            "no"
        } else {
            &self.name
        }
    }
}

/// Docker's delay before restart `n` of a run of quick failures: 100 ms,
/// doubling, at most a minute.
pub fn delay(n: u32) -> Duration {
    Duration::from_millis(100u64.saturating_mul(1 << n.min(10))).min(Duration::from_secs(60))
}

/// A run that lasted this long resets the delay (Docker's rule).
pub const STEADY: Duration = Duration::from_secs(10);

/// What the monitor records about its restarts.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct State {
    /// Restarts since the last `start`.
    pub count: u32,
    /// Waiting to run it again.
    pub restarting: bool,
    /// Runs in a row that ended within [`STEADY`] (the delay grows with them).
    #[serde(default)]
    pub quick_failures: u32,
}

/// The monitor's record, or none.
pub fn read(dir: &Path) -> State {
    std::fs::read(dir.join("restart.json")).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
}

/// Record `state` (whole or not at all: written aside, then renamed).
pub fn write(dir: &Path, state: State) -> Result<()> {
    let tmp = dir.join("restart.json.tmp");
    std::fs::write(&tmp, serde_json::to_vec(&state).expect("state serializes")).at(&tmp)?;
    std::fs::rename(&tmp, dir.join("restart.json")).at(dir.join("restart.json"))
}

/// Mark the container as stopped by hand (its monitor restarts it no more).
pub fn mark_stopped(dir: &Path) -> Result<()> {
    std::fs::write(dir.join("stopped"), b"").at(dir.join("stopped"))
}

/// Whether it was stopped by hand.
pub fn stopped(dir: &Path) -> bool {
    dir.join("stopped").exists()
}

/// A manual start: forget the manual stop.
pub fn clear_stopped(dir: &Path) {
    let _ = std::fs::remove_file(dir.join("stopped"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_parse_and_decide_as_docker_s() {
        let p: Policy = "on-failure:2".parse().unwrap();
        assert!(p.should_restart(1, 0, false) && p.should_restart(1, 1, false));
        assert!(!p.should_restart(1, 2, false) && !p.should_restart(0, 0, false));
        let a: Policy = "always".parse().unwrap();
        assert!(a.should_restart(0, 100, false) && !a.should_restart(0, 0, true));
        assert!(!"no".parse::<Policy>().unwrap().should_restart(1, 0, false));
        for bad in ["sometimes", "always:3", "on-failure:x"] {
            assert!(bad.parse::<Policy>().is_err(), "{bad}");
        }
        assert_eq!(delay(0), Duration::from_millis(100));
        assert_eq!(delay(3), Duration::from_millis(800));
        assert_eq!(delay(30), Duration::from_secs(60));
    }
}
