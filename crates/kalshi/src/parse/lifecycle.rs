//! `market_lifecycle_v2` and `event_lifecycle` messages to [`Lifecycle`] records.
//!
//! The payload is the `msg` object re-serialised canonically — keys sorted at every level, no
//! whitespace — so that the copies three gatherers receive hash the same whatever order the
//! exchange used. The sorting is done here explicitly rather than relying on serde_json's default
//! `BTreeMap`, which another crate enabling `preserve_order` would silently change.
//!
//! `exchange_ts` (lifecycle messages carry no message time): the payload's own time for the
//! event type — `created` → `open_ts`, `close_date_updated` → `close_ts`, `determined` →
//! `determination_ts`, `settled` → `settled_ts` — else the receive time truncated to
//! [`LIFECYCLE_BUCKET_US`]. `created` uses `open_ts` because it is the only time a `created`
//! message carries that every gatherer sees identically (it may lie in the future; it is an
//! identity component, not a claim about when the message was sent). `event_lifecycle`,
//! `activated`, `deactivated`, `metadata_updated` and `price_level_structure_updated` carry no
//! time of their own and use the bucket.

use super::convert::{num_price, opt_secs, required};
use super::error::{FieldError, WsParseError};
use super::{MarketLifecycleInfo, WsEvent};
use crate::wire::ws::{EventLifecycleMsg, MarketLifecycleMsg};
use kd_core::TimestampUs;
use kd_core::records::{LIFECYCLE_BUCKET_US, Lifecycle, WirePos};
use serde::Deserialize;
use serde_json::Value;

pub(crate) const MARKET_KIND: &str = "market_lifecycle_v2";
pub(crate) const EVENT_KIND: &str = "event_lifecycle";

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

/// The receive time truncated to the lifecycle bucket.
pub fn lifecycle_bucket(received_at: TimestampUs) -> TimestampUs {
    TimestampUs::from_micros(
        received_at.micros().div_euclid(LIFECYCLE_BUCKET_US) * LIFECYCLE_BUCKET_US,
    )
}

pub(crate) fn market(
    payload: Value,
    sid: Option<u64>,
    seq: Option<u64>,
    times: super::ws::ReceiveTimes,
) -> Result<WsEvent, WsParseError> {
    let received_at = times.received_at;
    let shape = |source| WsParseError::Shape {
        msg_type: MARKET_KIND,
        source,
    };
    let field = |e| WsParseError::field(MARKET_KIND, e);
    require_object(&payload, MARKET_KIND)?;
    let msg = MarketLifecycleMsg::deserialize(&payload).map_err(shape)?;
    let sid = required(sid, "sid").map_err(field)?;
    let info = market_info(&msg).map_err(field)?;
    let payload_time = match info.event_type.as_str() {
        "created" => info.open_ts,
        "close_date_updated" => info.close_ts,
        "determined" => info.determination_ts,
        "settled" => info.settled_ts,
        _ => None,
    };
    let lifecycle = Lifecycle {
        subject: info.market_ticker.clone(),
        kind: MARKET_KIND.to_owned(),
        event_type: info.event_type.clone(),
        exchange_ts: payload_time.unwrap_or_else(|| lifecycle_bucket(times.exchange_now)),
        payload: canonical_json(&payload),
        received_at,
        pos: WirePos {
            sid: Some(sid),
            seq,
        },
    };
    Ok(WsEvent::MarketLifecycle {
        sid,
        seq,
        lifecycle,
        info,
    })
}

fn market_info(msg: &MarketLifecycleMsg<'_>) -> Result<MarketLifecycleInfo, FieldError> {
    let meta = msg.additional_metadata.as_ref();
    Ok(MarketLifecycleInfo {
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
    let received_at = times.received_at;
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
    let lifecycle = Lifecycle {
        subject: event_ticker.clone(),
        kind: EVENT_KIND.to_owned(),
        event_type: "created".to_owned(),
        exchange_ts: lifecycle_bucket(times.exchange_now),
        payload: canonical_json(&payload),
        received_at,
        pos: WirePos {
            sid: Some(sid),
            seq,
        },
    };
    Ok(WsEvent::EventLifecycle {
        sid,
        seq,
        lifecycle,
        event_ticker,
        series_ticker,
    })
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

    #[test]
    fn bucket_truncates_toward_negative_infinity() {
        assert_eq!(
            lifecycle_bucket(TimestampUs::from_micros(119_999_999)).micros(),
            60_000_000
        );
        assert_eq!(
            lifecycle_bucket(TimestampUs::from_micros(-1)).micros(),
            -60_000_000
        );
    }
}
