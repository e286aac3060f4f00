//! Operator commands of kalshi-data.
//!
//! # Layout
//! - [`up`]: the local supervisor — simulator, 3 gatherers, deduplicator and exporter as OS
//!   processes, restarted with backoff, with a summary and live progress.
//! - [`status`]: one screen of a running deployment's health and the alerts that would fire.
//! - [`verify`]: production against the simulator's ground truth, or a coverage report.
//! - [`audit`]: a data-quality report of production without a ground truth (possible loss,
//!   book continuity, redundancy, sanity; text, JSON, HTML).
//! - [`book_command`]: `book`, a market's order book at an instant.
//! - [`book`]: the one order-book rebuild, `kd_core::book` (shared with the archive),
//!   re-exported under its old path.
//! - [`production`]: reading production windows for `verify` and `book` (through
//!   `kd-production`).
//! - [`time_arg`]: time flags.

pub use kd_core::book;
pub mod audit;
pub mod book_command;
pub mod probe;
pub mod production;
pub mod status;
pub mod time_arg;
pub mod up;
pub mod verify;
