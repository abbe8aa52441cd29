//! The records function: inventory → record set. Pure: no I/O, no clock.
//!
//! Naming (zone `Z`):
//!
//! | owner | type | what |
//! |---|---|---|
//! | `<service>.<cluster>.Z` | A, AAAA | every served task of the service in that cluster |
//! | `<service>.Z` | A, AAAA | the service across all clusters |
//! | `<task-id>.<service>.Z` | A, AAAA | one task; the SRV targets |
//! | `_<port>._<proto>.<service>.Z` | SRV | one per served task and port (0 1 port target) |
//! | `_<port>._<proto>.<service>.<cluster>.Z` | SRV | the same, one cluster |
//! | `<service>.<cluster>.<source>.Z` | A, AAAA | one cluster of one named source (`[[sources]]`) |
//! | `_<port>._<proto>.<service>.<cluster>.<source>.Z` | SRV | the same |
//!
//! With several sources, a service or cluster name seen in several of them
//! answers all their served tasks (a cluster set); the name with the source
//! label is the one that is always one account's and region's cluster.
//! `<service>` is the ECS service name, or the task-definition family of a
//! standalone task; a tag `ecs-dns:name` on the task (or else its service)
//! adds one more service name with every form above. `<port>` is the port
//! mapping's name, else the container port. The SRV port is the host port
//! (bridge, host) or the container port (awsvpc). Labels are normalised by
//! [`labels`]; two inputs mapping to one label are merged and reported in
//! [`RecordSet::collisions`].

mod delta;
pub mod labels;
pub mod reverse;
pub mod serving;
mod task_labels;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::{Ipv4Addr, Ipv6Addr};

use hickory_proto::rr::rdata::{A, AAAA, NS, PTR, SRV};
use hickory_proto::rr::{Name, RData, RecordType};
use serde::Serialize;

pub use crate::config::Rules;
use crate::inventory::{ALIAS_TAG, Inventory, NetworkMode, Protocol, Task};
use crate::wire::name_table::{self, NameId, NameTable};
pub use delta::{Delta, delta};
pub use serving::Verdict;
pub use task_labels::TaskLabels;

/// The result of the records function.
#[derive(Clone, Debug, Default)]
pub struct RecordSet {
    /// Every owner and SRV target name, each once.
    pub names: NameTable,
    /// Every record with the task it comes from; the same owner and data may
    /// appear once per task that produces it (the zone merges them).
    pub entries: Vec<Entry>,
    pub report: Report,
    /// The service labels of each served task, for the next publication.
    pub task_labels: TaskLabels,
}

/// What the rules decided besides the records: for logs, metrics and
/// `/records`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    /// One verdict per inventory task, in inventory order.
    pub verdicts: Vec<Verdict>,
    /// Labels that more than one input maps to.
    pub collisions: Vec<Collision>,
    /// Names that could not be formed (over 255 bytes), with the reason.
    pub skipped: Vec<Skipped>,
}

/// A name that could not be formed.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Skipped {
    /// The service label it would have been under (a publication that
    /// rebuilds one service label replaces what was found under it).
    pub under: String,
    pub reason: String,
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    pub owner: NameId,
    pub data: Data,
    /// Index of the task in `Inventory::tasks`.
    pub task: usize,
}

/// Record data, with names as ids in the set's [`NameTable`]: 20 bytes
/// where a hickory `RData` is several times that, plus its names' heap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Data {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Srv {
        priority: u16,
        weight: u16,
        port: u16,
        target: NameId,
    },
    /// An apex NS record (the zone adds these from its settings).
    Ns(NameId),
    /// A reverse zone's pointer to a task's or host's name (see [`reverse`]).
    Ptr(NameId),
    /// The zone's SOA, whose fields the snapshot holds.
    Soa,
}

impl Data {
    pub fn rtype(&self) -> RecordType {
        match self {
            Data::A(_) => RecordType::A,
            Data::Aaaa(_) => RecordType::AAAA,
            Data::Srv { .. } => RecordType::SRV,
            Data::Ns(_) => RecordType::NS,
            Data::Ptr(_) => RecordType::PTR,
            Data::Soa => RecordType::SOA,
        }
    }

    /// The data as hickory `RData`; `None` for the SOA, which only the
    /// snapshot can render.
    pub fn to_rdata(&self, names: &NameTable) -> Option<RData> {
        Some(match *self {
            Data::A(ip) => RData::A(A(ip)),
            Data::Aaaa(ip) => RData::AAAA(AAAA(ip)),
            Data::Srv {
                priority,
                weight,
                port,
                target,
            } => RData::SRV(SRV::new(priority, weight, port, names.name(target))),
            Data::Ns(target) => RData::NS(NS(names.name(target))),
            Data::Ptr(target) => RData::PTR(PTR(names.name(target))),
            Data::Soa => return None,
        })
    }
}

impl RecordSet {
    /// The owner of `entry` as a hickory `Name`.
    pub fn owner(&self, entry: &Entry) -> Name {
        self.names.name(entry.owner)
    }

    /// The data of `entry` as hickory `RData`.
    pub fn rdata(&self, entry: &Entry) -> Option<RData> {
        entry.data.to_rdata(&self.names)
    }
}

/// Several different inputs that map to one label; their records are merged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Collision {
    /// What kind of name: `service`, `cluster` or `task`; `reserved` for a
    /// task name that is one of the zone's own (an in-zone name server),
    /// which the zone keeps and the task does not get.
    pub kind: &'static str,
    pub label: String,
    /// The raw inputs, sorted.
    pub inputs: Vec<String>,
    /// The service label the names meet under (task ids merge only when
    /// their tasks share one); empty for clusters and reserved names.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub under: String,
}

/// Applies the serving and naming rules to `inventory`, under `origin`.
pub fn build(inventory: &Inventory, origin: &Name, rules: &Rules) -> RecordSet {
    let mut verdicts = service_verdicts(inventory, rules);
    // About two names and six records per task (see the benches).
    let mut names = NameTable::with_capacity(2 * inventory.tasks.len() + 16);
    let mut task_labels = TaskLabels::unknown(inventory.tasks.len());
    let only = Only::All(&mut task_labels);
    let parts = build_parts(inventory, &verdicts, origin, only, &mut names);
    for &index in &parts.unnamed {
        verdicts[index] = Verdict::Unnamed;
    }
    let mut collisions = cluster_collisions(inventory, &verdicts);
    collisions.extend(parts.collisions);
    sort_collisions(&mut collisions);
    names.shrink_to_fit();
    RecordSet {
        names,
        entries: parts.entries,
        report: Report {
            verdicts,
            collisions,
            skipped: parts.skipped,
        },
        task_labels,
    }
}

/// Which service labels a build covers: all (noting each served task's
/// labels), or the few a publication rebuilds (see [`delta`]), found
/// through the labels noted of each task.
pub enum Only<'a> {
    All(&'a mut TaskLabels),
    Labels(&'a HashSet<String>, &'a TaskLabels),
}

impl Only<'_> {
    fn covers(&self, label: &str) -> bool {
        match self {
            Only::All(_) => true,
            Only::Labels(labels, _) => labels.contains(label),
        }
    }
}

/// The records under some service labels, and what was found under them.
pub struct Parts {
    pub entries: Vec<Entry>,
    /// Collisions of task and service labels under the labels covered.
    pub collisions: Vec<Collision>,
    pub skipped: Vec<Skipped>,
    /// Served tasks whose labels are unusable (their verdict is
    /// [`Verdict::Unnamed`]).
    pub unnamed: Vec<usize>,
}

/// The records of the served tasks (by `verdicts`) under the service
/// labels `only` covers, their names interned in `names`. Every record
/// belongs to exactly one service label (it is in every owner name), which
/// is what lets a publication rebuild the labels a change touched and keep
/// the rest.
pub fn build_parts(
    inventory: &Inventory,
    verdicts: &[Verdict],
    origin: &Name,
    mut only: Only,
    names: &mut NameTable,
) -> Parts {
    let mut out = Builder::new(origin, names);
    let mut sources = LabelSources::default();
    let mut unnamed = Vec::new();
    let wanted = match &only {
        Only::Labels(labels, known) => known.wanted(labels),
        Only::All(_) => Vec::new(),
    };
    for (index, task) in inventory.tasks.iter().enumerate() {
        if !verdicts.get(index).is_some_and(|v| v.is_served()) {
            continue;
        }
        // Forming a task's names costs more than all the rest of the scan.
        if let Only::Labels(_, known) = &only
            && known.under_none_of(index, &wanted)
        {
            continue;
        }
        let Some(task_names) = TaskNames::of(task) else {
            unnamed.push(index);
            continue;
        };
        if let Only::All(known) = &mut only {
            known.note(index, &task_names.services);
        }
        for (position, service) in task_names.services.iter().enumerate() {
            if !only.covers(service) {
                continue;
            }
            sources.note(task, &task_names, position);
            out.add_task(index, task, &task_names, service);
        }
    }
    out.skipped.sort();
    out.skipped.dedup();
    Parts {
        entries: out.entries,
        collisions: sources.collisions(),
        skipped: out.skipped,
        unnamed,
    }
}

/// Clusters of served tasks that map to one label.
pub fn cluster_collisions(inventory: &Inventory, verdicts: &[Verdict]) -> Vec<Collision> {
    let mut sources = LabelSources::default();
    let mut last: Option<&str> = None;
    for (task, verdict) in inventory.tasks.iter().zip(verdicts) {
        // Tasks come in ARN order, so a cluster's tasks are together.
        if !verdict.is_served() || last == Some(task.cluster.as_str()) {
            continue;
        }
        if let Some(label) = labels::host_label(&task.cluster) {
            sources.add(0, "", &label, (&task.cluster, false));
            last = Some(&task.cluster);
        }
    }
    sources.collisions()
}

/// The order reports list collisions in: by kind, label, then where.
pub fn sort_collisions(collisions: &mut [Collision]) {
    collisions.sort_by(|a, b| (a.kind, &a.label, &a.under).cmp(&(b.kind, &b.label, &b.under)));
}

/// The verdict of every task: the task rule, then the service rules over
/// each service's tasks in one cluster.
fn service_verdicts(inventory: &Inventory, rules: &Rules) -> Vec<Verdict> {
    let mut verdicts: Vec<Verdict> = inventory
        .tasks
        .iter()
        .map(|t| serving::verdict(t))
        .collect();
    // A cluster is one source's: clusters of one name in two accounts are
    // two clusters to the service rules.
    let mut services: HashMap<(&str, &str, &str), Vec<usize>, foldhash::fast::RandomState> =
        HashMap::default();
    for (index, task) in inventory.tasks.iter().enumerate() {
        services
            .entry((
                task.source.as_deref().unwrap_or_default(),
                &task.cluster,
                task.service_or_family(),
            ))
            .or_default()
            .push(index);
    }
    for indices in services.values() {
        apply_service_rules(inventory, &mut verdicts, indices, rules, false);
    }
    verdicts
}

/// The service rules over one service's tasks in one cluster (`indices`,
/// whose task verdicts are in `verdicts`); then, with `check_names`, a
/// served task whose labels are unusable is [`Verdict::Unnamed`] (a whole
/// build finds those as it forms the names: [`Parts::unnamed`]).
fn apply_service_rules(
    inventory: &Inventory,
    verdicts: &mut [Verdict],
    indices: &[usize],
    rules: &Rules,
    check_names: bool,
) {
    let mut group: Vec<Verdict> = indices.iter().map(|&i| verdicts[i]).collect();
    let draining: Vec<bool> = indices
        .iter()
        .map(|&i| inventory.tasks[i].instance_draining)
        .collect();
    serving::apply_service_rules(&mut group, &draining, rules.fail_open);
    for (&i, v) in indices.iter().zip(group) {
        verdicts[i] =
            match check_names && v.is_served() && TaskNames::of(&inventory.tasks[i]).is_none() {
                true => Verdict::Unnamed,
                false => v,
            };
    }
}

/// The labels of one served task.
struct TaskNames<'a> {
    /// The source's label, or empty for a single unnamed source.
    source: Cow<'a, str>,
    cluster: Cow<'a, str>,
    task: Cow<'a, str>,
    /// The service label first, then the alias if it differs.
    services: Vec<Cow<'a, str>>,
    alias_raw: Option<&'a str>,
}

impl<'a> TaskNames<'a> {
    fn of(task: &'a Task) -> Option<TaskNames<'a>> {
        let source = match task.source.as_deref() {
            Some(raw) => labels::host_label(raw)?,
            None => Cow::Borrowed(""),
        };
        let cluster = labels::host_label(&task.cluster)?;
        let id = labels::host_label(task.id())?;
        let service = labels::host_label(task.service_or_family())?;
        let alias_raw = task
            .tags
            .get(ALIAS_TAG)
            .or_else(|| task.service_tags.get(ALIAS_TAG))
            .map(String::as_str);
        let mut services = vec![service];
        if let Some(alias) = alias_raw.and_then(labels::host_label)
            && !services.contains(&alias)
        {
            services.push(alias);
        }
        Some(TaskNames {
            source,
            cluster,
            task: id,
            services,
            alias_raw,
        })
    }
}

/// Which raw input produced each label, to report labels that several
/// different inputs map to.
#[derive(Default)]
struct LabelSources<'a> {
    /// Per kind (cluster, task, service): where and label → the first input
    /// seen.
    first: [hashbrown::HashMap<String, Source<'a>, foldhash::fast::RandomState>; 3],
    /// Labels with more than one input, and all their inputs.
    more: BTreeMap<(&'static str, String, String), BTreeSet<Source<'a>>>,
    key: String,
}

/// A raw input: the name as ECS gave it, and whether it came from the alias
/// tag.
type Source<'a> = (&'a str, bool);

const KINDS: [&str; 3] = ["cluster", "task", "service"];

impl<'a> LabelSources<'a> {
    /// The task and service labels of `task` under its service label at
    /// `position` (0: the service, 1: the alias).
    fn note(&mut self, task: &'a Task, names: &TaskNames<'a>, position: usize) {
        let under: &str = &names.services[position];
        self.add(1, under, &names.task, (task.id(), false));
        match (position, names.alias_raw) {
            (0, _) => self.add(2, under, under, (task.service_or_family(), false)),
            (_, Some(raw)) => self.add(2, under, under, (raw, true)),
            (_, None) => {}
        }
    }

    fn add(&mut self, kind: usize, under: &str, label: &str, source: Source<'a>) {
        // Service labels are their own place: the label alone is the key.
        self.key.clear();
        if kind != 2 {
            self.key.push_str(under);
            self.key.push('\0');
        }
        self.key.push_str(label);
        let first = *self.first[kind]
            .entry_ref(self.key.as_str())
            .or_insert(source);
        if first != source {
            let under = if kind == 2 { "" } else { under };
            let inputs = self
                .more
                .entry((KINDS[kind], label.to_owned(), under.to_owned()))
                .or_default();
            inputs.insert(first);
            inputs.insert(source);
        }
    }

    fn collisions(self) -> Vec<Collision> {
        self.more
            .into_iter()
            .map(|((kind, label, under), inputs)| {
                let mut inputs: Vec<String> = inputs
                    .into_iter()
                    .map(|(raw, alias)| match alias {
                        true => format!("{raw} ({ALIAS_TAG} tag)"),
                        false => raw.to_owned(),
                    })
                    .collect();
                inputs.sort();
                inputs.dedup();
                Collision {
                    kind,
                    label,
                    inputs,
                    under,
                }
            })
            .collect()
    }
}

/// The record set as it is built: names are interned as they are formed.
struct Builder<'n> {
    /// The origin in lower-case wire format.
    origin: Vec<u8>,
    names: &'n mut NameTable,
    entries: Vec<Entry>,
    skipped: Vec<Skipped>,
    /// The service label names are formed under now.
    under: String,
    scratch: Vec<u8>,
}

impl Builder<'_> {
    fn new<'n>(origin: &Name, names: &'n mut NameTable) -> Builder<'n> {
        Builder {
            origin: name_table::wire_of(origin),
            names,
            entries: Vec::new(),
            skipped: Vec::new(),
            under: String::new(),
            scratch: Vec::with_capacity(name_table::MAX_WIRE),
        }
    }

    /// The records of `task` under its service label `service`.
    fn add_task(&mut self, index: usize, task: &Task, names: &TaskNames, service: &str) {
        let (cluster, source): (&str, &str) = (&names.cluster, &names.source);
        self.under.clear();
        self.under.push_str(service);
        let [by_cluster, by_service, own, by_source] =
            address_owners(&names.task, service, cluster, source);
        let task_name = self.name(&own);
        let by_source = match source.is_empty() {
            true => None,
            false => self.name(&by_source),
        };
        let owners = [
            self.name(&by_cluster),
            self.name(&by_service),
            task_name,
            by_source,
        ];
        for owner in owners.into_iter().flatten() {
            let addresses = (task.ipv4.iter().map(|ip| Data::A(*ip)))
                .chain(task.ipv6.iter().map(|ip| Data::Aaaa(*ip)));
            for data in addresses {
                self.entries.push(Entry {
                    owner,
                    data,
                    task: index,
                });
            }
        }

        let Some(target) = task_name else { return };
        for binding in &task.ports {
            let Some(port) = srv_port(task.network_mode, binding) else {
                continue;
            };
            let port_label = labels::port_label(binding.name.as_deref(), binding.container_port);
            let data = Data::Srv {
                priority: 0,
                weight: 1,
                port,
                target,
            };
            let srv = srv_owners(
                &port_label,
                proto_label(binding.protocol),
                service,
                cluster,
                source,
            );
            for labels in &srv {
                // Without a source, the last owner is the one before it.
                if source.is_empty() && !labels[4].is_empty() {
                    continue;
                }
                let Some(owner) = self.name(labels) else {
                    continue;
                };
                self.entries.push(Entry {
                    owner,
                    data,
                    task: index,
                });
            }
        }
    }

    /// The id of `labels` (valid, lower case, most specific first) under the
    /// origin; `None`, noted in `skipped`, when the name is too long.
    fn name(&mut self, labels: &Labels) -> Option<NameId> {
        self.scratch.clear();
        for label in labels.iter().filter(|l| !l.is_empty()) {
            self.scratch.push(label.len() as u8);
            self.scratch.extend_from_slice(label.as_bytes());
        }
        self.scratch.extend_from_slice(&self.origin);
        if self.scratch.len() > name_table::MAX_WIRE {
            let labels: Vec<&str> = labels.iter().copied().filter(|l| !l.is_empty()).collect();
            self.skipped.push(Skipped {
                under: self.under.clone(),
                reason: format!(
                    "{}.{}: longer than {} bytes",
                    labels.join("."),
                    name_table::Display(&self.origin),
                    name_table::MAX_WIRE
                ),
            });
            return None;
        }
        Some(self.names.intern(&self.scratch))
    }
}

/// An owner name below the origin as labels, most specific first; empty
/// strings at the end are no label (the lists have different lengths).
type Labels<'a> = [&'a str; 5];

/// The owners of a task's address records under one service label:
/// `<service>.<cluster>`, `<service>`, the task's own name
/// `<task>.<service>`, which SRV records target, and, from a named source,
/// `<service>.<cluster>.<source>` (with an empty `source`, the same name as
/// the first: callers skip it).
fn address_owners<'a>(
    task: &'a str,
    service: &'a str,
    cluster: &'a str,
    source: &'a str,
) -> [Labels<'a>; 4] {
    [
        [service, cluster, "", "", ""],
        [service, "", "", "", ""],
        [task, service, "", "", ""],
        [service, cluster, source, "", ""],
    ]
}

/// The owners of a port's SRV records under one service label: across
/// clusters, in the task's cluster, and in that cluster of its source (the
/// last has `source` as its fifth label; callers skip it when empty).
fn srv_owners<'a>(
    port: &'a str,
    proto: &'a str,
    service: &'a str,
    cluster: &'a str,
    source: &'a str,
) -> [Labels<'a>; 3] {
    [
        [port, proto, service, "", ""],
        [port, proto, service, cluster, ""],
        [port, proto, service, cluster, source],
    ]
}

/// The names `task` owns records at when it is served, whatever its verdict
/// now (so that a task that is not served can be found by the name it would
/// have), in lower-case wire format. SRV names are listed for every port,
/// bound or not. None when its labels are unusable ([`Verdict::Unnamed`]).
pub fn owner_names(task: &Task, origin: &Name) -> Vec<Vec<u8>> {
    let Some(names) = TaskNames::of(task) else {
        return Vec::new();
    };
    let mut table = NameTable::default();
    let mut out = Builder::new(origin, &mut table);
    let (cluster, source): (&str, &str) = (&names.cluster, &names.source);
    for service in &names.services {
        for labels in address_owners(&names.task, service, cluster, source) {
            out.name(&labels);
        }
        for binding in &task.ports {
            let port_label = labels::port_label(binding.name.as_deref(), binding.container_port);
            let protocol = proto_label(binding.protocol);
            for labels in srv_owners(&port_label, protocol, service, cluster, source) {
                out.name(&labels);
            }
        }
    }
    (0..table.len())
        .map(|i| table.wire(i as NameId).to_vec())
        .collect()
}

/// The tasks, served or not, whose [`owner_names`] include `wire` (lower-case
/// wire format), in inventory order: every task behind a name. A scan with
/// a cheap first test (one of the name's labels must be the task's service
/// label or alias), so that no index of names is kept for it.
pub fn tasks_named(inventory: &Inventory, origin: &Name, wire: &[u8]) -> Vec<usize> {
    let query_labels: Vec<&[u8]> = name_table::labels(wire).collect();
    let has_label = |raw: Option<&str>| {
        raw.and_then(labels::host_label)
            .is_some_and(|l| query_labels.contains(&l.as_bytes()))
    };
    inventory
        .tasks
        .iter()
        .enumerate()
        .filter(|(_, task)| {
            let alias = task
                .tags
                .get(ALIAS_TAG)
                .or_else(|| task.service_tags.get(ALIAS_TAG));
            has_label(Some(task.service_or_family())) || has_label(alias.map(String::as_str))
        })
        .filter(|(_, task)| owner_names(task, origin).iter().any(|n| n == wire))
        .map(|(i, _)| i)
        .collect()
}

/// The `_<proto>` label of an SRV owner (RFC 2782).
fn proto_label(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Tcp => "_tcp",
        Protocol::Udp => "_udp",
    }
}

/// The port clients connect to: the host port for bridge and host tasks
/// (none while ECS has not bound it), the container port for awsvpc tasks,
/// which have an address of their own.
fn srv_port(mode: NetworkMode, binding: &crate::inventory::PortBinding) -> Option<u16> {
    match mode {
        NetworkMode::Awsvpc => Some(binding.container_port),
        NetworkMode::Host => Some(binding.host_port.unwrap_or(binding.container_port)),
        NetworkMode::Bridge | NetworkMode::None => binding.host_port.filter(|p| *p != 0),
    }
}

#[cfg(test)]
mod tests;
