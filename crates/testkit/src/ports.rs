//! Loopback ports for tests: free ones to hand to a child process, and addresses nobody
//! listens on. A port found free can be taken by someone else before it is used; callers that
//! start a server on it retry on a lost race (see `up`'s port plan).

use std::net::{SocketAddr, TcpListener};

/// A port free on 127.0.0.1 right now.
pub fn free_port() -> std::io::Result<u16> {
    Ok(unused_addr()?.port())
}

/// `n` distinct free ports (all held until every one is found, so none repeats).
pub fn free_ports(n: usize) -> std::io::Result<Vec<u16>> {
    let held = (0..n)
        .map(|_| TcpListener::bind(("127.0.0.1", 0)))
        .collect::<std::io::Result<Vec<_>>>()?;
    held.iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect()
}

/// A loopback address nobody listens on: bound, then released (a dead peer's address).
pub fn unused_addr() -> std::io::Result<SocketAddr> {
    TcpListener::bind(("127.0.0.1", 0))?.local_addr()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_distinct() -> std::io::Result<()> {
        let ports = free_ports(8)?;
        let set: std::collections::BTreeSet<_> = ports.iter().collect();
        assert_eq!(set.len(), 8);
        assert!(free_port()? > 0);
        assert!(std::net::TcpStream::connect(unused_addr()?).is_err());
        Ok(())
    }
}
