//! A synthetic inventory for the benches, the same shape as the one
//! `scripts/bench` writes: `tasks` tasks of `tasks / 10` services over 3
//! clusters; even services bridge (10 tasks per EC2 instance, dynamic host
//! ports), odd ones awsvpc (one address each, IPv6 on every other task);
//! one service in five has a second, unnamed port.

#![allow(dead_code)]

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use ecs_dns::config::{Config, Settings, SourceKind, ZoneConfig};
use ecs_dns::inventory::{Inventory, NetworkMode, PortBinding, Task};
use ecs_dns::zone::Snapshot;

pub const CLUSTERS: usize = 3;

pub fn zone_config() -> ZoneConfig {
    zone_config_with(&[])
}

/// [`zone_config`] with the reverse zones of every address
/// [`inventory`] gives out.
pub fn zone_config_with_reverse() -> ZoneConfig {
    zone_config_with(&["10.0.0.0/8", "2001:db8::/32"])
}

fn zone_config_with(reverse_zones: &[&str]) -> ZoneConfig {
    Config::resolve(Settings {
        source: Some(SourceKind::File),
        inventory: Some("bench".into()),
        nameservers: Some(vec!["ns1.local=127.0.0.1".into()]),
        reverse_zones: Some(reverse_zones.iter().map(|z| z.to_string()).collect()),
        ..Settings::default()
    })
    .expect("bench config")
    .zone
}

/// A task id like ECS's: 32 hex digits.
pub fn task_id(i: usize) -> String {
    let x = (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    format!("{x:016x}{:016x}", x.rotate_left(17) ^ 0x5bd1_e995)
}

pub fn inventory(tasks: usize) -> Inventory {
    let services = (tasks / 10).max(1);
    let tasks = (0..tasks)
        .map(|i| {
            let service = i % services;
            let cluster = i % CLUSTERS;
            let awsvpc = service % 2 == 1;
            let mut ports = vec![PortBinding {
                container_name: "app".into(),
                container_port: 8080,
                host_port: (!awsvpc).then_some(32768 + (i % 20000) as u16),
                protocol: Default::default(),
                name: Some("http".into()),
            }];
            if service.is_multiple_of(5) {
                ports.push(PortBinding {
                    container_name: "app".into(),
                    container_port: 9090,
                    host_port: (!awsvpc).then_some(52768 + (i % 10000) as u16),
                    protocol: Default::default(),
                    name: None,
                });
            }
            let (ipv4, ipv6) = if awsvpc {
                let n = i as u32;
                let v4 = Ipv4Addr::from(0x0a80_0000 + n);
                let v6 = (i % 2 == 0).then(|| Ipv6Addr::from(0x2001_0db8_u128 << 96 | n as u128));
                (v4, v6)
            } else {
                (Ipv4Addr::from(0x0a00_0000 + (i / 10) as u32 + 1), None)
            };
            Arc::new(Task {
                cluster: format!("cluster-{cluster}").into(),
                service: Some(format!("svc-{service}").into()),
                family: format!("svc-{service}").into(),
                task_arn: format!(
                    "arn:aws:ecs:us-east-1:123456789012:task/cluster-{cluster}/{}",
                    task_id(i)
                ),
                task_id: task_id(i),
                task_definition_arn: format!(
                    "arn:aws:ecs:us-east-1:123456789012:task-definition/svc-{service}:1"
                ),
                launch_type: if awsvpc { "FARGATE" } else { "EC2" }.into(),
                network_mode: if awsvpc {
                    NetworkMode::Awsvpc
                } else {
                    NetworkMode::Bridge
                },
                last_status: "RUNNING".into(),
                desired_status: "RUNNING".into(),
                health_status: "UNKNOWN".into(),
                ipv4: vec![ipv4],
                ipv6: ipv6.into_iter().collect(),
                ports,
                ..Task::default()
            })
        })
        .collect::<Vec<Arc<Task>>>();
    // In ARN order, as every snapshot keeps its tasks (a source's second
    // inventory arrives that way). Each task made in its own allocation at
    // once, as sources make them: no list of 100 000 tasks freed behind
    // (the memory bench would count it).
    let mut inventory = Inventory {
        clusters: Vec::new(),
        tasks,
        sources_read: Vec::new(),
    };
    inventory.tasks.sort_by(|a, b| a.task_arn.cmp(&b.task_arn));
    inventory
}

pub fn snapshot(tasks: usize) -> Snapshot {
    Snapshot::build(&zone_config(), Arc::new(inventory(tasks)), None, 1)
}
