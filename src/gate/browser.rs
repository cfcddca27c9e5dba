//! Browser-facing policy: which origins may call the API (CORS and a same-origin check for
//! state-changing requests) and which may frame the UI (`Content-Security-Policy: frame-ancestors`).

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
    /// The proxy's own origin.
    Same,
    /// Another origin listed in `--cors-allowed-origins`.
    Allowed(&'a HeaderValue),
    /// Any other origin.
    Foreign,
}

pub fn classify_origin<'a>(headers: &'a HeaderMap, allowed: &[String]) -> Origin<'a> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Origin::None;
    };
    let origin_str = origin.to_str().unwrap_or_default().to_ascii_lowercase();
    let own_host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_ascii_lowercase);
    let origin_host = origin_str.split_once("://").map(|(_, host)| host);
    if origin_host.is_some() && origin_host == own_host.as_deref() {
        return Origin::Same;
    }
    if allowed.contains(&origin_str) {
        Origin::Allowed(origin)
    } else {
        Origin::Foreign
    }
}

/// Refuses state-changing requests from origins that may not make them (a browser on another site
/// must not be able to drive this proxy's AWS identity).
pub fn refuse_cross_origin(method: &Method, origin: &Origin<'_>) -> Result<(), Error> {
    let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    match origin {
        Origin::Foreign if !safe => Err(Error::PermissionDenied(
            "cross-origin request refused: the Origin is not in --cors-allowed-origins".into(),
        )),
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

    #[test]
    fn origins_are_classified() {
        let allowed = vec!["https://portal.example.com".to_string()];
        assert!(matches!(
            classify_origin(&headers(None, "p:8080"), &allowed),
            Origin::None
        ));
        assert!(matches!(
            classify_origin(&headers(Some("http://p:8080"), "p:8080"), &allowed),
            Origin::Same
        ));
        assert!(matches!(
            classify_origin(
                &headers(Some("https://PORTAL.example.com"), "p:8080"),
                &allowed
            ),
            Origin::Allowed(_)
        ));
        assert!(matches!(
            classify_origin(&headers(Some("https://evil.example"), "p:8080"), &allowed),
            Origin::Foreign
        ));
        assert!(matches!(
            classify_origin(&headers(Some("null"), "p:8080"), &allowed),
            Origin::Foreign
        ));
    }

    #[test]
    fn foreign_writes_are_refused_reads_are_not() {
        let foreign = Origin::Foreign;
        assert_eq!(
            refuse_cross_origin(&Method::POST, &foreign)
                .unwrap_err()
                .status(),
            StatusCode::FORBIDDEN
        );
        assert!(refuse_cross_origin(&Method::GET, &foreign).is_ok());
        assert!(refuse_cross_origin(&Method::POST, &Origin::Same).is_ok());
        assert!(refuse_cross_origin(&Method::DELETE, &Origin::None).is_ok());
    }

    #[test]
    fn preflight_only_for_allowed_origins_and_never_a_wildcard() {
        let mut h = headers(Some("https://portal.example.com"), "p");
        h.insert(
            header::ACCESS_CONTROL_REQUEST_METHOD,
            "POST".parse().unwrap(),
        );
        let allowed = vec!["https://portal.example.com".to_string()];
        let origin = classify_origin(&h, &allowed);
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
        let origin = classify_origin(&h, &[]);
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
    fn frame_policy() {
        assert_eq!(frame_ancestors_policy(&[]), "frame-ancestors 'self'");
        assert_eq!(
            frame_ancestors_policy(&["https://a.example".into(), "http://127.0.0.1:3000".into()]),
            "frame-ancestors 'self' https://a.example http://127.0.0.1:3000"
        );
    }
}
