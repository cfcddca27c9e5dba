//! The address of the peer that opened the connection, as the accept loop recorded it.

use std::net::SocketAddr;

/// The TCP peer of a request, put in the request's extensions by the accept loop (warp's own is
/// private to its server).
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub SocketAddr);
