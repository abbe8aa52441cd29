//! The ECS source against moto (patched as real ECS behaves, see
//! `moto.rs`): what `dig` gets from the running binary for every network
//! mode, across clusters, as tasks stop and instances are replaced, while
//! AWS fails, and past 100 tasks.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{DEADLINE, dig, dig_short, wait_for};
use crate::moto::{EcsServer, Moto, ZONE, aws_env};

fn name(labels: &str) -> String {
    format!("{labels}.{ZONE}")
}

fn str_of<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("no {key} in {value}"))
}

/// Sorted A records of `owner`.
fn a(port: u16, owner: &str) -> Vec<String> {
    dig_short(port, &[&name(owner), "A"])
}

/// Sorted SRV records of `owner` (over TCP: some are large).
fn srv(port: u16, owner: &str) -> Vec<String> {
    dig_short(port, &[&name(owner), "SRV", "+tcp"])
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v.dedup();
    v
}

/// The common world: a VPC, clusters alpha (2 instances) and beta
/// (1 instance), and the task definitions of every network mode.
struct World {
    subnet: String,
    sg: String,
    /// container-instance ARN → EC2 private IP.
    instance_ips: Vec<(String, String)>,
    web: String,
    api: String,
    host: String,
    vpc: String,
    batch: String,
}

impl World {
    fn ip_of(&self, task: &Value) -> String {
        let ci = str_of(task, "container_instance");
        self.instance_ips
            .iter()
            .find(|(arn, _)| arn == ci)
            .map(|(_, ip)| ip.clone())
            .unwrap_or_else(|| panic!("unknown container instance {ci}"))
    }
}

fn world(moto: &Moto) -> World {
    let net = moto.steps(json!([{"op": "network"}]));
    let (subnet, sg) = (str_of(&net[0], "subnet"), str_of(&net[0], "sg"));
    let out = moto.steps(json!([
        {"op": "cluster", "name": "alpha"},
        {"op": "cluster", "name": "beta"},
        {"op": "instance", "cluster": "alpha", "subnet": subnet},
        {"op": "instance", "cluster": "alpha", "subnet": subnet},
        {"op": "instance", "cluster": "beta", "subnet": subnet},
        {"op": "taskdef", "family": "web", "ports": [{"container": 80, "host": 8080, "name": "http"}]},
        {"op": "taskdef", "family": "api", "ports": [{"container": 9000, "host": 0, "name": "grpc"}]},
        {"op": "taskdef", "family": "hostsvc", "mode": "host", "ports": [{"container": 7000}]},
        {"op": "taskdef", "family": "vpc", "mode": "awsvpc", "ports": [{"container": 8443, "name": "https"}]},
        {"op": "taskdef", "family": "batch", "ports": []},
    ]));
    World {
        subnet: subnet.into(),
        sg: sg.into(),
        instance_ips: out[2..5]
            .iter()
            .map(|i| {
                (
                    str_of(i, "container_instance").to_owned(),
                    str_of(i, "ip").to_owned(),
                )
            })
            .collect(),
        web: str_of(&out[5], "arn").into(),
        api: str_of(&out[6], "arn").into(),
        host: str_of(&out[7], "arn").into(),
        vpc: str_of(&out[8], "arn").into(),
        batch: str_of(&out[9], "arn").into(),
    }
}

fn tasks(result: &Value) -> Vec<Value> {
    result["tasks"].as_array().unwrap().clone()
}

#[test]
fn serves_every_network_mode_across_clusters_and_withdraws_stopped_tasks() {
    let moto = Moto::start();
    let w = world(&moto);
    let out = moto.steps(json!([
        // Fixed host port 8080: one task per instance, on both alpha instances.
        {"op": "run", "cluster": "alpha", "taskdef": w.web, "count": 2, "group": "service:web"},
        // Dynamic host ports: three tasks sharing one instance.
        {"op": "run", "cluster": "alpha", "taskdef": w.api, "count": 3, "group": "service:api"},
        {"op": "run", "cluster": "alpha", "taskdef": w.host, "group": "service:hostsvc"},
        {"op": "run", "cluster": "alpha", "taskdef": w.vpc, "group": "service:vpc",
         "launch_type": "FARGATE", "subnet": w.subnet, "sg": w.sg},
        // Standalone: no service, named by its family.
        {"op": "run", "cluster": "alpha", "taskdef": w.batch},
        {"op": "run", "cluster": "beta", "taskdef": w.web, "group": "service:web"},
        {"op": "run", "cluster": "beta", "taskdef": w.api, "group": "service:billing",
         "tags": {"ecs-dns:name": "payments"}},
    ]));
    let (web, api, host, vpc, batch, web_beta, billing) = (
        tasks(&out[0]),
        tasks(&out[1]),
        tasks(&out[2]),
        tasks(&out[3]),
        tasks(&out[4]),
        tasks(&out[5]),
        tasks(&out[6]),
    );
    let s = EcsServer::start(&moto, &[]);
    let port = s.port;

    // bridge, fixed host port: both instances, SRV on 8080.
    let web_alpha_ips = sorted(web.iter().map(|t| w.ip_of(t)).collect());
    assert_eq!(web_alpha_ips.len(), 2, "web runs on both alpha instances");
    assert_eq!(a(port, "web.alpha"), web_alpha_ips);
    let mut expected: Vec<String> = web
        .iter()
        .map(|t| format!("0 1 8080 {}.web.{ZONE}.", t["id"].as_str().unwrap()))
        .collect();
    expected.sort();
    assert_eq!(srv(port, "_http._tcp.web.alpha"), expected);
    // The service across clusters.
    let mut all_web = web_alpha_ips.clone();
    all_web.push(w.ip_of(&web_beta[0]));
    assert_eq!(a(port, "web"), sorted(all_web));
    assert_eq!(a(port, "web.beta"), [w.ip_of(&web_beta[0])]);

    // bridge, dynamic host ports on a shared instance: one SRV per task, each
    // with its own host port, all on the instance's address.
    let api_srv = srv(port, "_grpc._tcp.api");
    assert_eq!(api_srv.len(), 3, "{api_srv:?}");
    let mut ports: Vec<&str> = api_srv
        .iter()
        .map(|l| l.split_whitespace().nth(2).unwrap())
        .collect();
    ports.sort();
    ports.dedup();
    assert_eq!(ports.len(), 3, "distinct dynamic host ports: {api_srv:?}");
    assert!(ports.iter().all(|p| p.parse::<u16>().unwrap() >= 32768));
    for task in &api {
        let id = str_of(task, "id");
        assert_eq!(a(port, &format!("{id}.api")), [w.ip_of(task)]);
    }

    // host mode: instance address, container port as the SRV port.
    assert_eq!(a(port, "hostsvc"), [w.ip_of(&host[0])]);
    let host_srv = srv(port, "_7000._tcp.hostsvc");
    assert_eq!(
        host_srv,
        [format!(
            "0 1 7000 {}.hostsvc.{ZONE}.",
            str_of(&host[0], "id")
        )]
    );

    // awsvpc (Fargate): the ENI's address, container port.
    assert_eq!(a(port, "vpc.alpha"), [str_of(&vpc[0], "ip")]);
    assert_eq!(
        srv(port, "_https._tcp.vpc"),
        [format!("0 1 8443 {}.vpc.{ZONE}.", str_of(&vpc[0], "id"))]
    );

    // Standalone task: named by family.
    assert_eq!(a(port, "batch.alpha"), [w.ip_of(&batch[0])]);

    // Tagged alias: both the service name and the alias.
    let billing_ip = w.ip_of(&billing[0]);
    assert_eq!(a(port, "billing.beta"), [billing_ip.as_str()]);
    assert_eq!(a(port, "payments"), [billing_ip.as_str()]);
    assert_eq!(srv(port, "_grpc._tcp.payments.beta").len(), 1);

    // Task definitions are immutable: described once however many polls.
    let polls_before = s.polls();
    moto.reset_calls();
    let (_, took) = wait_for("three more polls", DEADLINE, || {
        (s.polls() >= polls_before + 4).then_some(())
    });
    eprintln!("three polls took {took:?}");
    let calls = moto.calls();
    eprintln!("calls during >=3 polls: {calls:?}");
    assert_eq!(calls.get("DescribeTaskDefinition"), None, "{calls:?}");
    assert_eq!(calls.get("DescribeContainerInstances"), None, "{calls:?}");
    assert_eq!(calls.get("DescribeInstances"), None, "{calls:?}");
    let list_tasks = calls["ListTasks"];
    assert!(list_tasks >= 6, "2 clusters x >=3 polls: {calls:?}");
    // One DescribeTasks per listed cluster page; never more than ListTasks.
    assert!(calls["DescribeTasks"] <= list_tasks + 2, "{calls:?}");

    // A stopped task is gone within a poll.
    let stopped = &api[0];
    let stopped_name = format!("{}.api", str_of(stopped, "id"));
    moto.steps(json!([{"op": "stop", "cluster": "alpha", "task": str_of(stopped, "arn")}]));
    let start = Instant::now();
    wait_for("the stopped task to be withdrawn", DEADLINE, || {
        a(port, &stopped_name).is_empty().then_some(())
    });
    eprintln!(
        "freshness: task stopped -> gone from DNS in {:?}",
        start.elapsed()
    );
    assert_eq!(srv(port, "_grpc._tcp.api").len(), 2);
    let nx = dig(port, &[&name(&stopped_name), "A"]);
    assert!(nx.contains("status: NXDOMAIN"), "{nx}");

    // A new task is served within a poll.
    let new = moto.steps(json!([
        {"op": "run", "cluster": "alpha", "taskdef": w.vpc, "group": "service:fresh",
         "launch_type": "FARGATE", "subnet": w.subnet, "sg": w.sg},
    ]));
    let new_ip = str_of(&tasks(&new[0])[0], "ip").to_owned();
    let start = Instant::now();
    wait_for("the new task to be served", DEADLINE, || {
        (a(port, "fresh") == [new_ip.clone()]).then_some(())
    });
    eprintln!("freshness: task RUNNING -> in DNS in {:?}", start.elapsed());
}

#[test]
fn replaced_instance_serves_the_new_address() {
    let moto = Moto::start();
    let w = world(&moto);
    let beta_ci = w.instance_ips[2].0.clone();
    let old = moto.steps(json!([
        {"op": "run", "cluster": "beta", "taskdef": w.web, "group": "service:web"},
    ]));
    let old_task = tasks(&old[0])[0].clone();
    let old_ip = w.ip_of(&old_task);
    let s = EcsServer::start(&moto, &["--cluster", "beta"]);
    assert_eq!(a(s.port, "web.beta"), [old_ip.as_str()]);
    // Only the configured cluster is read.
    assert!(!moto.calls().contains_key("ListClusters"));

    // The instance is replaced: a new one registers, the old one goes with
    // its task, and the service starts again on the new one.
    let new_instance =
        moto.steps(json!([{"op": "instance", "cluster": "beta", "subnet": w.subnet}]));
    let new_ip = str_of(&new_instance[0], "ip").to_owned();
    assert_ne!(new_ip, old_ip);
    moto.steps(json!([
        {"op": "stop", "cluster": "beta", "task": str_of(&old_task, "arn")},
        {"op": "deregister", "cluster": "beta", "container_instance": beta_ci},
        {"op": "run", "cluster": "beta", "taskdef": w.web, "group": "service:web"},
    ]));
    let start = Instant::now();
    wait_for("the new instance's address", DEADLINE, || {
        (a(s.port, "web.beta") == [new_ip.clone()]).then_some(())
    });
    eprintln!(
        "instance replaced -> new address served in {:?}",
        start.elapsed()
    );
}

#[test]
fn aws_failures_keep_every_record() {
    let mut moto = Moto::start();
    let w = world(&moto);
    moto.steps(json!([
        {"op": "run", "cluster": "alpha", "taskdef": w.web, "count": 2, "group": "service:web"},
        {"op": "run", "cluster": "beta", "taskdef": w.vpc, "group": "service:vpc",
         "launch_type": "FARGATE", "subnet": w.subnet, "sg": w.sg},
    ]));
    let s = EcsServer::start(&moto, &["--request-timeout", "2s"]);
    let web = a(s.port, "web");
    let vpc = a(s.port, "vpc");
    assert_eq!(web.len(), 2);
    assert_eq!(vpc.len(), 1);

    // Throttling on ListTasks of every cluster: clusters go stale, records stay.
    moto.fail(Some(&["ListTasks"]));
    let (_, took) = wait_for("a stale cluster to be logged", DEADLINE, || {
        s.log()
            .contains("cluster refresh failed: keeping its last good tasks")
            .then_some(())
    });
    eprintln!("throttling reported after {took:?}");
    assert!(s.log().contains("ThrottlingException"), "{}", s.log());
    assert_eq!(a(s.port, "web"), web);
    assert_eq!(a(s.port, "vpc"), vpc);

    // Every call failing (ListClusters included): still every record.
    moto.fail(None);
    let marker = s.log().len();
    wait_for("a poll failing entirely", DEADLINE, || {
        s.log()[marker..]
            .contains("ListClusters failed")
            .then_some(())
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(a(s.port, "web"), web);
    assert_eq!(a(s.port, "vpc"), vpc);

    // AWS answers again: a task started meanwhile shows up.
    moto.heal();
    let out = moto.steps(json!([
        {"op": "run", "cluster": "alpha", "taskdef": w.vpc, "group": "service:fresh",
         "launch_type": "FARGATE", "subnet": w.subnet, "sg": w.sg},
    ]));
    let fresh = str_of(&tasks(&out[0])[0], "ip").to_owned();
    let (_, took) = wait_for("recovery after the faults end", DEADLINE, || {
        (a(s.port, "fresh") == [fresh.clone()]).then_some(())
    });
    eprintln!("recovered: new task served {took:?} after the faults ended");

    // moto gone entirely: connection refused on every call.
    moto.stop();
    let marker = s.log().len();
    wait_for("a failed poll after moto stopped", DEADLINE, || {
        s.log()[marker..]
            .contains("keeping its last good tasks")
            .then_some(())
    });
    assert_eq!(a(s.port, "web"), web);
    assert_eq!(a(s.port, "vpc"), vpc);
    assert_eq!(a(s.port, "fresh"), [fresh]);
}

#[test]
fn more_than_100_tasks_are_listed_in_pages_and_described_in_batches() {
    let moto = Moto::start();
    let w = world(&moto);
    moto.steps(json!([
        {"op": "run", "cluster": "alpha", "taskdef": w.api, "count": 150, "group": "service:api"},
    ]));
    let s = EcsServer::start(&moto, &["--cluster", "alpha"]);
    // moto (patched) refuses DescribeTasks with more than 100 tasks, like
    // ECS, and pages ListTasks at 100: all 150 served means both worked.
    let api_srv = srv(s.port, "_grpc._tcp.api");
    assert_eq!(api_srv.len(), 150, "{}", api_srv.len());
    moto.reset_calls();
    let polls = s.polls();
    wait_for("two more polls", DEADLINE, || {
        (s.polls() >= polls + 3).then_some(())
    });
    let calls = moto.calls();
    eprintln!("calls during >=2 polls of 150 tasks: {calls:?}");
    assert!(calls["ListTasks"] >= 4, "two pages per poll: {calls:?}");
    assert!(
        calls["DescribeTasks"] >= 4,
        "two batches per poll: {calls:?}"
    );
    assert!(!moto.log().contains("more than 100"), "no refused batch");
}

#[test]
fn records_command_prints_the_zone_or_fails() {
    let moto = Moto::start();
    let w = world(&moto);
    moto.steps(json!([
        {"op": "run", "cluster": "alpha", "taskdef": w.web, "group": "service:web"},
    ]));
    let out = std::process::Command::new(crate::harness::bin())
        .args(["records", "--source", "ecs", "--zone", ZONE])
        .envs(aws_env(moto.port))
        .env_remove("ECS_DNS_CONFIG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("web.alpha.{ZONE}. 10 IN A")),
        "{stdout}"
    );
    assert!(stdout.contains("_http._tcp.web"), "{stdout}");

    // Nothing listening: a clear error and a non-zero exit.
    let closed = crate::harness::free_port();
    let out = std::process::Command::new(crate::harness::bin())
        .args(["records", "--source", "ecs", "--request-timeout", "1s"])
        .envs(aws_env(closed))
        .env_remove("ECS_DNS_CONFIG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("ListClusters"), "{stderr}");
}
