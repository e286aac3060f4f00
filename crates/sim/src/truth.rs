//! The ground-truth log: one JSON line per published item, book check points and fault events,
//! so `verify` can compare a deployment's output with what the exchange really did.
//!
//! A data line is written once the simulator knows whether the message reached at least one
//! subscriber (every connection has processed it, or `truth_hold` has passed).

use crate::publish::{Fate, Item};
use kd_core::records::Level;
use kd_core::{Record, TimestampUs};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

/// One line of the ground-truth log (`{"kind": …}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TruthLine {
    /// The simulator (re)started: ids and books continue from here.
    Start { ts: TimestampUs, seed: u64 },
    /// A published data message as a correct gatherer records it; `delivered` is false when no
    /// subscriber received it (nobody subscribed, or a fault dropped it for everyone). The line
    /// also carries `fate` and `sent_at`, read with [`read_truth_full`] (this variant keeps its
    /// two fields so existing readers and patterns stay as they are).
    Published { record: Record, delivered: bool },
    /// A market became listed (REST and WebSocket know it) at `listed_at`: from then on the
    /// platform could subscribe to it. `announced` names the lifecycle channel whose `created`
    /// message told of it (`market_lifecycle_v2`, `multivariate_market_lifecycle`), or is absent
    /// for markets listed at start and markets that appeared on REST without any message.
    Market {
        ticker: String,
        event_ticker: String,
        listed_at: TimestampUs,
        #[serde(default)]
        combo: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        announced: Option<String>,
    },
    /// The full book of a market at `ts`: every delta with `exchange_ts <= ts` is applied, none
    /// later. Sides ascending by price.
    Book {
        ticker: String,
        ts: TimestampUs,
        yes: Vec<Level>,
        no: Vec<Level>,
    },
    /// A fault was added, cleared, or fired (`event`: added, cleared, fired).
    Fault {
        ts: TimestampUs,
        event: String,
        spec: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
}

/// Why the truth log could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TruthError {
    #[error("cannot open {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("read failed: {0}")]
    Read(std::io::Error),
    #[error("line {line}: {source}")]
    Parse {
        line: usize,
        source: serde_json::Error,
    },
}

/// Reads a ground-truth log line by line.
pub fn read_truth(
    path: &Path,
) -> Result<impl Iterator<Item = Result<TruthLine, TruthError>> + use<>, TruthError> {
    let file = std::fs::File::open(path).map_err(|source| TruthError::Open {
        path: path.to_owned(),
        source,
    })?;
    Ok(BufReader::new(file)
        .lines()
        .enumerate()
        .filter(|(_, l)| l.as_ref().map_or(true, |l| !l.trim().is_empty()))
        .map(|(i, line)| {
            let line = line.map_err(TruthError::Read)?;
            serde_json::from_str(&line).map_err(|source| TruthError::Parse {
                line: i + 1,
                source,
            })
        }))
}

/// A truth line with every key of its JSON: for `published` lines, what became of the message
/// and when the exchange sent it (both `None` on lines written before they existed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FullLine {
    pub line: TruthLine,
    pub fate: Option<Fate>,
    pub sent_at: Option<TimestampUs>,
}

#[derive(Deserialize)]
struct Extras {
    #[serde(default)]
    fate: Option<Fate>,
    #[serde(default)]
    sent_at: Option<TimestampUs>,
}

/// Reads a ground-truth log like [`read_truth`], with each `published` line's `fate` and
/// `sent_at`.
pub fn read_truth_full(
    path: &Path,
) -> Result<impl Iterator<Item = Result<FullLine, TruthError>> + use<>, TruthError> {
    let file = std::fs::File::open(path).map_err(|source| TruthError::Open {
        path: path.to_owned(),
        source,
    })?;
    Ok(BufReader::new(file)
        .lines()
        .enumerate()
        .filter(|(_, l)| l.as_ref().map_or(true, |l| !l.trim().is_empty()))
        .map(|(i, line)| {
            let line = line.map_err(TruthError::Read)?;
            let parse = |source| TruthError::Parse {
                line: i + 1,
                source,
            };
            let value: serde_json::Value = serde_json::from_str(&line).map_err(parse)?;
            let extras: Extras = serde_json::from_value(value.clone()).map_err(parse)?;
            Ok(FullLine {
                line: serde_json::from_value(value).map_err(parse)?,
                fate: extras.fate,
                sent_at: extras.sent_at,
            })
        }))
}

/// A `published` line as written: [`TruthLine::Published`]'s keys plus `fate` and `sent_at`.
#[derive(Serialize)]
struct PublishedOut<'a> {
    kind: &'static str,
    record: &'a Record,
    delivered: bool,
    fate: Fate,
    sent_at: TimestampUs,
}

/// What the publisher hands the truth writer.
pub enum TruthMsg {
    Item(Arc<Item>),
    Line(Box<TruthLine>),
    /// Answer once everything sent so far is written (delivery known or `hold` passed).
    Flush(std::sync::mpsc::SyncSender<()>),
}

enum Pending {
    Item(Arc<Item>),
    Line(Box<TruthLine>),
}

/// The truth writer thread: keeps publish order, waits for delivery, appends lines.
pub fn run_writer(path: PathBuf, rx: Receiver<TruthMsg>, hold: Duration) -> std::io::Result<()> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut pending: VecDeque<Pending> = VecDeque::new();
    let mut open = true;
    // Flush requests wait for the lines enqueued before them: (enqueued count, reply).
    let mut waiters: Vec<(u64, std::sync::mpsc::SyncSender<()>)> = Vec::new();
    let (mut enqueued, mut written) = (0_u64, 0_u64);
    while open || !pending.is_empty() {
        match rx.recv_timeout(Duration::from_millis(20)) {
            Ok(msg) => {
                let mut msg = Some(msg);
                // Take whatever else is queued without blocking.
                while let Some(m) = msg.take() {
                    match m {
                        TruthMsg::Item(i) => {
                            enqueued += 1;
                            pending.push_back(Pending::Item(i));
                        }
                        TruthMsg::Line(l) => {
                            enqueued += 1;
                            pending.push_back(Pending::Line(l));
                        }
                        TruthMsg::Flush(reply) => waiters.push((enqueued, reply)),
                    }
                    if pending.len() < 1 << 20 {
                        msg = rx.try_recv().ok();
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => open = false,
        }
        let force = !open;
        while let Some(front) = pending.front() {
            let ready = match front {
                Pending::Line(_) => true,
                Pending::Item(i) => {
                    force || i.remaining.load(Ordering::Acquire) == 0 || i.born.elapsed() >= hold
                }
            };
            if !ready {
                break;
            }
            written += 1;
            match pending.pop_front() {
                Some(Pending::Line(l)) => {
                    serde_json::to_writer(&mut out, &*l).map_err(std::io::Error::other)?;
                }
                Some(Pending::Item(i)) => {
                    let Some(record) = &i.record else { continue };
                    let fate = i.fate();
                    let line = PublishedOut {
                        kind: "published",
                        record,
                        delivered: fate == Fate::Delivered,
                        fate,
                        sent_at: TimestampUs::from_micros(i.sent_us),
                    };
                    serde_json::to_writer(&mut out, &line).map_err(std::io::Error::other)?;
                }
                None => break,
            }
            out.write_all(b"\n")?;
        }
        if force || pending.is_empty() || waiters.iter().any(|w| w.0 <= written) {
            out.flush()?;
            waiters.retain(|(target, reply)| {
                let done = *target <= written;
                if done {
                    let _ = reply.send(());
                }
                !done
            });
        }
    }
    out.flush()?;
    out.get_ref().sync_all()
}
