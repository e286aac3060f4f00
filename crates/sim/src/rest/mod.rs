//! REST under `/trade-api/v2`: exchange, series, events, markets, order books and trades, with
//! Kalshi's query parameters, cursor pagination, limits and error bodies; and the fault layer.
//!
//! - this file: the router, error bodies, the fault layer, `/exchange/*`;
//! - `params`: query-string parsing; `catalog`: series and events; `markets`: markets and order
//!   books; `trades`: live and historical trades and the historical cutoff.

mod catalog;
mod markets;
mod params;
mod trades;

use crate::rng::mix64;
use crate::shared::Shared;
use crate::stats::bump;
use crate::ws::authorised;
use axum::Json;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use kd_core::TimestampUs;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// REST base path.
pub const REST_PREFIX: &str = "/trade-api/v2";

/// A Kalshi-shaped error response.
pub fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "message": message, "service": "sim"}})),
    )
        .into_response()
}

pub(super) fn bad_request(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, "bad_request", message)
}

pub(super) fn not_found(what: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "not_found",
        &format!("{what} not found"),
    )
}

fn status_code_name(status: u16) -> &'static str {
    match status {
        400 => "bad_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        409 => "conflict",
        429 => "too_many_requests",
        500 => "internal_server_error",
        502 => "bad_gateway",
        503 => "service_unavailable",
        504 => "gateway_timeout",
        _ => "error",
    }
}

pub(super) type St = State<Arc<Shared>>;

pub(crate) fn router(shared: Arc<Shared>) -> axum::Router {
    let api = axum::Router::new()
        .route("/exchange/status", get(exchange_status))
        .route("/exchange/schedule", get(exchange_schedule))
        .route("/series", get(catalog::series_list))
        .route("/series/{series_ticker}", get(catalog::series_one))
        .route("/events", get(catalog::events_list))
        .route("/events/multivariate", get(catalog::multivariate_events))
        .route("/events/{event_ticker}", get(catalog::event_one))
        .route("/markets", get(markets::markets_list))
        .route("/markets/trades", get(trades::trades))
        .route("/markets/orderbooks", get(markets::orderbooks))
        .route("/markets/{ticker}", get(markets::market_one))
        .route("/markets/{ticker}/orderbook", get(markets::orderbook_one))
        .route("/historical/cutoff", get(trades::historical_cutoff))
        .route("/historical/trades", get(trades::historical_trades))
        .fallback(|| async { not_found("path") })
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            faults_layer,
        ))
        .with_state(shared);
    axum::Router::new().nest(REST_PREFIX, api)
}

static ROLLS: AtomicU64 = AtomicU64::new(0);

/// Maintenance, injected HTTP statuses, and signature checks on signed requests.
async fn faults_layer(State(shared): St, req: Request, next: Next) -> Response {
    let rel = req.uri().path().to_string();
    let full = format!("{REST_PREFIX}{rel}");
    if req.headers().contains_key("KALSHI-ACCESS-KEY")
        && authorised(&shared, req.headers(), req.method().as_str(), &full).is_err()
    {
        bump(&shared.stats.auth_rejected);
        return error(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "invalid API key signature",
        );
    }
    if rel != "/exchange/status" && shared.faults.maintenance_until(Instant::now()).is_some() {
        bump(&shared.stats.http_faults);
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
            "exchange under maintenance",
        );
    }
    let seed = shared.cfg.seed;
    let roll = || {
        let n = ROLLS.fetch_add(1, Ordering::Relaxed);
        (mix64(seed ^ mix64(n)) >> 11) as f64 / (1u64 << 53) as f64
    };
    if let Some((status, retry_after_ms)) = shared.faults.http_status(&full, &rel, roll) {
        bump(&shared.stats.http_faults);
        let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let Some(ms) = retry_after_ms else {
            return error(code, status_code_name(status), "injected fault");
        };
        // Kalshi's documents do not say where `retry_after_ms` goes; it is put in the error
        // object beside `code`, with the standard `Retry-After` header (seconds) as well.
        bump(&shared.stats.http_retry_after);
        let body = json!({"error": {
            "code": status_code_name(status),
            "message": "injected fault",
            "service": "sim",
            "retry_after_ms": ms,
        }});
        return (
            code,
            [(
                axum::http::header::RETRY_AFTER,
                ms.div_ceil(1_000).to_string(),
            )],
            Json(body),
        )
            .into_response();
    }
    next.run(req).await
}

fn wall_of(_shared: &Shared, at: Instant) -> TimestampUs {
    let now = Instant::now();
    let delta = if at >= now {
        at.duration_since(now).as_micros() as i64
    } else {
        -(now.duration_since(at).as_micros() as i64)
    };
    TimestampUs::from_micros(TimestampUs::now().micros() + delta)
}

async fn exchange_status(State(shared): St) -> Response {
    match shared.faults.maintenance_until(Instant::now()) {
        Some(until) => Json(json!({
            "exchange_active": false,
            "trading_active": false,
            "exchange_estimated_resume_time": wall_of(&shared, until).to_rfc3339_secs(),
        }))
        .into_response(),
        None => Json(json!({"exchange_active": true, "trading_active": true})).into_response(),
    }
}

async fn exchange_schedule(State(shared): St) -> Response {
    let day = json!([{"open_time": "00:00", "close_time": "23:59"}]);
    let windows: Vec<Value> = shared
        .faults
        .list()
        .into_iter()
        .filter_map(|f| match f.spec {
            crate::faults::FaultSpec::Maintenance { start, duration } => Some(json!({
                "start_datetime": wall_of(&shared, f.added + start).to_rfc3339_secs(),
                "end_datetime": wall_of(&shared, f.added + start + duration).to_rfc3339_secs(),
            })),
            _ => None,
        })
        .collect();
    let now_s = TimestampUs::now().secs();
    let start = TimestampUs::from_secs(now_s - 365 * 86_400).unwrap_or_default();
    let end = TimestampUs::from_secs(now_s + 365 * 86_400).unwrap_or_default();
    Json(json!({"schedule": {
        "standard_hours": [{
            "start_time": start.to_rfc3339_secs(),
            "end_time": end.to_rfc3339_secs(),
            "monday": day, "tuesday": day, "wednesday": day, "thursday": day,
            "friday": day, "saturday": day, "sunday": day,
        }],
        "maintenance_windows": windows,
    }}))
    .into_response()
}
