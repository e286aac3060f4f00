//! The Kalshi REST client: signed GETs, typed errors, and the retry rules of DESIGN §6.
//!
//! # Layout
//! - this file: [`RestClient`] and its configuration, the one request path every call takes.
//! - [`endpoints`]: typed calls returning [`crate::wire::rest`] types, pagination.
//! - [`cutoff`]: the historical cutoff rule (which trades endpoint holds which part of a
//!   window).
//! - [`error`]: [`RestError`] and [`Action`], the status-code table.
//! - [`retry`]: [`RestClient::retry`], [`RestClient::retry_forever`] and
//!   [`RestClient::wait_for_exchange`] (the maintenance wait).
//! - [`metrics`]: metric names.

pub mod cutoff;
pub mod endpoints;
pub mod error;
pub mod metrics;
pub mod retry;

pub use cutoff::{CUTOFF_OVERLAP, TradeSpan, historical_span, live_span};
pub use endpoints::{
    EventsQuery, MarketTicker, MarketTickersPage, MarketsQuery, SeriesQuery, TradesQuery,
    TradesTier,
};
pub use error::{Action, RestError};
pub use retry::MaintenanceConfig;

use crate::auth::Signer;
use reqwest::Url;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::time::Duration;

/// Production REST base URL (long-standing host).
pub const PRODUCTION_BASE_URL: &str = "https://api.elections.kalshi.com/trade-api/v2";
/// Demo environment REST base URL.
pub const DEMO_BASE_URL: &str = "https://demo-api.kalshi.co/trade-api/v2";

/// How to reach the REST API.
#[derive(Debug, Clone)]
pub struct RestConfig {
    /// Base URL including the API prefix, e.g. `http://127.0.0.1:8787/trade-api/v2`.
    pub base_url: String,
    /// Whole-request timeout (connect, send, read the body).
    pub request_timeout: Duration,
    /// TCP + TLS connect timeout.
    pub connect_timeout: Duration,
    /// The maintenance wait of DESIGN §6 (tests shrink it).
    pub maintenance: MaintenanceConfig,
}

impl RestConfig {
    /// Defaults for a base URL: 10 s per request, 5 s to connect, DESIGN §6 maintenance wait.
    pub fn new(base_url: impl Into<String>) -> Self {
        RestConfig {
            base_url: base_url.into(),
            request_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            maintenance: MaintenanceConfig::default(),
        }
    }
}

/// A cheap-to-clone handle on one HTTP connection pool, optionally signing every request.
#[derive(Debug, Clone)]
pub struct RestClient {
    http: reqwest::Client,
    // Parsed once; each request replaces only path and query.
    base: Url,
    // The base path without a trailing slash (`/trade-api/v2`), prefixed to every call and
    // included in what is signed.
    base_path: String,
    signer: Option<Arc<Signer>>,
    maintenance: MaintenanceConfig,
}

impl RestClient {
    /// Builds a client. Fails only on an invalid base URL or TLS set-up.
    pub fn new(config: RestConfig, signer: Option<Signer>) -> Result<Self, RestError> {
        let invalid = |reason: String| RestError::InvalidUrl {
            url: config.base_url.clone(),
            reason,
        };
        let base = Url::parse(&config.base_url).map_err(|e| invalid(e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(invalid("scheme must be http or https".into()));
        }
        let base_path = base.path().trim_end_matches('/').to_owned();
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(config.connect_timeout)
            .user_agent(concat!("kalshi-data/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| invalid(format!("HTTP client: {e}")))?;
        Ok(RestClient {
            http,
            base,
            base_path,
            signer: signer.map(Arc::new),
            maintenance: config.maintenance,
        })
    }

    /// The maintenance-wait settings this client was built with.
    pub fn maintenance_config(&self) -> &MaintenanceConfig {
        &self.maintenance
    }

    /// True when requests carry the authentication headers.
    pub fn is_signed(&self) -> bool {
        self.signer.is_some()
    }

    /// `GET base_path + path` with `query`, decoded as `T`. `path` starts with `/` and is
    /// relative to the base URL (`/markets`); path segments taken from data must be escaped
    /// with [`escape_segment`].
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, RestError> {
        let endpoint = endpoint_label(path);
        let result = self.get_json_inner(path, query, endpoint).await;
        if let Err(e) = &result {
            ::metrics::counter!(metrics::ERRORS_TOTAL, "kind" => e.kind()).increment(1);
            match e.action() {
                Action::Halt => {
                    ::metrics::counter!(metrics::AUTH_FAILURES_TOTAL).increment(1);
                    tracing::error!(error = %e, endpoint, "credentials refused: this component must halt");
                }
                Action::NoRetry => {
                    tracing::warn!(error = %e, endpoint, "request rejected; not retrying")
                }
                _ => tracing::debug!(error = %e, endpoint, "request failed"),
            }
        }
        result
    }

    async fn get_json_inner<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
        endpoint: &'static str,
    ) -> Result<T, RestError> {
        let url = self.url(path, query)?;
        let full_path = url.path().to_owned();
        let mut request = self.http.get(url);
        if let Some(signer) = &self.signer {
            for (name, value) in signer.headers("GET", &full_path)?.iter() {
                request = request.header(name, value);
            }
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(source) => {
                count_request(endpoint, "transport");
                return Err(RestError::Transport {
                    path: full_path,
                    source,
                });
            }
        };
        let status = response.status();
        count_request(endpoint, status.as_str());
        let header_retry = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(error::retry_after_from_header);
        let body = response
            .bytes()
            .await
            .map_err(|source| RestError::Transport {
                path: full_path.clone(),
                source,
            })?;
        if !status.is_success() {
            return Err(RestError::Status {
                status: status.as_u16(),
                retry_after: error::retry_after_from_body(&body).or(header_retry),
                body: error::truncate_body(&body),
                path: full_path,
            });
        }
        serde_json::from_slice(&body).map_err(|source| RestError::Decode {
            path: full_path,
            source,
        })
    }

    fn url(&self, path: &str, query: &[(&str, String)]) -> Result<Url, RestError> {
        let mut url = self.base.clone();
        let full = format!("{}/{}", self.base_path, path.trim_start_matches('/'));
        url.set_path(&full);
        url.set_query(None);
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (key, value) in query {
                pairs.append_pair(key, value);
            }
        }
        if url.path() != full {
            // `set_path` escaped something: the caller passed an unescaped segment.
            return Err(RestError::InvalidUrl {
                url: full,
                reason: "path needs escaping; use rest::escape_segment".into(),
            });
        }
        Ok(url)
    }
}

fn count_request(endpoint: &'static str, status: &str) {
    ::metrics::counter!(metrics::REQUESTS_TOTAL, "endpoint" => endpoint, "status" => status.to_owned())
        .increment(1);
}

/// Percent-escapes one path segment (a ticker) so it cannot change the path's shape.
/// Letters, digits and `-._~` pass through, as in every real ticker.
pub fn escape_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The path template used as the `endpoint` metric label: fixed paths as they are, tickers
/// replaced by placeholders so the label set stays small.
pub fn endpoint_label(path: &str) -> &'static str {
    let path = path.split('?').next().unwrap_or(path).trim_end_matches('/');
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["exchange", "status"] => "/exchange/status",
        ["exchange", "schedule"] => "/exchange/schedule",
        ["markets"] => "/markets",
        ["markets", "trades"] => "/markets/trades",
        ["markets", "orderbooks"] => "/markets/orderbooks",
        ["markets", _] => "/markets/{ticker}",
        ["markets", _, "orderbook"] => "/markets/{ticker}/orderbook",
        ["events"] => "/events",
        ["events", _] => "/events/{event_ticker}",
        ["series"] => "/series",
        ["series", _] => "/series/{series_ticker}",
        ["historical", "trades"] => "/historical/trades",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_labels_hide_tickers() {
        assert_eq!(
            endpoint_label("/markets/KXBTCD-26MAY3017-T73499.99/orderbook"),
            "/markets/{ticker}/orderbook"
        );
        assert_eq!(endpoint_label("/markets/trades"), "/markets/trades");
        assert_eq!(endpoint_label("/markets"), "/markets");
        assert_eq!(
            endpoint_label("/markets/FED-23DEC-T3.00"),
            "/markets/{ticker}"
        );
        assert_eq!(endpoint_label("/portfolio/balance"), "other");
    }

    #[test]
    fn segments_are_escaped() {
        assert_eq!(escape_segment("FED-23DEC-T3.00"), "FED-23DEC-T3.00");
        assert_eq!(escape_segment("a/b?c d"), "a%2Fb%3Fc%20d");
    }

    #[test]
    fn urls_keep_the_base_prefix() -> Result<(), RestError> {
        let client = RestClient::new(RestConfig::new("http://127.0.0.1:9/trade-api/v2/"), None)?;
        let url = client.url(
            "/markets",
            &[("limit", "5".into()), ("status", "open".into())],
        )?;
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:9/trade-api/v2/markets?limit=5&status=open"
        );
        assert!(client.url("/markets/a b", &[]).is_err());
        assert!(RestClient::new(RestConfig::new("ftp://x/"), None).is_err());
        assert!(RestClient::new(RestConfig::new("not a url"), None).is_err());
        Ok(())
    }
}
