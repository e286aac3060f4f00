//! `up --exchange kalshi|demo|URL`: which exchange, and the plan against it — N gatherers, the
//! deduplicator and the exporter, no simulator.
//!
//! A URL names a base from which both endpoints are derived, the way Kalshi lays them out
//! (and the simulator serves them): trailing `/` and a trailing `/trade-api/v2` are dropped,
//! then REST is `BASE/trade-api/v2` and the WebSocket is `BASE/trade-api/ws/v2` with `http`
//! turned into `ws` and `https` into `wss`. So `http://127.0.0.1:8787` gives
//! `http://127.0.0.1:8787/trade-api/v2` and `ws://127.0.0.1:8787/trade-api/ws/v2`.

use super::UpError;
use super::args::UpArgs;
use super::plan::{self, ProcessSpec};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The variable a gatherer reads its key id from (its `key_id` key): the id stays off the
/// configuration file and the command line.
pub const GATHERER_KEY_ID_ENV: &str = "KALSHI_DATA_GATHERER_KEY_ID";

/// REST and WebSocket endpoints of one exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    /// What the operator named (`kalshi`, `demo`, or the URL).
    pub name: String,
    /// REST base, ending in `/trade-api/v2`.
    pub rest_url: String,
    /// WebSocket URL, ending in `/trade-api/ws/v2`.
    pub ws_url: String,
}

/// An `--exchange` value that names no exchange.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "--exchange `{0}`: expected `kalshi`, `demo` or an http(s):// base URL such as http://127.0.0.1:8787"
)]
pub struct BadExchange(pub String);

impl Exchange {
    /// Parses `kalshi`, `demo` or a base URL (see the module documentation for the rule).
    pub fn parse(text: &str) -> Result<Exchange, BadExchange> {
        let name = text.to_string();
        match text {
            "kalshi" => {
                return Ok(Exchange {
                    name,
                    rest_url: kd_kalshi::rest::PRODUCTION_BASE_URL.into(),
                    ws_url: kd_kalshi::ws::connect::PRODUCTION_WS_URL.into(),
                });
            }
            "demo" => {
                return Ok(Exchange {
                    name,
                    rest_url: kd_kalshi::rest::DEMO_BASE_URL.into(),
                    ws_url: kd_kalshi::ws::connect::DEMO_WS_URL.into(),
                });
            }
            _ => {}
        }
        let bad = || BadExchange(text.to_string());
        let (scheme, ws_scheme, rest) = if let Some(rest) = text.strip_prefix("https://") {
            ("https://", "wss://", rest)
        } else if let Some(rest) = text.strip_prefix("http://") {
            ("http://", "ws://", rest)
        } else {
            return Err(bad());
        };
        let rest = rest.trim_end_matches('/');
        let rest = rest.strip_suffix("/trade-api/v2").unwrap_or(rest);
        if rest.is_empty() || rest.starts_with('/') || rest.contains(['?', '#', ' ']) {
            return Err(bad());
        }
        Ok(Exchange {
            name,
            rest_url: format!("{scheme}{rest}/trade-api/v2"),
            ws_url: format!("{ws_scheme}{rest}/trade-api/ws/v2"),
        })
    }

    /// `GET /exchange/status`, the endpoint the preflight asks first.
    pub fn status_url(&self) -> String {
        format!("{}/exchange/status", self.rest_url)
    }
}

/// The credentials the gatherers sign with.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// Never printed, never on a command line or in a file `up` writes.
    pub key_id: kd_core::config::Secret,
    /// Absolute, so a child finds it whatever its working directory.
    pub private_key: PathBuf,
}

/// The plan against a real exchange: gatherers, deduplicator, exporter on fresh loopback ports.
pub fn specs(
    args: &UpArgs,
    exchange: &Exchange,
    creds: &Credentials,
) -> Result<Vec<ProcessSpec>, UpError> {
    let dir = &args.data_dir;
    let n_gatherers = args.gatherers.max(1);
    let ports = plan::free_ports(n_gatherers + 2).map_err(UpError::Port)?;
    let (dedup_port, export_port) = (ports[0], ports[1]);
    let mut specs = Vec::new();
    let mut gatherers = Vec::new();
    for (i, &port) in ports[2..].iter().enumerate() {
        let name = plan::gatherer_name(i);
        let config_path = dir.join("config").join(format!("{name}.toml"));
        let text = gatherer_config(&name, dir, port, exchange, &creds.private_key, args);
        std::fs::write(&config_path, text).map_err(|source| UpError::Io {
            path: config_path.clone(),
            source,
        })?;
        let mut spec = plan::gatherer(args, &name, port);
        spec.env.push((
            OsString::from(GATHERER_KEY_ID_ENV),
            OsString::from(creds.key_id.expose()),
        ));
        specs.push(spec);
        gatherers.push((name, port));
    }
    specs.push(plan::dedup_at(
        args,
        dedup_port,
        &gatherers,
        &exchange.rest_url,
    ));
    specs.push(plan::exporter(args, export_port));
    Ok(specs)
}

/// A gatherer's configuration against `exchange`: no `key_id` (it comes through the
/// environment), the operator's private key file.
fn gatherer_config(
    name: &str,
    dir: &Path,
    port: u16,
    exchange: &Exchange,
    private_key: &Path,
    args: &UpArgs,
) -> String {
    format!(
        "# Written by `kalshi-data up --exchange {}`; rewritten at every start.\n\
         # key_id comes from the environment ({GATHERER_KEY_ID_ENV}), never from this file.\n\
         gatherer_id = \"{name}\"\n\
         rest_url = \"{}\"\n\
         ws_url = \"{}\"\n\
         private_key_path = \"{}\"\n\
         data_dir = \"{}\"\n\
         listen = \"127.0.0.1:{port}\"\n{}",
        toml_escape(&exchange.name),
        toml_escape(&exchange.rest_url),
        toml_escape(&exchange.ws_url),
        toml_escape(&private_key.display().to_string()),
        toml_escape(&dir.join(name).display().to_string()),
        args.gatherer_settings
            .iter()
            .map(|line| format!("{line}\n"))
            .collect::<String>(),
    )
}

fn toml_escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_exchanges_use_kalshis_servers() -> Result<(), BadExchange> {
        let k = Exchange::parse("kalshi")?;
        assert_eq!(k.rest_url, "https://api.elections.kalshi.com/trade-api/v2");
        assert_eq!(k.ws_url, "wss://api.elections.kalshi.com/trade-api/ws/v2");
        let d = Exchange::parse("demo")?;
        assert_eq!(d.rest_url, "https://demo-api.kalshi.co/trade-api/v2");
        assert_eq!(d.ws_url, "wss://demo-api.kalshi.co/trade-api/ws/v2");
        Ok(())
    }

    #[test]
    fn a_base_url_gives_both_endpoints() -> Result<(), BadExchange> {
        for text in [
            "http://127.0.0.1:8787",
            "http://127.0.0.1:8787/",
            "http://127.0.0.1:8787/trade-api/v2",
            "http://127.0.0.1:8787/trade-api/v2/",
        ] {
            let e = Exchange::parse(text)?;
            assert_eq!(e.rest_url, "http://127.0.0.1:8787/trade-api/v2", "{text}");
            assert_eq!(e.ws_url, "ws://127.0.0.1:8787/trade-api/ws/v2", "{text}");
            assert_eq!(
                e.status_url(),
                "http://127.0.0.1:8787/trade-api/v2/exchange/status"
            );
        }
        let e = Exchange::parse("https://proxy.example/kalshi")?;
        assert_eq!(e.rest_url, "https://proxy.example/kalshi/trade-api/v2");
        assert_eq!(e.ws_url, "wss://proxy.example/kalshi/trade-api/ws/v2");
        Ok(())
    }

    #[test]
    fn other_values_are_refused() {
        for text in [
            "",
            "prod",
            "ftp://x",
            "ws://127.0.0.1:1",
            "http://",
            "http:///x",
        ] {
            assert!(Exchange::parse(text).is_err(), "{text}");
        }
    }
}
