//! One connection's subscriptions: Kalshi's commands, responses and error codes, and the
//! per-message filter that turns a published item into this connection's frames.
//!
//! - this file: the session's state, the per-item filter and command dispatch;
//! - `subscribe`: `subscribe` / `unsubscribe`; `update`: `update_subscription`;
//! - [`codes`]: the texts of the error codes ([`ErrorCode`], kd-kalshi's).

pub mod codes;
mod subscribe;
mod update;

use codes::error_text;

use crate::publish::{Channel, Item};
use crate::rng::Rng;
use crate::shared::Shared;
use crate::stats::bump;
use kd_core::Side;
use kd_kalshi::ws::ErrorCode;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Markets accepted by a subscription command: (index, ticker).
type Accepted = Vec<(u32, String)>;
/// Markets refused, grouped by error code.
type Refusals = Vec<(ErrorCode, Vec<String>)>;

struct Sub {
    sid: u64,
    channel: Channel,
    /// `None`: every market. Otherwise market → the publish sequence its snapshot reflects
    /// (deltas at or before it are already in the snapshot and are skipped).
    markets: Option<HashMap<u32, u64>>,
    seq: u64,
    /// `orderbook_delta` with YES-leg pricing of the NO side (`use_yes_price`, or the exchange's
    /// default): a NO bid at p is sent as 1 − p.
    yes_leg: bool,
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
    /// The command-rate limit's bucket: tokens left and when it was last refilled.
    tokens: f64,
    refilled: std::time::Instant,
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
            tokens: f64::MAX,
            refilled: std::time::Instant::now(),
        }
    }

    /// Takes one command from the rate limit's bucket (`--command-rate-limit` or a
    /// `cmd-limit` fault, the stricter); false: error 27. Rates are configuration, not money,
    /// so a float bucket is fine.
    fn admit_command(&mut self) -> bool {
        let limit = match (
            self.shared.cfg.command_rate_limit,
            self.shared.faults.command_limit(),
        ) {
            (0, None) => return true,
            (0, Some(f)) => f,
            (c, None) => c,
            (c, Some(f)) => c.min(f),
        };
        let burst = f64::from(limit.max(1));
        let now = std::time::Instant::now();
        let refill = now.duration_since(self.refilled).as_secs_f64() * burst;
        self.refilled = now;
        self.tokens = (self.tokens.min(burst) + refill).min(burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
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
            if !item.covered.load(Ordering::Relaxed) {
                item.covered.store(true, Ordering::Release);
            }
            let seq = item.channel.sequenced().then(|| sub.next_seq());
            if item.drop_all {
                continue;
            }
            if drop_p > 0.0 && self.rng.chance(drop_p) {
                bump(&self.shared.stats.dropped_per_conn);
                continue;
            }
            out.push(item.frame_priced(sub.sid, seq, sub.yes_leg));
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

    /// An item this connection will never send (it is closing): still record whether one of
    /// its subscriptions covered it, so the truth calls it dropped, not unsubscribed.
    pub fn discard(&self, item: &Item) {
        let covered = self
            .subs
            .iter()
            .filter(|s| s.channel == item.channel)
            .any(|s| match &s.markets {
                None => true,
                Some(map) => map.get(&item.market).is_some_and(|&g| item.gseq > g),
            });
        if covered {
            item.covered.store(true, Ordering::Release);
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
                "{{\"type\":\"error\",\"sid\":{},\"seq\":{seq},\"msg\":{{\"code\":{},\"msg\":\"{}\"}}}}",
                sub.sid,
                ErrorCode::BufferOverflow.code(),
                error_text(ErrorCode::BufferOverflow)
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

    fn error(&self, id: Option<u64>, code: ErrorCode, tickers: &[String], out: &mut Vec<String>) {
        let mut msg = json!({"code": code.code(), "msg": error_text(code)});
        if !tickers.is_empty() {
            msg["market_tickers"] = json!(tickers);
        }
        out.push(format!(
            "{{{}\"type\":\"error\",\"msg\":{msg}}}",
            with_id(id)
        ));
    }

    /// Handles one command text, appending the responses.
    ///
    /// Parsed from a `Value` by hand, not into kd-kalshi's `Command`: those types only
    /// serialise what our client sends (`market_tickers`, `sids: [sid]`), while the simulator
    /// models what Kalshi accepts and refuses — `market_ticker` as well as `market_tickers`,
    /// `sid` as well as `sids`, `use_yes_price`, unknown fields ignored, and a specific error
    /// code for each missing or malformed part, which a serde parse would collapse into one.
    pub fn command(&mut self, text: &str, out: &mut Vec<String>) {
        let Ok(v) = serde_json::from_str::<Value>(text) else {
            bump(&self.shared.stats.bad_commands);
            return self.error(None, ErrorCode::Processing, &[], out);
        };
        let id = v.get("id").and_then(Value::as_u64).filter(|&i| i > 0);
        let cmd = v.get("cmd").and_then(Value::as_str).unwrap_or("");
        let params = v.get("params");
        if !self.admit_command() {
            bump(&self.shared.stats.rate_limited);
            let named = params.and_then(Self::tickers_param).unwrap_or_default();
            return self.error(id, ErrorCode::TooManyRequests, &named, out);
        }
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
                self.error(id, ErrorCode::UnknownCommand, &[], out);
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
        let mut errors: Refusals = Vec::new();
        let mut push_err = |code: ErrorCode, t: &str| match errors.iter_mut().find(|e| e.0 == code)
        {
            Some(e) => e.1.push(t.to_string()),
            None => errors.push((code, vec![t.to_string()])),
        };
        for t in tickers {
            match ex.market_index(t) {
                None => push_err(ErrorCode::InvalidParameter, t),
                Some(m) => {
                    if let Some(&(c, _)) = faults.iter().find(|(_, p)| self.rng.chance(*p)) {
                        bump(&self.shared.stats.sub_errors);
                        push_err(ErrorCode::from_code(c), t);
                    } else {
                        ok.push((m, t.clone()));
                    }
                }
            }
        }
        (ok, errors)
    }

    /// `orderbook_snapshot` of market `m` for a subscription; `yes_leg`: NO levels in YES-leg
    /// pricing. Returns the publish sequence the snapshot reflects.
    fn snapshot(
        &self,
        sub: (u64, u64, bool),
        id: Option<u64>,
        m: u32,
        out: &mut Vec<String>,
    ) -> u64 {
        let (sub_sid, seq, yes_leg) = sub;
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
                if side == Side::No && yes_leg {
                    hot.book.write_pairs_yes_leg(&mut msg);
                } else {
                    hot.book.write_pairs(side, 0, &mut msg);
                }
            }
        }
        msg.push('}');
        out.push(format!(
            "{{\"type\":\"orderbook_snapshot\",\"sid\":{sub_sid},\"seq\":{seq},{}\"msg\":{msg}}}",
            with_id(id)
        ));
        gseq
    }
}
