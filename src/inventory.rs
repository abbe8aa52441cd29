//! The inventory: facts about every ECS task a source has seen.
//!
//! Sources fill it; they never decide what is served. The records function
//! (`crate::records`) reads it and applies the naming and serving rules. Raw
//! ECS values (statuses, health) are kept as ECS reports them, so that a task
//! that is not served can still be shown with the reason.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// A short string held inline (up to 24 bytes, no allocation): statuses,
/// launch types, cluster, service and container names. A task has a dozen
/// of them, each a separate allocation as a `String` (about a quarter of a
/// task's memory).
pub type Text = compact_str::CompactString;

/// The tag whose value adds a service name (`ecs-dns:name`): set on a task
/// or its service by whoever starts it, read by the naming rules.
pub const ALIAS_TAG: &str = "ecs-dns:name";

/// Everything a source knows at one moment. Always whole: a cluster that could
/// not be refreshed keeps its last good tasks, and its [`ClusterStatus`] says
/// how old they are.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Inventory {
    /// One entry per cluster the source covers, sorted by name.
    pub clusters: Vec<ClusterStatus>,
    /// Every task seen, whatever its state. Shared: a task that did not
    /// change is the same allocation in the next inventory, so that an
    /// inventory is cheap to copy (events mode) and a publication can tell
    /// unchanged tasks by pointer.
    pub tasks: Vec<Arc<Task>>,
    /// Several sources: the names of those that have published a part
    /// (read at least once, or restored). Empty with one unnamed source.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources_read: Vec<String>,
}

impl Inventory {
    /// An inventory of `tasks` and no cluster status (tests, benches, tools).
    pub fn of_tasks(tasks: impl IntoIterator<Item = Task>) -> Inventory {
        Inventory {
            clusters: Vec::new(),
            tasks: tasks.into_iter().map(Arc::new).collect(),
            sources_read: Vec::new(),
        }
    }

    /// Tasks that repeat an earlier task's identity (its ARN, or cluster
    /// and id without one): how many, and the first such identity. A file
    /// can list a task twice; ECS never does.
    pub fn duplicates(&self) -> (usize, Option<String>) {
        // By ARN; cluster and id tell tasks without one apart.
        let mut keys: Vec<(&str, &str, &str)> = (self.tasks.iter())
            .map(|t| (t.task_arn.as_str(), t.cluster.as_str(), t.id()))
            .collect();
        keys.sort_unstable();
        let mut count = 0;
        let mut first = None;
        for pair in keys.windows(2) {
            if pair[0] == pair[1] {
                count += 1;
                let (arn, cluster, id) = pair[1];
                first.get_or_insert_with(|| match arn.is_empty() {
                    true => format!("{cluster}/{id}"),
                    false => arn.to_owned(),
                });
            }
        }
        (count, first)
    }
}

/// How fresh one cluster's part of the inventory is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClusterStatus {
    /// The source that reads the cluster (see [`Task::source`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub name: String,
    /// When this cluster's tasks were last read successfully.
    #[serde(with = "humantime_serde")]
    pub refreshed_at: SystemTime,
    /// Why the latest refresh of this cluster failed, if it did; the tasks are
    /// then those of `refreshed_at`.
    pub error: Option<String>,
}

/// One ECS task as the source saw it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Task {
    /// The configured source (`[[sources]]` `name`) that read the task: a
    /// host-name label that names the task's cluster apart from a cluster
    /// of the same name elsewhere (`<service>.<cluster>.<source>.Z`).
    /// `None` with a single unnamed source, as before several existed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<Text>,
    pub cluster: Text,
    /// Service name (from the task's `group`, `service:NAME`); `None` for a
    /// standalone task.
    pub service: Option<Text>,
    /// Task-definition family: the name of a standalone task.
    pub family: Text,
    pub task_arn: String,
    pub task_id: String,
    pub task_definition_arn: String,
    /// `EC2`, `FARGATE` or `EXTERNAL`, as ECS reports it.
    pub launch_type: Text,
    pub network_mode: NetworkMode,
    /// ECS `lastStatus`: `PROVISIONING`, `PENDING`, `RUNNING`, `STOPPED`, ...
    pub last_status: Text,
    /// ECS `desiredStatus`.
    pub desired_status: Text,
    /// ECS `healthStatus`: `HEALTHY`, `UNHEALTHY` or `UNKNOWN`.
    pub health_status: Text,
    /// Whether an essential container of the task definition defines a health
    /// check (then only a HEALTHY task can take traffic).
    pub has_health_check: bool,
    pub container_instance_arn: Option<String>,
    pub ec2_instance_id: Option<Text>,
    /// Whether the container instance is DRAINING.
    pub instance_draining: bool,
    pub eni_id: Option<Text>,
    /// Addresses the task is reached at: the ENI's (awsvpc) or the EC2
    /// instance's (bridge, host).
    pub ipv4: Vec<Ipv4Addr>,
    pub ipv6: Vec<Ipv6Addr>,
    pub ports: Vec<PortBinding>,
    /// Tags of the task.
    pub tags: BTreeMap<String, String>,
    /// Tags of the task's service (only those the records rules use).
    pub service_tags: BTreeMap<String, String>,
}

/// Docker network mode of a task.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    #[default]
    Bridge,
    Host,
    Awsvpc,
    None,
}

/// One port of one container.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortBinding {
    pub container_name: Text,
    pub container_port: u16,
    /// The port on the host (bridge, host); `None` while ECS has not bound it
    /// yet, and for awsvpc tasks, which are reached on the container port.
    #[serde(default)]
    pub host_port: Option<u16>,
    #[serde(default)]
    pub protocol: Protocol,
    /// The port mapping's name in the task definition, if it has one.
    #[serde(default)]
    pub name: Option<Text>,
}

#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

impl Task {
    /// The name the task is served under before normalising: its service, or
    /// its family when it was started on its own.
    pub fn service_or_family(&self) -> &str {
        self.service.as_deref().unwrap_or(&self.family)
    }

    /// The task id, from the field or the last part of the ARN.
    pub fn id(&self) -> &str {
        if self.task_id.is_empty() {
            self.task_arn.rsplit('/').next().unwrap_or_default()
        } else {
            &self.task_id
        }
    }
}
