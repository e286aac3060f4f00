//! Lifecycle identities through the deduplicator's merge and the production store, on both
//! backends: three gatherers' copies of four toggles of one market within 10 s (each gatherer
//! files them at its own receipt estimate, milliseconds apart) are four rows; replaying every
//! batch — after a crash, with the in-memory memory of the merge gone — still four; a lagging
//! gatherer's copies arriving in later transactions join the rows already there.

use crate::common::TestResult;
use kd_core::pull::PulledRecord;
use kd_core::records::{Lifecycle, WirePos};
use kd_core::{Record, Table, TimestampUs};
use kd_dedup::merge::{Batch, RecentIdentities, merge_with};
use kd_dedup::store::{CursorUpdate, Store};

const GATHERERS: [&str; 3] = ["g1", "g2", "g3"];
/// 2026-11-27 00:00:07 UTC: the four toggles sit inside one minute, as in issue 16.
const T0: i64 = 1_795_737_607_000_000;

fn toggle(i: i64, gatherer: usize) -> Record {
    let (event_type, paused) = if i % 2 == 0 {
        ("deactivated", true)
    } else {
        ("activated", false)
    };
    // Each gatherer's estimate differs by a few ms (network path and clock estimate).
    let jitter = [0, 4_000, -2_500][gatherer];
    let ts = TimestampUs::from_micros(T0 + i * 2_500_000 + jitter);
    Record::Lifecycle(Lifecycle {
        subject: "SIM-E1-M1".into(),
        kind: "market_lifecycle_v2".into(),
        event_type: event_type.into(),
        exchange_ts: ts,
        payload: format!(
            "{{\"event_type\":\"{event_type}\",\"is_deactivated\":{paused},\"market_ticker\":\"SIM-E1-M1\"}}"
        ),
        received_at: ts,
        pos: WirePos {
            sid: Some(gatherer as u64 + 1),
            seq: Some(i as u64),
        },
    })
}

fn batch(gatherer: usize, toggles: std::ops::Range<i64>) -> Batch {
    Batch {
        gatherer,
        records: toggles
            .map(|i| PulledRecord {
                seq: i as u64 + 1,
                record: toggle(i, gatherer),
            })
            .collect(),
        ..Batch::default()
    }
}

/// Merges and commits `batches` as the deduplicator's writer does (origins and cursors).
async fn commit(s: &Store, recent: &mut RecentIdentities, batches: Vec<Batch>) -> TestResult {
    let merged = merge_with(batches, Some(recent));
    recent.remember(merged.keys.iter().copied());
    let origins: Vec<&str> = merged.origins.iter().map(|&g| GATHERERS[g]).collect();
    let cursors: Vec<CursorUpdate> = merged
        .cursors
        .iter()
        .map(|c| CursorUpdate {
            gatherer: GATHERERS[c.gatherer].into(),
            table: Table::Lifecycle,
            last_seq: c.last_seq,
            store_id: String::new(),
        })
        .collect();
    s.insert_merged(Table::Lifecycle, &merged.records, &origins, &cursors)
        .await?;
    Ok(())
}

async fn rows(s: &Store) -> Result<Vec<(String, i64)>, Box<dyn std::error::Error + Send + Sync>> {
    let mut out: Vec<(String, i64)> = s
        .read_window(
            Table::Lifecycle,
            TimestampUs::from_micros(T0 - 60_000_000),
            TimestampUs::from_micros(T0 + 60_000_000),
        )
        .await?
        .into_iter()
        .filter_map(|r| match r {
            Record::Lifecycle(l) => Some((l.event_type, l.exchange_ts.micros())),
            _ => None,
        })
        .collect();
    out.sort_by_key(|r| r.1);
    Ok(out)
}

async fn three_gatherers_four_toggles_are_four_rows(s: &Store) -> TestResult {
    s.migrate().await?;
    let mut recent = RecentIdentities::new(1024);
    // All three deliver in one merge window.
    commit(s, &mut recent, (0..3).map(|g| batch(g, 0..4)).collect()).await?;
    let after_first = rows(s).await?;
    assert_eq!(
        after_first.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(),
        ["deactivated", "activated", "deactivated", "activated"],
        "{after_first:?}"
    );
    // A crash: the merge's memory is gone and every batch is pulled again.
    let mut fresh = RecentIdentities::new(1024);
    commit(s, &mut fresh, (0..3).map(|g| batch(g, 0..4)).collect()).await?;
    assert_eq!(rows(s).await?, after_first, "a replay added rows");
    // One gatherer's batch again, alone, in its own transaction.
    commit(s, &mut RecentIdentities::new(0), vec![batch(1, 0..4)]).await?;
    assert_eq!(rows(s).await?.len(), 4);
    assert_eq!(s.count(Table::Lifecycle).await?, 4);
    Ok(())
}

async fn lagging_copies_join_the_rows_already_stored(s: &Store) -> TestResult {
    s.migrate().await?;
    // g1 alone first (g2 and g3 behind), then g2 and g3 in separate later transactions, each
    // with no memory of what was merged before (as after a restart of the deduplicator).
    commit(s, &mut RecentIdentities::new(0), vec![batch(0, 0..4)]).await?;
    commit(s, &mut RecentIdentities::new(0), vec![batch(1, 0..2)]).await?;
    commit(
        s,
        &mut RecentIdentities::new(0),
        vec![batch(2, 0..4), batch(1, 2..4)],
    )
    .await?;
    assert_eq!(rows(s).await?.len(), 4);
    // A fifth real change: g1's own copy of a new pause, the same payload as the third 5 s on.
    commit(s, &mut RecentIdentities::new(0), vec![batch(0, 4..5)]).await?;
    assert_eq!(
        rows(s).await?.len(),
        5,
        "a later identical change is its own row"
    );
    Ok(())
}

both_backends!(
    three_gatherers_four_toggles_are_four_rows,
    lagging_copies_join_the_rows_already_stored
);
