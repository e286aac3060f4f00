//! The pull API over TLS with a private CA: a gatherer serving a certificate from a test CA,
//! the deduplicator trusting that CA through `gatherers[].ca_path` (and nothing else: the
//! system roots would refuse it), pulls everything; a wrong CA, a certificate for another name,
//! a wrong token and a closed port are each refused with an error that names the cause, in
//! `/health` and under its own `dedup_errors_total` kind.

use crate::common::cluster::*;
use crate::common::*;
use kd_core::Table;
use kd_core::config::Secret;
use kd_dedup::config::GathererEndpoint;
use kd_testkit::pg::tls::{TestCa, write_private};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A gatherer on loopback serving TLS with a certificate for `names` issued by `ca`, and
/// requiring `token`.
async fn tls_gatherer(
    ca: &TestCa,
    names: &[&str],
    dir: &std::path::Path,
    token: &str,
) -> Result<kd_gatherer::GathererHandle, Box<dyn std::error::Error + Send + Sync>> {
    let issued = ca.server(names)?;
    let cert = dir.join("gatherer.crt");
    let key = dir.join("gatherer.key");
    std::fs::write(&cert, &issued.cert_pem)?;
    write_private(&key, &issued.key_pem)?;
    let mut cfg = gatherer_config("g0", &dir.join("store"));
    cfg.tls_cert_path = Some(cert);
    cfg.tls_key_path = Some(key);
    cfg.token = Secret::new(token);
    Ok(kd_gatherer::start(cfg, CancellationToken::new()).await?)
}

fn config(endpoint: GathererEndpoint, production: &str) -> kd_dedup::DedupConfig {
    kd_dedup::DedupConfig {
        production: Secret::new(production),
        gatherers: vec![endpoint],
        gatherer_retry_ms: 100,
        gatherer_retry_max_ms: 200,
        listen: "127.0.0.1:0"
            .parse()
            .unwrap_or(kd_dedup::DedupConfig::default().listen),
        ..kd_dedup::DedupConfig::default()
    }
}

/// Starts a deduplicator for `endpoint` and waits until `/health` shows a pull error for the
/// gatherer; returns that error text and the metrics page.
async fn refused_with(
    endpoint: GathererEndpoint,
) -> Result<(String, String), Box<dyn std::error::Error + Send + Sync>> {
    let dir = tempfile::tempdir()?;
    let production = format!("sqlite://{}", dir.path().join("p.sqlite").display());
    let dedup = kd_dedup::start(config(endpoint, &production), CancellationToken::new()).await?;
    let base = format!("http://{}", dedup.addr());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let error = loop {
        let health: serde_json::Value =
            reqwest::get(format!("{base}/health")).await?.json().await?;
        if let Some(e) = health["gatherers"][0]["last_error"].as_str() {
            break e.to_string();
        }
        if tokio::time::Instant::now() > deadline {
            return Err(format!("no pull error in /health: {health}").into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let metrics = reqwest::get(format!("{base}/metrics"))
        .await?
        .text()
        .await?;
    assert_eq!(
        dedup.store().count(Table::Trades).await?,
        0,
        "nothing may arrive"
    );
    dedup.stop().await?;
    Ok((error, metrics))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_pull_through_ca_path_and_clear_refusals() -> TestResult {
    let dir = tempfile::tempdir()?;
    let ca = TestCa::new("kalshi-data test gatherer CA")?;
    let ca_path = dir.path().join("gatherer-ca.pem");
    std::fs::write(&ca_path, ca.pem())?;
    let g = tls_gatherer(&ca, &["127.0.0.1", "localhost"], dir.path(), "pull-token-1").await?;
    let published = records(Table::Trades, 400, BASE_US);
    let sender = g.test_sender().ok_or("gatherer stopping")?;
    for r in &published {
        sender.send(r.clone()).await?;
    }
    let url = format!("https://localhost:{}", g.addr().port());
    let good = GathererEndpoint {
        id: "g0".into(),
        url: url.clone(),
        token: Secret::new("pull-token-1"),
        ca_path: Some(ca_path.clone()),
        ..GathererEndpoint::default()
    };

    // With ca_path: every record arrives.
    let prod_dir = tempfile::tempdir()?;
    let production = format!("sqlite://{}", prod_dir.path().join("p.sqlite").display());
    let dedup =
        kd_dedup::start(config(good.clone(), &production), CancellationToken::new()).await?;
    let mut expected = std::collections::HashMap::new();
    expected.insert(Table::Trades, 400);
    let counts = wait_for_counts(dedup.store(), &expected, Duration::from_secs(60)).await?;
    assert_eq!(counts.get(&Table::Trades), Some(&400));
    assert_production_equals(dedup.store(), &published).await?;
    dedup.stop().await?;

    // Without ca_path the system roots do not know the test CA.
    let (error, metrics) = refused_with(GathererEndpoint {
        ca_path: None,
        ..good.clone()
    })
    .await?;
    assert!(error.contains("unknown issuer"), "{error}");

    // A different CA: unknown issuer, counted as a TLS failure, never "error sending request".
    let other = TestCa::new("some other CA")?;
    let other_path = dir.path().join("other-ca.pem");
    std::fs::write(&other_path, other.pem())?;
    let (error, metrics_other) = refused_with(GathererEndpoint {
        ca_path: Some(other_path),
        ..good.clone()
    })
    .await?;
    assert!(
        error.contains("TLS") && error.contains("unknown issuer") && error.contains("ca_path"),
        "{error}"
    );
    assert!(!error.contains("error sending request"), "{error}");
    for m in [&metrics, &metrics_other] {
        assert!(
            m.lines().any(
                |l| l.starts_with("dedup_errors_total{") && l.contains("kind=\"gatherer_tls\"")
            ),
            "{m}"
        );
    }

    // The right CA but a URL naming a host the certificate is not for.
    let mismatch_dir = tempfile::tempdir()?;
    let g2 = tls_gatherer(
        &ca,
        &["gatherer-b.internal"],
        mismatch_dir.path(),
        "pull-token-1",
    )
    .await?;
    let (error, _) = refused_with(GathererEndpoint {
        url: format!("https://127.0.0.1:{}", g2.addr().port()),
        ..good.clone()
    })
    .await?;
    assert!(error.contains("name mismatch"), "{error}");

    // A wrong token: the 401 is named as such.
    let (error, metrics) = refused_with(GathererEndpoint {
        token: Secret::new("wrong-token"),
        ..good.clone()
    })
    .await?;
    assert!(
        error.contains("refused the token") && error.contains("401"),
        "{error}"
    );
    assert!(
        !error.contains("wrong-token"),
        "the token is never echoed: {error}"
    );
    assert!(
        metrics.contains("kind=\"gatherer_unauthorized\""),
        "{metrics}"
    );

    // Nothing listening.
    let dead = kd_testkit::ports::unused_addr()?;
    let (error, metrics) = refused_with(GathererEndpoint {
        url: format!("https://localhost:{}", dead.port()),
        ..good.clone()
    })
    .await?;
    assert!(error.contains("refused the connection"), "{error}");
    assert!(metrics.contains("kind=\"gatherer_refused\""), "{metrics}");

    // An unreadable CA file stops the start with the key and path named.
    let missing = dir.path().join("missing-ca.pem");
    let err = kd_dedup::start(
        config(
            GathererEndpoint {
                ca_path: Some(missing),
                ..good
            },
            &production,
        ),
        CancellationToken::new(),
    )
    .await
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    assert!(
        err.contains("ca_path") && err.contains("missing-ca.pem"),
        "{err}"
    );
    Ok(())
}
