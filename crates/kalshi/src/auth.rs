//! Kalshi request signing, the matching verifier, and key generation.
//!
//! Kalshi authenticates a REST request or a WebSocket handshake with three headers:
//! `KALSHI-ACCESS-KEY` (the key id), `KALSHI-ACCESS-TIMESTAMP` (Unix milliseconds) and
//! `KALSHI-ACCESS-SIGNATURE`: base64 (standard alphabet, padded) of an RSA-PSS signature with
//! SHA-256, MGF1-SHA-256 and a salt as long as the digest (32 bytes) over the text
//! `timestamp_ms + METHOD + path`. The path excludes the query string (it is cut here, so a
//! caller cannot get it wrong) and includes the API prefix: `GET/trade-api/v2/markets`, or
//! `GET/trade-api/ws/v2` for the WebSocket.
//!
//! Ed25519 API keys (which Kalshi also accepts) sign the same text; the key type is read from
//! the PEM, so callers never choose.
//!
//! [`Verifier`] is the other half, used by the simulator to answer 401 on a bad signature.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey};
use rsa::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding,
};
use rsa::pss::{Signature, SigningKey, VerifyingKey};
use rsa::signature::{SignatureEncoding, Signer as _, Verifier as _};
use rsa::{PrivateKey as RsaPrivateKey, PublicKey as RsaPublicKey};
use sha2::Sha256;
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Header carrying the API key id.
pub const HEADER_KEY: &str = "KALSHI-ACCESS-KEY";
/// Header carrying the signing time in Unix milliseconds.
pub const HEADER_TIMESTAMP: &str = "KALSHI-ACCESS-TIMESTAMP";
/// Header carrying the base64 RSA-PSS signature.
pub const HEADER_SIGNATURE: &str = "KALSHI-ACCESS-SIGNATURE";

/// PSS salt length: the SHA-256 digest length, as Kalshi requires.
const SALT_LEN: usize = 32;
/// Smallest modulus accepted from [`generate_keypair`] (the `rsa` crate's own floor).
const MIN_BITS: usize = 1024;

/// Everything that can go wrong while loading keys, signing or verifying.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The PEM text is not an RSA (PKCS#8, PKCS#1) or Ed25519 (PKCS#8) private key.
    #[error("private key is not an RSA (PKCS#8 or PKCS#1) or Ed25519 (PKCS#8) PEM: {reason}")]
    BadPrivateKey { reason: String },
    /// The PEM text is not an RSA (SPKI, PKCS#1) or Ed25519 (SPKI) public key.
    #[error("public key is not an RSA (SPKI or PKCS#1) or Ed25519 (SPKI) PEM: {reason}")]
    BadPublicKey { reason: String },
    /// The key file cannot be read or written.
    #[error("key file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The private key file can be read by group or others.
    #[error("key file {path} is readable by other users (mode {mode:o}); run `chmod 600 {path}`")]
    InsecurePermissions { path: PathBuf, mode: u32 },
    /// The key pair file would overwrite an existing file.
    #[error("{path} already exists; refusing to overwrite a key")]
    AlreadyExists { path: PathBuf },
    /// The RSA operation itself failed (key generation, signing).
    #[error("RSA operation failed: {0}")]
    Crypto(String),
    /// The key id is empty or not printable ASCII (it travels in an HTTP header).
    #[error("API key id must be non-empty printable ASCII without spaces")]
    BadKeyId,
    /// No public key is registered under this key id.
    #[error("unknown API key id")]
    UnknownKey,
    /// The signature header is not valid base64.
    #[error("signature is not valid base64")]
    BadEncoding,
    /// The signature does not match the key and the signed text.
    #[error("signature does not verify")]
    BadSignature,
    /// The timestamp header is not an integer.
    #[error("timestamp is not integer milliseconds")]
    BadTimestamp,
    /// The system clock is before 1970.
    #[error("system clock is before the Unix epoch")]
    Clock,
}

/// Signs requests for one API key. `Debug` shows the key id, never the key.
#[derive(Clone)]
pub struct Signer {
    key_id: String,
    key: PrivateKind,
}

/// The private key, by algorithm.
#[derive(Clone)]
enum PrivateKind {
    // The PSS signing key (salt length fixed to 32) built once from the private key.
    Rsa(Box<SigningKey<Sha256>>),
    Ed25519(Box<ed25519_dalek::SigningKey>),
}

/// A registered public key, by algorithm.
#[derive(Debug, Clone)]
enum PublicKind {
    Rsa(RsaPublicKey),
    Ed25519(ed25519_dalek::VerifyingKey),
}

/// The algorithm of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// RSA-PSS with SHA-256 (Kalshi's long-standing key type).
    Rsa,
    /// Ed25519.
    Ed25519,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("key_id", &self.key_id)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// The three authentication headers for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthHeaders {
    pub key_id: String,
    pub timestamp_ms: String,
    pub signature: String,
}

impl AuthHeaders {
    /// `(header name, value)` pairs, ready to put on a request.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            (HEADER_KEY, self.key_id.as_str()),
            (HEADER_TIMESTAMP, self.timestamp_ms.as_str()),
            (HEADER_SIGNATURE, self.signature.as_str()),
        ]
        .into_iter()
    }
}

impl Signer {
    /// Loads a PKCS#8 (`BEGIN PRIVATE KEY`) or PKCS#1 (`BEGIN RSA PRIVATE KEY`) PEM.
    pub fn from_pem(key_id: &str, pem: &str) -> Result<Self, AuthError> {
        if key_id.is_empty() || !key_id.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(AuthError::BadKeyId);
        }
        Ok(Signer {
            key_id: key_id.to_owned(),
            key: parse_private_pem(pem)?,
        })
    }

    /// Loads a PEM key file, refusing one that group or others can read (a leaked trading key
    /// is worse than a start-up error).
    pub fn from_file(key_id: &str, path: &Path) -> Result<Self, AuthError> {
        check_private_permissions(path)?;
        let pem = std::fs::read_to_string(path).map_err(|source| AuthError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_pem(key_id, &pem)
    }

    /// The API key id this signer signs for.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The key's algorithm.
    pub fn kind(&self) -> KeyKind {
        match &self.key {
            PrivateKind::Rsa(_) => KeyKind::Rsa,
            PrivateKind::Ed25519(_) => KeyKind::Ed25519,
        }
    }

    /// The public half as an SPKI PEM (`BEGIN PUBLIC KEY`), e.g. for [`Verifier::add_pem`].
    pub fn public_key_pem(&self) -> Result<String, AuthError> {
        let pem = match &self.key {
            PrivateKind::Rsa(k) => {
                let key: &RsaPrivateKey = (**k).as_ref();
                key.to_public_key().to_public_key_pem(LineEnding::LF)
            }
            PrivateKind::Ed25519(k) => k.verifying_key().to_public_key_pem(LineEnding::LF),
        };
        pem.map_err(|e| AuthError::Crypto(e.to_string()))
    }

    /// Headers for `method` on `path`, signed now.
    pub fn headers(&self, method: &str, path: &str) -> Result<AuthHeaders, AuthError> {
        self.headers_at(now_ms()?, method, path)
    }

    /// Headers signed for a given time (tests and known-answer checks).
    pub fn headers_at(
        &self,
        ts_ms: i64,
        method: &str,
        path: &str,
    ) -> Result<AuthHeaders, AuthError> {
        let timestamp_ms = ts_ms.to_string();
        let text = signed_text(&timestamp_ms, method, path);
        let raw: Vec<u8> = match &self.key {
            PrivateKind::Rsa(k) => {
                let signature: Signature = k
                    .try_sign(text.as_bytes())
                    .map_err(|e| AuthError::Crypto(e.to_string()))?;
                signature.to_vec()
            }
            PrivateKind::Ed25519(k) => {
                use ed25519_dalek::Signer as _;
                k.sign(text.as_bytes()).to_bytes().to_vec()
            }
        };
        Ok(AuthHeaders {
            key_id: self.key_id.clone(),
            timestamp_ms,
            signature: BASE64.encode(raw),
        })
    }
}

/// A `--auth KEY_ID=PEM` argument that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyArgError {
    #[error("--auth `{0}`: expected KEY_ID=PUBLIC_KEY_PEM_FILE")]
    Syntax(String),
    #[error("--auth key file {path}: {source}")]
    File {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// Splits a `--auth KEY_ID=PEM` argument into the key id and the public key's PEM text: the
/// PEM inline, or read from the path given.
pub fn key_arg(arg: &str) -> Result<(String, String), KeyArgError> {
    let (id, pem) = arg
        .split_once('=')
        .ok_or_else(|| KeyArgError::Syntax(arg.to_string()))?;
    let pem = if pem.trim_start().starts_with("-----BEGIN") {
        pem.to_string()
    } else {
        std::fs::read_to_string(pem).map_err(|source| KeyArgError::File {
            path: std::path::PathBuf::from(pem),
            source,
        })?
    };
    Ok((id.to_string(), pem))
}

/// Why [`Verifier::check_headers`] refused a request; [`Refusal::message`] is the 401 body's
/// `message`, which `up`'s preflight reads to name what is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A `KALSHI-ACCESS-*` header is missing.
    Missing,
    /// No public key is registered under the key id.
    UnknownKey,
    /// The key id is known and the signature does not verify with its public key.
    BadSignature,
}

impl Refusal {
    pub fn message(self) -> &'static str {
        match self {
            Refusal::Missing => "missing KALSHI-ACCESS-KEY, -TIMESTAMP or -SIGNATURE header",
            Refusal::UnknownKey => "unknown API key id",
            Refusal::BadSignature => "invalid API key signature",
        }
    }
}

/// Checks signatures against registered public keys (the simulator's side).
#[derive(Debug, Clone, Default)]
pub struct Verifier {
    keys: HashMap<String, PublicKind>,
}

impl Verifier {
    /// An empty verifier: every key id is unknown.
    pub fn new() -> Self {
        Verifier::default()
    }

    /// Registers an SPKI (`BEGIN PUBLIC KEY`, RSA or Ed25519) or PKCS#1 (`BEGIN RSA PUBLIC
    /// KEY`) PEM under `key_id`, replacing an earlier key of that id.
    pub fn add_pem(&mut self, key_id: &str, public_pem: &str) -> Result<(), AuthError> {
        let key = parse_public_pem(public_pem)?;
        self.keys.insert(key_id.to_owned(), key);
        Ok(())
    }

    /// Registers an already parsed RSA public key.
    pub fn add_key(&mut self, key_id: &str, key: RsaPublicKey) {
        self.keys.insert(key_id.to_owned(), PublicKind::Rsa(key));
    }

    /// Verifies one request's headers. `path` may carry a query string; it is cut before
    /// verifying, as on the signing side. Timestamp freshness is the caller's policy.
    pub fn verify(
        &self,
        key_id: &str,
        ts_ms: &str,
        method: &str,
        path: &str,
        signature_b64: &str,
    ) -> Result<(), AuthError> {
        let key = self.keys.get(key_id).ok_or(AuthError::UnknownKey)?;
        if ts_ms.parse::<i64>().is_err() {
            return Err(AuthError::BadTimestamp);
        }
        let raw = BASE64
            .decode(signature_b64.trim())
            .map_err(|_| AuthError::BadEncoding)?;
        let text = signed_text(ts_ms, method, path);
        match key {
            PublicKind::Rsa(key) => {
                let signature =
                    Signature::try_from(raw.as_slice()).map_err(|_| AuthError::BadSignature)?;
                VerifyingKey::<Sha256>::new_with_salt_len(key.clone(), SALT_LEN)
                    .verify(text.as_bytes(), &signature)
                    .map_err(|_| AuthError::BadSignature)
            }
            PublicKind::Ed25519(key) => {
                let signature = ed25519_dalek::Signature::from_slice(&raw)
                    .map_err(|_| AuthError::BadSignature)?;
                key.verify_strict(text.as_bytes(), &signature)
                    .map_err(|_| AuthError::BadSignature)
            }
        }
    }

    /// Verifies a request by its three `KALSHI-ACCESS-*` headers, read through `header` (the
    /// simulator's and the replay server's one check); false when one is missing or wrong.
    pub fn verify_headers<'a>(
        &self,
        header: impl Fn(&'static str) -> Option<&'a str>,
        method: &str,
        path: &str,
    ) -> bool {
        self.check_headers(header, method, path).is_ok()
    }

    /// [`Verifier::verify_headers`] saying why a request is refused, so a 401 can tell a
    /// client whether its key id or its private key is wrong.
    pub fn check_headers<'a>(
        &self,
        header: impl Fn(&'static str) -> Option<&'a str>,
        method: &str,
        path: &str,
    ) -> Result<(), Refusal> {
        match (
            header(HEADER_KEY),
            header(HEADER_TIMESTAMP),
            header(HEADER_SIGNATURE),
        ) {
            (Some(key), Some(ts), Some(sig)) => match self.verify(key, ts, method, path, sig) {
                Ok(()) => Ok(()),
                Err(AuthError::UnknownKey) => Err(Refusal::UnknownKey),
                Err(_) => Err(Refusal::BadSignature),
            },
            _ => Err(Refusal::Missing),
        }
    }

    /// Number of registered keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when no key is registered.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// The exact text Kalshi signs: timestamp, upper-case method, path without its query string.
pub fn signed_text(ts_ms: &str, method: &str, path: &str) -> String {
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    format!("{ts_ms}{}{path}", method.to_ascii_uppercase())
}

/// Generates an RSA key pair: (private PKCS#8 PEM, public SPKI PEM).
pub fn generate_keypair(bits: usize) -> Result<(String, String), AuthError> {
    if bits < MIN_BITS {
        return Err(AuthError::Crypto(format!(
            "key size {bits} is below {MIN_BITS} bits"
        )));
    }
    let key = RsaPrivateKey::new(&mut rand::rngs::SysRng, bits)
        .map_err(|e| AuthError::Crypto(e.to_string()))?;
    let private = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| AuthError::Crypto(e.to_string()))?;
    let public = key
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| AuthError::Crypto(e.to_string()))?;
    Ok((private.as_str().to_owned(), public))
}

/// Default key size of [`write_keypair`] (Kalshi issues 2048-bit keys).
pub const DEFAULT_BITS: usize = 2048;

/// Writes `dir/NAME.pem` (private, mode 0600, created exclusively) and `dir/NAME.pub.pem`.
/// Refuses to overwrite either file.
pub fn write_keypair(dir: &Path, name: &str) -> Result<(PathBuf, PathBuf), AuthError> {
    write_keypair_bits(dir, name, DEFAULT_BITS)
}

/// [`write_keypair`] with a chosen key size.
pub fn write_keypair_bits(
    dir: &Path,
    name: &str,
    bits: usize,
) -> Result<(PathBuf, PathBuf), AuthError> {
    let private_path = dir.join(format!("{name}.pem"));
    let public_path = dir.join(format!("{name}.pub.pem"));
    for path in [&private_path, &public_path] {
        if path.exists() {
            return Err(AuthError::AlreadyExists { path: path.clone() });
        }
    }
    std::fs::create_dir_all(dir).map_err(|source| AuthError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let (private, public) = generate_keypair(bits)?;
    write_new_file(&private_path, private.as_bytes(), 0o600)?;
    write_new_file(&public_path, public.as_bytes(), 0o644)?;
    Ok((private_path, public_path))
}

fn write_new_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), AuthError> {
    use std::io::Write as _;
    let io = |source| AuthError::Io {
        path: path.to_owned(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        // The mode is applied at creation so the private key is never readable by others,
        // not even for an instant.
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path).map_err(io)?;
    file.write_all(contents).map_err(io)?;
    file.sync_all().map_err(io)
}

fn check_private_permissions(path: &Path) -> Result<(), AuthError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let meta = std::fs::metadata(path).map_err(|source| AuthError::Io {
            path: path.to_owned(),
            source,
        })?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(AuthError::InsecurePermissions {
                path: path.to_owned(),
                mode,
            });
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

fn parse_private_pem(pem: &str) -> Result<PrivateKind, AuthError> {
    let pem = pem.trim();
    if pem.starts_with("-----BEGIN RSA PRIVATE KEY-----") {
        return RsaPrivateKey::from_pkcs1_pem(pem)
            .map(|k| PrivateKind::Rsa(Box::new(SigningKey::new_with_salt_len(k, SALT_LEN))))
            .map_err(|e| AuthError::BadPrivateKey {
                reason: e.to_string(),
            });
    }
    // PKCS#8 names its algorithm inside: try RSA, then Ed25519.
    match RsaPrivateKey::from_pkcs8_pem(pem) {
        Ok(k) => Ok(PrivateKind::Rsa(Box::new(SigningKey::new_with_salt_len(
            k, SALT_LEN,
        )))),
        Err(rsa_err) => ed25519_dalek::SigningKey::from_pkcs8_pem(pem)
            .map(|k| PrivateKind::Ed25519(Box::new(k)))
            .map_err(|_| AuthError::BadPrivateKey {
                reason: rsa_err.to_string(),
            }),
    }
}

fn parse_public_pem(pem: &str) -> Result<PublicKind, AuthError> {
    let pem = pem.trim();
    if pem.starts_with("-----BEGIN RSA PUBLIC KEY-----") {
        return RsaPublicKey::from_pkcs1_pem(pem)
            .map(PublicKind::Rsa)
            .map_err(|e| AuthError::BadPublicKey {
                reason: e.to_string(),
            });
    }
    match RsaPublicKey::from_public_key_pem(pem) {
        Ok(k) => Ok(PublicKind::Rsa(k)),
        Err(rsa_err) => ed25519_dalek::VerifyingKey::from_public_key_pem(pem)
            .map(PublicKind::Ed25519)
            .map_err(|_| AuthError::BadPublicKey {
                reason: rsa_err.to_string(),
            }),
    }
}

fn now_ms() -> Result<i64, AuthError> {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|_| AuthError::Clock)?;
    i64::try_from(since.as_millis()).map_err(|_| AuthError::Clock)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_text_cuts_query_and_uppercases_method() {
        assert_eq!(
            signed_text(
                "1700000000000",
                "get",
                "/trade-api/v2/markets?limit=5&cursor=x"
            ),
            "1700000000000GET/trade-api/v2/markets"
        );
        assert_eq!(
            signed_text("1", "GET", "/trade-api/ws/v2"),
            "1GET/trade-api/ws/v2"
        );
    }

    #[test]
    fn debug_redacts_the_key() -> Result<(), AuthError> {
        let (private, _) = generate_keypair(1024)?;
        let signer = Signer::from_pem("key-1", &private)?;
        let shown = format!("{signer:?}");
        assert!(shown.contains("key-1") && shown.contains("redacted"));
        assert!(!shown.contains("BEGIN"));
        Ok(())
    }
}
