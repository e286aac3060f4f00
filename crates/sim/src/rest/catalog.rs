//! Series and events: `GET /series`, `/series/{t}`, `/events` (regular events only, as on
//! Kalshi), `/events/multivariate` (combo events), `/events/{t}` (either).

use super::params::Params;
use super::{St, bad_request, not_found};
use crate::engine::combo::{COMBO_COLLECTION, COMBO_SERIES};
use crate::objects;
use crate::shared::Shared;
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

pub(super) async fn series_list(State(shared): St, RawQuery(q): RawQuery) -> Response {
    let p = Params::parse(q);
    let ex = shared.exchange();
    let category = p.get("category");
    let mut list: Vec<Value> = (0..ex.uni.series)
        .filter(|_| category.is_none_or(|c| c == "Simulated"))
        .map(|s| objects::series(&ex, s))
        .collect();
    if has_combos(&shared) && category.is_none_or(|c| c == "Simulated") {
        list.push(objects::combo_series());
    }
    Json(json!({"series": list})).into_response()
}

/// Whether the combo series exists (combos at start or created while running).
fn has_combos(shared: &Shared) -> bool {
    shared.cfg.combo_markets > 0 || !shared.cfg.combo_create_every.is_zero()
}

pub(super) async fn series_one(State(shared): St, Path(ticker): Path<String>) -> Response {
    if ticker == COMBO_SERIES && has_combos(&shared) {
        return Json(json!({"series": objects::combo_series()})).into_response();
    }
    let ex = shared.exchange();
    match ex.uni.parse_series(&ticker) {
        Some(s) => Json(json!({"series": objects::series(&ex, s)})).into_response(),
        None => not_found("series"),
    }
}

pub(super) async fn events_list(State(shared): St, RawQuery(q): RawQuery) -> Response {
    let p = Params::parse(q);
    let limit = match p.limit(200, 200) {
        Ok(l) => l,
        Err(r) => return *r,
    };
    let start = match p.cursor() {
        Ok(c) => c.unwrap_or(0),
        Err(r) => return *r,
    };
    let status = p.get("status");
    if let Some(s) = status
        && !matches!(s, "unopened" | "open" | "closed" | "settled")
    {
        return bad_request("invalid `status`");
    }
    let nested = p.flag("with_nested_markets");
    let ex = shared.exchange();
    let series = match p.get("series_ticker") {
        Some(t) => match ex.uni.parse_series(t) {
            Some(s) => Some(s),
            None => return Json(json!({"events": [], "cursor": ""})).into_response(),
        },
        None => None,
    };
    let mut events = Vec::new();
    let mut next = String::new();
    let mut e = start.min(u64::from(ex.uni.events)) as u32;
    while e < ex.uni.events {
        let keep = series.is_none_or(|s| ex.uni.series_of_event(e) == s)
            && status.is_none_or(|s| objects::event_status(&ex, e) == s);
        if keep {
            if events.len() == limit {
                next = e.to_string();
                break;
            }
            events.push(objects::event(&ex, e, nested));
        }
        e += 1;
    }
    Json(json!({"events": events, "cursor": next})).into_response()
}

pub(super) async fn event_one(
    State(shared): St,
    Path(ticker): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let p = Params::parse(q);
    let nested = p.flag("with_nested_markets");
    let ex = shared.exchange();
    if let Some(e) = ex.parse_combo_event(&ticker) {
        let (event, markets) = (
            objects::combo_event(&ex, e, nested),
            objects::combo_event_markets(&ex, e),
        );
        return Json(json!({"event": event, "markets": markets})).into_response();
    }
    match ex.uni.parse_event(&ticker) {
        Some(e) => {
            Json(json!({"event": objects::event(&ex, e, nested), "markets": objects::event_markets(&ex, e)}))
                .into_response()
        }
        None => not_found("event"),
    }
}

/// `GET /events/multivariate`: combo events (`limit` ≤ 200, default 100, `cursor`,
/// `series_ticker`, `collection_ticker`, `with_nested_markets`).
pub(super) async fn multivariate_events(State(shared): St, RawQuery(q): RawQuery) -> Response {
    let p = Params::parse(q);
    let limit = match p.limit(100, 200) {
        Ok(l) => l,
        Err(r) => return *r,
    };
    let start = match p.cursor() {
        Ok(c) => c.unwrap_or(0),
        Err(r) => return *r,
    };
    let (series, collection) = (p.get("series_ticker"), p.get("collection_ticker"));
    if series.is_some() && collection.is_some() {
        return bad_request("`series_ticker` and `collection_ticker` cannot be used together");
    }
    let empty = series.is_some_and(|s| s != COMBO_SERIES)
        || collection.is_some_and(|c| c != COMBO_COLLECTION);
    let nested = p.flag("with_nested_markets");
    let ex = shared.exchange();
    let end = if empty { 0 } else { ex.combo_events };
    let first = start.min(u64::from(end)) as u32;
    let last = first.saturating_add(limit as u32).min(end);
    let events: Vec<Value> = (first..last)
        .map(|e| objects::combo_event(&ex, e, nested))
        .collect();
    let next = if last < end {
        last.to_string()
    } else {
        String::new()
    };
    Json(json!({"events": events, "cursor": next})).into_response()
}
