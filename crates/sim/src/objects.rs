//! REST objects (Market, EventData, Series, Trade, order books) as Kalshi shapes them: the union
//! of the keys `openapi.yaml` requires and those `rest-fields-3.34.md` requires.

use crate::book::Book;
use crate::engine::combo::{COMBO_COLLECTION, COMBO_SERIES, combo_event_ticker};
use crate::engine::{Exchange, TradeRow};
use crate::market::{Status, initial_book};
use crate::rng;
use kd_core::{Count, Price, Side, TimestampUs};
use serde_json::{Value, json};

fn dollars(units: i64) -> String {
    Price::new(units.clamp(0, 100_000))
        .map(Price::to_dollars)
        .unwrap_or_default()
}

fn secs_rfc(s: i64) -> String {
    TimestampUs::from_micros(s.saturating_mul(1_000_000)).to_rfc3339_secs()
}

fn fp(h: i64) -> String {
    Count::new(h).to_fp()
}

/// One leg of a combo market (`mve_selected_legs`).
#[derive(serde::Serialize)]
pub struct Leg {
    event_ticker: String,
    market_ticker: String,
    side: &'static str,
}

/// The `Market` object, as a struct rather than a `serde_json::Value`: `GET /markets` renders a
/// million of them at the 1 M-market scale, and a `Value` costs a map insert and two
/// allocations per key (~45 keys) where this serializes straight into the page's buffer.
#[derive(serde::Serialize)]
pub struct MarketObj {
    ticker: String,
    event_ticker: String,
    market_type: &'static str,
    title: String,
    subtitle: String,
    yes_sub_title: String,
    no_sub_title: String,
    created_time: String,
    updated_time: String,
    open_time: String,
    close_time: String,
    expected_expiration_time: String,
    expiration_time: String,
    latest_expiration_time: String,
    settlement_timer_seconds: u32,
    status: &'static str,
    notional_value_dollars: &'static str,
    yes_bid_dollars: String,
    yes_bid_size_fp: String,
    yes_ask_dollars: String,
    yes_ask_size_fp: String,
    no_bid_dollars: String,
    no_ask_dollars: String,
    last_price_dollars: String,
    previous_yes_bid_dollars: String,
    previous_yes_ask_dollars: String,
    previous_price_dollars: String,
    volume_fp: String,
    volume_24h_fp: String,
    liquidity_dollars: &'static str,
    open_interest_fp: String,
    result: &'static str,
    can_close_early: bool,
    fractional_trading_enabled: bool,
    expiration_value: &'static str,
    // SDK 3.34 validates it: `default` or `floor` (rest-fields-3.34.md, WIRE.md).
    settlement_bounds_type: &'static str,
    rules_primary: String,
    rules_secondary: &'static str,
    price_level_structure: &'static str,
    price_ranges: [PriceRange; 1],
    strike_type: &'static str,
    floor_strike: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    settlement_value_dollars: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    settlement_ts: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mve_collection_ticker: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mve_selected_legs: Option<Vec<Leg>>,
}

#[derive(serde::Serialize)]
pub struct PriceRange {
    start: &'static str,
    end: &'static str,
    step: &'static str,
}

/// The `Market` object of market `m`.
pub fn market(ex: &Exchange, m: u32) -> Value {
    market_obj(ex, m)
        .and_then(|o| serde_json::to_value(o).ok())
        .unwrap_or(Value::Null)
}

/// The `Market` object of market `m`, ready to serialize; `None` for an unknown market.
pub fn market_obj(ex: &Exchange, m: u32) -> Option<MarketObj> {
    let uni = &ex.uni;
    let st = ex.markets.get(m as usize)?;
    let e = uni.event_of(m);
    let strike = uni.strike(m);
    let ticks = uni.ticks(m);
    // Best prices from the live book, or from the initial book a cold market would have.
    let cold;
    let book = match st.hot.as_deref() {
        Some(h) => &h.book,
        None => {
            cold = initial_book(ex.seed, uni, m);
            &cold
        }
    };
    let trading = matches!(st.status, Status::Active | Status::Inactive);
    let (yes_bid, yes_bid_size) = if trading {
        book.best(Side::Yes).unwrap_or((0, 0))
    } else {
        (0, 0)
    };
    let (no_bid, no_bid_size) = if trading {
        book.best(Side::No).unwrap_or((0, 0))
    } else {
        (0, 0)
    };
    let yes_ask = 100_000 - no_bid;
    let no_ask = 100_000 - yes_bid;
    let result = match st.result {
        Some(Side::Yes) => "yes",
        Some(Side::No) => "no",
        None => "",
    };
    let combo = ex.combo_of(m);
    Some(MarketObj {
        ticker: ex.ticker(m),
        event_ticker: ex.event_ticker_of(m),
        market_type: "binary",
        title: format!("Will simulated event {e} be above {strike}?"),
        subtitle: format!("{strike}"),
        yes_sub_title: format!("Above {strike}"),
        no_sub_title: format!("Not above {strike}"),
        created_time: secs_rfc(st.created_s),
        updated_time: TimestampUs::from_micros(st.updated_us).to_rfc3339(),
        open_time: secs_rfc(st.open_s),
        close_time: secs_rfc(st.close_s),
        expected_expiration_time: secs_rfc(st.close_s + 600),
        expiration_time: secs_rfc(st.close_s + 7 * 86_400),
        latest_expiration_time: secs_rfc(st.close_s + 7 * 86_400),
        settlement_timer_seconds: 300,
        status: st.status.as_str(),
        notional_value_dollars: "1.0000",
        yes_bid_dollars: dollars(yes_bid),
        yes_bid_size_fp: fp(yes_bid_size),
        yes_ask_dollars: dollars(yes_ask),
        yes_ask_size_fp: fp(no_bid_size),
        no_bid_dollars: dollars(no_bid),
        no_ask_dollars: dollars(no_ask),
        last_price_dollars: dollars(st.last_price),
        previous_yes_bid_dollars: dollars(yes_bid),
        previous_yes_ask_dollars: dollars(yes_ask),
        previous_price_dollars: dollars(st.previous_price),
        volume_fp: fp(st.volume),
        volume_24h_fp: fp(st.volume / 10),
        liquidity_dollars: "0.0000",
        open_interest_fp: fp(st.open_interest),
        result,
        can_close_early: true,
        fractional_trading_enabled: true,
        expiration_value: "",
        settlement_bounds_type: "default",
        rules_primary: format!("Resolves Yes if simulated event {e} is above {strike}."),
        rules_secondary: "",
        price_level_structure: ticks.name(),
        price_ranges: [PriceRange {
            start: "0.0000",
            end: "1.0000",
            step: ticks.step_dollars(),
        }],
        strike_type: "greater",
        floor_strike: strike,
        settlement_value_dollars: st
            .result
            .map(|r| if r == Side::Yes { "1.0000" } else { "0.0000" }),
        settlement_ts: (st.settled_s > 0).then(|| secs_rfc(st.settled_s)),
        mve_collection_ticker: combo.map(|_| COMBO_COLLECTION),
        mve_selected_legs: combo.map(|c| {
            c.legs
                .iter()
                .map(|&(leg, side)| Leg {
                    event_ticker: ex.event_ticker_of(leg),
                    market_ticker: ex.ticker(leg),
                    side: side.as_str(),
                })
                .collect()
        }),
    })
}

/// The status an event shows: open if any market trades, else unopened, closed or settled.
pub fn event_status(ex: &Exchange, e: u32) -> &'static str {
    status_of(ex, regular_event_markets(ex, e))
}

/// Markets of regular event `e` (combo markets share the index space but not the events).
pub fn regular_event_markets(ex: &Exchange, e: u32) -> impl Iterator<Item = u32> + '_ {
    ex.uni
        .markets_of_event(e, ex.market_count())
        .filter(move |&m| !ex.is_combo(m))
}

/// The event-level status of a set of markets.
fn status_of(ex: &Exchange, markets: impl Iterator<Item = u32>) -> &'static str {
    let mut best = None;
    for m in markets {
        let s = ex.markets[m as usize].status;
        let rank = match s {
            Status::Active | Status::Inactive => return "open",
            Status::Initialized => 0,
            Status::Closed | Status::Determined => 1,
            Status::Finalized => 2,
        };
        best = Some(best.map_or(rank, |b: i32| b.min(rank)));
    }
    match best {
        Some(0) => "unopened",
        Some(1) => "closed",
        _ => "settled",
    }
}

/// The `EventData` object; `nested` adds its markets.
pub fn event(ex: &Exchange, e: u32, nested: bool) -> Value {
    let uni = &ex.uni;
    let mut v = json!({
        "event_ticker": uni.event_ticker(e),
        "series_ticker": uni.series_ticker(uni.series_of_event(e)),
        "sub_title": format!("Event {e}"),
        "title": uni.event_title(e),
        "collateral_return_type": "",
        "mutually_exclusive": false,
        "available_on_brokers": true,
        "product_metadata": {},
        "settlement_sources": [],
        "category": "Simulated",
        "strike_period": "day",
        "last_updated_ts": TimestampUs::from_micros(0).to_rfc3339_secs(),
    });
    if ex.fee_overrides.contains(&e) {
        v["fee_type_override"] = json!("quadratic_with_maker_fees");
        v["fee_multiplier_override"] = json!(2);
    }
    if nested {
        v["markets"] = Value::Array(event_markets(ex, e));
    }
    v
}

pub fn event_markets(ex: &Exchange, e: u32) -> Vec<Value> {
    regular_event_markets(ex, e)
        .map(|m| market(ex, m))
        .collect()
}

/// The `EventData` of combo event `e`; `nested` adds its markets.
pub fn combo_event(ex: &Exchange, e: u32, nested: bool) -> Value {
    let mut v = json!({
        "event_ticker": combo_event_ticker(e),
        "series_ticker": COMBO_SERIES,
        "sub_title": format!("Combo {e}"),
        "title": format!("Simulated combo {}", combo_event_ticker(e)),
        "collateral_return_type": "",
        "mutually_exclusive": false,
        "available_on_brokers": false,
        "product_metadata": {},
        "settlement_sources": [],
        "category": "Simulated",
        "last_updated_ts": TimestampUs::from_micros(0).to_rfc3339_secs(),
    });
    if nested {
        v["markets"] = Value::Array(combo_event_markets(ex, e));
    }
    v
}

pub fn combo_event_markets(ex: &Exchange, e: u32) -> Vec<Value> {
    ex.combo_event_markets(e).map(|m| market(ex, m)).collect()
}

/// The status of combo event `e` (as for regular events).
pub fn combo_event_status(ex: &Exchange, e: u32) -> &'static str {
    status_of(ex, ex.combo_event_markets(e))
}

/// The `Series` of every combo event.
pub fn combo_series() -> Value {
    json!({
        "ticker": COMBO_SERIES,
        "frequency": "custom",
        "title": "Simulated combos",
        "category": "Simulated",
        "categories": ["Simulated"],
        "tags": [],
        "settlement_sources": [{"name": "Simulator", "url": "http://127.0.0.1/"}],
        "contract_url": "http://127.0.0.1/contract",
        "contract_terms_url": "http://127.0.0.1/terms",
        // `quadratic_with_combo_maker_fees` is in SDK 3.34's enum but not openapi 3.13's.
        "fee_type": "quadratic",
        "fee_multiplier": 1,
        "additional_prohibitions": [],
        "product_metadata": {},
    })
}

/// The `Series` object.
pub fn series(ex: &Exchange, s: u32) -> Value {
    let uni = &ex.uni;
    json!({
        "ticker": uni.series_ticker(s),
        "frequency": "daily",
        "title": uni.series_title(s),
        "category": "Simulated",
        "categories": ["Simulated"],
        "tags": [],
        "settlement_sources": [{"name": "Simulator", "url": "http://127.0.0.1/"}],
        "contract_url": "http://127.0.0.1/contract",
        "contract_terms_url": "http://127.0.0.1/terms",
        "fee_type": "quadratic",
        "fee_multiplier": 1,
        "additional_prohibitions": [],
        "product_metadata": {},
    })
}

/// The REST `Trade` object.
pub fn trade(ex: &Exchange, t: &TradeRow) -> Value {
    let taker = if t.taker_yes { "yes" } else { "no" };
    json!({
        "trade_id": rng::trade_id(ex.seed, t.counter),
        "ticker": ex.ticker(t.market),
        "count_fp": fp(t.count),
        "yes_price_dollars": dollars(i64::from(t.yes_price)),
        "no_price_dollars": dollars(100_000 - i64::from(t.yes_price)),
        "taker_side": taker,
        "taker_outcome_side": taker,
        "taker_book_side": if t.taker_yes { "bid" } else { "ask" },
        "created_time": TimestampUs::from_micros(t.ts_us).to_rfc3339(),
        "is_block_trade": false,
    })
}

/// `OrderbookCountFp` of a book, `depth` best levels per side (0: all).
pub fn orderbook(book: &Book, depth: usize) -> Value {
    let mut yes = String::new();
    let mut no = String::new();
    book.write_pairs(Side::Yes, depth, &mut yes);
    book.write_pairs(Side::No, depth, &mut no);
    let parse = |s: &str| serde_json::from_str::<Value>(s).unwrap_or_else(|_| json!([]));
    json!({"yes_dollars": parse(&yes), "no_dollars": parse(&no)})
}
