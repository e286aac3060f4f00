//! `parse_ws`: one WebSocket text frame to one [`WsEvent`].

use super::convert::{
    count, delta_time, message_time, price, required, side, taker_side, trade_prices, ws_levels,
};
use super::envelope::{Body, BodySeed, Envelope, EnvelopeSeed, MsgKind, OkBody};
use super::error::{FieldError, WsParseError};
use super::no_scale::NoScale;
use super::{SubscriptionInfo, WsEvent, lifecycle};
use crate::wire::scalar::WireStr;
use crate::wire::ws::{
    ErrorMsg, OrderbookDeltaMsg, OrderbookSnapshotMsg, SubscribedMsg, TickerMsg, TradeMsg,
};
use kd_core::records::{TradeSource, WirePos};
use kd_core::{OrderbookDelta, OrderbookSnapshot, SnapshotSource, Ticker, TimestampUs, Trade};
use serde::de::DeserializeSeed;
use std::cell::Cell;

/// Parses one WebSocket frame given as bytes (a binary frame, or text not yet checked as UTF-8).
///
/// `received_at` is the gatherer's clock when the frame arrived; it becomes the records'
/// `received_at` (and a snapshot's `exchange_ts`, which Kalshi does not send). Never panics: any
/// input gives a value or a typed error; an unknown `type` is `Ok(WsEvent::Unknown)`.
pub fn parse_ws(bytes: &[u8], received_at: TimestampUs) -> Result<WsEvent, WsParseError> {
    parse_from(
        serde_json::Deserializer::from_slice(bytes),
        ReceiveTimes::same(received_at),
        &as_received,
    )
}

/// Parses one WebSocket text frame, as [`parse_ws`] does. The WebSocket library has already
/// checked a text frame's UTF-8, so the strings inside are not checked again (a tenth of the
/// parse time of a delta when read from bytes).
pub fn parse_ws_text(text: &str, received_at: TimestampUs) -> Result<WsEvent, WsParseError> {
    parse_from(
        serde_json::Deserializer::from_str(text),
        ReceiveTimes::same(received_at),
        &as_received,
    )
}

/// When a frame arrived, on both clocks: the records keep `received_at` (the receiver's own
/// clock); what the parser has to derive as an *exchange* time (a snapshot's `exchange_ts`,
/// which Kalshi does not send; a lifecycle message's time) uses `exchange_now`, the
/// same instant on the exchange's clock. The caller converts; the parser never overwrites.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiveTimes {
    pub received_at: TimestampUs,
    pub exchange_now: TimestampUs,
}

impl ReceiveTimes {
    /// Both clocks taken as one (no offset known or wanted).
    pub fn same(at: TimestampUs) -> Self {
        ReceiveTimes {
            received_at: at,
            exchange_now: at,
        }
    }
}

/// One WebSocket data frame as it came off the socket. Text frames are parsed as text (the
/// WebSocket library has checked their UTF-8), binary ones as bytes.
#[derive(Debug, Clone, Copy)]
pub enum WsFrame<'a> {
    Text(&'a str),
    Binary(&'a [u8]),
}

impl WsFrame<'_> {
    pub fn len(&self) -> usize {
        match self {
            WsFrame::Text(t) => t.len(),
            WsFrame::Binary(b) => b.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Parses a frame with [`parse_ws_text`] or [`parse_ws`], whichever its kind calls for.
pub fn parse_ws_frame(
    frame: WsFrame<'_>,
    received_at: TimestampUs,
) -> Result<WsEvent, WsParseError> {
    parse_ws_frame_at(frame, ReceiveTimes::same(received_at))
}

/// [`parse_ws_frame`] with the receive time on both clocks (see [`ReceiveTimes`]). NO levels
/// are taken as received ([`NoScale::NoBid`]).
pub fn parse_ws_frame_at(frame: WsFrame<'_>, times: ReceiveTimes) -> Result<WsEvent, WsParseError> {
    parse_ws_frame_scaled(frame, times, &as_received)
}

/// [`parse_ws_frame_at`] with the NO side's wire scale of each subscription: `no_scale(sid)`
/// says how the NO levels of that `sid`'s snapshots and deltas arrive, and they are converted to
/// the stored NO-bid scale (see [`NoScale`]). The gatherer's entry point.
pub fn parse_ws_frame_scaled(
    frame: WsFrame<'_>,
    times: ReceiveTimes,
    no_scale: &dyn Fn(u64) -> NoScale,
) -> Result<WsEvent, WsParseError> {
    match frame {
        WsFrame::Text(text) => {
            parse_from(serde_json::Deserializer::from_str(text), times, no_scale)
        }
        WsFrame::Binary(bytes) => {
            parse_from(serde_json::Deserializer::from_slice(bytes), times, no_scale)
        }
    }
}

fn as_received(_sid: u64) -> NoScale {
    NoScale::NoBid
}

fn parse_from<'de, R: serde_json::de::Read<'de>>(
    mut de: serde_json::Deserializer<R>,
    times: ReceiveTimes,
    no_scale: &dyn Fn(u64) -> NoScale,
) -> Result<WsEvent, WsParseError> {
    let kind_seen: Cell<Option<MsgKind>> = Cell::new(None);
    let classify = |source: serde_json::Error| match kind_seen.get() {
        Some(kind) => WsParseError::Shape {
            msg_type: kind.as_str(),
            source,
        },
        None => WsParseError::Json(source),
    };
    let envelope = EnvelopeSeed {
        kind_seen: &kind_seen,
    }
    .deserialize(&mut de)
    .map_err(classify)?;
    de.end().map_err(classify)?;
    let event = build(envelope, times, no_scale)?;
    plausible(&event, times)?;
    Ok(event)
}

/// The edge check of `kd_core::validate::plausible` on the records a frame carries (and the
/// tickers beside them): a frame that fails is a parse error — never stored; its sequence
/// number goes unconsumed, so the next frame of its subscription opens a gap that is repaired
/// like a dropped message (fresh snapshot, REST trade backfill).
fn plausible(event: &WsEvent, times: ReceiveTimes) -> Result<(), WsParseError> {
    use kd_core::validate::clean_text;
    let at = times.exchange_now;
    // Checked field by field rather than through `Record`: no snapshot is copied to check it.
    let lifecycle_ok = |l: &kd_core::Lifecycle| {
        clean_text("subject", &l.subject)?;
        clean_text("kind", &l.kind)?;
        clean_text("event_type", &l.event_type)?;
        time_ok(l.exchange_ts, at)
    };
    let invalid = |msg_type: &'static str| {
        move |source: kd_core::validate::Invalid| WsParseError::Invalid { msg_type, source }
    };
    match event {
        WsEvent::Snapshot { snapshot, .. } => {
            clean_text("market_ticker", &snapshot.ticker).map_err(invalid("orderbook_snapshot"))?;
            time_ok(snapshot.exchange_ts, at).map_err(invalid("orderbook_snapshot"))
        }
        WsEvent::Delta { delta, .. } => {
            clean_text("market_ticker", &delta.ticker).map_err(invalid("orderbook_delta"))?;
            time_ok(delta.exchange_ts, at).map_err(invalid("orderbook_delta"))
        }
        WsEvent::Trade { trade, .. } => {
            clean_text("trade_id", &trade.trade_id).map_err(invalid("trade"))?;
            clean_text("market_ticker", &trade.ticker).map_err(invalid("trade"))?;
            time_ok(trade.exchange_ts, at).map_err(invalid("trade"))
        }
        WsEvent::Ticker { ticker, .. } => {
            clean_text("market_ticker", &ticker.ticker).map_err(invalid("ticker"))?;
            time_ok(ticker.exchange_ts, at).map_err(invalid("ticker"))
        }
        WsEvent::MarketLifecycle {
            lifecycle, info, ..
        } => {
            clean_text("market_ticker", &info.market_ticker).map_err(invalid(info.channel))?;
            if let Some(e) = &info.event_ticker {
                clean_text("event_ticker", e).map_err(invalid(info.channel))?;
            }
            lifecycle_ok(lifecycle).map_err(invalid(info.channel))
        }
        WsEvent::EventLifecycle {
            lifecycle,
            event_ticker,
            series_ticker,
            ..
        } => {
            clean_text("event_ticker", event_ticker).map_err(invalid("event_lifecycle"))?;
            if let Some(s) = series_ticker {
                clean_text("series_ticker", s).map_err(invalid("event_lifecycle"))?;
            }
            lifecycle_ok(lifecycle).map_err(invalid("event_lifecycle"))
        }
        _ => Ok(()),
    }
}

/// An exchange time in the plausible window around `at` (`kd_core::validate`).
fn time_ok(ts: TimestampUs, at: TimestampUs) -> Result<(), kd_core::validate::Invalid> {
    let from = kd_core::validate::PLAUSIBLE_FROM.micros();
    let until = at
        .micros()
        .saturating_add(kd_core::validate::PLAUSIBLE_AHEAD_US);
    if (from..=until).contains(&ts.micros()) {
        Ok(())
    } else {
        Err(kd_core::validate::Invalid::Time {
            field: "exchange_ts",
            micros: ts.micros(),
            from,
            until: until.saturating_add(1),
        })
    }
}

fn build(
    env: Envelope<'_>,
    times: ReceiveTimes,
    no_scale: &dyn Fn(u64) -> NoScale,
) -> Result<WsEvent, WsParseError> {
    let received_at = times.received_at;
    let Some(type_name) = env.type_name else {
        return Err(WsParseError::MissingField {
            msg_type: "envelope",
            field: "type",
        });
    };
    let kind = env.kind;
    let msg_type = kind.as_str();
    let field = |e: FieldError| WsParseError::field(msg_type, e);
    let body = match env.body {
        Body::Raw(raw) if kind != MsgKind::Unknown => {
            let mut de = serde_json::Deserializer::from_str(raw.get());
            BodySeed(kind)
                .deserialize(&mut de)
                .map_err(|source| WsParseError::Shape { msg_type, source })?
        }
        other => other,
    };
    let (sid, seq, id) = (env.sid, env.seq, env.id);
    let missing_msg = || WsParseError::MissingField {
        msg_type,
        field: "msg",
    };
    match (kind, body) {
        (MsgKind::Delta, Body::Delta(m)) => {
            let sid = required(sid, "sid").map_err(field)?;
            let delta = delta(&m, sid, seq, received_at, no_scale(sid)).map_err(field)?;
            Ok(WsEvent::Delta { sid, seq, delta })
        }
        (MsgKind::Snapshot, Body::Snapshot(m)) => {
            let sid = required(sid, "sid").map_err(field)?;
            let snapshot = snapshot(&m, sid, seq, times, no_scale(sid)).map_err(field)?;
            Ok(WsEvent::Snapshot {
                sid,
                seq,
                id,
                snapshot,
            })
        }
        (MsgKind::Trade, Body::Trade(m)) => {
            let sid = required(sid, "sid").map_err(field)?;
            let trade = trade(&m, sid, seq, received_at).map_err(field)?;
            Ok(WsEvent::Trade { sid, seq, trade })
        }
        (MsgKind::Ticker, Body::Ticker(m)) => {
            let sid = required(sid, "sid").map_err(field)?;
            let ticker = ticker(&m, sid, received_at).map_err(field)?;
            Ok(WsEvent::Ticker { sid, ticker })
        }
        (MsgKind::MarketLifecycle, Body::Lifecycle(v)) => {
            lifecycle::market(lifecycle::MARKET_KIND, *v, sid, seq, times)
        }
        (MsgKind::MultivariateLifecycle, Body::Lifecycle(v)) => {
            lifecycle::market(lifecycle::MULTIVARIATE_KIND, *v, sid, seq, times)
        }
        (MsgKind::EventLifecycle, Body::Lifecycle(v)) => lifecycle::event(*v, sid, seq, times),
        (MsgKind::EventFeeUpdate, Body::Lifecycle(v)) => lifecycle::fee_update(*v, sid, seq, times),
        (MsgKind::Subscribed, Body::Subscribed(m)) => subscribed(&m, id, sid).map_err(field),
        (MsgKind::Ok | MsgKind::ListSubscriptions, body) => Ok(ok(kind, body, id, sid, seq)),
        (MsgKind::Unsubscribed, _) => Ok(WsEvent::Unsubscribed { id, sid, seq }),
        (MsgKind::Error, Body::Error(m)) => error(&m, id, sid, seq).map_err(field),
        (MsgKind::Unknown, _) => Ok(WsEvent::Unknown {
            type_name: type_name.0.into_owned(),
            sid,
            seq,
        }),
        // A known data/response type whose `msg` is absent.
        _ => Err(missing_msg()),
    }
}

fn pos(sid: u64, seq: Option<u64>) -> WirePos {
    WirePos {
        sid: Some(sid),
        seq,
    }
}

fn text<'a>(s: &'a Option<WireStr<'_>>) -> Option<&'a str> {
    s.as_deref()
}

fn delta(
    m: &OrderbookDeltaMsg<'_>,
    sid: u64,
    seq: Option<u64>,
    received_at: TimestampUs,
    no_scale: NoScale,
) -> Result<OrderbookDelta, FieldError> {
    let ticker = required(text(&m.market_ticker), "market_ticker")?;
    let side = side(required(text(&m.side), "side")?, "side")?;
    let wire = required(
        price(text(&m.price_dollars), "price_dollars", m.price, "price")?,
        "price_dollars",
    )?;
    let price = match side {
        kd_core::Side::No => no_scale.to_stored(wire),
        kd_core::Side::Yes => wire,
    };
    let delta = required(
        count(text(&m.delta_fp), "delta_fp", m.delta, "delta")?,
        "delta_fp",
    )?;
    let exchange_ts = delta_time(m.ts.as_ref(), m.ts_ms)?;
    Ok(OrderbookDelta {
        ticker: ticker.to_owned(),
        exchange_ts,
        side,
        price,
        delta,
        occurrence: 0,
        received_at,
        pos: pos(sid, seq),
    })
}

fn snapshot(
    m: &OrderbookSnapshotMsg<'_>,
    sid: u64,
    seq: Option<u64>,
    times: ReceiveTimes,
    no_scale: NoScale,
) -> Result<OrderbookSnapshot, FieldError> {
    let ticker = required(text(&m.market_ticker), "market_ticker")?;
    // Per side: the current `_fp` form, else the transitional `*_dollars`, else legacy cents.
    let yes = match (&m.yes_dollars_fp, &m.yes_dollars, &m.yes) {
        (Some(l), _, _) => ws_levels(Some(l), "yes_dollars_fp", "yes_dollars_fp")?,
        (None, Some(l), _) => ws_levels(Some(l), "yes_dollars", "yes_dollars")?,
        (None, None, l) => ws_levels(l.as_deref(), "yes", "yes")?,
    };
    let no = match (&m.no_dollars_fp, &m.no_dollars, &m.no) {
        (Some(l), _, _) => ws_levels(Some(l), "no_dollars_fp", "no_dollars_fp")?,
        (None, Some(l), _) => ws_levels(Some(l), "no_dollars", "no_dollars")?,
        (None, None, l) => ws_levels(l.as_deref(), "no", "no")?,
    };
    let no = no_scale.levels(no);
    Ok(OrderbookSnapshot {
        ticker: ticker.to_owned(),
        source: SnapshotSource::Ws,
        exchange_ts: times.exchange_now,
        yes,
        no,
        received_at: times.received_at,
        pos: pos(sid, seq),
    })
}

fn trade(
    m: &TradeMsg<'_>,
    sid: u64,
    seq: Option<u64>,
    received_at: TimestampUs,
) -> Result<Trade, FieldError> {
    let trade_id = required(text(&m.trade_id), "trade_id")?;
    let ticker = required(text(&m.market_ticker), "market_ticker")?;
    let (yes_price, no_price) = trade_prices(
        price(
            text(&m.yes_price_dollars),
            "yes_price_dollars",
            m.yes_price,
            "yes_price",
        )?,
        price(
            text(&m.no_price_dollars),
            "no_price_dollars",
            m.no_price,
            "no_price",
        )?,
    )?;
    let count = required(
        count(text(&m.count_fp), "count_fp", m.count, "count")?,
        "count_fp",
    )?;
    Ok(Trade {
        trade_id: trade_id.to_owned(),
        ticker: ticker.to_owned(),
        exchange_ts: message_time(m.ts_ms, m.ts.as_ref(), None)?,
        yes_price,
        no_price,
        count,
        taker_side: taker_side(
            text(&m.taker_outcome_side),
            text(&m.taker_book_side),
            text(&m.taker_side),
        ),
        is_block_trade: m.is_block_trade.unwrap_or(false),
        source: TradeSource::Ws,
        received_at,
        pos: pos(sid, seq),
    })
}

fn ticker(m: &TickerMsg<'_>, sid: u64, received_at: TimestampUs) -> Result<Ticker, FieldError> {
    let ticker = required(text(&m.market_ticker), "market_ticker")?;
    Ok(Ticker {
        ticker: ticker.to_owned(),
        exchange_ts: message_time(m.ts_ms, m.ts.as_ref(), text(&m.time))?,
        price: price(text(&m.price_dollars), "price_dollars", m.price, "price")?,
        yes_bid: price(
            text(&m.yes_bid_dollars),
            "yes_bid_dollars",
            m.yes_bid,
            "yes_bid",
        )?,
        yes_ask: price(
            text(&m.yes_ask_dollars),
            "yes_ask_dollars",
            m.yes_ask,
            "yes_ask",
        )?,
        volume: count(text(&m.volume_fp), "volume_fp", m.volume, "volume")?,
        open_interest: count(
            text(&m.open_interest_fp),
            "open_interest_fp",
            m.open_interest,
            "open_interest",
        )?,
        dollar_volume: m.dollar_volume,
        dollar_open_interest: m.dollar_open_interest,
        yes_bid_size: count(
            text(&m.yes_bid_size_fp),
            "yes_bid_size_fp",
            None,
            "yes_bid_size",
        )?,
        yes_ask_size: count(
            text(&m.yes_ask_size_fp),
            "yes_ask_size_fp",
            None,
            "yes_ask_size",
        )?,
        last_trade_size: count(
            text(&m.last_trade_size_fp),
            "last_trade_size_fp",
            None,
            "last_trade_size",
        )?,
        received_at,
        pos: WirePos {
            sid: Some(sid),
            seq: None,
        },
    })
}

fn subscribed(
    m: &SubscribedMsg<'_>,
    id: Option<u64>,
    env_sid: Option<u64>,
) -> Result<WsEvent, FieldError> {
    Ok(WsEvent::Subscribed {
        id,
        channel: required(text(&m.channel), "channel")?.to_owned(),
        sid: required(m.sid.or(env_sid), "sid")?,
    })
}

fn ok(
    kind: MsgKind,
    body: Body<'_>,
    id: Option<u64>,
    sid: Option<u64>,
    seq: Option<u64>,
) -> WsEvent {
    let body = match body {
        Body::Ok(ok) => Some(*ok),
        _ => None,
    };
    match body {
        Some(OkBody::List(entries)) => WsEvent::ListSubscriptions {
            id,
            subscriptions: entries
                .into_iter()
                .map(|e| SubscriptionInfo {
                    channel: e.channel.0.into_owned(),
                    sid: e.sid,
                })
                .collect(),
        },
        Some(OkBody::Update(m)) if kind == MsgKind::Ok => WsEvent::Ok {
            id,
            sid,
            seq,
            market_tickers: m
                .market_tickers
                .unwrap_or_default()
                .into_iter()
                .map(|t| t.0.into_owned())
                .collect(),
        },
        // `list_subscriptions` with no list (or an object): no subscriptions.
        _ if kind == MsgKind::ListSubscriptions => WsEvent::ListSubscriptions {
            id,
            subscriptions: Vec::new(),
        },
        // `ok` without `msg` (or `msg: null`): an acknowledgement with no market list.
        _ => WsEvent::Ok {
            id,
            sid,
            seq,
            market_tickers: Vec::new(),
        },
    }
}

fn error(
    m: &ErrorMsg<'_>,
    id: Option<u64>,
    sid: Option<u64>,
    seq: Option<u64>,
) -> Result<WsEvent, FieldError> {
    let mut market_tickers: Vec<String> = m
        .market_tickers
        .iter()
        .flatten()
        .map(|t| t.as_str().to_owned())
        .collect();
    if let Some(t) = text(&m.market_ticker)
        && !market_tickers.iter().any(|x| x == t)
    {
        market_tickers.insert(0, t.to_owned());
    }
    Ok(WsEvent::Error {
        id,
        sid,
        seq,
        code: required(m.code, "code")?,
        msg: text(&m.msg).unwrap_or_default().to_owned(),
        market_tickers,
    })
}
