//! `kalshi-data backfill`: a market's (an event's, a series') historical trades over REST into
//! production — after an outage of every gatherer, or to load history from before the
//! deployment existed.
//!
//! # Layout
//! - [`args`]: the command-line flags and their validation (`--ticker | --event | --series |
//!   --combos`, `--from`, `--to`).
//! - [`plan`]: pure arithmetic: the time range cut into chunks, the watermark names. Which
//!   endpoint (`/markets/trades`, `/historical/trades`) covers which part of a chunk is
//!   `kd_kalshi::rest::cutoff`, the rule the gatherers' repair follows too.
//! - [`pacer`]: the client-side request rate limit.
//! - [`run`]: the loop: list markets, fetch each chunk page by page (retrying 429/5xx with the
//!   REST client's helpers, honouring `retry_after_ms`), insert through the production store
//!   (`kd-production`, `ON CONFLICT DO NOTHING`), advance the chunk watermark.
//! - [`metrics`]: the counters it keeps.
//!
//! # Guarantees
//! - **Idempotent**: trades are inserted by `trade_id` with `ON CONFLICT DO NOTHING`; a second
//!   run of the same range inserts nothing (and skips completed chunks without a request).
//! - **Resumable**: per market, a watermark in production (`export_watermarks`, name
//!   `backfill:trades:<ticker>:<from µs>`) records the end of the last completed chunk;
//!   an interrupted run resumes from there. The watermark never passes "now − 60 s", so
//!   trades still arriving are fetched again next time.

pub mod args;
pub mod metrics;
pub mod pacer;
pub mod plan;
pub mod run;

pub use args::BackfillArgs;
pub use plan::{BackfillPlan, Target};
pub use run::{BackfillError, Report, backfill, run};
