//! The Kalshi protocol, kept apart from I/O where it can be.
//!
//! # Layout
//! - [`wire`]: serde structs mirroring Kalshi's JSON (WebSocket messages, REST responses).
//! - [`parse`]: pure functions from wire bytes to domain records (`kd_core::records`).
//! - [`auth`]: RSA-PSS request signing, the matching verifier, key generation.
//! - [`rest`]: the REST client and its error classification (DESIGN §6).
//! - [`ws`]: the WebSocket vocabulary ([`ws::Channel`], typed [`ws::Command`]s, every
//!   [`ws::ErrorCode`] with its action, the close-code table) and the signed `connect`.

pub mod auth;
pub mod parse;
pub mod rest;
pub mod wire;
pub mod ws;
