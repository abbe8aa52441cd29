//! The load bench's chart (`benches/load/chart.py`): drawn from a report of
//! the shape `bench.py` writes, one bar per server and run set in each of
//! its two panels, valid XML.

use std::process::Command;

use crate::harness::repo;

#[test]
fn the_bench_chart_has_a_bar_per_server_and_run() {
    let dir = tempfile::tempdir().unwrap();
    let servers = ["ecs-dns", "knot", "nsd", "nsd-rr"];
    let runs = 3;
    let detail: serde_json::Map<String, serde_json::Value> = servers
        .iter()
        .enumerate()
        .map(|(s, name)| {
            let results: Vec<_> = (0..runs)
                .map(
                    |r| serde_json::json!({"qps": 90_000.0 + (s * 1000 + r) as f64, "avg_ms": 0.4}),
                )
                .collect();
            (name.to_string(), results.into())
        })
        .collect();
    let table: Vec<_> = servers
        .iter()
        .map(|s| serde_json::json!({"server": s, "qps": 90_000.0, "avg_ms": 0.4, "ecs_dns_ratio": 1.0}))
        .collect();
    let report = serde_json::json!({
        "tasks": 5000, "records": 12000, "clients": 4, "duration_s": 10, "cpus": 2,
        "time": "<now>", "table": table, "runs_detail": detail,
    });
    let json = dir.path().join("load.json");
    let svg = dir.path().join("load.svg");
    std::fs::write(&json, report.to_string()).unwrap();
    let status = Command::new("python3")
        .arg(repo().join("benches/load/chart.py"))
        .args([&json, &svg])
        .status()
        .expect("python3");
    assert!(status.success());
    // Parsed by Python's XML parser: an unescaped `<now>` would break it.
    let check = Command::new("python3")
        .args([
            "-c",
            "import sys, xml.etree.ElementTree as ET; t = ET.parse(sys.argv[1]); \
             print(sum(1 for e in t.iter() if e.tag.endswith('rect') and e.get('class') == 'bar'))",
        ])
        .arg(&svg)
        .output()
        .expect("python3");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let bars: usize = String::from_utf8_lossy(&check.stdout)
        .trim()
        .parse()
        .unwrap();
    // (runs + the medians) × servers, in each of the two panels.
    assert_eq!(bars, (runs + 1) * servers.len() * 2);
}
