//! The HTTP ops listener: `/metrics`, `/healthz`, `/readyz`, `/records`, and
//! the status page (`/`, `/api/*`, [`super::status`]).
//!
//! Off unless `http` is set. `/records` and the status page show every task
//! and address of the inventory: bind it to loopback or a private address
//! only. Connections
//! are capped and timed ([`super::listener`]); `/records` answers a page at
//! a time ([`super::listing`]), at most [`RECORDS_IN_FLIGHT`] at once.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{health, inspect, listener, listing, metrics, status};
use crate::config::HttpLimits;
use crate::dns::SharedZone;
use crate::zone::Snapshot;

/// `/records` responses being prepared or sent at once; more get 503.
pub const RECORDS_IN_FLIGHT: usize = 2;

/// Status API requests (`/api/tasks`, `/api/lookup`) in progress at once:
/// each is at most a page; more get 503.
pub const API_IN_FLIGHT: usize = 4;

/// A `/records` response of at most this many bytes is sent whole, with a
/// `Content-Length`; a longer one is streamed ([`RECORDS_CHUNK`] at a time).
const RECORDS_WHOLE: usize = 256 * 1024;
const RECORDS_CHUNK: usize = 64 * 1024;

/// What the handlers read: the published zone and the staleness limit
/// (which a reload may change); what `/records` keeps between requests.
#[derive(Clone)]
pub struct OpsState {
    pub zone: SharedZone,
    max_stale_ms: Arc<AtomicU64>,
    /// The task index of the snapshot listed last.
    index: listing::IndexCache,
    /// One permit per `/records` response in flight.
    records_in_flight: Arc<Semaphore>,
    api_in_flight: Arc<Semaphore>,
    about: Arc<status::About>,
    changes: crate::publish::ChangeLog,
    /// The sources `/readyz` waits for (`ready_needs_all_sources`).
    needs_sources: Arc<Vec<String>>,
}

impl OpsState {
    pub fn new(zone: SharedZone, max_stale: Duration) -> OpsState {
        let state = OpsState {
            zone,
            max_stale_ms: Arc::default(),
            index: listing::IndexCache::default(),
            records_in_flight: Arc::new(Semaphore::new(RECORDS_IN_FLIGHT)),
            api_in_flight: Arc::new(Semaphore::new(API_IN_FLIGHT)),
            about: Arc::default(),
            changes: crate::publish::ChangeLog::default(),
            needs_sources: Arc::default(),
        };
        state.set_max_stale(max_stale);
        state
    }

    /// What the status page says of the source, and the publisher's ring of
    /// recent changes.
    pub fn with_status(
        mut self,
        about: status::About,
        changes: crate::publish::ChangeLog,
    ) -> OpsState {
        self.about = Arc::new(about);
        self.changes = changes;
        self
    }

    pub fn about(&self) -> &status::About {
        &self.about
    }

    pub fn changes(&self) -> &crate::publish::ChangeLog {
        &self.changes
    }

    pub fn index(&self) -> &listing::IndexCache {
        &self.index
    }

    /// A permit for a status API request, or `None` when too many are in
    /// progress.
    pub fn api_permit(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        self.api_in_flight.try_acquire().ok()
    }

    pub fn set_max_stale(&self, max_stale: Duration) {
        let ms = u64::try_from(max_stale.as_millis()).unwrap_or(u64::MAX);
        self.max_stale_ms.store(ms, Ordering::Relaxed);
    }

    /// The snapshot published now, if any.
    pub fn snapshot(&self) -> Option<Arc<Snapshot>> {
        self.zone
            .load_full()
            .map(|served| served.snapshot().clone())
    }

    /// The published reverse zone whose range holds `address`.
    pub fn reverse_for(&self, address: std::net::IpAddr) -> Option<Arc<Snapshot>> {
        let served = self.zone.load_full()?;
        (served.reverse().iter())
            .map(|zone| zone.snapshot())
            .find(|s| s.reverse_range().is_some_and(|r| r.contains(&address)))
            .cloned()
    }

    /// The published reverse zone that `name` is in.
    pub fn reverse_holding(&self, name: &hickory_proto::rr::Name) -> Option<Arc<Snapshot>> {
        let served = self.zone.load_full()?;
        let name = hickory_proto::rr::LowerName::new(name);
        (served.reverse().iter())
            .map(|zone| zone.snapshot())
            .find(|s| s.origin().zone_of(&name))
            .cloned()
    }

    /// `/readyz` fails until each of `sources` has been read once.
    pub fn with_needed_sources(mut self, sources: Vec<String>) -> OpsState {
        self.needs_sources = Arc::new(sources);
        self
    }

    /// What `/readyz` asks of the zone.
    pub fn readiness_needs(&self) -> health::Needs<'_> {
        health::Needs {
            max_stale: self.max_stale(),
            sources: &self.needs_sources,
        }
    }

    pub fn max_stale(&self) -> Duration {
        Duration::from_millis(self.max_stale_ms.load(Ordering::Relaxed))
    }
}

pub fn router(state: OpsState) -> Router {
    let router = Router::new()
        .route("/metrics", get(metrics_page))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/records", get(records));
    status::routes(router).with_state(state)
}

/// Binds `address` now (so that a bad address fails the start), and
/// returns the server future, which ends when `shutdown` completes and its
/// connections are closed (within [`listener::STOP_GRACE`]).
pub async fn bind(
    address: SocketAddr,
    state: OpsState,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<impl Future<Output = ()>> {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen for HTTP on {address}"))?;
    tracing::info!(
        %address,
        max_connections = limits.max_connections,
        request_timeout = %humantime::format_duration(limits.request_timeout),
        "ops HTTP listener: / (status page) /api/ /metrics /healthz /readyz /records"
    );
    Ok(listener::serve(listener, router(state), limits, shutdown))
}

async fn metrics_page(State(state): State<OpsState>) -> Response {
    let served = state.zone.load_full();
    let now = SystemTime::now();
    let snapshot = served.as_deref().map(|served| &**served.snapshot());
    let ready = health::readiness(snapshot, now, state.readiness_needs()).is_ok();
    let body = metrics::render(served.as_deref(), now, ready);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

async fn healthz() -> &'static str {
    "alive\n"
}

async fn readyz(State(state): State<OpsState>) -> Response {
    let snapshot = state.snapshot();
    // The source's mode too: an events queue that fails (polling instead)
    // is not a reason to leave the rotation, but an operator wants to see it.
    let mode = format!("source: {}\n", state.about().mode.get());
    match health::readiness(
        snapshot.as_deref(),
        SystemTime::now(),
        state.readiness_needs(),
    ) {
        Ok(message) => (StatusCode::OK, message + "\n" + &mode).into_response(),
        Err(reason) => (StatusCode::SERVICE_UNAVAILABLE, reason + "\n" + &mode).into_response(),
    }
}

/// A JSON error document: `{"error": message}`.
pub fn json_error(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({ "error": message }).to_string() + "\n";
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn records(State(state): State<OpsState>, RawQuery(query): RawQuery) -> Response {
    let query = match listing::Query::parse(query.as_deref()) {
        Ok(query) => query,
        Err(bad) => return json_error(StatusCode::BAD_REQUEST, &bad.to_string()),
    };
    // Held until the response is sent whole (or dropped).
    let Ok(permit) = state.records_in_flight.clone().try_acquire_owned() else {
        let mut response = json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many /records requests in progress: retry shortly",
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        return response;
    };
    let Some(snapshot) = state.snapshot() else {
        return json_error(StatusCode::SERVICE_UNAVAILABLE, "no zone loaded yet");
    };
    let index = match state.index.with_records(&snapshot).await {
        Ok(index) => index,
        Err(error) => return json_error(StatusCode::INTERNAL_SERVER_ERROR, &error),
    };
    let page = index.select(&snapshot, &query);
    let mut render = inspect::Render::new(snapshot, index, page, query.limit, SystemTime::now());
    let mut first = Vec::new();
    render.fill(&mut first, RECORDS_WHOLE);
    let body = if render.is_done() {
        Body::from(first)
    } else {
        Body::new(Streamed {
            render,
            first: Some(first),
            _permit: permit,
        })
    };
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// A `/records` page too long to send whole: written a chunk at a time as
/// the client reads, holding its in-flight permit to the end.
struct Streamed {
    render: inspect::Render,
    /// What was written before streaming was decided on.
    first: Option<Vec<u8>>,
    _permit: OwnedSemaphorePermit,
}

impl http_body::Body for Streamed {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        if let Some(first) = self.first.take() {
            return std::task::Poll::Ready(Some(Ok(http_body::Frame::data(first.into()))));
        }
        if self.render.is_done() {
            return std::task::Poll::Ready(None);
        }
        let mut chunk = Vec::with_capacity(RECORDS_CHUNK + 4096);
        self.render.fill(&mut chunk, RECORDS_CHUNK);
        std::task::Poll::Ready(Some(Ok(http_body::Frame::data(chunk.into()))))
    }

    fn is_end_stream(&self) -> bool {
        self.first.is_none() && self.render.is_done()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::Served;

    /// An ops state with a zone of `n` tasks published.
    fn state(n: usize) -> OpsState {
        let ips: Vec<[u8; 4]> = (0..n)
            .map(|i| [10, 0, (i / 250) as u8, (i % 250) as u8])
            .collect();
        let inventory = crate::testing::web_inventory(&ips);
        let zone = crate::testing::config().zone;
        let snapshot = Snapshot::build(&zone, Arc::new(inventory), None, 1);
        let shared: SharedZone = Arc::default();
        shared.store(Some(Arc::new(Served::new(Arc::new(snapshot), None))));
        OpsState::new(shared, Duration::from_secs(60))
    }

    async fn get(state: &OpsState, query: Option<&str>) -> Response {
        records(State(state.clone()), RawQuery(query.map(str::to_owned))).await
    }

    #[tokio::test]
    async fn a_third_records_request_in_flight_is_told_to_retry() {
        let state = state(3000);
        // Two large pages being sent: each holds its permit until its body
        // is dropped.
        let first = get(&state, Some("limit=3000")).await;
        let second = get(&state, Some("limit=3000")).await;
        assert_eq!(first.status(), StatusCode::OK);
        assert_eq!(second.status(), StatusCode::OK);
        let third = get(&state, None).await;
        assert_eq!(third.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(third.headers()[header::RETRY_AFTER], "1");
        drop(first);
        let fourth = get(&state, Some("limit=1")).await;
        assert_eq!(fourth.status(), StatusCode::OK);
        // A small page is sent whole and frees its permit at once.
        assert_eq!(state.records_in_flight.available_permits(), 1);
        drop(second);
        assert_eq!(
            state.records_in_flight.available_permits(),
            RECORDS_IN_FLIGHT
        );
    }

    #[tokio::test]
    async fn a_streamed_page_is_the_same_document() {
        let state = state(3000);
        let response = get(&state, Some("limit=3000")).await;
        assert!(
            response.headers().get(header::CONTENT_LENGTH).is_none(),
            "streamed"
        );
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(doc["tasks"].as_array().unwrap().len(), 3000);
        assert_eq!(doc["tasks_returned"], 3000);
        assert!(body.len() > RECORDS_WHOLE, "{}", body.len());
        assert_eq!(
            state.records_in_flight.available_permits(),
            RECORDS_IN_FLIGHT
        );
        let bad = get(&state, Some("limit=10001")).await;
        assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    }
}
