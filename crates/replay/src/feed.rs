//! The WebSocket endpoint: one task per connection, a cursor into the shared timeline.
//!
//! The cursor only ever stops between two instants (all events of one `exchange_ts` go out
//! together), so a subscription made between them gets a snapshot at the last instant sent that
//! already holds exactly the deltas sent so far — the book a client builds is production's.

use crate::Shared;
use crate::session::Session;
use crate::wire::{END_TYPE, frame};
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use kd_core::TimestampUs;
use std::sync::Arc;

/// Path of the WebSocket API (Kalshi's).
pub const WS_PATH: &str = "/trade-api/ws/v2";
/// Events sent per batch at `--speed max` before the connection looks at its commands again.
const BATCH: usize = 512;

pub(crate) async fn upgrade(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if !shared.authorised(&headers, "GET", WS_PATH) {
        return (StatusCode::UNAUTHORIZED, crate::rest::auth_error()).into_response();
    }
    ws.max_message_size(1 << 20)
        .on_upgrade(move |socket| connection(socket, shared))
}

async fn connection(socket: WebSocket, shared: Arc<Shared>) {
    let data = &shared.data;
    let clock = &shared.clock;
    let (mut sink, mut stream) = socket.split();
    let mut session = Session::default();
    // Where this feed is: at `max` every connection replays from `--from`; at a speed, a late
    // connection joins the shared clock.
    let mut at = match clock.speed {
        crate::clock::Speed::Max => clock.from,
        crate::clock::Speed::Times(_) => clock.now(),
    };
    let mut cursor = data.timeline.partition_point(|(ts, _)| *ts <= at);
    let mut out: Vec<String> = Vec::with_capacity(BATCH * 2);
    loop {
        let next_ts = data.timeline.get(cursor).map(|(ts, _)| *ts);
        let due = next_ts.unwrap_or(clock.to);
        let wait = async {
            match clock.when(due) {
                Some(when) => tokio::time::sleep_until(when.into()).await,
                None => tokio::task::yield_now().await,
            }
        };
        tokio::select! {
            biased;
            incoming = stream.next() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    session.command(text.as_str(), data, at, &mut out);
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
            () = wait, if session.is_subscribed() => {
                if next_ts.is_none() {
                    // Range over: the derived streams' last frames, say so, then close.
                    let mut last = Vec::new();
                    session.finish(clock.to, &mut last);
                    for text in last {
                        let _ = sink.feed(Message::Text(text.into())).await;
                    }
                    let body = serde_json::json!({
                        "to": clock.to.to_rfc3339(),
                        "to_ms": clock.to.millis(),
                        "msg": "replay range ended",
                    });
                    let _ = sink.send(Message::Text(frame(END_TYPE, None, None, &body.to_string()).into())).await;
                    let _ = sink
                        .send(Message::Close(Some(CloseFrame { code: 1000, reason: "replay range ended".into() })))
                        .await;
                    return;
                }
                let limit = match clock.speed {
                    crate::clock::Speed::Max => None,
                    crate::clock::Speed::Times(_) => Some(clock.now()),
                };
                let (next, reached) = advance(&shared, cursor, limit, &mut session, &mut out);
                cursor = next;
                at = reached;
                clock.reached(at);
            }
        }
        if !out.is_empty() {
            for text in out.drain(..) {
                if sink.feed(Message::Text(text.into())).await.is_err() {
                    return;
                }
            }
            if sink.flush().await.is_err() {
                return;
            }
        }
    }
}

/// Frames of whole instants from `cursor`: at `max` about [`BATCH`] events, at a speed every
/// instant up to `limit`. Returns the new cursor and the last instant sent.
fn advance(
    shared: &Shared,
    mut cursor: usize,
    limit: Option<TimestampUs>,
    session: &mut Session,
    out: &mut Vec<String>,
) -> (usize, TimestampUs) {
    let timeline = &shared.data.timeline;
    let mut last = timeline.get(cursor).map_or(shared.clock.to, |(ts, _)| *ts);
    let mut sent = 0;
    while let Some((ts, event)) = timeline.get(cursor) {
        if *ts != last {
            let full = match limit {
                None => sent >= BATCH,
                Some(l) => *ts > l,
            };
            if full {
                break;
            }
            last = *ts;
        }
        session.frames(*ts, event, out);
        sent += 1;
        cursor += 1;
    }
    (cursor, last)
}
