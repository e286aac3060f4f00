//! Exact units: price, contract count and time.
//!
//! Every quantity Kalshi sends is converted here, once, from its text form straight to an
//! integer — never through `f64`. The classic bug this prevents: `"0.29".parse::<f64>() * 100000`
//! is `28999.999…`, which truncates to 28999, a price one unit off. Invariants:
//!
//! - [`Price`]: integer hundred-thousandths of a dollar, always within `0..=100_000`.
//! - [`Count`]: integer hundredths of a contract, signed (order-book deltas remove size).
//! - [`TimestampUs`]: integer microseconds since the Unix epoch (UTC).
//!
//! Text with more fractional digits than a type holds is an error ([`UnitError::TooPrecise`]),
//! never silently rounded.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a piece of text is not a valid unit value. Carries no input text: callers name the
/// field, and exchange strings never end up in error messages unbounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    #[error("empty value")]
    Empty,
    #[error("not a decimal number")]
    Syntax,
    #[error("more fractional digits than the unit holds (max {max})")]
    TooPrecise { max: u32 },
    #[error("negative value where none is allowed")]
    Negative,
    #[error("value out of range")]
    OutOfRange,
    #[error("not a valid RFC 3339 timestamp")]
    Timestamp,
}

/// Parses an unsigned-or-signed decimal string into an integer scaled by `10^scale`.
///
/// Hand-written rather than via a decimal crate: this sits on the hottest path (every
/// order-book delta carries two such strings) and needs only digits, one dot and a sign.
fn parse_scaled(text: &str, scale: u32, allow_negative: bool) -> Result<i64, UnitError> {
    let bytes = text.as_bytes();
    if bytes.is_empty() {
        return Err(UnitError::Empty);
    }
    let (negative, digits) = match bytes[0] {
        b'-' => (true, &bytes[1..]),
        _ => (false, bytes),
    };
    if negative && !allow_negative {
        return Err(UnitError::Negative);
    }
    let (int_part, frac_part) = match digits.iter().position(|&b| b == b'.') {
        Some(dot) => (&digits[..dot], Some(&digits[dot + 1..])),
        None => (digits, None),
    };
    if int_part.is_empty() || frac_part.is_some_and(<[u8]>::is_empty) {
        return Err(UnitError::Syntax);
    }
    let mut value: i64 = 0;
    for &b in int_part {
        if !b.is_ascii_digit() {
            return Err(UnitError::Syntax);
        }
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(i64::from(b - b'0')))
            .ok_or(UnitError::OutOfRange)?;
    }
    let frac = frac_part.unwrap_or(&[]);
    if frac.iter().any(|b| !b.is_ascii_digit()) {
        return Err(UnitError::Syntax);
    }
    if frac.len() > scale as usize {
        return Err(UnitError::TooPrecise { max: scale });
    }
    for i in 0..scale as usize {
        let digit = frac.get(i).map_or(0, |&b| i64::from(b - b'0'));
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(digit))
            .ok_or(UnitError::OutOfRange)?;
    }
    Ok(if negative { -value } else { value })
}

/// Writes `value / 10^scale` with exactly `decimals` fractional digits (`decimals <= scale`,
/// digits dropped must be zero — callers pick `decimals` from the value).
fn write_scaled(f: &mut fmt::Formatter<'_>, value: i64, scale: u32, decimals: u32) -> fmt::Result {
    let unit = 10_u64.pow(scale);
    let abs = value.unsigned_abs();
    let int = abs / unit;
    let frac = (abs % unit) / 10_u64.pow(scale - decimals);
    // Digits into a stack buffer and one `write_str`: `write!` with a zero-padded width cost
    // more than the rest of rendering a REST market object (prices and counts are most of it).
    let mut buf = [0_u8; 48];
    let mut at = buf.len();
    if decimals > 0 {
        at = put_digits(&mut buf, at, frac, decimals as usize);
        at -= 1;
        buf[at] = b'.';
    }
    at = put_digits(&mut buf, at, int, 1);
    if value < 0 {
        at -= 1;
        buf[at] = b'-';
    }
    // Only ASCII digits, '.' and '-' were written.
    f.write_str(std::str::from_utf8(&buf[at..]).unwrap_or_default())
}

/// Writes `v` in decimal, at least `width` digits (zero-padded), ending at `end` of `buf`;
/// returns where it starts. `buf` must have room (20 digits for any u64, plus the padding).
fn put_digits(buf: &mut [u8], end: usize, mut v: u64, width: usize) -> usize {
    let mut at = end;
    loop {
        at -= 1;
        buf[at] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 && end - at >= width {
            return at;
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SS`, then `.ffffff` when `micros` is given, then `Z`, for years 0–9999
/// (`None` outside: callers fall back to `format!`). A REST market listing renders seven of
/// these per market, and `format!` with padded widths was a quarter of its time.
fn rfc3339_fast(secs: i64, micros: Option<i64>) -> Option<String> {
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    if !(0..=9999).contains(&y) {
        return None;
    }
    let sod = secs.rem_euclid(86_400);
    let mut buf = [0_u8; 27];
    let fields = [
        (0, y, 4),
        (5, mo, 2),
        (8, d, 2),
        (11, sod / 3600, 2),
        (14, (sod % 3600) / 60, 2),
        (17, sod % 60, 2),
    ];
    for (start, v, width) in fields {
        put_digits(&mut buf, start + width, v.unsigned_abs(), width);
    }
    buf[4] = b'-';
    buf[7] = b'-';
    buf[10] = b'T';
    buf[13] = b':';
    buf[16] = b':';
    let len = match micros {
        Some(us) => {
            buf[19] = b'.';
            put_digits(&mut buf, 26, us.unsigned_abs(), 6);
            buf[26] = b'Z';
            27
        }
        None => {
            buf[19] = b'Z';
            20
        }
    };
    std::str::from_utf8(&buf[..len]).ok().map(str::to_owned)
}

/// A price in hundred-thousandths of a dollar (`"0.5250"` → 52 500), within `0..=100_000`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct Price(i64);

impl Price {
    /// Fractional digits of a dollar the type holds.
    pub const SCALE: u32 = 5;
    /// One dollar, the highest price a binary contract can have.
    pub const ONE_DOLLAR: Price = Price(100_000);
    pub const ZERO: Price = Price(0);

    /// Checked constructor from hundred-thousandths.
    pub fn new(units: i64) -> Result<Self, UnitError> {
        if units < 0 {
            Err(UnitError::Negative)
        } else if units > Self::ONE_DOLLAR.0 {
            Err(UnitError::OutOfRange)
        } else {
            Ok(Price(units))
        }
    }

    /// Parses a dollar string such as `"0.5200"` or `"0.480"`.
    pub fn parse_dollars(text: &str) -> Result<Self, UnitError> {
        Self::new(parse_scaled(text, Self::SCALE, false)?)
    }

    /// Converts a legacy integer-cent price (`52` → 52 000).
    pub fn from_cents(cents: i64) -> Result<Self, UnitError> {
        Self::new(cents.checked_mul(1_000).ok_or(UnitError::OutOfRange)?)
    }

    pub const fn units(self) -> i64 {
        self.0
    }

    /// The complementary price `1 − p` (a NO bid at p is a YES ask at `1 − p`).
    pub const fn complement(self) -> Price {
        Price(Self::ONE_DOLLAR.0 - self.0)
    }

    /// The dollar string Kalshi would send: four decimals, five when the value needs it.
    pub fn to_dollars(self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Price {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let decimals = if self.0 % 10 == 0 { 4 } else { 5 };
        write_scaled(f, self.0, Self::SCALE, decimals)
    }
}

impl TryFrom<i64> for Price {
    type Error = UnitError;
    fn try_from(units: i64) -> Result<Self, UnitError> {
        Price::new(units)
    }
}

impl From<Price> for i64 {
    fn from(p: Price) -> i64 {
        p.0
    }
}

/// A number of contracts in hundredths (`"31.54"` → 3 154), signed: a delta may remove size.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Count(i64);

impl Count {
    /// Fractional digits of a contract the type holds (Kalshi's `_fp` strings carry two).
    pub const SCALE: u32 = 2;
    pub const ZERO: Count = Count(0);

    pub const fn new(hundredths: i64) -> Self {
        Count(hundredths)
    }

    /// Parses a fixed-point count string such as `"31.54"` or `"-54.00"`.
    pub fn parse_fp(text: &str) -> Result<Self, UnitError> {
        parse_scaled(text, Self::SCALE, true).map(Count)
    }

    /// Converts a legacy whole-contract integer (`100` → 10 000 hundredths).
    pub fn from_contracts(contracts: i64) -> Result<Self, UnitError> {
        contracts
            .checked_mul(100)
            .map(Count)
            .ok_or(UnitError::OutOfRange)
    }

    pub const fn hundredths(self) -> i64 {
        self.0
    }

    pub fn checked_add(self, other: Count) -> Option<Count> {
        self.0.checked_add(other.0).map(Count)
    }

    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    pub const fn is_negative(self) -> bool {
        self.0 < 0
    }

    /// The `_fp` string Kalshi would send (`"31.54"`).
    pub fn to_fp(self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Count {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_scaled(f, self.0, Self::SCALE, Self::SCALE)
    }
}

/// Microseconds since the Unix epoch, UTC.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct TimestampUs(i64);

impl TimestampUs {
    pub const fn from_micros(us: i64) -> Self {
        TimestampUs(us)
    }

    pub fn from_millis(ms: i64) -> Result<Self, UnitError> {
        ms.checked_mul(1_000)
            .map(TimestampUs)
            .ok_or(UnitError::OutOfRange)
    }

    pub fn from_secs(secs: i64) -> Result<Self, UnitError> {
        secs.checked_mul(1_000_000)
            .map(TimestampUs)
            .ok_or(UnitError::OutOfRange)
    }

    /// The wall clock now.
    pub fn now() -> Self {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        TimestampUs(i64::try_from(since.as_micros()).unwrap_or(i64::MAX))
    }

    pub const fn micros(self) -> i64 {
        self.0
    }

    pub const fn millis(self) -> i64 {
        self.0.div_euclid(1_000)
    }

    pub const fn secs(self) -> i64 {
        self.0.div_euclid(1_000_000)
    }

    /// Parses RFC 3339 (`"2026-06-24T15:49:55.033836Z"`, offsets `±HH:MM` too). Up to nine
    /// fractional digits are read; digits below the microsecond must be zero.
    ///
    /// Hand-written because it runs per order-book delta and must keep microseconds exactly;
    /// `chrono` would allocate nothing either but pulls a time-zone model we do not need.
    pub fn parse_rfc3339(text: &str) -> Result<Self, UnitError> {
        let b = text.as_bytes();
        let num = |range: std::ops::Range<usize>| -> Result<i64, UnitError> {
            let slice = b.get(range).ok_or(UnitError::Timestamp)?;
            slice.iter().try_fold(0_i64, |acc, &c| {
                if c.is_ascii_digit() {
                    Ok(acc * 10 + i64::from(c - b'0'))
                } else {
                    Err(UnitError::Timestamp)
                }
            })
        };
        if b.len() < 20
            || b[4] != b'-'
            || b[7] != b'-'
            || !matches!(b[10], b'T' | b't' | b' ')
            || b[13] != b':'
            || b[16] != b':'
        {
            return Err(UnitError::Timestamp);
        }
        let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
        if !(1..=12).contains(&month)
            || day < 1
            || day > days_in_month(year, month)
            || hour > 23
            || minute > 59
            || second > 60
        {
            return Err(UnitError::Timestamp);
        }
        let mut pos = 19;
        let mut micros = 0_i64;
        if b.get(pos) == Some(&b'.') {
            pos += 1;
            let start = pos;
            while pos < b.len() && b[pos].is_ascii_digit() {
                pos += 1;
            }
            let digits = &b[start..pos];
            if digits.is_empty() || digits.len() > 9 {
                return Err(UnitError::Timestamp);
            }
            if digits.iter().skip(6).any(|&d| d != b'0') {
                return Err(UnitError::TooPrecise { max: 6 });
            }
            for i in 0..6 {
                micros = micros * 10 + digits.get(i).map_or(0, |&d| i64::from(d - b'0'));
            }
        }
        let offset_secs = match b.get(pos) {
            Some(b'Z' | b'z') if pos + 1 == b.len() => 0,
            Some(&sign @ (b'+' | b'-')) if pos + 6 == b.len() && b[pos + 3] == b':' => {
                let (oh, om) = (num(pos + 1..pos + 3)?, num(pos + 4..pos + 6)?);
                if oh > 23 || om > 59 {
                    return Err(UnitError::Timestamp);
                }
                let off = oh * 3600 + om * 60;
                if sign == b'+' { off } else { -off }
            }
            _ => return Err(UnitError::Timestamp),
        };
        let days = days_from_civil(year, month, day);
        let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
        Ok(TimestampUs(secs * 1_000_000 + micros))
    }

    /// Formats as RFC 3339 UTC with microseconds (`"2026-06-24T15:49:55.033836Z"`).
    pub fn to_rfc3339(self) -> String {
        let secs = self.0.div_euclid(1_000_000);
        let micros = self.0.rem_euclid(1_000_000);
        if let Some(s) = rfc3339_fast(secs, Some(micros)) {
            return s;
        }
        let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
        let sod = secs.rem_euclid(86_400);
        format!(
            "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z",
            sod / 3600,
            (sod % 3600) / 60,
            sod % 60
        )
    }

    /// Formats as RFC 3339 UTC with whole seconds (REST `created_time` style when exact).
    pub fn to_rfc3339_secs(self) -> String {
        let secs = self.0.div_euclid(1_000_000);
        if let Some(s) = rfc3339_fast(secs, None) {
            return s;
        }
        let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
        let sod = secs.rem_euclid(86_400);
        format!(
            "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}Z",
            sod / 3600,
            (sod % 3600) / 60,
            sod % 60
        )
    }

    /// (year, month, day, hour) in UTC, for partition paths.
    pub fn civil(self) -> (i64, i64, i64, i64) {
        let secs = self.0.div_euclid(1_000_000);
        let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
        (y, m, d, secs.rem_euclid(86_400) / 3600)
    }
}

impl fmt::Display for TimestampUs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn dollar_strings_convert_exactly() {
        let cases = [
            ("0.29", 29_000),
            ("0.5255", 52_550),
            ("0.9999", 99_990),
            ("1.0000", 100_000),
            ("0.52", 52_000),
            ("0.480", 48_000),
            ("0.00001", 1),
            ("0", 0),
        ];
        for (text, units) in cases {
            assert_eq!(
                Price::parse_dollars(text).map(Price::units),
                Ok(units),
                "{text}"
            );
        }
    }

    #[test]
    fn bad_dollar_strings_are_typed_errors() {
        assert_eq!(Price::parse_dollars("1.5"), Err(UnitError::OutOfRange));
        assert_eq!(Price::parse_dollars("-0.01"), Err(UnitError::Negative));
        assert_eq!(Price::parse_dollars("abc"), Err(UnitError::Syntax));
        assert_eq!(Price::parse_dollars(""), Err(UnitError::Empty));
        assert_eq!(
            Price::parse_dollars("0.123456"),
            Err(UnitError::TooPrecise { max: 5 })
        );
        assert_eq!(Price::parse_dollars(".5"), Err(UnitError::Syntax));
        assert_eq!(Price::parse_dollars("0."), Err(UnitError::Syntax));
        assert_eq!(Price::parse_dollars("0.5x"), Err(UnitError::Syntax));
        assert_eq!(Price::parse_dollars("+0.5"), Err(UnitError::Syntax));
        assert_eq!(
            Price::parse_dollars("99999999999999999999"),
            Err(UnitError::OutOfRange)
        );
    }

    #[test]
    fn legacy_cents_convert() {
        assert_eq!(Price::from_cents(52).map(Price::units), Ok(52_000));
        assert_eq!(Price::from_cents(101), Err(UnitError::OutOfRange));
        assert_eq!(Price::from_cents(-1), Err(UnitError::Negative));
    }

    #[test]
    fn counts_convert_exactly() {
        assert_eq!(Count::parse_fp("31.54").map(Count::hundredths), Ok(3_154));
        assert_eq!(Count::parse_fp("-54.00").map(Count::hundredths), Ok(-5_400));
        assert_eq!(Count::parse_fp("-0.05").map(Count::hundredths), Ok(-5));
        assert_eq!(Count::parse_fp("3").map(Count::hundredths), Ok(300));
        assert_eq!(
            Count::parse_fp("1.234"),
            Err(UnitError::TooPrecise { max: 2 })
        );
        assert_eq!(Count::parse_fp("abc"), Err(UnitError::Syntax));
        assert_eq!(Count::parse_fp(""), Err(UnitError::Empty));
        assert_eq!(Count::parse_fp("-"), Err(UnitError::Syntax));
        assert_eq!(
            Count::from_contracts(100).map(Count::hundredths),
            Ok(10_000)
        );
    }

    #[test]
    fn timestamps_convert_exactly() {
        assert_eq!(
            TimestampUs::parse_rfc3339("2026-06-24T15:49:55.033836Z").map(TimestampUs::micros),
            Ok(1_782_316_195_033_836)
        );
        assert_eq!(
            TimestampUs::parse_rfc3339("2022-11-22T20:44:01Z").map(TimestampUs::micros),
            Ok(1_669_149_841_000_000)
        );
        assert_eq!(
            TimestampUs::parse_rfc3339("2022-11-22T22:44:01+02:00").map(TimestampUs::micros),
            Ok(1_669_149_841_000_000)
        );
        assert_eq!(
            TimestampUs::parse_rfc3339("2026-06-24T15:49:55.033836000Z").map(TimestampUs::micros),
            Ok(1_782_316_195_033_836)
        );
        assert_eq!(
            TimestampUs::parse_rfc3339("2026-06-24T15:49:55.0338361Z"),
            Err(UnitError::TooPrecise { max: 6 })
        );
        assert_eq!(
            TimestampUs::from_millis(1_782_316_195_033).map(TimestampUs::micros),
            Ok(1_782_316_195_033_000)
        );
        assert_eq!(
            TimestampUs::from_secs(1_705_328_200).map(TimestampUs::micros),
            Ok(1_705_328_200_000_000)
        );
        for bad in [
            "",
            "2026-02-30T00:00:00Z",
            "2026-06-24T15:49:55",
            "2026-06-24T25:00:00Z",
            "x026-06-24T15:49:55Z",
        ] {
            assert!(TimestampUs::parse_rfc3339(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn formatting_matches_kalshi() {
        assert_eq!(
            Price::new(52_000).map(|p| p.to_dollars()),
            Ok("0.5200".to_string())
        );
        assert_eq!(
            Price::new(52_555).map(|p| p.to_dollars()),
            Ok("0.52555".to_string())
        );
        assert_eq!(Count::new(-5_400).to_fp(), "-54.00");
        assert_eq!(Count::new(-5).to_fp(), "-0.05");
        assert_eq!(
            TimestampUs::from_micros(1_782_316_195_033_836).to_rfc3339(),
            "2026-06-24T15:49:55.033836Z"
        );
    }

    proptest! {
        #[test]
        fn price_round_trips(units in 0_i64..=100_000) {
            let p = Price::new(units).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(Price::parse_dollars(&p.to_dollars()), Ok(p));
        }

        #[test]
        fn count_round_trips(h in -10_000_000_000_i64..10_000_000_000) {
            let c = Count::new(h);
            prop_assert_eq!(Count::parse_fp(&c.to_fp()), Ok(c));
        }

        #[test]
        fn timestamp_round_trips(us in -62_135_596_800_000_000_i64..253_402_300_799_999_999) {
            let t = TimestampUs::from_micros(us);
            prop_assert_eq!(TimestampUs::parse_rfc3339(&t.to_rfc3339()), Ok(t));
        }

        #[test]
        fn fast_text_matches_format(us in -62_135_596_800_000_000_i64..253_402_300_799_999_999, v in any::<i64>(), scale in 0_u32..=6, drop in 0_u32..=6) {
            // The hand-written digit writers against the `format!` they replaced.
            let secs = us.div_euclid(1_000_000);
            let micros = us.rem_euclid(1_000_000);
            let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
            let sod = secs.rem_euclid(86_400);
            let (h, mi, se) = (sod / 3600, (sod % 3600) / 60, sod % 60);
            let t = TimestampUs::from_micros(us);
            prop_assert_eq!(t.to_rfc3339(), format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{se:02}.{micros:06}Z"));
            prop_assert_eq!(t.to_rfc3339_secs(), format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{se:02}Z"));
            struct Scaled(i64, u32, u32);
            impl fmt::Display for Scaled {
                fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    write_scaled(f, self.0, self.1, self.2)
                }
            }
            let decimals = scale.saturating_sub(drop);
            let unit = 10_u64.pow(scale);
            let abs = v.unsigned_abs();
            let frac = (abs % unit) / 10_u64.pow(scale - decimals);
            let sign = if v < 0 { "-" } else { "" };
            let want = if decimals == 0 {
                format!("{sign}{}", abs / unit)
            } else {
                format!("{sign}{}.{frac:0w$}", abs / unit, w = decimals as usize)
            };
            prop_assert_eq!(Scaled(v, scale, decimals).to_string(), want);
        }

        #[test]
        fn parsers_never_panic(s in ".{0,40}") {
            let _ = Price::parse_dollars(&s);
            let _ = Count::parse_fp(&s);
            let _ = TimestampUs::parse_rfc3339(&s);
        }

        #[test]
        fn decimal_text_matches_integer_arithmetic(int in 0_u8..=1, frac in 0_u32..100_000, width in 1_usize..=5) {
            // Build "I.FFFFF" truncated to `width` digits and compare with exact integer math.
            let digits = format!("{frac:05}");
            let text = format!("{int}.{}", &digits[..width]);
            let expected = i64::from(int) * 100_000 + digits[..width].parse::<i64>().unwrap_or(0) * 10_i64.pow(5 - width as u32);
            let got = Price::parse_dollars(&text);
            if expected <= 100_000 {
                prop_assert_eq!(got.map(Price::units), Ok(expected));
            } else {
                prop_assert_eq!(got, Err(UnitError::OutOfRange));
            }
        }
    }
}
