//! `GET /exchange/status` and `/exchange/schedule`.

use super::one_or_many;
use crate::wire::scalar::null_as_default;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `GET /exchange/status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExchangeStatus {
    pub exchange_active: bool,
    pub trading_active: bool,
    /// RFC 3339; present while the exchange is down for maintenance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exchange_estimated_resume_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intra_exchange_transfers_active: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exchange_index_statuses: Option<Value>,
}

/// `GET /exchange/schedule`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExchangeScheduleResponse {
    pub schedule: Schedule,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    /// A list in the current API; older responses sent one object (accepted as a list of one).
    #[serde(default, deserialize_with = "one_or_many")]
    pub standard_hours: Vec<WeeklySchedule>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub maintenance_windows: Vec<MaintenanceWindow>,
}

/// Trading sessions per weekday (times `HH:MM` in US Eastern), effective between two instants.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WeeklySchedule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub monday: Vec<DailySchedule>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub tuesday: Vec<DailySchedule>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub wednesday: Vec<DailySchedule>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub thursday: Vec<DailySchedule>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub friday: Vec<DailySchedule>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub saturday: Vec<DailySchedule>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub sunday: Vec<DailySchedule>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DailySchedule {
    pub open_time: String,
    pub close_time: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaintenanceWindow {
    pub start_datetime: String,
    pub end_datetime: String,
}
