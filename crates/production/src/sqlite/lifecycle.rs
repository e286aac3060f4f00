//! Lifecycle copies on SQLite: the rule of `kd_core::identity::lifecycle` as SQL, inside the
//! caller's transaction (see `crate::lifecycle` for the steps). The connection is the only
//! writer, so no lock is needed beyond the `IMMEDIATE` transaction.

use crate::error::StoreError;
use crate::lifecycle::window;
use kd_core::records::Lifecycle;
use rusqlite::{OptionalExtension, params};

/// Files each copy; returns how many became new rows.
pub(super) fn insert_copies(
    tx: &rusqlite::Transaction<'_>,
    records: &[Lifecycle],
    origins: &[String],
) -> Result<u64, StoreError> {
    let mut replay = tx.prepare_cached(
        "SELECT row_ts FROM lifecycle_copies
         WHERE gatherer = ?1 AND subject = ?2 AND event_type = ?3 AND payload_hash = ?4
           AND exchange_ts = ?5",
    )?;
    let mut nearest = tx.prepare_cached(
        "SELECT l.exchange_ts FROM lifecycle l
         WHERE l.subject = ?1 AND l.event_type = ?2 AND l.payload_hash = ?3
           AND l.exchange_ts BETWEEN ?4 AND ?5
           AND NOT EXISTS (SELECT 1 FROM lifecycle_copies c
             WHERE c.gatherer = ?6 AND c.subject = l.subject AND c.event_type = l.event_type
               AND c.payload_hash = l.payload_hash AND c.row_ts = l.exchange_ts)
         ORDER BY abs(l.exchange_ts - ?7), l.exchange_ts LIMIT 1",
    )?;
    let mut insert_row = tx.prepare_cached(
        "INSERT OR IGNORE INTO lifecycle (subject, kind, event_type, exchange_ts, payload_hash,
           payload, received_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    let mut insert_copy = tx.prepare_cached(
        "INSERT OR IGNORE INTO lifecycle_copies (gatherer, subject, event_type, payload_hash,
           exchange_ts, row_ts) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    let mut inserted = 0u64;
    for (l, gatherer) in records.iter().zip(origins) {
        let hash = l.payload_hash();
        let ts = l.exchange_ts.micros();
        let seen: Option<i64> = replay
            .query_row(params![gatherer, l.subject, l.event_type, hash, ts], |r| {
                r.get(0)
            })
            .optional()?;
        if seen.is_some() {
            continue;
        }
        let (lo, hi) = window(ts);
        let matched: Option<i64> = nearest
            .query_row(
                params![l.subject, l.event_type, hash, lo, hi, gatherer, ts],
                |r| r.get(0),
            )
            .optional()?;
        let row_ts = match matched {
            Some(row_ts) => row_ts,
            None => {
                inserted += insert_row.execute(params![
                    l.subject,
                    l.kind,
                    l.event_type,
                    ts,
                    hash,
                    l.payload,
                    l.received_at.micros()
                ])? as u64;
                ts
            }
        };
        insert_copy.execute(params![gatherer, l.subject, l.event_type, hash, ts, row_ts])?;
    }
    Ok(inserted)
}
