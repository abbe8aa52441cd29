//! Operations: the HTTP ops listener (/metrics, /healthz, /readyz,
//! /records), the state file (warm restart), signals (SIGTERM, SIGHUP), the
//! `healthcheck` subcommand, and the deployment files (linted by hadolint and
//! cfn-lint, which must be installed).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use crate::harness::{
    DEADLINE, Server, demo_config, dig, free_port, parse_dig, query, repo, require, run, wait_for,
    wait_while_running,
};

/// `GET path` on loopback `port`: status code and body.
pub(crate) fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let code = text.split_whitespace().nth(1)?.parse().ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    // axum sends small bodies with Content-Length; chunked only if streamed.
    assert!(
        !head.to_ascii_lowercase().contains("chunked"),
        "unexpected chunked response: {head}"
    );
    Some((code, body.to_owned()))
}

/// The value of the one sample of `metrics` whose line starts with `series`
/// (name and labels exactly as rendered), 0 when absent.
fn sample(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// A server the tests start, stop and signal themselves (the harness's
/// `Server` waits for an answer at start, which some tests must not do).
struct Process {
    child: Child,
    dns: u16,
    http: u16,
    log: PathBuf,
}

/// Runs `command` (the binary, or a wrapper that execs it) as `serve
/// --config CONFIG` with DNS on loopback port `dns`, the ops listener on
/// `http`, and stderr to `log`.
pub(crate) fn spawn_serve(
    mut command: Command,
    config: &Path,
    dns: u16,
    http: u16,
    log: &Path,
) -> Child {
    command
        .arg("serve")
        .arg("--config")
        .arg(config)
        .args(["--listen", &format!("127.0.0.1:{dns}")])
        .args(["--http", &format!("127.0.0.1:{http}")])
        .env_remove("ECS_DNS_CONFIG")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("start ecs-dns")
}

impl Process {
    fn start(config: &Path, log: PathBuf) -> Process {
        let dns = free_port();
        let http = free_port();
        let mut child = spawn_serve(Command::new(crate::harness::bin()), config, dns, http, &log);
        let (_, took) = wait_while_running("the ops listener", &mut child, &log, || {
            http_get(http, "/healthz").filter(|(code, _)| *code == 200)
        });
        let process = Process {
            child,
            dns,
            http,
            log,
        };
        eprintln!("/healthz answered after {took:?}");
        process
    }

    fn get(&self, path: &str) -> (u16, String) {
        http_get(self.http, path).unwrap_or_else(|| panic!("GET {path} failed"))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
    }

    /// Waits for the process to exit; returns its status and how long it took.
    fn wait_exit(&mut self) -> (ExitStatus, Duration) {
        wait_for("ecs-dns to exit", DEADLINE, || {
            self.child.try_wait().ok().flatten()
        })
    }

    fn ttl_of(&self, name: &str) -> Option<u32> {
        let reply = query(self.dns, &[name, "A", "+tries=1", "+time=2"]);
        let line = reply.answer.first()?;
        line.split_whitespace().nth(1)?.parse().ok()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A config in `dir` serving `dir/inventory.toml`, with `extra` lines.
fn write_config(dir: &Path, extra: &str) -> PathBuf {
    let path = dir.join("ecs-dns.toml");
    std::fs::write(
        &path,
        format!(
            "zone = \"local\"\nsource = \"file\"\ninventory = \"inventory.toml\"\npoll_interval = \"1s\"\nnameservers = [\"ns1.local=127.0.0.1\"]\n{extra}\n"
        ),
    )
    .unwrap();
    path
}

fn copy_demo_inventory(dir: &Path) {
    std::fs::copy(
        repo().join("conf/demo-inventory.toml"),
        dir.join("inventory.toml"),
    )
    .unwrap();
}

fn soa_serial(port: u16) -> u32 {
    let reply = query(port, &["local", "SOA", "+tries=1", "+time=2"]);
    let line = reply.answer.first().expect("an SOA");
    line.split_whitespace().nth(6).unwrap().parse().unwrap()
}

#[test]
fn metrics_move_with_queries_hickory_front() {
    metrics_move_with_queries("hickory");
}

#[test]
fn metrics_move_with_queries_own_front() {
    metrics_move_with_queries("own");
}

fn metrics_move_with_queries(front: &str) {
    let http = free_port();
    let server = Server::start(
        &demo_config(),
        &["--http", &format!("127.0.0.1:{http}"), "--front", front],
        "local",
    );
    let get = |path| http_get(http, path).expect("GET");
    let (code, before) = get("/metrics");
    assert_eq!(code, 200);
    let a_ok = "ecs_dns_queries_total{qtype=\"A\",rcode=\"NOERROR\"}";
    let srv_ok = "ecs_dns_queries_total{qtype=\"SRV\",rcode=\"NOERROR\"}";
    let nx = "ecs_dns_queries_total{qtype=\"A\",rcode=\"NXDOMAIN\"}";
    let mx = "ecs_dns_queries_total{qtype=\"other\",rcode=\"NOERROR\"}";
    for _ in 0..3 {
        let reply = query(server.port, &["web.local", "A"]);
        assert_eq!(reply.status, "NOERROR");
    }
    assert_eq!(
        query(server.port, &["_http._tcp.web.local", "SRV"]).status,
        "NOERROR"
    );
    assert_eq!(query(server.port, &["nope.local", "A"]).status, "NXDOMAIN");
    assert_eq!(query(server.port, &["web.local", "MX"]).status, "NOERROR");
    let (_, after) = get("/metrics");
    for (series, want) in [(a_ok, 3.0), (srv_ok, 1.0), (nx, 1.0), (mx, 1.0)] {
        assert_eq!(
            sample(&after, series) - sample(&before, series),
            want,
            "{series}\n{after}"
        );
    }
    let count = "ecs_dns_query_duration_seconds_count";
    assert!(
        sample(&after, count) - sample(&before, count) >= 6.0,
        "{after}"
    );
    // The zone and source gauges.
    assert!(
        sample(&after, r#"ecs_dns_records{zone="local."}"#) > 10.0,
        "{after}"
    );
    assert!(
        sample(&after, r#"ecs_dns_names{zone="local."}"#) > 5.0,
        "{after}"
    );
    assert!(
        sample(&after, r#"ecs_dns_zone_serial{zone="local."}"#) > 1e9,
        "{after}"
    );
    assert_eq!(sample(&after, "ecs_dns_tasks_seen"), 8.0, "{after}");
    assert!(
        after.contains("ecs_dns_cluster_data_age_seconds{cluster=\"prod\"}"),
        "{after}"
    );
    assert!(
        after.contains(&format!(
            "ecs_dns_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        )),
        "{after}"
    );
    assert!(
        sample(&after, "ecs_dns_refreshes_total{outcome=\"updated\"}") >= 1.0,
        "{after}"
    );
    assert!(
        after.contains("ecs_dns_refresh_duration_seconds_bucket"),
        "{after}"
    );
    // No log line per query.
    let log = server.log();
    assert!(!log.contains("nope.local"), "a query was logged:\n{log}");
}

/// The metrics table of `docs/metrics.md` and a fresh server's `/metrics` name the same
/// metrics, and the series of known label values are there at zero before
/// anything happened.
#[test]
fn metrics_match_the_documented_table_and_exist_from_the_start() {
    let page = std::fs::read_to_string(repo().join("docs/metrics.md")).unwrap();
    let section = page
        .split("## Metrics\n")
        .nth(1)
        .and_then(|rest| rest.split("\n#").next())
        .expect("a Metrics section in docs/metrics.md");
    let mut documented = std::collections::BTreeSet::new();
    for row in section.lines().filter(|l| l.starts_with("| `")) {
        let first_cell = row.split(" | ").next().unwrap_or_default();
        for name in first_cell.split('`').skip(1).step_by(2) {
            documented.insert(name.split('{').next().unwrap_or_default().to_owned());
        }
    }
    assert!(documented.len() > 20, "{documented:?}");

    let http = free_port();
    let server = Server::start(
        &demo_config(),
        &["--http", &format!("127.0.0.1:{http}")],
        "local",
    );
    let (code, metrics) = http_get(http, "/metrics").expect("GET /metrics");
    assert_eq!(code, 200);
    let exported: std::collections::BTreeSet<String> = metrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    assert_eq!(
        documented, exported,
        "docs/metrics.md table (left) and /metrics (right) differ"
    );
    // The resident set keeps the name Prometheus clients give it.
    assert!(
        exported
            .iter()
            .all(|name| name.starts_with("ecs_dns_") || name == "process_resident_memory_bytes"),
        "{exported:?}"
    );
    for series in [
        "ecs_dns_transfers_total{outcome=\"refused\"} 0",
        "ecs_dns_notify_total{outcome=\"failed\"} 0",
        "ecs_dns_aws_errors_total{operation=\"DescribeTasks\"} 0",
        "ecs_dns_rrl_total{action=\"slip\"} 0",
        "ecs_dns_tcp_rejected_total 0",
        "ecs_dns_udp_errors_total{op=\"send\"} 0",
        "ecs_dns_state_writes_total{outcome=\"error\"} 0",
        "ecs_dns_tasks{verdict=\"draining\"} 0",
        "ecs_dns_queries_total{qtype=\"AXFR\",rcode=\"REFUSED\"} 0",
        "ecs_dns_front_dropped_total{transport=\"tcp\"} 0",
        "ecs_dns_events_total{type=\"instance\",outcome=\"stale\"} 0",
        "ecs_dns_events_total{type=\"unknown\",outcome=\"malformed\"} 0",
        "ecs_dns_reconcile_corrections_total{kind=\"removed\"} 0",
        "ecs_dns_ready 1",
    ] {
        assert!(metrics.contains(series), "{series} missing:\n{metrics}");
    }
    drop(server);
}

#[test]
fn readiness_follows_load_and_staleness() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "max_stale = \"2s\"");
    let server = Process::start(&config, dir.path().join("log"));

    // The inventory file does not exist yet: alive, not ready.
    let (code, body) = server.get("/readyz");
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("no zone loaded"), "{body}");
    let (code, _) = server.get("/records");
    assert_eq!(code, 503);
    assert_eq!(
        parse_dig(&dig(server.dns, &["web.local", "A"])).status,
        "SERVFAIL"
    );

    copy_demo_inventory(dir.path());
    let (body, took) = wait_for("/readyz 200", DEADLINE, || {
        let (code, body) = server.get("/readyz");
        (code == 200).then_some(body)
    });
    eprintln!("ready {took:?} after the inventory appeared: {body}");

    // A file nobody edits stays current while it is read: dated by the
    // read, not by its modification time (here 3 hours old), and re-dated
    // within max_stale while unchanged.
    let inventory = dir.path().join("inventory.toml");
    let touched = std::process::Command::new("touch")
        .args(["-d", "3 hours ago"])
        .arg(&inventory)
        .status()
        .unwrap();
    assert!(touched.success());
    let until = std::time::Instant::now() + Duration::from_secs(5);
    let mut checks = 0;
    while std::time::Instant::now() < until {
        let (code, body) = server.get("/readyz");
        assert_eq!(code, 200, "an unchanged, readable file went stale: {body}");
        checks += 1;
        std::thread::sleep(Duration::from_millis(250));
    }
    eprintln!("ready through {checks} checks over 5 s (max_stale 2 s, file mtime 3 h old)");

    // The file cannot be read any more: its data ages past max_stale.
    std::fs::remove_file(&inventory).unwrap();
    let (body, took) = wait_for("/readyz 503 (stale)", DEADLINE, || {
        let (code, body) = server.get("/readyz");
        (code == 503).then_some(body)
    });
    eprintln!("stale after {took:?}: {body}");
    assert!(body.contains("stale"), "{body}");
    // Stale data is still served.
    assert_eq!(query(server.dns, &["web.local", "A"]).status, "NOERROR");
    // /healthz stays 200: the process is alive.
    assert_eq!(server.get("/healthz").0, 200);
}

#[test]
fn records_show_provenance_and_verdicts() {
    let http = free_port();
    let _server = Server::start(
        &demo_config(),
        &["--http", &format!("127.0.0.1:{http}")],
        "local",
    );
    let (code, body) = http_get(http, "/records").unwrap();
    assert_eq!(code, 200);
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["zone"], "local.");
    let records = doc["records"].as_array().unwrap();
    let web = records
        .iter()
        .find(|r| r["name"] == "web.prod.local." && r["type"] == "A")
        .expect("a record for web.prod.local");
    assert_eq!(web["cluster"], "prod");
    assert_eq!(web["service"], "web");
    assert_eq!(web["ec2_instance_id"], "i-0aaa000000000001");
    assert!(
        web["task_arn"]
            .as_str()
            .unwrap()
            .starts_with("arn:aws:ecs:us-east-1:123456789012:task/prod/")
    );
    assert!(
        web["container_instance_arn"]
            .as_str()
            .unwrap()
            .contains("container-instance/prod/1111")
    );
    let api = records
        .iter()
        .find(|r| r["name"] == "api.local." && r["type"] == "AAAA")
        .expect("an AAAA record for api.local");
    assert_eq!(api["eni_id"], "eni-0123456789abcdef0");

    let tasks = doc["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 8);
    let verdict = |arn_tail: &str| {
        let task = tasks
            .iter()
            .find(|t| t["task_arn"].as_str().unwrap().ends_with(arn_tail))
            .unwrap();
        (
            task["verdict"].as_str().unwrap().to_owned(),
            task["served"].as_bool().unwrap(),
        )
    };
    assert_eq!(
        verdict("3d4e5f60718293a4b5c6d7e8f90a1b2c"),
        ("starting".to_owned(), false)
    );
    assert_eq!(
        verdict("2c3d4e5f60718293a4b5c6d7e8f90a1b"),
        ("served".to_owned(), true)
    );
    let unhealthy = verdict("4e5f60718293a4b5c6d7e8f90a1b2c3d");
    assert!(!unhealthy.1 && unhealthy.0 == "unhealthy", "{unhealthy:?}");
    assert_eq!(doc["clusters"].as_array().unwrap().len(), 2);
}

/// SIGTERM: exit 0 with a complete state file; the next start answers from
/// it before the source can be read, under a higher serial.
#[test]
fn sigterm_saves_state_and_restart_answers_from_it() {
    let dir = tempfile::tempdir().unwrap();
    copy_demo_inventory(dir.path());
    let config = write_config(dir.path(), "state_file = \"state/ecs-dns.json\"");
    std::fs::create_dir(dir.path().join("state")).unwrap();
    let state = dir.path().join("state/ecs-dns.json");

    let mut first = Process::start(&config, dir.path().join("log1"));
    wait_for("the first zone", DEADLINE, || {
        (query(first.dns, &["web.local", "A"]).status == "NOERROR").then_some(())
    });
    let serial = soa_serial(first.dns);
    first.signal("TERM");
    let (status, took) = first.wait_exit();
    eprintln!("exited {status:?} {took:?} after SIGTERM");
    assert_eq!(status.code(), Some(0), "{}", first.log());
    assert!(first.log().contains("state file saved"), "{}", first.log());
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert_eq!(saved["serial"], serial);
    assert_eq!(saved["zone"], "local.");
    assert_eq!(saved["inventory"]["tasks"].as_array().unwrap().len(), 8);
    // Only the state file: no temporary file left behind.
    assert_eq!(
        std::fs::read_dir(dir.path().join("state")).unwrap().count(),
        1
    );

    // The source is gone: the second run can only answer from the state.
    std::fs::remove_file(dir.path().join("inventory.toml")).unwrap();
    let second = Process::start(&config, dir.path().join("log2"));
    let reply = query(second.dns, &["web.prod.local", "A"]);
    assert_eq!(reply.status, "NOERROR", "{}", second.log());
    assert_eq!(reply.answer_data(), ["10.0.1.10"]);
    let restarted = soa_serial(second.dns);
    assert!(
        restarted > serial,
        "serial must rise across restarts: {serial} -> {restarted}"
    );
    assert!(second.log().contains("restored"), "{}", second.log());
    assert_eq!(second.get("/readyz").0, 200);

    // The source comes back: its data replaces the restored zone.
    let edited = std::fs::read_to_string(repo().join("conf/demo-inventory.toml"))
        .unwrap()
        .replace("10.0.1.10", "10.0.1.99");
    std::fs::write(dir.path().join("inventory.toml"), edited).unwrap();
    let (_, took) = wait_for("the source's data", DEADLINE, || {
        (query(second.dns, &["web.prod.local", "A"]).answer_data() == ["10.0.1.99"]).then_some(())
    });
    eprintln!("source data served {took:?} after it came back");
}

#[test]
fn corrupt_state_file_is_ignored_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "state_file = \"state.json\"");
    std::fs::write(dir.path().join("state.json"), "{\"version\":1,\"zone\":").unwrap();
    let server = Process::start(&config, dir.path().join("log"));
    let (log, _) = wait_for("the state file warning", DEADLINE, || {
        let log = server.log();
        log.contains("state file ignored").then_some(log)
    });
    assert!(log.contains("corrupt"), "{log}");
    // Never served, never fatal.
    assert_eq!(query(server.dns, &["local", "SOA"]).status, "SERVFAIL");
    assert_eq!(server.get("/readyz").0, 503);
    copy_demo_inventory(dir.path());
    wait_for("the zone from the source", DEADLINE, || {
        (query(server.dns, &["web.local", "A"]).status == "NOERROR").then_some(())
    });
}

#[test]
fn sighup_applies_a_new_record_ttl() {
    let dir = tempfile::tempdir().unwrap();
    copy_demo_inventory(dir.path());
    let config = write_config(dir.path(), "record_ttl = 10");
    let server = Process::start(&config, dir.path().join("log"));
    wait_for("TTL 10", DEADLINE, || {
        (server.ttl_of("web.local") == Some(10)).then_some(())
    });
    let serial = soa_serial(server.dns);

    write_config(dir.path(), "record_ttl = 77\nmax_udp_payload = 1400");
    server.signal("HUP");
    let (_, took) = wait_for("TTL 77 after SIGHUP", DEADLINE, || {
        (server.ttl_of("web.local") == Some(77)).then_some(())
    });
    eprintln!("new TTL served {took:?} after SIGHUP");
    assert!(
        soa_serial(server.dns) > serial,
        "a changed zone needs a new serial"
    );
    let (log, _) = wait_for("the reload log", DEADLINE, || {
        let log = server.log();
        log.contains("configuration reloaded").then_some(log)
    });
    assert!(log.contains("max_udp_payload"), "{log}");
    assert!(log.contains("only on restart"), "{log}");

    // A broken config on reload: logged, the running one kept.
    std::fs::write(&config, "zone = \"local\"\nrecrod_ttl = 5\n").unwrap();
    server.signal("HUP");
    let (log, _) = wait_for("the reload error", DEADLINE, || {
        let log = server.log();
        log.contains("reload failed").then_some(log)
    });
    assert!(log.contains("recrod_ttl"), "{log}");
    assert_eq!(server.ttl_of("web.local"), Some(77));
}

/// A reload that removes a reverse zone takes its series off `/metrics`;
/// one that adds a zone gives it series at once. Before, the removed
/// zone's gauges stayed at their last value until a restart.
#[test]
fn sighup_removing_a_reverse_zone_removes_its_series() {
    let dir = tempfile::tempdir().unwrap();
    copy_demo_inventory(dir.path());
    let reverse = r#"ecs_dns_zone_serial{zone="10.in-addr.arpa."}"#;
    let forward = r#"ecs_dns_zone_serial{zone="local."}"#;
    let config = write_config(dir.path(), "reverse_zones = [\"10.0.0.0/8\"]");
    let server = Process::start(&config, dir.path().join("log"));
    let (metrics, took) = wait_for("the reverse zone's series", DEADLINE, || {
        let (_, metrics) = server.get("/metrics");
        metrics.contains(reverse).then_some(metrics)
    });
    eprintln!("reverse zone series after {took:?}");
    assert!(sample(&metrics, r#"ecs_dns_records{zone="10.in-addr.arpa."}"#) > 1.0);

    write_config(dir.path(), "");
    server.signal("HUP");
    let (metrics, took) = wait_for("the series gone after SIGHUP", DEADLINE, || {
        let (_, metrics) = server.get("/metrics");
        (!metrics.contains("10.in-addr.arpa.")).then_some(metrics)
    });
    eprintln!("reverse zone series gone {took:?} after SIGHUP");
    assert!(sample(&metrics, forward) > 1e9, "{metrics}");
    assert!(
        metrics.contains("# TYPE ecs_dns_zone_serial gauge"),
        "{metrics}"
    );
}

#[test]
fn healthcheck_subcommand() {
    // A fresh inventory: the file's mtime is the data's age.
    let dir = tempfile::tempdir().unwrap();
    copy_demo_inventory(dir.path());
    let config = write_config(dir.path(), "");
    let server = Process::start(&config, dir.path().join("log"));
    wait_for("ready", DEADLINE, || {
        (server.get("/readyz").0 == 200).then_some(())
    });
    let http = server.http;
    let address = format!("127.0.0.1:{http}");
    let live = run(&["healthcheck", "--http", &address]);
    assert_eq!(live.status.code(), Some(0), "{live:?}");
    let ready = run(&["healthcheck", "--http", &address, "--ready"]);
    assert_eq!(ready.status.code(), Some(0), "{ready:?}");
    // A wildcard address is reached on loopback.
    let wildcard = run(&["healthcheck", "--http", &format!("0.0.0.0:{http}")]);
    assert_eq!(wildcard.status.code(), Some(0), "{wildcard:?}");
    drop(server);
    let dead = run(&["healthcheck", "--http", &address, "--timeout", "2s"]);
    assert_eq!(dead.status.code(), Some(1), "{dead:?}");
    assert!(
        String::from_utf8_lossy(&dead.stderr).contains("cannot connect"),
        "{dead:?}"
    );
}

#[test]
fn unreadable_inventory_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    // A folder where the inventory file should be: serve and check-config.
    std::fs::create_dir(dir.path().join("inventory.toml")).unwrap();
    let config = write_config(dir.path(), "");
    for command in ["serve", "check-config"] {
        let out = run(&[command, "--config", config.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{command}: {stderr}");
        assert!(stderr.contains("inventory"), "{command}: {stderr}");
    }
    // Missing: an error for check-config only (serve waits for it).
    std::fs::remove_dir(dir.path().join("inventory.toml")).unwrap();
    let out = run(&["check-config", "--config", config.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("inventory"), "{stderr}");
    // Present but not an inventory: check-config says why.
    std::fs::write(dir.path().join("inventory.toml"), "tasks = 3\n").unwrap();
    let out = run(&["check-config", "--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    // And bad ops keys name themselves.
    for (flag, value, key) in [
        ("--max-stale", "0s", "max_stale"),
        ("--http", "localhost", "http"),
    ] {
        let out = run(&[
            "check-config",
            "--config",
            config.to_str().unwrap(),
            flag,
            value,
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}: {stderr}");
        assert!(stderr.contains(key), "{flag} {value}: {stderr}");
    }
}

#[test]
fn dockerfile_passes_hadolint() {
    require("hadolint");
    let out = Command::new("hadolint")
        .arg(repo().join("docker/Dockerfile"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "hadolint: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(repo().join("docker/Dockerfile")).unwrap();
    assert!(text.contains("HEALTHCHECK") && text.contains("healthcheck"));
    assert!(text.contains("USER "), "must not run as root");
}

#[test]
fn cloudformation_template_passes_cfn_lint() {
    require("cfn-lint");
    let template = repo().join("docker/cloudformation.yaml");
    let out = Command::new("cfn-lint").arg(&template).output().unwrap();
    assert!(
        out.status.success(),
        "cfn-lint: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&template).unwrap();
    for needed in [
        "AWS::ElasticLoadBalancingV2::LoadBalancer",
        "PrivateIPv4Address",
        "AWS::Route53Resolver::ResolverRule",
        "AWS::Route53Resolver::ResolverRuleAssociation",
        "AWS::Route53Resolver::ResolverEndpoint",
        "ecs:DescribeTasks",
        "ec2:DescribeInstances",
        // Events mode: a rule, a queue per replica under SSE-SQS, dead
        // letters for both the queues and the rule's deliveries, and only
        // the rule may send.
        "AWS::Events::Rule",
        "EventsQueueA",
        "EventsQueueB",
        "SqsManagedSseEnabled: true",
        "maxReceiveCount: 5",
        "DeadLetterConfig",
        "aws:SourceArn: !GetAtt EventsRule.Arn",
        "ECS_DNS_EVENTS_QUEUE",
        // The rule takes only the served clusters' events when some are
        // given (events::the_stacks_events_rule_passes_only_the_served_clusters
        // checks the pattern in moto), by name.
        "EventPattern: !If",
        "- AllClusters",
        r#""suffix": ":cluster/${Names}""#,
        "AllowedPattern: '^$|^[A-Za-z0-9_-]{1,255}(,[A-Za-z0-9_-]{1,255})*$'",
        // Several accounts: the member accounts' bus, admitting only them,
        // and the task role's assumption of their read roles.
        "AWS::Events::EventBus",
        "AWS::Events::EventBusPolicy",
        "Principal: { AWS: !Ref MemberAccountIds }",
        "Resource: !Sub arn:${AWS::Partition}:iam::*:role/${MemberRoleName}",
        "aws:ResourceAccount: !Ref MemberAccountIds",
        "ECS_DNS_SOURCES",
        // Reverse zones: the ranges passed on, a forwarding rule for each
        // reverse zone given, associated with the VPC.
        "ECS_DNS_REVERSE_ZONES",
        "DomainName: !Ref ReverseZoneName1",
        "ResolverRuleId: !Ref ReverseRule2",
    ] {
        assert!(text.contains(needed), "template lacks {needed}");
    }
    // The member accounts' template (StackSets): a read role trusting the
    // task role with the external ID, and a rule sending ECS events to the
    // central bus.
    let member = repo().join("docker/cloudformation-member.yaml");
    let out = Command::new("cfn-lint").arg(&member).output().unwrap();
    assert!(
        out.status.success(),
        "cfn-lint (member): {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let member_text = std::fs::read_to_string(&member).unwrap();
    for needed in [
        "AWS::IAM::Role",
        "Principal: { AWS: !Ref EcsDnsTaskRoleArn }",
        "StringEquals: { sts:ExternalId: !Ref ExternalId }",
        "NoEcho: true",
        "AWS::Events::Rule",
        "Arn: !Ref CentralEventBusArn",
        "Action: events:PutEvents",
        "Resource: !Ref CentralEventBusArn",
        "ecs:DescribeTasks",
        "ec2:DescribeInstances",
    ] {
        assert!(
            member_text.contains(needed),
            "member template lacks {needed}"
        );
    }
    assert!(
        !member_text.contains("sqs:"),
        "the member role reads no queue"
    );
    // The ops listener shows the whole inventory: the VPC reaches DNS
    // (8053) on the tasks, never the ops port (9153), which only the NLB's
    // health checks and the operator CIDR reach.
    let task_group = text
        .split("  TaskSecurityGroup:")
        .nth(1)
        .and_then(|rest| rest.split("\n\n").next())
        .expect("TaskSecurityGroup");
    for line in task_group.lines().filter(|l| l.contains("VpcCidr")) {
        assert!(line.contains("FromPort: 8053"), "open to the VPC: {line}");
    }
    assert!(task_group.contains("NlbAddresses"), "{task_group}");
    assert!(text.contains("CidrIp: !Ref OperatorCidr"));
    // The task role carries every action of docker/iam-policy.json.
    let policy: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("docker/iam-policy.json")).unwrap(),
    )
    .unwrap();
    for statement in policy["Statement"].as_array().unwrap() {
        let actions = match &statement["Action"] {
            serde_json::Value::String(one) => vec![one.clone()],
            many => many
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap().to_owned())
                .collect(),
        };
        for action in actions {
            assert!(text.contains(&action), "task role lacks {action}");
        }
    }
}

#[test]
fn deployment_json_files_parse() {
    let dir = repo().join("docker");
    let mut parsed = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(&path).unwrap();
            serde_json::from_str::<serde_json::Value>(&text)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            parsed += 1;
        }
    }
    assert!(parsed >= 1, "no JSON file in docker/");
    let task: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("task-definition.json")).unwrap())
            .unwrap();
    assert_eq!(task["networkMode"], "awsvpc");
    let container = &task["containerDefinitions"][0];
    let check = container["healthCheck"]["command"].to_string();
    assert!(check.contains("healthcheck"), "{check}");
    let ports: Vec<(u64, String)> = container["portMappings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["containerPort"].as_u64().unwrap(),
                p["protocol"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(ports.contains(&(8053, "udp".into())), "{ports:?}");
    assert!(ports.contains(&(8053, "tcp".into())), "{ports:?}");
}
