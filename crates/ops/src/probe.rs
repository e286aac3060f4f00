//! HTTP probes of running processes: `/health` JSON and `/metrics` text, with a short timeout
//! so one hung process never stalls a status screen.

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

/// Prometheus text parsed to series: the one parser, in kd-core.
pub use kd_core::prom_text::Metrics;

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
