//! Fixtures shared by the unit tests.

use std::sync::Arc;

use crate::config::{Config, Settings, SourceKind, ZoneConfig};
use crate::inventory::{Inventory, Task};
use crate::zone::Snapshot;

/// A valid configuration: the file source (never read) and every default.
pub fn config() -> Config {
    Config::resolve(Settings {
        source: Some(SourceKind::File),
        inventory: Some("x".into()),
        ..Settings::default()
    })
    .expect("the default test configuration is valid")
}

/// The snapshot of `tasks` under the default configuration, serial `serial`.
pub fn snapshot(tasks: Vec<Task>, serial: u32) -> Snapshot {
    snapshot_in(&config().zone, tasks, serial)
}

/// The snapshot of `tasks` under `zone`, with no previous one.
pub fn snapshot_in(zone: &ZoneConfig, tasks: Vec<Task>, serial: u32) -> Snapshot {
    Snapshot::build(
        zone,
        Arc::new(Inventory {
            clusters: vec![],
            tasks,
        }),
        None,
        serial,
    )
}
