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
    #[serde(default)]
    time: Option<String>,
    detail: serde_json::Value,
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
    pub updated_at: Option<String>,
    pub attachments: Vec<Attachment>,
    pub containers: Vec<Container>,
    /// When the event was emitted (the envelope's `time`), for lag.
    #[serde(skip)]
    pub time: Option<String>,
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
    pub network_bindings: Vec<NetworkBinding>,
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
    pub version: u64,
}

impl TaskChange {
    /// The ENI's private IPv4 address (awsvpc, Fargate), from the attachment
    /// ECS reports as ATTACHED (or attaching).
    pub fn eni_address(&self) -> Option<std::net::Ipv4Addr> {
        self.attachments
            .iter()
            .filter(|a| a.kind.eq_ignore_ascii_case("eni"))
            .flat_map(|a| &a.details)
            .find(|d| d.name == "privateIPv4Address")
            .and_then(|d| d.value.parse().ok())
    }

    /// The ENI id, as DescribeTasks gives it.
    pub fn eni_id(&self) -> Option<&str> {
        self.attachments
            .iter()
            .filter(|a| a.kind.eq_ignore_ascii_case("eni"))
            .flat_map(|a| &a.details)
            .find(|d| d.name == "networkInterfaceId")
            .map(|d| d.value.as_str())
    }

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
            ecs::Container::builder()
                .name(&c.name)
                .set_network_bindings(Some(bindings.collect()))
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
            Ok(Event::Task(change))
        }
        INSTANCE_CHANGE => {
            let change: InstanceChange = detail(envelope.detail, INSTANCE_CHANGE)?;
            require(
                &change.container_instance_arn,
                INSTANCE_CHANGE,
                "containerInstanceArn",
            )?;
            require(&change.status, INSTANCE_CHANGE, "status")?;
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

/// The highest `detail.version` applied per task, and the tasks seen
/// stopped (tombstones, kept for `tombstone_for` after the stop, so that a
/// late event cannot resurrect a stopped task). Bounded: one entry per
/// task seen in the last `tombstone_for` or still running; [`Ledger::trim`]
/// drops the rest.
pub struct Ledger {
    tombstone_for: Duration,
    tasks: HashMap<String, Seen>,
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
        }
    }

    /// What to do with `change`, given what was recorded.
    pub fn judge(&self, change: &TaskChange) -> Judgement {
        match self.tasks.get(&change.task_arn) {
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
            change.task_arn.clone(),
            Seen {
                version: change.version,
                stopped_at: change.is_stopped().then_some(now),
                applied_at: now,
            },
        );
    }

    /// Forgets stopped tasks older than the tombstone time, and tasks no
    /// longer in `running` (the task ARNs a full read found): bounds the
    /// ledger by the fleet, not by its history.
    pub fn trim(&mut self, now: SystemTime, running: &dyn Fn(&str) -> bool) {
        let keep_for = self.tombstone_for;
        self.tasks.retain(|arn, seen| match seen.stopped_at {
            Some(at) => now.duration_since(at).unwrap_or_default() < keep_for,
            None => running(arn),
        });
    }

    /// The tasks an event was applied to at or after `since` (while a full
    /// read ran: the event is newer than what the read found).
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
    use super::*;

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

    #[test]
    fn a_task_event_gives_its_facts() {
        let Ok(Event::Task(change)) = parse(&task_event(ARN, 4, "RUNNING", "RUNNING")) else {
            panic!("a task event");
        };
        assert_eq!(change.task_arn, ARN);
        assert_eq!(change.version, 4);
        assert_eq!(change.group.as_deref(), Some("service:api"));
        assert_eq!(change.eni_address(), Some("10.0.3.7".parse().unwrap()));
        assert_eq!(change.eni_id(), Some("eni-0abc"));
        assert_eq!(
            change.containers[0].network_bindings[0].container_port,
            Some(8080)
        );
        assert_eq!(change.time.as_deref(), Some("2026-11-27T10:00:00Z"));
        assert!(!change.is_stopped());
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
                task_arn: arn.into(),
                version: 1,
                last_status: last.into(),
                ..TaskChange::default()
            };
            ledger.record(&change, start);
        }
        // A full read finds only `a` running; `c`'s tombstone is still young.
        ledger.trim(start + Duration::from_secs(60), &|arn| arn == "a");
        assert_eq!(ledger.len(), 2, "a running, c a young tombstone");
        let late = TaskChange {
            task_arn: "c".into(),
            version: 0,
            last_status: "RUNNING".into(),
            ..TaskChange::default()
        };
        assert_eq!(ledger.judge(&late), Judgement::AfterStop);
        ledger.trim(start + Duration::from_secs(601), &|arn| arn == "a");
        assert_eq!(ledger.len(), 1, "the tombstone expired");
    }
}
