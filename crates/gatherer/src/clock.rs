//! The gatherer's clocks: its own wall clock (the only place the gatherer reads the time of
//! day) and its estimate of how far that clock is from the exchange's.
//!
//! Two kinds of time meet in a gatherer. `received_at` is the gatherer's own clock when a
//! frame arrived, and stays that (it describes this gatherer, and nothing compares it across
//! gatherers). Everything compared with exchange timestamps or sent to the exchange — gap
//! windows, trade backfill windows (`min_ts`/`max_ts`), the time given to a snapshot (which
//! Kalshi does not stamp), the minute bucket of an undated lifecycle message — is converted to
//! the exchange's clock with [`Clock::to_exchange`]. A gatherer whose clock is 45 s off would
//! otherwise backfill the wrong minute, record gap windows that do not cover what it lost, and
//! stamp snapshots before changes they already contain (or in the future).
//!
//! # The estimate
//! For every message the exchange stamps precisely (deltas: µs; trades: ms, truncated), the
//! sample `received_at − exchange_ts` is the clock offset plus that message's latency (plus the
//! truncation). The estimate is the **minimum** sample over the last
//! [`WINDOW_BUCKETS`] × [`BUCKET_US`]: offset + the smallest latency seen. Converting a receive
//! time with it, `received_at − estimate`, gives the true receive instant (exchange clock) less
//! that smallest latency, which still lies at or after the send time of any message whose
//! latency is at least that minimum — every message of the window, by construction. So a
//! converted receive time never falls *before* the exchange made what arrived then: a snapshot
//! stamped with it never precedes a change it contains, and a gap window ending at it covers
//! the messages lost before it. The other direction costs little: it may fall up to the
//! minimum latency (tens of ms at most) before the true receive instant, which only widens gap
//! windows that start at a receive time. A mean or median would put the converted time up to
//! half the latency spread *before* send times, which is the unsafe side.
//!
//! When the local clock steps forward by more than the latency the estimate briefly lags (old
//! small samples stay in the window) and converted times run ahead by the step; a step
//! backwards is safe at once. The window is one minute so a step is forgotten quickly.
//!
//! # Fault injection
//! `clock_offset_ms` shifts every reading of [`Clock::now`] (tests of a skewed host without
//! changing the machine's clock); the estimate then measures it like a real offset.

use crate::events::emit;
use crate::events::serving::ClockOffsetChanged;
use kd_core::TimestampUs;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

/// Width of one bucket of the minimum (µs of local time).
pub const BUCKET_US: i64 = 5_000_000;
/// Buckets kept: the estimate is the minimum over the last minute.
pub const WINDOW_BUCKETS: usize = 12;
/// An estimated offset beyond this is logged as a warning (and shown in `/health`).
pub const WARN_OFFSET_US: i64 = 1_000_000;
/// Marks "no estimate yet" in the atomic.
const UNKNOWN: i64 = i64::MIN;

/// The sliding minimum: one slot per bucket of local time, `(bucket index, minimum sample)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MinWindow {
    slots: [(i64, i64); WINDOW_BUCKETS],
}

impl Default for MinWindow {
    fn default() -> Self {
        MinWindow {
            slots: [(i64::MIN, i64::MAX); WINDOW_BUCKETS],
        }
    }
}

impl MinWindow {
    /// Adds a sample taken at local time `at_us`; returns the minimum over the window ending at
    /// `at_us`.
    pub fn add(&mut self, at_us: i64, sample: i64) -> i64 {
        let bucket = at_us.div_euclid(BUCKET_US);
        let slot = &mut self.slots[bucket.rem_euclid(WINDOW_BUCKETS as i64) as usize];
        if slot.0 != bucket {
            *slot = (bucket, sample);
        } else {
            slot.1 = slot.1.min(sample);
        }
        self.min_at(bucket)
    }

    /// The minimum over the buckets of the window ending at `bucket` (stale slots ignored).
    fn min_at(&self, bucket: i64) -> i64 {
        let oldest = bucket - WINDOW_BUCKETS as i64 + 1;
        self.slots
            .iter()
            .filter(|(b, _)| *b >= oldest && *b <= bucket)
            .map(|(_, v)| *v)
            .min()
            .unwrap_or(i64::MAX)
    }
}

/// The gatherer's clock, shared by every stage.
#[derive(Debug)]
pub struct Clock {
    /// Fault injection: added to every reading of the system clock (0 in production).
    injected_us: i64,
    window: Mutex<MinWindow>,
    /// The current estimate (µs, local − exchange), [`UNKNOWN`] before the first sample.
    estimate_us: AtomicI64,
    /// Whether the estimate is beyond [`WARN_OFFSET_US`] (to log each crossing once).
    warned: AtomicBool,
    /// Woken on the first estimate.
    first: tokio::sync::Notify,
}

impl Clock {
    /// A clock reading the system time shifted by `injected_ms` (see `clock_offset_ms`).
    pub fn new(injected_ms: i64) -> Self {
        Clock {
            injected_us: injected_ms.saturating_mul(1_000),
            window: Mutex::new(MinWindow::default()),
            estimate_us: AtomicI64::new(UNKNOWN),
            warned: AtomicBool::new(false),
            first: tokio::sync::Notify::new(),
        }
    }

    /// The gatherer's own wall clock: every local time of day the gatherer takes comes from
    /// here (so the injected offset cannot be bypassed).
    pub fn now(&self) -> TimestampUs {
        TimestampUs::from_micros(TimestampUs::now().micros().saturating_add(self.injected_us))
    }

    /// Feeds one message: received at local `received_at`, stamped `exchange_ts` by the
    /// exchange. Only precisely stamped messages (deltas, trades) belong here: a timestamp
    /// truncated to the second would add up to a second to its sample, pushing converted times
    /// earlier than send times.
    pub fn observe(&self, received_at: TimestampUs, exchange_ts: TimestampUs) {
        let sample = received_at.micros().saturating_sub(exchange_ts.micros());
        // Swapped under the lock, so two connections cannot publish their estimates out of
        // order.
        let (estimate, previous) = match self.window.lock() {
            Ok(mut w) => {
                let estimate = w.add(received_at.micros(), sample);
                (estimate, self.estimate_us.swap(estimate, Ordering::Relaxed))
            }
            Err(_) => return,
        };
        if previous == estimate {
            return;
        }
        let first = previous == UNKNOWN;
        let beyond = estimate.abs() > WARN_OFFSET_US;
        let crossed_limit =
            (beyond != self.warned.swap(beyond, Ordering::Relaxed)).then_some(beyond);
        emit(ClockOffsetChanged {
            offset_us: estimate,
            first,
            crossed_limit,
            limit_us: WARN_OFFSET_US,
        });
        if first {
            self.first.notify_waiters();
        }
    }

    /// The estimated offset (µs, local − exchange, including the smallest latency); `None`
    /// before the first precisely stamped message.
    pub fn offset_us(&self) -> Option<i64> {
        let v = self.estimate_us.load(Ordering::Relaxed);
        (v != UNKNOWN).then_some(v)
    }

    /// Whether the estimated offset is beyond [`WARN_OFFSET_US`].
    pub fn offset_warning(&self) -> bool {
        self.warned.load(Ordering::Relaxed)
    }

    /// A local time in the exchange's clock (unchanged before the first estimate).
    pub fn to_exchange(&self, local: TimestampUs) -> TimestampUs {
        match self.offset_us() {
            Some(off) => TimestampUs::from_micros(local.micros().saturating_sub(off)),
            None => local,
        }
    }

    /// Now, in the exchange's clock.
    pub fn exchange_now(&self) -> TimestampUs {
        self.to_exchange(self.now())
    }

    /// Waits for the first estimate.
    pub async fn estimated(&self) {
        loop {
            let notified = self.first.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.offset_us().is_some() {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(us: i64) -> TimestampUs {
        TimestampUs::from_micros(us)
    }

    #[test]
    fn the_estimate_is_the_smallest_sample_of_the_window() {
        let mut w = MinWindow::default();
        assert_eq!(w.add(0, 500), 500);
        assert_eq!(w.add(1_000, 300), 300);
        assert_eq!(
            w.add(BUCKET_US, 900),
            300,
            "older bucket still in the window"
        );
        assert_eq!(w.add(2 * BUCKET_US, 200), 200);
    }

    #[test]
    fn samples_older_than_the_window_are_forgotten() {
        let mut w = MinWindow::default();
        w.add(0, 100);
        let later = WINDOW_BUCKETS as i64 * BUCKET_US;
        assert_eq!(w.add(later, 700), 700, "the bucket of t=0 left the window");
        // A slot reused by a newer bucket starts afresh.
        assert_eq!(w.add(later + 1, 800), 700);
    }

    #[test]
    fn negative_times_and_offsets_work() {
        let mut w = MinWindow::default();
        assert_eq!(w.add(-1, -45_000_000), -45_000_000);
        assert_eq!(w.add(0, -44_000_000), -45_000_000);
    }

    #[test]
    fn injected_offset_shifts_now() {
        let clock = Clock::new(45_000);
        let real = TimestampUs::now().micros();
        let skewed = clock.now().micros();
        // Between the two readings less than a few seconds pass on any machine.
        assert!((skewed - real - 45_000_000).abs() < 5_000_000);
    }

    #[test]
    fn converted_receive_times_never_precede_send_times() {
        // A clock 45 s ahead; latencies between 2 ms and 40 ms.
        let clock = Clock::new(0);
        let offset = 45_000_000;
        let sends = [1_000_000_i64, 1_010_000, 1_020_000, 1_030_000, 1_040_000];
        let latencies = [40_000_i64, 2_000, 17_000, 9_000, 30_000];
        assert_eq!(clock.offset_us(), None);
        assert_eq!(
            clock.to_exchange(ts(5)),
            ts(5),
            "unchanged before an estimate"
        );
        for (s, l) in sends.iter().zip(latencies) {
            clock.observe(ts(s + l + offset), ts(*s));
        }
        assert_eq!(clock.offset_us(), Some(offset + 2_000));
        for (s, l) in sends.iter().zip(latencies) {
            let converted = clock.to_exchange(ts(s + l + offset)).micros();
            assert!(converted >= *s, "converted {converted} before send {s}");
            assert!(
                converted <= s + l,
                "converted {converted} after true receipt"
            );
        }
    }

    #[test]
    fn a_clock_behind_gives_a_negative_estimate_and_a_warning() {
        let clock = Clock::new(0);
        clock.observe(ts(10_000_000 - 45_000_000 + 3_000), ts(10_000_000));
        assert_eq!(clock.offset_us(), Some(-45_000_000 + 3_000));
        assert!(clock.offset_warning());
        assert_eq!(
            clock.to_exchange(ts(10_000_000 - 45_000_000 + 3_000)),
            ts(10_000_000)
        );
    }

    #[test]
    fn a_small_offset_is_no_warning() {
        let clock = Clock::new(0);
        clock.observe(ts(10_000_500), ts(10_000_000));
        assert!(!clock.offset_warning());
    }

    #[tokio::test]
    async fn estimated_wakes_on_the_first_sample() {
        let clock = std::sync::Arc::new(Clock::new(0));
        let waiter = {
            let clock = clock.clone();
            tokio::spawn(async move { clock.estimated().await })
        };
        tokio::task::yield_now().await;
        clock.observe(ts(2_000), ts(1_000));
        let done = tokio::time::timeout(std::time::Duration::from_secs(5), waiter).await;
        assert!(matches!(done, Ok(Ok(()))));
    }
}
