//! The network fronts under misuse: idle and greedy TCP clients, garbage
//! datagrams. Each test runs the real binary on loopback with small limits
//! and reports how long the server took (never asserting on speed).

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use crate::dns::exchange;
use crate::harness::{DEADLINE, Server, demo_config, dig_short, wait_for};

/// `NAME A` in wire format with `id`, RD set, no EDNS.
fn a_query(id: u16, name: &str) -> Vec<u8> {
    crate::harness::wire_query(id, name, 1)
}

fn tcp_frame(message: &[u8]) -> Vec<u8> {
    let mut framed = (message.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(message);
    framed
}

fn connect(server: &Server) -> TcpStream {
    let stream = TcpStream::connect(server.addr()).expect("connect");
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    stream
}

/// Reads one length-prefixed message; `None` on end of stream (or a reset,
/// which is how a closed socket with unread data ends).
fn read_frame(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 2];
    match stream.read_exact(&mut len) {
        Ok(()) => {}
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset
            ) =>
        {
            return None;
        }
        Err(e) => panic!("read failed: {e}"),
    }
    let mut message = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut message).expect("message body");
    Some(message)
}

/// Whether the server closed `stream` (end of stream or reset).
fn closed(stream: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe),
    }
}

fn rcode(reply: &[u8]) -> u8 {
    reply[3] & 0x0f
}

#[test]
fn pipelined_tcp_queries_are_answered_in_order() {
    let s = Server::start(&demo_config(), &[], "local");
    let mut stream = connect(&s);
    let mut burst = Vec::new();
    for id in 0..20u16 {
        let name = if id % 2 == 0 {
            "web.prod.local"
        } else {
            "nope.local"
        };
        burst.extend(tcp_frame(&a_query(id, name)));
    }
    stream.write_all(&burst).unwrap();
    for id in 0..20u16 {
        let reply = read_frame(&mut stream).expect("an answer per query");
        assert_eq!(u16::from_be_bytes([reply[0], reply[1]]), id, "in order");
        assert_eq!(rcode(&reply), if id % 2 == 0 { 0 } else { 3 });
    }
}

#[test]
fn a_connection_is_closed_after_max_queries() {
    let s = Server::start(&demo_config(), &["--tcp-max-queries", "3"], "local");
    let mut stream = connect(&s);
    let mut burst = Vec::new();
    for id in 0..5u16 {
        burst.extend(tcp_frame(&a_query(id, "web.local")));
    }
    // The server may close before reading everything: a failed write is fine.
    let _ = stream.write_all(&burst);
    let mut answered = 0;
    while read_frame(&mut stream).is_some() {
        answered += 1;
    }
    assert_eq!(answered, 3, "three answers, then the connection is closed");
}

#[test]
fn idle_connections_are_closed_after_the_idle_timeout() {
    let s = Server::start(&demo_config(), &["--tcp-idle-timeout", "1s"], "local");
    // One that never sends, one that sends a query and then nothing, one
    // that sends half a length prefix.
    let mut silent = connect(&s);
    let mut after_one = connect(&s);
    after_one
        .write_all(&tcp_frame(&a_query(9, "web.local")))
        .unwrap();
    let mut partial = connect(&s);
    partial.write_all(&[0]).unwrap();
    let start = Instant::now();
    let reply = read_frame(&mut after_one).expect("the query is answered");
    assert_eq!(rcode(&reply), 0);
    for (what, stream) in [
        ("silent", &mut silent),
        ("after one query", &mut after_one),
        ("half a prefix", &mut partial),
    ] {
        assert!(closed(stream), "{what}: closed by the server");
        eprintln!(
            "{what}: closed after {:?} (idle timeout 1s)",
            start.elapsed()
        );
    }
}

#[test]
fn idle_connections_beyond_the_cap_do_not_stop_service() {
    let s = Server::start(
        &demo_config(),
        &["--tcp-max-connections", "8", "--tcp-idle-timeout", "60s"],
        "local",
    );
    // Twice the cap, all idle (the idle timeout is far away).
    let mut idle: Vec<TcpStream> = (0..16).map(|_| connect(&s)).collect();
    std::thread::sleep(Duration::from_millis(200));

    assert_eq!(dig_short(s.port, &["web.prod.local", "A"]), ["10.0.1.10"]);
    let start = Instant::now();
    assert_eq!(
        dig_short(s.port, &["web.prod.local", "A", "+tcp"]),
        ["10.0.1.10"],
        "a fresh TCP client is served"
    );
    eprintln!("fresh TCP client answered in {:?}", start.elapsed());

    // A fresh client that pipelines on its own connection is served too.
    let mut fresh = connect(&s);
    fresh
        .write_all(&tcp_frame(&a_query(77, "web.local")))
        .unwrap();
    let reply = read_frame(&mut fresh).expect("an answer");
    assert_eq!(u16::from_be_bytes([reply[0], reply[1]]), 77);

    // The oldest idle connections made room: the 8 over the cap, and one
    // or two more for the fresh clients (fewer if dig's connection was
    // already gone); the newest stay open.
    let mut state = Vec::new();
    for stream in idle.iter_mut() {
        stream
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        state.push(closed(stream));
    }
    eprintln!("closed: {state:?}");
    assert!(
        state[..8].iter().all(|c| *c),
        "the 8 oldest closed: {state:?}"
    );
    assert!(
        state[10..].iter().all(|c| !*c),
        "the 6 newest open: {state:?}"
    );
}

#[test]
fn garbage_datagrams_then_valid_queries_are_answered_batched() {
    garbage_datagrams_then_valid_queries_are_answered("batched");
}

/// After a burst the batched loop looks for more queries a few times
/// before it sleeps (`LOOKS_BEFORE_SLEEP`); once the burst is over it must
/// sleep, not spin: the idle server's CPU stays near none.
#[test]
fn the_batched_udp_loop_sleeps_when_the_queries_stop() {
    let s = Server::start(&demo_config(), &["--udp-io", "batched"], "local");
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut buf = [0u8; 4096];
    // Bursts of 16 outstanding queries keep the loop busy between batches.
    for round in 0..50u16 {
        for i in 0..16 {
            socket
                .send_to(&a_query(round * 16 + i, "web.prod.local"), s.addr())
                .unwrap();
        }
        for _ in 0..16 {
            socket.recv(&mut buf).expect("an answer");
        }
    }
    let idle = Duration::from_secs(2);
    let before = cpu_seconds(s.pid());
    std::thread::sleep(idle);
    let used = cpu_seconds(s.pid()) - before;
    eprintln!("CPU over {idle:?} idle after the bursts: {used:.3} s");
    // A loop that never slept would take most of a core: over a second.
    assert!(
        used < 0.25,
        "the idle server used {used:.3} s of CPU in {idle:?}"
    );
    // And it still answers.
    socket
        .send_to(&a_query(0xbeef, "web.prod.local"), s.addr())
        .unwrap();
    let n = socket
        .recv(&mut buf)
        .expect("an answer after the idle time");
    assert_eq!(buf[..2], [0xbe, 0xef]);
    assert_eq!(rcode(&buf[..n]), 0);
}

/// One UDP loop per core, each on a thread of its own named `udp-N`, so
/// that an operator reading `top -H` or `perf top` sees which threads
/// answer DNS and how busy each one is.
#[test]
fn the_udp_loops_run_on_threads_named_for_them() {
    let s = Server::start(&demo_config(), &[], "local");
    let mut names: Vec<String> = std::fs::read_dir(format!("/proc/{}/task", s.pid()))
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|comm| comm.trim().to_string())
        .filter(|comm| comm.starts_with("udp-"))
        .collect();
    names.sort();
    // The demo listens on one address: one socket, one loop per core.
    let cores = std::thread::available_parallelism().unwrap().get();
    let mut expected: Vec<String> = (0..cores).map(|n| format!("udp-{n}")).collect();
    expected.sort();
    assert_eq!(names, expected);
}

/// User + system CPU seconds of process `pid` so far (`/proc/PID/stat`).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..]
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    let out = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .unwrap();
    let per_second: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    ticks / per_second
}

#[test]
fn garbage_datagrams_then_valid_queries_are_answered_plain() {
    garbage_datagrams_then_valid_queries_are_answered("plain");
}

fn garbage_datagrams_then_valid_queries_are_answered(udp_io: &str) {
    let s = Server::start(&demo_config(), &["--udp-io", udp_io], "local");
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut rng = fastrand::Rng::with_seed(42);
    let started = Instant::now();
    for i in 0..5000 {
        let len = rng.usize(0..600);
        let mut packet: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
        // Some look like queries up to a point: a valid header, then noise.
        if i % 3 == 0 && len > 12 {
            packet[2] = 0x01;
            packet[3] = 0;
            packet[4..6].copy_from_slice(&[0, 1]);
        }
        let _ = socket.send_to(&packet, s.addr());
    }
    // Whatever came back for the garbage, valid queries are answered.
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = [0u8; 4096];
    let (_, took) = wait_for("an answer after the garbage", DEADLINE, || {
        let _ = socket.send_to(&a_query(0xabcd, "web.prod.local"), s.addr());
        loop {
            match socket.recv(&mut buf) {
                Ok(n) if n >= 12 && buf[..2] == [0xab, 0xcd] => return Some(()),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
    });
    eprintln!(
        "answered {took:?} after the garbage ({:?} since the burst began)",
        started.elapsed()
    );
    socket.set_read_timeout(Some(DEADLINE)).unwrap();
    for id in 0..100u16 {
        socket
            .send_to(&a_query(id, "web.prod.local"), s.addr())
            .unwrap();
        let n = socket.recv(&mut buf).expect("an answer");
        assert_eq!(u16::from_be_bytes([buf[0], buf[1]]), id);
        assert_eq!(rcode(&buf[..n]), 0);
    }
}

#[test]
fn garbage_on_one_tcp_connection_does_not_disturb_another() {
    let s = Server::start(&demo_config(), &[], "local");
    let mut bad = connect(&s);
    // A length prefix that promises more than comes, then noise.
    bad.write_all(&[0xff, 0xff, 1, 2, 3]).unwrap();
    let mut good = connect(&s);
    good.write_all(&tcp_frame(&a_query(5, "web.local")))
        .unwrap();
    let reply = read_frame(&mut good).expect("an answer");
    assert_eq!(rcode(&reply), 0);
    // A message that is no DNS message gets FORMERR or nothing, and the
    // connection stays usable.
    good.write_all(&tcp_frame(&[0, 6, 1, 0, 0, 1])).unwrap();
    good.write_all(&tcp_frame(&a_query(6, "web.local")))
        .unwrap();
    let mut last = read_frame(&mut good).expect("an answer");
    if u16::from_be_bytes([last[0], last[1]]) != 6 {
        last = read_frame(&mut good).expect("the valid query's answer");
    }
    assert_eq!(u16::from_be_bytes([last[0], last[1]]), 6);
}

/// The portable UDP path (`udp_io = "plain"`: `recv_from`/`send_to`) sends
/// the very bytes the batched one (`recvmmsg`/`sendmmsg`) does, and drops
/// what it drops.
#[test]
fn the_plain_and_batched_udp_paths_answer_alike() {
    // Rotation off: the two servers' answers compare byte for byte.
    let canonical = ["--rotate-answers", "false"];
    let batched = Server::start(
        &demo_config(),
        &[&canonical[..], &["--udp-io", "batched"]].concat(),
        "local",
    );
    let plain = Server::start(
        &demo_config(),
        &[&canonical[..], &["--udp-io", "plain"]].concat(),
        "local",
    );
    let mut queries = vec![
        a_query(1, "web.local"),
        a_query(2, "WeB.PrOd.LoCaL"),
        a_query(3, "nope.local"),
        a_query(4, "example.com"),
        // Not a query at all: a response (QR set) is dropped.
        vec![0, 5, 0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0],
        // Cut short: FORMERR.
        a_query(6, "web.local")[..20].to_vec(),
    ];
    let mut srv = a_query(7, "_http._tcp.web.local");
    let len = srv.len();
    srv[len - 3] = 33; // SRV
    queries.push(srv);
    // The SOA serial is the second each server first published: two
    // servers started a moment apart may be a second apart. The SOA of a
    // negative answer is compared with the plain server's serial written
    // as the batched server's.
    let serial = |port| -> [u8; 4] {
        let soa = dig_short(port, &["local", "SOA"]);
        let serial = soa.first().and_then(|soa| soa.split_whitespace().nth(2));
        let serial: u32 = serial.and_then(|s| s.parse().ok()).expect("an SOA serial");
        serial.to_be_bytes()
    };
    let (want_serial, got_serial) = (serial(batched.port), serial(plain.port));
    for query in &queries {
        let want = exchange(batched.port, query);
        let got = exchange(plain.port, query).map(|mut reply| {
            if let Some(at) = reply.windows(4).position(|w| w == got_serial) {
                reply[at..at + 4].copy_from_slice(&want_serial);
            }
            reply
        });
        assert_eq!(got, want, "query {query:02x?}");
    }
    // A datagram larger than any query read whole (4 096 bytes) is dropped
    // by both, and both answer the next one.
    let mut huge = a_query(8, "web.local");
    huge.resize(5000, 0);
    for server in [&batched, &plain] {
        assert_eq!(exchange(server.port, &huge), None);
        let reply = exchange(server.port, &a_query(9, "web.local")).expect("an answer");
        assert_eq!(rcode(&reply), 0);
    }
}

#[test]
fn the_hickory_front_is_still_selectable() {
    let s = Server::start(&demo_config(), &["--front", "hickory"], "local");
    assert_eq!(dig_short(s.port, &["web.prod.local", "A"]), ["10.0.1.10"]);
    assert_eq!(
        dig_short(s.port, &["web.prod.local", "A", "+tcp"]),
        ["10.0.1.10"]
    );
}
