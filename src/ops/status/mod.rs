//! The status page (`GET /`) and the JSON behind it (`/api/*`): the zone at
//! a glance, "why does this name answer that?", the tasks with the reason
//! for each verdict, and the recent changes.
//!
//! One self-contained page: HTML, CSS and JavaScript embedded in the binary
//! (no CDN, no build step). Everything it shows comes from the JSON
//! endpoints and is put in the page as text (`textContent`), never as
//! markup: task tags and ECS names are chosen by whoever starts a task. The
//! page is also served under a Content-Security-Policy that allows no inline
//! script, so that a missed escape could not run one.
//!
//! Every endpoint answers from the published snapshot; lists are paged
//! ([`crate::ops::listing`]) and lookups list at most
//! [`lookup::TASKS_SHOWN`] tasks, so no response holds the inventory.

pub mod explain;
pub mod lookup;
pub mod views;

use std::sync::Arc;
use std::time::SystemTime;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;

use super::http::{OpsState, json_error};
use super::inspect::{ClusterView, cluster_view};
use super::listing::{self, VERDICT_NAMES, VERDICTS};
use crate::publish::Logged;

/// The most tasks one `/api/tasks` page may ask for.
pub const API_MAX_LIMIT: usize = 1000;
/// Tasks per `/api/tasks` page when `limit` is not given.
pub const API_DEFAULT_LIMIT: usize = 50;

/// What the server is, for the summary: fixed at start.
#[derive(Clone, Debug, Default)]
pub struct About {
    /// The source, as the start-up log line says it.
    pub source: String,
    /// How the source is read now: "polling every 5s", events, or polling
    /// while the events queue fails.
    pub mode: crate::source::Modes,
}

const PAGE: &str = include_str!("page.html");
const SCRIPT: &str = include_str!("status.js");
const STYLE: &str = include_str!("status.css");

/// No inline script or style, nothing from elsewhere: the page's own
/// files and its own API only.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                   connect-src 'self'; img-src 'self'; base-uri 'none'; \
                   form-action 'none'; frame-ancestors 'none'";

pub fn routes(router: Router<OpsState>) -> Router<OpsState> {
    router
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", PAGE) }),
        )
        .route(
            "/status.js",
            get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }),
        )
        .route(
            "/status.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE) }),
        )
        .route("/api/summary", get(summary))
        .route("/api/lookup", get(lookup))
        .route("/api/tasks", get(tasks))
        .route("/api/changes", get(changes))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = ([(header::CONTENT_TYPE, content_type)], body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// A JSON document, never cached (it is the state of now).
fn json(value: &impl Serialize) -> Response {
    match serde_json::to_vec(value) {
        Ok(mut body) => {
            body.push(b'\n');
            let mut response = ([(header::CONTENT_TYPE, "application/json")], body).into_response();
            let headers = response.headers_mut();
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            headers.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            response
        }
        Err(error) => json_error(StatusCode::INTERNAL_SERVER_ERROR, &error.to_string()),
    }
}

#[derive(Serialize)]
struct VerdictCount {
    verdict: &'static str,
    tasks: usize,
}

#[derive(Serialize)]
struct Summary<'a> {
    version: &'static str,
    source: &'a str,
    mode: String,
    now: String,
    ready: bool,
    /// Why ready or not, as `/readyz` says it.
    readiness: String,
    zone: Option<String>,
    serial: Option<u32>,
    records: usize,
    /// Names with records.
    names: usize,
    tasks: usize,
    /// Every verdict, zero counts included, in a fixed order.
    verdicts: Vec<VerdictCount>,
    clusters: Vec<ClusterView<'a>>,
    /// Labels several inputs map to, and names too long to serve.
    collisions: usize,
    skipped: usize,
}

async fn summary(State(state): State<OpsState>) -> Response {
    let snapshot = state.snapshot();
    let now = SystemTime::now();
    let readiness = super::health::readiness(snapshot.as_deref(), now, state.readiness_needs());
    let about = state.about();
    let mut counts = [0usize; VERDICTS.len()];
    if let Some(snapshot) = &snapshot {
        for verdict in &snapshot.report.verdicts {
            if let Some(i) = VERDICTS.iter().position(|v| v == verdict) {
                counts[i] += 1;
            }
        }
    }
    let summary = Summary {
        version: env!("CARGO_PKG_VERSION"),
        source: &about.source,
        mode: about.mode.get(),
        now: humantime::format_rfc3339_seconds(now).to_string(),
        ready: readiness.is_ok(),
        readiness: readiness.unwrap_or_else(|reason| reason),
        zone: snapshot.as_ref().map(|s| s.origin().to_string()),
        serial: snapshot.as_ref().map(|s| s.serial()),
        records: snapshot.as_ref().map_or(0, |s| s.record_count()),
        names: snapshot.as_ref().map_or(0, |s| s.names().count()),
        tasks: snapshot.as_ref().map_or(0, |s| s.inventory.tasks.len()),
        verdicts: VERDICT_NAMES
            .iter()
            .zip(counts)
            .map(|(&verdict, tasks)| VerdictCount { verdict, tasks })
            .collect(),
        clusters: snapshot
            .as_ref()
            .map(|s| {
                s.inventory
                    .clusters
                    .iter()
                    .map(|c| cluster_view(c, now))
                    .collect()
            })
            .unwrap_or_default(),
        collisions: snapshot.as_ref().map_or(0, |s| s.report.collisions.len()),
        skipped: snapshot.as_ref().map_or(0, |s| s.report.skipped.len()),
    };
    json(&summary)
}

/// `name` (a DNS name, task id or ARN, or address) and `type`.
fn lookup_parameters(raw: Option<&str>) -> Result<(String, Option<String>), listing::BadQuery> {
    let mut name = None;
    let mut rtype = None;
    for (key, value) in listing::pairs(raw)? {
        let slot = match key.as_str() {
            "name" => &mut name,
            "type" => &mut rtype,
            _ => return Err(listing::bad(&key, "unknown parameter; known: name, type")),
        };
        if slot.replace(value).is_some() {
            return Err(listing::bad(&key, "given more than once"));
        }
    }
    Ok((name.unwrap_or_default(), rtype))
}

async fn lookup(State(state): State<OpsState>, RawQuery(raw): RawQuery) -> Response {
    let (name, rtype) = match lookup_parameters(raw.as_deref()) {
        Ok(parameters) => parameters,
        Err(bad) => return json_error(StatusCode::BAD_REQUEST, &bad.to_string()),
    };
    let (_permit, snapshot) = match admit(&state) {
        Ok(admitted) => admitted,
        Err(refused) => return *refused,
    };
    let asked = match lookup::parse(&name, rtype.as_deref(), &snapshot) {
        Ok(asked) => asked,
        Err(reason) => return json_error(StatusCode::BAD_REQUEST, &reason),
    };
    let reverse = match &asked {
        lookup::Asked::Address(address) => state.reverse_for(*address),
        lookup::Asked::Name { name, .. } => state.reverse_holding(name),
        lookup::Asked::Task(_) => None,
    };
    // A scan of the inventory: off the async threads.
    let found =
        tokio::task::spawn_blocking(move || lookup::run(&snapshot, &asked, reverse.as_deref()))
            .await;
    match found {
        Ok(found) => json(&found),
        Err(error) => json_error(StatusCode::INTERNAL_SERVER_ERROR, &error.to_string()),
    }
}

/// A permit and the published snapshot for an API request that works on
/// a page of tasks; or the 503 to answer (too many in progress: retry
/// shortly; or no zone loaded yet).
fn admit(
    state: &OpsState,
) -> Result<(tokio::sync::SemaphorePermit<'_>, Arc<crate::zone::Snapshot>), Box<Response>> {
    let Some(permit) = state.api_permit() else {
        let mut response = json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many status requests in progress: retry shortly",
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return Err(Box::new(response));
    };
    match state.snapshot() {
        Some(snapshot) => Ok((permit, snapshot)),
        None => Err(Box::new(json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "no zone loaded yet",
        ))),
    }
}

#[derive(Serialize)]
struct TasksPage {
    zone: String,
    serial: u32,
    tasks_total: usize,
    tasks_matched: usize,
    tasks_returned: usize,
    limit: usize,
    next_cursor: Option<String>,
    tasks: Vec<views::TaskRow>,
}

async fn tasks(State(state): State<OpsState>, RawQuery(raw): RawQuery) -> Response {
    let query = match listing::Query::parse_with(raw.as_deref(), API_DEFAULT_LIMIT, API_MAX_LIMIT) {
        Ok(query) => query,
        Err(bad) => return json_error(StatusCode::BAD_REQUEST, &bad.to_string()),
    };
    let (_permit, snapshot) = match admit(&state) {
        Ok(admitted) => admitted,
        Err(refused) => return *refused,
    };
    // The records only when a name filter needs them.
    let index = match query.filter.name {
        Some(_) => state.index().with_records(&snapshot).await,
        None => state.index().index(&snapshot).await,
    };
    let index = match index {
        Ok(index) => index,
        Err(error) => return json_error(StatusCode::INTERNAL_SERVER_ERROR, &error),
    };
    let page = index.select(&snapshot, &query);
    json(&TasksPage {
        zone: snapshot.origin().to_string(),
        serial: snapshot.serial(),
        tasks_total: page.total,
        tasks_matched: page.matched,
        tasks_returned: page.tasks.len(),
        limit: query.limit,
        next_cursor: page.next_cursor.as_ref().map(listing::Cursor::encode),
        tasks: views::task_rows(&snapshot, &page.tasks, false),
    })
}

#[derive(Serialize)]
struct NamesView<'a> {
    count: usize,
    /// The first few, sorted.
    sample: &'a [String],
}

#[derive(Serialize)]
struct ChangeView<'a> {
    at: String,
    serial: u32,
    cause: &'static str,
    records_added: usize,
    records_removed: usize,
    names_added: NamesView<'a>,
    names_removed: NamesView<'a>,
    names_changed: NamesView<'a>,
}

#[derive(Serialize)]
struct Changes<'a> {
    /// How many the ring keeps.
    kept: usize,
    changes: Vec<ChangeView<'a>>,
}

fn names_view(list: &crate::publish::NameList) -> NamesView<'_> {
    NamesView {
        count: list.count,
        sample: &list.sample,
    }
}

fn change_view(logged: &Logged) -> ChangeView<'_> {
    let change = &logged.change;
    ChangeView {
        at: humantime::format_rfc3339_seconds(logged.at).to_string(),
        serial: change.serial,
        cause: logged.cause.as_str(),
        records_added: change.records_added,
        records_removed: change.records_removed,
        names_added: names_view(&change.added),
        names_removed: names_view(&change.removed),
        names_changed: names_view(&change.modified),
    }
}

async fn changes(State(state): State<OpsState>) -> Response {
    let logged = state.changes().newest_first();
    json(&Changes {
        kept: crate::publish::CHANGES_KEPT,
        changes: logged.iter().map(change_view).collect(),
    })
}
