//! `GET /replay?tickers=…&channels=…&from=…&to=…`: the same messages as the WebSocket, one JSON
//! object a line (NDJSON), streamed as fast as the client reads — for notebooks
//! (`pandas.read_json(url, lines=True)`). Independent of the replay clock: the window is the
//! query's, clamped to the loaded range.

use crate::Shared;
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
    let mut first = Vec::new();
    session.command(&command, &shared.data, from, &mut first);
    let start = shared.data.timeline.partition_point(|(ts, _)| *ts <= from);
    let end = shared.data.timeline.partition_point(|(ts, _)| *ts <= to);
    let state = (shared, session, start, Some(first));
    let stream = futures::stream::unfold(
        state,
        move |(shared, mut session, cursor, first)| async move {
            let mut out = first.unwrap_or_default();
            if cursor >= end && out.is_empty() {
                return None;
            }
            let stop = (cursor + CHUNK).min(end);
            for (_, event) in shared.data.timeline.get(cursor..stop).unwrap_or(&[]) {
                session.frames(event, &mut out);
            }
            let mut text = String::with_capacity(out.iter().map(|l| l.len() + 1).sum());
            for line in out {
                text.push_str(&line);
                text.push('\n');
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
