//! HTTP probes of running processes: `/health` JSON and `/metrics` text, with a short timeout
//! so one hung process never stalls a status screen.

use std::collections::BTreeMap;
use std::time::Duration;

/// Per-request timeout.
pub const TIMEOUT: Duration = Duration::from_secs(2);

/// A client for probes (no proxy: everything probed is on loopback or named explicitly).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(TIMEOUT)
        .no_proxy()
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// `GET url` as JSON; `None` when unreachable, non-2xx/503, or not JSON.
pub async fn json(client: &reqwest::Client, url: &str) -> Option<serde_json::Value> {
    let resp = client.get(url).send().await.ok()?;
    // A 503 health answer still carries the document (status `down`).
    if !(resp.status().is_success() || resp.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE) {
        return None;
    }
    resp.json().await.ok()
}

/// `GET url` as text.
pub async fn text(client: &reqwest::Client, url: &str) -> Option<String> {
    let resp = client.get(url).send().await.ok()?;
    if !resp.status().is_success() {
        return None;
    }
    resp.text().await.ok()
}

/// Prometheus text parsed to `name → [(labels, value)]`. Values are display figures (rates,
/// gauges), never prices or counts of the data, so `f64` is the format's own type here.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    series: BTreeMap<String, Vec<(String, f64)>>,
}

impl Metrics {
    pub fn parse(text: &str) -> Metrics {
        let mut series: BTreeMap<String, Vec<(String, f64)>> = BTreeMap::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (head, value) = match line.rsplit_once(' ') {
                Some(x) => x,
                None => continue,
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            let (name, labels) = match head.find('{') {
                Some(i) => (&head[..i], head[i..].to_string()),
                None => (head, String::new()),
            };
            series
                .entry(name.to_string())
                .or_default()
                .push((labels, value));
        }
        Metrics { series }
    }

    /// Sum over every label set of `name`; `None` when absent.
    pub fn sum(&self, name: &str) -> Option<f64> {
        self.series
            .get(name)
            .map(|v| v.iter().map(|(_, x)| x).sum())
    }

    /// Values of `name` whose labels contain `needle` (e.g. `gatherer="gatherer-a"`).
    pub fn with_label(&self, name: &str, needle: &str) -> Vec<(String, f64)> {
        self.series
            .get(name)
            .map(|v| {
                v.iter()
                    .filter(|(l, _)| l.contains(needle))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn all(&self, name: &str) -> &[(String, f64)] {
        self.series.get(name).map_or(&[], Vec::as_slice)
    }
}

/// Reads a JSON path like `store.disk_bytes` as u64.
pub fn u64_at(v: &serde_json::Value, path: &str) -> Option<u64> {
    path.split('.').try_fold(v, |v, k| v.get(k))?.as_u64()
}

pub fn i64_at(v: &serde_json::Value, path: &str) -> Option<i64> {
    path.split('.').try_fold(v, |v, k| v.get(k))?.as_i64()
}

pub fn str_at<'a>(v: &'a serde_json::Value, path: &str) -> Option<&'a str> {
    path.split('.').try_fold(v, |v, k| v.get(k))?.as_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_sums_over_labels() {
        let m = Metrics::parse(
            "# TYPE router_messages_total counter\nrouter_messages_total{type=\"trade\"} 3\nrouter_messages_total{type=\"delta\"} 4\nup 1\n",
        );
        assert_eq!(m.sum("router_messages_total"), Some(7.0));
        assert_eq!(m.sum("up"), Some(1.0));
        assert_eq!(m.sum("nope"), None);
        assert_eq!(m.with_label("router_messages_total", "trade").len(), 1);
    }
}
