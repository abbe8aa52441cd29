//! Fixtures shared by the unit tests: plain configuration and tasks, so
//! that any layer's tests can use them (`zone` builds snapshots of them with
//! `Snapshot::of_tasks`).

use std::net::Ipv4Addr;
use std::sync::Arc;

use crate::config::{Config, Settings, SourceKind};
use crate::inventory::{Inventory, Task};

/// A valid configuration: the file source (never read) and every default.
pub fn config() -> Config {
    config_with(Settings::default())
}

/// `settings` with the file source (never read), which must be valid.
pub fn config_with(settings: Settings) -> Config {
    Config::resolve(Settings {
        source: Some(SourceKind::File),
        inventory: Some("x".into()),
        ..settings
    })
    .expect("the test configuration is valid")
}

/// One running task `t<i>` of service `web` in cluster `prod` per address.
pub fn web_inventory(ips: &[[u8; 4]]) -> Inventory {
    let tasks = ips
        .iter()
        .enumerate()
        .map(|(i, ip)| {
            Arc::new(Task {
                cluster: "prod".into(),
                service: Some("web".into()),
                task_id: format!("t{i}"),
                last_status: "RUNNING".into(),
                desired_status: "RUNNING".into(),
                ipv4: vec![Ipv4Addr::from(*ip)],
                ..Task::default()
            })
        })
        .collect();
    Inventory {
        sources_read: Vec::new(),
        clusters: vec![],
        tasks,
    }
}
