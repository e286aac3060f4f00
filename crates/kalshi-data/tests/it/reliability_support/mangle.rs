//! A WebSocket man-in-the-middle that adds malformed frames to what the exchange sends.
//!
//! Client → exchange bytes pass untouched. Exchange → client: the HTTP upgrade response is
//! passed through, then frame by frame (server frames are unmasked); before every `every`-th
//! complete text frame one malformed text frame is inserted. Nothing real is dropped or
//! altered, so `verify` must still find every message.

use super::Res;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// What the exchange never sends but a client must survive.
fn junk(i: u64) -> Vec<u8> {
    match i % 8 {
        0 => b"this is not json".to_vec(),
        1 => br#"{"type":"orderbook_delta"}"#.to_vec(),
        2 => br#"{"type":"trade","msg":{"trade_id":42,"market_ticker":null}}"#.to_vec(),
        3 => br#"{"type":"ticker","msg":{"market_ticker":"SIM-NOPE","price_dollars":"abc"}}"#
            .to_vec(),
        4 => br#"{"type":"no_such_type","msg":{}}"#.to_vec(),
        5 => br#"{"type":"trade","sid":"#.to_vec(),
        6 => br#"[null, 1, "x"]"#.to_vec(),
        _ => {
            let mut v = br#"{"type":"ticker","msg":{"pad":""#.to_vec();
            v.extend(std::iter::repeat_n(b'x', 200_000));
            v.extend(br#""}}"#);
            v
        }
    }
}

fn text_frame(payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x81];
    let n = payload.len();
    if n < 126 {
        f.push(u8::try_from(n).unwrap_or(0));
    } else if n <= usize::from(u16::MAX) {
        f.push(126);
        f.extend(u16::try_from(n).unwrap_or(0).to_be_bytes());
    } else {
        f.push(127);
        f.extend((n as u64).to_be_bytes());
    }
    f.extend_from_slice(payload);
    f
}

pub struct MangleProxy {
    pub port: u16,
    pub injected: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl MangleProxy {
    /// Listens on a free loopback port and forwards to `127.0.0.1:upstream`.
    pub fn start(upstream: u16, every: u64) -> Res<MangleProxy> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let port = listener.local_addr()?.port();
        listener.set_nonblocking(true)?;
        let injected = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (inj, st) = (injected.clone(), stop.clone());
        std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((down, _)) => {
                        let inj = inj.clone();
                        std::thread::spawn(move || {
                            let _ = relay(down, upstream, every, &inj);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        Ok(MangleProxy {
            port,
            injected,
            stop,
        })
    }
}

impl Drop for MangleProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn relay(down: TcpStream, upstream: u16, every: u64, injected: &AtomicU64) -> Res<()> {
    down.set_nonblocking(false)?;
    let up = TcpStream::connect(("127.0.0.1", upstream))?;
    let (mut c_read, mut u_write) = (down.try_clone()?, up.try_clone()?);
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut c_read, &mut u_write);
        let _ = u_write.shutdown(std::net::Shutdown::Both);
    });
    let r = mangle(up.try_clone()?, down.try_clone()?, every, injected);
    let _ = down.shutdown(std::net::Shutdown::Both);
    let _ = up.shutdown(std::net::Shutdown::Both);
    r
}

fn mangle(mut up: TcpStream, mut down: TcpStream, every: u64, injected: &AtomicU64) -> Res<()> {
    // The HTTP upgrade response, byte by byte up to its blank line.
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        up.read_exact(&mut b)?;
        head.push(b[0]);
    }
    down.write_all(&head)?;
    let mut text_frames = 0u64;
    loop {
        let mut h = [0u8; 2];
        up.read_exact(&mut h)?;
        let mut frame = h.to_vec();
        let len = match h[1] & 0x7f {
            126 => {
                let mut e = [0u8; 2];
                up.read_exact(&mut e)?;
                frame.extend(e);
                u64::from(u16::from_be_bytes(e))
            }
            127 => {
                let mut e = [0u8; 8];
                up.read_exact(&mut e)?;
                frame.extend(e);
                u64::from_be_bytes(e)
            }
            n => u64::from(n),
        };
        if h[1] & 0x80 != 0 {
            let mut m = [0u8; 4];
            up.read_exact(&mut m)?;
            frame.extend(m);
        }
        let mut payload = vec![0u8; usize::try_from(len)?];
        up.read_exact(&mut payload)?;
        frame.extend(payload);
        let (fin, opcode) = (h[0] & 0x80 != 0, h[0] & 0x0f);
        // Only before a complete text message: never inside a fragmented one.
        if fin && opcode == 1 {
            text_frames += 1;
            if text_frames.is_multiple_of(every) {
                let i = injected.fetch_add(1, Ordering::Relaxed);
                down.write_all(&text_frame(&junk(i)))?;
            }
        }
        down.write_all(&frame)?;
    }
}
