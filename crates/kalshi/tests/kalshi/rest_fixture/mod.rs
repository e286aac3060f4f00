//! A scripted HTTP server on 127.0.0.1:0 for the REST client's status handling: each path
//! answers from a queue of replies, then from its default. Not a simulator — the exchange
//! simulator lives in `crates/sim`; this only makes chosen statuses happen on demand.

#![allow(dead_code)]

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Response, StatusCode, Uri};
use kd_kalshi::auth::{HEADER_KEY, HEADER_SIGNATURE, HEADER_TIMESTAMP, Verifier};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

pub const PREFIX: &str = "/trade-api/v2";

#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub headers: Vec<(&'static str, String)>,
}

impl Reply {
    pub fn json(status: u16, body: impl Into<String>) -> Reply {
        Reply {
            status,
            body: body.into(),
            headers: Vec::new(),
        }
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }
}

#[derive(Default)]
struct Inner {
    queues: HashMap<String, VecDeque<Reply>>,
    defaults: HashMap<String, Reply>,
    hits: HashMap<String, u32>,
    queries: Vec<(String, Option<String>)>,
    // When set, `/exchange/status` reports the exchange down until this time.
    down_until: Option<SystemTime>,
}

#[derive(Clone)]
pub struct Fixture {
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    verifier: Option<Arc<Verifier>>,
}

struct AppState {
    inner: Arc<Mutex<Inner>>,
    verifier: Option<Arc<Verifier>>,
}

impl Fixture {
    /// Starts the server; with a verifier, every request must carry a valid signature (401
    /// otherwise), as on Kalshi.
    pub async fn start(verifier: Option<Verifier>) -> std::io::Result<Fixture> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let inner = Arc::new(Mutex::new(Inner::default()));
        let verifier = verifier.map(Arc::new);
        let state = Arc::new(AppState {
            inner: inner.clone(),
            verifier: verifier.clone(),
        });
        let app = Router::new().fallback(handle).with_state(state);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Fixture {
            addr,
            inner,
            verifier,
        })
    }

    pub fn base_url(&self) -> String {
        format!("http://{}{PREFIX}", self.addr)
    }

    /// Queues replies for `path` (relative to the prefix), served in order.
    pub fn push(&self, path: &str, replies: impl IntoIterator<Item = Reply>) {
        let mut g = self.inner.lock().unwrap();
        g.queues.entry(path.to_owned()).or_default().extend(replies);
    }

    /// The reply for `path` once its queue is empty.
    pub fn default(&self, path: &str, reply: Reply) {
        self.inner
            .lock()
            .unwrap()
            .defaults
            .insert(path.to_owned(), reply);
    }

    /// `/exchange/status` says `exchange_active=false` with this resume time until it passes.
    pub fn maintenance_until(&self, until: SystemTime) {
        self.inner.lock().unwrap().down_until = Some(until);
    }

    pub fn hits(&self, path: &str) -> u32 {
        self.inner
            .lock()
            .unwrap()
            .hits
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    /// Raw query strings received for `path`, in order.
    pub fn queries(&self, path: &str) -> Vec<Option<String>> {
        let g = self.inner.lock().unwrap();
        g.queries
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, q)| q.clone())
            .collect()
    }
}

fn rfc3339(t: SystemTime) -> String {
    let us = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_micros() as i64;
    kd_core::TimestampUs::from_micros(us).to_rfc3339()
}

async fn handle(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response<Body> {
    let full_path = uri.path().to_owned();
    let path = full_path
        .strip_prefix(PREFIX)
        .unwrap_or(&full_path)
        .to_owned();
    if let Some(verifier) = &state.verifier {
        let h = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
        };
        if let Err(e) = verifier.verify(
            h(HEADER_KEY),
            h(HEADER_TIMESTAMP),
            method.as_str(),
            &full_path,
            h(HEADER_SIGNATURE),
        ) {
            return respond(&Reply::json(
                401,
                format!(r#"{{"code":"unauthorized","message":"{e}"}}"#),
            ));
        }
    }
    let reply = {
        let mut g = state.inner.lock().unwrap();
        *g.hits.entry(path.clone()).or_default() += 1;
        g.queries
            .push((path.clone(), uri.query().map(str::to_owned)));
        if let Some(r) = g.queues.get_mut(&path).and_then(VecDeque::pop_front) {
            r
        } else if path == "/exchange/status" && !g.defaults.contains_key(&path) {
            match g.down_until {
                Some(until) if SystemTime::now() < until => Reply::json(
                    200,
                    format!(
                        r#"{{"exchange_active":false,"trading_active":false,"exchange_estimated_resume_time":"{}"}}"#,
                        rfc3339(until)
                    ),
                ),
                _ => Reply::json(200, r#"{"exchange_active":true,"trading_active":true}"#),
            }
        } else {
            g.defaults.get(&path).cloned().unwrap_or_else(|| {
                Reply::json(404, r#"{"code":"not_found","message":"no such path"}"#)
            })
        }
    };
    respond(&reply)
}

fn respond(reply: &Reply) -> Response<Body> {
    let mut builder = Response::builder()
        .status(StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", "application/json");
    for (name, value) in &reply.headers {
        builder = builder.header(*name, value.as_str());
    }
    builder.body(Body::from(reply.body.clone())).unwrap()
}

/// A short policy so retry tests run in milliseconds.
pub fn fast_policy() -> kd_core::backoff::BackoffPolicy {
    kd_core::backoff::BackoffPolicy::new(Duration::from_millis(5), Duration::from_millis(20))
}

pub fn markets_body(tickers: &[&str], cursor: &str) -> String {
    let markets: Vec<String> = tickers
        .iter()
        .map(|t| format!(r#"{{"ticker":"{t}","event_ticker":"EV","status":"active"}}"#))
        .collect();
    format!(
        r#"{{"markets":[{}],"cursor":"{cursor}"}}"#,
        markets.join(",")
    )
}
