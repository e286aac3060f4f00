//! kd-testkit: what the workspace's tests share, so each helper exists once. A dev-dependency
//! only: no production crate depends on it, and it depends on no crate but `kd-core`, so every
//! other crate's tests (unit tests included) can use it without a cycle.
//!
//! # Layout
//! - [`pg`]: a uniquely named PostgreSQL database per test ([`pg::TestDb`], dropped afterwards)
//!   and a private PostgreSQL server of its own ([`pg::PrivatePg`]) for tests that stop it.
//! - [`tmpfs`]: a small tmpfs on a directory (a disk that can be filled and grown).
//! - [`prom`]: Prometheus text format, parsed ([`prom::Metrics`]) or one series read.
//! - [`wait`]: poll a condition until it holds or a limit passes (blocking and async).
//! - [`ports`]: free loopback ports and addresses nobody listens on.
//! - [`process`]: run a built binary as a child (log file, signals, exit with a limit, stop).
//! - [`http`]: plain HTTP/1.0 probes (`/health`, `/metrics`) without an async client.
//! - [`up`]: a running `kalshi-data up` tree: its `up.json`, probes of its children, drain.
//! - [`fixtures`]: example records of every table.
//! - [`ci`]: loud skips when an external tool is missing, failures under CI.
//!
//! Errors are [`Error`]; every helper that can fail returns it, so a test's `?` names what went
//! wrong (a timeout names what was awaited).

pub mod ci;
pub mod fixtures;
pub mod http;
pub mod pg;
pub mod ports;
pub mod process;
pub mod prom;
pub mod tmpfs;
pub mod up;
pub mod wait;

use std::time::Duration;

/// What a test-support helper can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Postgres(#[from] tokio_postgres::Error),
    /// A condition that did not hold in time; `what` says which.
    #[error("timed out after {limit:?} waiting for {what}")]
    Timeout { what: String, limit: Duration },
    /// A command or process that failed; the message carries its output.
    #[error("{0}")]
    Failed(String),
}

/// The result of a test-support helper.
pub type Result<T> = std::result::Result<T, Error>;
