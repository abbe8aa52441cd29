//! Answers that spread load, end to end: a rotated set starts at each of its
//! records about equally often, over UDP and TCP, and a capped answer of a
//! large service carries that many distinct tasks, without TC, and every
//! task over many queries.

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::path::Path;
use std::time::Duration;

use hickory_proto::op::Message;
use hickory_proto::rr::RData;

use crate::harness::{Server, wire_query};

/// A file-source configuration over `tasks` awsvpc tasks of service `svc`
/// (10.7.x.y), each with an `http` port, plus `extra` configuration lines.
fn setup(dir: &Path, tasks: usize, extra: &str) -> std::path::PathBuf {
    let mut inventory = String::new();
    for i in 0..tasks {
        inventory.push_str(&format!(
            "[[tasks]]\ncluster = \"c1\"\nservice = \"svc\"\ntask_id = \"t{i:04}\"\nnetwork_mode = \"awsvpc\"\nipv4 = [\"10.7.{}.{}\"]\nports = [{{ container_name = \"app\", container_port = 8080, name = \"http\" }}]\n",
            i / 250,
            i % 250 + 1
        ));
    }
    std::fs::write(dir.join("inventory.toml"), inventory).unwrap();
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "source = \"file\"\ninventory = \"inventory.toml\"\nzone = \"ecs.internal\"\n{extra}"
        ),
    )
    .unwrap();
    config
}

/// One query over UDP (`tcp` false) or TCP, with an EDNS buffer of 1232.
fn ask(port: u16, name: &str, qtype: u16, tcp: bool, id: u16) -> Message {
    let mut q = wire_query(id, name, qtype);
    q[11] = 1;
    q.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]);
    let bytes = if tcp {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut framed = (q.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&q);
        stream.write_all(&framed).unwrap();
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).unwrap();
        let mut body = vec![0; usize::from(u16::from_be_bytes(len))];
        stream.read_exact(&mut body).unwrap();
        body
    } else {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        socket.send_to(&q, ("127.0.0.1", port)).unwrap();
        let mut buf = [0u8; 65535];
        let (len, _) = socket.recv_from(&mut buf).unwrap();
        buf[..len].to_vec()
    };
    let message = Message::from_vec(&bytes).unwrap();
    assert_eq!(message.metadata.id, id);
    message
}

fn first_address(message: &Message) -> String {
    match message.answers.first().map(|r| &r.data) {
        Some(RData::A(a)) => a.to_string(),
        other => panic!("no A answer: {other:?}"),
    }
}

/// 1 000 queries of a 4-task service: each address comes first 250 times,
/// give or take 5 standard deviations of a fair draw (sqrt(1000 * 1/4 *
/// 3/4) = 13.7, so 250 +- 69), over UDP and over TCP.
#[test]
fn a_rotated_service_starts_at_each_task_equally() {
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path(), 4, "");
    let s = Server::start(&config, &[], "ecs.internal");
    for tcp in [false, true] {
        let mut firsts: HashMap<String, usize> = HashMap::new();
        for i in 0..1000u16 {
            let m = ask(s.port, "svc.ecs.internal", 1, tcp, i);
            assert_eq!(m.answers.len(), 4);
            *firsts.entry(first_address(&m)).or_default() += 1;
        }
        eprintln!(
            "first address over {}: {firsts:?}",
            if tcp { "TCP" } else { "UDP" }
        );
        assert_eq!(firsts.len(), 4, "{firsts:?}");
        for (address, n) in &firsts {
            assert!((181..=319).contains(n), "{address} first {n} times of 1000");
        }
    }
    // SRV rotates too.
    let mut firsts = HashSet::new();
    for i in 0..200u16 {
        let m = ask(s.port, "_http._tcp.svc.ecs.internal", 33, false, i);
        assert_eq!(m.answers.len(), 4);
        assert_eq!(m.additionals.len(), 4, "each target's address");
        firsts.insert(m.answers[0].data.to_string());
    }
    assert_eq!(firsts.len(), 4, "{firsts:?}");
}

/// `rotate_answers = false`: the canonical order, every time.
#[test]
fn rotation_off_keeps_the_canonical_order() {
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path(), 4, "rotate_answers = false\n");
    let s = Server::start(&config, &[], "ecs.internal");
    for i in 0..50u16 {
        let m = ask(s.port, "svc.ecs.internal", 1, i % 2 == 0, i);
        assert_eq!(first_address(&m), "10.7.0.1");
    }
}

/// A 300-task service capped at 8: 8 distinct tasks each time, no TC, and
/// every task within 2 000 queries (a fair window misses a given task with
/// probability (1 - 8/300)^2000 < 1e-23).
#[test]
fn a_capped_answer_carries_distinct_tasks_and_reaches_every_one() {
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path(), 300, "max_answers = 8\n");
    let s = Server::start(&config, &[], "ecs.internal");
    let mut seen = HashSet::new();
    for i in 0..2000u16 {
        let m = ask(s.port, "svc.ecs.internal", 1, i % 10 == 0, i);
        assert!(!m.metadata.truncation, "TC set");
        let addresses: HashSet<String> = m.answers.iter().map(|r| r.data.to_string()).collect();
        assert_eq!(m.answers.len(), 8);
        assert_eq!(addresses.len(), 8, "distinct: {addresses:?}");
        seen.extend(addresses);
    }
    assert_eq!(seen.len(), 300, "every task over 2000 queries");
    // SRV: 8 targets, and the additional section holds exactly theirs.
    let m = ask(s.port, "_http._tcp.svc.ecs.internal", 33, false, 1);
    assert_eq!(m.answers.len(), 8);
    let targets: HashSet<_> = (m.answers.iter())
        .filter_map(|r| match &r.data {
            RData::SRV(srv) => Some(srv.target.clone()),
            _ => None,
        })
        .collect();
    let owners: HashSet<_> = m.additionals.iter().map(|r| r.name.clone()).collect();
    assert_eq!(targets, owners);
}
