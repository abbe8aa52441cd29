//! Turns each new inventory into a snapshot and publishes it, saying what
//! changed.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use hickory_proto::rr::LowerName;

use super::{SharedZone, Snapshot};
use crate::config::ZoneConfig;
use crate::inventory::Inventory;

/// How many names a change log line lists before it only counts.
const NAMES_LOGGED: usize = 20;

/// Builds and publishes snapshots for one zone.
pub struct Publisher {
    config: ZoneConfig,
    zone: SharedZone,
}

/// What one publication did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub serial: u32,
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// Whether the served records changed (and so the serial).
    pub changed: bool,
}

impl Publisher {
    pub fn new(config: ZoneConfig, zone: SharedZone) -> Publisher {
        Publisher { config, zone }
    }

    pub fn zone(&self) -> &SharedZone {
        &self.zone
    }

    /// Builds the snapshot of `inventory` and publishes it. When nothing
    /// served changed the serial stays; the snapshot is still replaced so that
    /// its inventory (task states, data ages) is current.
    pub fn publish(&self, inventory: Inventory) -> Change {
        let previous = self.zone.load_full();
        let snapshot = Snapshot::build(
            &self.config,
            Arc::new(inventory),
            previous.as_deref(),
            unix_now(),
        );
        let change = describe(previous.as_deref(), &snapshot);
        for collision in &snapshot.record_set.collisions {
            tracing::warn!(
                kind = collision.kind,
                label = %collision.label,
                inputs = ?collision.inputs,
                "several names map to one label: their records are merged"
            );
        }
        for skipped in &snapshot.record_set.skipped {
            tracing::warn!(name = %skipped, "name not served");
        }
        if change.changed {
            tracing::info!(
                serial = change.serial,
                tasks = %verdict_counts(&snapshot.record_set.verdicts),
                added = change.added.len(),
                removed = change.removed.len(),
                added_names = %sample(&change.added),
                removed_names = %sample(&change.removed),
                "zone changed"
            );
        }
        self.zone.store(Some(Arc::new(snapshot)));
        change
    }
}

fn describe(previous: Option<&Snapshot>, next: &Snapshot) -> Change {
    let before: HashSet<&LowerName> = previous.map(|p| p.names().collect()).unwrap_or_default();
    let after: HashSet<&LowerName> = next.names().collect();
    let mut added: Vec<String> = after.difference(&before).map(|n| n.to_string()).collect();
    let mut removed: Vec<String> = before.difference(&after).map(|n| n.to_string()).collect();
    added.sort();
    removed.sort();
    Change {
        serial: next.serial(),
        changed: previous.is_none_or(|p| p.serial() != next.serial()),
        added,
        removed,
    }
}

/// "served=6 starting=1 unhealthy=1": how many tasks got each verdict.
fn verdict_counts(verdicts: &[crate::records::Verdict]) -> String {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for verdict in verdicts {
        let name = format!("{verdict:?}").to_lowercase();
        match counts.iter_mut().find(|(n, _)| *n == name) {
            Some((_, count)) => *count += 1,
            None => counts.push((name, 1)),
        }
    }
    counts.sort();
    counts
        .iter()
        .map(|(name, count)| format!("{name}={count}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn sample(names: &[String]) -> String {
    let mut out = names
        .iter()
        .take(NAMES_LOGGED)
        .cloned()
        .collect::<Vec<_>>()
        .join(" ");
    if names.len() > NAMES_LOGGED {
        out.push_str(&format!(" (+{} more)", names.len() - NAMES_LOGGED));
    }
    out
}

fn unix_now() -> u32 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    // Serial arithmetic wraps: the low 32 bits are the point.
    (secs & u64::from(u32::MAX)) as u32
}
