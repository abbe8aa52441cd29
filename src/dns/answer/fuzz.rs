//! Fuzzing on stable Rust: property tests (proptest) of the request path
//! `respond(Some(&snapshot), bytes, transport, &limits)`.
//!
//! Inputs: random bytes; real query packets mutated (bit flips, cuts, count
//! fields, label lengths, compression pointers, random bytes); random
//! well-formed queries (any name, type, class, opcode, flags, EDNS).
//! Properties, for every input:
//! - `respond` does not panic;
//! - a response parses with hickory-proto (`Message::from_vec`), is a
//!   response, and echoes the query ID;
//! - a response with a question echoes the query's first question exactly
//!   (same bytes: case kept);
//! - a response fits: 512 bytes over UDP without EDNS, the client's EDNS
//!   buffer (at least 512, at most ours) with it, 65 535 over TCP.
//!
//! CI runs `DEFAULT_CASES` per property (about a second); run longer with
//! e.g. `PROPTEST_CASES=400000 cargo test --lib dns::answer::fuzz`
//! (1.2 million cases, about a minute on 2 cores in the test profile).
//! A failure prints the smallest input found; add it to `tests.rs`.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::OnceLock;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{DNSClass, Name, RecordType};
use proptest::prelude::*;

use super::*;
use crate::config::{Config, Settings, SourceKind};
use crate::inventory::{NetworkMode, PortBinding, Task};

/// Cases per property when `PROPTEST_CASES` is not set: a few seconds.
const DEFAULT_CASES: u32 = 2000;

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    ProptestConfig {
        cases,
        // Failing inputs are printed (and shrunk); no regression files are
        // written into the source tree.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A zone with small and large RRsets (80 tasks behind one name: A, AAAA
/// and SRV sets that do not fit 1232 bytes), built once.
fn snapshot() -> &'static Snapshot {
    static SNAPSHOT: OnceLock<Snapshot> = OnceLock::new();
    SNAPSHOT.get_or_init(|| {
        let config = Config::resolve(Settings {
            source: Some(SourceKind::File),
            inventory: Some("x".into()),
            nameservers: Some(vec![
                "ns1.local=127.0.0.1".into(),
                "ns1.local=::1".into(),
                "ns.elsewhere.test".into(),
            ]),
            ..Settings::default()
        })
        .unwrap();
        let mut tasks = Vec::new();
        for (service, count) in [("api", 3u16), ("big", 80)] {
            for i in 0..count {
                tasks.push(Task {
                    cluster: "prod".into(),
                    service: Some(service.into()),
                    task_id: format!("{service}{i:029x}"),
                    last_status: "RUNNING".into(),
                    desired_status: "RUNNING".into(),
                    network_mode: NetworkMode::Awsvpc,
                    ipv4: vec![Ipv4Addr::new(10, 0, (i / 256) as u8, (i % 256) as u8)],
                    ipv6: vec![Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, i)],
                    ports: vec![PortBinding {
                        container_name: "app".into(),
                        container_port: 8080,
                        host_port: None,
                        protocol: Default::default(),
                        name: Some("http".into()),
                    }],
                    ..Task::default()
                });
            }
        }
        Snapshot::of_tasks(&config.zone, tasks, 1)
    })
}

/// Names to ask for: in the zone (with and without records), beside and
/// outside it.
const NAMES: &[&str] = &[
    "local.",
    "LoCaL.",
    "api.local.",
    "big.local.",
    "BIG.prod.local.",
    "_http._tcp.big.local.",
    "_http._tcp.api.prod.local.",
    "_tcp.big.local.",
    "prod.local.",
    "ns1.local.",
    "nope.local.",
    "a.b.c.api.local.",
    "example.com.",
    ".",
    "*.local.",
];

fn any_name() -> impl Strategy<Value = Name> {
    prop_oneof![
        3 => proptest::sample::select(NAMES).prop_map(|n| Name::from_ascii(n).unwrap()),
        // Labels hickory accepts when encoding (it rejects some, e.g. a
        // `*` that is not a whole label).
        1 => proptest::collection::vec("[a-zA-Z0-9][a-zA-Z0-9_-]{0,19}", 1..5).prop_filter_map(
            "a name hickory encodes",
            |labels| Name::from_ascii(format!("{}.local.", labels.join("."))).ok()
        ),
    ]
}

fn any_type() -> impl Strategy<Value = RecordType> {
    prop_oneof![
        3 => proptest::sample::select(vec![
            RecordType::A,
            RecordType::AAAA,
            RecordType::SRV,
            RecordType::NS,
            RecordType::SOA,
            RecordType::ANY,
            RecordType::TXT,
            RecordType::AXFR,
            RecordType::IXFR,
            RecordType::OPT,
        ]),
        1 => any::<u16>().prop_map(RecordType::from),
    ]
}

fn any_class() -> impl Strategy<Value = DNSClass> {
    prop_oneof![
        3 => Just(DNSClass::IN),
        1 => Just(DNSClass::CH),
        1 => Just(DNSClass::ANY),
        1 => any::<u16>().prop_map(DNSClass::from),
    ]
}

/// (payload, version, DO) of an OPT record, or none.
fn any_edns() -> impl Strategy<Value = Option<(u16, u8, bool)>> {
    proptest::option::of((
        prop_oneof![
            Just(512u16),
            Just(1232),
            Just(4096),
            Just(65535),
            any::<u16>()
        ],
        prop_oneof![4 => Just(0u8), 1 => any::<u8>()],
        any::<bool>(),
    ))
}

/// Well-formed queries: 0 to 2 questions, any opcode and flags.
fn any_query() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<u16>(),
        prop_oneof![8 => Just(0u8), 1 => 0u8..16],
        any::<[bool; 3]>(),
        prop_oneof![
            8 => proptest::collection::vec((any_name(), any_type(), any_class()), 1..2),
            1 => proptest::collection::vec((any_name(), any_type(), any_class()), 0..3),
        ],
        any_edns(),
    )
        .prop_map(|(id, opcode, [rd, cd, ad], questions, edns)| {
            let mut message = Message::query();
            message.metadata.id = id;
            message.metadata.op_code = OpCode::from_u8(opcode);
            message.metadata.recursion_desired = rd;
            message.metadata.checking_disabled = cd;
            message.metadata.authentic_data = ad;
            for (name, qtype, class) in questions {
                let mut query = Query::query(name, qtype);
                query.set_query_class(class);
                message.add_query(query);
            }
            if let Some((payload, version, dnssec_ok)) = edns {
                let mut e = Edns::new();
                e.set_max_payload(payload);
                e.set_version(version);
                e.set_dnssec_ok(dnssec_ok);
                message.set_edns(e);
            }
            message.to_vec().unwrap()
        })
}

/// One edit of a packet; positions are taken modulo its length.
#[derive(Clone, Debug)]
enum Mutation {
    FlipBit(usize, u8),
    SetByte(usize, u8),
    Truncate(usize),
    /// Sets QDCOUNT, ANCOUNT, NSCOUNT or ARCOUNT.
    SetCount(usize, u16),
    /// Sets the length byte of the n-th label of the question name.
    LabelLength(usize, u8),
    /// Writes a compression pointer to `target` over the n-th label.
    Pointer(usize, u16),
    Append(Vec<u8>),
}

fn any_mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, v)| Mutation::SetByte(i, v)),
        any::<usize>().prop_map(Mutation::Truncate),
        (
            0usize..4,
            prop_oneof![Just(0u16), Just(1), Just(2), Just(u16::MAX), any::<u16>()]
        )
            .prop_map(|(i, v)| Mutation::SetCount(i, v)),
        (0usize..6, any::<u8>()).prop_map(|(i, v)| Mutation::LabelLength(i, v)),
        (0usize..6, prop_oneof![0u16..64, any::<u16>()]).prop_map(|(i, t)| Mutation::Pointer(i, t)),
        proptest::collection::vec(any::<u8>(), 1..40).prop_map(Mutation::Append),
    ]
}

/// Offsets of the label-length bytes of the question name (from byte 12),
/// up to the root label or the end of the packet.
fn label_offsets(packet: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut at = 12;
    while let Some(&len) = packet.get(at) {
        out.push(at);
        if len == 0 || len & 0xc0 != 0 {
            break;
        }
        at += 1 + usize::from(len);
    }
    out
}

fn mutate(mut packet: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let len = packet.len().max(1);
        match m {
            Mutation::FlipBit(i, bit) => {
                if let Some(b) = packet.get_mut(i % len) {
                    *b ^= 1 << bit;
                }
            }
            Mutation::SetByte(i, v) => {
                if let Some(b) = packet.get_mut(i % len) {
                    *b = *v;
                }
            }
            Mutation::Truncate(i) => packet.truncate(i % len),
            Mutation::SetCount(which, v) => {
                let at = 4 + 2 * which;
                if packet.len() >= at + 2 {
                    packet[at..at + 2].copy_from_slice(&v.to_be_bytes());
                }
            }
            Mutation::LabelLength(n, v) => {
                let offsets = label_offsets(&packet);
                if let Some(&at) = offsets.get(n % offsets.len().max(1)) {
                    packet[at] = *v;
                }
            }
            Mutation::Pointer(n, target) => {
                let offsets = label_offsets(&packet);
                if let Some(&at) = offsets.get(n % offsets.len().max(1))
                    && packet.len() >= at + 2
                {
                    let pointer = 0xc000 | (target & 0x3fff);
                    packet[at..at + 2].copy_from_slice(&pointer.to_be_bytes());
                }
            }
            Mutation::Append(bytes) => packet.extend_from_slice(bytes),
        }
    }
    packet
}

fn any_limits() -> impl Strategy<Value = Limits> {
    let payload = prop_oneof![Just(1232u16), Just(512), Just(4096), 512u16..=4096];
    let spread = (any::<bool>(), prop_oneof![Just(0u16), 1u16..=10]).prop_map(|(rotate, max)| {
        crate::config::Spread {
            rotate,
            max_answers: std::num::NonZeroU16::new(max),
        }
    });
    (payload, spread, any::<u32>()).prop_map(|(max_udp_payload, spread, pick)| Limits {
        max_udp_payload,
        spread,
        pick,
    })
}

fn any_transport() -> impl Strategy<Value = Transport> {
    prop_oneof![Just(Transport::Udp), Just(Transport::Tcp)]
}

/// The question of a packet as raw bytes (name, type, class), when the name
/// is written without compression.
fn question_bytes(packet: &[u8]) -> Option<&[u8]> {
    let last = *label_offsets(packet).last()?;
    if packet[last] != 0 {
        return None;
    }
    packet.get(12..last + 5)
}

/// Checks every property of the response to `request`.
fn check(request: &[u8], transport: Transport, limits: &Limits) -> Result<(), TestCaseError> {
    let Some(bytes) = respond(Some(snapshot()), request, transport, limits) else {
        // Dropping is allowed only for what cannot be answered: no header,
        // or not a query.
        prop_assert!(
            request.len() < 12 || request[2] & 0x80 != 0,
            "dropped a query"
        );
        return Ok(());
    };
    let response = Message::from_vec(&bytes)
        .map_err(|e| TestCaseError::fail(format!("response does not parse: {e}: {bytes:02x?}")))?;
    prop_assert_eq!(response.metadata.message_type, MessageType::Response);
    prop_assert_eq!(&bytes[..2], &request[..2], "ID echoed");

    if !response.queries.is_empty() {
        prop_assert_eq!(response.queries.len(), 1);
        let query = Message::from_vec(request)
            .map_err(|e| TestCaseError::fail(format!("a question echoed for a bad query: {e}")))?;
        let (asked, echoed) = (&query.queries[0], &response.queries[0]);
        prop_assert_eq!(asked.name().to_ascii(), echoed.name().to_ascii());
        prop_assert_eq!(asked.query_type(), echoed.query_type());
        prop_assert_eq!(asked.query_class(), echoed.query_class());
        if let Some(raw) = question_bytes(request) {
            prop_assert_eq!(bytes.get(12..12 + raw.len()), Some(raw), "question bytes");
        }
    }

    let limit = match (transport, &response.edns) {
        (Transport::Tcp, _) => usize::from(u16::MAX),
        (Transport::Udp, None) => 512,
        (Transport::Udp, Some(_)) => {
            let asked = Message::from_vec(request)
                .ok()
                .and_then(|q| q.edns.map(|e| e.max_payload()))
                .unwrap_or(512);
            usize::from(asked.clamp(512, limits.max_udp_payload.max(512)))
        }
    };
    prop_assert!(
        bytes.len() <= limit,
        "{} bytes over {:?}, limit {}",
        bytes.len(),
        transport,
        limit
    );
    Ok(())
}

/// Seeds for mutation: real queries, with and without EDNS.
fn any_real_packet() -> impl Strategy<Value = Vec<u8>> {
    any_query()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn random_bytes(
        request in proptest::collection::vec(any::<u8>(), 0..600),
        transport in any_transport(),
        limits in any_limits(),
    ) {
        check(&request, transport, &limits)?;
    }

    #[test]
    fn mutated_queries(
        packet in any_real_packet(),
        mutations in proptest::collection::vec(any_mutation(), 1..5),
        transport in any_transport(),
        limits in any_limits(),
    ) {
        check(&mutate(packet, &mutations), transport, &limits)?;
    }

    #[test]
    fn well_formed_queries(
        request in any_query(),
        transport in any_transport(),
        limits in any_limits(),
    ) {
        check(&request, transport, &limits)?;
    }
}
