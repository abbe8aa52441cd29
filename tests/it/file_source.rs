//! The file source: live reload, last good data kept when the file breaks,
//! SERVFAIL (not NXDOMAIN) before anything was loaded, and the serial rule.

use std::path::Path;

use crate::harness::{DEADLINE, Server, dig_short, query, wait_for};

const ONE_TASK: &str =
    "[[tasks]]\ncluster = \"c1\"\nservice = \"svc\"\ntask_id = \"t1\"\nipv4 = [\"10.5.0.1\"]\n";
const TWO_TASKS: &str = "[[tasks]]\ncluster = \"c1\"\nservice = \"svc\"\ntask_id = \"t1\"\nipv4 = [\"10.5.0.1\"]\n[[tasks]]\ncluster = \"c1\"\nservice = \"new\"\ntask_id = \"t2\"\nipv4 = [\"10.5.0.2\"]\n";

fn config(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("config.toml");
    std::fs::write(
        &path,
        "source = \"file\"\ninventory = \"inventory.toml\"\npoll_interval = \"1s\"\nzone = \"ecs.internal\"\n",
    )
    .unwrap();
    path
}

fn serial(port: u16) -> u32 {
    let soa = dig_short(port, &["ecs.internal", "SOA"]);
    soa.first()
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no SOA serial in {soa:?}"))
}

/// Rewrites the file with a different modification time, even on file
/// systems with coarse timestamps (size changes are noticed too).
fn rewrite(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[test]
fn follows_changes_keeps_last_good_data_and_bumps_the_serial() {
    let dir = tempfile::tempdir().unwrap();
    let inventory = dir.path().join("inventory.toml");
    std::fs::write(&inventory, ONE_TASK).unwrap();
    let s = Server::start(&config(dir.path()), &[], "ecs.internal");
    assert_eq!(dig_short(s.port, &["svc.ecs.internal"]), ["10.5.0.1"]);
    let first = serial(s.port);

    rewrite(&inventory, TWO_TASKS);
    let (_, took) = wait_for("the new task to be served", DEADLINE, || {
        (dig_short(s.port, &["new.ecs.internal"]) == ["10.5.0.2"]).then_some(())
    });
    eprintln!("file change served after {took:?}");
    let second = serial(s.port);
    assert!(
        second > first,
        "serial must rise on change: {first} -> {second}"
    );

    // A broken file: the last good data stays, and the log says why.
    rewrite(&inventory, "[[tasks]\nthis is not toml");
    let (_, took) = wait_for("the parse error to be logged", DEADLINE, || {
        s.log().contains("serving the last good data").then_some(())
    });
    eprintln!("broken file reported after {took:?}");
    assert!(
        s.log().contains("TOML parse error"),
        "the reason is logged: {}",
        s.log()
    );
    assert_eq!(dig_short(s.port, &["new.ecs.internal"]), ["10.5.0.2"]);
    assert_eq!(serial(s.port), second, "nothing changed, same serial");

    // Fixed again, with the same records: the serial does not move.
    rewrite(&inventory, &format!("{TWO_TASKS}\n# touched\n"));
    wait_for("the fixed file to be read", DEADLINE, || {
        (s.log().matches("inventory file read").count() >= 2).then_some(())
    });
    assert_eq!(serial(s.port), second, "same records, same serial");
}

#[test]
fn servfail_until_the_first_load_never_nxdomain() {
    let dir = tempfile::tempdir().unwrap();
    let inventory = dir.path().join("inventory.toml");
    let port = crate::harness::free_port();
    let listen = format!("127.0.0.1:{port}");
    let config = config(dir.path());
    let mut child = std::process::Command::new(crate::harness::bin())
        .args([
            "serve",
            "--config",
            config.to_str().unwrap(),
            "--listen",
            &listen,
        ])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let (r, _) = wait_for("a SERVFAIL answer", DEADLINE, || {
        let r = query(port, &["svc.ecs.internal", "A", "+tries=1", "+time=1"]);
        (!r.status.is_empty()).then_some(r)
    });
    assert_eq!(r.status, "SERVFAIL", "before the first load: {}", r.raw);
    std::fs::write(&inventory, ONE_TASK).unwrap();
    let (_, took) = wait_for("the first load", DEADLINE, || {
        (dig_short(port, &["svc.ecs.internal"]) == ["10.5.0.1"]).then_some(())
    });
    eprintln!("first load served {took:?} after the file appeared");
    let _ = child.kill();
    let _ = child.wait();
}

/// A task listed twice is served once, and warned about and counted; a
/// served task whose service and family make no label is warned about and
/// counted as unnamed.
#[test]
fn duplicate_and_unnamed_tasks_are_warned_about_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let inventory = dir.path().join("inventory.toml");
    let twice = "[[tasks]]\ncluster = \"c1\"\nservice = \"svc\"\ntask_arn = \"arn:aws:ecs:us-east-1:1:task/c1/t1\"\nipv4 = [\"10.5.0.1\"]\n";
    let nameless = "[[tasks]]\ncluster = \"c1\"\nservice = \"___\"\nfamily = \"___\"\ntask_id = \"t9\"\nipv4 = [\"10.5.0.9\"]\n";
    std::fs::write(&inventory, format!("{twice}{twice}{nameless}")).unwrap();
    let http = crate::harness::free_port();
    let s = Server::start(
        &config(dir.path()),
        &["--http", &format!("127.0.0.1:{http}")],
        "ecs.internal",
    );
    assert_eq!(dig_short(s.port, &["svc.ecs.internal"]), ["10.5.0.1"]);
    let (_, metrics) = crate::ops::http_get(http, "/metrics").expect("/metrics");
    assert!(metrics.contains("ecs_dns_duplicate_tasks 1"), "{metrics}");
    assert!(
        metrics.contains("ecs_dns_tasks{verdict=\"unnamed\"} 1"),
        "{metrics}"
    );
    let log = s.log();
    assert!(
        log.contains("listed more than once") && log.contains("task/c1/t1"),
        "{log}"
    );
    assert!(
        log.contains("make no usable label") && log.contains("t9"),
        "{log}"
    );
}
