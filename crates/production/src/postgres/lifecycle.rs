//! Lifecycle copies on PostgreSQL: the rule of `kd_core::identity::lifecycle` as SQL, in the
//! transaction that advances the cursors (see `crate::lifecycle` for the steps).

use super::schema::day_of;
use super::{PgStore, upsert_cursors};
use crate::error::StoreError;
use crate::lifecycle::{COPY_LOCK, window};
use crate::store::{CursorUpdate, InsertOutcome};
use kd_core::records::Lifecycle;

const REPLAY: &str = "SELECT row_ts FROM lifecycle_copies
    WHERE gatherer = $1 AND subject = $2 AND event_type = $3 AND payload_hash = $4
      AND exchange_ts = $5";
const NEAREST: &str = "SELECT l.exchange_ts FROM lifecycle l
    WHERE l.subject = $1 AND l.event_type = $2 AND l.payload_hash = $3
      AND l.exchange_ts BETWEEN $4 AND $5
      AND NOT EXISTS (SELECT 1 FROM lifecycle_copies c
        WHERE c.gatherer = $6 AND c.subject = l.subject AND c.event_type = l.event_type
          AND c.payload_hash = l.payload_hash AND c.row_ts = l.exchange_ts)
    ORDER BY abs(l.exchange_ts - $7), l.exchange_ts LIMIT 1";
const INSERT_ROW: &str = "INSERT INTO lifecycle (subject, kind, event_type, exchange_ts,
      payload_hash, payload, received_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
    ON CONFLICT DO NOTHING";
const INSERT_COPY: &str = "INSERT INTO lifecycle_copies (gatherer, subject, event_type,
      payload_hash, exchange_ts, row_ts) VALUES ($1, $2, $3, $4, $5, $6)
    ON CONFLICT DO NOTHING";

impl PgStore {
    pub(crate) async fn insert_lifecycle_copies(
        &self,
        records: &[&Lifecycle],
        origins: &[&str],
        cursors: &[CursorUpdate],
    ) -> Result<InsertOutcome, StoreError> {
        let mut client = self.client().await?;
        let mut days: Vec<i64> = records.iter().map(|l| day_of(l.exchange_ts)).collect();
        days.sort_unstable();
        days.dedup();
        self.ensure_days(&client, &days).await?;
        let tx = client.transaction().await?;
        // One writer at a time decides which row a copy belongs to (two deduplicators on one
        // database would otherwise both see "no row yet").
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&COPY_LOCK])
            .await?;
        let replay = tx.prepare_cached(REPLAY).await?;
        let nearest = tx.prepare_cached(NEAREST).await?;
        let insert_row = tx.prepare_cached(INSERT_ROW).await?;
        let insert_copy = tx.prepare_cached(INSERT_COPY).await?;
        let mut inserted = 0u64;
        for (l, gatherer) in records.iter().zip(origins) {
            let hash = l.payload_hash();
            let ts = l.exchange_ts.micros();
            let key: [&(dyn tokio_postgres::types::ToSql + Sync); 5] =
                [gatherer, &l.subject, &l.event_type, &hash, &ts];
            if tx.query_opt(&replay, &key).await?.is_some() {
                continue;
            }
            let (lo, hi) = window(ts);
            let row_ts = match tx
                .query_opt(
                    &nearest,
                    &[&l.subject, &l.event_type, &hash, &lo, &hi, gatherer, &ts],
                )
                .await?
            {
                Some(row) => row.try_get::<_, i64>(0)?,
                None => {
                    inserted += tx
                        .execute(
                            &insert_row,
                            &[
                                &l.subject,
                                &l.kind,
                                &l.event_type,
                                &ts,
                                &hash,
                                &l.payload,
                                &l.received_at.micros(),
                            ],
                        )
                        .await?;
                    ts
                }
            };
            tx.execute(
                &insert_copy,
                &[gatherer, &l.subject, &l.event_type, &hash, &ts, &row_ts],
            )
            .await?;
        }
        upsert_cursors(&tx, cursors).await?;
        tx.commit().await?;
        Ok(InsertOutcome {
            inserted,
            duplicates: (records.len() as u64).saturating_sub(inserted),
        })
    }
}
