//! The HTTP surface of a gatherer: the pull API of `kd_core::pull` (records after a cursor,
//! long-polled; acknowledgements), `/health`, `/ready` and `/metrics`.
//!
//! Long-poll: a pull with nothing new waits on the writer's commit announcement (a
//! `tokio::sync::watch` of the table heads) — no polling of the database. Authentication: a
//! bearer token when configured (always when listening beyond loopback, where TLS is served).

use crate::events::emit;
use crate::events::serving::{
    AckServed, PullFailed, PullRefused, PullRequested, PullServed, RowsQuarantined,
};
use crate::health::Health;
use crate::store::read::{MAX_PAGE_BYTES, RawPage};
use crate::store::{Heads, ReadPool, StoreError};
use crate::writer::WriterControl;
use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use kd_core::Table;
use kd_core::pull::{AckRequest, MAX_PULL_LIMIT, MAX_WAIT_MS, PulledRecord};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The binary page lives in kd-core, beside the JSON contract, so the deduplicator reads it
/// without depending on the gatherer.
pub use kd_core::pull::codec;

/// Rows per pull when the request names no limit.
pub const DEFAULT_LIMIT: usize = 1_000;

/// Pull pages read and built at once; further requests wait for a permit (never refused),
/// counted in `pull_waits_total`. Six tables per deduplicator: one deduplicator never waits.
pub const MAX_CONCURRENT_PULLS: usize = 8;

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    pub gatherer: String,
    /// The local store's id (`kd_core::pull::PullResponse::store_id`).
    pub store_id: String,
    pub pool: Arc<ReadPool>,
    pub heads: watch::Receiver<Heads>,
    pub control: WriterControl,
    pub health: Arc<Health>,
    /// The gatherer's clock (for `/health`: ages in local time, the offset estimate).
    pub clock: Arc<crate::clock::Clock>,
    /// Expected bearer token; `None` disables the check (loopback only, enforced by config).
    pub token: Option<String>,
    /// Ends long-polls early when the gatherer stops.
    pub shutdown: tokio_util::sync::CancellationToken,
    /// [`MAX_CONCURRENT_PULLS`] permits: a page is read and built only while one is held.
    pub pulls: Arc<tokio::sync::Semaphore>,
}

/// The routes of the gatherer's HTTP server.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/v1/pull/{table}", get(pull))
        .route("/v1/ack/{table}", post(ack))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics_text))
        .with_state(state)
}

#[derive(Debug, Deserialize)]
struct PullQuery {
    #[serde(default)]
    after: u64,
    limit: Option<usize>,
    #[serde(default)]
    wait_ms: u64,
}

/// An error answer: status and a short reason in JSON.
fn refuse(status: StatusCode, kind: &'static str, reason: String) -> Response {
    emit(PullRefused { kind });
    (status, Json(serde_json::json!({ "error": reason }))).into_response()
}

/// `Some(refusal)` when the request lacks the configured bearer token.
fn unauthorized(state: &ApiState, headers: &HeaderMap) -> Option<Response> {
    let Some(expected) = &state.token else {
        return None;
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match presented {
        Some(p) if constant_time_eq(p.as_bytes(), expected.as_bytes()) => None,
        _ => Some(refuse(
            StatusCode::UNAUTHORIZED,
            "auth",
            "missing or wrong bearer token".into(),
        )),
    }
}

/// Compares without an early exit, so response time says nothing about the token.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0_u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn unknown_table() -> Response {
    refuse(StatusCode::NOT_FOUND, "table", "unknown table".into())
}

async fn pull(
    State(state): State<ApiState>,
    Path(table): Path<String>,
    Query(q): Query<PullQuery>,
    headers: HeaderMap,
) -> Response {
    if let Some(refusal) = unauthorized(&state, &headers) {
        return refusal;
    }
    let Some(table) = Table::parse(&table) else {
        return unknown_table();
    };
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_PULL_LIMIT);
    let binary = codec::encodes(table) && accepts_binary(&headers);
    let deadline = tokio::time::Instant::now() + Duration::from_millis(q.wait_ms.min(MAX_WAIT_MS));
    let mut heads = state.heads.clone();
    emit(PullRequested { table });
    loop {
        let head = heads.borrow_and_update().get(table);
        if head > q.after {
            let pool = state.pool.clone();
            let after = q.after;
            let permit = match state.pulls.clone().try_acquire_owned() {
                Ok(p) => p,
                Err(_) => {
                    metrics::counter!(crate::metrics::PULL_WAITS_TOTAL).increment(1);
                    match state.pulls.clone().acquire_owned().await {
                        Ok(p) => p,
                        Err(_) => {
                            return refuse(
                                StatusCode::SERVICE_UNAVAILABLE,
                                "stopping",
                                "the pull API is closing".into(),
                            );
                        }
                    }
                }
            };
            let rows = tokio::task::spawn_blocking(move || {
                let page = read_page(&pool, table, after, limit, binary);
                drop(permit);
                page
            })
            .await;
            let page = match rows {
                Ok(Ok(page)) => page,
                Ok(Err(e)) => return store_error(e),
                Err(e) => {
                    return refuse(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "store",
                        format!("read task failed: {e}"),
                    );
                }
            };
            // A row can commit between reading the head and the query: report the larger.
            let head = page.last_seq().map_or(head, |seq| seq.max(head));
            if page.rows() > 0 || tokio::time::Instant::now() >= deadline {
                return answer(&state, table, page, head);
            }
        } else if tokio::time::Instant::now() >= deadline {
            return answer(&state, table, Page::empty(), head);
        }
        // Nothing new: sleep until the writer commits or the wait ends.
        let woke = tokio::select! {
            w = tokio::time::timeout_at(deadline, heads.changed()) => w,
            _ = state.shutdown.cancelled() => {
                let head = heads.borrow().get(table);
                return answer(&state, table, Page::empty(), head);
            }
        };
        match woke {
            Ok(Ok(())) => {}
            Ok(Err(_)) => {
                let head = heads.borrow().get(table);
                return answer(&state, table, Page::empty(), head);
            }
            Err(_) => {
                // One last look: the head may have moved without a wake-up being pending.
                let head = heads.borrow().get(table);
                if head <= q.after {
                    return answer(&state, table, Page::empty(), head);
                }
            }
        }
    }
}

/// One pull page as read from the store: the stored JSON bodies, or decoded records for a
/// binary answer ([`codec`]).
enum Page {
    Json(RawPage),
    Records(Vec<PulledRecord>),
}

impl Page {
    fn empty() -> Page {
        Page::Json(RawPage::empty())
    }

    fn rows(&self) -> usize {
        match self {
            Page::Json(p) => p.rows,
            Page::Records(r) => r.len(),
        }
    }

    fn last_seq(&self) -> Option<u64> {
        match self {
            Page::Json(p) => p.last_seq,
            Page::Records(r) => r.last().map(|r| r.seq),
        }
    }
}

/// Whether the request's `Accept` names the binary page.
fn accepts_binary(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.split(';').next().map(str::trim) == Some(codec::CONTENT_TYPE))
}

/// Reads a page (blocking). A binary page reads the decoded records; a stored row that is not
/// a record makes that read fail, and the page is then read as JSON, whose path answers the
/// row as a quarantine entry (rare: the page's client reads either).
fn read_page(
    pool: &ReadPool,
    table: Table,
    after: u64,
    limit: usize,
    binary: bool,
) -> Result<Page, StoreError> {
    if binary {
        match pool.pull(table, after, limit) {
            Ok(records) => return Ok(Page::Records(records)),
            Err(StoreError::Decode { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    pool.pull_json(table, after, limit).map(Page::Json)
}

fn answer(state: &ApiState, table: Table, page: Page, head: u64) -> Response {
    match page {
        Page::Json(page) => answer_json(state, table, page, head),
        Page::Records(records) => match codec::encode(
            &state.gatherer,
            table,
            &state.store_id,
            head,
            &records,
            MAX_PAGE_BYTES,
        ) {
            Ok((body, rows)) => {
                emit(PullServed { table, rows });
                ([(header::CONTENT_TYPE, codec::CONTENT_TYPE)], body).into_response()
            }
            // Unreachable: the table has an encoding (checked before the read) and the store
            // decoded every row as this table's record. Refused rather than guessed at.
            Err(e) => refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                "store",
                format!("binary page: {e}"),
            ),
        },
    }
}

/// The [`kd_core::pull::PullResponse`] JSON around the stored rows' own JSON (see `ReadPool::pull_json`).
fn answer_json(state: &ApiState, table: Table, page: RawPage, head: u64) -> Response {
    emit(PullServed {
        table,
        rows: page.rows,
    });
    let mut body = Vec::with_capacity(page.json.len() + 128);
    body.extend_from_slice(b"{\"gatherer\":");
    // A string and a unit enum always serialise.
    let _ = serde_json::to_writer(&mut body, &state.gatherer);
    body.extend_from_slice(b",\"table\":");
    let _ = serde_json::to_writer(&mut body, &table);
    body.extend_from_slice(b",\"records\":");
    body.extend_from_slice(&page.json);
    body.extend_from_slice(b",\"store_id\":");
    let _ = serde_json::to_writer(&mut body, &state.store_id);
    if !page.quarantined.is_empty() {
        body.extend_from_slice(b",\"quarantined\":");
        // Strings and integers always serialise.
        let _ = serde_json::to_writer(&mut body, &page.quarantined);
        emit(RowsQuarantined {
            table,
            rows: page.quarantined.len(),
        });
    }
    body.extend_from_slice(format!(",\"head\":{head}}}").as_bytes());
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn store_error(e: StoreError) -> Response {
    emit(PullFailed { error: &e });
    refuse(StatusCode::INTERNAL_SERVER_ERROR, "store", e.to_string())
}

async fn ack(
    State(state): State<ApiState>,
    Path(table): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Some(refusal) = unauthorized(&state, &headers) {
        return refusal;
    }
    let Some(table) = Table::parse(&table) else {
        return unknown_table();
    };
    let request: AckRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "ack",
                format!("bad acknowledgement: {e}"),
            );
        }
    };
    match state.control.ack(table, request.cursor).await {
        Some(Ok(())) => {
            emit(AckServed { table });
            StatusCode::NO_CONTENT.into_response()
        }
        Some(Err(e @ StoreError::AckBeyondHead { .. })) => {
            refuse(StatusCode::BAD_REQUEST, "ack", e.to_string())
        }
        Some(Err(e)) => store_error(e),
        None => refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "ack",
            "gatherer is stopping".into(),
        ),
    }
}

async fn health(State(state): State<ApiState>) -> Response {
    Json(
        state
            .health
            .report(&state.gatherer, state.clock.now(), &state.clock),
    )
    .into_response()
}

async fn ready(State(state): State<ApiState>) -> Response {
    if state.health.ready() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
    }
}

async fn metrics_text() -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        kd_core::telemetry::render_metrics(),
    )
        .into_response()
}
