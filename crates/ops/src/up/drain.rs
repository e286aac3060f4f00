//! The end of a run (`--duration` reached or a first Ctrl-C): stop what feeds the gatherers,
//! then wait until every row they stored is in production, then the caller stops everything.
//!
//! - The exchange is ours (the simulator): it stops publishing and keeps serving REST, so the
//!   gatherers can still repair what they missed.
//! - It is not (Kalshi, demo, a URL): every gatherer gets SIGUSR1 and closes its WebSockets
//!   cleanly, stops its REST poller and repair, commits what it holds and keeps serving pulls
//!   (`kalshi-data gatherer`'s feed stop). Its store ends at its last row, as after any stop:
//!   the next start records the downtime from there.
//!
//! Either way the drain then waits for every gatherer's heads to stand still and its backlog
//! (rows committed, not acknowledged by the deduplicator) to be 0.

use super::plan::ProcessSpec;
use super::progress;
use super::state::Kind;
use super::supervisor::{self, Shared};
use super::{SIM_FAULTS, SIM_STOP_PUBLISHING};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Longest the drain waits for the pipeline after the feed stops.
const DRAIN_DEADLINE: Duration = Duration::from_secs(300);
/// Longest wait for every gatherer to report its sockets closed after SIGUSR1.
const CLOSE_DEADLINE: Duration = Duration::from_secs(30);

/// Why a run drains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Why {
    Duration,
    Interrupted,
}

type Children = [(ProcessSpec, CancellationToken, tokio::task::JoinHandle<()>)];

/// Stops the feed, then waits until production holds everything. `shutdown` (a second
/// Ctrl-C) cuts the wait short.
pub(super) async fn drain(
    children: &Children,
    shared: &Shared,
    client: &reqwest::Client,
    production: Option<&kd_production::Store>,
    shutdown: &CancellationToken,
    why: Why,
) {
    shared.update(|s| s.phase = "draining".into());
    let ours = children.iter().any(|(s, _, _)| s.kind == Kind::Sim);
    let what = match why {
        Why::Duration => "duration reached",
        Why::Interrupted => "Ctrl-C (press it again to stop at once)",
    };
    let mut feed = FeedStop::default();
    if ours {
        eprintln!("up: {what} — stopping the exchange, then draining gatherers and deduplicator");
        stop_our_exchange(children, shared, client).await;
    } else {
        eprintln!(
            "up: {what} — the exchange is not ours: closing the gatherers' sockets first \
             (SIGUSR1), then draining gatherers → deduplicator into production"
        );
        feed.signal_new(shared, client).await;
        feed.wait_closed(shared, client, shutdown).await;
    }
    let end = Instant::now() + DRAIN_DEADLINE;
    let mut last_heads: Option<Vec<(String, Option<u64>)>> = None;
    let mut stable = 0;
    while Instant::now() < end && !shutdown.is_cancelled() {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if !ours {
            // A gatherer restarted meanwhile collects again: its new process is told too.
            feed.signal_new(shared, client).await;
        }
        let Some(snapshot) = shared.snapshot() else {
            break;
        };
        let r = progress::read(client, &snapshot, production).await;
        let all_answer = r.backlog.iter().all(|(_, d)| d.is_some());
        let drained = all_answer && r.backlog.iter().all(|(_, d)| *d == Some(0));
        // A gatherer that could not be told keeps receiving: its heads never stand still,
        // so one drained reading (everything committed so far is in production) is as far
        // as a drain goes then.
        let unchanged = feed.unreachable || last_heads.as_ref() == Some(&r.heads);
        stable = if drained && unchanged { stable + 1 } else { 0 };
        last_heads = Some(r.heads.clone());
        if stable >= 3 {
            eprintln!(
                "up: drained — every gatherer's rows are in production ({} rows)",
                r.production_rows.map_or("?".into(), |n| n.to_string())
            );
            return;
        }
    }
    eprintln!(
        "up: drain did not complete within {} s; stopping anyway",
        DRAIN_DEADLINE.as_secs()
    );
}

/// Our simulator stops publishing but keeps serving REST, so gatherers can still repair what
/// they missed; without that control, stopping it is the fallback.
async fn stop_our_exchange(children: &Children, shared: &Shared, client: &reqwest::Client) {
    for (spec, token, _) in children {
        if spec.kind != Kind::Sim {
            continue;
        }
        let url = format!("{}{SIM_STOP_PUBLISHING}", spec.base_url());
        let ok = client
            .post(&url)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ok {
            // Injected faults end with the exchange: a `ws-close` every few seconds would
            // make every gatherer resubscribe (new snapshots, new gap rows) and the drain
            // would never see their stores still.
            let url = format!("{}{SIM_FAULTS}", spec.base_url());
            if !client
                .delete(&url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                eprintln!("up: could not clear the simulator's faults; draining with them");
            }
            continue;
        }
        eprintln!("up: the simulator has no {SIM_STOP_PUBLISHING}; stopping it instead");
        token.cancel();
        // A stopped simulator flushes its truth log on SIGTERM; wait until it has gone.
        let end = Instant::now() + supervisor::STOP_GRACE;
        while Instant::now() < end && pid_of(shared, &spec.name).is_some() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn pid_of(shared: &Shared, name: &str) -> Option<u32> {
    shared
        .snapshot()?
        .processes
        .iter()
        .find(|p| p.name == name)?
        .pid
}

/// The gatherers told to close their feed, by the pid that was told.
#[derive(Debug, Default)]
struct FeedStop {
    told: BTreeMap<String, u32>,
    /// A gatherer could not be told (no pid, no answer): its heads may keep moving.
    unreachable: bool,
}

impl FeedStop {
    /// Sends SIGUSR1 to every gatherer process not yet told. Only to one whose `/health`
    /// answers: a process that has not yet installed its handler would die of SIGUSR1 (the
    /// default action) without committing what it holds. One being restarted, or not yet
    /// answering, is told on a later round.
    async fn signal_new(&mut self, shared: &Shared, client: &reqwest::Client) {
        let Some(snapshot) = shared.snapshot() else {
            return;
        };
        for p in snapshot
            .processes
            .iter()
            .filter(|p| p.kind == Kind::Gatherer)
        {
            let Some(pid) = p.pid else { continue };
            if self.told.get(&p.name) == Some(&pid) {
                continue;
            }
            if crate::probe::json(client, &p.health_url).await.is_none() {
                continue;
            }
            let Ok(raw) = i32::try_from(pid) else {
                continue;
            };
            match nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(raw),
                nix::sys::signal::Signal::SIGUSR1,
            ) {
                Ok(()) => {
                    self.told.insert(p.name.clone(), pid);
                }
                // Gone since the snapshot: its restart is told on a later round.
                Err(nix::errno::Errno::ESRCH) => {}
                Err(e) => {
                    if !self.unreachable {
                        eprintln!(
                            "up: cannot signal {} (pid {pid}): {e}; draining what it has \
                             committed so far",
                            p.name
                        );
                    }
                    self.unreachable = true;
                }
            }
        }
    }

    /// Waits until every gatherer told reports no connection open (`/health`
    /// `connections_up` 0), bounded by [`CLOSE_DEADLINE`].
    async fn wait_closed(
        &self,
        shared: &Shared,
        client: &reqwest::Client,
        shutdown: &CancellationToken,
    ) {
        let end = Instant::now() + CLOSE_DEADLINE;
        let urls: Vec<(String, String)> = shared.snapshot().map_or_else(Vec::new, |s| {
            s.processes
                .iter()
                .filter(|p| self.told.contains_key(&p.name))
                .map(|p| (p.name.clone(), p.health_url.clone()))
                .collect()
        });
        let mut open: Vec<String> = Vec::new();
        while Instant::now() < end && !shutdown.is_cancelled() {
            open.clear();
            for (name, url) in &urls {
                let up = crate::probe::json(client, url)
                    .await
                    .and_then(|h| crate::probe::u64_at(&h, "connections_up"));
                if up != Some(0) {
                    open.push(name.clone());
                }
            }
            if open.is_empty() {
                eprintln!(
                    "up: sockets closed on {} gatherer(s); draining what they hold",
                    urls.len()
                );
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        eprintln!(
            "up: sockets still open after {} s on {}; draining anyway",
            CLOSE_DEADLINE.as_secs(),
            open.join(", ")
        );
    }
}
