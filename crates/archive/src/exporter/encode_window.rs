//! A window's records → its encoded Parquet files (`raw/`, and `processed/` when asked). CPU
//! work only, run on the blocking pool by the exporter.

use super::ExportError;
use crate::encode::{self, FileMeta};
use crate::layout::Tier;
use crate::processed;
use crate::schema::{self, SchemaError};
use crate::window::Window;
use kd_core::{Record, Table};

/// The encoded files of a window.
pub(super) struct Encoded {
    pub(super) files: Vec<(Tier, Vec<u8>)>,
    pub(super) duplicates: usize,
}

fn window_meta(
    table: Table,
    tier: Tier,
    w: &Window,
    rows: usize,
    row_group_rows: usize,
) -> FileMeta {
    FileMeta {
        dataset: format!("{}.{}", tier.prefix(), table.name()),
        extra: vec![
            ("kalshi_data.window_start".into(), w.start.to_rfc3339()),
            ("kalshi_data.window_end".into(), w.end.to_rfc3339()),
            ("kalshi_data.rows".into(), rows.to_string()),
        ],
        sorted_by_first_two: true,
        row_group_rows,
    }
}

/// Sorts, converts and encodes a window (CPU work, run off the async threads).
pub(super) fn encode_window(
    table: Table,
    w: Window,
    mut records: Vec<Record>,
    snapshots: &[Record],
    markets: &std::collections::HashMap<String, crate::source::MarketRef>,
    want_processed: bool,
    row_group_rows: usize,
) -> Result<Encoded, ExportError> {
    schema::sort_records(&mut records);
    let mut files = Vec::with_capacity(2);
    let raw = encode_chunks(table, &records, row_group_rows, |chunk| {
        schema::raw_batch(table, chunk)
    })?;
    let raw_schema = schema::raw_schema(table);
    files.push((
        Tier::Raw,
        encode::encode(
            &raw_schema,
            &raw,
            &window_meta(table, Tier::Raw, &w, records.len(), row_group_rows),
        )?,
    ));
    drop(raw);
    let mut duplicates = 0;
    if want_processed {
        duplicates = processed::dedup_sorted(&mut records);
        // Flags need whole-window state (the book), so they are computed before chunking.
        let (batch, extra) = processed::processed_batch(table, &records, snapshots, markets)?;
        let mut meta = window_meta(table, Tier::Processed, &w, records.len(), row_group_rows);
        meta.extra.extend(extra);
        meta.extra.push((
            "kalshi_data.duplicates_removed".into(),
            duplicates.to_string(),
        ));
        files.push((
            Tier::Processed,
            encode::encode(&processed::processed_schema(table), &[batch], &meta)?,
        ));
    }
    Ok(Encoded { files, duplicates })
}

/// Converts records to batches of at most one row group each, so the Arrow copy of a window
/// is built and dropped piecewise inside the writer.
fn encode_chunks(
    _table: Table,
    records: &[Record],
    row_group_rows: usize,
    to_batch: impl Fn(&[Record]) -> Result<arrow::record_batch::RecordBatch, SchemaError>,
) -> Result<Vec<arrow::record_batch::RecordBatch>, SchemaError> {
    records
        .chunks(row_group_rows.max(1))
        .map(to_batch)
        .collect()
}
