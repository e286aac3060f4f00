//! Counters the simulator keeps about itself (`GET /_sim/stats`, [`crate::SimHandle::stats`]).

use crate::publish::Channel;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub published: [AtomicU64; 5],
    pub delivered: [AtomicU64; 5],
    pub frames_sent: AtomicU64,
    pub dropped_per_conn: AtomicU64,
    pub dropped_all: AtomicU64,
    pub connections_total: AtomicU64,
    pub connections_open: AtomicU64,
    pub subscriptions: AtomicU64,
    pub overflow_disconnects: AtomicU64,
    pub auth_rejected: AtomicU64,
    pub ws_closed_by_fault: AtomicU64,
    pub ws_stalls: AtomicU64,
    pub http_faults: AtomicU64,
    pub sub_errors: AtomicU64,
    pub bad_commands: AtomicU64,
    pub rate_limited: AtomicU64,
    pub http_retry_after: AtomicU64,
}

fn get(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

pub(crate) fn bump(a: &AtomicU64) {
    a.fetch_add(1, Ordering::Relaxed);
}

/// A snapshot of the simulator's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimStats {
    /// Data messages published, by message type.
    pub published: BTreeMap<String, u64>,
    /// Data messages that reached at least one subscriber, by type.
    pub delivered: BTreeMap<String, u64>,
    /// Frames written over all connections (a message sent to three subscribers counts 3).
    pub frames_sent: u64,
    /// Messages dropped by `ws-drop` (per connection) and `ws-drop-all` (for everyone).
    pub dropped_per_connection: u64,
    pub dropped_for_all: u64,
    pub connections_total: u64,
    pub connections_open: u64,
    /// Subscriptions alive now.
    pub subscriptions: u64,
    /// Connections cut off because they fell too far behind (error 25).
    pub overflow_disconnects: u64,
    pub auth_rejected: u64,
    pub ws_closed_by_fault: u64,
    pub ws_stalls: u64,
    pub http_faults: u64,
    pub sub_errors: u64,
    pub bad_commands: u64,
    /// Commands refused with error 27 (the command-rate limit).
    #[serde(default)]
    pub rate_limited: u64,
    /// Injected HTTP errors that carried `retry_after_ms`.
    #[serde(default)]
    pub http_retry_after: u64,
    pub markets: u64,
    pub trades: u64,
}

impl Stats {
    pub fn snapshot(&self, markets: u64, trades: u64) -> SimStats {
        let per = |arr: &[AtomicU64; 5]| {
            Channel::ALL
                .iter()
                .map(|c| (c.name().to_string(), get(&arr[c.index()])))
                .collect()
        };
        SimStats {
            published: per(&self.published),
            delivered: per(&self.delivered),
            frames_sent: get(&self.frames_sent),
            dropped_per_connection: get(&self.dropped_per_conn),
            dropped_for_all: get(&self.dropped_all),
            connections_total: get(&self.connections_total),
            connections_open: get(&self.connections_open),
            subscriptions: get(&self.subscriptions),
            overflow_disconnects: get(&self.overflow_disconnects),
            auth_rejected: get(&self.auth_rejected),
            ws_closed_by_fault: get(&self.ws_closed_by_fault),
            ws_stalls: get(&self.ws_stalls),
            http_faults: get(&self.http_faults),
            sub_errors: get(&self.sub_errors),
            bad_commands: get(&self.bad_commands),
            rate_limited: get(&self.rate_limited),
            http_retry_after: get(&self.http_retry_after),
            markets,
            trades,
        }
    }
}
