//! The UDP front: one socket per core on each listen address (SO_REUSEPORT,
//! the kernel spreads clients over them), each served by its own thread in a
//! blocking receive → answer → send loop.
//!
//! Every datagram goes through the one [`Dispatch`]. On Linux datagrams are
//! received and sent in batches (`recvmmsg`/`sendmmsg`, see [`batch`], the
//! default `udp_io = "batched"`) so that a busy socket costs two system calls
//! per batch rather than two per query; [`plain`] (`recv_from`/`send_to`)
//! works on every Unix and is selectable on Linux too (`udp_io = "plain"`),
//! which is how the tests run it here.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use socket2::{Domain, Protocol, Socket, Type};

use super::dispatch::{Dispatch, Reply};
use super::rrl::{Limiter, RrlConfig};
use crate::config::UdpIo;
use crate::wire::Transport;

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
mod batch;
mod plain;

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

/// Largest query read. A larger datagram is no query we answer: dropped.
const MAX_QUERY: usize = 4096;

/// A socket's datagrams, as a front loop sees them: some received at once,
/// each in a slot with its peer and the buffer its answer goes in.
trait Datagrams {
    /// Waits (at most [`STOP_CHECK`]) for datagrams; how many were taken.
    fn receive(&mut self, socket: &std::net::UdpSocket) -> std::io::Result<usize>;
    /// The query in slot `i` (empty if it was too large to read whole) and
    /// the buffer its answer goes in.
    fn slot(&mut self, i: usize) -> (&[u8], &mut Vec<u8>);
    /// The address the query in slot `i` came from.
    fn peer(&self, i: usize) -> Option<IpAddr>;
    fn set_answered(&mut self, i: usize, answered: bool);
    /// Sends the answers of the first `received` slots that have one.
    fn send(&mut self, socket: &std::net::UdpSocket, received: usize);
}

/// Serves one socket until `stop` is set (then the socket is closed, within
/// [`STOP_CHECK`]), or the socket fails for good.
pub fn run(
    socket: std::net::UdpSocket,
    dispatch: &Dispatch,
    rrl: RrlConfig,
    io: UdpIo,
    stop: &AtomicBool,
) -> anyhow::Result<()> {
    match io {
        #[cfg(target_os = "linux")]
        UdpIo::Batched => serve(socket, dispatch, rrl, batch::Batch::new(), stop),
        #[cfg(not(target_os = "linux"))]
        UdpIo::Batched => anyhow::bail!("udp_io = \"batched\" needs Linux"),
        UdpIo::Plain => serve(socket, dispatch, rrl, plain::Plain::new(), stop),
    }
}

fn serve(
    socket: std::net::UdpSocket,
    dispatch: &Dispatch,
    rrl: RrlConfig,
    mut datagrams: impl Datagrams,
    stop: &AtomicBool,
) -> anyhow::Result<()> {
    let mut limiter = Limiter::new(rrl);
    loop {
        let received = datagrams.receive(&socket)?;
        if stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        if received == 0 {
            continue;
        }
        let started = std::time::Instant::now();
        let served = dispatch.load();
        for i in 0..received {
            let peer = datagrams.peer(i);
            let (request, response) = datagrams.slot(i);
            let reply = dispatch.serve_one(
                served.as_deref(),
                request,
                peer,
                Transport::Udp,
                Some(&mut limiter),
                response,
                started,
            );
            datagrams.set_answered(i, reply == Reply::One);
        }
        datagrams.send(&socket, received);
    }
}

/// Socket errors: the first logged, then one in a thousand (a sick socket
/// must not flood the log), every one counted.
#[derive(Default)]
struct ErrorLog {
    count: u64,
}

impl ErrorLog {
    fn note(&mut self, op: &'static str, error: &std::io::Error) {
        if self.count.is_multiple_of(1000) {
            tracing::warn!(%error, count = self.count + 1, "udp {op} failed");
        }
        self.count += 1;
        metrics::counter!("ecs_dns_udp_errors_total", "op" => op).increment(1);
    }
}
