//! Reading a deployment: where its processes are (from `up.json` or a config file), then one
//! probe round of `/health` and `/metrics` (two `/metrics` reads a second apart for rates).

use super::model::{
    ArchiveAge, GathererStatus, Lag, ProductionStatus, ServiceStatus, StatusReport,
};
use crate::probe::{self, Metrics};
use crate::up::state::{Kind, UpState, pid_alive};
use kd_core::{Table, TimestampUs};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One process to probe.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub kind: Kind,
    /// `http://host:port` without a path.
    pub base_url: String,
    pub health_path: String,
    pub pid: Option<u32>,
    /// Started by a local `up`: healthy only while its recorded pid runs (`None` while the
    /// supervisor restarts it).
    pub local: bool,
    pub restarts: Option<u32>,
    pub data_dir: Option<PathBuf>,
}

/// A deployment to report on.
#[derive(Debug, Clone, Default)]
pub struct Deployment {
    pub source: String,
    pub supervisor_pid: Option<u32>,
    pub targets: Vec<Target>,
    pub production: Option<String>,
}

/// `status --config F`: a remote deployment, in TOML.
///
/// ```toml
/// production = "postgres://kalshi@db.internal/kalshi"   # optional: checked directly
/// [[gatherers]]
/// id = "gatherer-a"
/// url = "https://gatherer-a.internal:8710"
/// [dedup]
/// url = "http://dedup.internal:8720"
/// [exporter]
/// url = "http://dedup.internal:8730"
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusConfig {
    pub production: Option<String>,
    #[serde(default)]
    pub gatherers: Vec<Endpoint>,
    pub dedup: Option<Endpoint>,
    pub exporter: Option<Endpoint>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    #[serde(default)]
    pub id: Option<String>,
    pub url: String,
}

impl Deployment {
    pub fn from_up_state(state: &UpState, source: &Path) -> Deployment {
        let targets = state
            .processes
            .iter()
            .map(|p| Target {
                name: p.name.clone(),
                kind: p.kind,
                base_url: format!("http://127.0.0.1:{}", p.port),
                health_path: p
                    .health_url
                    .split_once(&format!(":{}", p.port))
                    .map_or(String::new(), |(_, path)| path.to_string()),
                pid: p.pid,
                local: true,
                restarts: Some(p.restarts),
                data_dir: p.data_dir.clone(),
            })
            .collect();
        Deployment {
            source: source.display().to_string(),
            supervisor_pid: Some(state.pid),
            targets,
            production: Some(state.production.clone()),
        }
    }

    pub fn from_config(config: &StatusConfig, source: &Path) -> Deployment {
        let trim = |u: &str| u.trim_end_matches('/').to_string();
        let mut targets: Vec<Target> = config
            .gatherers
            .iter()
            .enumerate()
            .map(|(i, e)| Target {
                name: e
                    .id
                    .clone()
                    .unwrap_or_else(|| crate::up::plan::gatherer_name(i)),
                kind: Kind::Gatherer,
                base_url: trim(&e.url),
                health_path: "/health".into(),
                pid: None,
                local: false,
                restarts: None,
                data_dir: None,
            })
            .collect();
        for (kind, name, e) in [
            (Kind::Dedup, "dedup", &config.dedup),
            (Kind::Exporter, "exporter", &config.exporter),
        ] {
            if let Some(e) = e {
                targets.push(Target {
                    name: name.into(),
                    kind,
                    base_url: trim(&e.url),
                    health_path: "/health".into(),
                    pid: None,
                    local: false,
                    restarts: None,
                    data_dir: None,
                });
            }
        }
        Deployment {
            source: source.display().to_string(),
            supervisor_pid: None,
            targets,
            production: config.production.clone(),
        }
    }
}

/// One full reading.
pub async fn collect(dep: &Deployment) -> StatusReport {
    let client = probe::client();
    // First metrics read, a pause, then everything else: rates come from the difference.
    let first = futures_join(dep, &client).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut report = StatusReport {
        source: dep.source.clone(),
        supervisor_running: dep.supervisor_pid.map(pid_alive),
        ..StatusReport::default()
    };
    for (t, before) in dep.targets.iter().zip(first) {
        let health = probe::json(&client, &format!("{}{}", t.base_url, t.health_path)).await;
        let metrics = probe::text(&client, &format!("{}/metrics", t.base_url))
            .await
            .map(|m| Metrics::parse(&m));
        // A local pid the supervisor recorded but that is gone is down, whatever answers.
        let pid = t.pid.filter(|p| pid_alive(*p));
        match t.kind {
            Kind::Gatherer => report
                .gatherers
                .push(gatherer(t, pid, health, before, metrics)),
            Kind::Dedup => report.dedup = Some(service(t, pid, health, metrics)),
            Kind::Exporter => {
                let mut s = service(t, pid, health, metrics);
                s.archive = s
                    .health
                    .as_ref()
                    .map(|h| archive_age(h, TimestampUs::now()));
                report.exporter = Some(s);
            }
            Kind::Sim => report.sim = Some(service(t, pid, health, metrics)),
        }
    }
    if let Some(url) = &dep.production {
        report.production = Some(production(url).await);
    }
    report.alerts = super::alerts::evaluate(&report);
    report
}

async fn futures_join(dep: &Deployment, client: &reqwest::Client) -> Vec<Option<Metrics>> {
    let mut out = Vec::with_capacity(dep.targets.len());
    for t in &dep.targets {
        let m = if t.kind == Kind::Gatherer {
            probe::text(client, &format!("{}/metrics", t.base_url))
                .await
                .map(|m| Metrics::parse(&m))
        } else {
            None
        };
        out.push(m);
    }
    out
}

fn gatherer(
    t: &Target,
    pid: Option<u32>,
    health: Option<serde_json::Value>,
    before: Option<Metrics>,
    after: Option<Metrics>,
) -> GathererStatus {
    let status = health
        .as_ref()
        .and_then(|h| probe::str_at(h, "status"))
        .unwrap_or("unreachable")
        .to_string();
    let rate = match (
        before.and_then(|m| m.sum("router_messages_total")),
        after.as_ref().and_then(|m| m.sum("router_messages_total")),
    ) {
        (Some(a), Some(b)) if b >= a => Some(b - a),
        _ => None,
    };
    let h = health.as_ref();
    let depth = h.map(|h| {
        Table::ALL
            .iter()
            .filter_map(|tb| probe::u64_at(h, &format!("store.tables.{}.depth", tb.name())))
            .sum()
    });
    let local_ok = !t.local || pid.is_some();
    GathererStatus {
        id: t.name.clone(),
        pid,
        healthy: local_ok && matches!(status.as_str(), "ok" | "degraded"),
        status,
        url: t.base_url.clone(),
        connections_up: h.and_then(|h| probe::u64_at(h, "connections_up")),
        connections_total: h.and_then(|h| probe::u64_at(h, "connections_total")),
        markets: h.and_then(|h| probe::u64_at(h, "markets_subscribed")),
        messages_per_sec: rate,
        last_message_age_ms: h.and_then(|h| probe::i64_at(h, "last_message_age_ms")),
        store_depth: depth,
        disk_bytes: h.and_then(|h| probe::u64_at(h, "store.disk_bytes")),
        disk_used_pct: t.data_dir.as_deref().and_then(disk_used_pct),
        restarts: t.restarts,
    }
}

fn service(
    t: &Target,
    pid: Option<u32>,
    health: Option<serde_json::Value>,
    metrics: Option<Metrics>,
) -> ServiceStatus {
    let local_ok = !t.local || pid.is_some();
    // A process without HTTP (the exporter) is up while its pid runs.
    let answers = health.is_some() || (t.health_path.is_empty() && pid.is_some());
    let mut lag = Vec::new();
    let mut connected = None;
    if let Some(m) = &metrics {
        for (labels, seconds) in m.all("dedup_sync_lag_seconds") {
            lag.push(Lag {
                gatherer: label(labels, "gatherer"),
                table: label(labels, "table"),
                seconds: *seconds,
            });
        }
        for name in [
            "export_lag_seconds",
            "exporter_lag_seconds",
            "archive_export_lag_seconds",
        ] {
            for (labels, seconds) in m.all(name) {
                lag.push(Lag {
                    gatherer: None,
                    table: label(labels, "table"),
                    seconds: *seconds,
                });
            }
        }
        connected = m.sum("dedup_rds_connected").map(|v| v > 0.0);
    }
    if lag.is_empty()
        && let Some(gs) = health
            .as_ref()
            .and_then(|h| h.get("gatherers"))
            .and_then(|g| g.as_array())
    {
        for g in gs {
            let id = g.get("id").and_then(|v| v.as_str()).map(String::from);
            for (table, tr) in g
                .get("tables")
                .and_then(|t| t.as_object())
                .into_iter()
                .flatten()
            {
                if let Some(seconds) = tr.get("lag_seconds").and_then(serde_json::Value::as_f64) {
                    lag.push(Lag {
                        gatherer: id.clone(),
                        table: Some(table.clone()),
                        seconds,
                    });
                }
            }
        }
    }
    if connected.is_none() {
        connected = health.as_ref().and_then(|h| {
            [
                "production_connected",
                "rds_connected",
                "production.connected",
            ]
            .iter()
            .find_map(|k| {
                k.split('.')
                    .try_fold(h, |v, k| v.get(k))
                    .and_then(serde_json::Value::as_bool)
            })
        });
    }
    ServiceStatus {
        name: t.name.clone(),
        pid,
        up: local_ok && answers,
        url: t.base_url.clone(),
        restarts: t.restarts,
        lag,
        production_connected: connected,
        archive: None,
        health,
    }
}

/// The value of `key="…"` in a Prometheus label set.
fn label(labels: &str, key: &str) -> Option<String> {
    let start = labels.find(&format!("{key}=\""))? + key.len() + 2;
    let rest = labels.get(start..)?;
    Some(rest[..rest.find('"')?].to_string())
}

async fn production(url: &str) -> ProductionStatus {
    let shown = kd_core::config::redact_url(url);
    match crate::production::counts(url).await {
        Ok(rows) => ProductionStatus {
            url: shown,
            reachable: true,
            rows,
            error: None,
        },
        Err(e) => ProductionStatus {
            url: shown,
            reachable: false,
            rows: Vec::new(),
            error: Some(e.to_string()),
        },
    }
}

/// Percent of the filesystem holding `dir` that is used.
fn disk_used_pct(dir: &Path) -> Option<u64> {
    let probe_dir = if dir.exists() { dir } else { dir.parent()? };
    let st = nix::sys::statvfs::statvfs(probe_dir).ok()?;
    // Field widths differ between platforms; widen everything to u64.
    #[allow(clippy::useless_conversion)]
    let (blocks, avail_blocks, frag) = (
        u64::try_from(st.blocks()).ok()?,
        u64::try_from(st.blocks_available()).ok()?,
        u64::try_from(st.fragment_size()).ok()?,
    );
    let total = blocks.checked_mul(frag)?;
    let avail = avail_blocks.checked_mul(frag)?;
    let used = total.checked_sub(avail)?;
    (total > 0).then(|| used * 100 / total)
}

/// The newest archived data from the exporter's `/health`: the latest `watermark` (end of the
/// last exported window) over its tables, and how old it is at `now`.
pub fn archive_age(health: &serde_json::Value, now: TimestampUs) -> ArchiveAge {
    let newest = health
        .get("tables")
        .and_then(|t| t.as_object())
        .into_iter()
        .flatten()
        .filter_map(|(_, t)| t.get("watermark").and_then(|w| w.as_str()))
        .filter_map(|w| TimestampUs::parse_rfc3339(w).ok())
        .max();
    ArchiveAge {
        newest: newest.map(TimestampUs::to_rfc3339_secs),
        age_seconds: newest.map(|t| now.secs().saturating_sub(t.secs()).max(0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_read() {
        assert_eq!(
            label("{gatherer=\"g-a\",table=\"trades\"}", "table").as_deref(),
            Some("trades")
        );
        assert_eq!(label("{gatherer=\"g-a\"}", "table"), None);
    }

    #[test]
    fn the_archive_age_is_that_of_the_newest_watermark() -> Result<(), kd_core::UnitError> {
        let health = serde_json::json!({"tables": {
            "trades": {"watermark": "2026-12-02T15:00:00Z"},
            "orderbook_deltas": {"watermark": "2026-12-02T14:00:00Z"},
        }});
        let now = TimestampUs::parse_rfc3339("2026-12-02T16:30:00Z")?;
        let a = archive_age(&health, now);
        assert_eq!(a.newest.as_deref(), Some("2026-12-02T15:00:00Z"));
        assert_eq!(a.age_seconds, Some(5_400));
        let none = archive_age(&serde_json::json!({"tables": {}}), now);
        assert_eq!(none, ArchiveAge::default());
        Ok(())
    }
}
