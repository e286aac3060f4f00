//! The backfill loop: list the markets, then for each market and each chunk not yet behind its
//! watermark, read every page of trades (paced, retried on 429/5xx/maintenance with the REST
//! client's helpers), insert them through the production store, and advance the watermark.
//! Each chunk is read by the historical cutoff rule of [`kd_kalshi::rest::cutoff`]: its live
//! part from `/markets/trades` first, then — with the cutoff fetched again, since it advances
//! while we run — its historical part from `/historical/trades`.

use crate::args::{ArgError, BackfillArgs};
use crate::metrics as m;
use crate::pacer::Pacer;
use crate::plan::{self, BackfillPlan, Chunk, Target};
use indicatif::{ProgressBar, ProgressStyle};
use kd_core::backoff::{Backoff, BackoffPolicy};
use kd_core::records::Record;
use kd_core::{Table, TimestampUs};
use kd_kalshi::auth::{AuthError, Signer};
use kd_kalshi::rest::{
    CUTOFF_OVERLAP, MarketsQuery, RestClient, RestConfig, RestError, TradeSpan, TradesQuery,
    TradesTier, historical_span, live_span,
};
use kd_kalshi::wire::rest::TradesPage;
use kd_production::{Store, StoreError};
use std::collections::HashSet;
use std::fmt;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// REST attempts per request, bounded so a dead endpoint ends the run (it resumes from the
/// watermark next time) instead of hanging forever. The schedule is the plan's `rest_backoff`.
const REST_ATTEMPTS: u32 = 12;
/// Production writes: the deduplicator's schedule, bounded likewise.
const DB_ATTEMPTS: u32 = 10;

/// Why a backfill stopped. Progress up to the last completed chunk is kept in production.
#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    #[error(transparent)]
    Arg(#[from] ArgError),
    #[error("Kalshi REST: {0}")]
    Rest(#[from] RestError),
    #[error("production store: {0}")]
    Store(#[from] StoreError),
    #[error("API key: {0}")]
    Auth(#[from] AuthError),
    #[error("{endpoint} returned cursor `{cursor}` twice; stopping instead of looping")]
    CursorLoop {
        endpoint: &'static str,
        cursor: String,
    },
    #[error("no market matches {0}")]
    NoMarkets(String),
    #[error("interrupted; run the same command again to resume")]
    Cancelled,
}

/// What a backfill did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Report {
    /// Markets covered.
    pub markets: u64,
    /// Chunks read from REST in this run.
    pub chunks_fetched: u64,
    /// Chunks skipped because a previous run completed them.
    pub chunks_skipped: u64,
    /// REST requests sent (pages and market listings; retries included).
    pub requests: u64,
    /// Trades received within the range.
    pub fetched: u64,
    /// Trades new to production.
    pub inserted: u64,
    /// Trades production already had (or received twice in this run).
    pub duplicates: u64,
    /// Trades that could not be converted (skipped, counted).
    pub parse_errors: u64,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "backfill: {} market(s), {} chunk(s) fetched, {} already complete, {} request(s), \
             {} trade(s) received, {} inserted, {} already present, {} unparseable",
            self.markets,
            self.chunks_fetched,
            self.chunks_skipped,
            self.requests,
            self.fetched,
            self.inserted,
            self.duplicates,
            self.parse_errors
        )
    }
}

/// `kalshi-data backfill`: builds the client and store from the flags, shows a progress bar
/// (on a terminal), stops cleanly on Ctrl-C/SIGTERM.
pub async fn run(args: BackfillArgs) -> Result<Report, BackfillError> {
    let plan = args.plan(TimestampUs::now())?;
    let signer = match (&args.key_id, &args.private_key_path) {
        (Some(id), Some(path)) => Some(Signer::from_file(id, path)?),
        _ => None,
    };
    let rest = RestClient::new(RestConfig::new(args.rest_url.clone()), signer)?;
    let store = kd_production::open(&args.production).await?;
    store.migrate().await?;
    let shutdown = kd_core::shutdown::on_signal();
    let progress = ProgressBar::new(0);
    let style = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} chunks  {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    progress.set_style(style);
    let report = backfill(&plan, &rest, &store, &progress, &shutdown).await;
    progress.finish_and_clear();
    report
}

/// Runs `plan` against `rest` into `store`. The caller owns the progress bar (hidden in tests:
/// `ProgressBar::hidden()`) and the shutdown token.
pub async fn backfill(
    plan: &BackfillPlan,
    rest: &RestClient,
    store: &Store,
    progress: &ProgressBar,
    shutdown: &CancellationToken,
) -> Result<Report, BackfillError> {
    let mut job = Job {
        plan,
        rest,
        store,
        shutdown,
        pacer: Pacer::new(plan.requests_per_sec),
        report: Report::default(),
    };
    let tickers = job.markets().await?;
    // Refreshed after every live read; an older value is still safe for the next live part
    // (a smaller cutoff only widens it).
    let mut cutoff = job.historical_cutoff().await;
    let mut work = Vec::with_capacity(tickers.len());
    for ticker in tickers {
        let name = plan::watermark_name(&ticker, plan.from);
        let done = with_db_retry(shutdown, || store.watermark(&name)).await?;
        let start = done.map_or(plan.from, |w| w.max(plan.from));
        let skipped = plan::chunks(plan.from, start.min(plan.to), plan.chunk).len() as u64;
        let todo = plan::chunks(start, plan.to, plan.chunk);
        work.push((ticker, name, skipped, todo));
    }
    progress.set_length(work.iter().map(|(_, _, s, t)| s + t.len() as u64).sum());
    job.report.markets = work.len() as u64;
    for (ticker, name, skipped, todo) in work {
        job.report.chunks_skipped += skipped;
        progress.inc(skipped);
        ::metrics::counter!(m::CHUNKS_TOTAL).increment(skipped);
        for chunk in todo {
            if shutdown.is_cancelled() {
                return Err(BackfillError::Cancelled);
            }
            let whole = chunk.span();
            if let Some(span) = live_span(whole.start, whole.end, cutoff, CUTOFF_OVERLAP) {
                job.chunk(&ticker, &chunk, span, TradesTier::Live).await?;
                cutoff = job.historical_cutoff().await;
            }
            if let Some(span) = historical_span(whole.start, whole.end, cutoff, CUTOFF_OVERLAP) {
                job.chunk(&ticker, &chunk, span, TradesTier::Historical)
                    .await?;
            }
            let mark = plan::watermark_after(&chunk, TimestampUs::now());
            if mark > chunk.start {
                with_db_retry(shutdown, || store.set_watermark(&name, mark)).await?;
            }
            job.report.chunks_fetched += 1;
            ::metrics::counter!(m::CHUNKS_TOTAL).increment(1);
            progress.inc(1);
            progress.set_message(format!("{ticker}: {} inserted", job.report.inserted));
        }
    }
    Ok(job.report)
}

struct Job<'a> {
    plan: &'a BackfillPlan,
    rest: &'a RestClient,
    store: &'a Store,
    shutdown: &'a CancellationToken,
    pacer: Pacer,
    report: Report,
}

impl Job<'_> {
    /// The tickers of the target, sorted.
    async fn markets(&mut self) -> Result<Vec<String>, BackfillError> {
        let query = match &self.plan.target {
            Target::Ticker(t) => return Ok(vec![t.clone()]),
            Target::Event(e) => MarketsQuery {
                event_ticker: Some(e.clone()),
                limit: Some(1000),
                ..Default::default()
            },
            // Combo markets are ordinary markets of their own (combo) event and series, and
            // `GET /markets` includes them unless `mve_filter=exclude` is sent.
            Target::Series(s) => MarketsQuery {
                series_ticker: Some(s.clone()),
                limit: Some(1000),
                ..Default::default()
            },
            Target::Combos => MarketsQuery {
                mve_filter: Some("only".into()),
                limit: Some(1000),
                ..Default::default()
            },
        };
        let (rest, pacer, q) = (self.rest, &self.pacer, &query);
        let markets = rest
            .retry(
                self.plan.rest_backoff,
                Some(REST_ATTEMPTS),
                self.shutdown,
                || async move {
                    pacer.wait().await;
                    ::metrics::counter!(m::REQUESTS_TOTAL, "endpoint" => "markets").increment(1);
                    rest.all_markets(q).await
                },
            )
            .await
            .map_err(cancelled)?;
        self.report.requests += 1;
        let mut tickers: Vec<String> = markets.into_iter().map(|m| m.ticker).collect();
        tickers.sort();
        tickers.dedup();
        if tickers.is_empty() {
            return Err(BackfillError::NoMarkets(format!("{:?}", self.plan.target)));
        }
        Ok(tickers)
    }

    /// `trades_created_ts` of `/historical/cutoff`; `None` when the server does not say (then
    /// both endpoints are read for every chunk).
    async fn historical_cutoff(&mut self) -> Option<TimestampUs> {
        let (rest, pacer) = (self.rest, &self.pacer);
        self.report.requests += 1;
        let answer = rest
            .retry(
                self.plan.rest_backoff,
                Some(3),
                self.shutdown,
                || async move {
                    pacer.wait().await;
                    ::metrics::counter!(m::REQUESTS_TOTAL, "endpoint" => "cutoff").increment(1);
                    rest.historical_cutoff().await
                },
            )
            .await;
        match answer.map(|c| c.trades_created()) {
            Ok(Ok(ts)) => Some(ts),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "historical cutoff unreadable; reading both trade endpoints");
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, "historical cutoff unknown; reading both trade endpoints");
                None
            }
        }
    }

    /// Every page of one endpoint for `span` (a part of `chunk`), inserted page by page.
    async fn chunk(
        &mut self,
        ticker: &str,
        chunk: &Chunk,
        span: TradeSpan,
        endpoint: TradesTier,
    ) -> Result<(), BackfillError> {
        let (min_ts, max_ts) = plan::span_secs(&span);
        let mut cursor: Option<String> = None;
        let mut seen = HashSet::new();
        loop {
            let query = TradesQuery {
                ticker: Some(ticker.to_string()),
                min_ts: Some(min_ts),
                max_ts: Some(max_ts),
                cursor: cursor.clone(),
                limit: Some(self.plan.page_limit),
            };
            let Some(page) = self.page(endpoint, &query).await? else {
                return Ok(()); // 404: this server has no such endpoint or market
            };
            self.insert(ticker, chunk, &page).await?;
            match page.cursor.filter(|c| !c.is_empty()) {
                None => return Ok(()),
                Some(next) => {
                    if !seen.insert(next.clone()) {
                        return Err(BackfillError::CursorLoop {
                            endpoint: endpoint.path(),
                            cursor: next,
                        });
                    }
                    cursor = Some(next);
                }
            }
        }
    }

    /// One page, paced and retried (429 honours `retry_after_ms`; 5xx back off; 503 waits for
    /// the exchange). `None` for a 404.
    async fn page(
        &mut self,
        endpoint: TradesTier,
        query: &TradesQuery,
    ) -> Result<Option<TradesPage>, BackfillError> {
        let (rest, pacer) = (self.rest, &self.pacer);
        let attempts = std::sync::atomic::AtomicU64::new(0);
        let counter = &attempts;
        let result = rest
            .retry(
                self.plan.rest_backoff,
                Some(REST_ATTEMPTS),
                self.shutdown,
                || async move {
                    pacer.wait().await;
                    counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    ::metrics::counter!(m::REQUESTS_TOTAL, "endpoint" => endpoint.label())
                        .increment(1);
                    rest.tier_trades_page(endpoint, query).await
                },
            )
            .await;
        self.report.requests += attempts.into_inner();
        match result {
            Ok(page) => Ok(Some(page)),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(cancelled(e)),
        }
    }

    /// Converts a page, keeps the trades of `ticker` inside the chunk, inserts them.
    async fn insert(
        &mut self,
        ticker: &str,
        chunk: &Chunk,
        page: &TradesPage,
    ) -> Result<(), BackfillError> {
        let received_at = TimestampUs::now();
        let mut records = Vec::with_capacity(page.trades.len());
        for raw in &page.trades {
            match kd_kalshi::parse::rest_trade_to_record(raw, received_at) {
                Ok(trade) if trade.ticker == ticker && chunk.contains(trade.exchange_ts) => {
                    records.push(Record::Trade(trade));
                }
                Ok(_) => {} // the neighbouring second of another chunk, or another market
                Err(e) => {
                    self.report.parse_errors += 1;
                    ::metrics::counter!(m::PARSE_ERRORS_TOTAL).increment(1);
                    tracing::warn!(error = %e, trade_id = %raw.trade_id, "unparseable trade skipped");
                }
            }
        }
        if records.is_empty() {
            return Ok(());
        }
        self.report.fetched += records.len() as u64;
        let store = self.store;
        let rows = &records;
        let outcome = with_db_retry(self.shutdown, || {
            store.insert_batch(Table::Trades, rows, &[])
        })
        .await?;
        self.report.inserted += outcome.inserted;
        self.report.duplicates += outcome.duplicates;
        ::metrics::counter!(m::TRADES_INSERTED_TOTAL).increment(outcome.inserted);
        ::metrics::counter!(m::TRADES_DUPLICATE_TOTAL).increment(outcome.duplicates);
        Ok(())
    }
}

fn cancelled(e: RestError) -> BackfillError {
    match e {
        RestError::Cancelled => BackfillError::Cancelled,
        other => BackfillError::Rest(other),
    }
}

/// Runs a production call, retrying connection failures with the database backoff.
async fn with_db_retry<T, F, Fut>(
    shutdown: &CancellationToken,
    mut f: F,
) -> Result<T, BackfillError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let mut backoff = Backoff::new(BackoffPolicy::DATABASE);
    let mut attempt = 0;
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if e.is_connection() && attempt + 1 < DB_ATTEMPTS => {
                attempt += 1;
                let delay: Duration = backoff.next_delay();
                tracing::warn!(error = %e, attempt, "production unreachable; retrying");
                tokio::select! {
                    () = shutdown.cancelled() => return Err(BackfillError::Cancelled),
                    () = tokio::time::sleep(delay) => {}
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
}
