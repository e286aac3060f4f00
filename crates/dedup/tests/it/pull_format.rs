//! The pull API's two formats from a real gatherer over HTTP: JSON without `Accept`, the
//! binary page when asked for (trades, deltas, tickers only), the same rows either way.

use crate::common::cluster::*;
use crate::common::*;
use kd_core::Table;
use kd_core::pull::PullResponse;
use kd_core::pull::codec;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_unless_asked_and_the_binary_page_holds_the_same_rows() -> TestResult {
    let cluster = Cluster::start(1).await?;
    let records = stream(200, BASE_US);
    cluster.feed(0, &records).await?;
    let wanted = expected_counts(&records);
    let mut heads = cluster.gatherers[0].heads();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while Table::ALL
        .iter()
        .any(|t| heads.borrow().get(*t) < wanted.get(t).copied().unwrap_or(0))
    {
        tokio::time::timeout_at(deadline, heads.changed()).await??;
    }
    let http = reqwest::Client::new();
    let base = format!("http://{}/v1/pull", cluster.gatherers[0].addr());
    for table in [
        Table::Trades,
        Table::Deltas,
        Table::Tickers,
        Table::Snapshots,
    ] {
        let url = format!("{base}/{}?after=0&limit=1000", table.name());
        let plain = http.get(&url).send().await?;
        assert_eq!(
            plain.headers().get("content-type").map(|v| v.as_bytes()),
            Some(&b"application/json"[..]),
            "{table}"
        );
        let json: PullResponse = serde_json::from_slice(&plain.bytes().await?)?;
        assert_eq!(
            json.records.len() as u64,
            wanted.get(&table).copied().unwrap_or(0),
            "{table}"
        );
        let asked = http
            .get(&url)
            .header(
                "accept",
                format!("{}, application/json;q=0.5", codec::CONTENT_TYPE),
            )
            .send()
            .await?;
        let kind = asked
            .headers()
            .get("content-type")
            .map(|v| v.as_bytes().to_vec());
        let body = asked.bytes().await?;
        if codec::encodes(table) {
            assert_eq!(
                kind.as_deref(),
                Some(codec::CONTENT_TYPE.as_bytes()),
                "{table}"
            );
            assert_eq!(codec::decode(&body)?, json, "{table}");
        } else {
            assert_eq!(kind.as_deref(), Some(&b"application/json"[..]), "{table}");
            assert_eq!(
                serde_json::from_slice::<PullResponse>(&body)?,
                json,
                "{table}"
            );
        }
    }
    cluster.stop().await
}
