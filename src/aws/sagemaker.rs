//! The few SageMaker control-plane calls the proxy makes (presigned UI URLs), as hand-signed JSON 1.1
//! requests: pulling in the SageMaker SDK would add minutes to every clean build for two operations.

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderName, HeaderValue, Method};
use http_body_util::{BodyExt, Full};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::aws::credentials::CredentialCache;
use crate::aws::sigv4::{self, Scope};
use crate::error::Error;
use crate::net::http_client::UpstreamClient;
use crate::settings::target::{ArnKind, MlflowArn};

/// Largest control-plane answer read (they are a few hundred bytes).
const MAX_RESPONSE: usize = 1 << 20;

pub struct ControlPlane {
    endpoint: http::Uri,
    region: String,
    credentials: Arc<CredentialCache>,
    client: UpstreamClient,
    timeout: std::time::Duration,
}

/// The default control-plane endpoint for a region.
pub fn default_endpoint(region: &str) -> String {
    format!("https://api.sagemaker.{region}.amazonaws.com")
}

impl ControlPlane {
    pub fn new(
        endpoint: &str,
        region: &str,
        credentials: Arc<CredentialCache>,
        client: UpstreamClient,
        timeout: std::time::Duration,
    ) -> Result<Self, Error> {
        let endpoint = format!("{}/", endpoint.trim_end_matches('/'))
            .parse()
            .map_err(|e| Error::Internal(format!("SageMaker endpoint {endpoint:?}: {e}")))?;
        Ok(ControlPlane {
            endpoint,
            region: region.to_string(),
            credentials,
            client,
            timeout,
        })
    }

    /// `CreatePresignedMlflowTrackingServerUrl` or `CreatePresignedMlflowAppUrl`, by ARN kind.
    pub async fn create_presigned_url(
        &self,
        arn: &MlflowArn,
        expires_in_seconds: u64,
        session_seconds: u64,
    ) -> Result<String, Error> {
        let (operation, body) = match arn.kind {
            ArnKind::TrackingServer => (
                "CreatePresignedMlflowTrackingServerUrl",
                serde_json::json!({
                    "TrackingServerName": arn.resource_id,
                    "ExpiresInSeconds": expires_in_seconds,
                    "SessionExpirationDurationInSeconds": session_seconds,
                }),
            ),
            ArnKind::App => (
                "CreatePresignedMlflowAppUrl",
                serde_json::json!({
                    "Arn": arn.raw,
                    "ExpiresInSeconds": expires_in_seconds,
                    "SessionExpirationDurationInSeconds": session_seconds,
                }),
            ),
        };
        let answer = self.call(operation, &body).await?;
        answer
            .get("AuthorizedUrl")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| {
                Error::UpstreamUnreachable(format!(
                    "SageMaker {operation} returned no AuthorizedUrl"
                ))
            })
    }

    /// One JSON 1.1 call: `POST /` with `X-Amz-Target: SageMaker.<operation>`, signed for `sagemaker`.
    pub async fn call(&self, operation: &str, body: &Value) -> Result<Value, Error> {
        let payload = Bytes::from(serde_json::to_vec(body).unwrap_or_default());
        let headers = self.signed_headers(operation, &payload).await?;
        let mut request =
            http::Request::new(Full::new(payload).map_err(|never| match never {}).boxed());
        *request.method_mut() = Method::POST;
        *request.uri_mut() = self.endpoint.clone();
        *request.headers_mut() = headers;
        let response = self
            .in_time(operation, self.client.request(request))
            .await?;
        let status = response.status();
        let bytes = self
            .in_time(operation, response.into_body().collect())
            .await?
            .to_bytes();
        answer_of(operation, status, &bytes)
    }

    /// The headers of a call carrying `payload`, signed with the current credentials.
    async fn signed_headers(&self, operation: &str, payload: &[u8]) -> Result<HeaderMap, Error> {
        let target = HeaderName::from_static("x-amz-target");
        let mut headers = HeaderMap::new();
        let host = self
            .endpoint
            .authority()
            .map(|a| a.as_str().to_string())
            .unwrap_or_default();
        headers.insert(
            header::HOST,
            HeaderValue::from_str(&host).map_err(|e| Error::Internal(e.to_string()))?,
        );
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-amz-json-1.1"),
        );
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(payload.len()));
        headers.insert(
            target.clone(),
            HeaderValue::from_str(&format!("SageMaker.{operation}"))
                .map_err(|e| Error::Internal(e.to_string()))?,
        );
        let cached = self.credentials.get().await?;
        sigv4::sign_request(
            &Method::POST,
            &self.endpoint,
            &mut headers,
            &hex::encode(Sha256::digest(payload)),
            sigv4::Signer {
                credentials: &cached.credentials,
                keys: &cached.signing_keys,
            },
            &Scope {
                service: "sagemaker",
                region: &self.region,
                extra_signed_header: &target,
            },
            SystemTime::now(),
        )?;
        Ok(headers)
    }

    /// `step` of a call within the call timeout; its failure, or running out of time, as unreachable.
    async fn in_time<T, E: std::fmt::Display>(
        &self,
        operation: &str,
        step: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<T, Error> {
        tokio::time::timeout(self.timeout, step)
            .await
            .map_err(|_| {
                Error::UpstreamTimeout(format!("{:?} (SageMaker {operation})", self.timeout))
            })?
            .map_err(|e| Error::UpstreamUnreachable(format!("SageMaker {operation}: {e}")))
    }
}

/// A call's JSON answer, or the error SageMaker's `__type` and `Message` describe.
fn answer_of(operation: &str, status: http::StatusCode, bytes: &[u8]) -> Result<Value, Error> {
    if bytes.len() > MAX_RESPONSE {
        return Err(Error::UpstreamUnreachable(format!(
            "SageMaker {operation}: answer too large"
        )));
    }
    let json: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
    if status.is_success() {
        return Ok(json);
    }
    let kind = json
        .get("__type")
        .and_then(Value::as_str)
        .unwrap_or("UnknownError");
    let message = json
        .get("Message")
        .or_else(|| json.get("message"))
        .and_then(Value::as_str)
        .unwrap_or("no message");
    Err(Error::UpstreamUnreachable(format!(
        "SageMaker {operation} failed ({status}): {kind}: {message}"
    )))
}
