//! What can go wrong in the production store, as variants a caller can match on.

/// A production-store failure. The deduplicator retries every variant (DESIGN §6: production
/// unreachable → retry forever); [`StoreError::kind`] tells outages from bad data.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported production URL `{0}` (expected postgres://… or sqlite://PATH)")]
    UnsupportedUrl(String),
    #[error("invalid production URL: {0}")]
    InvalidUrl(String),
    /// The URL's TLS parameters or the files they name (never the URL itself).
    #[error("PostgreSQL TLS settings: {0}")]
    Tls(String),
    #[error("PostgreSQL: {}", pg_message(.0))]
    Postgres(#[from] tokio_postgres::Error),
    #[error("PostgreSQL connection pool: {}", pool_message(.0))]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("SQLite worker stopped: {0}")]
    Worker(String),
    #[error("production schema is at version {found}, newer than this binary ({known})")]
    SchemaTooNew { found: i64, known: i64 },
    /// Production has no schema yet and the caller may not create it.
    #[error("production schema missing: {0}")]
    SchemaMissing(&'static str),
    #[error("stored value out of range in {table}: {reason}")]
    Corrupt { table: &'static str, reason: String },
    #[error("value does not fit production storage: {0}")]
    OutOfRange(String),
}

/// The two kinds of store failure an operator tells apart (the `kind` label of the
/// deduplicator's error counter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The database could not be reached: an outage, retried until it ends.
    Unreachable,
    /// The database answered and refused (bad data, a constraint, a schema problem).
    Database,
}

impl ErrorKind {
    /// The metric label.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Unreachable => "database_unreachable",
            ErrorKind::Database => "database",
        }
    }
}

/// The server's own words: `tokio_postgres::Error` displays only "db error" for everything the
/// server refused (e.g. "remaining connection slots are reserved…"), which an operator needs.
/// A failed handshake is named in an operator's words (unknown issuer, name mismatch, …); a
/// server that accepts only TLS and was asked for plain gets a hint.
fn pg_message(e: &tokio_postgres::Error) -> String {
    if let Some(tls) = crate::postgres::tls::describe_failure(e) {
        return format!("TLS handshake failed: {tls}");
    }
    match e.as_db_error() {
        Some(db) => {
            let mut text = format!("{} {}: {}", db.severity(), db.code().code(), db.message());
            if db.code().code() == "28000" && db.message().contains("no encryption") {
                text.push_str(
                    " (this server accepts only TLS connections: use sslmode=verify-full with \
                     sslrootcert=CA-FILE, or sslmode=require)",
                );
            }
            text
        }
        None => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                text.push_str(": ");
                text.push_str(&s.to_string());
                source = s.source();
            }
            text
        }
    }
}

fn pool_message(e: &deadpool_postgres::PoolError) -> String {
    match e {
        deadpool_postgres::PoolError::Backend(pg) => pg_message(pg),
        other => other.to_string(),
    }
}

impl StoreError {
    /// True when the error says the database could not be reached (rather than refusing data).
    pub fn is_connection(&self) -> bool {
        match self {
            StoreError::Pool(_) | StoreError::Worker(_) => true,
            StoreError::Postgres(e) => e.is_closed() || e.code().is_none(),
            _ => false,
        }
    }

    /// True when the database refused the *data* — a value it cannot hold (PostgreSQL class 22,
    /// e.g. 22021 for a NUL byte in `text`), a constraint (class 23), or a value outside what
    /// production can store (no partition for its day) — so the same rows will be refused
    /// again, and the deduplicator isolates them into `quarantine`. Everything else (outages,
    /// timeouts, a full disk, lock conflicts) is retried as it is.
    pub fn refuses_data(&self) -> bool {
        match self {
            StoreError::OutOfRange(_) => true,
            StoreError::Postgres(e) => e
                .code()
                .is_some_and(|c| c.code().starts_with("22") || c.code().starts_with("23")),
            StoreError::Sqlite(e) => {
                matches!(
                    e.sqlite_error_code(),
                    Some(
                        rusqlite::ErrorCode::ConstraintViolation
                            | rusqlite::ErrorCode::TooBig
                            | rusqlite::ErrorCode::TypeMismatch
                    )
                ) || matches!(
                    e,
                    rusqlite::Error::ToSqlConversionFailure(_)
                        | rusqlite::Error::IntegralValueOutOfRange(..)
                )
            }
            _ => false,
        }
    }

    /// Outage or refusal: see [`ErrorKind`].
    pub fn kind(&self) -> ErrorKind {
        if self.is_connection() {
            ErrorKind::Unreachable
        } else {
            ErrorKind::Database
        }
    }
}
