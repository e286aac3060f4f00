//! The integration tests of `kd-dedup`, as one test binary (one link, not three): each module is
//! what was a file of its own under `tests/`, with its test names unchanged.
//!
//! - `lifecycle`: lifecycle copies of three gatherers through the merge and both stores.
//! - `store`: the production stores on both backends (PostgreSQL, SQLite).
//! - `sync`: the deduplicator against three real gatherers: exactly-once, restarts, outages.
//! - `e2e`: the simulator, three gatherers and the deduplicator; `kill -9` of a deduplicator.
//! - `common`: sample records of every table, and a cluster of in-process gatherers.

mod common;
mod e2e;
mod lifecycle;
mod store;
mod sync;
