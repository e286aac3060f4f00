//! One-pass reading of the WebSocket envelope `{"type", "sid", "seq", "id", "msg"}`.
//!
//! Kalshi puts `type` first, so by the time `msg` arrives the visitor knows which struct to
//! deserialize it into — one pass over the bytes, no intermediate `Value`. If `msg` ever comes
//! before `type`, it is kept as a borrowed `RawValue` slice and deserialized once the type is
//! known (a second pass over that slice only).

use crate::wire::scalar::WireStr;
use crate::wire::ws::{
    ErrorMsg, OkMsg, OrderbookDeltaMsg, OrderbookSnapshotMsg, SubscribedMsg, SubscriptionEntry,
    TickerMsg, TradeMsg,
};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use std::cell::Cell;
use std::fmt;

/// The message types `parse_ws` understands; everything else is `Unknown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MsgKind {
    Snapshot,
    Delta,
    Trade,
    Ticker,
    MarketLifecycle,
    /// `multivariate_market_lifecycle`: a combo market's lifecycle (same shape).
    MultivariateLifecycle,
    EventLifecycle,
    /// `event_fee_update`: an event's fee override set or cleared.
    EventFeeUpdate,
    Subscribed,
    Ok,
    Unsubscribed,
    Error,
    ListSubscriptions,
    Unknown,
}

impl MsgKind {
    pub(crate) fn from_type(name: &str) -> MsgKind {
        match name {
            "orderbook_delta" => MsgKind::Delta,
            "orderbook_snapshot" => MsgKind::Snapshot,
            "trade" => MsgKind::Trade,
            "ticker" => MsgKind::Ticker,
            "market_lifecycle_v2" => MsgKind::MarketLifecycle,
            "multivariate_market_lifecycle" => MsgKind::MultivariateLifecycle,
            "event_lifecycle" => MsgKind::EventLifecycle,
            "event_fee_update" => MsgKind::EventFeeUpdate,
            "subscribed" => MsgKind::Subscribed,
            "ok" => MsgKind::Ok,
            "unsubscribed" => MsgKind::Unsubscribed,
            "error" => MsgKind::Error,
            "list_subscriptions" => MsgKind::ListSubscriptions,
            _ => MsgKind::Unknown,
        }
    }

    /// The wire name (for errors and metric labels).
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            MsgKind::Snapshot => "orderbook_snapshot",
            MsgKind::Delta => "orderbook_delta",
            MsgKind::Trade => "trade",
            MsgKind::Ticker => "ticker",
            MsgKind::MarketLifecycle => "market_lifecycle_v2",
            MsgKind::MultivariateLifecycle => "multivariate_market_lifecycle",
            MsgKind::EventLifecycle => "event_lifecycle",
            MsgKind::EventFeeUpdate => "event_fee_update",
            MsgKind::Subscribed => "subscribed",
            MsgKind::Ok => "ok",
            MsgKind::Unsubscribed => "unsubscribed",
            MsgKind::Error => "error",
            MsgKind::ListSubscriptions => "list_subscriptions",
            MsgKind::Unknown => "unknown",
        }
    }
}

/// The `msg` of `ok` / `list_subscriptions`: an object after `update_subscription`, an array of
/// `{channel, sid}` in reply to `list_subscriptions`.
#[derive(Debug)]
pub(crate) enum OkBody<'de> {
    Update(OkMsg<'de>),
    List(Vec<SubscriptionEntry<'de>>),
    Null,
}

impl<'de> Deserialize<'de> for OkBody<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OkBody<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object or an array of subscriptions")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                OkMsg::deserialize(de::value::MapAccessDeserializer::new(map)).map(OkBody::Update)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                Vec::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(OkBody::List)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(OkBody::Null)
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(OkBody::Null)
            }
        }
        d.deserialize_any(V)
    }
}

/// The `msg` member, typed by the message kind.
///
/// Every variant but `Delta` is boxed: the body is moved several times on its way out of the
/// deserializer, and sized by its largest variant (the ticker's ~20 fields) each move copied
/// hundreds of bytes, a sixth of the time `parse_ws` spent on a delta (perf). Deltas are most
/// of the feed; the rest pay one allocation.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // `Delta` unboxed on purpose: the hot path, see above
pub(crate) enum Body<'de> {
    Absent,
    /// `msg` came before `type`: deserialized later.
    Raw(&'de RawValue),
    Snapshot(Box<OrderbookSnapshotMsg<'de>>),
    Delta(OrderbookDeltaMsg<'de>),
    Trade(Box<TradeMsg<'de>>),
    Ticker(Box<TickerMsg<'de>>),
    /// Lifecycle payloads are stored canonically, so they are read as a `Value` once.
    Lifecycle(Box<serde_json::Value>),
    Subscribed(Box<SubscribedMsg<'de>>),
    Ok(Box<OkBody<'de>>),
    Error(Box<ErrorMsg<'de>>),
    Ignored,
}

/// Deserializes a `msg` into the body for `kind`.
pub(crate) struct BodySeed(pub(crate) MsgKind);

impl<'de> DeserializeSeed<'de> for BodySeed {
    type Value = Body<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Body<'de>, D::Error> {
        Ok(match self.0 {
            MsgKind::Snapshot => Body::Snapshot(Box::new(object(d)?)),
            MsgKind::Delta => Body::Delta(object(d)?),
            MsgKind::Trade => Body::Trade(Box::new(object(d)?)),
            MsgKind::Ticker => Body::Ticker(Box::new(object(d)?)),
            MsgKind::MarketLifecycle
            | MsgKind::MultivariateLifecycle
            | MsgKind::EventLifecycle
            | MsgKind::EventFeeUpdate => Body::Lifecycle(Box::new(Deserialize::deserialize(d)?)),
            MsgKind::Subscribed => Body::Subscribed(Box::new(object(d)?)),
            MsgKind::Ok | MsgKind::ListSubscriptions => {
                Body::Ok(Box::new(Deserialize::deserialize(d)?))
            }
            MsgKind::Error => Body::Error(Box::new(object(d)?)),
            MsgKind::Unsubscribed | MsgKind::Unknown => {
                IgnoredAny::deserialize(d)?;
                Body::Ignored
            }
        })
    }
}

/// Deserializes a struct from a JSON object only. Serde's derived struct impls also accept an
/// array (fields by position), which would turn `["M","0.5",…]` into a delta; Kalshi never sends
/// that, so it is a shape error here.
fn object<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct ObjectOnly<T>(std::marker::PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectOnly<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
            T::deserialize(de::value::MapAccessDeserializer::new(map))
        }
    }
    d.deserialize_map(ObjectOnly(std::marker::PhantomData))
}

/// The envelope as read; `type_name` is `None` when the frame had no `type`.
#[derive(Debug)]
pub(crate) struct Envelope<'de> {
    pub(crate) type_name: Option<WireStr<'de>>,
    pub(crate) kind: MsgKind,
    pub(crate) sid: Option<u64>,
    pub(crate) seq: Option<u64>,
    pub(crate) id: Option<u64>,
    pub(crate) body: Body<'de>,
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "lowercase")]
enum EnvField {
    Type,
    Sid,
    Seq,
    Id,
    Msg,
    #[serde(other)]
    Other,
}

/// Reads the envelope, recording the kind in `kind_seen` as soon as `type` is read so that an
/// error later in the frame can name the message type.
pub(crate) struct EnvelopeSeed<'c> {
    pub(crate) kind_seen: &'c Cell<Option<MsgKind>>,
}

impl<'de> DeserializeSeed<'de> for EnvelopeSeed<'_> {
    type Value = Envelope<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Envelope<'de>, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for EnvelopeSeed<'_> {
    type Value = Envelope<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Kalshi WebSocket message object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Envelope<'de>, A::Error> {
        let mut type_name: Option<WireStr<'de>> = None;
        let mut kind = MsgKind::Unknown;
        let (mut sid, mut seq, mut id) = (None, None, None);
        let mut body: Option<Body<'de>> = None;
        while let Some(key) = map.next_key::<EnvField>()? {
            match key {
                EnvField::Type => {
                    if type_name.is_some() {
                        return Err(de::Error::duplicate_field("type"));
                    }
                    let name: WireStr<'de> = map.next_value()?;
                    kind = MsgKind::from_type(&name);
                    self.kind_seen.set(Some(kind));
                    type_name = Some(name);
                }
                EnvField::Sid => sid = map.next_value::<Option<u64>>()?,
                EnvField::Seq => seq = map.next_value::<Option<u64>>()?,
                EnvField::Id => id = map.next_value::<Option<u64>>()?,
                EnvField::Msg => {
                    if body.is_some() {
                        return Err(de::Error::duplicate_field("msg"));
                    }
                    body = Some(if type_name.is_some() {
                        map.next_value_seed(BodySeed(kind))?
                    } else {
                        Body::Raw(map.next_value::<&'de RawValue>()?)
                    });
                }
                EnvField::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Envelope {
            type_name,
            kind,
            sid,
            seq,
            id,
            body: body.unwrap_or(Body::Absent),
        })
    }
}
