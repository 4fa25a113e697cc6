//! Published ports: Docker's `-p [IP:][HOSTPORT:]CONTAINERPORT[/PROTO]`
//! (ports or equal-length ranges; no host port means a random one), and
//! the host ports' reservation: while a container runs, the process that
//! waits on it holds a socket bound to each host port (bound, never
//! listening: traffic reaches the container through netavark's DNAT), so
//! no other program can take the port and a second container asking for
//! it is refused before anything is made.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::OwnedFd;

use serde::{Deserialize, Serialize};

use super::netavark::PortMapping;
use crate::error::{Error, Result};

/// One `-p` (or `-P`) entry as given: a host port of 0 is chosen at start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortSpec {
    /// Host address; empty for all.
    pub host_ip: String,
    /// First host port, 0 for random ones.
    pub host_port: u16,
    /// First container port.
    pub container_port: u16,
    /// How many consecutive ports.
    pub range: u16,
    /// `tcp` or `udp`.
    pub protocol: String,
}

fn port_range(s: &str, spec: &str) -> Result<(u16, u16)> {
    let bad = || Error::invalid(format!("invalid port {s:?} in -p {spec:?}: want a port (1-65535) or a range A-B"));
    let one = |p: &str| p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(bad);
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (one(a)?, one(b)?);
            if b < a {
                return Err(bad());
            }
            Ok((a, b - a + 1))
        }
        None => Ok((one(s)?, 1)),
    }
}

/// Parse one `-p` value.
pub fn parse(spec: &str) -> Result<PortSpec> {
    let (addr, protocol) = match spec.rsplit_once('/') {
        Some((a, p)) => (a, p),
        None => (spec, "tcp"),
    };
    if protocol != "tcp" && protocol != "udp" {
        return Err(Error::invalid(format!("invalid protocol {protocol:?} in -p {spec:?}: want tcp or udp")));
    }
    let parts: Vec<&str> = addr.split(':').collect();
    let (host_ip, host, container) = match parts.as_slice() {
        [c] => ("", "", *c),
        [h, c] => ("", *h, *c),
        [ip, h, c] => (*ip, *h, *c),
        _ => return Err(Error::invalid(format!("invalid -p {spec:?}: want [IP:][HOSTPORT:]CONTAINERPORT[/PROTO]"))),
    };
    if !host_ip.is_empty() && host_ip.parse::<Ipv4Addr>().is_err() {
        return Err(Error::invalid(format!("invalid host address {host_ip:?} in -p {spec:?}: want an IPv4 address")));
    }
    if container.is_empty() {
        return Err(Error::invalid(format!("invalid -p {spec:?}: no container port")));
    }
    let (container_port, range) = port_range(container, spec)?;
    let host_port = if host.is_empty() {
        0
    } else {
        let (h, hr) = port_range(host, spec)?;
        if hr != range {
            return Err(Error::invalid(format!(
                "invalid -p {spec:?}: the host range has {hr} ports and the container range {range}"
            )));
        }
        h
    };
    if u32::from(container_port) + u32::from(range) - 1 > 65535 || u32::from(host_port) + u32::from(range) - 1 > 65535 {
        return Err(Error::invalid(format!("invalid -p {spec:?}: the range goes past port 65535")));
    }
    let host_ip = if host_ip == "0.0.0.0" { "" } else { host_ip };
    Ok(PortSpec { host_ip: host_ip.to_string(), host_port, container_port, range, protocol: protocol.to_string() })
}

/// The sockets that hold a container's host ports while it runs.
pub struct Reservation {
    _sockets: Vec<OwnedFd>,
}

impl Reservation {
    /// No ports held (another process binds them: pasta).
    pub fn none() -> Self {
        Reservation { _sockets: Vec::new() }
    }

    /// The sockets themselves, for a process that holds them on (a monitor).
    pub fn into_sockets(self) -> Vec<OwnedFd> {
        self._sockets
    }
}

fn bind(ip: &str, port: u16, protocol: &str) -> std::io::Result<(OwnedFd, u16)> {
    use rustix::net::{AddressFamily, SocketType};
    let ty = if protocol == "udp" { SocketType::DGRAM } else { SocketType::STREAM };
    let fd = rustix::net::socket_with(AddressFamily::INET, ty, rustix::net::SocketFlags::CLOEXEC, None)?;
    let ip: Ipv4Addr = if ip.is_empty() { Ipv4Addr::UNSPECIFIED } else { ip.parse().expect("checked when parsed") };
    rustix::net::bind(&fd, &SocketAddrV4::new(ip, port))?;
    let got = match rustix::net::getsockname(&fd)? {
        a => std::net::SocketAddr::try_from(a).map(|a| a.port()).unwrap_or(port),
    };
    Ok((fd, got))
}

/// Bind every host port of `specs` (choosing free ones for port 0); the
/// mappings netavark is given, one per port, and the sockets that hold them.
/// A port taken by anything else is an error naming it.
pub fn reserve(specs: &[PortSpec]) -> Result<(Vec<PortMapping>, Reservation)> {
    let mut sockets = Vec::new();
    let mut mappings = Vec::new();
    for s in specs {
        for i in 0..s.range {
            let want = if s.host_port == 0 { 0 } else { s.host_port + i };
            let (fd, port) = bind(&s.host_ip, want, &s.protocol).map_err(|e| {
                let ip = if s.host_ip.is_empty() { "0.0.0.0" } else { &s.host_ip };
                let privileged = std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
                    .ok()
                    .and_then(|v| v.trim().parse::<u16>().ok())
                    .filter(|start| e.kind() == std::io::ErrorKind::PermissionDenied && want < *start);
                match privileged {
                    Some(start) => Error::invalid(format!(
                        "host port {ip}:{want}/{} cannot be published: ports below {start} are privileged \
                         (net.ipv4.ip_unprivileged_port_start) and this user is not root on the host",
                        s.protocol
                    )),
                    None => Error::InUse(format!("host port {ip}:{want}/{} cannot be published: {e}", s.protocol)),
                }
            })?;
            sockets.push(fd);
            mappings.push(PortMapping {
                host_ip: s.host_ip.clone(),
                container_port: s.container_port + i,
                host_port: port,
                range: 1,
                protocol: s.protocol.clone(),
            });
        }
    }
    Ok((mappings, Reservation { _sockets: sockets }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(ip: &str, h: u16, c: u16, r: u16, proto: &str) -> PortSpec {
        PortSpec { host_ip: ip.into(), host_port: h, container_port: c, range: r, protocol: proto.into() }
    }

    #[test]
    fn docker_forms_parse() {
        assert_eq!(parse("8080:80").unwrap(), p("", 8080, 80, 1, "tcp"));
        assert_eq!(parse("80").unwrap(), p("", 0, 80, 1, "tcp"));
        assert_eq!(parse("127.0.0.1:8080:80/udp").unwrap(), p("127.0.0.1", 8080, 80, 1, "udp"));
        assert_eq!(parse("127.0.0.1::80").unwrap(), p("127.0.0.1", 0, 80, 1, "tcp"));
        assert_eq!(parse("8000-8002:80-82").unwrap(), p("", 8000, 80, 3, "tcp"));
        assert_eq!(parse("0.0.0.0:1:2").unwrap(), p("", 1, 2, 1, "tcp"));
    }

    #[test]
    fn bad_forms_are_named() {
        for bad in
            ["80:", "70000:80", "abc", "80:0", "1-3:1-2", "x.y:1:2", "80/sctp", "1:2:3:4", "65535-65535:65535-65535/x"]
        {
            let e = parse(bad).unwrap_err().to_string();
            assert!(e.contains(bad) || e.contains("protocol"), "{bad}: {e}");
        }
    }
}
