//! One connection's subscriptions: Kalshi's commands, responses and error codes, and the
//! per-message filter that turns a published item into this connection's frames.

use crate::publish::{Channel, Item};
use crate::rng::Rng;
use crate::shared::Shared;
use crate::stats::bump;
use kd_core::Side;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Kalshi's WebSocket error codes (asyncapi `x-error-codes`).
pub mod code {
    pub const PROCESSING: u32 = 1;
    pub const PARAMS_REQUIRED: u32 = 2;
    pub const CHANNELS_REQUIRED: u32 = 3;
    pub const SIDS_REQUIRED: u32 = 4;
    pub const UNKNOWN_COMMAND: u32 = 5;
    pub const UNKNOWN_SID: u32 = 7;
    pub const UNKNOWN_CHANNEL: u32 = 8;
    pub const INVALID_PARAMETER: u32 = 11;
    pub const EXACTLY_ONE_SID: u32 = 12;
    pub const UNSUPPORTED_ACTION: u32 = 13;
    pub const MARKET_REQUIRED: u32 = 14;
    pub const ACTION_REQUIRED: u32 = 15;
    pub const BUFFER_OVERFLOW: u32 = 25;
    pub const MARKET_LIMIT: u32 = 26;
}

fn error_text(code: u32) -> &'static str {
    match code {
        1 => "Unable to process message",
        2 => "Params required",
        3 => "Channels required",
        4 => "Subscription IDs required",
        5 => "Unknown command",
        7 => "Unknown subscription ID",
        8 => "Unknown channel name",
        9 => "Authentication required",
        10 => "Channel error",
        11 => "Invalid parameter",
        12 => "Exactly one subscription ID is required",
        13 => "Unsupported action",
        14 => "Market Ticker required",
        15 => "Action required",
        18 => "Command timeout",
        25 => "Subscription buffer overflow",
        26 => "Subscription market limit exceeded",
        27 => "Too many requests",
        _ => "Error",
    }
}

/// Markets accepted by a subscription command: (index, ticker).
type Accepted = Vec<(u32, String)>;
/// Markets refused, grouped by error code.
type Refusals = Vec<(u32, Vec<String>)>;

struct Sub {
    sid: u64,
    channel: Channel,
    /// `None`: every market. Otherwise market → the publish sequence its snapshot reflects
    /// (deltas at or before it are already in the snapshot and are skipped).
    markets: Option<HashMap<u32, u64>>,
    seq: u64,
}

impl Sub {
    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }
}

pub(crate) struct Session {
    shared: Arc<Shared>,
    subs: Vec<Sub>,
    next_sid: u64,
    rng: Rng,
    /// Set when this connection fell too far behind; the caller closes it.
    pub overflowed: bool,
}

fn with_id(id: Option<u64>) -> String {
    match id {
        Some(id) => format!("\"id\":{id},"),
        None => String::new(),
    }
}

impl Session {
    pub fn new(shared: Arc<Shared>, conn: u64) -> Session {
        let rng = Rng::derive(shared.cfg.seed, 0xC0AA_0000_0000 | conn);
        Session {
            shared,
            subs: Vec::new(),
            next_sid: 1,
            rng,
            overflowed: false,
        }
    }

    /// Turns one published item into frames for the matching subscriptions.
    pub fn item(&mut self, item: &Item, out: &mut Vec<String>) {
        let drop_p = self.shared.faults.drop_prob();
        for sub in self.subs.iter_mut().filter(|s| s.channel == item.channel) {
            let pass = match &sub.markets {
                None => true,
                Some(map) => map.get(&item.market).is_some_and(|&g| item.gseq > g),
            };
            if !pass {
                continue;
            }
            let seq = item.channel.sequenced().then(|| sub.next_seq());
            if item.drop_all {
                continue;
            }
            if drop_p > 0.0 && self.rng.chance(drop_p) {
                bump(&self.shared.stats.dropped_per_conn);
                continue;
            }
            out.push(item.frame(sub.sid, seq));
            self.shared
                .stats
                .frames_sent
                .fetch_add(1, Ordering::Relaxed);
            if !item.delivered.load(Ordering::Relaxed)
                && !item.delivered.swap(true, Ordering::AcqRel)
            {
                bump(&self.shared.stats.delivered[item.channel.index()]);
            }
        }
        item.processed();
    }

    /// Whether the connection has any subscription (items it skipped mattered to it).
    pub fn is_subscribed(&self) -> bool {
        !self.subs.is_empty()
    }

    /// The connection fell behind: error 25 on every subscription, then it is closed.
    pub fn overflow(&mut self, out: &mut Vec<String>) {
        if self.overflowed {
            return;
        }
        self.overflowed = true;
        bump(&self.shared.stats.overflow_disconnects);
        for sub in &mut self.subs {
            let seq = sub.next_seq();
            out.push(format!(
                "{{\"type\":\"error\",\"sid\":{},\"seq\":{seq},\"msg\":{{\"code\":25,\"msg\":\"{}\"}}}}",
                sub.sid,
                error_text(code::BUFFER_OVERFLOW)
            ));
        }
    }

    pub fn closed(&mut self) {
        let n = self.subs.len() as u64;
        self.shared
            .stats
            .subscriptions
            .fetch_sub(n, Ordering::Relaxed);
        self.subs.clear();
    }

    fn error(&self, id: Option<u64>, code: u32, tickers: &[String], out: &mut Vec<String>) {
        let mut msg = json!({"code": code, "msg": error_text(code)});
        if !tickers.is_empty() {
            msg["market_tickers"] = json!(tickers);
        }
        out.push(format!(
            "{{{}\"type\":\"error\",\"msg\":{msg}}}",
            with_id(id)
        ));
    }

    /// Handles one command text, appending the responses.
    pub fn command(&mut self, text: &str, out: &mut Vec<String>) {
        let Ok(v) = serde_json::from_str::<Value>(text) else {
            bump(&self.shared.stats.bad_commands);
            return self.error(None, code::PROCESSING, &[], out);
        };
        let id = v.get("id").and_then(Value::as_u64).filter(|&i| i > 0);
        let cmd = v.get("cmd").and_then(Value::as_str).unwrap_or("");
        let params = v.get("params");
        match cmd {
            "subscribe" => self.subscribe(id, params, out),
            "unsubscribe" => self.unsubscribe(id, params, out),
            "update_subscription" => self.update(id, params, out),
            "list_subscriptions" => {
                let list: Vec<Value> = self
                    .subs
                    .iter()
                    .map(|s| json!({"channel": s.channel.name(), "sid": s.sid}))
                    .collect();
                out.push(format!(
                    "{{{}\"type\":\"ok\",\"msg\":{}}}",
                    with_id(id),
                    Value::Array(list)
                ));
            }
            _ => {
                bump(&self.shared.stats.bad_commands);
                self.error(id, code::UNKNOWN_COMMAND, &[], out);
            }
        }
    }

    fn tickers_param(params: &Value) -> Option<Vec<String>> {
        let mut list: Vec<String> = Vec::new();
        if let Some(t) = params.get("market_ticker").and_then(Value::as_str) {
            list.push(t.to_string());
        }
        if let Some(arr) = params.get("market_tickers").and_then(Value::as_array) {
            list.extend(arr.iter().filter_map(Value::as_str).map(str::to_string));
        }
        (!list.is_empty()).then_some(list)
    }

    /// Resolves tickers; refuses unknown ones and those a `sub-error` fault picks.
    /// Returns the accepted markets and (code, tickers) errors to report.
    fn resolve(&mut self, tickers: &[String]) -> (Accepted, Refusals) {
        let faults = self.shared.faults.sub_errors();
        let ex = self.shared.exchange();
        let mut ok = Vec::with_capacity(tickers.len());
        let mut errors: Vec<(u32, Vec<String>)> = Vec::new();
        let mut push_err = |code: u32, t: &str| match errors.iter_mut().find(|e| e.0 == code) {
            Some(e) => e.1.push(t.to_string()),
            None => errors.push((code, vec![t.to_string()])),
        };
        for t in tickers {
            match ex.market_index(t) {
                None => push_err(code::INVALID_PARAMETER, t),
                Some(m) => {
                    if let Some(&(c, _)) = faults.iter().find(|(_, p)| self.rng.chance(*p)) {
                        bump(&self.shared.stats.sub_errors);
                        push_err(c, t);
                    } else {
                        ok.push((m, t.clone()));
                    }
                }
            }
        }
        (ok, errors)
    }

    fn snapshot(
        &self,
        sub_sid: u64,
        seq: u64,
        id: Option<u64>,
        m: u32,
        out: &mut Vec<String>,
    ) -> u64 {
        let mut ex = self.shared.exchange();
        let gseq = ex.gseq;
        let Some(hot) = ex.hot_mut(m) else {
            return gseq;
        };
        let mut msg = String::with_capacity(256);
        let _ = write!(
            msg,
            "{{\"market_ticker\":\"{}\",\"market_id\":\"{}\"",
            hot.ticker, hot.market_id
        );
        for (side, key) in [(Side::Yes, "yes_dollars_fp"), (Side::No, "no_dollars_fp")] {
            if !hot.book.side(side).is_empty() {
                let _ = write!(msg, ",\"{key}\":");
                hot.book.write_pairs(side, 0, &mut msg);
            }
        }
        msg.push('}');
        out.push(format!(
            "{{\"type\":\"orderbook_snapshot\",\"sid\":{sub_sid},\"seq\":{seq},{}\"msg\":{msg}}}",
            with_id(id)
        ));
        gseq
    }

    fn subscribe(&mut self, id: Option<u64>, params: Option<&Value>, out: &mut Vec<String>) {
        let Some(params) = params.filter(|p| p.is_object()) else {
            return self.error(id, code::PARAMS_REQUIRED, &[], out);
        };
        let channels: Vec<&str> = params
            .get("channels")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if channels.is_empty() {
            return self.error(id, code::CHANNELS_REQUIRED, &[], out);
        }
        let tickers = Self::tickers_param(params);
        for name in channels {
            let Some(channel) = Channel::parse(name) else {
                self.error(id, code::UNKNOWN_CHANNEL, &[], out);
                continue;
            };
            let wants_markets = channel != Channel::Lifecycle;
            let markets = match (&tickers, channel) {
                (None, Channel::OrderbookDelta) => {
                    self.error(id, code::MARKET_REQUIRED, &[], out);
                    continue;
                }
                (Some(t), _) if wants_markets => Some(t.clone()),
                _ => None,
            };
            if let Some(t) = &markets
                && t.len() > self.shared.cfg.market_limit_per_sub
            {
                self.error(id, code::MARKET_LIMIT, &[], out);
                continue;
            }
            let (accepted, errors) = match &markets {
                Some(t) => {
                    let (ok, errors) = self.resolve(t);
                    (Some(ok), errors)
                }
                None => (None, Vec::new()),
            };
            if accepted.as_ref().is_some_and(Vec::is_empty) {
                for (c, ts) in &errors {
                    self.error(id, *c, ts, out);
                }
                continue;
            }
            let sid = self.next_sid;
            self.next_sid += 1;
            out.push(format!(
                "{{{}\"type\":\"subscribed\",\"msg\":{{\"channel\":\"{}\",\"sid\":{sid}}}}}",
                with_id(id),
                channel.name()
            ));
            for (c, ts) in &errors {
                self.error(id, *c, ts, out);
            }
            let mut sub = Sub {
                sid,
                channel,
                markets: accepted.as_ref().map(|_| HashMap::new()),
                seq: 0,
            };
            for (m, _) in accepted.unwrap_or_default() {
                let g = if channel == Channel::OrderbookDelta {
                    let seq = sub.next_seq();
                    self.snapshot(sid, seq, None, m, out)
                } else {
                    0
                };
                if let Some(map) = sub.markets.as_mut() {
                    map.insert(m, g);
                }
            }
            self.subs.push(sub);
            self.shared
                .stats
                .subscriptions
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    fn unsubscribe(&mut self, id: Option<u64>, params: Option<&Value>, out: &mut Vec<String>) {
        let Some(params) = params.filter(|p| p.is_object()) else {
            return self.error(id, code::PARAMS_REQUIRED, &[], out);
        };
        let sids: Vec<u64> = params
            .get("sids")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default();
        if sids.is_empty() {
            return self.error(id, code::SIDS_REQUIRED, &[], out);
        }
        for sid in sids {
            match self.subs.iter().position(|s| s.sid == sid) {
                None => self.error(id, code::UNKNOWN_SID, &[], out),
                Some(i) => {
                    let mut sub = self.subs.remove(i);
                    let seq = sub.next_seq();
                    self.shared
                        .stats
                        .subscriptions
                        .fetch_sub(1, Ordering::Relaxed);
                    out.push(format!(
                        "{{{}\"sid\":{sid},\"seq\":{seq},\"type\":\"unsubscribed\"}}",
                        with_id(id)
                    ));
                }
            }
        }
    }

    fn update(&mut self, id: Option<u64>, params: Option<&Value>, out: &mut Vec<String>) {
        let Some(params) = params.filter(|p| p.is_object()) else {
            return self.error(id, code::PARAMS_REQUIRED, &[], out);
        };
        let sid = match (
            params.get("sid").and_then(Value::as_u64),
            params.get("sids").and_then(Value::as_array),
        ) {
            (Some(s), None) => s,
            (None, Some(a)) if a.len() == 1 => match a[0].as_u64() {
                Some(s) => s,
                None => return self.error(id, code::INVALID_PARAMETER, &[], out),
            },
            (None, None) => return self.error(id, code::SIDS_REQUIRED, &[], out),
            _ => return self.error(id, code::EXACTLY_ONE_SID, &[], out),
        };
        let Some(action) = params.get("action").and_then(Value::as_str) else {
            return self.error(id, code::ACTION_REQUIRED, &[], out);
        };
        if !matches!(action, "add_markets" | "delete_markets" | "get_snapshot") {
            return self.error(id, code::UNSUPPORTED_ACTION, &[], out);
        }
        let Some(idx) = self.subs.iter().position(|s| s.sid == sid) else {
            return self.error(id, code::UNKNOWN_SID, &[], out);
        };
        if self.subs[idx].markets.is_none() {
            // An all-markets subscription has no market list to change.
            return self.error(id, code::INVALID_PARAMETER, &[], out);
        }
        let tickers = Self::tickers_param(params);
        match action {
            "get_snapshot" => {
                if self.subs[idx].channel != Channel::OrderbookDelta {
                    return self.error(id, code::UNSUPPORTED_ACTION, &[], out);
                }
                let markets: Vec<u32> = match &tickers {
                    Some(t) => {
                        let ex = self.shared.exchange();
                        let in_sub = self.subs[idx].markets.as_ref();
                        t.iter()
                            .filter_map(|t| ex.market_index(t))
                            .filter(|m| in_sub.is_some_and(|s| s.contains_key(m)))
                            .collect()
                    }
                    None => {
                        let mut v: Vec<u32> = self.subs[idx]
                            .markets
                            .iter()
                            .flat_map(|s| s.keys().copied())
                            .collect();
                        v.sort_unstable();
                        v
                    }
                };
                for m in markets {
                    let seq = self.subs[idx].next_seq();
                    let g = self.snapshot(sid, seq, id, m, out);
                    if let Some(map) = self.subs[idx].markets.as_mut() {
                        map.insert(m, g);
                    }
                }
            }
            "add_markets" => {
                let Some(t) = tickers else {
                    return self.error(id, code::MARKET_REQUIRED, &[], out);
                };
                let current = self.subs[idx].markets.as_ref().map_or(0, HashMap::len);
                let (accepted, errors) = self.resolve(&t);
                let new: Vec<(u32, String)> = accepted
                    .into_iter()
                    .filter(|(m, _)| {
                        !self.subs[idx]
                            .markets
                            .as_ref()
                            .is_some_and(|s| s.contains_key(m))
                    })
                    .collect();
                if current + new.len() > self.shared.cfg.market_limit_per_sub {
                    return self.error(id, code::MARKET_LIMIT, &[], out);
                }
                let channel = self.subs[idx].channel;
                let seq = self.subs[idx].next_seq();
                let mut map = self.subs[idx].markets.take().unwrap_or_default();
                for (m, _) in &new {
                    map.insert(*m, 0);
                }
                let list = self.ticker_list(&map);
                self.subs[idx].markets = Some(map);
                out.push(format!(
                    "{{{}\"sid\":{sid},\"seq\":{seq},\"type\":\"ok\",\"msg\":{{\"market_tickers\":{list}}}}}",
                    with_id(id)
                ));
                for (c, ts) in &errors {
                    self.error(id, *c, ts, out);
                }
                if channel == Channel::OrderbookDelta {
                    for (m, _) in new {
                        let seq = self.subs[idx].next_seq();
                        let g = self.snapshot(sid, seq, None, m, out);
                        if let Some(map) = self.subs[idx].markets.as_mut() {
                            map.insert(m, g);
                        }
                    }
                }
            }
            _ => {
                let Some(t) = tickers else {
                    return self.error(id, code::MARKET_REQUIRED, &[], out);
                };
                let gone: Vec<u32> = {
                    let ex = self.shared.exchange();
                    t.iter().filter_map(|t| ex.market_index(t)).collect()
                };
                let seq = self.subs[idx].next_seq();
                let mut map = self.subs[idx].markets.take().unwrap_or_default();
                for m in gone {
                    map.remove(&m);
                }
                let list = self.ticker_list(&map);
                self.subs[idx].markets = Some(map);
                out.push(format!(
                    "{{{}\"sid\":{sid},\"seq\":{seq},\"type\":\"ok\",\"msg\":{{\"market_tickers\":{list}}}}}",
                    with_id(id)
                ));
            }
        }
    }

    fn ticker_list(&self, map: &HashMap<u32, u64>) -> String {
        let uni = self.shared.exchange().uni;
        let mut ms: Vec<u32> = map.keys().copied().collect();
        ms.sort_unstable();
        let list: Vec<String> = ms.into_iter().map(|m| uni.market_ticker(m)).collect();
        serde_json::to_string(&list).unwrap_or_else(|_| "[]".into())
    }
}
