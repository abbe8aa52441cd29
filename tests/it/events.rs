//! Events mode against moto: ECS task state changes put through EventBridge
//! into an SQS queue, as ECS would send them, served without a poll. The
//! full read (reconcile) is set to an hour, so that only events can explain
//! what the test sees.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{DEADLINE, dig_short, free_port, wait_for};
use crate::moto::{EcsServer, Moto, ZONE};
use crate::ops::http_get;

fn str_of<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} in {value}"))
}

/// The value of `series` (name and labels, as rendered) in `/metrics`, if present.
fn metric(http: u16, series: &str) -> Option<f64> {
    let (_, metrics) = http_get(http, "/metrics").expect("/metrics");
    let series = format!("{series} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&series))
        .and_then(|v| v.trim().parse().ok())
}

/// `ecs_dns_events_total` of `outcome`, summed over the event types.
fn events(http: u16, outcome: &str) -> f64 {
    let (_, metrics) = http_get(http, "/metrics").expect("/metrics");
    let label = format!("outcome=\"{outcome}\"}}");
    metrics
        .lines()
        .filter(|l| l.starts_with("ecs_dns_events_total{") && l.contains(&label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The `ecs_dns_events_total{type,outcome}` series, if present.
fn events_of(http: u16, kind: &str, outcome: &str) -> Option<f64> {
    metric(
        http,
        &format!("ecs_dns_events_total{{type=\"{kind}\",outcome=\"{outcome}\"}}"),
    )
}

/// The `ecs_dns_reconcile_corrections_total{kind}` series, if present.
fn corrections(http: u16, kind: &str) -> Option<f64> {
    metric(
        http,
        &format!("ecs_dns_reconcile_corrections_total{{kind=\"{kind}\"}}"),
    )
}

fn a(port: u16, name: &str) -> Vec<String> {
    dig_short(port, &[&format!("{name}.{ZONE}"), "A"])
}

/// moto with cluster `alpha`, an awsvpc task definition and the events
/// queue `ecs-events` (a rule on `aws.ecs` with the queue as target).
struct Setup {
    moto: Moto,
    net: Value,
    taskdef: String,
    url: String,
}

impl Setup {
    fn new(family: &str, health: bool) -> Setup {
        let moto = Moto::start();
        let net = moto.steps(json!([{"op": "network"}]))[0].clone();
        let out = moto.steps(json!([
            {"op": "cluster", "name": "alpha"},
            {"op": "taskdef", "family": family, "mode": "awsvpc", "health": health,
             "ports": [{"container": 8443, "name": "https"}]},
            {"op": "queue", "name": "ecs-events"},
        ]));
        Setup {
            taskdef: str_of(&out[1], "arn").to_owned(),
            url: str_of(&out[2], "url").to_owned(),
            moto,
            net,
        }
    }

    /// ecs-dns reading `queue` (the setup's when `None`), a full read an
    /// hour apart, with `extra` arguments.
    fn serve(&self, queue: Option<&str>, extra: &[&str]) -> EcsServer {
        let mut args = vec![
            "--events-queue",
            queue.unwrap_or(&self.url),
            "--reconcile-interval",
            "1h",
        ];
        args.extend(extra);
        EcsServer::start(&self.moto, &args)
    }

    /// Starts `count` Fargate tasks of service `service` in moto (no event
    /// sent): each `{"arn", "id", "ip"}`.
    fn run(&self, service: &str, count: usize, tags: Value) -> Vec<Value> {
        let run = self.moto.steps(json!([{
            "op": "run", "cluster": "alpha", "taskdef": self.taskdef,
            "group": format!("service:{service}"), "count": count, "tags": tags,
            "subnet": self.net["subnet"], "sg": self.net["sg"], "launch_type": "FARGATE"
        }]));
        run[0]["tasks"].as_array().unwrap().clone()
    }

    /// Puts the task's *ECS Task State Change* event, as ECS would.
    fn event(&self, arn: &str, version: u64) {
        self.moto.steps(json!([
            {"op": "event", "cluster": "alpha", "task": arn, "version": version}
        ]));
    }

    /// Stops the task in moto, as ECS does (no event sent).
    fn stop(&self, arn: &str) {
        self.moto
            .steps(json!([{"op": "stop", "cluster": "alpha", "task": arn}]));
        self.moto.set_task(
            arn,
            json!({"lastStatus": "STOPPED", "desiredStatus": "STOPPED"}),
        );
    }
}

#[test]
fn task_events_are_served_without_a_poll() {
    let setup = Setup::new("vpc", false);
    let http = free_port();
    let server = setup.serve(None, &["--http", &format!("127.0.0.1:{http}")]);
    assert!(a(server.port, "vpc").is_empty(), "no task yet");

    // A task starts; ECS sends its RUNNING event (without the task's tags).
    let task = setup.run("vpc", 1, json!({"ecs-dns:name": "portal"}))[0].clone();
    let (arn, ip) = (str_of(&task, "arn"), str_of(&task, "ip").to_owned());
    let sent = Instant::now();
    setup.event(arn, 2);
    wait_for("the started task served", DEADLINE, || {
        (a(server.port, "vpc") == [ip.clone()]).then_some(())
    });
    eprintln!("event to answer (start): {:?}", sent.elapsed());
    // Its alias tag comes with the batched re-read of new tasks.
    wait_for("the alias from the task's tag", DEADLINE, || {
        (a(server.port, "portal") == [ip.clone()]).then_some(())
    });
    eprintln!("event to alias served: {:?}", sent.elapsed());

    // A duplicate and an older event change nothing and are counted.
    setup.event(arn, 2);
    setup.event(arn, 1);
    wait_for(
        "the duplicate and the stale event counted",
        DEADLINE,
        || (events(http, "duplicate") >= 1.0 && events(http, "stale") >= 1.0).then_some(()),
    );

    // A message that is not an event: counted, deleted, nothing else.
    setup
        .moto
        .steps(json!([{"op": "message", "url": setup.url, "body": "{not an event"}]));
    wait_for("the malformed message counted", DEADLINE, || {
        (events(http, "malformed") >= 1.0).then_some(())
    });

    // ECS stops it; its STOPPED event withdraws it.
    setup.stop(arn);
    let sent = Instant::now();
    setup.event(arn, 3);
    wait_for("the stopped task withdrawn", DEADLINE, || {
        a(server.port, "vpc").is_empty().then_some(())
    });
    eprintln!("event to answer (stop): {:?}", sent.elapsed());

    // A late RUNNING event cannot bring it back.
    let judged = || events(http, "stale") + events(http, "duplicate");
    let before = judged();
    setup.event(arn, 2);
    wait_for("the late event judged", DEADLINE, || {
        (judged() > before).then_some(())
    });
    assert_eq!(events(http, "applied"), 2.0, "the start and the stop");
    // By type: both applied events were task events; the message that was
    // no event at all has no type.
    assert_eq!(events_of(http, "task", "applied"), Some(2.0));
    assert_eq!(events_of(http, "unknown", "malformed"), Some(1.0));
    assert_eq!(events_of(http, "instance", "applied"), Some(0.0));
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        a(server.port, "vpc").is_empty(),
        "resurrected by a late event"
    );

    // Every message was deleted once used.
    wait_for("the queue empty", DEADLINE, || {
        let pending = setup
            .moto
            .steps(json!([{"op": "pending", "url": setup.url}]));
        (pending[0]["messages"] == 0).then_some(())
    });
    assert_eq!(
        server.polls(),
        1,
        "one full read at start, then events only"
    );
    let (_, ready) = http_get(http, "/readyz").expect("/readyz");
    assert!(ready.contains("source: events from"), "{ready}");
}

/// Events of another account or region than the source reads (a central
/// bus, a cross-account rule), even of a cluster with a served cluster's
/// name, are counted as `foreign` and never served; the same task's own
/// event is. Two copies of one event in one delivery apply once and the
/// second counts as a duplicate.
#[test]
fn events_of_another_account_or_region_are_foreign() {
    let setup = Setup::new("vpc", false);
    let http = free_port();
    let server = setup.serve(None, &["--http", &format!("127.0.0.1:{http}")]);
    assert_eq!(events_of(http, "task", "foreign"), Some(0.0), "at zero");
    let task = setup.run("vpc", 1, json!({}))[0].clone();
    let (arn, ip) = (str_of(&task, "arn"), str_of(&task, "ip").to_owned());
    for (account, region) in [("210987654321", "us-east-1"), ("123456789012", "eu-west-1")] {
        setup.moto.steps(json!([{
            "op": "foreign_event", "cluster": "alpha", "task": arn, "version": 2,
            "url": setup.url, "account": account, "region": region
        }]));
    }
    wait_for("both foreign events counted", DEADLINE, || {
        (events_of(http, "task", "foreign") == Some(2.0)).then_some(())
    });
    assert!(
        a(server.port, "vpc").is_empty(),
        "served from a foreign event"
    );
    assert_eq!(events(http, "applied"), 0.0);

    setup.event(arn, 2);
    wait_for("the task's own event served", DEADLINE, || {
        (a(server.port, "vpc") == [ip.clone()]).then_some(())
    });
    setup.moto.steps(json!([
        {"op": "events", "cluster": "alpha", "tasks": [arn, arn], "version": 3}
    ]));
    wait_for("both copies judged", DEADLINE, || {
        (events_of(http, "task", "applied") == Some(2.0)
            && events_of(http, "task", "duplicate") == Some(1.0))
        .then_some(())
    });
    assert_eq!(events_of(http, "task", "foreign"), Some(2.0));
    assert_eq!(server.polls(), 1, "events only");
}

/// The queue is deleted: ecs-dns polls every `poll_interval` (1 s here),
/// says so, and goes back to events when the queue is back.
#[test]
fn a_lost_queue_falls_back_to_polling_and_back() {
    let setup = Setup::new("vpc", false);
    let http = free_port();
    let server = setup.serve(None, &["--http", &format!("127.0.0.1:{http}")]);
    let mode = || metric(http, "ecs_dns_events_mode").unwrap_or(-1.0);
    wait_for("events mode", DEADLINE, || (mode() == 1.0).then_some(()));

    setup
        .moto
        .steps(json!([{"op": "unqueue", "url": setup.url}]));
    let (_, took) = wait_for("polling instead", DEADLINE, || {
        (mode() == 0.0).then_some(())
    });
    eprintln!("queue deleted to polling: {took:?}");
    let (_, ready) = http_get(http, "/readyz").expect("/readyz");
    assert!(
        ready.contains("while the events queue cannot be read"),
        "{ready}"
    );
    // No event is sent: only polling can serve this task.
    let ip = str_of(&setup.run("vpc", 1, json!({}))[0], "ip").to_owned();
    wait_for("the task served by polling", DEADLINE, || {
        (a(server.port, "vpc") == [ip.clone()]).then_some(())
    });

    setup
        .moto
        .steps(json!([{"op": "queue", "name": "ecs-events"}]));
    let (_, took) = wait_for("events mode again", DEADLINE, || {
        (mode() == 1.0).then_some(())
    });
    eprintln!("queue back to events mode: {took:?}");
    assert!(server.polls() >= 2, "it polled while the queue was gone");
}

/// Events carry no health, and a task turning HEALTHY sends none: a task
/// waiting for its health check is re-read every `poll_interval` (1 s
/// here) until it is served, without a full read.
#[test]
fn a_task_turning_healthy_is_served_without_an_event() {
    let setup = Setup::new("checked", true);
    let server = setup.serve(None, &[]);
    let task = setup.run("checked", 1, json!({}))[0].clone();
    let (arn, ip) = (str_of(&task, "arn"), str_of(&task, "ip").to_owned());
    setup.moto.set_task(arn, json!({"healthStatus": "UNKNOWN"}));
    setup.event(arn, 2);
    // Seen (its event applied), not served: its health check has not passed.
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        a(server.port, "checked").is_empty(),
        "served before HEALTHY"
    );

    setup.moto.set_task(arn, json!({"healthStatus": "HEALTHY"}));
    let changed = Instant::now();
    wait_for("the healthy task served", DEADLINE, || {
        (a(server.port, "checked") == [ip.clone()]).then_some(())
    });
    eprintln!("HEALTHY to answer, no event: {:?}", changed.elapsed());
    assert_eq!(
        server.polls(),
        1,
        "no full read: the waiting task alone was re-read"
    );
}

/// Replicas: an SQS message reaches one consumer, so each replica reads its
/// own queue, and the one rule has a target per queue. Both replicas serve
/// every change.
#[test]
fn every_replica_sees_every_change() {
    let setup = Setup::new("vpc", false);
    let queues = setup.moto.steps(json!([
        {"op": "queue", "name": "ecs-dns-a", "rule": "ecs-events", "target": "a"},
        {"op": "queue", "name": "ecs-dns-b", "rule": "ecs-events", "target": "b"},
    ]));
    let replicas: Vec<EcsServer> = queues
        .iter()
        .map(|queue| setup.serve(Some(str_of(queue, "url")), &[]))
        .collect();
    let tasks = setup.run("vpc", 3, json!({}));
    for (version, task) in (1..).zip(&tasks) {
        setup.event(str_of(task, "arn"), version);
    }
    let mut ips: Vec<String> = tasks.iter().map(|t| str_of(t, "ip").to_owned()).collect();
    ips.sort();
    let sent = Instant::now();
    for replica in &replicas {
        wait_for("each replica serves the three tasks", DEADLINE, || {
            let mut got = a(replica.port, "vpc");
            got.sort();
            (got == ips).then_some(())
        });
    }
    eprintln!("both replicas serve three starts: {:?}", sent.elapsed());
    let first = str_of(&tasks[0], "arn");
    setup.stop(first);
    setup.event(first, 4);
    for replica in &replicas {
        wait_for("each replica withdraws the stopped task", DEADLINE, || {
            (a(replica.port, "vpc").len() == 2).then_some(())
        });
        assert_eq!(replica.polls(), 1, "events only");
    }
}

/// A burst of task starts (a deployment): its events are published at
/// most once per `publish_min_interval` (1 s here, longer than an
/// application takes in moto), each publication taking every event that
/// arrived meanwhile.
#[test]
fn a_burst_of_events_is_published_at_most_once_per_publish_min_interval() {
    let setup = Setup::new("vpc", false);
    let server = setup.serve(None, &["--publish-min-interval", "1s"]);
    let burst = 40;
    let tasks = setup.run("vpc", burst, json!({}));
    let arns: Vec<&str> = tasks.iter().map(|t| str_of(t, "arn")).collect();
    let before = server.log().matches("zone changed").count();
    setup
        .moto
        .steps(json!([{"op": "events", "cluster": "alpha", "tasks": arns, "version": 1}]));
    wait_for("every task of the burst served", DEADLINE, || {
        (a(server.port, "vpc").len() == burst).then_some(())
    });
    // When each publication of the burst happened, from the log.
    let log = server.log();
    let times: Vec<std::time::SystemTime> = log
        .lines()
        .filter(|l| l.contains("zone changed"))
        .skip(before)
        .filter_map(|l| l.split_whitespace().next())
        .filter_map(|t| humantime::parse_rfc3339(t).ok())
        .collect();
    let gaps: Vec<Duration> = times
        .windows(2)
        .map(|w| w[1].duration_since(w[0]).unwrap_or_default())
        .collect();
    eprintln!(
        "{burst} events: {} publications, gaps {gaps:?}",
        times.len()
    );
    assert!(times.len() < burst, "one publication per event");
    assert!(
        gaps.iter().all(|g| *g >= Duration::from_millis(990)),
        "publications closer than publish_min_interval: {gaps:?}"
    );
}

/// Events that never came (a start, a stop, a status change): the full read
/// of events mode (every `reconcile_interval`, here asked for by SIGHUP)
/// serves what they would have said, and counts each correction by kind; a
/// task whose event did come is no correction.
#[test]
fn a_full_read_repairs_missed_events_and_counts_them_by_kind() {
    let setup = Setup::new("vpc", false);
    let http = free_port();
    let server = setup.serve(None, &["--http", &format!("127.0.0.1:{http}")]);
    for kind in ["added", "removed", "changed"] {
        assert_eq!(corrections(http, kind), Some(0.0), "{kind} at zero");
    }
    let ip_of = |task: &Value| str_of(task, "ip").to_owned();
    // A task whose start event comes, and one whose does not.
    let tasks = setup.run("vpc", 2, json!({}));
    let (seen, lost) = (&tasks[0], &tasks[1]);
    setup.event(str_of(seen, "arn"), 1);
    wait_for("the task with an event served", DEADLINE, || {
        (a(server.port, "vpc") == [ip_of(seen)]).then_some(())
    });

    let hup = Instant::now();
    server.signal("HUP");
    let mut both = vec![ip_of(seen), ip_of(lost)];
    both.sort();
    wait_for("the task without an event served", DEADLINE, || {
        let mut got = a(server.port, "vpc");
        got.sort();
        (got == both).then_some(())
    });
    eprintln!("SIGHUP to the missed start served: {:?}", hup.elapsed());
    wait_for("the missed start counted", DEADLINE, || {
        (corrections(http, "added") == Some(1.0)).then_some(())
    });
    assert_eq!(corrections(http, "removed"), Some(0.0));
    assert_eq!(
        corrections(http, "changed"),
        Some(0.0),
        "the task with an event"
    );

    // (The full read read every task's tags: no re-read is due now.)
    // A third task's event says PENDING; it turns RUNNING with no event.
    let late = setup.run("vpc", 1, json!({}))[0].clone();
    let late_arn = str_of(&late, "arn");
    setup
        .moto
        .set_task(late_arn, json!({"lastStatus": "PENDING"}));
    setup.moto.reset_calls();
    setup.event(late_arn, 1);
    // Its tags are read once (DescribeTasks) after its event: wait for that
    // read (the second DescribeTasks: the fixture made the first, to build
    // the event), so that only the full read can see it RUNNING.
    wait_for("the new task's tags read", DEADLINE, || {
        (setup
            .moto
            .calls()
            .get("DescribeTasks")
            .copied()
            .unwrap_or(0)
            >= 2)
            .then_some(())
    });
    setup
        .moto
        .set_task(late_arn, json!({"lastStatus": "RUNNING"}));
    // And the second task stops, its event lost too.
    setup.stop(str_of(lost, "arn"));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        setup
            .moto
            .calls()
            .get("DescribeTasks")
            .copied()
            .unwrap_or(0),
        2,
        "no read after the tags' one: {:?}",
        setup.moto.calls()
    );
    // Events alone still serve the stopped task, not the running one.
    assert_eq!(
        a(server.port, "vpc").len(),
        2,
        "changed without a full read"
    );
    let mut served = vec![ip_of(seen)];
    assert!(!a(server.port, "vpc").contains(&ip_of(&late)));

    let hup = Instant::now();
    server.signal("HUP");
    served.push(ip_of(&late));
    served.sort();
    wait_for("the missed stop and status change served", DEADLINE, || {
        let mut got = a(server.port, "vpc");
        got.sort();
        (got == served).then_some(())
    });
    eprintln!(
        "SIGHUP to the missed stop and change served: {:?}",
        hup.elapsed()
    );
    wait_for("the missed stop and change counted", DEADLINE, || {
        (corrections(http, "removed") == Some(1.0) && corrections(http, "changed") == Some(1.0))
            .then_some(())
    });
    assert_eq!(corrections(http, "added"), Some(1.0));
    assert_eq!(server.polls(), 3, "the first read and two on SIGHUP");
    assert!(
        server
            .log()
            .contains("full read corrected tasks that events had missed"),
        "{}",
        server.log()
    );
}

/// An *ECS Container Instance State Change* to DRAINING withdraws the
/// bridge task on that instance, its service having another task elsewhere
/// (README, "Task lifecycle"), and one back to ACTIVE serves it again: from
/// events alone, no full read.
#[test]
fn instance_events_drain_and_restore_its_tasks() {
    let setup = Setup::new("vpc", false);
    let out = setup.moto.steps(json!([
        {"op": "instance", "cluster": "alpha", "subnet": setup.net["subnet"]},
        {"op": "instance", "cluster": "alpha", "subnet": setup.net["subnet"]},
        // A fixed host port: one task per instance.
        {"op": "taskdef", "family": "web", "ports": [{"container": 80, "host": 8080}]},
    ]));
    let ip_of: std::collections::BTreeMap<String, String> = out[0..2]
        .iter()
        .map(|i| {
            (
                str_of(i, "container_instance").to_owned(),
                str_of(i, "ip").to_owned(),
            )
        })
        .collect();
    let run = setup.moto.steps(json!([{
        "op": "run", "cluster": "alpha", "taskdef": str_of(&out[2], "arn"),
        "count": 2, "group": "service:web"
    }]));
    let tasks = run[0]["tasks"].as_array().unwrap().clone();
    let drained = str_of(&tasks[0], "container_instance").to_owned();
    let other = str_of(&tasks[1], "container_instance").to_owned();
    assert_ne!(drained, other, "one task per instance: {tasks:?}");
    let mut both = vec![ip_of[&drained].clone(), ip_of[&other].clone()];
    both.sort();

    let http = free_port();
    let server = setup.serve(None, &["--http", &format!("127.0.0.1:{http}")]);
    let web = || {
        let mut got = a(server.port, "web");
        got.sort();
        got
    };
    wait_for("both tasks served", DEADLINE, || {
        (web() == both).then_some(())
    });

    let sent = Instant::now();
    setup.moto.steps(json!([
        {"op": "drain", "cluster": "alpha", "container_instance": drained},
        {"op": "instance_event", "cluster": "alpha", "container_instance": drained, "version": 2},
    ]));
    wait_for(
        "the task on the draining instance withdrawn",
        DEADLINE,
        || (web() == [ip_of[&other].clone()]).then_some(()),
    );
    eprintln!("DRAINING event to withdrawn: {:?}", sent.elapsed());

    let sent = Instant::now();
    setup.moto.steps(json!([
        {"op": "activate", "cluster": "alpha", "container_instance": drained},
        {"op": "instance_event", "cluster": "alpha", "container_instance": drained, "version": 3},
    ]));
    wait_for("the task served again", DEADLINE, || {
        (web() == both).then_some(())
    });
    eprintln!("ACTIVE event to served again: {:?}", sent.elapsed());
    assert_eq!(events_of(http, "instance", "applied"), Some(2.0));

    // A DRAINING event older than the ACTIVE one applied (delivered out of
    // order) drains nothing.
    setup.moto.steps(json!([
        {"op": "drain", "cluster": "alpha", "container_instance": drained},
        {"op": "instance_event", "cluster": "alpha", "container_instance": drained, "version": 2},
        {"op": "activate", "cluster": "alpha", "container_instance": drained},
    ]));
    wait_for("the older DRAINING event judged stale", DEADLINE, || {
        (events_of(http, "instance", "stale") == Some(1.0)).then_some(())
    });
    assert_eq!(web(), both, "drained by an older event");
    // The agent disconnects (as it does several times an hour): ACTIVE, no
    // drain.
    setup.moto.steps(json!([{
        "op": "instance_event", "cluster": "alpha", "container_instance": drained,
        "version": 4, "agent_connected": false
    }]));
    wait_for("the disconnected agent's event applied", DEADLINE, || {
        (events_of(http, "instance", "applied") == Some(3.0)).then_some(())
    });
    assert_eq!(web(), both, "a disconnected agent taken for a drain");
    assert_eq!(server.polls(), 1, "events only");
}

/// The stack's events rule (`docker/cloudformation.yaml`, its pattern
/// resolved for `ServedClusters` as CloudFormation would) passes the events
/// of the served clusters only, and every cluster's when none is given:
/// checked in moto's EventBridge, one rule and queue each.
#[test]
fn the_stacks_events_rule_passes_only_the_served_clusters() {
    let moto = Moto::start();
    let rules = moto.steps(json!([
        {"op": "stack_rule", "name": "served", "clusters": "prod,staging"},
        {"op": "stack_rule", "name": "all", "clusters": ""},
    ]));
    eprintln!(
        "rule patterns: {} / {}",
        rules[0]["pattern"], rules[1]["pattern"]
    );
    let arn = |name: &str| format!("arn:aws:ecs:us-east-1:123456789012:cluster/{name}");
    let mut put = Vec::new();
    // `preprod` ends with "prod": the match is on the whole name.
    for cluster in ["prod", "staging", "preprod", "other"] {
        put.push(json!({"op": "raw_event", "cluster_arn": arn(cluster),
                        "detail_type": "ECS Task State Change"}));
    }
    put.push(json!({"op": "raw_event", "cluster_arn": arn("prod"),
                    "detail_type": "ECS Container Instance State Change"}));
    moto.steps(Value::Array(put));
    let pending = |url: &Value| {
        moto.steps(json!([{"op": "pending", "url": url}]))[0]["messages"]
            .as_u64()
            .unwrap_or(0)
    };
    wait_for(
        "every event delivered to the unfiltered queue",
        DEADLINE,
        || (pending(&rules[1]["url"]) == 5).then_some(()),
    );
    assert_eq!(
        pending(&rules[0]["url"]),
        3,
        "prod and staging's task events and prod's instance event"
    );
}
