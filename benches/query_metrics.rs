//! What the query metrics cost on the answer path: the answer function
//! alone, the same with `query_counters::record_query` and `record_latency`
//! (clock read + relaxed atomic increments) as a front answering one query at
//! a time calls them, and those two alone.
//!
//!   cargo bench --bench query_metrics

mod support;

use std::hint::black_box;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use ecs_dns::dns::answer::{self, Limits};
use ecs_dns::query_counters::{record_latency, record_query};
use ecs_dns::wire::Transport;
use ecs_dns::zone::Snapshot;
use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};

fn query(name: &str, qtype: RecordType) -> Vec<u8> {
    let mut message = Message::query();
    message.metadata.id = 4242;
    message.add_query(Query::query(Name::from_str(name).unwrap(), qtype));
    message.to_vec().unwrap()
}

fn bench(c: &mut Criterion) {
    let config = support::zone_config();
    let snapshot = Snapshot::build(&config, Arc::new(support::inventory(3500)), None, 1);
    let limits = Limits::default();
    let request = query("svc-1.local.", RecordType::A);

    let mut group = c.benchmark_group("answer");
    group.bench_function("respond", |b| {
        b.iter(|| {
            answer::respond(
                Some(&snapshot),
                black_box(&request),
                Transport::Udp,
                &limits,
            )
        })
    });
    group.bench_function("respond+record_query", |b| {
        b.iter(|| {
            let started = Instant::now();
            let response = answer::respond(
                Some(&snapshot),
                black_box(&request),
                Transport::Udp,
                &limits,
            );
            record_query(Some(RecordType::A), ResponseCode::NoError, false);
            record_latency(started.elapsed(), 1);
            response
        })
    });
    group.finish();

    c.bench_function("record_query", |b| {
        let started = Instant::now();
        b.iter(|| {
            record_query(
                black_box(Some(RecordType::A)),
                black_box(ResponseCode::NoError),
                black_box(false),
            );
            record_latency(started.elapsed(), 1)
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
