//! Response-rate limiting over UDP, against the running server: off by
//! default; when on, a burst from one prefix is cut to its budget, with
//! every other limited answer slipped as TC.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use crate::harness::{Server, demo_config};

/// Sends `n` queries for `web.local A` in chunks of 20 (so that socket
/// buffers never overflow on a busy machine), collecting each chunk's
/// replies for up to `wait` before the next: (answered in full, truncated).
fn burst(port: u16, n: u16, wait: Duration) -> (usize, usize) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let mut query = vec![0, 0, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    query.extend_from_slice(b"\x03web\x05local\x00\x00\x01\x00\x01");
    let (mut full, mut truncated) = (0, 0);
    let mut buf = [0u8; 1500];
    for chunk in (0..n).collect::<Vec<_>>().chunks(20) {
        for id in chunk {
            query[..2].copy_from_slice(&id.to_be_bytes());
            socket.send_to(&query, ("127.0.0.1", port)).unwrap();
        }
        let deadline = Instant::now() + wait;
        let mut got = 0;
        while Instant::now() < deadline && got < chunk.len() {
            let Ok(len) = socket.recv(&mut buf) else {
                continue;
            };
            got += 1;
            if len >= 12 && buf[2] & 0x02 != 0 {
                assert_eq!(
                    u16::from_be_bytes([buf[6], buf[7]]),
                    0,
                    "a slipped answer has no records"
                );
                truncated += 1;
            } else {
                full += 1;
            }
        }
    }
    (full, truncated)
}

#[test]
fn rate_limiting_is_off_by_default_and_cuts_a_burst_when_on() {
    let open = Server::start(&demo_config(), &[], "local");
    // Every chunk is answered whole, however long the machine takes.
    let (full, truncated) = burst(open.port, 300, Duration::from_secs(5));
    eprintln!("RRL off: {full} answered, {truncated} truncated of 300");
    assert_eq!((full, truncated), (300, 0));
    drop(open);

    let limited = Server::start(
        &demo_config(),
        &["--rrl-responses-per-second", "20", "--rrl-slip", "2"],
        "local",
    );
    // The server's own readiness probe spent a little of the budget; wait it back.
    std::thread::sleep(Duration::from_millis(1100));
    // Dropped answers never come: wait 50 ms a chunk, 15 chunks in about
    // 0.75 s, which refills about 15 more answers.
    let started = Instant::now();
    let (full, truncated) = burst(limited.port, 300, Duration::from_millis(50));
    let took = started.elapsed();
    eprintln!("RRL 20/s, slip 2: {full} answered, {truncated} truncated of 300 in {took:?}");
    // One second's budget (20) plus what refilled during the burst (20/s),
    // and about half of the rest slipped as TC.
    let budget = 20 + (took.as_secs_f64() * 20.0).ceil() as usize;
    assert!(
        full >= 15 && full <= budget + 5,
        "answered in full: {full}, budget {budget}"
    );
    let limited_answers = 300 - full;
    assert!(
        truncated + 10 >= limited_answers / 2 && truncated <= limited_answers / 2 + 10,
        "slipped: {truncated} of {limited_answers} limited"
    );
}

/// One budget per client prefix, whatever source port it sends from: the
/// kernel spreads ports over the server's UDP sockets (one per core), and a
/// limiter per socket would give the rate times the number of sockets.
#[test]
fn a_client_varying_its_source_port_gets_one_budget() {
    let limited = Server::start(
        &demo_config(),
        &["--rrl-responses-per-second", "20", "--rrl-slip", "0"],
        "local",
    );
    std::thread::sleep(Duration::from_millis(1100));
    let mut query = vec![0, 0, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    query.extend_from_slice(b"\x03web\x05local\x00\x00\x01\x00\x01");
    let sockets: Vec<UdpSocket> = (0..200)
        .map(|_| {
            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
            s.set_read_timeout(Some(Duration::from_millis(300)))
                .unwrap();
            s
        })
        .collect();
    let started = Instant::now();
    for (id, socket) in sockets.iter().enumerate() {
        query[..2].copy_from_slice(&(id as u16).to_be_bytes());
        socket.send_to(&query, ("127.0.0.1", limited.port)).unwrap();
    }
    let sent_in = started.elapsed();
    let mut buf = [0u8; 1500];
    let answered = sockets.iter().filter(|s| s.recv(&mut buf).is_ok()).count();
    let budget = 20 + (sent_in.as_secs_f64() * 20.0).ceil() as usize;
    eprintln!(
        "200 source ports in {sent_in:?}: {answered} answered (budget {budget}, {} sockets)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    assert!(
        answered >= 15 && answered <= budget + 3,
        "{answered} answered, budget {budget}"
    );
}
