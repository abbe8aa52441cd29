//! The ops listener's connections: our own accept loop on a tokio
//! `TcpListener`, each connection served by hyper's HTTP/1.1 with the axum
//! router as its service. What `axum::serve` does not do, and a client on
//! the network must not be able to get around:
//!
//! - **a cap** (`http_max_connections`): when every slot is taken, the
//!   connection idle the longest (none of its requests in progress; one that
//!   has not finished sending its request head counts as idle since it
//!   connected) is closed for the newcomer; only when all are answering is
//!   the newcomer closed at once. So slow or silent clients cannot lock out
//!   a health check, and the listener never holds more than the cap of file
//!   descriptors (plus the one being accepted).
//! - **a request timeout** (`http_request_timeout`): a request head (request
//!   line and headers) must arrive whole within it, counted from when the
//!   connection is ready for one (keep-alive idle time included); a
//!   response must be sent whole within it, counted from its head. Past
//!   either, the connection is closed.
//! - **a quick stop**: when the server stops, connections with no request
//!   in progress close at once, and a request in progress gets
//!   [`STOP_GRACE`] to finish.
//!
//! Nothing is logged per connection: what was closed and why is summed up
//! in one line per [`SUMMARY_EVERY`] at most.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use http_body::Frame;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::config::HttpLimits;
use crate::connection_slots::{self, Slots};

/// How long a request in progress may take to finish when the server stops.
pub const STOP_GRACE: Duration = Duration::from_millis(250);

/// The largest request head read (hyper's read buffer); a longer one is
/// refused. Our requests are a path, a query and a few headers.
const MAX_HEAD: usize = 16 * 1024;

/// At most one summary line this often.
pub const SUMMARY_EVERY: Duration = Duration::from_secs(10);

/// Serves `router` on `listener` until `shutdown` completes, then closes
/// every connection (see the module's documentation) and returns.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()>,
) {
    let registry = Arc::new(Registry::new(limits.max_connections));
    let (stop, stopping) = watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    let mut summary = tokio::time::interval(SUMMARY_EVERY);
    summary.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = summary.tick() => registry.summarise(),
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => match registry.admit() {
                    Some(slot) => {
                        connections.spawn(connection(
                            stream,
                            slot,
                            registry.clone(),
                            router.clone(),
                            limits.request_timeout,
                            stopping.clone(),
                        ));
                    }
                    None => {
                        registry.counts.refused.fetch_add(1, Ordering::Relaxed);
                        drop(stream);
                    }
                },
                Err(error) => {
                    // Out of file descriptors or memory: wait rather than
                    // spin; the summary tells how often.
                    registry.counts.accept_errors.fetch_add(1, Ordering::Relaxed);
                    *registry.last_accept_error.lock().unwrap_or_else(|e| e.into_inner()) =
                        Some(error.to_string());
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    drop(listener);
    let _ = stop.send(true);
    let closed = async { while connections.join_next().await.is_some() {} };
    // Each connection ends within STOP_GRACE by itself; this only bounds it.
    if tokio::time::timeout(STOP_GRACE + Duration::from_millis(100), closed)
        .await
        .is_err()
    {
        connections.abort_all();
    }
    registry.summarise();
}

/// Serves one connection until the client closes it, a timeout, an
/// eviction for a newcomer, or the stop.
async fn connection(
    stream: TcpStream,
    slot: Slot,
    registry: Arc<Registry>,
    router: Router,
    timeout: Duration,
    mut stopping: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let counts = &registry.counts;
    let mut deadline = slot.data.subscribe();
    let service = ConnectionService {
        router: hyper_util::service::TowerToHyperService::new(router),
        connection: slot.connection().clone(),
        timeout,
    };
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(timeout)
        .max_buf_size(MAX_HEAD);
    let conn = http.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    loop {
        let until = *deadline.borrow_and_update();
        tokio::select! {
            result = conn.as_mut() => {
                if result.is_err_and(|e| e.is_timeout()) {
                    counts.head_timeouts.fetch_add(1, Ordering::Relaxed);
                }
                return;
            }
            Ok(()) = deadline.changed() => {}
            () = sleep_until(until) => {
                counts.response_timeouts.fetch_add(1, Ordering::Relaxed);
                return;
            }
            () = slot.evicted() => return,
            _ = stopping.wait_for(|stop| *stop) => break,
        }
    }
    // Stopping: close now unless a request is in progress.
    if deadline.borrow().is_none() {
        return;
    }
    conn.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(STOP_GRACE, conn).await;
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// The router, with each request marking its connection busy (with a
/// deadline) until its response body is done.
#[derive(Clone)]
struct ConnectionService {
    router: hyper_util::service::TowerToHyperService<Router>,
    connection: Arc<Connection>,
    timeout: Duration,
}

impl hyper::service::Service<hyper::Request<Incoming>> for ConnectionService {
    type Response = hyper::Response<Guarded>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, request: hyper::Request<Incoming>) -> Self::Future {
        let busy = Busy::start(self.connection.clone(), self.timeout);
        let response = hyper::service::Service::call(&self.router, request);
        Box::pin(async move {
            let response = response.await?;
            Ok(response.map(|body| Guarded { body, _busy: busy }))
        })
    }
}

/// A response body that keeps its connection busy until it is dropped (sent
/// whole, or the connection closed).
struct Guarded {
    body: Body,
    _busy: Busy,
}

impl http_body::Body for Guarded {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// A request in progress: its connection is not idle (not evicted) and has
/// a deadline, until this is dropped.
struct Busy {
    connection: Arc<Connection>,
}

impl Busy {
    fn start(connection: Arc<Connection>, timeout: Duration) -> Busy {
        connection.set_busy();
        connection
            .data
            .send_replace(Some(tokio::time::Instant::now() + timeout));
        Busy { connection }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.connection.set_idle();
        self.connection.data.send_replace(None);
    }
}

/// When the response in progress must be sent by; `None`: no request.
type Deadline = watch::Sender<Option<tokio::time::Instant>>;
type Connection = connection_slots::Connection<Deadline>;
type Slot = connection_slots::Slot<Deadline>;

/// The open connections, so that a newcomer can evict the idlest, and what
/// happened to them since the last summary.
struct Registry {
    slots: Arc<Slots<Deadline>>,
    counts: Counts,
    last_accept_error: Mutex<Option<String>>,
}

/// What happened since the last summary.
#[derive(Default)]
struct Counts {
    evicted: AtomicU64,
    refused: AtomicU64,
    head_timeouts: AtomicU64,
    response_timeouts: AtomicU64,
    accept_errors: AtomicU64,
}

impl Registry {
    fn new(max: usize) -> Registry {
        Registry {
            slots: Arc::new(Slots::new(max, |_| {})),
            counts: Counts::default(),
            last_accept_error: Mutex::default(),
        }
    }

    /// A slot for a new connection: a free one, or that of the connection
    /// idle the longest, which is told to close. `None` when every
    /// connection has a request in progress.
    fn admit(&self) -> Option<Slot> {
        let admitted = Slots::admit(&self.slots, watch::Sender::new(None))?;
        if admitted.evicted_one {
            self.counts.evicted.fetch_add(1, Ordering::Relaxed);
        }
        Some(admitted.slot)
    }

    /// One line for what happened since the last call, if anything did.
    fn summarise(&self) {
        let take = |count: &AtomicU64| count.swap(0, Ordering::Relaxed);
        let counts = &self.counts;
        let evicted = take(&counts.evicted);
        let refused = take(&counts.refused);
        let head_timeouts = take(&counts.head_timeouts);
        let response_timeouts = take(&counts.response_timeouts);
        let accept_errors = take(&counts.accept_errors);
        if evicted + refused + head_timeouts + response_timeouts + accept_errors == 0 {
            return;
        }
        let open = self.slots.open();
        let last_accept_error = self
            .last_accept_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        tracing::warn!(
            open,
            max = self.slots.max(),
            evicted,
            refused,
            head_timeouts,
            response_timeouts,
            accept_errors,
            last_accept_error,
            "ops listener: connections closed for newcomers (evicted), turned away \
             with every slot busy (refused), or too slow (timeouts) since the last summary"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_request_in_progress_keeps_its_connection_and_sets_a_deadline() {
        let registry = Registry::new(2);
        let a = registry.admit().unwrap();
        std::thread::sleep(Duration::from_millis(5));
        let b = registry.admit().unwrap();
        // Full: the idlest (a, idle since it connected) goes, and is counted.
        let c = registry.admit().unwrap();
        tokio::time::timeout(Duration::from_secs(5), a.evicted())
            .await
            .expect("the evicted connection is told");
        assert_eq!(registry.counts.evicted.load(Ordering::Relaxed), 1);
        // b and c answering: a newcomer is turned away.
        let busy_b = Busy::start(b.connection().clone(), Duration::from_secs(1));
        let busy_c = Busy::start(c.connection().clone(), Duration::from_secs(1));
        assert!(registry.admit().is_none());
        assert!(b.data.borrow().is_some());
        // b's response is done: no deadline, idle again, and it goes next.
        drop(busy_b);
        assert!(b.data.borrow().is_none());
        let d = registry.admit().unwrap();
        tokio::time::timeout(Duration::from_secs(5), b.evicted())
            .await
            .expect("b, idle again, is evicted for d");
        assert_eq!(registry.counts.evicted.load(Ordering::Relaxed), 2);
        assert_eq!(registry.slots.open(), 2);
        drop((busy_c, c, d));
        assert_eq!(registry.slots.open(), 0);
    }
}
