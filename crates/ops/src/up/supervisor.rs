//! Supervision: each child runs in its own task that restarts it with backoff whenever it
//! exits — `Restart=always` as systemd does in production — until its token is cancelled;
//! then it gets SIGTERM, time to finish, and SIGKILL only if it does not.
//!
//! A child that stops answering its health URL is killed and restarted too
//! ([`super::liveness`]), as systemd's watchdog does in production.
//!
//! Children run in their own process group so a Ctrl-C at the terminal reaches only `up`,
//! which then stops them in order instead of racing their own signal handlers.

use super::liveness;
use super::plan::ProcessSpec;
use super::state::UpState;
use kd_core::backoff::{Backoff, BackoffPolicy};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

/// Restart delays: 1 s doubling to 30 s, like `RestartSec` with a cap.
pub const RESTART: BackoffPolicy =
    BackoffPolicy::new(Duration::from_secs(1), Duration::from_secs(30));
/// A child that ran this long is considered healthy: its next failure restarts after 1 s.
const STABLE_AFTER: Duration = Duration::from_secs(30);
/// Time a child gets between SIGTERM and SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(20);

/// Shared view of what runs, written to `up.json` on every change.
#[derive(Debug, Clone)]
pub struct Shared {
    pub state: Arc<Mutex<UpState>>,
    pub data_dir: PathBuf,
    /// A child silent on its health URL this long is killed and restarted (zero: never).
    pub hung_after: Duration,
}

impl Shared {
    pub fn update(&self, f: impl FnOnce(&mut UpState)) {
        if let Ok(mut s) = self.state.lock() {
            f(&mut s);
            if let Err(e) = s.write(&self.data_dir) {
                tracing::warn!(error = %e, "cannot write up.json");
            }
        }
    }

    pub fn snapshot(&self) -> Option<UpState> {
        self.state.lock().ok().map(|s| s.clone())
    }
}

/// Runs `spec` until `stop` is cancelled, restarting it whenever it exits.
pub async fn supervise(exe: PathBuf, spec: ProcessSpec, shared: Shared, stop: CancellationToken) {
    let mut backoff = Backoff::new(RESTART);
    loop {
        if stop.is_cancelled() {
            return;
        }
        let started = Instant::now();
        let mut child = match spawn(&exe, &spec) {
            Ok(child) => child,
            Err(e) => {
                tracing::error!(process = %spec.name, error = %e, "cannot start");
                if sleep_or_stop(backoff.next_delay(), &stop).await {
                    return;
                }
                continue;
            }
        };
        let pid = child.id();
        shared.update(|s| set_pid(s, &spec.name, pid));
        let hung = liveness::until_hung(spec.health_url(), shared.hung_after);
        let status = tokio::select! {
            status = child.wait() => status.map_or_else(|e| e.to_string(), describe_exit),
            () = hung => {
                // SIGKILL: a stopped or deadlocked process cannot act on SIGTERM anyway.
                let _ = child.kill().await;
                format!(
                    "hung: no answer on {} for {} s, killed",
                    spec.health_url(),
                    shared.hung_after.as_secs()
                )
            }
            () = stop.cancelled() => {
                terminate(&mut child, &spec.name).await;
                shared.update(|s| set_pid(s, &spec.name, None));
                return;
            }
        };
        shared.update(|s| set_pid(s, &spec.name, None));
        if stop.is_cancelled() {
            return;
        }
        if started.elapsed() >= STABLE_AFTER {
            backoff.reset();
        }
        let delay = backoff.next_delay();
        eprintln!(
            "up: {} (pid {}) exited: {status}; restarting in {:.1} s — log: {}",
            spec.name,
            pid.unwrap_or(0),
            delay.as_secs_f64(),
            spec.log.display()
        );
        shared.update(|s| {
            if let Some(p) = s.processes.iter_mut().find(|p| p.name == spec.name) {
                p.restarts += 1;
            }
        });
        if sleep_or_stop(delay, &stop).await {
            return;
        }
    }
}

fn set_pid(s: &mut UpState, name: &str, pid: Option<u32>) {
    if let Some(p) = s.processes.iter_mut().find(|p| p.name == name) {
        p.pid = pid;
    }
}

fn spawn(exe: &std::path::Path, spec: &ProcessSpec) -> std::io::Result<Child> {
    if let Some(parent) = spec.log.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&spec.log)?;
    let err = log.try_clone()?;
    let mut cmd = Command::new(exe);
    cmd.args(&spec.args)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(std::process::Stdio::null())
        .stdout(log)
        .stderr(err)
        .process_group(0)
        .kill_on_drop(true);
    cmd.spawn()
}

/// SIGTERM, wait up to [`STOP_GRACE`], then SIGKILL.
async fn terminate(child: &mut Child, name: &str) {
    if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    match tokio::time::timeout(STOP_GRACE, child.wait()).await {
        Ok(_) => {}
        Err(_) => {
            eprintln!(
                "up: {name} did not stop within {} s; killing it",
                STOP_GRACE.as_secs()
            );
            let _ = child.kill().await;
        }
    }
}

/// Returns true when stopped during the sleep.
async fn sleep_or_stop(delay: Duration, stop: &CancellationToken) -> bool {
    tokio::select! {
        () = tokio::time::sleep(delay) => false,
        () = stop.cancelled() => true,
    }
}

fn describe_exit(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt as _;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => status.to_string(),
    }
}
