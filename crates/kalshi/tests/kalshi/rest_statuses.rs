//! The REST client against a real HTTP server on loopback: signing, decoding, pagination, and
//! one test per status row of DESIGN §6 (what the error says to do, and what the retry helper
//! does about it: how many requests, how long).

use crate::rest_fixture;

use kd_core::backoff::BackoffPolicy;
use kd_kalshi::auth::{Signer, Verifier, generate_keypair};
use kd_kalshi::rest::{
    Action, MaintenanceConfig, MarketsQuery, RestClient, RestConfig, RestError, SeriesQuery,
    TradesQuery,
};
use rest_fixture::{Fixture, Reply, fast_policy, markets_body};
use std::time::{Duration, Instant, SystemTime};
use tokio_util::sync::CancellationToken;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn client(fixture: &Fixture) -> Result<RestClient, RestError> {
    client_with(fixture, None, MaintenanceConfig::default())
}

fn client_with(
    fixture: &Fixture,
    signer: Option<Signer>,
    maintenance: MaintenanceConfig,
) -> Result<RestClient, RestError> {
    let mut config = RestConfig::new(fixture.base_url());
    config.request_timeout = Duration::from_secs(5);
    config.maintenance = maintenance;
    RestClient::new(config, signer)
}

fn shrunk_maintenance() -> MaintenanceConfig {
    MaintenanceConfig {
        resume_margin: Duration::from_millis(100),
        min_wait: Duration::from_millis(50),
        status_retry: Duration::from_millis(50),
    }
}

/// A policy so slow that a test finishing quickly proves the server's hint was used instead.
const SLOW: BackoffPolicy = BackoffPolicy::new(Duration::from_secs(30), Duration::from_secs(60));

/// `GET /markets` without filters (a static, so retry closures can borrow it).
static ALL: MarketsQuery = MarketsQuery {
    cursor: None,
    limit: None,
    status: None,
    event_ticker: None,
    series_ticker: None,
    tickers: Vec::new(),
    min_updated_ts: None,
    min_close_ts: None,
    max_close_ts: None,
    mve_filter: None,
};
static NO_FILTER: SeriesQuery = SeriesQuery {
    category: None,
    tags: None,
};

/// Fails (instead of hanging) when a call that must return at once keeps retrying.
async fn within<T>(fut: impl Future<Output = T>) -> Result<T, Box<dyn std::error::Error>> {
    Ok(tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .map_err(|_| "still retrying after 10 s")?)
}

fn status_of(err: &RestError) -> Option<u16> {
    err.status()
}

#[tokio::test]
async fn signed_requests_verify_and_pages_are_followed() -> TestResult {
    let (private, public) = generate_keypair(1024)?;
    let mut verifier = Verifier::new();
    verifier.add_pem("key-1", &public)?;
    let fixture = Fixture::start(Some(verifier)).await?;
    fixture.push(
        "/markets",
        [
            Reply::json(200, markets_body(&["A-1", "B-2"], "c1")),
            Reply::json(200, markets_body(&["C.3"], "c2")),
            Reply::json(200, markets_body(&[], "")),
        ],
    );
    let rest = client_with(
        &fixture,
        Some(Signer::from_pem("key-1", &private)?),
        MaintenanceConfig::default(),
    )?;
    assert!(rest.is_signed());
    let query = MarketsQuery {
        status: Some("open".into()),
        ..Default::default()
    };
    // The query string is not signed; the server verifies the path with the prefix.
    let markets = rest.all_markets(&query).await?;
    let tickers: Vec<_> = markets.iter().map(|m| m.ticker.as_str()).collect();
    assert_eq!(tickers, ["A-1", "B-2", "C.3"]);
    assert_eq!(
        fixture.queries("/markets"),
        [
            Some("limit=1000&status=open".to_string()),
            Some("cursor=c1&limit=1000&status=open".into()),
            Some("cursor=c2&limit=1000&status=open".into())
        ]
    );

    // An unsigned client is refused by this server: 401 halts.
    let unsigned = client(&fixture)?;
    let err = unsigned
        .exchange_status()
        .await
        .err()
        .ok_or("unsigned request accepted")?;
    assert_eq!(err.action(), Action::Halt);
    Ok(())
}

#[tokio::test]
async fn typed_endpoints_decode() -> TestResult {
    let fixture = Fixture::start(None).await?;
    fixture.default(
        "/markets/trades",
        Reply::json(
            200,
            r#"{"trades":[{"trade_id":"t-1","ticker":"M","count_fp":"3.00","yes_price_dollars":"0.5200","no_price_dollars":"0.4800","taker_side":"yes","created_time":"2026-06-24T15:49:55.033836Z"}],"cursor":""}"#,
        ),
    );
    fixture.default(
        "/markets/M.1/orderbook",
        Reply::json(
            200,
            r#"{"orderbook_fp":{"yes_dollars":[["0.5200","10.00"]]}}"#,
        ),
    );
    let rest = client(&fixture)?;
    let trades = rest.all_trades("M", Some(1_700_000_000), None).await?;
    assert_eq!(trades.len(), 1);
    assert_eq!(trades[0].trade_id, "t-1");
    assert_eq!(
        fixture.queries("/markets/trades"),
        [Some("ticker=M&min_ts=1700000000&limit=1000".to_string())]
    );
    let page = rest
        .trades_page(&TradesQuery {
            ticker: Some("M".into()),
            limit: Some(5),
            ..Default::default()
        })
        .await?;
    assert_eq!(page.next_cursor(), None);
    let book = rest.orderbook("M.1", Some(10)).await?;
    assert!(
        book.book()
            .and_then(|b| b.yes_dollars.as_ref())
            .is_some_and(|l| l.len() == 1)
    );
    assert_eq!(
        fixture.queries("/markets/M.1/orderbook"),
        [Some("depth=10".to_string())]
    );
    let status = rest.exchange_status().await?;
    assert!(status.exchange_active);
    Ok(())
}

#[tokio::test]
async fn repeated_cursor_is_an_error_not_a_loop() -> TestResult {
    let fixture = Fixture::start(None).await?;
    fixture.default("/markets", Reply::json(200, markets_body(&["A"], "same")));
    let err = client(&fixture)?
        .all_markets(&MarketsQuery::default())
        .await
        .err()
        .ok_or("looped")?;
    assert!(matches!(err, RestError::CursorLoop { .. }), "{err}");
    assert_eq!(fixture.hits("/markets"), 2);
    Ok(())
}

#[tokio::test]
async fn bad_json_is_a_typed_decode_error() -> TestResult {
    let fixture = Fixture::start(None).await?;
    fixture.default("/exchange/schedule", Reply::json(200, "<html>oops</html>"));
    let err = client(&fixture)?
        .exchange_schedule()
        .await
        .err()
        .ok_or("decoded html")?;
    assert!(matches!(err, RestError::Decode { .. }));
    assert_eq!(err.action(), Action::NoRetry);
    Ok(())
}

#[tokio::test]
async fn status_400_is_not_retried() -> TestResult {
    let fixture = Fixture::start(None).await?;
    fixture.default(
        "/markets",
        Reply::json(400, r#"{"code":"bad_request","message":"limit"}"#),
    );
    let rest = client(&fixture)?;
    let shutdown = CancellationToken::new();
    let err = within(rest.retry_forever(fast_policy(), &shutdown, || rest.markets_page(&ALL)))
        .await?
        .err()
        .ok_or("400 succeeded")?;
    assert_eq!(status_of(&err), Some(400));
    assert_eq!(err.action(), Action::NoRetry);
    assert!(!err.is_retriable());
    assert_eq!(fixture.hits("/markets"), 1, "400 must not be retried");
    if let RestError::Status { body, path, .. } = &err {
        assert!(body.contains("bad_request"));
        assert_eq!(path, "/trade-api/v2/markets");
    }
    Ok(())
}

#[tokio::test]
async fn status_401_and_403_halt_without_retrying() -> TestResult {
    for code in [401, 403] {
        let fixture = Fixture::start(None).await?;
        fixture.default("/markets", Reply::json(code, r#"{"code":"unauthorized"}"#));
        let rest = client(&fixture)?;
        let shutdown = CancellationToken::new();
        let err = within(rest.retry_forever(BackoffPolicy::REGISTRY, &shutdown, || {
            rest.markets_page(&ALL)
        }))
        .await?
        .err()
        .ok_or("auth failure succeeded")?;
        assert_eq!(status_of(&err), Some(code));
        assert_eq!(err.action(), Action::Halt);
        assert_eq!(fixture.hits("/markets"), 1, "{code} must halt, not spin");
    }
    Ok(())
}

#[tokio::test]
async fn status_404_skips() -> TestResult {
    let fixture = Fixture::start(None).await?;
    let rest = client(&fixture)?;
    let shutdown = CancellationToken::new();
    let err =
        within(rest.retry_forever(fast_policy(), &shutdown, || rest.orderbook("GONE-1", None)))
            .await?
            .err()
            .ok_or("404 succeeded")?;
    assert_eq!(status_of(&err), Some(404));
    assert_eq!(err.action(), Action::Skip);
    assert_eq!(fixture.hits("/markets/GONE-1/orderbook"), 1);
    Ok(())
}

#[tokio::test]
async fn status_429_honours_retry_after_ms_in_the_body() -> TestResult {
    let fixture = Fixture::start(None).await?;
    let limited = Reply::json(429, r#"{"code":"too_many_requests","retry_after_ms":40}"#);
    fixture.push("/markets", [limited.clone(), limited]);
    fixture.default("/markets", Reply::json(200, markets_body(&["A"], "")));
    let rest = client(&fixture)?;
    let shutdown = CancellationToken::new();
    let started = Instant::now();
    // The policy alone would wait 30 s; the server's 40 ms must be used instead.
    let page = within(rest.retry_forever(SLOW, &shutdown, || rest.markets_page(&ALL))).await??;
    let elapsed = started.elapsed();
    assert_eq!(page.markets.len(), 1);
    assert_eq!(fixture.hits("/markets"), 3);
    assert!(
        elapsed >= Duration::from_millis(80),
        "waited only {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_secs(10),
        "ignored retry_after_ms: {elapsed:?}"
    );
    Ok(())
}

#[tokio::test]
async fn status_429_honours_retry_after_header() -> TestResult {
    let fixture = Fixture::start(None).await?;
    fixture.push(
        "/markets",
        [Reply::json(429, "{}").header("retry-after", "1")],
    );
    fixture.default("/markets", Reply::json(200, markets_body(&["A"], "")));
    let rest = client(&fixture)?;
    let first = rest
        .markets_page(&MarketsQuery::default())
        .await
        .err()
        .ok_or("429 succeeded")?;
    assert_eq!(
        first.action(),
        Action::Retry {
            after: Some(Duration::from_secs(1))
        }
    );
    assert_eq!(
        rest.markets_page(&MarketsQuery::default())
            .await?
            .markets
            .len(),
        1
    );
    Ok(())
}

#[tokio::test]
async fn status_500_502_504_retry_with_bounded_backoff() -> TestResult {
    for code in [500, 502, 504] {
        let fixture = Fixture::start(None).await?;
        fixture.default("/markets", Reply::json(code, "{}"));
        let rest = client(&fixture)?;
        let shutdown = CancellationToken::new();
        let started = Instant::now();
        let err = rest
            .retry(fast_policy(), Some(4), &shutdown, || {
                rest.markets_page(&ALL)
            })
            .await
            .err()
            .ok_or("always-failing endpoint succeeded")?;
        let elapsed = started.elapsed();
        assert_eq!(status_of(&err), Some(code));
        assert_eq!(err.action(), Action::Retry { after: None });
        assert_eq!(fixture.hits("/markets"), 4, "{code}: 4 attempts, 3 retries");
        // Three sleeps of the 5 ms → 20 ms policy: at least 5 + 10 + 20 ms.
        assert!(
            elapsed >= Duration::from_millis(35),
            "{code}: no backoff ({elapsed:?})"
        );

        // Forever: transient failures end in success.
        let fixture = Fixture::start(None).await?;
        fixture.push("/markets", (0..3).map(|_| Reply::json(code, "{}")));
        fixture.default("/markets", Reply::json(200, markets_body(&["A"], "")));
        let rest = client(&fixture)?;
        within(rest.retry_forever(fast_policy(), &shutdown, || rest.markets_page(&ALL))).await??;
        assert_eq!(fixture.hits("/markets"), 4);
    }
    Ok(())
}

#[tokio::test]
async fn transport_errors_retry() -> TestResult {
    // A port that was just free: connection refused.
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    drop(listener);
    let rest = RestClient::new(RestConfig::new(format!("http://{addr}/trade-api/v2")), None)?;
    let shutdown = CancellationToken::new();
    let mut calls = 0;
    let err = rest
        .retry(fast_policy(), Some(3), &shutdown, || {
            calls += 1;
            rest.exchange_status()
        })
        .await
        .err()
        .ok_or("refused connection succeeded")?;
    assert!(matches!(err, RestError::Transport { .. }), "{err}");
    assert_eq!(err.action(), Action::Retry { after: None });
    assert_eq!(calls, 3);
    Ok(())
}

#[tokio::test]
async fn status_503_waits_for_the_exchange_then_resumes() -> TestResult {
    let fixture = Fixture::start(None).await?;
    let resume = SystemTime::now() + Duration::from_millis(300);
    fixture.maintenance_until(resume);
    fixture.push("/markets", [Reply::json(503, "{}"), Reply::json(503, "{}")]);
    fixture.default("/markets", Reply::json(200, markets_body(&["A"], "")));
    let rest = client_with(&fixture, None, shrunk_maintenance())?;
    let shutdown = CancellationToken::new();
    let page =
        within(rest.retry_forever(fast_policy(), &shutdown, || rest.markets_page(&ALL))).await??;
    assert_eq!(page.markets.len(), 1);
    // Not before the announced resume time + margin.
    assert!(SystemTime::now() >= resume + Duration::from_millis(100));
    // First 503: one poll finds it down, waits until resume + 100 ms, the next finds it up.
    // Second 503 with the exchange up: one poll, then an ordinary backoff. Few requests.
    assert_eq!(fixture.hits("/exchange/status"), 3);
    assert_eq!(fixture.hits("/markets"), 3);
    Ok(())
}

#[tokio::test]
async fn maintenance_wait_polls_no_faster_than_min_wait() -> TestResult {
    let fixture = Fixture::start(None).await?;
    // Resume time already near: the 50 ms floor and the 100 ms margin set the pace.
    let resume = SystemTime::now() + Duration::from_millis(200);
    fixture.maintenance_until(resume);
    let rest = client_with(&fixture, None, shrunk_maintenance())?;
    let down_polls = rest.wait_for_exchange(&CancellationToken::new()).await?;
    assert!(SystemTime::now() >= resume);
    assert!(down_polls >= 1);
    // Each down poll waited at least until resume + margin, so at most one or two polls.
    assert!(
        fixture.hits("/exchange/status") <= 3,
        "{} polls",
        fixture.hits("/exchange/status")
    );
    Ok(())
}

#[tokio::test]
async fn maintenance_wait_repolls_a_failing_status_call() -> TestResult {
    let fixture = Fixture::start(None).await?;
    fixture.push(
        "/exchange/status",
        [Reply::json(500, "{}"), Reply::json(502, "{}")],
    );
    let rest = client_with(&fixture, None, shrunk_maintenance())?;
    let started = Instant::now();
    let down_polls = rest.wait_for_exchange(&CancellationToken::new()).await?;
    assert_eq!(down_polls, 0);
    assert_eq!(fixture.hits("/exchange/status"), 3);
    assert!(
        started.elapsed() >= Duration::from_millis(100),
        "status_retry not applied"
    );
    Ok(())
}

#[tokio::test]
async fn maintenance_wait_halts_on_refused_credentials() -> TestResult {
    let fixture = Fixture::start(None).await?;
    fixture.default("/exchange/status", Reply::json(401, "{}"));
    let rest = client_with(&fixture, None, shrunk_maintenance())?;
    let err = rest
        .wait_for_exchange(&CancellationToken::new())
        .await
        .err()
        .ok_or("401 accepted")?;
    assert_eq!(err.action(), Action::Halt);
    assert_eq!(fixture.hits("/exchange/status"), 1);
    Ok(())
}

#[tokio::test]
async fn shutdown_interrupts_a_backoff_sleep() -> TestResult {
    let fixture = Fixture::start(None).await?;
    fixture.default("/markets", Reply::json(500, "{}"));
    let rest = client(&fixture)?;
    let shutdown = CancellationToken::new();
    let trigger = shutdown.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        trigger.cancel();
    });
    let started = Instant::now();
    let err = rest
        .retry_forever(SLOW, &shutdown, || rest.markets_page(&ALL))
        .await
        .err()
        .ok_or("500 succeeded")?;
    assert!(matches!(err, RestError::Cancelled), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(fixture.hits("/markets"), 1);
    Ok(())
}

#[tokio::test]
async fn metrics_are_exported() -> TestResult {
    let Some(handle) = kd_core::telemetry::metrics_handle() else {
        return Err("no metrics recorder".into());
    };
    let fixture = Fixture::start(None).await?;
    fixture.default("/markets", Reply::json(401, "{}"));
    fixture.push("/series", [Reply::json(502, "{}")]);
    fixture.default("/series", Reply::json(200, r#"{"series":[]}"#));
    let rest = client(&fixture)?;
    let shutdown = CancellationToken::new();
    let _ = rest.markets_page(&MarketsQuery::default()).await;
    within(rest.retry_forever(fast_policy(), &shutdown, || rest.series_list(&NO_FILTER))).await??;
    let text = handle.render();
    for needle in [
        r#"rest_requests_total{endpoint="/markets",status="401"}"#,
        r#"rest_requests_total{endpoint="/series",status="200"}"#,
        r#"rest_errors_total{kind="unauthorized"}"#,
        r#"rest_errors_total{kind="server_error"}"#,
        "rest_retries_total",
        "rest_auth_failures_total",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
    Ok(())
}
