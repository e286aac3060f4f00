//! The snapshot poller: every N minutes, the REST order book of every active market, with
//! bounded concurrency, stored as snapshots with source `rest`. A market that fails is skipped
//! and counted; the next cycle tries it again.
//!
//! A REST book is stamped at receipt but shows an earlier instant (Kalshi's edge caches it for
//! up to 2 s, WIRE.md): it is never a rebuild base where a WebSocket snapshot precedes it, only
//! an audit point of the rebuilt book ([`kd_core::book::replay`], docs/decisions.md).

use crate::clock::Clock;
use crate::events::emit;
use crate::events::poller::{BookEmpty, BookFetchFailed, BookNotParsed, BookPolled, PollCycleDone};
use futures::StreamExt;
use kd_core::backoff::BackoffPolicy;
use kd_core::{Record, SnapshotSource};
use kd_kalshi::parse::orderbook_to_snapshot;
use kd_kalshi::rest::{RestClient, RestError};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Books fetched at once.
pub const CONCURRENCY: usize = 8;
/// Attempts per market per cycle.
const ATTEMPTS: u32 = 3;

/// The markets the registry considers active (shared with the registry).
pub type MarketList = Arc<RwLock<Vec<Arc<str>>>>;

/// Polls until shutdown.
pub async fn run(
    rest: RestClient,
    markets: MarketList,
    records: mpsc::Sender<Record>,
    clock: Arc<Clock>,
    interval: Duration,
    policy: BackoffPolicy,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await; // The first books come with the subscriptions.
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let list: Vec<Arc<str>> = markets.read().map(|l| l.clone()).unwrap_or_default();
        let count = list.len();
        let rest = &rest;
        let records = &records;
        let shutdown_ref = &shutdown;
        let clock = &clock;
        let stored: usize = futures::stream::iter(list)
            .map(|ticker| async move {
                poll_one(rest, records, clock, &ticker, policy, shutdown_ref).await
            })
            .buffer_unordered(CONCURRENCY)
            .filter(|ok| std::future::ready(*ok))
            .count()
            .await;
        emit(PollCycleDone {
            markets: count,
            stored,
        });
    }
}

async fn poll_one(
    rest: &RestClient,
    records: &mpsc::Sender<Record>,
    clock: &Clock,
    ticker: &str,
    policy: BackoffPolicy,
    shutdown: &CancellationToken,
) -> bool {
    let book = rest
        .retry(policy, Some(ATTEMPTS), shutdown, || {
            rest.orderbook(ticker, None)
        })
        .await;
    let book = match book {
        Ok(b) => b,
        Err(RestError::Cancelled) => return false,
        Err(error) => {
            emit(BookFetchFailed {
                ticker,
                error: &error,
            });
            return false;
        }
    };
    let Some(fp) = book.orderbook_fp.as_ref().or(book.orderbook.as_ref()) else {
        emit(BookEmpty { ticker });
        return false;
    };
    let received_at = clock.now();
    match orderbook_to_snapshot(ticker, fp, SnapshotSource::Rest, received_at) {
        Ok(mut snapshot) => {
            // The book's time is the exchange's, its receipt ours (see `crate::clock`).
            snapshot.exchange_ts = clock.to_exchange(received_at);
            emit(BookPolled);
            records.send(Record::Snapshot(snapshot)).await.is_ok()
        }
        Err(error) => {
            emit(BookNotParsed {
                ticker,
                error: &error,
            });
            false
        }
    }
}
