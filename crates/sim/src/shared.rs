//! State every part of the running simulator shares.

use crate::config::SimConfig;
use crate::engine::Exchange;
use crate::faults::{FaultSet, FaultSpec};
use crate::publish::Item;
use crate::stats::Stats;
use crate::truth::{TruthLine, TruthMsg};
use kd_core::TimestampUs;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};

/// Orders the fault driver gives one connection.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Ctl {
    Close(u16),
    Stall(Duration),
}

pub(crate) struct Shared {
    pub cfg: SimConfig,
    pub exchange: Mutex<Exchange>,
    /// Every published item goes to every connection; each filters by its subscriptions. The
    /// channel's capacity is the per-connection outbound bound: a connection that falls further
    /// behind is cut off (error 25).
    pub tx: broadcast::Sender<Arc<Item>>,
    pub faults: FaultSet,
    pub stats: Stats,
    pub conns: Mutex<HashMap<u64, mpsc::Sender<Ctl>>>,
    pub next_conn: AtomicU64,
    pub publishing: AtomicBool,
    /// Set by the publisher once it has seen `publishing == false` and written its check point.
    pub paused_ack: AtomicBool,
    /// Taken at shutdown so the truth writer sees its channel close.
    pub truth: Mutex<Option<std::sync::mpsc::SyncSender<TruthMsg>>>,
    pub verifier: Option<kd_kalshi::auth::Verifier>,
}

impl Shared {
    pub fn exchange(&self) -> MutexGuard<'_, Exchange> {
        // A panic while holding the lock leaves consistent-enough state for a simulator.
        self.exchange.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn truth_line(&self, line: TruthLine) {
        let tx = self.truth.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(tx) = tx {
            let _ = tx.send(TruthMsg::Line(Box::new(line)));
        }
    }

    pub fn fault_event(&self, event: &str, spec: &FaultSpec, detail: Option<String>) {
        self.truth_line(TruthLine::Fault {
            ts: TimestampUs::now(),
            event: event.to_string(),
            spec: spec.to_string(),
            detail,
        });
    }

    pub fn conn_ids(&self) -> Vec<(u64, mpsc::Sender<Ctl>)> {
        let conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<_> = conns.iter().map(|(k, v)| (*k, v.clone())).collect();
        v.sort_by_key(|e| e.0);
        v
    }
}
