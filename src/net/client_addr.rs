//! The address of the peer that opened the connection, as the accept loop recorded it, and the
//! client's own address behind trusted proxies.

use std::net::{IpAddr, SocketAddr};

use http::header::{HeaderMap, HeaderName};

use crate::net::cidr::Cidr;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The TCP peer of a request, put in the request's extensions by the accept loop (warp's own is
/// private to its server).
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub SocketAddr);

/// The address a request comes from, for the records that name the caller (audit lines): the TCP peer,
/// or, when the peer is one of the `trusted` proxies (the load balancer), the nearest address in
/// `X-Forwarded-For` that is not itself a trusted proxy. Entries left of it were written by the client
/// (or whatever it talked to first) and are not believed; an entry that is not an address ends the walk.
pub fn originating_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[Cidr]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let chain: Vec<&str> = headers
        .get_all(X_FORWARDED_FOR)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    let mut nearest = peer;
    for hop in chain.iter().rev() {
        let Ok(ip) = hop.trim().parse::<IpAddr>() else {
            break;
        };
        nearest = ip;
        if !is_trusted(ip) {
            break;
        }
    }
    nearest
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(X_FORWARDED_FOR, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn the_client_behind_trusted_proxies() {
        let alb: Vec<Cidr> = vec!["10.0.0.0/24".parse().unwrap()];
        let peer: IpAddr = "10.0.0.7".parse().unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            originating_ip(peer, &xff(&["203.0.113.9"]), &alb),
            ip("203.0.113.9")
        );
        // A client's own X-Forwarded-For is left of what the load balancer appended.
        assert_eq!(
            originating_ip(peer, &xff(&["1.2.3.4, 203.0.113.9"]), &alb),
            ip("203.0.113.9")
        );
        assert_eq!(
            originating_ip(peer, &xff(&["1.2.3.4", "203.0.113.9, 10.0.0.8"]), &alb),
            ip("203.0.113.9")
        );
        assert_eq!(originating_ip(peer, &xff(&[]), &alb), peer);
        assert_eq!(originating_ip(peer, &xff(&["garbage"]), &alb), peer);
        // From anyone else, the header is the client's claim: the peer is the client.
        let direct = ip("198.51.100.1");
        assert_eq!(originating_ip(direct, &xff(&["1.2.3.4"]), &alb), direct);
    }
}
