//! Listings of tasks: the one filter-and-cursor scheme of every endpoint
//! that lists tasks (`/records` today; a status page's `/api/tasks` would
//! take the same parameters and the same cursors).
//!
//! Parameters, each optional, an empty value counting as absent:
//! - filters, all given must match: `cluster`, `service` (exact),
//!   `task` (the id or the whole ARN), `verdict` (`served`, `starting`, …),
//!   `name` (a DNS name, any case, final dot optional: the tasks with a
//!   record there);
//! - `limit`: tasks per page, [`DEFAULT_LIMIT`] unless given, at most
//!   [`MAX_LIMIT`] (more is an error, not clamped);
//! - `cursor`: a page's `next_cursor`, to get the next page.
//!
//! Tasks come in the order of their ARN, and a cursor names the last task
//! returned, not a position: a walk started before a new snapshot and ended
//! after it returns each task present throughout exactly once (tasks that
//! come or go meanwhile may or may not appear). Cursors are opaque to
//! clients.
//!
//! What a listing needs from a snapshot beyond the snapshot itself (the
//! records of each task, the order) is a [`TaskIndex`], built once per
//! snapshot, off the async threads, by the first request that needs it
//! ([`IndexCache`]).

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use base64::Engine;
use hickory_proto::rr::Name;

use crate::records::{Data, Entry, RecordSet, Verdict, reverse};
use crate::wire::name_table::{self, NameId};
use crate::zone::Snapshot;

/// Tasks per page when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 1000;
/// The largest `limit`.
pub const MAX_LIMIT: usize = 10_000;

/// What a listing request asks for.
#[derive(Clone, Debug, PartialEq)]
pub struct Query {
    pub filter: Filter,
    pub limit: usize,
    /// Continue after this task.
    pub cursor: Option<Cursor>,
}

/// The filters of a listing; `None`: any.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Filter {
    pub cluster: Option<String>,
    pub service: Option<String>,
    /// A task id or ARN.
    pub task: Option<String>,
    pub verdict: Option<Verdict>,
    /// A record owner, as lower-case wire format.
    pub name: Option<Vec<u8>>,
}

/// A parameter that cannot be used: answered 400 with this text.
#[derive(Debug, PartialEq, thiserror::Error)]
#[error("{parameter}: {reason}")]
pub struct BadQuery {
    pub parameter: String,
    pub reason: String,
}

pub fn bad(parameter: &str, reason: impl ToString) -> BadQuery {
    BadQuery {
        parameter: parameter.to_owned(),
        reason: reason.to_string(),
    }
}

impl Query {
    /// Parses a request's query string (`None`: no `?`). Unknown or repeated
    /// parameters are errors, so that a typo does not list everything.
    pub fn parse(raw: Option<&str>) -> Result<Query, BadQuery> {
        Query::parse_with(raw, DEFAULT_LIMIT, MAX_LIMIT)
    }

    /// [`Query::parse`] with another page size and largest `limit`.
    pub fn parse_with(
        raw: Option<&str>,
        default_limit: usize,
        max_limit: usize,
    ) -> Result<Query, BadQuery> {
        let mut query = Query {
            filter: Filter::default(),
            limit: default_limit,
            cursor: None,
        };
        let mut seen: Vec<String> = Vec::new();
        for (key, value) in pairs(raw)? {
            if seen.contains(&key) {
                return Err(bad(&key, "given more than once"));
            }
            seen.push(key.clone());
            if value.is_empty() {
                // `?cluster=&service=web`: a form's empty field is no filter.
                if !KNOWN.contains(&key.as_str()) {
                    return Err(bad(&key, unknown_reason()));
                }
                continue;
            }
            let filter = &mut query.filter;
            match key.as_str() {
                "cluster" => filter.cluster = Some(value),
                "service" => filter.service = Some(value),
                "task" => filter.task = Some(value),
                "verdict" => {
                    filter.verdict = Some(parse_verdict(&value).ok_or_else(|| {
                        bad(
                            "verdict",
                            format!("unknown verdict {value:?}; one of {}", verdict_names()),
                        )
                    })?);
                }
                "name" => filter.name = Some(parse_name(&value).map_err(|r| bad("name", r))?),
                "limit" => {
                    let limit: usize = value
                        .parse()
                        .map_err(|_| bad("limit", format!("{value:?} is not a number")))?;
                    if !(1..=max_limit).contains(&limit) {
                        return Err(bad(
                            "limit",
                            format!("{limit} is out of range: 1 to {max_limit}"),
                        ));
                    }
                    query.limit = limit;
                }
                "cursor" => query.cursor = Some(Cursor::decode(&value)?),
                _ => return Err(bad(&key, unknown_reason())),
            }
        }
        Ok(query)
    }
}

/// A query string's `key=value` pairs, decoded, in order.
pub fn pairs(raw: Option<&str>) -> Result<Vec<(String, String)>, BadQuery> {
    let mut out = Vec::new();
    for pair in raw.unwrap_or_default().split('&') {
        if pair.is_empty() {
            continue;
        }
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = percent_decode(key).map_err(|reason| bad("query", reason))?;
        let value = percent_decode(value).map_err(|reason| bad(&key, reason))?;
        out.push((key, value));
    }
    Ok(out)
}

/// The parameters a listing takes.
const KNOWN: [&str; 7] = [
    "cluster", "service", "task", "verdict", "name", "limit", "cursor",
];

fn unknown_reason() -> String {
    format!("unknown parameter; known: {}", KNOWN.join(", "))
}

/// `%XX` and `+` decoded (`application/x-www-form-urlencoded`), as UTF-8.
fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or("a % not followed by two hex digits")?;
                out.push(hex);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| "not UTF-8".to_owned())
}

/// A DNS name as the records' owner table holds it: lower-case wire format.
fn parse_name(text: &str) -> Result<Vec<u8>, String> {
    let mut name = Name::from_ascii(text.trim()).map_err(|e| format!("not a DNS name: {e}"))?;
    name.set_fqdn(true);
    Ok(name_table::wire_of(&name))
}

/// Every verdict. [`verdict_name`] matches on each, so a new one fails to
/// compile there: add it here too. The metrics use the same list.
pub const VERDICTS: [Verdict; 9] = [
    Verdict::Served,
    Verdict::Pending,
    Verdict::Starting,
    Verdict::Unhealthy,
    Verdict::Stopping,
    Verdict::NoAddress,
    Verdict::Draining,
    Verdict::FailingOpen,
    Verdict::Unnamed,
];

/// [`verdict_name`] of each of [`VERDICTS`], in order (the metrics' label
/// values).
pub const VERDICT_NAMES: [&str; VERDICTS.len()] = {
    let mut names = [""; VERDICTS.len()];
    let mut i = 0;
    while i < VERDICTS.len() {
        names[i] = verdict_name(VERDICTS[i]);
        i += 1;
    }
    names
};

/// The name a listing (and a metric label) shows for `verdict`: its serde
/// name.
pub const fn verdict_name(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Served => "served",
        Verdict::Pending => "pending",
        Verdict::Starting => "starting",
        Verdict::Unhealthy => "unhealthy",
        Verdict::Stopping => "stopping",
        Verdict::NoAddress => "no_address",
        Verdict::Draining => "draining",
        Verdict::FailingOpen => "failing_open",
        Verdict::Unnamed => "unnamed",
    }
}

fn parse_verdict(text: &str) -> Option<Verdict> {
    VERDICTS.into_iter().find(|v| verdict_name(*v) == text)
}

fn verdict_names() -> String {
    VERDICTS.map(verdict_name).join(", ")
}

/// Where a page ended: the last task returned, by its ARN and its rank
/// among the tasks of that same ARN (an inventory file may repeat one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    arn: String,
    rank: usize,
}

/// Marks this scheme's cursors, so that another can be told apart.
const CURSOR_TAG: &str = "t1";

impl Cursor {
    /// The text clients get, and give back as `cursor`.
    pub fn encode(&self) -> String {
        let plain = format!("{CURSOR_TAG}:{}:{}", self.rank, self.arn);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(plain)
    }

    pub fn decode(text: &str) -> Result<Cursor, BadQuery> {
        let not_ours = || bad("cursor", "not a cursor this server gave out");
        let plain = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text.trim())
            .map_err(|_| not_ours())?;
        let plain = String::from_utf8(plain).map_err(|_| not_ours())?;
        let mut parts = plain.splitn(3, ':');
        let (Some(CURSOR_TAG), Some(rank), Some(arn)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(not_ours());
        };
        Ok(Cursor {
            arn: arn.to_owned(),
            rank: rank.parse().map_err(|_| not_ours())?,
        })
    }
}

/// What listings need from one snapshot besides the snapshot: the tasks'
/// order and, for those that show records or filter by name, the records
/// function's output with each record's task. Built once per snapshot
/// ([`IndexCache`]), never per request: the order is one pass when the
/// tasks are in ARN order, as the publisher leaves them (else a sort, tens
/// of milliseconds at 100 000 tasks), the records a rebuild of the record set
/// (a few hundred), made only when a request needs them
/// ([`TaskIndex::records`]).
pub struct TaskIndex {
    /// Task positions in the inventory, by ARN (then position).
    order: Vec<usize>,
    records: std::sync::OnceLock<TaskRecords>,
}

/// The records of each task.
pub struct TaskRecords {
    /// The record set the snapshot was built from.
    pub set: RecordSet,
    /// `set.entries[starts[i]..starts[i + 1]]`: the records of task `i`.
    starts: Vec<usize>,
}

impl TaskIndex {
    /// The order only: the records are built on first use.
    pub fn build(snapshot: &Snapshot) -> TaskIndex {
        let tasks = &snapshot.inventory.tasks;
        let mut order: Vec<usize> = (0..tasks.len()).collect();
        // The publisher puts tasks in ARN order: then this is one pass.
        if !tasks.is_sorted_by(|a, b| a.task_arn <= b.task_arn) {
            order.sort_by(|&a, &b| tasks[a].task_arn.cmp(&tasks[b].task_arn).then(a.cmp(&b)));
        }
        TaskIndex {
            order,
            records: std::sync::OnceLock::new(),
        }
    }

    /// The records of every task, built now if they were not (blocking: call
    /// it off the async threads the first time, see [`IndexCache::records`]).
    pub fn records(&self, snapshot: &Snapshot) -> &TaskRecords {
        self.records.get_or_init(|| {
            let tasks = &snapshot.inventory.tasks;
            let mut set = snapshot.record_set();
            set.entries.retain(|e| e.task < tasks.len());
            // With reverse zones, the PTR records of each task's addresses,
            // and the address records of the EC2 hosts they point at.
            for pointer in snapshot.task_pointers() {
                let target = set.names.intern(pointer.target);
                let task = pointer.task;
                if pointer.host {
                    let data = match pointer.address {
                        IpAddr::V4(v4) => Data::A(v4),
                        IpAddr::V6(v6) => Data::Aaaa(v6),
                    };
                    set.entries.push(Entry {
                        owner: target,
                        data,
                        task,
                    });
                }
                if pointer.ptr_served {
                    let owner = set.names.intern(&reverse::reverse_wire(pointer.address));
                    let data = Data::Ptr(target);
                    set.entries.push(Entry { owner, data, task });
                }
            }
            // The records function makes them task by task (then this is a
            // no-op but for the reverse zones' records, which it puts after
            // their task's own).
            set.entries.sort_by_key(|e| e.task);
            let mut starts = vec![0; tasks.len() + 1];
            for entry in &set.entries {
                starts[entry.task + 1] += 1;
            }
            for i in 1..starts.len() {
                starts[i] += starts[i - 1];
            }
            TaskRecords { set, starts }
        })
    }

    /// The records, if they were built.
    pub fn records_built(&self) -> Option<&TaskRecords> {
        self.records.get()
    }
}

impl TaskRecords {
    /// The records made from task `task`.
    pub fn records_of(&self, task: usize) -> &[Entry] {
        match (self.starts.get(task), self.starts.get(task + 1)) {
            (Some(&start), Some(&end)) => &self.set.entries[start..end],
            _ => &[],
        }
    }

    /// The id of `filter.name` in the record set: `Some(None)` when a name
    /// is asked for that has no record (nothing matches).
    fn name_id(&self, filter: &Filter) -> Option<Option<NameId>> {
        filter.name.as_ref().map(|wire| self.set.names.get(wire))
    }
}

impl TaskIndex {
    /// The page `query` asks for, from `snapshot` (the one this index was
    /// built from). A `name` filter needs the records: built here if they
    /// were not. The page counts its records when they are built.
    pub fn select(&self, snapshot: &Snapshot, query: &Query) -> Page {
        let tasks = &snapshot.inventory.tasks;
        let verdicts = &snapshot.report.verdicts;
        let filter = &query.filter;
        let records = match filter.name {
            Some(_) => Some(self.records(snapshot)),
            None => self.records_built(),
        };
        let name = records.and_then(|r| r.name_id(filter));
        let matches = |i: usize| {
            let task = &tasks[i];
            filter.cluster.as_ref().is_none_or(|c| task.cluster == *c)
                && filter
                    .service
                    .as_ref()
                    .is_none_or(|s| task.service.as_deref() == Some(s))
                && filter
                    .task
                    .as_ref()
                    .is_none_or(|t| task.id() == t || task.task_arn == *t)
                && filter
                    .verdict
                    .is_none_or(|v| verdicts.get(i).copied() == Some(v))
                && name.is_none_or(|id| {
                    id.is_some_and(|id| {
                        records.is_some_and(|r| r.records_of(i).iter().any(|e| e.owner == id))
                    })
                })
        };
        // Where the page starts: after the cursor's task, wherever the
        // tasks of its ARN now are.
        let arn_of = |pos: usize| tasks[self.order[pos]].task_arn.as_str();
        let first_of = |arn: &str| {
            self.order
                .partition_point(|&i| tasks[i].task_arn.as_str() < arn)
        };
        let start = match &query.cursor {
            None => 0,
            Some(cursor) => {
                let first = first_of(&cursor.arn);
                let end = self
                    .order
                    .partition_point(|&i| tasks[i].task_arn.as_str() <= cursor.arn.as_str());
                (first + cursor.rank + 1).min(end)
            }
        };
        let mut page = Page {
            tasks: Vec::new(),
            records: 0,
            matched: 0,
            total: tasks.len(),
            next_cursor: None,
            name,
        };
        let mut more = false;
        for (pos, &i) in self.order.iter().enumerate() {
            if !matches(i) {
                continue;
            }
            page.matched += 1;
            if pos < start {
                continue;
            }
            if page.tasks.len() == query.limit {
                more = true;
                continue;
            }
            page.tasks.push(i);
            if let Some(records) = records {
                page.records += page.records_of(records, i).count();
            }
            if page.tasks.len() == query.limit {
                let arn = arn_of(pos);
                page.next_cursor = Some(Cursor {
                    arn: arn.to_owned(),
                    rank: pos - first_of(arn),
                });
            }
        }
        if !more {
            page.next_cursor = None;
        }
        page
    }
}

/// One page of a listing: task positions in the inventory, in order.
#[derive(Debug)]
pub struct Page {
    pub tasks: Vec<usize>,
    /// Records of those tasks (with a `name` filter, of that name only).
    pub records: usize,
    /// Tasks matching the filters, in every page.
    pub matched: usize,
    /// Tasks in the snapshot.
    pub total: usize,
    /// Where the next page starts; `None` on the last page.
    pub next_cursor: Option<Cursor>,
    name: Option<Option<NameId>>,
}

impl Page {
    /// The records of `task` this page shows: all of them, or those named
    /// as the `name` filter asks.
    pub fn records_of<'a>(
        &self,
        records: &'a TaskRecords,
        task: usize,
    ) -> impl Iterator<Item = &'a Entry> + use<'a> {
        let name = self.name;
        records
            .records_of(task)
            .iter()
            .filter(move |e| name.is_none_or(|id| Some(e.owner) == id))
    }
}

/// The index of the snapshot listed last, kept until another snapshot is
/// listed. Concurrent requests for one snapshot share one build.
#[derive(Clone, Default)]
pub struct IndexCache {
    current: Arc<Mutex<Option<Cached>>>,
}

struct Cached {
    /// Which snapshot (a weak pointer: the cache does not keep an old
    /// snapshot alive, and its address cannot be reused while this exists).
    snapshot: std::sync::Weak<Snapshot>,
    index: Arc<tokio::sync::OnceCell<Arc<TaskIndex>>>,
}

impl IndexCache {
    /// The index of `snapshot`: the cached one, or built now on a blocking
    /// thread. `Err` only if the build panicked.
    pub async fn index(&self, snapshot: &Arc<Snapshot>) -> Result<Arc<TaskIndex>, String> {
        let cell = {
            let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
            match &*current {
                Some(cached) if std::ptr::eq(cached.snapshot.as_ptr(), Arc::as_ptr(snapshot)) => {
                    cached.index.clone()
                }
                _ => {
                    let index = Arc::new(tokio::sync::OnceCell::new());
                    *current = Some(Cached {
                        snapshot: Arc::downgrade(snapshot),
                        index: index.clone(),
                    });
                    index
                }
            }
        };
        let index = cell
            .get_or_try_init(|| {
                let snapshot = snapshot.clone();
                async move {
                    tokio::task::spawn_blocking(move || Arc::new(TaskIndex::build(&snapshot)))
                        .await
                        .map_err(|e| format!("the task index could not be built: {e}"))
                }
            })
            .await?;
        Ok(index.clone())
    }

    /// [`IndexCache::index`] with the records built (off the async threads).
    pub async fn with_records(&self, snapshot: &Arc<Snapshot>) -> Result<Arc<TaskIndex>, String> {
        let index = self.index(snapshot).await?;
        if index.records_built().is_some() {
            return Ok(index);
        }
        let (built, snapshot) = (index.clone(), snapshot.clone());
        tokio::task::spawn_blocking(move || {
            built.records(&snapshot);
        })
        .await
        .map_err(|e| format!("the records of the task index could not be built: {e}"))?;
        Ok(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::Task;

    /// Tasks `c{i%2}` × service `s{i%3}`, ids `t{i}`, ARNs in reverse
    /// order of position, one of them twice.
    fn snapshot(n: usize) -> Arc<Snapshot> {
        let mut tasks: Vec<Task> = (0..n)
            .map(|i| Task {
                cluster: format!("c{}", i % 2).into(),
                service: Some(format!("s{}", i % 3).into()),
                task_arn: format!("arn:aws:ecs:r:1:task/c{}/{:04}", i % 2, n - i),
                task_id: format!("t{i}"),
                last_status: "RUNNING".into(),
                desired_status: if i % 5 == 0 { "STOPPED" } else { "RUNNING" }.into(),
                ipv4: vec![std::net::Ipv4Addr::new(
                    10,
                    0,
                    (i / 250) as u8,
                    (i % 250) as u8,
                )],
                ..Task::default()
            })
            .collect();
        if let Some(first) = tasks.first().cloned() {
            tasks.push(first);
        }
        let zone = crate::testing::config().zone;
        Arc::new(Snapshot::of_tasks(&zone, tasks, 1))
    }

    fn walk(snapshot: &Snapshot, index: &TaskIndex, query: &str) -> (Vec<usize>, usize) {
        let mut query = Query::parse(Some(query)).unwrap();
        let mut all = Vec::new();
        let mut pages = 0;
        loop {
            let page = index.select(snapshot, &query);
            pages += 1;
            all.extend(&page.tasks);
            match page.next_cursor {
                Some(cursor) => {
                    let text = cursor.encode();
                    query.cursor = Some(Cursor::decode(&text).unwrap());
                }
                None => return (all, pages),
            }
        }
    }

    #[test]
    fn a_walk_returns_every_task_once_in_arn_order() {
        let snapshot = snapshot(103);
        let index = TaskIndex::build(&snapshot);
        let (all, pages) = walk(&snapshot, &index, "limit=10");
        assert_eq!(pages, 11);
        let mut sorted = all.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..104).collect::<Vec<_>>(), "each once");
        let tasks = &snapshot.inventory.tasks;
        assert!(
            all.windows(2)
                .all(|w| tasks[w[0]].task_arn <= tasks[w[1]].task_arn)
        );
        // An exact multiple of the limit: the last page is full and says so.
        let (all, pages) = walk(&snapshot, &index, "limit=8");
        assert_eq!((all.len(), pages), (104, 13));
    }

    #[test]
    fn filters_select_and_count() {
        let snapshot = snapshot(60);
        let index = TaskIndex::build(&snapshot);
        let tasks = &snapshot.inventory.tasks;
        let select = |q: &str| index.select(&snapshot, &Query::parse(Some(q)).unwrap());
        let page = select("cluster=c1&service=s2&limit=3");
        assert!(
            index.records_built().is_none(),
            "no name filter: no records"
        );
        assert_eq!(page.records, 0, "not counted without records");
        assert_eq!(page.matched, 10, "30 in c1, a third of them s2");
        assert_eq!(page.tasks.len(), 3);
        assert!(page.next_cursor.is_some());
        assert!(
            page.tasks
                .iter()
                .all(|&i| tasks[i].cluster == "c1" && tasks[i].service.as_deref() == Some("s2"))
        );
        let stopping = select("verdict=stopping");
        assert_eq!(stopping.matched, 13, "every fifth, and the repeated first");
        assert_eq!(select("verdict=served").matched, 61 - 13);
        // Snapshots keep their tasks in ARN order.
        let seven = tasks.iter().position(|t| t.task_id == "t7").unwrap();
        let one = select("task=t7");
        assert_eq!(one.tasks, [seven]);
        assert_eq!(
            select(&format!("task={}", tasks[seven].task_arn)).tasks,
            [seven]
        );
        // By name: the tasks with a record there, and only those records.
        let by_name = select("name=T7.S1.Local");
        assert_eq!(by_name.tasks, [seven]);
        assert!(by_name.records >= 1);
        let records = index.records_built().expect("a name filter builds them");
        let shown: Vec<_> = by_name.records_of(records, seven).collect();
        assert!(
            shown
                .iter()
                .all(|e| records.set.names.wire(e.owner) == parse_name("t7.s1.local.").unwrap())
        );
        assert!(select("name=s1.c1.local").matched > 1);
        assert_eq!(select("name=nothing.local").matched, 0);
        assert_eq!(select("cluster=nope").matched, 0);
        // Empty values are no filter.
        assert_eq!(select("cluster=&service=&verdict=&cursor=").matched, 61);
    }

    #[test]
    fn a_cursor_survives_a_new_snapshot() {
        let old = snapshot(40);
        let old_index = TaskIndex::build(&old);
        let first = old_index.select(&old, &Query::parse(Some("limit=10")).unwrap());
        let cursor = first.next_cursor.clone().unwrap();
        // The next snapshot lost the task the page ended on, and others.
        let mut inventory = (*old.inventory).clone();
        let last_arn = old.inventory.tasks[*first.tasks.last().unwrap()]
            .task_arn
            .clone();
        inventory
            .tasks
            .retain(|t| t.task_arn != last_arn && t.task_id != "t3");
        let zone = crate::testing::config().zone;
        let new = Snapshot::of_tasks(&zone, inventory.tasks.iter().map(|t| (**t).clone()), 2);
        let index = TaskIndex::build(&new);
        let query = Query {
            cursor: Some(cursor),
            ..Query::parse(Some("limit=1000")).unwrap()
        };
        let rest = index.select(&new, &query);
        let returned: Vec<&str> = first
            .tasks
            .iter()
            .map(|&i| old.inventory.tasks[i].task_arn.as_str())
            .chain(
                rest.tasks
                    .iter()
                    .map(|&i| new.inventory.tasks[i].task_arn.as_str()),
            )
            .collect();
        // Each task present throughout once (the repeated ARN twice, as
        // the inventory has it twice).
        let count =
            |arns: &mut dyn Iterator<Item = &str>, arn: &str| arns.filter(|a| *a == arn).count();
        for task in &new.inventory.tasks {
            let arn = task.task_arn.as_str();
            let want = count(
                &mut new.inventory.tasks.iter().map(|t| t.task_arn.as_str()),
                arn,
            );
            assert_eq!(count(&mut returned.iter().copied(), arn), want, "{arn}");
        }
    }

    #[test]
    fn bad_parameters_are_named() {
        for (query, parameter) in [
            ("limit=10001", "limit"),
            ("limit=0", "limit"),
            ("limit=ten", "limit"),
            ("verdict=fine", "verdict"),
            ("cursor=bm9wZQ", "cursor"),
            ("cursor=%%%", "cursor"),
            ("name=a..b", "name"),
            ("servce=web", "servce"),
            ("cluster=a&cluster=b", "cluster"),
        ] {
            let error = Query::parse(Some(query)).unwrap_err();
            assert_eq!(error.parameter, parameter, "{query}: {error}");
        }
        let query =
            Query::parse(Some("limit=10000&service=my%20svc+x&verdict=no_address")).unwrap();
        assert_eq!(query.limit, MAX_LIMIT);
        assert_eq!(query.filter.service.as_deref(), Some("my svc x"));
        assert_eq!(query.filter.verdict, Some(Verdict::NoAddress));
        assert_eq!(Query::parse(None).unwrap().limit, DEFAULT_LIMIT);
    }

    #[test]
    fn verdict_names_are_their_serde_names() {
        for verdict in VERDICTS {
            assert_eq!(
                serde_json::to_value(verdict).unwrap(),
                verdict_name(verdict),
                "{verdict:?}"
            );
            assert_eq!(parse_verdict(verdict_name(verdict)), Some(verdict));
        }
    }

    #[tokio::test]
    async fn the_index_is_built_once_per_snapshot() {
        let cache = IndexCache::default();
        let one = snapshot(10);
        let a = cache.index(&one).await.unwrap();
        let b = cache.index(&one).await.unwrap();
        assert!(Arc::ptr_eq(&a, &b), "the same snapshot: the same index");
        let two = snapshot(10);
        let c = cache.index(&two).await.unwrap();
        assert!(!Arc::ptr_eq(&a, &c), "another snapshot: another index");
        // Concurrent requests for a new snapshot share one build.
        let three = snapshot(10);
        let (d, e) = tokio::join!(cache.index(&three), cache.index(&three));
        assert!(Arc::ptr_eq(&d.unwrap(), &e.unwrap()));
    }
}
