//! Parquet encoding: zstd, row groups sized for scanning, sorting and units in the metadata.
//!
//! A file is encoded in memory and handed to the object store in one piece (see
//! [`crate::store`] for why that makes objects appear atomically).

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::{KeyValue, SortingColumn};
use parquet::file::properties::WriterProperties;

/// Rows per row group: large enough for efficient column scans and good compression, small
/// enough that a reader filtering on `ticker` (row-group statistics) can skip most of a file.
pub const DEFAULT_ROW_GROUP_ROWS: usize = 131_072;

/// Why a file could not be encoded.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
}

/// What to write besides the rows.
#[derive(Debug, Clone)]
pub struct FileMeta {
    /// `raw.deltas`, `processed.trades`, `aggregates.hourly_ohlc`, …
    pub dataset: String,
    /// Extra key-value pairs (window bounds, row counts, …).
    pub extra: Vec<(String, String)>,
    /// Whether rows are sorted by (column 0, column 1) — ticker then exchange time.
    pub sorted_by_first_two: bool,
    pub row_group_rows: usize,
}

/// Encodes `batches` (all of `schema`) into one Parquet file.
pub fn encode(
    schema: &SchemaRef,
    batches: &[RecordBatch],
    meta: &FileMeta,
) -> Result<Vec<u8>, EncodeError> {
    let mut kv = vec![
        KeyValue::new("kalshi_data.dataset".to_string(), meta.dataset.clone()),
        KeyValue::new("kalshi_data.schema_version".to_string(), "1".to_string()),
    ];
    for f in schema.fields() {
        if let Some(unit) = f.metadata().get("unit") {
            kv.push(KeyValue::new(format!("unit.{}", f.name()), unit.clone()));
        }
    }
    for (k, v) in &meta.extra {
        kv.push(KeyValue::new(k.clone(), v.clone()));
    }
    let sorting = meta.sorted_by_first_two.then(|| {
        vec![
            SortingColumn {
                column_idx: 0,
                descending: false,
                nulls_first: true,
            },
            SortingColumn {
                column_idx: 1,
                descending: false,
                nulls_first: true,
            },
        ]
    });
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_row_count(Some(meta.row_group_rows.max(1)))
        .set_key_value_metadata(Some(kv))
        .set_sorting_columns(sorting)
        .build();
    let mut out = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut out, schema.clone(), Some(props))?;
    for batch in batches {
        writer.write(batch)?;
    }
    writer.close()?;
    Ok(out)
}
