//! TLS to PostgreSQL against a private server with `ssl = on`, a certificate from a test CA and
//! `hostssl`-only access (kd-testkit's `TlsPg`): what each `sslmode` and certificate setting
//! does, and that every refusal names its cause and never the password.

use kd_core::Table;
use kd_production::{Store, StoreError};
use kd_testkit::pg::tls::TlsPg;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The error of the first use of `url` (opening is lazy for PostgreSQL: `ping` connects).
async fn refusal(url: &str) -> Result<String, String> {
    let err = match kd_production::open(url).await {
        Ok(store) => match store.ping().await {
            Ok(()) => return Err(format!("connected with {url}")),
            Err(e) => e,
        },
        Err(e) => e,
    };
    let text = err.to_string();
    println!("{url}\n  -> {text}");
    if text.contains(TlsPg::PASSWORD) {
        return Err(format!("the password is in the error: {text}"));
    }
    Ok(text)
}

/// Whether the session behind `url` is encrypted, by the server's own account.
async fn server_sees_tls(url: &str) -> Result<bool, StoreError> {
    let client = kd_production::postgres::connect_client(url).await?;
    let row = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await?;
    Ok(row.get(0))
}

#[tokio::test]
async fn verify_full_with_the_servers_ca_migrates_writes_and_reads() -> TestResult {
    let srv = TlsPg::start()?;
    let url = srv.verify_full();
    let store: Store = kd_production::open(&url).await?;
    store.migrate().await?;
    let records = kd_testkit::fixtures::one_of_each();
    let mut written = 0;
    for table in Table::ALL {
        let of_table: Vec<_> = records
            .iter()
            .filter(|r| r.table() == table)
            .cloned()
            .collect();
        written += store.insert_batch(table, &of_table, &[]).await?.inserted;
    }
    assert_eq!(written as usize, records.len());
    let mut read = 0;
    for table in Table::ALL {
        read += store.count(table).await?;
    }
    assert_eq!(read, written);
    assert!(server_sees_tls(&url).await?, "the session is not encrypted");
    Ok(())
}

#[tokio::test]
async fn certificate_problems_are_refused_by_name() -> TestResult {
    let srv = TlsPg::start()?;
    let other = srv.url(&format!(
        "sslmode=verify-full&sslrootcert={}",
        srv.other_ca.display()
    ));
    let text = refusal(&other).await?;
    assert!(text.contains("unknown issuer"), "{text}");

    // Connect to 127.0.0.1 under a name the certificate does not list.
    let by_name = |mode: &str| {
        format!(
            "postgres://kd:{}@db.invalid:{}/kd?hostaddr=127.0.0.1&sslmode={mode}&sslrootcert={}",
            TlsPg::PASSWORD,
            srv.pg.port,
            srv.ca.display()
        )
    };
    let text = refusal(&by_name("verify-full")).await?;
    assert!(text.contains("name mismatch"), "{text}");
    // verify-ca checks the chain only: the same connection is accepted.
    assert!(server_sees_tls(&by_name("verify-ca")).await?);
    Ok(())
}

#[tokio::test]
async fn require_encrypts_without_a_root_and_disable_is_refused_by_a_tls_only_server() -> TestResult
{
    let srv = TlsPg::start()?;
    assert!(server_sees_tls(&srv.url("sslmode=require")).await?);
    assert!(server_sees_tls(&srv.url("sslmode=prefer")).await?);
    let text = refusal(&srv.url("sslmode=disable")).await?;
    assert!(text.contains("no pg_hba.conf entry"), "{text}");
    assert!(text.contains("accepts only TLS"), "{text}");
    Ok(())
}

#[tokio::test]
async fn a_client_certificate_authenticates() -> TestResult {
    let srv = TlsPg::start()?;
    let base = format!(
        "postgres://kd_cert@127.0.0.1:{}/kd_cert?sslmode=verify-full&sslrootcert={}",
        srv.pg.port,
        srv.ca.display()
    );
    let with_cert = format!(
        "{base}&sslcert={}&sslkey={}",
        srv.client_cert.display(),
        srv.client_key.display()
    );
    let store = kd_production::open(&with_cert).await?;
    store.migrate().await?;
    assert_eq!(store.schema_version().await?, 5);
    let text = refusal(&base).await?;
    assert!(text.contains("certificate"), "{text}");
    Ok(())
}

#[tokio::test]
async fn files_that_cannot_be_read_are_named() -> TestResult {
    let srv = TlsPg::start()?;
    let text = refusal(&srv.url("sslmode=verify-full&sslrootcert=/nonexistent/ca.pem")).await?;
    assert!(
        text.contains("sslrootcert /nonexistent/ca.pem: cannot read"),
        "{text}"
    );
    let text = refusal(&srv.url(&format!(
        "sslmode=require&sslcert={}&sslkey=/nonexistent/k.pem",
        srv.client_cert.display()
    )))
    .await?;
    assert!(text.contains("sslkey /nonexistent/k.pem"), "{text}");
    Ok(())
}

/// A server without TLS and a URL that requires it: refused, saying so.
#[tokio::test]
async fn require_against_a_server_without_tls_is_refused() -> TestResult {
    let pg = kd_testkit::pg::PrivatePg::start(&[])?;
    let url = format!(
        "postgres://postgres:{}@127.0.0.1:{}/postgres",
        TlsPg::PASSWORD,
        pg.port
    );
    let text = refusal(&format!("{url}?sslmode=require")).await?;
    assert!(text.contains("server does not support TLS"), "{text}");
    // prefer falls back to plain.
    assert!(!server_sees_tls(&format!("{url}?sslmode=prefer")).await?);
    Ok(())
}
