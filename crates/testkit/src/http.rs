//! Plain HTTP/1.0 probes on loopback (`/health`, `/ready`, `/metrics`, the simulator's
//! `/_sim/…`), synchronous so a scenario script of real processes needs no runtime. Each answers
//! `None` when nothing answers, never panics, and times out (connect 2 s, read 5 s).

use serde_json::Value;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

/// `GET url` with an optional bearer token; `(status, body)`, or `None` when nothing answers.
pub fn get(url: &str, token: Option<&str>) -> Option<(u16, String)> {
    request("GET", url, token)
}

/// One HTTP/1.0 request (no body) to an `http://IP:PORT/…` URL; `(status, body)`.
pub fn request(method: &str, url: &str, token: Option<&str>) -> Option<(u16, String)> {
    let rest = url.strip_prefix("http://")?;
    let (host, path) = match rest.split_once('/') {
        Some((h, p)) => (h, format!("/{p}")),
        None => (rest, "/".to_string()),
    };
    let addr = host.parse().ok()?;
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: {host}\r\n{auth}Content-Length: 0\r\n\
         Connection: close\r\n\r\n"
    )
    .ok()?;
    // A server that closes with part of our request unread sends a reset, which can arrive
    // after its whole answer: keep what was read before the error.
    let mut buf = Vec::new();
    if s.read_to_end(&mut buf).is_err() && buf.is_empty() {
        return None;
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

/// `GET url` as JSON, when it answers 200 with JSON.
pub fn get_json(url: &str) -> Option<Value> {
    let (status, body) = get(url, None)?;
    (status == 200).then_some(())?;
    serde_json::from_str(&body).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn a_status_and_body_are_read_and_silence_is_none() -> crate::Result<()> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let addr = listener.local_addr()?;
        let server = std::thread::spawn(move || -> std::io::Result<String> {
            let (mut s, _) = listener.accept()?;
            // Read the whole request head: closing with bytes unread would reset the connection.
            let mut req = Vec::new();
            let mut chunk = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = s.read(&mut chunk)?;
                if n == 0 {
                    break;
                }
                req.extend_from_slice(&chunk[..n]);
            }
            s.write_all(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{\"ok\":1}")?;
            s.shutdown(std::net::Shutdown::Write)?;
            Ok(String::from_utf8_lossy(&req).into_owned())
        });
        let got = get_json(&format!("http://{addr}/health"));
        assert_eq!(got, Some(serde_json::json!({"ok": 1})));
        let req = server
            .join()
            .map_err(|_| crate::Error::Failed("server thread panicked".into()))??;
        assert!(req.starts_with("GET /health HTTP/1.0\r\n"), "{req}");
        let dead = crate::ports::unused_addr()?;
        assert_eq!(get(&format!("http://{dead}/"), None), None);
        Ok(())
    }
}
