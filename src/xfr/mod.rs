//! Zone transfers and NOTIFY: how standard secondaries (Knot, NSD, BIND, or
//! more ecs-dns) follow one primary, so that only one process polls AWS.
//!
//! - [`journal`]: the recent diffs between serials, for IXFR;
//! - [`transfer`]: AXFR and IXFR responses, split into messages;
//! - [`access`]: who may transfer (prefixes, TSIG);
//! - [`notify`]: NOTIFY to the secondaries on every new serial.

pub mod access;
pub mod journal;
pub mod notify;
pub mod transfer;

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{LowerName, RecordType};

use crate::config::TransferConfig;
use crate::wire::Transport;
use crate::zone::Snapshot;
use access::{Access, Decision};
use journal::{Diff, Journal, JournalLimits};

/// The primary's transfer state: the journal, fed by every publication, and
/// the rules to answer AXFR/IXFR with.
pub struct Transfers {
    access: Access,
    /// Secondaries to NOTIFY on every new serial.
    notify: Vec<SocketAddr>,
    journal_limits: JournalLimits,
    journal: ArcSwap<Journal>,
    /// The snapshot the journal ends at.
    last: Mutex<Option<Arc<Snapshot>>>,
}

impl Transfers {
    pub fn new(config: TransferConfig) -> Transfers {
        Transfers {
            access: Access {
                allow: config.allow,
                keys: config.keys,
            },
            notify: config.notify,
            journal_limits: JournalLimits::default(),
            journal: ArcSwap::default(),
            last: Mutex::new(None),
        }
    }

    /// Called with every published snapshot (in order): records the diff and
    /// sends NOTIFY when the serial changed.
    pub fn observe(&self, snapshot: &Arc<Snapshot>) {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let changed = last
            .as_ref()
            .is_none_or(|l| l.serial() != snapshot.serial());
        if let Some(previous) = last.as_ref().filter(|_| changed) {
            let diff = Diff::between_snapshots(previous, snapshot);
            let journal = self.journal.load().with(diff, self.journal_limits);
            self.journal.store(Arc::new(journal));
        }
        *last = Some(snapshot.clone());
        drop(last);
        if changed && !self.notify.is_empty() {
            let soa = snapshot.soa();
            notify::send_all(&self.notify, &soa.name, soa);
        }
    }

    /// Answers `request` if it is a zone transfer (AXFR, IXFR), with the
    /// wire messages to send in order; `None` when it is not one, for the
    /// normal answer path. Over UDP the answer fits the client's EDNS buffer
    /// (at most `max_udp_payload`), or 512 bytes.
    pub fn respond(
        &self,
        snapshot: Option<&Snapshot>,
        request: &[u8],
        peer: IpAddr,
        transport: Transport,
        max_udp_payload: u16,
    ) -> Option<Vec<Vec<u8>>> {
        // Most queries are not transfers: tell from the wire, before parsing.
        let asked = crate::wire::question::question_type(request)?;
        if asked != u16::from(RecordType::AXFR) && asked != u16::from(RecordType::IXFR) {
            return None;
        }
        let query = Message::from_vec(request).ok()?;
        let limit = usize::from(query.edns.as_ref().map_or(512, |e| {
            e.max_payload().clamp(512, max_udp_payload.max(512))
        }));
        if query.metadata.message_type != MessageType::Query
            || query.metadata.op_code != OpCode::Query
            || !transfer::is_transfer(&query)
        {
            return None;
        }
        let outcome = self.answer(snapshot, request, &query, peer, transport, limit);
        let label = match &outcome {
            Outcome::Sent(..) => "sent",
            Outcome::Refused => "refused",
            Outcome::NotAuth(..) => "notauth",
            Outcome::Error(..) => "error",
        };
        metrics::counter!("ecs_dns_transfers_total", "outcome" => label).increment(1);
        let qtype = query
            .queries
            .first()
            .map(|q| q.query_type().to_string())
            .unwrap_or_default();
        match outcome {
            Outcome::Sent(messages, serial) => {
                let bytes: usize = messages.iter().map(Vec::len).sum();
                tracing::info!(%peer, %qtype, serial, messages = messages.len(), bytes, "zone transfer");
                Some(messages)
            }
            Outcome::Refused => {
                tracing::warn!(%peer, %qtype, "zone transfer refused: address not in transfer_allow and no TSIG");
                Some(error(&query, ResponseCode::Refused, None))
            }
            Outcome::NotAuth(error_name, tsig) => {
                tracing::warn!(%peer, %qtype, tsig_error = %error_name, "zone transfer refused: bad TSIG");
                Some(error(&query, ResponseCode::NotAuth, Some(tsig)))
            }
            Outcome::Error(code) => Some(error(&query, code, None)),
        }
    }

    fn answer(
        &self,
        snapshot: Option<&Snapshot>,
        request: &[u8],
        query: &Message,
        peer: IpAddr,
        transport: Transport,
        limit: usize,
    ) -> Outcome {
        let Some(snapshot) = snapshot else {
            return Outcome::Error(ResponseCode::ServFail);
        };
        let in_zone = query
            .queries
            .first()
            .is_some_and(|q| LowerName::new(q.name()) == *snapshot.origin());
        let mut signer =
            match self
                .access
                .check(request, query, peer, crate::zone::serial::unix_now())
            {
                Decision::Allowed(signer) => signer,
                Decision::Refused => return Outcome::Refused,
                Decision::NotAuth { error, tsig } => {
                    return Outcome::NotAuth(format!("{error:?}"), tsig);
                }
            };
        if !in_zone {
            // RFC 5936 §2.2.1: not authoritative for that zone.
            return Outcome::Error(ResponseCode::NotAuth);
        }
        if transport == Transport::Udp
            && query
                .queries
                .first()
                .is_some_and(|q| q.query_type() == RecordType::AXFR)
        {
            // RFC 5936 §4.2: AXFR is not carried over UDP.
            return Outcome::Error(ResponseCode::FormErr);
        }
        let journal = self.journal.load();
        let mut encode = |message: &mut Message| match &mut signer {
            Some(signer) => signer.sign(message),
            None => message.to_vec().map_err(|e| e.to_string()),
        };
        match transfer::respond(snapshot, &journal, query, transport, limit, &mut encode) {
            Ok(messages) => Outcome::Sent(messages, snapshot.serial()),
            Err(transfer::Failure::Code(code)) => Outcome::Error(code),
            Err(transfer::Failure::Encode(reason)) => {
                tracing::error!(%reason, "cannot encode a transfer message");
                Outcome::Error(ResponseCode::ServFail)
            }
        }
    }
}

enum Outcome {
    Sent(Vec<Vec<u8>>, u32),
    Refused,
    NotAuth(
        String,
        Box<hickory_proto::rr::Record<hickory_proto::rr::rdata::TSIG>>,
    ),
    Error(ResponseCode),
}

/// A one-message error answer echoing the question.
fn error(
    query: &Message,
    code: ResponseCode,
    tsig: Option<Box<hickory_proto::rr::Record<hickory_proto::rr::rdata::TSIG>>>,
) -> Vec<Vec<u8>> {
    let mut response = Message::response(query.metadata.id, query.metadata.op_code);
    response.metadata.response_code = code;
    response.queries = query.queries.clone();
    if let Some(tsig) = tsig {
        response.set_signature(tsig);
    }
    response.to_vec().map(|b| vec![b]).unwrap_or_default()
}
