//! The lifecycle part of the comparison, under the lifecycle identity of
//! `kd_core::identity::lifecycle`.
//!
//! Production files a lifecycle message at the first gatherer's estimate of the exchange's clock
//! at receipt; the truth knows the instant the exchange sent it (`received_at` of its records).
//! They differ by the delivery latency and the clock estimate, so a truth message and a stored
//! row are the same change when subject, event type and payload hash are equal and the times are
//! within [`LIFECYCLE_MATCH_US`] — and the matching is count-exact: each truth message pairs
//! with at most one row and each row with at most one message (two toggles in a minute must be
//! two rows; a row too many is a duplicate, one too few a loss).

use super::check::{Category, Problems, Reach, SHOWN, describe};
use super::gaps::{GapIndex, channel};
use super::truth::{Fate, Truth};
use crate::production::ProductionData;
use kd_core::identity::lifecycle::{LIFECYCLE_MATCH_US, match_times};
use kd_core::records::Lifecycle;
use kd_core::{Record, TimestampUs};
use std::collections::HashMap;

type Key<'a> = (&'a str, &'a str, i64);

fn key(l: &Lifecycle) -> Key<'_> {
    (&l.subject, &l.event_type, l.payload_hash())
}

/// The channel a lifecycle record came on, as gap records name it.
fn channel_of(l: &Lifecycle) -> &'static str {
    if l.kind == "multivariate_market_lifecycle" {
        "multivariate_market_lifecycle"
    } else {
        channel::LIFECYCLE
    }
}

fn push(p: &mut Problems, name: impl FnOnce() -> String) {
    p.count += 1;
    if p.first.len() < SHOWN {
        p.first.push(name());
    }
}

fn describe_sent(l: &Lifecycle, sent: TimestampUs) -> String {
    format!("{} (sent {sent})", describe(&Record::Lifecycle(l.clone())))
}

/// Compares the truth's lifecycle messages sent in `[from, to]` with production's rows. A
/// message is expected whatever its fate (`check`'s rule), except one sent while nobody was
/// subscribed before the platform could have been (`reach`).
pub(super) fn compare(
    truth: &Truth,
    production: &ProductionData,
    gaps: &GapIndex,
    reach: &Reach<'_>,
    from: TimestampUs,
    to: TimestampUs,
) -> Category {
    let mut category = Category::default();
    let mut expected: HashMap<Key<'_>, Vec<&Lifecycle>> = HashMap::new();
    for p in &truth.published {
        let Record::Lifecycle(l) = &p.record else {
            continue;
        };
        // The truth keeps the send instant in `received_at`.
        if !(from <= l.received_at && l.received_at <= to) {
            continue;
        }
        if p.fate == Fate::Unsubscribed && reach.too_early(p) {
            category.unreachable += 1;
            continue;
        }
        expected.entry(key(l)).or_default().push(l);
    }
    // A row may be filed a little after the window's end (the delivery latency).
    let lo = from.micros().saturating_sub(LIFECYCLE_MATCH_US);
    let hi = to.micros().saturating_add(LIFECYCLE_MATCH_US);
    let mut stored: HashMap<Key<'_>, Vec<&Lifecycle>> = HashMap::new();
    for l in &production.lifecycle {
        let ts = l.exchange_ts.micros();
        if lo <= ts && ts <= hi {
            stored.entry(key(l)).or_default().push(l);
        }
    }
    for (k, sent) in &expected {
        let rows = stored.get(k).map_or(&[][..], Vec::as_slice);
        let sent_us: Vec<i64> = sent.iter().map(|l| l.received_at.micros()).collect();
        let rows_us: Vec<i64> = rows.iter().map(|l| l.exchange_ts.micros()).collect();
        let (lone_sent, lone_rows) = match_times(&sent_us, &rows_us, LIFECYCLE_MATCH_US);
        category.ok += sent.len() - lone_sent.len();
        category.expected += sent.len() - lone_sent.len();
        for i in lone_sent {
            let l = sent[i];
            if gaps.covered_by_all(&l.subject, channel_of(l), l.received_at) {
                push(&mut category.excused, || describe_sent(l, l.received_at));
            } else {
                category.expected += 1;
                push(&mut category.missing, || describe_sent(l, l.received_at));
            }
        }
        for j in lone_rows {
            let row = rows[j];
            let ts = row.exchange_ts.micros();
            // A second row of a change the truth sent once is a duplicate; one no truth message
            // explains is extra.
            let near = sent_us
                .iter()
                .any(|s| s.abs_diff(ts) <= LIFECYCLE_MATCH_US.unsigned_abs());
            let problems = if near {
                &mut category.duplicated
            } else {
                &mut category.extra
            };
            push(problems, || describe(&Record::Lifecycle(row.clone())));
        }
    }
    for (k, rows) in &stored {
        if expected.contains_key(k) {
            continue;
        }
        for row in rows
            .iter()
            .filter(|l| from <= l.exchange_ts && l.exchange_ts <= to)
        {
            push(&mut category.extra, || {
                describe(&Record::Lifecycle((*row).clone()))
            });
        }
    }
    category
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::truth::Published;
    use kd_core::records::WirePos;

    fn life(event_type: &str, ts: i64) -> Lifecycle {
        Lifecycle {
            subject: "M".into(),
            kind: "market_lifecycle_v2".into(),
            event_type: event_type.into(),
            exchange_ts: TimestampUs::from_micros(ts),
            payload: format!("{{\"event_type\":\"{event_type}\"}}"),
            received_at: TimestampUs::from_micros(ts),
            pos: WirePos::default(),
        }
    }

    fn run(sent: &[(&str, i64)], rows: &[(&str, i64)]) -> Category {
        let truth = Truth {
            published: sent
                .iter()
                .map(|(e, t)| Published::new(Record::Lifecycle(life(e, *t)), true))
                .collect(),
            ..Truth::default()
        };
        let production = ProductionData {
            lifecycle: rows.iter().map(|(e, t)| life(e, *t)).collect(),
            gatherers: vec!["g1".into()],
            ..ProductionData::default()
        };
        let gaps = GapIndex::new(&production.gatherers, &production.gaps);
        let reach = Reach::new(&truth, 2_000_000);
        compare(
            &truth,
            &production,
            &gaps,
            &reach,
            TimestampUs::from_micros(0),
            TimestampUs::from_micros(100_000_000),
        )
    }

    const TOGGLES: [(&str, i64); 4] = [
        ("deactivated", 10_000_000),
        ("activated", 12_500_000),
        ("deactivated", 15_000_000),
        ("activated", 17_500_000),
    ];

    #[test]
    fn four_toggles_stored_a_few_ms_late_pass() {
        let rows: Vec<(&str, i64)> = TOGGLES.iter().map(|(e, t)| (*e, t + 3_000)).collect();
        let c = run(&TOGGLES, &rows);
        assert!(c.passed(), "{c:?}");
        assert_eq!((c.expected, c.ok), (4, 4));
    }

    #[test]
    fn a_merged_toggle_is_missing_and_a_double_is_duplicated() {
        // The bucketed identity's failure: the second pause and resume lost.
        let c = run(&TOGGLES, &TOGGLES[..2]);
        assert!(!c.passed());
        assert_eq!(c.missing.count, 2);
        let mut doubled = TOGGLES.to_vec();
        doubled.push(("deactivated", 10_004_000));
        let c = run(&TOGGLES, &doubled);
        assert!(!c.passed());
        assert_eq!(c.duplicated.count, 1, "{c:?}");
        let c = run(
            &TOGGLES[..1],
            &[("deactivated", 10_000_000), ("settled", 1)],
        );
        assert_eq!(c.extra.count, 1, "{c:?}");
    }
}
