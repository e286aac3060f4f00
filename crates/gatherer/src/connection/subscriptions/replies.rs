//! Applying the exchange's replies and errors (each error by its [`ErrorCode`]'s action).

use super::{Effect, Pending, SubKey, SubState, Subscriptions};
use crate::registry::Ticker;
use kd_kalshi::parse::WsEvent;
use kd_kalshi::ws::{Channel, ErrorCode, SubscribeErrorAction as Action};
use std::collections::BTreeSet;
use tokio::time::Instant;

/// An `error` reply, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorReply {
    pub id: Option<u64>,
    pub sid: Option<u64>,
    pub code: ErrorCode,
    /// Markets the exchange names (`msg.market_ticker(s)`).
    pub market_tickers: Vec<String>,
}

impl Subscriptions {
    /// Applies a command reply or channel error (other events are ignored). `now` times the
    /// retry of a command refused with a transient error.
    pub fn on_reply(&mut self, event: WsEvent, now: Instant) {
        match event {
            WsEvent::Subscribed { id, sid, .. } => match id.and_then(|id| self.pending.remove(&id))
            {
                Some(Pending::DeltaSubscribe { sub, markets }) => {
                    self.retry.reset();
                    let stale = match self.subs.get_mut(&sub) {
                        Some(s) => {
                            s.state = SubState::Live(sid);
                            s.in_flight = false;
                            // Removed while the subscribe was in flight: the exchange added
                            // them anyway.
                            markets
                                .iter()
                                .filter(|t| !s.markets.contains(*t))
                                .cloned()
                                .collect::<Vec<_>>()
                        }
                        None => Vec::new(),
                    };
                    if !stale.is_empty() {
                        self.send_delete(sid, stale);
                    }
                    self.confirmed(&markets);
                }
                Some(Pending::Global { channel }) => {
                    self.retry.reset();
                    self.global_sids.insert(sid, channel);
                }
                // Not ours (or another command's id): nothing to update.
                Some(other) => {
                    if let Some(id) = id {
                        self.pending.insert(id, other);
                    }
                }
                None => {}
            },
            WsEvent::Ok { id, .. } => match id.and_then(|id| self.pending.remove(&id)) {
                Some(Pending::AddMarkets { sub, markets }) => {
                    self.retry.reset();
                    if let Some(s) = self.subs.get_mut(&sub) {
                        s.in_flight = false;
                    }
                    self.confirmed(&markets);
                }
                Some(Pending::DeleteMarkets { .. }) | None => {}
                Some(other) => {
                    if let Some(id) = id {
                        self.pending.insert(id, other);
                    }
                }
            },
            WsEvent::Unsubscribed { id: Some(id), .. } => {
                self.pending.remove(&id);
            }
            WsEvent::Error {
                id,
                sid,
                code,
                market_tickers,
                ..
            } => self.on_error(
                ErrorReply {
                    id,
                    sid,
                    code: ErrorCode::from_code(code),
                    market_tickers,
                },
                now,
            ),
            _ => {}
        }
    }

    /// Markets confirmed subscribed: hand their lifecycle arrival times out once.
    fn confirmed(&mut self, markets: &[Ticker]) {
        let noticed = markets
            .iter()
            .filter_map(|t| self.noticed.remove(t))
            .collect();
        self.effects.push(Effect::Subscribed { noticed });
    }

    /// Applies an error reply.
    pub fn on_error(&mut self, error: ErrorReply, now: Instant) {
        let action = error.code.action();
        let pending = error.id.and_then(|id| self.pending.remove(&id));
        if action == Action::DropMarkets && !error.market_tickers.is_empty() {
            self.drop_not_found(&error.market_tickers);
        }
        // A code that will not succeed when repeated at once: wait before the next command.
        let delay_retry = match action {
            Action::Backoff | Action::CheckCredentials => true,
            Action::DropMarkets => error.market_tickers.is_empty(),
            Action::NoRetry | Action::ShrinkBatch | Action::Resubscribe => false,
        };
        match pending {
            Some(Pending::DeltaSubscribe { sub, markets })
            | Some(Pending::AddMarkets { sub, markets }) => {
                self.command_failed(sub, &markets, error.code);
                if action == Action::ShrinkBatch {
                    let shrunk = (markets.len() / 2).max(1).min(self.per_sub_limit);
                    self.per_sub_limit = shrunk;
                    self.effects.push(Effect::Shrunk { limit: shrunk });
                }
                if action == Action::NoRetry {
                    self.park(markets);
                    self.effects.push(Effect::Refused {
                        code: error.code,
                        channel: Channel::OrderbookDelta,
                    });
                } else {
                    self.requeue(markets);
                }
            }
            Some(Pending::Global { channel }) => {
                if action == Action::NoRetry {
                    self.effects.push(Effect::Refused {
                        code: error.code,
                        channel,
                    });
                } else {
                    self.global_waiting.push(channel);
                }
            }
            Some(Pending::DeleteMarkets { sid, markets }) => {
                // Still subscribed at the exchange: say it again (unless the sid is gone).
                if action != Action::Resubscribe {
                    self.deletes_due.entry(sid).or_default().extend(markets);
                }
            }
            None => self.unsolicited(&error),
        }
        if delay_retry {
            self.delay(error.code, now);
        }
        if action == Action::CheckCredentials {
            self.effects
                .push(Effect::CredentialsNeeded { code: error.code });
        }
    }

    /// An error answering no command we track: a live subscription ended (10, 25), or a
    /// `get_snapshot` refused.
    fn unsolicited(&mut self, error: &ErrorReply) {
        if let Some(id) = error.id
            && let Some(at) = self.snapshots_sent.iter().position(|(i, _, _)| *i == id)
            && let Some((_, sid, markets)) = self.snapshots_sent.remove(at)
        {
            if error.code.is_transient() {
                self.request_snapshots(markets.into_iter().map(|t| (sid, Some(t))).collect());
            }
            return;
        }
        let Some(sid) = error.sid else { return };
        if !error.code.ends_subscription() {
            return;
        }
        if let Some(channel) = self.global_sids.remove(&sid) {
            self.global_waiting.push(channel);
        }
        let dead: Vec<SubKey> = self
            .subs
            .iter()
            .filter(|(_, s)| s.state == SubState::Live(sid))
            .map(|(k, _)| *k)
            .collect();
        for key in dead {
            if let Some(sub) = self.subs.remove(&key) {
                self.requeue(sub.markets.into_iter().collect());
            }
        }
    }

    /// The command for `sub` failed: its markets are not in it. A subscription that never
    /// came to be (or whose sid the exchange no longer knows) is gone with all its markets.
    fn command_failed(&mut self, sub: SubKey, markets: &[Ticker], code: ErrorCode) {
        let Some(s) = self.subs.get_mut(&sub) else {
            return;
        };
        s.in_flight = false;
        for t in markets {
            s.markets.remove(t);
        }
        let gone = s.state == SubState::Creating || code == ErrorCode::UnknownSid;
        if gone && let Some(s) = self.subs.remove(&sub) {
            self.requeue(s.markets.into_iter().collect());
        }
    }

    /// Puts markets back in the queue: only those still wanted and in no subscription (a
    /// market removed and added again meanwhile may already be elsewhere).
    fn requeue(&mut self, markets: Vec<Ticker>) {
        for t in markets {
            if self.wanted.contains(&t) && !self.placed(&t) {
                self.waiting.insert(t);
            }
        }
    }

    /// Keeps markets refused for good on this socket out of the queue until the next one.
    fn park(&mut self, markets: Vec<Ticker>) {
        for t in markets {
            if self.wanted.contains(&t) && !self.placed(&t) {
                self.waiting.remove(&t);
                self.parked.insert(t);
            }
        }
    }

    fn placed(&self, t: &Ticker) -> bool {
        self.subs.values().any(|s| s.markets.contains(t))
    }

    /// Error 11 naming markets: they do not exist; never retried.
    fn drop_not_found(&mut self, named: &[String]) {
        let named: BTreeSet<&str> = named.iter().map(String::as_str).collect();
        for ticker in &named {
            self.forget(ticker);
            for s in self.subs.values_mut() {
                s.markets.remove(*ticker);
            }
        }
        self.effects.push(Effect::Dropped {
            markets: named.into_iter().map(str::to_owned).collect(),
        });
    }

    fn delay(&mut self, code: ErrorCode, now: Instant) {
        let delay = self.retry.next_delay();
        let at = now + delay;
        self.retry_at = Some(self.retry_at.map_or(at, |t| t.max(at)));
        self.effects.push(Effect::RetryLater { code, delay });
    }
}
