//! Monitoring files in `docker/`: the Prometheus alerting rules, checked and
//! unit-tested by promtool (which must be installed:
//! `scripts/install-test-deps`), and the Grafana dashboard. Every metric the
//! two use must be exported by a freshly started server.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use crate::harness::{Server, demo_config, free_port, repo, require};
use crate::ops::http_get;

/// The alerts of `docker/prometheus-alerts.yml`, each with a runbook
/// section in `docs/operations.md`.
const ALERTS: [&str; 7] = [
    "EcsDnsNotReady",
    "EcsDnsStaleClusterData",
    "EcsDnsRefreshErrors",
    "EcsDnsAwsErrors",
    "EcsDnsServfailRate",
    "EcsDnsNoTasksServed",
    "EcsDnsNotifyFailing",
];

#[test]
fn alert_rules_pass_promtool_check() {
    require("promtool");
    let rules = repo().join("docker/prometheus-alerts.yml");
    let out = Command::new("promtool")
        .args(["check", "rules"])
        .arg(&rules)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool check rules: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&rules).unwrap();
    let runbooks = std::fs::read_to_string(repo().join("docs/operations.md")).unwrap();
    for alert in ALERTS {
        assert!(
            text.contains(&format!("alert: {alert}\n")),
            "rules lack {alert}"
        );
        let runbook = format!(
            "runbook: \"docs/operations.md#{}\"",
            alert.to_ascii_lowercase()
        );
        assert!(text.contains(&runbook), "{alert} lacks `{runbook}`");
        // The link's anchor is the runbook's heading.
        assert!(
            runbooks.contains(&format!("\n### {alert}\n")),
            "docs/operations.md has no `### {alert}` runbook"
        );
    }
}

#[test]
fn alert_rules_pass_their_unit_tests() {
    require("promtool");
    // The test file names the rules relative to itself.
    let tests = repo().join("docker/prometheus-alerts.test.yml");
    let out = Command::new("promtool")
        .args(["test", "rules"])
        .arg(&tests)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool test rules: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&tests).unwrap();
    for alert in ALERTS {
        assert!(
            text.contains(&format!("alertname: {alert}\n")),
            "no unit test for {alert}"
        );
    }
}

#[test]
fn dashboard_and_rules_use_existing_metrics() {
    // Metric name -> the file that uses it.
    let mut used: BTreeMap<String, &str> = BTreeMap::new();

    let dashboard_file = "docker/grafana-dashboard.json";
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(repo().join(dashboard_file)).unwrap())
            .unwrap_or_else(|e| panic!("{dashboard_file}: {e}"));
    let mut queries = Vec::new();
    dashboard_queries(&dashboard, None, &mut queries);
    assert!(queries.len() >= 10, "{dashboard_file}: {queries:?}");
    for query in &queries {
        for name in metric_names(query) {
            used.entry(name).or_insert(dashboard_file);
        }
    }

    let rules_file = "docker/prometheus-alerts.yml";
    let exprs = rule_exprs(&std::fs::read_to_string(repo().join(rules_file)).unwrap());
    assert_eq!(exprs.len(), ALERTS.len(), "{rules_file}: {exprs:?}");
    for expr in &exprs {
        for name in metric_names(expr) {
            used.entry(name).or_insert(rules_file);
        }
    }
    assert!(used.len() >= 20, "too few metrics found: {used:?}");

    // Histograms are used through their series: `X_bucket` (which only a
    // histogram has), `X_sum`, `X_count`.
    let histograms: BTreeSet<String> = used
        .keys()
        .filter_map(|name| name.strip_suffix("_bucket"))
        .map(str::to_owned)
        .collect();
    let mut wanted: BTreeMap<String, &str> = BTreeMap::new();
    for (name, &file) in &used {
        let base = ["_bucket", "_sum", "_count"]
            .into_iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .filter(|base| histograms.contains(*base))
            .unwrap_or(name.as_str());
        wanted.entry(base.to_owned()).or_insert(file);
    }

    // A fresh server on the demo inventory, with the ops listener.
    let http = free_port();
    let _server = Server::start(
        &demo_config(),
        &["--http", &format!("127.0.0.1:{http}")],
        "local",
    );
    let (code, metrics) = http_get(http, "/metrics").expect("GET /metrics");
    assert_eq!(code, 200, "{metrics}");
    // `# TYPE name type` lines.
    let types: BTreeMap<&str, &str> = metrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .map(|(name, kind)| (name, kind.trim()))
        .collect();

    let mut missing = Vec::new();
    for (name, file) in &wanted {
        let want_histogram = histograms.contains(name);
        match types.get(name.as_str()) {
            Some(&kind) if want_histogram && kind != "histogram" => {
                missing.push(format!("{name} ({file}): a {kind}, used as a histogram"));
            }
            Some(_) => {}
            None => missing.push(format!("{name} ({file})")),
        }
    }
    assert!(
        missing.is_empty(),
        "used by the dashboard or the alerts but not on /metrics as `# TYPE` \
         (each metric must be registered when the server starts, at 0):\n  {}\n\n{metrics}",
        missing.join("\n  ")
    );
}

/// The PromQL of a Grafana dashboard: every `expr` (panel targets) and the
/// template variables' `query` and `definition` strings.
fn dashboard_queries(value: &serde_json::Value, key: Option<&str>, out: &mut Vec<String>) {
    match value {
        serde_json::Value::String(text) => {
            if matches!(key, Some("expr" | "query" | "definition")) {
                out.push(text.clone());
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                dashboard_queries(item, key, out);
            }
        }
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                dashboard_queries(v, Some(k.as_str()), out);
            }
        }
        _ => {}
    }
}

/// The `expr:` values of a Prometheus rules file, inline (`expr: up == 0`)
/// or as a block scalar (`expr: |` and the lines indented deeper than the
/// key). No YAML parser is needed for metric names.
fn rule_exprs(yaml: &str) -> Vec<String> {
    let mut exprs = Vec::new();
    let mut lines = yaml.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let key = trimmed.strip_prefix("- ").unwrap_or(trimmed);
        let Some(value) = key.strip_prefix("expr:") else {
            continue;
        };
        let value = value.trim();
        if value.starts_with('|') || value.starts_with('>') {
            let mut block = String::new();
            while let Some(next) = lines.peek() {
                let next_indent = next.len() - next.trim_start().len();
                if !next.trim().is_empty() && next_indent <= indent {
                    break;
                }
                block.push_str(next.trim());
                block.push('\n');
                lines.next();
            }
            exprs.push(block);
        } else {
            exprs.push(value.to_owned());
        }
    }
    exprs
}

/// The `ecs_dns_*` metric names in a PromQL expression.
fn metric_names(expr: &str) -> Vec<String> {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut names = Vec::new();
    for (start, _) in expr.match_indices("ecs_dns_") {
        if expr[..start].chars().next_back().is_some_and(ident) {
            continue;
        }
        let name: String = expr[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        names.push(name);
    }
    names
}
