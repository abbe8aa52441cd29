//! Table tests of the reverse names: an inventory, and the PTR each
//! address must (or must not) get.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hickory_proto::rr::Name;

use super::*;
use crate::records::Rules;

fn origin() -> Name {
    Name::from_ascii("local.").unwrap()
}

/// A served task of `service` at `ip`, in `mode`, on `instance`.
fn task(service: &str, id: &str, ip: [u8; 4], mode: NetworkMode, instance: Option<&str>) -> Task {
    Task {
        cluster: "prod".into(),
        service: Some(service.into()),
        family: service.into(),
        task_arn: format!("arn:aws:ecs:us-east-1:1:task/prod/{id}"),
        task_id: id.into(),
        last_status: "RUNNING".into(),
        desired_status: "RUNNING".into(),
        health_status: "UNKNOWN".into(),
        network_mode: mode,
        ec2_instance_id: instance.map(Into::into),
        ipv4: vec![Ipv4Addr::from(ip)],
        ..Task::default()
    }
}

/// "address -> target" lines, the host records as "owner A address", and
/// the collisions' labels.
fn pointers_of(tasks: Vec<Task>) -> (Vec<String>, Vec<String>, Vec<String>) {
    let inventory = Inventory::of_tasks(tasks);
    let set = crate::records::build(&inventory, &origin(), &Rules::default());
    let (p, _) = pointers(&inventory, &set.report.verdicts, &origin());
    let show = |wire: &[u8]| name_table::Display(wire).to_string();
    (
        (p.targets.iter())
            .map(|(ip, target)| format!("{ip} -> {}", show(target)))
            .collect(),
        (p.hosts.iter())
            .map(|(owner, ip)| format!("{} {ip}", show(owner)))
            .collect(),
        p.collisions.iter().map(|c| c.label.clone()).collect(),
    )
}

#[test]
fn reverse_naming_table() {
    use NetworkMode::{Awsvpc, Bridge, Host};
    struct Case {
        why: &'static str,
        tasks: Vec<Task>,
        targets: &'static [&'static str],
        hosts: &'static [&'static str],
        collisions: &'static [&'static str],
    }
    let mut stopped = task("web", "t9", [10, 0, 1, 9], Awsvpc, None);
    stopped.desired_status = "STOPPED".into();
    let cases = [
        Case {
            why: "an awsvpc task points at its own name",
            tasks: vec![task("web", "t1", [10, 0, 1, 10], Awsvpc, None)],
            targets: &["10.0.1.10 -> t1.web.local."],
            hosts: &[],
            collisions: &[],
        },
        Case {
            why: "bridge tasks of one instance point at the host, with its A record",
            tasks: vec![
                task("web", "t1", [10, 0, 2, 5], Bridge, Some("i-0abc")),
                task("api", "t2", [10, 0, 2, 5], Bridge, Some("i-0abc")),
            ],
            targets: &["10.0.2.5 -> i-0abc.hosts.local."],
            hosts: &["i-0abc.hosts.local. 10.0.2.5"],
            collisions: &[],
        },
        Case {
            why: "one host-mode task points at its host all the same: the name stays as tasks come",
            tasks: vec![task("web", "t1", [10, 0, 2, 6], Host, Some("i-0def"))],
            targets: &["10.0.2.6 -> i-0def.hosts.local."],
            hosts: &["i-0def.hosts.local. 10.0.2.6"],
            collisions: &[],
        },
        Case {
            why: "a task that is not served gets no PTR",
            tasks: vec![stopped],
            targets: &[],
            hosts: &[],
            collisions: &[],
        },
        Case {
            why: "two tasks of no known instance at one address: no PTR, a collision",
            tasks: vec![
                task("web", "t1", [10, 0, 3, 1], Bridge, None),
                task("api", "t2", [10, 0, 3, 1], Bridge, None),
            ],
            targets: &[],
            hosts: &[],
            collisions: &["10.0.3.1"],
        },
        Case {
            why: "a host and an awsvpc task claiming one address: no PTR, the host keeps its A",
            tasks: vec![
                task("web", "t1", [10, 0, 4, 1], Bridge, Some("i-1")),
                task("api", "t2", [10, 0, 4, 1], Awsvpc, None),
            ],
            targets: &[],
            hosts: &["i-1.hosts.local. 10.0.4.1"],
            collisions: &["10.0.4.1"],
        },
        Case {
            why: "names are normalised as every label is",
            tasks: vec![task("Web_App", "T1", [10, 0, 5, 1], Awsvpc, None)],
            targets: &["10.0.5.1 -> t1.web-app.local."],
            hosts: &[],
            collisions: &[],
        },
    ];
    for case in cases {
        let (targets, hosts, collisions) = pointers_of(case.tasks);
        assert_eq!(targets, case.targets, "{}", case.why);
        assert_eq!(hosts, case.hosts, "{}", case.why);
        assert_eq!(collisions, case.collisions, "{}", case.why);
    }
}

#[test]
fn an_ipv6_address_points_too() {
    let mut t = task("web", "t1", [10, 0, 1, 10], NetworkMode::Awsvpc, None);
    t.ipv6 = vec!["2600:1f18::5".parse().unwrap()];
    let (targets, _, _) = pointers_of(vec![t]);
    assert_eq!(
        targets,
        [
            "10.0.1.10 -> t1.web.local.",
            "2600:1f18::5 -> t1.web.local."
        ]
    );
}

#[test]
fn reverse_names_and_addresses_round_trip() {
    let cases: [(IpAddr, &str); 3] = [
        (
            IpAddr::V4(Ipv4Addr::new(10, 0, 1, 5)),
            "5.1.0.10.in-addr.arpa.",
        ),
        (
            IpAddr::V4(Ipv4Addr::new(0, 0, 0, 0)),
            "0.0.0.0.in-addr.arpa.",
        ),
        (
            IpAddr::V6("2600:1f18::5".parse::<Ipv6Addr>().unwrap()),
            "5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.1.f.1.0.0.6.2.ip6.arpa.",
        ),
    ];
    for (ip, name) in cases {
        let wire = reverse_wire(ip);
        assert_eq!(name_table::Display(&wire).to_string(), name);
        assert_eq!(address_of(&wire), Some(ip), "{name}");
    }
    // Not addresses: short, long, a leading zero, out of range, not hex.
    for name in [
        "1.0.10.in-addr.arpa.",
        "1.5.1.0.10.in-addr.arpa.",
        "05.1.0.10.in-addr.arpa.",
        "256.1.0.10.in-addr.arpa.",
        "x.1.0.10.in-addr.arpa.",
        "g.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.1.f.1.0.0.6.2.ip6.arpa.",
        "5.1.0.10.example.",
    ] {
        let wire = name_table::wire_of(&Name::from_ascii(name).unwrap());
        assert_eq!(address_of(&wire), None, "{name}");
    }
}

#[test]
fn ec2_names_follow_the_region() {
    let ip = IpAddr::V4(Ipv4Addr::new(10, 0, 1, 5));
    let east = Name::from_ascii("ec2.internal.").unwrap();
    let west = Name::from_ascii("eu-west-1.compute.internal.").unwrap();
    assert_eq!(
        ec2_name(ip, &east).unwrap().to_string(),
        "ip-10-0-1-5.ec2.internal."
    );
    assert_eq!(
        ec2_name(ip, &west).unwrap().to_string(),
        "ip-10-0-1-5.eu-west-1.compute.internal."
    );
    assert_eq!(ec2_name("::1".parse().unwrap(), &east), None);
}

#[test]
fn targets_within_a_prefix() {
    let tasks = [
        [10, 0, 1, 1],
        [10, 0, 255, 255],
        [10, 1, 0, 0],
        [9, 255, 255, 255],
    ]
    .into_iter()
    .enumerate()
    .map(|(i, ip)| task("web", &format!("t{i}"), ip, NetworkMode::Awsvpc, None))
    .collect::<Vec<_>>();
    let inventory = Inventory::of_tasks(tasks);
    let set = crate::records::build(&inventory, &origin(), &Rules::default());
    let (p, _) = pointers(&inventory, &set.report.verdicts, &origin());
    let within: Vec<String> = (p.within(&"10.0.0.0/16".parse().unwrap()).iter())
        .map(|(ip, _)| ip.to_string())
        .collect();
    assert_eq!(within, ["10.0.1.1", "10.0.255.255"]);
    assert!(p.target("10.1.0.0".parse().unwrap()).is_some());
    assert!(p.target("10.1.0.1".parse().unwrap()).is_none());
}
