//! Where the artifact store is (an explicit setting, or SageMaker's `Describe…` answer), and the start-up
//! check that the proxy's credentials can list it.

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_smithy_types::error::display::DisplayErrorContext;
use serde_json::{json, Value};

use super::keys::StoreRoot;
use crate::aws::sagemaker::ControlPlane;
use crate::settings::target::{ArnKind, MlflowArn};

/// The `Describe…` call for an ARN and its JSON body.
pub fn describe_call(arn: &MlflowArn) -> (&'static str, Value) {
    match arn.kind {
        ArnKind::TrackingServer => (
            "DescribeMlflowTrackingServer",
            json!({"TrackingServerName": arn.resource_id}),
        ),
        ArnKind::App => ("DescribeMlflowApp", json!({"Arn": arn.raw})),
    }
}

/// The store root from a `Describe…` answer.
pub fn root_from_describe(operation: &str, answer: &Value) -> Result<StoreRoot, String> {
    let uri = answer
        .get("ArtifactStoreUri")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("SageMaker {operation} answered no ArtifactStoreUri"))?;
    StoreRoot::parse(uri).map_err(|e| format!("SageMaker {operation}: {e}"))
}

/// Asks SageMaker where the ARN's artifact store is (needs `sagemaker:DescribeMlflowTrackingServer` or
/// `sagemaker:DescribeMlflowApp`).
pub async fn store_root_from_sagemaker(
    control: &ControlPlane,
    arn: &MlflowArn,
) -> Result<StoreRoot, String> {
    let (operation, body) = describe_call(arn);
    let answer = control.call(operation, &body).await.map_err(|e| {
        format!(
            "{e} (the proxy's role needs sagemaker:{operation} on {}, or set --artifact-store-uri)",
            arn.raw
        )
    })?;
    root_from_describe(operation, &answer)
}

/// Lists at most one key under the root; on failure says which permission is missing.
pub async fn check_listing(s3: &aws_sdk_s3::Client, root: &StoreRoot) -> Result<(), String> {
    let prefix = root.dir_prefix("");
    let result = s3
        .list_objects_v2()
        .bucket(&root.bucket)
        .prefix(&prefix)
        .max_keys(1)
        .send()
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(e) => {
            let code = e.code().unwrap_or_default();
            let status = e.raw_response().map(|r| r.status().as_u16());
            Err(match (status, code) {
                (Some(403), _) | (_, "AccessDenied") => format!(
                    "cannot list the artifact store {}: the proxy's AWS identity lacks s3:ListBucket on arn:aws:s3:::{} (S3 said {}); it also needs s3:GetObject, s3:PutObject, s3:DeleteObject and s3:AbortMultipartUpload on arn:aws:s3:::{}/{}*",
                    root.uri(),
                    root.bucket,
                    if code.is_empty() { "403" } else { code },
                    root.bucket,
                    prefix
                ),
                (_, "NoSuchBucket") | (Some(404), _) => format!(
                    "the artifact store's bucket {} does not exist (or is in another partition)",
                    root.bucket
                ),
                _ => format!(
                    "cannot reach the artifact store {}: {}",
                    root.uri(),
                    DisplayErrorContext(&e)
                ),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arn(raw: &str) -> MlflowArn {
        raw.parse().unwrap()
    }

    #[test]
    fn describe_calls_by_arn_kind() {
        let ts = arn("arn:aws:sagemaker:us-west-2:111122223333:mlflow-tracking-server/demo");
        assert_eq!(
            describe_call(&ts),
            (
                "DescribeMlflowTrackingServer",
                json!({"TrackingServerName": "demo"})
            )
        );
        let app = arn("arn:aws:sagemaker:us-west-2:111122223333:mlflow-app/app-ABC123");
        let (op, body) = describe_call(&app);
        assert_eq!(op, "DescribeMlflowApp");
        assert_eq!(body["Arn"], app.raw);
    }

    #[test]
    fn root_from_answers() {
        let root = root_from_describe(
            "DescribeMlflowApp",
            &json!({"ArtifactStoreUri": "s3://bucket-x/apps/a1"}),
        )
        .unwrap();
        assert_eq!(root.uri(), "s3://bucket-x/apps/a1");
        assert!(root_from_describe("DescribeMlflowApp", &json!({})).is_err());
        assert!(root_from_describe(
            "DescribeMlflowApp",
            &json!({"ArtifactStoreUri": "gs://x/y"})
        )
        .is_err());
    }
}
