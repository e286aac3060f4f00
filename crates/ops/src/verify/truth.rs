//! The simulator's ground truth, as `verify` needs it: every published record with what became
//! of it (delivered, dropped on the wire for everyone, sent while nobody was subscribed) and
//! when it was sent, the markets the exchange listed and when, the simulator's (re)starts, and
//! the exchange's full books at check points.

use crate::book::Book;
use kd_core::{Record, TimestampUs};
use std::collections::BTreeMap;

/// What became of a published message (the simulator's `fate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fate {
    /// Written to at least one subscriber's socket.
    Delivered,
    /// A subscription covered it and a fault dropped it for every one of them.
    Dropped,
    /// No subscription covered its market and channel when it was sent.
    Unsubscribed,
}

impl Fate {
    fn parse(s: &str) -> Option<Fate> {
        match s {
            "delivered" => Some(Fate::Delivered),
            "dropped" => Some(Fate::Dropped),
            "unsubscribed" => Some(Fate::Unsubscribed),
            _ => None,
        }
    }
}

/// One record the exchange published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub record: Record,
    pub fate: Fate,
    /// When the exchange sent it. A lifecycle record's own time is the event's (a `created`
    /// carries the market's future open time), so this is what windows are measured in.
    pub sent_at: TimestampUs,
}

impl Published {
    /// A record delivered (or, with `false`, sent while nobody was subscribed), sent at its
    /// own time (a lifecycle record: at its `received_at`, which the simulator sets to the
    /// send time). What truths written before `fate`/`sent_at` existed amount to.
    pub fn new(record: Record, delivered: bool) -> Published {
        let sent_at = match &record {
            Record::Lifecycle(l) => l.received_at,
            other => other.exchange_ts(),
        };
        let fate = if delivered {
            Fate::Delivered
        } else {
            Fate::Unsubscribed
        };
        Published {
            record,
            fate,
            sent_at,
        }
    }

    /// Reached at least one subscriber.
    pub fn delivered(&self) -> bool {
        self.fate == Fate::Delivered
    }
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
    /// Every market the exchange listed: when it first became listed (REST and WebSocket
    /// know it; from then on the platform could subscribe to it).
    pub markets: BTreeMap<String, TimestampUs>,
    /// When the simulator (re)started, ascending: each start is a new exchange process that
    /// nobody could have been subscribed to before.
    pub starts: Vec<TimestampUs>,
}

impl Truth {
    /// Exchange time of the first trade, delta or ticker delivered to anyone: the platform
    /// cannot have seen anything before its first subscription, so the default check window
    /// starts there. Lifecycle records are left out: their time is the payload's (`open_ts`,
    /// …), which may lie long before the message was sent.
    pub fn first_delivered(&self) -> Option<TimestampUs> {
        self.published
            .iter()
            .filter(|p| p.delivered())
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
            .filter(|p| p.delivered() && p.record.table() == table)
            .map(|p| p.record.exchange_ts())
            .min()
    }

    /// Exchange time of the last record or check point.
    pub fn last(&self) -> Option<TimestampUs> {
        let records = self.published.iter().map(|p| p.record.exchange_ts());
        records.chain(self.books.iter().map(|b| b.ts)).max()
    }

    /// Per simulator run, the instant the platform first had a subscription: the send time of
    /// the first message delivered to anyone after that start (the first gatherer's first
    /// subscription; nothing reached anybody earlier). (start of the run, first delivery);
    /// a run nothing was delivered in has none. A truth without start lines is one run.
    pub fn first_subscribed(&self) -> Vec<(TimestampUs, TimestampUs)> {
        let mut starts = self.starts.clone();
        starts.sort_unstable();
        starts.dedup();
        if starts
            .first()
            .is_none_or(|s| *s > TimestampUs::from_micros(i64::MIN))
        {
            starts.insert(0, TimestampUs::from_micros(i64::MIN));
        }
        let mut first: Vec<Option<TimestampUs>> = vec![None; starts.len()];
        for p in self.published.iter().filter(|p| p.delivered()) {
            let run = starts
                .partition_point(|s| *s <= p.sent_at)
                .saturating_sub(1);
            if let Some(slot) = first.get_mut(run) {
                *slot = Some(slot.map_or(p.sent_at, |f| f.min(p.sent_at)));
            }
        }
        starts
            .into_iter()
            .zip(first)
            .filter_map(|(s, f)| f.map(|f| (s, f)))
            .collect()
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
            let mut published = Published::new(record, delivered);
            if let Some(fate) = body.get("fate").and_then(|v| v.as_str()) {
                published.fate = Fate::parse(fate).ok_or_else(|| format!("unknown fate {fate}"))?;
            }
            if let Some(at) = body.get("sent_at").and_then(serde_json::Value::as_i64) {
                published.sent_at = TimestampUs::from_micros(at);
            }
            truth.published.push(published);
        }
        Some("market") => {
            let ticker = body
                .get("ticker")
                .and_then(|v| v.as_str())
                .ok_or("market without ticker")?;
            let at = body
                .get("listed_at")
                .and_then(serde_json::Value::as_i64)
                .ok_or("market without listed_at")?;
            let at = TimestampUs::from_micros(at);
            // A restarted simulator lists its markets again: the first listing counts.
            truth
                .markets
                .entry(ticker.to_string())
                .and_modify(|t| *t = (*t).min(at))
                .or_insert(at);
        }
        Some("start") => {
            if let Some(ts) = body.get("ts").and_then(serde_json::Value::as_i64) {
                truth.starts.push(TimestampUs::from_micros(ts));
            }
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
