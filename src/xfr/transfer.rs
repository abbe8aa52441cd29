//! AXFR (RFC 5936) and IXFR (RFC 1995) responses: the records to send, in
//! order, split into as many messages as they need.

use hickory_proto::op::{Edns, Message, OpCode, ResponseCode};
use hickory_proto::rr::{LowerName, Record, RecordType};
use hickory_proto::serialize::binary::BinEncodable;

use super::journal::{Journal, is_current, soa_serial};
use crate::wire::Transport;
use crate::zone::Snapshot;

/// Room for records in one TCP message: the 64 KiB limit less the header,
/// the question and a TSIG record. Records are measured uncompressed, so the
/// message (compressed) is smaller still.
const MESSAGE_BUDGET: usize = 60_000;

/// Encodes one message of a transfer: plainly, or signed with TSIG (each
/// signature chains to the previous one, so messages are encoded in order).
pub type Encoder<'a> = dyn FnMut(&mut Message) -> Result<Vec<u8>, String> + 'a;

/// Why a transfer query gets no transfer.
#[derive(Debug, PartialEq)]
pub enum Failure {
    /// The query is malformed (e.g. IXFR without an SOA): this rcode.
    Code(ResponseCode),
    /// A message could not be encoded or signed.
    Encode(String),
}

/// What a transfer sends: the whole zone (then its SOA again), or records
/// listed here.
enum Source {
    Zone,
    Records(Vec<Record>),
}

/// Whether `query` asks for a zone transfer.
pub fn is_transfer(query: &Message) -> bool {
    query
        .queries
        .first()
        .is_some_and(|q| matches!(q.query_type(), RecordType::AXFR | RecordType::IXFR))
}

/// What answers `query`, an AXFR or IXFR for the snapshot's zone (the caller
/// checked the name and the access rights).
fn source(snapshot: &Snapshot, journal: &Journal, query: &Message) -> Result<Source, ResponseCode> {
    let qtype = query.queries.first().map(|q| q.query_type());
    if qtype != Some(RecordType::IXFR) {
        return Ok(Source::Zone);
    }
    // RFC 1995 §3: the client's SOA of this zone is in the authority
    // section; an SOA of another name is malformed (Knot: FORMERR too).
    let Some(client) = query
        .authorities
        .iter()
        .find(|r| r.record_type() == RecordType::SOA)
        .filter(|r| LowerName::new(&r.name) == *snapshot.origin())
        .map(soa_serial)
    else {
        return Err(ResponseCode::FormErr);
    };
    let soa = snapshot.soa();
    let current = snapshot.serial();
    if is_current(client, current) {
        return Ok(Source::Records(vec![soa.clone()]));
    }
    // The journal may trail the snapshot by one publication; a chain that
    // does not end at this snapshot's serial is not used.
    let chain = journal
        .since(client)
        .filter(|diffs| diffs.last().is_some_and(|d| d.to_serial() == current));
    let Some(diffs) = chain else {
        // RFC 1995 §4: an unknown or too old serial gets the whole zone.
        return Ok(Source::Zone);
    };
    let mut out = vec![soa.clone()];
    for diff in diffs {
        out.push(diff.from.clone());
        out.extend(diff.removed.iter().cloned());
        out.push(diff.to.clone());
        out.extend(diff.added.iter().cloned());
    }
    out.push(soa.clone());
    Ok(Source::Records(out))
}

/// The response to a transfer query, encoded: over TCP the records in as
/// many messages as needed, each encoded as soon as it is full, so that a
/// large zone is never held whole as hickory records; over UDP (IXFR only)
/// one message if it fits `limit`, else the SOA alone, which tells the
/// client to retry over TCP (RFC 1995 §2).
pub fn respond(
    snapshot: &Snapshot,
    journal: &Journal,
    query: &Message,
    transport: Transport,
    limit: usize,
    encode: &mut Encoder<'_>,
) -> Result<Vec<Vec<u8>>, Failure> {
    let source = source(snapshot, journal, query).map_err(Failure::Code)?;
    let mut records: Box<dyn Iterator<Item = Record> + '_> = match source {
        // RFC 5936 §2.2: SOA, everything else, SOA.
        Source::Zone => Box::new(
            snapshot
                .records_iter()
                .chain(std::iter::once(snapshot.soa().clone())),
        ),
        Source::Records(records) => Box::new(records.into_iter()),
    };
    let mut encoded = |mut message: Message| encode(&mut message).map_err(Failure::Encode);
    match transport {
        Transport::Tcp => {
            let mut messages = Vec::new();
            let mut batch = Vec::new();
            let mut size = 0;
            for record in records {
                let length = record.to_bytes().map(|b| b.len()).unwrap_or(MESSAGE_BUDGET);
                if !batch.is_empty() && size + length > MESSAGE_BUDGET {
                    let full = std::mem::take(&mut batch);
                    messages.push(encoded(message(query, messages.is_empty(), full))?);
                    size = 0;
                }
                size += length;
                batch.push(record);
            }
            messages.push(encoded(message(query, messages.is_empty(), batch))?);
            Ok(messages)
        }
        Transport::Udp => {
            // No more than could fit: a record takes at least 11 bytes.
            let taken: Vec<Record> = records.by_ref().take(limit / 11 + 1).collect();
            let soa_only: Vec<Record> = taken.first().cloned().into_iter().collect();
            let whole = message(query, true, taken);
            let fits = records.next().is_none() && whole.to_vec().is_ok_and(|b| b.len() <= limit);
            let chosen = if fits {
                whole
            } else {
                message(query, true, soa_only)
            };
            Ok(vec![encoded(chosen)?])
        }
    }
}

/// One response message of a transfer: the question and OPT in the first
/// only (RFC 5936 §2.2); RD and CD copied in each (RFC 1035 §4.1.1).
fn message(query: &Message, first: bool, answers: Vec<Record>) -> Message {
    let mut response = Message::response(query.metadata.id, OpCode::Query);
    response.metadata.authoritative = true;
    response.metadata.recursion_desired = query.metadata.recursion_desired;
    response.metadata.checking_disabled = query.metadata.checking_disabled;
    if first {
        response.queries = query.queries.clone();
        if let Some(edns) = &query.edns {
            let mut ours = Edns::new();
            ours.set_max_payload(1232);
            ours.set_dnssec_ok(edns.flags().dnssec_ok);
            response.edns = Some(ours);
        }
    }
    response.answers = answers;
    response
}

#[cfg(test)]
#[path = "transfer/tests.rs"]
mod tests;
