//! Counters of the query path: plain atomics, so that counting one response
//! costs a clock read and a few relaxed increments. The fronts count here;
//! `ops::metrics` renders them for Prometheus. Every series exists from the
//! start (at zero), so a dashboard or alert never waits for a first event.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use crate::wire::Transport;
use crate::wire::question::{HEADER_LEN, question_type};

/// Query types counted by name; every other type is counted as `other`, so
/// the label set stays bounded whatever clients send.
pub const QTYPES: [(RecordType, &str); 12] = [
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
pub const RCODES: [(u16, &str); 7] = [
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
pub const LATENCY_BOUNDS_NS: [u64; 11] = [
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

/// Which code made a response: the pre-rendered answers or the full answer
/// function (with transfers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    Fast,
    Full,
}

pub const TRANSPORTS: [(Transport, &str); 2] = [(Transport::Udp, "udp"), (Transport::Tcp, "tcp")];
pub const PATHS: [(Path, &str); 2] = [(Path::Fast, "fast"), (Path::Full, "full")];

struct QueryCounters {
    by_type_rcode: [[AtomicU64; RCODE_COUNT]; QTYPE_COUNT],
    truncated: AtomicU64,
    /// Per-bucket (not cumulative) counts; the last is +Inf.
    latency: [AtomicU64; LATENCY_BOUNDS_NS.len() + 1],
    latency_sum_ns: AtomicU64,
    /// By transport, then path.
    responses: [[AtomicU64; 2]; 2],
    /// Requests left unanswered (not a query, too short), by transport.
    dropped: [AtomicU64; 2],
}

static COUNTERS: QueryCounters = QueryCounters {
    by_type_rcode: [const { [const { AtomicU64::new(0) }; RCODE_COUNT] }; QTYPE_COUNT],
    truncated: AtomicU64::new(0),
    latency: [const { AtomicU64::new(0) }; LATENCY_BOUNDS_NS.len() + 1],
    latency_sum_ns: AtomicU64::new(0),
    responses: [const { [const { AtomicU64::new(0) }; 2] }; 2],
    dropped: [const { AtomicU64::new(0) }; 2],
};

fn transport_index(transport: Transport) -> usize {
    match transport {
        Transport::Udp => 0,
        Transport::Tcp => 1,
    }
}

fn path_index(path: Path) -> usize {
    match path {
        Path::Fast => 0,
        Path::Full => 1,
    }
}

/// The type index of a query type (bounded set).
fn qtype_index(qtype: RecordType) -> usize {
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

/// Counts one response sent: `qtype` of the question (`None` when there is
/// none), the response code and whether TC was set.
pub fn record_query(qtype: Option<RecordType>, rcode: ResponseCode, truncated: bool) {
    let t = qtype.map_or(QTYPE_OTHER, qtype_index);
    let r = rcode_index(u16::from(rcode));
    COUNTERS.by_type_rcode[t][r].fetch_add(1, Relaxed);
    if truncated {
        COUNTERS.truncated.fetch_add(1, Relaxed);
    }
}

/// Counts `n` responses that each took `elapsed` from receiving the query
/// to sending the response (a UDP batch reads the clock once for all of
/// its answers, which leave in one `sendmmsg`).
pub fn record_latency(elapsed: Duration, n: u64) {
    if n == 0 {
        return;
    }
    let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
    let bucket = LATENCY_BOUNDS_NS
        .iter()
        .position(|bound| ns <= *bound)
        .unwrap_or(LATENCY_BOUNDS_NS.len());
    COUNTERS.latency[bucket].fetch_add(n, Relaxed);
    COUNTERS
        .latency_sum_ns
        .fetch_add(ns.saturating_mul(n), Relaxed);
}

/// Like [`record_query`], for the wire-format `response`: reads the question
/// type, RCODE (header part) and TC bit from its bytes without parsing it.
pub fn record_response(response: &[u8]) {
    let Some(header) = response.get(..HEADER_LEN) else {
        return;
    };
    let truncated = header[2] & 0x02 != 0;
    let rcode = ResponseCode::from_low(header[3] & 0x0f);
    let qtype = question_type(response).map(RecordType::from);
    record_query(qtype, rcode, truncated);
}

/// Counts `n` responses made by `path` over `transport`.
pub fn record_path(transport: Transport, path: Path, n: u64) {
    COUNTERS.responses[transport_index(transport)][path_index(path)].fetch_add(n, Relaxed);
}

/// Counts `n` requests over `transport` that got no response.
pub fn record_dropped(transport: Transport, n: u64) {
    COUNTERS.dropped[transport_index(transport)].fetch_add(n, Relaxed);
}

/// Responses counted so far, by (qtype name, rcode name), zeros included.
pub fn by_type_and_rcode() -> impl Iterator<Item = (&'static str, &'static str, u64)> {
    let name = |i: usize| QTYPES.get(i).map_or("other", |(_, n)| *n);
    let code = |i: usize| RCODES.get(i).map_or("other", |(_, n)| *n);
    COUNTERS
        .by_type_rcode
        .iter()
        .enumerate()
        .flat_map(move |(t, row)| {
            row.iter()
                .enumerate()
                .map(move |(r, c)| (name(t), code(r), c.load(Relaxed)))
        })
}

/// Total responses counted so far (all types and codes).
pub fn queries_total() -> u64 {
    by_type_and_rcode().map(|(_, _, n)| n).sum()
}

pub fn truncated_total() -> u64 {
    COUNTERS.truncated.load(Relaxed)
}

/// The latency histogram: per-bucket (not cumulative) counts, the last one
/// past every bound, and the sum in nanoseconds.
pub fn latency() -> ([u64; LATENCY_BOUNDS_NS.len() + 1], u64) {
    let mut buckets = [0; LATENCY_BOUNDS_NS.len() + 1];
    for (out, count) in buckets.iter_mut().zip(&COUNTERS.latency) {
        *out = count.load(Relaxed);
    }
    (buckets, COUNTERS.latency_sum_ns.load(Relaxed))
}

/// Responses by transport and path.
pub fn path_total(transport: Transport, path: Path) -> u64 {
    COUNTERS.responses[transport_index(transport)][path_index(path)].load(Relaxed)
}

/// Requests dropped over `transport`.
pub fn dropped_total(transport: Transport) -> u64 {
    COUNTERS.dropped[transport_index(transport)].load(Relaxed)
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
        let series = |t: usize, r: usize| COUNTERS.by_type_rcode[t][r].load(Relaxed);
        let srv = qtype_index(RecordType::SRV);
        let before = series(srv, 5);
        bytes[3] = (bytes[3] & 0xf0) | 5; // REFUSED
        record_response(&bytes);
        assert_eq!(series(srv, 5), before + 1);
        // Cut anywhere: never a panic, counted as `other` at worst.
        for end in 0..bytes.len() {
            record_response(&bytes[..end]);
        }
    }

    #[test]
    fn a_batch_counts_each_of_its_answers_once() {
        // Past the last bound (+Inf): no other test's answers land there.
        let slow = Duration::from_millis(300);
        let (before, sum_before) = latency();
        record_latency(slow, 3);
        record_latency(slow, 0);
        let (after, sum_after) = latency();
        let last = LATENCY_BOUNDS_NS.len();
        assert_eq!(after[last], before[last] + 3);
        assert!(sum_after - sum_before >= 3 * 300_000_000);
    }

    #[test]
    fn every_series_is_listed_from_the_start() {
        assert_eq!(by_type_and_rcode().count(), QTYPE_COUNT * RCODE_COUNT);
        let before = queries_total();
        record_query(Some(RecordType::CNAME), ResponseCode::NXDomain, true);
        assert_eq!(queries_total(), before + 1);
        assert!(
            by_type_and_rcode().any(|(t, r, n)| t == "CNAME" && r == "NXDOMAIN" && n > 0),
            "the CNAME/NXDOMAIN series counted"
        );
        let before = path_total(Transport::Tcp, Path::Fast);
        record_path(Transport::Tcp, Path::Fast, 2);
        assert_eq!(path_total(Transport::Tcp, Path::Fast), before + 2);
    }
}
