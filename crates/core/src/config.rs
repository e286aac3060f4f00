//! Layered configuration: defaults, then a TOML file, then `KALSHI_DATA_<COMPONENT>_…`
//! environment variables, then command-line flags. Unknown keys are rejected (config structs
//! use `deny_unknown_fields`), and every error names the key and the reason.
//!
//! Nested keys in the environment use a double underscore: `KALSHI_DATA_GATHERER_PULL__LISTEN`.

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt;
use std::path::Path;

/// A configuration problem, naming the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {path}: {reason}")]
    File { path: String, reason: String },
    #[error("configuration key `{key}`: {reason}")]
    Invalid { key: String, reason: String },
}

impl ConfigError {
    pub fn invalid(key: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// Loads `T` from its defaults, an optional TOML file, the environment (`env_prefix`, e.g.
/// `KALSHI_DATA_GATHERER_`) and flag overrides (only the `Some` fields of `overrides` apply —
/// serialise them with `skip_serializing_if = "Option::is_none"`).
pub fn load<T, O>(file: Option<&Path>, env_prefix: &str, overrides: &O) -> Result<T, ConfigError>
where
    T: DeserializeOwned + Serialize + Default,
    O: Serialize,
{
    let mut figment = Figment::from(Serialized::defaults(T::default()));
    if let Some(path) = file {
        if !path.exists() {
            return Err(ConfigError::File {
                path: path.display().to_string(),
                reason: "not found".into(),
            });
        }
        figment = figment.merge(Toml::file_exact(path));
    }
    figment = figment
        .merge(Env::prefixed(env_prefix).split("__"))
        .merge(Serialized::defaults(overrides));
    figment.extract::<T>().map_err(from_figment)
}

fn from_figment(err: figment::Error) -> ConfigError {
    let key = if err.path.is_empty() {
        match &err.kind {
            figment::error::Kind::UnknownField(field, _) => field.clone(),
            figment::error::Kind::MissingField(field) => field.to_string(),
            _ => "<root>".to_string(),
        }
    } else {
        // Figment's path already ends with the offending key (unknown fields included).
        err.path.join(".")
    };
    let source = err
        .metadata
        .as_ref()
        .map(|m| format!(" (from {})", m.name))
        .unwrap_or_default();
    ConfigError::invalid(key, format!("{}{source}", err.kind))
}

/// A secret value (password, token, key path contents): `Debug` and `Display` never show it.
#[derive(Clone, Default, PartialEq, Eq, serde::Deserialize, Serialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value, for the one place that must use it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() {
            "Secret(<empty>)"
        } else {
            "Secret(<redacted>)"
        })
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Hides the password of a database URL for logs (`postgres://u:pw@h/db` → `postgres://u:***@h/db`).
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest = &url[scheme_end + 3..];
    let Some(at) = rest.find('@') else {
        return url.to_string();
    };
    let userinfo = &rest[..at];
    match userinfo.find(':') {
        Some(colon) => format!(
            "{}://{}:***@{}",
            &url[..scheme_end],
            &userinfo[..colon],
            &rest[at + 1..]
        ),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Default, Deserialize, Serialize, PartialEq)]
    #[serde(deny_unknown_fields, default)]
    struct Sample {
        name: String,
        batch_size: u32,
        token: Secret,
    }

    #[derive(Serialize)]
    struct NoOverrides {}

    #[test]
    fn unknown_keys_are_rejected_by_name() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "name = \"a\"\nbatch_sise = 3\n").expect("write config");
        let err = load::<Sample, _>(Some(&path), "KD_TEST_NONE_", &NoOverrides {});
        match err {
            Err(ConfigError::Invalid { key, .. }) => assert_eq!(key, "batch_sise"),
            other => panic!("expected an invalid-key error, got {other:?}"),
        }
    }

    #[test]
    fn wrong_types_name_the_key() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "batch_size = \"many\"\n").expect("write config");
        match load::<Sample, _>(Some(&path), "KD_TEST_NONE_", &NoOverrides {}) {
            Err(ConfigError::Invalid { key, .. }) => assert_eq!(key, "batch_size"),
            other => panic!("expected an invalid-key error, got {other:?}"),
        }
    }

    #[test]
    fn secrets_never_print() {
        let s = Sample {
            token: Secret::new("hunter2"),
            ..Sample::default()
        };
        assert!(!format!("{s:?}").contains("hunter2"));
        assert_eq!(
            redact_url("postgres://u:pw@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_url("sqlite:///tmp/x"), "sqlite:///tmp/x");
    }
}
