//! `network` commands and `port`: Docker's output over the networks service.

use std::process::ExitCode;

use anyhow::{bail, Result};
use strata::network::netavark::PortMapping;
use strata::network::CreateNetwork;
use strata::Engine;

use crate::format::Table;
use crate::{NetworkCommand, PortArgs};

fn host_ip(m: &PortMapping) -> &str {
    if m.host_ip.is_empty() {
        "0.0.0.0"
    } else {
        &m.host_ip
    }
}

/// `ps`'s PORTS column: `0.0.0.0:8080->80/tcp, ...`.
pub(crate) fn ports_column(ports: &[PortMapping]) -> String {
    ports
        .iter()
        .map(|m| format!("{}:{}->{}/{}", host_ip(m), m.host_port, m.container_port, m.protocol))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `port CONTAINER [PORT[/PROTO]]`.
pub(crate) fn port(engine: &Engine, a: PortArgs) -> Result<ExitCode> {
    let ports = engine.containers().ports(&a.container)?;
    match a.port {
        None => {
            for m in &ports {
                println!("{}/{} -> {}:{}", m.container_port, m.protocol, host_ip(m), m.host_port);
            }
        }
        Some(p) => {
            let (port, proto) = p.split_once('/').unwrap_or((&p, "tcp"));
            let Ok(port) = port.parse::<u16>() else { bail!("invalid port {p:?}") };
            let found: Vec<&PortMapping> =
                ports.iter().filter(|m| m.container_port == port && m.protocol == proto).collect();
            if found.is_empty() {
                bail!("no public port '{port}/{proto}' published for {}", a.container);
            }
            for m in found {
                println!("{}:{}", host_ip(m), m.host_port);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn network(engine: &Engine, cmd: NetworkCommand) -> Result<ExitCode> {
    let names = |id: &str| engine.containers().name_of(id);
    match cmd {
        NetworkCommand::Create(a) => {
            let n = engine.networks().create(&CreateNetwork {
                name: a.name,
                driver: a.driver,
                subnets: a.subnet,
                gateway: a.gateway,
                internal: a.internal,
                labels: a.label,
                ipv6: a.ipv6,
            })?;
            println!("{}", n.id);
        }
        NetworkCommand::Ls(a) => {
            let filters = strata::filter::Filters::parse(&a.filter, &["name", "id", "driver", "label", "type"])?;
            let list = engine.networks().list_filtered(&filters)?;
            if a.quiet {
                list.iter().for_each(|n| println!("{}", &n.id[..12]));
            } else if a.format != "table" {
                let rows: Vec<serde_json::Value> = list
                    .iter()
                    .map(|n| {
                        serde_json::json!({"ID": &n.id[..12], "Name": n.name, "Driver": n.driver, "Scope": n.scope,
                            "CreatedAt": strata::image::format_time(n.created), "Internal": n.internal.to_string(), "Labels": n.labels})
                    })
                    .collect();
                match crate::template::Format::parse(&a.format)? {
                    crate::template::Format::Template(t) => t.print(&rows, &[("ID", "NETWORK ID")])?,
                    _ => rows.iter().for_each(|r| println!("{r}")),
                }
            } else {
                let mut t = Table::new(&["NETWORK ID", "NAME", "DRIVER", "SCOPE"]);
                list.iter().for_each(|n| {
                    t.row(vec![n.id[..12].to_string(), n.name.clone(), n.driver.clone(), n.scope.into()])
                });
                t.print();
            }
        }
        NetworkCommand::Inspect(a) => {
            let mut out = Vec::new();
            for n in &a.names {
                out.push(engine.networks().inspect(n, &names)?);
            }
            crate::template::print_inspect(&out, a.format.as_deref())?;
        }
        NetworkCommand::Rm(a) => {
            let mut failed = false;
            for n in &a.names {
                match engine.networks().remove(n, &names) {
                    Ok(_) => println!("{n}"),
                    Err(e) => {
                        eprintln!("Error: {e}");
                        failed = true;
                    }
                }
            }
            if failed {
                return Ok(ExitCode::from(1));
            }
        }
        NetworkCommand::Prune(a) => {
            if !a.force
                && !crate::system::confirm(
                    "WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue?",
                )?
            {
                return Ok(ExitCode::SUCCESS);
            }
            let removed = engine.networks().prune()?;
            if !removed.is_empty() {
                println!("Deleted Networks:");
                removed.iter().for_each(|n| println!("{n}"));
            }
        }
        NetworkCommand::Connect(a) => {
            engine.containers().connect(&a.network, &a.container, a.ip.as_deref(), &a.alias)?
        }
        NetworkCommand::Disconnect(a) => engine.containers().disconnect(&a.network, &a.container)?,
    }
    Ok(ExitCode::SUCCESS)
}
