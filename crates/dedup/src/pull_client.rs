//! The client side of the gatherer pull API (`kd_core::pull`).

use crate::config::GathererEndpoint;
use crate::events::ErrorKind;
use kd_core::Table;
use kd_core::pull::codec;
use kd_core::pull::{AckRequest, PullResponse};
use std::time::Duration;

/// What a pull accepts: the binary page first, JSON otherwise.
const ACCEPT: &str = "application/vnd.kalshi-data.pull-v1, application/json;q=0.5";

/// Why a pull or an acknowledgement failed. Every variant marks the gatherer down and is
/// retried after a backoff; none stops the deduplicator. The texts name the cause (they reach
/// the log and `/health`): reqwest's own "error sending request" says nothing an operator can act on.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error("gatherer unreachable: {reason}")]
    Unreachable {
        reason: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("gatherer refused the connection (nothing listening at that address and port?)")]
    Refused(#[source] reqwest::Error),
    #[error("TLS with the gatherer failed: {reason}")]
    Tls {
        reason: String,
        #[source]
        source: reqwest::Error,
    },
    #[error(
        "gatherer refused the token (HTTP {status}): `token` must equal the gatherer's KALSHI_DATA_GATHERER_TOKEN"
    )]
    Unauthorized { status: u16 },
    #[error("gatherer answered HTTP {status}: {body}")]
    Status { status: u16, body: String },
    #[error("TLS settings of gatherer `{gatherer}`: {key} {path}: {reason}")]
    TlsFiles {
        gatherer: String,
        key: &'static str,
        path: String,
        reason: String,
    },
    #[error("cannot build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    #[error("gatherer answer not understood: {0}")]
    Json(#[source] serde_json::Error),
    #[error("gatherer's binary page not understood: {0}")]
    Binary(#[source] codec::CodecError),
    #[error("gatherer identifies as `{found}`, configured as `{expected}`")]
    WrongGatherer { expected: String, found: String },
    #[error("gatherer answered for table {found} instead of {expected}")]
    WrongTable { expected: Table, found: Table },
}

impl PullError {
    /// The `kind` it is counted under in `dedup_errors_total`.
    pub fn kind(&self) -> ErrorKind {
        match self {
            PullError::Unreachable { .. } | PullError::Client(_) => ErrorKind::GathererUnreachable,
            PullError::Refused(_) => ErrorKind::GathererRefused,
            PullError::Tls { .. } | PullError::TlsFiles { .. } => ErrorKind::GathererTls,
            PullError::Unauthorized { .. } => ErrorKind::GathererUnauthorized,
            PullError::Status { .. } => ErrorKind::GathererStatus,
            PullError::Json(_) | PullError::Binary(_) => ErrorKind::GathererDecode,
            PullError::WrongGatherer { .. } | PullError::WrongTable { .. } => {
                ErrorKind::GathererIdentity
            }
        }
    }
}

/// A pull-API client for one gatherer.
#[derive(Debug, Clone)]
pub struct PullClient {
    http: reqwest::Client,
    endpoint: GathererEndpoint,
    base: String,
    /// Added to each request's long-poll wait to get its timeout.
    slack: Duration,
}

impl PullClient {
    pub fn new(endpoint: GathererEndpoint, slack: Duration) -> Result<PullClient, PullError> {
        let builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .pool_idle_timeout(Duration::from_secs(60));
        let http = crate::pull_tls::configure(builder, &endpoint)?
            .build()
            .map_err(PullError::Client)?;
        let base = endpoint.url.trim_end_matches('/').to_string();
        Ok(PullClient {
            http,
            endpoint,
            base,
            slack,
        })
    }

    pub fn id(&self) -> &str {
        &self.endpoint.id
    }

    fn authorize(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        if self.endpoint.token.is_empty() {
            req
        } else {
            req.bearer_auth(self.endpoint.token.expose())
        }
    }

    /// `GET /v1/pull/{table}?after&limit&wait_ms`.
    pub async fn pull(
        &self,
        table: Table,
        after: u64,
        limit: usize,
        wait_ms: u64,
    ) -> Result<PullResponse, PullError> {
        let url = format!("{}/v1/pull/{}", self.base, table.name());
        let req = self
            .http
            .get(url)
            .query(&[
                ("after", after.to_string()),
                ("limit", limit.to_string()),
                ("wait_ms", wait_ms.to_string()),
            ])
            // The binary page when the gatherer has it (trades, deltas, tickers), else JSON:
            // a gatherer from before the binary page ignores the header and answers JSON.
            .header(reqwest::header::ACCEPT, ACCEPT)
            .timeout(Duration::from_millis(wait_ms) + self.slack);
        let resp = self
            .authorize(req)
            .send()
            .await
            .map_err(crate::pull_tls::classify)?;
        let resp = check(resp).await?;
        let binary = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes() == codec::CONTENT_TYPE.as_bytes());
        let body = resp.bytes().await.map_err(crate::pull_tls::classify)?;
        let body: PullResponse = if binary {
            codec::decode(&body).map_err(PullError::Binary)?
        } else {
            serde_json::from_slice(&body).map_err(PullError::Json)?
        };
        if body.gatherer != self.endpoint.id {
            return Err(PullError::WrongGatherer {
                expected: self.endpoint.id.clone(),
                found: body.gatherer,
            });
        }
        if body.table != table {
            return Err(PullError::WrongTable {
                expected: table,
                found: body.table,
            });
        }
        Ok(body)
    }

    /// `POST /v1/ack/{table}`: every row ≤ `cursor` is committed in production.
    pub async fn ack(&self, table: Table, cursor: u64) -> Result<(), PullError> {
        let url = format!("{}/v1/ack/{}", self.base, table.name());
        let req = self
            .http
            .post(url)
            .json(&AckRequest { cursor })
            .timeout(self.slack);
        let resp = self
            .authorize(req)
            .send()
            .await
            .map_err(crate::pull_tls::classify)?;
        check(resp).await?;
        Ok(())
    }
}

async fn check(resp: reqwest::Response) -> Result<reqwest::Response, PullError> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
        return Err(PullError::Unauthorized {
            status: status.as_u16(),
        });
    }
    let mut body = resp.text().await.unwrap_or_default();
    body.truncate(300);
    Err(PullError::Status {
        status: status.as_u16(),
        body,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_accept_header_names_the_binary_page_first() {
        assert!(super::ACCEPT.starts_with(super::codec::CONTENT_TYPE));
    }
}
