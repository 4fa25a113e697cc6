//! Containers: records and their lifecycle (created → running → exited →
//! removed), the writable layer over the image's shared layers, the runtime
//! bundle, and what changed (`diff`, `commit`).
//!
//! ```text
//! <root>/containers/<id>/upper, work   the container layer (overlay driver)
//! <root>/containers/<id>/rootfs        the mounted root (overlay), or a full copy (copy driver)
//! <root>/containers/<id>/config.json   the OCI bundle's spec
//! <root>/containers/<id>/hostname, hosts, resolv.conf
//! <root>/containers/<id>/container.log stdout and stderr of a detached container
//! <root>/containers/<id>/attach.sock   its monitor's input socket (`-i`/`-t`), while it runs
//! <root>/containers/<id>/restart.json, stopped   restart count and manual stop (`restart`)
//! <root>/containers/<id>/health.json   its health check's status and last probes (`health`)
//! <root>/runtime/<id>                  libcontainer's state while it runs
//! ```
//!
//! There is no daemon: an attached `run` waits for its container through a
//! waiter process; a detached one is watched by a monitor process started
//! for it (`monitor`: the engine launches it, then the small
//! `strata-monitor` program watches it), which records the exit code and
//! cleans up.

pub mod attach;
pub mod copy;
pub mod health;
pub mod logs;
mod monitor;
mod ops;
pub mod resources;
pub mod restart;
pub mod runtime;
pub mod seccomp;
pub mod security;
pub mod signal;
pub mod spec;
pub mod stats;
pub mod tty;

pub use ops::{dev_null, inherit_stdio, volumes, Attach, ContainerSummary, Containers, CreateOptions};

use crate::error::Result;
pub use crate::layer::changes::Change;

pub use spec::RunConfig;

/// A container's run configuration, read from its record: the one place it
/// is parsed, failing with the container named (never a default, which
/// would pick the wrong runtime or forget its volumes).
pub fn run_config(rec: &crate::store::ContainerRecord) -> Result<RunConfig> {
    serde_json::from_str(&rec.config).map_err(|e| {
        crate::error::Error::Corrupt(format!("container {} ({}): run configuration: {e}", rec.name, rec.id))
    })
}

/// A sweeper (run while the store lock is held exclusively, before `tmp/`
/// is cleared): the RUN containers of builds that were killed. A step's
/// container is started by the build process; a SIGKILLed build leaves it
/// running with nobody to wait for it. Its bundle in the build's `tmp/`
/// entry names it (`cgroupsPath` `/strata/ID` in `config.json`), and the
/// runtime deletes it by force: every process in its cgroup is killed.
pub fn sweep_killed_steps(core: &crate::core::Core) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(&core.tmp) else { return Ok(()) };
    for e in entries.flatten() {
        if crate::tmp::owner_alive(&e.file_name().to_string_lossy()) {
            continue;
        }
        let Ok(text) = std::fs::read(e.path().join("config.json")) else { continue };
        let Ok(spec) = serde_json::from_slice::<serde_json::Value>(&text) else { continue };
        let Some(id) = spec["linux"]["cgroupsPath"].as_str().and_then(|p| p.strip_prefix("/strata/")) else {
            continue;
        };
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            continue;
        }
        let rt = runtime::for_name(None, &core.root.join("runtime"))?;
        if let Err(err) = rt.delete(id) {
            tracing::warn!("ending the RUN container {id} of a killed build: {err}");
        }
        // A build killed while its step's container was starting leaves the runtime
        // no usable state (none yet, or one still "creating"), and `delete` then
        // ends nothing: the container's processes are in its cgroup all the same.
        stats::kill_cgroup(id);
    }
    Ok(())
}
