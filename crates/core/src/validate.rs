//! What a record must satisfy before it is stored: one predicate, two strictnesses.
//!
//! - At the edge (the Kalshi parsers, used by the gatherer) a record's exchange time must be
//!   *plausible*: from [`PLAUSIBLE_FROM`] (2015-01-01, before Kalshi existed) to one day after
//!   the receipt ([`PLAUSIBLE_AHEAD_US`]). Fixed bounds, not a setting: the upper one moves with
//!   the receive time, and no real exchange time falls outside them.
//! - At the deduplicator a row must be *storable* in both production backends: exchange time
//!   within years 1970..=9999 ([`STORABLE_FROM`]..[`STORABLE_UNTIL`], the range PostgreSQL can
//!   partition by day). A row outside goes to `quarantine` instead of blocking its table.
//!
//! Both also refuse control characters (NUL included, which PostgreSQL `text` cannot hold) in
//! the strings that identify a record: tickers, trade ids, gap ids, lifecycle kinds.

use crate::records::Record;
use crate::units::TimestampUs;

/// 2015-01-01 00:00:00 UTC: no Kalshi message is older.
pub const PLAUSIBLE_FROM: TimestampUs = TimestampUs::from_micros(1_420_070_400_000_000);
/// How far past its receipt an exchange time may lie (clock skew is seconds, not days).
pub const PLAUSIBLE_AHEAD_US: i64 = 86_400_000_000;
/// 1970-01-01: partitions and the archive's layout start at the epoch.
pub const STORABLE_FROM: TimestampUs = TimestampUs::from_micros(0);
/// 10000-01-01 00:00:00 UTC (exclusive): the last day a partition can be named for.
pub const STORABLE_UNTIL: TimestampUs = TimestampUs::from_micros(253_402_300_800_000_000);

/// Why a record may not be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("field `{field}`: time {micros} µs outside {from}..{until}")]
    Time {
        field: &'static str,
        micros: i64,
        from: i64,
        until: i64,
    },
    #[error("field `{field}`: control character U+{code:04X} at byte {at}")]
    Control {
        field: &'static str,
        code: u32,
        at: usize,
    },
}

impl Invalid {
    /// A short, fixed label for metrics: `time` or `control_character`.
    pub fn kind(&self) -> &'static str {
        match self {
            Invalid::Time { .. } => "time",
            Invalid::Control { .. } => "control_character",
        }
    }
}

/// The edge check: identifying strings free of control characters, exchange times in
/// `[PLAUSIBLE_FROM, received + PLAUSIBLE_AHEAD_US]`.
pub fn plausible(record: &Record, received: TimestampUs) -> Result<(), Invalid> {
    let until = received.micros().saturating_add(PLAUSIBLE_AHEAD_US);
    check(record, PLAUSIBLE_FROM.micros(), until.saturating_add(1))
}

/// The production check: what both backends can store.
pub fn storable(record: &Record) -> Result<(), Invalid> {
    check(record, STORABLE_FROM.micros(), STORABLE_UNTIL.micros())
}

/// `Ok` when `text` has no control character.
pub fn clean_text(field: &'static str, text: &str) -> Result<(), Invalid> {
    match text.char_indices().find(|(_, c)| c.is_control()) {
        None => Ok(()),
        Some((at, c)) => Err(Invalid::Control {
            field,
            code: u32::from(c),
            at,
        }),
    }
}

/// `Ok` when `from ≤ ts < until`.
fn time(field: &'static str, ts: TimestampUs, from: i64, until: i64) -> Result<(), Invalid> {
    if (from..until).contains(&ts.micros()) {
        Ok(())
    } else {
        Err(Invalid::Time {
            field,
            micros: ts.micros(),
            from,
            until,
        })
    }
}

fn check(record: &Record, from: i64, until: i64) -> Result<(), Invalid> {
    match record {
        Record::Trade(t) => {
            clean_text("trade_id", &t.trade_id)?;
            clean_text("ticker", &t.ticker)?;
            time("exchange_ts", t.exchange_ts, from, until)
        }
        Record::Delta(d) => {
            clean_text("ticker", &d.ticker)?;
            time("exchange_ts", d.exchange_ts, from, until)
        }
        Record::Snapshot(s) => {
            clean_text("ticker", &s.ticker)?;
            time("exchange_ts", s.exchange_ts, from, until)
        }
        Record::Ticker(t) => {
            clean_text("ticker", &t.ticker)?;
            time("exchange_ts", t.exchange_ts, from, until)
        }
        Record::Lifecycle(l) => {
            clean_text("subject", &l.subject)?;
            clean_text("kind", &l.kind)?;
            clean_text("event_type", &l.event_type)?;
            time("exchange_ts", l.exchange_ts, from, until)
        }
        Record::Gap(g) => {
            clean_text("gatherer", &g.gatherer)?;
            clean_text("gap_id", &g.gap_id)?;
            if let Some(t) = &g.ticker {
                clean_text("ticker", t)?;
            }
            // A gap is the gatherer's own record, filed by its clock: only storability counts.
            time(
                "start",
                g.start,
                STORABLE_FROM.micros(),
                STORABLE_UNTIL.micros(),
            )?;
            time(
                "end",
                g.end,
                STORABLE_FROM.micros(),
                STORABLE_UNTIL.micros(),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{Trade, TradeSource, WirePos};
    use crate::{Count, Price};
    use proptest::prelude::*;

    fn trade(id: &str, ticker: &str, ts: i64) -> Record {
        Record::Trade(Trade {
            trade_id: id.into(),
            ticker: ticker.into(),
            exchange_ts: TimestampUs::from_micros(ts),
            yes_price: Price::ZERO,
            no_price: Price::ZERO,
            count: Count::new(1),
            taker_side: None,
            is_block_trade: false,
            source: TradeSource::Ws,
            received_at: TimestampUs::from_micros(ts),
            pos: WirePos::default(),
        })
    }

    const NOW: i64 = 1_795_737_600_000_000;

    #[test]
    fn the_issue_cases_are_refused() {
        let far = trade("t", "M", 9_223_372_036_854_775_000);
        assert_eq!(
            plausible(&far, TimestampUs::from_micros(NOW)).map_err(|e| e.kind()),
            Err("time")
        );
        assert_eq!(storable(&far).map_err(|e| e.kind()), Err("time"));
        let nul = trade("t", "M\0X", NOW);
        assert_eq!(
            storable(&nul).map_err(|e| e.kind()),
            Err("control_character")
        );
        assert!(plausible(&trade("t", "KX-M", NOW), TimestampUs::from_micros(NOW)).is_ok());
    }

    proptest! {
        #[test]
        fn plausible_is_exactly_the_window(ts in any::<i64>(), now in PLAUSIBLE_FROM.micros()..STORABLE_UNTIL.micros()) {
            let ok = plausible(&trade("t", "M", ts), TimestampUs::from_micros(now)).is_ok();
            prop_assert_eq!(ok, ts >= PLAUSIBLE_FROM.micros() && ts <= now + PLAUSIBLE_AHEAD_US);
        }

        #[test]
        fn any_control_character_is_refused(prefix in "[A-Z-]{0,8}", c in any::<char>(), suffix in "[A-Z0-9]{0,8}") {
            let ticker = format!("{prefix}{c}{suffix}");
            let r = storable(&trade("t", &ticker, NOW));
            prop_assert_eq!(r.is_ok(), !c.is_control());
            let id = storable(&trade(&ticker, "M", NOW));
            prop_assert_eq!(id.is_ok(), !c.is_control());
        }

        #[test]
        fn storable_accepts_plausible(ts in PLAUSIBLE_FROM.micros()..NOW) {
            let r = trade("t", "M", ts);
            prop_assert!(plausible(&r, TimestampUs::from_micros(NOW)).is_ok());
            prop_assert!(storable(&r).is_ok());
        }
    }
}
