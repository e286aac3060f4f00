//! Production as a [`WindowSource`]: the deduplicator's store (PostgreSQL or SQLite).
//!
//! Placeholder until the production store's crate exposes its interface; see `open`.

use crate::source::{MemorySource, SourceError};

/// Why production could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ProductionError {
    #[error("production store: {0}")]
    Open(String),
}

/// Opens the production store `url` names.
pub async fn open(url: &str) -> Result<MemorySource, ProductionError> {
    let _ = SourceError::Metadata("unused".into());
    Err(ProductionError::Open(format!(
        "production store for {} is not available in this build yet",
        kd_core::config::redact_url(url)
    )))
}
