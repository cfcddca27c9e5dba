//! Refusing ambiguous request paths before anything routes on them.
//!
//! A path is forwarded byte for byte as received, so it must mean one thing only: no `.`/`..` segments
//! (also percent-encoded), no empty segments, no encoded slashes or backslashes, no control characters,
//! no broken percent-escapes. Such paths are refused with 400, never normalised into another route.

use crate::error::Error;
use crate::net::form::percent_decode_strict;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
