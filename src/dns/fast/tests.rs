//! The fast path must give exactly `respond`'s bytes, or stand aside; and it
//! must not stand aside for the common queries.

use std::net::{Ipv4Addr, Ipv6Addr};

use hickory_proto::rr::Name;

use super::*;
use crate::config::{Config, Settings, SourceKind};
use crate::inventory::{NetworkMode, PortBinding, Task};

/// A zone with the shapes that matter: services with several tasks, bridge
/// and awsvpc, IPv6, SRV with additionals, one service too big for 512
/// bytes, another too big for 1232.
fn snapshot() -> Served {
    let config = Config::resolve(Settings {
        source: Some(SourceKind::File),
        inventory: Some("x".into()),
        nameservers: Some(vec!["ns1.local=127.0.0.1".into()]),
        ..Settings::default()
    })
    .unwrap();
    let mut tasks = Vec::new();
    for (service, count, mode) in [
        ("web", 3, NetworkMode::Bridge),
        ("api", 2, NetworkMode::Awsvpc),
        ("mid", 40, NetworkMode::Awsvpc),
        ("big", 120, NetworkMode::Bridge),
    ] {
        for i in 0..count {
            let awsvpc = mode == NetworkMode::Awsvpc;
            tasks.push(Task {
                cluster: if i % 2 == 0 { "prod" } else { "staging" }.into(),
                service: Some(service.into()),
                family: service.into(),
                task_id: format!("{service}{i:03}"),
                last_status: "RUNNING".into(),
                desired_status: "RUNNING".into(),
                network_mode: mode,
                ipv4: vec![Ipv4Addr::new(10, 0, (i / 200) as u8, (i % 200) as u8 + 1)],
                ipv6: if awsvpc && i % 2 == 0 {
                    vec![Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, i as u16 + 1)]
                } else {
                    vec![]
                },
                ports: vec![PortBinding {
                    container_name: "c".into(),
                    container_port: 8080,
                    host_port: (!awsvpc).then_some(30000 + i as u16),
                    protocol: Default::default(),
                    name: Some("http".into()),
                }],
                ..Task::default()
            });
        }
    }
    Served::new(
        std::sync::Arc::new(Snapshot::of_tasks(&config.zone, tasks, 1)),
        None,
    )
}

/// A query in wire format: `flags` are the header's bytes 2 and 3; `edns`
/// is (buffer size, DO).
fn query(id: u16, flags: [u8; 2], name: &[u8], qtype: u16, edns: Option<(u16, bool)>) -> Vec<u8> {
    let mut q = id.to_be_bytes().to_vec();
    q.extend_from_slice(&flags);
    q.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, u8::from(edns.is_some())]);
    q.extend_from_slice(name);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&[0, 1]);
    if let Some((size, dnssec_ok)) = edns {
        q.extend_from_slice(&[0, 0, 41]);
        q.extend_from_slice(&size.to_be_bytes());
        q.extend_from_slice(&[0, 0, if dnssec_ok { 0x80 } else { 0 }, 0, 0, 0]);
    }
    q
}

/// A name in wire format, as written (case kept).
fn wire(name: &Name) -> Vec<u8> {
    let mut out = Vec::new();
    for label in name.iter() {
        out.push(label.len() as u8);
        out.extend_from_slice(label);
    }
    out.push(0);
    out
}

/// Compares both paths on `request`; returns whether the fast one answered.
fn same(
    s: &Served,
    request: &[u8],
    transport: Transport,
    limits: &Limits,
    out: &mut Vec<u8>,
) -> bool {
    let slow = answer::respond(Some(s.snapshot()), request, transport, limits);
    if !answer(s, request, transport, limits, out) {
        return false;
    }
    assert_eq!(
        Some(out.as_slice()),
        slow.as_deref(),
        "fast != respond for {request:02x?} over {transport:?} with {limits:?}"
    );
    true
}

fn recase(name: &[u8], style: usize) -> Vec<u8> {
    let mut out = name.to_vec();
    for (i, b) in out.iter_mut().enumerate() {
        let upper = match style {
            0 => false,
            1 => true,
            _ => i % 3 == 1,
        };
        if upper {
            *b = b.to_ascii_uppercase();
        }
    }
    out
}

const TYPES: [RecordType; 10] = [
    RecordType::A,
    RecordType::AAAA,
    RecordType::SRV,
    RecordType::TXT,
    RecordType::NS,
    RecordType::SOA,
    RecordType::MX,
    RecordType::NULL,
    RecordType::CAA,
    RecordType::Unknown(65280),
];

const EDNS: [Option<(u16, bool)>; 7] = [
    None,
    Some((512, false)),
    Some((1232, false)),
    Some((4096, false)),
    Some((100, false)),
    Some((1232, true)),
    Some((700, true)),
];

#[test]
fn fast_path_equals_respond_for_every_name_and_type() {
    let s = snapshot();
    assert_eq!(
        s.answers().rendered(),
        0,
        "templates wait for the first query"
    );
    let mut names: Vec<Vec<u8>> = s
        .snapshot()
        .nodes()
        .map(|n| s.snapshot().store().names().wire(n.id()).to_vec())
        .collect();
    // Names that do not exist: under the apex, under a name, deep, and
    // beside the SOA's own names.
    for extra in [
        "nope.local.",
        "x.web.prod.local.",
        "a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.local.",
        "x.ns1.local.",
        "hostmaster.local.",
        "x.hostmaster.local.",
        "nx-probe-0.local.",
        "example.com.",
        "local.example.",
    ] {
        names.push(wire(&Name::from_ascii(extra).unwrap()));
    }
    let mut out = Vec::new();
    let (mut fast, mut total, mut lower_fast, mut lower_total) = (0, 0, 0, 0);
    for max in [512u16, 1232, 4096] {
        for name in &names {
            for style in 0..3 {
                let name = recase(name, style);
                for rtype in TYPES {
                    for edns in EDNS {
                        for transport in [Transport::Udp, Transport::Tcp] {
                            let flags = [(total % 2) as u8, ((total / 2) % 2 * 0x10) as u8];
                            // A window of the rotated sets that moves from
                            // query to query.
                            let limits = Limits {
                                max_udp_payload: max,
                                pick: total as u32 * 7,
                                ..Limits::default()
                            };
                            let q = query(total as u16, flags, &name, u16::from(rtype), edns);
                            total += 1;
                            let answered = same(&s, &q, transport, &limits, &mut out);
                            fast += usize::from(answered);
                            if style == 0 {
                                lower_total += 1;
                                lower_fast += usize::from(answered);
                            }
                        }
                    }
                }
            }
        }
    }
    eprintln!(
        "fast path answered {fast} of {total} queries, {lower_fast} of {lower_total} lower-case ones"
    );
    assert_eq!(
        s.answers().rendered(),
        s.snapshot().node_count(),
        "every node asked for"
    );
    // Lower-case names in the zone are what it is for (the rest: names
    // outside the zone, answers too big for the client).
    assert!(
        lower_fast * 10 > lower_total * 7,
        "fast path too rarely taken: {lower_fast}/{lower_total}"
    );
}

/// Every way to spread: off, rotated, capped, both; every window of each
/// set, and the fast path still gives `respond`'s bytes, for address and
/// SRV sets alike.
#[test]
fn fast_path_equals_respond_for_every_window() {
    let spreads = [
        (false, None),
        (true, None),
        (true, Some(3)),
        (false, Some(8)),
        (true, Some(1)),
    ];
    let names = [
        "web.local.",
        "web.prod.local.",
        "api.local.",
        "mid.local.",
        "big.local.",
        "_http._tcp.web.local.",
        "_http._tcp.web.prod.local.",
        "_http._tcp.mid.local.",
        "_http._tcp.big.local.",
        "WEB.local.",
    ];
    let mut out = Vec::new();
    for (rotate, max) in spreads {
        let spread = Spread {
            rotate,
            max_answers: max.and_then(std::num::NonZeroU16::new),
        };
        let s = snapshot();
        let (mut fast, mut total) = (0, 0);
        for name in names {
            let name = wire(&Name::from_ascii(name).unwrap());
            for rtype in [RecordType::A, RecordType::AAAA, RecordType::SRV] {
                for pick in 0..130 {
                    for edns in [None, Some((1232, false)), Some((4096, true))] {
                        for transport in [Transport::Udp, Transport::Tcp] {
                            let limits = Limits {
                                spread,
                                pick,
                                ..Limits::default()
                            };
                            let q = query(pick as u16, [1, 0], &name, u16::from(rtype), edns);
                            total += 1;
                            fast += usize::from(same(&s, &q, transport, &limits, &mut out));
                        }
                    }
                }
            }
        }
        eprintln!("{spread:?}: fast path answered {fast} of {total}");
        assert!(fast * 2 > total, "{spread:?}: fast path too rarely taken");
    }
}

/// With rotation on, each address of a set comes first as often as the
/// others over the windows, on the fast path; a cap returns that many
/// distinct records.
#[test]
fn rotated_answers_start_at_every_record() {
    let s = snapshot();
    let mut out = Vec::new();
    let name = wire(&Name::from_ascii("_http._tcp.mid.local.").unwrap());
    let mut firsts = std::collections::HashMap::new();
    for pick in 0..400 {
        let limits = Limits {
            spread: Spread {
                rotate: true,
                max_answers: std::num::NonZeroU16::new(8),
            },
            pick,
            ..Limits::default()
        };
        let q = query(
            1,
            [1, 0],
            &name,
            u16::from(RecordType::SRV),
            Some((1232, false)),
        );
        assert!(same(&s, &q, Transport::Udp, &limits, &mut out), "slow path");
        let message = hickory_proto::op::Message::from_vec(&out).unwrap();
        let targets: std::collections::HashSet<_> = (message.answers.iter())
            .map(|r| r.data.to_string())
            .collect();
        assert_eq!(message.answers.len(), 8);
        assert_eq!(targets.len(), 8, "distinct records");
        // The additional section holds the chosen targets' addresses only.
        assert!(!message.additionals.is_empty());
        for extra in &message.additionals {
            assert!(
                message.answers.iter().any(|a| match &a.data {
                    RData::SRV(srv) => srv.target == extra.name,
                    _ => false,
                }),
                "{extra} is no chosen target's"
            );
        }
        *firsts
            .entry(message.answers[0].data.to_string())
            .or_insert(0) += 1;
    }
    // 40 records, 400 windows: each first 10 times.
    assert_eq!(firsts.len(), 40);
    assert!(firsts.values().all(|&n| n == 10), "{firsts:?}");
}

/// The queries a resolver sends most, lower-case, with and without EDNS,
/// over UDP, take the fast path.
#[test]
fn common_queries_take_the_fast_path() {
    let s = snapshot();
    let limits = Limits::default();
    let mut out = Vec::new();
    for (name, rtype) in [
        ("web.local.", RecordType::A),
        ("web.prod.local.", RecordType::A),
        ("web000.web.local.", RecordType::A),
        ("api.local.", RecordType::AAAA),
        ("_http._tcp.web.local.", RecordType::SRV),
        ("_http._tcp.mid.local.", RecordType::SRV),
        // Too big for 512 bytes without EDNS: its own template (TC).
        ("mid.local.", RecordType::A),
        ("nope.local.", RecordType::A),
        ("web.local.", RecordType::TXT),
        ("_tcp.web.local.", RecordType::A),
        ("local.", RecordType::SOA),
        ("local.", RecordType::NS),
        // Address answers hold no name but the owner: any case will do.
        ("WEB.local.", RecordType::A),
        ("Api.Local.", RecordType::AAAA),
        ("MID.local.", RecordType::A),
        // A negative answer's SOA is written whole when the question's
        // last label has a capital: as resolvers that randomise case ask.
        ("nope.LOCAL.", RecordType::A),
        ("NoPe.lOcAl.", RecordType::AAAA),
        ("WEB.Local.", RecordType::TXT),
        ("lOCAL.", RecordType::TXT),
    ] {
        let name = wire(&Name::from_ascii(name).unwrap());
        for edns in [None, Some((1232, false)), Some((4096, true))] {
            let q = query(7, [1, 0], &name, u16::from(rtype), edns);
            assert!(
                same(&s, &q, Transport::Udp, &limits, &mut out),
                "slow path for {name:?} {rtype} {edns:?}"
            );
        }
    }
    // An answer with other names (SRV targets, NS) asked in upper case
    // goes the slow way.
    for (name, rtype) in [
        ("_http._tcp.WEB.local.", RecordType::SRV),
        ("LOCAL.", RecordType::NS),
    ] {
        let q = query(
            7,
            [1, 0],
            &wire(&Name::from_ascii(name).unwrap()),
            u16::from(rtype),
            None,
        );
        assert!(!same(&s, &q, Transport::Udp, &limits, &mut out), "{name}");
    }
}

/// `q` (with a plain OPT last) with `options` as the OPT's data.
fn with_options(mut q: Vec<u8>, options: &[u8]) -> Vec<u8> {
    let at = q.len() - 2;
    q[at..].copy_from_slice(&(options.len() as u16).to_be_bytes());
    q.extend_from_slice(options);
    q
}

/// One EDNS option in wire format.
fn option(code: u16, data: &[u8]) -> Vec<u8> {
    let mut out = code.to_be_bytes().to_vec();
    out.extend_from_slice(&(data.len() as u16).to_be_bytes());
    out.extend_from_slice(data);
    out
}

/// Options that `respond` ignores (COOKIE, as `dig` and BIND send with every
/// query; padding; keepalive; unknown codes) keep a query on the fast path;
/// options hickory parses, and malformed option lists, leave it, and either
/// way the bytes are `respond`'s.
#[test]
fn edns_options_respond_ignores_stay_on_the_fast_path() {
    let s = snapshot();
    let limits = Limits::default();
    let mut out = Vec::new();
    let client_cookie = option(10, &[1, 2, 3, 4, 5, 6, 7, 8]);
    let both_cookies = option(10, &[7; 24]);
    let fast: Vec<Vec<u8>> = vec![
        client_cookie.clone(),
        both_cookies,
        option(12, &[0; 40]),
        option(11, &[]),
        option(65001, b"x"),
        [client_cookie.clone(), option(12, &[0; 3])].concat(),
    ];
    let slow: Vec<Vec<u8>> = vec![
        option(3, &[]),
        option(8, &[0, 1, 24, 0, 10, 0, 0]),
        option(5, &[8, 13]),
        [client_cookie.clone(), option(3, &[])].concat(),
        // Truncated: a header cut short, a length past the end.
        client_cookie[..3].to_vec(),
        [&[0, 10, 0, 9][..], &[1; 8]].concat(),
    ];
    for (name, rtype) in [
        ("web.local.", RecordType::A),
        ("_http._tcp.web.local.", RecordType::SRV),
        ("nope.local.", RecordType::A),
        ("WEB.local.", RecordType::A),
    ] {
        let base = query(
            9,
            [1, 0],
            &wire(&Name::from_ascii(name).unwrap()),
            u16::from(rtype),
            Some((1232, true)),
        );
        for options in &fast {
            let q = with_options(base.clone(), options);
            assert!(
                same(&s, &q, Transport::Udp, &limits, &mut out),
                "slow path for {name} {rtype} with {options:02x?}"
            );
        }
        for options in &slow {
            let q = with_options(base.clone(), options);
            assert!(
                !same(&s, &q, Transport::Udp, &limits, &mut out),
                "fast path for {name} {rtype} with {options:02x?}"
            );
        }
    }
}

/// Mutated queries: every byte changed in turn, and random cuts: the fast
/// path answers as `respond` does or stands aside, and never panics.
#[test]
fn mutated_queries_never_differ() {
    let s = snapshot();
    let limits = Limits::default();
    let mut out = Vec::new();
    let mut rng = fastrand::Rng::with_seed(7);
    let bases: Vec<Vec<u8>> = [
        ("web.local.", RecordType::A, Some((1232, false))),
        ("_http._tcp.web.local.", RecordType::SRV, None),
        ("nope.local.", RecordType::A, Some((512, true))),
        ("api.local.", RecordType::AAAA, Some((1232, false))),
    ]
    .into_iter()
    .map(|(n, t, e)| {
        query(
            1,
            [1, 0],
            &wire(&Name::from_ascii(n).unwrap()),
            u16::from(t),
            e,
        )
    })
    .collect();
    // The last one carries a COOKIE, so mutations reach the option walk.
    let mut bases = bases;
    if let Some(last) = bases.pop() {
        bases.push(with_options(last, &option(10, &[5; 8])));
    }
    for base in &bases {
        for at in 0..base.len() {
            for _ in 0..24 {
                let mut q = base.clone();
                q[at] = rng.u8(..);
                same(&s, &q, Transport::Udp, &limits, &mut out);
            }
        }
        for len in 0..base.len() {
            same(&s, &base[..len], Transport::Udp, &limits, &mut out);
        }
        let mut longer = base.clone();
        longer.push(0);
        assert!(!answer(&s, &longer, Transport::Udp, &limits, &mut out));
    }
}

#[test]
fn an_empty_table_answers_nothing() {
    let s = snapshot();
    let table = Table::default();
    let q = query(1, [1, 0], b"\x03web\x05local\x00", 1, None);
    let answered = table.try_answer(
        s.snapshot(),
        &q,
        Transport::Udp,
        &Limits::default(),
        &mut Vec::new(),
    );
    assert!(answered.is_none());
    assert!(answer(
        &s,
        &q,
        Transport::Udp,
        &Limits::default(),
        &mut Vec::new()
    ));
}

/// The forward zone and its reverse zones: an awsvpc task (IPv4 and IPv6),
/// two bridge tasks on one instance, two tasks of no instance at one
/// address, and a stopped task.
fn with_reverse(fallback: Option<&str>) -> Served {
    let config = crate::testing::config_with(Settings {
        reverse_zones: Some(vec!["10.0.0.0/16".into(), "2001:db8::/32".into()]),
        reverse_fallback: fallback.map(Into::into),
        ..Settings::default()
    });
    let task = |service: &str, id: &str, ip: [u8; 4], mode, instance: Option<&str>| Task {
        cluster: "prod".into(),
        service: Some(service.into()),
        family: service.into(),
        task_id: id.into(),
        last_status: "RUNNING".into(),
        desired_status: "RUNNING".into(),
        network_mode: mode,
        ec2_instance_id: instance.map(Into::into),
        ipv4: vec![Ipv4Addr::from(ip)],
        ..Task::default()
    };
    let mut api = task("api", "a1", [10, 0, 1, 10], NetworkMode::Awsvpc, None);
    api.ipv6 = vec![Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 5)];
    let mut stopped = task("api", "a2", [10, 0, 1, 11], NetworkMode::Awsvpc, None);
    stopped.desired_status = "STOPPED".into();
    let tasks = vec![
        api,
        stopped,
        task(
            "web",
            "w1",
            [10, 0, 2, 5],
            NetworkMode::Bridge,
            Some("i-0abc"),
        ),
        task(
            "web",
            "w2",
            [10, 0, 2, 5],
            NetworkMode::Bridge,
            Some("i-0abc"),
        ),
        task("odd", "o1", [10, 0, 3, 1], NetworkMode::Bridge, None),
        task("odd", "o2", [10, 0, 3, 1], NetworkMode::Bridge, None),
        task("far", "f1", [192, 168, 0, 1], NetworkMode::Awsvpc, None),
    ];
    let forward = Snapshot::of_tasks(&config.zone, tasks, 1);
    Served::new(std::sync::Arc::new(forward), None).with_reverse_zones(&config.zone, None, 1)
}

/// (rcode, answer records as "owner TYPE data") of `name`'s `rtype`, by the
/// zone `zone_for` chooses, on both paths when the fast one answers.
fn ask(s: &Served, name: &str, rtype: RecordType) -> (u8, Vec<String>) {
    let q = query(
        7,
        [1, 0],
        &wire(&Name::from_ascii(name).unwrap()),
        rtype.into(),
        None,
    );
    let zone = s.zone_for(&q);
    let mut out = Vec::new();
    same(zone, &q, Transport::Udp, &Limits::default(), &mut out);
    let bytes = answer::respond(
        Some(zone.snapshot()),
        &q,
        Transport::Udp,
        &Limits::default(),
    )
    .unwrap();
    let message = hickory_proto::op::Message::from_vec(&bytes).unwrap();
    let answers = (message.answers.iter())
        .map(|r| format!("{} {} {}", r.name, r.record_type(), r.data))
        .collect();
    (bytes[3] & 0x0f, answers)
}

#[test]
fn reverse_zones_answer_pointers() {
    let s = with_reverse(None);
    let origins: Vec<String> = s
        .zones()
        .map(|z| z.snapshot().origin().to_string())
        .collect();
    assert_eq!(
        origins,
        ["local.", "0.10.in-addr.arpa.", "8.b.d.0.1.0.0.2.ip6.arpa."]
    );
    let six = "5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.";
    let cases: [(&str, RecordType, u8, &[&str]); 11] = [
        (
            "10.1.0.10.in-addr.arpa.",
            RecordType::PTR,
            0,
            &["10.1.0.10.in-addr.arpa. PTR a1.api.local."],
        ),
        (
            "10.1.0.10.IN-ADDR.ARPA.",
            RecordType::PTR,
            0,
            &["10.1.0.10.IN-ADDR.ARPA. PTR a1.api.local."],
        ),
        (six, RecordType::PTR, 0, &[]),
        // A stopped task, an address two unrelated tasks hold: none.
        ("11.1.0.10.in-addr.arpa.", RecordType::PTR, 3, &[]),
        ("1.3.0.10.in-addr.arpa.", RecordType::PTR, 3, &[]),
        // Tasks on one instance: the host, whose address is served too.
        (
            "5.2.0.10.in-addr.arpa.",
            RecordType::PTR,
            0,
            &["5.2.0.10.in-addr.arpa. PTR i-0abc.hosts.local."],
        ),
        (
            "i-0abc.hosts.local.",
            RecordType::A,
            0,
            &["i-0abc.hosts.local. A 10.0.2.5"],
        ),
        // No task: NXDOMAIN; above a task's address: empty.
        ("9.9.0.10.in-addr.arpa.", RecordType::PTR, 3, &[]),
        ("1.0.10.in-addr.arpa.", RecordType::PTR, 0, &[]),
        ("0.10.in-addr.arpa.", RecordType::SOA, 0, &[]),
        // Outside every zone: refused.
        ("1.0.168.192.in-addr.arpa.", RecordType::PTR, 5, &[]),
    ];
    for (name, rtype, rcode, want) in cases {
        let (got_rcode, got) = ask(&s, name, rtype);
        assert_eq!(got_rcode, rcode, "{name} {rtype}");
        if name == six {
            assert_eq!(got, [format!("{six} PTR a1.api.local.")]);
        } else if rtype != RecordType::SOA {
            assert_eq!(got, want, "{name} {rtype}");
        } else {
            assert_eq!(got.len(), 1, "{got:?}");
        }
    }
    // Without reverse zones, no host names.
    let plain = snapshot();
    assert!(plain.reverse().is_empty());
    assert!(
        plain
            .snapshot()
            .names()
            .all(|n| !n.ends_with(b"\x05hosts\x05local\x00"))
    );
    // The PTR is rendered once and answered from the fast path.
    let q = query(
        1,
        [1, 0],
        &wire(&Name::from_ascii("10.1.0.10.in-addr.arpa.").unwrap()),
        12,
        None,
    );
    let mut out = Vec::new();
    assert!(same(
        s.zone_for(&q),
        &q,
        Transport::Udp,
        &Limits::default(),
        &mut out
    ));
}

#[test]
fn the_ec2_fallback_names_every_other_address() {
    let s = with_reverse(Some("ec2:eu-west-1"));
    let cases: [(&str, RecordType, u8, &[&str]); 7] = [
        (
            "10.1.0.10.in-addr.arpa.",
            RecordType::PTR,
            0,
            &["10.1.0.10.in-addr.arpa. PTR a1.api.local."],
        ),
        (
            "9.9.0.10.in-addr.arpa.",
            RecordType::PTR,
            0,
            &["9.9.0.10.in-addr.arpa. PTR ip-10-0-9-9.eu-west-1.compute.internal."],
        ),
        // The task that is stopped, the shared address: EC2's name too.
        (
            "11.1.0.10.in-addr.arpa.",
            RecordType::PTR,
            0,
            &["11.1.0.10.in-addr.arpa. PTR ip-10-0-1-11.eu-west-1.compute.internal."],
        ),
        ("9.9.0.10.in-addr.arpa.", RecordType::A, 0, &[]),
        ("9.0.10.in-addr.arpa.", RecordType::PTR, 0, &[]),
        ("x.9.0.10.in-addr.arpa.", RecordType::PTR, 3, &[]),
        ("1.9.9.0.10.in-addr.arpa.", RecordType::PTR, 3, &[]),
    ];
    for (name, rtype, rcode, want) in cases {
        let (got_rcode, got) = ask(&s, name, rtype);
        assert_eq!(got_rcode, rcode, "{name} {rtype}");
        assert_eq!(got, want, "{name} {rtype}");
    }
    // IPv6 has no EC2 name: NXDOMAIN still.
    let six = "6.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.";
    assert_eq!(ask(&s, six, RecordType::PTR).0, 3);
}
