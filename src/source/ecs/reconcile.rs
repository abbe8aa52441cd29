//! What the full read of events mode (the reconcile) does beyond a poll:
//! it counts what events had missed ([`corrections`]), and spreads its
//! DescribeTasks batches over a window instead of sending them at once
//! ([`batch_pause`]).
//!
//! Pure: no I/O, no clock.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::inventory::Task;

/// The kinds of correction, as `ecs_dns_reconcile_corrections_total{kind}`
/// labels them.
pub const KINDS: [&str; 3] = ["added", "removed", "changed"];

/// What one full read found that events had not said, for one cluster.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Corrections {
    /// Tasks the read found that events never reported.
    pub added: usize,
    /// Tasks events held that the read no longer finds (a missed stop).
    pub removed: usize,
    /// Tasks both had, whose facts that events carry differ.
    pub changed: usize,
}

impl Corrections {
    pub fn total(&self) -> usize {
        self.added + self.removed + self.changed
    }

    /// `(kind, count)` for each of [`KINDS`].
    pub fn by_kind(&self) -> [(&'static str, usize); 3] {
        [
            (KINDS[0], self.added),
            (KINDS[1], self.removed),
            (KINDS[2], self.changed),
        ]
    }
}

/// Compares the tasks events mode held for a cluster with what a full read
/// of it found. Differences that events cannot report are not corrections:
/// health (task events carry none, and a health change alone sends no
/// event), the task's tags and its service's tags (events carry none; new
/// tasks' tags come from a re-read). Everything else a task has comes from
/// its event (status, addresses, ports, instance and its drain state, task
/// definition), so a difference there is something events missed.
pub fn corrections(held: &[Arc<Task>], read: &[Arc<Task>]) -> Corrections {
    let held: HashMap<&str, &Arc<Task>> = held.iter().map(|t| (t.task_arn.as_str(), t)).collect();
    let mut out = Corrections::default();
    let mut found = 0;
    for task in read {
        match held.get(task.task_arn.as_str()) {
            None => out.added += 1,
            Some(before) => {
                found += 1;
                if !Arc::ptr_eq(before, task) && events_would_differ(before, task) {
                    out.changed += 1;
                }
            }
        }
    }
    out.removed = held.len() - found.min(held.len());
    out
}

/// What a full read found for a cluster, with what events said while it
/// ran: a task an event changed (`newer`) keeps what events mode holds
/// (`held`: the event's version, or nothing when it stopped), whatever the
/// read saw of it before; every other task is as read.
pub fn with_newer_events(
    held: &[Arc<Task>],
    read: Vec<Arc<Task>>,
    newer: &dyn Fn(&str) -> bool,
) -> Vec<Arc<Task>> {
    let mut out: Vec<Arc<Task>> = (read.into_iter()).filter(|t| !newer(&t.task_arn)).collect();
    out.extend(held.iter().filter(|t| newer(&t.task_arn)).cloned());
    out
}

/// Whether `a` and `b` differ in what an event says of a task.
fn events_would_differ(a: &Task, b: &Task) -> bool {
    if a == b {
        return false;
    }
    // Only for the few tasks that differ at all: compare with what events
    // cannot say taken from `a`.
    let mut b = b.clone();
    b.health_status.clone_from(&a.health_status);
    b.tags.clone_from(&a.tags);
    b.service_tags.clone_from(&a.service_tags);
    *a != b
}

/// The longest a full read's DescribeTasks batches are spread over. Events
/// that arrive during a full read are applied once it ends, so the window
/// is also how much longer they may wait, once per `reconcile_interval`:
/// kept short.
pub const MAX_PACING_WINDOW: Duration = Duration::from_secs(30);
/// The longest pause between two batches (a small cluster is not slowed
/// down for nothing).
pub const MAX_BATCH_PAUSE: Duration = Duration::from_millis(500);

/// Events mode: the pause before each DescribeTasks batch of a full read
/// after the first, so that its `batches` go out over at most a tenth of
/// `reconcile_interval` (at most [`MAX_PACING_WINDOW`], and at most
/// [`MAX_BATCH_PAUSE`] apart) rather than in a burst of
/// [`super::discovery::DESCRIBE_CONCURRENCY`] at a time. Zero for one
/// batch.
pub fn batch_pause(reconcile_interval: Duration, batches: usize) -> Duration {
    let Some(gaps) = batches.checked_sub(1).filter(|g| *g > 0) else {
        return Duration::ZERO;
    };
    let window = (reconcile_interval / 10).min(MAX_PACING_WINDOW);
    let gaps = u32::try_from(gaps).unwrap_or(u32::MAX);
    (window / gaps).min(MAX_BATCH_PAUSE)
}

/// The whole window [`batch_pause`] adds to a read of `batches` batches.
pub fn pacing_window(reconcile_interval: Duration, batches: usize) -> Duration {
    let gaps = u32::try_from(batches.saturating_sub(1)).unwrap_or(u32::MAX);
    batch_pause(reconcile_interval, batches) * gaps
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    fn task(arn: &str) -> Arc<Task> {
        let mut task = (*testing::web_inventory(&[[10, 0, 0, 1]]).tasks[0]).clone();
        task.task_arn = arn.to_owned();
        Arc::new(task)
    }

    /// A read that ran while events arrived: the events win for their
    /// tasks (a stop, a start, a change), the read for the others; and what
    /// the events said is no correction.
    #[test]
    fn events_applied_during_a_read_are_newer_than_it() {
        let ip = |task: &Arc<Task>, last: u8| {
            let mut task = (**task).clone();
            task.ipv4 = vec![std::net::Ipv4Addr::new(10, 0, 0, last)];
            Arc::new(task)
        };
        let (a, b, c, d) = (task("a"), task("b"), task("c"), task("d"));
        // Events mode held a, b, c, d; the read (started before the
        // events) found a (moved), b, c (moved) and d; meanwhile events
        // stopped b, moved c again and started e.
        let c_event = ip(&c, 9);
        let e = task("e");
        let held = vec![a.clone(), c_event.clone(), d.clone(), e.clone()];
        let read = vec![ip(&a, 2), b.clone(), ip(&c, 3), d.clone()];
        let events = ["b", "c", "e"];
        let merged = with_newer_events(&held, read, &|arn| events.contains(&arn));
        let mut seen: Vec<(String, String)> = (merged.iter())
            .map(|t| (t.task_arn.clone(), t.ipv4[0].to_string()))
            .collect();
        seen.sort();
        let expect = [
            ("a", "10.0.0.2"),
            ("c", "10.0.0.9"),
            ("d", "10.0.0.1"),
            ("e", "10.0.0.1"),
        ];
        assert_eq!(
            seen,
            expect.map(|(a, ip)| (a.to_owned(), ip.to_owned())).to_vec()
        );
        // Only the read's own news (a moved) counts as missed.
        let found = corrections(&held, &merged);
        assert_eq!((found.added, found.removed, found.changed), (0, 0, 1));
    }

    #[test]
    fn corrections_count_what_events_missed_by_kind() {
        let (a, b, c) = (task("a"), task("b"), task("c"));
        let held = vec![a.clone(), b.clone()];
        // `a` unchanged (the same task), `b` stopped, `c` new.
        let read = vec![a.clone(), c];
        assert_eq!(
            corrections(&held, &read),
            Corrections {
                added: 1,
                removed: 1,
                changed: 0
            }
        );
        // Equal facts in a new allocation are no change.
        let read = vec![Arc::new((*a).clone()), b.clone()];
        assert_eq!(corrections(&held, &read).total(), 0);
        assert_eq!(corrections(&[], &[]).total(), 0);
    }

    #[test]
    fn a_change_counts_only_in_what_events_carry() {
        let before = task("a");
        let changed = |edit: &dyn Fn(&mut Task)| {
            let mut after = (*before).clone();
            edit(&mut after);
            corrections(std::slice::from_ref(&before), &[Arc::new(after)]).changed
        };
        // What events say: a missed event.
        assert_eq!(changed(&|t| t.last_status = "STOPPED".into()), 1);
        assert_eq!(changed(&|t| t.desired_status = "STOPPED".into()), 1);
        assert_eq!(changed(&|t| t.ipv4 = vec!["10.0.0.9".parse().unwrap()]), 1);
        assert_eq!(changed(&|t| t.eni_id = Some("eni-2".into())), 1);
        assert_eq!(changed(&|t| t.instance_draining = !t.instance_draining), 1);
        // What only a read can say: not a correction.
        assert_eq!(changed(&|t| t.health_status = "HEALTHY".into()), 0);
        assert_eq!(
            changed(&|t| {
                t.tags.insert("ecs-dns:name".into(), "www".into());
            }),
            0
        );
        assert_eq!(
            changed(&|t| {
                t.service_tags.insert("ecs-dns:name".into(), "www".into());
            }),
            0
        );
        // Both kinds at once: it counts.
        assert_eq!(
            changed(&|t| {
                t.health_status = "HEALTHY".into();
                t.last_status = "PENDING".into();
            }),
            1
        );
    }

    #[test]
    fn batches_are_spread_over_a_tenth_of_the_interval_capped() {
        let ten_min = Duration::from_secs(600);
        // One batch: nothing to spread.
        assert_eq!(batch_pause(ten_min, 0), Duration::ZERO);
        assert_eq!(batch_pause(ten_min, 1), Duration::ZERO);
        // A few batches (up to 6 000 tasks): half a second apart.
        assert_eq!(batch_pause(ten_min, 2), MAX_BATCH_PAUSE);
        assert_eq!(pacing_window(ten_min, 2), Duration::from_millis(500));
        assert_eq!(pacing_window(ten_min, 10), Duration::from_millis(4500));
        assert_eq!(batch_pause(ten_min, 60), MAX_BATCH_PAUSE);
        // 10 000 tasks (100 batches): the 30 s cap over 99 gaps, about 3.3
        // calls a second.
        assert_eq!(batch_pause(ten_min, 100), Duration::from_secs(30) / 99);
        assert!(pacing_window(ten_min, 100) <= MAX_PACING_WINDOW);
        assert!(pacing_window(ten_min, 100) > Duration::from_secs(29));
        // 100 000 tasks, or a day's interval: still within the cap.
        assert!(pacing_window(ten_min, 1000) <= MAX_PACING_WINDOW);
        assert!(pacing_window(Duration::from_secs(24 * 3600), 1000) <= MAX_PACING_WINDOW);
        // The shortest interval (30 s): within a tenth of it, 3 s.
        let short = Duration::from_secs(30);
        assert_eq!(batch_pause(short, 4), Duration::from_millis(500));
        assert_eq!(batch_pause(short, 31), Duration::from_millis(100));
        assert!(pacing_window(short, 500) <= Duration::from_secs(3));
    }
}
