//! The answer function: (snapshot, query) → response. Pure and independent
//! of any network front, so every front answers alike.
//!
//! Behaviour (each with a test in `answer/tests.rs`, and end to end in `tests/it/dns.rs`):
//! - AA on every answer from the zone; RA clear; RD and CD copied.
//! - Answer owners written as the question was (case kept, RFC 4343).
//! - NXDOMAIN for names that do not exist, NODATA for names that exist
//!   without the type (empty non-terminals included), both with the SOA in
//!   the authority section at min(SOA TTL, SOA MINIMUM) (RFC 2308). A
//!   reverse zone with a fallback has every address of its range: EC2's
//!   name for those no task holds, the names above them empty.
//! - REFUSED for names outside the zone and classes other than IN (and ANY):
//!   never an open resolver.
//! - EDNS(0) (RFC 6891): OPT answered with our buffer size when the query had
//!   one; BADVERS for version > 0; the DO bit copied (RFC 3225).
//! - A, AAAA and SRV answers of several records carry the window of the set
//!   that [`Limits::spread`] and [`Limits::pick`] choose: rotated from a
//!   random record, at most `max_answers` of them (the additional section
//!   holds the addresses of the chosen SRV targets only).
//! - ANY over UDP is answered with one RRset (RFC 8482 §4.2); in full over TCP.
//! - Over UDP, additional records are dropped first, and TC is set only when
//!   the answer itself does not fit (RFC 2181 §9).
//! - SERVFAIL until the first snapshot is loaded.
//! - FORMERR for what does not parse or has not exactly one question (more
//!   than one is FORMERR before any other check, RFC 9619, so no answer
//!   echoes several questions); NOTIMP for opcodes other than QUERY;
//!   responses are never answered.

use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{DNSClass, LowerName, RData, Record, RecordType};

use crate::config::Spread;
use crate::wire::Transport;
use crate::zone::{Snapshot, Synthesized};

/// The smallest UDP payload every client accepts (RFC 1035 §4.2.1).
const MIN_UDP: u16 = 512;

/// Per-server answer settings, and the one per-query choice they leave.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest UDP response, and the EDNS buffer size advertised.
    pub max_udp_payload: u16,
    /// How answers of several A, AAAA or SRV records spread load.
    pub spread: Spread,
    /// Which window of such a set this answer carries (see
    /// [`Spread::window`]): the dispatch draws it at random for each query,
    /// and the fast path and this function take the same one, so that both
    /// give the same bytes.
    pub pick: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_udp_payload: 1232,
            spread: Spread::default(),
            pick: 0,
        }
    }
}

impl Limits {
    /// These limits with a fresh random `pick`, for one query.
    pub fn for_query(&self) -> Limits {
        Limits {
            pick: fastrand::u32(..),
            ..*self
        }
    }
}

/// The types whose answers spread load: one record per task.
pub fn spreads(rtype: RecordType) -> bool {
    matches!(rtype, RecordType::A | RecordType::AAAA | RecordType::SRV)
}

/// Answers the wire-format `request`. Returns the wire-format response, or
/// `None` when the packet must be dropped (too short to carry an ID, or not a
/// query at all).
pub fn respond(
    snapshot: Option<&Snapshot>,
    request: &[u8],
    transport: Transport,
    limits: &Limits,
) -> Option<Vec<u8>> {
    let (mut message, limit) = respond_message(snapshot, request, transport, limits)?;
    Some(fit(&mut message, limit))
}

/// Like [`respond`], but returns the response message and the size it must
/// fit in, for fronts that encode themselves. [`fit`] it before sending.
pub fn respond_message(
    snapshot: Option<&Snapshot>,
    request: &[u8],
    transport: Transport,
    limits: &Limits,
) -> Option<(Message, usize)> {
    match Message::from_vec(request) {
        Ok(query) => answer(snapshot, &query, transport, limits),
        Err(_) => format_error(request).map(|m| (m, usize::from(MIN_UDP))),
    }
}

/// FORMERR for a packet that does not parse, if it has a header to answer
/// to: the ID and opcode echoed, no question.
fn format_error(request: &[u8]) -> Option<Message> {
    if request.len() < 12 || request[2] & 0x80 != 0 {
        return None;
    }
    let id = u16::from_be_bytes([request[0], request[1]]);
    let op_code = OpCode::from_u8((request[2] >> 3) & 0x0f);
    let mut response = Message::response(id, op_code);
    response.metadata.response_code = ResponseCode::FormErr;
    Some(response)
}

/// Answers a parsed query: the message and the size it must fit in. Before
/// the first snapshot is loaded every query gets SERVFAIL (as a server whose
/// zone is not loaded yet answers), never a negative answer resolvers would
/// cache.
pub fn answer(
    snapshot: Option<&Snapshot>,
    query: &Message,
    transport: Transport,
    limits: &Limits,
) -> Option<(Message, usize)> {
    if query.metadata.message_type != MessageType::Query {
        return None;
    }
    let mut response = Message::response(query.metadata.id, query.metadata.op_code);
    response.metadata.recursion_desired = query.metadata.recursion_desired;
    response.metadata.checking_disabled = query.metadata.checking_disabled;
    let limit = size_limit(query.edns.as_ref(), transport, limits);

    if let Some(edns) = &query.edns {
        let mut ours = Edns::new();
        ours.set_max_payload(limits.max_udp_payload.max(MIN_UDP));
        ours.set_version(0);
        ours.set_dnssec_ok(edns.flags().dnssec_ok);
        response.edns = Some(ours);
    }
    if query.queries.len() > 1 {
        // Malformed whatever the opcode or EDNS version (RFC 9619): checked
        // first, so that no error answer echoes several questions.
        response.metadata.response_code = ResponseCode::FormErr;
        return Some((response, limit));
    }
    if let Some(edns) = &query.edns
        && edns.version() > 0
    {
        response.queries = query.queries.clone();
        response.metadata.response_code = ResponseCode::BADVERS;
        return Some((response, limit));
    }
    if query.metadata.op_code != OpCode::Query {
        response.queries = query.queries.clone();
        response.metadata.response_code = ResponseCode::NotImp;
        return Some((response, limit));
    }
    let [question] = query.queries.as_slice() else {
        response.metadata.response_code = ResponseCode::FormErr;
        return Some((response, limit));
    };
    response.queries = vec![question.clone()];
    let Some(snapshot) = snapshot else {
        response.metadata.response_code = ResponseCode::ServFail;
        return Some((response, limit));
    };

    let qname = LowerName::new(question.name());
    let in_class = matches!(question.query_class(), DNSClass::IN | DNSClass::ANY);
    if !in_class || !snapshot.origin().zone_of(&qname) {
        response.metadata.response_code = ResponseCode::Refused;
        return Some((response, limit));
    }
    let qtype = question.query_type();
    if matches!(qtype, RecordType::AXFR | RecordType::IXFR) {
        // A transfer reaches here only when `xfr` did not take it (no
        // transfer access configured, or a front without transfers): refuse,
        // as for an ACL miss (RFC 5936 §2.2.1).
        response.metadata.response_code = ResponseCode::Refused;
        return Some((response, limit));
    }

    response.metadata.authoritative = true;
    let Some(node) = snapshot.node(&qname) else {
        // A reverse zone's fallback answers addresses it has no task for.
        match snapshot.synthesized(&qname) {
            Some(Synthesized::Ptr(mut ptr))
                if matches!(qtype, RecordType::PTR | RecordType::ANY) =>
            {
                ptr.name = question.name().clone();
                response.answers.push(*ptr);
            }
            Some(_) => response.authorities.push(snapshot.negative_soa()),
            None => {
                response.metadata.response_code = ResponseCode::NXDomain;
                response.authorities.push(snapshot.negative_soa());
            }
        }
        return Some((response, limit));
    };

    if qtype == RecordType::ANY {
        let mut sets = node.rrsets();
        match transport {
            Transport::Udp => response.answers.extend(sets.next().into_iter().flatten()),
            Transport::Tcp => response.answers.extend(sets.flatten()),
        }
    } else if let Some(mut set) = node.rrset(qtype) {
        if spreads(qtype) {
            let (first, count) = limits.spread.window(set.len(), limits.pick);
            set.rotate_left(first);
            set.truncate(count);
        }
        response.answers.extend(set);
    }
    // Owners as the question wrote them (RFC 4343 §4.1: case is kept where
    // it can be): the answer's owner names then compress to the question.
    for record in &mut response.answers {
        record.name = question.name().clone();
    }
    if response.answers.is_empty() {
        response.authorities.push(snapshot.negative_soa());
    } else {
        add_additionals(snapshot, &mut response);
    }
    Some((response, limit))
}

/// The address records of SRV targets and NS names that are in the zone.
fn add_additionals(snapshot: &Snapshot, response: &mut Message) {
    let mut targets: Vec<LowerName> = response
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::SRV(srv) => Some(LowerName::new(&srv.target)),
            RData::NS(ns) => Some(LowerName::new(&ns.0)),
            _ => None,
        })
        .collect();
    targets.sort();
    targets.dedup();
    for target in targets {
        if let Some(node) = snapshot.node(&target) {
            for rtype in [RecordType::A, RecordType::AAAA] {
                response
                    .additionals
                    .extend(node.rrset(rtype).into_iter().flatten());
            }
        }
    }
}

/// The largest response the client takes: 64 KiB over TCP; over UDP its EDNS
/// buffer size (at least 512, at most ours), or 512 without EDNS.
fn size_limit(edns: Option<&Edns>, transport: Transport, limits: &Limits) -> usize {
    match transport {
        Transport::Tcp => usize::from(u16::MAX),
        Transport::Udp => usize::from(match edns {
            Some(e) => e
                .max_payload()
                .clamp(MIN_UDP, limits.max_udp_payload.max(MIN_UDP)),
            None => MIN_UDP,
        }),
    }
}

/// Encodes `response` within `limit` bytes: whole if it fits; else without
/// the additional section; else with TC set and no records (RFC 2181 §9: a
/// client must not take a partial RRset for the whole). The message is left
/// as sent.
pub fn fit(response: &mut Message, limit: usize) -> Vec<u8> {
    if let Some(bytes) = encode_within(response, limit) {
        return bytes;
    }
    response.additionals.clear();
    if let Some(bytes) = encode_within(response, limit) {
        return bytes;
    }
    response.answers.clear();
    response.authorities.clear();
    response.metadata.truncation = true;
    if let Some(bytes) = encode_within(response, limit) {
        return bytes;
    }
    // Only the question and OPT are left; they came in a packet of this size,
    // so this is unreachable in practice. Still answer rather than go silent.
    response.queries.clear();
    response.metadata.response_code = ResponseCode::ServFail;
    response.to_vec().unwrap_or_default()
}

fn encode_within(message: &Message, limit: usize) -> Option<Vec<u8>> {
    message.to_vec().ok().filter(|bytes| bytes.len() <= limit)
}

/// Records of `response` in the order they were sent, for tests and tools.
pub fn all_records(response: &Message) -> impl Iterator<Item = &Record> {
    response
        .answers
        .iter()
        .chain(&response.authorities)
        .chain(&response.additionals)
}

#[cfg(test)]
#[path = "answer/tests.rs"]
mod tests;

#[cfg(test)]
#[path = "answer/fuzz.rs"]
mod fuzz;
