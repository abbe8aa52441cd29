//! Table-driven tests of the naming rules: each case is an inventory and the
//! records it must (and must not) produce.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use hickory_proto::rr::Name;

use super::*;
use crate::inventory::{PortBinding, Protocol};

fn origin() -> Name {
    Name::from_ascii("local.").unwrap()
}

/// A served bridge task of `service` in `cluster` at `ip`.
fn task(cluster: &str, service: &str, id: &str, ip: [u8; 4]) -> Task {
    Task {
        cluster: cluster.into(),
        service: Some(service.into()),
        family: format!("{service}-family").into(),
        task_arn: format!("arn:aws:ecs:us-east-1:1:task/{cluster}/{id}"),
        task_id: id.into(),
        last_status: "RUNNING".into(),
        desired_status: "RUNNING".into(),
        health_status: "UNKNOWN".into(),
        ipv4: vec![Ipv4Addr::from(ip)],
        ..Task::default()
    }
}

fn port(container_port: u16, host_port: Option<u16>, name: Option<&str>) -> PortBinding {
    PortBinding {
        container_name: "app".into(),
        container_port,
        host_port,
        protocol: Protocol::Tcp,
        name: name.map(Into::into),
    }
}

/// The records as "owner TYPE rdata" strings, sorted and deduplicated.
fn rendered(tasks: Vec<Task>) -> Vec<String> {
    let inventory = Inventory::of_tasks(tasks);
    let set = build(&inventory, &origin(), &Rules::default());
    let mut out: Vec<String> = set
        .entries
        .iter()
        .map(|e| {
            let data = set.rdata(e).unwrap();
            format!("{} {} {}", set.owner(e), e.data.rtype(), data)
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

#[test]
fn naming_table() {
    struct Case {
        what: &'static str,
        tasks: Vec<Task>,
        present: &'static [&'static str],
        absent: &'static [&'static str],
    }
    let mut bridge = task("prod", "web", "t1", [10, 0, 0, 1]);
    bridge.ports = vec![
        port(80, Some(32768), Some("http")),
        port(9090, Some(32769), None),
        port(81, None, Some("unbound")),
    ];
    let mut awsvpc = task("prod", "api", "t2", [10, 0, 1, 5]);
    awsvpc.network_mode = NetworkMode::Awsvpc;
    awsvpc.ipv6 = vec!["2001:db8::5".parse::<Ipv6Addr>().unwrap()];
    awsvpc.ports = vec![port(8080, None, Some("grpc"))];
    let mut host = task("prod", "metrics", "t3", [10, 0, 0, 2]);
    host.network_mode = NetworkMode::Host;
    host.ports = vec![PortBinding {
        protocol: Protocol::Udp,
        ..port(8125, None, Some("statsd"))
    }];
    let mut standalone = task("batch", "ignored", "t4", [10, 0, 2, 1]);
    standalone.service = None;
    standalone.family = "nightly-report".into();
    let mut aliased = task("prod", "frontend-v2", "t5", [10, 0, 0, 3]);
    aliased.tags = BTreeMap::from([(ALIAS_TAG.into(), "www".into())]);
    let mut service_aliased = task("prod", "frontend-v3", "t6", [10, 0, 0, 4]);
    service_aliased.service_tags = BTreeMap::from([(ALIAS_TAG.into(), "Portal".into())]);
    // Several sources: the same cluster and service names in two accounts.
    let from = |source: &str, mut task: Task| {
        task.source = Some(source.into());
        task.task_arn = task.task_arn.replace(":1:", &format!(":{}:", source.len()));
        task
    };
    let mut east = from("east", task("prod", "web", "e1", [10, 0, 0, 1]));
    east.ports = vec![port(80, Some(32768), Some("http"))];
    let west = from("West_2", task("prod", "web", "w1", [10, 2, 0, 1]));
    let mut ugly = task("Prod_EU", "My_Service.v2", "T7", [10, 0, 0, 6]);
    ugly.ports = vec![port(80, Some(31000), Some("Web_UI"))];

    let cases = vec![
        Case {
            what: "service in a cluster, across clusters, one task",
            tasks: vec![bridge.clone()],
            present: &[
                "web.prod.local. A 10.0.0.1",
                "web.local. A 10.0.0.1",
                "t1.web.local. A 10.0.0.1",
            ],
            absent: &["t1.web.prod.local. A 10.0.0.1"],
        },
        Case {
            what: "bridge SRV: host ports, named and numbered, unbound skipped",
            tasks: vec![bridge.clone()],
            present: &[
                "_http._tcp.web.local. SRV 0 1 32768 t1.web.local.",
                "_http._tcp.web.prod.local. SRV 0 1 32768 t1.web.local.",
                "_9090._tcp.web.local. SRV 0 1 32769 t1.web.local.",
            ],
            absent: &["_unbound._tcp.web.local. SRV 0 1 81 t1.web.local."],
        },
        Case {
            what: "awsvpc: ENI address, AAAA, container port",
            tasks: vec![awsvpc],
            present: &[
                "api.prod.local. A 10.0.1.5",
                "api.local. AAAA 2001:db8::5",
                "t2.api.local. AAAA 2001:db8::5",
                "_grpc._tcp.api.local. SRV 0 1 8080 t2.api.local.",
            ],
            absent: &[],
        },
        Case {
            what: "host mode: container port is the host port; udp",
            tasks: vec![host],
            present: &["_statsd._udp.metrics.local. SRV 0 1 8125 t3.metrics.local."],
            absent: &["_statsd._tcp.metrics.local. SRV 0 1 8125 t3.metrics.local."],
        },
        Case {
            what: "standalone task: named by family",
            tasks: vec![standalone],
            present: &[
                "nightly-report.batch.local. A 10.0.2.1",
                "t4.nightly-report.local. A 10.0.2.1",
            ],
            absent: &["ignored.local. A 10.0.2.1"],
        },
        Case {
            what: "task tag alias adds every form, keeps the own name",
            tasks: vec![aliased],
            present: &[
                "www.local. A 10.0.0.3",
                "www.prod.local. A 10.0.0.3",
                "t5.www.local. A 10.0.0.3",
                "frontend-v2.local. A 10.0.0.3",
            ],
            absent: &[],
        },
        Case {
            what: "service tag alias, normalised",
            tasks: vec![service_aliased],
            present: &["portal.local. A 10.0.0.4", "frontend-v3.local. A 10.0.0.4"],
            absent: &[],
        },
        Case {
            what: "names normalised",
            tasks: vec![ugly],
            present: &[
                "my-service-v2.prod-eu.local. A 10.0.0.6",
                "t7.my-service-v2.local. A 10.0.0.6",
                "_web-ui._tcp.my-service-v2.prod-eu.local. SRV 0 1 31000 t7.my-service-v2.local.",
            ],
            absent: &[],
        },
        Case {
            what: "two clusters merge under the service name",
            tasks: vec![
                task("prod", "web", "a1", [10, 0, 0, 1]),
                task("staging", "web", "b1", [10, 1, 0, 1]),
            ],
            present: &[
                "web.local. A 10.0.0.1",
                "web.local. A 10.1.0.1",
                "web.prod.local. A 10.0.0.1",
                "web.staging.local. A 10.1.0.1",
            ],
            absent: &[
                "web.prod.local. A 10.1.0.1",
                "web.staging.local. A 10.0.0.1",
            ],
        },
        Case {
            what: "two sources: service and cluster names merge, the source name keeps them apart",
            tasks: vec![east.clone(), west.clone()],
            present: &[
                "web.local. A 10.0.0.1",
                "web.local. A 10.2.0.1",
                "web.prod.local. A 10.0.0.1",
                "web.prod.local. A 10.2.0.1",
                "web.prod.east.local. A 10.0.0.1",
                "web.prod.west-2.local. A 10.2.0.1",
                "e1.web.local. A 10.0.0.1",
                "w1.web.local. A 10.2.0.1",
                "_http._tcp.web.local. SRV 0 1 32768 e1.web.local.",
                "_http._tcp.web.prod.local. SRV 0 1 32768 e1.web.local.",
                "_http._tcp.web.prod.east.local. SRV 0 1 32768 e1.web.local.",
            ],
            absent: &[
                "web.prod.east.local. A 10.2.0.1",
                "web.prod.west-2.local. A 10.0.0.1",
                "e1.web.east.local. A 10.0.0.1",
            ],
        },
        Case {
            what: "one source's task next to an unnamed source's: only the named one gets the source name",
            tasks: vec![east, task("prod", "web", "u1", [10, 3, 0, 1])],
            present: &[
                "web.prod.local. A 10.3.0.1",
                "web.prod.east.local. A 10.0.0.1",
            ],
            absent: &["web.prod.east.local. A 10.3.0.1"],
        },
    ];

    for case in cases {
        let got = rendered(case.tasks);
        for want in case.present {
            assert!(
                got.iter().any(|g| g == want),
                "{}: missing {want}\n{got:#?}",
                case.what
            );
        }
        for unwanted in case.absent {
            assert!(
                !got.iter().any(|g| g == unwanted),
                "{}: unexpected {unwanted}",
                case.what
            );
        }
    }
}

/// Clusters of one name in two sources are two clusters to the service
/// rules: one that has a healthy task does not hold back the other's fail
/// open.
#[test]
fn service_rules_apply_per_source_cluster() {
    let mut healthy = task("prod", "web", "h1", [10, 0, 0, 1]);
    healthy.source = Some("east".into());
    healthy.health_status = "HEALTHY".into();
    let mut sick = task("prod", "web", "s1", [10, 1, 0, 1]);
    sick.source = Some("west".into());
    sick.task_arn = sick.task_arn.replace(":1:", ":2:");
    sick.health_status = "UNHEALTHY".into();
    let inventory = Inventory::of_tasks(vec![healthy, sick]);
    let set = build(&inventory, &origin(), &Rules::default());
    assert_eq!(
        set.report.verdicts,
        vec![Verdict::Served, Verdict::FailingOpen],
        "west's only task fails open; in one cluster it would be withdrawn"
    );
}

#[test]
fn only_served_tasks_get_records() {
    let mut starting = task("prod", "web", "s1", [10, 0, 0, 9]);
    starting.has_health_check = true;
    let mut stopping = task("prod", "web", "s2", [10, 0, 0, 8]);
    stopping.desired_status = "STOPPED".into();
    let served = task("prod", "web", "s3", [10, 0, 0, 7]);
    let inventory = Inventory::of_tasks(vec![starting, stopping, served]);
    let set = build(&inventory, &origin(), &Rules::default());
    assert_eq!(
        set.report.verdicts,
        vec![Verdict::Starting, Verdict::Stopping, Verdict::Served]
    );
    assert!(set.entries.iter().all(|e| e.task == 2), "{:?}", set.entries);
    assert!(!set.entries.is_empty());
}

#[test]
fn collisions_are_merged_and_reported() {
    let inventory = Inventory::of_tasks(vec![
        task("prod", "my_app", "c1", [10, 0, 0, 1]),
        task("prod", "my-app", "c2", [10, 0, 0, 2]),
        task("prod", "other", "c3", [10, 0, 0, 3]),
    ]);
    let set = build(&inventory, &origin(), &Rules::default());
    assert_eq!(
        set.report.collisions,
        vec![Collision {
            kind: "service",
            label: "my-app".into(),
            inputs: vec!["my-app".into(), "my_app".into()],
            under: String::new(),
        }]
    );
    let merged: Vec<String> = set
        .entries
        .iter()
        .filter(|e| set.owner(e) == Name::from_ascii("my-app.local.").unwrap())
        .map(|e| set.rdata(e).unwrap().to_string())
        .collect();
    assert!(merged.contains(&"10.0.0.1".to_string()) && merged.contains(&"10.0.0.2".to_string()));
}

#[test]
fn unnameable_task_is_reported_not_served() {
    let mut t = task("prod", "___", "u1", [10, 0, 0, 1]);
    t.family = "___".into();
    let set = build(&Inventory::of_tasks(vec![t]), &origin(), &Rules::default());
    assert_eq!(set.report.verdicts, vec![Verdict::Unnamed]);
    assert!(set.entries.is_empty());
}

#[test]
fn srv_data_is_srv() {
    let mut t = task("prod", "web", "p1", [10, 0, 0, 1]);
    t.ports = vec![port(80, Some(32000), None)];
    let set = build(&Inventory::of_tasks(vec![t]), &origin(), &Rules::default());
    assert!(
        set.entries
            .iter()
            .any(|e| matches!(e.data, Data::Srv { port: 32000, .. }))
    );
}

#[test]
fn service_rules_decide_which_tasks_get_records() {
    let mut draining = task("prod", "web", "d1", [10, 0, 0, 1]);
    draining.instance_draining = true;
    let steady = task("prod", "web", "d2", [10, 0, 0, 2]);
    // Same service name in another cluster: its own group.
    let mut alone = task("staging", "web", "d3", [10, 1, 0, 1]);
    alone.instance_draining = true;
    let mut sick = task("prod", "api", "u1", [10, 0, 1, 1]);
    sick.health_status = "UNHEALTHY".into();
    let inventory = Inventory::of_tasks(vec![draining, steady, alone, sick]);
    let set = build(&inventory, &origin(), &Rules::default());
    assert_eq!(
        set.report.verdicts,
        vec![
            Verdict::Draining,
            Verdict::Served,
            Verdict::Served,
            Verdict::FailingOpen
        ]
    );
    let served: BTreeSet<usize> = set.entries.iter().map(|e| e.task).collect();
    assert_eq!(served, BTreeSet::from([1, 2, 3]));

    let strict = build(&inventory, &origin(), &Rules { fail_open: false });
    assert_eq!(strict.report.verdicts[3], Verdict::Unhealthy);
    assert!(strict.entries.iter().all(|e| e.task != 3));
}

/// The names a task would have are those it gets when served: the same
/// owners as the records function's, whatever the verdict.
#[test]
fn owner_names_are_the_served_owners_whatever_the_verdict() {
    let mut served = task("prod", "web", "t1", [10, 0, 0, 1]);
    served.ports = vec![port(80, Some(32768), Some("http"))];
    served
        .tags
        .insert(ALIAS_TAG.to_owned(), "checkout".to_owned());
    let owners_when_served: BTreeSet<String> = {
        let inventory = Inventory::of_tasks(vec![served.clone()]);
        let set = build(&inventory, &origin(), &Rules::default());
        set.entries
            .iter()
            .map(|e| set.owner(e).to_string())
            .collect()
    };
    let as_text = |task: &Task| -> BTreeSet<String> {
        owner_names(task, &origin())
            .iter()
            .map(|wire| name_table::Display(wire).to_string())
            .collect()
    };
    assert_eq!(as_text(&served), owners_when_served);
    assert!(owners_when_served.contains("t1.checkout.local."));
    assert!(owners_when_served.contains("_http._tcp.web.prod.local."));
    let mut stopping = served.clone();
    stopping.desired_status = "STOPPED".into();
    stopping.ipv4.clear();
    assert_eq!(
        as_text(&stopping),
        owners_when_served,
        "not served, same names"
    );
    let mut unnamed = served;
    unnamed.cluster = "---".into();
    assert!(owner_names(&unnamed, &origin()).is_empty());
}

#[test]
fn tasks_named_finds_every_task_behind_a_name() {
    let web = task("prod", "web", "t1", [10, 0, 0, 1]);
    let mut unhealthy = task("prod", "web", "t2", [10, 0, 0, 2]);
    unhealthy.health_status = "UNHEALTHY".into();
    let other = task("dev", "web", "t3", [10, 0, 0, 3]);
    let api = task("prod", "api", "t4", [10, 0, 0, 4]);
    let inventory = Inventory::of_tasks(vec![web, unhealthy, other, api]);
    let named = |name: &str| {
        let wire = name_table::wire_of(&Name::from_ascii(name).unwrap());
        tasks_named(&inventory, &origin(), &wire)
    };
    assert_eq!(named("web.prod.local."), [0, 1]);
    assert_eq!(named("web.local."), [0, 1, 2]);
    assert_eq!(named("t2.web.local."), [1]);
    assert_eq!(named("api.local."), [3]);
    assert!(
        named("prod.local.").is_empty(),
        "a cluster alone names no task"
    );
    assert!(named("nothing.local.").is_empty());
}
