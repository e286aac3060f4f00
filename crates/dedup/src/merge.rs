//! Merging the batches pulled from several gatherers into one set of unique records.
//!
//! Pure and synchronous: what survives is the first copy of each identity (DESIGN §2) in the
//! order the batches arrived; each gatherer's cursor moves to the last sequence it delivered.
//!
//! Lifecycle copies of several gatherers do not share an exact identity (each is filed at its
//! gatherer's receipt estimate), so here only exact repeats of one copy (a replay) are dropped;
//! every surviving record keeps the index of the gatherer it came from ([`Merged::origins`]),
//! and the production store applies the copy rule of `kd_core::identity::lifecycle` (within
//! 2 s, one copy per gatherer) in the same transaction as the cursors.
//!
//! [`RecentIdentities`] remembers what was committed lately, so the copies of lagging gatherers
//! (which arrive a few milliseconds after the first copy committed) are dropped in memory
//! instead of costing the database a conflict check each.

use kd_core::pull::{PulledRecord, QuarantinedRow};
use kd_core::records::Identity;
use kd_core::{Record, TimestampUs};
use std::collections::{HashSet, VecDeque};
use std::hash::Hash;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

/// A 128-bit digest of an identity (xxh3-128 over its fields). Two different identities
/// sharing one is about as likely as 2^-100 over a billion rows: negligible next to hardware
/// faults, and it keeps the sets small and allocation-free.
pub fn identity_key(identity: &Identity) -> u128 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    identity.hash(&mut h);
    h.digest128()
}

/// [`identity_key`] of `record.identity()` without building the identity: core's
/// [`IdentityRef`](kd_core::records::IdentityRef) borrows the record's strings and hashes
/// exactly as the owned identity does, so no string is copied per row.
pub fn record_key(record: &Record) -> u128 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    record.identity_ref().hash(&mut h);
    h.digest128()
}

/// Hashes an identity key by taking its low 64 bits. The keys are already xxh3-128 digests, so
/// hashing them again (SipHash by default) only costs time: the set lookups of the merge were
/// its largest cost in a profile. Written here because the no-op hasher crates cover integers
/// up to 64 bits only.
#[derive(Debug, Default, Clone, Copy)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only reached for keys other than `u128`; fold them in so the hasher stays correct.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u128(&mut self, key: u128) {
        self.0 = key as u64;
    }
}

/// A set of identity keys ([`KeyHasher`]).
pub type KeySet = HashSet<u128, BuildHasherDefault<KeyHasher>>;

/// A bounded memory of identities committed in production or in a batch queued to commit
/// before any later merge (oldest forgotten first). The writer commits merged batches strictly
/// in order, each retried until it commits, and a batch's cursors move only in its own
/// transaction; so dropping a record found here never loses it.
#[derive(Debug)]
pub struct RecentIdentities {
    set: KeySet,
    order: VecDeque<u128>,
    capacity: usize,
}

impl RecentIdentities {
    pub fn new(capacity: usize) -> Self {
        RecentIdentities {
            set: KeySet::with_capacity_and_hasher(capacity.min(1 << 20), Default::default()),
            order: VecDeque::with_capacity(capacity.min(1 << 20)),
            capacity,
        }
    }

    pub fn contains(&self, key: u128) -> bool {
        self.set.contains(&key)
    }

    /// Remembers committed identities, forgetting the oldest beyond the capacity.
    pub fn remember(&mut self, keys: impl IntoIterator<Item = u128>) {
        if self.capacity == 0 {
            return;
        }
        for key in keys {
            if self.set.insert(key) {
                self.order.push_back(key);
            }
        }
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

/// Rows one gatherer delivered for one table.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    /// Index of the gatherer in the configuration.
    pub gatherer: usize,
    pub records: Vec<PulledRecord>,
    /// The gatherer's local store the rows come from.
    pub store_id: Arc<str>,
    /// Rows the gatherer could not read (filed in `quarantine`; the cursor moves past them).
    pub quarantined: Vec<QuarantinedRow>,
}

impl Batch {
    /// The highest sequence number the batch covers, records and quarantined rows alike.
    pub fn last_seq(&self) -> Option<u64> {
        let r = self.records.last().map(|r| r.seq);
        let q = self.quarantined.iter().map(|q| q.seq).max();
        r.max(q)
    }
}

/// Where a gatherer's cursor goes once the merged batch commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorAdvance {
    pub gatherer: usize,
    pub last_seq: u64,
    /// `received_at` of the last record of the batch (lag).
    pub last_received: TimestampUs,
    /// The store `last_seq` counts in.
    pub store_id: Arc<str>,
}

/// Where a surviving record came from: enough to file it in `quarantine` if production
/// refuses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub gatherer: usize,
    pub store_id: Arc<str>,
    pub seq: u64,
}

/// The merge of several batches of one table.
#[derive(Debug, Default)]
pub struct Merged {
    /// Unique records, first copy wins.
    pub records: Vec<Record>,
    /// `identity_key` of each of `records`, same order.
    pub keys: Vec<u128>,
    /// The gatherer (index in the configuration) each of `records` came from, same order.
    pub origins: Vec<usize>,
    /// The store and local sequence of each of `records`, same order.
    pub sources: Vec<Source>,
    /// Rows the gatherers could not read, with where they came from.
    pub unreadable: Vec<(Source, QuarantinedRow)>,
    /// Copies dropped in memory.
    pub duplicates: u64,
    /// One per gatherer that delivered rows.
    pub cursors: Vec<CursorAdvance>,
}

/// Merges `batches`, dropping every record whose identity was already seen.
pub fn merge(batches: Vec<Batch>) -> Merged {
    merge_with(batches, None)
}

/// [`merge`], also dropping records whose identity `recent` knows to be committed.
pub fn merge_with(batches: Vec<Batch>, recent: Option<&RecentIdentities>) -> Merged {
    let total: usize = batches.iter().map(|b| b.records.len()).sum();
    let mut seen = KeySet::with_capacity_and_hasher(total, Default::default());
    let mut merged = Merged {
        records: Vec::with_capacity(total),
        keys: Vec::with_capacity(total),
        origins: Vec::with_capacity(total),
        sources: Vec::with_capacity(total),
        ..Merged::default()
    };
    for batch in batches {
        let Some(last_seq) = batch.last_seq() else {
            continue;
        };
        let advance = CursorAdvance {
            gatherer: batch.gatherer,
            last_seq,
            last_received: batch
                .records
                .last()
                .map(|r| r.record.received_at())
                .unwrap_or_default(),
            store_id: Arc::clone(&batch.store_id),
        };
        match merged
            .cursors
            .iter_mut()
            .find(|c| c.gatherer == batch.gatherer)
        {
            Some(c) if c.last_seq < advance.last_seq => *c = advance,
            // A batch of a replaced store follows the old store's batches (one puller per
            // gatherer and table, in order): its cursor wins whatever the numbers.
            Some(c) if c.store_id != advance.store_id => *c = advance,
            Some(_) => {}
            None => merged.cursors.push(advance),
        }
        for q in batch.quarantined {
            let source = Source {
                gatherer: batch.gatherer,
                store_id: Arc::clone(&batch.store_id),
                seq: q.seq,
            };
            merged.unreadable.push((source, q));
        }
        for pulled in batch.records {
            let key = record_key(&pulled.record);
            // This merge's own set first: when catching up, most copies are of a row another
            // gatherer's batch just delivered, found there without a probe of the far larger
            // (and colder) memory of committed identities. The outcome is the same either way.
            if !seen.insert(key) || recent.is_some_and(|r| r.contains(key)) {
                merged.duplicates += 1;
            } else {
                merged.records.push(pulled.record);
                merged.keys.push(key);
                merged.origins.push(batch.gatherer);
                merged.sources.push(Source {
                    gatherer: batch.gatherer,
                    store_id: Arc::clone(&batch.store_id),
                    seq: pulled.seq,
                });
            }
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use kd_core::records::{OrderbookDelta, Trade, TradeSource, WirePos};
    use kd_core::{Count, Price, Side};

    fn delta(ts: i64, occurrence: u32, received: i64, sid: u64) -> Record {
        Record::Delta(OrderbookDelta {
            ticker: "M".into(),
            exchange_ts: TimestampUs::from_micros(ts),
            side: Side::Yes,
            price: Price::new(50_000).unwrap_or(Price::ZERO),
            delta: Count::new(100),
            occurrence,
            received_at: TimestampUs::from_micros(received),
            pos: WirePos {
                sid: Some(sid),
                seq: Some(ts as u64),
            },
        })
    }

    fn trade(id: &str, ts: i64) -> Record {
        Record::Trade(Trade {
            trade_id: id.into(),
            ticker: "M".into(),
            exchange_ts: TimestampUs::from_micros(ts),
            yes_price: Price::new(1).unwrap_or(Price::ZERO),
            no_price: Price::new(99_999).unwrap_or(Price::ZERO),
            count: Count::new(1),
            taker_side: None,
            is_block_trade: false,
            source: TradeSource::Ws,
            received_at: TimestampUs::from_micros(ts),
            pos: WirePos::default(),
        })
    }

    fn batch(gatherer: usize, records: Vec<(u64, Record)>) -> Batch {
        Batch {
            gatherer,
            records: records
                .into_iter()
                .map(|(seq, record)| PulledRecord { seq, record })
                .collect(),
            ..Batch::default()
        }
    }

    #[test]
    fn record_key_equals_the_key_of_the_built_identity() {
        let records = kd_testkit::fixtures::one_of_each();
        let keys: Vec<u128> = records.iter().map(record_key).collect();
        for (r, k) in records.iter().zip(&keys) {
            assert_eq!(*k, identity_key(&r.identity()), "{r:?}");
        }
        let distinct: HashSet<u128> = keys.iter().copied().collect();
        assert_eq!(distinct.len(), keys.len());
    }

    #[test]
    fn copies_from_three_gatherers_become_one() {
        // Same deltas, different receive times, sids and local sequences: one copy each.
        let a = batch(0, vec![(1, delta(10, 0, 11, 1)), (2, delta(10, 1, 11, 1))]);
        let b = batch(1, vec![(7, delta(10, 0, 15, 9)), (8, delta(10, 1, 15, 9))]);
        let c = batch(2, vec![(3, delta(10, 1, 12, 4)), (4, delta(20, 0, 21, 4))]);
        let m = merge(vec![a, b, c]);
        assert_eq!(m.records.len(), 3);
        assert_eq!(m.duplicates, 3);
        assert_eq!(
            m.cursors,
            vec![
                CursorAdvance {
                    gatherer: 0,
                    last_seq: 2,
                    last_received: TimestampUs::from_micros(11),
                    store_id: Arc::default(),
                },
                CursorAdvance {
                    gatherer: 1,
                    last_seq: 8,
                    last_received: TimestampUs::from_micros(15),
                    store_id: Arc::default(),
                },
                CursorAdvance {
                    gatherer: 2,
                    last_seq: 4,
                    last_received: TimestampUs::from_micros(21),
                    store_id: Arc::default(),
                },
            ]
        );
    }

    #[test]
    fn identical_changes_in_one_instant_both_survive() {
        // occurrence 0 and 1 are two real changes: neither may be merged away.
        let m = merge(vec![batch(
            0,
            vec![(1, delta(10, 0, 1, 1)), (2, delta(10, 1, 1, 1))],
        )]);
        assert_eq!(m.records.len(), 2);
        assert_eq!(m.duplicates, 0);
    }

    #[test]
    fn trades_merge_by_id_only() {
        // A REST-repaired copy may carry a different time: still one trade.
        let m = merge(vec![
            batch(0, vec![(1, trade("t1", 1_000))]),
            batch(1, vec![(1, trade("t1", 1_500)), (2, trade("t2", 1_000))]),
        ]);
        assert_eq!(m.records.len(), 2);
        assert_eq!(m.duplicates, 1);
    }

    #[test]
    fn committed_identities_are_dropped_and_forgotten_oldest_first() {
        let mut recent = RecentIdentities::new(2);
        let first = merge(vec![batch(0, vec![(1, trade("a", 1)), (2, trade("b", 1))])]);
        recent.remember(first.keys.iter().copied());
        // A lagging gatherer's copies of a and b, plus a new c.
        let late = merge_with(
            vec![batch(
                1,
                vec![(1, trade("a", 1)), (2, trade("b", 1)), (3, trade("c", 1))],
            )],
            Some(&recent),
        );
        assert_eq!(late.records.len(), 1);
        assert_eq!(late.duplicates, 2);
        assert_eq!(
            late.cursors[0].last_seq, 3,
            "the cursor still moves over dropped copies"
        );
        recent.remember(late.keys.iter().copied());
        assert_eq!(recent.len(), 2);
        let again = merge_with(vec![batch(2, vec![(1, trade("a", 1))])], Some(&recent));
        assert_eq!(
            again.records.len(),
            1,
            "a was forgotten: the database absorbs it"
        );
    }

    fn toggle(event_type: &str, ts: i64) -> Record {
        Record::Lifecycle(kd_core::records::Lifecycle {
            subject: "M".into(),
            kind: "market_lifecycle_v2".into(),
            event_type: event_type.into(),
            exchange_ts: TimestampUs::from_micros(ts),
            payload: format!("{{\"event_type\":\"{event_type}\"}}"),
            received_at: TimestampUs::from_micros(ts),
            pos: WirePos::default(),
        })
    }

    #[test]
    fn lifecycle_copies_keep_their_origin_and_only_exact_repeats_are_dropped() {
        // Gatherer 0 twice (a replay), gatherer 1 a few ms later: the store decides on 1's copy.
        let m = merge(vec![
            batch(0, vec![(1, toggle("deactivated", 1_000_000))]),
            batch(0, vec![(1, toggle("deactivated", 1_000_000))]),
            batch(1, vec![(4, toggle("deactivated", 1_004_000))]),
        ]);
        assert_eq!(m.records.len(), 2);
        assert_eq!(m.duplicates, 1);
        assert_eq!(m.origins, vec![0, 1]);
    }

    #[test]
    fn a_replaced_store_takes_the_cursor_and_unreadable_rows_move_it() {
        let old = Batch {
            store_id: "old".into(),
            ..batch(0, vec![(969, trade("a", 1))])
        };
        let new = Batch {
            store_id: "new".into(),
            quarantined: vec![QuarantinedRow {
                seq: 12,
                reason: "not JSON".into(),
                body: "x".into(),
            }],
            ..batch(0, vec![(11, trade("b", 2))])
        };
        let m = merge(vec![old, new]);
        assert_eq!(m.cursors.len(), 1);
        assert_eq!(
            (m.cursors[0].last_seq, &*m.cursors[0].store_id),
            (12, "new")
        );
        assert_eq!(m.unreadable.len(), 1);
        assert_eq!(m.sources[1].seq, 11);
    }

    #[test]
    fn two_batches_of_one_gatherer_keep_the_highest_cursor() {
        let m = merge(vec![
            batch(0, vec![(1, trade("a", 1))]),
            batch(0, vec![(5, trade("b", 2))]),
            batch(1, vec![]),
        ]);
        assert_eq!(m.cursors.len(), 1);
        assert_eq!(m.cursors[0].last_seq, 5);
    }
}
