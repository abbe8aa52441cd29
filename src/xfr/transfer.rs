//! AXFR (RFC 5936) and IXFR (RFC 1995) responses: the records to send, in
//! order, split into as many messages as they need.

use hickory_proto::op::{Edns, Message, OpCode, ResponseCode};
use hickory_proto::rr::{Record, RecordType};
use hickory_proto::serialize::binary::BinEncodable;

use super::journal::{Journal, is_current, soa_serial};
use crate::dns::answer::Transport;
use crate::zone::Snapshot;

/// Room for records in one TCP message: the 64 KiB limit less the header,
/// the question and a TSIG record. Records are measured uncompressed, so the
/// message (compressed) is smaller still.
const MESSAGE_BUDGET: usize = 60_000;

/// What a transfer query gets.
#[derive(Debug, PartialEq)]
pub enum Reply {
    /// The response messages, in order.
    Messages(Vec<Message>),
    /// The query is malformed (e.g. IXFR without an SOA): this rcode.
    Error(ResponseCode),
}

/// Whether `query` asks for a zone transfer.
pub fn is_transfer(query: &Message) -> bool {
    query
        .queries
        .first()
        .is_some_and(|q| matches!(q.query_type(), RecordType::AXFR | RecordType::IXFR))
}

/// The records answering `query`, an AXFR or IXFR for the snapshot's zone
/// (the caller checked the name and the access rights).
pub fn records(
    snapshot: &Snapshot,
    journal: &Journal,
    query: &Message,
) -> Result<Vec<Record>, ResponseCode> {
    let qtype = query.queries.first().map(|q| q.query_type());
    let soa = snapshot.soa();
    if qtype != Some(RecordType::IXFR) {
        return Ok(full(snapshot));
    }
    // RFC 1995 §3: the client's SOA is in the authority section.
    let Some(client) = query
        .authorities
        .iter()
        .find(|r| r.record_type() == RecordType::SOA)
        .map(soa_serial)
    else {
        return Err(ResponseCode::FormErr);
    };
    let current = snapshot.serial();
    if is_current(client, current) {
        return Ok(vec![soa.clone()]);
    }
    // The journal may trail the snapshot by one publication; a chain that
    // does not end at this snapshot's serial is not used.
    let chain = journal
        .since(client)
        .filter(|diffs| diffs.last().is_some_and(|d| d.to_serial() == current));
    let Some(diffs) = chain else {
        // RFC 1995 §4: an unknown or too old serial gets the whole zone.
        return Ok(full(snapshot));
    };
    let mut out = vec![soa.clone()];
    for diff in diffs {
        out.push(diff.from.clone());
        out.extend(diff.removed.iter().cloned());
        out.push(diff.to.clone());
        out.extend(diff.added.iter().cloned());
    }
    out.push(soa.clone());
    Ok(out)
}

/// The whole zone, ending with the SOA again (RFC 5936 §2.2).
fn full(snapshot: &Snapshot) -> Vec<Record> {
    let mut out = snapshot.records();
    out.push(snapshot.soa().clone());
    out
}

/// The response to a transfer query: over TCP the records in as many
/// messages as needed; over UDP (IXFR only) one message if it fits `limit`,
/// else the SOA alone, which tells the client to retry over TCP (RFC 1995 §2).
pub fn respond(
    snapshot: &Snapshot,
    journal: &Journal,
    query: &Message,
    transport: Transport,
    limit: usize,
) -> Reply {
    let records = match records(snapshot, journal, query) {
        Ok(records) => records,
        Err(code) => return Reply::Error(code),
    };
    match transport {
        Transport::Tcp => Reply::Messages(split(query, records)),
        Transport::Udp => {
            let soa_only = records.first().cloned().into_iter().collect::<Vec<_>>();
            let whole = message(query, true, records);
            let fits = whole.to_vec().is_ok_and(|b| b.len() <= limit);
            Reply::Messages(vec![if fits {
                whole
            } else {
                message(query, true, soa_only)
            }])
        }
    }
}

/// Splits `records` into messages of at most [`MESSAGE_BUDGET`] bytes of
/// records each.
fn split(query: &Message, records: Vec<Record>) -> Vec<Message> {
    let mut messages = Vec::new();
    let mut batch = Vec::new();
    let mut size = 0;
    for record in records {
        let length = record.to_bytes().map(|b| b.len()).unwrap_or(MESSAGE_BUDGET);
        if !batch.is_empty() && size + length > MESSAGE_BUDGET {
            messages.push(message(
                query,
                messages.is_empty(),
                std::mem::take(&mut batch),
            ));
            size = 0;
        }
        size += length;
        batch.push(record);
    }
    messages.push(message(query, messages.is_empty(), batch));
    messages
}

/// One response message of a transfer: the question and OPT in the first
/// only (RFC 5936 §2.2).
fn message(query: &Message, first: bool, answers: Vec<Record>) -> Message {
    let mut response = Message::response(query.metadata.id, OpCode::Query);
    response.metadata.authoritative = true;
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
