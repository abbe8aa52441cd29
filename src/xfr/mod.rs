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

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::tsig::TsigError;
use hickory_proto::rr::{LowerName, RecordType};

use crate::config::{NotifyTarget, TransferConfig};
use crate::wire::Transport;
use crate::zone::Snapshot;
use access::{Access, Decision, Verified};
use journal::{Diff, Journal, JournalLimits};

/// The primary's transfer state: a journal per zone served (the forward
/// zone and each reverse zone), fed by every publication, and the rules to
/// answer AXFR/IXFR with.
pub struct Transfers {
    access: Access,
    /// Secondaries to NOTIFY on every new serial, of every zone.
    notify: Vec<NotifyTarget>,
    journal_limits: JournalLimits,
    /// By zone origin. Replaced whole on a publication (a few zones).
    journals: ArcSwap<BTreeMap<LowerName, Arc<Journal>>>,
    /// By zone origin: the snapshot its journal ends at.
    last: Mutex<BTreeMap<LowerName, Arc<Snapshot>>>,
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
            journals: ArcSwap::default(),
            last: Mutex::new(BTreeMap::new()),
        }
    }

    /// Called with every published snapshot of each zone (in order):
    /// records the diff in that zone's journal and sends NOTIFY for the
    /// zone when its serial changed.
    pub fn observe(&self, snapshot: &Arc<Snapshot>) {
        let mut all = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let last = all.get(snapshot.origin());
        let changed = last.is_none_or(|l| l.serial() != snapshot.serial());
        // With no one allowed to transfer, no IXFR is ever answered: a
        // journal (up to 100 000 hickory records) would be memory for
        // nothing.
        let journaled = self.access.is_enabled();
        if let Some(previous) = last.filter(|_| changed && journaled) {
            let diff = Diff::between_snapshots(previous, snapshot);
            let mut journals = BTreeMap::clone(&self.journals.load());
            let journal = journals.entry(snapshot.origin().clone()).or_default();
            *journal = Arc::new(journal.with(diff, self.journal_limits));
            self.journals.store(Arc::new(journals));
        }
        all.insert(snapshot.origin().clone(), snapshot.clone());
        drop(all);
        if changed && !self.notify.is_empty() {
            let soa = snapshot.soa();
            notify::send_all(&self.notify, &soa.name, soa);
        }
    }

    /// Forgets the zones not in `served` (a reload took a reverse zone
    /// away): their last snapshots hold a whole inventory each.
    pub fn keep_only<'a>(&self, served: impl IntoIterator<Item = &'a LowerName>) {
        let served: Vec<&LowerName> = served.into_iter().collect();
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        last.retain(|origin, _| served.contains(&origin));
        let journals = self.journals.load();
        if journals.keys().any(|origin| !served.contains(&origin)) {
            let mut kept = BTreeMap::clone(&journals);
            kept.retain(|origin, _| served.contains(&origin));
            self.journals.store(Arc::new(kept));
        }
    }

    /// Answers `request` if it is a zone transfer (AXFR, IXFR), with the
    /// wire messages to send in order; `None` when it is not one, for the
    /// normal answer path. Over UDP the answer fits the client's EDNS buffer
    /// (at most `max_udp_payload`), or 512 bytes. Every error answer echoes
    /// the question, copies RD and CD, and has an OPT record when the query
    /// had one; every message of the answer to a signed request is signed.
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
        if query.metadata.message_type != MessageType::Query
            || query.metadata.op_code != OpCode::Query
            || !transfer::is_transfer(&query)
        {
            return None;
        }
        let payload = max_udp_payload.max(512);
        let limit = usize::from(
            query
                .edns
                .as_ref()
                .map_or(512, |e| e.max_payload().clamp(512, payload)),
        );
        let outcome = self.answer(snapshot, request, &query, peer, transport, limit, payload);
        let label = match &outcome {
            Outcome::Sent(..) => "sent",
            Outcome::Refused(..) => "refused",
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
            Outcome::Refused(messages) => {
                // Anyone can send these: once per 10 s, then a count.
                crate::warn_throttled!(
                    "zone transfer refused",
                    %peer,
                    %qtype,
                    "zone transfer refused: address not in transfer_allow and no TSIG"
                );
                Some(messages)
            }
            Outcome::NotAuth(error, messages) => {
                crate::warn_throttled!(
                    "zone transfer refused: bad TSIG",
                    %peer,
                    %qtype,
                    tsig_error = ?error,
                    "zone transfer refused: bad TSIG"
                );
                Some(messages)
            }
            Outcome::Error(messages) => Some(messages),
        }
    }

    /// Answers a TSIG-signed request that is not a zone transfer (an
    /// ordinary query, a NOTIFY, ...; RFC 8945 §5.3): verifies it, has
    /// `answer` answer it (the parsed query, and the room to leave for the
    /// TSIG record), and signs that answer; or answers NOTAUTH with the TSIG
    /// error. Unsigned requests, and signed ones that do not parse (the
    /// answer function gives them FORMERR), are left to the caller.
    pub fn respond_signed(
        &self,
        request: &[u8],
        max_udp_payload: u16,
        answer: impl FnOnce(&Message, usize) -> Option<Vec<u8>>,
    ) -> Signed {
        if !access::is_signed(request) {
            return Signed::NotSigned;
        }
        let Ok(query) = Message::from_vec(request) else {
            return Signed::NotSigned;
        };
        if query.metadata.message_type != MessageType::Query {
            return Signed::Nothing;
        }
        let now = crate::zone::serial::unix_now();
        let sealed = match self.access.verify(request, &query, now) {
            Verified::Unsigned => return Signed::NotSigned,
            Verified::Valid(mut signer) => match answer(&query, signer.overhead()) {
                Some(bytes) => signer.sign_bytes(bytes),
                None => return Signed::Nothing,
            },
            Verified::Invalid(rejection) => {
                let response = error(&query, ResponseCode::NotAuth, max_udp_payload.max(512));
                response
                    .to_vec()
                    .map_err(|e| e.to_string())
                    .and_then(|bytes| rejection.seal(bytes))
            }
        };
        match sealed {
            Ok(bytes) => Signed::Reply(bytes),
            Err(_) => Signed::Nothing,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn answer(
        &self,
        snapshot: Option<&Snapshot>,
        request: &[u8],
        query: &Message,
        peer: IpAddr,
        transport: Transport,
        limit: usize,
        payload: u16,
    ) -> Outcome {
        let now = crate::zone::serial::unix_now();
        let mut signer = match self.access.check(request, query, peer, now) {
            Decision::Allowed(signer) => signer,
            Decision::Refused => {
                let refused = error(query, ResponseCode::Refused, payload);
                return Outcome::Refused(one(refused.to_vec().map_err(|e| e.to_string())));
            }
            Decision::NotAuth(rejection) => {
                let tsig_error = rejection.error;
                let sealed = error(query, ResponseCode::NotAuth, payload)
                    .to_vec()
                    .map_err(|e| e.to_string())
                    .and_then(|bytes| rejection.seal(bytes));
                return Outcome::NotAuth(tsig_error, one(sealed));
            }
        };
        // From here on, every answer to a signed request is signed.
        let mut fail =
            |code| Outcome::Error(one(encode(&mut signer, &error(query, code, payload))));
        let Some(snapshot) = snapshot else {
            return fail(ResponseCode::ServFail);
        };
        let in_zone = query
            .queries
            .first()
            .is_some_and(|q| LowerName::new(q.name()) == *snapshot.origin());
        if !in_zone {
            // RFC 5936 §2.2.1: not authoritative for that zone.
            return fail(ResponseCode::NotAuth);
        }
        if transport == Transport::Udp
            && query
                .queries
                .first()
                .is_some_and(|q| q.query_type() == RecordType::AXFR)
        {
            // RFC 5936 §4.2: AXFR is not carried over UDP.
            return fail(ResponseCode::FormErr);
        }
        let journals = self.journals.load();
        let empty = Journal::default();
        let journal = journals.get(snapshot.origin()).map_or(&empty, |j| j);
        // Over UDP the TSIG record must fit too.
        let room = signer.as_ref().map_or(0, access::Signer::overhead);
        let limit = limit.saturating_sub(room);
        let mut sign = |message: &mut Message| encode(&mut signer, message);
        let sent = transfer::respond(snapshot, journal, query, transport, limit, &mut sign);
        let code = match sent {
            Ok(messages) => return Outcome::Sent(messages, snapshot.serial()),
            Err(transfer::Failure::Code(code)) => code,
            Err(transfer::Failure::Encode(reason)) => {
                tracing::error!(%reason, "cannot encode a transfer message");
                ResponseCode::ServFail
            }
        };
        Outcome::Error(one(encode(&mut signer, &error(query, code, payload))))
    }
}

/// `message` encoded, and signed when the request was.
fn encode(signer: &mut Option<access::Signer>, message: &Message) -> Result<Vec<u8>, String> {
    match signer {
        Some(signer) => signer.sign(message),
        None => message.to_vec().map_err(|e| e.to_string()),
    }
}

/// What [`Transfers::respond_signed`] made of a request.
#[derive(Debug, PartialEq, Eq)]
pub enum Signed {
    /// Not TSIG-signed (or not parsable): the normal answer path's.
    NotSigned,
    /// Send this (signed, or a NOTAUTH with the TSIG error).
    Reply(Vec<u8>),
    /// Send nothing (not a query).
    Nothing,
}

enum Outcome {
    Sent(Vec<Vec<u8>>, u32),
    Refused(Vec<Vec<u8>>),
    NotAuth(TsigError, Vec<Vec<u8>>),
    Error(Vec<Vec<u8>>),
}

/// One encoded message, or none if it could not be encoded.
fn one(encoded: Result<Vec<u8>, String>) -> Vec<Vec<u8>> {
    encoded.map(|b| vec![b]).unwrap_or_default()
}

/// An error answer: the question echoed (when there is exactly one, RFC
/// 9619), RD and CD copied (RFC 1035 §4.1.1), and our OPT record when the
/// query had one (RFC 6891 §6.1.1), with `payload` and the DO bit copied.
fn error(query: &Message, code: ResponseCode, payload: u16) -> Message {
    let mut response = Message::response(query.metadata.id, query.metadata.op_code);
    response.metadata.response_code = code;
    response.metadata.recursion_desired = query.metadata.recursion_desired;
    response.metadata.checking_disabled = query.metadata.checking_disabled;
    if query.queries.len() == 1 {
        response.queries = query.queries.clone();
    }
    if let Some(edns) = &query.edns {
        let mut ours = Edns::new();
        ours.set_max_payload(payload);
        ours.set_version(0);
        ours.set_dnssec_ok(edns.flags().dnssec_ok);
        response.edns = Some(ours);
    }
    response
}

#[cfg(test)]
mod tests;
