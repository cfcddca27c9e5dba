//! Turning an outgoing request plus a payload hash into a SigV4-signed request.
//!
//! Mirrors what the official SageMaker MLflow client signs (PROTOCOL.md section 2): `host`,
//! `content-type`, `content-length` (when there is one), the routing header, `x-amz-content-sha256`,
//! `x-amz-date` and `x-amz-security-token`. Every other header (user agent, request id, forwarding
//! headers) travels unsigned, so nothing a hop may rewrite can break the signature; hop-by-hop headers
//! such as `Connection` are never signed.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings,
};
use aws_smithy_runtime_api::client::identity::Identity;
use http::{HeaderMap, HeaderName, HeaderValue};

use crate::error::Error;

/// SHA-256 of the empty string, the payload hash of bodyless requests.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Headers signed besides the routing header and the `x-amz-*` ones the signer adds.
const SIGNED_HEADERS: [&str; 3] = ["host", "content-type", "content-length"];

/// The signing scope: service and region.
pub struct Scope<'a> {
    pub service: &'a str,
    pub region: &'a str,
    /// One more header to sign: the routing header on the data plane (as the official client does),
    /// `x-amz-target` on the control plane.
    pub extra_signed_header: &'a HeaderName,
}

/// Signs a request in place: adds `authorization`, `x-amz-date`, `x-amz-content-sha256` and, for
/// temporary credentials, `x-amz-security-token` to `headers`.
///
/// `uri` must be the exact URI that is sent (path already encoded, query in its final form).
pub fn sign_request(
    method: &http::Method,
    uri: &http::Uri,
    headers: &mut HeaderMap,
    payload_sha256: &str,
    credentials: &Credentials,
    scope: &Scope<'_>,
    time: SystemTime,
) -> Result<(), Error> {
    let identity: Identity = credentials.clone().into();
    let mut settings = SigningSettings::default();
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(scope.region)
        .name(scope.service)
        .time(time)
        .settings(settings)
        .build()
        .map_err(|e| Error::Internal(format!("SigV4 parameters: {e}")))?
        .into();

    let signed: Vec<(&str, &str)> = headers
        .iter()
        .filter(|(name, _)| {
            SIGNED_HEADERS.contains(&name.as_str()) || *name == scope.extra_signed_header
        })
        .filter_map(|(name, value)| value.to_str().ok().map(|v| (name.as_str(), v)))
        .collect();
    let uri_string = uri.to_string();
    let signable = SignableRequest::new(
        method.as_str(),
        uri_string.as_str(),
        signed.into_iter(),
        SignableBody::Precomputed(payload_sha256.to_string()),
    )
    .map_err(|e| Error::Internal(format!("SigV4 request: {e}")))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| Error::Internal(format!("SigV4 signing: {e}")))?
        .into_parts();
    let (new_headers, _params) = instructions.into_parts();
    for header in new_headers {
        let value = HeaderValue::from_str(header.value())
            .map_err(|e| Error::Internal(format!("SigV4 header {}: {e}", header.name())))?;
        let mut value = value;
        // Keep secrets out of any Debug output of the header map.
        let secret = matches!(header.name(), "authorization" | "x-amz-security-token");
        value.set_sensitive(header.sensitive() || secret);
        headers.insert(HeaderName::from_static(header.name()), value);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn signed_headers_of(headers: &HeaderMap) -> String {
        let auth = headers["authorization"].to_str().unwrap();
        auth.split("SignedHeaders=")
            .nth(1)
            .unwrap()
            .split(',')
            .next()
            .unwrap()
            .to_string()
    }

    fn scope_header() -> HeaderName {
        HeaderName::from_static("x-mlflow-sm-tracking-server-arn")
    }

    #[test]
    fn signs_exactly_what_the_official_client_signs() {
        let routing = scope_header();
        let scope = Scope {
            service: "sagemaker-mlflow",
            region: "us-west-2",
            extra_signed_header: &routing,
        };
        let mut headers = HeaderMap::new();
        headers.insert(
            "host",
            "us-west-2.experiments.sagemaker.aws".parse().unwrap(),
        );
        headers.insert("content-type", "application/json".parse().unwrap());
        headers.insert("content-length", "2".parse().unwrap());
        headers.insert(
            routing.clone(),
            "arn:aws:sagemaker:us-west-2:111122223333:mlflow-tracking-server/x"
                .parse()
                .unwrap(),
        );
        headers.insert("user-agent", "mlflow-python-client/3.10".parse().unwrap());
        headers.insert("connection", "keep-alive".parse().unwrap());
        headers.insert("x-request-id", "abc".parse().unwrap());
        let creds = Credentials::new("AKIDEXAMPLE", "secret", Some("token".into()), None, "t");
        let uri: http::Uri =
            "https://us-west-2.experiments.sagemaker.aws/api/2.0/mlflow/experiments/create"
                .parse()
                .unwrap();
        let hash = "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
        sign_request(
            &http::Method::POST,
            &uri,
            &mut headers,
            hash,
            &creds,
            &scope,
            UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        )
        .unwrap();
        assert_eq!(
            signed_headers_of(&headers),
            "content-length;content-type;host;x-amz-content-sha256;x-amz-date;x-amz-security-token;x-mlflow-sm-tracking-server-arn"
        );
        assert_eq!(headers["x-amz-content-sha256"], hash);
        assert_eq!(headers["x-amz-date"], "20231114T221320Z");
        assert_eq!(headers["x-amz-security-token"], "token");
        let auth = headers["authorization"].to_str().unwrap();
        assert!(auth.starts_with(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20231114/us-west-2/sagemaker-mlflow/aws4_request"
        ));
        assert!(headers["authorization"].is_sensitive());
    }

    #[test]
    fn permanent_credentials_add_no_token() {
        let routing = HeaderName::from_static("x-sm-mlflow-app-arn");
        let scope = Scope {
            service: "sagemaker",
            region: "eu-west-1",
            extra_signed_header: &routing,
        };
        let mut headers = HeaderMap::new();
        headers.insert(
            "host",
            "mlflow.sagemaker.eu-west-1.app.aws".parse().unwrap(),
        );
        headers.insert(routing.clone(), "arn".parse().unwrap());
        let creds = Credentials::new("AKID", "secret", None, None, "t");
        let uri: http::Uri = "https://mlflow.sagemaker.eu-west-1.app.aws/api/2.0/mlflow/experiments/search?max_results=10"
            .parse()
            .unwrap();
        sign_request(
            &http::Method::GET,
            &uri,
            &mut headers,
            EMPTY_SHA256,
            &creds,
            &scope,
            SystemTime::now(),
        )
        .unwrap();
        assert_eq!(
            signed_headers_of(&headers),
            "host;x-amz-content-sha256;x-amz-date;x-sm-mlflow-app-arn"
        );
        assert!(!headers.contains_key("x-amz-security-token"));
    }
}
