//! Lifecycle messages to [`Lifecycle`] records: `market_lifecycle_v2` and
//! `multivariate_market_lifecycle` (a combo market's lifecycle, same shape, on its own channel
//! since March 2026), `event_lifecycle` (either channel) and `event_fee_update`
//! (`market_lifecycle_v2`). `kind` is the message type, so each keeps its own name downstream.
//!
//! The payload is the `msg` object re-serialised canonically — keys sorted at every level, no
//! whitespace — so that the copies three gatherers receive hash the same whatever order the
//! exchange used. The sorting is done here explicitly rather than relying on serde_json's default
//! `BTreeMap`, which another crate enabling `preserve_order` would silently change.
//!
//! `exchange_ts`: lifecycle messages carry no time of their own (the payload's `open_ts`,
//! `close_ts`, … are the event's times, often in the future), so every one is filed under the
//! gatherer's estimate of the exchange's clock at receipt (`times.exchange_now`, clock-corrected,
//! to the µs). Never bucketed: a bucket merged two toggles of one market within a minute into one
//! row. Copies of one message from several gatherers differ by milliseconds; the deduplicator
//! makes them one row by the rule of `kd_core::identity::lifecycle`.

use super::convert::{num_price, opt_secs, required};
use super::error::{FieldError, WsParseError};
use super::{MarketLifecycleInfo, WsEvent};
use crate::wire::ws::{EventFeeUpdateMsg, EventLifecycleMsg, MarketLifecycleMsg};
use kd_core::records::{Lifecycle, WirePos};
use serde::Deserialize;
use serde_json::Value;

pub(crate) const MARKET_KIND: &str = "market_lifecycle_v2";
pub(crate) const MULTIVARIATE_KIND: &str = "multivariate_market_lifecycle";
pub(crate) const EVENT_KIND: &str = "event_lifecycle";
pub(crate) const FEE_KIND: &str = "event_fee_update";

/// The fixed metric label of a lifecycle record's kind (`kind` is one of the constants above).
pub(crate) fn kind_name(kind: &str) -> &'static str {
    match kind {
        MULTIVARIATE_KIND => MULTIVARIATE_KIND,
        EVENT_KIND => EVENT_KIND,
        FEE_KIND => FEE_KIND,
        _ => MARKET_KIND,
    }
}

/// Serde's derived structs also read arrays positionally; a lifecycle `msg` must be an object.
fn require_object(payload: &Value, msg_type: &'static str) -> Result<(), WsParseError> {
    if payload.is_object() {
        Ok(())
    } else {
        Err(WsParseError::Shape {
            msg_type,
            source: serde::de::Error::custom("msg is not a JSON object"),
        })
    }
}

/// A market's lifecycle message, of either channel (`kind` names it).
pub(crate) fn market(
    kind: &'static str,
    payload: Value,
    sid: Option<u64>,
    seq: Option<u64>,
    times: super::ws::ReceiveTimes,
) -> Result<WsEvent, WsParseError> {
    let shape = |source| WsParseError::Shape {
        msg_type: kind,
        source,
    };
    let field = |e| WsParseError::field(kind, e);
    require_object(&payload, kind)?;
    let msg = MarketLifecycleMsg::deserialize(&payload).map_err(shape)?;
    let sid = required(sid, "sid").map_err(field)?;
    let info = market_info(kind, &msg).map_err(field)?;
    let lifecycle = filed(
        info.market_ticker.clone(),
        kind.to_owned(),
        info.event_type.clone(),
        &payload,
        (sid, seq),
        times,
    );
    Ok(WsEvent::MarketLifecycle {
        sid,
        seq,
        lifecycle,
        info,
    })
}

fn market_info(
    channel: &'static str,
    msg: &MarketLifecycleMsg<'_>,
) -> Result<MarketLifecycleInfo, FieldError> {
    let meta = msg.additional_metadata.as_ref();
    Ok(MarketLifecycleInfo {
        channel,
        market_ticker: required(msg.market_ticker.as_deref(), "market_ticker")?.to_owned(),
        event_type: required(msg.event_type.as_deref(), "event_type")?.to_owned(),
        event_ticker: meta
            .and_then(|m| m.event_ticker.as_deref())
            .map(str::to_owned),
        open_ts: opt_secs(msg.open_ts.as_ref(), "open_ts")?,
        close_ts: opt_secs(msg.close_ts.as_ref(), "close_ts")?,
        determination_ts: opt_secs(msg.determination_ts.as_ref(), "determination_ts")?,
        settled_ts: opt_secs(msg.settled_ts.as_ref(), "settled_ts")?,
        expected_expiration_ts: opt_secs(
            meta.and_then(|m| m.expected_expiration_ts.as_ref()),
            "expected_expiration_ts",
        )?,
        result: msg.result.as_deref().map(str::to_owned),
        settlement_value: msg
            .settlement_value
            .as_ref()
            .map(|v| num_price(v, "settlement_value"))
            .transpose()?,
        is_deactivated: msg.is_deactivated,
        title: meta.and_then(|m| m.title.as_deref()).map(str::to_owned),
        price_level_structure: msg.price_level_structure.as_deref().map(str::to_owned),
    })
}

pub(crate) fn event(
    payload: Value,
    sid: Option<u64>,
    seq: Option<u64>,
    times: super::ws::ReceiveTimes,
) -> Result<WsEvent, WsParseError> {
    let field = |e| WsParseError::field(EVENT_KIND, e);
    require_object(&payload, EVENT_KIND)?;
    let msg = EventLifecycleMsg::deserialize(&payload).map_err(|source| WsParseError::Shape {
        msg_type: EVENT_KIND,
        source,
    })?;
    let sid = required(sid, "sid").map_err(field)?;
    let event_ticker = required(msg.event_ticker.as_deref(), "event_ticker")
        .map_err(field)?
        .to_owned();
    let series_ticker = msg.series_ticker.as_deref().map(str::to_owned);
    let lifecycle = filed(
        event_ticker.clone(),
        EVENT_KIND.to_owned(),
        "created".to_owned(),
        &payload,
        (sid, seq),
        times,
    );
    Ok(WsEvent::EventLifecycle {
        sid,
        seq,
        lifecycle,
        event_ticker,
        series_ticker,
    })
}

/// `event_fee_update`: an event's fee override set or cleared (subject: the event; the
/// override is in the payload; `event_type` repeats the kind, there being one).
pub(crate) fn fee_update(
    payload: Value,
    sid: Option<u64>,
    seq: Option<u64>,
    times: super::ws::ReceiveTimes,
) -> Result<WsEvent, WsParseError> {
    let field = |e| WsParseError::field(FEE_KIND, e);
    require_object(&payload, FEE_KIND)?;
    let msg = EventFeeUpdateMsg::deserialize(&payload).map_err(|source| WsParseError::Shape {
        msg_type: FEE_KIND,
        source,
    })?;
    let sid = required(sid, "sid").map_err(field)?;
    let event_ticker = required(msg.event_ticker.as_deref(), "event_ticker")
        .map_err(field)?
        .to_owned();
    let lifecycle = filed(
        event_ticker.clone(),
        FEE_KIND.to_owned(),
        FEE_KIND.to_owned(),
        &payload,
        (sid, seq),
        times,
    );
    Ok(WsEvent::EventLifecycle {
        sid,
        seq,
        lifecycle,
        event_ticker,
        series_ticker: None,
    })
}

/// A lifecycle record as every lifecycle message files it: at its receipt on the exchange clock
/// (docs/decisions.md, "Lifecycle identities"), with the canonical payload.
fn filed(
    subject: String,
    kind: String,
    event_type: String,
    payload: &Value,
    (sid, seq): (u64, Option<u64>),
    times: super::ws::ReceiveTimes,
) -> Lifecycle {
    Lifecycle {
        subject,
        kind,
        event_type,
        exchange_ts: times.exchange_now,
        payload: canonical_json(payload),
        received_at: times.received_at,
        pos: WirePos {
            sid: Some(sid),
            seq,
        },
    }
}

/// Serializes a JSON value with object keys sorted (by their UTF-8 bytes) at every level and no
/// whitespace. Numbers keep serde_json's text form; strings use JSON escaping.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(k, out);
                out.push(':');
                write_canonical(v, out);
            }
            out.push('}');
        }
    }
}

fn write_string(s: &str, out: &mut String) {
    // Serializing a &str cannot fail; the fallback keeps this total without a panic path.
    match serde_json::to_string(s) {
        Ok(quoted) => out.push_str(&quoted),
        Err(_) => out.push_str("\"\""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_keys_at_every_level() -> Result<(), serde_json::Error> {
        let a: Value = serde_json::from_str(r#"{"b":1,"a":{"y":[1,{"d":2,"c":"\n"}],"x":null}}"#)?;
        let b: Value = serde_json::from_str(r#"{"a":{"x":null,"y":[1,{"c":"\n","d":2}]},"b":1}"#)?;
        assert_eq!(canonical_json(&a), canonical_json(&b));
        assert_eq!(
            canonical_json(&a),
            r#"{"a":{"x":null,"y":[1,{"c":"\n","d":2}]},"b":1}"#
        );
        Ok(())
    }
}
