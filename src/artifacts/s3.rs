//! The S3 client the gateway uses, and S3 errors restated in MLflow's error shape.

use std::sync::Arc;

use aws_sdk_s3::config::{RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_types::error::display::DisplayErrorContext;

use crate::aws::credentials::{CacheAsProvider, CredentialCache};
use crate::error::Error;

/// An S3 client from the proxy's AWS configuration (region, `AWS_ENDPOINT_URL_S3`, retries) that signs with
/// exactly the credentials the proxy signs MLflow calls with (the one credential cache, not a second chain).
/// `custom_endpoint`: an S3-compatible endpoint is configured (then path-style addressing, which such
/// endpoints and `http://` ones need).
pub fn client(
    sdk: &aws_config::SdkConfig,
    credentials: Arc<CredentialCache>,
    custom_endpoint: bool,
) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::from(sdk)
        .credentials_provider(CacheAsProvider(credentials))
        // Parts are hashed for SigV4 already; extra CRC checksums cost CPU and not every S3-compatible
        // store accepts them.
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
        .force_path_style(custom_endpoint)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// Whether the AWS SDK will use a custom S3 endpoint (`AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL`, the
/// SDK's own variables).
pub fn custom_endpoint_configured(sdk: &aws_config::SdkConfig) -> bool {
    sdk.endpoint_url().is_some()
        || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some_and(|v| !v.is_empty())
        || std::env::var_os("AWS_ENDPOINT_URL").is_some_and(|v| !v.is_empty())
}

/// What went wrong with one S3 call, already in the terms a client needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum S3Failure {
    NotFound,
    /// The proxy's identity lacks `permission` (e.g. `s3:PutObject`) on `resource` (an S3 ARN).
    Denied {
        permission: &'static str,
        resource: String,
        detail: String,
    },
    BadRange(String),
    Unavailable(String),
}

impl S3Failure {
    /// Classifies an SDK error of the S3 call that needed `permission` on `resource`.
    pub fn from_sdk<E>(
        err: &SdkError<E, HttpResponse>,
        permission: &'static str,
        resource: &str,
    ) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let status = err.raw_response().map(|r| r.status().as_u16());
        let code = err.code().unwrap_or_default().to_string();
        classify(
            status,
            &code,
            permission,
            resource,
            &DisplayErrorContext(err).to_string(),
        )
    }

    /// Whether the failure says something about the store or the proxy's permissions on it (rather than
    /// about the artifact asked for).
    pub fn is_the_stores(&self) -> bool {
        matches!(self, S3Failure::Denied { .. } | S3Failure::Unavailable(_))
    }

    /// The error the client gets (`relative`: the artifact's path under the store root).
    pub fn into_error(self, relative: &str) -> Error {
        match self {
            S3Failure::NotFound => {
                Error::ResourceDoesNotExist(format!("artifact {relative:?} does not exist"))
            }
            S3Failure::Denied {
                permission,
                resource,
                detail,
            } => Error::PermissionDenied(format!(
                "the proxy's AWS identity may not {permission} on {resource} (S3 said: {detail}); grant its role {permission} on the artifact store"
            )),
            S3Failure::BadRange(detail) => Error::RangeNotSatisfiable(format!(
                "the requested range is not satisfiable: {detail}"
            )),
            S3Failure::Unavailable(detail) => {
                Error::BadGateway(format!("the artifact store (S3) failed: {detail}"))
            }
        }
    }
}

/// The classification itself (pure, for tests): by HTTP status first, then S3's error code.
pub fn classify(
    status: Option<u16>,
    code: &str,
    permission: &'static str,
    resource: &str,
    detail: &str,
) -> S3Failure {
    match (status, code) {
        (_, "NoSuchKey" | "NotFound" | "NoSuchUpload") | (Some(404), _)
            if code != "NoSuchBucket" =>
        {
            S3Failure::NotFound
        }
        (_, "InvalidRange") | (Some(416), _) => S3Failure::BadRange(detail.to_string()),
        (
            _,
            "AccessDenied"
            | "AllAccessDisabled"
            | "InvalidAccessKeyId"
            | "SignatureDoesNotMatch"
            | "ExpiredToken"
            | "InvalidToken"
            | "KMS.AccessDeniedException",
        )
        | (Some(403), _) => S3Failure::Denied {
            permission,
            resource: resource.to_string(),
            detail: if code.is_empty() {
                "403 Forbidden".to_string()
            } else {
                code.to_string()
            },
        },
        _ => S3Failure::Unavailable(detail.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[test]
    fn classifies_like_mlflow_expects() {
        assert_eq!(
            classify(
                Some(404),
                "NoSuchKey",
                "s3:GetObject",
                "arn:aws:s3:::b/k",
                ""
            ),
            S3Failure::NotFound
        );
        assert_eq!(
            classify(Some(404), "", "s3:GetObject", "arn:aws:s3:::b/k", ""),
            S3Failure::NotFound
        );
        assert!(matches!(
            classify(Some(404), "NoSuchBucket", "s3:GetObject", "r", "no bucket"),
            S3Failure::Unavailable(_)
        ));
        assert!(matches!(
            classify(
                Some(403),
                "AccessDenied",
                "s3:PutObject",
                "arn:aws:s3:::b/k",
                ""
            ),
            S3Failure::Denied {
                permission: "s3:PutObject",
                ..
            }
        ));
        assert!(matches!(
            classify(Some(416), "InvalidRange", "s3:GetObject", "r", ""),
            S3Failure::BadRange(_)
        ));
        assert!(matches!(
            classify(None, "", "s3:GetObject", "r", "dispatch failure"),
            S3Failure::Unavailable(_)
        ));
    }

    #[tokio::test]
    async fn denied_names_the_missing_permission() {
        let response = S3Failure::Denied {
            permission: "s3:PutObject",
            resource: "arn:aws:s3:::bkt/mlflow/1/x".into(),
            detail: "AccessDenied".into(),
        }
        .into_error("1/x")
        .into_response();
        assert_eq!(response.status(), 403);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["error_code"], "PERMISSION_DENIED");
        let message = json["message"].as_str().unwrap();
        assert!(
            message.contains("s3:PutObject") && message.contains("arn:aws:s3:::bkt/mlflow/1/x")
        );
        let response = S3Failure::NotFound.into_error("1/x").into_response();
        assert_eq!(response.status(), 404);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["error_code"], "RESOURCE_DOES_NOT_EXIST");
    }
}
