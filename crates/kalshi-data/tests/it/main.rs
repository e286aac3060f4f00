//! The integration tests of `kalshi-data`, as one test binary (one link, not ten): each module
//! is what was a file of its own under `tests/`, with its test names unchanged.
//!
//! Run one group with a filter on the module path, e.g.
//! `cargo test -p kalshi-data --test it reliability:: -- --nocapture` (the reliability suite)
//! or `cargo test -p kalshi-data --test it deploy_systemd::`.
//!
//! - `cli_help`: the command line (`--help`, usage errors).
//! - `deploy_*`: the deployment tree (systemd units, Prometheus rules and dashboard, the
//!   runbook's install and PITR drill, `backfill` against the simulator); `deploy_support`
//!   holds what they share.
//! - `lifecycle`: `up` with repeated toggles, combo markets created while running, fee
//!   updates; `verify: OK` and each change stored (issue 16).
//! - `e2e_up`: `kalshi-data up` twice on one data directory, `status`, `verify`, `book`.
//! - `reliability*`: the seed's failure tables made to happen against the real binary;
//!   `reliability_support` drives `up` (through `kd_testkit::up`), `verify` and the figures.

mod cli_help;
mod deploy_backfill;
mod deploy_metrics;
mod deploy_prometheus;
mod deploy_runbook;
mod deploy_support;
mod deploy_systemd;
mod e2e_up;
mod lifecycle;
mod reliability;
mod reliability_disk;
mod reliability_skew;
mod reliability_support;
