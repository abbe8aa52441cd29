//! Memory: resident set growth for an inventory and its snapshot (records,
//! zone, pre-rendered answers) of 10 000 and 100 000 tasks, and how long the
//! snapshot build took. Each size is measured in a fresh child process.
//!
//!   cargo bench --bench memory

use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

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

fn measure(tasks: usize) {
    let before = rss();
    let inventory = Arc::new(support::inventory(tasks));
    let with_inventory = rss();
    let start = Instant::now();
    let snapshot = Snapshot::build(&support::zone_config(), inventory, None, 1);
    let took = start.elapsed();
    let after = rss();
    // The pre-rendered table alone, built again.
    let table_start = Instant::now();
    let table = ecs_dns::dns::fast::Table::build(&snapshot);
    let table_took = table_start.elapsed();
    drop(table);
    let per_task = (after - before) as f64 / tasks as f64;
    println!(
        "{tasks:>7} tasks: rss +{:.1} MiB ({per_task:.0} B/task; inventory {:.0} B/task), {} records, {} names, templates {:.1} MiB, build {:.1} ms (of which the pre-rendered table {:.1} ms)",
        (after - before) as f64 / 1048576.0,
        (with_inventory - before) as f64 / tasks as f64,
        snapshot.records().len(),
        snapshot.fast().len(),
        snapshot.fast().template_bytes() as f64 / 1048576.0,
        took.as_secs_f64() * 1000.0,
        table_took.as_secs_f64() * 1000.0,
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
