//! One dispatch for every front (as NSD's `query.c` and hickory's catalog
//! have one): a request's bytes in, its reply out. The pre-rendered answers
//! first, then transfers (AXFR and IXFR, when transfers are on), then
//! TSIG-signed requests (verified and signed by `xfr`), then the answer
//! function; response-rate limiting for UDP; the counters. The fronts only
//! move bytes between sockets and this.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use crate::dns::answer::{self, Limits};
use crate::dns::{Served, SharedZone, fast};
use crate::query_counters::{self as counters, Path};
use crate::wire::Transport;
use crate::wire::question::question_end;
use crate::xfr::{Signed, Transfers};

use super::rrl::{self, Action, Limiter, RrlConfig};

/// How a front times its answers for the latency histogram.
#[derive(Debug, Clone, Copy)]
pub enum Timing {
    /// One request at a time, received at this instant: timed when its
    /// answer is ready.
    Since(Instant),
    /// One of a batch that the front times as a whole, one clock read for
    /// all its answers ([`counters::record_latency`]): on the VM of
    /// `docs/performance.md` a read is about 40 ns, against 90-180 ns for a
    /// pre-rendered answer.
    Batch,
}

/// What to send back for one request.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    /// Nothing: not a query, or dropped by response-rate limiting.
    Nothing,
    /// One message, in the buffer given to [`Dispatch::serve_one`].
    One,
    /// A zone transfer over TCP: these messages, in order, each with its
    /// own length prefix.
    Transfer(Vec<Vec<u8>>),
}

/// What every front answers with: the published zone, the answer limits,
/// and the transfer state (when transfers are configured).
#[derive(Clone)]
pub struct Dispatch {
    zone: SharedZone,
    limits: Limits,
    transfers: Option<Arc<Transfers>>,
    /// Response-rate limiting of UDP answers, one table for every socket.
    rrl: Arc<Limiter>,
}

impl Dispatch {
    pub fn new(
        zone: SharedZone,
        limits: Limits,
        transfers: Option<Arc<Transfers>>,
        rrl: RrlConfig,
    ) -> Dispatch {
        Dispatch {
            zone,
            limits,
            transfers,
            rrl: Arc::new(Limiter::new(rrl)),
        }
    }

    /// The zone as published now; a front loads it once per batch of
    /// requests and hands it to [`Dispatch::serve_one`].
    pub fn load(&self) -> arc_swap::Guard<Option<Arc<Served>>> {
        self.zone.load()
    }

    /// Answers `request` from `peer` over `transport` with the zone
    /// `served`; a one-message reply is written to `response`. UDP answers
    /// are rate-limited when RRL is on (TCP is not: its source address
    /// cannot be spoofed). `timing` says who times it.
    pub fn serve_one(
        &self,
        served: Option<&Served>,
        request: &[u8],
        peer: Option<IpAddr>,
        transport: Transport,
        response: &mut Vec<u8>,
        timing: Timing,
    ) -> Reply {
        let (reply, path) = self.answer(served, request, peer, transport, response);
        if reply == Reply::Nothing {
            counters::record_dropped(transport, 1);
            return reply;
        }
        if let (Transport::Udp, Some(peer)) = (transport, peer)
            && !rate_limit(&self.rrl, peer, request, response)
        {
            return Reply::Nothing;
        }
        counters::record_path(transport, path, 1);
        match &reply {
            Reply::Transfer(messages) => {
                if let Some(first) = messages.first() {
                    counters::record_response(first);
                }
            }
            _ => counters::record_response(response),
        }
        if let Timing::Since(received) = timing {
            counters::record_latency(received.elapsed(), 1);
        }
        reply
    }

    fn answer(
        &self,
        served: Option<&Served>,
        request: &[u8],
        peer: Option<IpAddr>,
        transport: Transport,
        response: &mut Vec<u8>,
    ) -> (Reply, Path) {
        // The reverse zone the question is in, else the forward zone.
        let served = served.map(|s| s.zone_for(request));
        let snapshot = served.map(|s| s.snapshot().as_ref());
        // One random window of a rotated set for this query, the same for
        // the fast path and the answer function.
        let limits = self.limits.for_query();
        if let Some(served) = served
            && fast::answer(served, request, transport, &limits, response)
        {
            return (Reply::One, Path::Fast);
        }
        if let (Some(transfers), Some(peer)) = (&self.transfers, peer)
            && let Some(mut messages) = transfers.respond(
                snapshot,
                request,
                peer,
                transport,
                self.limits.max_udp_payload,
            )
        {
            // Over UDP a transfer is one message (IXFR, RFC 1995 §2).
            return match transport {
                Transport::Tcp => (Reply::Transfer(messages), Path::Full),
                Transport::Udp if messages.is_empty() => (Reply::Nothing, Path::Full),
                Transport::Udp => {
                    *response = messages.swap_remove(0);
                    (Reply::One, Path::Full)
                }
            };
        }
        // A TSIG-signed request (rare: a secondary's SOA refresh, a signed
        // NOTIFY) is verified and its answer signed (RFC 8945 §5.3). The
        // fast path never takes one: it reads at most an OPT record.
        if let Some(transfers) = &self.transfers {
            let signed =
                transfers.respond_signed(request, self.limits.max_udp_payload, |query, room| {
                    let (mut message, limit) = answer::answer(snapshot, query, transport, &limits)?;
                    Some(answer::fit(&mut message, limit.saturating_sub(room)))
                });
            match signed {
                Signed::NotSigned => {}
                Signed::Reply(bytes) => {
                    *response = bytes;
                    return (Reply::One, Path::Full);
                }
                Signed::Nothing => return (Reply::Nothing, Path::Full),
            }
        }
        match answer::respond(snapshot, request, transport, &limits) {
            Some(bytes) => {
                *response = bytes;
                (Reply::One, Path::Full)
            }
            None => (Reply::Nothing, Path::Full),
        }
    }
}

/// Applies response-rate limiting to one answer: `false` to drop it; a
/// slipped answer is truncated in place.
fn rate_limit(limiter: &Limiter, peer: IpAddr, request: &[u8], response: &mut Vec<u8>) -> bool {
    if !limiter.is_enabled() {
        return true;
    }
    match limiter.check(peer, Instant::now()) {
        Action::Send => true,
        Action::Drop => {
            metrics::counter!("ecs_dns_rrl_total", "action" => "drop").increment(1);
            false
        }
        Action::Slip => match question_end(request) {
            Some(end) => {
                metrics::counter!("ecs_dns_rrl_total", "action" => "slip").increment(1);
                rrl::slip(response, end);
                true
            }
            None => {
                metrics::counter!("ecs_dns_rrl_total", "action" => "drop").increment(1);
                false
            }
        },
    }
}
