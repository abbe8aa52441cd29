//! Pure conversions from ECS and EC2 API shapes to inventory facts. No I/O:
//! everything a task needs (its task definition, its instance's addresses)
//! is passed in.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use aws_sdk_ecs::types as ecs;

use crate::inventory::ALIAS_TAG;
use crate::inventory::{NetworkMode, PortBinding, Protocol, Task};

/// What ecs-dns needs from one task definition (immutable per ARN).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskDefFacts {
    pub family: String,
    /// `None` when the definition does not say: the launch type decides.
    pub network_mode: Option<NetworkMode>,
    /// An essential container defines a health check.
    pub has_health_check: bool,
    pub mappings: Vec<MappingFacts>,
}

/// One port mapping of one container of a task definition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MappingFacts {
    pub container_name: String,
    pub container_port: u16,
    /// `None` or `Some(0)`: a dynamic host port (bridge).
    pub host_port: Option<u16>,
    pub protocol: Protocol,
    pub name: Option<String>,
}

/// Addresses of one EC2 instance (immutable for the instance's life).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InstanceFacts {
    pub ipv4: Vec<Ipv4Addr>,
    pub ipv6: Vec<Ipv6Addr>,
}

/// Where a task's address comes from, looked up by the caller.
#[derive(Clone, Copy, Debug, Default)]
pub struct Placement<'a> {
    pub ec2_instance_id: Option<&'a str>,
    pub instance: Option<&'a InstanceFacts>,
    pub instance_draining: bool,
}

pub fn task_definition(def: &ecs::TaskDefinition) -> TaskDefFacts {
    let mut mappings = Vec::new();
    let mut has_health_check = false;
    for container in def.container_definitions() {
        let container_name = container.name().unwrap_or_default().to_owned();
        // ECS treats a container without `essential` as essential.
        if container.essential().unwrap_or(true) && container.health_check().is_some() {
            has_health_check = true;
        }
        for mapping in container.port_mappings() {
            // Mappings with only a port range have no single port to serve.
            let Some(container_port) = mapping.container_port().and_then(port) else {
                continue;
            };
            mappings.push(MappingFacts {
                container_name: container_name.clone(),
                container_port,
                host_port: mapping.host_port().and_then(port),
                protocol: protocol(mapping.protocol()),
                name: mapping.name().map(str::to_owned),
            });
        }
    }
    let family = def
        .family()
        .map(str::to_owned)
        .or_else(|| def.task_definition_arn().map(family_of_arn))
        .unwrap_or_default();
    TaskDefFacts {
        family,
        network_mode: def.network_mode().map(network_mode),
        has_health_check,
        mappings,
    }
}

/// The primary private IPv4 address and the IPv6 addresses of the primary
/// network interface.
pub fn instance(instance: &aws_sdk_ec2::types::Instance) -> InstanceFacts {
    let ipv4 = instance
        .private_ip_address()
        .and_then(|a| a.parse().ok())
        .into_iter()
        .collect();
    let mut ipv6: Vec<Ipv6Addr> = instance
        .ipv6_address()
        .and_then(|a| a.parse().ok())
        .into_iter()
        .collect();
    if ipv6.is_empty() {
        let primary = instance
            .network_interfaces()
            .iter()
            .find(|eni| eni.attachment().and_then(|a| a.device_index()) == Some(0));
        ipv6 = primary
            .map(|eni| {
                eni.ipv6_addresses()
                    .iter()
                    .filter_map(|a| a.ipv6_address()?.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
    }
    InstanceFacts { ipv4, ipv6 }
}

/// One inventory task from a DescribeTasks entry and what was looked up for it.
pub fn task(
    cluster: &str,
    raw: &ecs::Task,
    def: &TaskDefFacts,
    placement: Placement<'_>,
    service_alias: Option<&str>,
) -> Task {
    let task_arn = raw.task_arn().unwrap_or_default().to_owned();
    let launch_type = raw
        .launch_type()
        .map(|l| l.as_str().to_owned())
        .unwrap_or_else(|| {
            // Capacity-provider tasks carry no launch type; Fargate ones have
            // no container instance.
            if raw.container_instance_arn().is_some() {
                "EC2".to_owned()
            } else {
                "FARGATE".to_owned()
            }
        });
    let network_mode = def.network_mode.unwrap_or(if launch_type == "FARGATE" {
        NetworkMode::Awsvpc
    } else {
        NetworkMode::Bridge
    });
    let service = raw
        .group()
        .and_then(|g| g.strip_prefix("service:"))
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    let family = if def.family.is_empty() {
        raw.task_definition_arn()
            .map(family_of_arn)
            .unwrap_or_default()
    } else {
        def.family.clone()
    };

    let tags: BTreeMap<String, String> = raw
        .tags()
        .iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_owned(),
                t.value().unwrap_or_default().to_owned(),
            ))
        })
        .collect();
    let service_tags = service_alias
        .map(|alias| BTreeMap::from([(ALIAS_TAG.to_owned(), alias.to_owned())]))
        .unwrap_or_default();

    let mut out = Task {
        cluster: cluster.into(),
        service: service.map(Into::into),
        family: family.into(),
        task_id: task_arn.rsplit('/').next().unwrap_or_default().to_owned(),
        task_arn,
        task_definition_arn: raw.task_definition_arn().unwrap_or_default().to_owned(),
        launch_type: launch_type.into(),
        network_mode,
        last_status: raw.last_status().unwrap_or_default().into(),
        desired_status: raw.desired_status().unwrap_or_default().into(),
        health_status: raw.health_status().map_or("UNKNOWN", |h| h.as_str()).into(),
        has_health_check: def.has_health_check,
        container_instance_arn: raw.container_instance_arn().map(str::to_owned),
        ec2_instance_id: placement.ec2_instance_id.map(Into::into),
        instance_draining: placement.instance_draining,
        tags,
        service_tags,
        ..Task::default()
    };

    match network_mode {
        NetworkMode::Awsvpc => {
            let eni = eni(raw);
            out.eni_id = eni.id.map(Into::into);
            out.ipv4 = eni.ipv4;
            out.ipv6 = eni.ipv6;
            out.ports = def.mappings.iter().map(|m| binding(m, None)).collect();
        }
        NetworkMode::Host => {
            (out.ipv4, out.ipv6) = instance_addresses(placement.instance);
            // In host mode the container listens on the host: hostPort is the
            // container port.
            out.ports = def
                .mappings
                .iter()
                .map(|m| {
                    binding(
                        m,
                        Some(m.host_port.filter(|p| *p != 0).unwrap_or(m.container_port)),
                    )
                })
                .collect();
        }
        NetworkMode::Bridge | NetworkMode::None => {
            (out.ipv4, out.ipv6) = instance_addresses(placement.instance);
            out.ports = bridge_ports(raw, def);
        }
    }
    out
}

/// Bridge ports: the host ports ECS bound (`networkBindings`, dynamic ports
/// included), named from the task definition; mappings not bound yet keep
/// their fixed host port, or none.
fn bridge_ports(raw: &ecs::Task, def: &TaskDefFacts) -> Vec<PortBinding> {
    let mut out: Vec<PortBinding> = Vec::new();
    for container in raw.containers() {
        let container_name = container.name().unwrap_or_default();
        for bound in container.network_bindings() {
            let (Some(container_port), Some(host_port)) = (
                bound.container_port().and_then(port),
                bound.host_port().and_then(port),
            ) else {
                continue;
            };
            let protocol = protocol(bound.protocol());
            let name = def
                .mappings
                .iter()
                .find(|m| {
                    m.container_name == container_name
                        && m.container_port == container_port
                        && m.protocol == protocol
                })
                .and_then(|m| m.name.as_deref().map(Into::into));
            let binding = PortBinding {
                container_name: container_name.into(),
                container_port,
                host_port: Some(host_port),
                protocol,
                name,
            };
            // ECS reports a binding per address family (0.0.0.0 and ::) for the
            // same port: keep one.
            if !out.contains(&binding) {
                out.push(binding);
            }
        }
    }
    for mapping in &def.mappings {
        let bound = out.iter().any(|b| {
            b.container_name == mapping.container_name
                && b.container_port == mapping.container_port
                && b.protocol == mapping.protocol
        });
        if !bound {
            out.push(binding(mapping, mapping.host_port.filter(|p| *p != 0)));
        }
    }
    out
}

fn binding(mapping: &MappingFacts, host_port: Option<u16>) -> PortBinding {
    PortBinding {
        container_name: mapping.container_name.as_str().into(),
        container_port: mapping.container_port,
        host_port,
        protocol: mapping.protocol,
        name: mapping.name.as_deref().map(Into::into),
    }
}

/// The EC2 instance's addresses, which bridge and host tasks are reached at
/// (none while the instance is not known yet).
fn instance_addresses(
    instance: Option<&InstanceFacts>,
) -> (Vec<std::net::Ipv4Addr>, Vec<std::net::Ipv6Addr>) {
    instance
        .map(|i| (i.ipv4.clone(), i.ipv6.clone()))
        .unwrap_or_default()
}

#[derive(Default)]
struct Eni {
    id: Option<String>,
    ipv4: Vec<Ipv4Addr>,
    ipv6: Vec<Ipv6Addr>,
}

/// The task's ENI from its attachment, else from its containers'
/// `networkInterfaces` (older tasks report only those). DescribeTasks calls
/// the attachment `ElasticNetworkInterface`, task state change events `eni`.
fn eni(raw: &ecs::Task) -> Eni {
    let mut out = Eni::default();
    let is_eni = |kind: &str| {
        kind.eq_ignore_ascii_case("ElasticNetworkInterface") || kind.eq_ignore_ascii_case("eni")
    };
    for attachment in raw.attachments() {
        if !attachment.r#type().is_some_and(is_eni) {
            continue;
        }
        for detail in attachment.details() {
            let value = detail.value().unwrap_or_default();
            match detail.name() {
                Some("networkInterfaceId") if !value.is_empty() => {
                    out.id = Some(value.to_owned());
                }
                Some("privateIPv4Address") => out.ipv4.extend(value.parse::<Ipv4Addr>().ok()),
                Some("ipv6Address") => out.ipv6.extend(value.parse::<Ipv6Addr>().ok()),
                _ => {}
            }
        }
    }
    if out.ipv4.is_empty() && out.ipv6.is_empty() {
        for interface in raw.containers().iter().flat_map(|c| c.network_interfaces()) {
            out.ipv4.extend(
                interface
                    .private_ipv4_address()
                    .and_then(|a| a.parse::<std::net::Ipv4Addr>().ok()),
            );
            out.ipv6.extend(
                interface
                    .ipv6_address()
                    .and_then(|a| a.parse::<std::net::Ipv6Addr>().ok()),
            );
        }
    }
    out.ipv4.sort_unstable();
    out.ipv4.dedup();
    out.ipv6.sort_unstable();
    out.ipv6.dedup();
    out
}

fn network_mode(mode: &ecs::NetworkMode) -> NetworkMode {
    match mode {
        ecs::NetworkMode::Awsvpc => NetworkMode::Awsvpc,
        ecs::NetworkMode::Host => NetworkMode::Host,
        ecs::NetworkMode::None => NetworkMode::None,
        // bridge, and Windows' `default` (NAT): reached through the instance.
        _ => NetworkMode::Bridge,
    }
}

fn protocol(protocol: Option<&ecs::TransportProtocol>) -> Protocol {
    match protocol {
        Some(ecs::TransportProtocol::Udp) => Protocol::Udp,
        _ => Protocol::Tcp,
    }
}

fn port(value: i32) -> Option<u16> {
    u16::try_from(value).ok()
}

/// `arn:...:task-definition/FAMILY:REVISION` → `FAMILY`.
pub fn family_of_arn(arn: &str) -> String {
    let last = arn.rsplit('/').next().unwrap_or_default();
    last.split(':').next().unwrap_or_default().to_owned()
}

/// `arn:...:cluster/NAME` (or a plain name) → `NAME`.
pub fn cluster_name(arn_or_name: &str) -> String {
    arn_or_name
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[cfg(test)]
mod tests;
