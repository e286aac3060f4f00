//! kd-kalshi's integration tests, one binary (each former test file is a module; links once).

mod auth_signing;
mod rest_fixture;
mod rest_statuses;
mod robustness;
mod samples;
mod ws_cases;
mod ws_handshake;
