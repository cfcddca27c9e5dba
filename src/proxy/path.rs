//! Request paths: which ones are MLflow's, and refusing ambiguous ones before anything routes on them.
//!
//! A path is forwarded byte for byte as received, so it must mean one thing only: no `.`/`..` segments
//! (also percent-encoded), no empty segments, no encoded slashes or backslashes, no control characters,
//! no broken percent-escapes. Such paths are refused with 400, never normalised into another route.

use std::borrow::Cow;

use crate::error::Error;

/// Path prefixes of MLflow's REST API and downloads that are forwarded unchanged (PROTOCOL.md section 4).
const MLFLOW_PREFIXES: [&str; 2] = ["/api/", "/ajax-api/"];
/// Exact MLflow paths (and their sub-paths) forwarded unchanged.
const MLFLOW_ROUTES: [&str; 6] = [
    "/get-artifact",
    "/model-versions/get-artifact",
    "/graphql",
    "/version",
    "/health",
    "/v1/traces",
];
/// The proxy's own JSON API lives under `/api/` but is never forwarded.
pub const PROXY_API_PREFIX: &str = "/api/proxy/";

/// Whether `path` belongs to MLflow's HTTP API (and is therefore forwarded upstream).
pub fn is_mlflow_api_path(path: &str) -> bool {
    if path.starts_with(PROXY_API_PREFIX) || path == "/api/proxy" {
        return false;
    }
    MLFLOW_PREFIXES
        .iter()
        .any(|prefix| path.starts_with(prefix))
        || MLFLOW_ROUTES.iter().any(|route| {
            path.strip_prefix(route)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
}

/// Refuses paths that could mean more than one thing.
pub fn validate_path(path: &str) -> Result<(), Error> {
    let bad = |why: &str| {
        Err(Error::BadRequest(format!(
            "refused ambiguous request path: {why}"
        )))
    };
    if !path.starts_with('/') {
        return bad("it must start with '/'");
    }
    let mut segments = path[1..].split('/').peekable();
    while let Some(segment) = segments.next() {
        if segment.is_empty() && segments.peek().is_some() {
            return bad("empty segment ('//')");
        }
        let decoded = match percent_decode_strict(segment) {
            Some(decoded) => decoded,
            None => return bad("broken percent-encoding"),
        };
        if *decoded == *b"." || *decoded == *b".." {
            return bad("'.' or '..' segment");
        }
        // A '/' in a decoded segment was percent-encoded (segments are split at the literal ones).
        let refused = decoded
            .iter()
            .find(|b| matches!(b, b'/' | b'\\') || b.is_ascii_control());
        match refused {
            Some(b'/') => return bad("percent-encoded '/'"),
            Some(b'\\') => return bad("backslash"),
            Some(_) => return bad("control character"),
            None => {}
        }
    }
    Ok(())
}

/// Percent-decodes, returning `None` for a `%` not followed by two hex digits. Borrows when there is
/// nothing to decode (most path segments and query values).
pub fn percent_decode_strict(input: &str) -> Option<Cow<'_, [u8]>> {
    let bytes = input.as_bytes();
    if !bytes.contains(&b'%') {
        return Some(Cow::Borrowed(bytes));
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hi = hex_value(*bytes.get(i + 1)?)?;
            let lo = hex_value(*bytes.get(i + 2)?)?;
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(Cow::Owned(out))
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mlflow_paths() {
        for path in [
            "/api/2.0/mlflow/experiments/search",
            "/api/3.0/mlflow/traces/search",
            "/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts/a%20b.txt",
            "/ajax-api/2.0/mlflow/metrics/get-history-bulk",
            "/get-artifact",
            "/model-versions/get-artifact",
            "/graphql",
            "/version",
            "/health",
            "/v1/traces",
        ] {
            assert!(is_mlflow_api_path(path), "{path}");
        }
        for path in [
            "/",
            "/api/proxy/status",
            "/api/proxy",
            "/healthz",
            "/versionx",
            "/graphqlfoo",
            "/mlflow/",
            "/assets/index.js",
            "/API/2.0/mlflow/experiments/search",
        ] {
            assert!(!is_mlflow_api_path(path), "{path}");
        }
    }

    #[test]
    fn accepts_ordinary_paths() {
        for path in [
            "/",
            "/api/2.0/mlflow/runs/get",
            "/api/2.0/mlflow-artifacts/artifacts/0/run/artifacts/my%20file.txt",
            "/api/2.0/mlflow-artifacts/artifacts/0/run/artifacts/dir/",
            "/api/2.0/mlflow-artifacts/artifacts/x/.hidden",
            "/api/2.0/mlflow-artifacts/artifacts/x/a..b",
        ] {
            assert!(validate_path(path).is_ok(), "{path}");
        }
    }

    #[test]
    fn refuses_ambiguous_paths() {
        for path in [
            "api/2.0",
            "/api/2.0/../proxy/status",
            "/api/2.0/./mlflow",
            "/api/2.0/mlflow/..",
            "/api/2.0/%2e%2e/x",
            "/api/2.0/%2E%2e/x",
            "/api/2.0/.%2e/x",
            "/api/2.0/%2e/x",
            "/api//2.0/mlflow",
            "/api/2.0/mlflow%2fexperiments",
            "/api/2.0/mlflow%2Fexperiments",
            "/api/2.0/mlflow%5cexperiments",
            "/api/2.0/mlflow\\experiments",
            "/api/2.0/mlflow%00x",
            "/api/2.0/mlflow%0d%0ax",
            "/api/2.0/mlflow%zz",
            "/api/2.0/mlflow%2",
        ] {
            assert!(
                matches!(validate_path(path), Err(Error::BadRequest(_))),
                "{path}"
            );
        }
    }

    #[test]
    fn strict_decoding() {
        assert_eq!(*percent_decode_strict("a%20b").unwrap(), *b"a b");
        assert_eq!(*percent_decode_strict("%41%7e").unwrap(), *b"A~");
        assert_eq!(*percent_decode_strict("plain").unwrap(), *b"plain");
        assert!(percent_decode_strict("%g0").is_none());
        assert!(percent_decode_strict("%").is_none());
    }
}
