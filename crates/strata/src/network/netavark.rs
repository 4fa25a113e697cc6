//! netavark, driven the way podman drives it: `netavark setup NETNS` and
//! `netavark teardown NETNS` with the container's network options as JSON
//! on standard input, the status (addresses, MACs, DNS servers) as JSON on
//! standard output. netavark makes the bridge, the veth pair, the firewall
//! rules (NAT, published ports) and starts aardvark-dns for networks with
//! DNS; strata gives it the namespace, the addresses (host-local IPAM: the
//! addresses are chosen by strata and passed as static ones) and the host
//! ports, and serialises its calls on one lock per store.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};

/// A port mapping as netavark takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    /// Host address to bind; empty for all.
    pub host_ip: String,
    /// Container port.
    pub container_port: u16,
    /// Host port.
    pub host_port: u16,
    /// How many consecutive ports (1 for one).
    pub range: u16,
    /// `tcp` or `udp`.
    pub protocol: String,
}

/// The options for one container (`NetworkOptions` in netavark).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Options {
    /// Container ID.
    pub container_id: String,
    /// Container name.
    pub container_name: String,
    /// Published ports.
    pub port_mappings: Vec<PortMapping>,
    /// Per network (by name): the container's interface there.
    pub networks: BTreeMap<String, PerNetwork>,
    /// Per network (by name): the network.
    pub network_info: BTreeMap<String, Network>,
    /// DNS servers aardvark-dns forwards to, when not the host's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns_servers: Option<Vec<String>>,
}

/// A container's interface on one network.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PerNetwork {
    /// DNS names besides the container's name.
    pub aliases: Vec<String>,
    /// Interface name inside the container (`eth0`, `eth1`, ...).
    pub interface_name: String,
    /// The address strata allocated.
    pub static_ips: Vec<String>,
    /// A MAC address asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub static_mac: Option<String>,
}

/// A network as netavark describes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Network {
    /// Name.
    pub name: String,
    /// ID.
    pub id: String,
    /// `bridge`.
    pub driver: String,
    /// The host bridge.
    pub network_interface: String,
    /// Subnets with their gateways.
    pub subnets: Vec<Subnet>,
    /// IPv6.
    pub ipv6_enabled: bool,
    /// No NAT, no route out.
    pub internal: bool,
    /// aardvark-dns on the gateway.
    pub dns_enabled: bool,
    /// `{"driver": "host-local"}`: addresses come from the caller.
    pub ipam_options: BTreeMap<String, String>,
    /// Bridge options: `isolate` keeps networks from reaching each other (as Docker's do).
    pub options: BTreeMap<String, String>,
}

/// A subnet and its gateway.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Subnet {
    /// CIDR.
    pub subnet: String,
    /// The bridge's address.
    pub gateway: String,
}

/// What setup made, per network name.
pub type Status = BTreeMap<String, StatusBlock>;

/// What setup made on one network.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StatusBlock {
    /// Search domains for resolv.conf.
    #[serde(default)]
    pub dns_search_domains: Option<Vec<String>>,
    /// Name servers for resolv.conf (aardvark-dns on the gateway).
    #[serde(default)]
    pub dns_server_ips: Option<Vec<String>>,
    /// Interfaces made in the container, by name.
    #[serde(default)]
    pub interfaces: Option<BTreeMap<String, Interface>>,
}

/// One interface setup made.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Interface {
    /// Its MAC address.
    pub mac_address: String,
    /// Its addresses.
    #[serde(default)]
    pub subnets: Option<Vec<Address>>,
}

/// An address on an interface.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Address {
    /// The gateway.
    #[serde(default)]
    pub gateway: Option<String>,
    /// `ADDRESS/PREFIX`.
    pub ipnet: String,
}

/// Where a helper binary is: `STRATA_<NAME>` (upper case), then where Debian
/// and Fedora put podman's helpers, then PATH.
fn helper(name: &str) -> Result<PathBuf> {
    let var = format!("STRATA_{}", name.to_ascii_uppercase().replace('-', "_"));
    if let Some(p) = std::env::var_os(&var) {
        return Ok(PathBuf::from(p));
    }
    let mut dirs: Vec<PathBuf> =
        ["/usr/lib/podman", "/usr/libexec/podman", "/usr/local/libexec/podman"].iter().map(PathBuf::from).collect();
    dirs.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()));
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file()).ok_or_else(|| {
        Error::invalid(format!(
            "networking needs {name}, which is not installed (Debian package {name}; or set {var} to its path)"
        ))
    })
}

/// netavark for one store: its state directory (aardvark-dns's
/// configuration) and the lock that keeps two of its calls apart.
pub struct Netavark {
    config: PathBuf,
}

impl Netavark {
    /// netavark keeping its state under `dir`.
    pub fn new(dir: &Path) -> Self {
        Netavark { config: dir.to_path_buf() }
    }

    /// Hold the store's netavark lock: one setup or teardown at a time, and
    /// a caller's check of what is set up stays true while it holds it.
    pub fn lock(&self) -> Result<Locked<'_>> {
        std::fs::create_dir_all(&self.config).at(&self.config)?;
        let lock_path = self.config.join("strata.lock");
        let lock = std::fs::File::options().create(true).truncate(false).write(true).open(&lock_path).at(&lock_path)?;
        rustix::fs::flock(lock.as_fd(), rustix::fs::FlockOperation::LockExclusive)
            .map_err(std::io::Error::from)
            .at(&lock_path)?;
        Ok(Locked { netavark: self, _lock: lock })
    }
}

/// netavark with its lock held.
pub struct Locked<'a> {
    netavark: &'a Netavark,
    _lock: std::fs::File,
}

impl Locked<'_> {
    /// Set up `opts` in the namespace pinned at `netns`.
    pub fn setup(&self, netns: &Path, opts: &Options) -> Result<Status> {
        let out = self.call("setup", netns, opts)?;
        serde_json::from_slice(&out).map_err(|e| {
            Error::Runtime(format!(
                "netavark setup answered what strata cannot read ({e}): {}",
                String::from_utf8_lossy(&out)
            ))
        })
    }

    /// Undo a setup of `opts`.
    pub fn teardown(&self, netns: &Path, opts: &Options) -> Result<()> {
        self.call("teardown", netns, opts).map(drop)
    }

    fn call(&self, verb: &str, netns: &Path, opts: &Options) -> Result<Vec<u8>> {
        let input = serde_json::to_vec(opts).expect("options serialize");
        let mut child = Command::new(helper("netavark")?)
            .arg("--config")
            .arg(&self.netavark.config)
            .arg("--aardvark-binary")
            .arg(helper("aardvark-dns")?)
            .arg(verb)
            .arg(netns)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::Runtime(format!("starting netavark: {e}")))?;
        // Options are small (well under a pipe's buffer): written before reading.
        let mut stdin = child.stdin.take().expect("piped");
        let wrote = stdin.write_all(&input);
        drop(stdin);
        let out = child.wait_with_output().map_err(|e| Error::Runtime(format!("netavark {verb}: {e}")))?;
        wrote.map_err(|e| Error::Runtime(format!("netavark {verb}: writing its options: {e}")))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            // netavark reports errors as JSON {"error": "..."} on stdout (1.x) or text on stderr.
            let msg = serde_json::from_slice::<serde_json::Value>(&out.stdout)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_string))
                .unwrap_or_else(|| err.trim().to_string());
            return Err(Error::Runtime(format!("netavark {verb}: {msg}")));
        }
        Ok(out.stdout)
    }
}
