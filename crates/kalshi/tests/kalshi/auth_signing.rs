//! Request signing: round trips, tampering, key formats, file permissions, and interoperability
//! with independent RSA-PSS implementations (OpenSSL's CLI and Python's `cryptography`, the
//! library of Kalshi's own example code) when they are installed.

use kd_kalshi::auth::{
    AuthError, HEADER_KEY, HEADER_SIGNATURE, HEADER_TIMESTAMP, Signer, Verifier, generate_keypair,
    signed_text, write_keypair_bits,
};
use rsa::pkcs1::{EncodeRsaPrivateKey, EncodeRsaPublicKey};
use rsa::pkcs8::{DecodePrivateKey, LineEnding};
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// One 2048-bit key pair shared by the tests of this binary (generation costs ~a second).
fn keypair() -> &'static (String, String) {
    static PAIR: OnceLock<(String, String)> = OnceLock::new();
    PAIR.get_or_init(|| generate_keypair(2048).expect("key generation"))
}

fn verifier_for(key_id: &str, public_pem: &str) -> Result<Verifier, AuthError> {
    let mut v = Verifier::new();
    v.add_pem(key_id, public_pem)?;
    Ok(v)
}

#[test]
fn sign_then_verify_round_trip() -> TestResult {
    let (private, public) = keypair();
    let signer = Signer::from_pem("key-a", private)?;
    let verifier = verifier_for("key-a", public)?;
    let h = signer.headers_at(1_700_000_000_123, "GET", "/trade-api/v2/markets")?;
    assert_eq!(h.key_id, "key-a");
    assert_eq!(h.timestamp_ms, "1700000000123");
    verifier.verify(
        &h.key_id,
        &h.timestamp_ms,
        "GET",
        "/trade-api/v2/markets",
        &h.signature,
    )?;

    let names: Vec<_> = h.iter().map(|(n, _)| n).collect();
    assert_eq!(names, [HEADER_KEY, HEADER_TIMESTAMP, HEADER_SIGNATURE]);

    // `headers` uses the clock: the timestamp is near now and the signature verifies.
    let now = signer.headers("GET", "/trade-api/ws/v2")?;
    let ts: i64 = now.timestamp_ms.parse()?;
    assert!(ts > 1_700_000_000_000);
    verifier.verify(
        "key-a",
        &now.timestamp_ms,
        "GET",
        "/trade-api/ws/v2",
        &now.signature,
    )?;
    Ok(())
}

#[test]
fn pss_signatures_are_randomised_and_all_verify() -> TestResult {
    let (private, public) = keypair();
    let signer = Signer::from_pem("k", private)?;
    let verifier = verifier_for("k", public)?;
    let a = signer.headers_at(1, "GET", "/p")?;
    let b = signer.headers_at(1, "GET", "/p")?;
    assert_ne!(a.signature, b.signature, "PSS uses a random salt");
    verifier.verify("k", "1", "GET", "/p", &a.signature)?;
    verifier.verify("k", "1", "GET", "/p", &b.signature)?;
    Ok(())
}

#[test]
fn query_string_is_not_signed() -> TestResult {
    let (private, public) = keypair();
    let signer = Signer::from_pem("k", private)?;
    let verifier = verifier_for("k", public)?;
    let h = signer.headers_at(5, "GET", "/trade-api/v2/markets?limit=1000&cursor=abc")?;
    // The server sees the same path with or without the query: both verify.
    verifier.verify("k", "5", "GET", "/trade-api/v2/markets", &h.signature)?;
    verifier.verify(
        "k",
        "5",
        "GET",
        "/trade-api/v2/markets?cursor=zzz",
        &h.signature,
    )?;
    assert_eq!(signed_text("5", "GET", "/a?b"), "5GET/a");
    Ok(())
}

#[test]
fn tampering_is_rejected() -> TestResult {
    let (private, public) = keypair();
    let signer = Signer::from_pem("k", private)?;
    let verifier = verifier_for("k", public)?;
    let h = signer.headers_at(1_000, "GET", "/trade-api/v2/markets")?;
    let bad = |r: Result<(), AuthError>| matches!(r, Err(AuthError::BadSignature));
    assert!(bad(verifier.verify(
        "k",
        "1000",
        "GET",
        "/trade-api/v2/events",
        &h.signature
    )));
    assert!(bad(verifier.verify(
        "k",
        "1001",
        "GET",
        "/trade-api/v2/markets",
        &h.signature
    )));
    assert!(bad(verifier.verify(
        "k",
        "1000",
        "POST",
        "/trade-api/v2/markets",
        &h.signature
    )));
    assert!(bad(verifier.verify(
        "k",
        "1000",
        "GET",
        "/trade-api/v2/markets",
        "AAAA"
    )));
    assert!(matches!(
        verifier.verify(
            "other",
            "1000",
            "GET",
            "/trade-api/v2/markets",
            &h.signature
        ),
        Err(AuthError::UnknownKey)
    ));
    assert!(matches!(
        verifier.verify("k", "1000", "GET", "/trade-api/v2/markets", "not base64!"),
        Err(AuthError::BadEncoding)
    ));
    assert!(matches!(
        verifier.verify("k", "soon", "GET", "/trade-api/v2/markets", &h.signature),
        Err(AuthError::BadTimestamp)
    ));
    Ok(())
}

#[test]
fn wrong_key_is_rejected() -> TestResult {
    let (private, _) = keypair();
    let (_, other_public) = generate_keypair(1024)?;
    let signer = Signer::from_pem("k", private)?;
    let verifier = verifier_for("k", &other_public)?;
    let h = signer.headers_at(1, "GET", "/x")?;
    assert!(matches!(
        verifier.verify("k", "1", "GET", "/x", &h.signature),
        Err(AuthError::BadSignature)
    ));
    Ok(())
}

#[test]
fn pkcs1_and_pkcs8_inputs_are_accepted() -> TestResult {
    let (pkcs8_private, _) = keypair();
    let key = rsa::PrivateKey::from_pkcs8_pem(pkcs8_private)?;
    let pkcs1_private = key.to_pkcs1_pem(LineEnding::LF)?;
    assert!(pkcs1_private.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    let pkcs1_public = key.to_public_key().to_pkcs1_pem(LineEnding::LF)?;
    assert!(pkcs1_public.starts_with("-----BEGIN RSA PUBLIC KEY-----"));

    let from_pkcs1 = Signer::from_pem("k", &pkcs1_private)?;
    let verifier = verifier_for("k", &pkcs1_public)?;
    let h = from_pkcs1.headers_at(7, "GET", "/trade-api/ws/v2")?;
    verifier.verify("k", "7", "GET", "/trade-api/ws/v2", &h.signature)?;
    // CRLF line endings and surrounding whitespace (Windows-edited files) are fine too.
    let crlf = format!("\n{}\n", pkcs8_private.replace('\n', "\r\n"));
    Signer::from_pem("k", &crlf)?;

    assert!(matches!(
        Signer::from_pem(
            "k",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"
        ),
        Err(AuthError::BadPrivateKey { .. })
    ));
    assert!(matches!(
        Signer::from_pem("k", ""),
        Err(AuthError::BadPrivateKey { .. })
    ));
    let mut v = Verifier::new();
    assert!(matches!(
        v.add_pem("k", "garbage"),
        Err(AuthError::BadPublicKey { .. })
    ));
    Ok(())
}

#[cfg(unix)]
#[test]
fn key_files_are_private_and_checked() -> TestResult {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir()?;
    let (private_path, public_path) = write_keypair_bits(dir.path(), "test", 1024)?;
    assert_eq!(private_path, dir.path().join("test.pem"));
    assert_eq!(public_path, dir.path().join("test.pub.pem"));
    assert_eq!(
        std::fs::metadata(&private_path)?.permissions().mode() & 0o777,
        0o600
    );

    let signer = Signer::from_file("k", &private_path)?;
    let verifier = verifier_for("k", &std::fs::read_to_string(&public_path)?)?;
    let h = signer.headers_at(9, "GET", "/y")?;
    verifier.verify("k", "9", "GET", "/y", &h.signature)?;

    // Refuses to overwrite.
    assert!(matches!(
        write_keypair_bits(dir.path(), "test", 1024),
        Err(AuthError::AlreadyExists { .. })
    ));

    // A group-readable key is refused, and the message says how to fix it.
    std::fs::set_permissions(&private_path, std::fs::Permissions::from_mode(0o640))?;
    let err = Signer::from_file("k", &private_path)
        .err()
        .ok_or("group-readable key accepted")?;
    assert!(matches!(err, AuthError::InsecurePermissions { .. }));
    assert!(
        err.to_string()
            .contains(&format!("chmod 600 {}", private_path.display()))
    );

    let missing = Signer::from_file("k", &dir.path().join("nope.pem"));
    assert!(matches!(missing, Err(AuthError::Io { .. })));
    Ok(())
}

/// Runs a command, or returns `None` when the tool is not installed (the interop tests then
/// say so and pass: CI images without OpenSSL or Python still run everything else).
fn run(cmd: &mut Command) -> Option<std::process::Output> {
    match cmd.output() {
        Ok(out) => Some(out),
        Err(e) => {
            eprintln!("skipping interop check: {cmd:?}: {e}");
            None
        }
    }
}

fn write(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

#[test]
fn openssl_verifies_our_signature_and_we_verify_its() -> TestResult {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    // OpenSSL makes its own PKCS#1 ("traditional") key: an independent key encoder too.
    let Some(out) = run(Command::new("openssl")
        .args(["genrsa", "-traditional", "-out"])
        .arg(d.join("k1.pem"))
        .arg("2048"))
    else {
        return Ok(());
    };
    assert!(
        out.status.success(),
        "openssl genrsa: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new("openssl")
        .args(["rsa", "-pubout", "-in"])
        .arg(d.join("k1.pem"))
        .arg("-out")
        .arg(d.join("k1.pub.pem"))
        .output()?;
    assert!(out.status.success());
    let private = std::fs::read_to_string(d.join("k1.pem"))?;
    assert!(private.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    let public = std::fs::read_to_string(d.join("k1.pub.pem"))?;
    let signer = Signer::from_pem("k", &private)?;
    let verifier = verifier_for("k", &public)?;

    let pss = [
        "-sigopt",
        "rsa_padding_mode:pss",
        "-sigopt",
        "rsa_pss_saltlen:32",
        "-sigopt",
        "rsa_mgf1_md:sha256",
    ];

    // Ours → OpenSSL. Salt length fixed to 32 on the verifying side, so a different salt
    // length on ours would fail here.
    let h = signer.headers_at(
        1_703_123_456_789,
        "GET",
        "/trade-api/v2/portfolio/balance?x=1",
    )?;
    let text = "1703123456789GET/trade-api/v2/portfolio/balance";
    write(&d.join("msg.txt"), text)?;
    use base64::Engine as _;
    let raw = base64::engine::general_purpose::STANDARD.decode(&h.signature)?;
    std::fs::write(d.join("ours.sig"), raw)?;
    let out = Command::new("openssl")
        .args(["dgst", "-sha256"])
        .args(pss)
        .arg("-verify")
        .arg(d.join("k1.pub.pem"))
        .arg("-signature")
        .arg(d.join("ours.sig"))
        .arg(d.join("msg.txt"))
        .output()?;
    assert!(
        out.status.success(),
        "openssl rejected our signature: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // OpenSSL → ours.
    let out = Command::new("openssl")
        .args(["dgst", "-sha256"])
        .args(pss)
        .arg("-sign")
        .arg(d.join("k1.pem"))
        .arg("-out")
        .arg(d.join("theirs.sig"))
        .arg(d.join("msg.txt"))
        .output()?;
    assert!(
        out.status.success(),
        "openssl sign: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs =
        base64::engine::general_purpose::STANDARD.encode(std::fs::read(d.join("theirs.sig"))?);
    verifier.verify(
        "k",
        "1703123456789",
        "GET",
        "/trade-api/v2/portfolio/balance",
        &theirs,
    )?;
    Ok(())
}

/// Kalshi's documented Python example, verbatim in its padding choices, verifies our header.
#[test]
fn python_cryptography_verifies_our_signature() -> TestResult {
    let (private, public) = keypair();
    let signer = Signer::from_pem("k", private)?;
    let h = signer.headers_at(1_700_000_000_000, "GET", "/trade-api/ws/v2")?;
    let dir = tempfile::tempdir()?;
    write(&dir.path().join("pub.pem"), public)?;
    let script = r#"
import base64, sys
try:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding
except ImportError:
    print("NO_CRYPTOGRAPHY"); sys.exit(0)
key = serialization.load_pem_public_key(open(sys.argv[1], "rb").read())
key.verify(base64.b64decode(sys.argv[2]), sys.argv[3].encode(),
           padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH),
           hashes.SHA256())
print("VERIFIED")
"#;
    let Some(out) = run(Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(dir.path().join("pub.pem"))
        .arg(&h.signature)
        .arg("1700000000000GET/trade-api/ws/v2"))
    else {
        return Ok(());
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    if stdout.contains("NO_CRYPTOGRAPHY") {
        eprintln!("skipping: python cryptography not installed");
        return Ok(());
    }
    assert!(
        out.status.success() && stdout.contains("VERIFIED"),
        "python rejected our signature: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// Ed25519 keys: the type is read from the PEM; same headers and signed text.
#[test]
fn ed25519_keys_sign_and_verify() -> TestResult {
    use ed25519_dalek::pkcs8::{EncodePrivateKey, EncodePublicKey};
    let key = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
    let private = key.to_pkcs8_pem(LineEnding::LF)?;
    let public = key.verifying_key().to_public_key_pem(LineEnding::LF)?;
    let signer = Signer::from_pem("ed", &private)?;
    assert_eq!(signer.kind(), kd_kalshi::auth::KeyKind::Ed25519);
    assert_eq!(signer.public_key_pem()?, public);
    let verifier = verifier_for("ed", &public)?;
    let h = signer.headers_at(42, "GET", "/trade-api/ws/v2?x=1")?;
    use base64::Engine as _;
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(&h.signature)?
            .len(),
        64
    );
    verifier.verify("ed", "42", "GET", "/trade-api/ws/v2", &h.signature)?;
    assert!(matches!(
        verifier.verify("ed", "43", "GET", "/trade-api/ws/v2", &h.signature),
        Err(AuthError::BadSignature)
    ));
    // An RSA signature presented for an Ed25519 key id (and the reverse) is refused.
    let (rsa_private, rsa_public) = keypair();
    let rsa = Signer::from_pem("ed", rsa_private)?.headers_at(42, "GET", "/trade-api/ws/v2")?;
    assert!(matches!(
        verifier.verify("ed", "42", "GET", "/trade-api/ws/v2", &rsa.signature),
        Err(AuthError::BadSignature)
    ));
    let rsa_verifier = verifier_for("ed", rsa_public)?;
    assert!(matches!(
        rsa_verifier.verify("ed", "42", "GET", "/trade-api/ws/v2", &h.signature),
        Err(AuthError::BadSignature)
    ));
    Ok(())
}

#[test]
fn openssl_ed25519_interop() -> TestResult {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let Some(out) = run(Command::new("openssl")
        .args(["genpkey", "-algorithm", "ed25519", "-out"])
        .arg(d.join("ed.pem")))
    else {
        return Ok(());
    };
    if !out.status.success() {
        eprintln!(
            "skipping: openssl cannot make Ed25519 keys: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return Ok(());
    }
    let out = Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(d.join("ed.pem"))
        .arg("-out")
        .arg(d.join("ed.pub.pem"))
        .output()?;
    assert!(out.status.success());
    let signer = Signer::from_pem("k", &std::fs::read_to_string(d.join("ed.pem"))?)?;
    let verifier = verifier_for("k", &std::fs::read_to_string(d.join("ed.pub.pem"))?)?;
    let text = "1700000000000GET/trade-api/ws/v2";
    write(&d.join("msg.txt"), text)?;

    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let h = signer.headers_at(1_700_000_000_000, "GET", "/trade-api/ws/v2")?;
    std::fs::write(d.join("ours.sig"), b64.decode(&h.signature)?)?;
    let out = Command::new("openssl")
        .args(["pkeyutl", "-verify", "-rawin", "-pubin", "-inkey"])
        .arg(d.join("ed.pub.pem"))
        .arg("-sigfile")
        .arg(d.join("ours.sig"))
        .arg("-in")
        .arg(d.join("msg.txt"))
        .output()?;
    assert!(
        out.status.success(),
        "openssl rejected our Ed25519 signature: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new("openssl")
        .args(["pkeyutl", "-sign", "-rawin", "-inkey"])
        .arg(d.join("ed.pem"))
        .arg("-in")
        .arg(d.join("msg.txt"))
        .arg("-out")
        .arg(d.join("theirs.sig"))
        .output()?;
    assert!(
        out.status.success(),
        "openssl sign: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs = b64.encode(std::fs::read(d.join("theirs.sig"))?);
    verifier.verify("k", "1700000000000", "GET", "/trade-api/ws/v2", &theirs)?;
    Ok(())
}
