//! Applying the exchange's replies and errors (each error by its [`ErrorCode`]'s action).

use super::{
    ANSWER_MEMORY, Effect, NOT_FOUND_POLICY, NotFound, Pending, SubKey, SubState, Subscriptions,
};
use crate::registry::Ticker;
use kd_kalshi::parse::WsEvent;
use kd_kalshi::ws::{Channel, ErrorCode, SubscribeErrorAction as Action};
use std::collections::BTreeSet;
use std::time::Duration;
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
                    self.confirmed(id, sub, markets);
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
                    self.confirmed(id, sub, markets);
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

    /// Markets confirmed subscribed: hand their lifecycle arrival times out once, and remember
    /// the command for an `error` with its id that refuses some of them.
    fn confirmed(&mut self, id: Option<u64>, sub: SubKey, markets: Vec<Ticker>) {
        let noticed = markets
            .iter()
            .filter_map(|t| self.noticed.remove(t))
            .collect();
        self.effects.push(Effect::Subscribed { noticed });
        for t in &markets {
            self.not_found.remove(t);
        }
        if let Some(id) = id {
            if self.answered.len() >= ANSWER_MEMORY {
                self.answered.pop_front();
            }
            self.answered.push_back((id, sub, markets));
        }
    }

    /// Applies an error reply.
    pub fn on_error(&mut self, error: ErrorReply, now: Instant) {
        let action = error.code.action();
        let named: BTreeSet<&str> = error.market_tickers.iter().map(String::as_str).collect();
        // A code that will not succeed when repeated at once: wait before the next command.
        let delay_retry = match action {
            Action::Backoff | Action::CheckCredentials => true,
            Action::DropMarkets => named.is_empty(),
            Action::NoRetry | Action::ShrinkBatch | Action::Resubscribe => false,
        };
        match error.id.and_then(|id| self.pending.remove(&id)) {
            Some(Pending::DeltaSubscribe { sub, markets }) => {
                let (refused, kept) = split(markets, &named);
                let size = refused.len() + kept.len();
                if let (false, Some(id)) = (kept.is_empty(), error.id) {
                    // Only some refused: the exchange takes the rest, and says so next.
                    self.take_out(sub, &refused);
                    self.pending
                        .insert(id, Pending::DeltaSubscribe { sub, markets: kept });
                } else {
                    self.command_failed(sub, &refused, error.code);
                }
                self.refused(refused, size, &error, now);
            }
            Some(Pending::AddMarkets { sub, markets }) => {
                let (refused, kept) = split(markets, &named);
                let size = refused.len() + kept.len();
                if let (false, Some(id)) = (kept.is_empty(), error.id) {
                    self.take_out(sub, &refused);
                    self.pending
                        .insert(id, Pending::AddMarkets { sub, markets: kept });
                } else {
                    self.command_failed(sub, &refused, error.code);
                }
                self.refused(refused, size, &error, now);
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
            None => {
                if !self.refused_after_success(&error, &named, now) {
                    self.unsolicited(&error);
                }
            }
        }
        if delay_retry {
            self.delay(error.code, now);
        }
        if action == Action::CheckCredentials {
            self.effects
                .push(Effect::CredentialsNeeded { code: error.code });
        }
    }

    /// An error naming markets of a command already confirmed (`subscribed`/`ok` came first):
    /// those markets are not in the subscription after all. False when it is no such error.
    fn refused_after_success(
        &mut self,
        error: &ErrorReply,
        named: &BTreeSet<&str>,
        now: Instant,
    ) -> bool {
        let Some(id) = error.id else { return false };
        if named.is_empty() {
            return false;
        }
        let Some(at) = self.answered.iter().position(|(i, _, _)| *i == id) else {
            return false;
        };
        let Some((_, sub, markets)) = self.answered.remove(at) else {
            return false;
        };
        let size = markets.len();
        let (refused, kept) = split(markets, named);
        if !kept.is_empty() {
            self.answered.push_back((id, sub, kept));
        }
        self.take_out(sub, &refused);
        self.refused(refused, size, error, now);
        true
    }

    /// What becomes of markets a command could not subscribe, by the error's action. `size`:
    /// how many markets the command carried (error 26 halves it).
    fn refused(&mut self, markets: Vec<Ticker>, size: usize, error: &ErrorReply, now: Instant) {
        match error.code.action() {
            Action::DropMarkets if !error.market_tickers.is_empty() => {
                let (gone, others): (Vec<Ticker>, Vec<Ticker>) = markets
                    .into_iter()
                    .partition(|t| error.market_tickers.iter().any(|n| **n == **t));
                self.not_found_for_now(gone, now);
                self.requeue(others);
            }
            Action::NoRetry => {
                self.park(markets);
                self.effects.push(Effect::Refused {
                    code: error.code,
                    channel: Channel::OrderbookDelta,
                });
            }
            Action::ShrinkBatch => {
                let shrunk = (size / 2).max(1).min(self.per_sub_limit);
                self.per_sub_limit = shrunk;
                self.effects.push(Effect::Shrunk { limit: shrunk });
                self.requeue(markets);
            }
            _ => self.requeue(markets),
        }
    }

    /// Takes markets out of one subscription (the exchange did not add them to it).
    fn take_out(&mut self, sub: SubKey, markets: &[Ticker]) {
        if let Some(s) = self.subs.get_mut(&sub) {
            for t in markets {
                s.markets.remove(t);
            }
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
            let backing_off = self.not_found.get(&t).is_some_and(|n| n.due.is_some());
            if self.wanted.contains(&t) && !self.placed(&t) && !backing_off {
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

    /// Error 11 naming markets: they do not exist now. They stay wanted, out of every
    /// subscription, until their backoff passes ([`Subscriptions::retry_not_found`]); the
    /// registry removes them if they are really gone.
    fn not_found_for_now(&mut self, markets: Vec<Ticker>, now: Instant) {
        let mut named = Vec::new();
        let mut retry_in = Duration::ZERO;
        for t in markets {
            if !self.wanted.contains(&t) {
                continue;
            }
            self.waiting.remove(&t);
            for s in self.subs.values_mut() {
                s.markets.remove(&t);
            }
            let entry = self.not_found.entry(t.clone()).or_insert(NotFound {
                attempts: 0,
                due: None,
            });
            let delay = NOT_FOUND_POLICY.delay(entry.attempts);
            entry.attempts = entry.attempts.saturating_add(1);
            entry.due = Some(now + delay);
            retry_in = retry_in.max(delay);
            named.push(t.to_string());
        }
        if !named.is_empty() {
            self.effects.push(Effect::NotFound {
                markets: named,
                retry_in,
            });
        }
    }

    /// Markets whose "not found" backoff has passed go back in the queue (called by `poll`).
    pub(crate) fn retry_not_found(&mut self, now: Instant) {
        if self.not_found.is_empty() {
            return;
        }
        let due: Vec<Ticker> = self
            .not_found
            .iter_mut()
            .filter(|(_, n)| n.due.is_some_and(|at| at <= now))
            .map(|(t, n)| {
                n.due = None;
                t.clone()
            })
            .collect();
        if self.connected {
            self.requeue(due);
        }
    }

    fn delay(&mut self, code: ErrorCode, now: Instant) {
        let delay = self.retry.next_delay();
        let at = now + delay;
        self.retry_at = Some(self.retry_at.map_or(at, |t| t.max(at)));
        self.effects.push(Effect::RetryLater { code, delay });
    }
}

/// (markets the error names, the others); an error naming none, or naming markets the command
/// did not carry, refuses the whole command.
fn split(markets: Vec<Ticker>, named: &BTreeSet<&str>) -> (Vec<Ticker>, Vec<Ticker>) {
    if named.is_empty() {
        return (markets, Vec::new());
    }
    let (refused, kept): (Vec<Ticker>, Vec<Ticker>) =
        markets.into_iter().partition(|t| named.contains(&**t));
    if refused.is_empty() {
        return (kept, Vec::new());
    }
    (refused, kept)
}
