//! What the operator writes for the exporter (`[export]`).

use crate::encode;
use crate::store::S3Options;
use crate::window::WindowLen;
use kd_core::Table;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// Exporter settings (`[export]` in the config file, `KALSHI_DATA_EXPORT_…` in the environment).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExportConfig {
    /// Production store URL (`postgres://…` or `sqlite://PATH`).
    pub production_url: String,
    /// Archive URL: `file://PATH` or `s3://BUCKET/PREFIX`.
    pub archive_url: String,
    /// S3 settings (endpoint, region, credentials); unset ones come from the AWS environment.
    pub s3: S3Options,
    /// One window length for every table (`5m`, `1h`, `1d`); unset: hourly for every table.
    pub window: Option<WindowLen>,
    /// How long after a window's end to wait for records still travelling from the gatherers
    /// before exporting it. Hourly windows + 120 s settle: a record is archived within 62 min
    /// of its exchange time plus the export itself (the promise: 65 min).
    pub settle_secs: u64,
    /// How long since the deduplicator last proved a gatherer's progress (`sync_progress`)
    /// before the exporter stops waiting for that gatherer's rows: it is then taken as down,
    /// and rows it delivers later are found by the late-row re-check. Above a production
    /// outage of several minutes (during one no progress is proved at all).
    pub gatherer_down_secs: u64,
    /// How far back (hours before each table's watermark) exported windows are re-checked for
    /// late rows — rows production received after their window was exported (a production
    /// outage, a gatherer's downtime repair, a backfill). 0 turns the re-check off.
    pub recheck_hours: u64,
    /// How often the continuous exporter re-checks exported windows for late rows.
    pub recheck_interval_secs: u64,
    /// How often the continuous exporter looks for closed windows.
    pub poll_interval_secs: u64,
    /// Rows per Parquet row group.
    pub row_group_rows: usize,
    /// Write `processed/` besides `raw/`.
    pub processed: bool,
    /// Write the daily `aggregates/`.
    pub aggregates: bool,
    /// Address of `/health` and `/metrics` while exporting continuously, loopback only (port 0: any free
    /// port). `--once`, `--from/--to` and `--apply-lifecycle` serve nothing.
    pub listen: SocketAddr,
}

impl Default for ExportConfig {
    fn default() -> Self {
        ExportConfig {
            production_url: String::new(),
            archive_url: "file://./data/archive".to_string(),
            s3: S3Options::default(),
            window: None,
            settle_secs: 120,
            gatherer_down_secs: 600,
            recheck_hours: 48,
            recheck_interval_secs: 300,
            poll_interval_secs: 30,
            row_group_rows: encode::DEFAULT_ROW_GROUP_ROWS,
            processed: true,
            aggregates: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 8730)),
        }
    }
}

impl ExportConfig {
    /// The window length of `table`.
    pub fn window_for(&self, table: Table) -> WindowLen {
        self.window.unwrap_or(WindowLen::default_for(table))
    }
}
