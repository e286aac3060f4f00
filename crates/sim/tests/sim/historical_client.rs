//! kd-kalshi's typed historical calls (`historical_cutoff`, `historical_trades`, the tiered
//! trade pages) against the simulator's historical tier, and the cutoff rule of
//! `kd_kalshi::rest::cutoff` recovering every trade while the cutoff advances. (Here rather
//! than in kd-kalshi's own test binary: kd-sim depends on kd-kalshi, and a dev-dependency
//! back would build the client twice.)

use crate::helpers::{TestResult, config, start};
use kd_core::TimestampUs;
use kd_kalshi::parse::rest_trade_to_record;
use kd_kalshi::rest::{
    CUTOFF_OVERLAP, RestClient, RestConfig, TradesQuery, TradesTier, historical_span, live_span,
};
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// Every trade id of `tier` within `[min_ts, max_ts]`, read `limit` per page; with the number
/// of pages.
async fn paged(
    rest: &RestClient,
    tier: TradesTier,
    min_ts: Option<i64>,
    max_ts: Option<i64>,
    limit: u32,
) -> Result<(HashSet<String>, usize), Box<dyn std::error::Error + Send + Sync>> {
    let mut ids = HashSet::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = rest
            .tier_trades_page(
                tier,
                &TradesQuery {
                    min_ts,
                    max_ts,
                    cursor: cursor.clone(),
                    limit: Some(limit),
                    ..Default::default()
                },
            )
            .await?;
        pages += 1;
        assert!(page.trades.len() <= limit as usize);
        for t in &page.trades {
            let trade = rest_trade_to_record(t, TimestampUs::now())?;
            assert!(ids.insert(trade.trade_id), "a trade twice in one listing");
        }
        match page.cursor.filter(|c| !c.is_empty()) {
            Some(next) => cursor = Some(next),
            None => return Ok((ids, pages)),
        }
    }
}

#[tokio::test]
async fn historical_calls_page_and_the_cutoff_rule_recovers_every_trade() -> TestResult {
    let sim = start(kd_sim::SimConfig {
        rate: 5_000,
        historical_cutoff_lag: Duration::from_secs(2),
        ..config()
    })
    .await?;
    let rest = RestClient::new(RestConfig::new(sim.rest_base()), None)?;
    let t0 = TimestampUs::now();
    let first = rest.historical_cutoff().await?;
    let c_first = first.trades_created()?;
    assert!(
        TimestampUs::parse_rfc3339(&first.market_settled_ts).is_ok()
            && TimestampUs::parse_rfc3339(&first.orders_updated_ts).is_ok(),
        "{first:?}"
    );
    let lag = t0.micros() - c_first.micros();
    assert!(
        (1_000_000..=3_100_000).contains(&lag),
        "cutoff {lag} µs behind now"
    );
    // Publish until the historical tier holds more than a page of the maximum size.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let old = rest.historical_trades(None, None, None).await?;
        if old.len() > 1_000 {
            break;
        }
        assert!(Instant::now() < deadline, "historical tier stayed small");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    sim.stop_publishing().await;
    let total = sim.stats().await.trades as usize;

    // The cutoff rule over the whole run, while the cutoff keeps advancing.
    let (from, to) = (
        TimestampUs::from_micros(t0.micros() - 60_000_000),
        TimestampUs::now(),
    );
    let c0 = rest.historical_cutoff().await?.trades_created()?;
    let mut all = HashSet::new();
    let live = live_span(from, to, Some(c0), CUTOFF_OVERLAP).ok_or("no live part")?;
    let (ids, _) = paged(
        &rest,
        TradesTier::Live,
        Some(live.start.secs()),
        Some(live.end.secs()),
        1_000,
    )
    .await?;
    let from_live = ids.len();
    all.extend(ids);
    let c1 = rest.historical_cutoff().await?.trades_created()?;
    assert!(
        c1 >= c0 && c0 > c_first,
        "the cutoff advances: {c_first:?} {c0:?} {c1:?}"
    );
    let hist = historical_span(from, to, Some(c1), CUTOFF_OVERLAP).ok_or("no historical part")?;
    let (ids, pages) = paged(
        &rest,
        TradesTier::Historical,
        Some(hist.start.secs()),
        Some(hist.end.secs()),
        1_000,
    )
    .await?;
    assert!(
        pages >= 2,
        "{} historical trades in {pages} page(s)",
        ids.len()
    );
    all.extend(ids);
    assert_eq!(
        all.len(),
        total,
        "every trade by the rule ({from_live} live)"
    );

    // Small pages of either tier, cursor to cursor, give the same trades as one big read.
    let (small, pages) = paged(&rest, TradesTier::Historical, None, None, 100).await?;
    assert!(pages > 10, "{pages} pages of 100");
    // Live first: a trade not in it was older than the cutoff by then, so in the later
    // historical read.
    let live_now: HashSet<String> = rest
        .all_trades_of(TradesTier::Live, None, None, None)
        .await?
        .into_iter()
        .map(|t| t.trade_id)
        .collect();
    let big: HashSet<String> = rest
        .historical_trades(None, None, None)
        .await?
        .into_iter()
        .map(|t| t.trade_id)
        .collect();
    assert!(small.is_subset(&big), "a trade left the historical tier");
    assert_eq!(big.union(&live_now).count(), total);

    // A window entirely before the cutoff: only /historical/trades has it.
    let c = rest.historical_cutoff().await?.trades_created()?;
    let max_ts = c.secs() - 2;
    let (old_live, _) = paged(&rest, TradesTier::Live, None, Some(max_ts), 1_000).await?;
    let (old_hist, _) = paged(&rest, TradesTier::Historical, None, Some(max_ts), 1_000).await?;
    assert!(
        old_live.is_empty(),
        "{} old trades still live",
        old_live.len()
    );
    assert!(!old_hist.is_empty());
    // One market's historical trades, through the typed helper.
    let one = rest
        .historical_trades(None, None, None)
        .await?
        .into_iter()
        .next()
        .ok_or("no trade")?;
    let of_market = rest
        .historical_trades(Some(&one.ticker), None, None)
        .await?;
    assert!(!of_market.is_empty() && of_market.iter().all(|t| t.ticker == one.ticker));
    sim.shutdown().await?;
    Ok(())
}
