//! Answer construction per query kind, from a 5 000-task snapshot: the
//! pre-rendered fast path and the full answer function `respond`; the
//! snapshot build (records + zone + pre-rendered table) for 1 000, 10 000
//! and 100 000 tasks; and the publication of one changed task (an event) at
//! 10 000 and 100 000 tasks, from the inventory handed to the publisher to
//! the new zone in service.
//!
//!   cargo bench --bench answer
//!   cargo bench --bench answer -- publish

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use ecs_dns::dns::answer::{Limits, respond};
use ecs_dns::dns::{Served, SharedZone, fast};
use ecs_dns::publish::Publisher;
use ecs_dns::wire::Transport;
use ecs_dns::zone::Snapshot;

mod support;

/// A query in wire format, RD set; `edns` adds a plain OPT (1232 bytes).
fn query(name: &str, qtype: u16, edns: bool) -> Vec<u8> {
    let mut q = vec![0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, u8::from(edns)];
    for label in name.trim_end_matches('.').split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&[0, 1]);
    if edns {
        q.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]);
    }
    q
}

/// `q` (with a plain OPT last) carrying a client COOKIE, as `dig` and BIND
/// send.
fn with_cookie(mut q: Vec<u8>) -> Vec<u8> {
    let at = q.len() - 2;
    q[at..].copy_from_slice(&12u16.to_be_bytes());
    q.extend_from_slice(&[0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8]);
    q
}

fn kinds() -> Vec<(&'static str, Vec<u8>)> {
    let task = format!("{}.svc-7.local", support::task_id(7));
    vec![
        ("service_a", query("svc-7.local", 1, false)),
        ("service_a_edns", query("svc-7.local", 1, true)),
        (
            "service_a_cookie",
            with_cookie(query("svc-7.local", 1, true)),
        ),
        (
            "cluster_service_a",
            query("svc-7.cluster-1.local", 1, false),
        ),
        ("task_a", query(&task, 1, false)),
        ("service_aaaa", query("svc-7.local", 28, false)),
        ("srv", query("_http._tcp.svc-7.local", 33, true)),
        ("nxdomain", query("nope-123.local", 1, false)),
        ("nodata", query("svc-7.local", 16, false)),
        ("mixed_case_a", query("SvC-7.LoCaL", 1, false)),
    ]
}

fn answers(c: &mut Criterion) {
    let served = Served::new(Arc::new(support::snapshot(5_000)), None);
    let snapshot = served.snapshot();
    let limits = Limits::default();
    let mut group = c.benchmark_group("answer");
    let mut out = Vec::with_capacity(4096);
    for (kind, q) in kinds() {
        let fast = fast::answer(&served, &q, Transport::Udp, &limits, &mut out);
        if fast {
            group.bench_with_input(BenchmarkId::new("fast", kind), &q, |b, q| {
                b.iter(|| fast::answer(&served, black_box(q), Transport::Udp, &limits, &mut out))
            });
        }
        group.bench_with_input(BenchmarkId::new("respond", kind), &q, |b, q| {
            b.iter(|| respond(Some(snapshot), black_box(q), Transport::Udp, &limits))
        });
    }
    // A rotated window that wraps around (the set's records from the 4th
    // on, then the first three), as most queries of a rotated set are.
    let rotated = Limits {
        pick: 3,
        ..Limits::default()
    };
    for (kind, q) in kinds()
        .into_iter()
        .filter(|(k, _)| matches!(*k, "service_a" | "srv"))
    {
        group.bench_with_input(BenchmarkId::new("fast_rotated", kind), &q, |b, q| {
            b.iter(|| fast::answer(&served, black_box(q), Transport::Udp, &rotated, &mut out))
        });
    }
    group.finish();
}

fn build(c: &mut Criterion) {
    let config = support::zone_config();
    let mut group = c.benchmark_group("snapshot_build");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    for tasks in [1_000, 10_000, 100_000] {
        let inventory = Arc::new(support::inventory(tasks));
        // What a publication builds: the snapshot and its answer table.
        let publish = |inv: &Arc<_>, previous: Option<&Served>| {
            let base = previous.map(|p| p.snapshot().as_ref());
            let snapshot = Snapshot::build(&config, Arc::clone(inv), base, 2);
            Served::new(Arc::new(snapshot), previous)
        };
        group.bench_with_input(BenchmarkId::new("first", tasks), &inventory, |b, inv| {
            b.iter(|| publish(inv, None))
        });
        // The steady state: the same tasks again, compared with the
        // previous snapshot (serial and answers kept).
        let previous = publish(&inventory, None);
        group.bench_with_input(
            BenchmarkId::new("unchanged", tasks),
            &inventory,
            |b, inv| b.iter(|| publish(inv, Some(&previous))),
        );
    }
    group.finish();
}

/// One event at scale: the inventory of the last publication with one task
/// changed (its address moves back and forth, so every publication changes
/// the zone), handed to the publisher as events mode does (every other task
/// shared), until the new snapshot and its answers are in service; without
/// reverse zones and (`_reverse`) with those of every address.
fn one_event(c: &mut Criterion) {
    let mut group = c.benchmark_group("publish");
    group.sample_size(20);
    let plain = ("", support::zone_config());
    let reverse = ("_reverse", support::zone_config_with_reverse());
    let runs = [(10_000, &plain), (100_000, &plain), (100_000, &reverse)];
    for (tasks, (suffix, config)) in runs {
        let zone = SharedZone::default();
        let publisher = Publisher::new(config.clone(), zone.clone());
        publisher.publish(support::inventory(tasks));
        let Some(base) = zone.load_full().map(|s| s.snapshot().inventory.clone()) else {
            return;
        };
        let changed = tasks / 2;
        let mut round = 0u32;
        group.bench_function(BenchmarkId::new(format!("one_event{suffix}"), tasks), |b| {
            b.iter(|| {
                let mut next = (*base).clone();
                let task = Arc::make_mut(&mut next.tasks[changed]);
                round += 1;
                // 10.64.0.0 and .1: no other task's, in the reverse zone
                // 10.0.0.0/8, so that its PTR moves too.
                task.ipv4 = vec![std::net::Ipv4Addr::from(0x0a40_0000 + round % 2)];
                let change = publisher.publish(next);
                assert!(change.changed);
            })
        });
        // A poll that found nothing new: every task read again (new
        // allocations, equal facts), compared, nothing rebuilt.
        let copies: Vec<_> = (0..4)
            .map(|_| {
                let mut copy = (*base).clone();
                for task in &mut copy.tasks {
                    *task = Arc::new((**task).clone());
                }
                copy
            })
            .collect();
        let mut copy = 0;
        group.bench_function(
            BenchmarkId::new(format!("poll_unchanged{suffix}"), tasks),
            |b| {
                b.iter(|| {
                    copy = (copy + 1) % copies.len();
                    publisher.publish(copies[copy].clone())
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, answers, build, one_event);
criterion_main!(benches);
