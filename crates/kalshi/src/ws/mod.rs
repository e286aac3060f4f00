//! Kalshi's WebSocket vocabulary and client (WIRE.md, DESIGN §6).
//!
//! - [`channel`]: the [`Channel`] enum (`orderbook_delta`, `trade`, …, `Other`).
//! - [`command`]: typed commands ([`Command`]), serialised with serde.
//! - [`error_code`]: every `error` reply code ([`ErrorCode`]) and what a client must do about
//!   it ([`SubscribeErrorAction`]).
//! - [`close`]: why a connection ended ([`WsError`]) and the close-code table
//!   ([`CloseAction`]).
//! - [`connect`](mod@connect): the signed handshake.
//!
//! Pure except for [`connect`](mod@connect); the reconnect loop and the subscription state
//! belong to the caller.

pub mod channel;
pub mod close;
pub mod command;
pub mod connect;
pub mod error_code;

pub use channel::Channel;
pub use close::{CloseAction, WsError, close_action};
pub use command::{
    Command, CommandBody, NoParams, SubscribeParams, UnsubscribeParams, UpdateAction, UpdateParams,
    list_subscriptions, subscribe, unsubscribe, update_subscription,
};
pub use connect::{
    CONNECT_TIMEOUT, ConnectOptions, DEMO_WS_URL, PRODUCTION_WS_URL, WS_PATH, WsStream, connect,
    connect_with, connect_with_timeout, metrics,
};
pub use error_code::{ErrorCode, SubscribeErrorAction, subscribe_error_action};
