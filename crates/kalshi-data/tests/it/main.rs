//! The integration tests of `kalshi-data`, as one test binary (one link, not ten): each module
//! is what was a file of its own under `tests/`, with its test names unchanged.
//!
//! Run one group with a filter on the module path, e.g.
//! `cargo test -p kalshi-data --test it reliability:: -- --nocapture` (the reliability suite)
//! or `cargo test -p kalshi-data --test it deploy_systemd::`.
//!
//! - `alerts_live`: deploy/prometheus/alerts.yml in a real Prometheus server scraping `up`:
//!   no alert pending or firing for two minutes while healthy; GathererDown,
//!   ProductionUnreachable and DedupSyncStalled fire when made true (issue 17).
//! - `archive_complete`: the archive after an 8-minute production outage equals production
//!   row by row (a late backfill re-exported); a trade archived within 65 s at 60 s windows.
//! - `audit`: `audit` on a clean run and on one where every gatherer was frozen, against the
//!   truth; its HTML page in headless Chromium.
//! - `cli_help`: the command line (`--help`, usage errors).
//! - `ctrl_c`: a SIGINT to `up` drains like `--duration`, then `verify: OK`.
//! - `cutoff`: the historical cutoff passing through a downtime of every gatherer.
//! - `deploy_*`: the deployment tree (systemd units, Prometheus rules and dashboard, the
//!   runbook's install and PITR drill, `backfill` against the simulator); `deploy_support`
//!   holds what they share.
//! - `guards`: data directory locks (a second up, gatherer, simulator refused), a hung gatherer
//!   replaced by `up`, no `stage_*` NOTICE in the deduplicator log (issue 17).
//! - `lifecycle`: `up` with repeated toggles, combo markets created while running, fee
//!   updates; `verify: OK` and each change stored (issue 16).
//! - `exchange`: `up --exchange URL` against the simulator started apart with `--auth`,
//!   standing in for Kalshi: preflight, capture, `status`, `verify --truth`; preflight refusals.
//! - `e2e_up`: `kalshi-data up` twice on one data directory, `status`, `verify`, `book`.
//! - `every_market`: `verify` sees every market (subscription refusals lose none; a market
//!   nobody subscribes to fails it).
//! - `no_price`: the NO-price flip, one `up` + `verify` per NO-side pricing of the exchange.
//! - `reliability*`: the seed's failure tables made to happen against the real binary;
//!   `reliability_support` drives `up` (through `kd_testkit::up`), `verify` and the figures.
//! - `querying`: every snippet of docs/querying.md (SQL on PostgreSQL production; DuckDB,
//!   pandas/pyarrow and polars on the exported archive) against one short `up` run, each
//!   answer equal to production read in Rust; the run's `audit --html` page in headless
//!   Chromium (screenshot in `target/test-artifacts/`). `querying_page` parses the page and the
//!   snippets' CSV.
//! - `secrets`: no password, token or key id on a command line, in `up.json`, a log or `--help`.
//! - `replay`: `replay` of an `up` run's range gives exactly production's trades, deltas and
//!   books, to our client and to a Python `websockets` one (issue 20).
//! - `rest_books`: REST books from a 2 s edge cache, polled every minute: `verify` and `book`.
//! - `tls_production`: `migrate`, `up` and `verify` against a PostgreSQL that accepts only TLS.

mod alerts_live;
mod archive_complete;
mod audit;
mod cli_help;
mod ctrl_c;
mod cutoff;
mod deploy_backfill;
mod deploy_metrics;
mod deploy_prometheus;
mod deploy_runbook;
mod deploy_support;
mod deploy_systemd;
mod e2e_up;
mod every_market;
mod exchange;
mod guards;
mod lifecycle;
mod no_price;
mod querying;
mod querying_page;
mod reliability;
mod reliability_disk;
mod reliability_skew;
mod reliability_support;
mod replay;
mod rest_books;
mod secrets;
mod tls_production;
