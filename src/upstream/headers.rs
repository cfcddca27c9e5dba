//! Header hygiene in both directions.
//!
//! Inbound: hop-by-hop headers (and any the client's `Connection` names), credentials the client sent
//! (`Authorization`, `Cookie`, `X-Amz-*`, ALB OIDC tokens), routing headers and forwarding headers are
//! dropped; the proxy then sets `Host`, the routing header, `X-Forwarded-*` and `X-Request-Id` itself.
//! Outbound: hop-by-hop headers and upstream cookies never reach the client.

use std::net::{IpAddr, SocketAddr};

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

use crate::net::cidr::Cidr;

/// Hop-by-hop headers (RFC 9110 section 7.6.1) plus `Proxy-*` and `Keep-Alive`.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Inbound headers that carry credentials or routing and must never be forwarded.
const DROPPED_INBOUND: [&str; 14] = [
    "host",
    // Method overrides: the method that was authorised is the method that is sent.
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
    // Browser context: the proxy checks Origin itself (see `browser`); upstream MLflow's own
    // cross-origin checks would otherwise refuse requests made from the proxy's origin.
    "origin",
    "referer",
    "authorization",
    "cookie",
    "content-length",
    "expect",
    "forwarded",
    "x-mlflow-sm-tracking-server-arn",
    "x-sm-mlflow-app-arn",
    "x-request-id",
];

/// Inbound header-name prefixes that are dropped (AWS signing headers, ALB OIDC data, X-Forwarded-*).
const DROPPED_INBOUND_PREFIXES: [&str; 3] = ["x-amz-", "x-amzn-oidc-", "x-forwarded-"];

// Header names as constants: looking a header up by `&str` parses the name on every call.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

fn is_hop_by_hop(name: &HeaderName, connection_listed: &[String]) -> bool {
    HOP_BY_HOP.contains(&name.as_str()) || connection_listed.iter().any(|c| c == name.as_str())
}

/// Header names the `Connection` header lists (they are hop-by-hop for this message only).
fn connection_listed(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|token| token.trim().to_ascii_lowercase())
        .filter(|token| !token.is_empty())
        .collect()
}

/// Who sent the request and how, for the `X-Forwarded-*` headers.
pub struct ClientInfo<'a> {
    pub remote: Option<SocketAddr>,
    /// The `Host` the client addressed.
    pub host: Option<&'a HeaderValue>,
    /// `http` or `https` as the proxy's own listener speaks it.
    pub proto: &'static str,
    pub trusted_proxies: &'a [Cidr],
}

impl ClientInfo<'_> {
    fn remote_is_trusted(&self) -> bool {
        match self.remote {
            Some(addr) => self.trusted_proxies.iter().any(|c| c.contains(addr.ip())),
            None => false,
        }
    }
}

/// Builds the headers forwarded upstream from the client's headers (before Host, routing and signing).
pub fn forward_request_headers(
    inbound: &HeaderMap,
    client: &ClientInfo<'_>,
    request_id: &HeaderValue,
) -> HeaderMap {
    let listed = connection_listed(inbound);
    let mut out = HeaderMap::with_capacity(inbound.len() + 4);
    for (name, value) in inbound {
        let lower = name.as_str();
        if is_hop_by_hop(name, &listed)
            || DROPPED_INBOUND.contains(&lower)
            || DROPPED_INBOUND_PREFIXES
                .iter()
                .any(|p| lower.starts_with(p))
        {
            continue;
        }
        out.append(name.clone(), value.clone());
    }

    // X-Forwarded-*: from a trusted proxy (the ALB) its chain is kept and extended; from anyone else
    // the client's own claims are discarded.
    let trusted = client.remote_is_trusted();
    let remote_ip: Option<IpAddr> = client.remote.map(|a| a.ip());
    let inbound_xff = inbound
        .get(&X_FORWARDED_FOR)
        .and_then(|v| v.to_str().ok())
        .filter(|_| trusted);
    let xff = match (inbound_xff, remote_ip) {
        (Some(chain), Some(ip)) => HeaderValue::from_str(&format!("{chain}, {ip}")).ok(),
        (None, Some(ip)) => Some(ip_header_value(ip)),
        (Some(chain), None) => HeaderValue::from_str(chain).ok(),
        (None, None) => None,
    };
    if let Some(value) = xff {
        out.insert(X_FORWARDED_FOR, value);
    }
    let proto = inbound
        .get(&X_FORWARDED_PROTO)
        .filter(|_| trusted)
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static(client.proto));
    out.insert(X_FORWARDED_PROTO, proto);
    let host = inbound
        .get(&X_FORWARDED_HOST)
        .filter(|_| trusted)
        .or(client.host)
        .cloned();
    if let Some(host) = host {
        out.insert(X_FORWARDED_HOST, host);
    }
    out.insert(X_REQUEST_ID, request_id.clone());
    out
}

/// An IP address as a header value; IPv4 (the common case) is written without the formatting machinery,
/// which the profile showed costing more than the rest of this header's work.
fn ip_header_value(ip: IpAddr) -> HeaderValue {
    let IpAddr::V4(v4) = ip else {
        return HeaderValue::from_str(&ip.to_string()).unwrap_or(HeaderValue::from_static(""));
    };
    let mut text = [0u8; 15];
    let mut len = 0;
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            text[len] = b'.';
            len += 1;
        }
        let digits = [octet / 100, octet / 10 % 10, octet % 10];
        let skip = if octet >= 100 {
            0
        } else if octet >= 10 {
            1
        } else {
            2
        };
        for digit in &digits[skip..] {
            text[len] = b'0' + digit;
            len += 1;
        }
    }
    HeaderValue::from_bytes(&text[..len]).unwrap_or(HeaderValue::from_static(""))
}

/// Removes hop-by-hop headers and upstream cookies from a response before it goes to the client.
pub fn clean_response_headers(headers: &mut HeaderMap) {
    let listed = connection_listed(headers);
    let remove: Vec<HeaderName> = headers
        .keys()
        .filter(|name| is_hop_by_hop(name, &listed) || *name == header::SET_COOKIE)
        .cloned()
        .collect();
    for name in remove {
        headers.remove(name);
    }
}

/// The client's `X-Request-Id` if it is reasonable (1 to 128 visible ASCII characters), else a new UUID.
pub fn request_id(inbound: &HeaderMap) -> HeaderValue {
    inbound
        .get(&X_REQUEST_ID)
        .filter(|v| {
            let bytes = v.as_bytes();
            !bytes.is_empty() && bytes.len() <= 128 && bytes.iter().all(|b| b.is_ascii_graphic())
        })
        .cloned()
        .unwrap_or_else(|| {
            let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
            let text = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut text);
            HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("unknown"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        m
    }

    fn client<'a>(
        remote: &str,
        host: Option<&'a HeaderValue>,
        trusted: &'a [Cidr],
    ) -> ClientInfo<'a> {
        ClientInfo {
            remote: Some(remote.parse().unwrap()),
            host,
            proto: "http",
            trusted_proxies: trusted,
        }
    }

    #[test]
    fn ip_addresses_as_header_values() {
        for ip in [
            "0.0.0.0",
            "10.0.12.7",
            "127.0.0.1",
            "192.168.100.255",
            "::1",
            "2001:db8::8",
        ] {
            let parsed: IpAddr = ip.parse().unwrap();
            assert_eq!(ip_header_value(parsed), ip);
        }
    }

    #[test]
    fn drops_credentials_hop_by_hop_routing_and_forwarding_headers() {
        let inbound = map(&[
            ("authorization", "Bearer secret"),
            ("cookie", "session=abc"),
            ("x-amz-date", "20200101T000000Z"),
            ("x-amz-security-token", "tok"),
            ("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD"),
            ("x-amzn-oidc-data", "jwt"),
            ("x-mlflow-sm-tracking-server-arn", "arn:other"),
            ("x-sm-mlflow-app-arn", "arn:other"),
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-host", "evil.example"),
            ("forwarded", "for=6.6.6.6"),
            ("connection", "keep-alive, x-custom-hop"),
            ("keep-alive", "timeout=5"),
            ("x-custom-hop", "1"),
            ("te", "trailers"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "h2c"),
            ("proxy-authorization", "Basic x"),
            ("host", "proxy.example"),
            ("content-length", "12"),
            ("expect", "100-continue"),
            ("content-type", "application/json"),
            ("user-agent", "mlflow-python-client/3.10.1"),
            ("accept", "*/*"),
            ("x-mlflow-workspace", "team-a"),
            ("origin", "http://proxy.example"),
            ("referer", "http://proxy.example/mlflow/"),
        ]);
        let host = HeaderValue::from_static("proxy.example");
        let rid = HeaderValue::from_static("rid-1");
        let out =
            forward_request_headers(&inbound, &client("10.0.0.9:5000", Some(&host), &[]), &rid);
        let mut names: Vec<&str> = out.keys().map(|k| k.as_str()).collect();
        names.sort();
        assert_eq!(
            names,
            [
                "accept",
                "content-type",
                "user-agent",
                "x-forwarded-for",
                "x-forwarded-host",
                "x-forwarded-proto",
                "x-mlflow-workspace",
                "x-request-id"
            ]
        );
        assert_eq!(out["x-forwarded-for"], "10.0.0.9");
        assert_eq!(out["x-forwarded-host"], "proxy.example");
        assert_eq!(out["x-forwarded-proto"], "http");
        assert_eq!(out["x-request-id"], "rid-1");
    }

    #[test]
    fn trusted_proxy_chain_is_extended() {
        let inbound = map(&[
            ("x-forwarded-for", "203.0.113.7"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "mlflow.example.com"),
        ]);
        let trusted: Vec<Cidr> = vec!["10.0.0.0/8".parse().unwrap()];
        let rid = HeaderValue::from_static("r");
        let out = forward_request_headers(&inbound, &client("10.1.2.3:443", None, &trusted), &rid);
        assert_eq!(out["x-forwarded-for"], "203.0.113.7, 10.1.2.3");
        assert_eq!(out["x-forwarded-proto"], "https");
        assert_eq!(out["x-forwarded-host"], "mlflow.example.com");
        // The same headers from an untrusted address are replaced.
        let out = forward_request_headers(&inbound, &client("192.0.2.1:443", None, &trusted), &rid);
        assert_eq!(out["x-forwarded-for"], "192.0.2.1");
        assert_eq!(out["x-forwarded-proto"], "http");
        assert!(out.get("x-forwarded-host").is_none());
    }

    #[test]
    fn response_cleaning() {
        let mut headers = map(&[
            ("content-type", "application/json"),
            ("content-length", "10"),
            ("connection", "close, x-hop"),
            ("x-hop", "1"),
            ("transfer-encoding", "chunked"),
            ("set-cookie", "AWSALB=abc"),
            ("x-request-id", "r"),
        ]);
        clean_response_headers(&mut headers);
        let mut names: Vec<&str> = headers.keys().map(|k| k.as_str()).collect();
        names.sort();
        assert_eq!(names, ["content-length", "content-type", "x-request-id"]);
    }

    #[test]
    fn request_ids() {
        let kept = request_id(&map(&[("x-request-id", "abc-123")]));
        assert_eq!(kept, "abc-123");
        let fresh = request_id(&map(&[("x-request-id", "has space")]));
        assert_eq!(fresh.len(), 36);
        let long = "x".repeat(200);
        assert_eq!(request_id(&map(&[("x-request-id", &long)])).len(), 36);
        assert_eq!(request_id(&HeaderMap::new()).len(), 36);
    }
}
