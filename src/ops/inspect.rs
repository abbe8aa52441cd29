//! `/records`: what is served and why, as one JSON document.
//!
//! `records[]`: every record made from a task, with where it comes from
//! (cluster, service, task, instance or ENI). `tasks[]`: every task the
//! source saw, with the serving rule's verdict, so that "why is my task not
//! in DNS?" has an answer.

use std::time::SystemTime;

use serde::Serialize;

use crate::inventory::Task;
use crate::records::Verdict;
use crate::zone::Snapshot;

#[derive(Serialize)]
pub struct Document<'a> {
    pub zone: String,
    pub serial: u32,
    pub clusters: Vec<ClusterView<'a>>,
    pub records: Vec<RecordView<'a>>,
    pub tasks: Vec<TaskView<'a>>,
}

#[derive(Serialize)]
pub struct ClusterView<'a> {
    pub name: &'a str,
    pub refreshed_at: String,
    pub age_seconds: u64,
    pub error: Option<&'a str>,
}

#[derive(Serialize)]
pub struct RecordView<'a> {
    pub name: String,
    #[serde(rename = "type")]
    pub rtype: String,
    pub data: String,
    #[serde(flatten)]
    pub from: Provenance<'a>,
}

/// Where a record comes from.
#[derive(Serialize)]
pub struct Provenance<'a> {
    pub cluster: &'a str,
    pub service: Option<&'a str>,
    pub family: &'a str,
    pub task_arn: &'a str,
    pub task_id: &'a str,
    pub container_instance_arn: Option<&'a str>,
    pub ec2_instance_id: Option<&'a str>,
    pub eni_id: Option<&'a str>,
}

#[derive(Serialize)]
pub struct TaskView<'a> {
    pub verdict: Option<Verdict>,
    pub served: bool,
    pub last_status: &'a str,
    pub desired_status: &'a str,
    pub health_status: &'a str,
    pub has_health_check: bool,
    pub launch_type: &'a str,
    #[serde(flatten)]
    pub from: Provenance<'a>,
}

fn provenance(task: &Task) -> Provenance<'_> {
    Provenance {
        cluster: &task.cluster,
        service: task.service.as_deref(),
        family: &task.family,
        task_arn: &task.task_arn,
        task_id: task.id(),
        container_instance_arn: task.container_instance_arn.as_deref(),
        ec2_instance_id: task.ec2_instance_id.as_deref(),
        eni_id: task.eni_id.as_deref(),
    }
}

/// The document for `snapshot` as of `now`.
pub fn document(snapshot: &Snapshot, now: SystemTime) -> Document<'_> {
    let inventory = &snapshot.inventory;
    let clusters = inventory
        .clusters
        .iter()
        .map(|c| ClusterView {
            name: &c.name,
            refreshed_at: humantime::format_rfc3339_seconds(c.refreshed_at).to_string(),
            age_seconds: now
                .duration_since(c.refreshed_at)
                .unwrap_or_default()
                .as_secs(),
            error: c.error.as_deref(),
        })
        .collect();
    let set = snapshot.record_set();
    let records = set
        .entries
        .iter()
        .filter_map(|entry| {
            let task = inventory.tasks.get(entry.task)?;
            Some(RecordView {
                name: set.owner(entry).to_string(),
                rtype: entry.data.rtype().to_string(),
                data: set.rdata(entry)?.to_string(),
                from: provenance(task),
            })
        })
        .collect();
    let tasks = inventory
        .tasks
        .iter()
        .enumerate()
        .map(|(i, task)| {
            let verdict = snapshot.report.verdicts.get(i).copied();
            TaskView {
                verdict,
                served: verdict.is_some_and(Verdict::is_served),
                last_status: &task.last_status,
                desired_status: &task.desired_status,
                health_status: &task.health_status,
                has_health_check: task.has_health_check,
                launch_type: &task.launch_type,
                from: provenance(task),
            }
        })
        .collect();
    Document {
        zone: snapshot.origin().to_string(),
        serial: snapshot.serial(),
        clusters,
        records,
        tasks,
    }
}
