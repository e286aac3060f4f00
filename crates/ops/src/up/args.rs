//! Flags of `kalshi-data up`.

use std::path::PathBuf;

/// Flags of `kalshi-data up`. With none, everything runs on embedded storage under `./data`.
#[derive(Debug, Clone, clap::Args)]
pub struct UpArgs {
    /// Where everything lives: stores, production database, archive, keys, logs, `up.json`.
    #[arg(long, default_value = "data", env = "KALSHI_DATA_UP_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Run this many seconds, then end like an operator would: stop the exchange, let the
    /// gatherers and the deduplicator drain until production holds everything, then stop.
    #[arg(long)]
    pub duration: Option<u64>,
    /// Simulator seed (simulator only, as are the next flags up to --truth).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Simulator markets at start.
    #[arg(long, default_value_t = 200)]
    pub markets: usize,
    /// Simulator data messages per second.
    #[arg(long, default_value_t = 1_000)]
    pub rate: u32,
    /// Simulator fault (repeatable), e.g. `ws-drop:0.01` or `http:503:/markets*:0.05`.
    #[arg(long = "fault")]
    pub faults: Vec<String>,
    /// Ground-truth log of the simulator. Default: `DATA_DIR/truth.jsonl`.
    #[arg(long)]
    pub truth: Option<PathBuf>,
    /// Production store URL. Default: `sqlite://DATA_DIR/production.db`. A URL with a
    /// password is better given through the environment (a command line is world-readable);
    /// `up` hands it to its children the same way and writes it to `up.json` redacted.
    #[arg(long, env = "KALSHI_DATA_PRODUCTION", hide_env_values = true)]
    pub production: Option<String>,
    /// Archive URL. Default: `file://DATA_DIR/archive`.
    #[arg(long)]
    pub archive: Option<String>,
    /// Number of gatherers.
    #[arg(long, default_value_t = 3)]
    pub gatherers: usize,
    /// Run a subset against a real exchange instead: a TOML file naming the processes (see
    /// docs/operations.md).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Capture a real exchange instead of the simulator: `kalshi` (production,
    /// api.elections.kalshi.com), `demo` (demo-api.kalshi.co) or a base URL such as
    /// `http://127.0.0.1:8787` (REST is BASE/trade-api/v2, the WebSocket
    /// ws(s)://…/trade-api/ws/v2). Needs --key-id and --private-key; a preflight checks
    /// connectivity, the key and the clock before anything starts (exit 2 when it fails).
    #[arg(
        long,
        value_name = "kalshi|demo|URL",
        conflicts_with_all = ["config", "faults", "sim_args", "truth", "seed", "markets", "rate"]
    )]
    pub exchange: Option<String>,
    /// Kalshi API key id (with --exchange). Better through the environment: a command line
    /// is world-readable. `up` hands it to the gatherers through theirs.
    #[arg(long, env = "KALSHI_DATA_UP_KEY_ID", hide_env_values = true)]
    pub key_id: Option<String>,
    /// PEM file of the API key's private key (with --exchange), mode 0600.
    #[arg(long, env = "KALSHI_DATA_UP_PRIVATE_KEY", value_name = "PATH")]
    pub private_key: Option<PathBuf>,
    /// Print progress lines instead of a live bar even on a terminal.
    #[arg(long)]
    pub plain: bool,
    /// Extra simulator flag (repeatable, one argument each), to rehearse an exchange
    /// behaviour: e.g. `--sim-arg=--rest-book-cache-ms --sim-arg=2000` (see `kalshi-data sim
    /// --help`).
    #[arg(long = "sim-arg", allow_hyphen_values = true, value_name = "ARG")]
    pub sim_args: Vec<String>,
    /// Extra line of every gatherer's configuration (repeatable), a `key = value` of
    /// `docs/gatherer.md`, e.g. `--gatherer-setting 'snapshot_poll_interval_mins = 1'`.
    #[arg(long = "gatherer-setting", value_name = "KEY = VALUE")]
    pub gatherer_settings: Vec<String>,
    /// Seconds a running child may stay silent on its `/health` (after its first answer)
    /// before `up` kills and restarts it, as systemd's watchdog would; 0 never does. Any
    /// answer counts, a 503 too: only a hung process is restarted.
    #[arg(long, default_value_t = super::liveness::DEFAULT_HUNG_AFTER.as_secs(), env = "KALSHI_DATA_UP_HUNG_AFTER", value_name = "SECS")]
    pub hung_after: u64,
}

impl UpArgs {
    /// True when `up` runs its own simulator (neither `--exchange` nor `--config`), so there
    /// is a ground truth to verify against.
    pub fn simulated(&self) -> bool {
        self.exchange.is_none() && self.config.is_none()
    }

    pub fn truth_path(&self) -> PathBuf {
        self.truth
            .clone()
            .unwrap_or_else(|| self.data_dir.join("truth.jsonl"))
    }

    pub fn production_url(&self) -> String {
        self.production.clone().unwrap_or_else(|| {
            format!("sqlite://{}", self.data_dir.join("production.db").display())
        })
    }

    pub fn archive_url(&self) -> String {
        self.archive
            .clone()
            .unwrap_or_else(|| format!("file://{}", self.data_dir.join("archive").display()))
    }
}
