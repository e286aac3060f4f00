//! `subscribe` and `unsubscribe`.

use super::{Session, Sub, with_id};
use crate::publish::Channel;
use kd_kalshi::ws::ErrorCode;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::Ordering;

impl Session {
    pub(super) fn subscribe(
        &mut self,
        id: Option<u64>,
        params: Option<&Value>,
        out: &mut Vec<String>,
    ) {
        let Some(params) = params.filter(|p| p.is_object()) else {
            return self.error(id, ErrorCode::ParamsRequired, &[], out);
        };
        let channels: Vec<&str> = params
            .get("channels")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if channels.is_empty() {
            return self.error(id, ErrorCode::ChannelsRequired, &[], out);
        }
        let tickers = Self::tickers_param(params);
        // `use_yes_price` (orderbook_delta only): a boolean or absent; anything else is error 11.
        let asked = match params.get("use_yes_price") {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => return self.error(id, ErrorCode::InvalidParameter, &[], out),
        };
        let yes_leg = self.shared.cfg.yes_price_default.yes_leg(asked);
        for name in channels {
            let Some(channel) = Channel::parse(name) else {
                self.error(id, ErrorCode::UnknownChannel, &[], out);
                continue;
            };
            let wants_markets = !channel.all_markets();
            let markets = match (&tickers, channel) {
                (None, Channel::OrderbookDelta) => {
                    self.error(id, ErrorCode::MarketTickerRequired, &[], out);
                    continue;
                }
                (Some(t), _) if wants_markets => Some(t.clone()),
                _ => None,
            };
            if let Some(t) = &markets
                && t.len() > self.shared.cfg.market_limit_per_sub
            {
                self.error(id, ErrorCode::MarketLimit, &[], out);
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
                yes_leg: channel == Channel::OrderbookDelta && yes_leg,
            };
            for (m, _) in accepted.unwrap_or_default() {
                let g = if channel == Channel::OrderbookDelta {
                    let seq = sub.next_seq();
                    self.snapshot((sid, seq, sub.yes_leg), None, m, out)
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

    pub(super) fn unsubscribe(
        &mut self,
        id: Option<u64>,
        params: Option<&Value>,
        out: &mut Vec<String>,
    ) {
        let Some(params) = params.filter(|p| p.is_object()) else {
            return self.error(id, ErrorCode::ParamsRequired, &[], out);
        };
        let sids: Vec<u64> = params
            .get("sids")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default();
        if sids.is_empty() {
            return self.error(id, ErrorCode::SidsRequired, &[], out);
        }
        for sid in sids {
            match self.subs.iter().position(|s| s.sid == sid) {
                None => self.error(id, ErrorCode::UnknownSid, &[], out),
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
}
