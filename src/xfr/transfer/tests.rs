use std::net::Ipv4Addr;
use std::str::FromStr;
use std::sync::Arc;

use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::*;
use crate::config::ZoneConfig;
use crate::inventory::{Inventory, Task};
use crate::xfr::journal::{Diff, JournalLimits};

fn config() -> ZoneConfig {
    crate::testing::config().zone
}

fn inventory(n: usize) -> Arc<Inventory> {
    let tasks: Vec<Task> = (0..n)
        .map(|i| Task {
            cluster: "prod".into(),
            service: Some(format!("svc{}", i % 7).into()),
            task_id: format!("task{i:05}"),
            last_status: "RUNNING".into(),
            desired_status: "RUNNING".into(),
            ipv4: vec![Ipv4Addr::from(0x0a00_0000 + i as u32)],
            ..Task::default()
        })
        .collect();
    Arc::new(Inventory::of_tasks(tasks))
}

fn query(qtype: RecordType, client_serial: Option<u32>) -> Message {
    let mut q = Message::query();
    q.metadata.id = 77;
    q.add_query(Query::query(Name::from_str("local.").unwrap(), qtype));
    if let Some(serial) = client_serial {
        let origin = Name::from_str("local.").unwrap();
        q.authorities.push(Record::from_rdata(
            origin.clone(),
            0,
            RData::SOA(hickory_proto::rr::rdata::SOA::new(
                origin.clone(),
                origin,
                serial,
                0,
                0,
                0,
                0,
            )),
        ));
    }
    q
}

/// `respond` with plain encoding, the messages decoded again.
fn transfer(
    snapshot: &Snapshot,
    journal: &Journal,
    query: &Message,
    transport: Transport,
    limit: usize,
) -> Result<Vec<Message>, Failure> {
    let mut plain = |m: &mut Message| m.to_vec().map_err(|e| e.to_string());
    let messages = respond(snapshot, journal, query, transport, limit, &mut plain)?;
    Ok(messages
        .iter()
        .map(|bytes| {
            assert!(bytes.len() <= 65535, "message of {} bytes", bytes.len());
            Message::from_vec(bytes).unwrap()
        })
        .collect())
}

fn all(reply: Result<Vec<Message>, Failure>) -> Vec<Record> {
    match reply {
        Ok(messages) => messages.into_iter().flat_map(|m| m.answers).collect(),
        Err(failure) => panic!("{failure:?}"),
    }
}

#[test]
fn axfr_is_soa_everything_soa_in_several_messages_when_large() {
    let snapshot = Snapshot::build(&config(), inventory(3000), None, 100);
    let messages = transfer(
        &snapshot,
        &Journal::default(),
        &query(RecordType::AXFR, None),
        Transport::Tcp,
        65535,
    )
    .unwrap();
    assert!(messages.len() > 1, "a large zone needs several messages");
    for m in &messages {
        assert_eq!(m.metadata.id, 77);
        assert!(m.metadata.authoritative);
    }
    assert_eq!(
        messages[0].queries.len(),
        1,
        "question in the first message"
    );
    assert!(messages[1].queries.is_empty());
    let records: Vec<Record> = messages.into_iter().flat_map(|m| m.answers).collect();
    assert_eq!(records.len(), snapshot.records().len() + 1);
    assert_eq!(
        records.first().map(|r| r.record_type()),
        Some(RecordType::SOA)
    );
    assert_eq!(
        records.last().map(|r| r.record_type()),
        Some(RecordType::SOA)
    );
    assert_eq!(&records[..records.len() - 1], snapshot.records());
}

#[test]
fn ixfr_sends_the_changes_or_falls_back() {
    let config = config();
    let s1 = Snapshot::build(&config, inventory(10), None, 100);
    let s2 = Snapshot::build(&config, inventory(11), Some(&s1), 100);
    let s3 = Snapshot::build(&config, inventory(12), Some(&s2), 100);
    assert_eq!((s1.serial(), s2.serial(), s3.serial()), (100, 101, 102));
    let limits = JournalLimits::default();
    let journal = Journal::default()
        .with(Diff::between_snapshots(&s1, &s2), limits)
        .with(Diff::between_snapshots(&s2, &s3), limits);

    // Current: the SOA alone.
    let current = all(transfer(
        &s3,
        &journal,
        &query(RecordType::IXFR, Some(102)),
        Transport::Tcp,
        65535,
    ));
    assert_eq!(current.len(), 1);

    // From 100: SOA(102) SOA(100) -… SOA(101) +… SOA(101) -… SOA(102) +… SOA(102)
    let inc = all(transfer(
        &s3,
        &journal,
        &query(RecordType::IXFR, Some(100)),
        Transport::Tcp,
        65535,
    ));
    let serials: Vec<u32> = inc
        .iter()
        .filter(|r| r.record_type() == RecordType::SOA)
        .map(soa_serial)
        .collect();
    assert_eq!(serials, [102, 100, 101, 101, 102, 102]);
    let added_a = inc
        .iter()
        .filter(|r| r.record_type() == RecordType::A)
        .count();
    assert!(
        added_a > 0 && added_a < 20,
        "only the changes: {added_a} A records"
    );

    // Unknown serial: the whole zone, AXFR-style.
    let fallback = all(transfer(
        &s3,
        &journal,
        &query(RecordType::IXFR, Some(7)),
        Transport::Tcp,
        65535,
    ));
    assert_eq!(fallback.len(), s3.records().len() + 1);

    // Over UDP a diff that does not fit gets the SOA alone.
    let udp = all(transfer(
        &s3,
        &journal,
        &query(RecordType::IXFR, Some(100)),
        Transport::Udp,
        100,
    ));
    assert_eq!(udp.len(), 1);
    let udp = all(transfer(
        &s3,
        &journal,
        &query(RecordType::IXFR, Some(100)),
        Transport::Udp,
        65535,
    ));
    assert_eq!(udp.len(), inc.len());
    // And the whole zone (unknown serial) when it fits, else the SOA alone.
    for (limit, want) in [(65535, fallback.len()), (512, 1)] {
        let udp = all(transfer(
            &s3,
            &journal,
            &query(RecordType::IXFR, Some(7)),
            Transport::Udp,
            limit,
        ));
        assert_eq!(udp.len(), want, "limit {limit}");
    }

    // IXFR without the client's SOA is malformed.
    assert_eq!(
        transfer(
            &s3,
            &journal,
            &query(RecordType::IXFR, None),
            Transport::Tcp,
            65535
        ),
        Err(Failure::Code(ResponseCode::FormErr))
    );
}

/// The diff taken on the stores equals the one taken on every record of
/// both zones, for changes of every kind: tasks added and removed, an
/// address moved, SRV targets changed, and a TTL change (removed and added
/// again).
#[test]
fn diff_of_snapshots_equals_diff_of_records() {
    let config = config();
    let with_ports = |n: usize, shift: u32, port: u16| {
        let mut inventory = (*inventory(n)).clone();
        for (i, task) in inventory.tasks.iter_mut().enumerate() {
            let task = Arc::make_mut(task);
            task.ipv4 = vec![Ipv4Addr::from(0x0a00_0000 + i as u32 + shift)];
            task.ports = vec![crate::inventory::PortBinding {
                container_name: "app".into(),
                container_port: 80,
                host_port: Some(port + i as u16),
                protocol: Default::default(),
                name: Some("http".into()),
            }];
        }
        Arc::new(inventory)
    };
    let zones = [
        Snapshot::build(&config, with_ports(20, 0, 30000), None, 1),
        Snapshot::build(&config, with_ports(25, 0, 30000), None, 2),
        Snapshot::build(&config, with_ports(15, 0, 30000), None, 3),
        Snapshot::build(&config, with_ports(15, 3, 30000), None, 4),
        Snapshot::build(&config, with_ports(15, 3, 31000), None, 5),
        Snapshot::build(&config, with_ports(0, 0, 30000), None, 6),
    ];
    let mut retimed = config.clone();
    retimed.record_ttl += 5;
    let ttl_changed = Snapshot::build(&retimed, with_ports(15, 3, 31000), None, 7);
    let mut pairs: Vec<(&Snapshot, &Snapshot)> = zones.iter().zip(&zones[1..]).collect();
    pairs.push((&zones[4], &ttl_changed));
    pairs.push((&zones[0], &zones[5]));
    // The reference merges lists sorted as hickory orders records.
    let sorted = |s: &Snapshot| {
        let mut records = s.records();
        records[1..].sort();
        records
    };
    for (old, new) in pairs {
        let want = Diff::between(&sorted(old), &sorted(new)).unwrap();
        let got = Diff::between_snapshots(old, new);
        assert!(!got.added.is_empty() || !got.removed.is_empty());
        assert_eq!(got, want, "{} -> {}", old.serial(), new.serial());
    }
}
