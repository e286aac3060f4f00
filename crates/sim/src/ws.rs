//! The WebSocket endpoint: one task per connection owning its socket and subscriptions.

use crate::commands::Session;
use crate::shared::{Ctl, Shared};
use crate::stats::bump;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

/// Path of the WebSocket API.
pub const WS_PATH: &str = "/trade-api/ws/v2";

/// Checks the handshake's Kalshi headers (if keys are configured). The 401 it leads to does not
/// say which part was wrong: Kalshi's documents promise only an `ErrorResponse` (code, message),
/// so the simulator does not tell a client more than Kalshi may.
pub(crate) fn authorised(
    shared: &Shared,
    headers: &HeaderMap,
    method: &str,
    path: &str,
) -> Result<(), kd_kalshi::auth::Refusal> {
    let Some(verifier) = &shared.verifier else {
        return Ok(());
    };
    verifier.check_headers(
        |name| headers.get(name).and_then(|v| v.to_str().ok()),
        method,
        path,
    )
}

pub(crate) async fn upgrade(
    State((shared, stop)): State<(Arc<Shared>, CancellationToken)>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if authorised(&shared, &headers, "GET", WS_PATH).is_err() {
        bump(&shared.stats.auth_rejected);
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(serde_json::json!({"error": {"code": "authentication_error", "message": "invalid or missing API key signature", "service": "sim"}})),
        )
            .into_response();
    }
    // Commands only (a subscribe naming thousands of markets is well under 1 MiB): bound the
    // frame too, not only the message (axum's default frame bound is 16 MiB).
    ws.max_message_size(1 << 20)
        .max_frame_size(1 << 20)
        .on_upgrade(move |socket| connection(socket, shared, stop))
}

async fn connection(socket: WebSocket, shared: Arc<Shared>, stop: CancellationToken) {
    let id = shared.next_conn.fetch_add(1, Ordering::Relaxed) + 1;
    let mut rx = shared.tx.subscribe();
    let (ctl_tx, mut ctl_rx) = mpsc::channel::<Ctl>(8);
    shared
        .conns
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(id, ctl_tx);
    bump(&shared.stats.connections_total);
    shared
        .stats
        .connections_open
        .fetch_add(1, Ordering::Relaxed);
    let (mut sink, mut stream) = socket.split();
    let mut session = Session::new(shared.clone(), id);
    let mut ping = tokio::time::interval(shared.cfg.ping_interval);
    ping.reset();
    let mut out: Vec<String> = Vec::with_capacity(256);
    let reason = loop {
        tokio::select! {
            biased;
            _ = stop.cancelled() => break Some(1001),
            ctl = ctl_rx.recv() => match ctl {
                Some(Ctl::Close(code)) => break Some(code),
                Some(Ctl::Stall(d)) => {
                    // Silent: no data, no pings, no answers — until the stall ends.
                    tokio::select! {
                        _ = stop.cancelled() => break Some(1001),
                        _ = tokio::time::sleep(d) => {}
                    }
                }
                None => {}
            },
            incoming = stream.next() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    session.command(text.as_str(), &mut out);
                    if flush(&mut sink, &mut out).await.is_err() {
                        break None;
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break None,
                Some(Ok(_)) => {} // pings are answered by the library; pongs and binary ignored
            },
            _ = ping.tick() => {
                if sink.send(Message::Ping(Bytes::from_static(b"heartbeat"))).await.is_err() {
                    break None;
                }
            }
            item = rx.recv() => match item {
                Ok(item) => {
                    session.item(&item, &mut out);
                    // Drain what is already queued, then write it in one flush.
                    let mut n = 0;
                    while n < 512 {
                        match rx.try_recv() {
                            Ok(item) => session.item(&item, &mut out),
                            // Nothing was lost to a connection with no subscription yet (its
                            // `subscribe` may still be in flight): it reads on from here.
                            Err(broadcast::error::TryRecvError::Lagged(_))
                                if !session.is_subscribed() => {}
                            Err(broadcast::error::TryRecvError::Lagged(_)) => {
                                session.overflow(&mut out);
                                let _ = flush(&mut sink, &mut out).await;
                                break;
                            }
                            Err(_) => break,
                        }
                        n += 1;
                    }
                    if session.overflowed {
                        break Some(1011);
                    }
                    if flush(&mut sink, &mut out).await.is_err() {
                        break None;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) if !session.is_subscribed() => {}
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    session.overflow(&mut out);
                    let _ = flush(&mut sink, &mut out).await;
                    break Some(1011);
                }
                Err(broadcast::error::RecvError::Closed) => break Some(1001),
            },
        }
    };
    if let Some(code) = reason {
        let _ = sink
            .send(Message::Close(Some(CloseFrame {
                code,
                reason: Utf8Bytes::from_static(""),
            })))
            .await;
        let _ = sink.close().await;
    }
    shared
        .conns
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&id);
    shared
        .stats
        .connections_open
        .fetch_sub(1, Ordering::Relaxed);
    // Items still queued for this connection will never be sent: say so now, so the truth log
    // need not wait out its hold for them (and knows which ones a subscription covered).
    loop {
        match rx.try_recv() {
            Ok(item) => session.discard(&item),
            Err(broadcast::error::TryRecvError::Lagged(_)) => {}
            Err(_) => break,
        }
    }
    session.closed();
}

async fn flush(
    sink: &mut futures::stream::SplitSink<WebSocket, Message>,
    out: &mut Vec<String>,
) -> Result<(), axum::Error> {
    if out.is_empty() {
        return Ok(());
    }
    for frame in out.drain(..) {
        sink.feed(Message::Text(Utf8Bytes::from(frame))).await?;
    }
    sink.flush().await
}
