//! The transfer front door: access, error answers, and (in `signed`) TSIG
//! on ordinary queries.

use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;
use std::sync::Arc;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::rdata::tsig::TsigError;
use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::*;
use crate::config::TsigKey;
use crate::inventory::{Inventory, Task};

const ALLOWED: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));
const STRANGER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));

fn key() -> TsigKey {
    TsigKey::parse("xfr-key:hmac-sha256:c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTAwMzI=").unwrap()
}

fn tsigner(key: &TsigKey) -> hickory_proto::rr::TSigner {
    hickory_proto::rr::TSigner::new(
        key.secret().to_vec(),
        key.algorithm.clone(),
        key.name.clone(),
        300,
    )
    .unwrap()
}

fn snapshot() -> Arc<Snapshot> {
    let tasks: Vec<Task> = (0..3)
        .map(|i| Task {
            cluster: "prod".into(),
            service: Some("web".into()),
            task_id: format!("t{i}"),
            last_status: "RUNNING".into(),
            desired_status: "RUNNING".into(),
            ipv4: vec![Ipv4Addr::new(10, 0, 0, i + 1)],
            ..Task::default()
        })
        .collect();
    let inventory = Arc::new(Inventory::of_tasks(tasks));
    Arc::new(Snapshot::build(
        &crate::testing::config().zone,
        inventory,
        None,
        100,
    ))
}

fn transfers() -> Transfers {
    Transfers::new(TransferConfig {
        allow: vec![crate::config::parse_prefix("127.0.0.3").unwrap()],
        keys: vec![key()],
        ..TransferConfig::default()
    })
}

fn soa(owner: &str, serial: u32) -> Record {
    let origin = Name::from_str(owner).unwrap();
    Record::from_rdata(
        origin.clone(),
        0,
        RData::SOA(SOA::new(origin.clone(), origin, serial, 0, 0, 0, 0)),
    )
}

/// A query for `name`/`qtype`, with RD set and an OPT record, and for IXFR
/// the client's SOA owned by `soa_owner`.
fn query(name: &str, qtype: RecordType, soa_owner: Option<&str>) -> Message {
    let mut q = Message::query();
    q.metadata.id = 4242;
    q.metadata.recursion_desired = true;
    q.add_query(Query::query(Name::from_str(name).unwrap(), qtype));
    if let Some(owner) = soa_owner {
        q.authorities.push(soa(owner, 1));
    }
    let mut edns = Edns::new();
    edns.set_max_payload(1232);
    q.set_edns(edns);
    q
}

fn ask(
    transfers: &Transfers,
    snapshot: &Snapshot,
    query: &Message,
    peer: IpAddr,
    transport: Transport,
) -> Vec<Message> {
    let bytes = query.to_vec().unwrap();
    transfers
        .respond(Some(snapshot), &bytes, peer, transport, 1232)
        .expect("a transfer query is answered")
        .iter()
        .map(|m| Message::from_vec(m).unwrap())
        .collect()
}

/// RFC 1035 §4.1.1: RD is copied into the response; RFC 6891 §6.1.1: a
/// request with an OPT record gets one back. Every transfer error, over
/// both transports.
#[test]
fn transfer_errors_copy_rd_and_answer_with_opt() {
    let transfers = transfers();
    let snapshot = snapshot();
    transfers.observe(&snapshot);
    let signed_badly = {
        let other =
            TsigKey::parse("xfr-key:hmac-sha256:b3RoZXItc2VjcmV0LW90aGVyLXNlY3JldC0wMDAwMzI=")
                .unwrap();
        let mut q = query("local.", RecordType::AXFR, None);
        let (tsig, _) = tsigner(&other)
            .sign_message(&q, crate::zone::serial::unix_now())
            .unwrap();
        q.set_signature(tsig);
        q
    };
    // (what, query, from, want)
    let cases: Vec<(&str, Message, IpAddr, ResponseCode)> = vec![
        (
            "unsigned, address not allowed",
            query("local.", RecordType::AXFR, None),
            STRANGER,
            ResponseCode::Refused,
        ),
        (
            "another zone",
            query("example.com.", RecordType::AXFR, None),
            ALLOWED,
            ResponseCode::NotAuth,
        ),
        (
            "IXFR without an SOA",
            query("local.", RecordType::IXFR, None),
            ALLOWED,
            ResponseCode::FormErr,
        ),
        ("bad TSIG", signed_badly, STRANGER, ResponseCode::NotAuth),
    ];
    for (what, q, peer, want) in cases {
        for transport in [Transport::Udp, Transport::Tcp] {
            let replies = ask(&transfers, &snapshot, &q, peer, transport);
            let [reply] = replies.as_slice() else {
                panic!("{what} over {transport:?}: {} messages", replies.len());
            };
            let m = &reply.metadata;
            assert_eq!(m.response_code, want, "{what} over {transport:?}");
            assert_eq!(m.message_type, MessageType::Response);
            assert_eq!(m.op_code, OpCode::Query);
            assert_eq!(m.id, 4242);
            assert!(m.recursion_desired, "{what} over {transport:?}: RD copied");
            assert_eq!(reply.queries, q.queries, "{what}: question echoed");
            let edns = reply.edns.as_ref();
            assert!(edns.is_some(), "{what} over {transport:?}: OPT answered");
            assert_eq!(edns.map(|e| e.max_payload()), Some(1232), "{what}");
        }
    }
    // AXFR over UDP (RFC 5936 §4.2): FORMERR, same header rules.
    let q = query("local.", RecordType::AXFR, None);
    let replies = ask(&transfers, &snapshot, &q, ALLOWED, Transport::Udp);
    assert_eq!(replies[0].metadata.response_code, ResponseCode::FormErr);
    assert!(replies[0].metadata.recursion_desired && replies[0].edns.is_some());
    // And a transfer that is sent copies RD too.
    for transport in [Transport::Udp, Transport::Tcp] {
        let q = query("local.", RecordType::IXFR, Some("local."));
        let replies = ask(&transfers, &snapshot, &q, ALLOWED, transport);
        assert_eq!(replies[0].metadata.response_code, ResponseCode::NoError);
        assert!(replies.iter().all(|r| r.metadata.recursion_desired));
    }
}

/// RFC 1995 §3: the authority section holds the client's SOA of the zone
/// asked for; an SOA owned by another name is a malformed request
/// (FORMERR, as Knot answers), never served.
#[test]
fn ixfr_with_the_soa_of_another_zone_is_formerr() {
    let transfers = transfers();
    let snapshot = snapshot();
    transfers.observe(&snapshot);
    for owner in ["example.com.", "sub.local.", "."] {
        for transport in [Transport::Udp, Transport::Tcp] {
            let q = query("local.", RecordType::IXFR, Some(owner));
            let replies = ask(&transfers, &snapshot, &q, ALLOWED, transport);
            assert_eq!(replies.len(), 1, "{owner} over {transport:?}");
            assert_eq!(
                replies[0].metadata.response_code,
                ResponseCode::FormErr,
                "SOA owned by {owner} over {transport:?}"
            );
            assert!(replies[0].answers.is_empty());
        }
    }
    // Case does not matter (RFC 4343).
    let q = query("local.", RecordType::IXFR, Some("LOCAL."));
    let replies = ask(&transfers, &snapshot, &q, ALLOWED, Transport::Tcp);
    assert_eq!(replies[0].metadata.response_code, ResponseCode::NoError);
    assert!(!replies[0].answers.is_empty());
}

/// `query` signed with `key` at `time`: the bytes and the request MAC.
fn signed(query: &Message, key: &TsigKey, time: u64) -> (Vec<u8>, Vec<u8>) {
    let (tsig, _) = tsigner(key).sign_message(query, time).unwrap();
    let mac = tsig.data.mac.clone();
    let mut query = query.clone();
    query.set_signature(tsig);
    (query.to_vec().unwrap(), mac)
}

/// The answer function's stand-in: a NOERROR answer echoing the question,
/// which records the room it was asked to leave.
fn stand_in(room: &mut usize) -> impl FnOnce(&Message, usize) -> Option<Vec<u8>> + '_ {
    move |query, leave| {
        *room = leave;
        let mut response = Message::response(query.metadata.id, query.metadata.op_code);
        response.queries = query.queries.clone();
        response.metadata.authoritative = true;
        response.to_vec().ok()
    }
}

#[test]
fn signed_ordinary_queries_get_signed_answers() {
    let transfers = transfers();
    let now = crate::zone::serial::unix_now();
    for op_code in [OpCode::Query, OpCode::Notify, OpCode::Update] {
        let mut q = query("local.", RecordType::SOA, None);
        q.metadata.op_code = op_code;
        let (bytes, mac) = signed(&q, &key(), now);
        assert!(access::is_signed(&bytes));
        let mut room = 0;
        let Signed::Reply(reply) = transfers.respond_signed(&bytes, 1232, stand_in(&mut room))
        else {
            panic!("{op_code:?}: no reply");
        };
        // hmac-sha256: owner "xfr-key." (9), 10, "hmac-sha256." (13), 6 + 2
        // + 2, the MAC (32), 6.
        assert_eq!(room, 9 + 10 + 13 + 10 + 32 + 6, "room for the TSIG record");
        let message = Message::from_vec(&reply).unwrap();
        assert_eq!(message.metadata.op_code, op_code);
        let tsig = message.signature().expect("signed").data.clone();
        assert_eq!(tsig.error, None);
        assert_eq!(
            reply.len() - Message::response(0, op_code).to_vec().unwrap().len() - 11,
            room,
            "{op_code:?}: the room left is what the record took"
        );
        tsigner(&key())
            .verify_message_byte(&reply, Some(&mac), true)
            .expect("the answer verifies with the request's MAC");
    }
}

#[test]
fn signed_ordinary_queries_that_do_not_verify_get_notauth() {
    let transfers = transfers();
    let now = crate::zone::serial::unix_now();
    let wrong =
        TsigKey::parse("xfr-key:hmac-sha256:b3RoZXItc2VjcmV0LW90aGVyLXNlY3JldC0wMDAwMzI=").unwrap();
    let other_algorithm = TsigKey::parse(
        "xfr-key:hmac-sha384:c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTAwMzJzZWNyZXQtc2VjcmV0LXNlY3JldC1zZWNyZXQtMDAzMg==",
    )
    .unwrap();
    let stranger =
        TsigKey::parse("stranger:hmac-sha256:c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTAwMzI=")
            .unwrap();
    // (what, key, signed at, TSIG error, whether the error is signed)
    let cases = [
        ("wrong secret", &wrong, now, TsigError::BadSig, false),
        (
            "another algorithm",
            &other_algorithm,
            now,
            TsigError::BadKey,
            false,
        ),
        ("unknown key", &stranger, now, TsigError::BadKey, false),
        ("stale", &key(), now - 1000, TsigError::BadTime, true),
    ];
    for (what, signing, at, want, is_signed) in cases {
        let q = query("local.", RecordType::SOA, None);
        let (bytes, mac) = signed(&q, signing, at);
        let mut room = usize::MAX;
        let Signed::Reply(reply) = transfers.respond_signed(&bytes, 1232, stand_in(&mut room))
        else {
            panic!("{what}: no reply");
        };
        assert_eq!(room, usize::MAX, "{what}: not answered from the zone");
        let message = Message::from_vec(&reply).unwrap();
        assert_eq!(
            message.metadata.response_code,
            ResponseCode::NotAuth,
            "{what}"
        );
        assert!(
            message.metadata.recursion_desired && message.edns.is_some(),
            "{what}"
        );
        assert_eq!(message.queries, q.queries, "{what}");
        let tsig = message.signature().expect("a TSIG record");
        assert_eq!(tsig.data.error, Some(want), "{what}");
        assert_eq!(tsig.name, signing.name, "{what}: the request's key");
        assert_eq!(tsig.data.algorithm, signing.algorithm, "{what}");
        assert_eq!(tsig.data.oid, 4242);
        if is_signed {
            assert_eq!(tsig.data.time, at, "{what}: Time Signed is the request's");
            let ours = tsig
                .data
                .other
                .iter()
                .fold(0u64, |t, b| t << 8 | u64::from(*b));
            assert!(ours.abs_diff(now) < 5, "{what}: Other Data is our time");
            tsigner(signing)
                .verify_message_byte(&reply, Some(&mac), true)
                .expect("BADTIME is signed");
        } else {
            assert!(tsig.data.mac.is_empty(), "{what}: unsigned");
        }
    }
}

#[test]
fn only_signed_queries_take_the_signed_path() {
    let transfers = transfers();
    let mut plain = query("local.", RecordType::SOA, None);
    let mut room = 0;
    let bytes = plain.to_vec().unwrap();
    assert!(!access::is_signed(&bytes));
    assert_eq!(
        transfers.respond_signed(&bytes, 1232, stand_in(&mut room)),
        Signed::NotSigned
    );
    plain.edns = None;
    assert!(!access::is_signed(&plain.to_vec().unwrap()));
    // A signed response is never answered.
    let mut response = query("local.", RecordType::SOA, None);
    response.metadata.message_type = MessageType::Response;
    let (bytes, _) = signed(&response, &key(), crate::zone::serial::unix_now());
    assert_eq!(
        transfers.respond_signed(&bytes, 1232, stand_in(&mut room)),
        Signed::Nothing
    );
    // Cut anywhere, a signed query is read without a panic, and is
    // signed only when whole.
    let (whole, _) = signed(
        &query("local.", RecordType::SOA, None),
        &key(),
        crate::zone::serial::unix_now(),
    );
    for end in 0..whole.len() {
        assert!(!access::is_signed(&whole[..end]), "cut at {end}");
        assert_eq!(
            transfers.respond_signed(&whole[..end], 1232, stand_in(&mut room)),
            Signed::NotSigned,
            "cut at {end}"
        );
    }
    assert!(access::is_signed(&whole));
}

/// The journal is kept only when someone may transfer: without
/// `transfer_allow` or a key no IXFR is answered, so no diff is made.
#[test]
fn the_journal_is_kept_only_when_transfers_are_allowed() {
    let first = snapshot();
    let mut moved = (*first.inventory).clone();
    Arc::make_mut(&mut moved.tasks[0]).ipv4 = vec![Ipv4Addr::new(10, 0, 0, 9)];
    let second = Arc::new(Snapshot::build(
        &crate::testing::config().zone,
        Arc::new(moved),
        Some(&first),
        200,
    ));
    assert_ne!(first.serial(), second.serial());
    let diffs = |transfers: &Transfers| {
        transfers.observe(&first);
        transfers.observe(&second);
        transfers
            .journals
            .load()
            .values()
            .map(|j| j.len())
            .sum::<usize>()
    };
    assert_eq!(diffs(&transfers()), 1, "allowed: one diff");
    assert_eq!(diffs(&Transfers::new(TransferConfig::default())), 0);
}
