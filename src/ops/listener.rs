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

use std::collections::HashMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use http_body::Frame;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};

use crate::config::HttpLimits;

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
                Ok((stream, _)) => match Registry::admit(&registry) {
                    Some(slot) => {
                        connections.spawn(connection(
                            stream,
                            slot,
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
    router: Router,
    timeout: Duration,
    mut stopping: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let state = slot.state.clone();
    let counts = &slot.registry.counts;
    let mut deadline = state.deadline.subscribe();
    let service = ConnectionService {
        router: hyper_util::service::TowerToHyperService::new(router),
        state: state.clone(),
        registry: slot.registry.clone(),
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
            () = state.close.notified() => return,
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
    state: Arc<ConnectionState>,
    registry: Arc<Registry>,
    timeout: Duration,
}

impl hyper::service::Service<hyper::Request<Incoming>> for ConnectionService {
    type Response = hyper::Response<Guarded>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, request: hyper::Request<Incoming>) -> Self::Future {
        let busy = Busy::start(self.state.clone(), self.registry.clone(), self.timeout);
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
    state: Arc<ConnectionState>,
    registry: Arc<Registry>,
}

impl Busy {
    fn start(state: Arc<ConnectionState>, registry: Arc<Registry>, timeout: Duration) -> Busy {
        state.idle_since.store(BUSY, Ordering::Relaxed);
        state
            .deadline
            .send_replace(Some(tokio::time::Instant::now() + timeout));
        Busy { state, registry }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.state
            .idle_since
            .store(self.registry.now_ms(), Ordering::Relaxed);
        self.state.deadline.send_replace(None);
    }
}

/// The open connections, so that a newcomer can evict the idlest.
struct Registry {
    max: usize,
    epoch: Instant,
    open: Mutex<Open>,
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

#[derive(Default)]
struct Open {
    next_id: u64,
    connections: HashMap<u64, Arc<ConnectionState>>,
}

struct ConnectionState {
    /// Milliseconds since the registry's epoch when the connection last
    /// became idle; [`BUSY`] while a request is in progress.
    idle_since: AtomicU64,
    close: Notify,
    /// When the response in progress must be sent by; `None`: no request.
    deadline: watch::Sender<Option<tokio::time::Instant>>,
}

const BUSY: u64 = u64::MAX;

/// A connection's place in the registry, given back when dropped.
struct Slot {
    id: u64,
    state: Arc<ConnectionState>,
    registry: Arc<Registry>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.registry.open.lock().unwrap_or_else(|e| e.into_inner());
        open.connections.remove(&self.id);
    }
}

impl Registry {
    fn new(max: usize) -> Registry {
        Registry {
            max: max.max(1),
            epoch: Instant::now(),
            open: Mutex::default(),
            counts: Counts::default(),
            last_accept_error: Mutex::default(),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(BUSY - 1)
    }

    /// A slot for a new connection: a free one, or that of the connection
    /// idle the longest, which is told to close. `None` when every
    /// connection has a request in progress.
    fn admit(registry: &Arc<Registry>) -> Option<Slot> {
        let mut open = registry.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.connections.len() >= registry.max {
            let (&idlest, _) = open
                .connections
                .iter()
                .filter(|(_, c)| c.idle_since.load(Ordering::Relaxed) != BUSY)
                // Idle the longest; of equals, the oldest connection.
                .min_by_key(|(id, c)| (c.idle_since.load(Ordering::Relaxed), **id))?;
            if let Some(evicted) = open.connections.remove(&idlest) {
                evicted.close.notify_one();
                registry.counts.evicted.fetch_add(1, Ordering::Relaxed);
            }
        }
        let id = open.next_id;
        open.next_id += 1;
        let state = Arc::new(ConnectionState {
            idle_since: AtomicU64::new(registry.now_ms()),
            close: Notify::new(),
            deadline: watch::Sender::new(None),
        });
        open.connections.insert(id, state.clone());
        Some(Slot {
            id,
            state,
            registry: registry.clone(),
        })
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
        let open = self.open.lock().map_or(0, |o| o.connections.len());
        let last_accept_error = self
            .last_accept_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        tracing::warn!(
            open,
            max = self.max,
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

    #[test]
    fn a_newcomer_evicts_the_idlest_and_is_refused_when_all_are_busy() {
        let registry = Arc::new(Registry::new(2));
        let a = Registry::admit(&registry).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        let b = Registry::admit(&registry).unwrap();
        // Full: the idlest (a, idle since it connected) goes.
        let c = Registry::admit(&registry).unwrap();
        assert!(
            !registry
                .open
                .lock()
                .unwrap()
                .connections
                .contains_key(&a.id)
        );
        assert_eq!(registry.counts.evicted.load(Ordering::Relaxed), 1);
        // b and c busy: a newcomer is turned away.
        let busy_b = Busy::start(b.state.clone(), registry.clone(), Duration::from_secs(1));
        let busy_c = Busy::start(c.state.clone(), registry.clone(), Duration::from_secs(1));
        assert!(Registry::admit(&registry).is_none());
        assert!(b.state.deadline.borrow().is_some());
        // b's response is done: b is idle again, and goes for the next one.
        drop(busy_b);
        assert!(b.state.deadline.borrow().is_none());
        let d = Registry::admit(&registry).unwrap();
        assert!(
            !registry
                .open
                .lock()
                .unwrap()
                .connections
                .contains_key(&b.id)
        );
        drop((busy_c, d));
    }
}
