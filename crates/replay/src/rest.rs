//! Kalshi's REST endpoints, answered as of the replay clock: `/exchange/status`, `/markets`,
//! `/markets/{ticker}`, `/markets/{ticker}/orderbook`, `/markets/trades`.
//!
//! Market objects are production's stored metadata (the latest Kalshi object it has, not the
//! object as of the replay clock: production keeps one row per market).

use crate::Shared;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use kd_core::{Side, TimestampUs};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

/// Prefix of Kalshi's REST API.
pub const REST_PREFIX: &str = "/trade-api/v2";

pub(crate) fn auth_error() -> Json<Value> {
    Json(
        json!({"error": {"code": "authentication_error", "message": "invalid or missing API key signature", "service": "replay"}}),
    )
}

fn not_found(what: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"error": {"code": "not_found", "message": format!("{what} not found"), "service": "replay"}})),
    )
        .into_response()
}

fn guard(shared: &Shared, headers: &HeaderMap, uri: &Uri) -> Option<Response> {
    (!shared.authorised(headers, "GET", uri.path()))
        .then(|| (StatusCode::UNAUTHORIZED, auth_error()).into_response())
}

fn raw(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

pub(crate) async fn status(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    if let Some(r) = guard(&shared, &headers, &uri) {
        return r;
    }
    let now = shared.clock.now();
    Json(json!({
        "exchange_active": true,
        "trading_active": now < shared.clock.to,
        "replay_time": now.to_rfc3339(),
    }))
    .into_response()
}

pub(crate) async fn markets(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(r) = guard(&shared, &headers, &uri) {
        return r;
    }
    let wanted: Option<Vec<&str>> = q.get("tickers").map(|t| t.split(',').collect());
    let list: Vec<Value> = shared
        .data
        .markets
        .iter()
        .filter(|m| {
            wanted
                .as_ref()
                .is_none_or(|w| w.contains(&m.ticker.as_str()))
        })
        .filter(|m| {
            q.get("event_ticker")
                .is_none_or(|e| m.event_ticker.as_deref() == Some(e.as_str()))
        })
        .map(|m| raw(&m.raw))
        .collect();
    Json(json!({"markets": list, "cursor": ""})).into_response()
}

pub(crate) async fn market(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    uri: Uri,
    Path(ticker): Path<String>,
) -> Response {
    if let Some(r) = guard(&shared, &headers, &uri) {
        return r;
    }
    match shared.data.markets.iter().find(|m| m.ticker == ticker) {
        Some(m) => Json(json!({"market": raw(&m.raw)})).into_response(),
        None => not_found("market"),
    }
}

pub(crate) async fn orderbook(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    uri: Uri,
    Path(ticker): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(r) = guard(&shared, &headers, &uri) {
        return r;
    }
    let depth = q
        .get("depth")
        .and_then(|d| d.parse::<usize>().ok())
        .filter(|&d| d > 0)
        .unwrap_or(usize::MAX);
    let known = shared.data.books.contains_key(&ticker)
        || shared.data.markets.iter().any(|m| m.ticker == ticker);
    if !known {
        return not_found("market");
    }
    let book = shared
        .data
        .book_at(&ticker, shared.clock.now())
        .unwrap_or_default();
    // Kalshi's REST book: levels ascending by price, the best `depth` of each side.
    let side = |s: Side| -> Vec<Value> {
        let map = if s == Side::Yes { &book.yes } else { &book.no };
        let skip = map.len().saturating_sub(depth);
        map.iter()
            .skip(skip)
            .map(|(p, c)| json!([p.to_dollars(), c.to_fp()]))
            .collect()
    };
    Json(json!({"orderbook_fp": {"yes_dollars": side(Side::Yes), "no_dollars": side(Side::No)}}))
        .into_response()
}

fn time_param(q: &HashMap<String, String>, key: &str) -> Option<TimestampUs> {
    // Kalshi's min_ts/max_ts are Unix seconds.
    q.get(key)
        .and_then(|v| v.parse::<i64>().ok())
        .map(|s| TimestampUs::from_micros(s.saturating_mul(1_000_000)))
}

pub(crate) async fn trades(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(r) = guard(&shared, &headers, &uri) {
        return r;
    }
    let now = shared.clock.now();
    let limit = q
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(100)
        .clamp(1, 1000);
    let offset = q
        .get("cursor")
        .and_then(|c| c.parse::<usize>().ok())
        .unwrap_or(0);
    let (min, max) = (time_param(&q, "min_ts"), time_param(&q, "max_ts"));
    // Newest first, as Kalshi lists them; nothing after the replay clock.
    let matching: Vec<&kd_core::Trade> = shared
        .data
        .trades
        .iter()
        .rev()
        .filter(|t| t.exchange_ts <= now)
        .filter(|t| q.get("ticker").is_none_or(|k| &t.ticker == k))
        .filter(|t| min.is_none_or(|m| t.exchange_ts >= m))
        .filter(|t| max.is_none_or(|m| t.exchange_ts <= m))
        .skip(offset)
        .take(limit + 1)
        .collect();
    let more = matching.len() > limit;
    let list: Vec<Value> = matching
        .iter()
        .take(limit)
        .map(|t| {
            let side = t.taker_side.map(Side::as_str);
            json!({
                "trade_id": t.trade_id,
                "ticker": t.ticker,
                "yes_price_dollars": t.yes_price.to_dollars(),
                "no_price_dollars": t.no_price.to_dollars(),
                "count_fp": t.count.to_fp(),
                "taker_side": side,
                "taker_outcome_side": side,
                "is_block_trade": t.is_block_trade,
                "created_time": t.exchange_ts.to_rfc3339(),
            })
        })
        .collect();
    let cursor = if more {
        (offset + limit).to_string()
    } else {
        String::new()
    };
    Json(json!({"trades": list, "cursor": cursor})).into_response()
}
