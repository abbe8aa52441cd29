//! ECS events as EventBridge delivers them (through SQS): the envelope and
//! the facts ecs-dns needs from an *ECS Task State Change* and an *ECS
//! Container Instance State Change*, and the [`Ledger`] that puts events
//! that arrive at least once and out of order back in order.
//!
//! Pure: no I/O, no clock (times are passed in). The queue is
//! [`super::queue`]; applying events to the inventory is
//! [`super::EcsSource::apply_events`].
//!
//! What events lack, and the rest of the source must read: the health
//! status (task events carry no `healthStatus`, and a health change alone
//! sends no event), tags, and the task definition, container instance and
//! EC2 address behind a task (the existing caches).

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use serde::Deserialize;

use super::origin::Place;

/// The `source` of every ECS event.
const ECS_SOURCE: &str = "aws.ecs";
const TASK_CHANGE: &str = "ECS Task State Change";
const INSTANCE_CHANGE: &str = "ECS Container Instance State Change";

/// The EventBridge envelope: only what is read. Unknown fields are ignored
/// (AWS adds fields without notice); the envelope's own `version` is always
/// "0" and says nothing of order.
#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "detail-type")]
    detail_type: String,
    source: String,
    #[serde(default, deserialize_with = "lenient_time")]
    time: Option<SystemTime>,
    /// The account and region the event comes from (see [`super::origin`]).
    #[serde(default)]
    account: Option<String>,
    #[serde(default)]
    region: Option<String>,
    detail: serde_json::Value,
}

/// An RFC 3339 time as AWS writes them: `2016-12-06T16:41:06Z`, with 0 to 9
/// fractional digits (`…06.8Z`, `…06.991Z`, `…06.123456789Z`), `Z` or a
/// numeric offset. `None` for anything else.
pub fn timestamp(text: &str) -> Option<SystemTime> {
    // humantime reads the fraction and `Z` (or `+00:00`); other offsets are
    // applied here.
    let offset_at = text.len().checked_sub(6)?;
    let (base, offset) = text.split_at(offset_at);
    let bytes = offset.as_bytes();
    if matches!(bytes[0], b'+' | b'-') && bytes[3] == b':' && base.len() >= 19 {
        let digits = |s: &str| {
            s.parse::<u64>()
                .ok()
                .filter(|_| s.bytes().all(|b| b.is_ascii_digit()))
        };
        let (hours, minutes) = (digits(&offset[1..3])?, digits(&offset[4..6])?);
        if hours > 23 || minutes > 59 {
            return None;
        }
        let at = humantime::parse_rfc3339_weak(&format!("{base}Z")).ok()?;
        let by = Duration::from_secs(hours * 3600 + minutes * 60);
        // `+02:00` is two hours ahead of UTC: UTC is the local time less it.
        return if bytes[0] == b'+' {
            at.checked_sub(by)
        } else {
            at.checked_add(by)
        };
    }
    humantime::parse_rfc3339_weak(text).ok()
}

/// A time field that never makes an event malformed: a value that is not
/// an RFC 3339 string is `None` (times only feed the lag histogram).
fn lenient_time<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<SystemTime>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(deserializer)?;
    Ok(value.as_ref().and_then(|v| v.as_str()).and_then(timestamp))
}

/// A task's identity across ARN formats: `CLUSTER/ID`. Old-format task
/// ARNs (`arn:aws:ecs:REGION:ACCOUNT:task/ID`) lack the cluster, which
/// then comes from the event's `clusterArn`; new-format ones
/// (`…:task/CLUSTER/ID`) name the same task.
pub fn task_key(cluster_arn_or_name: &str, task_arn: &str) -> String {
    format!(
        "{}/{}",
        super::convert::cluster_name(cluster_arn_or_name),
        task_id(task_arn)
    )
}

/// The task id: the last part of its ARN, in either format.
pub fn task_id(task_arn: &str) -> &str {
    task_arn.rsplit('/').next().unwrap_or_default()
}

/// One event, as far as ecs-dns is concerned.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    Task(TaskChange),
    Instance(InstanceChange),
    /// Another ECS event (service actions, deployments): nothing to apply.
    Other {
        detail_type: String,
    },
}

/// The facts of an *ECS Task State Change* (`detail` resembles what
/// DescribeTasks returns, without health and tags).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TaskChange {
    pub cluster_arn: String,
    pub task_arn: String,
    /// Rises with every change of the task: the order of its events.
    pub version: u64,
    pub last_status: String,
    pub desired_status: String,
    /// `service:NAME` or `family:NAME`.
    pub group: Option<String>,
    pub launch_type: Option<String>,
    pub task_definition_arn: String,
    pub container_instance_arn: Option<String>,
    #[serde(deserialize_with = "lenient_time")]
    pub updated_at: Option<SystemTime>,
    pub attachments: Vec<Attachment>,
    pub containers: Vec<Container>,
    /// When the event was emitted (the envelope's `time`), for lag.
    #[serde(skip)]
    pub time: Option<SystemTime>,
    /// The envelope's `account` and `region`.
    #[serde(skip)]
    pub account: Option<String>,
    #[serde(skip)]
    pub region: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Attachment {
    #[serde(rename = "type")]
    pub kind: String,
    pub status: String,
    pub details: Vec<NameValue>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct NameValue {
    pub name: String,
    pub value: String,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Container {
    pub name: String,
    /// The container's own status: a sidecar may be STOPPED (with its
    /// `exitCode`) in a task that runs on.
    pub last_status: Option<String>,
    pub exit_code: Option<i32>,
    pub network_bindings: Vec<NetworkBinding>,
    /// awsvpc: the ENI's addresses, as the containers report them.
    pub network_interfaces: Vec<NetworkInterface>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NetworkInterface {
    pub attachment_id: Option<String>,
    pub private_ipv4_address: Option<String>,
    pub ipv6_address: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NetworkBinding {
    pub container_port: Option<u16>,
    pub host_port: Option<u16>,
    pub protocol: Option<String>,
}

/// The facts of an *ECS Container Instance State Change*.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct InstanceChange {
    pub cluster_arn: String,
    pub container_instance_arn: String,
    pub ec2_instance_id: Option<String>,
    /// `ACTIVE`, `DRAINING`, `INACTIVE` (deregistered), ...
    pub status: String,
    /// Whether the ECS agent is connected. The agent disconnects and
    /// reconnects several times an hour as a matter of course: not a drain.
    pub agent_connected: Option<bool>,
    pub version: u64,
    #[serde(deserialize_with = "lenient_time")]
    pub updated_at: Option<SystemTime>,
    /// The envelope's `account` and `region`.
    #[serde(skip)]
    pub account: Option<String>,
    #[serde(skip)]
    pub region: Option<String>,
}

impl InstanceChange {
    /// Whether the tasks on the instance are to be withdrawn: its status
    /// is DRAINING, whatever the agent's connection says.
    pub fn is_draining(&self) -> bool {
        self.status.eq_ignore_ascii_case("DRAINING")
    }
}

impl TaskChange {
    /// The task as DescribeTasks would show it, as far as the event tells:
    /// no health (unknown until a read says), no tags. Converted by the same
    /// code as a poll's tasks.
    pub fn to_task(&self) -> aws_sdk_ecs::types::Task {
        use aws_sdk_ecs::types as ecs;
        let containers = self.containers.iter().map(|c| {
            let bindings = c.network_bindings.iter().map(|b| {
                ecs::NetworkBinding::builder()
                    .set_container_port(b.container_port.map(i32::from))
                    .set_host_port(b.host_port.map(i32::from))
                    .set_protocol(b.protocol.as_deref().map(ecs::TransportProtocol::from))
                    .build()
            });
            let interfaces = c.network_interfaces.iter().map(|i| {
                ecs::NetworkInterface::builder()
                    .set_attachment_id(i.attachment_id.clone())
                    .set_private_ipv4_address(i.private_ipv4_address.clone())
                    .set_ipv6_address(i.ipv6_address.clone())
                    .build()
            });
            ecs::Container::builder()
                .name(&c.name)
                .set_last_status(c.last_status.clone())
                .set_exit_code(c.exit_code)
                .set_network_bindings(Some(bindings.collect()))
                .set_network_interfaces(Some(interfaces.collect()))
                .build()
        });
        let attachments = self.attachments.iter().map(|a| {
            let details = a.details.iter().map(|d| {
                ecs::KeyValuePair::builder()
                    .name(&d.name)
                    .value(&d.value)
                    .build()
            });
            ecs::Attachment::builder()
                .r#type(&a.kind)
                .status(&a.status)
                .set_details(Some(details.collect()))
                .build()
        });
        ecs::Task::builder()
            .task_arn(&self.task_arn)
            .cluster_arn(&self.cluster_arn)
            .last_status(&self.last_status)
            .desired_status(&self.desired_status)
            .set_group(self.group.clone())
            .set_launch_type(self.launch_type.as_deref().map(ecs::LaunchType::from))
            .task_definition_arn(&self.task_definition_arn)
            .set_container_instance_arn(self.container_instance_arn.clone())
            .set_containers(Some(containers.collect()))
            .set_attachments(Some(attachments.collect()))
            .build()
    }

    /// Its identity across ARN formats ([`task_key`]).
    pub fn key(&self) -> String {
        task_key(&self.cluster_arn, &self.task_arn)
    }

    /// Whether ECS is done with the task (it will not run again).
    pub fn is_stopped(&self) -> bool {
        self.last_status.eq_ignore_ascii_case("STOPPED")
            || self.last_status.eq_ignore_ascii_case("DELETED")
    }
}

/// Why a message is not an event ecs-dns can use: counted and logged
/// (rate-limited), and the message deleted.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum Malformed {
    #[error("not a JSON EventBridge event: {0}")]
    NotAnEvent(String),
    #[error("an event from {0:?}, not aws.ecs")]
    NotEcs(String),
    #[error("{detail_type} without {field}")]
    Missing {
        detail_type: &'static str,
        field: &'static str,
    },
    #[error("{detail_type}: detail does not parse: {reason}")]
    BadDetail {
        detail_type: &'static str,
        reason: String,
    },
}

/// The `type` label of `ecs_dns_events_total`: a task or container
/// instance state change, another ECS event, or a message whose type could
/// not be told (not JSON, not an EventBridge event, not from ECS).
pub const EVENT_TYPES: [&str; 4] = ["task", "instance", "other", "unknown"];

impl Event {
    /// The accounts and regions the event names: its envelope's, and its
    /// ARNs' (cluster, task, container instance), for
    /// [`super::origin::route`].
    pub fn places(&self) -> Vec<Place<'_>> {
        let (account, region, arns): (&Option<String>, &Option<String>, Vec<&str>) = match self {
            Event::Task(change) => (
                &change.account,
                &change.region,
                [&change.cluster_arn, &change.task_arn]
                    .into_iter()
                    .map(String::as_str)
                    .chain(change.container_instance_arn.as_deref())
                    .collect(),
            ),
            Event::Instance(change) => (
                &change.account,
                &change.region,
                vec![
                    change.cluster_arn.as_str(),
                    change.container_instance_arn.as_str(),
                ],
            ),
            Event::Other { .. } => return Vec::new(),
        };
        let envelope = Place {
            account: account.as_deref(),
            region: region.as_deref(),
        };
        std::iter::once(envelope)
            .chain(arns.into_iter().filter_map(Place::of_arn))
            .collect()
    }

    /// The cluster it is of (task and container instance events).
    pub fn cluster_arn(&self) -> Option<&str> {
        match self {
            Event::Task(change) => Some(&change.cluster_arn),
            Event::Instance(change) => Some(&change.cluster_arn),
            Event::Other { .. } => None,
        }
    }

    /// Its `type` label (one of [`EVENT_TYPES`]).
    pub fn type_label(&self) -> &'static str {
        match self {
            Event::Task(_) => "task",
            Event::Instance(_) => "instance",
            Event::Other { .. } => "other",
        }
    }
}

impl Malformed {
    /// The `type` label of the event it was meant to be, when that much
    /// could be read (one of [`EVENT_TYPES`]).
    pub fn type_label(&self) -> &'static str {
        match self {
            Malformed::Missing { detail_type, .. } | Malformed::BadDetail { detail_type, .. } => {
                match *detail_type {
                    TASK_CHANGE => "task",
                    INSTANCE_CHANGE => "instance",
                    _ => "unknown",
                }
            }
            Malformed::NotAnEvent(_) | Malformed::NotEcs(_) => "unknown",
        }
    }
}

/// Parses one SQS message body (an EventBridge event delivered as is).
pub fn parse(body: &str) -> Result<Event, Malformed> {
    let envelope: Envelope =
        serde_json::from_str(body).map_err(|e| Malformed::NotAnEvent(e.to_string()))?;
    if envelope.source != ECS_SOURCE {
        return Err(Malformed::NotEcs(envelope.source));
    }
    match envelope.detail_type.as_str() {
        TASK_CHANGE => {
            let mut change: TaskChange = detail(envelope.detail, TASK_CHANGE)?;
            require(&change.task_arn, TASK_CHANGE, "taskArn")?;
            require(&change.cluster_arn, TASK_CHANGE, "clusterArn")?;
            require(&change.last_status, TASK_CHANGE, "lastStatus")?;
            change.time = envelope.time;
            change.account = envelope.account;
            change.region = envelope.region;
            Ok(Event::Task(change))
        }
        INSTANCE_CHANGE => {
            let mut change: InstanceChange = detail(envelope.detail, INSTANCE_CHANGE)?;
            require(
                &change.container_instance_arn,
                INSTANCE_CHANGE,
                "containerInstanceArn",
            )?;
            require(&change.status, INSTANCE_CHANGE, "status")?;
            change.account = envelope.account;
            change.region = envelope.region;
            Ok(Event::Instance(change))
        }
        _ => Ok(Event::Other {
            detail_type: envelope.detail_type,
        }),
    }
}

fn detail<T: serde::de::DeserializeOwned>(
    value: serde_json::Value,
    detail_type: &'static str,
) -> Result<T, Malformed> {
    serde_json::from_value(value).map_err(|e| Malformed::BadDetail {
        detail_type,
        reason: e.to_string(),
    })
}

fn require(value: &str, detail_type: &'static str, field: &'static str) -> Result<(), Malformed> {
    if value.is_empty() {
        return Err(Malformed::Missing { detail_type, field });
    }
    Ok(())
}

/// What to do with a task event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Judgement {
    /// Newer than anything seen of the task: apply it.
    Apply,
    /// The very version already applied (SQS delivers at least once).
    Duplicate,
    /// Older than what was applied (delivered out of order).
    Stale,
    /// An event of a task already seen STOPPED, which no later event can
    /// bring back (a late RUNNING must not resurrect it).
    AfterStop,
}

/// The highest `detail.version` applied per task (by [`task_key`], so
/// that both ARN formats are one task) and per container instance, and the
/// tasks seen stopped (tombstones, kept for `tombstone_for` after the stop,
/// so that a late event cannot resurrect a stopped task). Bounded: one
/// entry per task seen in the last `tombstone_for` or still running, and
/// per container instance a task runs on; [`Ledger::trim`] drops the rest.
pub struct Ledger {
    tombstone_for: Duration,
    tasks: HashMap<String, Seen>,
    /// Container instance ARN → the version of its last applied event.
    instances: HashMap<String, u64>,
}

#[derive(Clone, Copy, Debug)]
struct Seen {
    version: u64,
    /// When the task was seen stopped.
    stopped_at: Option<SystemTime>,
    /// When this version was applied.
    applied_at: SystemTime,
}

impl Ledger {
    pub fn new(tombstone_for: Duration) -> Ledger {
        Ledger {
            tombstone_for,
            tasks: HashMap::new(),
            instances: HashMap::new(),
        }
    }

    /// What to do with a container instance event: an older or the same
    /// version (a DRAINING delivered after the ACTIVE that ended it, a
    /// duplicate) is not applied. Its status can come back (ACTIVE, then
    /// DRAINING again), so there is no tombstone.
    pub fn judge_instance(&self, change: &InstanceChange) -> Judgement {
        match self.instances.get(&change.container_instance_arn) {
            Some(&seen) if change.version == seen => Judgement::Duplicate,
            Some(&seen) if change.version < seen => Judgement::Stale,
            _ => Judgement::Apply,
        }
    }

    pub fn record_instance(&mut self, change: &InstanceChange) {
        self.instances
            .insert(change.container_instance_arn.clone(), change.version);
    }

    /// Forgets the container instances no task runs on (`in_use`).
    pub fn trim_instances(&mut self, in_use: &dyn Fn(&str) -> bool) {
        self.instances.retain(|arn, _| in_use(arn));
    }

    /// What to do with `change`, given what was recorded.
    pub fn judge(&self, change: &TaskChange) -> Judgement {
        match self.tasks.get(&change.key()) {
            Some(seen) if change.version == seen.version => Judgement::Duplicate,
            Some(seen) if seen.stopped_at.is_some() => Judgement::AfterStop,
            Some(seen) if change.version < seen.version => Judgement::Stale,
            _ => Judgement::Apply,
        }
    }

    /// Records `change` as applied: called once it is published, so that a
    /// change that could not be applied (its message is redelivered) is not
    /// taken for a duplicate.
    pub fn record(&mut self, change: &TaskChange, now: SystemTime) {
        self.tasks.insert(
            change.key(),
            Seen {
                version: change.version,
                stopped_at: change.is_stopped().then_some(now),
                applied_at: now,
            },
        );
    }

    /// Forgets stopped tasks older than the tombstone time, and tasks no
    /// longer in `running` (the [`task_key`]s of the tasks a full read
    /// found): bounds the ledger by the fleet, not by its history.
    pub fn trim(&mut self, now: SystemTime, running: &dyn Fn(&str) -> bool) {
        let keep_for = self.tombstone_for;
        self.tasks.retain(|arn, seen| match seen.stopped_at {
            Some(at) => now.duration_since(at).unwrap_or_default() < keep_for,
            None => running(arn),
        });
    }

    /// The tasks ([`task_key`]s) an event was applied to at or after
    /// `since` (while a full read ran: the event is newer than what the
    /// read found).
    pub fn applied_since(&self, since: SystemTime) -> std::collections::HashSet<&str> {
        (self.tasks.iter())
            .filter(|(_, seen)| seen.applied_at >= since)
            .map(|(arn, _)| arn.as_str())
            .collect()
    }

    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::super::convert::{self, InstanceFacts, MappingFacts, Placement, TaskDefFacts};
    use super::super::origin::{self, Scope};
    use super::*;
    use crate::inventory::{NetworkMode, PortBinding, Protocol, Task};

    /// A task event in the shape of the AWS documentation's example: no
    /// `healthStatus`, no tags, the ENI's address in an attachment.
    fn task_event(arn: &str, version: u64, last: &str, desired: &str) -> String {
        serde_json::json!({
            "version": "0",
            "id": "5b1e7c2a-0000-4000-8000-000000000001",
            "detail-type": "ECS Task State Change",
            "source": "aws.ecs",
            "account": "123456789012",
            "time": "2026-11-27T10:00:00Z",
            "region": "us-east-1",
            "resources": [arn],
            "detail": {
                "attachments": [{
                    "id": "a1", "type": "eni", "status": "ATTACHED",
                    "details": [
                        {"name": "subnetId", "value": "subnet-0abc"},
                        {"name": "networkInterfaceId", "value": "eni-0abc"},
                        {"name": "privateIPv4Address", "value": "10.0.3.7"}
                    ]
                }],
                "availabilityZone": "us-east-1a",
                "clusterArn": "arn:aws:ecs:us-east-1:123456789012:cluster/prod",
                "containers": [{
                    "containerArn": "arn:aws:ecs:us-east-1:123456789012:container/prod/x",
                    "lastStatus": last, "name": "api",
                    "networkBindings": [{"containerPort": 8080, "hostPort": 8080, "protocol": "tcp"}],
                    "taskArn": arn
                }],
                "createdAt": "2026-11-27T09:59:30Z",
                "launchType": "FARGATE",
                "desiredStatus": desired,
                "group": "service:api",
                "lastStatus": last,
                "connectivity": "CONNECTED",
                "updatedAt": "2026-11-27T10:00:00Z",
                "taskArn": arn,
                "taskDefinitionArn": "arn:aws:ecs:us-east-1:123456789012:task-definition/api:3",
                "version": version,
                "platformVersion": "1.4.0",
                "someFieldAwsAddsLater": {"nested": true}
            }
        })
        .to_string()
    }

    const ARN: &str = "arn:aws:ecs:us-east-1:123456789012:task/prod/0123abcd";

    fn at(text: &str) -> SystemTime {
        humantime::parse_rfc3339(text).unwrap()
    }

    /// A task definition of one container with one named port mapping.
    fn awsvpc(container: &str, port: u16) -> TaskDefFacts {
        TaskDefFacts {
            family: "web".into(),
            network_mode: Some(NetworkMode::Awsvpc),
            has_health_check: false,
            mappings: vec![MappingFacts {
                container_name: container.into(),
                container_port: port,
                host_port: None,
                protocol: Protocol::Tcp,
                name: Some("http".into()),
            }],
        }
    }

    /// The inventory task the source makes of a task event (as
    /// `EcsSource::apply_events` does: the event as DescribeTasks' shape,
    /// through the poll's conversion), on `instance` if given.
    fn made_of(
        change: &TaskChange,
        def: &TaskDefFacts,
        instance: Option<(&str, &InstanceFacts)>,
    ) -> Task {
        let placement = Placement {
            ec2_instance_id: instance.map(|(id, _)| id),
            instance: instance.map(|(_, facts)| facts),
            instance_draining: false,
        };
        let cluster = super::super::convert::cluster_name(&change.cluster_arn);
        convert::task(&cluster, &change.to_task(), def, placement, None)
    }

    const FARGATE: &str = include_str!("events/fixtures/fargate-task.json");
    const EC2_SIDECAR: &str = include_str!("events/fixtures/ec2-task-stopped-sidecar.json");
    const INSTANCE: &str = include_str!("events/fixtures/container-instance.json");

    #[test]
    fn a_task_event_gives_its_facts() {
        let Ok(Event::Task(change)) = parse(&task_event(ARN, 4, "RUNNING", "RUNNING")) else {
            panic!("a task event");
        };
        assert_eq!(change.task_arn, ARN);
        assert_eq!(change.version, 4);
        assert_eq!(change.group.as_deref(), Some("service:api"));
        assert_eq!(
            change.containers[0].network_bindings[0].container_port,
            Some(8080)
        );
        assert_eq!(change.time, Some(at("2026-11-27T10:00:00Z")));
        assert_eq!(change.account.as_deref(), Some("123456789012"));
        assert_eq!(change.region.as_deref(), Some("us-east-1"));
        assert!(!change.is_stopped());
        // What the source makes of it: the ENI's address, from the `eni`
        // attachment (DescribeTasks says `ElasticNetworkInterface`).
        let task = made_of(&change, &awsvpc("api", 8080), None);
        assert_eq!(
            task.ipv4,
            ["10.0.3.7".parse::<std::net::Ipv4Addr>().unwrap()]
        );
        assert_eq!(task.eni_id.as_deref(), Some("eni-0abc"));
    }

    #[test]
    fn malformed_messages_say_why() {
        let not_ecs = task_event(ARN, 1, "RUNNING", "RUNNING").replace("aws.ecs", "aws.ec2");
        let no_arn = task_event(ARN, 1, "RUNNING", "RUNNING").replace(ARN, "");
        let bad_version = task_event(ARN, 1, "RUNNING", "RUNNING")
            .replace("\"version\":1", "\"version\":\"one\"");
        assert!(bad_version.contains("\"one\""), "the replacement happened");
        /// (message body, what it must be judged)
        type Case<'a> = (&'a str, fn(&Malformed) -> bool);
        let table: [Case; 4] = [
            ("{not json", |m| matches!(m, Malformed::NotAnEvent(_))),
            (&not_ecs, |m| matches!(m, Malformed::NotEcs(_))),
            (&no_arn, |m| {
                matches!(
                    m,
                    Malformed::Missing {
                        field: "taskArn",
                        ..
                    }
                )
            }),
            (&bad_version, |m| matches!(m, Malformed::BadDetail { .. })),
        ];
        for (body, want) in table {
            let got = parse(body).expect_err(body);
            assert!(want(&got), "{body}: {got}");
        }
        let other = task_event(ARN, 1, "RUNNING", "RUNNING")
            .replace("ECS Task State Change", "ECS Service Action");
        assert_eq!(
            parse(&other),
            Ok(Event::Other {
                detail_type: "ECS Service Action".into()
            })
        );
        // The `type` label: what the message was meant to be, when known.
        let label = |body: &str| match parse(body) {
            Ok(event) => event.type_label(),
            Err(error) => error.type_label(),
        };
        assert_eq!(label(&task_event(ARN, 1, "RUNNING", "RUNNING")), "task");
        assert_eq!(label(&no_arn), "task");
        assert_eq!(label(&bad_version), "task");
        assert_eq!(label(&other), "other");
        assert_eq!(label("{not json"), "unknown");
        assert_eq!(label(&not_ecs), "unknown");
        for got in ["task", "other", "unknown"] {
            assert!(EVENT_TYPES.contains(&got));
        }
    }

    #[test]
    fn instance_events_give_status() {
        let body = serde_json::json!({
            "version": "0", "detail-type": "ECS Container Instance State Change",
            "source": "aws.ecs", "time": "2026-11-27T10:00:00Z",
            "detail": {
                "clusterArn": "arn:aws:ecs:us-east-1:123456789012:cluster/prod",
                "containerInstanceArn": "arn:aws:ecs:us-east-1:123456789012:container-instance/prod/1111",
                "ec2InstanceId": "i-0aaa", "status": "DRAINING", "version": 7,
                "agentConnected": true
            }
        })
        .to_string();
        let Ok(Event::Instance(change)) = parse(&body) else {
            panic!("an instance event");
        };
        assert_eq!(change.status, "DRAINING");
        assert_eq!(change.ec2_instance_id.as_deref(), Some("i-0aaa"));
        assert_eq!(change.version, 7);
        assert_eq!(parse(&body).map(|e| e.type_label()), Ok("instance"));
        let broken = body.replace("\"status\":\"DRAINING\"", "\"status\":7");
        assert_eq!(parse(&broken).map_err(|e| e.type_label()), Err("instance"));
    }

    /// Each case: the (version, last status) of one task's events in the
    /// order they arrive, and what the ledger says of each.
    #[test]
    fn the_ledger_orders_at_least_once_out_of_order_events() {
        use Judgement::*;
        type Case<'a> = (&'a str, &'a [(u64, &'a str)], &'a [Judgement]);
        let table: &[Case] = &[
            (
                "in order",
                &[(1, "PENDING"), (2, "RUNNING")],
                &[Apply, Apply],
            ),
            (
                "duplicate",
                &[(2, "RUNNING"), (2, "RUNNING")],
                &[Apply, Duplicate],
            ),
            (
                "reordered",
                &[(3, "RUNNING"), (2, "PENDING"), (4, "RUNNING")],
                &[Apply, Stale, Apply],
            ),
            (
                "a late RUNNING after the stop",
                &[(5, "STOPPED"), (4, "RUNNING"), (6, "RUNNING")],
                &[Apply, AfterStop, AfterStop],
            ),
            (
                "the stop delivered twice",
                &[(5, "STOPPED"), (5, "STOPPED")],
                &[Apply, Duplicate],
            ),
        ];
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        for (what, events, want) in table {
            let mut ledger = Ledger::new(Duration::from_secs(3600));
            let got: Vec<Judgement> = events
                .iter()
                .map(|(version, last)| {
                    let change = TaskChange {
                        task_arn: ARN.into(),
                        version: *version,
                        last_status: (*last).into(),
                        ..TaskChange::default()
                    };
                    let judgement = ledger.judge(&change);
                    if judgement == Judgement::Apply {
                        ledger.record(&change, now);
                    }
                    judgement
                })
                .collect();
            assert_eq!(&got, want, "{what}");
        }
    }

    #[test]
    fn the_ledger_is_bounded_by_the_fleet_and_the_tombstone_time() {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let mut ledger = Ledger::new(Duration::from_secs(600));
        for (arn, last) in [("a", "RUNNING"), ("b", "RUNNING"), ("c", "STOPPED")] {
            let change = TaskChange {
                cluster_arn: "prod".into(),
                task_arn: arn.into(),
                version: 1,
                last_status: last.into(),
                ..TaskChange::default()
            };
            ledger.record(&change, start);
        }
        // A full read finds only `a` running (tasks are known by key);
        // `c`'s tombstone is still young.
        ledger.trim(start + Duration::from_secs(60), &|key| key == "prod/a");
        assert_eq!(ledger.len(), 2, "a running, c a young tombstone");
        let late = TaskChange {
            cluster_arn: "prod".into(),
            task_arn: "c".into(),
            version: 0,
            last_status: "RUNNING".into(),
            ..TaskChange::default()
        };
        assert_eq!(ledger.judge(&late), Judgement::AfterStop);
        ledger.trim(start + Duration::from_secs(601), &|key| key == "prod/a");
        assert_eq!(ledger.len(), 1, "the tombstone expired");
    }

    /// The documented Fargate task event (awsvpc, an `eni` attachment):
    /// the task, its ENI's address and its port as served.
    #[test]
    fn the_documented_fargate_task_event() {
        let Ok(Event::Task(change)) = parse(FARGATE) else {
            panic!("a task event: {:?}", parse(FARGATE));
        };
        assert_eq!(
            change.key(),
            "FargateCluster/c13b4cb40f1f4fe4a2971f76ae5a47ad"
        );
        assert_eq!(change.version, 4);
        assert_eq!(change.updated_at, Some(at("2020-01-23T17:57:58.800Z")));
        assert_eq!(change.time, Some(at("2020-01-23T17:57:58Z")));
        let task = made_of(&change, &awsvpc("web", 80), None);
        assert_eq!(task.cluster, "FargateCluster");
        assert_eq!(task.task_id, "c13b4cb40f1f4fe4a2971f76ae5a47ad");
        assert_eq!(task.service.as_deref(), Some("web"));
        assert_eq!(task.launch_type, "FARGATE");
        assert_eq!(task.network_mode, NetworkMode::Awsvpc);
        assert_eq!(
            (task.last_status.as_str(), task.desired_status.as_str()),
            ("RUNNING", "RUNNING")
        );
        assert_eq!(
            task.ipv4,
            ["10.0.0.139".parse::<std::net::Ipv4Addr>().unwrap()]
        );
        assert_eq!(task.eni_id.as_deref(), Some("eni-0a1b2c3d4e5f60718"));
        assert_eq!(task.ports.len(), 1);
        assert_eq!(
            (task.ports[0].container_port, task.ports[0].host_port),
            (80, None)
        );
        assert_eq!(task.health_status, "UNKNOWN", "events carry no task health");
        // The containers' `networkInterfaces` alone give the address too
        // (tasks whose attachment says nothing yet).
        let mut bare = change.clone();
        bare.attachments.clear();
        assert_eq!(made_of(&bare, &awsvpc("web", 80), None).ipv4, task.ipv4);
    }

    /// The documented EC2 task event, its sidecar STOPPED (exit code 0)
    /// and its essential container RUNNING with a dynamic host port bound
    /// twice (IPv4 and IPv6): the task runs on and is reached at the
    /// instance's address on the host port, once.
    #[test]
    fn the_documented_ec2_task_event_with_a_stopped_sidecar() {
        let Ok(Event::Task(change)) = parse(EC2_SIDECAR) else {
            panic!("a task event: {:?}", parse(EC2_SIDECAR));
        };
        assert_eq!(change.time, Some(at("2016-12-06T16:41:06.123456789Z")));
        assert_eq!(change.updated_at, Some(at("2016-12-06T16:41:06.800Z")));
        let sidecar = &change.containers[1];
        assert_eq!(
            (sidecar.last_status.as_deref(), sidecar.exit_code),
            (Some("STOPPED"), Some(0))
        );
        assert!(
            !change.is_stopped(),
            "a stopped sidecar does not stop the task"
        );
        let def = TaskDefFacts {
            family: "api".into(),
            network_mode: Some(NetworkMode::Bridge),
            has_health_check: false,
            mappings: vec![MappingFacts {
                container_name: "api".into(),
                container_port: 8080,
                host_port: Some(0),
                protocol: Protocol::Tcp,
                name: Some("http".into()),
            }],
        };
        let instance = InstanceFacts {
            ipv4: vec!["10.0.1.25".parse().unwrap()],
            ipv6: Vec::new(),
        };
        let task = made_of(&change, &def, Some(("i-0f3a8506b2c4d6e8f", &instance)));
        assert_eq!(task.task_id, "b99d40b3-5176-4f71-9a52-9dbd6f1cebef");
        assert_eq!(task.service.as_deref(), Some("api"));
        assert_eq!(task.network_mode, NetworkMode::Bridge);
        assert_eq!(task.last_status, "RUNNING");
        assert_eq!(task.ipv4, instance.ipv4);
        assert_eq!(
            task.container_instance_arn.as_deref(),
            Some(
                "arn:aws:ecs:us-east-1:111122223333:container-instance/default/b54a2a04046f43319d743f6d7f6ca315"
            )
        );
        assert_eq!(
            task.ports,
            [PortBinding {
                container_name: "api".into(),
                container_port: 8080,
                host_port: Some(32768),
                protocol: Protocol::Tcp,
                name: Some("http".into()),
            }]
        );
    }

    /// The documented container instance event, its agent disconnected
    /// (several times an hour, as a matter of course) and its status
    /// ACTIVE: not a drain. DRAINING is, connected or not.
    #[test]
    fn the_documented_container_instance_event() {
        let Ok(Event::Instance(change)) = parse(INSTANCE) else {
            panic!("an instance event: {:?}", parse(INSTANCE));
        };
        assert_eq!(change.agent_connected, Some(false));
        assert_eq!(change.status, "ACTIVE");
        assert_eq!(change.version, 14801);
        assert_eq!(
            change.ec2_instance_id.as_deref(),
            Some("i-0f3a8506b2c4d6e8f")
        );
        assert_eq!(change.updated_at, Some(at("2016-12-06T16:41:06.991Z")));
        assert!(!change.is_draining(), "a disconnected agent is no drain");
        let draining = INSTANCE.replace("\"status\": \"ACTIVE\"", "\"status\": \"DRAINING\"");
        let Ok(Event::Instance(drain)) = parse(&draining) else {
            panic!("an instance event");
        };
        assert!(drain.is_draining());
    }

    /// Times as AWS writes them: 0 to 9 fractional digits, `Z` or an
    /// offset; a time that does not parse is no time, and does not make
    /// the event malformed.
    #[test]
    fn times_with_any_fraction_parse() {
        let base = at("2016-12-06T16:41:06Z");
        let ms = Duration::from_millis;
        let table = [
            ("2016-12-06T16:41:06Z", Some(base)),
            ("2016-12-06T16:41:06.8Z", Some(base + ms(800))),
            ("2016-12-06T16:41:06.99Z", Some(base + ms(990))),
            ("2016-12-06T16:41:06.991Z", Some(base + ms(991))),
            (
                "2016-12-06T16:41:06.123456Z",
                Some(base + Duration::from_micros(123_456)),
            ),
            (
                "2016-12-06T16:41:06.123456789Z",
                Some(base + Duration::from_nanos(123_456_789)),
            ),
            ("2016-12-06T16:41:06+00:00", Some(base)),
            ("2016-12-06T18:41:06.5+02:00", Some(base + ms(500))),
            ("2016-12-06T11:41:06-05:00", Some(base)),
            ("2016-12-06", None),
            ("yesterday", None),
            ("2016-12-06T16:41:06+25:00", None),
            ("", None),
        ];
        for (text, want) in table {
            assert_eq!(timestamp(text), want, "{text:?}");
        }
        for (name, value) in [("updatedAt", "1481042466"), ("updatedAt", "\"soon\"")] {
            let body = FARGATE.replace(
                "\"updatedAt\": \"2020-01-23T17:57:58.8Z\"",
                &format!("\"{name}\": {value}"),
            );
            assert_ne!(body, FARGATE, "the replacement happened");
            let Ok(Event::Task(change)) = parse(&body) else {
                panic!("{value}: still a task event: {:?}", parse(&body));
            };
            assert_eq!(change.updated_at, None, "{value}");
        }
    }

    /// An old-format task ARN (no cluster segment; the cluster comes from
    /// `clusterArn`) is the same task as its new-format ARN: same key,
    /// same names, and one is the other's duplicate.
    #[test]
    fn old_format_task_arns_are_the_same_task() {
        let new = "arn:aws:ecs:us-east-1:123456789012:task/prod/0123abcd";
        let old = "arn:aws:ecs:us-east-1:123456789012:task/0123abcd";
        let change = |arn: &str| {
            let Ok(Event::Task(change)) = parse(&task_event(arn, 4, "RUNNING", "RUNNING")) else {
                panic!("a task event");
            };
            change
        };
        let (by_new, by_old) = (change(new), change(old));
        assert_eq!(by_old.key(), "prod/0123abcd");
        assert_eq!(by_old.key(), by_new.key());
        let def = awsvpc("api", 8080);
        let (a, b) = (made_of(&by_new, &def, None), made_of(&by_old, &def, None));
        assert_eq!(
            (a.cluster.as_str(), a.task_id.as_str()),
            ("prod", "0123abcd")
        );
        assert_eq!(
            (b.cluster.as_str(), b.task_id.as_str()),
            ("prod", "0123abcd")
        );
        let mut ledger = Ledger::new(Duration::from_secs(3600));
        ledger.record(&by_old, SystemTime::UNIX_EPOCH);
        assert_eq!(ledger.judge(&by_new), Judgement::Duplicate);
        let mut stop = by_new.clone();
        (stop.version, stop.last_status) = (5, "STOPPED".into());
        ledger.record(&stop, SystemTime::UNIX_EPOCH);
        assert_eq!(
            ledger.judge(&by_old),
            Judgement::AfterStop,
            "the stop holds for both"
        );
    }

    /// Container instance events are versioned too: a DRAINING delivered
    /// after the ACTIVE that ended it must not drain the instance again.
    #[test]
    fn the_ledger_orders_instance_events() {
        let Ok(Event::Instance(active)) = parse(INSTANCE) else {
            panic!("an instance event");
        };
        let mut draining = active.clone();
        (draining.status, draining.version) = ("DRAINING".into(), active.version - 1);
        let mut ledger = Ledger::new(Duration::from_secs(3600));
        assert_eq!(ledger.judge_instance(&active), Judgement::Apply);
        ledger.record_instance(&active);
        assert_eq!(ledger.judge_instance(&active), Judgement::Duplicate);
        assert_eq!(ledger.judge_instance(&draining), Judgement::Stale);
        draining.version = active.version + 1;
        assert_eq!(ledger.judge_instance(&draining), Judgement::Apply);
        ledger.trim_instances(&|_| false);
        assert_eq!(
            ledger.judge_instance(&active),
            Judgement::Apply,
            "forgotten"
        );
    }

    /// What each documented event names, and which of them the source of
    /// account 111122223333 in us-east-1 reads: not the Fargate one (of
    /// us-west-2), nor one whose envelope or ARNs name another account.
    #[test]
    fn events_of_another_account_or_region_are_foreign() {
        let ours = [(
            Scope {
                region: Some("us-east-1".into()),
                account: Some("111122223333".into()),
            },
            (),
        )];
        let reads = |body: &str| {
            let event = parse(body).unwrap_or_else(|e| panic!("{e}"));
            origin::route(&ours, &event.places()).is_some()
        };
        assert!(reads(EC2_SIDECAR));
        assert!(reads(INSTANCE));
        assert!(!reads(FARGATE), "us-west-2");
        let other_account = EC2_SIDECAR.replace("111122223333", "444455556666");
        assert!(!reads(&other_account), "every part of another account");
        let envelope_only = EC2_SIDECAR.replace(
            "\"account\": \"111122223333\"",
            "\"account\": \"444455556666\"",
        );
        assert_ne!(envelope_only, EC2_SIDECAR);
        assert!(!reads(&envelope_only), "the envelope of another account");
        let cluster_only = INSTANCE.replace(
            "111122223333:cluster/default",
            "444455556666:cluster/default",
        );
        assert!(
            !reads(&cluster_only),
            "a cluster of the same name in another account"
        );
        let Ok(event) = parse(EC2_SIDECAR) else {
            panic!("an event");
        };
        assert_eq!(
            event.places().len(),
            4,
            "envelope, cluster, task, container instance"
        );
    }
}
