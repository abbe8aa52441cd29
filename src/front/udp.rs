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

use super::dispatch::{Dispatch, Reply, Timing};
use crate::config::UdpIo;
use crate::query_counters as counters;
use crate::wire::Transport;

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
mod batch;
mod plain;

/// Binds `count` sockets to `address` that share it through SO_REUSEPORT,
/// each with `buffer` bytes of socket buffer asked for. The first socket
/// fixes the port when `address` asks for any port.
pub fn bind(
    address: SocketAddr,
    count: usize,
    buffer: usize,
) -> anyhow::Result<Vec<std::net::UdpSocket>> {
    if address.port() != 0 {
        // SO_REUSEPORT would let this process share the port with another
        // server already on it (the kernel would split the queries between
        // the two): a plain bind first finds it taken.
        std::net::UdpSocket::bind(address).map_err(|e| bind_error(e, "udp", address))?;
    }
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
        // Room for bursts while the thread is busy; the kernel caps what it
        // grants (net.core.rmem_max, wmem_max): `buffers` says what it gave.
        let _ = socket.set_recv_buffer_size(buffer);
        let _ = socket.set_send_buffer_size(buffer);
        // A blocked receive wakes up this often to look at the stop flag.
        socket
            .set_read_timeout(Some(STOP_CHECK))
            .with_context(|| format!("cannot set a receive timeout on udp {address}"))?;
        socket
            .bind(&address.into())
            .map_err(|e| bind_error(e, "udp", address))?;
        let socket: std::net::UdpSocket = socket.into();
        remember_inode(&socket);
        address = socket
            .local_addr()
            .with_context(|| format!("no local address for udp {address}"))?;
        sockets.push(socket);
    }
    Ok(sockets)
}

/// A bind error as the operator needs it: what to do about it.
pub fn bind_error(error: std::io::Error, proto: &str, address: SocketAddr) -> anyhow::Error {
    let hint = match error.kind() {
        std::io::ErrorKind::PermissionDenied if address.port() < 1024 => {
            ": ports below 1024 need privilege; listen on a port of 1024 or more (the Docker image listens on 8053 behind the load balancer's 53) or grant CAP_NET_BIND_SERVICE"
        }
        std::io::ErrorKind::AddrInUse => {
            ": another process already serves this port (another ecs-dns?); stop it or pick another `listen` port"
        }
        _ => "",
    };
    anyhow::anyhow!("cannot listen on {proto} {address}: {error}{hint}")
}

/// The receive and send buffer sizes the kernel granted `socket`.
pub fn buffers(socket: &std::net::UdpSocket) -> (usize, usize) {
    let socket = socket2::SockRef::from(socket);
    (
        socket.recv_buffer_size().unwrap_or(0),
        socket.send_buffer_size().unwrap_or(0),
    )
}

/// The inodes of our UDP sockets, to find their drop counts in
/// `/proc/net/udp`.
static INODES: std::sync::Mutex<Vec<u64>> = std::sync::Mutex::new(Vec::new());

fn remember_inode(socket: &std::net::UdpSocket) {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::MetadataExt;
    // stat() of /proc/self/fd/N is the socket's own inode.
    if let Ok(meta) = std::fs::metadata(format!("/proc/self/fd/{}", socket.as_raw_fd())) {
        INODES
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(meta.ino());
    }
}

/// Datagrams the kernel dropped because a socket's receive queue was full,
/// summed over our UDP sockets (the `drops` column of `/proc/net/udp` and
/// `udp6`, the counter `SO_RXQ_OVFL` reports). `None` where there is no
/// such file (not Linux).
pub fn receive_queue_drops() -> Option<u64> {
    let inodes = INODES.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut total = None;
    for table in ["/proc/net/udp", "/proc/net/udp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        let sum = total.get_or_insert(0u64);
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // sl local rem st tx:rx tr:tm retrnsmt uid timeout inode ref pointer drops
            let inode = fields.get(9).and_then(|f| f.parse::<u64>().ok());
            let drops = fields.get(12).and_then(|f| f.parse::<u64>().ok());
            if let (Some(inode), Some(drops)) = (inode, drops)
                && inodes.contains(&inode)
            {
                *sum += drops;
            }
        }
    }
    total
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
    io: UdpIo,
    stop: &AtomicBool,
) -> anyhow::Result<()> {
    match io {
        #[cfg(target_os = "linux")]
        UdpIo::Batched => serve(socket, dispatch, batch::Batch::new(), stop),
        #[cfg(not(target_os = "linux"))]
        UdpIo::Batched => anyhow::bail!("udp_io = \"batched\" needs Linux"),
        UdpIo::Plain => serve(socket, dispatch, plain::Plain::new(), stop),
    }
}

fn serve(
    socket: std::net::UdpSocket,
    dispatch: &Dispatch,
    mut datagrams: impl Datagrams,
    stop: &AtomicBool,
) -> anyhow::Result<()> {
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
        let mut answered = 0;
        for i in 0..received {
            let peer = datagrams.peer(i);
            let (request, response) = datagrams.slot(i);
            let reply = dispatch.serve_one(
                served.as_deref(),
                request,
                peer,
                Transport::Udp,
                response,
                Timing::Batch,
            );
            datagrams.set_answered(i, reply == Reply::One);
            answered += u64::from(reply == Reply::One);
        }
        counters::record_latency(started.elapsed(), answered);
        datagrams.send(&socket, received);
    }
}

/// Socket errors: every one counted, logged at most once per reason and
/// window (a sick socket must not flood the log).
#[derive(Default)]
struct ErrorLog;

impl ErrorLog {
    fn note(&mut self, op: &'static str, error: &std::io::Error) {
        metrics::counter!("ecs_dns_udp_errors_total", "op" => op).increment(1);
        match op {
            "receive" => crate::warn_throttled!("udp receive failed", %error, "udp receive failed"),
            _ => crate::warn_throttled!("udp send failed", %error, "udp {op} failed"),
        }
    }
}
