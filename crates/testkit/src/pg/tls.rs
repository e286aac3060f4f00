//! A certificate authority made by the test, for servers and clients that speak TLS: PEM text
//! for a CA, and certificates it issues for given names (`127.0.0.1`, `localhost`) or a client
//! identity. Keys are written 0600, as PostgreSQL and libpq demand.

use crate::{Error, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use std::path::Path;

/// A test CA: its certificate in PEM and the key that signs what it issues.
pub struct TestCa {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A certificate and its private key, both PEM.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

fn failed(what: &str) -> impl Fn(rcgen::Error) -> Error + '_ {
    move |e| Error::Failed(format!("{what}: {e}"))
}

impl TestCa {
    /// A self-signed CA named `name` (its common name).
    pub fn new(name: &str) -> Result<TestCa> {
        let key = KeyPair::generate().map_err(failed("CA key"))?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(failed("CA"))?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).map_err(failed("CA certificate"))?;
        Ok(TestCa {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// The CA certificate, PEM.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// A server certificate for `names` (IP addresses become IP SANs, others DNS names).
    pub fn server(&self, names: &[&str]) -> Result<Issued> {
        let sans: Vec<String> = names.iter().map(|n| (*n).to_string()).collect();
        let mut params = CertificateParams::new(sans).map_err(failed("server names"))?;
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().copied().unwrap_or("server"),
        );
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue(params)
    }

    /// A client certificate whose common name is `user` (PostgreSQL's `cert` authentication
    /// maps the CN to the role).
    pub fn client(&self, user: &str) -> Result<Issued> {
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(failed("client"))?;
        params.distinguished_name.push(DnType::CommonName, user);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(params)
    }

    fn issue(&self, mut params: CertificateParams) -> Result<Issued> {
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        let key = KeyPair::generate().map_err(failed("key"))?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(failed("certificate"))?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// Writes `text` to `path` readable by its owner only (0600 from creation on, no window in
/// which another user could open it).
pub fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(text.as_bytes())?;
    Ok(())
}

/// A private PostgreSQL that accepts only TLS (`hostssl` lines, plain TCP refused) with a
/// certificate for `127.0.0.1` and `localhost` from a test CA, and the files a client needs:
///
/// - role `kd` (password [`TlsPg::PASSWORD`], SCRAM) owning database `kd`;
/// - role `kd_cert`, authenticated by a client certificate (`cert`), with `client.crt`/`.key`;
/// - `ca.pem` (the server's CA) and `other-ca.pem` (a CA that signed nothing here).
pub struct TlsPg {
    pub pg: super::PrivatePg,
    pub ca: std::path::PathBuf,
    pub other_ca: std::path::PathBuf,
    pub client_cert: std::path::PathBuf,
    pub client_key: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl TlsPg {
    /// The password of role `kd`; tests check that no error text contains it.
    pub const PASSWORD: &'static str = "s3cret-Pw-9d1e";

    pub fn start() -> Result<TlsPg> {
        let dir = tempfile::Builder::new().prefix("kd-tls-").tempdir()?;
        let ca = TestCa::new("kalshi-data test CA")?;
        let other = TestCa::new("kalshi-data other CA")?;
        let server = ca.server(&["127.0.0.1", "localhost"])?;
        let client = ca.client("kd_cert")?;
        let paths = |n: &str| dir.path().join(n);
        std::fs::write(paths("ca.pem"), ca.pem())?;
        std::fs::write(paths("other-ca.pem"), other.pem())?;
        std::fs::write(paths("client.crt"), &client.cert_pem)?;
        write_private(&paths("client.key"), &client.key_pem)?;
        // The server checks client certificates against the same CA.
        let hba = "local all all trust\n\
                   hostssl all postgres 127.0.0.1/32 trust\n\
                   hostssl all kd 127.0.0.1/32 scram-sha-256\n\
                   hostssl all kd_cert 127.0.0.1/32 cert\n";
        let pg = super::PrivatePg::start_tls(
            &[],
            &super::ServerTls {
                cert_pem: &server.cert_pem,
                key_pem: &server.key_pem,
                client_ca_pem: Some(ca.pem()),
                hba,
            },
        )?;
        pg.psql(
            "postgres",
            "postgres",
            &format!(
                "CREATE ROLE kd LOGIN PASSWORD '{}'; CREATE ROLE kd_cert LOGIN",
                Self::PASSWORD
            ),
        )?;
        pg.psql("postgres", "postgres", "CREATE DATABASE kd OWNER kd")?;
        pg.psql(
            "postgres",
            "postgres",
            "CREATE DATABASE kd_cert OWNER kd_cert",
        )?;
        Ok(TlsPg {
            pg,
            ca: paths("ca.pem"),
            other_ca: paths("other-ca.pem"),
            client_cert: paths("client.crt"),
            client_key: paths("client.key"),
            _dir: dir,
        })
    }

    /// `postgres://kd:PASSWORD@127.0.0.1:PORT/kd?QUERY`.
    pub fn url(&self, query: &str) -> String {
        format!(
            "postgres://kd:{}@127.0.0.1:{}/kd?{query}",
            Self::PASSWORD,
            self.pg.port
        )
    }

    /// `sslmode=verify-full&sslrootcert=<the server's CA>`.
    pub fn verify_full(&self) -> String {
        self.url(&format!(
            "sslmode=verify-full&sslrootcert={}",
            self.ca.display()
        ))
    }
}
