//! Scalar wire values that Kalshi sends in more than one JSON shape.
//!
//! Hand-written visitors rather than `#[serde(untagged)]`: untagged enums buffer every value into
//! an intermediate `Content` tree, which would cost an allocation per field on the order-book hot
//! path. These visitors take whichever shape arrives and borrow strings from the input when they
//! contain no escapes.

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::borrow::Cow;
use std::fmt;

/// A JSON string borrowed from the input when possible (no escapes), owned otherwise.
///
/// `Option<Cow<'a, str>>` with `#[serde(borrow)]` always allocates (a serde limitation), so wire
/// structs use `Option<WireStr<'a>>` instead.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct WireStr<'a>(pub Cow<'a, str>);

impl<'a> WireStr<'a> {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Detaches from the input buffer.
    pub fn into_owned(self) -> WireStr<'static> {
        WireStr(Cow::Owned(self.0.into_owned()))
    }
}

impl std::ops::Deref for WireStr<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'a> From<&'a str> for WireStr<'a> {
    fn from(s: &'a str) -> Self {
        WireStr(Cow::Borrowed(s))
    }
}

impl From<String> for WireStr<'static> {
    fn from(s: String) -> Self {
        WireStr(Cow::Owned(s))
    }
}

impl Serialize for WireStr<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

struct WireStrVisitor;

impl<'de> Visitor<'de> for WireStrVisitor {
    type Value = WireStr<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(WireStr(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(WireStr(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(WireStr(Cow::Owned(v)))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for WireStr<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(WireStrVisitor)
    }
}

/// A number Kalshi sends either as text (current: `"0.5200"`, `"31.54"`, RFC 3339 times) or as a
/// JSON integer (legacy: cents, whole contracts, Unix seconds). Which unit the integer is in
/// depends on the field; the parse functions decide.
///
/// JSON floats are rejected: exact units never pass through binary floating point.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum WireNum<'a> {
    Text(Cow<'a, str>),
    Int(i64),
}

impl WireNum<'_> {
    /// Detaches from the input buffer.
    pub fn into_owned(self) -> WireNum<'static> {
        match self {
            WireNum::Text(t) => WireNum::Text(Cow::Owned(t.into_owned())),
            WireNum::Int(i) => WireNum::Int(i),
        }
    }
}

impl Serialize for WireNum<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            WireNum::Text(t) => s.serialize_str(t),
            WireNum::Int(i) => s.serialize_i64(*i),
        }
    }
}

struct WireNumVisitor;

impl<'de> Visitor<'de> for WireNumVisitor {
    type Value = WireNum<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a decimal string or an integer")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(WireNum::Text(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(WireNum::Text(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(WireNum::Text(Cow::Owned(v)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(WireNum::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        i64::try_from(v)
            .map(WireNum::Int)
            .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for WireNum<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(WireNumVisitor)
    }
}

/// The owned form of [`WireNum`], for REST structs that outlive the response buffer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum NumText {
    Text(String),
    Int(i64),
}

impl NumText {
    pub fn as_wire(&self) -> WireNum<'_> {
        match self {
            NumText::Text(t) => WireNum::Text(Cow::Borrowed(t)),
            NumText::Int(i) => WireNum::Int(*i),
        }
    }
}

impl Serialize for NumText {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.as_wire().serialize(s)
    }
}

impl<'de> Deserialize<'de> for NumText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match d.deserialize_any(WireNumVisitor)? {
            WireNum::Text(t) => NumText::Text(t.into_owned()),
            WireNum::Int(i) => NumText::Int(i),
        })
    }
}

/// One order-book level as sent: `[price, count]`, each text (current) or integer (legacy).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireLevel<'a>(
    #[serde(borrow)] pub WireNum<'a>,
    #[serde(borrow)] pub WireNum<'a>,
);

/// The owned form of [`WireLevel`] (REST order books).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestLevel(pub NumText, pub NumText);

/// Deserializes `null` as the type's default (Kalshi sends `null` for empty lists at times).
pub(crate) fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_str_borrows_plain_and_owns_escaped() -> Result<(), serde_json::Error> {
        let plain: WireStr<'_> = serde_json::from_str(r#""KX-1""#)?;
        assert!(matches!(plain.0, Cow::Borrowed("KX-1")));
        let escaped: WireStr<'_> = serde_json::from_str(r#""K\u0058""#)?;
        assert_eq!(escaped.as_str(), "KX");
        Ok(())
    }

    #[test]
    fn wire_num_takes_text_and_integers_but_not_floats() -> Result<(), serde_json::Error> {
        let t: WireNum<'_> = serde_json::from_str(r#""0.52""#)?;
        assert_eq!(t, WireNum::Text(Cow::Borrowed("0.52")));
        let i: WireNum<'_> = serde_json::from_str("-50")?;
        assert_eq!(i, WireNum::Int(-50));
        assert!(serde_json::from_str::<WireNum<'_>>("0.52").is_err());
        assert!(serde_json::from_str::<WireNum<'_>>("18446744073709551615").is_err());
        let level: WireLevel<'_> = serde_json::from_str(r#"["0.08", 300]"#)?;
        assert_eq!(level.1, WireNum::Int(300));
        assert!(serde_json::from_str::<WireLevel<'_>>(r#"["0.08"]"#).is_err());
        assert!(serde_json::from_str::<WireLevel<'_>>(r#"["0.08","1","2"]"#).is_err());
        Ok(())
    }
}
