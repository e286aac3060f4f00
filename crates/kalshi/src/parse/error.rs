//! Parse errors: typed, naming the message type and the field, with a short `kind()` for metric
//! labels. Exchange text never ends up in them unbounded (unit errors carry no input; serde
//! errors quote at most a token).

use kd_core::UnitError;

/// A problem with one field of an otherwise well-formed message (shared by the WebSocket and
/// REST parsers, which add the message name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    #[error("missing field `{0}`")]
    Missing(&'static str),
    #[error("field `{field}`: {source}")]
    Unit {
        field: &'static str,
        #[source]
        source: UnitError,
    },
    #[error("field `{0}`: unexpected value")]
    Invalid(&'static str),
}

impl FieldError {
    pub(crate) fn unit(field: &'static str) -> impl FnOnce(UnitError) -> FieldError {
        move |source| FieldError::Unit { field, source }
    }
}

/// Why a WebSocket text frame did not become a [`super::WsEvent`].
///
/// An unknown message *type* is not an error (it is `WsEvent::Unknown`); these are frames that
/// claim a known type but do not carry what that type needs, or are not JSON objects at all.
#[derive(Debug, thiserror::Error)]
pub enum WsParseError {
    /// Not JSON, not an object, or the envelope itself is malformed (before the type is known).
    #[error("malformed frame: {0}")]
    Json(#[source] serde_json::Error),
    /// The type is known but the JSON does not have that type's shape (wrong JSON types).
    #[error("{msg_type}: malformed message: {source}")]
    Shape {
        msg_type: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// A field the message type needs is absent (`msg_type` is `"envelope"` for `type` itself).
    #[error("{msg_type}: missing field `{field}`")]
    MissingField {
        msg_type: &'static str,
        field: &'static str,
    },
    /// A price, count or time field does not convert exactly.
    #[error("{msg_type}: field `{field}`: {source}")]
    Field {
        msg_type: &'static str,
        field: &'static str,
        #[source]
        source: UnitError,
    },
    /// A field holds a value outside its closed set (e.g. `side` not `yes`/`no`).
    #[error("{msg_type}: field `{field}`: unexpected value")]
    InvalidValue {
        msg_type: &'static str,
        field: &'static str,
    },
    /// Well-formed but implausible: an exchange time outside 2015-01-01 .. receipt + 1 day, or a
    /// control character in a ticker or id (`kd_core::validate::plausible`).
    #[error("{msg_type}: {source}")]
    Invalid {
        msg_type: &'static str,
        #[source]
        source: kd_core::validate::Invalid,
    },
}

impl WsParseError {
    pub(crate) fn field(msg_type: &'static str, e: FieldError) -> Self {
        match e {
            FieldError::Missing(field) => WsParseError::MissingField { msg_type, field },
            FieldError::Unit { field, source } => WsParseError::Field {
                msg_type,
                field,
                source,
            },
            FieldError::Invalid(field) => WsParseError::InvalidValue { msg_type, field },
        }
    }

    /// A short, fixed label for metrics: `json`, `shape`, `missing_field`, `field`,
    /// `invalid_value`, `implausible`.
    pub fn kind(&self) -> &'static str {
        match self {
            WsParseError::Invalid { .. } => "implausible",
            WsParseError::Json(_) => "json",
            WsParseError::Shape { .. } => "shape",
            WsParseError::MissingField { .. } => "missing_field",
            WsParseError::Field { .. } => "field",
            WsParseError::InvalidValue { .. } => "invalid_value",
        }
    }

    /// The message type the error belongs to, when it was known.
    pub fn msg_type(&self) -> Option<&'static str> {
        match self {
            WsParseError::Json(_) => None,
            WsParseError::Shape { msg_type, .. }
            | WsParseError::Invalid { msg_type, .. }
            | WsParseError::MissingField { msg_type, .. }
            | WsParseError::Field { msg_type, .. }
            | WsParseError::InvalidValue { msg_type, .. } => Some(msg_type),
        }
    }

    /// The field that failed, when one did.
    pub fn field_name(&self) -> Option<&'static str> {
        match self {
            WsParseError::Json(_) | WsParseError::Shape { .. } => None,
            WsParseError::Invalid { source, .. } => Some(match source {
                kd_core::validate::Invalid::Time { field, .. }
                | kd_core::validate::Invalid::Control { field, .. } => field,
            }),
            WsParseError::MissingField { field, .. }
            | WsParseError::Field { field, .. }
            | WsParseError::InvalidValue { field, .. } => Some(field),
        }
    }
}

/// Why a REST response body (or one object in it) did not parse.
#[derive(Debug, thiserror::Error)]
pub enum RestParseError {
    /// Not JSON, or not the shape of `what` (a missing required key lands here too).
    #[error("{what}: malformed response: {source}")]
    Json {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("{what}: missing field `{field}`")]
    MissingField {
        what: &'static str,
        field: &'static str,
    },
    #[error("{what}: field `{field}`: {source}")]
    Field {
        what: &'static str,
        field: &'static str,
        #[source]
        source: UnitError,
    },
    #[error("{what}: field `{field}`: unexpected value")]
    InvalidValue {
        what: &'static str,
        field: &'static str,
    },
}

impl RestParseError {
    pub(crate) fn field(what: &'static str, e: FieldError) -> Self {
        match e {
            FieldError::Missing(field) => RestParseError::MissingField { what, field },
            FieldError::Unit { field, source } => RestParseError::Field {
                what,
                field,
                source,
            },
            FieldError::Invalid(field) => RestParseError::InvalidValue { what, field },
        }
    }

    /// A short, fixed label for metrics: `json`, `missing_field`, `field`, `invalid_value`.
    pub fn kind(&self) -> &'static str {
        match self {
            RestParseError::Json { .. } => "json",
            RestParseError::MissingField { .. } => "missing_field",
            RestParseError::Field { .. } => "field",
            RestParseError::InvalidValue { .. } => "invalid_value",
        }
    }

    /// Which response or object failed (`exchange_status`, `markets_page`, `trade`, …).
    pub fn what(&self) -> &'static str {
        match self {
            RestParseError::Json { what, .. }
            | RestParseError::MissingField { what, .. }
            | RestParseError::Field { what, .. }
            | RestParseError::InvalidValue { what, .. } => what,
        }
    }
}
