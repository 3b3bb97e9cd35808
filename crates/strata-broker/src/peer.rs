//! Where a connection comes from, as handlers see it.

use std::net::SocketAddr;

/// The client's host as Kafka reports it (DescribeGroups): `/` and its IP.
pub fn client_host(peer: SocketAddr) -> String {
    format!("/{}", peer.ip())
}

/// Where a connection comes from.
#[derive(Debug, Clone)]
pub struct Peer {
    pub addr: SocketAddr,
    /// [`client_host`] of `addr`.
    pub host: String,
}

impl Peer {
    pub fn new(addr: SocketAddr) -> Self {
        Peer {
            addr,
            host: client_host(addr),
        }
    }
}
