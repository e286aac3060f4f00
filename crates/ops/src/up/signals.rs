//! How `up` is asked to stop. Ctrl-C (SIGINT) ends a run the way `--duration` does — the
//! exchange first, then the drain — so nothing received is left out of production; a second
//! Ctrl-C, or SIGTERM (systemd, a test's clean-up), stops every process at once (each child
//! still gets SIGTERM and commits what it holds).

use tokio_util::sync::CancellationToken;

/// The two stop requests. Cancelling `now` cancels `drain` too (it is its child).
#[derive(Debug, Clone)]
pub struct Stop {
    /// Drain, then stop (first Ctrl-C).
    pub drain: CancellationToken,
    /// Stop at once (second Ctrl-C, SIGTERM).
    pub now: CancellationToken,
}

impl Default for Stop {
    fn default() -> Self {
        Stop::new()
    }
}

impl Stop {
    /// Tokens nobody cancels yet (tests cancel them themselves).
    pub fn new() -> Stop {
        let now = CancellationToken::new();
        Stop {
            drain: now.child_token(),
            now,
        }
    }

    /// Tokens cancelled by this process's signals: the first SIGINT asks for a drain, the
    /// second SIGINT or any SIGTERM for an immediate stop.
    pub fn on_signals() -> Stop {
        let stop = Stop::new();
        let s = stop.clone();
        tokio::spawn(async move {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut int), Ok(mut term)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) else {
                tracing::warn!("cannot listen for SIGINT/SIGTERM; falling back to Ctrl-C only");
                let _ = tokio::signal::ctrl_c().await;
                s.now.cancel();
                return;
            };
            loop {
                tokio::select! {
                    _ = int.recv() => {
                        if s.drain.is_cancelled() {
                            eprintln!("up: second Ctrl-C — stopping every process now");
                            s.now.cancel();
                            return;
                        }
                        s.drain.cancel();
                    }
                    _ = term.recv() => {
                        s.now.cancel();
                        return;
                    }
                }
            }
        });
        stop
    }
}
