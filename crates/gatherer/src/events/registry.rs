//! Events of the market registry ([`crate::registry`]).

use super::InternalEvent;
use crate::metrics as m;
use kd_kalshi::rest::{Action, RestError};

/// Lifecycle event types counted under their own label; the rest are `other` (the label set
/// stays closed whatever the exchange invents).
const LABELLED: [&str; 5] = ["created", "activated", "closed", "determined", "settled"];

/// A lifecycle message reached the registry (`channel`: the lifecycle channel it came on).
pub struct LifecycleApplied<'a> {
    pub channel: &'static str,
    pub event_type: &'a str,
    pub ticker: &'a str,
}

impl InternalEvent for LifecycleApplied<'_> {
    fn emit(self) {
        let label = LABELLED
            .iter()
            .copied()
            .find(|l| *l == self.event_type)
            .unwrap_or("other");
        metrics::counter!(
            m::REGISTRY_LIFECYCLE_TOTAL,
            "event_type" => label,
            "channel" => self.channel
        )
        .increment(1);
        tracing::trace!(
            ticker = self.ticker,
            channel = self.channel,
            event_type = self.event_type,
            "lifecycle change"
        );
    }
}

/// A market announced by a lifecycle message is to be subscribed (counted by
/// [`LifecycleApplied`]; its delay to the subscription by `registry_subscribe_delay_seconds`).
pub struct MarketAnnounced<'a> {
    pub channel: &'static str,
    pub event_type: &'a str,
    pub ticker: &'a str,
}

impl InternalEvent for MarketAnnounced<'_> {
    fn emit(self) {
        tracing::debug!(
            ticker = self.ticker,
            channel = self.channel,
            event = self.event_type,
            "new market from lifecycle"
        );
    }
}

/// A market finished (closed, determined or settled): its subscription ends (counted by
/// [`LifecycleApplied`]).
pub struct MarketFinished<'a> {
    pub event_type: &'a str,
    pub ticker: &'a str,
}

impl InternalEvent for MarketFinished<'_> {
    fn emit(self) {
        tracing::debug!(
            ticker = self.ticker,
            event = self.event_type,
            "market finished"
        );
    }
}

/// A REST call of the registry failed (retried forever unless credentials were refused).
pub struct RestFailed<'a> {
    pub error: &'a RestError,
}

impl InternalEvent for RestFailed<'_> {
    fn emit(self) {
        let e = self.error;
        metrics::counter!(m::REGISTRY_ERRORS_TOTAL, "kind" => e.kind()).increment(1);
        let retried = matches!(e.action(), Action::Retry { .. } | Action::Maintenance);
        if retried {
            metrics::counter!(m::REGISTRY_RETRIES_TOTAL).increment(1);
        }
        tracing::debug!(error = %e, kind = e.kind(), retried, "registry REST call failed");
    }
}

/// Credentials were refused: the registry stops (a human must fix them).
pub struct RegistryHalted<'a> {
    pub error: &'a RestError,
}

impl InternalEvent for RegistryHalted<'_> {
    fn emit(self) {
        // The refusal itself was counted by `RestFailed`.
        tracing::error!(error = %self.error, "registry halted: credentials refused");
    }
}

/// A full REST pass finished: what it found open, and the difference with what was known.
pub struct MarketListSynced {
    pub open: usize,
    pub added: usize,
    pub gone: usize,
}

impl InternalEvent for MarketListSynced {
    fn emit(self) {
        metrics::counter!(m::REGISTRY_SYNCS_TOTAL).increment(1);
        tracing::info!(
            open = self.open,
            added = self.added,
            gone = self.gone,
            "market list synced"
        );
    }
}
