//! `GET /replay?tickers=…&channels=…&from=…&to=…`: the same messages as the WebSocket, one JSON
//! object a line (NDJSON), streamed as fast as the client reads — for notebooks
//! (`pandas.read_json(url, lines=True)`). Independent of the replay clock: the window is the
//! query's, clamped to the loaded range. `channels` may also name derived streams
//! ([`crate::derived`]: `book_snapshot_10_1s`, `trade_bar_1m`, …), interleaved in time order.

use crate::Shared;
use crate::frames::Frames;
use crate::session::Session;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use kd_core::TimestampUs;
use std::collections::HashMap;
use std::sync::Arc;

/// Timeline events rendered per chunk of the response body.
const CHUNK: usize = 4096;

pub(crate) async fn replay(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if !shared.authorised(&headers, "GET", uri.path()) {
        return (StatusCode::UNAUTHORIZED, crate::rest::auth_error()).into_response();
    }
    let time = |key: &str, default: TimestampUs| match q.get(key) {
        Some(v) => kd_ops::time_arg::parse_time(v),
        None => Ok(default),
    };
    let (from, to) = match (time("from", shared.clock.from), time("to", shared.clock.to)) {
        (Ok(a), Ok(b)) => (a.max(shared.clock.from), b.min(shared.clock.to)),
        (Err(e), _) | (_, Err(e)) => return (StatusCode::BAD_REQUEST, e).into_response(),
    };
    let channels: Vec<String> = q
        .get("channels")
        .map_or("orderbook_delta,trade", String::as_str)
        .split(',')
        .map(str::to_string)
        .collect();
    let mut params = serde_json::json!({ "channels": channels });
    if let Some(t) = q.get("tickers") {
        params["market_tickers"] = t.split(',').collect::<Vec<_>>().into();
    }
    let command = serde_json::json!({"id": 1, "cmd": "subscribe", "params": params}).to_string();
    let mut session = Session::default();
    let mut first = Frames::default();
    session.command(&command, &shared.data, from, &mut first);
    let start = shared.data.timeline.partition_point(|(ts, _)| *ts <= from);
    let end = shared.data.timeline.partition_point(|(ts, _)| *ts <= to);
    let state = (shared, session, start, Some(first));
    let stream = futures::stream::unfold(
        state,
        move |(shared, mut session, cursor, first)| async move {
            let mut out = first.unwrap_or_default();
            if cursor > end {
                return None;
            }
            let stop = (cursor + CHUNK).min(end);
            for (ts, event) in shared.data.timeline.get(cursor..stop).unwrap_or(&[]) {
                session.frames(*ts, event, &mut out);
            }
            // One step past the end: the derived streams' last frames, then the stream ends.
            let stop = if cursor == end {
                session.finish(to, &mut out);
                end + 1
            } else {
                stop
            };
            let mut text = Vec::with_capacity(out.text_len() + out.len());
            for line in out.iter() {
                text.extend_from_slice(line);
                text.push(b'\n');
            }
            Some((Ok::<_, std::io::Error>(text), (shared, session, stop, None)))
        },
    );
    (
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(stream),
    )
        .into_response()
}
