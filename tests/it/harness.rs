//! Test harness: runs the real `ecs-dns` binary on loopback ports and talks
//! to it with real clients (`dig`, `kdig`, hickory's client).
//!
//! A tool a test needs that is missing fails the test with the command that
//! installs it (`scripts/install-test-deps`); nothing is skipped.

#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Generous: a loaded CI machine must not turn a slow start into a failure.
pub const DEADLINE: Duration = Duration::from_secs(60);

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_ecs-dns")
}

pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Panics unless `tool` is on the PATH.
pub fn require(tool: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(found, "{tool} is missing: run scripts/install-test-deps");
}

/// `NAME TYPE` in wire format with `id`, RD set, class IN, no EDNS.
pub fn wire_query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut q = id.to_be_bytes().to_vec();
    q.extend_from_slice(&[1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.trim_end_matches('.').split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&[0, 1]);
    q
}

/// A loopback port free for both UDP and TCP right now, for a server a test
/// starts. Between this check and the server's own bind the port is free for
/// anyone, so it is taken from outside the kernel's ephemeral range (where
/// every client socket of the tests, of moto and of Chromium gets its port)
/// and is never handed out twice in one run: `bind(0)` and close, as this was
/// once, could give one port to two tests started together, and a server
/// that cannot bind stops (a status page test failed so, once).
pub fn free_port() -> u16 {
    static HANDED_OUT: std::sync::Mutex<Option<PortPool>> = std::sync::Mutex::new(None);
    let mut pool = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    let pool = pool.get_or_insert_with(PortPool::new);
    // One pass over the candidates in a run: none is handed out twice.
    while pool.next < pool.start + pool.candidates.len() {
        let port = pool.candidates[pool.next % pool.candidates.len()];
        pool.next += 1;
        if bindable(port) {
            return port;
        }
    }
    panic!("no free loopback port outside the ephemeral range");
}

/// The ports `free_port` draws from, in order from `start`, and the next.
struct PortPool {
    candidates: Vec<u16>,
    start: usize,
    next: usize,
}

impl PortPool {
    fn new() -> PortPool {
        let (low, high) = ephemeral_range();
        let candidates: Vec<u16> = (10_000..=u16::MAX)
            .filter(|p| !(low..=high).contains(p))
            .collect();
        // Test processes that run at the same time start far apart.
        let start = (std::process::id() as usize * 997) % candidates.len().max(1);
        PortPool {
            candidates,
            start,
            next: start,
        }
    }
}

/// The kernel's ephemeral ports, `ip_local_port_range` (Linux's default if
/// it cannot be read).
fn ephemeral_range() -> (u16, u16) {
    let text =
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
    let mut ends = text.split_whitespace().filter_map(|n| n.parse().ok());
    match (ends.next(), ends.next()) {
        (Some(low), Some(high)) => (low, high),
        _ => (32_768, 60_999),
    }
}

fn bindable(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok() && UdpSocket::bind(("127.0.0.1", port)).is_ok()
}

#[test]
fn free_ports_are_distinct_and_outside_the_ephemeral_range() {
    let (low, high) = ephemeral_range();
    let ports: Vec<u16> = (0..2_000).map(|_| free_port()).collect();
    let distinct: std::collections::HashSet<u16> = ports.iter().copied().collect();
    assert_eq!(distinct.len(), ports.len(), "a port was handed out twice");
    let inside: Vec<u16> = ports
        .into_iter()
        .filter(|p| (low..=high).contains(p))
        .collect();
    assert!(
        inside.is_empty(),
        "ports in the ephemeral range {low}-{high}: {inside:?}"
    );
}

/// Polls `check` like [`wait_for`] (with [`DEADLINE`]) while `child`, an
/// ecs-dns writing its log to `log`, runs. A server that stopped (a port
/// taken meanwhile, say) says why in its log: if it stops first the wait
/// fails at once, and on any failure the log is printed.
pub fn wait_while_running<T>(
    what: &str,
    child: &mut Child,
    log: &Path,
    mut check: impl FnMut() -> Option<T>,
) -> (T, Duration) {
    let waited = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_for(what, DEADLINE, || {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("ecs-dns stopped ({status}) while waiting for {what}");
            }
            check()
        })
    }));
    match waited {
        Ok(waited) => waited,
        Err(panic) => {
            let _ = child.kill();
            let log = std::fs::read_to_string(log).unwrap_or_default();
            eprintln!("ecs-dns's log:\n{log}");
            std::panic::resume_unwind(panic)
        }
    }
}

/// Polls `check` until it returns `Some`, or panics after `deadline` naming
/// `what`. Returns the value and how long it took.
pub fn wait_for<T>(
    what: &str,
    deadline: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> (T, Duration) {
    let start = Instant::now();
    loop {
        if let Some(value) = check() {
            return (value, start.elapsed());
        }
        assert!(
            start.elapsed() < deadline,
            "timed out after {deadline:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A running `ecs-dns serve`, killed on drop.
pub struct Server {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
    log: PathBuf,
}

impl Server {
    /// Starts `ecs-dns serve --config CONFIG --listen 127.0.0.1:PORT` with
    /// extra `args`, and waits until it answers for `zone`.
    pub fn start(config: &Path, args: &[&str], zone: &str) -> Server {
        Server::start_on(free_port(), config, args, zone)
    }

    /// Like [`Server::start`], on a given port (to restart a server where
    /// its peers expect it).
    pub fn start_on(port: u16, config: &Path, args: &[&str], zone: &str) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("ecs-dns.log");
        let log_file = std::fs::File::create(&log).expect("log file");
        let listen = format!("127.0.0.1:{port}");
        // The demo's configuration has an ops listener on a fixed port: each
        // server gets a port of its own unless the test chose one.
        let http = format!("127.0.0.1:{}", free_port());
        let own_http = match args.contains(&"--http") {
            true => vec![],
            false => vec!["--http", http.as_str()],
        };
        let child = Command::new(bin())
            .arg("serve")
            .arg("--config")
            .arg(config)
            .args(["--listen", &listen])
            .args(&own_http)
            .args(args)
            .env_remove("ECS_DNS_CONFIG")
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("start ecs-dns");
        let mut server = Server {
            child,
            port,
            dir,
            log,
        };
        server.wait_answering(zone);
        server
    }

    /// Waits until an SOA query for `zone` is answered NOERROR.
    fn wait_answering(&mut self, zone: &str) {
        let what = format!("ecs-dns to answer SOA {zone}");
        let port = self.port;
        let (_, took) = wait_while_running(&what, &mut self.child, &self.log, || {
            let out = dig(port, &[zone, "SOA", "+tries=1", "+time=1"]);
            out.contains("status: NOERROR").then_some(())
        });
        eprintln!("ecs-dns answered after {took:?}");
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The server's process id (to signal it).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `dig @127.0.0.1 -p PORT ARGS...`, its whole output.
pub fn dig(port: u16, args: &[&str]) -> String {
    require("dig");
    let out = Command::new("dig")
        .arg("@127.0.0.1")
        .args(["-p", &port.to_string(), "+norec"])
        .args(args)
        .output()
        .expect("run dig");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `dig +short`: the answer data, sorted.
pub fn dig_short(port: u16, args: &[&str]) -> Vec<String> {
    let mut all = vec!["+short"];
    all.extend_from_slice(args);
    let mut lines: Vec<String> = dig(port, &all)
        .lines()
        .filter(|l| !l.starts_with(';') && !l.is_empty())
        .map(str::to_owned)
        .collect();
    lines.sort();
    lines
}

/// `kdig @127.0.0.1 -p PORT ARGS...`, its whole output.
pub fn kdig(port: u16, args: &[&str]) -> String {
    require("kdig");
    let out = Command::new("kdig")
        .arg("@127.0.0.1")
        .args(["-p", &port.to_string(), "+norec"])
        .args(args)
        .output()
        .expect("run kdig");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs the binary to completion with `args`.
pub fn run(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .env_remove("ECS_DNS_CONFIG")
        .output()
        .expect("run ecs-dns")
}

pub fn demo_config() -> PathBuf {
    repo().join("conf/demo.toml")
}

/// The parts of a `dig`/`kdig` answer the tests look at.
#[derive(Debug, Default)]
pub struct Reply {
    pub status: String,
    pub flags: Vec<String>,
    pub counts: [usize; 4],
    pub question: Vec<String>,
    pub answer: Vec<String>,
    pub authority: Vec<String>,
    pub additional: Vec<String>,
    /// The `; EDNS: ...` line, if any.
    pub edns: Option<String>,
    pub raw: String,
}

impl Reply {
    pub fn flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    /// Answer records as "owner TTL TYPE data" with single spaces.
    pub fn answer_data(&self) -> Vec<String> {
        let mut data: Vec<String> = self
            .answer
            .iter()
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                // owner ttl class type data...
                f.get(4..).map(|d| d.join(" ")).unwrap_or_default()
            })
            .collect();
        data.sort();
        data
    }
}

/// Parses dig's default output.
pub fn parse_dig(raw: &str) -> Reply {
    let mut reply = Reply {
        raw: raw.to_owned(),
        ..Reply::default()
    };
    let mut section: Option<&str> = None;
    for line in raw.lines() {
        if let Some(rest) = line.split("status: ").nth(1) {
            reply.status = rest.split(',').next().unwrap_or_default().trim().to_owned();
        }
        if let Some(rest) = line.strip_prefix(";; flags:") {
            let (flags, counts) = rest.split_once(';').unwrap_or((rest, ""));
            reply.flags = flags.split_whitespace().map(str::to_owned).collect();
            for (i, part) in counts.split(',').enumerate().take(4) {
                reply.counts[i] = part
                    .rsplit(':')
                    .next()
                    .and_then(|n| n.trim().parse().ok())
                    .unwrap_or(0);
            }
        }
        if line.starts_with("; EDNS:") {
            reply.edns = Some(line.to_owned());
        }
        match line {
            ";; QUESTION SECTION:" => section = Some("q"),
            ";; ANSWER SECTION:" => section = Some("an"),
            ";; AUTHORITY SECTION:" => section = Some("au"),
            ";; ADDITIONAL SECTION:" => section = Some("ad"),
            "" => section = None,
            _ => match section {
                Some("q") => reply.question.push(line.trim_start_matches(';').to_owned()),
                Some("an") => reply.answer.push(line.to_owned()),
                Some("au") => reply.authority.push(line.to_owned()),
                Some("ad") => reply.additional.push(line.to_owned()),
                _ => {}
            },
        }
    }
    reply
}

/// `dig` with `args`, parsed.
pub fn query(port: u16, args: &[&str]) -> Reply {
    parse_dig(&dig(port, args))
}
