//! The `quarantine` table (schema 3): rows production refused or could not be given, kept with
//! their reason instead of blocking their table. A row is identified by where it came from
//! (gatherer, table, store id, local sequence), so filing it again after a crash adds nothing.
//!
//! Reasons and bodies are stored with control characters escaped (`\u{0}` → `\u{0000}` text):
//! a NUL byte — one of the reasons a row lands here — cannot be stored in PostgreSQL `text`.

use crate::error::StoreError;
use crate::postgres::PgStore;
use crate::sqlite::SqliteStore;
use crate::store::seq_to_i64;
use kd_core::{Table, TimestampUs};
use rusqlite::params;
use std::collections::BTreeMap;

/// One quarantined row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantineRow {
    pub gatherer: String,
    pub table: Table,
    /// The gatherer's local store the row was read from.
    pub store_id: String,
    /// Its local sequence number there.
    pub seq: u64,
    pub reason: String,
    /// The row as JSON (a record), or the stored body as text (an unreadable row).
    pub body: String,
}

/// Quarantined rows per table name (only tables that have any).
pub type QuarantineCounts = BTreeMap<String, u64>;

/// `text` with every control character escaped as `\u{…}`.
pub fn printable(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_string();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                format!("\\u{{{:04x}}}", u32::from(c))
            } else {
                c.to_string()
            }
        })
        .collect()
}

const PG_INSERT: &str = "INSERT INTO quarantine
    (gatherer, table_name, store_id, seq, reason, body, quarantined_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7)
    ON CONFLICT (gatherer, table_name, store_id, seq) DO NOTHING";

const SQLITE_INSERT: &str = "INSERT INTO quarantine
    (gatherer, table_name, store_id, seq, reason, body, quarantined_at)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
    ON CONFLICT (gatherer, table_name, store_id, seq) DO NOTHING";

const COUNTS: &str = "SELECT table_name, COUNT(*) FROM quarantine GROUP BY table_name";

impl PgStore {
    /// Files `rows` (already filed ones are skipped); returns how many are new.
    pub async fn quarantine(&self, rows: &[QuarantineRow]) -> Result<u64, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let stmt = tx.prepare(PG_INSERT).await?;
        let now = TimestampUs::now().micros();
        let mut added = 0;
        for r in rows {
            let seq = seq_to_i64(r.seq)?;
            added += tx
                .execute(
                    &stmt,
                    &[
                        &printable(&r.gatherer),
                        &r.table.name(),
                        &printable(&r.store_id),
                        &seq,
                        &printable(&r.reason),
                        &printable(&r.body),
                        &now,
                    ],
                )
                .await?;
        }
        tx.commit().await?;
        Ok(added)
    }

    pub async fn quarantine_counts(&self) -> Result<QuarantineCounts, StoreError> {
        let client = self.client().await?;
        let mut out = QuarantineCounts::new();
        for row in client.query(COUNTS, &[]).await? {
            let n: i64 = row.get(1);
            out.insert(row.get(0), n.max(0) as u64);
        }
        Ok(out)
    }

    pub async fn quarantined(&self) -> Result<Vec<QuarantineRow>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT gatherer, table_name, store_id, seq, reason, body FROM quarantine
                 ORDER BY id",
                &[],
            )
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let name: String = row.get(1);
            let Some(table) = Table::parse(&name) else {
                continue;
            };
            let seq: i64 = row.get(3);
            out.push(QuarantineRow {
                gatherer: row.get(0),
                table,
                store_id: row.get(2),
                seq: seq.max(0) as u64,
                reason: row.get(4),
                body: row.get(5),
            });
        }
        Ok(out)
    }
}

impl SqliteStore {
    /// Files `rows` (already filed ones are skipped); returns how many are new.
    pub async fn quarantine(&self, rows: &[QuarantineRow]) -> Result<u64, StoreError> {
        let rows = rows.to_vec();
        self.with(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let now = TimestampUs::now().micros();
            let mut added = 0;
            {
                let mut stmt = tx.prepare_cached(SQLITE_INSERT)?;
                for r in &rows {
                    added += stmt.execute(params![
                        printable(&r.gatherer),
                        r.table.name(),
                        printable(&r.store_id),
                        seq_to_i64(r.seq)?,
                        printable(&r.reason),
                        printable(&r.body),
                        now
                    ])? as u64;
                }
            }
            tx.commit()?;
            Ok(added)
        })
        .await
    }

    pub async fn quarantine_counts(&self) -> Result<QuarantineCounts, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(COUNTS)?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
            let mut out = QuarantineCounts::new();
            for row in rows {
                let (name, n) = row?;
                out.insert(name, n.max(0) as u64);
            }
            Ok(out)
        })
        .await
    }

    pub async fn quarantined(&self) -> Result<Vec<QuarantineRow>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT gatherer, table_name, store_id, seq, reason, body FROM quarantine
                 ORDER BY id",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (gatherer, name, store_id, seq, reason, body) = row?;
                if let Some(table) = Table::parse(&name) {
                    out.push(QuarantineRow {
                        gatherer,
                        table,
                        store_id,
                        seq: seq.max(0) as u64,
                        reason,
                        body,
                    });
                }
            }
            Ok(out)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(printable("KX-A"), "KX-A");
        assert_eq!(printable("M\0X\u{7}é"), "M\\u{0000}X\\u{0007}é");
    }
}
