//! `/records`: what is served and why, one page of tasks at a time.
//!
//! `records[]`: the records made from the page's tasks, with where each
//! comes from (cluster, service, task, instance or ENI). `tasks[]`: the
//! page's tasks, with the serving rule's verdict, so that "why is my task
//! not in DNS?" has an answer. Which tasks, and how many, is the listing's
//! business ([`super::listing`]); here the page is written out as JSON, a
//! chunk at a time ([`Render`]), so that a response never holds more than a
//! chunk beyond what the snapshot already holds.

use std::sync::Arc;
use std::time::SystemTime;

use serde::Serialize;

use super::listing::{Page, TaskIndex, TaskRecords};
use crate::inventory::Task;
use crate::records::{Entry, Verdict};
use crate::zone::Snapshot;

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

/// The paging fields, before the arrays.
#[derive(Serialize)]
struct Head<'a> {
    zone: String,
    serial: u32,
    /// Tasks in the snapshot.
    tasks_total: usize,
    /// Tasks matching the filters, in all pages.
    tasks_matched: usize,
    /// Tasks in this page, and their records.
    tasks_returned: usize,
    records_returned: usize,
    limit: usize,
    /// The `cursor` of the next page; `null` on the last one.
    next_cursor: Option<&'a str>,
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

pub fn cluster_view(cluster: &crate::inventory::ClusterStatus, now: SystemTime) -> ClusterView<'_> {
    ClusterView {
        name: &cluster.name,
        refreshed_at: humantime::format_rfc3339_seconds(cluster.refreshed_at).to_string(),
        age_seconds: now
            .duration_since(cluster.refreshed_at)
            .unwrap_or_default()
            .as_secs(),
        error: cluster.error.as_deref(),
    }
}

fn record_view<'a>(records: &TaskRecords, entry: &Entry, task: &'a Task) -> Option<RecordView<'a>> {
    Some(RecordView {
        name: records.set.owner(entry).to_string(),
        rtype: entry.data.rtype().to_string(),
        data: records.set.rdata(entry)?.to_string(),
        from: provenance(task),
    })
}

fn task_view<'a>(snapshot: &Snapshot, i: usize, task: &'a Task) -> TaskView<'a> {
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
}

/// Where the writing is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Part {
    Head,
    Clusters(usize),
    /// The `n`th task of the page, and how many of its records are written.
    Records(usize, usize),
    Tasks(usize),
    Done,
}

/// One page written out as a JSON document, in pieces: `{"zone", "serial",
/// the paging fields, "clusters":[…], "records":[…], "tasks":[…]}`, one
/// object a line. Owns what it reads, so that it can outlive the request
/// handler (a response body).
pub struct Render {
    snapshot: Arc<Snapshot>,
    index: Arc<TaskIndex>,
    page: Page,
    limit: usize,
    now: SystemTime,
    part: Part,
    /// No element written yet in the current array.
    first: bool,
}

impl Render {
    pub fn new(
        snapshot: Arc<Snapshot>,
        index: Arc<TaskIndex>,
        page: Page,
        limit: usize,
        now: SystemTime,
    ) -> Render {
        Render {
            snapshot,
            index,
            page,
            limit,
            now,
            part: Part::Head,
            first: true,
        }
    }

    pub fn is_done(&self) -> bool {
        self.part == Part::Done
    }

    /// Appends to `out` until it holds at least `target` bytes or the
    /// document is complete (then [`Render::is_done`]).
    pub fn fill(&mut self, out: &mut Vec<u8>, target: usize) {
        while out.len() < target && !self.is_done() {
            self.step(out);
        }
    }

    /// Writes the next element (or the head, or an array's end).
    fn step(&mut self, out: &mut Vec<u8>) {
        let snapshot = &*self.snapshot;
        let tasks = &snapshot.inventory.tasks;
        match self.part {
            Part::Head => {
                let cursor = self.page.next_cursor.as_ref().map(|c| c.encode());
                let head = Head {
                    zone: snapshot.origin().to_string(),
                    serial: snapshot.serial(),
                    tasks_total: self.page.total,
                    tasks_matched: self.page.matched,
                    tasks_returned: self.page.tasks.len(),
                    records_returned: self.page.records,
                    limit: self.limit,
                    next_cursor: cursor.as_deref(),
                };
                write_json(out, &head);
                // Reopen the object for the arrays.
                out.pop();
                out.extend_from_slice(b",\n\"clusters\":[");
                self.part = Part::Clusters(0);
            }
            Part::Clusters(n) => match snapshot.inventory.clusters.get(n) {
                Some(cluster) => {
                    separator(&mut self.first, out);
                    write_json(out, &cluster_view(cluster, self.now));
                    self.part = Part::Clusters(n + 1);
                }
                None => self.next_array(out, "records", Part::Records(0, 0)),
            },
            Part::Records(n, done) => match self.page.tasks.get(n) {
                Some(&i) => {
                    // One record a step; the task's next record next time.
                    let records = self.index.records(snapshot);
                    let entry = self.page.records_of(records, i).nth(done);
                    match entry.and_then(|e| record_view(records, e, &tasks[i])) {
                        Some(view) => {
                            separator(&mut self.first, out);
                            write_json(out, &view);
                            self.part = Part::Records(n, done + 1);
                        }
                        None if entry.is_some() => self.part = Part::Records(n, done + 1),
                        None => self.part = Part::Records(n + 1, 0),
                    }
                }
                None => self.next_array(out, "tasks", Part::Tasks(0)),
            },
            Part::Tasks(n) => match self.page.tasks.get(n) {
                Some(&i) => {
                    separator(&mut self.first, out);
                    write_json(out, &task_view(snapshot, i, &tasks[i]));
                    self.part = Part::Tasks(n + 1);
                }
                None => {
                    out.extend_from_slice(b"\n]}\n");
                    self.part = Part::Done;
                }
            },
            Part::Done => {}
        }
    }

    /// Closes an array and opens the next, `name`.
    fn next_array(&mut self, out: &mut Vec<u8>, name: &str, next: Part) {
        out.extend_from_slice(b"\n],\n\"");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":[");
        self.first = true;
        self.part = next;
    }
}

/// The separator before an array element.
fn separator(first: &mut bool, out: &mut Vec<u8>) {
    out.extend_from_slice(if *first { b"\n" } else { b",\n" });
    *first = false;
}

/// Our views serialise to JSON without fail (string keys, no maps, no
/// floats); were one not to, `null` keeps the document valid.
fn write_json(out: &mut Vec<u8>, value: &impl Serialize) {
    let start = out.len();
    if serde_json::to_writer(&mut *out, value).is_err() {
        out.truncate(start);
        out.extend_from_slice(b"null");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::listing::Query;

    fn render_all(query: &str, chunk: usize) -> serde_json::Value {
        render_with(crate::testing::config().zone, |_| {}, query, chunk)
    }

    /// `/records?query` of three tasks (the second stopping), changed by
    /// `edit`, rendered `chunk` bytes at a time.
    fn render_with(
        zone: crate::config::ZoneConfig,
        edit: impl FnOnce(&mut crate::inventory::Inventory),
        query: &str,
        chunk: usize,
    ) -> serde_json::Value {
        let mut inventory =
            crate::testing::web_inventory(&[[10, 0, 0, 1], [10, 0, 0, 2], [10, 0, 0, 3]]);
        Arc::make_mut(&mut inventory.tasks[1]).desired_status = "STOPPED".into();
        edit(&mut inventory);
        inventory.clusters.push(crate::inventory::ClusterStatus {
            source: None,
            name: "prod".into(),
            refreshed_at: SystemTime::UNIX_EPOCH,
            error: None,
        });
        let snapshot = Arc::new(Snapshot::build(&zone, Arc::new(inventory), None, 7));
        let index = Arc::new(TaskIndex::build(&snapshot));
        index.records(&snapshot);
        let query = Query::parse(Some(query)).unwrap();
        let page = index.select(&snapshot, &query);
        let mut render = Render::new(snapshot, index, page, query.limit, SystemTime::now());
        let mut out = Vec::new();
        let mut chunks = 0;
        while !render.is_done() {
            let before = out.len();
            render.fill(&mut out, before + chunk);
            chunks += 1;
        }
        assert!(chunks >= 1);
        serde_json::from_slice(&out)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out)))
    }

    #[test]
    fn a_page_is_one_json_document_whatever_the_chunks() {
        let whole = render_all("", 1 << 20);
        let piecemeal = render_all("", 1);
        assert_eq!(whole, piecemeal);
        assert_eq!(whole["zone"], "local.");
        assert_eq!(whole["serial"], 7);
        assert_eq!(whole["tasks_total"], 3);
        assert_eq!(whole["tasks_returned"], 3);
        assert_eq!(whole["next_cursor"], serde_json::Value::Null);
        assert_eq!(whole["clusters"][0]["name"], "prod");
        let tasks = whole["tasks"].as_array().unwrap();
        assert_eq!(tasks.len(), 3);
        assert_eq!(tasks[1]["verdict"], "stopping");
        assert_eq!(tasks[1]["served"], false);
        let records = whole["records"].as_array().unwrap();
        assert_eq!(
            records.len(),
            whole["records_returned"].as_u64().unwrap() as usize
        );
        assert!(
            records
                .iter()
                .any(|r| r["name"] == "web.prod.local." && r["type"] == "A")
        );
        assert!(
            records.iter().all(|r| r["task_id"] != "t1"),
            "a stopping task has no record"
        );
    }

    #[test]
    fn an_empty_page_and_a_filtered_one() {
        let none = render_all("cluster=nope", 10);
        assert_eq!(none["tasks"], serde_json::json!([]));
        assert_eq!(none["records"], serde_json::json!([]));
        assert_eq!(none["tasks_matched"], 0);
        let one = render_all("limit=1&name=t2.web.local", 10);
        assert_eq!(one["tasks_matched"], 1);
        assert_eq!(one["tasks"][0]["task_id"], "t2");
        let records = one["records"].as_array().unwrap();
        assert!(!records.is_empty());
        assert!(
            records.iter().all(|r| r["name"] == "t2.web.local."),
            "{records:?}"
        );
        let paged = render_all("limit=1", 10);
        assert!(paged["next_cursor"].is_string());
    }

    #[test]
    fn with_reverse_zones_each_task_lists_its_ptr_and_is_found_by_it() {
        let zone = crate::testing::config_with(crate::config::Settings {
            reverse_zones: Some(vec!["10.0.0.0/24".into()]),
            ..Default::default()
        })
        .zone;
        // t2 and t3 are bridge tasks on two EC2 hosts, t3's outside the
        // reverse zone: its host is answered, its PTR is not served.
        let on_hosts = |inventory: &mut crate::inventory::Inventory| {
            let mut t3 = (*inventory.tasks[2]).clone();
            let t2 = Arc::make_mut(&mut inventory.tasks[2]);
            t2.network_mode = crate::inventory::NetworkMode::Bridge;
            t2.ec2_instance_id = Some("i-0abc".into());
            t3.task_id = "t3".into();
            t3.network_mode = crate::inventory::NetworkMode::Bridge;
            t3.ec2_instance_id = Some("i-0def".into());
            t3.ipv4 = vec![[10, 0, 1, 9].into()];
            inventory.tasks.push(Arc::new(t3));
        };
        let whole = render_with(zone.clone(), on_hosts, "", 1 << 20);
        let from_reverse: Vec<_> = whole["records"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| {
                r["type"] == "PTR" || r["name"].as_str().is_some_and(|n| n.contains(".hosts."))
            })
            .map(|r| format!("{} {} {} {}", r["name"], r["type"], r["data"], r["task_id"]))
            .collect();
        // t1 is stopping: no record, no PTR.
        assert_eq!(
            from_reverse,
            [
                r#""1.0.0.10.in-addr.arpa." "PTR" "t0.web.local." "t0""#,
                r#""i-0abc.hosts.local." "A" "10.0.0.3" "t2""#,
                r#""3.0.0.10.in-addr.arpa." "PTR" "i-0abc.hosts.local." "t2""#,
                r#""i-0def.hosts.local." "A" "10.0.1.9" "t3""#,
            ]
        );
        let one = render_with(zone.clone(), on_hosts, "name=3.0.0.10.IN-ADDR.ARPA", 10);
        assert_eq!(one["tasks_matched"], 1);
        assert_eq!(one["tasks"][0]["task_id"], "t2");
        assert_eq!(one["records"].as_array().unwrap().len(), 1);
        let host = render_with(zone, on_hosts, "name=i-0def.hosts.local", 10);
        assert_eq!(host["tasks"][0]["task_id"], "t3");
        assert_eq!(host["records"][0]["data"], "10.0.1.9");
        // Without reverse zones, no PTR.
        let forward = render_all("", 1 << 20);
        assert!(
            forward["records"]
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r["type"] != "PTR")
        );
    }
}
