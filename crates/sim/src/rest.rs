//! REST under `/trade-api/v2`: exchange, series, events, markets, order books and trades, with
//! Kalshi's query parameters, cursor pagination, limits and error bodies; and the fault layer.

use crate::objects;
use crate::rng::mix64;
use crate::shared::Shared;
use crate::stats::bump;
use crate::ws::authorised;
use axum::Json;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use kd_core::TimestampUs;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

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

fn bad_request(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, "bad_request", message)
}

fn not_found(what: &str) -> Response {
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

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
                match (hex(b[i + 1]), hex(b[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push(h * 16 + l);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A rejected parameter's response (boxed: responses are large).
type Reject = Box<Response>;

/// Query parameters in order (repeated keys kept: `tickers=A&tickers=B`).
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(raw: Option<String>) -> Params {
        Params(
            raw.unwrap_or_default()
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (percent_decode(k), percent_decode(v))
                })
                .collect(),
        )
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| k == key && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .flat_map(|(_, v)| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    fn int(&self, key: &str) -> Result<Option<i64>, Reject> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| Box::new(bad_request(&format!("invalid `{key}`")))),
        }
    }

    fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1"))
    }

    /// `limit` within `1..=max`, `default` when absent or 0.
    fn limit(&self, default: usize, max: usize) -> Result<usize, Reject> {
        match self.int("limit")? {
            None | Some(0) => Ok(default),
            Some(n) if n < 0 || n as usize > max => Err(Box::new(bad_request(&format!(
                "`limit` must be within 1..={max}"
            )))),
            Some(n) => Ok(n as usize),
        }
    }

    fn cursor(&self) -> Result<Option<u64>, Reject> {
        match self.get("cursor") {
            None => Ok(None),
            Some(c) => c
                .parse()
                .map(Some)
                .map_err(|_| Box::new(bad_request("invalid `cursor`"))),
        }
    }
}

type St = State<Arc<Shared>>;

pub(crate) fn router(shared: Arc<Shared>) -> axum::Router {
    let api = axum::Router::new()
        .route("/exchange/status", get(exchange_status))
        .route("/exchange/schedule", get(exchange_schedule))
        .route("/series", get(series_list))
        .route("/series/{series_ticker}", get(series_one))
        .route("/events", get(events_list))
        .route("/events/{event_ticker}", get(event_one))
        .route("/markets", get(markets_list))
        .route("/markets/trades", get(trades))
        .route("/markets/orderbooks", get(orderbooks))
        .route("/markets/{ticker}", get(market_one))
        .route("/markets/{ticker}/orderbook", get(orderbook_one))
        .route("/historical/cutoff", get(historical_cutoff))
        .route("/historical/trades", get(historical_trades))
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
        && !authorised(&shared, req.headers(), req.method().as_str(), &full)
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
    if let Some(status) = shared.faults.http_status(&full, &rel, roll) {
        bump(&shared.stats.http_faults);
        let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return error(code, status_code_name(status), "injected fault");
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

async fn series_list(State(shared): St, RawQuery(q): RawQuery) -> Response {
    let p = Params::parse(q);
    let ex = shared.exchange();
    let category = p.get("category");
    let list: Vec<Value> = (0..ex.uni.series)
        .filter(|_| category.is_none_or(|c| c == "Simulated"))
        .map(|s| objects::series(&ex, s))
        .collect();
    Json(json!({"series": list})).into_response()
}

async fn series_one(State(shared): St, Path(ticker): Path<String>) -> Response {
    let ex = shared.exchange();
    match ex.uni.parse_series(&ticker) {
        Some(s) => Json(json!({"series": objects::series(&ex, s)})).into_response(),
        None => not_found("series"),
    }
}

async fn events_list(State(shared): St, RawQuery(q): RawQuery) -> Response {
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

async fn event_one(
    State(shared): St,
    Path(ticker): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let p = Params::parse(q);
    let ex = shared.exchange();
    match ex.uni.parse_event(&ticker) {
        Some(e) => {
            let nested = p.flag("with_nested_markets");
            Json(json!({"event": objects::event(&ex, e, nested), "markets": objects::event_markets(&ex, e)}))
                .into_response()
        }
        None => not_found("event"),
    }
}

async fn markets_list(State(shared): St, RawQuery(q): RawQuery) -> Response {
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
    let ex = shared.exchange();
    let count = ex.market_count();
    let tickers = p.all("tickers");
    let event = p.get("event_ticker").map(|t| ex.uni.parse_event(t));
    let series = p.get("series_ticker").map(|t| ex.uni.parse_series(t));
    if matches!(event, Some(None)) || matches!(series, Some(None)) {
        return Json(json!({"markets": [], "cursor": ""})).into_response();
    }
    let candidates: Box<dyn Iterator<Item = u32>> = if !tickers.is_empty() {
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
    let mut out = Vec::with_capacity(limit.min(1_000));
    let mut next = String::new();
    for m in candidates {
        let st = &ex.markets[m as usize];
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
        if out.len() == limit {
            next = m.to_string();
            break;
        }
        out.push(objects::market(&ex, m));
    }
    Json(json!({"markets": out, "cursor": next})).into_response()
}

async fn market_one(State(shared): St, Path(ticker): Path<String>) -> Response {
    let ex = shared.exchange();
    match ex.market_index(&ticker) {
        Some(m) => Json(json!({"market": objects::market(&ex, m)})).into_response(),
        None => not_found("market"),
    }
}

async fn orderbook_one(
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
    let mut ex = shared.exchange();
    match ex.market_index(&ticker) {
        Some(m) => {
            Json(json!({"orderbook_fp": objects::orderbook(&mut ex, m, depth.max(0) as usize)}))
                .into_response()
        }
        None => not_found("market"),
    }
}

async fn orderbooks(State(shared): St, RawQuery(q): RawQuery) -> Response {
    let p = Params::parse(q);
    let tickers = p.all("tickers");
    if tickers.is_empty() || tickers.len() > 100 {
        return bad_request("`tickers` must name 1..=100 markets");
    }
    let mut ex = shared.exchange();
    let mut books = Vec::with_capacity(tickers.len());
    for t in tickers {
        if let Some(m) = ex.market_index(&t) {
            books.push(json!({"ticker": t, "orderbook_fp": objects::orderbook(&mut ex, m, 0)}));
        }
    }
    Json(json!({"orderbooks": books})).into_response()
}

/// Trades newest first within `[min_ts, max_ts]` (Unix seconds, inclusive), paged by cursor.
fn trades_page(shared: &Shared, p: &Params, before_us: Option<i64>) -> Response {
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
    let hi = before_us.map_or(hi, |b| hi.min(b - 1));
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

async fn trades(State(shared): St, RawQuery(q): RawQuery) -> Response {
    trades_page(&shared, &Params::parse(q), None)
}

/// Trades before the historical cutoff (one hour ago in the simulator).
async fn historical_trades(State(shared): St, RawQuery(q): RawQuery) -> Response {
    let cutoff = TimestampUs::now().micros() - Duration::from_secs(3_600).as_micros() as i64;
    trades_page(&shared, &Params::parse(q), Some(cutoff))
}

async fn historical_cutoff() -> Response {
    let cutoff =
        TimestampUs::from_micros(TimestampUs::now().micros() - 3_600_000_000).to_rfc3339_secs();
    Json(json!({"market_settled_ts": cutoff, "trades_created_ts": cutoff, "orders_updated_ts": cutoff})).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parsing_keeps_repeats_and_decodes() {
        let p = Params::parse(Some("tickers=A%2DB&tickers=C,D&limit=5&x=a+b".into()));
        assert_eq!(p.all("tickers"), vec!["A-B", "C", "D"]);
        assert_eq!(p.get("x"), Some("a b"));
        assert!(matches!(p.limit(100, 1000), Ok(5)));
        assert_eq!(percent_decode("%zz%"), "%zz%");
    }
}
