//! systemd's service notification protocol (`sd_notify(3)`): `READY=1` once a process serves,
//! `WATCHDOG=1` from its main loop at least every `WatchdogSec/2` while that loop makes
//! progress, so that systemd (`Type=notify`, `WatchdogSec=` in deploy/systemd) restarts a
//! process that hangs. Without `$NOTIFY_SOCKET` (not under systemd) every call does nothing.
//!
//! The protocol is one datagram on a Unix socket; written here on std's `UnixDatagram` (the
//! abstract-namespace form included) rather than through another dependency.

use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// Sends `state` (e.g. `READY=1`) to systemd; false when not under systemd or the send failed.
pub fn notify(state: &str) -> bool {
    match std::env::var_os("NOTIFY_SOCKET") {
        Some(path) => notify_to(&path, state),
        None => false,
    }
}

/// Sends `state` to the socket `path` names (`@name`: the abstract namespace).
pub fn notify_to(path: &std::ffi::OsStr, state: &str) -> bool {
    let addr = {
        use std::os::unix::ffi::OsStrExt as _;
        let bytes = path.as_bytes();
        match bytes.split_first() {
            Some((b'@', name)) => {
                use std::os::linux::net::SocketAddrExt as _;
                SocketAddr::from_abstract_name(name)
            }
            _ => SocketAddr::from_pathname(path),
        }
    };
    let Ok(addr) = addr else { return false };
    UnixDatagram::unbound()
        .and_then(|s| s.send_to_addr(state.as_bytes(), &addr))
        .is_ok()
}

/// `READY=1`: startup is done (store open, listener bound).
pub fn ready() -> bool {
    notify("READY=1")
}

/// `WATCHDOG=1`: the main loop is alive.
pub fn watchdog() -> bool {
    notify("WATCHDOG=1")
}

/// `STOPPING=1`: a graceful stop has begun (a slow drain is not a hang).
pub fn stopping() -> bool {
    notify("STOPPING=1")
}

/// The interval systemd expects `WATCHDOG=1` within (`$WATCHDOG_USEC`, when `$WATCHDOG_PID`
/// is unset or names this process); `None` when no watchdog is armed.
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID")
        && pid.parse::<u32>().ok() != Some(std::process::id())
    {
        return None;
    }
    (usec > 0).then(|| Duration::from_micros(usec))
}

/// Sends `READY=1`, then `WATCHDOG=1` every third of the watchdog interval for as long as
/// `alive()` says the process's main loop is making progress, until `stop` is cancelled. A
/// loop that stalls stops the pings, and systemd restarts the process after `WatchdogSec`.
pub fn spawn(
    alive: impl Fn() -> bool + Send + 'static,
    stop: tokio_util::sync::CancellationToken,
) -> Option<tokio::task::JoinHandle<()>> {
    ready();
    let interval = watchdog_interval()?;
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval / 3);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    if alive() {
                        watchdog();
                    } else {
                        tracing::warn!("main loop not progressing: watchdog ping withheld");
                    }
                }
                () = stop.cancelled() => {
                    stopping();
                    return;
                }
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_reach_the_socket_by_path_and_by_abstract_name() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("notify.sock");
        let socket = UnixDatagram::bind(&path)?;
        assert!(notify_to(path.as_os_str(), "READY=1"));
        assert!(notify_to(path.as_os_str(), "WATCHDOG=1"));
        let mut buf = [0u8; 64];
        let n = socket.recv(&mut buf)?;
        assert_eq!(&buf[..n], b"READY=1");
        let n = socket.recv(&mut buf)?;
        assert_eq!(&buf[..n], b"WATCHDOG=1");

        use std::os::linux::net::SocketAddrExt as _;
        let name = format!("kd-notify-test-{}", std::process::id());
        let abstract_socket =
            UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes())?)?;
        assert!(notify_to(format!("@{name}").as_ref(), "WATCHDOG=1"));
        let n = abstract_socket.recv(&mut buf)?;
        assert_eq!(&buf[..n], b"WATCHDOG=1");
        assert!(!notify_to(dir.path().join("absent").as_os_str(), "READY=1"));
        Ok(())
    }
}
