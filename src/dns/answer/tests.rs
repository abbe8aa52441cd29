//! The answer function on its own: wire bytes in, wire bytes out.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use hickory_proto::op::{Edns, Message, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RecordType};

use super::*;
use crate::inventory::Task;

fn snapshot() -> Snapshot {
    let task = Task {
        cluster: "prod".into(),
        service: Some("api".into()),
        task_id: "t1".into(),
        last_status: "RUNNING".into(),
        desired_status: "RUNNING".into(),
        ipv4: vec![Ipv4Addr::new(10, 0, 0, 1)],
        ipv6: vec![Ipv6Addr::from_str("2001:db8::1").unwrap()],
        ..Task::default()
    };
    Snapshot::of_tasks(&crate::testing::config().zone, vec![task], 1)
}

fn ask(
    snapshot: Option<&Snapshot>,
    name: &str,
    qtype: RecordType,
    transport: Transport,
    edns: bool,
) -> Message {
    let mut query = Message::query();
    query.metadata.id = 0xbeef;
    query.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    if edns {
        query.set_edns(Edns::new());
    }
    let bytes = respond(
        snapshot,
        &query.to_vec().unwrap(),
        transport,
        &Limits::default(),
    )
    .unwrap();
    Message::from_vec(&bytes).unwrap()
}

#[test]
fn any_is_minimal_over_udp_and_whole_over_tcp() {
    let s = snapshot();
    let udp = ask(
        Some(&s),
        "api.local.",
        RecordType::ANY,
        Transport::Udp,
        true,
    );
    let types: Vec<RecordType> = udp.answers.iter().map(|r| r.record_type()).collect();
    assert_eq!(types, [RecordType::A]);
    let tcp = ask(
        Some(&s),
        "api.local.",
        RecordType::ANY,
        Transport::Tcp,
        true,
    );
    let types: Vec<RecordType> = tcp.answers.iter().map(|r| r.record_type()).collect();
    assert_eq!(types, [RecordType::A, RecordType::AAAA]);
}

#[test]
fn rcodes_and_flags() {
    let s = snapshot();
    // (name, type, rcode, aa, answers, authorities)
    let table = [
        (
            "api.local.",
            RecordType::A,
            ResponseCode::NoError,
            true,
            1,
            0,
        ),
        (
            "API.Local.",
            RecordType::AAAA,
            ResponseCode::NoError,
            true,
            1,
            0,
        ),
        (
            "api.local.",
            RecordType::TXT,
            ResponseCode::NoError,
            true,
            0,
            1,
        ),
        (
            "prod.local.",
            RecordType::A,
            ResponseCode::NoError,
            true,
            0,
            1,
        ),
        (
            "nope.local.",
            RecordType::A,
            ResponseCode::NXDomain,
            true,
            0,
            1,
        ),
        (
            "example.com.",
            RecordType::A,
            ResponseCode::Refused,
            false,
            0,
            0,
        ),
        (".", RecordType::NS, ResponseCode::Refused, false, 0, 0),
        (
            "local.",
            RecordType::AXFR,
            ResponseCode::Refused,
            false,
            0,
            0,
        ),
    ];
    for (name, qtype, rcode, aa, answers, authorities) in table {
        let r = ask(Some(&s), name, qtype, Transport::Udp, false);
        let what = format!("{name} {qtype}");
        assert_eq!(r.metadata.response_code, rcode, "{what}");
        assert_eq!(r.metadata.authoritative, aa, "{what}");
        assert!(!r.metadata.recursion_available, "{what}");
        assert_eq!(r.answers.len(), answers, "{what}");
        assert_eq!(r.authorities.len(), authorities, "{what}");
        assert_eq!(r.metadata.id, 0xbeef, "{what}");
        assert_eq!(
            r.queries[0].name().to_string(),
            name,
            "{what}: question as asked"
        );
    }
}

#[test]
fn servfail_before_the_first_snapshot() {
    let r = ask(None, "api.local.", RecordType::A, Transport::Udp, false);
    assert_eq!(r.metadata.response_code, ResponseCode::ServFail);
    assert!(r.answers.is_empty() && r.authorities.is_empty());
}

#[test]
fn other_classes_and_opcodes() {
    let s = snapshot();
    let mut query = Message::query();
    query.add_query(Query::query(
        Name::from_str("api.local.").unwrap(),
        RecordType::A,
    ));
    query.queries[0].set_query_class(DNSClass::CH);
    let r = Message::from_vec(
        &respond(
            Some(&s),
            &query.to_vec().unwrap(),
            Transport::Udp,
            &Limits::default(),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::Refused);

    query.queries[0].set_query_class(DNSClass::IN);
    query.metadata.op_code = OpCode::Status;
    let r = Message::from_vec(
        &respond(
            Some(&s),
            &query.to_vec().unwrap(),
            Transport::Udp,
            &Limits::default(),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::NotImp);
}

/// RFC 9619: more than one question is FORMERR whatever else the query
/// asks (found by the fuzz properties: BADVERS and NOTIMP used to echo both
/// questions).
#[test]
fn two_questions_are_formerr_before_any_other_check() {
    let s = snapshot();
    // (opcode, EDNS version)
    let table = [
        (OpCode::Query, None),
        (OpCode::Query, Some(1)),
        (OpCode::Notify, None),
        (OpCode::Update, Some(0)),
        (OpCode::Status, Some(1)),
    ];
    for (op_code, version) in table {
        let mut query = Message::query();
        query.metadata.id = 7;
        query.metadata.op_code = op_code;
        query.add_query(Query::query(
            Name::from_ascii("local.").unwrap(),
            RecordType::SOA,
        ));
        query.add_query(Query::query(
            Name::from_ascii("local.").unwrap(),
            RecordType::NS,
        ));
        if let Some(version) = version {
            let mut edns = Edns::new();
            edns.set_version(version);
            query.set_edns(edns);
        }
        let bytes = respond(
            Some(&s),
            &query.to_vec().unwrap(),
            Transport::Udp,
            &Limits::default(),
        )
        .unwrap();
        let r = Message::from_vec(&bytes).unwrap();
        let what = format!("{op_code:?} EDNS {version:?}");
        assert_eq!(r.metadata.response_code, ResponseCode::FormErr, "{what}");
        assert!(r.queries.is_empty(), "{what}");
        assert_eq!(r.metadata.id, 7, "{what}");
        assert_eq!(r.edns.is_some(), version.is_some(), "{what}");
    }
}
