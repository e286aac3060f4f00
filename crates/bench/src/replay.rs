//! `replay_msgs_per_s`: one WebSocket client of an in-process `kalshi-data replay --speed max`
//! over the Parquet archive the export stage wrote, subscribed to every market's
//! `orderbook_delta`, `trade` and `ticker`; messages received (snapshots included) ÷ time from
//! the `subscribe` to `replay_end`, best of three passes. Baseline `replay_read_rows_per_s`: the bare read of the
//! same rows — the archive source's Parquet read and decode of the range, nothing else —
//! and `replay_vs_read` the ratio of the two.

use crate::BenchError;
use crate::measure::per_second;
use crate::report::Report;
use futures::{SinkExt, StreamExt};
use kd_core::TimestampUs;
use kd_replay::archive_source::ArchiveSource;
use kd_replay::clock::{Clock, Speed};
use kd_replay::data::{Dataset, Source};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// Timed passes of the replay; the figure is the fastest.
const REPLAY_PASSES: usize = 3;

/// Runs the stage over the archive at `archive` (`file://…`) for `[from, to]`.
pub async fn replay(
    archive: &str,
    from: TimestampUs,
    to: TimestampUs,
    report: &mut Report,
) -> Result<(), BenchError> {
    let source = ArchiveSource::open(archive, &Default::default())
        .map_err(|e| BenchError::stage("replay archive", e))?;
    // The bare read: the same windows and columns the replay loads, best of 2.
    let mut best = Duration::MAX;
    let mut rows = 0;
    for _ in 0..2 {
        let start = Instant::now();
        let loaded = source
            .load(from, to, &[])
            .await
            .map_err(|e| BenchError::stage("replay read", e))?;
        best = best.min(start.elapsed());
        rows = loaded.books.deltas.len()
            + loaded.books.snapshots.len()
            + loaded.rest.trades.len()
            + loaded.rest.tickers.len()
            + loaded.rest.lifecycle.len();
    }
    report.set(
        "replay_read_rows_per_s",
        per_second(rows as u64, best),
        "no rows read",
    );
    // Best of 3 passes, as the baseline is best of its passes: one pass over the bench's range
    // lasts ~0.3 s, so a single scheduling hiccup moved one-pass figures by a third. Each pass
    // is a fresh server and client over a freshly loaded dataset (loading is not timed).
    let source = Source::Archive(source);
    let (mut messages, mut elapsed) = (0, Duration::MAX);
    for _ in 0..REPLAY_PASSES {
        let data = Dataset::load(&source, from, to, &[])
            .await
            .map_err(|e| BenchError::stage("replay load", e))?;
        report.note("replay_timeline", data.timeline.len() as u64);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| BenchError::stage("replay bind", e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| BenchError::stage("replay bind", e))?;
        let clock = Clock::new(from, to, Speed::Max);
        let server = tokio::spawn(kd_replay::serve(listener, data, clock, None));
        let counted = client(&addr.to_string()).await;
        server.abort();
        let (n, took) = counted?;
        // Every pass serves the same messages; a pass that did not is a bug worth seeing.
        if messages != 0 && n != messages {
            return Err(BenchError::msg(
                "replay",
                format!("passes disagree: {messages} then {n} messages"),
            ));
        }
        messages = n;
        elapsed = elapsed.min(took);
    }
    report.note("replay_messages", messages);
    report.set(
        "replay_msgs_per_s",
        per_second(messages, elapsed),
        "no messages",
    );
    report.ratio(
        "replay_vs_read",
        "replay_msgs_per_s",
        "replay_read_rows_per_s",
    );
    Ok(())
}

/// Messages until `replay_end`, and the time from the subscription to it.
async fn client(addr: &str) -> Result<(u64, Duration), BenchError> {
    let url = format!("ws://{addr}{}", kd_replay::WS_PATH);
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .map_err(|e| BenchError::stage("replay connect", e))?;
    let sub =
        r#"{"id":1,"cmd":"subscribe","params":{"channels":["orderbook_delta","trade","ticker"]}}"#;
    let start = Instant::now();
    ws.send(Message::Text(sub.into()))
        .await
        .map_err(|e| BenchError::stage("replay subscribe", e))?;
    // One deadline for the whole stream (not a timer per message: the client must not be what
    // is measured).
    let read = async {
        let mut messages = 0_u64;
        while let Some(next) = ws.next().await {
            match next {
                Ok(Message::Text(t)) => {
                    // Every frame starts with its type (`wire::write_head`).
                    if t.as_str().starts_with("{\"type\":\"replay_end\"") {
                        return Ok((messages, start.elapsed()));
                    }
                    messages += 1;
                }
                Ok(_) => {}
                Err(e) => return Err(BenchError::stage("replay stream", e)),
            }
        }
        Err(BenchError::msg("replay", "closed before replay_end"))
    };
    tokio::time::timeout(Duration::from_secs(600), read)
        .await
        .map_err(|_| BenchError::msg("replay", "no replay_end within 600 s"))?
}
