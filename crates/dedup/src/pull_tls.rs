//! TLS towards one gatherer: its private CA (`ca_path`) and an optional client certificate,
//! set on that gatherer's client only, so Kalshi's REST API keeps the system roots (unlike
//! `SSL_CERT_FILE`, which would change both); and a failed request's cause in words (unknown
//! issuer, name mismatch, refused), found in the error chain that reqwest sums up as "error
//! sending request".

use crate::config::GathererEndpoint;
use crate::pull_client::PullError;
use rustls::{AlertDescription, CertificateError};
use std::error::Error as _;
use std::path::Path;

fn read(endpoint: &GathererEndpoint, key: &'static str, path: &Path) -> Result<Vec<u8>, PullError> {
    std::fs::read(path).map_err(|e| files_error(endpoint, key, path, e.to_string()))
}

fn files_error(
    endpoint: &GathererEndpoint,
    key: &'static str,
    path: &Path,
    reason: String,
) -> PullError {
    PullError::TlsFiles {
        gatherer: endpoint.id.clone(),
        key,
        path: path.display().to_string(),
        reason,
    }
}

/// Adds `endpoint`'s CA (only these roots: a private link should not accept a certificate any
/// public CA issued for that name) and client identity to `builder`. Bad files fail the start.
pub fn configure(
    mut builder: reqwest::ClientBuilder,
    endpoint: &GathererEndpoint,
) -> Result<reqwest::ClientBuilder, PullError> {
    if let Some(path) = &endpoint.ca_path {
        let pem = read(endpoint, "ca_path", path)?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| files_error(endpoint, "ca_path", path, e.to_string()))?;
        if certs.is_empty() {
            return Err(files_error(
                endpoint,
                "ca_path",
                path,
                "no PEM certificate in the file".into(),
            ));
        }
        builder = builder.tls_certs_only(certs);
    }
    if let (Some(cert), Some(key)) = (&endpoint.client_cert_path, &endpoint.client_key_path) {
        let mut pem = read(endpoint, "client_cert_path", cert)?;
        pem.push(b'\n');
        pem.extend(read(endpoint, "client_key_path", key)?);
        // The error names the files, never their contents (the key is a secret).
        let identity = reqwest::Identity::from_pem(&pem).map_err(|_| {
            files_error(
                endpoint,
                "client_cert_path",
                cert,
                format!(
                    "with client_key_path {}: not a PEM certificate and private key",
                    key.display()
                ),
            )
        })?;
        builder = builder.identity(identity);
    }
    Ok(builder)
}

/// What a certificate problem means for the operator.
fn certificate_reason(e: &CertificateError) -> String {
    match e {
        CertificateError::UnknownIssuer => {
            "the gatherer's certificate is not signed by a trusted CA \
             (unknown issuer): set `ca_path` to the CA that issued it"
                .into()
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            format!(
                "the gatherer's certificate is not valid for the host name in `url` (name mismatch: {e})"
            )
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            format!("the gatherer's certificate has expired ({e})")
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            format!("the gatherer's certificate is not valid yet ({e})")
        }
        other => format!("the gatherer's certificate was refused: {other}"),
    }
}

fn tls_reason(e: &rustls::Error) -> String {
    match e {
        rustls::Error::InvalidCertificate(c) => certificate_reason(c),
        rustls::Error::AlertReceived(
            AlertDescription::CertificateRequired
            | AlertDescription::BadCertificate
            | AlertDescription::UnknownCA,
        ) => format!(
            "the gatherer refused our client certificate or wants one ({e}): check \
             client_cert_path / client_key_path"
        ),
        other => other.to_string(),
    }
}

/// The next error of a chain: an `io::Error` hides its inner error from `source()` (and
/// hyper-util nests one inside another), so it is opened with `get_ref`.
fn next_cause<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a (dyn std::error::Error + 'static)> {
    if let Some(inner) = err
        .downcast_ref::<std::io::Error>()
        .and_then(|io| io.get_ref())
    {
        let inner: &(dyn std::error::Error + 'static) = inner;
        return Some(inner);
    }
    err.source()
}

/// The typed cause of a failed request, found by walking its error chain.
pub fn classify(e: reqwest::Error) -> PullError {
    let mut reason = None;
    let mut refused = false;
    let mut last = e.to_string();
    let mut next: Option<&(dyn std::error::Error + 'static)> = e.source();
    while let Some(err) = next {
        last = err.to_string();
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            reason = Some(tls_reason(tls));
            break;
        }
        if err
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
        {
            refused = true;
            break;
        }
        next = next_cause(err);
    }
    if let Some(reason) = reason {
        return PullError::Tls { reason, source: e };
    }
    if refused {
        return PullError::Refused(e);
    }
    // Otherwise the innermost cause is the specific one ("dns error: …", "connection reset").
    let reason = if e.is_timeout() {
        "timed out".to_string()
    } else {
        last
    };
    PullError::Unreachable { reason, source: e }
}
