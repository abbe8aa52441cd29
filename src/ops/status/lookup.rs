//! "Why does this name answer that?": what a resolver gets for a name now,
//! and every task behind it, served or not, with the reason. Also finds
//! tasks by id, ARN or address, which is where a page usually starts.

use std::net::IpAddr;
use std::str::FromStr;

use hickory_proto::op::{Edns, Message, Query};
use hickory_proto::rr::{Name, Record, RecordType};
use serde::Serialize;

use super::views::{TaskRow, task_rows};
use crate::dns::answer::{self, Limits};
use crate::wire::{Transport, name_table};
use crate::zone::Snapshot;

/// Tasks a lookup lists; more are counted, not listed.
pub const TASKS_SHOWN: usize = 100;

/// What the box was given, as understood.
#[derive(Debug, PartialEq)]
pub enum Asked {
    /// An address: the tasks that hold it.
    Address(IpAddr),
    /// A task id or ARN.
    Task(String),
    /// A DNS name and type; `completed` when the zone was appended to it.
    Name {
        name: Name,
        rtype: RecordType,
        completed: bool,
    },
}

/// Reads the `name` and `type` parameters. `Err`: what is wrong with them.
pub fn parse(text: &str, rtype: Option<&str>, snapshot: &Snapshot) -> Result<Asked, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("name: give a DNS name, a task id or ARN, or an address".to_owned());
    }
    if let Ok(address) = IpAddr::from_str(text) {
        return Ok(Asked::Address(address));
    }
    let is_task = |t: &str| {
        snapshot
            .inventory
            .tasks
            .iter()
            .any(|task| task.task_arn == t || task.id() == t)
    };
    // An id in ECS's shape is taken as one without a scan (100 000 tasks
    // cost milliseconds); another dotless word only if a task has it as id.
    if text.starts_with("arn:")
        || (!text.contains('.') && (looks_like_task_id(text) || is_task(text)))
    {
        return Ok(Asked::Task(text.to_owned()));
    }
    let rtype = match rtype.map(str::trim).filter(|t| !t.is_empty()) {
        None => RecordType::A,
        Some(t) => RecordType::from_str(&t.to_ascii_uppercase())
            .map_err(|_| format!("type: {t:?} is not a record type (A, AAAA, SRV, …)"))?,
    };
    let mut name = Name::from_ascii(text).map_err(|e| format!("name: not a DNS name: {e}"))?;
    let origin = Name::from(snapshot.origin().clone());
    // Reverse names (`….in-addr.arpa`) are never under the zone.
    let reverse = text.to_ascii_lowercase().ends_with(".arpa");
    let completed = !name.is_fqdn() && !origin.zone_of(&name) && !text.ends_with('.') && !reverse;
    if completed {
        name = name
            .append_domain(&origin)
            .map_err(|e| format!("name: too long with the zone appended: {e}"))?;
    }
    name.set_fqdn(true);
    Ok(Asked::Name {
        name,
        rtype,
        completed,
    })
}

/// A task id as ECS makes them: 32 hex digits, or a UUID (older tasks).
fn looks_like_task_id(text: &str) -> bool {
    let hex = |c: char| c.is_ascii_hexdigit();
    (text.len() == 32 && text.chars().all(hex))
        || (text.len() == 36 && text.chars().all(|c| hex(c) || c == '-'))
}

/// One record of the answer, as `dig` would print it.
#[derive(Serialize)]
pub struct RecordRow {
    pub name: String,
    pub ttl: u32,
    #[serde(rename = "type")]
    pub rtype: String,
    pub data: String,
}

/// The response the answer function gives over TCP with EDNS (nothing is
/// truncated).
#[derive(Serialize)]
pub struct Answer {
    pub rcode: String,
    pub authoritative: bool,
    pub answer: Vec<RecordRow>,
    pub authority: Vec<RecordRow>,
    pub additional: Vec<RecordRow>,
}

#[derive(Serialize)]
pub struct Lookup {
    /// What was asked, as understood: `name`, `address` or `task`.
    pub kind: &'static str,
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub rtype: Option<String>,
    /// The zone was appended to a relative name.
    pub completed: bool,
    pub answer: Option<Answer>,
    /// For an address: why its PTR is what it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// Tasks behind the name (or holding the address, or with that id).
    pub tasks_matched: usize,
    pub tasks: Vec<TaskRow>,
}

/// Runs the lookup on the forward zone `snapshot`; an address (or a name
/// in a reverse zone) is asked of `reverse`, the reverse zone that holds
/// it, if one does.
pub fn run(snapshot: &Snapshot, asked: &Asked, reverse: Option<&Snapshot>) -> Lookup {
    let tasks = &snapshot.inventory.tasks;
    match asked {
        Asked::Address(address) => {
            let matched: Vec<usize> = (0..tasks.len())
                .filter(|&i| match address {
                    IpAddr::V4(v4) => tasks[i].ipv4.contains(v4),
                    IpAddr::V6(v6) => tasks[i].ipv6.contains(v6),
                })
                .collect();
            let name = name_table::to_name(&crate::records::reverse::reverse_wire(*address));
            let answer = reverse.map(|r| resolve(r, &name, RecordType::PTR));
            let mut out = found(
                "address",
                Some(name.to_string()),
                Some("PTR".to_owned()),
                false,
                answer,
                snapshot,
                &matched,
            );
            out.why = Some(why_pointer(snapshot, *address, reverse.is_some()));
            out
        }
        Asked::Task(id) => {
            let matched: Vec<usize> = (0..tasks.len())
                .filter(|&i| tasks[i].task_arn == *id || tasks[i].id() == id)
                .collect();
            found("task", None, None, false, None, snapshot, &matched)
        }
        Asked::Name {
            name,
            rtype,
            completed,
        } => {
            let origin = Name::from(snapshot.origin().clone());
            let wire = name_table::wire_of(name);
            let matched = crate::records::tasks_named(&snapshot.inventory, &origin, &wire);
            found(
                "name",
                Some(name.to_string()),
                Some(rtype.to_string()),
                *completed,
                Some(resolve(reverse.unwrap_or(snapshot), name, *rtype)),
                snapshot,
                &matched,
            )
        }
    }
}

fn found(
    kind: &'static str,
    name: Option<String>,
    rtype: Option<String>,
    completed: bool,
    answer: Option<Answer>,
    snapshot: &Snapshot,
    matched: &[usize],
) -> Lookup {
    let shown = &matched[..matched.len().min(TASKS_SHOWN)];
    Lookup {
        kind,
        name,
        rtype,
        completed,
        answer,
        why: None,
        tasks_matched: matched.len(),
        tasks: task_rows(snapshot, shown, true),
    }
}

/// Why `address` answers the PTR it does (see `records::reverse`).
fn why_pointer(snapshot: &Snapshot, address: IpAddr, in_reverse_zone: bool) -> String {
    if !in_reverse_zone {
        return format!(
            "no reverse zone holds {address}: its PTR query is refused (add its range to reverse_zones)"
        );
    }
    let hosts = format!(".{}.", crate::records::reverse::HOSTS_LABEL);
    if let Some(target) = snapshot.pointer(address) {
        let target = name_table::Display(target).to_string();
        return match target.split_once('.') {
            Some((host, rest)) if format!(".{rest}").starts_with(&hosts) => format!(
                "the served bridge or host-mode tasks of EC2 instance {host} are reached at                  its address: it points at the host's name, {target}"
            ),
            _ => format!("one served task holds it: it points at the task's own name, {target}"),
        };
    }
    let shared = (snapshot.report.collisions.iter())
        .any(|c| c.kind == "address" && c.label == address.to_string());
    let otherwise = match snapshot.falls_back() && address.is_ipv4() {
        true => "EC2's own name for it is answered (reverse_fallback)",
        false => "NXDOMAIN",
    };
    match shared {
        true => format!(
            "several served tasks that are not of one EC2 instance hold it, so none is named              (an address collision): {otherwise}"
        ),
        false => format!("no served task holds it: {otherwise}"),
    }
}

/// Asks the answer function, as a resolver over TCP with EDNS would.
fn resolve(snapshot: &Snapshot, name: &Name, rtype: RecordType) -> Answer {
    let mut query = Message::query();
    query.add_query(Query::query(name.clone(), rtype));
    let mut edns = Edns::new();
    edns.set_max_payload(u16::MAX);
    query.edns = Some(edns);
    let rows = |records: &[Record]| records.iter().map(record_row).collect();
    match answer::answer(Some(snapshot), &query, Transport::Tcp, &Limits::default()) {
        Some((response, _)) => Answer {
            rcode: mnemonic(response.metadata.response_code),
            authoritative: response.metadata.authoritative,
            answer: rows(&response.answers),
            authority: rows(&response.authorities),
            additional: rows(&response.additionals),
        },
        None => Answer {
            rcode: "no response".to_owned(),
            authoritative: false,
            answer: Vec::new(),
            authority: Vec::new(),
            additional: Vec::new(),
        },
    }
}

/// The response code as `dig` prints it.
fn mnemonic(code: hickory_proto::op::ResponseCode) -> String {
    match u16::from(code) {
        0 => "NOERROR".to_owned(),
        1 => "FORMERR".to_owned(),
        2 => "SERVFAIL".to_owned(),
        3 => "NXDOMAIN".to_owned(),
        4 => "NOTIMP".to_owned(),
        5 => "REFUSED".to_owned(),
        16 => "BADVERS".to_owned(),
        n => format!("RCODE{n}"),
    }
}

fn record_row(record: &Record) -> RecordRow {
    RecordRow {
        name: record.name.to_string(),
        ttl: record.ttl,
        rtype: record.record_type().to_string(),
        data: record.data.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_shows_its_pointer_and_why() {
        let config = crate::testing::config_with(crate::config::Settings {
            reverse_zones: Some(vec!["10.0.0.0/16".into()]),
            ..Default::default()
        });
        let task = |id: &str, ip: &str, mode, instance: Option<&str>| crate::inventory::Task {
            cluster: "prod".into(),
            service: Some("web".into()),
            task_id: id.into(),
            last_status: "RUNNING".into(),
            desired_status: "RUNNING".into(),
            network_mode: mode,
            ec2_instance_id: instance.map(Into::into),
            ipv4: vec![ip.parse().unwrap()],
            ..Default::default()
        };
        use crate::inventory::NetworkMode::{Awsvpc, Bridge};
        let tasks = vec![
            task("t1", "10.0.0.1", Awsvpc, None),
            task("t2", "10.0.0.2", Bridge, Some("i-0abc")),
            task("t3", "10.0.0.3", Bridge, None),
            task("t4", "10.0.0.3", Bridge, None),
        ];
        let forward = std::sync::Arc::new(Snapshot::of_tasks(&config.zone, tasks, 1));
        let reverse =
            Snapshot::build_reverse(&config.zone, &config.zone.reverse[0], &forward, None, 1);
        let cases = [
            (
                "10.0.0.1",
                true,
                "NOERROR",
                "t1.web.local.",
                "one served task",
            ),
            (
                "10.0.0.2",
                true,
                "NOERROR",
                "i-0abc.hosts.local.",
                "EC2 instance i-0abc",
            ),
            ("10.0.0.3", true, "NXDOMAIN", "", "an address collision"),
            (
                "10.0.0.4",
                true,
                "NXDOMAIN",
                "",
                "no served task holds it: NXDOMAIN",
            ),
            ("10.1.0.1", false, "", "", "no reverse zone holds 10.1.0.1"),
        ];
        for (address, in_zone, rcode, target, why) in cases {
            let asked = Asked::Address(address.parse().unwrap());
            let found = run(&forward, &asked, in_zone.then_some(&reverse));
            assert_eq!(found.rtype.as_deref(), Some("PTR"));
            let got_why = found.why.unwrap_or_default();
            assert!(got_why.contains(why), "{address}: {got_why}");
            match found.answer {
                Some(answer) => {
                    assert_eq!(answer.rcode, rcode, "{address}");
                    let data: Vec<String> = answer.answer.iter().map(|r| r.data.clone()).collect();
                    let want: Vec<String> = (!target.is_empty())
                        .then(|| target.to_owned())
                        .into_iter()
                        .collect();
                    assert_eq!(data, want, "{address}");
                }
                None => assert!(!in_zone, "{address}"),
            }
        }
    }

    #[test]
    fn the_box_takes_names_ids_arns_and_addresses() {
        let zone = crate::testing::config().zone;
        let mut task = crate::inventory::Task {
            cluster: "prod".into(),
            service: Some("web".into()),
            task_arn: "arn:aws:ecs:us-east-1:1:task/prod/t1".into(),
            task_id: "t1".into(),
            ..Default::default()
        };
        task.ipv4 = vec!["10.0.0.1".parse().unwrap()];
        let snapshot = Snapshot::of_tasks(&zone, vec![task], 1);
        let name = |text: &str, rtype: RecordType, completed: bool| Asked::Name {
            name: Name::from_ascii(text).unwrap(),
            rtype,
            completed,
        };
        let table: Vec<(&str, Option<&str>, Result<Asked, &str>)> = vec![
            (
                "10.0.0.1",
                None,
                Ok(Asked::Address("10.0.0.1".parse().unwrap())),
            ),
            (
                "2001:db8::1",
                None,
                Ok(Asked::Address("2001:db8::1".parse().unwrap())),
            ),
            ("t1", None, Ok(Asked::Task("t1".into()))),
            (
                "0123456789abcdef0123456789abcdef",
                None,
                Ok(Asked::Task("0123456789abcdef0123456789abcdef".into())),
            ),
            (
                "arn:aws:ecs:us-east-1:1:task/prod/t1",
                None,
                Ok(Asked::Task("arn:aws:ecs:us-east-1:1:task/prod/t1".into())),
            ),
            ("web", None, Ok(name("web.local.", RecordType::A, true))),
            (
                "web.prod",
                Some("srv"),
                Ok(name("web.prod.local.", RecordType::SRV, true)),
            ),
            (
                "Web.Local",
                Some("AAAA"),
                Ok(name("Web.Local.", RecordType::AAAA, false)),
            ),
            (
                "web.local.",
                None,
                Ok(name("web.local.", RecordType::A, false)),
            ),
            (
                "1.0.0.10.in-addr.arpa",
                Some("ptr"),
                Ok(name("1.0.0.10.in-addr.arpa.", RecordType::PTR, false)),
            ),
            ("", None, Err("name")),
            ("web.local", Some("BOGUS"), Err("type")),
            ("a..b", None, Err("name")),
        ];
        for (text, rtype, want) in table {
            let got = parse(text, rtype, &snapshot);
            match (&got, &want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{text:?}"),
                (Err(got), Err(want)) => assert!(got.starts_with(want), "{text:?}: {got}"),
                _ => panic!("{text:?} {rtype:?}: {got:?}, want {want:?}"),
            }
        }
    }
}
