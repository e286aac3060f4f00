//! The gatherer's internal events, in Vector's style: one type per observable event, whose
//! [`InternalEvent::emit`] writes the log line and updates the counters together, so a log
//! line and its metric cannot drift apart. Metric names live in [`crate::metrics`].
//!
//! - [`connection`]: the WebSocket pool (connects, closes, subscription errors and effects).
//! - [`registry`]: the market list (lifecycle announcements, REST syncs and failures).
//! - [`router`]: gaps, refused frames, drop windows.
//! - [`writer`]: commits, store failures and recovery, acknowledgements, retention.
//! - [`serving`]: the pull API's requests and refusals, the clock-offset estimate.
//! - [`poller`]: the REST snapshot poller's cycles, books and skips.
//! - [`repair`]: trade backfills (cutoff, abandoned windows, recovered counts).

pub mod connection;
pub mod poller;
pub mod registry;
pub mod repair;
pub mod router;
pub mod serving;
pub mod writer;

/// Something worth a log line and a metric.
pub trait InternalEvent {
    fn emit(self);
}

/// Emits an event (`emit(Event { .. })` reads like Vector's `emit!`).
pub fn emit(event: impl InternalEvent) {
    event.emit();
}
