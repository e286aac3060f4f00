//! The deduplicator: merges every gatherer's copy of the feed into one production store, each
//! record exactly once (DESIGN §4).
//!
//! # Layout
//! - [`store`]: the production stores (PostgreSQL, SQLite) behind one interface, schema
//!   migrations, bulk insert with the cursor in the same transaction, and the read API the
//!   exporter, `verify` and `book` use.

pub mod store;
pub mod testing;

pub use store::{CursorUpdate, InsertOutcome, Store, StoreError, open};
