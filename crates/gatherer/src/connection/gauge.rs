//! Each connection's share of the shared subscribed-markets figure (`/health`, the gauge).

use crate::health::Health;
use std::sync::atomic::Ordering;

/// What one connection last added to `health.markets_subscribed`.
#[derive(Debug, Default)]
pub(super) struct SubscribedShare {
    reported: usize,
}

impl SubscribedShare {
    /// Publishes this connection's subscribed-market count `n` into the shared total.
    pub(super) fn set(&mut self, health: &Health, n: usize) {
        let previous = std::mem::replace(&mut self.reported, n);
        if n >= previous {
            health
                .markets_subscribed
                .fetch_add(n - previous, Ordering::Relaxed);
        } else {
            health
                .markets_subscribed
                .fetch_sub(previous - n, Ordering::Relaxed);
        }
        metrics::gauge!(crate::metrics::CONNECTION_MARKETS)
            .set(health.markets_subscribed.load(Ordering::Relaxed) as f64);
    }
}
