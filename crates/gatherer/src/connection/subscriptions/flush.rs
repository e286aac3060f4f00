//! The commands owed: global channels, waiting markets into subscriptions with room (one
//! command in flight per subscription), the rest into new ones, and due snapshots.

use super::{
    DeltaSub, MAX_SUBSCRIBE_IN_FLIGHT, Pending, SNAPSHOT_COOLDOWN, SNAPSHOT_MEMORY, SubKey,
    SubState, Subscriptions, strings, take_some,
};
use kd_kalshi::ws::{Command, UpdateAction};
use tokio::time::Instant;

impl Subscriptions {
    /// The commands to send now, in order. Call after every input and on a timer (retries and
    /// snapshot cooldowns are due by time).
    pub fn poll(&mut self, now: Instant) -> Vec<Command> {
        if !self.connected {
            self.outbox.clear();
            return Vec::new();
        }
        self.snapshots(now);
        self.retry_not_found(now);
        let gated = self.retry_at.is_some_and(|at| now < at);
        if !gated {
            self.retry_at = None;
            self.deletes();
            self.globals();
            self.markets();
        }
        std::mem::take(&mut self.outbox)
    }

    fn deletes(&mut self) {
        for (sid, markets) in std::mem::take(&mut self.deletes_due) {
            // Only while the subscription lives (a dead one took its markets with it), and not
            // a market added back to it meanwhile (the failed delete left it there).
            let Some(sub) = self.subs.values().find(|s| s.sid() == Some(sid)) else {
                continue;
            };
            let markets: Vec<_> = markets
                .into_iter()
                .filter(|t| !sub.markets.contains(t))
                .collect();
            if !markets.is_empty() {
                self.send_delete(sid, markets);
            }
        }
    }

    fn globals(&mut self) {
        for channel in std::mem::take(&mut self.global_waiting) {
            let id = self.command_id();
            self.outbox
                .push(Command::subscribe(id, std::slice::from_ref(&channel), &[]));
            self.pending.insert(id, Pending::Global { channel });
        }
    }

    fn markets(&mut self) {
        if self.waiting.is_empty() {
            return;
        }
        let limit = self.per_sub_limit;
        let mut in_flight = self.pending.values().filter(|p| p.is_subscribe()).count();
        let keys: Vec<SubKey> = self.subs.keys().copied().collect();
        for key in keys {
            if self.waiting.is_empty() || in_flight >= MAX_SUBSCRIBE_IN_FLIGHT {
                break;
            }
            let Some(sub) = self.subs.get_mut(&key) else {
                continue;
            };
            let Some(sid) = sub.sid() else { continue };
            if sub.in_flight || sub.markets.len() >= limit {
                continue;
            }
            let batch = take_some(&mut self.waiting, limit - sub.markets.len());
            sub.in_flight = true;
            sub.markets.extend(batch.iter().cloned());
            let id = self.command_id();
            self.outbox.push(Command::update(
                id,
                sid,
                UpdateAction::AddMarkets,
                &strings(&batch),
            ));
            self.pending.insert(
                id,
                Pending::AddMarkets {
                    sub: key,
                    markets: batch,
                },
            );
            in_flight += 1;
        }
        // New subscriptions for what is left, unless one is still being created (its room is
        // used once it is confirmed).
        if self.subs.values().any(|s| s.state == SubState::Creating) {
            return;
        }
        while !self.waiting.is_empty() && in_flight < MAX_SUBSCRIBE_IN_FLIGHT {
            let batch = take_some(&mut self.waiting, limit);
            let key = SubKey(self.next_sub);
            self.next_sub += 1;
            self.subs.insert(
                key,
                DeltaSub {
                    state: SubState::Creating,
                    markets: batch.iter().cloned().collect(),
                    in_flight: true,
                },
            );
            let id = self.command_id();
            // The NO side's scale is always asked for explicitly (see `router::scale`).
            self.outbox.push(Command::subscribe_orderbook(
                id,
                &strings(&batch),
                self.use_yes_price,
            ));
            self.pending.insert(
                id,
                Pending::DeltaSubscribe {
                    sub: key,
                    markets: batch,
                },
            );
            in_flight += 1;
        }
    }

    /// `get_snapshot` for the subscriptions whose cooldown has passed; its answer is an
    /// `orderbook_snapshot` per market on the same sid.
    fn snapshots(&mut self, now: Instant) {
        if self.snapshot_due.is_empty() {
            return;
        }
        let ready: Vec<u64> = self
            .snapshot_due
            .keys()
            .copied()
            .filter(|sid| {
                self.snapshot_sent
                    .get(sid)
                    .is_none_or(|at| now.duration_since(*at) >= SNAPSHOT_COOLDOWN)
            })
            .collect();
        for sid in ready {
            let Some(wanted) = self.snapshot_due.remove(&sid) else {
                continue;
            };
            let Some(sub) = self.subs.values().find(|s| s.sid() == Some(sid)) else {
                continue;
            };
            let tickers: Vec<String> = match wanted {
                Some(set) => set
                    .into_iter()
                    .filter(|t| sub.markets.contains(t.as_str()))
                    .collect(),
                None => sub.markets.iter().map(|t| t.to_string()).collect(),
            };
            if tickers.is_empty() {
                continue;
            }
            self.snapshot_sent.insert(sid, now);
            let id = self.command_id();
            self.outbox.push(Command::update(
                id,
                sid,
                UpdateAction::GetSnapshot,
                &tickers,
            ));
            self.effects.push(super::Effect::SnapshotRequested {
                markets: tickers.len(),
            });
            if self.snapshots_sent.len() >= SNAPSHOT_MEMORY {
                self.snapshots_sent.pop_front();
            }
            self.snapshots_sent.push_back((id, sid, tickers));
        }
    }
}
