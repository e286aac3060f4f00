//! The sync loop: per table, one puller per gatherer and one writer.
//!
//! ```text
//!  gatherer-a ──puller──┐
//!  gatherer-b ──puller──┼──(bounded channel)──▶ writer ──▶ production (one transaction:
//!  gatherer-c ──puller──┘                         │          rows + every cursor moved)
//!        ▲                                        │
//!        └────────── ack after commit ◀───────────┘ (watch of the committed cursor)
//! ```
//!
//! - A puller reads its gatherer from the cursor stored in production, in large batches back
//!   to back while behind (catch-up), and with a long-poll once current. An unreachable gatherer
//!   only stalls its own pullers (backoff up to `gatherer_retry_max_ms`); the others carry on.
//! - The writer takes whatever batches are waiting (up to `max_transaction_rows`; when current,
//!   it waits up to `merge_window_ms` for the other gatherers' copies), merges them
//!   dropping duplicate identities, and commits the survivors and the cursors of every gatherer
//!   that contributed in one transaction. It is two tasks: a merger and a committer with one
//!   merged batch between them, so batch n+1 is merged while batch n is being written.
//!   Production failures are retried forever with the DATABASE backoff; meanwhile the bounded
//!   channels fill, pullers wait and the gatherers keep buffering. Nothing is acknowledged
//!   before its commit, so a crash anywhere replays.

use crate::config::DedupConfig;
use crate::events::{
    AckFailed, BatchCommitted, ErrorKind, GathererReachable, GathererReset, InternalEvent,
    ProductionReachable, ProductionWriteFailed, PullFailed, RecordsPolled,
};
use crate::health::Health;
use crate::merge::{Batch, Merged, RecentIdentities, merge_with};
use crate::progress::{self, Board, Claims};
use crate::pull_client::PullClient;
use crate::quarantine;
use kd_core::backoff::{Backoff, BackoffPolicy};
use kd_core::{Table, TimestampUs};
use kd_production::{CursorUpdate, InsertOutcome, Store};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// What the pullers and writers share.
pub(crate) struct SyncContext {
    pub store: Store,
    pub health: Arc<Health>,
    pub clients: Vec<PullClient>,
    pub config: Arc<DedupConfig>,
    /// Proved completeness per gatherer and table, written to `sync_progress`.
    pub progress: Arc<Board>,
}

/// Batches waiting per table before pullers block (per gatherer).
const QUEUED_BATCHES_PER_GATHERER: usize = 2;

/// A committed cursor: the store it counts in and the sequence.
type Committed = (Arc<str>, u64);

/// Spawns every puller and writer into `tasks`, starting from `cursors` (each counting in the
/// store `stores` names, `""` when unknown).
pub(crate) fn spawn(
    ctx: Arc<SyncContext>,
    cursors: &HashMap<(String, Table), u64>,
    stores: &HashMap<(String, Table), String>,
    tasks: &mut JoinSet<()>,
    shutdown: &CancellationToken,
) {
    tasks.spawn(progress::writer(
        ctx.store.clone(),
        Arc::clone(&ctx.progress),
        shutdown.clone(),
    ));
    for table in Table::ALL {
        let capacity = QUEUED_BATCHES_PER_GATHERER * ctx.clients.len().max(1);
        let (tx, rx) = mpsc::channel::<Batch>(capacity);
        let mut committed = Vec::with_capacity(ctx.clients.len());
        for (g, client) in ctx.clients.iter().enumerate() {
            let start = cursors
                .get(&(client.id().to_string(), table))
                .copied()
                .unwrap_or(0);
            let store: Arc<str> = stores
                .get(&(client.id().to_string(), table))
                .map(|s| Arc::from(s.as_str()))
                .unwrap_or_default();
            ctx.health.initial_cursor(g, table, start);
            let (c_tx, c_rx) = watch::channel((Arc::clone(&store), start));
            committed.push(c_tx);
            tasks.spawn(puller(
                Arc::clone(&ctx),
                g,
                table,
                (store, start),
                tx.clone(),
                c_rx,
                shutdown.clone(),
            ));
        }
        drop(tx);
        tasks.spawn(writer(
            Arc::clone(&ctx),
            table,
            rx,
            committed,
            shutdown.clone(),
        ));
    }
}

async fn puller(
    ctx: Arc<SyncContext>,
    g: usize,
    table: Table,
    (mut store, start): Committed,
    out: mpsc::Sender<Batch>,
    mut committed: watch::Receiver<Committed>,
    shutdown: CancellationToken,
) {
    let client = &ctx.clients[g];
    let cfg = &ctx.config;
    let gatherer = client.id().to_string();
    let mut after = start;
    let mut acked = start;
    let mut behind = true;
    // Complete answers whose rows are not all committed yet (see `crate::progress`).
    let mut claims = Claims::default();
    let margin = Duration::from_millis(cfg.progress_clock_margin_ms);
    let mut backoff = Backoff::new(BackoffPolicy::new(
        Duration::from_millis(cfg.gatherer_retry_ms),
        Duration::from_millis(cfg.gatherer_retry_max_ms),
    ));
    while !shutdown.is_cancelled() {
        let (done_store, done) = committed.borrow_and_update().clone();
        if done_store == store
            && let Some(through) = claims.prove(done)
        {
            ctx.progress.publish(&gatherer, table, through);
        }
        // Only a cursor of the store we read now: acknowledging a replaced store's cursor to
        // its successor would let it delete rows production does not have.
        if done > acked && done_store == store {
            match client.ack(table, done).await {
                Ok(()) => acked = done,
                // Harmless: the next ack covers it, and until then the gatherer keeps the rows.
                Err(e) => AckFailed {
                    gatherer: &gatherer,
                    table,
                    error: &e,
                }
                .emit(),
            }
        }
        let wait_ms = if behind { 0 } else { cfg.long_poll_ms };
        // Read before the request leaves: the answer covers every row committed before this.
        let requested_at = TimestampUs::now();
        let pulled = tokio::select! {
            r = client.pull(table, after, cfg.batch_size, wait_ms) => r,
            _ = shutdown.cancelled() => return,
        };
        match pulled {
            Ok(resp) => {
                if backoff.attempts() > 0 {
                    GathererReachable {
                        gatherer: &gatherer,
                        table,
                    }
                    .emit();
                }
                backoff.reset();
                ctx.health.pull_ok(g, table, resp.head);
                // A new store id: the store was replaced (our cursor counts in the old one,
                // whatever the new one's numbers). A head below the cursor: the same, from a
                // gatherer that names no store. Either way read it again from the start;
                // duplicates are absorbed. An unknown id (a cursor from before store ids) is
                // taken as the current one.
                let replaced =
                    !resp.store_id.is_empty() && !store.is_empty() && *resp.store_id != *store;
                if replaced || (resp.head < after && resp.rows() == 0) {
                    GathererReset {
                        gatherer: &gatherer,
                        table,
                        head: resp.head,
                        cursor: after,
                        old_store: &store,
                        new_store: &resp.store_id,
                    }
                    .emit();
                    if !resp.store_id.is_empty() {
                        store = Arc::from(resp.store_id.as_str());
                    }
                    after = 0;
                    acked = 0;
                    behind = true;
                    claims.clear();
                    continue;
                }
                if store.is_empty() && !resp.store_id.is_empty() {
                    store = Arc::from(resp.store_id.as_str());
                }
                let n = resp.rows();
                RecordsPolled {
                    gatherer: &gatherer,
                    table,
                    rows: n,
                }
                .emit();
                let through = TimestampUs::from_micros(
                    requested_at
                        .micros()
                        .saturating_sub(i64::try_from(margin.as_micros()).unwrap_or(i64::MAX)),
                );
                let Some(last) = resp.last_seq() else {
                    behind = false;
                    // Nothing new: every row before the request is at or below our cursor.
                    if resp.head <= after {
                        claims.claim(after, through);
                    }
                    continue;
                };
                after = last;
                behind = n >= cfg.batch_size || resp.head > last;
                if !behind {
                    claims.claim(last, through);
                }
                let batch = Batch {
                    gatherer: g,
                    records: resp.records,
                    store_id: Arc::clone(&store),
                    quarantined: resp.quarantined,
                };
                tokio::select! {
                    sent = out.send(batch) => if sent.is_err() { return },
                    _ = shutdown.cancelled() => return,
                }
            }
            Err(e) => {
                ctx.health.pull_failed(g, table, e.to_string());
                let delay = backoff.next_delay();
                PullFailed {
                    gatherer: &gatherer,
                    table,
                    error: &e,
                    retry_in: delay,
                    log: backoff.attempts() <= 1 || backoff.attempts().is_multiple_of(10),
                }
                .emit();
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.cancelled() => return,
                }
            }
        }
    }
}

/// Merged batches waiting for the committer: one, so the next batch is received and merged
/// while the previous one is being written.
const QUEUED_MERGED: usize = 1;

/// One table's writer: a merger (receives and merges batches) feeding a committer (writes them),
/// so merging batch n+1 overlaps with the transaction of batch n.
async fn writer(
    ctx: Arc<SyncContext>,
    table: Table,
    rx: mpsc::Receiver<Batch>,
    committed: Vec<watch::Sender<Committed>>,
    shutdown: CancellationToken,
) {
    let (tx, merged_rx) = mpsc::channel::<Merged>(QUEUED_MERGED);
    let merging = tokio::spawn(merger(Arc::clone(&ctx), rx, tx, shutdown.clone()));
    committer(&ctx, table, merged_rx, &committed, &shutdown).await;
    // The committer stops only on shutdown or when the merger is gone; either way the merger
    // has nothing left to do.
    merging.abort();
    let _ = merging.await;
}

/// Takes whatever batches are waiting and merges them, dropping copies of identities already
/// handed to the committer.
///
/// Why remembering before the commit is safe: merged batches are committed strictly in the order
/// they leave here, each retried until it commits, and a batch's cursors are written only in its
/// own transaction. So a copy dropped here because an earlier batch holds its identity is in
/// production before (or in no case without) the cursor that skips it.
async fn merger(
    ctx: Arc<SyncContext>,
    mut rx: mpsc::Receiver<Batch>,
    out: mpsc::Sender<Merged>,
    shutdown: CancellationToken,
) {
    let max_rows = ctx.config.max_transaction_rows;
    let mut recent = RecentIdentities::new(ctx.config.recent_identities);
    let merge_window = Duration::from_millis(ctx.config.merge_window_ms);
    loop {
        let first = tokio::select! {
            b = rx.recv() => match b { Some(b) => b, None => return },
            _ = shutdown.cancelled() => return,
        };
        let mut rows = first.records.len() + first.quarantined.len();
        let mut batches = vec![first];
        // When current (a small batch), wait a moment for the other gatherers' copies and more
        // rows: one transaction instead of one per copy, at a bounded latency cost.
        let window = if rows < ctx.config.batch_size {
            merge_window
        } else {
            Duration::ZERO
        };
        let deadline = tokio::time::Instant::now() + window;
        while rows < max_rows {
            let next = match rx.try_recv() {
                Ok(b) => Some(b),
                Err(mpsc::error::TryRecvError::Disconnected) => None,
                Err(mpsc::error::TryRecvError::Empty) => {
                    tokio::time::timeout_at(deadline, rx.recv())
                        .await
                        .unwrap_or_default()
                }
            };
            let Some(b) = next else { break };
            rows += b.records.len() + b.quarantined.len();
            batches.push(b);
        }
        let merged = merge_with(batches, Some(&recent));
        recent.remember(merged.keys.iter().copied());
        tokio::select! {
            sent = out.send(merged) => if sent.is_err() { return },
            _ = shutdown.cancelled() => return,
        }
    }
}

/// Commits merged batches in order, then publishes the cursors they moved (the pullers
/// acknowledge them to the gatherers).
async fn committer(
    ctx: &SyncContext,
    table: Table,
    mut rx: mpsc::Receiver<Merged>,
    committed: &[watch::Sender<Committed>],
    shutdown: &CancellationToken,
) {
    loop {
        let mut merged = tokio::select! {
            m = rx.recv() => match m { Some(m) => m, None => return },
            _ = shutdown.cancelled() => return,
        };
        let cursors: Vec<CursorUpdate> = merged
            .cursors
            .iter()
            .map(|c| CursorUpdate {
                gatherer: ctx.clients[c.gatherer].id().to_string(),
                table,
                last_seq: c.last_seq,
                store_id: c.store_id.to_string(),
            })
            .collect();
        let screened = quarantine::screen(ctx, table, &mut merged);
        if quarantine::file(ctx, table, screened, shutdown)
            .await
            .is_none()
        {
            return;
        }
        let Some(outcome) = commit(ctx, table, &mut merged, &cursors, shutdown).await else {
            return;
        };
        BatchCommitted {
            table,
            inserted: outcome.inserted,
            duplicates: outcome.duplicates + merged.duplicates,
            records: &merged.records,
            now: TimestampUs::now(),
        }
        .emit();
        ctx.health.synced();
        for c in &merged.cursors {
            ctx.health.committed(c.gatherer, table, c.last_seq);
            if let Some(tx) = committed.get(c.gatherer) {
                tx.send_replace((Arc::clone(&c.store_id), c.last_seq));
            }
        }
    }
}

/// Inserts and advances cursors, retrying forever (DESIGN §6); `None` on shutdown. Rows
/// production refuses for their data are isolated and filed in `quarantine` (see
/// [`crate::quarantine`]), and the rest is committed with the cursors.
async fn commit(
    ctx: &SyncContext,
    table: Table,
    merged: &mut Merged,
    cursors: &[CursorUpdate],
    shutdown: &CancellationToken,
) -> Option<InsertOutcome> {
    let mut backoff = Backoff::new(BackoffPolicy::DATABASE);
    let timeout = Duration::from_secs(ctx.config.transaction_timeout_secs);
    // Rows committed while isolating refused ones (the final insert sees them as copies).
    let mut isolated_inserted = 0_u64;
    loop {
        let origins: Vec<&str> = merged
            .origins
            .iter()
            .map(|&g| ctx.clients[g].id())
            .collect();
        let records = &merged.records;
        let attempt = tokio::time::timeout(
            timeout,
            ctx.store.insert_merged(table, records, &origins, cursors),
        );
        let result = tokio::select! {
            r = attempt => r,
            _ = shutdown.cancelled() => return None,
        };
        let (kind, error) = match result {
            Ok(Ok(mut outcome)) => {
                if backoff.attempts() > 0 {
                    ProductionReachable {
                        table,
                        attempts: backoff.attempts(),
                    }
                    .emit();
                }
                ctx.health.production_ok();
                outcome.inserted += isolated_inserted;
                outcome.duplicates = outcome.duplicates.saturating_sub(isolated_inserted);
                return Some(outcome);
            }
            Ok(Err(e)) if quarantine::refused(&e) && !records.is_empty() => {
                match quarantine::isolate(ctx, table, records, &origins, timeout).await {
                    Ok(found) if !found.refused.is_empty() => {
                        isolated_inserted += found.inserted;
                        let rows = quarantine::refused_rows(ctx, table, merged, &found.refused);
                        quarantine::file(ctx, table, rows, shutdown).await?;
                        let mut keep = vec![true; merged.records.len()];
                        for (i, _) in &found.refused {
                            if let Some(k) = keep.get_mut(*i) {
                                *k = false;
                            }
                        }
                        quarantine::retain(merged, &keep);
                        continue;
                    }
                    // Every row goes in on its own: the refusal is not the rows' (retry).
                    Ok(found) => {
                        isolated_inserted += found.inserted;
                        (ErrorKind::from(e.kind()), e.to_string())
                    }
                    Err(during) => (ErrorKind::from(e.kind()), format!("{e} ({during})")),
                }
            }
            Ok(Err(e)) => (ErrorKind::from(e.kind()), e.to_string()),
            Err(_) => (
                ErrorKind::DatabaseTimeout,
                format!("transaction took longer than {} s", timeout.as_secs()),
            ),
        };
        ctx.health.production_failed(error.clone());
        let delay = backoff.next_delay();
        ProductionWriteFailed {
            table,
            rows: merged.records.len(),
            kind,
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
