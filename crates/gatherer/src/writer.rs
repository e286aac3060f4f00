//! The single writer: one thread owns the store's writing connection, takes records from a
//! bounded queue, commits them in batches (by count and by time) and announces each commit.
//!
//! The thread runs its own single-threaded async runtime so it can wait on the queue with a
//! deadline; blocking SQLite calls only ever stall this thread, never the socket readers.
//! A failed commit is retried with backoff while the batch is kept (the queue fills up and the
//! router applies backpressure, then drops records as recorded gaps) — a batch is never
//! dropped while the process is running. A failing store is loud: an ERROR log naming the
//! store file and the cause (`disk full`), `store_write_errors_total{kind}`,
//! `store_write_failing`, `/health` `store_failing` with `store.error`, `/ready` 503. Control
//! requests (acks, state) are still answered between retries, and the first commit that
//! succeeds clears it all: no restart is needed when space returns.

use crate::health::Health;
use crate::metrics as m;
use crate::store::{Heads, StoreError, WriteConn, db_path, disk_bytes, index};
use kd_core::backoff::{Backoff, BackoffPolicy};
use kd_core::{Gap, Record, Table, TimestampUs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};

/// Backoff of a failing commit (disk full, I/O error): short, the queue is filling meanwhile.
const COMMIT_RETRY: BackoffPolicy =
    BackoffPolicy::new(Duration::from_millis(50), Duration::from_secs(5));
/// How long a failing commit is still retried once the gatherer is stopping, before the batch
/// is given up (counted, logged; later batches of the drain get one attempt each).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// While commits keep failing, the ERROR log is repeated this often (each retry in between
/// logs at debug level).
const LOUD_EVERY: Duration = Duration::from_secs(30);
/// How often the disk and depth gauges are refreshed.
const STATS_INTERVAL: Duration = Duration::from_secs(5);

/// How the writer batches and retains.
#[derive(Debug, Clone)]
pub struct WriterSettings {
    pub data_dir: PathBuf,
    pub batch_rows: usize,
    pub flush_interval: Duration,
    pub retention: Duration,
    pub retention_interval: Duration,
    /// The gatherer's clock (receive-to-commit times, ack times, the retention cutoff are all
    /// local times, like `received_at`).
    pub clock: std::sync::Arc<crate::clock::Clock>,
}

/// Requests to the writer other than records: rare, never dropped (unbounded queue).
#[derive(Debug)]
pub enum Control {
    /// Store a gap record (written ahead of queued records).
    Gap(Gap),
    /// Record an acknowledgement; the reply says whether it was stored.
    Ack {
        table: Table,
        cursor: u64,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    /// Run a retention pass now with this cutoff; the reply carries the rows deleted per table.
    Retention {
        cutoff: TimestampUs,
        reply: oneshot::Sender<Result<[u64; 6], StoreError>>,
    },
    /// Read a `state` value.
    GetState {
        key: String,
        reply: oneshot::Sender<Result<Option<String>, StoreError>>,
    },
    /// Write a `state` value.
    SetState {
        key: String,
        value: String,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
}

/// The sending side used by the router (records) and everyone else (control).
#[derive(Debug, Clone)]
pub struct WriterInput {
    pub records: mpsc::Sender<Record>,
    pub control: WriterControl,
}

/// The control side alone (the pull API holds this, so it never keeps the writer alive).
#[derive(Debug, Clone)]
pub struct WriterControl(mpsc::UnboundedSender<Control>);

/// The writer thread, its commit announcements and its inputs.
#[derive(Debug)]
pub struct Writer {
    pub input: WriterInput,
    /// The heads after each commit (long-polls wait on it).
    pub heads: watch::Receiver<Heads>,
    thread: std::thread::JoinHandle<()>,
}

impl Writer {
    /// Starts the writer thread on an opened store.
    pub fn spawn(
        conn: WriteConn,
        settings: WriterSettings,
        queue_records: usize,
        health: Arc<Health>,
    ) -> std::io::Result<Writer> {
        // Exported from the start, so an alert on it sees a series before the first failure.
        metrics::gauge!(m::STORE_WRITE_FAILING).set(0.0);
        let (records_tx, records_rx) = mpsc::channel(queue_records);
        let (control_tx, control_rx) = mpsc::unbounded_channel();
        let (heads_tx, heads_rx) = watch::channel(conn.heads());
        let thread = std::thread::Builder::new()
            .name("kd-writer".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_time()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        tracing::error!(error = %e, "writer runtime cannot start");
                        return;
                    }
                };
                let state = WriterLoop {
                    conn,
                    settings,
                    records: records_rx,
                    control: control_rx,
                    heads: heads_tx,
                    health,
                    acks: Heads::default(),
                    giving_up: false,
                };
                runtime.block_on(state.run());
            })?;
        Ok(Writer {
            input: WriterInput {
                records: records_tx,
                control: WriterControl(control_tx),
            },
            heads: heads_rx,
            thread,
        })
    }

    /// Splits off the join handle so the inputs can be handed out.
    pub fn into_parts(self) -> (WriterInput, watch::Receiver<Heads>, WriterJoin) {
        (self.input, self.heads, WriterJoin(self.thread))
    }
}

/// Waits for the writer thread to finish.
#[derive(Debug)]
pub struct WriterJoin(std::thread::JoinHandle<()>);

impl WriterJoin {
    /// Blocking: call from `spawn_blocking`, after dropping every record sender.
    pub fn join(self) {
        if self.0.join().is_err() {
            tracing::error!("writer thread panicked");
        }
    }
}

struct WriterLoop {
    conn: WriteConn,
    settings: WriterSettings,
    records: mpsc::Receiver<Record>,
    control: mpsc::UnboundedReceiver<Control>,
    heads: watch::Sender<Heads>,
    health: Arc<Health>,
    acks: Heads,
    /// Set once a batch was given up at shutdown: the rest of the drain tries each batch once.
    giving_up: bool,
}

impl WriterLoop {
    async fn run(mut self) {
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

impl WriterControl {
    /// Sends a control request and waits for its answer.
    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Control) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        self.0.send(make(tx)).ok()?;
        rx.await.ok()
    }

    /// Stores an acknowledgement. `None` when the writer has stopped.
    pub async fn ack(&self, table: Table, cursor: u64) -> Option<Result<(), StoreError>> {
        self.ask(|reply| Control::Ack {
            table,
            cursor,
            reply,
        })
        .await
    }

    /// Runs a retention pass with an explicit cutoff (tests, operators).
    pub async fn retention(&self, cutoff: TimestampUs) -> Option<Result<[u64; 6], StoreError>> {
        self.ask(|reply| Control::Retention { cutoff, reply }).await
    }

    /// Reads a `state` value.
    pub async fn get_state(&self, key: &str) -> Option<Result<Option<String>, StoreError>> {
        let key = key.to_string();
        self.ask(|reply| Control::GetState { key, reply }).await
    }

    /// Writes a `state` value.
    pub async fn set_state(&self, key: &str, value: &str) -> Option<Result<(), StoreError>> {
        let (key, value) = (key.to_string(), value.to_string());
        self.ask(|reply| Control::SetState { key, value, reply })
            .await
    }

    /// Records a gap (never dropped: the control queue is unbounded and gaps are rare).
    pub fn gap(&self, gap: Gap) {
        if self.0.send(Control::Gap(gap)).is_err() {
            tracing::error!("gap not recorded: the writer has stopped");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gap(n: usize) -> Gap {
        Gap {
            gatherer: "g".into(),
            gap_id: format!("burst-{n}"),
            ticker: Some(format!("M-{}", n % 100)),
            channel: "orderbook_delta".into(),
            start: TimestampUs::from_micros(1_000_000 + n as i64),
            end: TimestampUs::from_micros(2_000_000 + n as i64),
            reason: "snapshot_refresh".into(),
            repair: "snapshot".into(),
        }
    }

    /// A burst of gap records with no data flowing is committed in a few batches, not one gap
    /// per flush interval (10,000 gaps were once 10,000 commits, 100 s behind at the end).
    #[tokio::test]
    async fn a_burst_of_gaps_is_committed_in_batches() -> Result<(), Box<dyn std::error::Error>> {
        const GAPS: usize = 10_000;
        let dir = tempfile::tempdir()?;
        let conn = WriteConn::open(dir.path())?;
        let settings = WriterSettings {
            data_dir: dir.path().to_path_buf(),
            batch_rows: 5_000,
            flush_interval: Duration::from_millis(10),
            retention: Duration::from_secs(3_600),
            retention_interval: Duration::from_secs(3_600),
            clock: Arc::new(crate::clock::Clock::new(0)),
        };
        let writer = Writer::spawn(conn, settings, 10_000, Arc::new(Health::default()))?;
        let (input, mut heads, join) = writer.into_parts();
        for n in 0..GAPS {
            input.control.gap(gap(n));
        }
        let mut commits_seen = 0;
        while heads.borrow().get(Table::Gaps) < GAPS as u64 {
            tokio::time::timeout(Duration::from_secs(60), heads.changed()).await??;
            commits_seen += 1;
        }
        drop(input);
        tokio::task::spawn_blocking(move || join.join()).await?;
        // At most 5,000 rows a commit: two are enough; one per gap would be 10,000.
        assert!(
            commits_seen <= 20,
            "{commits_seen} commits for {GAPS} gap records"
        );
        Ok(())
    }
}
