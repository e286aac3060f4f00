//! Trades: `GET /markets/trades` (the live tier), `/historical/trades` and `/historical/cutoff`.
//!
//! The cutoff is `--historical-cutoff-lag-s` behind now, to the second, so it advances while
//! the simulator runs. A trade created before it is served only by `/historical/trades`, any
//! other only by `/markets/trades` (openapi: "Trades that were filled before the historical
//! cutoff are available via this endpoint"; WIRE.md "2026 changes"). Markets are not archived:
//! `market_settled_ts` sits a year back, before any simulated settlement, so every market stays
//! on `/markets`.

use super::St;
use super::params::Params;
use crate::objects;
use crate::shared::Shared;
use axum::Json;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use kd_core::TimestampUs;
use serde_json::json;

/// Which tier a trades request reads.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Tier {
    Live,
    Historical,
}

/// The trades cutoff now (µs, a whole second).
fn trades_cutoff_us(shared: &Shared) -> i64 {
    let lag = i64::try_from(shared.cfg.historical_cutoff_lag.as_micros()).unwrap_or(i64::MAX);
    let at = TimestampUs::now().micros().saturating_sub(lag);
    at.div_euclid(1_000_000) * 1_000_000
}

/// Trades newest first within `[min_ts, max_ts]` (Unix seconds, inclusive) and the tier,
/// paged by cursor.
fn trades_page(shared: &Shared, p: &Params, tier: Tier) -> Response {
    let limit = match p.limit(100, 1_000) {
        Ok(l) => l,
        Err(r) => return *r,
    };
    let cursor = match p.cursor() {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let (min_ts, max_ts) = match (p.int("min_ts"), p.int("max_ts")) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(r), _) | (_, Err(r)) => return *r,
    };
    let lo = min_ts.map_or(i64::MIN, |s| s.saturating_mul(1_000_000));
    let hi = max_ts.map_or(i64::MAX, |s| {
        s.saturating_mul(1_000_000).saturating_add(999_999)
    });
    let cutoff = trades_cutoff_us(shared);
    let (lo, hi) = match tier {
        Tier::Live => (lo.max(cutoff), hi),
        Tier::Historical => (lo, hi.min(cutoff - 1)),
    };
    let ex = shared.exchange();
    let ticker = p.get("ticker");
    let positions: Option<&[u32]> = match ticker {
        Some(t) => match ex.market_index(t) {
            Some(m) => Some(ex.trades_by_market.get(&m).map_or(&[][..], Vec::as_slice)),
            None => return Json(json!({"trades": [], "cursor": ""})).into_response(),
        },
        None => None,
    };
    let total = positions.map_or(ex.trades.len(), <[u32]>::len);
    // The cursor is the position (exclusive) to continue below.
    let mut pos = cursor.map_or(total, |c| (c as usize).min(total));
    let mut out = Vec::with_capacity(limit.min(1_000));
    let mut next = String::new();
    // Trades are stored in publish order; times are non-decreasing per market and nearly so
    // overall, so a scan may stop a little below the window.
    let slack = 5_000_000;
    while pos > 0 {
        let idx = positions.map_or(pos - 1, |ps| ps[pos - 1] as usize);
        let t = &ex.trades[idx];
        if t.ts_us < lo.saturating_sub(slack) {
            break;
        }
        if t.ts_us >= lo && t.ts_us <= hi {
            if out.len() == limit {
                next = pos.to_string();
                break;
            }
            out.push(objects::trade(&ex, t));
        }
        pos -= 1;
    }
    Json(json!({"trades": out, "cursor": next})).into_response()
}

pub(super) async fn trades(State(shared): St, RawQuery(q): RawQuery) -> Response {
    trades_page(&shared, &Params::parse(q), Tier::Live)
}

/// Trades created before the historical cutoff, with the same parameters and response.
pub(super) async fn historical_trades(State(shared): St, RawQuery(q): RawQuery) -> Response {
    trades_page(&shared, &Params::parse(q), Tier::Historical)
}

/// `GetHistoricalCutoffResponse`.
pub(super) async fn historical_cutoff(State(shared): St) -> Response {
    let trades = TimestampUs::from_micros(trades_cutoff_us(&shared)).to_rfc3339_secs();
    let year_us = 365 * 86_400 * 1_000_000_i64;
    let settled = TimestampUs::from_micros(
        TimestampUs::now().micros().div_euclid(1_000_000) * 1_000_000 - year_us,
    )
    .to_rfc3339_secs();
    Json(json!({
        "market_settled_ts": settled,
        "trades_created_ts": trades,
        "orders_updated_ts": trades,
    }))
    .into_response()
}
