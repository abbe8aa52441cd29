//! Publication: turns each new inventory into a snapshot, pairs it with its
//! pre-rendered answers, swaps both in at once (`arc-swap`), tells the
//! observers (metrics, state file, transfer journal) and logs what changed.

mod parts;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use crate::config::ZoneConfig;
use crate::dns::{Served, SharedZone};
use crate::inventory::Inventory;
use crate::records::Verdict;
use crate::wire::name_table;
use crate::zone::{Snapshot, serial};

/// How many names a change log line lists before it only counts.
const NAMES_LOGGED: usize = 20;

/// How many publications [`ChangeLog`] keeps.
pub const CHANGES_KEPT: usize = 50;

/// Called with every snapshot published (metrics, state file, transfers),
/// in order, one publication at a time.
pub type Observer = Arc<dyn Fn(&Served) + Send + Sync>;

/// Builds and publishes snapshots for one zone. Clones share everything: the
/// source loop and the reload handler publish through the same one.
#[derive(Clone)]
pub struct Publisher {
    /// Swapped on reload (SIGHUP); the mutex also serialises publications,
    /// so a reload and a refresh never build from the same previous snapshot.
    config: Arc<Mutex<ZoneConfig>>,
    zone: SharedZone,
    observers: Vec<Observer>,
    /// Wakes this publisher's source loop for an early refresh (SIGHUP).
    refresh: Arc<tokio::sync::Notify>,
    /// Every source loop's wake-up: a SIGHUP refreshes them all.
    refreshers: Arc<Mutex<Vec<Arc<tokio::sync::Notify>>>>,
    changes: ChangeLog,
    /// Several sources: each one's last inventory. Locked before `config`.
    parts: Arc<Mutex<parts::Parts>>,
    /// The part this publisher publishes, if it is one source of several.
    part: Option<Arc<str>>,
}

/// Why a snapshot was published.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    /// The source reported a new inventory.
    Source,
    /// The zone settings were reloaded (SIGHUP).
    Reload,
    /// The state file of an earlier run was read at start.
    Restore,
}

impl Cause {
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Source => "source",
            Cause::Reload => "reload",
            Cause::Restore => "restore",
        }
    }
}

/// A publication that changed what is served, as the change ring keeps it.
#[derive(Clone, Debug)]
pub struct Logged {
    pub at: SystemTime,
    pub cause: Cause,
    pub change: Change,
}

/// The last [`CHANGES_KEPT`] publications that changed the zone, newest
/// last: what a status page shows as recent changes. Bounded, so a flood of
/// changes costs the same memory as a quiet day.
#[derive(Clone, Default)]
pub struct ChangeLog {
    ring: Arc<Mutex<VecDeque<Logged>>>,
}

impl ChangeLog {
    fn push(&self, entry: Logged) {
        let mut ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        if ring.len() == CHANGES_KEPT {
            ring.pop_front();
        }
        ring.push_back(entry);
    }

    /// What the ring holds now, newest first.
    pub fn newest_first(&self) -> Vec<Logged> {
        let ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        ring.iter().rev().cloned().collect()
    }
}

/// What one publication did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub serial: u32,
    /// Names that now have records and did not before.
    pub added: NameList,
    /// Names that had records and no longer do.
    pub removed: NameList,
    /// Names that had records before and still do, with some changed
    /// (an address moved, a port, a TTL).
    pub modified: NameList,
    /// Records added and removed (a changed record counts as one of each).
    pub records_added: usize,
    pub records_removed: usize,
    /// Whether the served records changed (and so the serial).
    pub changed: bool,
}

/// Names that came or went: how many, and the first few for the log (only
/// those are formatted: a first publication of 100 000 tasks adds 228 000).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NameList {
    pub count: usize,
    /// At most [`NAMES_LOGGED`], sorted.
    pub sample: Vec<String>,
}

impl NameList {
    fn of<'a>(names: impl Iterator<Item = &'a [u8]>) -> NameList {
        let mut list = NameList::default();
        for name in names {
            if list.count < NAMES_LOGGED {
                list.sample.push(name_table::Display(name).to_string());
            }
            list.count += 1;
        }
        list.sample.sort();
        list
    }
}

impl std::fmt::Display for NameList {
    /// "2: a.local. b.local.", "25: a.local. b.local. … (+23 more)", "0"
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.count)?;
        if !self.sample.is_empty() {
            write!(f, ": {}", self.sample.join(" "))?;
        }
        if self.count > self.sample.len() {
            write!(f, " (+{} more)", self.count - self.sample.len())?;
        }
        Ok(())
    }
}

impl Publisher {
    pub fn new(config: ZoneConfig, zone: SharedZone) -> Publisher {
        let refresh: Arc<tokio::sync::Notify> = Arc::default();
        Publisher {
            config: Arc::new(Mutex::new(config)),
            zone,
            observers: Vec::new(),
            refreshers: Arc::new(Mutex::new(vec![refresh.clone()])),
            refresh,
            changes: ChangeLog::default(),
            parts: Arc::default(),
            part: None,
        }
    }

    /// The publisher of one source of several, named `name`: what it
    /// publishes replaces that source's part, and the zone is built from
    /// every part. Its refreshes are asked for with everyone's.
    pub fn for_part(&self, name: &str) -> Publisher {
        let refresh: Arc<tokio::sync::Notify> = Arc::default();
        lock(&self.refreshers).push(refresh.clone());
        Publisher {
            refresh,
            part: Some(name.into()),
            ..self.clone()
        }
    }

    /// The source this publisher publishes for, when it is one of several.
    pub fn part_name(&self) -> Option<&str> {
        self.part.as_deref()
    }

    /// The inventory its source last published: that source's part, or
    /// the whole served inventory with one source.
    pub fn served_part(&self) -> Option<Arc<Inventory>> {
        match &self.part {
            Some(name) => lock(&self.parts).get(name.as_ref()).cloned(),
            None => Some(self.zone.load_full()?.snapshot().inventory.clone()),
        }
    }

    /// The ring of recent changes this publisher fills.
    pub fn changes(&self) -> ChangeLog {
        self.changes.clone()
    }

    /// Asks every source loop to refresh now rather than at its next tick.
    pub fn request_refresh(&self) {
        for refresh in lock(&self.refreshers).iter() {
            refresh.notify_one();
        }
    }

    /// Completes when [`Publisher::request_refresh`] is called.
    pub async fn refresh_requested(&self) {
        self.refresh.notified().await;
    }

    /// Calls `observer` with every snapshot published from now on.
    pub fn with_observer(mut self, observer: Observer) -> Publisher {
        self.observers.push(observer);
        self
    }

    /// Replaces the zone settings and rebuilds the current snapshot with
    /// them (a TTL change is served at once, under a new serial).
    pub fn set_config(&self, config: ZoneConfig) -> Option<Change> {
        let mut current = self.lock_config();
        *current = config;
        let inventory = self.zone.load_full()?.snapshot().inventory.clone();
        Some(self.build_and_store(&current, inventory, None, Cause::Reload))
    }

    /// Publishes an inventory saved by an earlier run (warm restart). The
    /// serial continues from `saved_serial`: it rises past it, so secondaries
    /// and caches never see a serial go back.
    pub fn restore(&self, inventory: Inventory, saved_serial: u32) -> Change {
        // Several sources: each starts from its part of what was saved, so
        // that the first one to read does not withdraw the others' tasks.
        let mut parts = lock(&self.parts);
        parts.extend(parts::split(&inventory));
        let config = self.lock_config();
        self.build_and_store(
            &config,
            Arc::new(inventory),
            Some(saved_serial),
            Cause::Restore,
        )
    }

    fn lock_config(&self) -> MutexGuard<'_, ZoneConfig> {
        lock(&self.config)
    }

    pub fn zone(&self) -> &SharedZone {
        &self.zone
    }

    /// Builds the snapshot of `inventory` and publishes it. When nothing
    /// served changed the serial stays; the snapshot is still replaced so that
    /// its inventory (task states, data ages) is current.
    pub fn publish(&self, inventory: Inventory) -> Change {
        let Some(name) = &self.part else {
            let config = self.lock_config();
            return self.build_and_store(&config, Arc::new(inventory), None, Cause::Source);
        };
        let mut parts = lock(&self.parts);
        parts.insert(name.to_string(), Arc::new(inventory));
        let merged = parts::merge(&parts);
        let config = self.lock_config();
        self.build_and_store(&config, Arc::new(merged), None, Cause::Source)
    }

    fn build_and_store(
        &self,
        config: &ZoneConfig,
        inventory: Arc<Inventory>,
        saved_serial: Option<u32>,
        cause: Cause,
    ) -> Change {
        let previous = self.zone.load_full();
        let previous = previous.as_deref();
        // With no previous snapshot the serial is the `now` given, so a
        // restored zone starts right after its saved serial.
        let (base, now) = match saved_serial {
            Some(saved) => (None, serial::next(Some(saved), serial::now())),
            None => (previous.map(|p| p.snapshot().as_ref()), serial::now()),
        };
        let snapshot = Snapshot::build(config, inventory, base, now);
        let change = describe(previous.map(|p| p.snapshot().as_ref()), &snapshot);
        // Anyone who can start a task chooses its names: one line per
        // publication at most (the first case, and how many), throttled.
        let report = &snapshot.report;
        if let Some(first) = report.collisions.first() {
            crate::warn_throttled!(
                "names merged",
                kind = first.kind,
                label = %first.label,
                inputs = ?first.inputs,
                collisions = report.collisions.len(),
                "several names map to one label: their records are merged"
            );
        }
        if let Some(first) = report.skipped.first() {
            crate::warn_throttled!(
                "names not served",
                name = %first,
                skipped = report.skipped.len(),
                "name not served"
            );
        }
        let (duplicates, first) = snapshot.duplicate_tasks();
        metrics::gauge!("ecs_dns_duplicate_tasks").set(duplicates as f64);
        if let Some(first) = first {
            crate::warn_throttled!(
                "tasks listed twice",
                task = %first,
                duplicates,
                "a task is listed more than once: served once"
            );
        }
        let unnamed = |v: &&Verdict| **v == Verdict::Unnamed;
        if let Some(index) = report.verdicts.iter().position(|v| unnamed(&v))
            && let Some(task) = snapshot.inventory.tasks.get(index)
        {
            crate::warn_throttled!(
                "tasks without a name",
                cluster = %task.cluster,
                task = %task.id(),
                service = ?task.service,
                family = %task.family,
                unnamed = report.verdicts.iter().filter(unnamed).count(),
                "a served task's service and family make no usable label: not served"
            );
        }
        if change.changed {
            tracing::info!(
                serial = change.serial,
                tasks = %verdict_counts(&snapshot.report.verdicts),
                records_added = change.records_added,
                records_removed = change.records_removed,
                names_added = %change.added,
                names_removed = %change.removed,
                names_changed = %change.modified,
                cause = cause.as_str(),
                "zone changed"
            );
            self.changes.push(Logged {
                at: SystemTime::now(),
                cause,
                change: change.clone(),
            });
        }
        // The reverse zones, from this snapshot's addresses, in the same swap.
        let base = previous.filter(|_| saved_serial.is_none());
        let served = Served::new(Arc::new(snapshot), previous);
        let served = Arc::new(served.with_reverse_zones(config, base, now));
        self.zone.store(Some(served.clone()));
        for observer in &self.observers {
            observer(&served);
        }
        change
    }
}

fn describe(previous: Option<&Snapshot>, next: &Snapshot) -> Change {
    let changed = previous.is_none_or(|p| p.serial() != next.serial());
    let mut change = Change {
        serial: next.serial(),
        changed,
        added: NameList::default(),
        removed: NameList::default(),
        modified: NameList::default(),
        records_added: 0,
        records_removed: 0,
    };
    match previous {
        // Nothing served changed: no diff to make.
        Some(_) if !changed => {}
        Some(p) => {
            let (records_added, records_removed, names) = next.changes_since(p);
            change.records_added = records_added;
            change.records_removed = records_removed;
            change.added = NameList::of(
                names
                    .iter()
                    .map(Vec::as_slice)
                    .filter(|n| !has_records(p, n)),
            );
            change.removed = NameList::of(
                names
                    .iter()
                    .map(Vec::as_slice)
                    .filter(|n| !has_records(next, n)),
            );
            change.modified = NameList::of(
                names
                    .iter()
                    .map(Vec::as_slice)
                    .filter(|n| has_records(p, n) && has_records(next, n)),
            );
        }
        None => {
            change.added = NameList::of(next.names());
            change.records_added = next.record_count();
        }
    }
    change
}

fn has_records(snapshot: &Snapshot, name: &[u8]) -> bool {
    snapshot.lookup(name).is_some_and(|node| !node.is_empty())
}

/// "served=6 starting=1 unhealthy=1": how many tasks got each verdict.
fn verdict_counts(verdicts: &[crate::records::Verdict]) -> String {
    let mut counts: Vec<(crate::records::Verdict, usize)> = Vec::new();
    for verdict in verdicts {
        match counts.iter_mut().find(|(v, _)| v == verdict) {
            Some((_, count)) => *count += 1,
            None => counts.push((*verdict, 1)),
        }
    }
    let mut shown: Vec<String> = counts
        .iter()
        .map(|(verdict, count)| format!("{}={count}", format!("{verdict:?}").to_lowercase()))
        .collect();
    shown.sort();
    shown.join(" ")
}

/// A lock whose holder panicked still guards valid data: every writer
/// replaces whole values.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::web_inventory;

    fn zone_config() -> ZoneConfig {
        let mut config = crate::testing::config().zone;
        config.nameservers[0].addresses = vec!["127.0.0.1".parse().unwrap()];
        config
    }

    #[test]
    fn publications_say_which_names_came_and_went() {
        let zone = SharedZone::default();
        let publisher = Publisher::new(zone_config(), zone.clone());
        let first = publisher.publish(web_inventory(&[[10, 0, 0, 1]]));
        assert!(first.changed);
        // SOA/NS apex, ns1, web.local, web.prod.local, t0.web.local.
        assert_eq!(first.added.count, 5, "{first:?}");
        assert!(first.added.sample.contains(&"t0.web.local.".to_string()));

        let same = publisher.publish(web_inventory(&[[10, 0, 0, 1]]));
        assert!(!same.changed);
        assert_eq!((same.added.count, same.removed.count), (0, 0));

        let mut moved = web_inventory(&[[10, 0, 0, 2]]);
        Arc::make_mut(&mut moved.tasks[0]).task_id = "t9".into();
        let change = publisher.publish(moved);
        assert!(change.changed);
        assert_eq!(change.added.sample, ["t9.web.local."]);
        assert_eq!(change.removed.sample, ["t0.web.local."]);
        assert_eq!(change.added.to_string(), "1: t9.web.local.");
        // web.local. and web.prod.local. kept their name, not their address.
        assert_eq!(
            change.modified.sample,
            ["web.local.", "web.prod.local."],
            "{change:?}"
        );
        assert_eq!((change.records_added, change.records_removed), (3, 3));
        assert_eq!(
            zone.load().as_ref().map(|s| s.snapshot().serial()),
            Some(change.serial)
        );
        let many = NameList {
            count: 25,
            sample: vec!["a.local.".into(), "b.local.".into()],
        };
        assert_eq!(many.to_string(), "25: a.local. b.local. (+23 more)");

        // The ring has the two changes, newest first; not the no-op.
        let logged = publisher.changes().newest_first();
        let serials: Vec<u32> = logged.iter().map(|l| l.change.serial).collect();
        assert_eq!(serials, [change.serial, first.serial]);
        assert!(logged.iter().all(|l| l.cause == Cause::Source));
    }

    #[test]
    fn published_tasks_are_in_arn_order() {
        let zone = SharedZone::default();
        let publisher = Publisher::new(zone_config(), zone.clone());
        let mut inventory = web_inventory(&[[10, 0, 0, 1], [10, 0, 0, 2], [10, 0, 0, 3]]);
        for (i, task) in inventory.tasks.iter_mut().enumerate() {
            Arc::make_mut(task).task_arn = format!("arn:aws:ecs:us-east-1:1:task/prod/t{i}");
        }
        inventory.tasks.reverse();
        let before: Vec<String> = inventory.tasks.iter().map(|t| t.task_arn.clone()).collect();
        assert!(
            !before.is_sorted(),
            "the test starts out of order: {before:?}"
        );
        publisher.publish(inventory);
        let served = zone.load_full().expect("published");
        let arns: Vec<&str> = served
            .snapshot()
            .inventory
            .tasks
            .iter()
            .map(|t| t.task_arn.as_str())
            .collect();
        assert!(arns.is_sorted(), "{arns:?}");
    }

    #[test]
    fn the_change_ring_is_bounded() {
        let publisher = Publisher::new(zone_config(), SharedZone::default());
        for i in 0..CHANGES_KEPT + 7 {
            publisher.publish(web_inventory(&[[10, 0, (i / 250) as u8, (i % 250) as u8]]));
        }
        let logged = publisher.changes().newest_first();
        assert_eq!(logged.len(), CHANGES_KEPT);
        assert!(
            logged
                .windows(2)
                .all(|w| w[0].change.serial > w[1].change.serial)
        );
    }

    /// A snapshot is always published with its own answers: the answer
    /// table is kept only while the records and SOA are the same.
    #[test]
    fn answers_are_swapped_with_their_snapshot() {
        use hickory_proto::op::{Message, Query};
        use hickory_proto::rr::{Name, RecordType};

        let zone = SharedZone::default();
        let publisher = Publisher::new(zone_config(), zone.clone());
        let table = || {
            zone.load_full()
                .map(|s| s.answers() as *const crate::dns::fast::Table as usize)
        };
        publisher.publish(web_inventory(&[[10, 0, 0, 1]]));
        let first = table();
        publisher.publish(web_inventory(&[[10, 0, 0, 1]]));
        assert_eq!(
            table(),
            first,
            "same records: the rendered answers are kept"
        );
        publisher.publish(web_inventory(&[[10, 0, 0, 2]]));
        assert_ne!(table(), first, "new records: new answers");

        let mut query = Message::query();
        query.add_query(Query::query(
            Name::from_ascii("web.local.").unwrap(),
            RecordType::A,
        ));
        let query = query.to_vec().unwrap();
        let served = zone.load_full().expect("published");
        let mut out = Vec::new();
        assert!(crate::dns::fast::answer(
            &served,
            &query,
            crate::wire::Transport::Udp,
            &crate::dns::answer::Limits::default(),
            &mut out
        ));
        assert!(
            out.windows(4).any(|w| w == [10, 0, 0, 2]),
            "the fast path answers with the new address: {out:?}"
        );
    }
}
