//! How one socket's life ended, and the close-code table of DESIGN §6 that decides it.

use kd_core::backoff::{Backoff, BackoffPolicy};
use kd_kalshi::ws::{self, CloseAction};
use std::time::Duration;

/// How a session ended.
pub(super) enum Ended {
    Shutdown,
    /// Reconnect at once (close 1000).
    Immediately(&'static str),
    /// Reconnect after the backoff.
    Backoff(&'static str),
}

impl Ended {
    /// How long to wait before reconnecting, with the `reason` label and whether it follows a
    /// failure; `None` after a shutdown.
    pub(super) fn delay(
        self,
        backoff: &mut Backoff,
        policy: &BackoffPolicy,
    ) -> Option<(&'static str, bool, Duration)> {
        match self {
            Ended::Shutdown => None,
            Ended::Immediately(reason) => {
                backoff.reset();
                // At once, but not all at the same instant: when the exchange closes every
                // connection cleanly, a jitter of 0–25 % of the base spreads the reconnects.
                Some((reason, false, policy.jitter()))
            }
            Ended::Backoff(reason) => Some((reason, true, backoff.next_delay())),
        }
    }
}

/// The close-code table (DESIGN §6) with the `reason` label of the reconnect.
pub(super) fn ended_by_close(code: Option<u16>) -> Ended {
    let reason = match code {
        Some(1000) => "close_1000",
        Some(1001) => "close_1001",
        Some(1006) => "close_1006",
        Some(1008) => "close_1008",
        Some(1011) => "close_1011",
        _ => "close_other",
    };
    match code.map(ws::close_action) {
        Some(CloseAction::ReconnectNow) => Ended::Immediately(reason),
        // 1008: the reconnect's handshake checks the credentials (a refused one halts).
        Some(CloseAction::CheckCredentials | CloseAction::ReconnectBackoff | CloseAction::Halt)
        | None => Ended::Backoff(reason),
    }
}
