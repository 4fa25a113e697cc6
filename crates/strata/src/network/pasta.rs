//! User-mode networking for rootless containers, by `pasta` (Debian's
//! `passt`): an ordinary user cannot make bridges or veth pairs on the
//! host, so a rootless container's namespace gets a tap interface that
//! pasta connects to the host's network through ordinary sockets, with the
//! host's addresses and routes copied in (`--config-net`). Published ports
//! are sockets pasta opens on the host and forwards into the namespace.
//!
//! pasta runs in the background and ends by itself when the pinned
//! namespace it serves is unmounted and removed (the container's teardown),
//! so there is no process of its own to track. The container reaches
//! neither the host's loopback services nor its ports (`-T none -U none`,
//! `--no-map-gw`), as podman runs it.

use std::path::Path;
use std::process::Command;

use super::netavark::PortMapping;
use crate::error::{Error, Result};

/// The network mode of a rootless container on pasta.
pub const MODE: &str = "pasta";

/// Why a rootless user cannot have a network, and what they can have.
/// Networks need a bridge and firewall rules in a namespace of the user's
/// with pasta in front of it (podman's rootless-netns), not built yet.
pub const NO_NETWORKS: &str =
    "networks are not available rootless (use pasta, the default, or none, host, container:NAME)";

/// Connect the pinned namespace `netns` and publish `ports` (host ports
/// chosen already, one per mapping); returns once pasta is ready.
pub fn start(netns: &Path, ports: &[PortMapping]) -> Result<()> {
    check_tun()?;
    let mut cmd = Command::new("pasta");
    cmd.args(["--config-net", "--quiet", "--no-map-gw", "-T", "none", "-U", "none"]);
    for proto in ["tcp", "udp"] {
        let flag = if proto == "tcp" { "-t" } else { "-u" };
        let mine: Vec<&PortMapping> = ports.iter().filter(|p| p.protocol == proto).collect();
        if mine.is_empty() {
            cmd.args([flag, "none"]);
        }
        for p in mine {
            let addr = if p.host_ip.is_empty() { String::new() } else { format!("{}/", p.host_ip) };
            cmd.arg(flag).arg(format!("{addr}{}:{}", p.host_port, p.container_port));
        }
    }
    cmd.arg("--netns").arg(netns);
    let out = cmd.output().map_err(|e| {
        Error::Runtime(format!("pasta: {e} (install Debian's passt package, or use --network none or host)"))
    })?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        // Its complaints about a missing syslog are noise here.
        let err: Vec<&str> = err.lines().filter(|l| !l.contains("syslog")).collect();
        return Err(Error::Runtime(format!("pasta could not connect the container: {}", err.join("; "))));
    }
    Ok(())
}

/// pasta opens `/dev/net/tun` for the container's interface: an ordinary
/// user needs it readable and writable (Debian's udev makes it 0666).
fn check_tun() -> Result<()> {
    if rustix::fs::access("/dev/net/tun", rustix::fs::Access::READ_OK | rustix::fs::Access::WRITE_OK).is_err() {
        return Err(Error::invalid(
            "rootless networking needs /dev/net/tun readable and writable by you (Debian's udev \
             makes it mode 0666); use --network none or host, or ask root to chmod 0666 /dev/net/tun",
        ));
    }
    Ok(())
}
