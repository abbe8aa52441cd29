//! Metrics: the query counters (plain atomics, so the query path costs a
//! clock read and four relaxed increments) and everything else through the
//! `metrics` facade, rendered by the Prometheus recorder installed in `serve`.
//!
//! Names (all prefixed `ecs_dns_`): see [`render`] and the README
//! ("Operations").

use std::fmt::Write as _;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, SystemTime};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::records::Verdict;
use crate::zone::Snapshot;

/// Query types counted by name; every other type is counted as `other`, so
/// the label set stays bounded whatever clients send.
const QTYPES: [(RecordType, &str); 12] = [
    (RecordType::A, "A"),
    (RecordType::AAAA, "AAAA"),
    (RecordType::SRV, "SRV"),
    (RecordType::SOA, "SOA"),
    (RecordType::NS, "NS"),
    (RecordType::ANY, "ANY"),
    (RecordType::AXFR, "AXFR"),
    (RecordType::IXFR, "IXFR"),
    (RecordType::PTR, "PTR"),
    (RecordType::TXT, "TXT"),
    (RecordType::CNAME, "CNAME"),
    (RecordType::HTTPS, "HTTPS"),
];
/// Index of `other` (and of "no question", e.g. FORMERR).
const QTYPE_OTHER: usize = QTYPES.len();
const QTYPE_COUNT: usize = QTYPES.len() + 1;

/// Response codes by name; the rest (never produced today) as `other`.
const RCODES: [(u16, &str); 7] = [
    (0, "NOERROR"),
    (1, "FORMERR"),
    (2, "SERVFAIL"),
    (3, "NXDOMAIN"),
    (4, "NOTIMP"),
    (5, "REFUSED"),
    (16, "BADVERS"),
];
const RCODE_OTHER: usize = RCODES.len();
const RCODE_COUNT: usize = RCODES.len() + 1;

/// Upper bounds of the latency buckets, in nanoseconds (+Inf implied).
const LATENCY_BOUNDS_NS: [u64; 11] = [
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    10_000_000,
    50_000_000,
    250_000_000,
];

/// Counters of the query path.
struct QueryStats {
    by_type_rcode: [[AtomicU64; RCODE_COUNT]; QTYPE_COUNT],
    truncated: AtomicU64,
    /// Per-bucket (not cumulative) counts; the last is +Inf.
    latency: [AtomicU64; LATENCY_BOUNDS_NS.len() + 1],
    latency_sum_ns: AtomicU64,
}

static QUERIES: QueryStats = QueryStats {
    by_type_rcode: [const { [const { AtomicU64::new(0) }; RCODE_COUNT] }; QTYPE_COUNT],
    truncated: AtomicU64::new(0),
    latency: [const { AtomicU64::new(0) }; LATENCY_BOUNDS_NS.len() + 1],
    latency_sum_ns: AtomicU64::new(0),
};

/// The type index of a query type (bounded set).
pub fn qtype_index(qtype: RecordType) -> usize {
    QTYPES
        .iter()
        .position(|(t, _)| *t == qtype)
        .unwrap_or(QTYPE_OTHER)
}

fn rcode_index(rcode: u16) -> usize {
    RCODES
        .iter()
        .position(|(c, _)| *c == rcode)
        .unwrap_or(RCODE_OTHER)
}

/// Counts one answered query. Every DNS front calls this once per response
/// sent: `qtype` of the question (`None` when there is none), the response
/// code, whether TC was set, and the time from receiving to sending.
pub fn record_query(
    qtype: Option<RecordType>,
    rcode: ResponseCode,
    truncated: bool,
    elapsed: Duration,
) {
    let t = qtype.map_or(QTYPE_OTHER, qtype_index);
    let r = rcode_index(u16::from(rcode));
    QUERIES.by_type_rcode[t][r].fetch_add(1, Relaxed);
    if truncated {
        QUERIES.truncated.fetch_add(1, Relaxed);
    }
    let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
    let bucket = LATENCY_BOUNDS_NS
        .iter()
        .position(|bound| ns <= *bound)
        .unwrap_or(LATENCY_BOUNDS_NS.len());
    QUERIES.latency[bucket].fetch_add(1, Relaxed);
    QUERIES.latency_sum_ns.fetch_add(ns, Relaxed);
}

/// Like [`record_query`], for fronts that hold only the wire-format
/// `response`: reads the question type, RCODE (header part) and TC bit from
/// its bytes without parsing the whole message.
pub fn record_response(response: &[u8], elapsed: Duration) {
    let Some(header) = response.get(..12) else {
        return;
    };
    let truncated = header[2] & 0x02 != 0;
    let rcode = ResponseCode::from_low(header[3] & 0x0f);
    let qdcount = u16::from_be_bytes([header[4], header[5]]);
    let qtype = (qdcount > 0)
        .then(|| question_type(&response[12..]))
        .flatten();
    record_query(qtype, rcode, truncated, elapsed);
}

/// The QTYPE of the first question in `question` (the bytes after the
/// header). Question names are never compressed in our responses; a pointer
/// ends the walk anyway.
fn question_type(question: &[u8]) -> Option<RecordType> {
    let mut at = 0;
    loop {
        let len = *question.get(at)?;
        if len == 0 {
            at += 1;
            break;
        }
        if len & 0xc0 != 0 {
            at += 2;
            break;
        }
        at += 1 + usize::from(len);
    }
    let qtype = question.get(at..at + 2)?;
    Some(RecordType::from(u16::from_be_bytes([qtype[0], qtype[1]])))
}

/// Total queries counted so far (all types and codes).
pub fn queries_total() -> u64 {
    QUERIES
        .by_type_rcode
        .iter()
        .flatten()
        .map(|c| c.load(Relaxed))
        .sum()
}

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
        .install_recorder()?;
    let _ = HANDLE.set(handle);
    metrics::gauge!("ecs_dns_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    Ok(())
}

/// Gauges describing a newly published snapshot.
pub fn observe_snapshot(snapshot: &Snapshot) {
    metrics::gauge!("ecs_dns_zone_serial").set(f64::from(snapshot.serial()));
    metrics::gauge!("ecs_dns_records").set(snapshot.record_count() as f64);
    metrics::gauge!("ecs_dns_names").set(snapshot.names().count() as f64);
    metrics::gauge!("ecs_dns_tasks_seen").set(snapshot.inventory.tasks.len() as f64);
    let served = snapshot
        .report
        .verdicts
        .iter()
        .filter(|v| v.is_served())
        .count();
    metrics::gauge!("ecs_dns_tasks_served").set(served as f64);
    observe_verdicts(&snapshot.report.verdicts);
}

/// Every verdict, so that each series exists (at 0) from the first snapshot
/// on and drops back to 0 when its last task moves on.
const VERDICTS: [Verdict; 9] = [
    Verdict::Served,
    Verdict::Pending,
    Verdict::Starting,
    Verdict::Unhealthy,
    Verdict::Stopping,
    Verdict::NoAddress,
    Verdict::Draining,
    Verdict::FailingOpen,
    Verdict::Unnamed,
];

/// `ecs_dns_tasks{verdict="starting"}`: tasks per serving-rule verdict, so a
/// dashboard shows tasks waiting for their health check, withdrawn from
/// draining instances, or served only because their service fails open.
fn observe_verdicts(verdicts: &[Verdict]) {
    let mut counts: std::collections::BTreeMap<&'static str, usize> =
        VERDICTS.iter().map(|v| (verdict_label(*v), 0)).collect();
    for verdict in verdicts {
        *counts.entry(verdict_label(*verdict)).or_default() += 1;
    }
    for (label, count) in counts {
        metrics::gauge!("ecs_dns_tasks", "verdict" => label).set(count as f64);
    }
}

/// The verdict as `/records` spells it (snake case).
fn verdict_label(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Served => "served",
        Verdict::Pending => "pending",
        Verdict::Starting => "starting",
        Verdict::Unhealthy => "unhealthy",
        Verdict::Stopping => "stopping",
        Verdict::NoAddress => "no_address",
        Verdict::Draining => "draining",
        Verdict::FailingOpen => "failing_open",
        Verdict::Unnamed => "unnamed",
    }
}

/// The `/metrics` page: the recorder's metrics, the data age of each
/// cluster as of now, and the query counters.
pub fn render(snapshot: Option<&Snapshot>, now: SystemTime) -> String {
    // Ages are computed at scrape time: a gauge set at refresh time would
    // stop growing exactly when the source stops refreshing.
    if let Some(snapshot) = snapshot {
        for cluster in &snapshot.inventory.clusters {
            let age = now
                .duration_since(cluster.refreshed_at)
                .unwrap_or_default()
                .as_secs_f64();
            metrics::gauge!("ecs_dns_cluster_data_age_seconds", "cluster" => cluster.name.clone())
                .set(age);
        }
    }
    let mut out = match HANDLE.get() {
        Some(handle) => {
            handle.run_upkeep();
            handle.render()
        }
        None => String::new(),
    };
    render_queries(&mut out);
    out
}

fn render_queries(out: &mut String) {
    let name = |i: usize| QTYPES.get(i).map_or("other", |(_, n)| *n);
    let code = |i: usize| RCODES.get(i).map_or("other", |(_, n)| *n);
    let _ = writeln!(
        out,
        "# HELP ecs_dns_queries_total DNS responses sent, by question type and response code.\n# TYPE ecs_dns_queries_total counter"
    );
    for (t, row) in QUERIES.by_type_rcode.iter().enumerate() {
        for (r, count) in row.iter().enumerate() {
            let n = count.load(Relaxed);
            if n > 0 {
                let _ = writeln!(
                    out,
                    "ecs_dns_queries_total{{qtype=\"{}\",rcode=\"{}\"}} {n}",
                    name(t),
                    code(r)
                );
            }
        }
    }
    let _ = writeln!(
        out,
        "# HELP ecs_dns_truncated_responses_total UDP responses sent with TC set.\n# TYPE ecs_dns_truncated_responses_total counter\necs_dns_truncated_responses_total {}",
        QUERIES.truncated.load(Relaxed)
    );
    let _ = writeln!(
        out,
        "# HELP ecs_dns_query_duration_seconds Time from receiving a query to sending its response.\n# TYPE ecs_dns_query_duration_seconds histogram"
    );
    let mut cumulative = 0;
    for (i, count) in QUERIES.latency.iter().enumerate() {
        cumulative += count.load(Relaxed);
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
        QUERIES.latency_sum_ns.load(Relaxed) as f64 / 1e9
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_types_are_bounded() {
        let table = [
            (RecordType::A, "A"),
            (RecordType::SRV, "SRV"),
            (RecordType::MX, "other"),
            (RecordType::Unknown(65000), "other"),
        ];
        for (qtype, want) in table {
            let i = qtype_index(qtype);
            assert_eq!(QTYPES.get(i).map_or("other", |(_, n)| *n), want);
        }
    }

    #[test]
    fn wire_responses_are_counted_by_type() {
        use hickory_proto::op::{Message, Query};
        use hickory_proto::rr::Name;
        use std::str::FromStr;
        let mut response = Message::query();
        response.add_query(Query::query(
            Name::from_str("_http._tcp.web.local.").unwrap(),
            RecordType::SRV,
        ));
        let mut bytes = response.to_vec().unwrap();
        let series = |t: usize, r: usize| QUERIES.by_type_rcode[t][r].load(Relaxed);
        let srv = qtype_index(RecordType::SRV);
        let before = series(srv, 5);
        bytes[3] = (bytes[3] & 0xf0) | 5; // REFUSED
        record_response(&bytes, Duration::from_micros(3));
        assert_eq!(series(srv, 5), before + 1);
        assert_eq!(question_type(&bytes[12..]), Some(RecordType::SRV));
        // Cut anywhere: never a panic, counted as `other` at worst.
        for end in 0..bytes.len() {
            record_response(&bytes[..end], Duration::ZERO);
        }
    }

    #[test]
    fn counts_and_histogram_render() {
        let before = queries_total();
        record_query(
            Some(RecordType::CNAME),
            ResponseCode::NXDomain,
            true,
            Duration::from_micros(30),
        );
        assert_eq!(queries_total(), before + 1);
        let mut text = String::new();
        render_queries(&mut text);
        assert!(
            text.contains("ecs_dns_queries_total{qtype=\"CNAME\",rcode=\"NXDOMAIN\"} "),
            "{text}"
        );
        assert!(text.contains("ecs_dns_query_duration_seconds_bucket{le=\"+Inf\"} "));
        assert!(text.contains("ecs_dns_truncated_responses_total "));
    }

    /// The metric's label is the verdict as `/records` shows it, and every
    /// verdict has its own.
    #[test]
    fn verdict_labels_match_records() {
        let mut seen = std::collections::BTreeSet::new();
        for verdict in VERDICTS {
            let json = serde_json::to_value(verdict).unwrap();
            assert_eq!(json.as_str(), Some(verdict_label(verdict)), "{verdict:?}");
            assert!(seen.insert(verdict_label(verdict)), "{verdict:?}");
        }
    }
}
