//! What the operator writes: the deduplicator's configuration (TOML file, then
//! `KALSHI_DATA_DEDUP_…` environment variables, then flags). Units are in the key names.

use kd_core::config::{ConfigError, Secret};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Environment prefix of every deduplicator key.
pub const ENV_PREFIX: &str = "KALSHI_DATA_DEDUP_";

/// One gatherer to pull from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GathererEndpoint {
    /// The gatherer's id (`gatherer_id` in its configuration). Cursors are stored under it, and
    /// a gatherer answering with another id is refused: a cursor never moves between stores.
    pub id: String,
    /// Base URL of its pull API (`http://127.0.0.1:9101`).
    pub url: String,
    /// Bearer token, when the gatherer requires one.
    #[serde(default, skip_serializing_if = "Secret::is_empty")]
    pub token: Secret,
    /// PEM file of the CA(s) that signed the gatherer's TLS certificate (`https://` URLs).
    /// When set, only these roots are trusted for this gatherer; the system roots (and the
    /// roots of Kalshi's REST API) are unaffected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_path: Option<PathBuf>,
    /// PEM client certificate presented to the gatherer (or a TLS proxy in front of it) that
    /// asks for one; set together with `client_key_path`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert_path: Option<PathBuf>,
    /// PEM private key of `client_cert_path` (a path: the key itself never enters the config).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key_path: Option<PathBuf>,
}

/// The deduplicator's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DedupConfig {
    /// Production store: `postgres://user:pw@host:5432/db` or `sqlite://PATH`.
    pub production: Secret,
    /// The gatherers to merge.
    pub gatherers: Vec<GathererEndpoint>,
    /// Rows asked for per pull (the catch-up batch size).
    pub batch_size: usize,
    /// Most rows merged into one production transaction.
    pub max_transaction_rows: usize,
    /// When current, how long the writer waits after a first small batch for more (the other
    /// gatherers' copies arrive within milliseconds): fewer, larger transactions.
    pub merge_window_ms: u64,
    /// Identities per table remembered as committed, so lagging gatherers' copies are dropped
    /// in memory rather than by the database (0 turns it off; ~48 bytes each).
    pub recent_identities: usize,
    /// Long-poll wait of a pull when the gatherer is current.
    pub long_poll_ms: u64,
    /// Extra time a pull may take beyond its long-poll wait before the gatherer counts as down.
    pub pull_timeout_ms: u64,
    /// First retry delay of an unreachable gatherer (doubles up to `gatherer_retry_max_ms`).
    pub gatherer_retry_ms: u64,
    /// Longest retry delay of an unreachable gatherer.
    pub gatherer_retry_max_ms: u64,
    /// Longest one production transaction may take before it is abandoned and retried.
    pub transaction_timeout_secs: u64,
    /// Address of `/health`, `/ready` and `/metrics`: a loopback address (refused otherwise).
    pub listen: SocketAddr,
    /// Kalshi REST base URL (with `/trade-api/v2`) for series/events/markets; empty turns the
    /// metadata sync off.
    pub rest_url: String,
    /// Interval of the metadata sync.
    pub metadata_interval_secs: u64,
    /// Days of partitions kept created ahead (PostgreSQL).
    pub partitions_ahead_days: u32,
    /// Run `migrate` at start (idempotent).
    pub migrate_on_start: bool,
    /// Subtracted from a pull's start time before it is recorded as how far production is
    /// complete for that gatherer (`sync_progress`): covers this host's clock running ahead of
    /// the gatherers' and the exchange's (see `kd_dedup::progress`).
    pub progress_clock_margin_ms: u64,
}

impl Default for DedupConfig {
    fn default() -> Self {
        DedupConfig {
            production: Secret::new("sqlite://data/production.sqlite"),
            gatherers: Vec::new(),
            batch_size: 10_000,
            max_transaction_rows: 50_000,
            merge_window_ms: 50,
            recent_identities: 500_000,
            long_poll_ms: 500,
            pull_timeout_ms: 10_000,
            gatherer_retry_ms: 1_000,
            gatherer_retry_max_ms: 30_000,
            transaction_timeout_secs: 120,
            listen: SocketAddr::from(([127, 0, 0, 1], 9300)),
            rest_url: String::new(),
            metadata_interval_secs: 300,
            partitions_ahead_days: 3,
            migrate_on_start: true,
            progress_clock_margin_ms: 5_000,
        }
    }
}

impl DedupConfig {
    /// Checks the rules serde cannot express, naming the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let url = self.production.expose();
        if !(url.starts_with("postgres://")
            || url.starts_with("postgresql://")
            || url.starts_with("sqlite://"))
        {
            return Err(ConfigError::invalid(
                "production",
                "expected postgres://… or sqlite://PATH",
            ));
        }
        // `/health` shows every gatherer's URL and error texts and is served without TLS or a
        // token: only where no one else can reach it.
        if !self.listen.ip().is_loopback() {
            return Err(ConfigError::invalid(
                "listen",
                "must be a loopback address (127.0.0.1 / [::1]): /health and /metrics are \
                 served without TLS or a token; scrape them on the host, or through a TLS \
                 reverse proxy with authentication (docs/operations.md)",
            ));
        }
        if self.gatherers.is_empty() {
            return Err(ConfigError::invalid(
                "gatherers",
                "at least one gatherer is needed",
            ));
        }
        let mut ids = std::collections::HashSet::new();
        for (i, g) in self.gatherers.iter().enumerate() {
            if g.id.is_empty() || !ids.insert(g.id.as_str()) {
                return Err(ConfigError::invalid(
                    format!("gatherers[{i}].id"),
                    "must be non-empty and unique",
                ));
            }
            if !(g.url.starts_with("http://") || g.url.starts_with("https://")) {
                return Err(ConfigError::invalid(
                    format!("gatherers[{i}].url"),
                    "expected http://… or https://…",
                ));
            }
            if g.client_cert_path.is_some() != g.client_key_path.is_some() {
                return Err(ConfigError::invalid(
                    format!("gatherers[{i}].client_key_path"),
                    "client_cert_path and client_key_path are set together",
                ));
            }
            let tls_material =
                g.ca_path.is_some() || g.client_cert_path.is_some() || g.client_key_path.is_some();
            if tls_material && !g.url.starts_with("https://") {
                return Err(ConfigError::invalid(
                    format!("gatherers[{i}].url"),
                    "ca_path / client certificates need an https:// URL",
                ));
            }
        }
        if self.batch_size == 0 || self.batch_size > kd_core::pull::MAX_PULL_LIMIT {
            return Err(ConfigError::invalid(
                "batch_size",
                format!("1..={}", kd_core::pull::MAX_PULL_LIMIT),
            ));
        }
        if self.max_transaction_rows < self.batch_size {
            return Err(ConfigError::invalid(
                "max_transaction_rows",
                "must be ≥ batch_size",
            ));
        }
        if self.long_poll_ms > kd_core::pull::MAX_WAIT_MS {
            return Err(ConfigError::invalid(
                "long_poll_ms",
                format!("at most {}", kd_core::pull::MAX_WAIT_MS),
            ));
        }
        if self.gatherer_retry_ms == 0 || self.gatherer_retry_max_ms < self.gatherer_retry_ms {
            return Err(ConfigError::invalid(
                "gatherer_retry_max_ms",
                "needs 0 < gatherer_retry_ms ≤ gatherer_retry_max_ms",
            ));
        }
        if self.merge_window_ms > 5_000 {
            return Err(ConfigError::invalid("merge_window_ms", "at most 5000"));
        }
        if self.transaction_timeout_secs == 0 {
            return Err(ConfigError::invalid(
                "transaction_timeout_secs",
                "must be > 0",
            ));
        }
        if !self.rest_url.is_empty() && self.metadata_interval_secs == 0 {
            return Err(ConfigError::invalid(
                "metadata_interval_secs",
                "must be > 0",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> DedupConfig {
        DedupConfig {
            gatherers: vec![GathererEndpoint {
                id: "a".into(),
                url: "http://127.0.0.1:1".into(),
                ..GathererEndpoint::default()
            }],
            ..DedupConfig::default()
        }
    }

    fn key_of(c: &DedupConfig) -> Option<String> {
        match c.validate() {
            Err(ConfigError::Invalid { key, .. }) => Some(key),
            _ => None,
        }
    }

    #[test]
    fn each_rule_names_its_key() {
        assert!(valid().validate().is_ok());
        let mut c = valid();
        c.production = Secret::new("mysql://x");
        assert_eq!(key_of(&c).as_deref(), Some("production"));
        let mut c = valid();
        c.gatherers.clear();
        assert_eq!(key_of(&c).as_deref(), Some("gatherers"));
        let mut c = valid();
        c.gatherers.push(c.gatherers[0].clone());
        assert_eq!(key_of(&c).as_deref(), Some("gatherers[1].id"));
        let mut c = valid();
        c.gatherers[0].url = "ftp://x".into();
        assert_eq!(key_of(&c).as_deref(), Some("gatherers[0].url"));
        let mut c = valid();
        c.gatherers[0].ca_path = Some("ca.pem".into());
        assert_eq!(key_of(&c).as_deref(), Some("gatherers[0].url"));
        c.gatherers[0].url = "https://g:1".into();
        assert!(c.validate().is_ok());
        c.gatherers[0].client_cert_path = Some("c.pem".into());
        assert_eq!(key_of(&c).as_deref(), Some("gatherers[0].client_key_path"));
        let mut c = valid();
        c.listen = "0.0.0.0:8720".parse().unwrap_or(c.listen);
        assert_eq!(key_of(&c).as_deref(), Some("listen"));
        c.listen = "[::]:8720".parse().unwrap_or(c.listen);
        assert_eq!(key_of(&c).as_deref(), Some("listen"));
        c.listen = "[::1]:8720".parse().unwrap_or(c.listen);
        assert!(c.validate().is_ok());
        let mut c = valid();
        c.batch_size = 0;
        assert_eq!(key_of(&c).as_deref(), Some("batch_size"));
        let mut c = valid();
        c.max_transaction_rows = 1;
        assert_eq!(key_of(&c).as_deref(), Some("max_transaction_rows"));
        let mut c = valid();
        c.long_poll_ms = 60_000;
        assert_eq!(key_of(&c).as_deref(), Some("long_poll_ms"));
        let mut c = valid();
        c.gatherer_retry_ms = 0;
        assert_eq!(key_of(&c).as_deref(), Some("gatherer_retry_max_ms"));
        let mut c = valid();
        c.transaction_timeout_secs = 0;
        assert_eq!(key_of(&c).as_deref(), Some("transaction_timeout_secs"));
        let mut c = valid();
        c.rest_url = "http://x".into();
        c.metadata_interval_secs = 0;
        assert_eq!(key_of(&c).as_deref(), Some("metadata_interval_secs"));
    }

    #[test]
    fn unknown_keys_are_refused() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("d.toml");
        std::fs::write(
            &path,
            "production = \"sqlite://x\"\nbatch_sise = 3\n[[gatherers]]\nid = \"a\"\nurl = \"http://h\"\n",
        )?;
        #[derive(Serialize)]
        struct NoOverrides {}
        let err =
            kd_core::config::load::<DedupConfig, _>(Some(&path), "KD_TEST_NONE_", &NoOverrides {})
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
        assert!(err.contains("batch_sise"), "{err}");
        Ok(())
    }
}
