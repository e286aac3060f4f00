//! Shared liveness figures: written by the stages, read by `/health`, `/ready` and tests.

use crate::clock::Clock;
use crate::store::Heads;
use kd_core::{Table, TimestampUs};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};

/// Figures every stage updates. Cheap atomics so the hot path can write them freely.
#[derive(Debug, Default)]
pub struct Health {
    /// Connections open and subscribed.
    pub connections_up: AtomicUsize,
    /// Connections configured.
    pub connections_total: AtomicUsize,
    /// Markets the registry considers active.
    pub markets_known: AtomicUsize,
    /// Markets subscribed to `orderbook_delta`.
    pub markets_subscribed: AtomicUsize,
    /// Receive time (µs) of the last data frame, 0 before the first.
    pub last_message_us: AtomicI64,
    /// The registry has completed its first full sync.
    pub registry_synced: AtomicBool,
    /// A component halted (bad credentials): needs a human.
    pub halted: AtomicBool,
    /// Wall time (µs) the writer's loop last went round — a batch filled, committed, or a
    /// failed commit retried. The systemd watchdog pings only while this is recent.
    pub writer_beat_us: AtomicI64,
    store: Mutex<StoreFigures>,
    /// Why the store refuses writes (disk full, I/O error), while it does.
    store_error: Mutex<Option<String>>,
}

#[derive(Debug, Default, Clone, Copy)]
struct StoreFigures {
    heads: Heads,
    acks: Heads,
    disk_bytes: u64,
}

/// The `/health` document.
#[derive(Debug, Serialize)]
pub struct HealthReport {
    /// `ok` (all connections up, data flowing), `degraded`, `down`, `store_failing` (commits
    /// fail: `store.error` says why; received data waits in memory, then is dropped as gaps)
    /// or `halted`.
    pub status: &'static str,
    pub gatherer: String,
    pub connections_up: usize,
    pub connections_total: usize,
    pub markets_known: usize,
    pub markets_subscribed: usize,
    /// Milliseconds since the last data frame; `None` before the first.
    pub last_message_age_ms: Option<i64>,
    pub clock: ClockReport,
    pub store: StoreReport,
}

/// How this gatherer's clock compares with the exchange's (see `crate::clock`).
#[derive(Debug, Serialize)]
pub struct ClockReport {
    /// Estimated local − exchange offset in milliseconds (including the smallest recent
    /// latency); `None` before the first timed message.
    pub offset_ms: Option<i64>,
    /// The estimate is beyond the warning limit (1 s): check the host's time sync.
    pub warning: bool,
}

#[derive(Debug, Serialize)]
pub struct StoreReport {
    pub disk_bytes: u64,
    /// Why commits are failing (`disk full: …`), `None` while the store takes writes.
    pub error: Option<String>,
    pub tables: BTreeMap<&'static str, TableReport>,
}

#[derive(Debug, Serialize)]
pub struct TableReport {
    /// Highest committed local sequence number.
    pub head: u64,
    /// Highest sequence acknowledged by the deduplicator.
    pub acked: u64,
    /// Rows committed and not yet acknowledged.
    pub depth: u64,
}

/// Data older than this makes a connected gatherer `degraded`.
const STALE_MS: i64 = 30_000;

impl Health {
    pub fn set_store(&self, heads: Heads, acks: Heads, disk_bytes: u64) {
        if let Ok(mut s) = self.store.lock() {
            *s = StoreFigures {
                heads,
                acks,
                disk_bytes,
            };
        }
    }

    pub fn set_heads(&self, heads: Heads) {
        if let Ok(mut s) = self.store.lock() {
            s.heads = heads;
        }
    }

    /// Sets (or, with `None`, clears) why the store refuses writes.
    pub fn set_store_error(&self, error: Option<String>) {
        if let Ok(mut e) = self.store_error.lock() {
            *e = error;
        }
    }

    /// Why the store refuses writes, if it does.
    pub fn store_error(&self) -> Option<String> {
        self.store_error.lock().ok().and_then(|e| e.clone())
    }

    pub fn note_message(&self, at: TimestampUs) {
        self.last_message_us.store(at.micros(), Ordering::Relaxed);
    }

    /// Whether the gatherer is collecting: store taking writes, market list known, a
    /// connection up.
    pub fn ready(&self) -> bool {
        !self.halted.load(Ordering::Relaxed)
            && self.store_error().is_none()
            && self.registry_synced.load(Ordering::Relaxed)
            && self.connections_up.load(Ordering::Relaxed) > 0
    }

    /// The `/health` document at local time `now` (the gatherer's clock).
    pub fn report(&self, gatherer: &str, now: TimestampUs, clock: &Clock) -> HealthReport {
        let up = self.connections_up.load(Ordering::Relaxed);
        let total = self.connections_total.load(Ordering::Relaxed);
        let last = self.last_message_us.load(Ordering::Relaxed);
        let age = (last > 0).then(|| (now.micros() - last) / 1_000);
        let store_error = self.store_error();
        let status = if self.halted.load(Ordering::Relaxed) {
            "halted"
        } else if store_error.is_some() {
            "store_failing"
        } else if up == 0 {
            "down"
        } else if up < total || age.is_none_or(|a| a > STALE_MS) {
            "degraded"
        } else {
            "ok"
        };
        let figures = self.store.lock().map(|s| *s).unwrap_or_default();
        let tables = Table::ALL
            .into_iter()
            .map(|t| {
                let head = figures.heads.get(t);
                let acked = figures.acks.get(t);
                (
                    t.name(),
                    TableReport {
                        head,
                        acked,
                        depth: head.saturating_sub(acked),
                    },
                )
            })
            .collect();
        HealthReport {
            status,
            gatherer: gatherer.to_string(),
            connections_up: up,
            connections_total: total,
            markets_known: self.markets_known.load(Ordering::Relaxed),
            markets_subscribed: self.markets_subscribed.load(Ordering::Relaxed),
            last_message_age_ms: age,
            clock: ClockReport {
                offset_ms: clock.offset_us().map(|us| us.div_euclid(1_000)),
                warning: clock.offset_warning(),
            },
            store: StoreReport {
                disk_bytes: figures.disk_bytes,
                error: store_error,
                tables,
            },
        }
    }
}
