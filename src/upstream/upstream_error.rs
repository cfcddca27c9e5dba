//! Error answers from AWS itself (signature, credentials, IAM, throttling), as opposed to MLflow's own:
//! recognising an expired token, and restating AWS's `{"__type", "message"}` in MLflow's error shape so
//! that MLflow clients print a meaningful code instead of `INTERNAL_ERROR`.

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde_json::Value;

/// Whether an upstream 403 says the security token expired, by AWS's error code: the
/// `x-amzn-ErrorType` header, or the `__type` (or `code`) of an AWS JSON error body. Text elsewhere does
/// not count: an MLflow error whose message quotes a name containing "ExpiredToken" must not make the
/// proxy refresh its credentials and send the request again.
pub fn is_expired_token(headers: &HeaderMap, body: &[u8]) -> bool {
    let header_type = headers
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok());
    if header_type.is_some_and(is_expired_token_type) {
        return true;
    }
    let Ok(Value::Object(json)) = serde_json::from_slice::<Value>(body) else {
        return false;
    };
    // MLflow's own errors carry `error_code`; they are never about the proxy's credentials.
    if json.contains_key("error_code") {
        return false;
    }
    ["__type", "code", "Code"]
        .iter()
        .filter_map(|key| json.get(*key).and_then(Value::as_str))
        .any(is_expired_token_type)
}

/// `ExpiredToken` or `ExpiredTokenException`, possibly namespaced (`…#ExpiredTokenException`) or, in
/// the header, followed by `:` and a URL.
fn is_expired_token_type(error_type: &str) -> bool {
    let without_url = error_type.split(':').next().unwrap_or_default();
    let short = without_url.rsplit('#').next().unwrap_or_default().trim();
    matches!(short, "ExpiredToken" | "ExpiredTokenException")
}

/// MLflow's error code for an AWS error type.
fn mlflow_code(aws_type: &str, status: StatusCode) -> &'static str {
    const UNAUTHENTICATED: [&str; 6] = [
        "ExpiredToken",
        "InvalidSignature",
        "UnrecognizedClient",
        "IncompleteSignature",
        "MissingAuthenticationToken",
        "InvalidClientTokenId",
    ];
    if UNAUTHENTICATED.iter().any(|t| aws_type.contains(t)) {
        "UNAUTHENTICATED"
    } else if aws_type.contains("AccessDenied") {
        "PERMISSION_DENIED"
    } else if aws_type.contains("Throttling") || aws_type.contains("TooManyRequests") {
        "REQUEST_LIMIT_EXCEEDED"
    } else if aws_type.contains("ResourceNotFound") {
        "RESOURCE_DOES_NOT_EXIST"
    } else if aws_type.contains("Validation") {
        "INVALID_PARAMETER_VALUE"
    } else if status == StatusCode::FORBIDDEN {
        "PERMISSION_DENIED"
    } else if status.is_server_error() {
        "TEMPORARILY_UNAVAILABLE"
    } else {
        "BAD_REQUEST"
    }
}

/// The body restated in MLflow's shape, if it is an AWS error (`__type` without `error_code`).
pub fn as_mlflow_error(body: &[u8], status: StatusCode) -> Option<Bytes> {
    let json: Value = serde_json::from_slice(body).ok()?;
    if json.get("error_code").is_some() {
        return None;
    }
    let aws_type = json.get("__type").and_then(Value::as_str)?;
    // `__type` may be namespaced: "com.amazon.coral.service#AccessDeniedException".
    let short_type = aws_type.rsplit('#').next().unwrap_or(aws_type);
    let message = json
        .get("message")
        .or_else(|| json.get("Message"))
        .and_then(Value::as_str)
        .unwrap_or("no message");
    let code = mlflow_code(short_type, status);
    let explained = if code == "UNAUTHENTICATED" {
        format!("SageMaker refused the proxy's AWS credentials ({short_type}): {message}")
    } else {
        format!("SageMaker refused the request ({short_type}): {message}")
    };
    let restated = serde_json::json!({"error_code": code, "message": explained});
    serde_json::to_vec(&restated).ok().map(Bytes::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn restate(body: &str, status: u16) -> Option<Value> {
        as_mlflow_error(body.as_bytes(), StatusCode::from_u16(status).unwrap())
            .map(|b| serde_json::from_slice(&b).unwrap())
    }

    #[test]
    fn aws_errors_become_mlflow_errors() {
        let sig = restate(r#"{"__type":"InvalidSignatureException","message":"The request signature we calculated does not match"}"#, 403).unwrap();
        assert_eq!(sig["error_code"], "UNAUTHENTICATED");
        assert!(sig["message"].as_str().unwrap().contains(
            "proxy's AWS credentials (InvalidSignatureException): The request signature"
        ));
        let denied = restate(r#"{"__type":"com.amazon.coral.service#AccessDeniedException","Message":"not authorized"}"#, 403).unwrap();
        assert_eq!(denied["error_code"], "PERMISSION_DENIED");
        assert_eq!(
            restate(
                r#"{"__type":"ThrottlingException","message":"slow down"}"#,
                400
            )
            .unwrap()["error_code"],
            "REQUEST_LIMIT_EXCEEDED"
        );
        assert_eq!(
            restate(r#"{"__type":"Whatever","message":"x"}"#, 503).unwrap()["error_code"],
            "TEMPORARILY_UNAVAILABLE"
        );
    }

    #[test]
    fn mlflow_errors_and_other_bodies_are_left_alone() {
        assert!(restate(
            r#"{"error_code":"RESOURCE_DOES_NOT_EXIST","message":"no run"}"#,
            404
        )
        .is_none());
        assert!(restate("<html>bad gateway</html>", 502).is_none());
        assert!(restate(r#"{"message":"no type"}"#, 400).is_none());
    }

    #[test]
    fn expired_tokens_are_recognised() {
        let mut headers = HeaderMap::new();
        assert!(is_expired_token(
            &headers,
            br#"{"__type":"ExpiredTokenException"}"#
        ));
        assert!(!is_expired_token(
            &headers,
            br#"{"__type":"AccessDeniedException"}"#
        ));
        headers.insert(
            "x-amzn-errortype",
            "ExpiredTokenException:".parse().unwrap(),
        );
        assert!(is_expired_token(&headers, b""));
        let headers = HeaderMap::new();
        assert!(is_expired_token(
            &headers,
            br#"{"__type":"com.amazon.coral.service#ExpiredTokenException","message":"expired"}"#
        ));
        for not_aws in [
            &br#"{"error_code":"PERMISSION_DENIED","message":"no access to ExpiredToken"}"#[..],
            br#"{"error_code":"PERMISSION_DENIED","__type":"ExpiredTokenException"}"#,
            br#"{"__type":"AccessDeniedException","message":"ExpiredTokenException"}"#,
            b"The security token included in the request is expired (ExpiredToken)",
            br#"{"__type":"NotExpiredTokenException"}"#,
        ] {
            assert!(
                !is_expired_token(&headers, not_aws),
                "{}",
                String::from_utf8_lossy(not_aws)
            );
        }
    }
}
