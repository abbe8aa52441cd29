//! Metrics: everything through the `metrics` facade, rendered by the
//! Prometheus recorder installed in `serve`, plus the query path's atomics
//! ([`crate::query_counters`]), rendered here.
//!
//! Every name starts with `ecs_dns_` (the table in docs/metrics.md lists
//! them) and every series exists from the start, at zero until it happens:
//! [`install`] registers them, so a dashboard or an alert never waits for a
//! first event.

use std::fmt::Write as _;
use std::sync::OnceLock;
use std::time::SystemTime;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use super::listing::{VERDICT_NAMES, VERDICTS, verdict_name};
use crate::dns::Served;
use crate::query_counters::{self as counters, LATENCY_BOUNDS_NS, PATHS, TRANSPORTS};
use crate::records::Verdict;
use crate::source::ecs::calls::Operation;
use crate::source::ecs::events::EVENT_TYPES;
use crate::source::ecs::reconcile;
use crate::zone::Snapshot;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder (once per process) so that the
/// `metrics::` macros used across the crate are kept for `/metrics`.
pub fn install() -> anyhow::Result<()> {
    if HANDLE.get().is_some() {
        return Ok(());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Suffix("_duration_seconds".into()),
            &[0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0],
        )?
        .set_buckets_for_metric(
            Matcher::Full("ecs_dns_event_lag_seconds".into()),
            &[0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0],
        )?
        .install_recorder()?;
    let _ = HANDLE.set(handle);
    metrics::gauge!("ecs_dns_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    register();
    Ok(())
}

/// A metric kept by the recorder: name, kind, help, and the labels whose
/// values are known in advance (every combination registered at zero, in
/// this order of labels, the order the code that counts uses).
struct Family {
    name: &'static str,
    kind: Kind,
    help: &'static str,
    labels: Labels,
}

type Labels = &'static [(&'static str, &'static [&'static str])];

enum Kind {
    Counter,
    Gauge,
    Histogram,
}

const fn family(name: &'static str, kind: Kind, help: &'static str, labels: Labels) -> Family {
    Family {
        name,
        kind,
        help,
        labels,
    }
}

/// Every metric the recorder keeps; `ecs_dns_build_info` is set at install.
/// The series of each zone and each cluster are not kept: [`render`] writes
/// them from what is published at scrape time, so that a zone or cluster a
/// reload removed leaves `/metrics` with it.
const FAMILIES: &[Family] = &[
    family(
        "ecs_dns_tasks_seen",
        Kind::Gauge,
        "Tasks in the inventory.",
        &[],
    ),
    family(
        "ecs_dns_tasks_served",
        Kind::Gauge,
        "Tasks whose addresses are served.",
        &[],
    ),
    family(
        "ecs_dns_tasks",
        Kind::Gauge,
        "Tasks by serving-rule verdict.",
        &[("verdict", &VERDICT_NAMES)],
    ),
    family(
        "ecs_dns_duplicate_tasks",
        Kind::Gauge,
        "Tasks the inventory lists more than once (by ARN): served once.",
        &[],
    ),
    family(
        "ecs_dns_name_collisions",
        Kind::Gauge,
        "Names that several inputs map to (merged), or that a task may not take (reserved), by kind.",
        &[("kind", &COLLISION_KINDS)],
    ),
    family(
        "ecs_dns_refresh_duration_seconds",
        Kind::Histogram,
        "Time to read the source once.",
        &[],
    ),
    family(
        "ecs_dns_refreshes_total",
        Kind::Counter,
        "Source reads, by outcome.",
        &[("outcome", &["updated", "unchanged", "error"])],
    ),
    family(
        "ecs_dns_aws_calls_total",
        Kind::Counter,
        "AWS API calls, by operation.",
        &[("operation", &Operation::NAMES)],
    ),
    family(
        "ecs_dns_aws_errors_total",
        Kind::Counter,
        "AWS API calls that failed, by operation.",
        &[("operation", &Operation::NAMES)],
    ),
    family(
        "ecs_dns_events_total",
        Kind::Counter,
        "ECS event messages from the events queue, by event type and outcome.",
        &[
            ("type", &EVENT_TYPES),
            (
                "outcome",
                &[
                    "applied",
                    "stale",
                    "duplicate",
                    "ignored",
                    "malformed",
                    "foreign",
                ],
            ),
        ],
    ),
    family(
        "ecs_dns_reconcile_corrections_total",
        Kind::Counter,
        "Events mode: tasks a full read found that events had missed, by kind (added, removed, changed).",
        &[("kind", &reconcile::KINDS)],
    ),
    family(
        "ecs_dns_events_mode",
        Kind::Gauge,
        "1 while the events queue is read (events mode), 0 while polling instead.",
        &[],
    ),
    family(
        "ecs_dns_event_lag_seconds",
        Kind::Histogram,
        "Time from an ECS event to its application.",
        &[],
    ),
    family(
        "ecs_dns_transfers_total",
        Kind::Counter,
        "Zone transfer requests, by outcome.",
        &[("outcome", &["sent", "refused", "notauth", "error"])],
    ),
    family(
        "ecs_dns_notify_total",
        Kind::Counter,
        "NOTIFY messages, by outcome.",
        &[("outcome", &["acknowledged", "failed"])],
    ),
    family(
        "ecs_dns_state_writes_total",
        Kind::Counter,
        "State-file writes, by outcome.",
        &[("outcome", &["ok", "error"])],
    ),
    family(
        "ecs_dns_rrl_total",
        Kind::Counter,
        "UDP responses rate-limited, by action (dropped, or sent truncated).",
        &[("action", &["drop", "slip"])],
    ),
    family(
        "ecs_dns_tcp_connections",
        Kind::Gauge,
        "DNS TCP connections open.",
        &[],
    ),
    family(
        "ecs_dns_tcp_accept_errors_total",
        Kind::Counter,
        "DNS TCP accepts that failed (e.g. out of file descriptors).",
        &[],
    ),
    family(
        "ecs_dns_tcp_rejected_total",
        Kind::Counter,
        "DNS TCP connections turned away: every slot busy.",
        &[],
    ),
    family(
        "ecs_dns_tcp_evicted_total",
        Kind::Counter,
        "Idle DNS TCP connections closed for a newcomer.",
        &[],
    ),
    family(
        "ecs_dns_udp_errors_total",
        Kind::Counter,
        "UDP socket errors, by system call.",
        &[("op", &["receive", "send"])],
    ),
];

/// Describes every family and registers each known series at zero.
fn register() {
    for family in FAMILIES {
        match family.kind {
            Kind::Counter => metrics::describe_counter!(family.name, family.help),
            Kind::Gauge => metrics::describe_gauge!(family.name, family.help),
            Kind::Histogram => metrics::describe_histogram!(family.name, family.help),
        }
        for labels in label_sets(family.labels) {
            match family.kind {
                Kind::Counter => metrics::counter!(family.name, &labels).absolute(0),
                Kind::Gauge => metrics::gauge!(family.name, &labels).set(0.0),
                Kind::Histogram => drop(metrics::histogram!(family.name, &labels)),
            }
        }
    }
    metrics::describe_gauge!("ecs_dns_build_info", "Always 1; the version as a label.");
}

/// Every combination of the known label values, each as a list of
/// `(label, value)` in the family's order of labels; one empty set for a
/// family without labels.
fn label_sets(labels: Labels) -> Vec<Vec<(&'static str, &'static str)>> {
    let mut sets = vec![vec![]];
    for (key, values) in labels {
        sets = sets
            .into_iter()
            .flat_map(|set| {
                values.iter().map(move |value| {
                    let mut set = set.clone();
                    set.push((*key, *value));
                    set
                })
            })
            .collect();
    }
    sets
}

/// Gauges describing a newly published snapshot.
pub fn observe_snapshot(snapshot: &Snapshot) {
    metrics::gauge!("ecs_dns_tasks_seen").set(snapshot.inventory.tasks.len() as f64);
    let served = snapshot
        .report
        .verdicts
        .iter()
        .filter(|v| v.is_served())
        .count();
    metrics::gauge!("ecs_dns_tasks_served").set(served as f64);
    for kind in COLLISION_KINDS {
        let count = snapshot
            .report
            .collisions
            .iter()
            .filter(|c| c.kind == kind)
            .count();
        metrics::gauge!("ecs_dns_name_collisions", "kind" => kind).set(count as f64);
    }
    observe_verdicts(&snapshot.report.verdicts);
}

/// The kinds of [`crate::records::Collision`].
const COLLISION_KINDS: [&str; 5] = ["service", "cluster", "task", "reserved", "address"];

/// `ecs_dns_tasks{verdict="starting"}`: tasks per serving-rule verdict, so a
/// dashboard shows tasks waiting for their health check, withdrawn from
/// draining instances, or served only because their service fails open.
fn observe_verdicts(verdicts: &[Verdict]) {
    let mut counts: std::collections::BTreeMap<&'static str, usize> =
        VERDICTS.iter().map(|v| (verdict_name(*v), 0)).collect();
    for verdict in verdicts {
        *counts.entry(verdict_name(*verdict)).or_default() += 1;
    }
    for (label, count) in counts {
        metrics::gauge!("ecs_dns_tasks", "verdict" => label).set(count as f64);
    }
}

/// The `/metrics` page: the recorder's metrics, the series of each zone
/// and the data age of each cluster as of now (from `served`, what is
/// published), whether the server is ready (`ready`, as `/readyz` says),
/// and the query counters.
pub fn render(served: Option<&Served>, now: SystemTime, ready: bool) -> String {
    let mut out = match HANDLE.get() {
        Some(handle) => {
            handle.run_upkeep();
            handle.render()
        }
        None => String::new(),
    };
    render_zones(&mut out, served);
    render_cluster_ages(&mut out, served.map(|s| &**s.snapshot()), now);
    let _ = writeln!(
        out,
        "# HELP ecs_dns_ready 1 when /readyz answers 200: a zone is loaded and its data is fresh.\n# TYPE ecs_dns_ready gauge\necs_dns_ready {}",
        u8::from(ready)
    );
    if let Some(drops) = crate::front::udp::receive_queue_drops() {
        let _ = writeln!(
            out,
            "# HELP ecs_dns_udp_receive_drops_total Datagrams the kernel dropped because a DNS UDP socket's receive queue was full (raise udp_socket_buffer).\n# TYPE ecs_dns_udp_receive_drops_total counter\necs_dns_udp_receive_drops_total {drops}"
        );
    }
    // Read now, not sampled: the figure an alert compares with the task's
    // memory limit.
    if let Some(bytes) = super::memory::resident_bytes() {
        let _ = writeln!(
            out,
            "# HELP process_resident_memory_bytes Resident memory size in bytes.\n# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes {bytes}"
        );
    }
    render_queries(&mut out);
    out
}

/// A per-zone gauge: its name, its help, and its value in a zone.
type ZoneGauge = (&'static str, &'static str, fn(&Snapshot) -> u64);

/// `ecs_dns_records`, `ecs_dns_names` and `ecs_dns_zone_serial` of the
/// forward zone and every reverse zone.
fn render_zones(out: &mut String, served: Option<&Served>) {
    let zones: Vec<(String, &Snapshot)> = served
        .into_iter()
        .flat_map(Served::zones)
        .map(|zone| {
            (
                label_value(&zone.snapshot().origin().to_string()),
                &**zone.snapshot(),
            )
        })
        .collect();
    let families: [ZoneGauge; 3] = [
        (
            "ecs_dns_records",
            "Records served in each zone (forward and reverse), the SOA included.",
            |z| z.record_count() as u64,
        ),
        (
            "ecs_dns_names",
            "Names that have records, in each zone.",
            |z| z.names().count() as u64,
        ),
        (
            "ecs_dns_zone_serial",
            "The SOA serial served, in each zone.",
            |z| u64::from(z.serial()),
        ),
    ];
    for (name, help, value) in families {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (zone, snapshot) in &zones {
            let _ = writeln!(out, "{name}{{zone=\"{zone}\"}} {}", value(snapshot));
        }
    }
}

/// `ecs_dns_cluster_data_age_seconds`, computed now: a gauge set at refresh
/// time would stop growing exactly when the source stops refreshing.
fn render_cluster_ages(out: &mut String, snapshot: Option<&Snapshot>, now: SystemTime) {
    let _ = writeln!(
        out,
        "# HELP ecs_dns_cluster_data_age_seconds Age of each cluster's last good data, at scrape time.\n# TYPE ecs_dns_cluster_data_age_seconds gauge"
    );
    for cluster in snapshot.iter().flat_map(|s| &s.inventory.clusters) {
        let age = now
            .duration_since(cluster.refreshed_at)
            .unwrap_or_default()
            .as_secs_f64();
        // `source` only with several sources: one source's series stay as
        // they were.
        let source = cluster
            .source
            .as_deref()
            .map(|source| format!(",source=\"{}\"", label_value(source)))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "ecs_dns_cluster_data_age_seconds{{cluster=\"{}\"{source}}} {age}",
            label_value(&cluster.name)
        );
    }
}

/// A label value escaped as the text format asks (backslash, quote,
/// newline): cluster and source names come from configuration and AWS.
fn label_value(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn render_queries(out: &mut String) {
    let _ = writeln!(
        out,
        "# HELP ecs_dns_queries_total DNS responses sent, by question type and response code.\n# TYPE ecs_dns_queries_total counter"
    );
    for (qtype, rcode, n) in counters::by_type_and_rcode() {
        let _ = writeln!(
            out,
            "ecs_dns_queries_total{{qtype=\"{qtype}\",rcode=\"{rcode}\"}} {n}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP ecs_dns_truncated_responses_total UDP responses sent with TC set.\n# TYPE ecs_dns_truncated_responses_total counter\necs_dns_truncated_responses_total {}",
        counters::truncated_total()
    );
    let _ = writeln!(
        out,
        "# HELP ecs_dns_query_duration_seconds Time from receiving a query to sending its response.\n# TYPE ecs_dns_query_duration_seconds histogram"
    );
    let (buckets, sum_ns) = counters::latency();
    let mut cumulative = 0;
    for (i, count) in buckets.iter().enumerate() {
        cumulative += count;
        let le = LATENCY_BOUNDS_NS
            .get(i)
            .map_or_else(|| "+Inf".to_owned(), |ns| format!("{}", *ns as f64 / 1e9));
        let _ = writeln!(
            out,
            "ecs_dns_query_duration_seconds_bucket{{le=\"{le}\"}} {cumulative}"
        );
    }
    let _ = writeln!(
        out,
        "ecs_dns_query_duration_seconds_sum {}\necs_dns_query_duration_seconds_count {cumulative}",
        sum_ns as f64 / 1e9
    );
    let _ = writeln!(
        out,
        "# HELP ecs_dns_front_responses_total Responses sent, by transport and by the code that made them (fast: pre-rendered; full: the answer function or a transfer).\n# TYPE ecs_dns_front_responses_total counter"
    );
    for (transport, t) in TRANSPORTS {
        for (path, p) in PATHS {
            let n = counters::path_total(transport, path);
            let _ = writeln!(
                out,
                "ecs_dns_front_responses_total{{transport=\"{t}\",path=\"{p}\"}} {n}"
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP ecs_dns_front_dropped_total Requests that got no response (not a query, or too short to answer).\n# TYPE ecs_dns_front_dropped_total counter"
    );
    for (transport, t) in TRANSPORTS {
        let n = counters::dropped_total(transport);
        let _ = writeln!(out, "ecs_dns_front_dropped_total{{transport=\"{t}\"}} {n}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_counters_render_with_every_series() {
        let mut text = String::new();
        render_queries(&mut text);
        for line in [
            "ecs_dns_queries_total{qtype=\"CNAME\",rcode=\"NXDOMAIN\"} ",
            "ecs_dns_queries_total{qtype=\"other\",rcode=\"other\"} ",
            "ecs_dns_query_duration_seconds_bucket{le=\"+Inf\"} ",
            "ecs_dns_truncated_responses_total ",
            "ecs_dns_front_responses_total{transport=\"udp\",path=\"fast\"} ",
            "ecs_dns_front_dropped_total{transport=\"tcp\"} ",
        ] {
            assert!(text.contains(line), "{line} missing from {text}");
        }
    }

    /// The resident set is read at every scrape, from the start.
    #[cfg(target_os = "linux")]
    #[test]
    fn resident_memory_is_rendered() {
        let text = render(None, SystemTime::now(), false);
        let value = text
            .lines()
            .find_map(|l| l.strip_prefix("process_resident_memory_bytes "))
            .and_then(|v| v.parse::<u64>().ok());
        assert!(value.is_some_and(|v| v > 0), "{text}");
        assert!(text.contains("# TYPE process_resident_memory_bytes gauge\n"));
    }

    /// Names from configuration and AWS cannot break out of a label.
    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label_value("prod-1"), "prod-1");
        assert_eq!(
            label_value("a\"} 1\nevil{x=\"\\"),
            "a\\\"} 1\\nevil{x=\\\"\\\\"
        );
    }

    /// With nothing published, the per-zone and per-cluster families are
    /// there (so a dashboard finds them) with no series.
    #[test]
    fn zone_and_cluster_families_without_a_zone() {
        let text = render(None, SystemTime::now(), false);
        for name in [
            "ecs_dns_records",
            "ecs_dns_names",
            "ecs_dns_zone_serial",
            "ecs_dns_cluster_data_age_seconds",
        ] {
            assert!(text.contains(&format!("# TYPE {name} gauge\n")), "{text}");
            assert!(!text.contains(&format!("{name}{{")), "{text}");
        }
    }

    /// Every combination of a family's known labels, in its order.
    #[test]
    fn label_sets_are_the_cross_product() {
        assert_eq!(label_sets(&[]), vec![Vec::<(&str, &str)>::new()]);
        assert_eq!(
            label_sets(&[("a", &["1", "2"]), ("b", &["x", "y", "z"])]),
            vec![
                vec![("a", "1"), ("b", "x")],
                vec![("a", "1"), ("b", "y")],
                vec![("a", "1"), ("b", "z")],
                vec![("a", "2"), ("b", "x")],
                vec![("a", "2"), ("b", "y")],
                vec![("a", "2"), ("b", "z")],
            ]
        );
    }

    /// The metric's label is the verdict as `/records` shows it, and every
    /// verdict has its own.
    #[test]
    fn verdict_labels_match_records() {
        let mut seen = std::collections::BTreeSet::new();
        for verdict in VERDICTS {
            let json = serde_json::to_value(verdict).unwrap();
            assert_eq!(json.as_str(), Some(verdict_name(verdict)), "{verdict:?}");
            assert!(seen.insert(verdict_name(verdict)), "{verdict:?}");
        }
        let labels: Vec<&str> = VERDICTS.iter().map(|v| verdict_name(*v)).collect();
        assert_eq!(labels, VERDICT_NAMES);
    }
}
