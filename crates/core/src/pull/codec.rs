//! The binary pull page (`application/vnd.kalshi-data.pull-v1`): what a gatherer answers
//! instead of JSON when the request's `Accept` names it, for the three tables that carry
//! nearly every row (trades, deltas, tickers). The deduplicator decoded every pulled row from
//! JSON — three copies of every record, its largest cost after PostgreSQL — while reading these
//! fixed-width fields is a few loads per row. The gatherer checks each stored body by decoding
//! it anyway, so encoding the decoded record costs it about what copying the JSON did.
//!
//! Layout, little-endian throughout (`str` = `u32` byte length + UTF-8 bytes, `opt` = one byte
//! 0/1 then the value when 1):
//!
//! ```text
//! "KDP1" | gatherer str | table u8 | store_id str | head u64
//! | record count u32 | per record: seq u64, the record (below)
//! | quarantined count u32 | per row: seq u64, reason str, body str
//! delta:  ticker str, exchange_ts i64, side u8, price i64, delta i64, occurrence u32,
//!         received_at i64, pos
//! trade:  trade_id str, ticker str, exchange_ts i64, yes_price i64, no_price i64, count i64,
//!         taker_side u8 (0 none, 1 yes, 2 no), is_block_trade u8, source u8, received_at i64,
//!         pos
//! ticker: ticker str, exchange_ts i64, then opt i64 × 10 (price, yes_bid, yes_ask, volume,
//!         open_interest, dollar_volume, dollar_open_interest, yes_bid_size, yes_ask_size,
//!         last_trade_size), received_at i64, pos
//! pos:    opt u64 sid, opt u64 seq
//! side u8: 0 yes, 1 no; source u8: 0 ws, 1 rest; table u8: index in `Table::ALL`
//! ```
//!
//! The same record layout, after the one byte [`BODY_TAG`], is how a gatherer stores these
//! records' bodies ([`encode_body`], [`decode_body`]): the store's writer encoding JSON and its
//! pull API decoding it again for every row cost the gatherer more than its SQLite inserts.
//!
//! Decoding never panics and never trusts a length: every bad input is a [`CodecError`]
//! (property-tested below). Other tables (snapshots, lifecycle, gaps: few rows, variable size)
//! are always answered in JSON, and so is a page holding a row the gatherer cannot read (its
//! quarantine entry is built by the JSON path); the client decodes by `Content-Type`.

use crate::pull::{PullResponse, PulledRecord, QuarantinedRow};
use crate::records::{OrderbookDelta, Ticker, Trade, TradeSource, WirePos};
use crate::{Count, Price, Record, Side, Table, TimestampUs};

/// The media type of a binary page.
pub const CONTENT_TYPE: &str = "application/vnd.kalshi-data.pull-v1";

const MAGIC: &[u8; 4] = b"KDP1";

/// Why a binary page could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("not a binary pull page (magic bytes missing)")]
    Magic,
    #[error("page ends inside {what} (byte {at})")]
    Truncated { what: &'static str, at: usize },
    #[error("table number {0} unknown")]
    Table(u8),
    #[error("table {0} has no binary encoding")]
    NotEncodable(Table),
    #[error("{what} has the invalid value {value}")]
    Value { what: &'static str, value: i64 },
    #[error("{0} is not UTF-8")]
    Utf8(&'static str),
    #[error("{0} bytes after the end of the page")]
    Trailing(usize),
}

/// Whether `table`'s pages can be binary.
pub const fn encodes(table: Table) -> bool {
    matches!(table, Table::Trades | Table::Deltas | Table::Tickers)
}

fn table_byte(table: Table) -> u8 {
    Table::ALL.iter().position(|t| *t == table).unwrap_or(0) as u8
}

/// Appends fields to a page.
struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn str(&mut self, s: &str) {
        // A stored string beyond 4 GiB cannot exist in an 8 MiB page; saturating keeps the
        // writer total, and the reader then refuses the page as truncated.
        self.u32(u32::try_from(s.len()).unwrap_or(u32::MAX));
        self.0.extend_from_slice(s.as_bytes());
    }
    fn opt_i64(&mut self, v: Option<i64>) {
        match v {
            Some(v) => {
                self.u8(1);
                self.i64(v);
            }
            None => self.u8(0),
        }
    }
    fn opt_u64(&mut self, v: Option<u64>) {
        match v {
            Some(v) => {
                self.u8(1);
                self.u64(v);
            }
            None => self.u8(0),
        }
    }
    fn pos(&mut self, p: WirePos) {
        self.opt_u64(p.sid);
        self.opt_u64(p.seq);
    }
}

const fn side_byte(s: Side) -> u8 {
    match s {
        Side::Yes => 0,
        Side::No => 1,
    }
}

/// A page header and its records, stopping before the row that would take the page beyond
/// `max_bytes` (always at least one row: the client pulls again from the last row it got).
/// Returns the page and how many records it holds; `Err` when a record is not of `table` or
/// `table` has no binary encoding (the caller answers JSON instead).
pub fn encode(
    gatherer: &str,
    table: Table,
    store_id: &str,
    head: u64,
    records: &[PulledRecord],
    max_bytes: usize,
) -> Result<(Vec<u8>, usize), CodecError> {
    if !encodes(table) {
        return Err(CodecError::NotEncodable(table));
    }
    let mut w = Writer(Vec::with_capacity(64 + records.len() * 96));
    w.0.extend_from_slice(MAGIC);
    w.str(gatherer);
    w.u8(table_byte(table));
    w.str(store_id);
    w.u64(head);
    let count_at = w.0.len();
    w.u32(0);
    let mut n = 0_u32;
    for r in records {
        if n > 0 && w.0.len() > max_bytes {
            break;
        }
        if r.record.table() != table {
            return Err(CodecError::NotEncodable(r.record.table()));
        }
        w.u64(r.seq);
        record(&mut w, &r.record);
        n += 1;
    }
    w.0[count_at..count_at + 4].copy_from_slice(&n.to_le_bytes());
    // No quarantined rows: a page with one goes through the JSON path.
    w.u32(0);
    Ok((w.0, n as usize))
}

fn record(w: &mut Writer, r: &Record) {
    let ts = |t: TimestampUs| t.micros();
    match r {
        Record::Delta(d) => {
            w.str(&d.ticker);
            w.i64(ts(d.exchange_ts));
            w.u8(side_byte(d.side));
            w.i64(d.price.units());
            w.i64(d.delta.hundredths());
            w.u32(d.occurrence);
            w.i64(ts(d.received_at));
            w.pos(d.pos);
        }
        Record::Trade(t) => {
            w.str(&t.trade_id);
            w.str(&t.ticker);
            w.i64(ts(t.exchange_ts));
            w.i64(t.yes_price.units());
            w.i64(t.no_price.units());
            w.i64(t.count.hundredths());
            w.u8(t.taker_side.map_or(0, |s| side_byte(s) + 1));
            w.u8(u8::from(t.is_block_trade));
            w.u8(match t.source {
                TradeSource::Ws => 0,
                TradeSource::Rest => 1,
            });
            w.i64(ts(t.received_at));
            w.pos(t.pos);
        }
        Record::Ticker(t) => {
            let p = |v: Option<Price>| v.map(Price::units);
            let c = |v: Option<Count>| v.map(Count::hundredths);
            w.str(&t.ticker);
            w.i64(ts(t.exchange_ts));
            w.opt_i64(p(t.price));
            w.opt_i64(p(t.yes_bid));
            w.opt_i64(p(t.yes_ask));
            w.opt_i64(c(t.volume));
            w.opt_i64(c(t.open_interest));
            w.opt_i64(t.dollar_volume);
            w.opt_i64(t.dollar_open_interest);
            w.opt_i64(c(t.yes_bid_size));
            w.opt_i64(c(t.yes_ask_size));
            w.opt_i64(c(t.last_trade_size));
            w.i64(ts(t.received_at));
            w.pos(t.pos);
        }
        // `encode` refused the other tables before any row.
        Record::Snapshot(_) | Record::Lifecycle(_) | Record::Gap(_) => {}
    }
}

/// The first byte of a binary stored body. A JSON body starts with `{` (or whitespace), never
/// with this byte, so a store may hold both (stores written before binary bodies, and the
/// tables that have no binary layout).
pub const BODY_TAG: u8 = 0xB1;

/// Appends the stored body of `r` — [`BODY_TAG`] and its binary layout — to `buf`, when its
/// table has one (`false`, nothing appended, otherwise).
pub fn encode_body(r: &Record, buf: &mut Vec<u8>) -> bool {
    if !encodes(r.table()) {
        return false;
    }
    let mut w = Writer(std::mem::take(buf));
    w.u8(BODY_TAG);
    record(&mut w, r);
    *buf = w.0;
    true
}

/// Whether a stored body is binary (else JSON).
pub fn is_binary_body(body: &[u8]) -> bool {
    body.first() == Some(&BODY_TAG)
}

/// Reads a binary stored body (see [`encode_body`]) as a record of `table`.
pub fn decode_body(table: Table, body: &[u8]) -> Result<Record, CodecError> {
    if !is_binary_body(body) {
        return Err(CodecError::Magic);
    }
    let mut r = Reader { bytes: body, at: 1 };
    let record = match table {
        Table::Deltas => Record::Delta(delta(&mut r)?),
        Table::Trades => Record::Trade(trade(&mut r)?),
        Table::Tickers => Record::Ticker(ticker(&mut r)?),
        other => return Err(CodecError::NotEncodable(other)),
    };
    if r.at != body.len() {
        return Err(CodecError::Trailing(body.len() - r.at));
    }
    Ok(record)
}

/// Reads fields from a page, every read bounds-checked.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], CodecError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len())
            .ok_or(CodecError::Truncated { what, at: self.at })?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }
    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], CodecError> {
        let mut out = [0_u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }
    fn u8(&mut self, what: &'static str) -> Result<u8, CodecError> {
        Ok(self.array::<1>(what)?[0])
    }
    fn u32(&mut self, what: &'static str) -> Result<u32, CodecError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }
    fn i64(&mut self, what: &'static str) -> Result<i64, CodecError> {
        Ok(i64::from_le_bytes(self.array(what)?))
    }
    fn u64(&mut self, what: &'static str) -> Result<u64, CodecError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }
    fn str(&mut self, what: &'static str) -> Result<String, CodecError> {
        let len = self.u32(what)? as usize;
        let bytes = self.take(len, what)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| CodecError::Utf8(what))
    }
    fn flag(&mut self, what: &'static str) -> Result<bool, CodecError> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(CodecError::Value {
                what,
                value: i64::from(v),
            }),
        }
    }
    fn opt_i64(&mut self, what: &'static str) -> Result<Option<i64>, CodecError> {
        Ok(if self.flag(what)? {
            Some(self.i64(what)?)
        } else {
            None
        })
    }
    fn opt_u64(&mut self, what: &'static str) -> Result<Option<u64>, CodecError> {
        Ok(if self.flag(what)? {
            Some(self.u64(what)?)
        } else {
            None
        })
    }
    fn ts(&mut self, what: &'static str) -> Result<TimestampUs, CodecError> {
        self.i64(what).map(TimestampUs::from_micros)
    }
    fn price(&mut self, what: &'static str) -> Result<Price, CodecError> {
        let v = self.i64(what)?;
        Price::new(v).map_err(|_| CodecError::Value { what, value: v })
    }
    fn opt_price(&mut self, what: &'static str) -> Result<Option<Price>, CodecError> {
        match self.opt_i64(what)? {
            Some(v) => Price::new(v)
                .map(Some)
                .map_err(|_| CodecError::Value { what, value: v }),
            None => Ok(None),
        }
    }
    fn opt_count(&mut self, what: &'static str) -> Result<Option<Count>, CodecError> {
        Ok(self.opt_i64(what)?.map(Count::new))
    }
    fn side(&mut self, what: &'static str) -> Result<Side, CodecError> {
        match self.u8(what)? {
            0 => Ok(Side::Yes),
            1 => Ok(Side::No),
            v => Err(CodecError::Value {
                what,
                value: i64::from(v),
            }),
        }
    }
    fn pos(&mut self) -> Result<WirePos, CodecError> {
        Ok(WirePos {
            sid: self.opt_u64("pos.sid")?,
            seq: self.opt_u64("pos.seq")?,
        })
    }
    /// A count of items of at least `min_size` bytes each: never more than the bytes left
    /// could hold, so a forged count cannot make the reader allocate.
    fn count(&mut self, what: &'static str, min_size: usize) -> Result<usize, CodecError> {
        let n = self.u32(what)? as usize;
        let left = self.bytes.len() - self.at;
        if n.saturating_mul(min_size) > left {
            return Err(CodecError::Truncated { what, at: self.at });
        }
        Ok(n)
    }
}

/// Reads a binary page.
pub fn decode(bytes: &[u8]) -> Result<PullResponse, CodecError> {
    let mut r = Reader { bytes, at: 0 };
    if r.take(4, "magic").map_err(|_| CodecError::Magic)? != MAGIC {
        return Err(CodecError::Magic);
    }
    let gatherer = r.str("gatherer")?;
    let t = r.u8("table")?;
    let table = *Table::ALL.get(usize::from(t)).ok_or(CodecError::Table(t))?;
    if !encodes(table) {
        return Err(CodecError::NotEncodable(table));
    }
    let store_id = r.str("store_id")?;
    let head = r.u64("head")?;
    let n = r.count("records", min_row(table))?;
    let mut records = Vec::with_capacity(n);
    for _ in 0..n {
        let seq = r.u64("seq")?;
        let record = match table {
            Table::Deltas => Record::Delta(delta(&mut r)?),
            Table::Trades => Record::Trade(trade(&mut r)?),
            _ => Record::Ticker(ticker(&mut r)?),
        };
        records.push(PulledRecord { seq, record });
    }
    let q = r.count("quarantined", 8 + 4 + 4)?;
    let mut quarantined = Vec::with_capacity(q);
    for _ in 0..q {
        quarantined.push(QuarantinedRow {
            seq: r.u64("quarantined seq")?,
            reason: r.str("quarantined reason")?,
            body: r.str("quarantined body")?,
        });
    }
    if r.at != bytes.len() {
        return Err(CodecError::Trailing(bytes.len() - r.at));
    }
    Ok(PullResponse {
        gatherer,
        table,
        records,
        head,
        store_id,
        quarantined,
    })
}

/// The fewest bytes a row of `table` takes (its seq, empty strings, every option absent).
const fn min_row(table: Table) -> usize {
    let fields = match table {
        Table::Deltas => 4 + 8 + 1 + 8 + 8 + 4 + 8 + 2,
        Table::Trades => 4 + 4 + 8 * 4 + 3 + 8 + 2,
        _ => 4 + 8 + 10 + 8 + 2,
    };
    8 + fields
}

fn delta(r: &mut Reader<'_>) -> Result<OrderbookDelta, CodecError> {
    Ok(OrderbookDelta {
        ticker: r.str("ticker")?,
        exchange_ts: r.ts("exchange_ts")?,
        side: r.side("side")?,
        price: r.price("price")?,
        delta: Count::new(r.i64("delta")?),
        occurrence: r.u32("occurrence")?,
        received_at: r.ts("received_at")?,
        pos: r.pos()?,
    })
}

fn trade(r: &mut Reader<'_>) -> Result<Trade, CodecError> {
    Ok(Trade {
        trade_id: r.str("trade_id")?,
        ticker: r.str("ticker")?,
        exchange_ts: r.ts("exchange_ts")?,
        yes_price: r.price("yes_price")?,
        no_price: r.price("no_price")?,
        count: Count::new(r.i64("count")?),
        taker_side: match r.u8("taker_side")? {
            0 => None,
            1 => Some(Side::Yes),
            2 => Some(Side::No),
            v => {
                return Err(CodecError::Value {
                    what: "taker_side",
                    value: i64::from(v),
                });
            }
        },
        is_block_trade: r.flag("is_block_trade")?,
        source: match r.u8("source")? {
            0 => TradeSource::Ws,
            1 => TradeSource::Rest,
            v => {
                return Err(CodecError::Value {
                    what: "source",
                    value: i64::from(v),
                });
            }
        },
        received_at: r.ts("received_at")?,
        pos: r.pos()?,
    })
}

fn ticker(r: &mut Reader<'_>) -> Result<Ticker, CodecError> {
    Ok(Ticker {
        ticker: r.str("ticker")?,
        exchange_ts: r.ts("exchange_ts")?,
        price: r.opt_price("price")?,
        yes_bid: r.opt_price("yes_bid")?,
        yes_ask: r.opt_price("yes_ask")?,
        volume: r.opt_count("volume")?,
        open_interest: r.opt_count("open_interest")?,
        dollar_volume: r.opt_i64("dollar_volume")?,
        dollar_open_interest: r.opt_i64("dollar_open_interest")?,
        yes_bid_size: r.opt_count("yes_bid_size")?,
        yes_ask_size: r.opt_count("yes_ask_size")?,
        last_trade_size: r.opt_count("last_trade_size")?,
        received_at: r.ts("received_at")?,
        pos: r.pos()?,
    })
}

#[cfg(test)]
mod tests;
