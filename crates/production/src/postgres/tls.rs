//! TLS to PostgreSQL with rustls, configured from libpq's URL parameters, and the one place a
//! production URL becomes a connection (the pool of [`super::PgStore`] and [`connect_client`]).
//!
//! - `sslmode`: `disable` (plain), `prefer` (the default: TLS when the server offers it, else
//!   plain), `require` (TLS, certificate not checked), `verify-ca` (chain checked, not the
//!   name), `verify-full` (chain and host name). `allow` is refused (no plain-first retry).
//! - `sslrootcert=FILE` (PEM, one or more CAs) or `sslrootcert=system` (the system roots,
//!   libpq 16: only with `verify-full`). `verify-*` without it use the system roots. As in
//!   libpq, a root file given with `prefer`/`require` makes them check the chain (`verify-ca`).
//! - `sslcert=FILE` + `sslkey=FILE`: a client certificate; the key must not be readable by
//!   others (libpq's rule: 0600, or 0640 when owned by root).
//!
//! These parameters are taken out of the URL before `tokio_postgres` parses the rest (it knows
//! none of them but `sslmode`, and not `verify-*`). Errors name the parameter and the file,
//! never the URL, so no password can leak through them.

use crate::error::StoreError;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

/// libpq's `sslmode` values this build speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// Where the trusted CAs come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Roots {
    /// The operating system's store (`SSL_CERT_FILE`, `/etc/ssl/certs`, …).
    System,
    File(PathBuf),
}

/// The TLS parameters of a production URL, and the URL without them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsParams {
    pub mode: Mode,
    /// `None`: no certificate check (`prefer`/`require` without `sslrootcert`, `disable`).
    pub roots: Option<Roots>,
    pub client: Option<(PathBuf, PathBuf)>,
    /// The URL handed to `tokio_postgres` (without the parameters above).
    pub rest: String,
}

/// A parsed production URL: the `tokio_postgres` configuration and the TLS connector.
pub struct Connect {
    pub config: tokio_postgres::Config,
    pub tls: MakeRustlsConnect,
}

/// Splits the TLS parameters out of `url` and checks their combination.
pub fn params(url: &str) -> Result<TlsParams, StoreError> {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut mode = None;
    let (mut rootcert, mut cert, mut key) = (None, None, None);
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let value = || percent_decode(v);
        match percent_decode(k)?.as_str() {
            "sslmode" => mode = Some(parse_mode(&value()?)?),
            "sslrootcert" => rootcert = Some(value()?),
            "sslcert" => cert = Some(PathBuf::from(value()?)),
            "sslkey" => key = Some(PathBuf::from(value()?)),
            "sslpassword" => {
                return Err(tls_config(
                    "sslpassword (an encrypted client key) is not supported: decrypt the key \
                     into a file readable only by this user",
                ));
            }
            _ => kept.push(pair),
        }
    }
    let roots = match rootcert.as_deref() {
        None => None,
        Some("system") => Some(Roots::System),
        Some("") => return Err(tls_config("sslrootcert is empty")),
        Some(file) => Some(Roots::File(file.into())),
    };
    let mode = match (mode, &roots) {
        (Some(m), _) => m,
        // libpq 16: `sslrootcert=system` alone means verify-full.
        (None, Some(Roots::System)) => Mode::VerifyFull,
        (None, _) => Mode::Prefer,
    };
    if roots == Some(Roots::System) && mode != Mode::VerifyFull {
        return Err(tls_config(
            "sslrootcert=system needs sslmode=verify-full (any certificate a public CA issued \
             for another name would pass a weaker check)",
        ));
    }
    let roots = match mode {
        Mode::Disable => None,
        Mode::VerifyCa | Mode::VerifyFull => Some(roots.unwrap_or(Roots::System)),
        Mode::Prefer | Mode::Require => roots,
    };
    let client = match (cert, key) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        (Some(_), None) => return Err(tls_config("sslcert is given without sslkey")),
        (None, Some(_)) => return Err(tls_config("sslkey is given without sslcert")),
    };
    let rest = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok(TlsParams {
        mode,
        roots,
        client: if mode == Mode::Disable { None } else { client },
        rest,
    })
}

/// Parses `url` into a configuration and a connector (reading the CA and client files now, so
/// a missing file stops the start rather than every connection attempt).
pub fn connect_config(url: &str) -> Result<Connect, StoreError> {
    let p = params(url)?;
    let mut config = tokio_postgres::Config::from_str(&p.rest)
        .map_err(|e| StoreError::InvalidUrl(format!("{e}")))?;
    config.ssl_mode(match p.mode {
        Mode::Disable => SslMode::Disable,
        Mode::Prefer => SslMode::Prefer,
        Mode::Require | Mode::VerifyCa | Mode::VerifyFull => SslMode::Require,
    });
    Ok(Connect {
        config,
        tls: MakeRustlsConnect::new(client_config(&p)?),
    })
}

/// One connection outside the pool (e.g. `bench` creating a scratch database), through the
/// same URL rules as the store.
pub async fn connect_client(url: &str) -> Result<tokio_postgres::Client, StoreError> {
    let c = connect_config(url)?;
    let (client, connection) = c.config.connect(c.tls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "PostgreSQL connection ended");
        }
    });
    Ok(client)
}

/// The workspace's one crypto provider (rustls' aws-lc-rs, as for reqwest and axum-server).
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn client_config(p: &TlsParams) -> Result<ClientConfig, StoreError> {
    let provider = provider();
    let algorithms = provider.signature_verification_algorithms;
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_config(&format!("TLS versions: {e}")))?;
    let verifier: Arc<dyn ServerCertVerifier> = match &p.roots {
        None => Arc::new(NoCheck(algorithms)),
        Some(roots) => {
            let store = Arc::new(root_store(roots)?);
            let webpki = WebPkiServerVerifier::builder_with_provider(store, provider)
                .build()
                .map_err(|e| tls_config(&format!("CA certificates: {e}")))?;
            if p.mode == Mode::VerifyFull {
                webpki
            } else {
                Arc::new(ChainOnly(webpki))
            }
        }
    };
    let builder = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    match &p.client {
        None => Ok(builder.with_no_client_auth()),
        Some((cert, key)) => {
            let key = read_key(key)?;
            let chain = read_certs(cert, "sslcert")?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| tls_config(&format!("sslcert/sslkey do not make a pair: {e}")))
        }
    }
}

fn root_store(roots: &Roots) -> Result<RootCertStore, StoreError> {
    let mut store = RootCertStore::empty();
    match roots {
        Roots::File(path) => {
            for cert in read_certs(path, "sslrootcert")? {
                store
                    .add(cert)
                    .map_err(|e| tls_config(&format!("sslrootcert {}: {e}", path.display())))?;
            }
        }
        Roots::System => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                let why: Vec<String> = found.errors.iter().map(|e| e.to_string()).collect();
                return Err(tls_config(&format!(
                    "no system CA certificates found ({}); install ca-certificates or give \
                     sslrootcert=FILE",
                    why.join("; ")
                )));
            }
        }
    }
    Ok(store)
}

fn read_certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, StoreError> {
    let text = std::fs::read(path)
        .map_err(|e| tls_config(&format!("{what} {}: cannot read: {e}", path.display())))?;
    let certs = CertificateDer::pem_slice_iter(&text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_config(&format!("{what} {}: not PEM: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(tls_config(&format!(
            "{what} {}: no certificate in the file",
            path.display()
        )));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, StoreError> {
    let meta = std::fs::metadata(path)
        .map_err(|e| tls_config(&format!("sslkey {}: cannot read: {e}", path.display())))?;
    key_permissions_ok(&meta)
        .map_err(|why| tls_config(&format!("sslkey {}: {why}", path.display())))?;
    let text = std::fs::read(path)
        .map_err(|e| tls_config(&format!("sslkey {}: cannot read: {e}", path.display())))?;
    PrivateKeyDer::from_pem_slice(&text).map_err(|e| {
        tls_config(&format!(
            "sslkey {}: no private key in PEM: {e}",
            path.display()
        ))
    })
}

#[cfg(unix)]
fn key_permissions_ok(meta: &std::fs::Metadata) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let mode = meta.mode() & 0o777;
    // libpq's rule: others never; the group may read only a root-owned key.
    let forbidden = if meta.uid() == 0 { 0o037 } else { 0o077 };
    if mode & forbidden != 0 {
        return Err(format!(
            "has mode {mode:o}, readable or writable by others: chmod 0600"
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn key_permissions_ok(_: &std::fs::Metadata) -> Result<(), String> {
    Ok(())
}

fn parse_mode(v: &str) -> Result<Mode, StoreError> {
    Ok(match v {
        "disable" => Mode::Disable,
        "prefer" => Mode::Prefer,
        "require" => Mode::Require,
        "verify-ca" => Mode::VerifyCa,
        "verify-full" => Mode::VerifyFull,
        "allow" => {
            return Err(tls_config(
                "sslmode=allow is not supported: use prefer (TLS when offered) or disable",
            ));
        }
        other => {
            return Err(tls_config(&format!(
                "sslmode={other} is not one of disable, prefer, require, verify-ca, verify-full"
            )));
        }
    })
}

fn percent_decode(s: &str) -> Result<String, StoreError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| tls_config("bad percent-escape in a URL parameter"))?;
                out.push(hex);
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| tls_config("a URL parameter is not UTF-8"))
}

fn tls_config(why: &str) -> StoreError {
    StoreError::Tls(why.to_string())
}

/// `prefer`/`require` without a root file: encryption only, as libpq. The handshake
/// signature is still checked, so the peer holds the key of the certificate it sent.
#[derive(Debug)]
struct NoCheck(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for NoCheck {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// `verify-ca`: the chain must lead to a trusted root; the name is not compared. WebPKI
/// checks the chain before the name, so a name error means the chain passed.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// An operator's reading of a failed TLS handshake found anywhere in `err`'s chain, e.g.
/// "server certificate not trusted (unknown issuer): …". `None` when TLS is not the cause.
pub(crate) fn describe_failure(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cur = Some(err);
    while let Some(e) = cur {
        let inner = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|i| i.downcast_ref::<rustls::Error>())
            .or_else(|| e.downcast_ref::<rustls::Error>());
        if let Some(tls) = inner {
            return Some(describe_rustls(tls));
        }
        cur = e.source();
    }
    None
}

fn describe_rustls(e: &rustls::Error) -> String {
    use rustls::Error as E;
    let why = match e {
        E::InvalidCertificate(CertificateError::UnknownIssuer) => {
            "server certificate not trusted (unknown issuer): no CA of sslrootcert (or of the \
             system roots) signed it"
        }
        E::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => {
            "server certificate does not match the host name (name mismatch): connect by a name \
             the certificate lists, or use sslmode=verify-ca"
        }
        E::InvalidCertificate(
            CertificateError::Expired | CertificateError::ExpiredContext { .. },
        ) => "server certificate expired",
        E::InvalidCertificate(
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. },
        ) => "server certificate not valid yet (check the clock)",
        E::InvalidCertificate(_) => "server certificate rejected",
        E::AlertReceived(_) => {
            "the server ended the TLS handshake (a client certificate missing or not trusted by \
             the server, or no common TLS version)"
        }
        _ => "TLS handshake failed",
    };
    format!("{why} [{e}]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_parameters_are_taken_out_of_the_url() {
        let p = params(
            "postgres://u:pw@h:5/db?application_name=x&sslmode=verify-full&sslrootcert=%2Ftmp%2Fca%20b.pem",
        )
        .expect("params");
        assert_eq!(p.mode, Mode::VerifyFull);
        assert_eq!(p.roots, Some(Roots::File("/tmp/ca b.pem".into())));
        assert_eq!(p.rest, "postgres://u:pw@h:5/db?application_name=x");
    }

    #[test]
    fn libpq_defaults_hold() {
        let p = params("postgres://h/db").expect("params");
        assert_eq!((p.mode, p.roots), (Mode::Prefer, None));
        let p = params("postgres://h/db?sslmode=verify-ca").expect("params");
        assert_eq!(p.roots, Some(Roots::System));
        let p = params("postgres://h/db?sslrootcert=system").expect("params");
        assert_eq!(p.mode, Mode::VerifyFull);
        // A root file given with require checks the chain, as libpq does.
        let p = params("postgres://h/db?sslmode=require&sslrootcert=/ca.pem").expect("params");
        assert_eq!(p.roots, Some(Roots::File("/ca.pem".into())));
        let p = params("postgres://h/db?sslmode=disable&sslrootcert=/ca.pem").expect("params");
        assert_eq!(p.roots, None);
    }

    #[test]
    fn bad_combinations_are_refused_by_name() {
        for (url, want) in [
            ("postgres://h/db?sslmode=allow", "sslmode=allow"),
            ("postgres://h/db?sslmode=bogus", "sslmode=bogus"),
            (
                "postgres://h/db?sslmode=require&sslrootcert=system",
                "verify-full",
            ),
            ("postgres://h/db?sslcert=/c.pem", "without sslkey"),
            (
                "postgres://u:hunter2@h/db?sslpassword=hunter2",
                "sslpassword",
            ),
        ] {
            let err = params(url).map(|_| ()).expect_err(url).to_string();
            assert!(err.contains(want), "{url}: {err}");
            assert!(!err.contains("hunter2"), "{err}");
        }
    }

    #[test]
    fn a_missing_file_is_named() {
        let err = connect_config(
            "postgres://u:hunter2@h/db?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
        )
        .map(|_| ())
        .expect_err("missing CA file")
        .to_string();
        assert!(
            err.contains("sslrootcert /nonexistent/ca.pem: cannot read"),
            "{err}"
        );
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn a_key_readable_by_others_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("temp dir");
        let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        std::fs::write(&cert, "").expect("write");
        std::fs::write(&key, "").expect("write");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let url = format!(
            "postgres://h/db?sslmode=require&sslcert={}&sslkey={}",
            cert.display(),
            key.display()
        );
        let err = connect_config(&url)
            .map(|_| ())
            .expect_err("0644 key")
            .to_string();
        assert!(
            err.contains("mode 644") && err.contains("chmod 0600"),
            "{err}"
        );
    }
}
