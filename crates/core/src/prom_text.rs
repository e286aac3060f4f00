//! Prometheus text format as a reader sees it: a process's `/metrics` parsed to series
//! ([`Metrics`]: sum, largest, by label), or one series read exactly ([`value`]). One parser for
//! `status`, `up`'s progress line and the tests (kd-testkit re-exports it).
//!
//! Values are `f64` because the format's values are: display figures (rates, gauges, counters),
//! never prices or counts of the data.

use std::collections::BTreeMap;

/// Prometheus text parsed to `name → [(labels, value)]` (labels as rendered, `{…}` or empty).
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    series: BTreeMap<String, Vec<(String, f64)>>,
}

impl Metrics {
    /// Parses every sample line; comments, blank lines and unparsable values are skipped.
    pub fn parse(text: &str) -> Metrics {
        let mut series: BTreeMap<String, Vec<(String, f64)>> = BTreeMap::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((head, value)) = line.rsplit_once(' ') else {
                continue;
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

    /// Largest sample of `name` (at least 0); `None` when absent.
    pub fn max(&self, name: &str) -> Option<f64> {
        let all = self.all(name);
        (!all.is_empty()).then(|| all.iter().map(|(_, v)| *v).fold(0.0, f64::max))
    }

    /// Samples of `name` whose labels contain `needle` (e.g. `gatherer="gatherer-a"`).
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

    /// Every sample of `name`, `(labels, value)`.
    pub fn all(&self, name: &str) -> &[(String, f64)] {
        self.series.get(name).map_or(&[], Vec::as_slice)
    }
}

/// The value of one series (`name{labels}` exactly as rendered); 0 when absent, as a counter
/// that has not counted yet is.
pub fn value(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| {
            l.strip_prefix(name_and_labels)
                .is_some_and(|rest| rest.starts_with(' '))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# TYPE router_messages_total counter\n\
        router_messages_total{type=\"trade\"} 3\n\
        router_messages_total{type=\"delta\"} 4\n\
        lag_seconds{g=\"a\"} 0.5\nlag_seconds{g=\"b\"} 2.5\nup 1\n";

    #[test]
    fn prometheus_text_sums_over_labels() {
        let m = Metrics::parse(TEXT);
        assert_eq!(m.sum("router_messages_total"), Some(7.0));
        assert_eq!(m.sum("up"), Some(1.0));
        assert_eq!(m.sum("nope"), None);
        assert_eq!(m.with_label("router_messages_total", "trade").len(), 1);
        assert_eq!(m.max("lag_seconds"), Some(2.5));
        assert_eq!(m.max("nope"), None);
    }

    #[test]
    fn one_series_is_read_exactly() {
        assert_eq!(value(TEXT, "router_messages_total{type=\"delta\"}"), 4.0);
        assert_eq!(value(TEXT, "up"), 1.0);
        // A prefix of another series' name is not that series.
        assert_eq!(value(TEXT, "router_messages"), 0.0);
    }
}
