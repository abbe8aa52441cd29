//! The service labels of each task, noted once: a publication that rebuilds
//! a few labels finds their tasks by comparing two numbers per task instead
//! of forming every task's names again (two thirds of a 100 000-task
//! publication's time before).

use std::borrow::Cow;
use std::collections::HashSet;

use super::TaskNames;
use crate::inventory::Task;
use crate::wire::name_table::NameTable;

/// No label (a task without an alias, or unusable labels).
const NONE: u32 = u32::MAX;
/// Not noted: the task was not served when its inventory was built.
const UNKNOWN: u32 = u32::MAX - 1;

/// The service label and alias label of each task of one inventory, as ids
/// in a table of labels; known for every served task.
#[derive(Clone, Debug, Default)]
pub struct TaskLabels {
    table: NameTable,
    of_task: Vec<[u32; 2]>,
}

impl TaskLabels {
    /// `tasks` tasks, none noted yet.
    pub fn unknown(tasks: usize) -> TaskLabels {
        TaskLabels {
            table: NameTable::default(),
            of_task: vec![[UNKNOWN; 2]; tasks],
        }
    }

    /// Notes the labels of task `index`.
    pub fn note(&mut self, index: usize, services: &[Cow<'_, str>]) {
        let mut ids = [NONE; 2];
        for (id, label) in ids.iter_mut().zip(services) {
            *id = self.table.intern(label.as_bytes());
        }
        if let Some(slot) = self.of_task.get_mut(index) {
            *slot = ids;
        }
    }

    /// Notes the labels of `task` at `index`, forming its names.
    pub fn note_task(&mut self, index: usize, task: &Task) {
        match TaskNames::of(task) {
            Some(names) => self.note(index, &names.services),
            None => {
                if let Some(slot) = self.of_task.get_mut(index) {
                    *slot = [NONE; 2];
                }
            }
        }
    }

    pub fn is_known(&self, index: usize) -> bool {
        self.of_task.get(index).is_some_and(|ids| ids[0] != UNKNOWN)
    }

    /// The labels of another inventory's tasks: task `i` takes the labels
    /// of task `from[i]` here (`None`: not known).
    pub fn remapped(&self, from: impl Iterator<Item = Option<usize>>) -> TaskLabels {
        TaskLabels {
            table: self.table.clone(),
            of_task: from
                .map(|o| {
                    o.and_then(|o| self.of_task.get(o).copied())
                        .unwrap_or([UNKNOWN; 2])
                })
                .collect(),
        }
    }

    /// Which label ids are in `labels`, as a mask for [`Self::under_none_of`].
    pub fn wanted(&self, labels: &HashSet<String>) -> Vec<bool> {
        let mut mask = vec![false; self.table.len()];
        for label in labels {
            if let Some(id) = self.table.get(label.as_bytes()) {
                mask[id as usize] = true;
            }
        }
        mask
    }

    /// Whether task `index` is known to have no label in `wanted`.
    pub fn under_none_of(&self, index: usize, wanted: &[bool]) -> bool {
        let Some(ids) = self.of_task.get(index) else {
            return false;
        };
        ids[0] != UNKNOWN
            && ids
                .iter()
                .all(|&id| !wanted.get(id as usize).copied().unwrap_or(false))
    }
}
