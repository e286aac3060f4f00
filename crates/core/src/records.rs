//! The time-series records of DESIGN §2 and their identities.
//!
//! A record is what a gatherer stores, the pull API serves and the deduplicator merges. Each
//! carries its exchange time, the gatherer's `received_at`, and `sid`/`seq` for diagnosis only —
//! never part of an identity, because they differ between gatherers.
//!
//! # Identities (what makes two copies the same record; built in [`crate::identity`])
//! | record | identity |
//! |---|---|
//! | trade | `trade_id` |
//! | delta | `(ticker, exchange_ts, side, price, delta, occurrence)` |
//! | snapshot | `(ticker, source, exchange_ts bucket of 60 s, book hash)` |
//! | ticker | `(ticker, exchange_ts, values hash)` |
//! | lifecycle | `(subject, event_type, exchange_ts, payload hash)` exactly for one gatherer's copy; across gatherers, the tolerance rule of [`crate::identity::lifecycle`] |
//! | gap | `(gatherer, gap_id)` — gaps are per-gatherer observations, all kept |
//!
//! Snapshots: three gatherers fetch books at different instants, so an exact time never matches.
//! A snapshot is an *observation*, not an event: two copies of the same book within the same
//! minute are one row; different books are both kept (both were true at their instants). A
//! boundary-straddling pair yields two identical rows — harmless for rebuilding books, never a loss.
//!
//! Lifecycle messages carry no message timestamp. `exchange_ts` is the gatherer's estimate of
//! the exchange's clock when the message arrived (clock-corrected, to the µs), so two changes a
//! second apart stay two records. Copies of one message from several gatherers then differ by
//! milliseconds: they are one change by the rule of [`crate::identity::lifecycle`] (same subject,
//! event type and payload hash, times within [`crate::identity::lifecycle::LIFECYCLE_MATCH_US`],
//! at most one copy per gatherer), which the deduplicator applies. The exact identity above
//! still names one gatherer's copy (a replay of it is the same record).

pub use crate::identity::{Identity, IdentityRef};
use crate::units::{Count, Price, TimestampUs};
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::Xxh3;

/// Width of the snapshot identity's time bucket.
pub const SNAPSHOT_BUCKET_US: i64 = 60_000_000;
/// Width of the receive-time bucket lifecycle messages without a payload time were filed under
/// before schema 2 (rows stored then keep it). No longer used for new records.
pub const LIFECYCLE_BUCKET_US: i64 = 60_000_000;

/// Which side of the book: both sides are bids (`yes` bids for YES, `no` bids for NO).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Yes,
    No,
}

impl Side {
    pub const fn as_str(self) -> &'static str {
        match self {
            Side::Yes => "yes",
            Side::No => "no",
        }
    }

    pub fn parse(text: &str) -> Option<Side> {
        match text {
            "yes" => Some(Side::Yes),
            "no" => Some(Side::No),
            _ => None,
        }
    }
}

/// Where a snapshot came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SnapshotSource {
    Ws,
    Rest,
}

impl SnapshotSource {
    pub const fn as_str(self) -> &'static str {
        match self {
            SnapshotSource::Ws => "ws",
            SnapshotSource::Rest => "rest",
        }
    }
}

/// How a trade reached the gatherer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TradeSource {
    #[default]
    Ws,
    /// Recovered over REST after a gap or downtime.
    Rest,
}

/// Diagnostic position of a message in its subscription (per gatherer, never an identity).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct WirePos {
    pub sid: Option<u64>,
    pub seq: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trade {
    pub trade_id: String,
    pub ticker: String,
    pub exchange_ts: TimestampUs,
    pub yes_price: Price,
    pub no_price: Price,
    pub count: Count,
    /// The outcome side the taker bought (`taker_outcome_side`, else legacy `taker_side`).
    pub taker_side: Option<Side>,
    pub is_block_trade: bool,
    pub source: TradeSource,
    pub received_at: TimestampUs,
    #[serde(default)]
    pub pos: WirePos,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderbookDelta {
    pub ticker: String,
    pub exchange_ts: TimestampUs,
    pub side: Side,
    pub price: Price,
    pub delta: Count,
    /// How many identical `(ticker, exchange_ts, side, price, delta)` tuples this gatherer saw
    /// before this one: keeps two real, identical changes in one instant apart.
    pub occurrence: u32,
    pub received_at: TimestampUs,
    #[serde(default)]
    pub pos: WirePos,
}

/// One price level: price and resting size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Level {
    pub price: Price,
    pub size: Count,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderbookSnapshot {
    pub ticker: String,
    pub source: SnapshotSource,
    /// Exchange time when the message has one, else the gatherer's receive time.
    pub exchange_ts: TimestampUs,
    /// YES bids, ascending by price.
    pub yes: Vec<Level>,
    /// NO bids, ascending by price.
    pub no: Vec<Level>,
    pub received_at: TimestampUs,
    #[serde(default)]
    pub pos: WirePos,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticker {
    pub ticker: String,
    pub exchange_ts: TimestampUs,
    pub price: Option<Price>,
    pub yes_bid: Option<Price>,
    pub yes_ask: Option<Price>,
    pub volume: Option<Count>,
    pub open_interest: Option<Count>,
    /// Whole dollars, as Kalshi sends them.
    pub dollar_volume: Option<i64>,
    pub dollar_open_interest: Option<i64>,
    pub yes_bid_size: Option<Count>,
    pub yes_ask_size: Option<Count>,
    pub last_trade_size: Option<Count>,
    pub received_at: TimestampUs,
    #[serde(default)]
    pub pos: WirePos,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lifecycle {
    /// Market ticker for `market_lifecycle_v2`/`multivariate_market_lifecycle`, event ticker
    /// for `event_lifecycle`/`event_fee_update`.
    pub subject: String,
    /// The message type: `market_lifecycle_v2`, `multivariate_market_lifecycle` (a combo
    /// market), `event_lifecycle` or `event_fee_update`. Open text: a reader must not assume
    /// only these.
    pub kind: String,
    /// `created`, `activated`, … (`event_lifecycle` uses `created`, `event_fee_update` repeats
    /// its kind).
    pub event_type: String,
    /// The gatherer's estimate of the exchange's clock at receipt (see the module doc).
    pub exchange_ts: TimestampUs,
    /// The message's `msg` object, re-serialised canonically (sorted keys).
    pub payload: String,
    pub received_at: TimestampUs,
    #[serde(default)]
    pub pos: WirePos,
}

/// A window in which a gatherer may have missed messages, and what it did about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gap {
    pub gatherer: String,
    /// Unique within the gatherer (its local sequence or a random id).
    pub gap_id: String,
    /// The one market affected; `None` when several are (`tickers`) or the whole feed was.
    pub ticker: Option<String>,
    /// The markets affected when one record covers several (a subscription's markets after a
    /// lost connection or a resubscription: one record per subscription instead of one per
    /// market), sorted; empty when `ticker` names the market or the whole feed was affected.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tickers: Vec<String>,
    pub channel: String,
    pub start: TimestampUs,
    pub end: TimestampUs,
    /// `seq_gap`, `no_snapshot`, `channel_error`, `downtime`, `dropped`, …
    pub reason: String,
    /// `snapshot+rest_trades`, `none`, …
    pub repair: String,
}

impl Gap {
    /// Whether the gap names `ticker`: it is the gap's market, one of its markets, or the gap
    /// has neither (the whole feed).
    pub fn names(&self, ticker: &str) -> bool {
        if !self.tickers.is_empty() {
            return self
                .tickers
                .binary_search_by(|t| t.as_str().cmp(ticker))
                .is_ok();
        }
        self.ticker.as_deref().is_none_or(|t| t == ticker)
    }

    /// Whether the gap is about the whole feed (no market named at all).
    pub fn whole_feed(&self) -> bool {
        self.ticker.is_none() && self.tickers.is_empty()
    }

    /// The markets as one text (a JSON array), `None` when there are none: how the stores
    /// keep the list in one column.
    pub fn tickers_text(&self) -> Option<String> {
        (!self.tickers.is_empty()).then(|| serde_json::to_string(&self.tickers).unwrap_or_default())
    }

    /// The markets from [`Gap::tickers_text`]'s text (sorted again: the order `names` needs).
    pub fn tickers_from_text(text: Option<&str>) -> Result<Vec<String>, serde_json::Error> {
        let mut list: Vec<String> = match text {
            None | Some("") => Vec::new(),
            Some(t) => serde_json::from_str(t)?,
        };
        list.sort_unstable();
        Ok(list)
    }
}

/// Any record, tagged by table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "table", content = "record", rename_all = "snake_case")]
pub enum Record {
    Trade(Trade),
    Delta(OrderbookDelta),
    Snapshot(OrderbookSnapshot),
    Ticker(Ticker),
    Lifecycle(Lifecycle),
    Gap(Gap),
}

/// xxh3 is stable across versions and platforms (its output is specified), so hashes stored in
/// production stay comparable forever. Stored as `i64` (bit-cast) for PostgreSQL's `bigint`.
fn finish(h: &Xxh3) -> i64 {
    h.digest() as i64
}

impl OrderbookSnapshot {
    /// Hash of both sides' levels, in order.
    pub fn book_hash(&self) -> i64 {
        let mut h = Xxh3::new();
        for (tag, side) in [(b'y', &self.yes), (b'n', &self.no)] {
            h.update(&[tag]);
            for level in side {
                h.update(&level.price.units().to_le_bytes());
                h.update(&level.size.hundredths().to_le_bytes());
            }
        }
        finish(&h)
    }

    pub fn bucket(&self) -> i64 {
        self.exchange_ts.micros().div_euclid(SNAPSHOT_BUCKET_US)
    }
}

impl Ticker {
    /// Hash of every value field (not times, not diagnostics).
    pub fn values_hash(&self) -> i64 {
        let mut h = Xxh3::new();
        let mut opt = |v: Option<i64>| match v {
            Some(x) => {
                h.update(&[1]);
                h.update(&x.to_le_bytes());
            }
            None => h.update(&[0]),
        };
        opt(self.price.map(Price::units));
        opt(self.yes_bid.map(Price::units));
        opt(self.yes_ask.map(Price::units));
        opt(self.volume.map(Count::hundredths));
        opt(self.open_interest.map(Count::hundredths));
        opt(self.dollar_volume);
        opt(self.dollar_open_interest);
        opt(self.yes_bid_size.map(Count::hundredths));
        opt(self.yes_ask_size.map(Count::hundredths));
        opt(self.last_trade_size.map(Count::hundredths));
        finish(&h)
    }
}

impl Lifecycle {
    pub fn payload_hash(&self) -> i64 {
        let mut h = Xxh3::new();
        h.update(self.kind.as_bytes());
        h.update(&[0]);
        h.update(self.payload.as_bytes());
        finish(&h)
    }
}

impl Record {
    pub fn table(&self) -> crate::Table {
        use crate::Table;
        match self {
            Record::Trade(_) => Table::Trades,
            Record::Delta(_) => Table::Deltas,
            Record::Snapshot(_) => Table::Snapshots,
            Record::Ticker(_) => Table::Tickers,
            Record::Lifecycle(_) => Table::Lifecycle,
            Record::Gap(_) => Table::Gaps,
        }
    }

    /// The exchange time the record is filed under (partitions, windows, lag).
    pub fn exchange_ts(&self) -> TimestampUs {
        match self {
            Record::Trade(t) => t.exchange_ts,
            Record::Delta(d) => d.exchange_ts,
            Record::Snapshot(s) => s.exchange_ts,
            Record::Ticker(t) => t.exchange_ts,
            Record::Lifecycle(l) => l.exchange_ts,
            Record::Gap(g) => g.start,
        }
    }

    pub fn received_at(&self) -> TimestampUs {
        match self {
            Record::Trade(t) => t.received_at,
            Record::Delta(d) => d.received_at,
            Record::Snapshot(s) => s.received_at,
            Record::Ticker(t) => t.received_at,
            Record::Lifecycle(l) => l.received_at,
            Record::Gap(g) => g.end,
        }
    }
}

/// Assigns delta `occurrence` numbers: per market, counts identical tuples within the same
/// exchange timestamp. Only the latest timestamp per market is remembered, which is exact
/// because a market's deltas arrive in timestamp order within a subscription.
#[derive(Debug, Default)]
pub struct OccurrenceCounter {
    per_market: std::collections::HashMap<String, InstantTuples>,
}

/// The latest exchange timestamp of one market and the `(side, price, delta, last occurrence)`
/// tuples seen at it.
type InstantTuples = (i64, Vec<(Side, i64, i64, u32)>);

impl OccurrenceCounter {
    pub fn next(
        &mut self,
        ticker: &str,
        ts: TimestampUs,
        side: Side,
        price: Price,
        delta: Count,
    ) -> u32 {
        let entry = match self.per_market.get_mut(ticker) {
            Some(e) => e,
            None => self
                .per_market
                .entry(ticker.to_string())
                .or_insert_with(|| (i64::MIN, Vec::new())),
        };
        if entry.0 != ts.micros() {
            entry.0 = ts.micros();
            entry.1.clear();
        }
        let key = (side, price.units(), delta.hundredths());
        for seen in &mut entry.1 {
            if (seen.0, seen.1, seen.2) == key {
                seen.3 += 1;
                return seen.3;
            }
        }
        entry.1.push((key.0, key.1, key.2, 0));
        0
    }

    /// Forgets a market (unsubscribed or settled).
    pub fn forget(&mut self, ticker: &str) {
        self.per_market.remove(ticker);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn price(units: i64) -> Price {
        Price::new(units).unwrap_or(Price::ZERO)
    }

    #[test]
    fn identical_deltas_in_one_instant_stay_apart() {
        let mut c = OccurrenceCounter::default();
        let ts = TimestampUs::from_micros(5);
        assert_eq!(c.next("M", ts, Side::Yes, price(100), Count::new(300)), 0);
        assert_eq!(c.next("M", ts, Side::Yes, price(100), Count::new(300)), 1);
        assert_eq!(c.next("M", ts, Side::No, price(100), Count::new(300)), 0);
        assert_eq!(c.next("N", ts, Side::Yes, price(100), Count::new(300)), 0);
        let later = TimestampUs::from_micros(6);
        assert_eq!(
            c.next("M", later, Side::Yes, price(100), Count::new(300)),
            0
        );
    }

    #[test]
    fn hashes_are_stable_and_value_sensitive() {
        let base = Ticker {
            ticker: "T".into(),
            exchange_ts: TimestampUs::from_micros(1),
            price: Some(price(48_000)),
            yes_bid: None,
            yes_ask: None,
            volume: Some(Count::new(1)),
            open_interest: None,
            dollar_volume: None,
            dollar_open_interest: None,
            yes_bid_size: None,
            yes_ask_size: None,
            last_trade_size: None,
            received_at: TimestampUs::from_micros(2),
            pos: WirePos::default(),
        };
        let mut other = base.clone();
        other.received_at = TimestampUs::from_micros(99);
        other.pos.sid = Some(7);
        assert_eq!(base.values_hash(), other.values_hash());
        other.volume = Some(Count::new(2));
        assert_ne!(base.values_hash(), other.values_hash());
        // `None` and `Some(0)` must differ.
        let mut zero = base.clone();
        zero.yes_bid = Some(Price::ZERO);
        assert_ne!(base.values_hash(), zero.values_hash());
    }
}
