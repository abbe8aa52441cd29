//! What a publication must rebuild when a few tasks changed.
//!
//! Every record is under one service label (the service, or an alias tag),
//! which is part of its owner name. A task's change can change the records
//! under its own labels (old and new), and, through the service rules, the
//! verdicts of the other tasks of its service in its cluster, and so the
//! records under their labels. Everything else stays as it was: a zone of
//! 100 000 tasks rebuilds a few labels for an event, not all of them.

use std::cmp::Ordering;
use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;

use super::{Rules, TaskLabels, TaskNames, Verdict, apply_service_rules, serving};
use crate::inventory::{Inventory, Task};

/// The verdicts of a new inventory, and the service labels under which its
/// records may differ from the previous inventory's.
#[derive(Debug)]
pub struct Delta {
    /// One per task of the new inventory, as [`super::build`] would give.
    pub verdicts: Vec<Verdict>,
    /// The service labels to rebuild.
    pub labels: HashSet<String>,
    /// Tasks added, removed or changed.
    pub changed: usize,
    /// The service labels of the new inventory's served tasks.
    pub task_labels: TaskLabels,
    /// Sorted, each once: the addresses of the tasks added, removed or
    /// changed and of the tasks whose verdicts were decided again, which
    /// are all that can point elsewhere now (see [`super::reverse::patched`]).
    pub touched: Vec<IpAddr>,
    /// Where each task of the previous inventory is in the new one (`None`:
    /// removed).
    pub new_of_old: Vec<Option<u32>>,
    /// Increasing: the tasks of the new inventory that were added or
    /// changed, or whose verdicts were decided again.
    pub read_again: Vec<usize>,
}

/// No task of the previous inventory.
const NEW: u32 = u32::MAX;

/// The delta from `old` (with its `old_verdicts`; its ARNs strictly
/// increasing) to `new`. `None` when the tasks cannot be matched by ARN
/// (`new` must be in strictly increasing ARN order too: checked here) or
/// when more than `max_changed` tasks changed, where a whole build costs
/// about as much.
pub fn delta(
    old: &Inventory,
    old_verdicts: &[Verdict],
    old_labels: &TaskLabels,
    new: &Inventory,
    rules: &Rules,
    max_changed: usize,
) -> Option<Delta> {
    let (before, after) = (&old.tasks, &new.tasks);
    if old_verdicts.len() != before.len() {
        return None;
    }
    // The same task as before, after the same task as before: in order
    // without reading either ARN (reading 100 000 ARNs scattered over the
    // heap was most of a publication's time).
    let shared = |i: usize, j: usize| {
        (before.get(i).zip(after.get(j))).is_some_and(|(a, b)| Arc::ptr_eq(a, b))
    };
    let in_order = |i: usize, j: usize| {
        j == 0
            || (i > 0 && shared(i - 1, j - 1) && shared(i, j))
            || after[j - 1].task_arn < after[j].task_arn
    };
    let mut old_of_new = vec![NEW; after.len()];
    let mut new_of_old = vec![None; before.len()];
    let mut changed: Vec<(Option<usize>, Option<usize>)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    loop {
        let order = match (before.get(i), after.get(j)) {
            (Some(a), Some(b)) if Arc::ptr_eq(a, b) => Ordering::Equal,
            (Some(a), Some(b)) => a.task_arn.cmp(&b.task_arn),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => break,
        };
        match order {
            Ordering::Less => {
                changed.push((Some(i), None));
                i += 1;
            }
            Ordering::Greater => {
                if !in_order(i, j) {
                    return None;
                }
                changed.push((None, Some(j)));
                j += 1;
            }
            Ordering::Equal => {
                if !in_order(i, j) {
                    return None;
                }
                old_of_new[j] = i as u32;
                new_of_old[i] = Some(j as u32);
                if !shared(i, j) && before[i] != after[j] {
                    changed.push((Some(i), Some(j)));
                }
                i += 1;
                j += 1;
            }
        }
        if changed.len() > max_changed {
            return None;
        }
    }

    let mut verdicts: Vec<Verdict> = (old_of_new.iter())
        .map(|&o| match o {
            NEW => Verdict::Pending,
            o => old_verdicts[o as usize],
        })
        .collect();
    // Unchanged tasks keep the labels noted of them.
    let mut same = old_of_new.clone();
    for (_, n) in &changed {
        if let Some(n) = n {
            same[*n] = NEW;
        }
    }
    let mut task_labels =
        old_labels.remapped(same.iter().map(|&o| (o != NEW).then_some(o as usize)));
    let mut labels = HashSet::new();
    if changed.is_empty() {
        return Some(Delta {
            verdicts,
            labels,
            changed: 0,
            task_labels,
            touched: Vec::new(),
            new_of_old,
            read_again: Vec::new(),
        });
    }

    // The services (in their clusters) whose verdicts are decided again.
    let mut groups: Vec<(&str, &str)> = Vec::new();
    for (o, n) in &changed {
        let tasks = [o.map(|o| &before[o]), n.map(|n| &after[n])];
        for task in tasks.into_iter().flatten() {
            let group = (task.service_or_family(), task.cluster.as_str());
            if !groups.contains(&group) {
                groups.push(group);
            }
        }
    }
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); groups.len()];
    for (n, task) in after.iter().enumerate() {
        let service = task.service_or_family();
        // Few groups change at once: a linear search that compares the
        // service first is cheaper than hashing every task.
        if let Some(g) = (groups.iter()).position(|&(s, c)| s == service && c == task.cluster) {
            members[g].push(n);
        }
    }
    for indices in &members {
        for &n in indices {
            verdicts[n] = serving::verdict(&after[n]);
        }
        apply_service_rules(new, &mut verdicts, indices, rules, true);
    }

    let mut add_labels = |task: &Task| {
        if let Some(names) = TaskNames::of(task) {
            labels.extend(names.services.into_iter().map(|l| l.into_owned()));
        }
    };
    for (o, n) in &changed {
        if let Some(o) = o {
            add_labels(&before[*o]);
        }
        if let Some(n) = n {
            add_labels(&after[*n]);
        }
    }
    // An unchanged task whose service rules now decide otherwise.
    for &n in members.iter().flatten() {
        let o = old_of_new[n];
        if o != NEW && old_verdicts[o as usize].is_served() != verdicts[n].is_served() {
            add_labels(&after[n]);
        }
    }
    // Every served task's labels are known (the new and changed ones, and
    // those the service rules now serve, are noted here).
    for (n, verdict) in verdicts.iter().enumerate() {
        if verdict.is_served() && !task_labels.is_known(n) {
            task_labels.note_task(n, &after[n]);
        }
    }
    let mut touched: Vec<IpAddr> = Vec::new();
    let changed_tasks = (changed.iter())
        .flat_map(|(o, n)| [o.map(|o| &before[o]), n.map(|n| &after[n])])
        .flatten();
    // A member's task is the same before and after when only its verdict
    // could change: its addresses now are its addresses then.
    let member_tasks = members.iter().flatten().map(|&n| &after[n]);
    for task in changed_tasks.chain(member_tasks) {
        touched.extend(task.ipv4.iter().copied().map(IpAddr::V4));
        touched.extend(task.ipv6.iter().copied().map(IpAddr::V6));
    }
    touched.sort_unstable();
    touched.dedup();
    let mut read_again: Vec<usize> = (changed.iter().filter_map(|(_, n)| *n))
        .chain(members.into_iter().flatten())
        .collect();
    read_again.sort_unstable();
    read_again.dedup();
    Some(Delta {
        verdicts,
        labels,
        changed: changed.len(),
        task_labels,
        touched,
        new_of_old,
        read_again,
    })
}
