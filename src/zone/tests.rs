use std::sync::Arc;

use hickory_proto::rr::{LowerName, Name, RecordType};

use super::*;
use crate::config::{Config, Settings, SourceKind};
use crate::inventory::Inventory;

fn zone_config() -> ZoneConfig {
    Config::resolve(Settings {
        source: Some(SourceKind::File),
        inventory: Some("x".into()),
        nameservers: Some(vec!["ns1.local=127.0.0.1".into()]),
        ..Settings::default()
    })
    .unwrap()
    .zone
}

fn inventory(ips: &[[u8; 4]]) -> Arc<Inventory> {
    Arc::new(crate::testing::web_inventory(ips))
}

fn lower(name: &str) -> LowerName {
    LowerName::new(&Name::from_ascii(name).unwrap())
}

#[test]
fn serial_moves_only_on_change() {
    let config = zone_config();
    let first = Snapshot::build(&config, inventory(&[[10, 0, 0, 1]]), None, 1000);
    assert_eq!(first.serial(), 1000);
    let same = Snapshot::build(&config, inventory(&[[10, 0, 0, 1]]), Some(&first), 2000);
    assert_eq!(same.serial(), 1000, "same records, same serial");
    let changed = Snapshot::build(&config, inventory(&[[10, 0, 0, 2]]), Some(&same), 1000);
    assert_eq!(
        changed.serial(),
        1001,
        "a change within the same second still rises"
    );
    let later = Snapshot::build(&config, inventory(&[[10, 0, 0, 3]]), Some(&changed), 5000);
    assert_eq!(later.serial(), 5000, "and catches up with the clock");

    let mut ttl_changed = config.clone();
    ttl_changed.record_ttl = 30;
    let retimed = Snapshot::build(
        &ttl_changed,
        inventory(&[[10, 0, 0, 3]]),
        Some(&later),
        5000,
    );
    assert_eq!(retimed.serial(), 5001, "a TTL change is a change");
}

#[test]
fn nodes_and_empty_non_terminals() {
    let config = zone_config();
    let snapshot = Snapshot::build(&config, inventory(&[[10, 0, 0, 1]]), None, 1);
    let apex = snapshot.node(&lower("local.")).unwrap();
    assert!(apex.rrset(RecordType::SOA).is_some());
    assert!(apex.rrset(RecordType::NS).is_some());
    assert!(
        snapshot
            .node(&lower("ns1.local."))
            .unwrap()
            .rrset(RecordType::A)
            .is_some()
    );
    assert_eq!(
        snapshot
            .node(&lower("web.prod.local."))
            .unwrap()
            .rrset(RecordType::A)
            .map(|set| set.len()),
        Some(1)
    );
    // `prod.local.` exists only because `web.prod.local.` does.
    assert!(snapshot.node(&lower("prod.local.")).unwrap().is_empty());
    assert!(snapshot.node(&lower("nope.local.")).is_none());
    assert_eq!(snapshot.records()[0].record_type(), RecordType::SOA);
}

#[test]
fn negative_ttl_is_min_of_soa_ttl_and_minimum() {
    let mut config = zone_config();
    for (soa_ttl, minimum, want) in [(60, 5, 5), (3, 5, 3), (10, 10, 10)] {
        config.soa_ttl = soa_ttl;
        config.negative_ttl = minimum;
        let snapshot = Snapshot::build(&config, inventory(&[]), None, 1);
        assert_eq!(
            snapshot.negative_soa().ttl,
            want,
            "soa_ttl={soa_ttl} minimum={minimum}"
        );
    }
}

#[test]
fn master_file_lists_every_record_soa_first() {
    let config = zone_config();
    let snapshot = Snapshot::build(
        &config,
        inventory(&[[10, 0, 0, 1], [10, 0, 0, 2]]),
        None,
        42,
    );
    let text = master::render(&snapshot);
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with(';') && !l.starts_with('$'))
        .collect();
    assert!(
        lines[0].starts_with("local. 60 IN SOA ns1.local. hostmaster.local. 42 "),
        "{text}"
    );
    assert_eq!(lines.len(), snapshot.records().len());
    assert!(lines.contains(&"web.local. 10 IN A 10.0.0.2"), "{text}");
}

/// A task whose name is an in-zone name server's (a service `ns1`, or a tag
/// `ecs-dns:name = ns1`) adds no address to the zone's NS: the name stays
/// the zone's, and the collision is reported.
#[test]
fn in_zone_name_server_names_are_reserved() {
    let config = zone_config();
    let mut tasks: Vec<_> = (crate::testing::web_inventory(&[[10, 0, 0, 114], [10, 0, 0, 115]])
        .tasks)
        .into_iter()
        .map(Arc::unwrap_or_clone)
        .collect();
    tasks[0].service = Some("ns1".into());
    tasks[1]
        .tags
        .insert(crate::inventory::ALIAS_TAG.into(), "NS1".into());
    let snapshot = Snapshot::of_tasks(&config, tasks, 1);
    let ns1 = LowerName::new(&Name::from_ascii("ns1.local.").unwrap());
    let addresses: Vec<String> = snapshot
        .node(&ns1)
        .and_then(|n| n.rrset(RecordType::A))
        .unwrap_or_default()
        .iter()
        .map(|r| r.data.to_string())
        .collect();
    assert_eq!(addresses, ["127.0.0.1"]);
    let reserved: Vec<_> = snapshot
        .report
        .collisions
        .iter()
        .filter(|c| c.kind == "reserved")
        .collect();
    assert_eq!(reserved.len(), 1, "{:?}", snapshot.report.collisions);
    assert_eq!(reserved[0].label, "ns1.local.");
    assert_eq!(reserved[0].inputs.len(), 2, "{:?}", reserved[0]);
    // The tasks' other names are still served.
    let task = LowerName::new(&Name::from_ascii("t1.web.local.").unwrap());
    assert!(snapshot.node(&task).is_some());
}
