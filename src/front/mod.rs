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

use crate::config::{RrlConfig, TcpLimits, UdpIo};
use dispatch::Dispatch;

/// Serves UDP and TCP on every address with our own fronts until the process
/// ends; returns an error if a socket cannot be bound or a UDP loop stops.
pub async fn serve(
    dispatch: Dispatch,
    listen: &[SocketAddr],
    tcp_limits: TcpLimits,
    rrl: RrlConfig,
    udp_io: UdpIo,
) -> anyhow::Result<()> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    // The UDP loops are threads, which dropping this future cannot cancel:
    // they stop (and close their sockets) when the guard sets the flag.
    let stop = StopOnDrop(Arc::default());
    let mut udp_loops = tokio::task::JoinSet::new();
    for address in listen {
        let sockets = udp::bind(*address, threads)?;
        // The same port for TCP when the address asked for any port.
        let bound = sockets
            .first()
            .and_then(|s| s.local_addr().ok())
            .unwrap_or(*address);
        let listener = tokio::net::TcpListener::bind(bound)
            .await
            .with_context(|| format!("cannot listen on tcp {bound}"))?;
        for socket in sockets {
            let dispatch = dispatch.clone();
            let stop = stop.0.clone();
            udp_loops.spawn_blocking(move || udp::run(socket, &dispatch, rrl, udp_io, &stop));
        }
        tokio::spawn(tcp::serve(listener, dispatch.clone(), tcp_limits));
        tracing::info!(address = %bound, udp_sockets = threads, ?udp_io, "answering DNS on udp and tcp");
    }
    match udp_loops.join_next().await {
        Some(Ok(Err(error))) => Err(error.context("a udp loop stopped")),
        Some(Err(error)) => Err(anyhow::anyhow!("a udp loop failed: {error}")),
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
