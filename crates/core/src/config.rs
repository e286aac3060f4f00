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
/// It is read from any scalar (`token = 987654321012` from TOML or a numeric environment
/// variable is a token, not a type error), and a value of the wrong shape is refused without
/// echoing it.
#[derive(Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Secret(String);

impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Scalar;
        impl serde::de::Visitor<'_> for Scalar {
            type Value = Secret;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a secret (a string or another scalar)")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Secret, E> {
                Ok(Secret(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
            fn visit_i128<E: serde::de::Error>(self, v: i128) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
            fn visit_u128<E: serde::de::Error>(self, v: u128) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
            // A float would have lost digits already (`1e3` is not the token `1000`): refused
            // without the value, which serde's default message would echo.
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Secret, E> {
                Err(E::custom(
                    "a secret must be a string (quote it; the number shown here is withheld)",
                ))
            }
        }
        d.deserialize_any(Scalar)
    }
}

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

/// Query parameters and connection-string keywords whose value is a secret.
const SECRET_KEYS: [&str; 4] = ["password", "sslpassword", "token", "secret"];

fn is_secret_key(key: &str) -> bool {
    SECRET_KEYS.iter().any(|k| key.eq_ignore_ascii_case(k))
}

/// Hides every secret of a database URL, for logs, errors, files and screens: the password of
/// the user info (`postgres://u:pw@h/db` → `postgres://u:***@h/db`), secret query parameters
/// (`?password=…`, `sslpassword`, `token`), and the same keywords of a libpq key=value string
/// (`host=h password=pw`). The user info ends at the LAST `@` before the query, so a password
/// holding an unescaped `/` or `@` is still hidden whole: over-redacting is harmless, a leak
/// is not.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return redact_keywords(url);
    };
    let (scheme, rest) = (&url[..scheme_end], &url[scheme_end + 3..]);
    let (base, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    let mut out = format!("{scheme}://");
    match base.rfind('@') {
        Some(at) => {
            let userinfo = &base[..at];
            match userinfo.split_once(':') {
                Some((user, _)) => out.push_str(&format!("{user}:***")),
                None => out.push_str(userinfo),
            }
            out.push_str(&base[at..]);
        }
        None => out.push_str(base),
    }
    if let Some(query) = query {
        out.push('?');
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if is_secret_key(k) => format!("{k}=***"),
                _ => pair.to_string(),
            })
            .collect();
        out.push_str(&pairs.join("&"));
    }
    out
}

/// libpq's `key=value key='quoted value'` form: secret keywords' values become `***`.
fn redact_keywords(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(eq) = rest.find('=') {
        let key_start = rest[..eq]
            .rfind(|c: char| c.is_whitespace())
            .map_or(0, |i| i + 1);
        let key = rest[key_start..eq].trim();
        out.push_str(&rest[..=eq]);
        let after = &rest[eq + 1..];
        // The value: quoted (to the closing quote, `\'` escapes) or to the next whitespace.
        let end = if after.starts_with('\'') {
            let mut escaped = false;
            after
                .char_indices()
                .skip(1)
                .find(|&(_, c)| {
                    let close = c == '\'' && !escaped;
                    escaped = c == '\\' && !escaped;
                    close
                })
                .map_or(after.len(), |(i, _)| i + 1)
        } else {
            after.find(char::is_whitespace).unwrap_or(after.len())
        };
        if is_secret_key(key) {
            out.push_str("***");
        } else {
            out.push_str(&after[..end]);
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
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

    #[test]
    fn redaction_covers_every_form_of_password() {
        let cases = [
            ("postgres://u:p/w@d@h:5432/db", "postgres://u:***@h:5432/db"),
            (
                "postgres://u@h/db?sslmode=verify-full&password=pw&application_name=x",
                "postgres://u@h/db?sslmode=verify-full&password=***&application_name=x",
            ),
            (
                "postgres://u:pw@h/db?PassWord=pw2",
                "postgres://u:***@h/db?PassWord=***",
            ),
            (
                "host=h password=pw dbname=d",
                "host=h password=*** dbname=d",
            ),
            (
                "host=h password='p w\\' x' user=u",
                "host=h password=*** user=u",
            ),
            ("postgres://h/db", "postgres://h/db"),
        ];
        for (url, shown) in cases {
            assert_eq!(redact_url(url), shown, "{url}");
        }
    }

    #[test]
    fn secrets_accept_any_scalar_and_never_echo() {
        #[derive(Debug, Deserialize)]
        struct T {
            token: Secret,
        }
        let read = |text: &str| {
            Figment::from(Toml::string(text))
                .extract::<T>()
                .map_err(Box::new)
        };
        let t = read("token = 987654321012").expect("a number is a token");
        assert_eq!(t.token.expose(), "987654321012");
        let t = read("token = true").expect("a bool is a token");
        assert_eq!(t.token.expose(), "true");
        let shown = read("token = 98765.4321").err().map(|e| e.to_string());
        let shown = shown.unwrap_or_default();
        assert!(!shown.is_empty() && !shown.contains("98765"), "{shown}");
    }
}
