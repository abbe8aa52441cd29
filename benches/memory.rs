//! Memory: resident set growth for an inventory and its snapshot (records,
//! zone, negative answers) of 10 000 and 100 000 tasks, and how long the
//! snapshot build took; then the growth once every name's answers are
//! rendered (as after one query for each name), and the peak of one AXFR.
//! Each size is measured in a fresh child process.
//!
//!   cargo bench --bench memory

use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use ecs_dns::config::TransferConfig;
use ecs_dns::dns::Served;
use ecs_dns::wire::Transport;
use ecs_dns::xfr::Transfers;
use ecs_dns::zone::Snapshot;

mod support;

/// Resident set size in bytes, from /proc/self/statm.
fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("statm resident field");
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
    pages * page
}

/// Peak resident set size since the last [`reset_peak`], in bytes (VmHWM).
fn peak_rss() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: usize = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status");
    kib * 1024
}

/// Sets the peak resident set size to the current one (Linux ≥ 4.0).
fn reset_peak() {
    std::fs::write("/proc/self/clear_refs", "5").expect("reset the peak RSS");
}

/// An AXFR query for `local.` in wire format.
fn axfr_query() -> Vec<u8> {
    let mut q = vec![0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    q.extend_from_slice(b"\x05local\x00");
    q.extend_from_slice(&[0, 252, 0, 1]);
    q
}

fn measure(tasks: usize) {
    let before = rss();
    let inventory = Arc::new(support::inventory(tasks));
    let with_inventory = rss();
    let start = Instant::now();
    let snapshot = Snapshot::build(&support::zone_config(), inventory, None, 1);
    let served = Served::new(Arc::new(snapshot), None);
    let snapshot = served.snapshot();
    let took = start.elapsed();
    let after = rss();
    // Every name's templates, as after a query for each name.
    let render_start = Instant::now();
    served.answers().render_all(snapshot, &Default::default());
    let render_took = render_start.elapsed();
    let warm = rss();
    // One AXFR, as a secondary's first transfer: its peak memory and time.
    let transfers = Transfers::new(TransferConfig {
        allow: vec!["127.0.0.0/8".parse().expect("prefix")],
        ..TransferConfig::default()
    });
    let resident = rss();
    reset_peak();
    let axfr_start = Instant::now();
    let messages = transfers
        .respond(
            Some(snapshot),
            &axfr_query(),
            "127.0.0.1".parse().expect("address"),
            Transport::Tcp,
            1232,
        )
        .expect("an AXFR answer");
    let axfr_took = axfr_start.elapsed();
    let axfr_bytes: usize = messages.iter().map(Vec::len).sum();
    let axfr_peak = peak_rss().saturating_sub(resident);
    drop(messages);
    let per_task = |bytes: usize| bytes as f64 / tasks as f64;
    println!(
        "{tasks:>7} tasks: rss +{:.1} MiB = {:.0} B/task (inventory {:.0}, records {:.0}); \
         {} records, {} names; build {:.1} ms; \
         every name asked once: +{:.0} B/task of templates ({:.1} ms), {:.0} B/task in all; \
         AXFR {:.1} MiB in {} ms, peak +{:.1} MiB over the resident set",
        (after - before) as f64 / 1048576.0,
        per_task(after - before),
        per_task(with_inventory - before),
        per_task(snapshot.store().heap_bytes()),
        snapshot.record_count(),
        snapshot.node_count(),
        took.as_secs_f64() * 1000.0,
        per_task(warm - after),
        render_took.as_secs_f64() * 1000.0,
        per_task(warm - before),
        axfr_bytes as f64 / 1048576.0,
        axfr_took.as_millis(),
        axfr_peak as f64 / 1048576.0,
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(tasks) = args
        .iter()
        .position(|a| a == "--tasks")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
    {
        measure(tasks);
        return;
    }
    // `cargo test --benches` runs this too: keep that quick.
    if args.iter().any(|a| a == "--bench") {
        for tasks in ["10000", "100000"] {
            let status = Command::new(&args[0])
                .args(["--tasks", tasks])
                .status()
                .expect("run the memory bench");
            assert!(status.success());
        }
    } else {
        measure(1_000);
    }
}
