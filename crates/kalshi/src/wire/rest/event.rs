//! Events and series (`GET /events`, `/series`).

use super::market::{Market, SettlementSource};
use super::next_cursor;
use crate::wire::scalar::null_as_default;
use serde::{Deserialize, Serialize};
use serde_json::{Number, Value};

/// An event (`GET /events`, `/events/{event_ticker}`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub event_ticker: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub series_ticker: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub_title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub collateral_return_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mutually_exclusive: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strike_date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strike_period: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settlement_sources: Option<Vec<SettlementSource>>,
    /// Present with `with_nested_markets=true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub markets: Option<Vec<Market>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub available_on_brokers: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_metadata: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_updated_ts: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fee_type_override: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fee_multiplier_override: Option<Number>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exchange_index: Option<i64>,
}

/// `GET /events`: one page.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EventsPage {
    #[serde(default, deserialize_with = "null_as_default")]
    pub events: Vec<Event>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub milestones: Option<Value>,
}

/// `GET /events/{event_ticker}`: the event and its markets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventResponse {
    pub event: Event,
    #[serde(default, deserialize_with = "null_as_default")]
    pub markets: Vec<Market>,
}

/// A series (`GET /series`, `/series/{series_ticker}`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Series {
    pub ticker: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frequency: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub categories: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settlement_sources: Option<Vec<SettlementSource>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contract_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contract_terms_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fee_type: Option<String>,
    /// A plain JSON number (a multiplier, not a price).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fee_multiplier: Option<Number>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub additional_prohibitions: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_metadata: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_fp: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_updated_ts: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exchange_index: Option<i64>,
}

/// `GET /series`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SeriesList {
    #[serde(default, deserialize_with = "null_as_default")]
    pub series: Vec<Series>,
    /// Not in the spec; kept in case the endpoint grows pagination.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

/// `GET /series/{series_ticker}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesResponse {
    pub series: Series,
}

impl EventsPage {
    pub fn next_cursor(&self) -> Option<&str> {
        next_cursor(&self.cursor)
    }
}

impl SeriesList {
    pub fn next_cursor(&self) -> Option<&str> {
        next_cursor(&self.cursor)
    }
}
