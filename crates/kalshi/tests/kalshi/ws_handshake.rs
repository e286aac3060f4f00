//! The WebSocket client against a real WebSocket server on loopback: the signed handshake,
//! 401 at the handshake, refused and stalled connections, each close code of DESIGN §6, and
//! heartbeats.

use futures::{SinkExt as _, StreamExt as _};
use kd_kalshi::auth::{
    HEADER_KEY, HEADER_SIGNATURE, HEADER_TIMESTAMP, Signer, Verifier, generate_keypair,
};
use kd_kalshi::ws::{self as ws_client, Channel, CloseAction, WsError};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Message, http};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// What the server does after a successful handshake.
#[derive(Clone, Copy)]
enum Then {
    /// Echo text frames back.
    Echo,
    /// Send a close frame with this code.
    Close(u16),
    /// Drop the TCP connection without a close frame (the client sees 1006).
    Drop,
    /// Send a `heartbeat` ping and report whether a pong came back.
    Ping,
}

struct Server {
    addr: SocketAddr,
    handshakes: Arc<AtomicU32>,
    pongs: Arc<AtomicU32>,
}

/// A WebSocket server; with a verifier, handshakes must be signed (401 otherwise); with
/// `status`, every handshake is refused with that HTTP status.
async fn serve(
    verifier: Option<Verifier>,
    status: Option<u16>,
    then: Then,
) -> std::io::Result<Server> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let handshakes = Arc::new(AtomicU32::new(0));
    let pongs = Arc::new(AtomicU32::new(0));
    let verifier = Arc::new(verifier);
    let (h, p) = (handshakes.clone(), pongs.clone());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let verifier = verifier.clone();
            let (h, p) = (h.clone(), p.clone());
            tokio::spawn(async move {
                // The error type is tungstenite's callback contract, not ours to shrink.
                #[allow(clippy::result_large_err)]
                let check = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
                    h.fetch_add(1, Ordering::SeqCst);
                    let refuse = |code: u16| {
                        let mut r = ErrorResponse::new(Some(format!("refused with {code}")));
                        *r.status_mut() = http::StatusCode::from_u16(code)
                            .unwrap_or(http::StatusCode::UNAUTHORIZED);
                        r
                    };
                    if let Some(code) = status {
                        return Err(refuse(code));
                    }
                    if let Some(v) = verifier.as_ref() {
                        let get = |n: &str| {
                            req.headers()
                                .get(n)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("")
                        };
                        let path = req.uri().path();
                        if v.verify(
                            get(HEADER_KEY),
                            get(HEADER_TIMESTAMP),
                            "GET",
                            path,
                            get(HEADER_SIGNATURE),
                        )
                        .is_err()
                        {
                            return Err(refuse(401));
                        }
                    }
                    Ok(resp)
                };
                let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, check).await else {
                    return;
                };
                match then {
                    Then::Echo => {
                        while let Some(Ok(msg)) = ws.next().await {
                            if msg.is_text() && ws.send(msg).await.is_err() {
                                break;
                            }
                        }
                    }
                    Then::Close(code) => {
                        let frame = CloseFrame {
                            code: CloseCode::from(code),
                            reason: "test".into(),
                        };
                        let _ = ws.send(Message::Close(Some(frame))).await;
                        // Drain until the client answers the close.
                        while let Some(Ok(_)) = ws.next().await {}
                    }
                    Then::Drop => drop(ws),
                    Then::Ping => {
                        let _ = ws.send(Message::Ping("heartbeat".into())).await;
                        while let Some(Ok(msg)) = ws.next().await {
                            if let Message::Pong(body) = msg
                                && &body[..] == b"heartbeat"
                            {
                                p.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                    }
                }
            });
        }
    });
    Ok(Server {
        addr,
        handshakes,
        pongs,
    })
}

fn url(addr: SocketAddr) -> String {
    format!("ws://{addr}{}", ws_client::WS_PATH)
}

fn keys(key_id: &str) -> Result<(Signer, Verifier), Box<dyn std::error::Error>> {
    let (private, public) = generate_keypair(1024)?;
    let mut verifier = Verifier::new();
    verifier.add_pem(key_id, &public)?;
    Ok((Signer::from_pem(key_id, &private)?, verifier))
}

#[tokio::test]
async fn signed_handshake_is_accepted_and_commands_flow() -> TestResult {
    let (signer, verifier) = keys("ws-key")?;
    let server = serve(Some(verifier), None, Then::Echo).await?;
    // A query string on the URL is not part of what is signed.
    let mut ws =
        ws_client::connect(&format!("{}?debug=1", url(server.addr)), Some(&signer)).await?;
    let cmd = ws_client::subscribe(1, &[Channel::Trade], &[]);
    ws.send(Message::text(cmd.clone())).await?;
    let echoed = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await?
        .ok_or("closed")??;
    assert_eq!(echoed.into_text()?.as_str(), cmd);
    assert_eq!(server.handshakes.load(Ordering::SeqCst), 1);
    Ok(())
}

#[tokio::test]
async fn unsigned_or_wrongly_signed_handshake_gets_401_and_halts() -> TestResult {
    let (_, verifier) = keys("ws-key")?;
    let (other_signer, _) = keys("ws-key")?;
    let server = serve(Some(verifier), None, Then::Echo).await?;
    for signer in [None, Some(&other_signer)] {
        let err = ws_client::connect(&url(server.addr), signer)
            .await
            .err()
            .ok_or("accepted")?;
        assert!(matches!(err, WsError::Auth { status: 401, .. }), "{err}");
        assert_eq!(err.action(), CloseAction::Halt);
    }
    assert_eq!(server.handshakes.load(Ordering::SeqCst), 2);
    Ok(())
}

#[tokio::test]
async fn auth_failures_are_counted() -> TestResult {
    let Some(handle) = kd_core::telemetry::metrics_handle() else {
        return Err("no metrics recorder".into());
    };
    let server = serve(None, Some(403), Then::Echo).await?;
    let err = ws_client::connect(&url(server.addr), None)
        .await
        .err()
        .ok_or("accepted")?;
    assert!(matches!(err, WsError::Auth { status: 403, .. }));
    let text = handle.render();
    assert!(text.contains("ws_auth_failures_total"), "{text}");
    assert!(
        text.contains(r#"ws_connects_total{outcome="auth"}"#),
        "{text}"
    );
    Ok(())
}

#[tokio::test]
async fn other_handshake_statuses_back_off() -> TestResult {
    for code in [429, 503] {
        let server = serve(None, Some(code), Then::Echo).await?;
        let err = ws_client::connect(&url(server.addr), None)
            .await
            .err()
            .ok_or("accepted")?;
        assert!(
            matches!(err, WsError::HandshakeStatus { status, .. } if status == code),
            "{err}"
        );
        assert_eq!(err.action(), CloseAction::ReconnectBackoff);
    }
    Ok(())
}

#[tokio::test]
async fn refused_connection_backs_off() -> TestResult {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    drop(listener);
    let err = ws_client::connect(&url(addr), None)
        .await
        .err()
        .ok_or("connected to nothing")?;
    assert!(matches!(err, WsError::Refused(_)), "{err}");
    assert_eq!(err.action(), CloseAction::ReconnectBackoff);
    Ok(())
}

#[tokio::test]
async fn stalled_handshake_times_out() -> TestResult {
    // Accepts TCP, never answers the HTTP upgrade.
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let err = ws_client::connect_with_timeout(&url(addr), None, Duration::from_millis(200))
        .await
        .err()
        .ok_or("handshake completed")?;
    assert!(matches!(err, WsError::Timeout(_)), "{err}");
    assert_eq!(err.action(), CloseAction::ReconnectBackoff);
    Ok(())
}

#[tokio::test]
async fn bad_urls_are_typed_errors() -> TestResult {
    for bad in ["http://127.0.0.1:1/trade-api/ws/v2", "not a url"] {
        let err = ws_client::connect(bad, None)
            .await
            .err()
            .ok_or("accepted")?;
        assert!(matches!(err, WsError::InvalidUrl { .. }), "{bad}: {err}");
    }
    Ok(())
}

/// Reads until the connection ends and returns how it ended.
async fn ending(ws: &mut ws_client::WsStream) -> Result<WsError, Box<dyn std::error::Error>> {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await? {
            Some(Ok(Message::Close(frame))) => return Ok(WsError::from_close(frame.as_ref())),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Ok(WsError::from_stream(e)),
            None => {
                return Ok(WsError::from_stream(
                    tokio_tungstenite::tungstenite::Error::ConnectionClosed,
                ));
            }
        }
    }
}

#[tokio::test]
async fn close_codes_map_to_design_actions() -> TestResult {
    let cases = [
        (Then::Close(1000), 1000, CloseAction::ReconnectNow),
        (Then::Close(1001), 1001, CloseAction::ReconnectBackoff),
        (Then::Drop, 1006, CloseAction::ReconnectBackoff),
        (Then::Close(1008), 1008, CloseAction::CheckCredentials),
        (Then::Close(1011), 1011, CloseAction::ReconnectBackoff),
    ];
    for (then, want_code, want_action) in cases {
        let server = serve(None, None, then).await?;
        let mut ws = ws_client::connect(&url(server.addr), None).await?;
        let end = ending(&mut ws).await?;
        match &end {
            WsError::Closed { code, .. } => assert_eq!(*code, want_code, "{end}"),
            other => return Err(format!("expected close {want_code}, got {other}").into()),
        }
        assert_eq!(end.action(), want_action, "code {want_code}");
    }
    Ok(())
}

#[tokio::test]
async fn heartbeat_pings_are_answered_while_reading() -> TestResult {
    let server = serve(None, None, Then::Ping).await?;
    let mut ws = ws_client::connect(&url(server.addr), None).await?;
    // Reading is what answers pings: read until the server has seen the pong.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while server.pongs.load(Ordering::SeqCst) == 0 {
        if tokio::time::Instant::now() > deadline {
            return Err("no pong within 5 s".into());
        }
        match tokio::time::timeout(Duration::from_millis(50), ws.next()).await {
            Ok(Some(Ok(Message::Ping(body)))) => assert_eq!(&body[..], b"heartbeat"),
            Ok(Some(Ok(_))) | Err(_) => {}
            Ok(Some(Err(e))) => return Err(e.into()),
            Ok(None) => return Err("closed".into()),
        }
    }
    Ok(())
}
