//! The UDP front: one socket per core on each listen address (SO_REUSEPORT,
//! the kernel spreads clients over them), each served by its own thread in a
//! blocking receive → answer → send loop.
//!
//! A query is answered from the snapshot's pre-rendered table when it can be
//! ([`crate::dns::fast`]: no allocation, a few copies), else by
//! [`answer::respond`]. Datagrams are received and sent in batches
//! (`recvmmsg`/`sendmmsg`, see [`batch`]) so that a busy socket costs two
//! system calls per batch rather than two per query.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use socket2::{Domain, Protocol, Socket, Type};

use crate::dns::answer::{self, Limits, Transport};
use crate::dns::fast;
use crate::zone::SharedZone;
use batch::Batch;

mod batch;

/// Binds `count` sockets to `address` that share it through SO_REUSEPORT.
/// The first socket fixes the port when `address` asks for any port.
pub fn bind(address: SocketAddr, count: usize) -> anyhow::Result<Vec<std::net::UdpSocket>> {
    let mut sockets = Vec::with_capacity(count);
    let mut address = address;
    for _ in 0..count.max(1) {
        let socket = Socket::new(
            Domain::for_address(address),
            Type::DGRAM,
            Some(Protocol::UDP),
        )
        .with_context(|| format!("cannot open a udp socket for {address}"))?;
        socket
            .set_reuse_port(true)
            .with_context(|| format!("cannot set SO_REUSEPORT on udp {address}"))?;
        // Room for bursts while the thread is busy: queries are small.
        let _ = socket.set_recv_buffer_size(4 << 20);
        // A blocked receive wakes up this often to look at the stop flag.
        socket
            .set_read_timeout(Some(STOP_CHECK))
            .with_context(|| format!("cannot set a receive timeout on udp {address}"))?;
        socket
            .bind(&address.into())
            .with_context(|| format!("cannot listen on udp {address}"))?;
        let socket: std::net::UdpSocket = socket.into();
        address = socket
            .local_addr()
            .with_context(|| format!("no local address for udp {address}"))?;
        sockets.push(socket);
    }
    Ok(sockets)
}

/// How soon an idle loop notices that it must stop.
const STOP_CHECK: Duration = Duration::from_millis(100);

/// Serves one socket until `stop` is set (then the socket is closed, within
/// [`STOP_CHECK`]), or the socket fails for good.
pub fn run(
    socket: std::net::UdpSocket,
    zone: SharedZone,
    limits: Limits,
    transfers: Option<std::sync::Arc<crate::xfr::Transfers>>,
    rrl: crate::dns::rrl::RrlConfig,
    stop: &AtomicBool,
) -> anyhow::Result<()> {
    let mut limiter = crate::dns::rrl::Limiter::new(rrl);
    let limited = metrics::counter!("ecs_dns_rrl_total", "action" => "drop");
    let slipped = metrics::counter!("ecs_dns_rrl_total", "action" => "slip");
    let queries = metrics::counter!("dns_queries_total", "transport" => "udp", "path" => "fast");
    let slow = metrics::counter!("dns_queries_total", "transport" => "udp", "path" => "full");
    let dropped = metrics::counter!("dns_dropped_total", "transport" => "udp");
    let mut batch = Batch::new();
    loop {
        let received = batch.receive(&socket)?;
        if stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        if received == 0 {
            continue;
        }
        let started = std::time::Instant::now();
        let snapshot = zone.load();
        let snapshot = snapshot.as_deref();
        let (mut fast, mut full, mut none) = (0u64, 0u64, 0u64);
        for i in 0..received {
            let peer = batch.peer(i);
            let (request, response) = batch.slot(i);
            let answered = match snapshot {
                Some(s) if fast::answer(s, request, Transport::Udp, &limits, response) => {
                    fast += 1;
                    true
                }
                // IXFR over UDP (RFC 1995 §2); AXFR is refused there.
                _ => match transfer_reply(transfers.as_deref(), snapshot, request, peer, &limits)
                    .or_else(|| answer::respond(snapshot, request, Transport::Udp, &limits))
                {
                    Some(bytes) => {
                        full += 1;
                        *response = bytes;
                        true
                    }
                    None => {
                        none += 1;
                        false
                    }
                },
            };
            let answered =
                answered && rate_limit(&mut limiter, peer, request, response, &limited, &slipped);
            if answered {
                crate::ops::metrics::record_response(response, started.elapsed());
            }
            batch.set_answered(i, answered);
        }
        batch.send(&socket, received);
        queries.increment(fast);
        slow.increment(full);
        dropped.increment(none);
    }
}

/// Applies response-rate limiting to one answer: `false` to drop it; a
/// slipped answer is truncated in place.
fn rate_limit(
    limiter: &mut crate::dns::rrl::Limiter,
    peer: Option<std::net::IpAddr>,
    request: &[u8],
    response: &mut Vec<u8>,
    limited: &metrics::Counter,
    slipped: &metrics::Counter,
) -> bool {
    use crate::dns::rrl::{self, Action};
    let Some(peer) = peer.filter(|_| limiter.is_enabled()) else {
        return true;
    };
    match limiter.check(peer, std::time::Instant::now()) {
        Action::Send => true,
        Action::Drop => {
            limited.increment(1);
            false
        }
        Action::Slip => match crate::dns::question_end(request) {
            Some(end) => {
                slipped.increment(1);
                rrl::slip(response, end);
                true
            }
            None => {
                limited.increment(1);
                false
            }
        },
    }
}

/// The one-message answer to a transfer query over UDP, if it is one.
fn transfer_reply(
    transfers: Option<&crate::xfr::Transfers>,
    snapshot: Option<&crate::zone::Snapshot>,
    request: &[u8],
    peer: Option<std::net::IpAddr>,
    limits: &Limits,
) -> Option<Vec<u8>> {
    let messages = transfers?.respond(
        snapshot,
        request,
        peer?,
        Transport::Udp,
        limits.max_udp_payload,
    )?;
    messages.into_iter().next()
}
