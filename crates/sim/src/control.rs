//! The control endpoints on the simulator's own port: faults at run time and counters.
//!
//! - `POST /_sim/faults` — body: fault specs, one per line, or a JSON list of spec strings.
//! - `DELETE /_sim/faults` — clears every fault.
//! - `GET /_sim/faults` — the active faults as a JSON list of specs.
//! - `GET /_sim/stats` — [`crate::SimStats`] as JSON.
//! - `POST /_sim/stop-publishing` — the exchange stops producing new messages (REST keeps
//!   answering, so gatherers can still repair); answers once the final book check point is
//!   queued, like [`crate::SimHandle::stop_publishing`]. `kalshi-data up --duration` drains this way.
//! - `POST /_sim/resume-publishing` — undoes it.

use crate::faults::{FaultSpec, parse_fault};
use crate::shared::Shared;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::Ordering;

pub(crate) fn router(shared: Arc<Shared>) -> axum::Router {
    axum::Router::new()
        .route("/_sim/faults", get(list).post(add).delete(clear))
        .route("/_sim/stats", get(stats))
        .route(
            "/_sim/stop-publishing",
            axum::routing::post(stop_publishing),
        )
        .route(
            "/_sim/resume-publishing",
            axum::routing::post(resume_publishing),
        )
        .with_state(shared)
}

/// Parses a control body: a JSON list of spec strings, or one spec per line.
pub fn parse_body(body: &str) -> Result<Vec<FaultSpec>, String> {
    let trimmed = body.trim();
    if trimmed.starts_with('[') {
        let list: Vec<String> =
            serde_json::from_str(trimmed).map_err(|e| format!("invalid JSON list: {e}"))?;
        list.iter()
            .map(|s| parse_fault(s).map_err(|e| format!("`{s}`: {e}")))
            .collect()
    } else {
        trimmed
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|s| parse_fault(s).map_err(|e| format!("`{s}`: {e}")))
            .collect()
    }
}

fn listing(shared: &Shared) -> Response {
    let specs: Vec<String> = shared
        .faults
        .list()
        .iter()
        .map(|f| f.spec.to_string())
        .collect();
    Json(json!({"faults": specs})).into_response()
}

async fn list(State(shared): State<Arc<Shared>>) -> Response {
    listing(&shared)
}

async fn add(State(shared): State<Arc<Shared>>, body: String) -> Response {
    match parse_body(&body) {
        Ok(specs) => {
            for spec in specs {
                shared.fault_event("added", &spec, None);
                shared.faults.add(spec);
            }
            listing(&shared)
        }
        Err(message) => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": {"code": "bad_request", "message": message, "service": "sim"}})),
        )
            .into_response(),
    }
}

async fn clear(State(shared): State<Arc<Shared>>) -> Response {
    for f in shared.faults.list() {
        shared.fault_event("cleared", &f.spec, None);
    }
    shared.faults.clear();
    listing(&shared)
}

async fn stats(State(shared): State<Arc<Shared>>) -> Response {
    let (markets, trades) = {
        let ex = shared.exchange();
        (u64::from(ex.market_count()), ex.trades.len() as u64)
    };
    Json(shared.stats.snapshot(markets, trades)).into_response()
}

async fn stop_publishing(State(shared): State<Arc<Shared>>) -> Response {
    shared.paused_ack.store(false, Ordering::SeqCst);
    shared.publishing.store(false, Ordering::SeqCst);
    // The publisher acknowledges after writing its final check point; a publisher that has
    // already exited never will, hence the bound.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !shared.paused_ack.load(Ordering::SeqCst) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    let acknowledged = shared.paused_ack.load(Ordering::SeqCst);
    Json(json!({"publishing": false, "checkpoint_written": acknowledged})).into_response()
}

async fn resume_publishing(State(shared): State<Arc<Shared>>) -> Response {
    shared.publishing.store(true, Ordering::SeqCst);
    Json(json!({"publishing": true})).into_response()
}
