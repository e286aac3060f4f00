//! The live state behind `/health` and the gauges: each gatherer's reachability and lag per
//! table, production connectivity, last sync.
//!
//! Lag of a (gatherer, table): the age of the oldest row the deduplicator knows the gatherer
//! holds and production does not — from the first pull whose head showed that row to now;
//! 0 when the committed cursor equals the gatherer's head. During a production outage it
//! grows from the outage's start. (Until 2026-12-04 it was the time since the cursor last
//! equalled the head: under a steady stream the head is always a little ahead, so it grew
//! without bound — 2.7 s at 10,000 msg/s while rows reached production in 0.3 s at p99.)

use crate::metrics as m;
use kd_core::{Table, TimestampUs};
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

/// Head observations kept per table; beyond, the newest is widened (its time kept), which
/// can only make the lag read older, never younger.
const MAX_SEEN: usize = 1024;

#[derive(Debug, Default)]
struct TableState {
    /// Result of the latest pull: `None` before the first.
    reachable: Option<bool>,
    committed: u64,
    head: u64,
    /// Heads above `committed`, ascending, each with when a pull first showed it: the front's
    /// time is when the oldest uncommitted row was first known to exist.
    seen: VecDeque<(u64, TimestampUs)>,
}

impl TableState {
    fn saw_head(&mut self, head: u64, now: TimestampUs) {
        if head <= self.committed || self.seen.back().is_some_and(|(h, _)| *h >= head) {
            return;
        }
        if self.seen.len() >= MAX_SEEN
            && let Some(last) = self.seen.back_mut()
        {
            last.0 = head;
            return;
        }
        self.seen.push_back((head, now));
    }

    fn committed_to(&mut self, seq: u64) {
        while self.seen.front().is_some_and(|(h, _)| *h <= seq) {
            self.seen.pop_front();
        }
    }
}

#[derive(Debug)]
struct GathererState {
    id: String,
    url: String,
    last_error: Option<String>,
    last_ok: Option<TimestampUs>,
    tables: BTreeMap<Table, TableState>,
}

#[derive(Debug, Default)]
struct State {
    gatherers: Vec<GathererState>,
    production_connected: bool,
    production_error: Option<String>,
    production_backend: &'static str,
    last_sync: Option<TimestampUs>,
    ready: bool,
    /// Rows in production's `quarantine`, per table (loaded at start, then counted).
    quarantined: BTreeMap<Table, u64>,
    last_quarantine: Option<String>,
}

/// Shared health state (cheap, short critical sections).
#[derive(Debug, Default)]
pub struct Health {
    state: Mutex<State>,
}

/// One table of one gatherer in `/health`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TableReport {
    pub reachable: Option<bool>,
    /// Last sequence committed in production.
    pub committed: u64,
    /// Last sequence the gatherer reported.
    pub head: u64,
    pub lag_rows: u64,
    pub lag_seconds: f64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct GathererReport {
    pub id: String,
    pub url: String,
    /// `up`, `degraded` (some tables failing), `down`, or `unknown` before the first pull.
    pub state: &'static str,
    pub last_error: Option<String>,
    pub last_ok: Option<String>,
    pub tables: BTreeMap<Table, TableReport>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ProductionReport {
    pub backend: &'static str,
    pub connected: bool,
    pub last_error: Option<String>,
}

/// The `/health` document.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HealthReport {
    /// `ok`, `degraded` (a gatherer down), or `down` (production unreachable or no gatherer up).
    pub status: &'static str,
    pub ready: bool,
    pub production: ProductionReport,
    pub last_sync: Option<String>,
    pub gatherers: Vec<GathererReport>,
    /// Rows in production's `quarantine` table per table (refused by production, or unreadable
    /// in a gatherer's store); each one's reason is in the table.
    pub quarantine: QuarantineReport,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct QuarantineReport {
    pub total: u64,
    pub tables: BTreeMap<Table, u64>,
    /// The reason of the latest row this process filed.
    pub last_reason: Option<String>,
}

fn lag_seconds(t: &TableState, now: TimestampUs) -> f64 {
    match t.seen.front() {
        Some((_, since)) if t.head > t.committed => {
            // Display only: microseconds to seconds for a gauge, never used in arithmetic.
            (now.micros().saturating_sub(since.micros())).max(0) as f64 / 1e6
        }
        _ => 0.0,
    }
}

impl GathererState {
    fn state(&self) -> &'static str {
        let known: Vec<bool> = self.tables.values().filter_map(|t| t.reachable).collect();
        if known.is_empty() {
            "unknown"
        } else if known.iter().all(|ok| *ok) {
            "up"
        } else if known.iter().all(|ok| !*ok) {
            "down"
        } else {
            "degraded"
        }
    }
}

impl Health {
    /// Registers the gatherers (in configuration order) and the production backend.
    pub fn new(gatherers: &[(String, String)], backend: &'static str) -> Health {
        let gatherers = gatherers
            .iter()
            .map(|(id, url)| GathererState {
                id: id.clone(),
                url: url.clone(),
                last_error: None,
                last_ok: None,
                tables: Table::ALL
                    .iter()
                    .map(|t| (*t, TableState::default()))
                    .collect(),
            })
            .collect();
        Health {
            state: Mutex::new(State {
                gatherers,
                production_backend: backend,
                ..State::default()
            }),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        // A poisoned lock only means a panic elsewhere mid-update; the figures stay usable.
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    fn table_update(
        &self,
        g: usize,
        table: Table,
        f: impl FnOnce(&mut GathererState, &mut TableState),
    ) {
        self.with(|s| {
            let Some(gs) = s.gatherers.get_mut(g) else {
                return;
            };
            let mut ts = gs.tables.remove(&table).unwrap_or_default();
            let before = (ts.head, ts.committed);
            f(gs, &mut ts);
            let now = TimestampUs::now();
            // A replaced store numbers its rows anew: what was seen of the old one says nothing
            // about the new one's rows (kept, it would age for ever behind a cursor that now
            // counts from 0).
            if ts.head < before.0 || ts.committed < before.1 {
                ts.seen.clear();
            }
            ts.committed_to(ts.committed);
            let head = ts.head;
            ts.saw_head(head, now);
            metrics::gauge!(m::SYNC_LAG_SECONDS, "gatherer" => gs.id.clone(), "table" => table.name())
                .set(lag_seconds(&ts, now));
            gs.tables.insert(table, ts);
            let up = if gs.state() == "up" { 1.0 } else { 0.0 };
            metrics::gauge!(m::GATHERER_HEALTH, "gatherer" => gs.id.clone()).set(up);
        });
    }

    /// Sets every sync-lag gauge at the current time, before `/metrics` is rendered. The
    /// gauges were set only on a pull or a commit, so while production was down (nothing
    /// committed, the pullers blocked behind a full queue) the lag froze at its last value
    /// (17.5 s in the live alert test) and DedupSyncStalled could never fire.
    pub fn refresh_lag_gauges(&self) {
        self.with(|s| {
            let now = TimestampUs::now();
            for gs in &s.gatherers {
                for (table, ts) in &gs.tables {
                    metrics::gauge!(m::SYNC_LAG_SECONDS, "gatherer" => gs.id.clone(), "table" => table.name())
                        .set(lag_seconds(ts, now));
                }
            }
        });
    }

    /// The cursor found in production at start.
    pub fn initial_cursor(&self, g: usize, table: Table, seq: u64) {
        self.table_update(g, table, |_, t| t.committed = seq);
    }

    pub fn pull_ok(&self, g: usize, table: Table, head: u64) {
        self.table_update(g, table, |gs, t| {
            t.reachable = Some(true);
            t.head = head;
            gs.last_ok = Some(TimestampUs::now());
        });
    }

    pub fn pull_failed(&self, g: usize, table: Table, error: String) {
        self.table_update(g, table, |gs, t| {
            t.reachable = Some(false);
            gs.last_error = Some(error);
        });
    }

    pub fn committed(&self, g: usize, table: Table, seq: u64) {
        self.table_update(g, table, |_, t| {
            t.committed = seq;
            t.head = t.head.max(seq);
        });
    }

    /// Production answered (a commit, a ping, a migration).
    pub fn production_ok(&self) {
        self.with(|s| {
            s.production_connected = true;
            s.production_error = None;
        });
        metrics::gauge!(m::RDS_CONNECTED).set(1.0);
    }

    pub fn production_failed(&self, error: String) {
        self.with(|s| {
            s.production_connected = false;
            s.production_error = Some(error);
        });
        metrics::gauge!(m::RDS_CONNECTED).set(0.0);
    }

    /// What production's `quarantine` holds at start.
    pub fn quarantine_loaded(&self, counts: &kd_production::QuarantineCounts) {
        self.with(|s| {
            for (name, n) in counts {
                if let Some(t) = Table::parse(name) {
                    s.quarantined.insert(t, *n);
                }
            }
        });
    }

    /// Rows newly filed in `quarantine`.
    pub fn quarantined(&self, table: Table, rows: u64, reason: &str) {
        self.with(|s| {
            *s.quarantined.entry(table).or_default() += rows;
            s.last_quarantine = Some(reason.to_string());
        });
    }

    pub fn synced(&self) {
        self.with(|s| s.last_sync = Some(TimestampUs::now()));
    }

    /// The store is open and migrated: `/ready` answers 200.
    pub fn set_ready(&self) {
        self.with(|s| s.ready = true);
    }

    pub fn is_ready(&self) -> bool {
        self.with(|s| s.ready && s.production_connected)
    }

    pub fn report(&self) -> HealthReport {
        let now = TimestampUs::now();
        self.with(|s| {
            let gatherers: Vec<GathererReport> = s
                .gatherers
                .iter()
                .map(|g| GathererReport {
                    id: g.id.clone(),
                    url: g.url.clone(),
                    state: g.state(),
                    last_error: g.last_error.clone(),
                    last_ok: g.last_ok.map(|t| t.to_rfc3339()),
                    tables: g
                        .tables
                        .iter()
                        .map(|(table, t)| {
                            (
                                *table,
                                TableReport {
                                    reachable: t.reachable,
                                    committed: t.committed,
                                    head: t.head,
                                    lag_rows: t.head.saturating_sub(t.committed),
                                    lag_seconds: lag_seconds(t, now),
                                },
                            )
                        })
                        .collect(),
                })
                .collect();
            let any_up = gatherers.iter().any(|g| g.state == "up");
            let all_up = gatherers.iter().all(|g| g.state == "up");
            let status = if !s.production_connected || !any_up {
                "down"
            } else if all_up {
                "ok"
            } else {
                "degraded"
            };
            HealthReport {
                status,
                ready: s.ready && s.production_connected,
                production: ProductionReport {
                    backend: s.production_backend,
                    connected: s.production_connected,
                    last_error: s.production_error.clone(),
                },
                last_sync: s.last_sync.map(|t| t.to_rfc3339()),
                gatherers,
                quarantine: QuarantineReport {
                    total: s.quarantined.values().sum(),
                    tables: s.quarantined.clone(),
                    last_reason: s.last_quarantine.clone(),
                },
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_is_the_age_of_the_oldest_uncommitted_row() {
        let at = |s: i64| TimestampUs::from_micros(s * 1_000_000);
        let mut t = TableState::default();
        // A steady stream: the head is always ahead of the cursor, yet every row commits
        // within a second of being seen; the lag stays there instead of growing.
        for s in 0..100_i64 {
            let head = (s as u64 + 1) * 10;
            t.head = head;
            t.saw_head(head, at(s));
            t.committed = head.saturating_sub(10);
            t.committed_to(t.committed);
            let half_later = TimestampUs::from_micros(at(s).micros() + 500_000);
            assert_eq!(lag_seconds(&t, half_later), 0.5);
        }
        // Nothing commits (production down): the oldest uncommitted row keeps ageing.
        t.saw_head(2_000, at(100));
        assert_eq!(lag_seconds(&t, at(160)), 61.0);
        // Caught up: 0.
        t.committed = 2_000;
        t.committed_to(2_000);
        assert_eq!(lag_seconds(&t, at(161)), 0.0);
        // The observation memory is bounded and only errs towards an older lag.
        for s in 0..5_000_u64 {
            t.head = 2_001 + s;
            t.saw_head(2_001 + s, at(200 + s as i64));
        }
        assert_eq!(t.seen.len(), MAX_SEEN);
        assert_eq!(lag_seconds(&t, at(5_300)), 5_100.0);
    }

    #[test]
    fn a_replaced_store_does_not_inherit_the_old_stores_lag() {
        let h = Health::new(&[("a".into(), "http://a".into())], "sqlite");
        h.pull_ok(0, Table::Deltas, 1_000);
        h.committed(0, Table::Deltas, 500);
        // The store is replaced: its head is far below the cursor, and the cursor restarts.
        h.pull_ok(0, Table::Deltas, 20);
        h.committed(0, Table::Deltas, 10);
        h.pull_ok(0, Table::Deltas, 20);
        h.committed(0, Table::Deltas, 20);
        let r = h.report();
        assert_eq!(r.gatherers[0].tables[&Table::Deltas].lag_rows, 0);
        assert_eq!(r.gatherers[0].tables[&Table::Deltas].lag_seconds, 0.0);
        // Behind again on the new store: the lag counts from the new rows' first sighting,
        // not from the old store's head 1,000 (which the new cursor would pass only after
        // 1,000 rows).
        h.pull_ok(0, Table::Deltas, 40);
        let oldest = h.with(|s| {
            s.gatherers[0].tables[&Table::Deltas]
                .seen
                .front()
                .map(|x| x.0)
        });
        assert_eq!(oldest, Some(40));
    }

    #[test]
    fn states_and_lag_follow_pulls_and_commits() {
        let h = Health::new(
            &[
                ("a".into(), "http://a".into()),
                ("b".into(), "http://b".into()),
            ],
            "sqlite",
        );
        assert_eq!(h.report().status, "down");
        assert_eq!(h.report().gatherers[0].state, "unknown");
        h.production_ok();
        for t in Table::ALL {
            h.pull_ok(0, t, 0);
        }
        h.pull_failed(1, Table::Trades, "refused".into());
        let r = h.report();
        assert_eq!(r.status, "degraded");
        assert_eq!(r.gatherers[0].state, "up");
        assert_eq!(r.gatherers[1].state, "down");
        h.pull_ok(0, Table::Deltas, 10);
        let r = h.report();
        assert_eq!(r.gatherers[0].tables[&Table::Deltas].lag_rows, 10);
        h.committed(0, Table::Deltas, 10);
        let r = h.report();
        assert_eq!(r.gatherers[0].tables[&Table::Deltas].lag_rows, 0);
        assert_eq!(r.gatherers[0].tables[&Table::Deltas].lag_seconds, 0.0);
        h.quarantined(Table::Trades, 2, "not storable");
        let r = h.report();
        assert_eq!(
            (r.quarantine.total, r.quarantine.tables[&Table::Trades]),
            (2, 2)
        );
        h.production_failed("gone".into());
        assert_eq!(h.report().status, "down");
        assert!(!h.is_ready());
    }
}
