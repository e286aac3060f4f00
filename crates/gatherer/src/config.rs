//! What the operator writes: the gatherer's configuration (`[gatherer]` TOML file, then
//! `KALSHI_DATA_GATHERER_…` environment variables, then flags). Units are in the key names.

use kd_core::backoff::BackoffPolicy;
use kd_core::config::{ConfigError, Secret};
use kd_kalshi::rest::MaintenanceConfig;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Largest injected clock offset (one day): beyond it the shift is a typo, not a test.
const MAX_CLOCK_OFFSET_MS: u64 = 86_400_000;

/// Environment prefix of every gatherer key.
pub const ENV_PREFIX: &str = "KALSHI_DATA_GATHERER_";

/// The gatherer's configuration. Every key has a default that runs against a local simulator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GathererConfig {
    /// Name of this gatherer (`gatherer-a`): tags its gap records and pull responses. Stored in
    /// the data directory on first start; a later start with a different id is refused, so two
    /// gatherers never share one store by accident.
    pub gatherer_id: String,
    /// Kalshi REST base URL, including `/trade-api/v2`.
    pub rest_url: String,
    /// Kalshi WebSocket URL (`wss://…/trade-api/ws/v2`).
    pub ws_url: String,
    /// Kalshi API key id. Empty: connect unauthenticated (only the simulator accepts that).
    pub key_id: Secret,
    /// Path of the PEM private key. Refused when group or others can read it.
    pub private_key_path: Option<PathBuf>,
    /// Directory of the local store (`store.sqlite` and its WAL).
    pub data_dir: PathBuf,
    /// Address of the pull API, `/health`, `/ready` and `/metrics`. Loopback unless configured;
    /// any other address requires `token` and `tls_cert_path`/`tls_key_path`.
    pub listen: SocketAddr,
    /// Bearer token the deduplicator presents. Empty: no check (loopback only).
    pub token: Secret,
    /// PEM certificate chain served when listening beyond loopback.
    pub tls_cert_path: Option<PathBuf>,
    /// PEM private key of `tls_cert_path`.
    pub tls_key_path: Option<PathBuf>,
    /// Most rows the writer commits in one transaction.
    pub writer_batch_rows: usize,
    /// Longest a received row waits for more rows before its batch is committed. Rows received
    /// in this window are what a `kill -9` can lose (see docs/gatherer.md).
    pub writer_flush_interval_ms: u64,
    /// Capacity of the router → writer queue, in records. When full, the socket reader waits
    /// up to `router_backpressure_ms`, then the record is dropped, counted and recorded as a gap.
    pub writer_queue_records: usize,
    /// Longest the router waits for room in a full writer queue before dropping (counted).
    pub router_backpressure_ms: u64,
    /// Number of WebSocket connections in the pool.
    pub connections: usize,
    /// Most markets per `orderbook_delta` subscription (shrunk automatically on error 26).
    pub markets_per_subscription: usize,
    /// A connection with no frame (data or ping) for this long is replaced.
    pub silence_timeout_secs: u64,
    /// Interval of the registry's full REST reconciliation.
    pub reconcile_interval_secs: u64,
    /// Interval of the REST order-book poller (1–15 minutes; 0 turns it off).
    pub snapshot_poll_interval_mins: u64,
    /// Acknowledged rows younger than this are kept.
    pub retention_secs: u64,
    /// How often the retention pass runs.
    pub retention_interval_secs: u64,
    /// Backoff of the market registry's REST calls (retried forever): first delay…
    pub registry_backoff_base_ms: u64,
    /// …doubling up to this cap (DESIGN §6: 1 s → 5 min). 0–25 % jitter is added to each delay.
    pub registry_backoff_max_ms: u64,
    /// Backoff of each WebSocket connection's reconnects: first delay…
    pub connection_backoff_base_ms: u64,
    /// …doubling up to this cap (DESIGN §6: 1 s → 5 min).
    pub connection_backoff_max_ms: u64,
    /// Backoff of the snapshot poller's attempts at one market: first delay…
    pub poller_backoff_base_ms: u64,
    /// …doubling up to this cap (DESIGN §6: 1 s → 1 min).
    pub poller_backoff_max_ms: u64,
    /// Backoff of the trade backfill's REST pages (gap and downtime repair): first delay…
    pub repair_backoff_base_ms: u64,
    /// …doubling up to this cap (the poller's row of DESIGN §6: 1 s → 1 min).
    pub repair_backoff_max_ms: u64,
    /// Exchange down (503 / `exchange_active=false`): wait until its
    /// `exchange_estimated_resume_time` plus this margin before looking again (DESIGN §6: 10 s).
    pub maintenance_resume_margin_ms: u64,
    /// …but never look at a down exchange more often than this (DESIGN §6: 30 s).
    pub maintenance_min_wait_ms: u64,
    /// Interval of `/exchange/status` polls while that call itself fails (DESIGN §6: 30 s).
    pub maintenance_status_retry_ms: u64,
    /// Fault injection, for tests only: shifts every reading of this gatherer's wall clock by
    /// this many milliseconds (signed), as on a host whose clock is off. Leave 0 in
    /// production. Exchange times are corrected by the measured offset either way
    /// (`gatherer_clock_offset_seconds`); `received_at` shows the shifted clock.
    pub clock_offset_ms: i64,
    /// Diagnostic, for tests only: market tickers whose order book this gatherer never
    /// subscribes (their trades and tickers still arrive on the all-market channels), so a test
    /// can show that `verify` names a market no gatherer subscribed to. Leave empty.
    pub ignore_markets: Vec<String>,
    /// How NO-side order-book prices are handled (docs/wire.md "NO-side price scale").
    /// `checked` (default): every `orderbook_delta` subscribe sends `use_yes_price: true`, NO
    /// levels are converted to the stored NO-bid scale, and each subscription's answer is
    /// checked against the scale asked for. `as_received` is a diagnostic only (tests of the
    /// check): no `use_yes_price` is sent and NO levels are stored as they arrive — wrong on
    /// any exchange whose default is YES-leg pricing.
    pub no_price_scale: NoPriceScale,
}

/// `no_price_scale`: the NO side's price-scale handling.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoPriceScale {
    /// Send `use_yes_price: true`, convert, and check every subscription's answer.
    #[default]
    Checked,
    /// Diagnostic: send nothing, store NO levels as received, check nothing.
    AsReceived,
}

/// Fields the command line may override (only the `Some` ones apply).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gatherer_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rest_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ws_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_key_path: Option<PathBuf>,
}

impl Default for GathererConfig {
    fn default() -> Self {
        GathererConfig {
            gatherer_id: "gatherer-a".into(),
            rest_url: "http://127.0.0.1:8700/trade-api/v2".into(),
            ws_url: "ws://127.0.0.1:8700/trade-api/ws/v2".into(),
            key_id: Secret::default(),
            private_key_path: None,
            data_dir: PathBuf::from("data/gatherer-a"),
            listen: SocketAddr::from(([127, 0, 0, 1], 8710)),
            token: Secret::default(),
            tls_cert_path: None,
            tls_key_path: None,
            writer_batch_rows: 5_000,
            writer_flush_interval_ms: 10,
            writer_queue_records: 200_000,
            router_backpressure_ms: 2_000,
            connections: 4,
            markets_per_subscription: 1_000,
            silence_timeout_secs: 30,
            reconcile_interval_secs: 300,
            snapshot_poll_interval_mins: 15,
            retention_secs: 7 * 24 * 3600,
            retention_interval_secs: 60,
            registry_backoff_base_ms: 1_000,
            registry_backoff_max_ms: 300_000,
            connection_backoff_base_ms: 1_000,
            connection_backoff_max_ms: 300_000,
            poller_backoff_base_ms: 1_000,
            poller_backoff_max_ms: 60_000,
            repair_backoff_base_ms: 1_000,
            repair_backoff_max_ms: 60_000,
            maintenance_resume_margin_ms: 10_000,
            maintenance_min_wait_ms: 30_000,
            maintenance_status_retry_ms: 30_000,
            clock_offset_ms: 0,
            ignore_markets: Vec::new(),
            no_price_scale: NoPriceScale::Checked,
        }
    }
}

impl GathererConfig {
    /// Loads the configuration from its layers and validates it.
    pub fn load(
        file: Option<&std::path::Path>,
        overrides: &Overrides,
    ) -> Result<Self, ConfigError> {
        let config: GathererConfig = kd_core::config::load(file, ENV_PREFIX, overrides)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every rule that serde cannot express; the error names the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = ConfigError::invalid;
        if self.gatherer_id.is_empty()
            || !self
                .gatherer_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(bad(
                "gatherer_id",
                "must be non-empty letters, digits, `-` or `_`",
            ));
        }
        if self.writer_batch_rows == 0 {
            return Err(bad("writer_batch_rows", "must be at least 1"));
        }
        if self.writer_queue_records < self.writer_batch_rows {
            return Err(bad(
                "writer_queue_records",
                "must be at least writer_batch_rows",
            ));
        }
        if self.connections == 0 {
            return Err(bad("connections", "must be at least 1"));
        }
        if self.markets_per_subscription == 0 {
            return Err(bad("markets_per_subscription", "must be at least 1"));
        }
        if self.silence_timeout_secs == 0 {
            return Err(bad("silence_timeout_secs", "must be at least 1"));
        }
        if self.snapshot_poll_interval_mins > 15 {
            return Err(bad(
                "snapshot_poll_interval_mins",
                "must be 0 (off) or 1..=15",
            ));
        }
        if self.key_id.is_empty() != self.private_key_path.is_none() {
            return Err(bad(
                "private_key_path",
                "key_id and private_key_path are set together (both or neither)",
            ));
        }
        if !self.listen.ip().is_loopback() {
            if self.token.is_empty() {
                return Err(bad(
                    "token",
                    "required when `listen` is not a loopback address",
                ));
            }
            if self.tls_cert_path.is_none() || self.tls_key_path.is_none() {
                return Err(bad(
                    "tls_cert_path",
                    "TLS certificate and key are required when `listen` is not a loopback address",
                ));
            }
        }
        for (base_key, base, max_key, max) in [
            (
                "registry_backoff_base_ms",
                self.registry_backoff_base_ms,
                "registry_backoff_max_ms",
                self.registry_backoff_max_ms,
            ),
            (
                "connection_backoff_base_ms",
                self.connection_backoff_base_ms,
                "connection_backoff_max_ms",
                self.connection_backoff_max_ms,
            ),
            (
                "poller_backoff_base_ms",
                self.poller_backoff_base_ms,
                "poller_backoff_max_ms",
                self.poller_backoff_max_ms,
            ),
            (
                "repair_backoff_base_ms",
                self.repair_backoff_base_ms,
                "repair_backoff_max_ms",
                self.repair_backoff_max_ms,
            ),
        ] {
            // A zero base would make every retry loop spin.
            if base == 0 {
                return Err(bad(base_key, "must be at least 1"));
            }
            if max < base {
                return Err(bad(max_key, "must be at least the matching *_base_ms"));
            }
        }
        if self.maintenance_min_wait_ms == 0 {
            return Err(bad("maintenance_min_wait_ms", "must be at least 1"));
        }
        if self.maintenance_status_retry_ms == 0 {
            return Err(bad("maintenance_status_retry_ms", "must be at least 1"));
        }
        if self.clock_offset_ms.unsigned_abs() > MAX_CLOCK_OFFSET_MS {
            return Err(bad("clock_offset_ms", "must be within ±86400000 (one day)"));
        }
        if self.tls_cert_path.is_some() != self.tls_key_path.is_some() {
            return Err(bad(
                "tls_key_path",
                "tls_cert_path and tls_key_path are set together",
            ));
        }
        Ok(())
    }

    /// Whether the pull API serves TLS.
    pub fn tls(&self) -> bool {
        self.tls_cert_path.is_some()
    }

    /// The market registry's REST backoff.
    pub fn registry_backoff(&self) -> BackoffPolicy {
        policy(self.registry_backoff_base_ms, self.registry_backoff_max_ms)
    }

    /// Each WebSocket connection's reconnect backoff.
    pub fn connection_backoff(&self) -> BackoffPolicy {
        policy(
            self.connection_backoff_base_ms,
            self.connection_backoff_max_ms,
        )
    }

    /// The snapshot poller's per-market backoff.
    pub fn poller_backoff(&self) -> BackoffPolicy {
        policy(self.poller_backoff_base_ms, self.poller_backoff_max_ms)
    }

    /// The trade backfill's per-page backoff.
    pub fn repair_backoff(&self) -> BackoffPolicy {
        policy(self.repair_backoff_base_ms, self.repair_backoff_max_ms)
    }

    /// The maintenance wait every REST user of this gatherer follows.
    pub fn maintenance(&self) -> MaintenanceConfig {
        MaintenanceConfig {
            resume_margin: Duration::from_millis(self.maintenance_resume_margin_ms),
            min_wait: Duration::from_millis(self.maintenance_min_wait_ms),
            status_retry: Duration::from_millis(self.maintenance_status_retry_ms),
        }
    }
}

fn policy(base_ms: u64, max_ms: u64) -> BackoffPolicy {
    BackoffPolicy::new(
        Duration::from_millis(base_ms),
        Duration::from_millis(max_ms),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_of(err: ConfigError) -> String {
        match err {
            ConfigError::Invalid { key, .. } => key,
            ConfigError::File { path, .. } => path,
        }
    }

    #[test]
    fn defaults_are_valid() {
        assert!(GathererConfig::default().validate().is_ok());
    }

    #[test]
    fn backoff_defaults_are_the_design_table() {
        let c = GathererConfig::default();
        assert_eq!(c.registry_backoff(), BackoffPolicy::REGISTRY);
        assert_eq!(c.connection_backoff(), BackoffPolicy::CONNECTION);
        assert_eq!(c.poller_backoff(), BackoffPolicy::POLLER);
        assert_eq!(c.repair_backoff(), BackoffPolicy::POLLER);
        assert_eq!(c.maintenance(), MaintenanceConfig::default());
    }

    #[test]
    fn backoff_keys_load_from_a_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("g.toml");
        std::fs::write(
            &path,
            "connection_backoff_base_ms = 250\nconnection_backoff_max_ms = 4000\n",
        )
        .expect("write");
        let c = GathererConfig::load(Some(&path), &Overrides::default()).expect("load");
        assert_eq!(
            c.connection_backoff(),
            BackoffPolicy::new(Duration::from_millis(250), Duration::from_secs(4))
        );
        assert_eq!(c.registry_backoff(), BackoffPolicy::REGISTRY);
    }

    #[test]
    fn each_rule_names_its_key() {
        type Mutation = Box<dyn Fn(&mut GathererConfig)>;
        let cases: Vec<(&str, Mutation)> = vec![
            ("gatherer_id", Box::new(|c| c.gatherer_id = "a b".into())),
            ("writer_batch_rows", Box::new(|c| c.writer_batch_rows = 0)),
            (
                "writer_queue_records",
                Box::new(|c| c.writer_queue_records = 1),
            ),
            ("connections", Box::new(|c| c.connections = 0)),
            (
                "markets_per_subscription",
                Box::new(|c| c.markets_per_subscription = 0),
            ),
            (
                "silence_timeout_secs",
                Box::new(|c| c.silence_timeout_secs = 0),
            ),
            (
                "snapshot_poll_interval_mins",
                Box::new(|c| c.snapshot_poll_interval_mins = 16),
            ),
            (
                "private_key_path",
                Box::new(|c| c.key_id = Secret::new("k")),
            ),
            (
                "token",
                Box::new(|c| c.listen = "0.0.0.0:1".parse().unwrap_or(c.listen)),
            ),
            (
                "tls_cert_path",
                Box::new(|c| {
                    c.listen = "0.0.0.0:1".parse().unwrap_or(c.listen);
                    c.token = Secret::new("t");
                }),
            ),
            (
                "tls_key_path",
                Box::new(|c| c.tls_cert_path = Some("c.pem".into())),
            ),
            (
                "registry_backoff_base_ms",
                Box::new(|c| c.registry_backoff_base_ms = 0),
            ),
            (
                "connection_backoff_max_ms",
                Box::new(|c| c.connection_backoff_max_ms = 999),
            ),
            (
                "poller_backoff_max_ms",
                Box::new(|c| c.poller_backoff_max_ms = 1),
            ),
            (
                "repair_backoff_base_ms",
                Box::new(|c| c.repair_backoff_base_ms = 0),
            ),
            (
                "maintenance_min_wait_ms",
                Box::new(|c| c.maintenance_min_wait_ms = 0),
            ),
            (
                "maintenance_status_retry_ms",
                Box::new(|c| c.maintenance_status_retry_ms = 0),
            ),
            (
                "clock_offset_ms",
                Box::new(|c| c.clock_offset_ms = -86_400_001),
            ),
        ];
        for (key, mutate) in cases {
            let mut c = GathererConfig::default();
            mutate(&mut c);
            match c.validate() {
                Err(e) => assert_eq!(key_of(e), key),
                Ok(()) => panic!("{key}: expected a validation error"),
            }
        }
    }

    #[test]
    fn a_negative_clock_offset_loads_from_a_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("g.toml");
        std::fs::write(&path, "clock_offset_ms = -45000\n").expect("write");
        let c = GathererConfig::load(Some(&path), &Overrides::default()).expect("load");
        assert_eq!(c.clock_offset_ms, -45_000);
    }

    #[test]
    fn no_price_scale_loads_and_defaults_to_checked() {
        assert_eq!(
            GathererConfig::default().no_price_scale,
            NoPriceScale::Checked
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("g.toml");
        std::fs::write(&path, "no_price_scale = \"as_received\"\n").expect("write");
        let c = GathererConfig::load(Some(&path), &Overrides::default()).expect("load");
        assert_eq!(c.no_price_scale, NoPriceScale::AsReceived);
        std::fs::write(&path, "no_price_scale = \"yes\"\n").expect("write");
        assert!(GathererConfig::load(Some(&path), &Overrides::default()).is_err());
    }

    #[test]
    fn unknown_keys_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("g.toml");
        std::fs::write(&path, "gatherer_id = \"g1\"\nbatch_rows = 3\n").expect("write");
        match GathererConfig::load(Some(&path), &Overrides::default()) {
            Err(e) => assert_eq!(key_of(e), "batch_rows"),
            Ok(_) => panic!("unknown key accepted"),
        }
    }
}
