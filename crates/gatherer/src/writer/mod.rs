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
//!
//! - this file: the writer's settings, inputs and control requests, and the thread's start.
//! - `commit_loop`: the thread's loop (batching, committing with retry, control requests,
//!   retention, gauges).

mod commit_loop;
mod kept_gaps;

use crate::health::Health;
use crate::metrics as m;
use crate::store::{Heads, StoreError, WriteConn};
use kd_core::backoff::BackoffPolicy;
use kd_core::{Gap, Record, Table, TimestampUs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
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
                let state = commit_loop::WriterLoop {
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

impl WriterControl {
    /// A control handle whose requests the test reads itself (no writer thread).
    #[cfg(test)]
    pub(crate) fn for_test(tx: mpsc::UnboundedSender<Control>) -> Self {
        WriterControl(tx)
    }

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
            tickers: Vec::new(),
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
