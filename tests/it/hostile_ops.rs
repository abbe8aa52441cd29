//! What a client of the ops listener in the VPC could do to ecs-dns (issue
//! "Hardening"): hold connections half-open, trickle a request, pile up
//! `/records` responses, and how fast the server stops with connections
//! open. Each attack runs on loopback, bounded in count and time, and prints
//! what it measured; speed is printed, not asserted (beyond generous
//! bounds).

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use crate::harness::{DEADLINE, bin, free_port, query, wait_for};
use crate::ops::http_get;

/// A half-sent request: no blank line, so the head never ends.
const HALF_REQUEST: &[u8] = b"GET /records HTTP/1.1\r\nHost: x\r\n";

/// A server started with a config in its own folder, optionally under a
/// shell `ulimit`; killed on drop.
struct Ops {
    child: Child,
    dns: u16,
    http: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Ops {
    /// `ecs-dns serve` of `inventory` (a JSON inventory) with `extra` config
    /// lines, under `ulimit` arguments if any (e.g. `-n 256`).
    fn start(inventory: &serde_json::Value, extra: &str, ulimit: Option<&str>) -> Ops {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("inventory.json"), inventory.to_string()).unwrap();
        let config = dir.path().join("ecs-dns.toml");
        std::fs::write(
            &config,
            format!(
                "zone = \"local\"\nsource = \"file\"\ninventory = \"inventory.json\"\npoll_interval = \"1s\"\nnameservers = [\"ns1.local=127.0.0.1\"]\n{extra}\n"
            ),
        )
        .unwrap();
        let (dns, http) = (free_port(), free_port());
        let log = dir.path().join("log");
        let command = match ulimit {
            Some(limit) => {
                let mut sh = Command::new("sh");
                sh.arg("-c")
                    .arg(format!("ulimit {limit} && exec \"$0\" \"$@\""))
                    .arg(bin());
                sh
            }
            None => Command::new(bin()),
        };
        let child = crate::ops::spawn_serve(command, &config, dns, http, &log);
        let ops = Ops {
            child,
            dns,
            http,
            log,
            _dir: dir,
        };
        let (_, took) = wait_for("/readyz 200", DEADLINE, || {
            http_get(ops.http, "/readyz").filter(|(code, _)| *code == 200)
        });
        eprintln!("ready after {took:?}");
        ops
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.http))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Descriptors the server has open now.
    fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|dir| dir.count())
            .unwrap_or(0)
    }

    fn terminate(&mut self) -> (ExitStatus, Duration) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        wait_for("ecs-dns to exit", DEADLINE, || {
            self.child.try_wait().ok().flatten()
        })
    }
}

impl Drop for Ops {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `n` tasks over 3 clusters and 5 services, each with an address and two
/// ports; every 7th is stopping, every 11th pending (unless stopping).
fn inventory(n: usize) -> serde_json::Value {
    let tasks: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            let cluster = format!("c{}", i % 3);
            let id = format!("{i:08x}0000000000000000{:08x}", i * 7919);
            serde_json::json!({
                "cluster": cluster,
                "service": format!("svc{}", i % 5),
                "family": format!("svc{}", i % 5),
                "task_arn": format!("arn:aws:ecs:us-east-1:123456789012:task/{cluster}/{id}"),
                "launch_type": "FARGATE",
                "network_mode": "awsvpc",
                "desired_status": if i % 7 == 0 { "STOPPED" } else { "RUNNING" },
                "last_status": if i % 11 == 0 { "PENDING" } else { "RUNNING" },
                "eni_id": format!("eni-{i:017x}"),
                "ipv4": [format!("10.{}.{}.{}", i / 65536 % 256, i / 256 % 256, i % 256)],
                "ports": [
                    { "container_name": "app", "container_port": 80, "name": "http" },
                    { "container_name": "app", "container_port": 9000 },
                ],
            })
        })
        .collect();
    serde_json::json!({ "tasks": tasks })
}

/// The verdict the inventory above gives task `i`.
fn verdict(i: usize) -> &'static str {
    if i.is_multiple_of(7) {
        "stopping"
    } else if i.is_multiple_of(11) {
        "pending"
    } else {
        "served"
    }
}

/// A response: status, headers (lower-case names) and body, chunked
/// transfer decoded.
struct Got {
    code: u16,
    head: String,
    body: Vec<u8>,
}

impl Got {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{e}: {}",
                String::from_utf8_lossy(&self.body[..self.body.len().min(2000)])
            )
        })
    }
}

/// `GET path` on one connection, read to the end.
fn get(port: u16, path: &str) -> Got {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no head: {}", String::from_utf8_lossy(&raw)));
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let code = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut body = raw[split + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    Got { code, head, body }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = raw.windows(2).position(|w| w == b"\r\n").unwrap();
        let size =
            usize::from_str_radix(std::str::from_utf8(&raw[..line_end]).unwrap(), 16).unwrap();
        raw = &raw[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}

/// Opens `n` connections that each send [`HALF_REQUEST`] and nothing more.
fn half_open(addr: SocketAddr, n: usize) -> Vec<(TcpStream, Instant)> {
    (0..n)
        .filter_map(|_| {
            let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
            stream.write_all(HALF_REQUEST).ok()?;
            Some((stream, Instant::now()))
        })
        .collect()
}

/// Whether the server closed `stream` (EOF or reset), without waiting.
fn closed(stream: &TcpStream) -> bool {
    stream.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 4096];
    let closed = loop {
        match (&*stream).read(&mut buf) {
            Ok(0) => break true,
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break false,
            Err(_) => break true,
        }
    };
    stream.set_nonblocking(false).unwrap();
    closed
}

/// Waits until the server closed `stream`; how long after `since`.
fn wait_closed(stream: &TcpStream, since: Instant) -> Duration {
    wait_for("the server to close the connection", DEADLINE, || {
        closed(stream).then_some(())
    });
    since.elapsed()
}

/// 300 half-sent requests, with descriptors scarce (`ulimit -n 256`) and
/// the default ops limits: DNS over UDP and TCP keeps answering, `/healthz`
/// too, the server's descriptors stay bounded, and the half-open
/// connections are closed (for newcomers, or after the request timeout).
/// Before the cap, they were all held, and the TCP front ran out of
/// descriptors ("Too many open files").
#[test]
fn half_open_ops_connections_cannot_starve_dns() {
    let mut server = Ops::start(&inventory(20), "tcp_max_connections = 32", Some("-n 256"));
    let baseline = server.open_fds();
    let started = Instant::now();
    let held = half_open(server.addr(), 300);
    eprintln!(
        "{} half-open ops connections opened in {:?}; server descriptors {baseline} before, {} now",
        held.len(),
        started.elapsed(),
        server.open_fds()
    );
    for transport in ["+notcp", "+tcp"] {
        let reply = query(
            server.dns,
            &["local", "SOA", transport, "+tries=1", "+time=5"],
        );
        assert_eq!(reply.status, "NOERROR", "DNS {transport}: {}", server.log());
    }
    let asked = Instant::now();
    let (code, body) = http_get(server.http, "/healthz").expect("/healthz");
    eprintln!(
        "/healthz answered {code} in {:?} with the attack on",
        asked.elapsed()
    );
    assert_eq!((code, body.as_str()), (200, "alive\n"));
    let fds = server.open_fds();
    eprintln!("server descriptors with the attack on: {fds} (baseline {baseline}, ops cap 64)");
    assert!(fds <= baseline + 64 + 8, "{fds} descriptors open");
    // Every half-open connection is closed: the oldest for newcomers at
    // once, the rest after the request timeout (5 s by default).
    let (evicted, rest): (Vec<_>, Vec<_>) = held.into_iter().partition(|(s, _)| closed(s));
    let longest = rest
        .iter()
        .map(|(stream, since)| wait_closed(stream, *since))
        .max()
        .unwrap_or_default();
    eprintln!(
        "{} closed for newcomers at once; the other {} held {longest:?} at most (http_request_timeout 5s)",
        evicted.len(),
        rest.len()
    );
    assert!(rest.len() <= 64, "{} left open", rest.len());
    drop(evicted);
    drop(rest);
    let (status, took) = server.terminate();
    eprintln!("exited {status:?} {took:?} after SIGTERM");
    assert_eq!(status.code(), Some(0), "{}", server.log());
    assert!(
        !server.log().contains("Too many open files"),
        "{}",
        server.log()
    );
}

/// The soft open-files limit is raised to the hard one at start, and said.
#[test]
fn the_open_files_limit_is_raised_at_start() {
    let server = Ops::start(&inventory(3), "", Some("-S -n 200"));
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", server.pid())).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap()
        .to_owned();
    eprintln!("{line}");
    let numbers: Vec<&str> = line.split_whitespace().skip(3).take(2).collect();
    assert_eq!(numbers[0], numbers[1], "soft = hard: {line}");
    assert_ne!(numbers[0], "200", "{line}");
    let log = server.log();
    assert!(log.contains("open-files limit raised"), "{log}");
}

/// A request trickled a byte at a time, and a connection that sends
/// nothing, are closed after `http_request_timeout`.
#[test]
fn a_slowloris_request_is_closed_after_the_request_timeout() {
    let server = Ops::start(
        &inventory(3),
        "http_request_timeout = \"1s\"\nhttp_max_connections = 16",
        None,
    );
    let silent = TcpStream::connect(server.addr()).unwrap();
    let silent_since = Instant::now();
    let mut slow = TcpStream::connect(server.addr()).unwrap();
    let since = Instant::now();
    let request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
    let mut sent = 0;
    let took = loop {
        if closed(&slow) {
            break since.elapsed();
        }
        assert!(since.elapsed() < DEADLINE, "still open after {DEADLINE:?}");
        if slow
            .write_all(&request[sent % request.len()..][..1])
            .is_err()
        {
            break since.elapsed();
        }
        sent += 1;
        std::thread::sleep(Duration::from_millis(100));
    };
    eprintln!("slowloris ({sent} bytes, one per 100 ms) closed after {took:?} (timeout 1s)");
    assert!(took >= Duration::from_millis(900), "{took:?}");
    let silent_took = wait_closed(&silent, silent_since);
    eprintln!("a connection that sent nothing closed after {silent_took:?}");
    // A keep-alive connection idle between requests: the same.
    let mut kept = TcpStream::connect(server.addr()).unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 512];
    let n = kept.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).contains("alive"));
    let idle = wait_closed(&kept, Instant::now());
    eprintln!("an idle keep-alive connection closed after {idle:?}");
    assert_eq!(http_get(server.http, "/healthz").map(|(c, _)| c), Some(200));
}

/// SIGTERM with hundreds of ops connections open (half-sent requests, idle
/// keep-alive ones, a `/records` response the client does not read): exit
/// 0 at once. Before, the listener waited for them ("ops listener did not
/// stop in time", 3.67 s with 1 000).
#[test]
fn sigterm_with_hundreds_of_ops_connections_open_exits_at_once() {
    let mut server = Ops::start(
        &inventory(3000),
        "http_max_connections = 600\nhttp_request_timeout = \"30s\"",
        None,
    );
    let mut open = half_open(server.addr(), 300);
    for _ in 0..200 {
        let mut stream = TcpStream::connect(server.addr()).unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut buf = [0u8; 512];
        let _ = stream.read(&mut buf).unwrap();
        open.push((stream, Instant::now()));
    }
    let mut unread = small_buffer_connection(server.addr());
    unread
        .write_all(b"GET /records?limit=3000 HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    eprintln!(
        "{} ops connections open; server descriptors: {}",
        open.len() + 1,
        server.open_fds()
    );
    let (status, took) = server.terminate();
    eprintln!("exited {status:?} {took:?} after SIGTERM (target 0.5 s)");
    assert_eq!(status.code(), Some(0), "{}", server.log());
    assert!(took <= Duration::from_secs(2), "{took:?}");
    assert!(
        !server.log().contains("did not stop in time"),
        "{}",
        server.log()
    );
}

/// A client connection whose receive buffer is tiny, so that a large
/// response it does not read stays in flight on the server.
fn small_buffer_connection(addr: SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&addr.into()).unwrap();
    let stream: TcpStream = socket.into();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream
}

/// `/records` pages: a walk with `limit` and `cursor` returns every task
/// once, the filters select what they say, a bad parameter is a 400 naming
/// it, a `limit` above 10 000 too (not clamped).
#[test]
fn records_pages_walk_every_task_once_and_filter() {
    let n = 2500;
    let inventory = inventory(n);
    let server = Ops::start(&inventory, "", None);
    let arns: Vec<String> = inventory["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["task_arn"].as_str().unwrap().to_owned())
        .collect();

    // The default page is 1 000 tasks.
    let mut seen = Vec::new();
    let mut path = "/records".to_owned();
    let mut pages = 0;
    loop {
        let started = Instant::now();
        let got = get(server.http, &path);
        assert_eq!(got.code, 200, "{}", String::from_utf8_lossy(&got.body));
        let doc = got.json();
        pages += 1;
        eprintln!(
            "page {pages}: {} bytes in {:?} ({})",
            got.body.len(),
            started.elapsed(),
            if got.head.contains("chunked") {
                "streamed"
            } else {
                "whole"
            }
        );
        assert_eq!(doc["tasks_total"], n);
        assert_eq!(doc["tasks_matched"], n);
        let tasks = doc["tasks"].as_array().unwrap();
        assert_eq!(doc["tasks_returned"], tasks.len());
        assert!(tasks.len() <= 1000);
        assert_eq!(
            doc["records_returned"],
            doc["records"].as_array().unwrap().len()
        );
        seen.extend(
            tasks
                .iter()
                .map(|t| t["task_arn"].as_str().unwrap().to_owned()),
        );
        match doc["next_cursor"].as_str() {
            Some(cursor) => path = format!("/records?cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), seen.len(), "a task returned twice");
    let mut want = arns.clone();
    want.sort();
    assert_eq!(sorted, want, "every task once");

    // Filters, against what the inventory says.
    let index = |arn: &str| arns.iter().position(|a| a == arn).unwrap();
    let filtered = |query: &str| {
        let got = get(server.http, &format!("/records?limit=10000&{query}"));
        assert_eq!(
            got.code,
            200,
            "{query}: {}",
            String::from_utf8_lossy(&got.body)
        );
        got.json()
    };
    let doc = filtered("cluster=c1&service=svc2&verdict=served");
    let tasks = doc["tasks"].as_array().unwrap();
    let want = (0..n)
        .filter(|i| i % 3 == 1 && i % 5 == 2 && verdict(*i) == "served")
        .count();
    assert_eq!(tasks.len(), want);
    assert_eq!(doc["tasks_matched"], want);
    for task in tasks {
        let i = index(task["task_arn"].as_str().unwrap());
        assert_eq!((i % 3, i % 5, verdict(i)), (1, 2, "served"));
        assert_eq!(task["verdict"], "served");
    }
    for name in ["stopping", "pending"] {
        let doc = filtered(&format!("verdict={name}"));
        assert_eq!(
            doc["tasks_matched"],
            (0..n).filter(|i| verdict(*i) == name).count()
        );
        assert_eq!(doc["records_returned"], 0, "{name} tasks have no records");
    }
    let one = &arns[12];
    let doc = filtered(&format!("task={}", one.rsplit('/').next().unwrap()));
    assert_eq!(doc["tasks"][0]["task_arn"], one.as_str());
    assert_eq!(doc["tasks_matched"], 1);
    let doc = filtered(&format!("task={one}"));
    assert_eq!(doc["tasks_matched"], 1);
    // By name: the tasks with a record there, and those records only.
    let doc = filtered("name=SVC3.c0.Local.");
    let want = (0..n)
        .filter(|i| i % 3 == 0 && i % 5 == 3 && verdict(*i) == "served")
        .count();
    assert_eq!(doc["tasks_matched"], want);
    let records = doc["records"].as_array().unwrap();
    assert_eq!(records.len(), want, "one A record per task");
    assert!(
        records
            .iter()
            .all(|r| r["name"] == "svc3.c0.local." && r["type"] == "A")
    );

    // Bad parameters: 400, naming them.
    for (query, parameter) in [
        ("limit=10001", "limit"),
        ("limit=0", "limit"),
        ("verdict=great", "verdict"),
        ("cursor=garbage", "cursor"),
        ("clustr=c1", "clustr"),
    ] {
        let got = get(server.http, &format!("/records?{query}"));
        let body = String::from_utf8_lossy(&got.body);
        assert_eq!(got.code, 400, "{query}: {body}");
        assert!(body.contains(parameter), "{query}: {body}");
    }
    let all = filtered("");
    assert_eq!(all["tasks_returned"], n, "limit=10000 is allowed");
}

/// At most two `/records` responses in flight: a third gets 503 with
/// `Retry-After`. Two clients that ask for a large page and do not read it
/// hold their responses in flight until the response deadline
/// (`http_request_timeout`), and not longer.
#[test]
fn a_third_records_in_flight_gets_503_and_stuck_ones_time_out() {
    let server = Ops::start(&inventory(12_000), "http_request_timeout = \"3s\"", None);
    let started = Instant::now();
    let warm = get(server.http, "/records?limit=1");
    eprintln!(
        "first /records (builds the task index of 12 000 tasks) in {:?}",
        started.elapsed()
    );
    assert_eq!(warm.code, 200);
    let started = Instant::now();
    let page = get(server.http, "/records?limit=10000");
    eprintln!(
        "a page of 10 000 tasks: {} bytes in {:?}",
        page.body.len(),
        started.elapsed()
    );
    assert!(
        page.body.len() > 8 << 20,
        "large enough to stall: {}",
        page.body.len()
    );

    let mut stuck = Vec::new();
    for _ in 0..2 {
        let mut stream = small_buffer_connection(server.addr());
        stream
            .write_all(b"GET /records?limit=10000 HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        stuck.push(stream);
    }
    let since = Instant::now();
    // Both in flight (their first bytes arrive), then a third is refused.
    for stream in &mut stuck {
        let mut buf = [0u8; 16];
        stream.read_exact(&mut buf).unwrap();
        assert!(buf.starts_with(b"HTTP/1.1 200"));
    }
    let third = get(server.http, "/records?limit=1");
    assert_eq!(third.code, 503, "{}", String::from_utf8_lossy(&third.body));
    assert!(third.head.contains("retry-after: 1"), "{}", third.head);
    // The stuck ones are dropped at the response deadline: /records again.
    wait_for("/records answered again", DEADLINE, || {
        (get(server.http, "/records?limit=1").code == 200).then_some(())
    });
    eprintln!(
        "/records answered again {:?} after two unread pages went in flight (deadline 3s)",
        since.elapsed()
    );
    for stream in &stuck {
        let held = wait_closed(stream, since);
        eprintln!("an unread /records response closed after {held:?}");
    }
}
