//! Tasks as the status page shows them: the facts an operator needs in one
//! row, the verdict in words, and (in a lookup) the raw ECS fields.

use std::sync::Arc;

use serde::Serialize;

use super::explain;
use crate::inventory::Task;
use crate::ops::listing::verdict_name;
use crate::zone::Snapshot;

#[derive(Serialize)]
pub struct TaskRow {
    pub task_id: String,
    pub task_arn: String,
    pub cluster: String,
    pub service: Option<String>,
    pub family: String,
    pub verdict: Option<&'static str>,
    pub served: bool,
    /// Why, in words.
    pub reason: String,
    pub last_status: String,
    pub desired_status: String,
    pub health_status: String,
    pub addresses: Vec<String>,
    pub instance: Option<String>,
    pub tags: Vec<(String, String)>,
    /// The task as the source reported it (lookups only).
    pub raw: Option<Arc<Task>>,
}

/// The rows of `positions` (inventory positions), each with its reason;
/// `raw` adds the whole task.
pub fn task_rows(snapshot: &Snapshot, positions: &[usize], raw: bool) -> Vec<TaskRow> {
    let tasks = &snapshot.inventory.tasks;
    let counts = explain::service_counts(snapshot, positions);
    positions
        .iter()
        .filter_map(|&i| {
            let task = tasks.get(i)?;
            let verdict = snapshot.report.verdicts.get(i).copied();
            let service = counts.get(&explain::key(task)).copied().unwrap_or_default();
            Some(TaskRow {
                task_id: task.id().to_owned(),
                task_arn: task.task_arn.clone(),
                cluster: task.cluster.to_string(),
                service: task.service.as_deref().map(str::to_owned),
                family: task.family.to_string(),
                verdict: verdict.map(verdict_name),
                served: verdict.is_some_and(|v| v.is_served()),
                reason: explain::reason(task, verdict, service),
                last_status: task.last_status.to_string(),
                desired_status: task.desired_status.to_string(),
                health_status: task.health_status.to_string(),
                addresses: (task.ipv4.iter().map(ToString::to_string))
                    .chain(task.ipv6.iter().map(ToString::to_string))
                    .collect(),
                instance: (task.ec2_instance_id.as_deref())
                    .or(task.eni_id.as_deref())
                    .map(str::to_owned),
                tags: task
                    .tags
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                raw: raw.then(|| task.clone()),
            })
        })
        .collect()
}
