//! The writer thread's loop: fill a batch from the queue (by count and by time), commit it
//! with retry (the batch is kept), answer control requests between retries, apply retention,
//! refresh the gauges.

use super::kept_gaps::KeptGaps;
use super::{COMMIT_RETRY, Control, LOUD_EVERY, SHUTDOWN_GRACE, STATS_INTERVAL, WriterSettings};
use crate::events::emit;
use crate::events::writer::{
    AckRefused, Acknowledged, BatchCommitted, CommitFailed, QueueDepth, RetentionDeleted,
    RetentionFailed, RowsLostAtShutdown, StoreRecovered, StoreStats, WriterStopped,
};
use crate::health::Health;
use crate::store::{Heads, StoreError, WriteConn, db_path, disk_bytes, index};
use kd_core::backoff::Backoff;
use kd_core::{Record, TimestampUs};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

pub(super) struct WriterLoop {
    pub(super) conn: WriteConn,
    pub(super) settings: WriterSettings,
    pub(super) records: mpsc::Receiver<Record>,
    pub(super) control: mpsc::UnboundedReceiver<Control>,
    pub(super) heads: watch::Sender<Heads>,
    pub(super) health: Arc<Health>,
    pub(super) acks: Heads,
    /// Set once a batch was given up at shutdown: the rest of the drain tries each batch once.
    pub(super) giving_up: bool,
}

impl WriterLoop {
    pub(super) async fn run(mut self) {
        self.acks = self.conn.acks().unwrap_or_default();
        self.refresh_stats();
        // Exported from the start, so a dashboard or test reads 0 before any failure.
        metrics::gauge!(crate::metrics::WRITER_KEPT_GAPS).set(0.0);
        let mut batch: Vec<Record> = Vec::with_capacity(self.settings.batch_rows);
        let mut retention = tokio::time::interval(
            self.settings
                .retention_interval
                .max(Duration::from_millis(10)),
        );
        retention.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut stats = tokio::time::interval(STATS_INTERVAL);
        stats.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut control_open = true;
        let mut open = true;
        while open {
            tokio::select! {
                biased;
                c = self.control.recv(), if control_open => match c {
                    Some(c) => self.handle_control(c, &mut batch),
                    None => control_open = false,
                },
                r = self.records.recv() => match r {
                    Some(r) => batch.push(r),
                    None => open = false,
                },
                _ = retention.tick() => self.retention(),
                _ = stats.tick() => self.refresh_stats(),
            }
            if batch.is_empty() {
                continue;
            }
            open = self.fill(&mut batch).await;
            self.commit(&mut batch, !open).await;
        }
        // Queue closed: everything received is committed. Answer late control requests, then
        // fold the WAL into the database so the next start is quick.
        while let Ok(c) = self.control.try_recv() {
            self.handle_control(c, &mut batch);
            if !batch.is_empty() {
                self.commit(&mut batch, true).await;
            }
        }
        let checkpoint_error = self.conn.checkpoint().err().map(|e| e.to_string());
        self.refresh_stats();
        emit(WriterStopped {
            heads: self.conn.heads(),
            checkpoint_error,
        });
    }

    /// Adds queued records to the batch until it is full or the oldest row has waited the
    /// flush interval. Returns false when the queue is closed.
    ///
    /// Gap records (and other control requests) queued meanwhile are taken too: they arrive on
    /// the control channel, and taking one per commit let a burst of them (a lossy connection
    /// refreshing the snapshots of whole subscriptions, thousands a second) fall minutes
    /// behind the data they describe, at one commit per flush interval once data stopped.
    async fn fill(&mut self, batch: &mut Vec<Record>) -> bool {
        let deadline = tokio::time::Instant::now() + self.settings.flush_interval;
        while batch.len() < self.settings.batch_rows {
            self.take_control(batch);
            if batch.len() >= self.settings.batch_rows {
                break;
            }
            match self.records.try_recv() {
                Ok(r) => batch.push(r),
                Err(mpsc::error::TryRecvError::Disconnected) => return false,
                Err(mpsc::error::TryRecvError::Empty) => {
                    match tokio::time::timeout_at(deadline, self.records.recv()).await {
                        Ok(Some(r)) => batch.push(r),
                        Ok(None) => return false,
                        Err(_) => break,
                    }
                }
            }
        }
        emit(QueueDepth(self.records.len()));
        self.beat();
        true
    }

    /// Commits the batch, retrying until it succeeds (or, once the gatherer is stopping, for
    /// [`SHUTDOWN_GRACE`], then the rows are counted as dropped and logged; the next start
    /// records the time since the last stored row as a downtime gap, which covers them).
    async fn commit(&mut self, batch: &mut Vec<Record>, closing: bool) {
        let mut backoff = Backoff::new(COMMIT_RETRY);
        // When the current run of failures began, and when it was last logged at ERROR.
        let mut failing: Option<(Instant, Instant)> = None;
        // When the stop was noticed: every record sender gone, even while this batch was
        // already being retried (else a stop on a full disk would wait for space forever).
        let mut stopping: Option<Instant> = None;
        // Gaps that join the batch while it is retried, coalesced (see `kept_gaps`).
        let mut kept_gaps = KeptGaps::default();
        loop {
            // A retried commit is a live loop (a full disk is not a hang: restarting would
            // not free it), so it beats too.
            self.beat();
            if stopping.is_none() && (closing || self.records.is_closed()) {
                stopping = Some(Instant::now());
            }
            let started = Instant::now();
            match self.conn.insert_batch(batch) {
                Ok(heads) => {
                    if let Some((since, _)) = failing {
                        self.recovered(since, batch.len());
                        metrics::gauge!(crate::metrics::WRITER_KEPT_GAPS).set(0.0);
                    }
                    self.committed(batch, heads, started);
                    return;
                }
                Err(e) => {
                    let kind = e.kind();
                    let store = db_path(&self.settings.data_dir);
                    let cause = if kind == "disk_full" {
                        "disk full"
                    } else {
                        "write error"
                    };
                    self.health
                        .set_store_error(Some(format!("{cause}: {}: {e}", store.display())));
                    if stopping.is_some_and(|at| self.giving_up || at.elapsed() >= SHUTDOWN_GRACE) {
                        emit(RowsLostAtShutdown {
                            store: &store,
                            kind,
                            error: &e,
                            rows: batch.len(),
                        });
                        batch.clear();
                        metrics::gauge!(crate::metrics::WRITER_KEPT_GAPS).set(0.0);
                        self.giving_up = true;
                        return;
                    }
                    let mut delay = backoff.next_delay();
                    if stopping.is_some() {
                        // Use the grace for attempts, not for one long sleep.
                        delay = delay.min(Duration::from_secs(1));
                    }
                    let now = Instant::now();
                    let (since, loud_at) = failing.get_or_insert((now, now));
                    let loud = *loud_at == now || now.duration_since(*loud_at) >= LOUD_EVERY;
                    if loud {
                        *loud_at = now;
                    }
                    emit(CommitFailed {
                        store: &store,
                        kind,
                        error: &e,
                        rows: batch.len(),
                        failing_for: now.duration_since(*since),
                        queued: self.records.len(),
                        retry_in: delay,
                        loud,
                    });
                    self.wait_answering(delay, batch, &mut kept_gaps).await;
                }
            }
        }
    }

    /// Sleeps `delay` while answering control requests, so acknowledgements and state reads
    /// do not hang behind a failing commit (gaps join the kept batch).
    async fn wait_answering(
        &mut self,
        delay: Duration,
        batch: &mut Vec<Record>,
        kept_gaps: &mut KeptGaps,
    ) {
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                biased;
                _ = &mut sleep => return,
                c = self.control.recv() => match c {
                    Some(Control::Gap(g)) => {
                        if kept_gaps.keep(batch, g) {
                            metrics::counter!(crate::metrics::WRITER_GAPS_COALESCED_TOTAL)
                                .increment(1);
                        } else {
                            // Display only: a count to a gauge.
                            metrics::gauge!(crate::metrics::WRITER_KEPT_GAPS)
                                .set(kept_gaps.len() as f64);
                        }
                    }
                    Some(c) => self.handle_control(c, batch),
                    None => {
                        sleep.await;
                        return;
                    }
                },
            }
        }
    }

    /// The first commit after failures: clears the alarm.
    fn recovered(&mut self, since: Instant, rows: usize) {
        self.health.set_store_error(None);
        emit(StoreRecovered {
            store: &db_path(&self.settings.data_dir),
            failed_for: since.elapsed(),
            rows,
            queued: self.records.len(),
        });
    }

    fn committed(&mut self, batch: &mut Vec<Record>, heads: Heads, started: Instant) {
        let now = self.settings.clock.now();
        let mut per_table = [0_u64; 6];
        for r in batch.iter() {
            per_table[index(r.table())] += 1;
        }
        emit(BatchCommitted {
            commit_time: started.elapsed(),
            rows: batch.len(),
            per_table: &per_table,
            heads,
            delays_us: &mut batch
                .iter()
                .map(|r| now.micros() - r.received_at().micros()),
        });
        batch.clear();
        self.health.set_heads(heads);
        self.heads.send_replace(heads);
    }

    /// Handles the control requests already queued, until the batch is full.
    fn take_control(&mut self, batch: &mut Vec<Record>) {
        while batch.len() < self.settings.batch_rows {
            match self.control.try_recv() {
                Ok(c) => self.handle_control(c, batch),
                Err(_) => break,
            }
        }
    }

    fn handle_control(&mut self, c: Control, batch: &mut Vec<Record>) {
        match c {
            Control::Gap(g) => batch.push(Record::Gap(g)),
            Control::Ack {
                table,
                cursor,
                reply,
            } => {
                let now = self.settings.clock.now();
                let result = self.conn.ack(table, cursor, now);
                match &result {
                    Ok(()) => {
                        if cursor > self.acks.get(table) {
                            self.acks.set(table, cursor);
                        }
                        let unacked = self
                            .conn
                            .heads()
                            .get(table)
                            .saturating_sub(self.acks.get(table));
                        emit(Acknowledged { table, unacked });
                    }
                    Err(e) => emit(AckRefused { error: e }),
                }
                let _ = reply.send(result);
            }
            Control::Retention { cutoff, reply } => {
                let _ = reply.send(self.retention_at(cutoff));
            }
            Control::GetState { key, reply } => {
                let _ = reply.send(self.conn.state(&key));
            }
            Control::SetState { key, value, reply } => {
                let _ = reply.send(self.conn.set_state(&key, &value));
            }
        }
    }

    fn retention(&mut self) {
        let retention_us = i64::try_from(self.settings.retention.as_micros()).unwrap_or(i64::MAX);
        let cutoff = TimestampUs::from_micros(
            self.settings
                .clock
                .now()
                .micros()
                .saturating_sub(retention_us),
        );
        if let Err(e) = self.retention_at(cutoff) {
            emit(RetentionFailed { error: &e });
        }
    }

    fn retention_at(&mut self, cutoff: TimestampUs) -> Result<[u64; 6], StoreError> {
        let deleted = self.conn.retention(cutoff)?;
        emit(RetentionDeleted { deleted: &deleted });
        self.refresh_stats();
        Ok(deleted)
    }

    fn beat(&self) {
        self.health.writer_beat_us.store(
            kd_core::TimestampUs::now().micros(),
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    fn refresh_stats(&self) {
        let heads = self.conn.heads();
        let disk = disk_bytes(&self.settings.data_dir);
        emit(StoreStats {
            heads,
            acks: self.acks,
            disk_bytes: disk,
        });
        self.health.set_store(heads, self.acks, disk);
    }
}
