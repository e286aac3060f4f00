//! The `sync_progress` table (schema 5): how far production is complete, per gatherer and
//! table. `complete_through` is a time such that every row the gatherer had committed to its
//! local store before it is in production; `updated_at` is when the deduplicator last proved
//! it (the deduplicator's clock). The deduplicator writes it (`kd_dedup` sync), the exporter
//! reads it to export a window only once production is complete for it.

use crate::error::StoreError;
use crate::postgres::PgStore;
use crate::sqlite::SqliteStore;
use kd_core::{Table, TimestampUs};
use rusqlite::params;

/// One gatherer's completeness for one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncProgress {
    pub gatherer: String,
    pub table: Table,
    /// Every row the gatherer committed before this time is in production.
    pub complete_through: TimestampUs,
    /// When the deduplicator last proved it.
    pub updated_at: TimestampUs,
}

// Overwrites: the deduplicator writes only what it proved, and a replaced gatherer store
// starts over (its old progress says nothing about the new store's rows).
const PG_UPSERT: &str = "INSERT INTO sync_progress
    (gatherer, table_name, complete_through, updated_at) VALUES ($1, $2, $3, $4)
    ON CONFLICT (gatherer, table_name) DO UPDATE SET
      complete_through = EXCLUDED.complete_through, updated_at = EXCLUDED.updated_at";

const SQLITE_UPSERT: &str = "INSERT INTO sync_progress
    (gatherer, table_name, complete_through, updated_at) VALUES (?1, ?2, ?3, ?4)
    ON CONFLICT (gatherer, table_name) DO UPDATE SET
      complete_through = excluded.complete_through, updated_at = excluded.updated_at";

const SELECT: &str = "SELECT gatherer, table_name, complete_through, updated_at
    FROM sync_progress ORDER BY gatherer, table_name";

fn row(gatherer: String, name: &str, through: i64, updated: i64) -> Option<SyncProgress> {
    Some(SyncProgress {
        gatherer,
        table: Table::parse(name)?,
        complete_through: TimestampUs::from_micros(through),
        updated_at: TimestampUs::from_micros(updated),
    })
}

impl PgStore {
    /// Upserts progress rows in one transaction.
    pub async fn set_progress(&self, rows: &[SyncProgress]) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let stmt = tx.prepare(PG_UPSERT).await?;
        for r in rows {
            tx.execute(
                &stmt,
                &[
                    &r.gatherer,
                    &r.table.name(),
                    &r.complete_through.micros(),
                    &r.updated_at.micros(),
                ],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every progress row.
    pub async fn progress(&self) -> Result<Vec<SyncProgress>, StoreError> {
        let client = self.client().await?;
        Ok(client
            .query(SELECT, &[])
            .await?
            .iter()
            .filter_map(|r| row(r.get(0), r.get::<_, &str>(1), r.get(2), r.get(3)))
            .collect())
    }
}

impl SqliteStore {
    /// Upserts progress rows in one transaction.
    pub async fn set_progress(&self, rows: &[SyncProgress]) -> Result<(), StoreError> {
        let rows = rows.to_vec();
        self.with(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            {
                let mut stmt = tx.prepare_cached(SQLITE_UPSERT)?;
                for r in &rows {
                    stmt.execute(params![
                        r.gatherer,
                        r.table.name(),
                        r.complete_through.micros(),
                        r.updated_at.micros()
                    ])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// Every progress row.
    pub async fn progress(&self) -> Result<Vec<SyncProgress>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(SELECT)?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })?;
            let mut out = Vec::new();
            for r in rows {
                let (g, name, through, updated) = r?;
                out.extend(row(g, &name, through, updated));
            }
            Ok(out)
        })
        .await
    }
}
