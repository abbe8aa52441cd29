//! The HTTP ops listener: `/metrics`, `/healthz`, `/readyz`, `/records`.
//!
//! Off unless `http` is set. `/records` shows every task and address of the
//! inventory: bind it to loopback or a private address only. Connections
//! are capped and timed ([`super::listener`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::{health, inspect, listener, metrics};
use crate::config::HttpLimits;
use crate::dns::SharedZone;
use crate::zone::Snapshot;

/// What the handlers read: the published zone and the staleness limit
/// (which a reload may change).
#[derive(Clone)]
pub struct OpsState {
    pub zone: SharedZone,
    max_stale_ms: Arc<AtomicU64>,
}

impl OpsState {
    pub fn new(zone: SharedZone, max_stale: Duration) -> OpsState {
        let state = OpsState {
            zone,
            max_stale_ms: Arc::default(),
        };
        state.set_max_stale(max_stale);
        state
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

    pub fn max_stale(&self) -> Duration {
        Duration::from_millis(self.max_stale_ms.load(Ordering::Relaxed))
    }
}

pub fn router(state: OpsState) -> Router {
    Router::new()
        .route("/metrics", get(metrics_page))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/records", get(records))
        .with_state(state)
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
        "ops HTTP listener: /metrics /healthz /readyz /records"
    );
    Ok(listener::serve(listener, router(state), limits, shutdown))
}

async fn metrics_page(State(state): State<OpsState>) -> Response {
    let snapshot = state.snapshot();
    let now = SystemTime::now();
    let ready = health::readiness(snapshot.as_deref(), now, state.max_stale()).is_ok();
    let body = metrics::render(snapshot.as_deref(), now, ready);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

async fn healthz() -> &'static str {
    "alive\n"
}

async fn readyz(State(state): State<OpsState>) -> Response {
    let snapshot = state.snapshot();
    match health::readiness(snapshot.as_deref(), SystemTime::now(), state.max_stale()) {
        Ok(message) => (StatusCode::OK, message + "\n").into_response(),
        Err(reason) => (StatusCode::SERVICE_UNAVAILABLE, reason + "\n").into_response(),
    }
}

async fn records(State(state): State<OpsState>) -> Response {
    let Some(snapshot) = state.snapshot() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "application/json")],
            "{\"error\":\"no zone loaded yet\"}\n",
        )
            .into_response();
    };
    let document = inspect::document(&snapshot, SystemTime::now());
    match serde_json::to_vec_pretty(&document) {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
    }
}
