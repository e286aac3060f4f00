//! Field conversions shared by the WebSocket and REST parsers: current form first (dollar
//! strings, `_fp` counts, `ts_ms`, RFC 3339), legacy integer form second. All exact, through
//! `kd_core::units` only.

use super::error::FieldError;
use crate::wire::scalar::{RestLevel, WireLevel, WireNum};
use kd_core::records::Level;
use kd_core::{Count, Price, Side, TimestampUs};

pub(crate) fn required<T>(value: Option<T>, field: &'static str) -> Result<T, FieldError> {
    value.ok_or(FieldError::Missing(field))
}

/// A price from its dollar string, else from legacy integer cents.
pub(crate) fn price(
    dollars: Option<&str>,
    dollars_field: &'static str,
    cents: Option<i64>,
    cents_field: &'static str,
) -> Result<Option<Price>, FieldError> {
    match (dollars, cents) {
        (Some(d), _) => Price::parse_dollars(d)
            .map(Some)
            .map_err(FieldError::unit(dollars_field)),
        (None, Some(c)) => Price::from_cents(c)
            .map(Some)
            .map_err(FieldError::unit(cents_field)),
        (None, None) => Ok(None),
    }
}

/// A count from its `_fp` string, else from legacy whole contracts.
pub(crate) fn count(
    fp: Option<&str>,
    fp_field: &'static str,
    contracts: Option<i64>,
    contracts_field: &'static str,
) -> Result<Option<Count>, FieldError> {
    match (fp, contracts) {
        (Some(t), _) => Count::parse_fp(t)
            .map(Some)
            .map_err(FieldError::unit(fp_field)),
        (None, Some(c)) => Count::from_contracts(c)
            .map(Some)
            .map_err(FieldError::unit(contracts_field)),
        (None, None) => Ok(None),
    }
}

/// A price that is text (dollars) or an integer (cents).
pub(crate) fn num_price(n: &WireNum<'_>, field: &'static str) -> Result<Price, FieldError> {
    match n {
        WireNum::Text(t) => Price::parse_dollars(t),
        WireNum::Int(c) => Price::from_cents(*c),
    }
    .map_err(FieldError::unit(field))
}

/// A count that is text (`_fp`) or an integer (whole contracts).
pub(crate) fn num_count(n: &WireNum<'_>, field: &'static str) -> Result<Count, FieldError> {
    match n {
        WireNum::Text(t) => Count::parse_fp(t),
        WireNum::Int(c) => Count::from_contracts(*c),
    }
    .map_err(FieldError::unit(field))
}

/// A time in Kalshi's "seconds" fields: an integer of Unix seconds, or text — RFC 3339, or
/// digits only (seconds sent as a string).
pub(crate) fn num_secs(n: &WireNum<'_>, field: &'static str) -> Result<TimestampUs, FieldError> {
    match n {
        WireNum::Int(s) => TimestampUs::from_secs(*s).map_err(FieldError::unit(field)),
        WireNum::Text(t) => text_time(t, field),
    }
}

/// A time sent as text: RFC 3339, or digits only (Unix seconds sent as a string).
fn text_time(t: &str, field: &'static str) -> Result<TimestampUs, FieldError> {
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        t.parse::<i64>()
            .map_err(|_| kd_core::UnitError::OutOfRange)
            .and_then(TimestampUs::from_secs)
    } else {
        TimestampUs::parse_rfc3339(t)
    }
    .map_err(FieldError::unit(field))
}

pub(crate) fn opt_secs(
    n: Option<&WireNum<'_>>,
    field: &'static str,
) -> Result<Option<TimestampUs>, FieldError> {
    n.map(|n| num_secs(n, field)).transpose()
}

pub(crate) fn millis(ms: i64, field: &'static str) -> Result<TimestampUs, FieldError> {
    TimestampUs::from_millis(ms).map_err(FieldError::unit(field))
}

/// Exchange time of an order-book delta.
///
/// The RFC 3339 `ts` carries microseconds and is the most precise time available, so it wins;
/// then `ts_ms`; then a legacy integer-seconds `ts`. One refinement: an RFC 3339 `ts` that carries
/// whole seconds only (as in Kalshi's own spec example) while `ts_ms` of the same second has
/// milliseconds is less precise than `ts_ms`, so `ts_ms` is taken then.
pub(crate) fn delta_time(
    ts: Option<&WireNum<'_>>,
    ts_ms: Option<i64>,
) -> Result<TimestampUs, FieldError> {
    let ms = ts_ms.map(|m| millis(m, "ts_ms")).transpose()?;
    match ts {
        Some(WireNum::Text(t)) => {
            let rfc = text_time(t, "ts")?;
            Ok(match ms {
                Some(ms)
                    if rfc.micros() % 1_000_000 == 0
                        && ms.micros() % 1_000_000 != 0
                        && ms.micros().div_euclid(1_000_000) == rfc.micros() / 1_000_000 =>
                {
                    ms
                }
                _ => rfc,
            })
        }
        Some(secs @ WireNum::Int(_)) => match ms {
            Some(ms) => Ok(ms),
            None => num_secs(secs, "ts"),
        },
        None => ms.ok_or(FieldError::Missing("ts_ms")),
    }
}

/// Exchange time of a trade or ticker: `ts_ms`, else `ts` (seconds — the live exchange sometimes
/// omits `ts_ms`), else an RFC 3339 `time` (ticker only).
pub(crate) fn message_time(
    ts_ms: Option<i64>,
    ts: Option<&WireNum<'_>>,
    time: Option<&str>,
) -> Result<TimestampUs, FieldError> {
    if let Some(ms) = ts_ms {
        return millis(ms, "ts_ms");
    }
    if let Some(ts) = ts {
        return num_secs(ts, "ts");
    }
    if let Some(t) = time {
        return TimestampUs::parse_rfc3339(t).map_err(FieldError::unit("time"));
    }
    Err(FieldError::Missing("ts_ms"))
}

pub(crate) fn side(text: &str, field: &'static str) -> Result<Side, FieldError> {
    Side::parse(text).ok_or(FieldError::Invalid(field))
}

/// The taker's outcome side from the first recognised field: `taker_outcome_side`, then
/// `taker_book_side` (`bid` ≡ yes, `ask` ≡ no), then the deprecated `taker_side`. An unrecognised
/// value gives `None` rather than an error: the trade itself must never be lost over direction.
pub(crate) fn taker_side(
    outcome: Option<&str>,
    book: Option<&str>,
    legacy: Option<&str>,
) -> Option<Side> {
    let from_book = match book {
        Some("bid") => Some(Side::Yes),
        Some("ask") => Some(Side::No),
        _ => None,
    };
    outcome
        .and_then(Side::parse)
        .or(from_book)
        .or_else(|| legacy.and_then(Side::parse))
}

/// Yes and no prices of a trade. One of the two may be derived from the other (`yes + no = $1`
/// for a binary contract, exact) when a legacy message carries only one.
pub(crate) fn trade_prices(
    yes: Option<Price>,
    no: Option<Price>,
) -> Result<(Price, Price), FieldError> {
    match (yes, no) {
        (Some(y), Some(n)) => Ok((y, n)),
        (Some(y), None) => Ok((y, y.complement())),
        (None, Some(n)) => Ok((n.complement(), n)),
        (None, None) => Err(FieldError::Missing("yes_price_dollars")),
    }
}

/// Order-book levels sorted ascending by price (Kalshi sends them ascending today; sorting makes
/// it a guarantee). Levels are kept as sent otherwise — no merging of repeated prices.
pub(crate) fn ws_levels(
    levels: Option<&[WireLevel<'_>]>,
    price_field: &'static str,
    count_field: &'static str,
) -> Result<Vec<Level>, FieldError> {
    let Some(levels) = levels else {
        return Ok(Vec::new());
    };
    let mut out = levels
        .iter()
        .map(|l| {
            Ok(Level {
                price: num_price(&l.0, price_field)?,
                size: num_count(&l.1, count_field)?,
            })
        })
        .collect::<Result<Vec<_>, FieldError>>()?;
    out.sort_by_key(|l| l.price);
    Ok(out)
}

pub(crate) fn rest_levels(
    levels: Option<&[RestLevel]>,
    field: &'static str,
) -> Result<Vec<Level>, FieldError> {
    let Some(levels) = levels else {
        return Ok(Vec::new());
    };
    let mut out = levels
        .iter()
        .map(|l| {
            Ok(Level {
                price: num_price(&l.0.as_wire(), field)?,
                size: num_count(&l.1.as_wire(), field)?,
            })
        })
        .collect::<Result<Vec<_>, FieldError>>()?;
    out.sort_by_key(|l| l.price);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn text(s: &str) -> WireNum<'_> {
        WireNum::Text(Cow::Borrowed(s))
    }

    #[test]
    fn delta_time_prefers_rfc3339_microseconds() -> Result<(), FieldError> {
        let t = delta_time(
            Some(&text("2026-06-24T15:49:55.033836Z")),
            Some(1_782_316_195_033),
        )?;
        assert_eq!(t.micros(), 1_782_316_195_033_836);
        Ok(())
    }

    #[test]
    fn delta_time_takes_ts_ms_over_whole_second_rfc3339() -> Result<(), FieldError> {
        let t = delta_time(Some(&text("2022-11-22T20:44:01Z")), Some(1_669_149_841_250))?;
        assert_eq!(t.micros(), 1_669_149_841_250_000);
        // Disagreeing by more than the second: the rule says ts.
        let t = delta_time(Some(&text("2022-11-22T20:44:01Z")), Some(1_669_149_900_250))?;
        assert_eq!(t.micros(), 1_669_149_841_000_000);
        Ok(())
    }

    #[test]
    fn delta_time_falls_back_to_ms_then_seconds() -> Result<(), FieldError> {
        assert_eq!(delta_time(None, Some(5))?.micros(), 5_000);
        assert_eq!(
            delta_time(Some(&WireNum::Int(1_705_328_200)), None)?.micros(),
            1_705_328_200_000_000
        );
        assert_eq!(
            delta_time(Some(&WireNum::Int(1_705_328_200)), Some(1_705_328_200_123))?.micros(),
            1_705_328_200_123_000
        );
        assert_eq!(delta_time(None, None), Err(FieldError::Missing("ts_ms")));
        assert!(matches!(
            delta_time(Some(&text("yesterday")), None),
            Err(FieldError::Unit { field: "ts", .. })
        ));
        Ok(())
    }

    #[test]
    fn message_time_order() -> Result<(), FieldError> {
        assert_eq!(
            message_time(Some(7), Some(&WireNum::Int(1)), None)?.micros(),
            7_000
        );
        assert_eq!(
            message_time(None, Some(&WireNum::Int(1)), None)?.micros(),
            1_000_000
        );
        assert_eq!(
            message_time(None, Some(&text("2")), None)?.micros(),
            2_000_000
        );
        assert_eq!(
            message_time(None, None, Some("1970-01-01T00:00:03Z"))?.micros(),
            3_000_000
        );
        assert_eq!(
            message_time(None, None, None),
            Err(FieldError::Missing("ts_ms"))
        );
        Ok(())
    }

    #[test]
    fn taker_side_fallbacks() {
        assert_eq!(
            taker_side(Some("no"), Some("bid"), Some("yes")),
            Some(Side::No)
        );
        assert_eq!(taker_side(None, Some("bid"), Some("no")), Some(Side::Yes));
        assert_eq!(taker_side(Some("maybe"), Some("ask"), None), Some(Side::No));
        assert_eq!(taker_side(None, None, Some("yes")), Some(Side::Yes));
        assert_eq!(taker_side(Some("x"), Some("y"), Some("z")), None);
    }

    #[test]
    fn prices_and_counts_current_then_legacy() -> Result<(), FieldError> {
        let p = price(Some("0.5255"), "p_dollars", Some(1), "p")?;
        assert_eq!(p.map(Price::units), Some(52_550));
        assert_eq!(
            price(None, "p_dollars", Some(52), "p")?.map(Price::units),
            Some(52_000)
        );
        assert_eq!(price(None, "a", None, "b")?, None);
        assert!(matches!(
            price(Some("1.5"), "p_dollars", None, "p"),
            Err(FieldError::Unit {
                field: "p_dollars",
                ..
            })
        ));
        assert!(matches!(
            price(None, "p_dollars", Some(101), "p"),
            Err(FieldError::Unit { field: "p", .. })
        ));
        let c = count(Some("-54.00"), "c_fp", None, "c")?;
        assert_eq!(c.map(Count::hundredths), Some(-5_400));
        assert_eq!(
            count(None, "c_fp", Some(-50), "c")?.map(Count::hundredths),
            Some(-5_000)
        );
        Ok(())
    }

    #[test]
    fn trade_prices_derive_the_missing_complement() -> Result<(), Box<dyn std::error::Error>> {
        let y = Price::new(42_000)?;
        assert_eq!(trade_prices(Some(y), None)?.1.units(), 58_000);
        assert_eq!(trade_prices(None, Some(y))?.0.units(), 58_000);
        assert!(trade_prices(None, None).is_err());
        Ok(())
    }

    #[test]
    fn levels_sorted_ascending() -> Result<(), FieldError> {
        let levels = [
            WireLevel(text("0.5600"), text("146.00")),
            WireLevel(WireNum::Int(54), WireNum::Int(20)),
        ];
        let out = ws_levels(Some(&levels), "p", "c")?;
        assert_eq!(out[0].price.units(), 54_000);
        assert_eq!(out[0].size.hundredths(), 2_000);
        assert_eq!(out[1].price.units(), 56_000);
        assert!(ws_levels(None, "p", "c")?.is_empty());
        Ok(())
    }
}
