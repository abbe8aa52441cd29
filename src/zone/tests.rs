use std::sync::Arc;

use hickory_proto::rr::{LowerName, Name, RecordType};

use super::*;
use crate::config::Settings;
use crate::inventory::Inventory;

fn zone_config() -> ZoneConfig {
    zone_config_with(&[])
}

/// [`zone_config`] with the reverse zones of every address
/// [`random_task`] gives out.
fn zone_config_with_reverse() -> ZoneConfig {
    zone_config_with(&["10.0.0.0/24", "fd00::/16"])
}

fn zone_config_with(reverse_zones: &[&str]) -> ZoneConfig {
    crate::testing::config_with(Settings {
        nameservers: Some(vec!["ns1.local=127.0.0.1".into()]),
        reverse_zones: Some(reverse_zones.iter().map(|z| z.to_string()).collect()),
        ..Settings::default()
    })
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

/// A xorshift generator: the same cases on every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len())]
    }
}

/// A task drawn from small pools, so that services share addresses, labels
/// collide (`my_app` and `my-app`, `Prod` and `prod`), aliases meet service
/// names or the zone's name server, and statuses, health and draining vary.
fn random_task(rng: &mut Rng, id: usize) -> crate::inventory::Task {
    use crate::inventory::{NetworkMode, PortBinding, Task};
    let cluster = rng.pick(&["prod", "Prod", "dev"]);
    let service = rng.pick(&["web", "api", "my_app", "my-app", "db", "x"]);
    let task_id = match rng.below(8) {
        0 => format!("T{}", id % 5),
        _ => format!("t{id:04}"),
    };
    let mut tags = std::collections::BTreeMap::new();
    let long = "long".repeat(20);
    let alias = rng.pick(&["", "", "", "web", "alias", "NS1", &long]);
    if !alias.is_empty() {
        tags.insert(crate::inventory::ALIAS_TAG.to_owned(), alias.to_owned());
    }
    let awsvpc = rng.below(2) == 0;
    // Few instances, so that bridge tasks share a host and its address.
    let instance = rng.pick(&["i-01", "i-02", ""]);
    Task {
        ec2_instance_id: (!awsvpc && !instance.is_empty()).then(|| instance.into()),
        cluster: cluster.into(),
        service: (rng.below(6) != 0).then(|| service.into()),
        family: "fam".into(),
        task_arn: format!("arn:aws:ecs:us-east-1:1:task/{cluster}/{id:06}"),
        task_id,
        network_mode: if awsvpc {
            NetworkMode::Awsvpc
        } else {
            NetworkMode::Bridge
        },
        last_status: rng
            .pick(&["RUNNING", "RUNNING", "RUNNING", "PENDING", "STOPPED"])
            .into(),
        desired_status: rng
            .pick(&["RUNNING", "RUNNING", "RUNNING", "STOPPED"])
            .into(),
        health_status: rng.pick(&["HEALTHY", "UNHEALTHY", "UNKNOWN", ""]).into(),
        has_health_check: rng.below(2) == 0,
        instance_draining: rng.below(5) == 0,
        ipv4: (rng.below(8) != 0)
            .then(|| std::net::Ipv4Addr::new(10, 0, 0, rng.below(12) as u8))
            .into_iter()
            .collect(),
        ipv6: (rng.below(4) == 0)
            .then(|| std::net::Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, rng.below(6) as u16))
            .into_iter()
            .collect(),
        ports: (0..rng.below(3))
            .map(|p| PortBinding {
                container_name: "app".into(),
                container_port: 8080 + p as u16,
                host_port: (!awsvpc && rng.below(4) != 0).then(|| 32768 + rng.below(4) as u16),
                protocol: Default::default(),
                name: (p == 0).then(|| "http".into()),
            })
            .collect(),
        tags,
        ..Task::default()
    }
}

/// What a reader can see of a snapshot: its records (the SOA, whose serial
/// depends on the previous snapshot, left out), nodes and report.
fn seen(snapshot: &Snapshot) -> (Vec<String>, Vec<Vec<u8>>, crate::records::Report) {
    let records = (snapshot.records().iter().skip(1))
        .map(|r| format!("{r} {}", r.ttl))
        .collect();
    let names = snapshot.store.names();
    let mut nodes: Vec<Vec<u8>> = snapshot
        .nodes()
        .map(|n| names.wire(n.id()).to_vec())
        .collect();
    nodes.sort();
    (records, nodes, snapshot.report.clone())
}

/// A publication patched from the previous snapshot serves exactly what a
/// whole build of the same inventory serves (records, names, empty
/// non-terminals, verdicts, collisions), moves the serial when and only
/// when the records change, and diffs against its predecessor as a whole
/// build does; over a thousand random changes of one to a few tasks.
#[test]
fn a_patched_snapshot_equals_a_whole_build() {
    let (patched, _) = patched_equals_whole(&zone_config());
    assert!(patched > 600, "only {patched} of 1200 publications patched");
}

/// The same with reverse zones: the patched pointers (where each address
/// points back to) equal a whole build's, and so do the reverse zones
/// built from them, each from its predecessor (most of them patched too).
#[test]
fn a_patched_snapshot_with_reverse_zones_equals_a_whole_build() {
    let config = zone_config_with_reverse();
    let (patched, (reverse_patched, changed)) = patched_equals_whole(&config);
    // A change of a host's address records is a whole build.
    assert!(patched > 300, "only {patched} of 1200 publications patched");
    assert!(
        reverse_patched * 2 > changed,
        "only {reverse_patched} of {changed} reverse zones that changed were patched"
    );
}

/// Publishes 1 200 random changes of one to a few tasks, each patched
/// from the previous snapshot and built whole, and compares the two:
/// how many forward zones were patched, and how many reverse zones.
fn patched_equals_whole(config: &ZoneConfig) -> (usize, (usize, usize)) {
    let config = config.clone();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut tasks: Vec<Arc<crate::inventory::Task>> = (0..120)
        .map(|i| Arc::new(random_task(&mut rng, i)))
        .collect();
    tasks.sort_by(|a, b| a.task_arn.cmp(&b.task_arn));
    let inventory = |tasks: &[Arc<crate::inventory::Task>]| {
        Arc::new(Inventory {
            sources_read: Vec::new(),
            clusters: vec![],
            tasks: tasks.to_vec(),
        })
    };
    let mut previous = Snapshot::build(&config, inventory(&tasks), None, 1000);
    let reverse_of = |forward: &Snapshot, previous: &[Snapshot], now| -> Vec<Snapshot> {
        (config.reverse.iter().enumerate())
            .map(|(i, zone)| Snapshot::build_reverse(&config, zone, forward, previous.get(i), now))
            .collect()
    };
    let mut previous_reverse = reverse_of(&previous, &[], 1000);
    let (mut patched, mut next_id) = (0, 1000);
    let (mut reverse_changed, mut reverse_patched) = (0, 0);
    for round in 0..1200 {
        for _ in 0..1 + rng.below(3) {
            let at = rng.below(tasks.len());
            match rng.below(4) {
                // A new task, a task gone, a task changed in place.
                0 => {
                    next_id += 1;
                    tasks.push(Arc::new(random_task(&mut rng, next_id)));
                }
                1 if tasks.len() > 10 => {
                    tasks.remove(at);
                }
                _ => {
                    let arn = tasks[at].task_arn.clone();
                    let mut task = random_task(&mut rng, 0);
                    task.task_arn = arn;
                    task.cluster = tasks[at].cluster.clone();
                    tasks[at] = Arc::new(task);
                }
            }
        }
        tasks.sort_by(|a, b| a.task_arn.cmp(&b.task_arn));
        let now = 1000 + round;
        let next = Snapshot::build(&config, inventory(&tasks), Some(&previous), now);
        let whole = Snapshot::build(&config, inventory(&tasks), None, now);
        patched += usize::from(next.store.is_patched());
        let (ours, theirs) = (seen(&next), seen(&whole));
        let only = |a: &Vec<String>, b: &Vec<String>| -> Vec<String> {
            a.iter().filter(|r| !b.contains(r)).cloned().collect()
        };
        assert_eq!(
            (only(&ours.0, &theirs.0), only(&theirs.0, &ours.0)),
            (vec![], vec![]),
            "round {round}: records only in the patch, only in the whole build"
        );
        let names = |n: &Vec<Vec<u8>>| -> Vec<String> {
            n.iter()
                .map(|w| name_table::Display(w).to_string())
                .collect()
        };
        let (a, b) = (names(&ours.1), names(&theirs.1));
        assert_eq!(
            (only(&a, &b), only(&b, &a)),
            (vec![], vec![]),
            "round {round}: nodes"
        );
        assert_eq!(ours.2.verdicts, theirs.2.verdicts, "round {round}");
        assert_eq!(ours.2.collisions, theirs.2.collisions, "round {round}");
        assert_eq!(ours.2.skipped, theirs.2.skipped, "round {round}");
        assert_eq!(ours.0, theirs.0, "round {round}: record order");
        assert_eq!(
            next.serial() != previous.serial(),
            !whole.store.same_content(&previous.store),
            "round {round}: the serial moves with the records"
        );
        assert_eq!(
            next.changes_since(&previous),
            whole.changes_since(&previous),
            "round {round}"
        );
        assert_eq!(
            next.records_not_in(&previous),
            whole.records_not_in(&previous),
            "round {round}"
        );
        assert_eq!(*next.pointers, *whole.pointers, "round {round}: pointers");
        assert_eq!(
            *next.address_holders, *whole.address_holders,
            "round {round}: who holds each address"
        );
        let reverse = reverse_of(&next, &previous_reverse, now);
        let whole_reverse = reverse_of(&whole, &[], now);
        for ((ours, theirs), before) in reverse.iter().zip(&whole_reverse).zip(&previous_reverse) {
            let new_store = !Arc::ptr_eq(&ours.store, &before.store);
            reverse_changed += usize::from(new_store);
            reverse_patched += usize::from(new_store && ours.store.is_patched());
            assert_eq!(
                seen(ours),
                seen(theirs),
                "round {round}: reverse zone {}",
                ours.origin()
            );
            assert_eq!(
                ours.serial() != before.serial(),
                !theirs.store.same_content(&before.store),
                "round {round}: reverse zone {}: the serial moves with the records",
                ours.origin()
            );
            // What IXFR sends: the same difference from the predecessor.
            assert_eq!(
                (ours.records_not_in(before), before.records_not_in(ours)),
                (theirs.records_not_in(before), before.records_not_in(theirs)),
                "round {round}: reverse zone {}: the difference",
                ours.origin()
            );
            assert_eq!(
                ours.changes_since(before),
                theirs.changes_since(before),
                "round {round}: reverse zone {}",
                ours.origin()
            );
        }
        previous = next;
        previous_reverse = reverse;
    }
    // Most rounds take the patch (the rest: a change at a shared name).
    eprintln!(
        "{patched} of 1200 publications patched; {reverse_patched} of {reverse_changed} reverse zones that changed"
    );
    (patched, (reverse_patched, reverse_changed))
}

/// Duplicate tasks are counted whether the snapshot is built whole or
/// from a predecessor whose ARNs were all distinct; none are seen where
/// every ARN differs, or where tasks without ARNs differ in id.
#[test]
fn tasks_listed_twice_are_counted() {
    let config = zone_config();
    let with_arns = |arns: &[&str]| {
        let mut inventory = crate::testing::web_inventory(&vec![[10, 0, 0, 1]; arns.len()]);
        for (task, arn) in inventory.tasks.iter_mut().zip(arns) {
            let task = Arc::make_mut(task);
            task.task_arn = (*arn).into();
            task.task_id = (*arn).into();
        }
        Arc::new(inventory)
    };
    let distinct = Snapshot::build(&config, with_arns(&["a", "b", "c"]), None, 1);
    assert_eq!(distinct.duplicate_tasks(), (0, None));
    let twice = with_arns(&["a", "b", "b", "c"]);
    let whole = Snapshot::build(&config, twice.clone(), None, 2);
    assert_eq!(whole.duplicate_tasks(), (1, Some("b".into())));
    let next = Snapshot::build(&config, twice, Some(&distinct), 2);
    assert_eq!(next.duplicate_tasks(), (1, Some("b".into())));
    let without_arns =
        Snapshot::build(&config, inventory(&[[10, 0, 0, 1], [10, 0, 0, 2]]), None, 1);
    assert_eq!(without_arns.duplicate_tasks(), (0, None));
}
