//! Several sources in one zone (`[[sources]]`), against two moto servers:
//! one account reached through an assumed role (moto keeps what a role's
//! credentials make in the role's account) in us-east-1, another account in
//! eu-west-1. Each source reads its own endpoint (`endpoint_url`), so one
//! can be killed while the other goes on.

use std::process::{Child, Command, Stdio};
use std::time::Instant;

use serde_json::{Value, json};

use crate::harness::{DEADLINE, bin, dig_short, free_port, wait_for};
use crate::moto::{Moto, ZONE};
use crate::ops::http_get;

const ROLE: &str = "arn:aws:iam::111111111111:role/ecs-dns-read";

/// A service `web` of `count` Fargate tasks in cluster `prod`, made by the
/// fixture with `env`; the tasks' results.
fn fargate_web(moto: &Moto, env: &[(&str, &str)], count: u64) -> Vec<Value> {
    let net = moto.steps_with(env, json!([{"op": "network"}]));
    let (subnet, sg) = (net[0]["subnet"].clone(), net[0]["sg"].clone());
    let out = moto.steps_with(
        env,
        json!([
            {"op": "cluster", "name": "prod"},
            {"op": "taskdef", "family": "web", "mode": "awsvpc", "ports": [{"container": 8080, "name": "http"}]},
        ]),
    );
    let run = moto.steps_with(
        env,
        json!([{"op": "run", "cluster": "prod", "taskdef": out[1]["arn"], "count": count,
                "group": "service:web", "launch_type": "FARGATE", "subnet": subnet, "sg": sg}]),
    );
    run[0]["tasks"].as_array().unwrap().clone()
}

fn ips(tasks: &[Value]) -> Vec<String> {
    let mut ips: Vec<String> = tasks
        .iter()
        .map(|t| t["ip"].as_str().unwrap().to_owned())
        .collect();
    ips.sort();
    ips
}

struct Server {
    child: Child,
    port: u16,
    http: u16,
    dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("ecs-dns.log")).unwrap_or_default()
    }
}

fn start(sources: &Value) -> Server {
    start_with(sources, &[])
}

fn start_with(sources: &Value, extra: &[&str]) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let (port, http) = (free_port(), free_port());
    let log = std::fs::File::create(dir.path().join("ecs-dns.log")).unwrap();
    let child = Command::new(bin())
        .args([
            "serve",
            "--poll-interval",
            "1s",
            "--zone",
            ZONE,
            "--max-stale",
            "4s",
        ])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--http", &format!("127.0.0.1:{http}")])
        .args(extra)
        .env("ECS_DNS_SOURCES", sources.to_string())
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_REGION")
        .env_remove("ECS_DNS_CONFIG")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start ecs-dns");
    Server {
        child,
        port,
        http,
        dir,
    }
}

fn a(port: u16, name: &str) -> Vec<String> {
    dig_short(port, &[&format!("{name}.{ZONE}"), "A"])
}

#[test]
fn two_accounts_and_regions_serve_one_zone_and_fail_apart() {
    let east_moto = Moto::start();
    let mut west_moto = Moto::start();
    let east_env = [
        ("ECS_FIXTURE_ROLE", ROLE),
        ("ECS_FIXTURE_REGION", "us-east-1"),
    ];
    let west_env = [("ECS_FIXTURE_REGION", "eu-west-1")];
    let east = fargate_web(&east_moto, &east_env, 2);
    let west = fargate_web(&west_moto, &west_env, 1);
    assert!(
        east[0]["arn"].as_str().unwrap().contains(":111111111111:"),
        "the fixture's tasks are in the role's account: {east:?}"
    );

    let sources = json!([
        {"name": "east", "region": "us-east-1", "role_arn": ROLE, "external_id": "ext-4242-secret",
         "endpoint_url": east_moto.endpoint()},
        {"name": "west", "region": "eu-west-1", "endpoint_url": west_moto.endpoint()},
    ]);
    let server = start(&sources);
    let port = server.port;
    let both = {
        let mut all = [ips(&east), ips(&west)].concat();
        all.sort();
        all
    };
    let (_, took) = wait_for("both sources served", DEADLINE, || {
        (a(port, "web") == both).then_some(())
    });
    eprintln!("both sources served {took:?} after the server started");
    // One zone: the service and the cluster merge; the source names each
    // account's cluster apart.
    assert_eq!(a(port, "web.prod"), both);
    assert_eq!(a(port, "web.prod.east"), ips(&east));
    assert_eq!(a(port, "web.prod.west"), ips(&west));
    let id = east[0]["id"].as_str().unwrap();
    assert_eq!(
        dig_short(port, &[&format!("_http._tcp.web.prod.east.{ZONE}"), "SRV"]).len(),
        2
    );
    assert_eq!(
        a(port, &format!("{id}.web")),
        [east[0]["ip"].as_str().unwrap()]
    );
    // The east source went through STS with the external ID, as ecs-dns.
    assert!(
        east_moto.calls().get("AssumeRole").copied().unwrap_or(0) >= 1,
        "no AssumeRole call: {:?}",
        east_moto.calls()
    );

    // West's endpoint dies: west keeps its last good names; east's changes
    // are still served within a poll.
    west_moto.stop();
    let killed = Instant::now();
    let (more, _) = fargate_web_more(&east_moto, &east_env);
    let (_, took) = wait_for("east's new task served", DEADLINE, || {
        a(port, "web.prod.east").contains(&more).then_some(())
    });
    eprintln!("east's new task served {took:?} after it started, west's endpoint down");
    assert_eq!(
        a(port, "web.prod.west"),
        ips(&west),
        "west lost its last good data"
    );

    // Readiness names the source whose data went stale, and the status
    // API's source line tells each source apart.
    let (_, took) = wait_for("/readyz to name the stale source", DEADLINE, || {
        let (status, body) = http_get(server.http, "/readyz")?;
        (status == 503 && body.contains("of source west")).then_some(body)
    });
    eprintln!(
        "stale west reported {took:?} after its endpoint was killed ({:?})",
        killed.elapsed()
    );
    let (_, body) = http_get(server.http, "/readyz").unwrap();
    assert!(body.contains("east: polling every 1s"), "{body}");

    // No external ID anywhere the operator looks.
    let (_, status) = http_get(server.http, "/api/summary").unwrap_or_default();
    let (_, metrics) = http_get(server.http, "/metrics").unwrap();
    assert!(
        metrics.contains("ecs_dns_cluster_data_age_seconds{cluster=\"prod\",source=\"west\"}"),
        "{metrics}"
    );
    // The source's own metrics carry its name.
    for (family, label) in [
        ("ecs_dns_aws_calls_total{", "source=\"east\""),
        ("ecs_dns_aws_errors_total{", "source=\"west\""),
        ("ecs_dns_refreshes_total{", "source=\"west\""),
    ] {
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with(family) && l.contains(label)),
            "no {family}…{label}}} series:\n{metrics}"
        );
    }
    for shown in [server.log(), body, status, metrics] {
        assert!(
            !shown.contains("ext-4242-secret"),
            "the external ID shown: {shown}"
        );
    }
}

/// One more task of `web`, in the running service's cluster: its address
/// and ARN.
fn fargate_web_more(moto: &Moto, env: &[(&str, &str)]) -> (String, String) {
    let net = moto.steps_with(env, json!([{"op": "network"}]));
    let def = moto.steps_with(
        env,
        json!([{"op": "taskdef", "family": "web", "mode": "awsvpc", "ports": [{"container": 8080, "name": "http"}]}]),
    );
    let run = moto.steps_with(
        env,
        json!([{"op": "run", "cluster": "prod", "taskdef": def[0]["arn"], "group": "service:web",
                "launch_type": "FARGATE", "subnet": net[0]["subnet"], "sg": net[0]["sg"]}]),
    );
    let task = &run[0]["tasks"][0];
    (
        task["ip"].as_str().unwrap().to_owned(),
        task["arn"].as_str().unwrap().to_owned(),
    )
}

/// Bad `[[sources]]` from the environment: exit 2 naming the key and the
/// source, the external ID never in the message.
#[test]
fn bad_sources_exit_2_naming_the_key_and_the_source() {
    let cases = [
        (
            json!([{"name": "prod"}, {"name": "prod"}]),
            "sources = \"prod\": two sources",
        ),
        (
            json!([{"name": "prod", "role_arn": "arn:aws:iam::1:role/r", "external_id": "ext-hidden"}]),
            "sources = \"prod\": role_arn",
        ),
        (
            json!([{"name": "prod", "region": "mars-1"}]),
            "region: \"mars-1\" is not an AWS region",
        ),
    ];
    for (sources, want) in cases {
        let out = Command::new(bin())
            .args(["check-config"])
            .env("ECS_DNS_SOURCES", sources.to_string())
            .env_remove("ECS_DNS_CONFIG")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{sources}: {stderr}");
        assert!(stderr.contains(want), "{sources}: {stderr}");
        assert!(!stderr.contains("ext-hidden"), "{stderr}");
    }
}

/// One central queue for both sources (member accounts' events forwarded
/// to one bus and queue): each event is applied by the source of its
/// account and region, one of an account no source reads is counted as
/// foreign; no event is lost to the other source.
#[test]
fn one_central_queue_feeds_each_source_its_own_events() {
    let east_moto = Moto::start();
    let west_moto = Moto::start();
    let east_env = [
        ("ECS_FIXTURE_ROLE", ROLE),
        ("ECS_FIXTURE_REGION", "us-east-1"),
    ];
    let west_env = [("ECS_FIXTURE_REGION", "eu-west-1")];
    let east = fargate_web(&east_moto, &east_env, 1);
    let west = fargate_web(&west_moto, &west_env, 1);
    // The central queue, in the ecs-dns account (west's moto), filled by
    // west's default bus and by the members' forwarded events.
    let queue = west_moto.steps_with(&west_env, json!([{"op": "queue", "name": "central"}]));
    let url = queue[0]["url"].as_str().unwrap().to_owned();
    // A long reconcile: only events can bring the new tasks in time.
    let sources = json!([
        {"name": "west", "region": "eu-west-1", "endpoint_url": west_moto.endpoint(),
         "events_queue": url},
        {"name": "east", "region": "us-east-1", "role_arn": ROLE, "external_id": "ext-77",
         "endpoint_url": east_moto.endpoint(), "events_queue": url},
    ]);
    let server = start_with(&sources, &["--reconcile-interval", "10m"]);
    let port = server.port;
    let mut both = [ips(&east), ips(&west)].concat();
    both.sort();
    wait_for("both sources served", DEADLINE, || {
        (a(port, "web.prod") == both).then_some(())
    });

    // An east task started now is known to east only through its event,
    // forwarded to the central queue.
    let started = Instant::now();
    let (more_east, task) = fargate_web_more(&east_moto, &east_env);
    east_moto.steps_with(
        &east_env,
        json!([{"op": "foreign_event", "cluster": "prod", "task": task, "version": 2,
                "account": "111111111111", "region": "us-east-1", "url": url,
                "queue_endpoint": west_moto.endpoint(), "queue_region": "eu-west-1"}]),
    );
    let (_, took) = wait_for("east's event applied", DEADLINE, || {
        a(port, "web.prod.east").contains(&more_east).then_some(())
    });
    eprintln!(
        "east task served {took:?} after its event was queued ({:?} after it started)",
        started.elapsed()
    );
    // A west task, through west's own bus rule into the same queue.
    let (more_west, west_task) = fargate_web_more(&west_moto, &west_env);
    west_moto.steps_with(
        &west_env,
        json!([{"op": "event", "cluster": "prod", "task": west_task, "version": 2}]),
    );
    let (_, took) = wait_for("west's event applied", DEADLINE, || {
        a(port, "web.prod.west").contains(&more_west).then_some(())
    });
    eprintln!("west task served {took:?} after its event was put");
    assert!(!a(port, "web.prod.east").contains(&more_west));
    assert!(!a(port, "web.prod.west").contains(&more_east));
    // Both read the queue all along (a source that cannot would poll, and
    // find the tasks without their events).
    let (_, body) = http_get(server.http, "/readyz").unwrap();
    assert!(
        body.contains("west: events from") && body.contains("east: events from"),
        "{body}"
    );
    assert!(!body.contains("cannot be read"), "{body}");
    let (_, metrics) = http_get(server.http, "/metrics").unwrap();
    let applied: f64 = (metrics.lines())
        .filter(|l| l.starts_with("ecs_dns_events_total{") && l.contains("outcome=\"applied\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(applied >= 2.0, "events applied: {applied}\n{metrics}");

    // An event of an account no source reads: counted, never served.
    west_moto.steps_with(
        &west_env,
        json!([{"op": "foreign_event", "cluster": "prod", "task": west_task, "version": 3,
                "account": "333333333333", "region": "eu-west-1", "url": url}]),
    );
    wait_for("the foreign event counted", DEADLINE, || {
        let (_, metrics) = http_get(server.http, "/metrics")?;
        metrics
            .lines()
            .any(|l| {
                l.starts_with("ecs_dns_events_total{")
                    && l.contains("outcome=\"foreign\"")
                    && !l.ends_with(" 0")
            })
            .then_some(())
    });
}

/// `check-config` shows every source with its role, the external ID as
/// `<redacted>`, and nothing of the ID itself.
#[test]
fn check_config_shows_the_sources_but_never_the_external_id() {
    let sources = json!([
        {"name": "prod", "region": "us-east-1", "role_arn": ROLE, "external_id": "ext-do-not-show"},
        {"name": "staging", "region": "eu-west-2", "clusters": ["web"]},
    ]);
    let out = Command::new(bin())
        .arg("check-config")
        .env("ECS_DNS_SOURCES", sources.to_string())
        .env_remove("ECS_DNS_CONFIG")
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    for want in [ROLE, "<redacted>", "staging", "eu-west-2"] {
        assert!(stdout.contains(want), "{want} missing:\n{stdout}");
    }
    assert!(!stdout.contains("ext-do-not-show") && !stderr.contains("ext-do-not-show"));
    // Fed back (the ID put back in its place), it is the same configuration:
    // the sources stay one key, the keys after them top-level.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("again.toml");
    std::fs::write(&file, stdout.replace("<redacted>", "ext-do-not-show")).unwrap();
    let again = Command::new(bin())
        .args(["check-config", "--config"])
        .arg(&file)
        .env_remove("ECS_DNS_CONFIG")
        .output()
        .unwrap();
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let shown = |text: &str| -> Vec<String> {
        (text.lines())
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.split("  # ").next().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(
        shown(&String::from_utf8_lossy(&again.stdout)),
        shown(&stdout)
    );
}

/// A source that has never been read (its endpoint down from the start)
/// does not hold back readiness once another is read, unless
/// `ready_needs_all_sources` asks for every source.
#[test]
fn a_source_never_read_holds_back_readiness_only_when_asked() {
    let moto = Moto::start();
    let env = [("ECS_FIXTURE_REGION", "us-east-1")];
    let tasks = fargate_web(&moto, &env, 1);
    let dead = format!("http://127.0.0.1:{}", free_port());
    let sources = json!([
        {"name": "up", "region": "us-east-1", "endpoint_url": moto.endpoint()},
        {"name": "down", "region": "us-east-1", "endpoint_url": dead},
    ]);
    for (extra, ready) in [
        (&[][..], true),
        (&["--ready-needs-all-sources", "true"][..], false),
    ] {
        let server = start_with(&sources, extra);
        wait_for("the up source served", DEADLINE, || {
            (a(server.port, "web.prod.up") == ips(&tasks)).then_some(())
        });
        // Once the down source's first read has failed (the SDK's retries
        // take a few seconds), readiness says what it will go on saying.
        let ((status, body), took) = wait_for("the down source's failure shown", DEADLINE, || {
            http_get(server.http, "/readyz")
                .filter(|(_, body)| body.contains("down: polling every 1s; the last read failed"))
        });
        eprintln!("{extra:?}: the failed first read shown after {took:?}");
        assert_eq!(status == 200, ready, "{extra:?}: {status} {body}");
        if !ready {
            assert!(body.contains("source down has not been read yet"), "{body}");
        }
    }
}
