//! Integration tests of the simulator over real sockets (one test binary, several modules).

mod faults;
mod helpers;
mod historical_client;
mod rest;
mod schema;
mod sdk;
mod today;
mod truth;
mod ws;
