//! Lifecycle identities: when two lifecycle copies are one change.
//!
//! A lifecycle message carries no time of its own, so each gatherer files it under its estimate
//! of the exchange's clock at receipt (`exchange_now`, clock-corrected, never bucketed). Three
//! gatherers' estimates of one message differ by their network paths and clock estimates
//! (milliseconds); two real changes of one market differ by at least the exchange's own pace.
//! The rule, in full:
//!
//! - Copies with a different [`ChangeKey`] (subject, event type, payload hash — the hash covers
//!   the kind) are different changes.
//! - Two copies from the SAME gatherer are always two changes (one gatherer receives each
//!   message once), unless they are the same copy exactly (same estimate to the µs: a replay).
//! - A copy from gatherer G is the same change as an already known change C when their keys are
//!   equal, their times are within [`LIFECYCLE_MATCH_US`], and C holds no copy from G yet; the
//!   nearest such C wins. Otherwise the copy is a new change, filed under its own time.
//!
//! So two toggles in a minute are two rows; three gatherers' copies of one toggle are one row;
//! a replayed batch adds nothing. The deduplicator applies this rule in its database
//! (`lifecycle_copies`, kd-production); [`ChangeSet`] is the same rule in memory, for tests and
//! for anything that merges lifecycle copies without a database. [`match_times`] is the
//! count-exact comparison `verify` uses between the exchange's send times and stored rows.

use std::collections::HashMap;

/// How far apart two gatherers' estimates of one lifecycle message may be. Generous next to
/// the milliseconds they differ by; the sim's fastest repeated toggle (the same payload every
/// 5 s) stays far above it, and the one-copy-per-gatherer rule keeps even closer repeats apart.
pub const LIFECYCLE_MATCH_US: i64 = 2_000_000;

/// What two copies of one change share exactly.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChangeKey {
    pub subject: String,
    pub event_type: String,
    pub payload_hash: i64,
}

/// What [`ChangeSet::offer`] decided about one copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offered {
    /// A change not known before: a new row filed at this time.
    New { row_ts: i64 },
    /// Another gatherer's copy of the change filed at `row_ts`.
    Copy { row_ts: i64 },
    /// This very copy was offered before (a replayed batch).
    Replay { row_ts: i64 },
}

#[derive(Debug, Clone)]
struct Change {
    row_ts: i64,
    /// (gatherer, the copy's own time), one per gatherer.
    copies: Vec<(String, i64)>,
}

/// Known lifecycle changes and the copies each holds (the rule of this module, in memory).
#[derive(Debug, Clone, Default)]
pub struct ChangeSet {
    changes: HashMap<ChangeKey, Vec<Change>>,
}

impl ChangeSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Files one copy from `gatherer` taken at `ts` (µs, the gatherer's exchange-time estimate).
    pub fn offer(&mut self, gatherer: &str, key: &ChangeKey, ts: i64) -> Offered {
        let changes = self.changes.entry(key.clone()).or_default();
        if let Some(c) = changes
            .iter()
            .find(|c| c.copies.iter().any(|(g, t)| g == gatherer && *t == ts))
        {
            return Offered::Replay { row_ts: c.row_ts };
        }
        let nearest = changes
            .iter_mut()
            .filter(|c| c.row_ts.abs_diff(ts) <= LIFECYCLE_MATCH_US.unsigned_abs())
            .filter(|c| c.copies.iter().all(|(g, _)| g != gatherer))
            .min_by_key(|c| c.row_ts.abs_diff(ts));
        match nearest {
            Some(c) => {
                c.copies.push((gatherer.to_string(), ts));
                Offered::Copy { row_ts: c.row_ts }
            }
            None => {
                changes.push(Change {
                    row_ts: ts,
                    copies: vec![(gatherer.to_string(), ts)],
                });
                Offered::New { row_ts: ts }
            }
        }
    }

    /// How many changes (rows) are known.
    pub fn len(&self) -> usize {
        self.changes.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Count-exact matching of two sets of times of one [`ChangeKey`]: each `expected` time pairs
/// with at most one `stored` time within `tolerance`, and vice versa. Returns the indices left
/// unpaired on each side. Both are sorted first; pairing greedily in time order is a maximum
/// matching when every pair's window is the same width.
pub fn match_times(expected: &[i64], stored: &[i64], tolerance: i64) -> (Vec<usize>, Vec<usize>) {
    let mut e: Vec<(i64, usize)> = expected.iter().copied().zip(0..).collect();
    let mut s: Vec<(i64, usize)> = stored.iter().copied().zip(0..).collect();
    e.sort_unstable();
    s.sort_unstable();
    let (mut i, mut j) = (0, 0);
    let (mut lone_e, mut lone_s) = (Vec::new(), Vec::new());
    while i < e.len() && j < s.len() {
        let (te, ie) = e[i];
        let (ts, is) = s[j];
        if te.abs_diff(ts) <= tolerance.unsigned_abs() {
            i += 1;
            j += 1;
        } else if te < ts {
            lone_e.push(ie);
            i += 1;
        } else {
            lone_s.push(is);
            j += 1;
        }
    }
    lone_e.extend(e[i..].iter().map(|&(_, ix)| ix));
    lone_s.extend(s[j..].iter().map(|&(_, ix)| ix));
    (lone_e, lone_s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(event_type: &str) -> ChangeKey {
        ChangeKey {
            subject: "M".into(),
            event_type: event_type.into(),
            payload_hash: event_type.len() as i64,
        }
    }

    /// Four toggles 2.5 s apart (the sim's burst), copies of three gatherers within ±40 ms.
    fn toggles() -> Vec<(&'static str, ChangeKey, i64)> {
        let mut copies = Vec::new();
        for (g, jitter) in [("a", 0), ("b", 40_000), ("c", -25_000)] {
            for i in 0..4i64 {
                let kind = if i % 2 == 0 {
                    "deactivated"
                } else {
                    "activated"
                };
                copies.push((g, key(kind), 1_000_000_000 + i * 2_500_000 + jitter));
            }
        }
        copies
    }

    #[test]
    fn three_gatherers_four_toggles_are_four_changes_and_a_replay_adds_none() {
        let mut set = ChangeSet::new();
        let copies = toggles();
        let new = copies
            .iter()
            .filter(|(g, k, t)| matches!(set.offer(g, k, *t), Offered::New { .. }))
            .count();
        assert_eq!(new, 4);
        assert_eq!(set.len(), 4);
        for (g, k, t) in &copies {
            assert!(matches!(set.offer(g, k, *t), Offered::Replay { .. }));
        }
        assert_eq!(set.len(), 4);
    }

    #[test]
    fn one_gatherer_repeating_a_change_within_the_tolerance_keeps_both() {
        let mut set = ChangeSet::new();
        let k = key("deactivated");
        assert_eq!(set.offer("a", &k, 0), Offered::New { row_ts: 0 });
        assert_eq!(
            set.offer("a", &k, 500_000),
            Offered::New { row_ts: 500_000 }
        );
        // b's copies go one to each change, nearest first.
        assert_eq!(set.offer("b", &k, 10_000), Offered::Copy { row_ts: 0 });
        assert_eq!(
            set.offer("b", &k, 510_000),
            Offered::Copy { row_ts: 500_000 }
        );
        assert_eq!(set.len(), 2);
    }

    #[test]
    fn copies_beyond_the_tolerance_are_different_changes() {
        let mut set = ChangeSet::new();
        let k = key("activated");
        set.offer("a", &k, 0);
        assert_eq!(
            set.offer("b", &k, LIFECYCLE_MATCH_US + 1),
            Offered::New {
                row_ts: LIFECYCLE_MATCH_US + 1
            }
        );
    }

    #[test]
    fn match_times_is_count_exact() {
        let (e, s) = match_times(&[0, 2_500_000, 5_000_000], &[30_000, 5_010_000], 2_000_000);
        assert_eq!((e, s), (vec![1], vec![]));
        let (e, s) = match_times(&[0], &[10, 20], 2_000_000);
        assert_eq!((e, s), (vec![], vec![1]));
    }

    proptest! {
        /// Any number of changes of one key at least 2× the tolerance apart (in any order per
        /// gatherer), copied by up to 5 gatherers with jitter below half the tolerance, and all
        /// offered twice in any interleaving: exactly one change each.
        #[test]
        fn every_change_once_whatever_the_copies(
            gaps in proptest::collection::vec(2 * LIFECYCLE_MATCH_US..20 * LIFECYCLE_MATCH_US, 1..8),
            jitter in proptest::collection::vec(-LIFECYCLE_MATCH_US / 2..LIFECYCLE_MATCH_US / 2, 40),
            gatherers in 1usize..5,
            order in proptest::collection::vec(any::<u32>(), 80),
        ) {
            let mut t = 0i64;
            let times: Vec<i64> = gaps.iter().map(|g| { t += g; t }).collect();
            let k = key("deactivated");
            let mut copies = Vec::new();
            for g in 0..gatherers {
                for (i, ts) in times.iter().enumerate() {
                    let j = jitter[(g * times.len() + i) % jitter.len()];
                    copies.push((format!("g{g}"), ts + j));
                }
            }
            let mut offers: Vec<(u32, (String, i64))> = order
                .iter()
                .copied()
                .zip(copies.iter().chain(copies.iter()).cloned())
                .collect();
            offers.sort_by_key(|(o, _)| *o);
            let mut set = ChangeSet::new();
            for (_, (g, ts)) in &offers {
                set.offer(g, &k, *ts);
            }
            // Every copy offered at least once (order has 80 slots ≥ 2 × copies).
            for (g, ts) in &copies {
                let replayed = matches!(set.offer(g, &k, *ts), Offered::Replay { .. });
                prop_assert!(replayed, "{} at {} not known as a replay", g, ts);
            }
            prop_assert_eq!(set.len(), times.len());
        }

        /// Matching is symmetric in count: unmatched on each side + matched = sizes.
        #[test]
        fn match_times_pairs_are_consistent(
            e in proptest::collection::vec(0i64..100_000_000, 0..20),
            s in proptest::collection::vec(0i64..100_000_000, 0..20),
        ) {
            let (le, ls) = match_times(&e, &s, LIFECYCLE_MATCH_US);
            prop_assert_eq!(e.len() - le.len(), s.len() - ls.len());
        }
    }
}
