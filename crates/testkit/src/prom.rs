//! Prometheus text format, as the tests read a process's `/metrics`: the parser is kd-core's
//! ([`Metrics`], [`value`]), shared with `status`; these are the shorthands the tests use.

pub use kd_core::prom_text::{Metrics, value};

/// Sum of every sample of a metric in Prometheus text.
pub fn sum(text: &str, name: &str) -> Option<f64> {
    Metrics::parse(text).sum(name)
}

/// Largest sample of a metric in Prometheus text.
pub fn max(text: &str, name: &str) -> Option<f64> {
    Metrics::parse(text).max(name)
}
