//! Live progress of `up`: every few seconds, messages/s published by the exchange and routed
//! by the gatherers, rows in production, and the backlog not yet in production. A bar on a
//! terminal (indicatif), plain lines otherwise.

use super::state::{Kind, UpState};
use crate::probe::{self, Metrics};
use std::time::Instant;

/// One reading of the whole deployment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reading {
    /// Data messages the exchange published (sum over types).
    pub published: Option<u64>,
    /// Messages routed by each gatherer (`router_messages_total`).
    pub routed: Vec<(String, Option<u64>)>,
    /// Gatherers whose `/health` says `ok`/`degraded`.
    pub healthy: usize,
    pub gatherers: usize,
    /// Rows committed in a gatherer and not yet acknowledged, per gatherer.
    pub backlog: Vec<(String, Option<u64>)>,
    /// Heads (sum over tables) per gatherer.
    pub heads: Vec<(String, Option<u64>)>,
    /// Rows in production (sum over tables), when readable.
    pub production_rows: Option<u64>,
    /// Worst `dedup_sync_lag_seconds`.
    pub dedup_lag_secs: Option<f64>,
}

pub async fn read(
    client: &reqwest::Client,
    state: &UpState,
    production: Option<&kd_production::Store>,
) -> Reading {
    let mut r = Reading::default();
    for p in &state.processes {
        let base = format!("http://127.0.0.1:{}", p.port);
        match p.kind {
            Kind::Sim => {
                if let Some(stats) = probe::json(client, &p.health_url).await {
                    r.published = stats
                        .get("published")
                        .and_then(|v| v.as_object())
                        .map(|m| m.values().filter_map(serde_json::Value::as_u64).sum());
                }
            }
            Kind::Gatherer => {
                r.gatherers += 1;
                let health = probe::json(client, &p.health_url).await;
                let status = health.as_ref().and_then(|h| probe::str_at(h, "status"));
                if matches!(status, Some("ok" | "degraded")) {
                    r.healthy += 1;
                }
                let tables = health
                    .as_ref()
                    .and_then(|h| h.get("store"))
                    .and_then(|s| s.get("tables"));
                let sum = |field: &str| {
                    tables.and_then(|t| t.as_object()).map(|m| {
                        m.values()
                            .filter_map(|v| v.get(field).and_then(serde_json::Value::as_u64))
                            .sum::<u64>()
                    })
                };
                r.backlog.push((p.name.clone(), sum("depth")));
                r.heads.push((p.name.clone(), sum("head")));
                let routed = probe::text(client, &format!("{base}/metrics"))
                    .await
                    .and_then(|m| Metrics::parse(&m).sum("router_messages_total"))
                    .map(|v| v as u64);
                r.routed.push((p.name.clone(), routed));
            }
            Kind::Dedup => {
                if let Some(m) = probe::text(client, &format!("{base}/metrics")).await {
                    let m = Metrics::parse(&m);
                    let lags = m.all("dedup_sync_lag_seconds");
                    if !lags.is_empty() {
                        r.dedup_lag_secs = Some(lags.iter().map(|(_, v)| *v).fold(0.0, f64::max));
                    }
                }
            }
            Kind::Exporter => {}
        }
    }
    if let Some(store) = production {
        let mut total = 0;
        let mut ok = true;
        for t in kd_core::Table::ALL {
            match store.count(t).await {
                Ok(n) => total += n,
                Err(_) => ok = false,
            }
        }
        r.production_rows = ok.then_some(total);
    }
    r
}

/// Turns two readings into one progress line.
pub fn line(
    prev: Option<(&Reading, Instant)>,
    now: (&Reading, Instant),
    started: Instant,
) -> String {
    let (cur, at) = now;
    let per_sec = |a: Option<u64>, b: Option<u64>| -> String {
        match (prev, a, b) {
            (Some((_, t0)), Some(a), Some(b)) if b >= a => {
                let secs = at.duration_since(t0).as_secs_f64().max(0.001);
                format!("{:.0}", (b - a) as f64 / secs)
            }
            _ => "-".into(),
        }
    };
    let pub_rate = per_sec(prev.and_then(|(p, _)| p.published), cur.published);
    let routed_now: Option<u64> = cur.routed.iter().map(|(_, v)| *v).sum();
    let routed_prev: Option<u64> = prev.and_then(|(p, _)| p.routed.iter().map(|(_, v)| *v).sum());
    let routed_rate = per_sec(routed_prev, routed_now);
    let backlog: u64 = cur.backlog.iter().filter_map(|(_, v)| *v).sum();
    // A real exchange publishes no count of its own: no column rather than a lasting `-`.
    let exchange = if cur.published.is_some() {
        format!(" | exchange {pub_rate} msg/s")
    } else {
        String::new()
    };
    format!(
        "[{:>5}s] gatherers {}/{} healthy{exchange} | gatherers {} msg/s | production {} rows | backlog {} rows | dedup lag {}",
        started.elapsed().as_secs(),
        cur.healthy,
        cur.gatherers,
        routed_rate,
        cur.production_rows
            .map_or("-".to_string(), |n| n.to_string()),
        backlog,
        cur.dedup_lag_secs
            .map_or("-".to_string(), |s| format!("{s:.1}s")),
    )
}
