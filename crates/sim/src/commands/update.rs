//! `update_subscription`: `add_markets`, `delete_markets`, `get_snapshot`.

use super::{Session, with_id};
use crate::publish::Channel;
use kd_kalshi::ws::{ErrorCode, UpdateAction};
use serde_json::Value;
use std::collections::HashMap;

impl Session {
    pub(super) fn update(
        &mut self,
        id: Option<u64>,
        params: Option<&Value>,
        out: &mut Vec<String>,
    ) {
        let Some(params) = params.filter(|p| p.is_object()) else {
            return self.error(id, ErrorCode::ParamsRequired, &[], out);
        };
        let sid = match (
            params.get("sid").and_then(Value::as_u64),
            params.get("sids").and_then(Value::as_array),
        ) {
            (Some(s), None) => s,
            (None, Some(a)) if a.len() == 1 => match a[0].as_u64() {
                Some(s) => s,
                None => return self.error(id, ErrorCode::InvalidParameter, &[], out),
            },
            (None, None) => return self.error(id, ErrorCode::SidsRequired, &[], out),
            _ => return self.error(id, ErrorCode::ExactlyOneSid, &[], out),
        };
        let Some(action) = params.get("action").and_then(Value::as_str) else {
            return self.error(id, ErrorCode::ActionRequired, &[], out);
        };
        // The action names are kd-kalshi's (`UpdateAction`); any other is error 13.
        let Some(action) = [
            UpdateAction::AddMarkets,
            UpdateAction::DeleteMarkets,
            UpdateAction::GetSnapshot,
        ]
        .into_iter()
        .find(|a| a.as_str() == action) else {
            return self.error(id, ErrorCode::UnsupportedAction, &[], out);
        };
        let Some(idx) = self.subs.iter().position(|s| s.sid == sid) else {
            return self.error(id, ErrorCode::UnknownSid, &[], out);
        };
        if self.subs[idx].markets.is_none() {
            // An all-markets subscription has no market list to change.
            return self.error(id, ErrorCode::InvalidParameter, &[], out);
        }
        let tickers = Self::tickers_param(params);
        match action {
            UpdateAction::GetSnapshot => {
                if self.subs[idx].channel != Channel::OrderbookDelta {
                    return self.error(id, ErrorCode::UnsupportedAction, &[], out);
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
                    let yes_leg = self.subs[idx].yes_leg;
                    let g = self.snapshot((sid, seq, yes_leg), id, m, out);
                    if let Some(map) = self.subs[idx].markets.as_mut() {
                        map.insert(m, g);
                    }
                }
            }
            UpdateAction::AddMarkets => {
                let Some(t) = tickers else {
                    return self.error(id, ErrorCode::MarketTickerRequired, &[], out);
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
                    return self.error(id, ErrorCode::MarketLimit, &[], out);
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
                        let yes_leg = self.subs[idx].yes_leg;
                        let g = self.snapshot((sid, seq, yes_leg), None, m, out);
                        if let Some(map) = self.subs[idx].markets.as_mut() {
                            map.insert(m, g);
                        }
                    }
                }
            }
            UpdateAction::DeleteMarkets => {
                let Some(t) = tickers else {
                    return self.error(id, ErrorCode::MarketTickerRequired, &[], out);
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
        let ex = self.shared.exchange();
        let mut ms: Vec<u32> = map.keys().copied().collect();
        ms.sort_unstable();
        let list: Vec<String> = ms.into_iter().map(|m| ex.ticker(m)).collect();
        serde_json::to_string(&list).unwrap_or_else(|_| "[]".into())
    }
}
