//! Typed REST calls (WIRE.md "REST endpoints the platform uses") and cursor pagination.

use super::{RestClient, RestError, escape_segment};
use crate::wire::rest::{
    EventResponse, EventsPage, ExchangeScheduleResponse, ExchangeStatus, HistoricalCutoff, Market,
    MarketResponse, MarketsPage, OrderbookResponse, OrderbooksResponse, RestTrade, SeriesList,
    SeriesResponse, TradesPage,
};

/// Kalshi's page-size cap for `/markets` and trade listings.
pub const MAX_MARKETS_LIMIT: u32 = 1000;
/// Kalshi's page-size cap for `/events`.
pub const MAX_EVENTS_LIMIT: u32 = 200;

/// Query of `GET /markets`. Empty fields are not sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MarketsQuery {
    pub cursor: Option<String>,
    /// 1..=1000; Kalshi defaults to 100.
    pub limit: Option<u32>,
    /// One of `unopened`, `open`, `paused`, `closed`, `settled` (comma-separated for several).
    pub status: Option<String>,
    pub event_ticker: Option<String>,
    pub series_ticker: Option<String>,
    /// Sent comma-separated.
    pub tickers: Vec<String>,
    /// Unix seconds.
    pub min_updated_ts: Option<i64>,
    pub min_close_ts: Option<i64>,
    pub max_close_ts: Option<i64>,
    /// `only` (combo markets only) or `exclude`; absent, Kalshi includes combo markets.
    pub mve_filter: Option<String>,
}

impl MarketsQuery {
    fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut q = Vec::new();
        push(&mut q, "cursor", self.cursor.clone());
        push(&mut q, "limit", self.limit.map(|v| v.to_string()));
        push(&mut q, "status", self.status.clone());
        push(&mut q, "event_ticker", self.event_ticker.clone());
        push(&mut q, "series_ticker", self.series_ticker.clone());
        if !self.tickers.is_empty() {
            q.push(("tickers", self.tickers.join(",")));
        }
        push(
            &mut q,
            "min_updated_ts",
            self.min_updated_ts.map(|v| v.to_string()),
        );
        push(
            &mut q,
            "min_close_ts",
            self.min_close_ts.map(|v| v.to_string()),
        );
        push(
            &mut q,
            "max_close_ts",
            self.max_close_ts.map(|v| v.to_string()),
        );
        push(&mut q, "mve_filter", self.mve_filter.clone());
        q
    }
}

/// One page of `GET /markets` read for its tickers only: every other field of the markets is
/// skipped while parsing, so a full sync of a million markets never holds their objects.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct MarketTickersPage {
    #[serde(default, deserialize_with = "crate::wire::scalar::null_as_default")]
    pub markets: Vec<MarketTicker>,
    #[serde(default)]
    pub cursor: Option<String>,
}

/// A market of a [`MarketTickersPage`]: its ticker and nothing else.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct MarketTicker {
    pub ticker: String,
}

/// Query of `GET /events`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventsQuery {
    pub cursor: Option<String>,
    /// 1..=200.
    pub limit: Option<u32>,
    pub status: Option<String>,
    pub series_ticker: Option<String>,
    pub with_nested_markets: bool,
}

impl EventsQuery {
    fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut q = Vec::new();
        push(&mut q, "cursor", self.cursor.clone());
        push(&mut q, "limit", self.limit.map(|v| v.to_string()));
        push(&mut q, "status", self.status.clone());
        push(&mut q, "series_ticker", self.series_ticker.clone());
        if self.with_nested_markets {
            q.push(("with_nested_markets", "true".into()));
        }
        q
    }
}

/// Query of `GET /series`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeriesQuery {
    pub category: Option<String>,
    pub tags: Option<String>,
}

/// Query of `GET /markets/trades` and `GET /historical/trades`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TradesQuery {
    pub ticker: Option<String>,
    /// Unix seconds, inclusive.
    pub min_ts: Option<i64>,
    /// Unix seconds.
    pub max_ts: Option<i64>,
    pub cursor: Option<String>,
    /// 1..=1000.
    pub limit: Option<u32>,
}

impl TradesQuery {
    fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut q = Vec::new();
        push(&mut q, "ticker", self.ticker.clone());
        push(&mut q, "min_ts", self.min_ts.map(|v| v.to_string()));
        push(&mut q, "max_ts", self.max_ts.map(|v| v.to_string()));
        push(&mut q, "cursor", self.cursor.clone());
        push(&mut q, "limit", self.limit.map(|v| v.to_string()));
        q
    }
}

/// The two trade listings, split by the historical cutoff (see [`super::cutoff`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TradesTier {
    /// `GET /markets/trades`: trades since the cutoff.
    Live,
    /// `GET /historical/trades`: trades before it.
    Historical,
}

impl TradesTier {
    pub fn path(self) -> &'static str {
        match self {
            TradesTier::Live => "/markets/trades",
            TradesTier::Historical => "/historical/trades",
        }
    }

    /// A fixed metric label.
    pub fn label(self) -> &'static str {
        match self {
            TradesTier::Live => "live",
            TradesTier::Historical => "historical",
        }
    }
}

fn push(q: &mut Vec<(&'static str, String)>, key: &'static str, value: Option<String>) {
    if let Some(v) = value.filter(|v| !v.is_empty()) {
        q.push((key, v));
    }
}

/// Follows cursors until the server returns an empty or absent one. A repeated cursor is an
/// error rather than an endless loop.
async fn paginate<P, I, Fut>(
    path: &str,
    first_cursor: Option<String>,
    fetch: impl FnMut(Option<String>) -> Fut,
    split: impl FnMut(P) -> (Vec<I>, Option<String>),
) -> Result<Vec<I>, RestError>
where
    Fut: Future<Output = Result<P, RestError>>,
{
    let mut out = Vec::new();
    paginate_each(path, first_cursor, fetch, split, |items| out.extend(items)).await?;
    Ok(out)
}

/// [`paginate`] handing each page's items to `each` as it arrives instead of collecting them.
async fn paginate_each<P, I, Fut>(
    path: &str,
    first_cursor: Option<String>,
    mut fetch: impl FnMut(Option<String>) -> Fut,
    mut split: impl FnMut(P) -> (Vec<I>, Option<String>),
    mut each: impl FnMut(Vec<I>),
) -> Result<(), RestError>
where
    Fut: Future<Output = Result<P, RestError>>,
{
    let mut cursor = first_cursor;
    let mut seen = std::collections::HashSet::new();
    loop {
        let page = fetch(cursor.clone()).await?;
        let (items, next) = split(page);
        each(items);
        match next.filter(|c| !c.is_empty()) {
            None => return Ok(()),
            Some(next) => {
                if !seen.insert(next.clone()) {
                    return Err(RestError::CursorLoop {
                        path: path.to_owned(),
                        cursor: next,
                    });
                }
                cursor = Some(next);
            }
        }
    }
}

impl RestClient {
    /// `GET /exchange/status`.
    pub async fn exchange_status(&self) -> Result<ExchangeStatus, RestError> {
        self.get_json("/exchange/status", &[]).await
    }

    /// `GET /exchange/schedule`.
    pub async fn exchange_schedule(&self) -> Result<ExchangeScheduleResponse, RestError> {
        self.get_json("/exchange/schedule", &[]).await
    }

    /// One page of `GET /markets`.
    pub async fn markets_page(&self, query: &MarketsQuery) -> Result<MarketsPage, RestError> {
        self.get_json("/markets", &query.pairs()).await
    }

    /// Every market matching `query`, following cursors from `query.cursor` (limit defaults
    /// to the maximum, 1000, to keep the number of requests low).
    pub async fn all_markets(&self, query: &MarketsQuery) -> Result<Vec<Market>, RestError> {
        let base = MarketsQuery {
            limit: query.limit.or(Some(MAX_MARKETS_LIMIT)),
            ..query.clone()
        };
        paginate(
            "/markets",
            base.cursor.clone(),
            |cursor| {
                let q = MarketsQuery {
                    cursor,
                    ..base.clone()
                };
                async move { self.markets_page(&q).await }
            },
            |page: MarketsPage| (page.markets, page.cursor),
        )
        .await
    }

    /// Every market matching `query`, page by page (limit defaults to 1000), handing each
    /// page's tickers to `each` as it arrives; nothing else of the markets is parsed or kept.
    /// On an error the pages already handed over stay handed over: a caller that retries
    /// starts from scratch.
    pub async fn each_market_tickers(
        &self,
        query: &MarketsQuery,
        mut each: impl FnMut(Vec<String>),
    ) -> Result<(), RestError> {
        let base = MarketsQuery {
            limit: query.limit.or(Some(MAX_MARKETS_LIMIT)),
            ..query.clone()
        };
        paginate_each(
            "/markets",
            base.cursor.clone(),
            |cursor| {
                let q = MarketsQuery {
                    cursor,
                    ..base.clone()
                };
                async move {
                    self.get_json::<MarketTickersPage>("/markets", &q.pairs())
                        .await
                }
            },
            |page: MarketTickersPage| (page.markets, page.cursor),
            |markets| each(markets.into_iter().map(|m| m.ticker).collect()),
        )
        .await
    }

    /// `GET /markets/{ticker}`.
    pub async fn market(&self, ticker: &str) -> Result<MarketResponse, RestError> {
        self.get_json(&format!("/markets/{}", escape_segment(ticker)), &[])
            .await
    }

    /// One page of `GET /events`.
    pub async fn events_page(&self, query: &EventsQuery) -> Result<EventsPage, RestError> {
        self.get_json("/events", &query.pairs()).await
    }

    /// Every event matching `query`, following cursors (limit defaults to 200).
    pub async fn all_events(
        &self,
        query: &EventsQuery,
    ) -> Result<Vec<crate::wire::rest::Event>, RestError> {
        let base = EventsQuery {
            limit: query.limit.or(Some(MAX_EVENTS_LIMIT)),
            ..query.clone()
        };
        paginate(
            "/events",
            base.cursor.clone(),
            |cursor| {
                let q = EventsQuery {
                    cursor,
                    ..base.clone()
                };
                async move { self.events_page(&q).await }
            },
            |page: EventsPage| (page.events, page.cursor),
        )
        .await
    }

    /// `GET /events/{event_ticker}` (the event and its markets).
    pub async fn event(&self, event_ticker: &str) -> Result<EventResponse, RestError> {
        self.get_json(&format!("/events/{}", escape_segment(event_ticker)), &[])
            .await
    }

    /// `GET /series`.
    pub async fn series_list(&self, query: &SeriesQuery) -> Result<SeriesList, RestError> {
        let mut q = Vec::new();
        push(&mut q, "category", query.category.clone());
        push(&mut q, "tags", query.tags.clone());
        self.get_json("/series", &q).await
    }

    /// `GET /series/{series_ticker}`.
    pub async fn series(&self, series_ticker: &str) -> Result<SeriesResponse, RestError> {
        self.get_json(&format!("/series/{}", escape_segment(series_ticker)), &[])
            .await
    }

    /// `GET /markets/{ticker}/orderbook`, all levels unless `depth` is given.
    pub async fn orderbook(
        &self,
        ticker: &str,
        depth: Option<u32>,
    ) -> Result<OrderbookResponse, RestError> {
        let mut q = Vec::new();
        push(&mut q, "depth", depth.map(|d| d.to_string()));
        self.get_json(
            &format!("/markets/{}/orderbook", escape_segment(ticker)),
            &q,
        )
        .await
    }

    /// `GET /markets/orderbooks?tickers=a,b,…` (several books in one call).
    pub async fn orderbooks(&self, tickers: &[String]) -> Result<OrderbooksResponse, RestError> {
        self.get_json("/markets/orderbooks", &[("tickers", tickers.join(","))])
            .await
    }

    /// One page of `GET /markets/trades`.
    pub async fn trades_page(&self, query: &TradesQuery) -> Result<TradesPage, RestError> {
        self.get_json("/markets/trades", &query.pairs()).await
    }

    /// Every trade of `ticker` on `/markets/trades` with `min_ts <= ts` (and `ts <= max_ts`
    /// when given), Unix seconds, following cursors with the maximum page size.
    pub async fn all_trades(
        &self,
        ticker: &str,
        min_ts: Option<i64>,
        max_ts: Option<i64>,
    ) -> Result<Vec<RestTrade>, RestError> {
        self.all_trades_of(TradesTier::Live, Some(ticker), min_ts, max_ts)
            .await
    }

    /// One page of `GET /historical/trades` (trades older than the live window).
    pub async fn historical_trades_page(
        &self,
        query: &TradesQuery,
    ) -> Result<TradesPage, RestError> {
        self.get_json("/historical/trades", &query.pairs()).await
    }

    /// Every trade on `/historical/trades` (one market, or every market when `ticker` is
    /// `None`) within `[min_ts, max_ts]`, following cursors with the maximum page size.
    pub async fn historical_trades(
        &self,
        ticker: Option<&str>,
        min_ts: Option<i64>,
        max_ts: Option<i64>,
    ) -> Result<Vec<RestTrade>, RestError> {
        self.all_trades_of(TradesTier::Historical, ticker, min_ts, max_ts)
            .await
    }

    /// One page of the trade listing of `tier`.
    pub async fn tier_trades_page(
        &self,
        tier: TradesTier,
        query: &TradesQuery,
    ) -> Result<TradesPage, RestError> {
        self.get_json(tier.path(), &query.pairs()).await
    }

    /// Every trade of `tier` matching the filters, following cursors (pages of 1000).
    pub async fn all_trades_of(
        &self,
        tier: TradesTier,
        ticker: Option<&str>,
        min_ts: Option<i64>,
        max_ts: Option<i64>,
    ) -> Result<Vec<RestTrade>, RestError> {
        let base = TradesQuery {
            ticker: ticker.map(str::to_owned),
            min_ts,
            max_ts,
            cursor: None,
            limit: Some(MAX_MARKETS_LIMIT),
        };
        paginate(
            tier.path(),
            None,
            |cursor| {
                let q = TradesQuery {
                    cursor,
                    ..base.clone()
                };
                async move { self.tier_trades_page(tier, &q).await }
            },
            |page: TradesPage| (page.trades, page.cursor),
        )
        .await
    }

    /// `GET /historical/cutoff`: where the live tier ends (trades before
    /// [`HistoricalCutoff::trades_created`] are only on `/historical/trades`).
    pub async fn historical_cutoff(&self) -> Result<HistoricalCutoff, RestError> {
        self.get_json("/historical/cutoff", &[]).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_fields_are_not_sent() {
        let q = MarketsQuery {
            limit: Some(1000),
            status: Some("open".into()),
            tickers: vec!["A".into(), "B-1.5".into()],
            cursor: Some(String::new()),
            ..Default::default()
        };
        assert_eq!(
            q.pairs(),
            vec![
                ("limit", "1000".to_string()),
                ("status", "open".into()),
                ("tickers", "A,B-1.5".into())
            ]
        );
        let t = TradesQuery {
            ticker: Some("X".into()),
            min_ts: Some(10),
            ..Default::default()
        };
        assert_eq!(
            t.pairs(),
            vec![("ticker", "X".to_string()), ("min_ts", "10".into())]
        );
    }

    #[test]
    fn tickers_page_keeps_only_tickers() -> Result<(), serde_json::Error> {
        let page: MarketTickersPage = serde_json::from_str(
            r#"{"markets":[{"ticker":"A-1","title":"t","yes_bid_dollars":"0.5","custom":{"x":[1]}},
                {"ticker":"B"}],"cursor":"c2"}"#,
        )?;
        let tickers: Vec<&str> = page.markets.iter().map(|m| m.ticker.as_str()).collect();
        assert_eq!(tickers, ["A-1", "B"]);
        assert_eq!(page.cursor.as_deref(), Some("c2"));
        let empty: MarketTickersPage = serde_json::from_str(r#"{"markets":null,"cursor":""}"#)?;
        assert!(empty.markets.is_empty());
        Ok(())
    }
}
