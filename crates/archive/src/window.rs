//! Export windows: fixed-length, epoch-aligned time ranges `[start, end)` in exchange time.
//!
//! Windows are aligned to multiples of their length since the Unix epoch, so the same instant
//! always falls in the same window and a re-export of a window writes the same object key.

use kd_core::{Table, TimestampUs};
use std::fmt;
use std::str::FromStr;

const MINUTE_US: i64 = 60_000_000;
const HOUR_US: i64 = 60 * MINUTE_US;
const DAY_US: i64 = 24 * HOUR_US;

/// Why a window length is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    #[error("window length `{0}` is not a number followed by m, h or d (e.g. 5m, 1h, 1d)")]
    Syntax(String),
    #[error("window length must divide a day evenly and be at least one minute, got `{0}`")]
    NotDivisor(String),
}

/// A window length that divides a day evenly (1m … 1d), so windows never straddle a day or an
/// hour partition boundary in a way that would put one window's rows under two partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WindowLen(i64);

impl WindowLen {
    pub const HOUR: WindowLen = WindowLen(HOUR_US);
    pub const DAY: WindowLen = WindowLen(DAY_US);

    /// The length in microseconds.
    pub const fn micros(self) -> i64 {
        self.0
    }

    /// The default length of every table: hourly, so every table's data reaches the archive
    /// within the hour plus the settle delay (the seed's cold tier: under one hour of lag).
    /// Daily windows made trades, snapshots and lifecycle up to a day late.
    pub const fn default_for(_table: Table) -> WindowLen {
        WindowLen::HOUR
    }

    /// The window containing `ts`.
    pub fn window_of(self, ts: TimestampUs) -> Window {
        let start = ts.micros().div_euclid(self.0) * self.0;
        Window {
            start: TimestampUs::from_micros(start),
            end: TimestampUs::from_micros(start + self.0),
        }
    }

    /// Whether `ts` is on a window boundary.
    pub fn is_aligned(self, ts: TimestampUs) -> bool {
        ts.micros().rem_euclid(self.0) == 0
    }

    /// The windows covering `[from, to)`, both ends rounded out to window boundaries.
    pub fn windows(self, from: TimestampUs, to: TimestampUs) -> impl Iterator<Item = Window> {
        let first = self.window_of(from).start.micros();
        let len = self.0;
        let end = to.micros();
        (0..)
            .map(move |i: i64| first + i * len)
            .take_while(move |s| *s < end)
            .map(move |s| Window {
                start: TimestampUs::from_micros(s),
                end: TimestampUs::from_micros(s + len),
            })
    }
}

impl FromStr for WindowLen {
    type Err = WindowError;
    fn from_str(text: &str) -> Result<Self, WindowError> {
        let text = text.trim();
        let split = text.len().saturating_sub(1);
        let (num, unit) = text.split_at(split);
        let n: i64 = num
            .parse()
            .map_err(|_| WindowError::Syntax(text.to_string()))?;
        let unit_us = match unit {
            "m" => MINUTE_US,
            "h" => HOUR_US,
            "d" => DAY_US,
            _ => return Err(WindowError::Syntax(text.to_string())),
        };
        let us = n
            .checked_mul(unit_us)
            .ok_or_else(|| WindowError::Syntax(text.to_string()))?;
        if !(MINUTE_US..=DAY_US).contains(&us) || DAY_US % us != 0 {
            return Err(WindowError::NotDivisor(text.to_string()));
        }
        Ok(WindowLen(us))
    }
}

impl fmt::Display for WindowLen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 % DAY_US == 0 {
            write!(f, "{}d", self.0 / DAY_US)
        } else if self.0 % HOUR_US == 0 {
            write!(f, "{}h", self.0 / HOUR_US)
        } else {
            write!(f, "{}m", self.0 / MINUTE_US)
        }
    }
}

impl serde::Serialize for WindowLen {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> serde::Deserialize<'de> for WindowLen {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// One export window `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Window {
    pub start: TimestampUs,
    pub end: TimestampUs,
}

impl Window {
    /// The window's length.
    pub fn len(&self) -> WindowLen {
        WindowLen(self.end.micros() - self.start.micros())
    }

    /// Whether the window is closed at `now` after waiting `settle_us` for late records.
    pub fn is_closed(&self, now: TimestampUs, settle_us: i64) -> bool {
        self.end.micros().saturating_add(settle_us) <= now.micros()
    }

    /// Whether `ts` lies in the window.
    pub fn contains(&self, ts: TimestampUs) -> bool {
        self.start <= ts && ts < self.end
    }
}

/// The whole UTC days overlapping `[from, to)`.
pub fn days(from: TimestampUs, to: TimestampUs) -> impl Iterator<Item = Window> {
    WindowLen::DAY.windows(from, to)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_parse_and_print() -> Result<(), WindowError> {
        for (text, us) in [
            ("5m", 5 * MINUTE_US),
            ("1h", HOUR_US),
            ("1d", DAY_US),
            ("30m", 30 * MINUTE_US),
        ] {
            let len: WindowLen = text.parse()?;
            assert_eq!(len.micros(), us);
            assert_eq!(len.to_string(), text);
        }
        for bad in ["", "h", "7m", "2d", "0m", "5s", "-1h", "1.5h"] {
            assert!(bad.parse::<WindowLen>().is_err(), "{bad}");
        }
        Ok(())
    }

    #[test]
    fn windows_are_epoch_aligned_and_cover_the_range() {
        let len = WindowLen::HOUR;
        let t = TimestampUs::from_micros(5 * HOUR_US + 17);
        let w = len.window_of(t);
        assert_eq!(w.start.micros(), 5 * HOUR_US);
        assert_eq!(w.end.micros(), 6 * HOUR_US);
        assert!(w.contains(t));
        let all: Vec<_> = len
            .windows(
                TimestampUs::from_micros(HOUR_US + 1),
                TimestampUs::from_micros(3 * HOUR_US),
            )
            .collect();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].start.micros(), HOUR_US);
        assert_eq!(all[1].end.micros(), 3 * HOUR_US);
        let before_epoch = len.window_of(TimestampUs::from_micros(-1));
        assert_eq!(before_epoch.start.micros(), -HOUR_US);
    }

    #[test]
    fn every_table_defaults_to_hourly_windows() {
        for table in Table::ALL {
            assert_eq!(WindowLen::default_for(table), WindowLen::HOUR, "{table}");
        }
    }

    #[test]
    fn a_window_closes_after_the_settle_delay() {
        let w = WindowLen::HOUR.window_of(TimestampUs::from_micros(0));
        assert!(!w.is_closed(TimestampUs::from_micros(HOUR_US), 1));
        assert!(w.is_closed(TimestampUs::from_micros(HOUR_US + 1), 1));
    }
}
