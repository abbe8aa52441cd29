//! DNS behaviour of the running server, checked with `dig`: one test per rule
//! of the serving core (README, "DNS behaviour").

use std::net::UdpSocket;
use std::path::PathBuf;
use std::time::Duration;

use crate::harness::{Server, demo_config, dig_short, query};

fn demo() -> Server {
    Server::start(&demo_config(), &[], "local")
}

#[test]
fn service_names_answer_with_serving_tasks() {
    let s = demo();
    let p = s.port;
    // Two bridge tasks share one instance: one address. Both clusters merge.
    assert_eq!(
        dig_short(p, &["web.local", "A"]),
        ["10.0.1.10", "10.1.1.10"]
    );
    assert_eq!(dig_short(p, &["web.prod.local", "A"]), ["10.0.1.10"]);
    assert_eq!(dig_short(p, &["web.staging.local", "A"]), ["10.1.1.10"]);
    // api: one HEALTHY task served; the starting (UNKNOWN) and UNHEALTHY ones are not.
    assert_eq!(dig_short(p, &["api.local", "A"]), ["10.0.2.21"]);
    assert_eq!(
        dig_short(p, &["api.local", "AAAA"]),
        ["2600:1f18:1234:5600::21"]
    );
    assert!(
        dig_short(p, &["3d4e5f60718293a4b5c6d7e8f90a1b2c.api.local", "A"]).is_empty(),
        "a starting task has no name"
    );
    // One task by id.
    assert_eq!(
        dig_short(p, &["0a1b2c3d4e5f60718293a4b5c6d7e8f9.web.local", "A"]),
        ["10.0.1.10"]
    );
    // Normalised service name, its tag alias, and a standalone task's family.
    assert_eq!(
        dig_short(p, &["billing-worker-v2.local", "A"]),
        ["10.0.1.11"]
    );
    assert_eq!(dig_short(p, &["billing.prod.local", "A"]), ["10.0.1.11"]);
    assert_eq!(
        dig_short(p, &["db-migrate.staging.local", "A"]),
        ["10.1.2.30"]
    );
}

#[test]
fn srv_uses_host_ports_for_bridge_and_container_ports_for_awsvpc() {
    let s = demo();
    let r = query(s.port, &["_http._tcp.web.prod.local", "SRV"]);
    assert_eq!(r.status, "NOERROR");
    assert_eq!(
        r.answer_data(),
        [
            "0 1 32768 0a1b2c3d4e5f60718293a4b5c6d7e8f9.web.local.",
            "0 1 32771 1b2c3d4e5f60718293a4b5c6d7e8f90a.web.local."
        ]
    );
    // The targets' addresses come in the additional section.
    assert_eq!(r.additional.len(), 2, "{}", r.raw);
    assert!(
        r.additional.iter().all(|l| l.contains("10.0.1.10")),
        "{}",
        r.raw
    );

    let r = query(s.port, &["_grpc._tcp.api.local", "SRV"]);
    assert_eq!(
        r.answer_data(),
        ["0 1 8080 2c3d4e5f60718293a4b5c6d7e8f90a1b.api.local."]
    );
    // An unnamed port mapping is named by its container port.
    assert_eq!(
        dig_short(s.port, &["_9000._tcp.billing.local", "SRV"]),
        ["0 1 9000 5f60718293a4b5c6d7e8f90a1b2c3d4e.billing.local."]
    );
}

#[test]
fn authoritative_flags_and_ttls() {
    let s = demo();
    let r = query(s.port, &["web.local", "A", "+rec"]);
    assert_eq!(r.status, "NOERROR");
    assert!(r.flag("aa"), "AA: {}", r.raw);
    assert!(r.flag("rd"), "RD copied: {}", r.raw);
    assert!(!r.flag("ra"), "RA clear: {}", r.raw);
    assert!(
        r.answer
            .iter()
            .all(|l| l.split_whitespace().nth(1) == Some("10")),
        "record TTL 10: {}",
        r.raw
    );
}

#[test]
fn nxdomain_and_nodata_carry_the_soa_with_the_negative_ttl() {
    let s = demo();
    for (name, qtype, status) in [
        ("nope.local", "A", "NXDOMAIN"),
        ("x.web.prod.local", "A", "NXDOMAIN"),
        ("web.local", "TXT", "NOERROR"),
        ("web.local", "MX", "NOERROR"),
        // empty non-terminals exist: NODATA, never NXDOMAIN
        ("_tcp.web.local", "A", "NOERROR"),
        ("_http._tcp.web.local", "A", "NOERROR"),
        ("prod.local", "A", "NOERROR"),
    ] {
        let r = query(s.port, &[name, qtype]);
        assert_eq!(r.status, status, "{name} {qtype}: {}", r.raw);
        assert!(r.flag("aa"), "{name}: AA");
        assert!(r.answer.is_empty(), "{name} {qtype}: no answer");
        assert_eq!(
            r.authority.len(),
            1,
            "{name} {qtype}: SOA in authority: {}",
            r.raw
        );
        let soa: Vec<&str> = r.authority[0].split_whitespace().collect();
        assert_eq!(soa[3], "SOA", "{}", r.raw);
        assert_eq!(
            soa[1], "5",
            "negative TTL = min(SOA TTL 60, MINIMUM 5): {}",
            r.raw
        );
    }
}

#[test]
fn apex_soa_and_ns() {
    let s = demo();
    let r = query(s.port, &["local", "SOA"]);
    assert_eq!(r.answer.len(), 1, "{}", r.raw);
    let soa: Vec<&str> = r.answer[0].split_whitespace().collect();
    assert_eq!(&soa[4..6], ["ns1.local.", "hostmaster.local."]);
    assert_eq!(
        soa[7..].join(" "),
        "60 10 86400 5",
        "refresh retry expire minimum"
    );
    let r = query(s.port, &["local", "NS"]);
    assert_eq!(r.answer_data(), ["ns1.local."]);
    assert!(
        r.additional.iter().any(|l| l.ends_with("127.0.0.1")),
        "glue: {}",
        r.raw
    );
}

#[test]
fn refused_outside_the_zone_and_for_other_classes() {
    let s = demo();
    for args in [
        &["example.com", "A"][..],
        &[".", "NS"],
        &["localhost", "A"],
        &["local", "SOA", "-c", "CH"],
        &["version.bind", "TXT", "-c", "CH"],
    ] {
        let r = query(s.port, args);
        assert_eq!(r.status, "REFUSED", "{args:?}: {}", r.raw);
        assert!(!r.flag("aa"), "{args:?}: not authoritative");
        assert!(r.answer.is_empty());
    }
}

#[test]
fn names_match_in_any_case_and_the_question_is_echoed_as_asked() {
    let s = demo();
    // A, the fast path's any-case templates; SRV, the full answer function.
    for (name, rtype) in [("WeB.PrOd.LoCaL", "A"), ("_HTTP._tcp.Web.local", "SRV")] {
        let r = query(s.port, &[name, rtype]);
        assert_eq!(r.status, "NOERROR", "{name}");
        assert!(!r.answer.is_empty(), "{name}: {}", r.raw);
        assert!(
            r.question[0].starts_with(&format!("{name}.")),
            "{:?}",
            r.question
        );
        // Answer owners are written as asked too (RFC 4343 §4.1).
        for record in &r.answer {
            assert!(record.starts_with(&format!("{name}.")), "{record}");
        }
    }
    let r = query(s.port, &["WeB.PrOd.LoCaL", "A"]);
    assert_eq!(r.answer_data(), ["10.0.1.10"]);
}

#[test]
fn edns_buffer_badvers_and_do_bit() {
    let s = demo();
    let r = query(s.port, &["web.local", "A"]);
    let edns = r.edns.clone().unwrap_or_default();
    assert!(
        edns.contains("version: 0") && edns.contains("udp: 1232"),
        "{}",
        r.raw
    );
    assert!(!edns.contains("do"), "DO not set when not asked: {edns}");

    let r = query(s.port, &["web.local", "A", "+dnssec"]);
    assert!(
        r.edns.clone().unwrap_or_default().contains("flags: do"),
        "DO copied: {}",
        r.raw
    );

    let r = query(s.port, &["web.local", "A", "+edns=1", "+noednsnegotiation"]);
    assert_eq!(r.status, "BADVERS", "{}", r.raw);
    assert!(
        r.edns.clone().unwrap_or_default().contains("version: 0"),
        "{}",
        r.raw
    );
    assert!(r.answer.is_empty());

    let r = query(s.port, &["web.local", "A", "+noedns"]);
    assert!(
        r.edns.is_none(),
        "no OPT when the query had none: {}",
        r.raw
    );
}

#[test]
fn any_gets_a_minimal_answer_over_udp_and_everything_over_tcp() {
    let s = demo();
    // dig 9.18 sends ANY over TCP unless told otherwise.
    let udp = query(s.port, &["api.local", "ANY", "+notcp"]);
    assert!(udp.raw.contains("(UDP)"), "{}", udp.raw);
    assert_eq!(udp.status, "NOERROR");
    let types = |r: &crate::harness::Reply| {
        let mut t: Vec<String> = r
            .answer
            .iter()
            .filter_map(|l| l.split_whitespace().nth(3).map(str::to_owned))
            .collect();
        t.dedup();
        t
    };
    assert_eq!(
        types(&udp).len(),
        1,
        "one RRset over UDP (RFC 8482): {}",
        udp.raw
    );
    let tcp = query(s.port, &["api.local", "ANY", "+tcp"]);
    assert_eq!(types(&tcp), ["A", "AAAA"], "{}", tcp.raw);
}

/// An inventory with `n` tasks of one bridge service, each on its own address.
fn big_service(dir: &std::path::Path, n: usize) -> PathBuf {
    let mut inv = String::new();
    for i in 0..n {
        inv.push_str(&format!(
            "[[tasks]]\ncluster = \"prod\"\nservice = \"big\"\ntask_id = \"t{i:03}\"\nipv4 = [\"10.9.{}.{}\"]\nports = [{{ container_name = \"c\", container_port = 80, host_port = {}, name = \"http\" }}]\n",
            i / 250,
            i % 250 + 1,
            30000 + i
        ));
    }
    let inventory = dir.join("big.toml");
    std::fs::write(&inventory, inv).unwrap();
    let config = dir.join("big-config.toml");
    std::fs::write(
        &config,
        format!(
            "source = \"file\"\ninventory = {:?}\npoll_interval = \"1s\"\n",
            inventory.display().to_string()
        ),
    )
    .unwrap();
    config
}

#[test]
fn udp_drops_additional_first_then_truncates_and_tcp_gets_everything() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&big_service(dir.path(), 12), &[], "local");
    // 12 SRV records fit in 512 bytes; their 12 addresses on top do not.
    let r = query(
        s.port,
        &["_http._tcp.big.local", "SRV", "+noedns", "+ignore"],
    );
    assert!(!r.flag("tc"), "the answer fits: no TC: {}", r.raw);
    assert_eq!(r.counts[1], 12, "every SRV: {}", r.raw);
    assert_eq!(r.counts[3], 0, "additional dropped first: {}", r.raw);
    let r = query(s.port, &["_http._tcp.big.local", "SRV", "+tcp"]);
    assert_eq!(
        (r.counts[1], r.additional.len()),
        (12, 12),
        "full over TCP: {}",
        r.raw
    );
    // With a 1232-byte EDNS buffer the whole answer fits.
    let r = query(s.port, &["_http._tcp.big.local", "SRV", "+ignore"]);
    assert_eq!((r.counts[1], r.additional.len()), (12, 12), "{}", r.raw);
    drop(s);

    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&big_service(dir.path(), 200), &[], "local");
    // 200 A records (~3.2 KB) do not fit in 1232 bytes: TC, no partial RRset.
    let r = query(s.port, &["big.local", "A", "+ignore"]);
    assert!(r.flag("tc"), "{}", r.raw);
    assert_eq!(r.counts[1], 0, "no partial RRset: {}", r.raw);
    let r = query(s.port, &["big.local", "A", "+bufsize=4096", "+ignore"]);
    assert!(
        r.flag("tc"),
        "our limit is 1232 whatever the client offers: {}",
        r.raw
    );
    // dig retries over TCP on TC by default: every record.
    let r = query(s.port, &["big.local", "A"]);
    assert_eq!(r.counts[1], 200, "{}", r.raw);
}

/// Sends raw datagrams and returns the reply, if any.
pub(crate) fn exchange(port: u16, packet: &[u8]) -> Option<Vec<u8>> {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    socket.send_to(packet, ("127.0.0.1", port)).unwrap();
    let mut buf = [0u8; 4096];
    socket.recv(&mut buf).ok().map(|n| buf[..n].to_vec())
}

fn header(id: u16, flags: u16, qd: u16) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&id.to_be_bytes());
    h.extend_from_slice(&flags.to_be_bytes());
    h.extend_from_slice(&qd.to_be_bytes());
    h.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    h
}

/// `web.local. IN A` in wire format.
const QUESTION: &[u8] = b"\x03web\x05local\x00\x00\x01\x00\x01";

#[test]
fn malformed_queries_get_formerr_or_are_dropped_and_never_stop_the_server() {
    let s = demo();
    let rcode = |reply: &[u8]| reply[3] & 0x0f;
    // (what, packet, expected rcode or None for no reply)
    let mut truncated_question = header(2, 0x0100, 1);
    truncated_question.extend_from_slice(&QUESTION[..5]);
    let mut two_questions = header(3, 0x0100, 2);
    two_questions.extend_from_slice(QUESTION);
    two_questions.extend_from_slice(QUESTION);
    let mut bad_label = header(4, 0x0100, 1);
    bad_label.extend_from_slice(b"\x7fweb\x00\x00\x01\x00\x01");
    let mut status_opcode = header(5, 0x1000, 1);
    status_opcode.extend_from_slice(QUESTION);
    let mut response = header(6, 0x8000, 1);
    response.extend_from_slice(QUESTION);
    let cases: Vec<(&str, Vec<u8>, Option<u8>)> = vec![
        ("shorter than a header", vec![0, 1, 2], None),
        ("no question", header(1, 0x0100, 0), Some(1)),
        ("question cut short", truncated_question, Some(1)),
        ("two questions", two_questions, Some(1)),
        ("label past the end", bad_label, Some(1)),
        ("opcode STATUS", status_opcode, Some(4)),
        ("a response", response, None),
    ];
    for (what, packet, want) in cases {
        let reply = exchange(s.port, &packet);
        match want {
            None => assert!(reply.is_none(), "{what}: expected no reply, got {reply:?}"),
            Some(code) => {
                let reply = reply.unwrap_or_else(|| panic!("{what}: no reply"));
                assert_eq!(&reply[..2], &packet[..2], "{what}: ID echoed");
                assert!(reply[2] & 0x80 != 0, "{what}: QR set");
                assert_eq!(rcode(&reply), code, "{what}: rcode");
            }
        }
    }
    // A burst of garbage, then a normal query is still answered.
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut seed = 0x1234_5678u32;
    for _ in 0..2000 {
        let len = (seed % 80) as usize;
        let packet: Vec<u8> = (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                seed as u8
            })
            .collect();
        let _ = socket.send_to(&packet, ("127.0.0.1", s.port));
    }
    assert_eq!(dig_short(s.port, &["web.prod.local", "A"]), ["10.0.1.10"]);
}
