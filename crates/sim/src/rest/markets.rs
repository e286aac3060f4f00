//! Markets and order books: `GET /markets` (with `mve_filter`), `/markets/{t}`,
//! `/markets/{t}/orderbook`, `/markets/orderbooks` (at most 100 tickers, as on Kalshi). Order
//! books come from the edge cache when `--rest-book-cache-ms` is set.

use super::params::Params;
use super::{St, bad_request, not_found};
use crate::engine::combo::COMBO_SERIES;
use crate::objects;
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use kd_core::TimestampUs;
use serde_json::json;

pub(super) async fn markets_list(State(shared): St, RawQuery(q): RawQuery) -> Response {
    let p = Params::parse(q);
    let limit = match p.limit(100, 1_000) {
        Ok(l) => l,
        Err(r) => return *r,
    };
    let start = match p.cursor() {
        Ok(c) => c.unwrap_or(0),
        Err(r) => return *r,
    };
    let status = p.get("status");
    if let Some(s) = status
        && crate::market::Status::Active.matches_filter(s).is_none()
    {
        return bad_request("invalid `status`: one of unopened, open, paused, closed, settled");
    }
    let mut ints = [0_i64; 7];
    let names = [
        "min_close_ts",
        "max_close_ts",
        "min_created_ts",
        "max_created_ts",
        "min_updated_ts",
        "min_settled_ts",
        "max_settled_ts",
    ];
    let mut present = [false; 7];
    for (i, n) in names.iter().enumerate() {
        match p.int(n) {
            Ok(Some(v)) => {
                ints[i] = v;
                present[i] = true;
            }
            Ok(None) => {}
            Err(r) => return *r,
        }
    }
    // `only`: combo (multivariate) markets only; `exclude`: none of them.
    let mve = match p.get("mve_filter") {
        None => None,
        Some("only") => Some(true),
        Some("exclude") => Some(false),
        Some(_) => return bad_request("invalid `mve_filter`: one of only, exclude"),
    };
    let ex = shared.exchange();
    let count = ex.market_count();
    let tickers = p.all("tickers");
    let combo_event = p.get("event_ticker").and_then(|t| ex.parse_combo_event(t));
    let event = match combo_event {
        Some(_) => None,
        None => p.get("event_ticker").map(|t| ex.uni.parse_event(t)),
    };
    let combo_series = p.get("series_ticker") == Some(COMBO_SERIES);
    let series = match combo_series {
        true => None,
        false => p.get("series_ticker").map(|t| ex.uni.parse_series(t)),
    };
    if matches!(event, Some(None)) || matches!(series, Some(None)) {
        return Json(json!({"markets": [], "cursor": ""})).into_response();
    }
    let candidates: Box<dyn Iterator<Item = u32>> = if let Some(ce) = combo_event {
        let ms: Vec<u32> = ex.combo_event_markets(ce).collect();
        Box::new(ms.into_iter().filter(move |&m| u64::from(m) >= start))
    } else if !tickers.is_empty() {
        let mut ms: Vec<u32> = tickers.iter().filter_map(|t| ex.market_index(t)).collect();
        ms.sort_unstable();
        ms.dedup();
        Box::new(ms.into_iter().filter(move |&m| u64::from(m) >= start))
    } else if let Some(Some(e)) = event {
        let first = if start <= u64::from(e) {
            u64::from(e)
        } else {
            let k = (start - u64::from(e)).div_ceil(u64::from(ex.uni.events));
            u64::from(e) + k * u64::from(ex.uni.events)
        };
        Box::new(
            (first..u64::from(count))
                .step_by(ex.uni.events as usize)
                .map(|m| m as u32),
        )
    } else {
        Box::new((start.min(u64::from(count)) as u32)..count)
    };
    // The page is written straight into one buffer: at a million markets this handler renders
    // a million objects, and a `Value` tree per page would cost more than the bytes.
    let mut body = Vec::with_capacity(limit.min(1_000) * 2_048);
    body.extend_from_slice(b"{\"markets\":[");
    let mut n = 0_usize;
    let mut next = String::new();
    for m in candidates {
        let st = &ex.markets[m as usize];
        let combo = st.combo.is_some();
        if mve.is_some_and(|want| want != combo)
            || (combo_series && !combo)
            || (combo && (series.is_some() || event.is_some()))
        {
            continue;
        }
        if let Some(Some(s)) = series
            && ex.uni.series_of_event(ex.uni.event_of(m)) != s
        {
            continue;
        }
        if let Some(f) = status
            && st.status.matches_filter(f) != Some(true)
        {
            continue;
        }
        let t = [
            st.close_s >= ints[0],
            st.close_s <= ints[1],
            st.created_s >= ints[2],
            st.created_s <= ints[3],
            st.updated_us >= ints[4].saturating_mul(1_000_000),
            st.settled_s > 0 && st.settled_s >= ints[5],
            st.settled_s > 0 && st.settled_s <= ints[6],
        ];
        if t.iter().zip(present.iter()).any(|(ok, p)| *p && !ok) {
            continue;
        }
        if n == limit {
            next = m.to_string();
            break;
        }
        let Some(obj) = objects::market_obj(&ex, m) else {
            continue;
        };
        if n > 0 {
            body.push(b',');
        }
        // Writing into a Vec cannot fail, and these structs have no maps with non-string keys.
        if serde_json::to_writer(&mut body, &obj).is_err() {
            return super::error(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "internal_server_error",
                "market object",
            );
        }
        n += 1;
    }
    drop(ex);
    body.extend_from_slice(b"],\"cursor\":\"");
    body.extend_from_slice(next.as_bytes());
    body.extend_from_slice(b"\"}");
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

pub(super) async fn market_one(State(shared): St, Path(ticker): Path<String>) -> Response {
    let ex = shared.exchange();
    match ex.market_index(&ticker) {
        Some(m) => Json(json!({"market": objects::market(&ex, m)})).into_response(),
        None => not_found("market"),
    }
}

pub(super) async fn orderbook_one(
    State(shared): St,
    Path(ticker): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let p = Params::parse(q);
    let depth = match p.int("depth") {
        Ok(d) => d.unwrap_or(0),
        Err(r) => return *r,
    };
    if depth > 100 {
        return bad_request("`depth` must be within 0..=100");
    }
    let now_us = TimestampUs::now().micros();
    let mut ex = shared.exchange();
    let book = ex
        .market_index(&ticker)
        .and_then(|m| ex.rest_book(m, now_us));
    match book {
        Some(book) => {
            Json(json!({"orderbook_fp": objects::orderbook(&book, depth.max(0) as usize)}))
                .into_response()
        }
        None => not_found("market"),
    }
}

pub(super) async fn orderbooks(State(shared): St, RawQuery(q): RawQuery) -> Response {
    let p = Params::parse(q);
    let tickers = p.all("tickers");
    if tickers.is_empty() || tickers.len() > 100 {
        return bad_request("`tickers` must name 1..=100 markets");
    }
    let now_us = TimestampUs::now().micros();
    let mut ex = shared.exchange();
    let mut books = Vec::with_capacity(tickers.len());
    for t in tickers {
        if let Some(book) = ex.market_index(&t).and_then(|m| ex.rest_book(m, now_us)) {
            books.push(json!({"ticker": t, "orderbook_fp": objects::orderbook(&book, 0)}));
        }
    }
    Json(json!({"orderbooks": books})).into_response()
}
