//! Rows that must not block their table: found, filed in production's `quarantine` with their
//! reason, and passed by the cursor.
//!
//! Three ways a row gets here:
//! - `unreadable`: the gatherer could not read it back from its store (it answers such rows as
//!   quarantine entries, `kd_core::pull::QuarantinedRow`).
//! - `not_storable`: it fails [`kd_core::validate::storable`] — a time neither backend can file
//!   (PostgreSQL has no partition for it; SQLite would keep it and every reader would choke),
//!   or a control character in an identifying string. Checked before every insert, so both
//!   backends quarantine the same rows.
//! - `refused`: production refused the batch for its data ([`StoreError::refuses_data`]); the
//!   batch is split in halves, without cursors, until the refused rows are single
//!   ([`isolate`]). Halves that commit are in production (a later copy is absorbed as a
//!   duplicate), so isolating costs O(bad × log n) transactions and loses nothing.
//!
//! A quarantine row is written before the transaction that moves the cursor past it, and
//! filing it twice adds nothing, so a crash in between replays into the same state: nothing
//! is acknowledged to a gatherer (which may then delete it) before it is in production or here.

use crate::events::{ErrorKind, InternalEvent, ProductionWriteFailed, RowsQuarantined};
use crate::merge::{Merged, Source};
use crate::sync::SyncContext;
use kd_core::backoff::{Backoff, BackoffPolicy};
use kd_core::{Record, Table};
use kd_production::{QuarantineRow, StoreError};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Why a row is quarantined, as the `reason` label of `dedup_quarantined_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cause {
    Unreadable,
    NotStorable,
    Refused,
}

impl Cause {
    pub(crate) const fn label(self) -> &'static str {
        match self {
            Cause::Unreadable => "unreadable",
            Cause::NotStorable => "not_storable",
            Cause::Refused => "refused",
        }
    }
}

fn row(
    ctx: &SyncContext,
    table: Table,
    source: &Source,
    reason: String,
    body: String,
) -> QuarantineRow {
    QuarantineRow {
        gatherer: ctx.clients[source.gatherer].id().to_string(),
        table,
        store_id: source.store_id.to_string(),
        seq: source.seq,
        reason,
        body,
    }
}

fn record_body(record: &Record) -> String {
    serde_json::to_string(record).unwrap_or_else(|e| format!("(not serialisable: {e})"))
}

/// Takes the gatherers' unreadable rows and the records that are not storable out of
/// `merged`; returns them as quarantine rows (unreadable first).
pub(crate) fn screen(
    ctx: &SyncContext,
    table: Table,
    merged: &mut Merged,
) -> Vec<(Cause, QuarantineRow)> {
    let mut out: Vec<(Cause, QuarantineRow)> = merged
        .unreadable
        .drain(..)
        .map(|(source, q)| {
            (
                Cause::Unreadable,
                row(ctx, table, &source, q.reason, q.body),
            )
        })
        .collect();
    if merged
        .records
        .iter()
        .all(|r| kd_core::validate::storable(r).is_ok())
    {
        return out;
    }
    let mut keep = Vec::with_capacity(merged.records.len());
    for (i, r) in merged.records.iter().enumerate() {
        match kd_core::validate::storable(r) {
            Ok(()) => keep.push(true),
            Err(e) => {
                keep.push(false);
                out.push((
                    Cause::NotStorable,
                    row(
                        ctx,
                        table,
                        &merged.sources[i],
                        format!("not storable: {e}"),
                        record_body(r),
                    ),
                ));
            }
        }
    }
    retain(merged, &keep);
    out
}

/// Keeps the records (with their origin and source) whose `keep` is true.
pub(crate) fn retain(merged: &mut Merged, keep: &[bool]) {
    let mut i = 0;
    merged.records.retain(|_| {
        i += 1;
        keep[i - 1]
    });
    let mut i = 0;
    merged.origins.retain(|_| {
        i += 1;
        keep[i - 1]
    });
    let mut i = 0;
    merged.sources.retain(|_| {
        i += 1;
        keep[i - 1]
    });
}

/// Files `rows`, retrying forever like any production write; `None` on shutdown.
pub(crate) async fn file(
    ctx: &SyncContext,
    table: Table,
    rows: Vec<(Cause, QuarantineRow)>,
    shutdown: &CancellationToken,
) -> Option<()> {
    if rows.is_empty() {
        return Some(());
    }
    let only: Vec<QuarantineRow> = rows.iter().map(|(_, r)| r.clone()).collect();
    let mut backoff = Backoff::new(BackoffPolicy::DATABASE);
    loop {
        let attempt = tokio::select! {
            r = ctx.store.quarantine(&only) => r,
            _ = shutdown.cancelled() => return None,
        };
        match attempt {
            Ok(_) => break,
            Err(e) => {
                let error = e.to_string();
                ctx.health.production_failed(error.clone());
                let delay = backoff.next_delay();
                ProductionWriteFailed {
                    table,
                    rows: only.len(),
                    kind: ErrorKind::from(e.kind()),
                    error: &error,
                    retry_in: delay,
                }
                .emit();
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.cancelled() => return None,
                }
            }
        }
    }
    for cause in [Cause::Unreadable, Cause::NotStorable, Cause::Refused] {
        let of: Vec<&QuarantineRow> = rows
            .iter()
            .filter(|(c, _)| *c == cause)
            .map(|(_, r)| r)
            .collect();
        if let Some(first) = of.first() {
            RowsQuarantined {
                table,
                reason_kind: cause.label(),
                rows: of.len() as u64,
                reason: &first.reason,
            }
            .emit();
            ctx.health
                .quarantined(table, of.len() as u64, &first.reason);
        }
    }
    Some(())
}

/// What [`isolate`] found.
pub(crate) struct Isolated {
    /// Indexes into the batch of the rows refused on their own, with the refusal.
    pub refused: Vec<(usize, String)>,
    /// Rows the halves that committed inserted.
    pub inserted: u64,
}

/// Splits `records` in halves (inserted without cursors) until every refused row stands
/// alone. An error that is not a refusal of data (an outage, a timeout) ends the search:
/// the caller retries the whole batch later.
pub(crate) async fn isolate(
    ctx: &SyncContext,
    table: Table,
    records: &[Record],
    origins: &[&str],
    timeout: Duration,
) -> Result<Isolated, String> {
    let mut found = Isolated {
        refused: Vec::new(),
        inserted: 0,
    };
    let mut ranges = vec![(0, records.len())];
    while let Some((lo, hi)) = ranges.pop() {
        if lo >= hi {
            continue;
        }
        let attempt = tokio::time::timeout(
            timeout,
            ctx.store
                .insert_merged(table, &records[lo..hi], &origins[lo..hi], &[]),
        )
        .await;
        match attempt {
            Ok(Ok(outcome)) => found.inserted += outcome.inserted,
            Ok(Err(e)) if refused(&e) => {
                if hi - lo == 1 {
                    found.refused.push((lo, e.to_string()));
                } else {
                    let mid = lo + (hi - lo) / 2;
                    // Lower half first (popped last-in first-out).
                    ranges.push((mid, hi));
                    ranges.push((lo, mid));
                }
            }
            Ok(Err(e)) => return Err(e.to_string()),
            Err(_) => return Err("transaction timed out while isolating".into()),
        }
    }
    Ok(found)
}

pub(crate) fn refused(e: &StoreError) -> bool {
    e.refuses_data()
}

/// The quarantine rows of the records [`isolate`] found refused.
pub(crate) fn refused_rows(
    ctx: &SyncContext,
    table: Table,
    merged: &Merged,
    refused: &[(usize, String)],
) -> Vec<(Cause, QuarantineRow)> {
    refused
        .iter()
        .filter_map(|(i, reason)| {
            let record = merged.records.get(*i)?;
            let source = merged.sources.get(*i)?;
            Some((
                Cause::Refused,
                row(
                    ctx,
                    table,
                    source,
                    format!("refused by production: {reason}"),
                    record_body(record),
                ),
            ))
        })
        .collect()
}
