//! The writer thread's loop: fill a batch from the queue (by count and by time), commit it
//! with retry (the batch is kept), answer control requests between retries, apply retention,
//! refresh the gauges.

use super::{COMMIT_RETRY, Control, LOUD_EVERY, SHUTDOWN_GRACE, STATS_INTERVAL, WriterSettings};
use crate::health::Health;
use crate::metrics as m;
use crate::store::{Heads, StoreError, WriteConn, db_path, disk_bytes, index};
use kd_core::backoff::Backoff;
use kd_core::{Record, Table, TimestampUs};
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
        if let Err(e) = self.conn.checkpoint() {
            tracing::warn!(error = %e, "checkpoint at shutdown failed (the WAL is replayed next start)");
        }
        self.refresh_stats();
        tracing::info!(heads = ?self.conn.heads(), "writer stopped; everything received is committed");
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
        metrics::gauge!(m::WRITER_QUEUE_DEPTH).set(self.records.len() as f64);
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
        loop {
            if stopping.is_none() && (closing || self.records.is_closed()) {
                stopping = Some(Instant::now());
            }
            let started = Instant::now();
            match self.conn.insert_batch(batch) {
                Ok(heads) => {
                    if let Some((since, _)) = failing {
                        self.recovered(since, batch.len());
                    }
                    self.committed(batch, heads, started);
                    return;
                }
                Err(e) => {
                    let kind = e.kind();
                    metrics::counter!(m::WRITER_ERRORS_TOTAL).increment(1);
                    metrics::counter!(m::STORE_WRITE_ERRORS_TOTAL, "kind" => kind).increment(1);
                    metrics::gauge!(m::STORE_WRITE_FAILING).set(1.0);
                    let store = db_path(&self.settings.data_dir);
                    let cause = if kind == "disk_full" {
                        "disk full"
                    } else {
                        "write error"
                    };
                    self.health
                        .set_store_error(Some(format!("{cause}: {}: {e}", store.display())));
                    if stopping.is_some_and(|at| self.giving_up || at.elapsed() >= SHUTDOWN_GRACE) {
                        tracing::error!(store = %store.display(), kind, error = %e, rows = batch.len(),
                            "{cause}: commit failed at shutdown; rows lost (the next start records a downtime gap from the last stored row)");
                        metrics::counter!(m::WRITER_DROPPED_TOTAL).increment(batch.len() as u64);
                        batch.clear();
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
                    if *loud_at == now || now.duration_since(*loud_at) >= LOUD_EVERY {
                        *loud_at = now;
                        tracing::error!(store = %store.display(), kind, error = %e, rows = batch.len(),
                            failing_for = ?now.duration_since(*since), queued = self.records.len(),
                            "{cause}: store commit failed; the batch is kept and retried, committed rows stay pullable");
                    } else {
                        tracing::debug!(kind, error = %e, retry_in = ?delay, "commit failed; retrying");
                    }
                    metrics::counter!(m::WRITER_RETRIES_TOTAL).increment(1);
                    self.wait_answering(delay, batch).await;
                }
            }
        }
    }

    /// Sleeps `delay` while answering control requests, so acknowledgements and state reads
    /// do not hang behind a failing commit (gaps join the kept batch).
    async fn wait_answering(&mut self, delay: Duration, batch: &mut Vec<Record>) {
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                biased;
                _ = &mut sleep => return,
                c = self.control.recv() => match c {
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
        metrics::gauge!(m::STORE_WRITE_FAILING).set(0.0);
        self.health.set_store_error(None);
        tracing::warn!(store = %db_path(&self.settings.data_dir).display(), failed_for = ?since.elapsed(), rows,
            queued = self.records.len(), "store takes writes again; the kept batch is committed");
    }

    fn committed(&mut self, batch: &mut Vec<Record>, heads: Heads, started: Instant) {
        let now = self.settings.clock.now();
        metrics::histogram!(m::WRITER_COMMIT_SECONDS).record(started.elapsed().as_secs_f64());
        metrics::histogram!(m::WRITER_BATCH_ROWS).record(batch.len() as f64);
        metrics::counter!(m::WRITER_BATCHES_TOTAL).increment(1);
        let mut per_table = [0_u64; 6];
        let delay = metrics::histogram!(m::WRITER_RECEIVE_TO_COMMIT_SECONDS);
        for r in batch.iter() {
            per_table[index(r.table())] += 1;
            delay.record((now.micros() - r.received_at().micros()).max(0) as f64 / 1e6);
        }
        for t in Table::ALL {
            let n = per_table[index(t)];
            if n > 0 {
                metrics::counter!(m::WRITER_ROWS_TOTAL, "table" => t.name()).increment(n);
                metrics::gauge!(m::STORE_HEAD, "table" => t.name()).set(heads.get(t) as f64);
            }
        }
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
                        let depth = self
                            .conn
                            .heads()
                            .get(table)
                            .saturating_sub(self.acks.get(table));
                        metrics::gauge!(m::STORE_UNACKED_ROWS, "table" => table.name())
                            .set(depth as f64);
                    }
                    Err(e) => {
                        metrics::counter!(m::STORE_ERRORS_TOTAL, "kind" => "ack").increment(1);
                        tracing::warn!(error = %e, "acknowledgement refused");
                    }
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
            metrics::counter!(m::STORE_ERRORS_TOTAL, "kind" => "retention").increment(1);
            tracing::warn!(error = %e, "retention pass failed; retried next interval");
        }
    }

    fn retention_at(&mut self, cutoff: TimestampUs) -> Result<[u64; 6], StoreError> {
        let deleted = self.conn.retention(cutoff)?;
        for t in Table::ALL {
            let n = deleted[index(t)];
            if n > 0 {
                metrics::counter!(m::STORE_RETENTION_DELETED_TOTAL, "table" => t.name())
                    .increment(n);
            }
        }
        self.refresh_stats();
        Ok(deleted)
    }

    fn refresh_stats(&self) {
        let heads = self.conn.heads();
        let disk = disk_bytes(&self.settings.data_dir);
        metrics::gauge!(m::STORE_DISK_BYTES).set(disk as f64);
        for t in Table::ALL {
            let depth = heads.get(t).saturating_sub(self.acks.get(t));
            metrics::gauge!(m::STORE_UNACKED_ROWS, "table" => t.name()).set(depth as f64);
            metrics::gauge!(m::STORE_HEAD, "table" => t.name()).set(heads.get(t) as f64);
        }
        self.health.set_store(heads, self.acks, disk);
    }
}
