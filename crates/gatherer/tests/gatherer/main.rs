//! kd-gatherer's integration tests, one binary (each former test file is a module; links once).
//! Tests that assert on process-wide counters hold `common::SERIAL` for writing.

mod bad_frames;
mod common;
mod e2e_sim;
mod failure_disk;
mod failure_http;
mod failure_repair;
mod failure_ws;
mod feed_stop;
mod gap_coalescing;
mod gap_windows;
mod kill9;
mod registry_pages;
mod snapshot_lag;
mod store_pull;
