//! The MLflow UI under `/mlflow/`: the prefix is stripped before forwarding, and responses are made
//! embeddable and kept on this origin (no upstream `X-Frame-Options`, our `frame-ancestors`, `Location`
//! headers rewritten to point under `/mlflow/`).

use http::{header, HeaderMap, HeaderValue};

pub const PREFIX: &str = "/mlflow";

/// The upstream path for a request path under `/mlflow/` (`/mlflow/` → `/`), or `None` when the path
/// is not under the prefix (`/mlflow` itself redirects, `/mlflowx` is not ours).
pub fn upstream_path(path: &str) -> Option<&str> {
    let rest = path.strip_prefix(PREFIX)?;
    rest.starts_with('/').then_some(rest)
}

/// Rewrites upstream response headers so the UI stays on this origin and may be framed as configured.
pub fn rewrite_response_headers(
    headers: &mut HeaderMap,
    upstream_authority: &str,
    frame_policy: &HeaderValue,
) {
    headers.remove(header::X_FRAME_OPTIONS);
    let csp = headers
        .get(header::CONTENT_SECURITY_POLICY)
        .and_then(|v| v.to_str().ok())
        .map(|upstream| {
            upstream
                .split(';')
                .map(str::trim)
                .filter(|d| !d.is_empty() && !d.to_ascii_lowercase().starts_with("frame-ancestors"))
                .collect::<Vec<_>>()
        });
    let policy = match csp {
        Some(mut directives) if !directives.is_empty() => {
            let ours = frame_policy.to_str().unwrap_or("frame-ancestors 'self'");
            directives.push(ours);
            HeaderValue::from_str(&directives.join("; ")).unwrap_or_else(|_| frame_policy.clone())
        }
        _ => frame_policy.clone(),
    };
    headers.insert(header::CONTENT_SECURITY_POLICY, policy);

    if let Some(location) = headers.get(header::LOCATION).and_then(|v| v.to_str().ok()) {
        if let Some(rewritten) = rewrite_location(location, upstream_authority) {
            if let Ok(value) = HeaderValue::from_str(&rewritten) {
                headers.insert(header::LOCATION, value);
            }
        }
    }
}

/// Maps an upstream redirect target into `/mlflow/`: absolute URLs on the upstream host and
/// path-absolute targets get the prefix; relative and foreign targets are left alone.
fn rewrite_location(location: &str, upstream_authority: &str) -> Option<String> {
    let path = if let Some(after_scheme) = after_scheme(location) {
        let (authority, rest) =
            after_scheme.split_at(after_scheme.find('/').unwrap_or(after_scheme.len()));
        if !authority.eq_ignore_ascii_case(upstream_authority) {
            return None;
        }
        if rest.is_empty() {
            "/"
        } else {
            rest
        }
    } else if location.starts_with('/') && !location.starts_with("//") {
        location
    } else {
        return None;
    };
    Some(format!("{PREFIX}{path}"))
}

/// What follows `scheme://` when `location` starts with a scheme (RFC 3986: a letter, then letters,
/// digits, `+`, `-`, `.`); `None` for a path, even one whose query holds a `://`.
fn after_scheme(location: &str) -> Option<&str> {
    let (scheme, rest) = location.split_once("://")?;
    let mut chars = scheme.chars();
    let starts_with_letter = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    let scheme_chars = chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    (starts_with_letter && scheme_chars).then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_stripping() {
        assert_eq!(upstream_path("/mlflow/"), Some("/"));
        assert_eq!(
            upstream_path("/mlflow/static-files/app.js"),
            Some("/static-files/app.js")
        );
        assert_eq!(
            upstream_path("/mlflow/ajax-api/2.0/mlflow/runs/search"),
            Some("/ajax-api/2.0/mlflow/runs/search")
        );
        assert_eq!(upstream_path("/mlflow"), None);
        assert_eq!(upstream_path("/mlflowx/"), None);
    }

    #[test]
    fn framing_headers() {
        let policy = HeaderValue::from_static("frame-ancestors 'self' https://portal.example.com");
        let mut h = HeaderMap::new();
        h.insert(header::X_FRAME_OPTIONS, "SAMEORIGIN".parse().unwrap());
        rewrite_response_headers(&mut h, "up:5000", &policy);
        assert!(h.get(header::X_FRAME_OPTIONS).is_none());
        assert_eq!(h[header::CONTENT_SECURITY_POLICY], policy);

        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; frame-ancestors 'none'"
                .parse()
                .unwrap(),
        );
        rewrite_response_headers(&mut h, "up:5000", &policy);
        assert_eq!(
            h[header::CONTENT_SECURITY_POLICY],
            "default-src 'self'; frame-ancestors 'self' https://portal.example.com"
        );
    }

    #[test]
    fn locations() {
        assert_eq!(rewrite_location("/", "up"), Some("/mlflow/".into()));
        assert_eq!(
            rewrite_location("https://up/#/experiments", "up"),
            Some("/mlflow/#/experiments".into())
        );
        assert_eq!(
            rewrite_location("https://UP", "up"),
            Some("/mlflow/".into())
        );
        assert_eq!(rewrite_location("https://elsewhere/x", "up"), None);
        assert_eq!(rewrite_location("//evil/x", "up"), None);
        assert_eq!(rewrite_location("static-files/x", "up"), None);
        assert_eq!(
            rewrite_location("/login?next=https://up/x", "up"),
            Some("/mlflow/login?next=https://up/x".into())
        );
        assert_eq!(
            rewrite_location("/?r=a://b", "elsewhere"),
            Some("/mlflow/?r=a://b".into())
        );
    }
}
