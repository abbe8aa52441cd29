//! Regression tests for what a neighbour in the VPC, a task's tags or a
//! careless edit did to ecs-dns (issue "Hardening"): each test reproduces
//! the attack on loopback, bounded in count and time, and prints what it
//! measured.

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use crate::harness::{DEADLINE, Server, demo_config, dig_short, wait_for};

use crate::harness::wire_query as query;

/// `query` with an OPT record whose option list is cut short (an option
/// code, no length): hickory logs a warning for each such packet.
fn query_with_broken_edns(id: u16) -> Vec<u8> {
    let mut q = query(id, "web.local", 1);
    q[11] = 1; // ARCOUNT
    q.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 2, 0, 10]);
    q
}

fn warnings(log: &str) -> Vec<&str> {
    log.lines().filter(|l| l.contains("WARN")).collect()
}

/// A flood of refused zone transfers and of malformed EDNS options costs a
/// few log lines, not one per packet.
#[test]
fn a_flood_of_refused_transfers_and_broken_packets_is_not_logged_per_packet() {
    // Transfers allowed from an address that is not loopback: ours are
    // refused.
    let s = Server::start(&demo_config(), &["--transfer-allow", "192.0.2.1"], "local");
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let sent = 3000u16;
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    for id in 0..sent {
        let packet = match id % 3 {
            0 => query(id, "local", 252), // AXFR
            1 => query(id, "local", 251), // IXFR
            _ => query_with_broken_edns(id),
        };
        socket.send_to(&packet, s.addr()).unwrap();
        // Pace a little, so that the socket buffer never drops the flood.
        if id % 100 == 99 {
            while socket.recv(&mut buf).is_ok() {}
        }
    }
    // A few transfers over TCP too.
    for id in 0..50u16 {
        let mut stream = TcpStream::connect(s.addr()).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let q = query(id, "local", 252);
        let mut framed = (q.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&q);
        stream.write_all(&framed).unwrap();
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).unwrap();
    }
    // Still answering.
    assert_eq!(dig_short(s.port, &["web.prod.local", "A"]), ["10.0.1.10"]);
    let log = s.log();
    let warned = warnings(&log);
    eprintln!(
        "{} packets in {:?}: {} warning lines\n{}",
        sent + 50,
        started.elapsed(),
        warned.len(),
        warned.join("\n")
    );
    assert!(
        warned.len() <= 6,
        "{} warning lines for {} packets",
        warned.len(),
        sent + 50
    );
    assert!(
        log.contains("zone transfer refused"),
        "the first refusal is logged:\n{log}"
    );
}

/// The inventory file of the demo, copied into `dir`, with a config using it
/// and a 1 s poll.
fn demo_copy(dir: &std::path::Path) -> std::path::PathBuf {
    let demo = crate::harness::repo().join("conf");
    std::fs::copy(
        demo.join("demo-inventory.toml"),
        dir.join("demo-inventory.toml"),
    )
    .unwrap();
    let config = dir.join("ecs-dns.toml");
    std::fs::write(
        &config,
        "source = \"file\"\ninventory = \"demo-inventory.toml\"\npoll_interval = \"1s\"\nnameservers = [\"ns1.local=127.0.0.1\"]\n",
    )
    .unwrap();
    config
}

/// An emptied or comment-only inventory file is an error that keeps the
/// last good data; `tasks = []` is the one way to say "no tasks".
#[test]
fn an_empty_inventory_file_never_empties_the_zone() {
    let dir = tempfile::tempdir().unwrap();
    let config = demo_copy(dir.path());
    let inventory = dir.path().join("demo-inventory.toml");
    let s = Server::start(&config, &[], "local");
    assert_eq!(dig_short(s.port, &["web.prod.local", "A"]), ["10.0.1.10"]);
    for (what, text) in [("empty", ""), ("comments only", "# nothing here yet\n")] {
        std::fs::write(&inventory, text).unwrap();
        let (_, took) = wait_for(&format!("the {what} file to be rejected"), DEADLINE, || {
            let log = s.log();
            (log.matches("no `tasks` key").count() > 0).then_some(())
        });
        // Give the poll a second more: the zone must still be there.
        std::thread::sleep(Duration::from_millis(1500));
        assert_eq!(
            dig_short(s.port, &["web.prod.local", "A"]),
            ["10.0.1.10"],
            "{what} file: the last good data is served"
        );
        eprintln!("{what} file rejected after {took:?}");
    }
    std::fs::write(&inventory, "tasks = []\n").unwrap();
    let (_, took) = wait_for("tasks = [] to empty the zone", DEADLINE, || {
        dig_short(s.port, &["web.prod.local", "A"])
            .is_empty()
            .then_some(())
    });
    eprintln!("tasks = [] served after {took:?}");
}

/// Complete queries followed by the first byte of another are answered at
/// once, not when that query completes or the idle timeout (10 s) fires.
#[test]
fn answers_are_not_held_behind_a_partial_tcp_frame() {
    let s = Server::start(&demo_config(), &[], "local");
    for complete in [1u16, 50] {
        let mut stream = TcpStream::connect(s.addr()).unwrap();
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        let mut burst = Vec::new();
        for id in 0..complete {
            let q = query(id, "web.prod.local", 1);
            burst.extend_from_slice(&(q.len() as u16).to_be_bytes());
            burst.extend_from_slice(&q);
        }
        burst.push(0); // the first byte of the next frame's length
        let started = Instant::now();
        stream.write_all(&burst).unwrap();
        for id in 0..complete {
            let mut len = [0u8; 2];
            stream.read_exact(&mut len).unwrap();
            let mut reply = vec![0u8; usize::from(u16::from_be_bytes(len))];
            stream.read_exact(&mut reply).unwrap();
            assert_eq!(u16::from_be_bytes([reply[0], reply[1]]), id);
        }
        let took = started.elapsed();
        eprintln!("{complete} queries + 1 byte: all answered after {took:?}");
        assert!(
            took < Duration::from_secs(5),
            "answers held back {took:?} (the idle timeout is 10 s)"
        );
    }
}

/// Values that used to be accepted: each is now exit 2 naming its key.
#[test]
fn weak_or_absurd_settings_are_refused_naming_the_key() {
    let demo = demo_config();
    let demo = demo.to_str().unwrap();
    let cases: [(&[&str], &str); 9] = [
        (&["--zone", "ünïcødé🔥"], "zone"),
        (&["--zone", "*.local"], "zone"),
        (
            &["--tsig-key", ":hmac-sha256:c2VjcmV0LXNlY3JldC0xMjM0NTY="],
            "tsig_keys",
        ),
        (&["--tsig-key", "k:hmac-sha256:QQ=="], "tsig_keys"),
        (&["--request-timeout", "1ns"], "request_timeout"),
        (&["--poll-interval", "99999999999y"], "poll_interval"),
        (&["--poll-interval", "2h"], "poll_interval"),
        (&["--state-file", "/dev/zero"], "state_file"),
        (&["--tsig-key-file", "/dev/zero"], "tsig_key_file"),
    ];
    for (args, key) in cases {
        let out = std::process::Command::new(crate::harness::bin())
            .args(["check-config", "--config", demo])
            .args(args)
            .env_remove("ECS_DNS_CONFIG")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(key), "{args:?} should name {key}: {stderr}");
    }
}

/// A config file that is no file, or endless, is an error at once.
#[test]
fn endless_or_special_files_are_refused_not_read() {
    let started = Instant::now();
    let out = std::process::Command::new(crate::harness::bin())
        .args(["check-config", "--config", "/dev/zero"])
        .env_remove("ECS_DNS_CONFIG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!(
        "--config /dev/zero: exit {:?} after {:?}",
        out.status.code(),
        started.elapsed()
    );
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("not a regular file"), "{stderr}");
}

/// A TOML error in a file holding a TSIG secret never prints the secret,
/// and an unknown key gets a suggestion.
#[test]
fn config_errors_quote_no_secret_and_suggest_the_key_meant() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMzQ=";
    let broken = dir.path().join("broken.toml");
    std::fs::write(
        &broken,
        format!("source = \"file\"\ninventory = \"x.toml\"\ntsig_keys = [\"xfr-key:hmac-sha256:{secret}\"\n"),
    )
    .unwrap();
    let typo = dir.path().join("typo.toml");
    std::fs::write(
        &typo,
        "source = \"file\"\ninventory = \"x.toml\"\npoll_intervall = \"5s\"\n",
    )
    .unwrap();
    let check = |path: &std::path::Path| {
        let out = std::process::Command::new(crate::harness::bin())
            .args(["check-config", "--config"])
            .arg(path)
            .env_remove("ECS_DNS_CONFIG")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let stderr = check(&broken);
    assert!(
        !stderr.contains(secret) && !stderr.contains("c2VjcmV0"),
        "secret shown: {stderr}"
    );
    // toml 1.x places an unclosed array at the line that opens it, and
    // names its key.
    assert!(
        stderr.contains("key `tsig_keys`, line 3") && stderr.contains("expected `]`"),
        "{stderr}"
    );
    let stderr = check(&typo);
    assert!(stderr.contains("did you mean `poll_interval`"), "{stderr}");
    let out = std::process::Command::new(crate::harness::bin())
        .args(["check-config", "--config"])
        .arg(crate::harness::demo_config())
        .env("ECS_DNS_POLL_INTERVL", "5s")
        .env_remove("ECS_DNS_CONFIG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("did you mean ECS_DNS_POLL_INTERVAL"),
        "{stderr}"
    );
}

/// The UDP buffer setting is applied (the start-up log says what the kernel
/// granted) and queue overflows are counted: stop the server, fill its
/// sockets' queues, resume it, and read the counter.
#[test]
fn udp_buffers_are_set_and_receive_queue_drops_are_counted() {
    let http = crate::harness::free_port();
    let s = Server::start(
        &demo_config(),
        &[
            "--udp-socket-buffer",
            "8192",
            "--http",
            &format!("127.0.0.1:{http}"),
        ],
        "local",
    );
    let log = s.log();
    let granted = log
        .lines()
        .find(|l| l.contains("udp socket buffers granted"))
        .unwrap_or_else(|| panic!("no buffer line in\n{log}"));
    eprintln!("{granted}");
    assert!(granted.contains("asked=8192"), "{granted}");
    let metrics = || {
        crate::ops::http_get(http, "/metrics")
            .expect("GET /metrics")
            .1
    };
    let drops = |text: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix("ecs_dns_udp_receive_drops_total "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no drops counter in\n{text}"))
    };
    let before = drops(&metrics());
    let pid = s.pid().to_string();
    let status = std::process::Command::new("kill")
        .args(["-STOP", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    for id in 0..2000u16 {
        let _ = socket.send_to(&query(id, "web.local", 1), s.addr());
    }
    let status = std::process::Command::new("kill")
        .args(["-CONT", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let (after, took) = wait_for("the drops to be counted", DEADLINE, || {
        let after = drops(&metrics());
        (after > before).then_some(after)
    });
    eprintln!(
        "2000 datagrams to a stopped server: {} dropped by the kernel (read after {took:?})",
        after - before
    );
    assert_eq!(dig_short(s.port, &["web.prod.local", "A"]), ["10.0.1.10"]);
}
