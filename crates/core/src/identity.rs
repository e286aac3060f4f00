//! Record identities: what makes two copies the same record (the table in [`crate::records`]).
//!
//! ONE definition serves both uses: [`Identity`] owns its strings (sets that outlive the
//! records), [`IdentityRef`] borrows them from the record (the deduplicator's merge hashes
//! every row and must not copy a string per row). They are the same generic enum, so they
//! cannot drift apart, and their derived `Hash` feeds a hasher the same bytes (`&str` hashes
//! as `String` does).
//!
//! Lifecycle records are the one kind whose copies do not share an exact identity (each
//! gatherer files a message under its own receipt estimate): [`lifecycle`] holds the rule that
//! makes them one change.

pub mod lifecycle;

use crate::records::{Record, Side, SnapshotSource};

/// An exact, hashable identity for in-memory deduplication. `S` is the string type: `String`
/// (owned, the default) or `&str` ([`IdentityRef`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Identity<S = String> {
    Trade(S),
    Delta {
        ticker: S,
        exchange_ts: i64,
        side: Side,
        price: i64,
        delta: i64,
        occurrence: u32,
    },
    Snapshot {
        ticker: S,
        source: SnapshotSource,
        bucket: i64,
        book_hash: i64,
    },
    Ticker {
        ticker: S,
        exchange_ts: i64,
        values_hash: i64,
    },
    Lifecycle {
        subject: S,
        event_type: S,
        exchange_ts: i64,
        payload_hash: i64,
    },
    Gap {
        gatherer: S,
        gap_id: S,
    },
}

/// An [`Identity`] borrowing its strings from the record.
pub type IdentityRef<'a> = Identity<&'a str>;

impl IdentityRef<'_> {
    /// The owned identity (copies the strings).
    pub fn to_owned_identity(&self) -> Identity {
        let s = |v: &str| v.to_string();
        match *self {
            Identity::Trade(id) => Identity::Trade(s(id)),
            Identity::Delta {
                ticker,
                exchange_ts,
                side,
                price,
                delta,
                occurrence,
            } => Identity::Delta {
                ticker: s(ticker),
                exchange_ts,
                side,
                price,
                delta,
                occurrence,
            },
            Identity::Snapshot {
                ticker,
                source,
                bucket,
                book_hash,
            } => Identity::Snapshot {
                ticker: s(ticker),
                source,
                bucket,
                book_hash,
            },
            Identity::Ticker {
                ticker,
                exchange_ts,
                values_hash,
            } => Identity::Ticker {
                ticker: s(ticker),
                exchange_ts,
                values_hash,
            },
            Identity::Lifecycle {
                subject,
                event_type,
                exchange_ts,
                payload_hash,
            } => Identity::Lifecycle {
                subject: s(subject),
                event_type: s(event_type),
                exchange_ts,
                payload_hash,
            },
            Identity::Gap { gatherer, gap_id } => Identity::Gap {
                gatherer: s(gatherer),
                gap_id: s(gap_id),
            },
        }
    }
}

impl Record {
    /// The record's identity, borrowing its strings (no allocation).
    pub fn identity_ref(&self) -> IdentityRef<'_> {
        match self {
            Record::Trade(t) => Identity::Trade(&t.trade_id),
            Record::Delta(d) => Identity::Delta {
                ticker: &d.ticker,
                exchange_ts: d.exchange_ts.micros(),
                side: d.side,
                price: d.price.units(),
                delta: d.delta.hundredths(),
                occurrence: d.occurrence,
            },
            Record::Snapshot(s) => Identity::Snapshot {
                ticker: &s.ticker,
                source: s.source,
                bucket: s.bucket(),
                book_hash: s.book_hash(),
            },
            Record::Ticker(t) => Identity::Ticker {
                ticker: &t.ticker,
                exchange_ts: t.exchange_ts.micros(),
                values_hash: t.values_hash(),
            },
            Record::Lifecycle(l) => Identity::Lifecycle {
                subject: &l.subject,
                event_type: &l.event_type,
                exchange_ts: l.exchange_ts.micros(),
                payload_hash: l.payload_hash(),
            },
            Record::Gap(g) => Identity::Gap {
                gatherer: &g.gatherer,
                gap_id: &g.gap_id,
            },
        }
    }

    /// The record's identity, owned.
    pub fn identity(&self) -> Identity {
        self.identity_ref().to_owned_identity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{Trade, TradeSource, WirePos};
    use crate::units::{Count, Price, TimestampUs};
    use std::hash::{DefaultHasher, Hash, Hasher};

    fn hash_of(v: &impl Hash) -> u64 {
        let mut h = DefaultHasher::new();
        v.hash(&mut h);
        h.finish()
    }

    #[test]
    fn borrowed_and_owned_identities_hash_alike() {
        let record = Record::Trade(Trade {
            trade_id: "t-1".into(),
            ticker: "M".into(),
            exchange_ts: TimestampUs::from_micros(1),
            yes_price: Price::new(1).unwrap_or(Price::ZERO),
            no_price: Price::new(99_999).unwrap_or(Price::ZERO),
            count: Count::new(1),
            taker_side: None,
            is_block_trade: false,
            source: TradeSource::Ws,
            received_at: TimestampUs::from_micros(1),
            pos: WirePos::default(),
        });
        let borrowed = record.identity_ref();
        let owned = record.identity();
        assert_eq!(borrowed.to_owned_identity(), owned);
        assert_eq!(hash_of(&borrowed), hash_of(&owned));
    }
}
