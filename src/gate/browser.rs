//! Browser-facing policy: which origins may call the API (CORS and a same-origin check for
//! state-changing requests) and which may frame the UI (`Content-Security-Policy: frame-ancestors`).

use std::net::SocketAddr;

use http::{header, HeaderMap, HeaderValue, Method, StatusCode};

use crate::error::Error;

/// Request headers a cross-origin caller may send.
const CORS_ALLOWED_HEADERS: &str = "authorization, content-type, x-request-id, x-mlflow-workspace";
const CORS_ALLOWED_METHODS: &str = "GET, HEAD, POST, PUT, PATCH, DELETE";

/// The `Content-Security-Policy` value that allows this origin and `extra` origins to frame a page.
pub fn frame_ancestors_policy(extra: &[String]) -> HeaderValue {
    let mut value = String::from("frame-ancestors 'self'");
    for origin in extra {
        value.push(' ');
        value.push_str(origin);
    }
    HeaderValue::from_str(&value)
        .unwrap_or_else(|_| HeaderValue::from_static("frame-ancestors 'self'"))
}

/// Where a request comes from, as far as browsers tell.
pub enum Origin<'a> {
    /// No `Origin` header: not a cross-origin browser request (CLI, SDK, same-origin GET).
    None,
    /// One of the proxy's own origins (see [`OriginPolicy`]).
    Same,
    /// Another origin listed in `--cors-allowed-origins`.
    Allowed(&'a HeaderValue),
    /// Any other origin.
    Foreign,
}

/// The origins the proxy is configured to serve and those allowed to call it cross-origin.
///
/// "Same origin" is never judged from the request's own `Host`: under DNS rebinding a hostile page's
/// requests carry its own name in both `Origin` and `Host`. The proxy's own origins are its listen
/// address (on loopback or all interfaces: `localhost`, `127.0.0.1` and `[::1]` on the listen port, which
/// a rebinding page cannot have as its origin) and `--public-url`.
pub struct OriginPolicy {
    own: Vec<String>,
    cors_allowed: Vec<String>,
}

impl OriginPolicy {
    /// `listen` is the bound address (its real port when `--listen` asked for port 0).
    pub fn new(listen: SocketAddr, tls: bool, public: &[String], cors_allowed: &[String]) -> Self {
        let scheme = if tls { "https" } else { "http" };
        let ip = listen.ip();
        let hosts: Vec<String> = if ip.is_loopback() || ip.is_unspecified() {
            vec!["localhost".into(), "127.0.0.1".into(), "[::1]".into()]
        } else {
            vec![SocketAddr::new(ip, 0)
                .to_string()
                .trim_end_matches(":0")
                .to_string()]
        };
        let mut own: Vec<String> = hosts
            .iter()
            .filter_map(|host| normalize_origin(&format!("{scheme}://{host}:{}", listen.port())))
            .collect();
        own.extend(public.iter().filter_map(|o| normalize_origin(o)));
        let cors_allowed = cors_allowed
            .iter()
            .filter_map(|o| normalize_origin(o))
            .collect();
        OriginPolicy { own, cors_allowed }
    }

    pub fn classify<'a>(&self, headers: &'a HeaderMap) -> Origin<'a> {
        let Some(origin) = headers.get(header::ORIGIN) else {
            return Origin::None;
        };
        match origin.to_str().ok().and_then(normalize_origin) {
            Some(seen) if self.own.contains(&seen) => Origin::Same,
            Some(seen) if self.cors_allowed.contains(&seen) => Origin::Allowed(origin),
            _ => Origin::Foreign,
        }
    }
}

/// An origin as compared: lower case, no trailing `/`, no default port; `None` if it is not
/// `http(s)://host[:port]`.
fn normalize_origin(origin: &str) -> Option<String> {
    let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
    let (scheme, authority) = origin.split_once("://")?;
    let default_port = match scheme {
        "http" => ":80",
        "https" => ":443",
        _ => return None,
    };
    if authority.is_empty() || authority.contains(['/', '?', '#', '@']) {
        return None;
    }
    let authority = authority.strip_suffix(default_port).unwrap_or(authority);
    Some(format!("{scheme}://{authority}"))
}

/// Refuses state-changing requests from origins that may not make them (a browser on another site
/// must not be able to drive this proxy's AWS identity).
pub fn refuse_cross_origin(
    method: &Method,
    origin: &Origin<'_>,
    headers: &HeaderMap,
) -> Result<(), Error> {
    let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    match origin {
        Origin::Foreign if !safe => {
            let seen = headers
                .get(header::ORIGIN)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            Err(Error::PermissionDenied(format!(
                "cross-origin request refused: the Origin {seen:?} is not one this proxy serves. If it is \
                 this proxy's own address (a load balancer, a DNS name, a port mapping), set --public-url \
                 (MLFLOW_PROXY_PUBLIC_URL) to it; for another site's pages, --cors-allowed-origins \
                 (MLFLOW_PROXY_CORS_ALLOWED_ORIGINS)"
            )))
        }
        _ => Ok(()),
    }
}

/// The answer to a CORS preflight (`OPTIONS` with `Access-Control-Request-Method`), if this is one:
/// the allowed methods and headers for an allowed origin, a refusal for any other.
pub fn preflight(
    method: &Method,
    headers: &HeaderMap,
    origin: &Origin<'_>,
) -> Option<Result<warp::reply::Response, Error>> {
    if *method != Method::OPTIONS || !headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD) {
        return None;
    }
    let Origin::Allowed(value) = origin else {
        return Some(Err(Error::PermissionDenied(
            "CORS preflight refused: the Origin is not in --cors-allowed-origins".into(),
        )));
    };
    let mut response = warp::reply::Response::new(Default::default());
    *response.status_mut() = StatusCode::NO_CONTENT;
    {
        let h = response.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, (*value).clone());
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(CORS_ALLOWED_METHODS),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(CORS_ALLOWED_HEADERS),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
    Some(Ok(response))
}

/// Removes every `Access-Control-*` header from an upstream answer: the proxy's own CORS decision
/// (`--cors-allowed-origins`) is the only one a browser may see, so an upstream's
/// `Access-Control-Allow-Origin: *` cannot open the API to every site.
pub fn strip_upstream_cors(headers: &mut HeaderMap) {
    let names: Vec<header::HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().starts_with("access-control-"))
        .cloned()
        .collect();
    for name in names {
        headers.remove(name);
    }
}

/// Adds the CORS response headers for an allowed origin (never with credentials, never `*`).
pub fn add_cors_headers(response: &mut warp::reply::Response, origin: &Origin<'_>) {
    if let Origin::Allowed(value) = origin {
        let h = response.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, (*value).clone());
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("x-request-id"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, host.parse().unwrap());
        if let Some(o) = origin {
            h.insert(header::ORIGIN, o.parse().unwrap());
        }
        h
    }

    fn policy(listen: &str, tls: bool, public: &[&str], allowed: &[&str]) -> OriginPolicy {
        let strings = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        OriginPolicy::new(
            listen.parse().unwrap(),
            tls,
            &strings(public),
            &strings(allowed),
        )
    }

    fn is(policy: &OriginPolicy, origin: Option<&str>, host: &str) -> &'static str {
        match policy.classify(&headers(origin, host)) {
            Origin::None => "none",
            Origin::Same => "same",
            Origin::Allowed(_) => "allowed",
            Origin::Foreign => "foreign",
        }
    }

    #[test]
    fn origins_are_classified_against_the_configured_ones_not_the_host() {
        let p = policy(
            "0.0.0.0:8080",
            false,
            &["https://MLflow.example.com/"],
            &["https://portal.example.com"],
        );
        assert_eq!(is(&p, None, "p:8080"), "none");
        assert_eq!(
            is(&p, Some("http://localhost:8080"), "localhost:8080"),
            "same"
        );
        assert_eq!(is(&p, Some("http://127.0.0.1:8080"), "x"), "same");
        assert_eq!(is(&p, Some("http://[::1]:8080"), "x"), "same");
        assert_eq!(is(&p, Some("https://mlflow.example.com:443"), "x"), "same");
        assert_eq!(is(&p, Some("https://PORTAL.example.com"), "p"), "allowed");
        // DNS rebinding: the page's own name in Origin and Host alike.
        assert_eq!(
            is(&p, Some("http://evil.example:8080"), "evil.example:8080"),
            "foreign"
        );
        assert_eq!(
            is(&p, Some("http://localhost:9090"), "localhost:9090"),
            "foreign"
        );
        assert_eq!(
            is(&p, Some("https://localhost:8080"), "localhost:8080"),
            "foreign"
        );
        assert_eq!(is(&p, Some("null"), "p:8080"), "foreign");
        assert_eq!(is(&p, Some("http://user@localhost:8080"), "x"), "foreign");
    }

    #[test]
    fn listen_address_origins() {
        let p = policy("10.0.0.5:443", true, &[], &[]);
        assert_eq!(is(&p, Some("https://10.0.0.5"), "x"), "same");
        assert_eq!(is(&p, Some("http://10.0.0.5:443"), "x"), "foreign");
        assert_eq!(is(&p, Some("https://localhost"), "x"), "foreign");
        let p = policy("[fd00::5]:8080", false, &[], &[]);
        assert_eq!(is(&p, Some("http://[fd00::5]:8080"), "x"), "same");
        let p = policy("127.0.0.1:80", false, &[], &[]);
        assert_eq!(is(&p, Some("http://localhost"), "x"), "same");
    }

    #[test]
    fn foreign_writes_are_refused_reads_are_not() {
        let foreign = Origin::Foreign;
        let h = headers(Some("https://mlflow.example.com"), "mlflow.example.com");
        let refusal = refuse_cross_origin(&Method::POST, &foreign, &h).unwrap_err();
        assert_eq!(refusal.status(), StatusCode::FORBIDDEN);
        let message = refusal.to_string();
        assert!(message.contains("--public-url") && message.contains("MLFLOW_PROXY_PUBLIC_URL"));
        assert!(message.contains("https://mlflow.example.com"), "{message}");
        assert!(refuse_cross_origin(&Method::GET, &foreign, &h).is_ok());
        assert!(refuse_cross_origin(&Method::POST, &Origin::Same, &h).is_ok());
        assert!(refuse_cross_origin(&Method::DELETE, &Origin::None, &h).is_ok());
    }

    #[test]
    fn preflight_only_for_allowed_origins_and_never_a_wildcard() {
        let mut h = headers(Some("https://portal.example.com"), "p");
        h.insert(
            header::ACCESS_CONTROL_REQUEST_METHOD,
            "POST".parse().unwrap(),
        );
        let origin = policy(
            "127.0.0.1:8080",
            false,
            &[],
            &["https://portal.example.com"],
        )
        .classify(&h);
        let response = preflight(&Method::OPTIONS, &h, &origin).unwrap().unwrap();
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        assert_eq!(
            response.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "https://portal.example.com"
        );
        assert!(response
            .headers()
            .get(header::ACCESS_CONTROL_ALLOW_CREDENTIALS)
            .is_none());
        let origin = policy("127.0.0.1:8080", false, &[], &[]).classify(&h);
        assert_eq!(
            preflight(&Method::OPTIONS, &h, &origin)
                .unwrap()
                .unwrap_err()
                .status(),
            StatusCode::FORBIDDEN
        );
        assert!(preflight(&Method::GET, &h, &origin).is_none());
    }

    #[test]
    fn upstream_cors_headers_are_stripped() {
        let mut h = HeaderMap::new();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*".parse().unwrap());
        h.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            "true".parse().unwrap(),
        );
        h.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        strip_upstream_cors(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key(header::CONTENT_TYPE));
    }

    #[test]
    fn frame_policy() {
        assert_eq!(frame_ancestors_policy(&[]), "frame-ancestors 'self'");
        assert_eq!(
            frame_ancestors_policy(&["https://a.example".into(), "http://127.0.0.1:3000".into()]),
            "frame-ancestors 'self' https://a.example http://127.0.0.1:3000"
        );
    }
}
