//! The simulator's ground truth, as `verify` needs it: every published record with whether it
//! reached at least one subscriber, and the exchange's full books at check points.

use crate::book::Book;
use kd_core::{Record, TimestampUs};

/// One record the exchange published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub record: Record,
    /// Reached at least one subscriber (a fault that dropped it for everyone leaves `false`).
    pub delivered: bool,
}

/// The exchange's book of one market at a check point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TruthBook {
    pub ticker: String,
    pub ts: TimestampUs,
    pub book: Book,
}

/// Everything the simulator recorded.
#[derive(Debug, Clone, Default)]
pub struct Truth {
    pub published: Vec<Published>,
    pub books: Vec<TruthBook>,
}

impl Truth {
    /// Exchange time of the first trade, delta or ticker delivered to anyone: the platform
    /// cannot have seen anything before its first subscription, so the default check window
    /// starts there. Lifecycle records are left out: their time is the payload's (`open_ts`,
    /// …), which may lie long before the message was sent.
    pub fn first_delivered(&self) -> Option<TimestampUs> {
        self.published
            .iter()
            .filter(|p| p.delivered)
            .filter(|p| {
                matches!(
                    p.record,
                    Record::Trade(_) | Record::Delta(_) | Record::Ticker(_)
                )
            })
            .map(|p| p.record.exchange_ts())
            .min()
    }

    /// Exchange time of the first record of `table` delivered to anyone.
    pub fn first_delivered_of(&self, table: kd_core::Table) -> Option<TimestampUs> {
        self.published
            .iter()
            .filter(|p| p.delivered && p.record.table() == table)
            .map(|p| p.record.exchange_ts())
            .min()
    }

    /// Exchange time of the last record or check point.
    pub fn last(&self) -> Option<TimestampUs> {
        let records = self.published.iter().map(|p| p.record.exchange_ts());
        records.chain(self.books.iter().map(|b| b.ts)).max()
    }
}

/// Reads the simulator's ground-truth log (JSON lines). Lines of kinds `verify` does not use
/// are skipped; a line that is not JSON is an error naming its number.
///
/// Accepts the externally tagged form (`{"Published": {...}}`, `{"Book": {...}}`), an internally
/// tagged form (`{"kind"|"type": "published", ...}`) and bare `{record, delivered}` lines, so the
/// checker does not break when the simulator's framing changes.
pub fn load(path: &std::path::Path) -> Result<Truth, String> {
    use std::io::BufRead as _;
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut truth = Truth::default();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| e.to_string())?;
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value = match serde_json::from_str(&line) {
            Ok(v) => v,
            // A crash can leave the last line half written; it was never acknowledged.
            Err(_) if n > 0 => continue,
            Err(e) => return Err(format!("line {}: {e}", n + 1)),
        };
        parse_line(&value, &mut truth).map_err(|e| format!("line {}: {e}", n + 1))?;
    }
    Ok(truth)
}

fn parse_line(value: &serde_json::Value, truth: &mut Truth) -> Result<(), String> {
    let (kind, body) = classify(value);
    match kind.as_deref() {
        Some("published") => {
            let record: Record =
                serde_json::from_value(body.get("record").cloned().unwrap_or_default())
                    .map_err(|e| format!("record: {e}"))?;
            let delivered = body
                .get("delivered")
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(true);
            truth.published.push(Published { record, delivered });
        }
        Some("book") => {
            let ticker = body
                .get("ticker")
                .and_then(|v| v.as_str())
                .ok_or("book without ticker")?;
            let ts = body
                .get("ts")
                .and_then(serde_json::Value::as_i64)
                .ok_or("book without ts")?;
            let yes = levels(body.get("yes"))?;
            let no = levels(body.get("no"))?;
            truth.books.push(TruthBook {
                ticker: ticker.to_string(),
                ts: TimestampUs::from_micros(ts),
                book: Book::from_levels(&yes, &no),
            });
        }
        _ => {}
    }
    Ok(())
}

/// (kind in lower case, the object holding the fields).
fn classify(value: &serde_json::Value) -> (Option<String>, &serde_json::Value) {
    if let Some(obj) = value.as_object() {
        for tag in ["kind", "type", "line"] {
            if let Some(kind) = obj.get(tag).and_then(|v| v.as_str()) {
                return (Some(kind.to_ascii_lowercase()), value);
            }
        }
        if obj.contains_key("record") {
            return (Some("published".into()), value);
        }
        if obj.len() == 1
            && let Some((k, v)) = obj.iter().next()
            && v.is_object()
        {
            return (Some(k.to_ascii_lowercase()), v);
        }
    }
    (None, value)
}

fn levels(value: Option<&serde_json::Value>) -> Result<Vec<kd_core::records::Level>, String> {
    use kd_core::records::Level;
    use kd_core::{Count, Price};
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    if let Ok(levels) = serde_json::from_value::<Vec<Level>>(value.clone()) {
        return Ok(levels);
    }
    let pairs: Vec<(i64, i64)> =
        serde_json::from_value(value.clone()).map_err(|e| format!("book levels: {e}"))?;
    pairs
        .into_iter()
        .map(|(p, s)| {
            Ok(Level {
                price: Price::new(p).map_err(|e| format!("book price {p}: {e}"))?,
                size: Count::new(s),
            })
        })
        .collect()
}
