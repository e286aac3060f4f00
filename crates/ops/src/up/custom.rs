//! `up --config FILE`: supervise any subset of processes, e.g. gatherers and a deduplicator
//! against the real exchange with credentials, under the same restart and stop rules.
//!
//! ```toml
//! [[process]]
//! name = "gatherer-a"
//! kind = "gatherer"          # sim | gatherer | dedup | exporter
//! port = 8710                # where its /health and /metrics answer
//! args = ["gatherer", "--config", "/etc/kalshi-data/gatherer-a.toml"]
//! data_dir = "/var/lib/kalshi-data/gatherer-a"   # optional: disk alerts
//! ```

use super::UpError;
use super::plan::ProcessSpec;
use super::state::Kind;
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CustomConfig {
    process: Vec<CustomProcess>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CustomProcess {
    name: String,
    kind: Kind,
    port: u16,
    args: Vec<String>,
    data_dir: Option<PathBuf>,
}

/// Reads the process list.
pub fn specs(path: &Path, data_dir: &Path) -> Result<Vec<ProcessSpec>, UpError> {
    let err = |reason: String| UpError::Config {
        path: path.to_owned(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let config: CustomConfig = toml::from_str(&text).map_err(|e| err(e.to_string()))?;
    if config.process.is_empty() {
        return Err(err("no [[process]] entries".into()));
    }
    Ok(config
        .process
        .into_iter()
        .map(|p| ProcessSpec {
            log: data_dir.join("logs").join(format!("{}.log", p.name)),
            health_path: if p.kind == Kind::Sim {
                "/_sim/stats"
            } else {
                "/health"
            },
            name: p.name,
            kind: p.kind,
            port: p.port,
            args: p.args.into_iter().map(Into::into).collect(),
            env: Vec::new(),
            data_dir: p.data_dir,
        })
        .collect())
}
