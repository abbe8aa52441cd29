//! Network fronts: they take requests off sockets and hand their bytes to
//! one [`dispatch::Dispatch`], which alone decides the reply (transfer,
//! pre-rendered answer or the answer function, RRL, counters).
//!
//! Two fronts: our own ([`udp`] + [`tcp`], the default: a socket per core,
//! batched I/O on Linux, TCP limits) and [`hickory`] (hickory-server's
//! sockets and request parsing, for comparison; it refuses at start what it
//! cannot do, see [`hickory::unsupported`]).

pub mod dispatch;
pub mod hickory;
pub mod rrl;
pub mod tcp;
pub mod udp;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;

use crate::config::{TcpLimits, UdpIo};
use dispatch::Dispatch;

/// The sockets of every `listen` address, bound before anything else
/// happens at start, so that a port that cannot be had is the first and
/// only thing reported.
pub struct Sockets {
    groups: Vec<Group>,
}

struct Group {
    /// One per UDP loop, sharing the address through SO_REUSEPORT.
    udp: Vec<std::net::UdpSocket>,
    tcp: std::net::TcpListener,
    address: SocketAddr,
    buffer_asked: usize,
}

impl Sockets {
    /// Binds UDP (`udp_per_address` sockets, each asking for `udp_buffer`
    /// bytes of buffer) and TCP on every address of `listen`.
    pub fn bind(
        listen: &[SocketAddr],
        udp_per_address: usize,
        udp_buffer: usize,
    ) -> anyhow::Result<Sockets> {
        let mut groups = Vec::new();
        for address in listen {
            let udp = udp::bind(*address, udp_per_address, udp_buffer)?;
            // The same port for TCP when the address asked for any port.
            let bound = udp
                .first()
                .and_then(|s| s.local_addr().ok())
                .unwrap_or(*address);
            let tcp =
                std::net::TcpListener::bind(bound).map_err(|e| udp::bind_error(e, "tcp", bound))?;
            tcp.set_nonblocking(true)
                .with_context(|| format!("cannot set tcp {bound} non-blocking"))?;
            groups.push(Group {
                udp,
                tcp,
                address: bound,
                buffer_asked: udp_buffer,
            });
        }
        Ok(Sockets { groups })
    }

    /// UDP sockets per address for the own front: one per core.
    pub fn per_core() -> usize {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }
}

/// Serves UDP and TCP on every bound address with our own fronts until the
/// process ends; returns an error if a UDP loop stops.
pub async fn serve(
    sockets: Sockets,
    dispatch: Dispatch,
    tcp_limits: TcpLimits,
    udp_io: UdpIo,
) -> anyhow::Result<()> {
    // The UDP loops are threads, which dropping this future cannot cancel:
    // they stop (and close their sockets) when the guard sets the flag.
    let stop = StopOnDrop(Arc::default());
    // Each loop says here why it stopped.
    let (stopped, mut first_stopped) = tokio::sync::mpsc::unbounded_channel();
    let mut loops = 0;
    for group in sockets.groups {
        let listener = tokio::net::TcpListener::from_std(group.tcp)
            .with_context(|| format!("cannot serve tcp {}", group.address))?;
        let udp_sockets = group.udp.len();
        if let Some((receive, send)) = group.udp.first().map(udp::buffers) {
            tracing::info!(
                address = %group.address,
                asked = group.buffer_asked,
                receive,
                send,
                "udp socket buffers granted (the kernel caps them at net.core.rmem_max and wmem_max)"
            );
        }
        for socket in group.udp {
            let dispatch = dispatch.clone();
            let stop = stop.0.clone();
            let stopped = stopped.clone();
            // Own threads, not tokio's blocking pool: they run for the
            // life of the process, and `top -H` or `perf` shows them by
            // this name.
            let name = format!("udp-{loops}");
            loops += 1;
            std::thread::Builder::new()
                .name(name.clone())
                .spawn(move || {
                    let run = || udp::run(socket, &dispatch, udp_io, &stop);
                    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(run))
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("it panicked")));
                    let _ = stopped.send(outcome.with_context(|| format!("udp loop {name}")));
                })
                .context("cannot start a udp thread")?;
        }
        tokio::spawn(tcp::serve(listener, dispatch.clone(), tcp_limits));
        tracing::info!(address = %group.address, udp_sockets, ?udp_io, "answering DNS on udp and tcp");
    }
    drop(stopped);
    match first_stopped.recv().await {
        Some(Err(error)) => Err(error.context("a udp loop stopped")),
        _ => anyhow::bail!("the udp loops stopped"),
    }
}

/// Sets its flag when dropped: when [`serve`]'s future is dropped (the
/// server stops), its UDP loops see it.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}
