//! `kalshi-data up`: the whole platform on one machine, each component its own supervised OS
//! process, on embedded storage under one data directory.
//!
//! - [`args`]: flags. [`plan`]: the command line of each child. [`supervisor`]: restart with
//!   backoff, stop with SIGTERM. [`state`]: `DATA_DIR/up.json`. [`progress`]: live figures.
//! - [`custom`]: `--config`, any subset of processes (e.g. against the real exchange).
//! - [`exchange`]: `--exchange kalshi|demo|URL`, the real exchange with no simulator, after
//!   the [`preflight`] checks (connectivity, key, clock) pass.
//!
//! Start order: key pair, schema (`migrate`), simulator, gatherers, deduplicator, exporter.
//! Stop order with `--duration` or a first Ctrl-C ([`signals`], `drain`): the feed first (our
//! simulator stops publishing; on an exchange that is not ours every gatherer closes its
//! sockets on SIGUSR1 and keeps serving pulls), then wait until every gatherer's store head has
//! stopped growing and the deduplicator has acknowledged every row, then the rest. A second
//! Ctrl-C or SIGTERM stops at once.

pub mod args;
pub mod custom;
mod drain;
pub mod exchange;
pub mod liveness;
pub mod plan;
pub mod preflight;
pub mod progress;
pub mod signals;
pub mod state;
mod summary;
pub mod supervisor;

pub use args::UpArgs;

use drain::{Why, drain};
use plan::{Keys, ProcessSpec};
pub use signals::Stop;
use state::{Kind, ProcessState, UpState};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use supervisor::Shared;
use tokio_util::sync::CancellationToken;

/// Key id registered with the simulator for the generated key pair.
pub const LOCAL_KEY_ID: &str = "kalshi-data-local";
/// The simulator's control endpoint that stops publishing while REST keeps answering.
pub const SIM_STOP_PUBLISHING: &str = "/_sim/stop-publishing";
/// The simulator's fault list (`DELETE` clears it).
pub const SIM_FAULTS: &str = "/_sim/faults";
/// How often progress is shown.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum UpError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Lock(#[from] kd_core::dir_lock::LockError),
    #[error("key pair: {0}")]
    Keys(String),
    #[error("cannot find this program's path to start the children: {0}")]
    Exe(std::io::Error),
    #[error("no free port on 127.0.0.1: {0}")]
    Port(std::io::Error),
    #[error(transparent)]
    State(#[from] state::StateError),
    #[error("--config {path}: {reason}")]
    Config { path: PathBuf, reason: String },
    #[error(transparent)]
    Exchange(#[from] exchange::BadExchange),
    /// One line per failed check; the command exits 2.
    #[error(transparent)]
    Preflight(#[from] preflight::PreflightFailed),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> UpError + '_ {
    move |source| UpError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Runs `up` until Ctrl-C/SIGTERM or the end of `--duration`.
pub async fn run(args: &UpArgs) -> Result<(), UpError> {
    run_until(args, Stop::on_signals()).await
}

/// [`run`] with the stop tokens given (tests cancel them themselves).
pub async fn run_until(args: &UpArgs, stop: Stop) -> Result<(), UpError> {
    // Before the platform runs, any stop request ends the start-up.
    let shutdown = stop.drain.clone();
    // The real exchange is checked before anything is created or started.
    let real = match &args.exchange {
        Some(text) => {
            let ex = exchange::Exchange::parse(text)?;
            let creds = preflight::credentials(args)?;
            let passed = preflight::run(&ex, &creds).await?;
            for line in passed.lines(&ex) {
                eprintln!("{line}");
            }
            Some((ex, creds))
        }
        None => None,
    };
    let dir = args.data_dir.clone();
    for sub in ["", "logs", "config", "keys"] {
        let d = dir.join(sub);
        std::fs::create_dir_all(&d).map_err(io(&d))?;
    }
    // Held until `run_until` returns (the children are stopped by then). A kernel lock, not
    // the pid in up.json: two `up`s started together both saw no live pid there.
    let _lock = kd_core::dir_lock::lock_dir(&dir, "kalshi-data up")?;
    let exe = std::env::current_exe().map_err(UpError::Exe)?;
    let specs = match (&args.config, &real) {
        (Some(path), _) => custom::specs(path, &dir)?,
        (None, Some((ex, creds))) => {
            let specs = exchange::specs(args, ex, creds)?;
            migrate(&exe, &args.production_url(), &dir, &shutdown).await;
            specs
        }
        (None, None) => {
            let keys = ensure_keys(&dir.join("keys")).await?;
            let specs = local_specs(args, &keys)?;
            migrate(&exe, &args.production_url(), &dir, &shutdown).await;
            specs
        }
    };
    let state = UpState {
        pid: std::process::id(),
        started_at: kd_core::TimestampUs::now().to_rfc3339(),
        data_dir: dir.clone(),
        // Never the password: up.json is read by `status` and by people.
        production: kd_core::config::redact_url(&args.production_url()),
        archive: args.archive_url(),
        truth: args.simulated().then(|| args.truth_path()),
        processes: specs.iter().map(process_state).collect(),
        phase: "running".into(),
    };
    state.write(&dir)?;
    let shared = Shared {
        state: Arc::new(Mutex::new(state)),
        data_dir: dir.clone(),
        hung_after: Duration::from_secs(args.hung_after),
    };

    // One token per child so the exchange can be stopped before the rest.
    let mut children = Vec::new();
    for spec in &specs {
        let token = CancellationToken::new();
        let task = tokio::spawn(supervisor::supervise(
            exe.clone(),
            spec.clone(),
            shared.clone(),
            token.clone(),
        ));
        children.push((spec.clone(), token, task));
        if spec.kind == Kind::Sim {
            // Gatherers would only retry against a port nobody listens on yet.
            wait_answering(&spec.health_url(), Duration::from_secs(30), &shutdown).await;
        }
    }
    summary::print(args, real.as_ref().map(|(ex, _)| ex), &specs);

    let production = kd_production::open(&args.production_url()).await.ok();
    let client = crate::probe::client();
    let started = Instant::now();
    let deadline = args.duration.map(|s| started + Duration::from_secs(s));
    let mut ticker = Progress::new(args.plain);
    let mut prev: Option<(progress::Reading, Instant)> = None;
    loop {
        let wait = PROGRESS_EVERY.min(deadline.map_or(PROGRESS_EVERY, |d| {
            d.saturating_duration_since(Instant::now())
        }));
        tokio::select! {
            () = stop.now.cancelled() => break,
            () = stop.drain.cancelled() => {
                ticker.finish();
                drain(&children, &shared, &client, production.as_ref(), &stop.now, Why::Interrupted).await;
                break;
            }
            () = tokio::time::sleep(wait) => {}
        }
        if let Some(snapshot) = shared.snapshot() {
            let reading = progress::read(&client, &snapshot, production.as_ref()).await;
            let now = Instant::now();
            ticker.show(&progress::line(
                prev.as_ref().map(|(r, t)| (r, *t)),
                (&reading, now),
                started,
            ));
            prev = Some((reading, now));
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            ticker.finish();
            drain(
                &children,
                &shared,
                &client,
                production.as_ref(),
                &stop.now,
                Why::Duration,
            )
            .await;
            break;
        }
    }
    ticker.finish();
    eprintln!(
        "up: stopping every process (SIGTERM, then up to {} s each)",
        supervisor::STOP_GRACE.as_secs()
    );
    shared.update(|s| s.phase = "stopping".into());
    for (_, token, _) in &children {
        token.cancel();
    }
    for (spec, _, task) in children {
        if task.await.is_err() {
            eprintln!("up: supervisor of {} ended abnormally", spec.name);
        }
    }
    shared.update(|s| s.phase = "stopped".into());
    if let Some(store) = &production {
        let mut parts = Vec::new();
        for t in kd_core::Table::ALL {
            if let Ok(n) = store.count(t).await {
                parts.push(format!("{t}={n}"));
            }
        }
        eprintln!("up: stopped. production rows: {}", parts.join(" "));
    }
    if args.simulated() {
        eprintln!(
            "up: check it: kalshi-data verify --truth {} --production {}",
            args.truth_path().display(),
            kd_core::config::redact_url(&args.production_url())
        );
    } else if real.is_some() {
        eprintln!(
            "up: check it: kalshi-data audit --production {}",
            kd_core::config::redact_url(&args.production_url())
        );
    }
    Ok(())
}

/// The local plan: simulator, gatherers, deduplicator, exporter on fresh loopback ports.
fn local_specs(args: &UpArgs, keys: &Keys) -> Result<Vec<ProcessSpec>, UpError> {
    let dir = &args.data_dir;
    let n_gatherers = args.gatherers.max(1);
    // Simulator, gatherers, deduplicator, exporter: all distinct.
    let ports = plan::free_ports(n_gatherers + 3).map_err(UpError::Port)?;
    let (sim_port, dedup_port, export_port) = (ports[0], ports[1], ports[2]);
    let mut specs = vec![plan::sim(args, keys, sim_port)];
    let mut gatherers = Vec::new();
    for (i, &port) in ports[3..].iter().enumerate() {
        let name = plan::gatherer_name(i);
        let config_path = dir.join("config").join(format!("{name}.toml"));
        let text = plan::gatherer_config(&name, dir, port, sim_port, keys, &args.gatherer_settings);
        std::fs::write(&config_path, text).map_err(io(&config_path))?;
        specs.push(plan::gatherer(args, &name, port));
        gatherers.push((name, port));
    }
    specs.push(plan::dedup(args, dedup_port, &gatherers, sim_port));
    specs.push(plan::exporter(args, export_port));
    Ok(specs)
}

fn process_state(spec: &ProcessSpec) -> ProcessState {
    ProcessState {
        name: spec.name.clone(),
        kind: spec.kind,
        pid: None,
        port: spec.port,
        health_url: spec.health_url(),
        metrics_url: spec.metrics_url(),
        restarts: 0,
        data_dir: spec.data_dir.clone(),
        log: spec.log.clone(),
    }
}

/// The key pair the gatherers sign with and the simulator checks (generated once).
async fn ensure_keys(dir: &Path) -> Result<Keys, UpError> {
    let private_pem = dir.join("kalshi-data.pem");
    let public_pem = dir.join("kalshi-data.pub.pem");
    if !(private_pem.exists() && public_pem.exists()) {
        let d = dir.to_owned();
        tokio::task::spawn_blocking(move || kd_kalshi::auth::write_keypair(&d, "kalshi-data"))
            .await
            .map_err(|e| UpError::Keys(e.to_string()))?
            .map_err(|e| UpError::Keys(e.to_string()))?;
    }
    Ok(Keys {
        key_id: LOCAL_KEY_ID.into(),
        private_pem,
        public_pem,
    })
}

/// Creates or upgrades the production schema; retried with backoff while production is down.
async fn migrate(exe: &Path, url: &str, dir: &Path, shutdown: &CancellationToken) {
    let mut backoff = kd_core::backoff::Backoff::new(kd_core::backoff::BackoffPolicy::DATABASE);
    let log = dir.join("logs").join("migrate.log");
    loop {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log);
        let mut cmd = tokio::process::Command::new(exe);
        // The URL may hold a password: through the environment, not the command line.
        cmd.arg("migrate").env(plan::PRODUCTION_ENV_DEDUP, url);
        if let Ok(f) = out {
            if let Ok(e) = f.try_clone() {
                cmd.stderr(e);
            }
            cmd.stdout(f);
        }
        match cmd.status().await {
            Ok(s) if s.success() => return,
            Ok(s) => eprintln!("up: migrate failed ({s}); see {}", log.display()),
            Err(e) => eprintln!("up: cannot run migrate: {e}"),
        }
        tokio::select! {
            () = tokio::time::sleep(backoff.next_delay()) => {}
            () = shutdown.cancelled() => return,
        }
    }
}

/// Polls `url` until it answers (any HTTP status) or `limit` passes.
async fn wait_answering(url: &str, limit: Duration, shutdown: &CancellationToken) {
    let client = crate::probe::client();
    let end = Instant::now() + limit;
    while Instant::now() < end && !shutdown.is_cancelled() {
        if client.get(url).send().await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A live line on a terminal, plain lines otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    fn new(plain: bool) -> Progress {
        use std::io::IsTerminal as _;
        let bar = (!plain && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Progress { bar }
    }

    fn show(&mut self, line: &str) {
        match &self.bar {
            Some(bar) => bar.set_message(line.to_string()),
            None => eprintln!("{line}"),
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish();
        }
    }
}
