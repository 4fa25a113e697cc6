//! Networks: the default `bridge` (Docker's name; interface `strata0`, a
//! private /16) and user networks (`network create`), recorded in the
//! store with unique names, subnets and bridge interfaces; a container's
//! endpoints (its address on each network, allocated here, and its DNS
//! aliases); and the setup and teardown of a container's networking by
//! netavark in a namespace pinned under `<root>/netns/`.
//!
//! ```text
//! <root>/netns/<container-id>     the container's network namespace (a bind mount) while set up
//! <root>/networks/netavark/       netavark's state (aardvark-dns's configuration) and its lock
//! ```
//!
//! A setup is recorded (the exact options netavark was given) before
//! netavark runs and dropped after its teardown, so a setup whose owner was
//! killed is found and torn down by the next command that looks at the
//! container or opens the store alone ([`sweep`]).
//!
//! A network in use keeps an **anchor**: a pinned namespace with one
//! interface on its bridge, set up with the network's first container and
//! torn down by `network rm`. netavark removes a bridge and the network's
//! firewall rules when the last interface leaves it and makes them again
//! for the next one (28 iptables processes, about 0.3 s here); with the
//! anchor, the bridge and the network's rules live as long as the network
//! (as Docker's bridges do) and a container's teardown removes only what
//! is its own.

pub mod namespace;
pub mod netavark;
pub mod pasta;
pub mod ports;

use std::collections::{BTreeMap, HashSet};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::Serialize;

use crate::core::Core;
use crate::error::{Error, IoContext, Result};
use crate::store::{now, EndpointRecord, NetworkRecord, NetworkSetup};
use netavark::{Netavark, Options, PerNetwork, Status};
pub use ports::PortSpec;

/// The default network's name.
pub const DEFAULT_NETWORK: &str = "bridge";
const DEFAULT_INTERFACE: &str = "strata0";
/// Where the default network's /16 is taken from (the first that no route
/// or other network overlaps).
const DEFAULT_POOL: [&str; 4] = ["10.87.0.0/16", "10.86.0.0/16", "10.85.0.0/16", "10.84.0.0/16"];
/// User networks get a /24 from here.
const USER_POOL: &str = "10.90.0.0/16";

/// `network create`.
#[derive(Debug, Clone, Default)]
pub struct CreateNetwork {
    /// Name.
    pub name: String,
    /// `-d`: only `bridge`.
    pub driver: Option<String>,
    /// `--subnet CIDR`, repeatable: at most one IPv4 and (with `--ipv6`) one IPv6 subnet.
    pub subnets: Vec<String>,
    /// `--gateway IP` (the IPv4 subnet's).
    pub gateway: Option<String>,
    /// `--internal`.
    pub internal: bool,
    /// `--label K=V`.
    pub labels: Vec<String>,
    /// `--ipv6`.
    pub ipv6: bool,
}

/// A network as `network ls` lists it (the `host` and `none` modes too, as Docker).
#[derive(Debug, Clone, Serialize)]
pub struct NetworkSummary {
    /// ID (64 hex; `host` and `none` have fixed ones).
    pub id: String,
    /// Name.
    pub name: String,
    /// `bridge`, `host` or `null`.
    pub driver: String,
    /// `local`.
    pub scope: &'static str,
    /// Created (seconds since the epoch).
    pub created: i64,
    /// `--internal`.
    pub internal: bool,
    /// Labels.
    pub labels: BTreeMap<String, String>,
}

/// A container as a network setup sees it.
#[derive(Debug, Clone)]
pub struct Attachee<'a> {
    /// Container ID.
    pub id: &'a str,
    /// Container name (its DNS name on user networks).
    pub name: &'a str,
}

/// What a setup made.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The pinned namespace the runtime joins.
    pub netns: PathBuf,
    /// netavark's answer.
    pub status: Status,
}

fn parse_labels(labels: &[String]) -> BTreeMap<String, String> {
    labels
        .iter()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or((l, ""));
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// IPv4 routes of the caller's network namespace (`/proc/net/route`): a
/// new network's subnet must not overlap one.
fn host_routes() -> Vec<Ipv4Net> {
    let text = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
    let hex = |s: &str| u32::from_str_radix(s, 16).ok().map(|v| Ipv4Addr::from(v.swap_bytes()));
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (dst, mask) = (hex(f.get(1)?)?, hex(f.get(7)?)?);
            if dst.is_unspecified() {
                return None; // the default route overlaps everything by definition
            }
            Ipv4Net::with_netmask(dst, mask).ok()
        })
        .collect()
}

/// A `--subnet` as given: of the family asked for, room for a gateway and a
/// container, no host bits set, overlapping none of `taken`.
fn checked_subnet(w: &str, v6: bool, taken: &[IpNet]) -> Result<IpNet> {
    let (family, example) = if v6 { ("IPv6", "fd12:3456:789a::/64") } else { ("IPv4", "10.91.0.0/24") };
    let net: IpNet = w
        .parse()
        .ok()
        .filter(|n: &IpNet| matches!(n, IpNet::V6(_)) == v6)
        .ok_or_else(|| Error::invalid(format!("invalid subnet {w:?}: want an {family} CIDR such as {example}")))?;
    if net.prefix_len() + 2 > net.max_prefix_len() {
        return Err(Error::invalid(format!("subnet {w}: too small for a gateway and a container")));
    }
    if net != net.trunc() {
        return Err(Error::invalid(format!("invalid subnet {w}: host bits set (the network is {})", net.trunc())));
    }
    if let Some(t) = taken.iter().find(|t| t.contains(&net.network()) || net.contains(&t.network())) {
        return Err(Error::InUse(format!("subnet {net} overlaps {t}, which is in use")));
    }
    Ok(net)
}

/// The ID a network's anchor goes by in endpoints and setups.
fn anchor_id(n: &NetworkRecord) -> String {
    format!("network-{}", &n.id[..24])
}

/// A v6 subnet's gateway: its first address after the network's.
fn gateway6_of(net: &Ipv6Net) -> std::net::Ipv6Addr {
    std::net::Ipv6Addr::from(u128::from(net.network()) + 1)
}

fn overlaps(a: &Ipv4Net, b: &Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// The networks service.
pub struct Networks<'c> {
    core: &'c Core,
}

impl<'c> Networks<'c> {
    /// The service over `core`.
    pub fn new(core: &'c Core) -> Self {
        Networks { core }
    }

    fn netavark(&self) -> Netavark {
        Netavark::new(&self.core.root.join("networks").join("netavark"))
    }

    fn netns_path(&self, container_id: &str) -> PathBuf {
        self.core.root.join("netns").join(container_id)
    }

    /// A subnet for a new network: `want`, checked, or the first free one of `pool`.
    fn choose_subnet(&self, want: Option<&str>, pool: &[Ipv4Net]) -> Result<Ipv4Net> {
        let taken: Vec<Ipv4Net> =
            self.core.store.networks()?.iter().filter_map(|n| n.subnet.parse().ok()).chain(host_routes()).collect();
        if let Some(w) = want {
            let taken: Vec<IpNet> = taken.iter().map(|t| IpNet::V4(*t)).collect();
            return match checked_subnet(w, false, &taken)? {
                IpNet::V4(n) => Ok(n),
                IpNet::V6(_) => unreachable!("checked as IPv4"),
            };
        }
        pool.iter()
            .find(|c| !taken.iter().any(|t| overlaps(t, c)))
            .copied()
            .ok_or_else(|| Error::InUse("no free subnet left in strata's pools: give one with --subnet".into()))
    }

    /// An IPv6 subnet for a new network: `want`, checked, or a random
    /// unique-local /64 (fd00::/8, as RFC 4193 asks and podman does).
    fn choose_subnet6(&self, want: Option<&str>) -> Result<Ipv6Net> {
        let taken: Vec<Ipv6Net> =
            self.core.store.networks()?.iter().filter_map(|n| n.subnet6.as_deref()?.parse().ok()).collect();
        let overlaps6 = |a: &Ipv6Net, b: &Ipv6Net| a.contains(&b.network()) || b.contains(&a.network());
        if let Some(w) = want {
            let taken: Vec<IpNet> = taken.iter().map(|t| IpNet::V6(*t)).collect();
            return match checked_subnet(w, true, &taken)? {
                IpNet::V6(n) => Ok(n),
                IpNet::V4(_) => unreachable!("checked as IPv6"),
            };
        }
        for _ in 0..16 {
            let r = hex::decode(crate::tmp::random_hex(5)?).expect("hex");
            let mut b = [0u8; 16];
            b[0] = 0xfd;
            b[1..6].copy_from_slice(&r);
            let net = Ipv6Net::new(std::net::Ipv6Addr::from(b), 64).expect("/64");
            if !taken.iter().any(|t| overlaps6(t, &net)) {
                return Ok(net);
            }
        }
        Err(Error::InUse("no free IPv6 subnet found: give one with --subnet".into()))
    }

    fn free_interface(&self) -> Result<String> {
        let used: HashSet<String> = self.core.store.networks()?.into_iter().map(|n| n.interface).collect();
        Ok((1..).map(|i| format!("strata{i}")).find(|n| !used.contains(n)).expect("unbounded"))
    }

    /// `network create`.
    pub fn create(&self, o: &CreateNetwork) -> Result<NetworkRecord> {
        if crate::rootless::current().is_some() {
            return Err(Error::invalid(format!("network create {}: {}", o.name, pasta::NO_NETWORKS)));
        }
        if let Some(d) = o.driver.as_deref().filter(|d| *d != "bridge") {
            return Err(Error::invalid(format!("network driver {d:?} is not supported: only bridge")));
        }
        let (v6, v4): (Vec<&String>, Vec<&String>) = o.subnets.iter().partition(|s| s.contains(':'));
        if v4.len() > 1 || v6.len() > 1 {
            return Err(Error::invalid("give at most one IPv4 and one IPv6 --subnet"));
        }
        if !v6.is_empty() && !o.ipv6 {
            return Err(Error::invalid(format!("subnet {} is IPv6: add --ipv6", v6[0])));
        }
        if !valid_name(&o.name) || ["host", "none", DEFAULT_NETWORK].contains(&o.name.as_str()) {
            return Err(Error::invalid(format!(
                "invalid network name {:?}: [a-zA-Z0-9][a-zA-Z0-9_.-]*, and not bridge, host or none",
                o.name
            )));
        }
        if self.core.store.network(&o.name)?.is_some() {
            return Err(Error::InUse(format!("network {:?} already exists", o.name)));
        }
        let pool: Ipv4Net = USER_POOL.parse().expect("constant");
        let pool: Vec<Ipv4Net> = pool.subnets(24).expect("constant").collect();
        let subnet = self.choose_subnet(v4.first().map(|s| s.as_str()), &pool)?;
        let subnet6 = if o.ipv6 { Some(self.choose_subnet6(v6.first().map(|s| s.as_str()))?) } else { None };
        let gateway = match &o.gateway {
            Some(g) => {
                let ip: Ipv4Addr =
                    g.parse().map_err(|_| Error::invalid(format!("invalid gateway {g:?}: want an IPv4 address")))?;
                if !subnet.contains(&ip) || ip == subnet.network() || ip == subnet.broadcast() {
                    return Err(Error::invalid(format!("gateway {ip} is not a host address of subnet {subnet}")));
                }
                ip
            }
            None => subnet.hosts().next().expect("prefix <= 30"),
        };
        let rec = NetworkRecord {
            name: o.name.clone(),
            id: crate::tmp::random_hex(32)?,
            driver: "bridge".into(),
            interface: self.free_interface()?,
            subnet: subnet.to_string(),
            gateway: gateway.to_string(),
            subnet6: subnet6.map(|s| s.to_string()),
            gateway6: subnet6.map(|s| gateway6_of(&s).to_string()),
            internal: o.internal,
            dns: true,
            labels: serde_json::to_string(&parse_labels(&o.labels)).expect("labels serialize"),
            created: now(),
        };
        self.core.store.insert_network(&rec)?;
        crate::events::record(self.core, "network", "create", &rec.id, &[("name", &rec.name), ("type", "bridge")]);
        Ok(rec)
    }

    /// The default network, recorded on first use.
    pub fn default_network(&self) -> Result<NetworkRecord> {
        if let Some(n) = self.core.store.network(DEFAULT_NETWORK)? {
            return Ok(n);
        }
        let pool: Vec<Ipv4Net> = DEFAULT_POOL.iter().map(|p| p.parse().expect("constant")).collect();
        let subnet = self.choose_subnet(None, &pool)?;
        let rec = NetworkRecord {
            name: DEFAULT_NETWORK.into(),
            id: crate::tmp::random_hex(32)?,
            driver: "bridge".into(),
            interface: DEFAULT_INTERFACE.into(),
            subnet: subnet.to_string(),
            gateway: subnet.hosts().next().expect("a /16").to_string(),
            subnet6: None,
            gateway6: None,
            internal: false,
            // Docker's default bridge resolves no container names.
            dns: false,
            labels: "{}".into(),
            created: now(),
        };
        match self.core.store.insert_network(&rec) {
            // Another process recorded it first.
            Err(Error::InUse(_)) => {
                self.core.store.network(DEFAULT_NETWORK)?.ok_or_else(|| Error::not_found("network", DEFAULT_NETWORK))
            }
            r => r.map(|()| rec),
        }
    }

    /// A network by name, full ID or ID prefix (`bridge` is made if it is not yet).
    pub fn get(&self, name: &str) -> Result<NetworkRecord> {
        if name == DEFAULT_NETWORK {
            return self.default_network();
        }
        if let Some(n) = self.core.store.network(name)? {
            return Ok(n);
        }
        if !name.is_empty() && name.len() <= 64 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
            let mut found = self.core.store.networks_by_id_prefix(&name.to_ascii_lowercase())?;
            match found.len() {
                1 => return Ok(found.remove(0)),
                0 => {}
                _ => return Err(Error::invalid(format!("network ID prefix {name:?} is ambiguous"))),
            }
        }
        Err(Error::not_found("network", name))
    }

    /// `network ls`: `bridge`, `host`, `none` and the user networks.
    pub fn list(&self) -> Result<Vec<NetworkSummary>> {
        let bridge = self.default_network()?;
        let mut out = vec![summary(&bridge)];
        for (name, driver, id) in [("host", "host", "host"), ("none", "null", "none")] {
            out.push(NetworkSummary {
                // Fixed per mode (Docker's are random per daemon; strata has none).
                id: crate::digest::Digest::of(format!("strata network {id}").as_bytes()).hex().to_string(),
                name: name.into(),
                driver: driver.into(),
                scope: "local",
                created: bridge.created,
                internal: false,
                labels: BTreeMap::new(),
            });
        }
        out.extend(self.core.store.networks()?.iter().filter(|n| n.name != DEFAULT_NETWORK).map(summary));
        Ok(out)
    }

    /// `network ls --filter`: name (substring), id (prefix), driver, label, type (builtin/custom).
    pub fn list_filtered(&self, filters: &crate::filter::Filters) -> Result<Vec<NetworkSummary>> {
        Ok(self
            .list()?
            .into_iter()
            .filter(|n| {
                let builtin = ["bridge", "host", "none"].contains(&n.name.as_str());
                filters.any("name", |v| n.name.contains(v))
                    && filters.any("id", |v| n.id.starts_with(v))
                    && filters.any("driver", |v| v == n.driver)
                    && filters.any("label", |v| crate::filter::label_matches(&n.labels, v))
                    && filters.any("type", |v| (v == "builtin") == builtin)
            })
            .collect())
    }

    /// `network inspect`, in Docker's shape; `names` maps container IDs to names.
    pub fn inspect(&self, name: &str, names: &dyn Fn(&str) -> Option<String>) -> Result<serde_json::Value> {
        let n = self.get(name)?;
        let mut containers = serde_json::Map::new();
        for e in self.users(&n)? {
            let prefix = n.subnet.split('/').nth(1).unwrap_or("24");
            containers.insert(
                e.container_id.clone(),
                serde_json::json!({
                    "Name": names(&e.container_id).unwrap_or_default(),
                    "MacAddress": e.mac.clone().unwrap_or_default(),
                    "IPv4Address": format!("{}/{prefix}", e.ip),
                    "IPv6Address": e.ip6.as_ref().map(|a| format!("{a}/{}", n.subnet6.as_deref().and_then(|s| s.split('/').nth(1)).unwrap_or("64"))).unwrap_or_default(),
                }),
            );
        }
        let labels: BTreeMap<String, String> = serde_json::from_str(&n.labels).unwrap_or_default();
        Ok(serde_json::json!({
            "Name": n.name,
            "Id": n.id,
            "Created": crate::image::format_time(n.created),
            "Scope": "local",
            "Driver": n.driver,
            "EnableIPv6": n.subnet6.is_some(),
            "IPAM": {"Driver": "default", "Options": {}, "Config":
                std::iter::once(serde_json::json!({"Subnet": n.subnet, "Gateway": n.gateway}))
                    .chain(n.subnet6.iter().zip(&n.gateway6).map(|(s, g)| serde_json::json!({"Subnet": s, "Gateway": g})))
                    .collect::<Vec<_>>()},
            "Internal": n.internal,
            "Attachable": false,
            "Ingress": false,
            "Containers": containers,
            "Options": {"com.docker.network.bridge.name": n.interface},
            "Labels": labels,
        }))
    }

    /// Containers (and build steps) on a network: every endpoint but its anchor's.
    fn users(&self, n: &NetworkRecord) -> Result<Vec<EndpointRecord>> {
        let anchor = anchor_id(n);
        Ok(self.core.store.endpoints_on(&n.name)?.into_iter().filter(|e| e.container_id != anchor).collect())
    }

    /// Give a network its anchor if it has none (the netavark lock held).
    fn ensure_anchor(&self, locked: &netavark::Locked<'_>, n: &NetworkRecord) -> Result<()> {
        let id = anchor_id(n);
        if self.core.store.network_setup(&id)?.is_some() {
            return Ok(());
        }
        if !self.core.store.endpoints_of(&id)?.iter().any(|e| e.network == n.name) {
            self.attach(&id, n, None, None, &[])?;
        }
        let e = self.core.store.endpoints_of(&id)?.into_iter().find(|e| e.network == n.name).expect("just attached");
        let opts = Options {
            container_id: id.clone(),
            container_name: id.clone(),
            port_mappings: Vec::new(),
            networks: BTreeMap::from([(
                n.name.clone(),
                PerNetwork {
                    aliases: Vec::new(),
                    interface_name: "eth0".into(),
                    static_ips: std::iter::once(e.ip.clone()).chain(e.ip6.clone()).collect(),
                    static_mac: None,
                },
            )]),
            network_info: BTreeMap::from([(n.name.clone(), netavark_network(n))]),
            dns_servers: None,
        };
        let netns = self.netns_path(&id);
        let record = NetworkSetup {
            container_id: id.clone(),
            netns: netns.display().to_string(),
            options: serde_json::to_string(&opts).expect("options serialize"),
            status: "{}".into(),
            owner: Some(format!("network:{}", n.name)),
        };
        self.core.store.put_network_setup(&record)?;
        if let Err(e) = namespace::create_pinned(&netns).and_then(|()| locked.setup(&netns, &opts).map(drop)) {
            if let Err(t) = teardown_locked(self.core, locked, &record) {
                tracing::warn!("undoing a failed anchor of network {}: {t}", n.name);
            }
            return Err(e);
        }
        Ok(())
    }

    /// Tear a network's anchor down (before the network goes).
    fn drop_anchor(&self, n: &NetworkRecord) -> Result<()> {
        let netavark = self.netavark();
        let locked = netavark.lock()?;
        if let Some(s) = self.core.store.network_setup(&anchor_id(n))? {
            teardown_locked(self.core, &locked, &s)?;
        }
        self.core.store.delete_endpoint(&anchor_id(n), &n.name)?;
        Ok(())
    }

    /// `network rm`: refuses a network any container is on, naming them
    /// (`names` maps container IDs to names), and the built-in ones.
    pub fn remove(&self, name: &str, names: &dyn Fn(&str) -> Option<String>) -> Result<String> {
        if name == "host" || name == "none" || name == DEFAULT_NETWORK {
            return Err(Error::invalid(format!("{name} is a pre-defined network and cannot be removed")));
        }
        self.core.exclusive()?;
        let n = self.get(name)?;
        let users = self.users(&n)?;
        if !users.is_empty() {
            let names: Vec<String> =
                users.iter().map(|e| names(&e.container_id).unwrap_or_else(|| e.container_id.clone())).collect();
            return Err(Error::InUse(format!("network {} is in use by container(s) {}", n.name, names.join(", "))));
        }
        self.drop_anchor(&n)?;
        self.core.store.delete_network(&n.name)?;
        crate::events::record(self.core, "network", "destroy", &n.id, &[("name", &n.name)]);
        Ok(n.name)
    }

    /// `network prune`: every user network no container is on.
    pub fn prune(&self) -> Result<Vec<String>> {
        self.core.exclusive()?;
        let mut removed = Vec::new();
        for n in self.core.store.networks()? {
            if n.name != DEFAULT_NETWORK && self.users(&n)?.is_empty() {
                self.drop_anchor(&n)?;
                self.core.store.delete_network(&n.name)?;
                removed.push(n.name);
            }
        }
        Ok(removed)
    }

    /// Put a container on a network: its address (`ip`, checked, or the
    /// first free one), MAC and aliases recorded.
    pub fn attach(
        &self,
        container_id: &str,
        network: &NetworkRecord,
        ip: Option<&str>,
        mac: Option<&str>,
        aliases: &[String],
    ) -> Result<String> {
        let subnet: Ipv4Net = network
            .subnet
            .parse()
            .map_err(|_| Error::Corrupt(format!("network {}: subnet {:?}", network.name, network.subnet)))?;
        let gateway: Ipv4Addr = network.gateway.parse().unwrap_or(Ipv4Addr::UNSPECIFIED);
        let want = match ip {
            Some(w) => {
                let a: Ipv4Addr =
                    w.parse().map_err(|_| Error::invalid(format!("invalid --ip {w:?}: want an IPv4 address")))?;
                if !subnet.contains(&a) || a == subnet.network() || a == subnet.broadcast() || a == gateway {
                    return Err(Error::invalid(format!(
                        "--ip {a} is not a free host address of network {} ({subnet}, gateway {gateway})",
                        network.name
                    )));
                }
                Some(a)
            }
            None => None,
        };
        if let Some(m) = mac {
            let ok =
                m.split(':').count() == 6 && m.split(':').all(|b| b.len() == 2 && u8::from_str_radix(b, 16).is_ok());
            if !ok {
                return Err(Error::invalid(format!(
                    "invalid --mac-address {m:?}: want six hex pairs like 02:42:ac:11:00:02"
                )));
            }
        }
        let aliases = serde_json::to_string(aliases).expect("aliases serialize");
        let subnet6: Option<Ipv6Net> = network.subnet6.as_deref().and_then(|s| s.parse().ok());
        let pick = |taken: &[(String, Option<String>)]| -> Result<(String, Option<String>)> {
            let taken4: HashSet<&str> = taken.iter().map(|t| t.0.as_str()).collect();
            let taken6: HashSet<&str> = taken.iter().filter_map(|t| t.1.as_deref()).collect();
            let ip = match want {
                Some(a) if taken4.contains(a.to_string().as_str()) => {
                    return Err(Error::InUse(format!("address {a} is already in use on network {}", network.name)));
                }
                Some(a) => a.to_string(),
                None => subnet
                    .hosts()
                    .filter(|h| *h != gateway)
                    .map(|h| h.to_string())
                    .find(|h| !taken4.contains(h.as_str()))
                    .ok_or_else(|| Error::InUse(format!("network {} has no free address left", network.name)))?,
            };
            // IPv6: the first free address after the gateway (::1), by counting up.
            let ip6 = match &subnet6 {
                None => None,
                Some(net) => {
                    let first = u128::from(gateway6_of(net)) + 1;
                    let last = u128::from(net.broadcast());
                    let found = (first..=last)
                        .map(|a| std::net::Ipv6Addr::from(a).to_string())
                        .find(|a| !taken6.contains(a.as_str()))
                        .ok_or_else(|| {
                            Error::InUse(format!("network {} has no free IPv6 address left", network.name))
                        })?;
                    Some(found)
                }
            };
            Ok((ip, ip6))
        };
        self.core.store.insert_endpoint(container_id, &network.name, mac, &aliases, &pick).map(|(ip, _)| ip)
    }

    /// Take a container off a network (its record only; a running
    /// container's interface there is torn down by [`shrink`](Self::shrink)).
    pub fn detach(&self, container_id: &str, network: &str) -> Result<bool> {
        self.core.store.delete_endpoint(container_id, network)
    }

    /// A container's endpoints.
    pub fn endpoints(&self, container_id: &str) -> Result<Vec<EndpointRecord>> {
        self.core.store.endpoints_of(container_id)
    }

    /// Give a container its networks: a pinned namespace with an interface
    /// on each network it is attached to, its ports published (`ports`,
    /// host ports already reserved by the caller). Recorded before netavark
    /// runs, torn down again if it fails. `owner` is the building process
    /// for a build step (which has no container record), None for a container.
    pub fn setup(
        &self,
        c: &Attachee<'_>,
        ports: Vec<netavark::PortMapping>,
        dns_servers: &[String],
        owner: Option<String>,
    ) -> Result<Setup> {
        let endpoints = self.core.store.endpoints_of(c.id)?;
        let mut networks = BTreeMap::new();
        let mut info = BTreeMap::new();
        for (i, e) in endpoints.iter().enumerate() {
            let n = self.get(&e.network)?;
            let aliases: Vec<String> = serde_json::from_str(&e.aliases).unwrap_or_default();
            networks.insert(
                n.name.clone(),
                PerNetwork {
                    aliases: if n.dns { aliases } else { Vec::new() },
                    interface_name: format!("eth{i}"),
                    static_ips: std::iter::once(e.ip.clone()).chain(e.ip6.clone()).collect(),
                    static_mac: e.mac.clone(),
                },
            );
            info.insert(n.name.clone(), netavark_network(&n));
        }
        let opts = Options {
            container_id: c.id.to_string(),
            container_name: c.name.to_string(),
            port_mappings: ports,
            networks,
            network_info: info,
            dns_servers: if dns_servers.is_empty() { None } else { Some(dns_servers.to_vec()) },
        };
        let dir = self.core.root.join("netns");
        std::fs::create_dir_all(&dir).at(&dir)?;
        let netns = self.netns_path(c.id);
        let netavark = self.netavark();
        let locked = netavark.lock()?;
        // A setup left from a run whose waiter was killed: gone first.
        if let Some(old) = self.core.store.network_setup(c.id)? {
            teardown_locked(self.core, &locked, &old)?;
        }
        for e in &endpoints {
            self.ensure_anchor(&locked, &self.get(&e.network)?)?;
        }
        let options = serde_json::to_string(&opts).expect("options serialize");
        let record = NetworkSetup {
            container_id: c.id.to_string(),
            netns: netns.display().to_string(),
            options,
            status: "{}".into(),
            owner,
        };
        self.core.store.put_network_setup(&record)?;
        let made = namespace::create_pinned(&netns).and_then(|()| locked.setup(&netns, &opts));
        let status = match made {
            Ok(s) => s,
            Err(e) => {
                if let Err(t) = teardown_locked(self.core, &locked, &record) {
                    tracing::warn!("undoing a failed network setup of {}: {t}", c.id);
                }
                return Err(e);
            }
        };
        for (net, block) in &status {
            if let Some(iface) = block.interfaces.as_ref().and_then(|i| i.values().next()) {
                self.core.store.set_endpoint_mac(c.id, net, &iface.mac_address)?;
            }
        }
        self.core.store.put_network_setup(&NetworkSetup {
            status: serde_json::to_string(&status).expect("status serializes"),
            ..record.clone()
        })?;
        Ok(Setup { netns, status })
    }

    /// Give a rootless container its network by pasta (see [`pasta`]): a
    /// pinned namespace connected to the host's network, `ports` published
    /// (host ports chosen by the caller and free again). Recorded like a
    /// netavark setup (no networks in its options), so that teardown and
    /// sweeps find it; pasta ends when the namespace is unpinned.
    pub fn setup_user_mode(
        &self,
        c: &Attachee<'_>,
        ports: Vec<netavark::PortMapping>,
        owner: Option<String>,
    ) -> Result<Setup> {
        let dir = self.core.root.join("netns");
        std::fs::create_dir_all(&dir).at(&dir)?;
        let netns = self.netns_path(c.id);
        if let Some(old) = self.core.store.network_setup(c.id)? {
            let netavark = self.netavark();
            teardown_locked(self.core, &netavark.lock()?, &old)?;
        }
        let opts = Options {
            container_id: c.id.to_string(),
            container_name: c.name.to_string(),
            port_mappings: ports,
            networks: BTreeMap::new(),
            network_info: BTreeMap::new(),
            dns_servers: None,
        };
        let record = NetworkSetup {
            container_id: c.id.to_string(),
            netns: netns.display().to_string(),
            options: serde_json::to_string(&opts).expect("options serialize"),
            status: "{}".into(),
            owner,
        };
        self.core.store.put_network_setup(&record)?;
        if let Err(e) = namespace::create_pinned(&netns).and_then(|()| pasta::start(&netns, &opts.port_mappings)) {
            let netavark = self.netavark();
            if let Err(t) = teardown_locked(self.core, &netavark.lock()?, &record) {
                tracing::warn!("undoing a failed network setup of {}: {t}", c.id);
            }
            return Err(e);
        }
        Ok(Setup { netns, status: Status::default() })
    }

    /// Give a running container an interface on `network` (its endpoint
    /// recorded already): netavark sets up that one network in its namespace
    /// and the setup's record grows by it. Published ports stay on the
    /// networks the container started with.
    pub fn extend(&self, container_id: &str, network: &str) -> Result<()> {
        let netavark = self.netavark();
        let locked = netavark.lock()?;
        let rec = self
            .core
            .store
            .network_setup(container_id)?
            .ok_or_else(|| Error::invalid(format!("container {container_id} has no network set up")))?;
        let (mut opts, mut status) = parse_setup(&rec)?;
        let n = self.get(network)?;
        let e = self
            .core
            .store
            .endpoints_of(container_id)?
            .into_iter()
            .find(|e| e.network == n.name)
            .ok_or_else(|| Error::not_found("endpoint", format!("{container_id} on {}", n.name)))?;
        self.ensure_anchor(&locked, &n)?;
        let used: HashSet<&str> = opts.networks.values().map(|p| p.interface_name.as_str()).collect();
        let iface = (0..).map(|i| format!("eth{i}")).find(|i| !used.contains(i.as_str())).expect("unbounded");
        let aliases: Vec<String> = serde_json::from_str(&e.aliases).unwrap_or_default();
        let per = PerNetwork {
            aliases: if n.dns { aliases } else { Vec::new() },
            interface_name: iface,
            static_ips: std::iter::once(e.ip.clone()).chain(e.ip6.clone()).collect(),
            static_mac: e.mac.clone(),
        };
        let one = Options {
            container_id: opts.container_id.clone(),
            container_name: opts.container_name.clone(),
            port_mappings: Vec::new(),
            networks: BTreeMap::from([(n.name.clone(), per.clone())]),
            network_info: BTreeMap::from([(n.name.clone(), netavark_network(&n))]),
            dns_servers: opts.dns_servers.clone(),
        };
        let got = locked.setup(Path::new(&rec.netns), &one)?;
        for (net, block) in &got {
            if let Some(iface) = block.interfaces.as_ref().and_then(|i| i.values().next()) {
                self.core.store.set_endpoint_mac(container_id, net, &iface.mac_address)?;
            }
        }
        opts.networks.insert(n.name.clone(), per);
        opts.network_info.insert(n.name.clone(), netavark_network(&n));
        status.extend(got);
        self.core.store.put_network_setup(&NetworkSetup {
            options: serde_json::to_string(&opts).expect("options serialize"),
            status: serde_json::to_string(&status).expect("status serializes"),
            ..rec
        })
    }

    /// Take a running container's interface on `network` away (netavark
    /// tears that one network down); refused while it publishes ports,
    /// whose rules name its address there.
    pub fn shrink(&self, container_id: &str, network: &str) -> Result<()> {
        let netavark = self.netavark();
        let locked = netavark.lock()?;
        let Some(rec) = self.core.store.network_setup(container_id)? else { return Ok(()) };
        let (mut opts, mut status) = parse_setup(&rec)?;
        if !opts.port_mappings.is_empty() {
            return Err(Error::invalid(format!(
                "container {} publishes ports: stop it before disconnecting it from {network}",
                opts.container_name
            )));
        }
        let (Some(per), Some(info)) = (opts.networks.remove(network), opts.network_info.remove(network)) else {
            return Ok(());
        };
        let one = Options {
            container_id: opts.container_id.clone(),
            container_name: opts.container_name.clone(),
            port_mappings: Vec::new(),
            networks: BTreeMap::from([(network.to_string(), per)]),
            network_info: BTreeMap::from([(network.to_string(), info)]),
            dns_servers: opts.dns_servers.clone(),
        };
        locked.teardown(Path::new(&rec.netns), &one)?;
        status.remove(network);
        self.core.store.put_network_setup(&NetworkSetup {
            options: serde_json::to_string(&opts).expect("options serialize"),
            status: serde_json::to_string(&status).expect("status serializes"),
            ..rec
        })
    }

    /// The setup in place for a container, if any: what `inspect`, `port`
    /// and `ps` show of a running container.
    pub fn current(&self, container_id: &str) -> Result<Option<(Options, Status)>> {
        let Some(s) = self.core.store.network_setup(container_id)? else { return Ok(None) };
        parse_setup(&s).map(Some)
    }

    /// Undo a container's setup, if it has one: netavark's teardown (when
    /// the namespace still exists), the namespace unpinned, the record dropped.
    pub fn teardown(&self, container_id: &str) -> Result<()> {
        // Nothing set up (the common case for a container without networks): no lock taken.
        if self.core.store.network_setup(container_id)?.is_none() {
            return Ok(());
        }
        let netavark = self.netavark();
        let locked = netavark.lock()?;
        // Read again under the lock: the container's waiter and `rm -f` may both get here.
        match self.core.store.network_setup(container_id)? {
            Some(s) => teardown_locked(self.core, &locked, &s),
            None => Ok(()),
        }
    }
}

fn parse_setup(s: &NetworkSetup) -> Result<(Options, Status)> {
    let opts: Options = serde_json::from_str(&s.options)
        .map_err(|e| Error::Corrupt(format!("network setup of {}: {e}", s.container_id)))?;
    let status: Status = serde_json::from_str(&s.status).unwrap_or_default();
    Ok((opts, status))
}

fn teardown_locked(core: &Core, locked: &netavark::Locked<'_>, s: &NetworkSetup) -> Result<()> {
    let netns = Path::new(&s.netns);
    let opts: Options = serde_json::from_str(&s.options)
        .map_err(|e| Error::Corrupt(format!("network setup of {}: {e}", s.container_id)))?;
    // A pasta setup (no networks) has nothing for netavark: pasta ends with the namespace.
    if !opts.networks.is_empty() && crate::snapshot::mount::is_mounted(netns) {
        if let Err(e) = locked.teardown(netns, &opts) {
            // A setup that failed halfway has less to tear down than its options say.
            tracing::warn!("network teardown of {}: {e}", s.container_id);
        }
    }
    namespace::remove_pinned(netns)?;
    core.store.delete_network_setup(&s.container_id)
}

/// Tear down every setup whose container is gone or not running (its
/// waiter was killed): run when the store is swept.
pub fn sweep(core: &Core) -> Result<()> {
    let netavark = Netavark::new(&core.root.join("networks").join("netavark"));
    let stale = core.store.stale_network_setups()?;
    if !stale.is_empty() {
        let locked = netavark.lock()?;
        for s in stale {
            teardown_locked(core, &locked, &s)?;
        }
    }
    core.store.delete_orphan_endpoints()?;
    // Namespaces pinned by a setup that was never recorded (killed in between).
    let dir = core.root.join("netns");
    if let Ok(entries) = std::fs::read_dir(&dir) {
        let known: HashSet<String> = core.store.network_setups()?.into_iter().map(|s| s.container_id).collect();
        for e in entries.flatten() {
            if !known.contains(e.file_name().to_string_lossy().as_ref()) {
                namespace::remove_pinned(&e.path())?;
            }
        }
    }
    Ok(())
}

fn netavark_network(n: &NetworkRecord) -> netavark::Network {
    netavark::Network {
        name: n.name.clone(),
        id: n.id.clone(),
        driver: n.driver.clone(),
        network_interface: n.interface.clone(),
        subnets: std::iter::once(netavark::Subnet { subnet: n.subnet.clone(), gateway: n.gateway.clone() })
            .chain(
                n.subnet6
                    .iter()
                    .zip(&n.gateway6)
                    .map(|(s, g)| netavark::Subnet { subnet: s.clone(), gateway: g.clone() }),
            )
            .collect(),
        ipv6_enabled: n.subnet6.is_some(),
        internal: n.internal,
        dns_enabled: n.dns,
        ipam_options: BTreeMap::from([("driver".to_string(), "host-local".to_string())]),
        options: BTreeMap::from([("isolate".to_string(), "true".to_string())]),
    }
}

fn summary(n: &NetworkRecord) -> NetworkSummary {
    NetworkSummary {
        id: n.id.clone(),
        name: n.name.clone(),
        driver: n.driver.clone(),
        scope: "local",
        created: n.created,
        internal: n.internal,
        labels: serde_json::from_str(&n.labels).unwrap_or_default(),
    }
}

fn valid_name(n: &str) -> bool {
    let mut chars = n.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}
