//! What the full read of events mode (the reconcile) does beyond a poll:
//! it counts what events had missed ([`corrections`]).
//!
//! Pure: no I/O, no clock.

use std::collections::HashMap;
use std::sync::Arc;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    fn task(arn: &str) -> Arc<Task> {
        let mut task = (*testing::web_inventory(&[[10, 0, 0, 1]]).tasks[0]).clone();
        task.task_arn = arn.to_owned();
        Arc::new(task)
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
}
