//! Table-driven tests of the ECS → inventory conversion.

use std::net::{Ipv4Addr, Ipv6Addr};

use aws_sdk_ecs::types as ecs;

use super::*;
use crate::inventory::{NetworkMode, PortBinding, Protocol};

fn mapping(port: i32, host: Option<i32>, name: Option<&str>) -> ecs::PortMapping {
    ecs::PortMapping::builder()
        .container_port(port)
        .set_host_port(host)
        .set_name(name.map(str::to_owned))
        .protocol(ecs::TransportProtocol::Tcp)
        .build()
}

fn definition(
    mode: Option<ecs::NetworkMode>,
    health: bool,
    essential: Option<bool>,
) -> ecs::TaskDefinition {
    let mut container = ecs::ContainerDefinition::builder()
        .name("app")
        .set_essential(essential)
        .port_mappings(mapping(80, Some(8080), Some("http")))
        .port_mappings(mapping(9000, Some(0), None));
    if health {
        container =
            container.health_check(ecs::HealthCheck::builder().command("CMD").build().unwrap());
    }
    ecs::TaskDefinition::builder()
        .task_definition_arn("arn:aws:ecs:us-east-1:1:task-definition/web:3")
        .set_network_mode(mode)
        .container_definitions(container.build())
        .build()
}

fn bound(container: i32, host: i32, ip: &str) -> ecs::NetworkBinding {
    ecs::NetworkBinding::builder()
        .bind_ip(ip)
        .container_port(container)
        .host_port(host)
        .protocol(ecs::TransportProtocol::Tcp)
        .build()
}

fn raw_task(group: &str, launch: Option<ecs::LaunchType>) -> ecs::builders::TaskBuilder {
    ecs::Task::builder()
        .task_arn("arn:aws:ecs:us-east-1:1:task/c1/0123456789abcdef0123456789abcdef")
        .task_definition_arn("arn:aws:ecs:us-east-1:1:task-definition/web:3")
        .group(group)
        .set_launch_type(launch)
        .last_status("RUNNING")
        .desired_status("RUNNING")
}

fn port(container: u16, host: Option<u16>, name: Option<&str>) -> PortBinding {
    PortBinding {
        container_name: "app".into(),
        container_port: container,
        host_port: host,
        protocol: Protocol::Tcp,
        name: name.map(Into::into),
    }
}

#[test]
fn task_definition_facts() {
    // (network mode, health check, essential) → (mode, has_health_check)
    let cases = [
        (None, false, None, None, false),
        (
            Some(ecs::NetworkMode::Awsvpc),
            true,
            None,
            Some(NetworkMode::Awsvpc),
            true,
        ),
        (
            Some(ecs::NetworkMode::Host),
            true,
            Some(true),
            Some(NetworkMode::Host),
            true,
        ),
        // A non-essential container's health check does not gate the task.
        (
            Some(ecs::NetworkMode::Bridge),
            true,
            Some(false),
            Some(NetworkMode::Bridge),
            false,
        ),
    ];
    for (mode, health, essential, want_mode, want_check) in cases {
        let facts = task_definition(&definition(mode.clone(), health, essential));
        assert_eq!(facts.family, "web", "family from the ARN");
        assert_eq!(facts.network_mode, want_mode, "{mode:?}");
        assert_eq!(
            facts.has_health_check, want_check,
            "{mode:?} {health} {essential:?}"
        );
        assert_eq!(facts.mappings.len(), 2);
        assert_eq!(facts.mappings[0].name.as_deref(), Some("http"));
    }
}

#[test]
fn addresses_and_ports_per_network_mode() {
    let instance = InstanceFacts {
        ipv4: vec![Ipv4Addr::new(10, 0, 0, 4)],
        ipv6: vec![],
    };
    let on_instance = Placement {
        ec2_instance_id: Some("i-1"),
        instance: Some(&instance),
        instance_draining: true,
    };
    let eni = ecs::Attachment::builder()
        .r#type("ElasticNetworkInterface")
        .details(
            ecs::KeyValuePair::builder()
                .name("networkInterfaceId")
                .value("eni-1")
                .build(),
        )
        .details(
            ecs::KeyValuePair::builder()
                .name("privateIPv4Address")
                .value("10.1.2.3")
                .build(),
        )
        .details(
            ecs::KeyValuePair::builder()
                .name("ipv6Address")
                .value("2001:db8::5")
                .build(),
        )
        .build();
    let bridge_container = ecs::Container::builder()
        .name("app")
        // Dynamic port, reported for both address families.
        .network_bindings(bound(9000, 32768, "0.0.0.0"))
        .network_bindings(bound(9000, 32768, "::"))
        .network_bindings(bound(80, 8080, "0.0.0.0"))
        .build();

    struct Case<'a> {
        what: &'static str,
        def: ecs::TaskDefinition,
        raw: ecs::Task,
        placement: Placement<'a>,
        mode: NetworkMode,
        ipv4: Vec<Ipv4Addr>,
        ipv6: Vec<Ipv6Addr>,
        eni: Option<&'static str>,
        ports: Vec<PortBinding>,
    }
    let cases = vec![
        Case {
            what: "bridge: instance IP, bound host ports named from the definition",
            def: definition(Some(ecs::NetworkMode::Bridge), false, None),
            raw: raw_task("service:web", Some(ecs::LaunchType::Ec2))
                .containers(bridge_container.clone())
                .container_instance_arn("ci-1")
                .build(),
            placement: on_instance,
            mode: NetworkMode::Bridge,
            ipv4: vec![Ipv4Addr::new(10, 0, 0, 4)],
            ipv6: vec![],
            eni: None,
            ports: vec![
                port(9000, Some(32768), None),
                port(80, Some(8080), Some("http")),
            ],
        },
        Case {
            what: "bridge before binding: fixed host port kept, dynamic one unknown",
            def: definition(None, false, None),
            raw: raw_task("service:web", Some(ecs::LaunchType::Ec2))
                .container_instance_arn("ci-1")
                .build(),
            placement: on_instance,
            mode: NetworkMode::Bridge,
            ipv4: vec![Ipv4Addr::new(10, 0, 0, 4)],
            ipv6: vec![],
            eni: None,
            ports: vec![port(80, Some(8080), Some("http")), port(9000, None, None)],
        },
        Case {
            what: "host: instance IP, host port = container port when dynamic",
            def: definition(Some(ecs::NetworkMode::Host), false, None),
            raw: raw_task("family:web", Some(ecs::LaunchType::Ec2)).build(),
            placement: on_instance,
            mode: NetworkMode::Host,
            ipv4: vec![Ipv4Addr::new(10, 0, 0, 4)],
            ipv6: vec![],
            eni: None,
            ports: vec![
                port(80, Some(8080), Some("http")),
                port(9000, Some(9000), None),
            ],
        },
        Case {
            what: "awsvpc on Fargate with no mode in the definition: ENI addresses",
            def: definition(None, false, None),
            raw: raw_task("service:web", Some(ecs::LaunchType::Fargate))
                .attachments(eni.clone())
                .build(),
            placement: Placement::default(),
            mode: NetworkMode::Awsvpc,
            ipv4: vec![Ipv4Addr::new(10, 1, 2, 3)],
            ipv6: vec!["2001:db8::5".parse().unwrap()],
            eni: Some("eni-1"),
            ports: vec![port(80, None, Some("http")), port(9000, None, None)],
        },
    ];
    for case in cases {
        let task = task(
            "c1",
            &case.raw,
            &task_definition(&case.def),
            case.placement,
            None,
        );
        assert_eq!(task.network_mode, case.mode, "{}", case.what);
        assert_eq!(task.ipv4, case.ipv4, "{}", case.what);
        assert_eq!(task.ipv6, case.ipv6, "{}", case.what);
        assert_eq!(task.eni_id.as_deref(), case.eni, "{}", case.what);
        assert_eq!(task.ports, case.ports, "{}", case.what);
        assert_eq!(task.task_id, "0123456789abcdef0123456789abcdef");
        assert_eq!(task.family, "web");
    }
}

#[test]
fn names_statuses_and_tags() {
    let def = task_definition(&definition(Some(ecs::NetworkMode::Awsvpc), true, None));
    let cases = [
        ("service:web", Some("web")),
        ("family:web", None),
        ("", None),
        ("service:", None),
    ];
    for (group, service) in cases {
        let raw = raw_task(group, None)
            .tags(ecs::Tag::builder().key("team").value("a").build())
            .health_status(ecs::HealthStatus::Healthy)
            .build();
        let t = task("c1", &raw, &def, Placement::default(), Some("alias"));
        assert_eq!(t.service.as_deref(), service, "group {group:?}");
        assert_eq!(t.launch_type, "FARGATE", "no instance, no launch type");
        assert_eq!(t.health_status, "HEALTHY");
        assert!(t.has_health_check);
        assert_eq!(t.tags.get("team").map(String::as_str), Some("a"));
        assert_eq!(
            t.service_tags
                .get(crate::inventory::ALIAS_TAG)
                .map(String::as_str),
            Some("alias")
        );
    }
    let raw = raw_task("service:web", None).build();
    let t = task("c1", &raw, &def, Placement::default(), None);
    assert_eq!(t.health_status, "UNKNOWN", "missing health is UNKNOWN");
    assert!(t.service_tags.is_empty());
}

#[test]
fn arn_parts() {
    for (arn, family) in [
        ("arn:aws:ecs:us-east-1:1:task-definition/web:3", "web"),
        ("web:3", "web"),
        ("web", "web"),
    ] {
        assert_eq!(family_of_arn(arn), family);
    }
    for (arn, name) in [
        ("arn:aws:ecs:us-east-1:1:cluster/prod", "prod"),
        ("prod", "prod"),
    ] {
        assert_eq!(cluster_name(arn), name);
    }
}
