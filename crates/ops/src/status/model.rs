//! The status document: what `status` prints and `status --json` emits.

use serde::Serialize;

#[derive(Debug, Clone, Default, Serialize)]
pub struct StatusReport {
    /// Where the deployment was found (`data/up.json` or a config file).
    pub source: String,
    /// Whether the local supervisor (`up`) is running, when local.
    pub supervisor_running: Option<bool>,
    pub gatherers: Vec<GathererStatus>,
    pub dedup: Option<ServiceStatus>,
    pub exporter: Option<ServiceStatus>,
    pub sim: Option<ServiceStatus>,
    pub production: Option<ProductionStatus>,
    /// Alerts of the monitoring table that would fire now.
    pub alerts: Vec<Alert>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct GathererStatus {
    pub id: String,
    /// OS pid when local.
    pub pid: Option<u32>,
    /// Answering `/health` and collecting (`ok` or `degraded`).
    pub healthy: bool,
    /// The gatherer's own word: `ok`, `degraded`, `down`, `halted`; `unreachable` when it
    /// does not answer.
    pub status: String,
    pub url: String,
    pub connections_up: Option<u64>,
    pub connections_total: Option<u64>,
    pub markets: Option<u64>,
    pub messages_per_sec: Option<f64>,
    pub last_message_age_ms: Option<i64>,
    /// Rows committed locally and not yet acknowledged by the deduplicator.
    pub store_depth: Option<u64>,
    pub disk_bytes: Option<u64>,
    /// Use of the filesystem holding the store, percent (local only).
    pub disk_used_pct: Option<u64>,
    pub restarts: Option<u32>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ServiceStatus {
    pub name: String,
    pub pid: Option<u32>,
    pub up: bool,
    pub url: String,
    pub restarts: Option<u32>,
    /// Lag per gatherer and table, seconds (deduplicator) or per table (exporter).
    pub lag: Vec<Lag>,
    /// Deduplicator: production connectivity as it reports it.
    pub production_connected: Option<bool>,
    /// Exporter: the newest archived data and its age (the exporter's lag as a user sees it).
    pub archive: Option<ArchiveAge>,
    /// The raw `/health` document, for anything this screen does not summarise.
    pub health: Option<serde_json::Value>,
}

/// How far the archive reaches: the end of the newest exported window (RFC 3339) and its age.
/// Both `None` before the first window is exported (hourly windows plus the settle delay).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ArchiveAge {
    pub newest: Option<String>,
    pub age_seconds: Option<i64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Lag {
    pub gatherer: Option<String>,
    pub table: Option<String>,
    pub seconds: f64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ProductionStatus {
    /// URL with any password removed.
    pub url: String,
    pub reachable: bool,
    /// Rows per table.
    pub rows: Vec<(String, u64)>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Alert {
    /// `critical` or `warning`.
    pub severity: &'static str,
    pub name: &'static str,
    pub detail: String,
}
