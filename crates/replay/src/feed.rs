//! The WebSocket endpoint: one task per connection, a cursor into the shared timeline.
//!
//! The cursor only ever stops between two instants (all events of one `exchange_ts` go out
//! together), so a subscription made between them gets a snapshot at the last instant sent that
//! already holds exactly the deltas sent so far — the book a client builds is production's.
//!
//! Sending: the messages of a batch are rendered into one buffer ([`Frames`]), framed as
//! WebSocket text frames into a second one ([`ws_frame`]) and written to the socket with one
//! `write_all` — no allocation, copy into a library buffer or sink call per message (at
//! `--speed max` that is most of the server's time otherwise). tokio-tungstenite still reads
//! the client's frames (commands, pings, close) and writes its own control replies; its
//! buffer is flushed before each batch so frames never interleave.

use crate::Shared;
use crate::frames::Frames;
use crate::session::Session;
use crate::wire::{END_TYPE, frame};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Version, header};
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use kd_core::TimestampUs;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

/// Path of the WebSocket API (Kalshi's).
pub const WS_PATH: &str = "/trade-api/ws/v2";
/// Events rendered per batch at `--speed max` before the connection looks at its commands
/// again (and the size of one socket write: ≈ 170 bytes a message).
const BATCH: usize = 1024;

type Ws = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

fn header_has(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
}

/// The HTTP/1.1 upgrade (RFC 6455 §4.2), checked as axum's `WebSocketUpgrade` checks it; done
/// here because the feed writes its data frames to the upgraded socket itself.
pub(crate) async fn upgrade(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let (mut parts, _) = req.into_parts();
    if !shared.authorised(&parts.headers, "GET", WS_PATH) {
        return (StatusCode::UNAUTHORIZED, crate::rest::auth_error()).into_response();
    }
    if parts.method != Method::GET {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            "WebSocket request must be GET",
        )
            .into_response();
    }
    let bad = |why: &'static str| (StatusCode::BAD_REQUEST, why).into_response();
    if parts.version > Version::HTTP_11 {
        return bad("WebSocket over HTTP/1.1 only");
    }
    if !header_has(&parts.headers, header::CONNECTION, "upgrade") {
        return bad("Connection header did not include 'upgrade'");
    }
    if !header_has(&parts.headers, header::UPGRADE, "websocket") {
        return bad("`Upgrade` header did not include 'websocket'");
    }
    if parts.headers.get(header::SEC_WEBSOCKET_VERSION) != Some(&HeaderValue::from_static("13")) {
        return bad("`Sec-WebSocket-Version` header did not include '13'");
    }
    let Some(key) = parts.headers.get(header::SEC_WEBSOCKET_KEY) else {
        return bad("`Sec-WebSocket-Key` header missing");
    };
    let accept = derive_accept_key(key.as_bytes());
    let Some(on_upgrade) = parts.extensions.remove::<hyper::upgrade::OnUpgrade>() else {
        return (
            StatusCode::UPGRADE_REQUIRED,
            "WebSocket request couldn't be upgraded since no upgrade state was present",
        )
            .into_response();
    };
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let config = WebSocketConfig::default().max_message_size(Some(1 << 20));
        let ws =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config))
                .await;
        connection(ws, shared).await;
    });
    (
        StatusCode::SWITCHING_PROTOCOLS,
        [
            (header::CONNECTION, HeaderValue::from_static("upgrade")),
            (header::UPGRADE, HeaderValue::from_static("websocket")),
        ],
        [(header::SEC_WEBSOCKET_ACCEPT, accept)],
    )
        .into_response()
}

async fn connection(mut ws: Ws, shared: Arc<Shared>) {
    let data = &shared.data;
    let clock = &shared.clock;
    let mut session = Session::default();
    // Where this feed is: at `max` every connection replays from `--from`; at a speed, a late
    // connection joins the shared clock.
    let mut at = match clock.speed {
        crate::clock::Speed::Max => clock.from,
        crate::clock::Speed::Times(_) => clock.now(),
    };
    let mut cursor = data.timeline.partition_point(|(ts, _)| *ts <= at);
    let mut out = Frames::default();
    let mut framed = Vec::new();
    loop {
        let next_ts = data.timeline.get(cursor).map(|(ts, _)| *ts);
        let due = next_ts.unwrap_or(clock.to);
        let wait = async {
            match clock.when(due) {
                Some(when) => tokio::time::sleep_until(when.into()).await,
                None => tokio::task::yield_now().await,
            }
        };
        let mut end = false;
        tokio::select! {
            biased;
            incoming = ws.next() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    session.command(text.as_str(), data, at, &mut out);
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
            () = wait, if session.is_subscribed() => {
                if next_ts.is_none() {
                    // Range over: the derived streams' last frames, then say so.
                    session.finish(clock.to, &mut out);
                    let body = serde_json::json!({
                        "to": clock.to.to_rfc3339(),
                        "to_ms": clock.to.millis(),
                        "msg": "replay range ended",
                    });
                    out.push(&frame(END_TYPE, None, None, &body.to_string()));
                    end = true;
                } else {
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
        }
        if !out.is_empty() {
            if send(&mut ws, &out, &mut framed).await.is_err() {
                return;
            }
            out.clear();
        }
        if end {
            let close = CloseFrame {
                code: CloseCode::Normal,
                reason: "replay range ended".into(),
            };
            let _ = ws.close(Some(close)).await;
            // Drive the closing handshake (the client's close reply), briefly.
            let drain = async { while let Some(Ok(_)) = ws.next().await {} };
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), drain).await;
            return;
        }
    }
}

/// Writes a batch: tungstenite's queued control frames first, then every message of `out` as
/// a text frame, in one write.
async fn send(ws: &mut Ws, out: &Frames, framed: &mut Vec<u8>) -> std::io::Result<()> {
    ws.flush().await.map_err(std::io::Error::other)?;
    framed.clear();
    framed.reserve(out.text_len() + 4 * out.len());
    for message in out.iter() {
        ws_frame::text(framed, message);
    }
    let io = ws.get_mut();
    io.write_all(framed).await?;
    io.flush().await
}

/// Frames of whole instants from `cursor`: at `max` about [`BATCH`] events, at a speed every
/// instant up to `limit`. Returns the new cursor and the last instant sent.
fn advance(
    shared: &Shared,
    mut cursor: usize,
    limit: Option<TimestampUs>,
    session: &mut Session,
    out: &mut Frames,
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

/// Server-to-client WebSocket frames (RFC 6455 §5.2: unmasked, minimal length encoding).
pub(crate) mod ws_frame {
    /// One final text frame holding `payload` (valid UTF-8: the writers append only that).
    pub fn text(out: &mut Vec<u8>, payload: &[u8]) {
        out.push(0x81);
        let n = payload.len();
        if n < 126 {
            out.push(n as u8);
        } else if let Ok(short) = u16::try_from(n) {
            out.push(126);
            out.extend_from_slice(&short.to_be_bytes());
        } else {
            out.push(127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
        out.extend_from_slice(payload);
    }
}

#[cfg(test)]
mod tests {
    use super::ws_frame;
    use futures::StreamExt;
    use tokio::io::AsyncWriteExt;
    use tokio_tungstenite::WebSocketStream;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

    /// A WebSocket client (tungstenite, which checks the framing) reads the frames back, at
    /// every length encoding's edges.
    #[tokio::test]
    async fn text_frames_read_back_in_a_websocket_client() -> Result<(), Box<dyn std::error::Error>>
    {
        let lengths = [0, 1, 125, 126, 127, 65_535, 65_536, 300_000];
        let messages: Vec<String> = lengths
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                let s: String = "é\"{x".chars().cycle().take(n).collect();
                // Cut to `n` bytes on a char boundary, then pad with ASCII to exactly `n`.
                let mut t: String = s
                    .chars()
                    .scan(0, |len, c| {
                        *len += c.len_utf8();
                        (*len <= n).then_some(c)
                    })
                    .collect();
                while t.len() < n {
                    t.push(char::from(b'a' + (i as u8)));
                }
                t
            })
            .collect();
        let mut bytes = Vec::new();
        for m in &messages {
            ws_frame::text(&mut bytes, m.as_bytes());
        }
        let (client, mut server) = tokio::io::duplex(1 << 16);
        let writer = tokio::spawn(async move {
            server.write_all(&bytes).await?;
            server.shutdown().await
        });
        let config = WebSocketConfig::default()
            .max_message_size(None)
            .max_frame_size(None);
        let mut ws = WebSocketStream::from_raw_socket(client, Role::Client, Some(config)).await;
        for (m, n) in messages.iter().zip(lengths) {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    assert_eq!(t.as_str(), m.as_str());
                    assert_eq!(t.len(), n);
                }
                other => return Err(format!("frame of {n} bytes: {other:?}").into()),
            }
        }
        writer.await??;
        Ok(())
    }
}
