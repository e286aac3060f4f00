//! The figures of one run: every key a number or `null` with a reason, printed as one JSON
//! object (`--json`) or as a table.

use serde_json::{Map, Value};

/// Keys `--json` always carries (more are added as measured).
pub const REQUIRED_KEYS: [&str; 13] = [
    "parse_msgs_per_s",
    "gatherer_msgs_per_s",
    "gatherer_vs_baseline",
    "dedup_pg_rows_per_s",
    "dedup_vs_copy",
    "dedup_sqlite_rows_per_s",
    "p99_exchange_to_local_ms",
    "p99_exchange_to_production_ms",
    "rss_100k_markets_mb",
    "rss_1m_markets_mb",
    "sync_1m_markets_s",
    "export_rows_per_s",
    "platform_max_msgs_per_s",
];

/// Figures in insertion order, with the reason for each one not measured.
#[derive(Debug, Default)]
pub struct Report {
    figures: Vec<(String, Option<f64>)>,
    reasons: Map<String, Value>,
    notes: Map<String, Value>,
}

impl Report {
    /// Records a figure (replacing an earlier one of the same key).
    pub fn set(&mut self, key: &str, value: Option<f64>, reason_if_none: &str) {
        let value = value.filter(|v| v.is_finite());
        self.reasons.remove(key);
        if value.is_none() {
            self.reasons.insert(key.into(), reason_if_none.into());
        }
        match self.figures.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => self.figures.push((key.into(), value)),
        }
    }

    /// Marks a figure as not measured.
    pub fn skip(&mut self, key: &str, reason: &str) {
        self.set(key, None, reason);
    }

    /// A figure if measured.
    pub fn get(&self, key: &str) -> Option<f64> {
        self.figures
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| *v)
    }

    /// A ratio of two figures already set (`None` when either is missing).
    pub fn ratio(&mut self, key: &str, num: &str, den: &str) {
        let r = match (self.get(num), self.get(den)) {
            (Some(n), Some(d)) if d > 0.0 => Some(n / d),
            _ => None,
        };
        self.set(key, r, &format!("needs both {num} and {den}"));
    }

    /// Free-form context (load, sizes, sources) kept beside the figures.
    pub fn note(&mut self, key: &str, value: impl Into<Value>) {
        self.notes.insert(key.into(), value.into());
    }

    /// Every required key present: unmeasured ones as null with a reason.
    pub fn complete(&mut self) {
        for k in REQUIRED_KEYS {
            if !self.figures.iter().any(|(f, _)| f == k) {
                self.skip(k, "stage not run");
            }
        }
    }

    /// One JSON object: figures, then `reasons` (key → why null) and `notes`.
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        for (k, v) in &self.figures {
            out.insert(k.clone(), v.map_or(Value::Null, |x| round(x).into()));
        }
        out.insert("reasons".into(), Value::Object(self.reasons.clone()));
        out.insert("notes".into(), Value::Object(self.notes.clone()));
        Value::Object(out)
    }

    /// A two-column table for people.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        for (k, v) in &self.figures {
            let shown = match v {
                Some(x) => format!("{}", round(*x)),
                None => format!(
                    "—  ({})",
                    self.reasons.get(k).and_then(Value::as_str).unwrap_or("")
                ),
            };
            s.push_str(&format!("{k:<36} {shown}\n"));
        }
        for (k, v) in &self.notes {
            s.push_str(&format!("note {k:<31} {v}\n"));
        }
        s
    }
}

/// Three significant decimals are plenty for a benchmark figure.
fn round(x: f64) -> f64 {
    if x.abs() >= 100.0 {
        x.round()
    } else {
        (x * 1000.0).round() / 1000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unmeasured_keys_carry_a_reason() {
        let mut r = Report::default();
        r.set("parse_msgs_per_s", Some(10.0), "x");
        r.set("gatherer_msgs_per_s", Some(f64::NAN), "not finite");
        r.complete();
        let j = r.to_json();
        assert_eq!(j["parse_msgs_per_s"], 10.0);
        assert!(j["gatherer_msgs_per_s"].is_null());
        assert_eq!(j["reasons"]["gatherer_msgs_per_s"], "not finite");
        for k in REQUIRED_KEYS {
            assert!(j[k].is_number() || j["reasons"][k].is_string(), "{k}");
        }
    }
}
