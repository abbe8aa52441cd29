//! The TCP front (RFC 1035 §4.2.2, RFC 7766): two-byte length-prefixed
//! messages, several per connection, answered in order. Pipelined queries
//! are read as they come and their answers written back in one flush once
//! no more queries are buffered.
//!
//! Limits, so that idle or hostile clients cannot use up the server:
//! - at most `max_connections` at once; when a new client comes while all
//!   are taken, the connection idle the longest is closed for it (RFC 7766
//!   §6.2.3 lets a server close idle connections at any time), and only if
//!   none is idle is the newcomer turned away;
//! - `idle_timeout`: a connection that does not send a whole query (or take
//!   its answer) within it is closed, slow senders included;
//! - `max_queries`: a connection is closed after that many answers, so one
//!   client cannot hold a slot for ever.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};

use super::dispatch::{Dispatch, Reply, Timing};
use crate::config::TcpLimits;
use crate::connection_slots::{Admitted, Slot, Slots};
use crate::wire::Transport;

/// Accepts connections on `listener` until the process ends.
pub async fn serve(listener: TcpListener, dispatch: Dispatch, tcp: TcpLimits) {
    let slots = Arc::new(Slots::new(tcp.max_connections, |open| {
        metrics::gauge!("ecs_dns_tcp_connections").set(open as f64);
    }));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of file descriptors or memory: wait rather than spin.
                crate::warn_throttled!("tcp accept failed", %error, "tcp accept failed");
                metrics::counter!("ecs_dns_tcp_accept_errors_total").increment(1);
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(Admitted { slot, evicted_one }) = Slots::admit(&slots, ()) else {
            metrics::counter!("ecs_dns_tcp_rejected_total").increment(1);
            drop(stream);
            continue;
        };
        if evicted_one {
            metrics::counter!("ecs_dns_tcp_evicted_total").increment(1);
        }
        let _ = stream.set_nodelay(true);
        tokio::spawn(connection(stream, slot, dispatch.clone(), tcp));
    }
}

/// Serves one connection until the client closes it, a limit is reached, or
/// it is evicted for a newcomer.
async fn connection(stream: TcpStream, slot: Slot<()>, dispatch: Dispatch, tcp: TcpLimits) {
    let peer = stream.peer_addr().ok().map(|a| a.ip());
    let (read, write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut writer = BufWriter::new(write);
    let mut request = Vec::new();
    let mut response = Vec::new();
    let mut answered = 0u32;
    loop {
        // Idle from now on (a new connection is idle since it was admitted:
        // one that never sends is the first to be evicted).
        if answered > 0 {
            slot.set_idle();
        }
        let read = tokio::select! {
            () = slot.evicted() => break,
            read = tokio::time::timeout(tcp.idle_timeout, read_message(&mut reader, &mut request)) => read,
        };
        match read {
            Ok(Ok(true)) => {}
            // Closed by the client, a broken length, or idle too long.
            _ => break,
        }
        slot.set_busy();
        let started = std::time::Instant::now();
        let served = dispatch.load();
        let reply = dispatch.serve_one(
            served.as_deref(),
            &request,
            peer,
            Transport::Tcp,
            &mut response,
            Timing::Since(started),
        );
        drop(served);
        let messages: &[Vec<u8>] = match &reply {
            Reply::Nothing => continue,
            Reply::One => std::slice::from_ref(&response),
            Reply::Transfer(messages) => messages,
        };
        answered += 1;
        let last = answered >= tcp.max_queries;
        // Pipelined queries: answers are flushed together, but only while
        // another whole query is already buffered; a partial one (or none)
        // must not hold back the answers to those before it.
        let flush = last || messages.len() > 1 || !whole_frame(reader.buffer());
        let write = async {
            for message in messages {
                let len = u16::try_from(message.len()).map_err(std::io::Error::other)?;
                writer.write_all(&len.to_be_bytes()).await?;
                writer.write_all(message).await?;
            }
            if flush {
                writer.flush().await?;
            }
            std::io::Result::Ok(())
        };
        // A transfer may take longer than an answer: one idle timeout per message.
        let allowed = tcp.idle_timeout * u32::try_from(messages.len()).unwrap_or(u32::MAX);
        match tokio::time::timeout(allowed, write).await {
            Ok(Ok(())) if !last => {}
            _ => break,
        }
    }
    let _ = tokio::time::timeout(tcp.idle_timeout, async {
        writer.flush().await?;
        writer.shutdown().await
    })
    .await;
}

/// Whether `buffered` starts with a whole length-prefixed message.
fn whole_frame(buffered: &[u8]) -> bool {
    match buffered {
        [high, low, rest @ ..] => rest.len() >= usize::from(u16::from_be_bytes([*high, *low])),
        _ => false,
    }
}

/// Reads one length-prefixed message into `buf`; `false` when the client
/// closed the connection between messages.
async fn read_message<R: AsyncReadExt + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
) -> std::io::Result<bool> {
    let mut len = [0u8; 2];
    match reader.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(false),
        Err(e) => return Err(e),
    }
    buf.resize(usize::from(u16::from_be_bytes(len)), 0);
    reader.read_exact(buf).await?;
    Ok(true)
}
