//! Task lifecycle, end to end: the running binary (`serve --source ecs`,
//! polling every second) against moto, with the task states real ECS goes
//! through set by the `moto_server.py` task-state hook (health from the
//! containers' checks, the desired status alone at a stop decision) and by
//! real API calls (UpdateContainerInstancesState to DRAINING, StopTask).
//!
//! Each step waits with a generous deadline and prints how long the change
//! took to reach DNS; nothing asserts on speed.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{DEADLINE, dig_short, free_port, query, wait_for};
use crate::moto::{EcsServer, Moto, ZONE};

const CLUSTER: &str = "life";

fn str_of<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("no {key} in {value}"))
}

fn tasks(result: &Value) -> Vec<Value> {
    result["tasks"].as_array().unwrap().clone()
}

/// Sorted A records of `labels` under the zone.
fn a(port: u16, labels: &str) -> Vec<String> {
    dig_short(port, &[&format!("{labels}.{ZONE}"), "A"])
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// `GET path` on the ops listener, the body of a 200 answer.
fn http_get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200")
        .then(|| body.to_owned())
        .or_else(|| head.starts_with("HTTP/1.0 200").then(|| body.to_owned()))
}

/// Task id → verdict, as `/records` shows them.
fn verdicts(http: u16) -> BTreeMap<String, String> {
    let Some(body) = http_get(http, "/records") else {
        return BTreeMap::new();
    };
    let doc: Value = serde_json::from_str(&body).unwrap();
    doc["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                str_of(t, "task_id").to_owned(),
                t["verdict"].as_str().unwrap_or("none").to_owned(),
            )
        })
        .collect()
}

/// Waits until `/records` gives each task of `want` its verdict.
fn wait_verdicts(what: &str, http: u16, want: &[(&str, &str)]) -> Duration {
    let (_, took) = wait_for(what, DEADLINE, || {
        let got = verdicts(http);
        want.iter()
            .all(|(id, v)| got.get(*id).map(String::as_str) == Some(*v))
            .then_some(())
    });
    took
}

/// The value of the sample `series` (whole name with labels) in `/metrics`.
fn metric(http: u16, series: &str) -> Option<f64> {
    let body = http_get(http, "/metrics")?;
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}

/// Waits until the sample `series` in `/metrics` is `want` (the gauges are
/// set just after a snapshot is published, so they may trail `/records`).
fn wait_metric(http: u16, series: &str, want: f64) {
    wait_for(&format!("{series} = {want}"), DEADLINE, || {
        (metric(http, series) == Some(want)).then_some(())
    });
}

/// `ecs-dns serve --source ecs` on moto with the ops listener on; returns
/// the server and the ops port.
fn serve(moto: &Moto, extra: &[&str]) -> (EcsServer, u16) {
    let http = free_port();
    let listen = format!("127.0.0.1:{http}");
    let mut args = vec!["--cluster", CLUSTER, "--http", listen.as_str()];
    args.extend_from_slice(extra);
    (EcsServer::start(moto, &args), http)
}

/// A VPC and the cluster; returns (subnet, security group).
fn network(moto: &Moto) -> (String, String) {
    let out = moto.steps(json!([{"op": "network"}, {"op": "cluster", "name": CLUSTER}]));
    (
        str_of(&out[0], "subnet").to_owned(),
        str_of(&out[0], "sg").to_owned(),
    )
}

/// Health gates serving: PENDING tasks and RUNNING ones whose health check
/// has not passed (UNKNOWN) are not served, and their name is NXDOMAIN with
/// the configured negative TTL; HEALTHY is served
/// within a poll; UNHEALTHY is withdrawn while another task is healthy; an
/// all-UNHEALTHY service fails open (and does not with `--fail-open false`);
/// a stop decision (desired STOPPED, last still RUNNING) withdraws the task.
#[test]
fn health_and_stop_decision_drive_what_is_served() {
    let moto = Moto::start();
    let (subnet, sg) = network(&moto);
    let out = moto.steps(json!([
        // An essential container with a healthCheck: the task is HEALTHY
        // only once ECS says so.
        {"op": "taskdef", "family": "app", "mode": "awsvpc", "health": true,
         "ports": [{"container": 8080, "name": "http"}]},
    ]));
    let app = str_of(&out[0], "arn").to_owned();
    let out = moto.steps(json!([
        {"op": "run", "cluster": CLUSTER, "taskdef": app, "count": 2, "group": "service:app",
         "launch_type": "FARGATE", "subnet": subnet, "sg": sg},
    ]));
    let started = tasks(&out[0]);
    let (t1, t2) = (str_of(&started[0], "id"), str_of(&started[1], "id"));
    let (ip1, ip2) = (
        str_of(&started[0], "ip").to_owned(),
        str_of(&started[1], "ip").to_owned(),
    );
    assert_ne!(ip1, ip2);
    // As ECS reports a task it has just placed: not RUNNING yet, health
    // UNKNOWN until the container's check passes.
    for id in [t1, t2] {
        moto.set_task(
            id,
            json!({"lastStatus": "PENDING", "healthStatus": "UNKNOWN"}),
        );
    }

    let (open, open_http) = serve(&moto, &["--negative-ttl", "3"]);
    let (closed, closed_http) = serve(&moto, &["--fail-open", "false"]);

    // 1. PENDING, then RUNNING with its health check not passed yet: seen,
    // not served.
    for http in [open_http, closed_http] {
        wait_verdicts(
            "both tasks seen as pending",
            http,
            &[(t1, "pending"), (t2, "pending")],
        );
    }
    assert!(a(open.port, "app").is_empty());
    for id in [t1, t2] {
        moto.set_task(id, json!({"lastStatus": "RUNNING"}));
    }
    for http in [open_http, closed_http] {
        wait_verdicts(
            "both tasks seen as starting",
            http,
            &[(t1, "starting"), (t2, "starting")],
        );
    }
    wait_metric(open_http, "ecs_dns_tasks{verdict=\"starting\"}", 2.0);
    wait_metric(open_http, "ecs_dns_tasks{verdict=\"served\"}", 0.0);
    // 6. The name does not exist yet; the negative answer may be cached for
    // the configured 3 s only (SOA TTL in the authority section).
    let nx = query(open.port, &[&format!("app.{CLUSTER}.{ZONE}"), "A"]);
    assert_eq!(nx.status, "NXDOMAIN", "{}", nx.raw);
    let soa: Vec<&str> = nx
        .authority
        .first()
        .unwrap_or_else(|| panic!("no SOA in {}", nx.raw))
        .split_whitespace()
        .collect();
    assert_eq!(soa[0], format!("{ZONE}."), "{}", nx.raw);
    assert_eq!(soa[3], "SOA", "{}", nx.raw);
    assert_eq!(soa[1], "3", "negative TTL: {}", nx.raw);
    assert_eq!(soa.last(), Some(&"3"), "SOA MINIMUM: {}", nx.raw);
    // The default (5 s) on the other server.
    let nx = query(closed.port, &[&format!("app.{CLUSTER}.{ZONE}"), "A"]);
    assert_eq!(nx.status, "NXDOMAIN", "{}", nx.raw);
    assert_eq!(
        nx.authority[0].split_whitespace().nth(1),
        Some("5"),
        "{}",
        nx.raw
    );

    // HEALTHY → served within a poll.
    moto.set_task(t1, json!({"healthStatus": "HEALTHY"}));
    let start = Instant::now();
    wait_for("the healthy task to be served", DEADLINE, || {
        (a(open.port, &format!("app.{CLUSTER}")) == [ip1.clone()]).then_some(())
    });
    eprintln!(
        "lifecycle: HEALTHY -> served in {:?} (poll interval 1s)",
        start.elapsed()
    );
    assert_eq!(a(open.port, &format!("{t1}.app")), [ip1.as_str()]);
    assert!(a(open.port, &format!("{t2}.app")).is_empty(), "t2 starting");
    wait_for(
        "the healthy task on the fail-closed server",
        DEADLINE,
        || (a(closed.port, &format!("app.{CLUSTER}")) == [ip1.clone()]).then_some(()),
    );

    moto.set_task(t2, json!({"healthStatus": "HEALTHY"}));
    let both = sorted(vec![ip1.clone(), ip2.clone()]);
    wait_for("both tasks served", DEADLINE, || {
        (a(open.port, "app") == both).then_some(())
    });

    // 2. HEALTHY → UNHEALTHY, another task healthy: withdrawn.
    moto.set_task(t1, json!({"healthStatus": "UNHEALTHY"}));
    let start = Instant::now();
    wait_for("the unhealthy task to be withdrawn", DEADLINE, || {
        (a(open.port, "app") == [ip2.clone()]).then_some(())
    });
    eprintln!("lifecycle: UNHEALTHY -> withdrawn in {:?}", start.elapsed());
    wait_verdicts(
        "t1 unhealthy, t2 served",
        open_http,
        &[(t1, "unhealthy"), (t2, "served")],
    );
    wait_for(
        "the unhealthy task withdrawn (fail closed)",
        DEADLINE,
        || (a(closed.port, "app") == [ip2.clone()]).then_some(()),
    );

    // 5. Every task UNHEALTHY: fail open serves them all; with
    // `--fail-open false` the name is gone.
    moto.set_task(t2, json!({"healthStatus": "UNHEALTHY"}));
    let start = Instant::now();
    wait_verdicts(
        "fail open",
        open_http,
        &[(t1, "failing_open"), (t2, "failing_open")],
    );
    eprintln!(
        "lifecycle: all UNHEALTHY -> failing open in {:?}",
        start.elapsed()
    );
    assert_eq!(a(open.port, "app"), both);
    wait_metric(open_http, "ecs_dns_tasks{verdict=\"failing_open\"}", 2.0);
    wait_verdicts(
        "no fail open when it is off",
        closed_http,
        &[(t1, "unhealthy"), (t2, "unhealthy")],
    );
    assert!(a(closed.port, "app").is_empty());
    let nx = query(closed.port, &[&format!("app.{CLUSTER}.{ZONE}"), "A"]);
    assert_eq!(nx.status, "NXDOMAIN", "{}", nx.raw);

    // 3. Stop decision: ECS sets desiredStatus STOPPED while the task still
    // runs (lastStatus RUNNING until its containers exit): withdrawn now.
    for id in [t1, t2] {
        moto.set_task(id, json!({"healthStatus": "HEALTHY"}));
    }
    wait_for("both healthy again", DEADLINE, || {
        (a(open.port, "app") == both).then_some(())
    });
    let state = moto.set_task(t1, json!({"desiredStatus": "STOPPED"}));
    assert_eq!(state["lastStatus"], "RUNNING", "{state}");
    let start = Instant::now();
    wait_for("the stopping task to be withdrawn", DEADLINE, || {
        (a(open.port, "app") == [ip2.clone()]).then_some(())
    });
    eprintln!(
        "lifecycle: stop decision (desired STOPPED, last RUNNING) -> withdrawn in {:?}",
        start.elapsed()
    );
    assert!(a(open.port, &format!("{t1}.app")).is_empty());
    let srv = dig_short(open.port, &[&format!("_http._tcp.app.{ZONE}"), "SRV"]);
    assert_eq!(srv, [format!("0 1 8080 {t2}.app.{ZONE}.")]);
    wait_for(
        "the stopping task withdrawn (fail closed)",
        DEADLINE,
        || (a(closed.port, "app") == [ip2.clone()]).then_some(()),
    );
}

/// A task on a DRAINING container instance is withdrawn while its service
/// has another serving task in the cluster, and kept when it is the
/// service's only one (draining alone never empties a service).
#[test]
fn draining_instance_is_withdrawn_only_when_another_task_serves() {
    let moto = Moto::start();
    let (subnet, _) = network(&moto);
    let out = moto.steps(json!([
        {"op": "instance", "cluster": CLUSTER, "subnet": subnet},
        {"op": "instance", "cluster": CLUSTER, "subnet": subnet},
        // Fixed host ports: one web task per instance.
        {"op": "taskdef", "family": "web", "ports": [{"container": 80, "host": 8080}]},
        {"op": "taskdef", "family": "solo", "ports": [{"container": 90, "host": 9090}]},
    ]));
    let ips: BTreeMap<String, String> = out[0..2]
        .iter()
        .map(|i| {
            (
                str_of(i, "container_instance").to_owned(),
                str_of(i, "ip").to_owned(),
            )
        })
        .collect();
    let (web, solo) = (str_of(&out[2], "arn"), str_of(&out[3], "arn"));
    let out = moto.steps(json!([
        {"op": "run", "cluster": CLUSTER, "taskdef": web, "count": 2, "group": "service:web"},
        {"op": "run", "cluster": CLUSTER, "taskdef": solo, "group": "service:solo"},
    ]));
    let web_tasks = tasks(&out[0]);
    let solo_task = tasks(&out[1])[0].clone();
    let drained = str_of(&solo_task, "container_instance").to_owned();
    let (on_drained, elsewhere): (Vec<&Value>, Vec<&Value>) = web_tasks
        .iter()
        .partition(|t| str_of(t, "container_instance") == drained);
    assert_eq!(
        (on_drained.len(), elsewhere.len()),
        (1, 1),
        "one web task per instance: {web_tasks:?}"
    );
    let (web_drained, web_other) = (on_drained[0], elsewhere[0]);
    let drained_ip = ips[&drained].clone();
    let other_ip = ips[str_of(web_other, "container_instance")].clone();

    let (s, http) = serve(&moto, &[]);
    assert_eq!(
        a(s.port, "web"),
        sorted(vec![drained_ip.clone(), other_ip.clone()])
    );
    assert_eq!(a(s.port, "solo"), [drained_ip.as_str()]);

    // The clock starts before the fixture runs: the change may reach DNS
    // while the fixture process is still exiting.
    let start = Instant::now();
    moto.steps(json!([{"op": "drain", "cluster": CLUSTER, "container_instance": drained}]));
    wait_for(
        "the web task on the draining instance withdrawn",
        DEADLINE,
        || (a(s.port, "web") == [other_ip.clone()]).then_some(()),
    );
    eprintln!(
        "lifecycle: instance DRAINING -> its task withdrawn in {:?}",
        start.elapsed()
    );
    let solo_id = str_of(&solo_task, "id");
    wait_verdicts(
        "draining verdicts",
        http,
        &[
            (str_of(web_drained, "id"), "draining"),
            (str_of(web_other, "id"), "served"),
            (solo_id, "served"),
        ],
    );
    // The service whose only task is on the draining instance keeps it.
    assert_eq!(a(s.port, "solo"), [drained_ip.as_str()]);
    assert_eq!(a(s.port, &format!("{solo_id}.solo")), [drained_ip.as_str()]);
    wait_metric(http, "ecs_dns_tasks{verdict=\"draining\"}", 1.0);
    // One ListContainerInstances(DRAINING) per poll, not one per instance.
    moto.reset_calls();
    let polls = s.polls();
    wait_for("two more polls", DEADLINE, || {
        (s.polls() >= polls + 3).then_some(())
    });
    let calls = moto.calls();
    let list = calls.get("ListContainerInstances").copied().unwrap_or(0);
    let list_tasks = calls.get("ListTasks").copied().unwrap_or(0);
    assert!(
        list >= 2 && list <= list_tasks,
        "one ListContainerInstances per cluster poll: {calls:?}"
    );

    // The other web task goes: the draining one is the service's last, and
    // is served again rather than leaving the name empty.
    let start = Instant::now();
    moto.steps(json!([{"op": "stop", "cluster": CLUSTER, "task": str_of(web_other, "arn")}]));
    wait_for(
        "the draining task served again as the last one",
        DEADLINE,
        || (a(s.port, "web") == [drained_ip.clone()]).then_some(()),
    );
    eprintln!(
        "lifecycle: last other task stopped -> draining task served again in {:?}",
        start.elapsed()
    );
}
