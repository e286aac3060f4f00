//! The integration tests of `kd-archive`, as one test binary (one link, not three): each module
//! is what was a file of its own under `tests/`, with its test names unchanged.
//!
//! - `archive`: the exporter end to end on a synthetic production (folder and S3 archives,
//!   checked independently by `tests/check_parquet.py`).
//! - `late`: late rows re-exported, and when a record is due in the archive by default.
//! - `outage`: the S3 server stopped for a minute and restarted; the exporter catches up.
//! - `production`: the exporter reading a real PostgreSQL production.
//! - `server`: the exporter's `/health` and `/metrics` server.
//! - `support`: the synthetic production, an `s3s-fs` server, the pyarrow checker.

mod archive;
mod late;
mod outage;
mod production;
mod server;
mod support;
