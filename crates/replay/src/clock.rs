//! The replay clock: starts at `--from` and advances at `--speed` times real time, or — at
//! `max` — is wherever the fastest client's feed has got to (each connection then reads at its
//! own pace, and REST answers as of the furthest of them).

use kd_core::TimestampUs;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

/// `--speed`: a factor of real time, or as fast as the client reads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Speed {
    Max,
    Times(f64),
}

impl Speed {
    /// Parses `max` or a positive factor (`10`, `0.5`).
    pub fn parse(text: &str) -> Result<Speed, String> {
        if text == "max" {
            return Ok(Speed::Max);
        }
        match text.parse::<f64>() {
            Ok(x) if x.is_finite() && x > 0.0 => Ok(Speed::Times(x)),
            _ => Err(format!(
                "`{text}`: expected `max` or a positive factor such as 10"
            )),
        }
    }
}

/// The shared replay clock.
#[derive(Debug)]
pub struct Clock {
    pub from: TimestampUs,
    pub to: TimestampUs,
    pub speed: Speed,
    start: Instant,
    /// `max`: the furthest instant any feed has sent.
    furthest: AtomicI64,
}

impl Clock {
    pub fn new(from: TimestampUs, to: TimestampUs, speed: Speed) -> Clock {
        Clock {
            from,
            to,
            speed,
            start: Instant::now(),
            furthest: AtomicI64::new(from.micros()),
        }
    }

    /// The replay instant now (never past `to`).
    pub fn now(&self) -> TimestampUs {
        let us = match self.speed {
            Speed::Max => self.furthest.load(Ordering::Relaxed),
            Speed::Times(x) => {
                let elapsed = self.start.elapsed().as_secs_f64() * 1e6 * x;
                self.from.micros().saturating_add(elapsed as i64)
            }
        };
        TimestampUs::from_micros(us.min(self.to.micros()))
    }

    /// When (real time) the clock reaches `at`; `None` at `max` (no waiting).
    pub fn when(&self, at: TimestampUs) -> Option<Instant> {
        match self.speed {
            Speed::Max => None,
            Speed::Times(x) => {
                let us = (at.micros() - self.from.micros()).max(0) as f64 / x;
                Some(self.start + Duration::from_secs_f64(us / 1e6))
            }
        }
    }

    /// A feed has sent everything up to `at` (moves the `max` clock).
    pub fn reached(&self, at: TimestampUs) {
        self.furthest.fetch_max(at.micros(), Ordering::Relaxed);
    }
}
