//! One WebSocket connection's subscriptions: Kalshi's commands and replies (`subscribe`,
//! `unsubscribe`, `update_subscription` incl. `get_snapshot`, `list_subscriptions`), and the
//! filter that turns a timeline event into this connection's frames with per-subscription
//! contiguous `seq`.

use crate::data::{Dataset, Event};
use crate::derived::Derived;
use crate::frames::Frames;
use crate::wire::{self, channel_of};
use kd_core::TimestampUs;
use kd_kalshi::ws::{Channel, ErrorCode};
use serde_json::{Value, json};
use std::collections::BTreeSet;

struct Sub {
    sid: u64,
    channel: Channel,
    /// `None`: every market.
    markets: Option<BTreeSet<String>>,
    seq: u64,
    yes_leg: bool,
}

impl Sub {
    fn wants(&self, market: Option<&str>) -> bool {
        match (&self.markets, market) {
            (None, _) => true,
            (Some(set), Some(m)) => set.contains(m),
            (Some(_), None) => false,
        }
    }

    /// Kalshi sequences every channel but `ticker`.
    fn next_seq(&mut self) -> Option<u64> {
        if self.channel == Channel::Ticker {
            return None;
        }
        self.seq += 1;
        Some(self.seq)
    }
}

/// A connection's state.
#[derive(Default)]
pub struct Session {
    subs: Vec<Sub>,
    /// Derived streams (`book_snapshot_…`, `trade_bar_…`), each with its own sid.
    derived: Vec<Derived>,
    next_sid: u64,
}

fn error(id: Option<u64>, code: ErrorCode) -> String {
    json!({"id": id, "type": "error", "msg": {"code": code.code(), "msg": code.label()}})
        .to_string()
}

fn tickers_param(params: &Value) -> Option<Vec<String>> {
    if let Some(list) = params.get("market_tickers").and_then(Value::as_array) {
        return Some(
            list.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
        );
    }
    params
        .get("market_ticker")
        .and_then(Value::as_str)
        .map(|t| vec![t.to_string()])
}

impl Session {
    pub fn is_subscribed(&self) -> bool {
        !self.subs.is_empty() || !self.derived.is_empty()
    }

    /// Frames of one timeline event at `ts` for this connection (possibly none); derived
    /// streams first emit what closed before `ts`.
    pub fn frames(&mut self, ts: TimestampUs, event: &Event, out: &mut Frames) {
        for d in &mut self.derived {
            d.before(ts, out);
        }
        self.kalshi_frames(event, out);
        for d in &mut self.derived {
            d.on(event, out);
        }
    }

    /// The range ended at `to`: the derived streams' last frames.
    pub fn finish(&mut self, to: TimestampUs, out: &mut Frames) {
        for d in &mut self.derived {
            d.finish(to, out);
        }
    }

    fn kalshi_frames(&mut self, event: &Event, out: &mut Frames) {
        let channel = channel_of(event);
        let market = event.market();
        let Some(channel) = channel else {
            // A replay notice (uncovered window): once per connection, no sid.
            if self.is_subscribed() {
                wire::write_head(out.buf(), wire::type_of(event), None, None);
                wire::write_body(out.buf(), event, false);
                out.buf().push(b'}');
                out.end();
            }
            return;
        };
        // Where this event's NO-bid-priced body already is in `out` (the next subscription
        // that wants it copies those bytes instead of rendering it again).
        let mut plain: Option<(usize, usize)> = None;
        for sub in &mut self.subs {
            if sub.channel != channel || !sub.wants(market) {
                continue;
            }
            let seq = sub.next_seq();
            let buf = out.buf();
            wire::write_head(buf, wire::type_of(event), Some(sub.sid), seq);
            match plain {
                Some((a, b)) if !sub.yes_leg => buf.extend_from_within(a..b),
                _ => {
                    let a = buf.len();
                    wire::write_body(buf, event, sub.yes_leg);
                    if !sub.yes_leg {
                        plain = Some((a, buf.len()));
                    }
                }
            }
            buf.push(b'}');
            out.end();
        }
    }

    /// Handles one client text frame; replies (and snapshots at `at`) go to `out`.
    pub fn command(&mut self, text: &str, data: &Dataset, at: TimestampUs, out: &mut Frames) {
        let Ok(cmd) = serde_json::from_str::<Value>(text) else {
            out.push(&error(None, ErrorCode::InvalidParameter));
            return;
        };
        let id = cmd.get("id").and_then(Value::as_u64);
        let params = cmd.get("params").cloned().unwrap_or(Value::Null);
        match cmd.get("cmd").and_then(Value::as_str) {
            Some("subscribe") => self.subscribe(id, &params, data, at, out),
            Some("unsubscribe") => self.unsubscribe(id, &params, out),
            Some("update_subscription") => self.update(id, &params, data, at, out),
            Some("list_subscriptions") => {
                let mut list: Vec<Value> = self
                    .subs
                    .iter()
                    .map(|s| json!({"channel": s.channel.as_str(), "sid": s.sid}))
                    .collect();
                list.extend(
                    self.derived
                        .iter()
                        .map(|d| json!({"channel": d.name(), "sid": d.sid})),
                );
                out.push(&json!({"id": id, "type": "ok", "msg": list}).to_string());
            }
            _ => out.push(&error(id, ErrorCode::UnknownCommand)),
        }
    }

    fn subscribe(
        &mut self,
        id: Option<u64>,
        params: &Value,
        data: &Dataset,
        at: TimestampUs,
        out: &mut Frames,
    ) {
        let Some(channels) = params.get("channels").and_then(Value::as_array) else {
            out.push(&error(id, ErrorCode::ChannelsRequired));
            return;
        };
        let tickers = tickers_param(params);
        let yes_leg = params
            .get("use_yes_price")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        for name in channels.iter().filter_map(Value::as_str) {
            let set = tickers.clone().map(|t| t.into_iter().collect());
            if let Some(mut d) = Derived::for_data(name, set, data, at) {
                self.next_sid += 1;
                d.sid = Some(self.next_sid);
                out.push(
                    &json!({"id": id, "type": "subscribed", "msg": {"channel": name, "sid": self.next_sid}})
                        .to_string(),
                );
                self.derived.push(d);
                continue;
            }
            let channel = Channel::parse(name);
            if matches!(channel, Channel::Other(_)) {
                out.push(&error(id, ErrorCode::UnknownChannel));
                continue;
            }
            self.next_sid += 1;
            let lifecycle = matches!(
                channel,
                Channel::MarketLifecycleV2 | Channel::MultivariateMarketLifecycle
            );
            // Lifecycle channels take no market filter; the others without tickers: all
            // markets (the replay also allows that for orderbook_delta, unlike the exchange).
            let markets = if lifecycle {
                None
            } else {
                tickers.clone().map(|t| t.into_iter().collect())
            };
            let mut sub = Sub {
                sid: self.next_sid,
                channel: channel.clone(),
                markets,
                seq: 0,
                yes_leg,
            };
            out.push(
                &json!({"id": id, "type": "subscribed", "msg": {"channel": name, "sid": sub.sid}})
                    .to_string(),
            );
            if channel == Channel::OrderbookDelta {
                let list: Vec<String> = match &sub.markets {
                    Some(set) => set.iter().cloned().collect(),
                    None => data.tickers(),
                };
                snapshots(&mut sub, &list, data, at, out);
            }
            self.subs.push(sub);
        }
    }

    fn unsubscribe(&mut self, id: Option<u64>, params: &Value, out: &mut Frames) {
        let Some(sids) = params.get("sids").and_then(Value::as_array) else {
            out.push(&error(id, ErrorCode::SidsRequired));
            return;
        };
        for sid in sids.iter().filter_map(Value::as_u64) {
            let before = self.subs.len() + self.derived.len();
            self.subs.retain(|s| s.sid != sid);
            self.derived.retain(|d| d.sid != Some(sid));
            if self.subs.len() + self.derived.len() < before {
                out.push(&json!({"id": id, "type": "unsubscribed", "sid": sid}).to_string());
            } else {
                out.push(&error(id, ErrorCode::UnknownSid));
            }
        }
    }

    fn update(
        &mut self,
        id: Option<u64>,
        params: &Value,
        data: &Dataset,
        at: TimestampUs,
        out: &mut Frames,
    ) {
        let sid = match params.get("sids").and_then(Value::as_array) {
            Some(list) if list.len() == 1 => list.first().and_then(Value::as_u64),
            Some(_) => {
                out.push(&error(id, ErrorCode::ExactlyOneSid));
                return;
            }
            None => params.get("sid").and_then(Value::as_u64),
        };
        let Some(sub) = sid.and_then(|sid| self.subs.iter_mut().find(|s| s.sid == sid)) else {
            out.push(&error(id, ErrorCode::UnknownSid));
            return;
        };
        let Some(tickers) = tickers_param(params) else {
            out.push(&error(id, ErrorCode::MarketTickerRequired));
            return;
        };
        let is_book = sub.channel == Channel::OrderbookDelta;
        match params.get("action").and_then(Value::as_str) {
            Some("add_markets") => {
                let set = sub.markets.get_or_insert_with(BTreeSet::new);
                let new: Vec<String> = tickers
                    .into_iter()
                    .filter(|t| set.insert(t.clone()))
                    .collect();
                if is_book {
                    snapshots(sub, &new, data, at, out);
                }
            }
            Some("delete_markets") => {
                if let Some(set) = sub.markets.as_mut() {
                    for t in &tickers {
                        set.remove(t);
                    }
                }
            }
            Some("get_snapshot") if is_book => snapshots(sub, &tickers, data, at, out),
            Some(_) => {
                out.push(&error(id, ErrorCode::UnsupportedAction));
                return;
            }
            None => {
                out.push(&error(id, ErrorCode::ActionRequired));
                return;
            }
        }
        let list: Vec<&String> = sub.markets.iter().flatten().collect();
        out.push(
            &json!({"id": id, "type": "ok", "sid": sub.sid, "seq": sub.seq, "msg": {"market_tickers": list}})
                .to_string(),
        );
    }
}

/// `orderbook_snapshot` frames of `tickers` as of `at` (markets without a book then: none).
fn snapshots(sub: &mut Sub, tickers: &[String], data: &Dataset, at: TimestampUs, out: &mut Frames) {
    for t in tickers {
        if let Some(book) = data.book_at(t, at) {
            let seq = sub.next_seq();
            wire::write_head(out.buf(), "orderbook_snapshot", Some(sub.sid), seq);
            wire::write_snapshot_body(out.buf(), t, &book, sub.yes_leg);
            out.buf().push(b'}');
            out.end();
        }
    }
}
