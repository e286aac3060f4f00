//! Sequence tracking per subscription (`sid`): `seq` starts at the subscription's first message
//! and grows by one per sequenced message (`ok`/`unsubscribed`/`error` replies of a sequenced
//! subscription consume a number too). A jump means messages were lost in between; a delta for a
//! market whose snapshot was never seen means its book cannot be trusted. Both are reported as
//! [`GapNotice`]s: the router records them as gap rows, repair acts on them.

use kd_core::TimestampUs;
use std::collections::{HashMap, HashSet};

/// Why a gap was declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GapReason {
    /// `seq` jumped forward on a subscription.
    SeqGap,
    /// A delta arrived for a market whose snapshot this subscription has not delivered.
    NoSnapshot,
    /// A terminal channel error (10, 25) ended the subscription.
    ChannelError,
    /// Records were dropped on the way to the writer (queue stayed full).
    Dropped,
    /// The connection was lost (its subscriptions restart with fresh snapshots).
    Disconnected,
    /// A fresh snapshot answered `get_snapshot`: the exchange sends no delta the snapshot
    /// already contains, so changes made between the subscription's last message and the
    /// snapshot may reach this gatherer only inside the snapshot.
    SnapshotRefresh,
    /// The first snapshot after a lost connection: changes made between the loss and the new
    /// subscription were sent to this gatherer in no form but the snapshot.
    Resubscribed,
    /// NO levels were stored on the wrong price scale (the exchange answered on the other
    /// `use_yes_price` scale after its scale had been checked): they are unreliable until the
    /// fresh snapshot asked for (see `router::scale`).
    PriceScale,
}

impl GapReason {
    pub const fn as_str(self) -> &'static str {
        match self {
            GapReason::SeqGap => "seq_gap",
            GapReason::NoSnapshot => "no_snapshot",
            GapReason::ChannelError => "channel_error",
            GapReason::Dropped => "dropped",
            GapReason::Disconnected => "disconnected",
            GapReason::SnapshotRefresh => "snapshot_refresh",
            GapReason::Resubscribed => "resubscribed",
            GapReason::PriceScale => "price_scale",
        }
    }
}

/// A window in which messages may have been missed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GapNotice {
    pub sid: Option<u64>,
    /// The market when known (a `seq` jump on a multi-market subscription names none).
    pub ticker: Option<String>,
    pub channel: String,
    pub reason: GapReason,
    /// Receive time of the last message known good.
    pub start: TimestampUs,
    /// Receive time of the message that revealed the gap.
    pub end: TimestampUs,
    /// Expected and received `seq` for `SeqGap`.
    pub expected: Option<u64>,
    pub got: Option<u64>,
}

#[derive(Debug)]
struct SidState {
    channel: String,
    last_seq: Option<u64>,
    last_at: TimestampUs,
    /// Markets whose snapshot arrived on this subscription.
    snapshotted: HashSet<String>,
}

/// What the tracker says about one sequenced message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqCheck {
    /// Next in order (or the first seen, or unsequenced).
    InOrder,
    /// Already seen (duplicate or reordered): not a gap.
    Stale,
    /// A jump: the gap notice says which window.
    Gap,
}

/// Per-connection tracker of every subscription's sequence.
#[derive(Debug, Default)]
pub struct SequenceTracker {
    sids: HashMap<u64, SidState>,
}

impl SequenceTracker {
    /// Starts tracking a subscription (on `subscribed`). A reused `sid` starts over.
    pub fn subscribed(&mut self, sid: u64, channel: &str, at: TimestampUs) {
        self.sids.insert(
            sid,
            SidState {
                channel: channel.to_string(),
                last_seq: None,
                last_at: at,
                snapshotted: HashSet::new(),
            },
        );
    }

    /// Stops tracking a subscription (unsubscribed or terminal error).
    pub fn ended(&mut self, sid: u64) {
        self.sids.remove(&sid);
    }

    /// The channel of a subscription.
    pub fn channel(&self, sid: u64) -> Option<&str> {
        self.sids.get(&sid).map(|s| s.channel.as_str())
    }

    /// Checks a message's `seq`; returns the verdict and, for a jump, the notice.
    pub fn check(
        &mut self,
        sid: u64,
        seq: Option<u64>,
        at: TimestampUs,
        channel_hint: &str,
    ) -> (SeqCheck, Option<GapNotice>) {
        let state = self.sids.entry(sid).or_insert_with(|| SidState {
            channel: channel_hint.to_string(),
            last_seq: None,
            last_at: at,
            snapshotted: HashSet::new(),
        });
        let Some(seq) = seq else {
            state.last_at = at;
            return (SeqCheck::InOrder, None);
        };
        match state.last_seq {
            Some(last) if seq <= last => (SeqCheck::Stale, None),
            Some(last) if seq > last + 1 => {
                let notice = GapNotice {
                    sid: Some(sid),
                    ticker: None,
                    channel: state.channel.clone(),
                    reason: GapReason::SeqGap,
                    start: state.last_at,
                    end: at,
                    expected: Some(last + 1),
                    got: Some(seq),
                };
                state.last_seq = Some(seq);
                state.last_at = at;
                (SeqCheck::Gap, Some(notice))
            }
            _ => {
                state.last_seq = Some(seq);
                state.last_at = at;
                (SeqCheck::InOrder, None)
            }
        }
    }

    /// Notes a market's snapshot on a subscription; true when the subscription had already
    /// delivered one for it (this one answers `get_snapshot`).
    pub fn snapshot(&mut self, sid: u64, ticker: &str) -> bool {
        match self.sids.get_mut(&sid) {
            Some(state) if state.snapshotted.contains(ticker) => true,
            Some(state) => {
                state.snapshotted.insert(ticker.to_string());
                false
            }
            None => false,
        }
    }

    /// Checks that a delta's market has had its snapshot; a notice when it has not (reported
    /// once: the market is then treated as snapshotted until repair sends a real one).
    pub fn delta(&mut self, sid: u64, ticker: &str, at: TimestampUs) -> Option<GapNotice> {
        let state = self.sids.get_mut(&sid)?;
        if state.snapshotted.contains(ticker) {
            return None;
        }
        state.snapshotted.insert(ticker.to_string());
        Some(GapNotice {
            sid: Some(sid),
            ticker: Some(ticker.to_string()),
            channel: state.channel.clone(),
            reason: GapReason::NoSnapshot,
            start: state.last_at,
            end: at,
            expected: None,
            got: None,
        })
    }

    /// Forgets a market on a subscription (removed from it).
    pub fn market_removed(&mut self, sid: u64, ticker: &str) {
        if let Some(state) = self.sids.get_mut(&sid) {
            state.snapshotted.remove(ticker);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(us: i64) -> TimestampUs {
        TimestampUs::from_micros(us)
    }

    #[test]
    fn in_order_stale_and_jumps() {
        let mut t = SequenceTracker::default();
        t.subscribed(1, "orderbook_delta", at(0));
        assert_eq!(t.check(1, Some(1), at(1), "x").0, SeqCheck::InOrder);
        assert_eq!(t.check(1, Some(2), at(2), "x").0, SeqCheck::InOrder);
        assert_eq!(t.check(1, Some(2), at(3), "x").0, SeqCheck::Stale);
        let (verdict, notice) = t.check(1, Some(5), at(4), "x");
        assert_eq!(verdict, SeqCheck::Gap);
        let notice = notice.expect("a notice");
        assert_eq!((notice.expected, notice.got), (Some(3), Some(5)));
        assert_eq!((notice.start, notice.end), (at(2), at(4)));
        assert_eq!(notice.channel, "orderbook_delta");
        assert_eq!(t.check(1, Some(6), at(5), "x").0, SeqCheck::InOrder);
        // Unsequenced messages never count.
        assert_eq!(t.check(1, None, at(6), "x").0, SeqCheck::InOrder);
        // A new subscription with the same sid starts over.
        t.subscribed(1, "trade", at(7));
        assert_eq!(t.check(1, Some(1), at(8), "x").0, SeqCheck::InOrder);
    }

    #[test]
    fn delta_without_snapshot_is_reported_once() {
        let mut t = SequenceTracker::default();
        t.subscribed(2, "orderbook_delta", at(0));
        t.snapshot(2, "A");
        assert!(t.delta(2, "A", at(1)).is_none());
        let n = t.delta(2, "B", at(2)).expect("no snapshot for B");
        assert_eq!(n.reason, GapReason::NoSnapshot);
        assert_eq!(n.ticker.as_deref(), Some("B"));
        assert!(t.delta(2, "B", at(3)).is_none());
    }
}
