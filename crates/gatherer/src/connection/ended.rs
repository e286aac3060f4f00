//! How one socket's life ended, and the close-code table of DESIGN §6 that decides it.

use kd_kalshi::ws::{self, CloseAction};

/// How a session ended.
pub(super) enum Ended {
    Shutdown,
    /// Reconnect at once (close 1000).
    Immediately(&'static str),
    /// Reconnect after the backoff.
    Backoff(&'static str),
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
