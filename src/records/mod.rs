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
//!
//! `<service>` is the ECS service name, or the task-definition family of a
//! standalone task; a tag `ecs-dns:name` on the task (or else its service)
//! adds one more service name with every form above. `<port>` is the port
//! mapping's name, else the container port. The SRV port is the host port
//! (bridge, host) or the container port (awsvpc). Labels are normalised by
//! [`naming`]; two inputs mapping to one label are merged and reported in
//! [`RecordSet::collisions`].

pub mod naming;
pub mod serving;

use std::collections::{BTreeMap, BTreeSet};

use hickory_proto::rr::rdata::{A, AAAA, SRV};
use hickory_proto::rr::{Name, RData};
use serde::Serialize;

use crate::inventory::{Inventory, NetworkMode, Task};
pub use serving::Verdict;

/// The tag whose value adds a service name.
pub const ALIAS_TAG: &str = "ecs-dns:name";

/// The result of the records function.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RecordSet {
    /// Every record with the task it comes from; the same owner and data may
    /// appear once per task that produces it (the zone merges them).
    pub entries: Vec<Entry>,
    /// One verdict per inventory task, in inventory order.
    pub verdicts: Vec<Verdict>,
    /// Labels that more than one input maps to.
    pub collisions: Vec<Collision>,
    /// Names that could not be formed (over 255 bytes), with the reason.
    pub skipped: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub name: Name,
    pub data: RData,
    /// Index of the task in `Inventory::tasks`.
    pub task: usize,
}

/// Several different inputs that map to one label; their records are merged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Collision {
    /// What kind of name: `service`, `cluster` or `task`.
    pub kind: &'static str,
    pub label: String,
    /// The raw inputs, sorted.
    pub inputs: Vec<String>,
}

/// Rules that are settings rather than fixed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rules {
    /// Serve a service's UNHEALTHY tasks when it has no healthy one.
    pub fail_open: bool,
}

impl Default for Rules {
    fn default() -> Self {
        Rules { fail_open: true }
    }
}

/// Applies the serving and naming rules to `inventory`, under `origin`.
pub fn build(inventory: &Inventory, origin: &Name, rules: &Rules) -> RecordSet {
    let mut out = RecordSet {
        verdicts: service_verdicts(inventory, rules),
        ..RecordSet::default()
    };
    let mut seen: BTreeMap<(&'static str, String), BTreeSet<String>> = BTreeMap::new();

    for (index, task) in inventory.tasks.iter().enumerate() {
        if !out.verdicts[index].is_served() {
            continue;
        }
        match TaskNames::of(task) {
            Some(names) => {
                names.note(task, &mut seen);
                add_task(&mut out, origin, index, task, &names);
            }
            None => out.verdicts[index] = Verdict::Unnamed,
        }
    }

    out.collisions = seen
        .into_iter()
        .filter(|(_, inputs)| inputs.len() > 1)
        .map(|((kind, label), inputs)| Collision {
            kind,
            label,
            inputs: inputs.into_iter().collect(),
        })
        .collect();
    out
}

/// The verdict of every task: the task rule, then the service rules over
/// each service's tasks in one cluster.
fn service_verdicts(inventory: &Inventory, rules: &Rules) -> Vec<Verdict> {
    let mut verdicts: Vec<Verdict> = inventory.tasks.iter().map(serving::verdict).collect();
    let mut services: BTreeMap<(&str, &str), Vec<usize>> = BTreeMap::new();
    for (index, task) in inventory.tasks.iter().enumerate() {
        services
            .entry((&task.cluster, task.service_or_family()))
            .or_default()
            .push(index);
    }
    for indices in services.values() {
        let mut group: Vec<Verdict> = indices.iter().map(|&i| verdicts[i]).collect();
        let draining: Vec<bool> = indices
            .iter()
            .map(|&i| inventory.tasks[i].instance_draining)
            .collect();
        serving::apply_service_rules(&mut group, &draining, rules.fail_open);
        for (&i, v) in indices.iter().zip(group) {
            verdicts[i] = v;
        }
    }
    verdicts
}

/// The labels of one served task.
struct TaskNames {
    cluster: String,
    task: String,
    /// The service label first, then the alias if it differs.
    services: Vec<String>,
    alias_raw: Option<String>,
}

impl TaskNames {
    fn of(task: &Task) -> Option<TaskNames> {
        let cluster = naming::host_label(&task.cluster)?;
        let id = naming::host_label(task.id())?;
        let service = naming::host_label(task.service_or_family())?;
        let alias_raw = task
            .tags
            .get(ALIAS_TAG)
            .or_else(|| task.service_tags.get(ALIAS_TAG))
            .cloned();
        let mut services = vec![service];
        if let Some(alias) = alias_raw.as_deref().and_then(naming::host_label)
            && !services.contains(&alias)
        {
            services.push(alias);
        }
        Some(TaskNames {
            cluster,
            task: id,
            services,
            alias_raw,
        })
    }

    /// Records which raw input produced each label, to find collisions.
    fn note(&self, task: &Task, seen: &mut BTreeMap<(&'static str, String), BTreeSet<String>>) {
        let mut add = |kind, label: &str, raw: String| {
            seen.entry((kind, label.to_owned()))
                .or_default()
                .insert(raw);
        };
        add("cluster", &self.cluster, task.cluster.clone());
        add("task", &self.task, task.id().to_owned());
        add(
            "service",
            &self.services[0],
            task.service_or_family().to_owned(),
        );
        if let (Some(alias), Some(raw)) = (self.services.get(1), &self.alias_raw) {
            add("service", alias, format!("{raw} ({ALIAS_TAG} tag)"));
        }
    }
}

fn add_task(out: &mut RecordSet, origin: &Name, index: usize, task: &Task, names: &TaskNames) {
    let addresses: Vec<RData> = task
        .ipv4
        .iter()
        .map(|ip| RData::A(A(*ip)))
        .chain(task.ipv6.iter().map(|ip| RData::AAAA(AAAA(*ip))))
        .collect();
    let cluster = names.cluster.as_str();

    for service in &names.services {
        let service = service.as_str();
        let task_name = name(origin, &[&names.task, service], &mut out.skipped);
        for owner in [
            name(origin, &[service, cluster], &mut out.skipped),
            name(origin, &[service], &mut out.skipped),
            task_name.clone(),
        ]
        .into_iter()
        .flatten()
        {
            for data in &addresses {
                out.entries.push(Entry {
                    name: owner.clone(),
                    data: data.clone(),
                    task: index,
                });
            }
        }

        let Some(target) = task_name else { continue };
        for binding in &task.ports {
            let Some(port) = srv_port(task.network_mode, binding) else {
                continue;
            };
            let port_label = naming::port_label(binding.name.as_deref(), binding.container_port);
            let proto = format!("_{}", binding.protocol.as_str());
            let data = RData::SRV(SRV::new(0, 1, port, target.clone()));
            for owner in [
                name(origin, &[&port_label, &proto, service], &mut out.skipped),
                name(
                    origin,
                    &[&port_label, &proto, service, cluster],
                    &mut out.skipped,
                ),
            ]
            .into_iter()
            .flatten()
            {
                out.entries.push(Entry {
                    name: owner,
                    data: data.clone(),
                    task: index,
                });
            }
        }
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

/// `labels` (most specific first) under `origin`; labels are already valid.
fn name(origin: &Name, labels: &[&str], skipped: &mut Vec<String>) -> Option<Name> {
    let relative = labels.join(".");
    let built = Name::from_ascii(&relative).and_then(|n| n.append_domain(origin));
    match built {
        Ok(n) => Some(n),
        Err(e) => {
            skipped.push(format!("{relative}.{origin}: {e}"));
            None
        }
    }
}

#[cfg(test)]
mod tests;
