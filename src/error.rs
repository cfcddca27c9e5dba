//! The proxy's one error type and its single mapping to HTTP responses: every refusal of the gate
//! (401, 403, 405, 429, 431) and every failure of forwarding becomes a response here and nowhere else.
//!
//! Every variant maps to exactly one status code and one MLflow `error_code` (a name from MLflow's own
//! `ErrorCode` enum, so the stock client parses it). On MLflow paths the body is MLflow's JSON error shape
//! `{"error_code": "...", "message": "..."}`; the proxy's own endpoints use the same shape. The variants
//! that tell a client when or how to come back carry that too (`WWW-Authenticate`, `Retry-After`).

use http::{HeaderValue, StatusCode};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed or ambiguous (e.g. `..` path segments, broken percent-encoding).
    #[error("{0}")]
    BadRequest(String),
    /// No route on this proxy serves the path.
    #[error("{0}")]
    NotFound(String),
    /// The path exists but not for this method.
    #[error("method not allowed on this path")]
    MethodNotAllowed,
    /// Request headers over the count or size limit.
    #[error("{0}")]
    HeadersTooLarge(String),
    /// No valid credential was presented. `bearer_challenge`: answer with
    /// `WWW-Authenticate: Bearer realm="mlflow"` (when bearer tokens are accepted).
    #[error("{message}")]
    Unauthenticated {
        message: String,
        bearer_challenge: bool,
    },
    /// The caller is known but may not do this (policy, cross-origin write, CORS preflight).
    #[error("{0}")]
    PermissionDenied(String),
    /// Too many requests from this caller (`--rate-limit`).
    #[error("rate limit exceeded (--rate-limit); retry in {retry_after_secs}s")]
    RateLimited { retry_after_secs: u64 },
    /// Too many requests in flight overall (`--max-concurrent-requests`).
    #[error("too many requests in flight (--max-concurrent-requests); retry shortly")]
    Busy,
    /// What the request names does not exist (an artifact).
    #[error("{0}")]
    ResourceDoesNotExist(String),
    /// A parameter's value cannot be used (an artifact location outside the store).
    #[error("{0}")]
    InvalidParameter(String),
    /// The requested byte range lies outside the object.
    #[error("{0}")]
    RangeNotSatisfiable(String),
    /// An operation the proxy declares unavailable, as MLflow's own server does.
    #[error("{0}")]
    NotImplemented(String),
    /// An upload over a limit, with the limit named in the message.
    #[error("{0}")]
    BodyTooLarge(String),
    /// A backend other than MLflow (the artifact store) failed.
    #[error("{0}")]
    BadGateway(String),
    /// Something the proxy needs is not there yet (the artifact store's location).
    #[error("{0}")]
    Unavailable(String),
    /// The request body exceeds a size limit: `setting` names it (`--max-body-size`, or
    /// `--max-read-body-size` for read operations).
    #[error("request body exceeds the proxy's limit of {limit} bytes ({setting})")]
    PayloadTooLarge { limit: u64, setting: &'static str },
    /// The upstream could not be reached (connection refused, DNS, TLS, reset).
    #[error("upstream MLflow is unreachable: {0}")]
    UpstreamUnreachable(String),
    /// The upstream did not answer in time (connect timeout or `--request-timeout`).
    #[error("upstream MLflow did not answer within {0}")]
    UpstreamTimeout(String),
    /// AWS credentials could not be resolved, so nothing can be signed.
    #[error("no AWS credentials available: {0}")]
    NoCredentials(String),
    /// A bug or an unexpected local failure (spool file I/O, signing).
    #[error("internal proxy error: {0}")]
    Internal(String),
}

impl Error {
    pub fn status(&self) -> StatusCode {
        match self {
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Error::HeadersTooLarge(_) => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Error::Unauthenticated { .. } => StatusCode::UNAUTHORIZED,
            Error::PermissionDenied(_) => StatusCode::FORBIDDEN,
            Error::RateLimited { .. } | Error::Busy => StatusCode::TOO_MANY_REQUESTS,
            Error::ResourceDoesNotExist(_) => StatusCode::NOT_FOUND,
            Error::InvalidParameter(_) => StatusCode::BAD_REQUEST,
            Error::RangeNotSatisfiable(_) => StatusCode::RANGE_NOT_SATISFIABLE,
            Error::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            Error::PayloadTooLarge { .. } | Error::BodyTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::UpstreamUnreachable(_) | Error::BadGateway(_) => StatusCode::BAD_GATEWAY,
            Error::UpstreamTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Error::NoCredentials(_) | Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The MLflow `ErrorCode` name for this error.
    pub fn mlflow_code(&self) -> &'static str {
        match self {
            Error::BadRequest(_) => "BAD_REQUEST",
            Error::NotFound(_) => "ENDPOINT_NOT_FOUND",
            Error::MethodNotAllowed | Error::HeadersTooLarge(_) => "BAD_REQUEST",
            Error::Unauthenticated { .. } => "UNAUTHENTICATED",
            Error::PermissionDenied(_) => "PERMISSION_DENIED",
            Error::RateLimited { .. } | Error::Busy => "REQUEST_LIMIT_EXCEEDED",
            Error::ResourceDoesNotExist(_) => "RESOURCE_DOES_NOT_EXIST",
            Error::InvalidParameter(_) | Error::RangeNotSatisfiable(_) => "INVALID_PARAMETER_VALUE",
            Error::NotImplemented(_) => "NOT_IMPLEMENTED",
            Error::PayloadTooLarge { .. } | Error::BodyTooLarge(_) => "REQUEST_LIMIT_EXCEEDED",
            Error::UpstreamUnreachable(_) | Error::BadGateway(_) => "TEMPORARILY_UNAVAILABLE",
            Error::UpstreamTimeout(_) => "DEADLINE_EXCEEDED",
            Error::NoCredentials(_) | Error::Unavailable(_) => "TEMPORARILY_UNAVAILABLE",
            Error::Internal(_) => "INTERNAL_ERROR",
        }
    }

    /// The error as an HTTP response in MLflow's JSON error shape, with the headers that tell the
    /// client how to come back.
    pub fn into_response(self) -> warp::reply::Response {
        let mut response = json_error(self.status(), self.mlflow_code(), &self.to_string());
        let headers = response.headers_mut();
        match self {
            Error::Unauthenticated {
                bearer_challenge: true,
                ..
            } => {
                headers.insert(
                    http::header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"mlflow\""),
                );
            }
            Error::RateLimited { retry_after_secs } => {
                headers.insert(
                    http::header::RETRY_AFTER,
                    HeaderValue::from(retry_after_secs),
                );
            }
            Error::Busy => {
                headers.insert(http::header::RETRY_AFTER, HeaderValue::from(1u32));
            }
            _ => {}
        }
        response
    }
}

#[derive(Serialize)]
struct MlflowErrorBody<'a> {
    error_code: &'a str,
    message: &'a str,
}

/// A response in MLflow's JSON error shape with the given status.
fn json_error(status: StatusCode, error_code: &str, message: &str) -> warp::reply::Response {
    let body = serde_json::to_vec(&MlflowErrorBody {
        error_code,
        message,
    })
    .unwrap_or_default();
    let mut response = warp::reply::Response::new(body.into());
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body_json(response: warp::reply::Response) -> serde_json::Value {
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    /// Each refusal of the client's request with its status and MLflow error code.
    fn refusals() -> Vec<(Error, u16, &'static str)> {
        vec![
            (Error::BadRequest("bad".into()), 400, "BAD_REQUEST"),
            (Error::NotFound("nope".into()), 404, "ENDPOINT_NOT_FOUND"),
            (
                Error::PayloadTooLarge {
                    limit: 10,
                    setting: "--max-body-size",
                },
                413,
                "REQUEST_LIMIT_EXCEEDED",
            ),
            (Error::MethodNotAllowed, 405, "BAD_REQUEST"),
            (Error::HeadersTooLarge("big".into()), 431, "BAD_REQUEST"),
            (
                Error::Unauthenticated {
                    message: "who".into(),
                    bearer_challenge: false,
                },
                401,
                "UNAUTHENTICATED",
            ),
            (
                Error::PermissionDenied("no".into()),
                403,
                "PERMISSION_DENIED",
            ),
            (
                Error::RateLimited {
                    retry_after_secs: 3,
                },
                429,
                "REQUEST_LIMIT_EXCEEDED",
            ),
            (Error::Busy, 429, "REQUEST_LIMIT_EXCEEDED"),
            (
                Error::ResourceDoesNotExist("gone".into()),
                404,
                "RESOURCE_DOES_NOT_EXIST",
            ),
            (
                Error::InvalidParameter("where".into()),
                400,
                "INVALID_PARAMETER_VALUE",
            ),
            (
                Error::RangeNotSatisfiable("past the end".into()),
                416,
                "INVALID_PARAMETER_VALUE",
            ),
            (
                Error::BodyTooLarge("big".into()),
                413,
                "REQUEST_LIMIT_EXCEEDED",
            ),
        ]
    }

    /// Each failure on the proxy's or the upstream's side with its status and MLflow error code.
    fn failures() -> Vec<(Error, u16, &'static str)> {
        vec![
            (
                Error::UpstreamUnreachable("refused".into()),
                502,
                "TEMPORARILY_UNAVAILABLE",
            ),
            (
                Error::UpstreamTimeout("5s".into()),
                504,
                "DEADLINE_EXCEEDED",
            ),
            (
                Error::NoCredentials("none".into()),
                503,
                "TEMPORARILY_UNAVAILABLE",
            ),
            (Error::Internal("x".into()), 500, "INTERNAL_ERROR"),
            (Error::NotImplemented("mpu".into()), 501, "NOT_IMPLEMENTED"),
            (
                Error::BadGateway("s3".into()),
                502,
                "TEMPORARILY_UNAVAILABLE",
            ),
            (
                Error::Unavailable("later".into()),
                503,
                "TEMPORARILY_UNAVAILABLE",
            ),
        ]
    }

    #[tokio::test]
    async fn each_variant_maps_to_one_status_and_mlflow_shape() {
        for (error, status, code) in refusals().into_iter().chain(failures()) {
            let message = error.to_string();
            let response = error.into_response();
            assert_eq!(response.status().as_u16(), status);
            assert_eq!(
                response.headers()[http::header::CONTENT_TYPE],
                "application/json"
            );
            let json = body_json(response).await;
            assert_eq!(json["error_code"], code);
            assert_eq!(json["message"], message);
        }
    }

    #[test]
    fn refusals_say_how_to_come_back() {
        let challenged = Error::Unauthenticated {
            message: "authentication required".into(),
            bearer_challenge: true,
        }
        .into_response();
        assert_eq!(
            challenged.headers()[http::header::WWW_AUTHENTICATE],
            "Bearer realm=\"mlflow\""
        );
        let plain = Error::Unauthenticated {
            message: "authentication required".into(),
            bearer_challenge: false,
        }
        .into_response();
        assert!(!plain.headers().contains_key(http::header::WWW_AUTHENTICATE));
        let limited = Error::RateLimited {
            retry_after_secs: 7,
        }
        .into_response();
        assert_eq!(limited.headers()[http::header::RETRY_AFTER], "7");
        assert_eq!(
            Error::Busy.into_response().headers()[http::header::RETRY_AFTER],
            "1"
        );
    }

    #[test]
    fn payload_too_large_names_the_setting() {
        let message = Error::PayloadTooLarge {
            limit: 1024,
            setting: "--max-body-size",
        }
        .to_string();
        assert!(message.contains("1024"));
        assert!(message.contains("--max-body-size"));
    }
}
