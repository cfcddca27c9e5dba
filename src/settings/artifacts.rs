//! The artifact gateway's settings, as clap arguments flattened into the proxy's own (`settings::Args`).

/// S3's smallest part (all but the last) and largest part.
const MIN_PART: u64 = 5 * 1024 * 1024;
const MAX_PART: u64 = 5 * 1024 * 1024 * 1024;

#[derive(clap::Args, Debug, Clone)]
pub struct ArtifactArgs {
    /// Serve MLflow's artifact API (/api/2.0/mlflow-artifacts/…) against the S3 artifact store with the
    /// proxy's own AWS credentials, and show clients `mlflow-artifacts:/` URIs instead of `s3://` ones.
    /// Default: on for ARN targets (SageMaker), off otherwise.
    #[arg(long, env = "MLFLOW_PROXY_ARTIFACT_GATEWAY", action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub artifact_gateway: Option<bool>,

    /// The artifact store's root (`s3://bucket/prefix`). Default: the `ArtifactStoreUri` that SageMaker's
    /// DescribeMlflowTrackingServer / DescribeMlflowApp answers for --arn.
    #[arg(long, env = "MLFLOW_PROXY_ARTIFACT_STORE_URI")]
    pub artifact_store_uri: Option<String>,

    /// Artifact uploads up to this size go to S3 in one PUT; larger ones (or of unknown size) in parts of
    /// this size (multipart upload; memory held per upload is one part). 5MiB to 5GiB.
    #[arg(long, env = "MLFLOW_PROXY_ARTIFACT_PART_SIZE", default_value = "8MiB", value_parser = crate::settings::parse_size)]
    pub artifact_part_size: u64,

    /// Ask S3 to encrypt every artifact upload with SSE-KMS under this key (key ARN, key ID or alias ARN):
    /// `x-amz-server-side-encryption: aws:kms` and the key on each PutObject and CreateMultipartUpload.
    /// Default: none, and the bucket's default encryption applies (an SSE-KMS bucket needs no setting). For
    /// buckets whose policy refuses uploads without these headers.
    #[arg(long, env = "MLFLOW_PROXY_ARTIFACT_KMS_KEY_ID")]
    pub artifact_kms_key_id: Option<String>,
}

/// The validated settings.
#[derive(Debug, Clone)]
pub struct GatewaySettings {
    pub enabled: bool,
    /// Explicit root (`s3://bucket[/prefix]`); `None` means: ask SageMaker. The gateway checks the
    /// prefix against its key rules when it starts.
    pub store_uri: Option<String>,
    pub part_size: u64,
    /// SSE-KMS key for every upload; `None`: the bucket's default encryption.
    pub kms_key_id: Option<String>,
}

impl ArtifactArgs {
    /// `arn_target`: whether the proxy fronts a SageMaker ARN (then the gateway is on unless turned off).
    pub fn validate(&self, arn_target: bool) -> Result<GatewaySettings, String> {
        let store_uri = match &self.artifact_store_uri {
            Some(uri) if !uri.trim().is_empty() => {
                let uri = uri.trim();
                let bucket = uri
                    .strip_prefix("s3://")
                    .map(|rest| rest.split('/').next().unwrap_or_default())
                    .unwrap_or_default();
                if bucket.is_empty() {
                    return Err(format!(
                        "--artifact-store-uri: {uri:?} is not an s3://bucket[/prefix] URI"
                    ));
                }
                Some(uri.to_string())
            }
            _ => None,
        };
        if !(MIN_PART..=MAX_PART).contains(&self.artifact_part_size) {
            return Err(format!(
                "--artifact-part-size must be between 5MiB and 5GiB, not {} bytes",
                self.artifact_part_size
            ));
        }
        let kms_key_id = match self.artifact_kms_key_id.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(key) if key.chars().any(|c| c.is_whitespace() || c.is_control()) => {
                return Err(format!(
                    "--artifact-kms-key-id: {key:?} is not a KMS key ID, key ARN or alias"
                ))
            }
            Some(key) => Some(key.to_string()),
        };
        let enabled = self.artifact_gateway.unwrap_or(arn_target);
        if enabled && !arn_target {
            return Err(
                "the artifact gateway needs an ARN target (--signing sigv4): it uses the proxy's AWS credentials"
                    .into(),
            );
        }
        Ok(GatewaySettings {
            enabled,
            store_uri,
            part_size: self.artifact_part_size,
            kms_key_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ArtifactArgs,
    }

    fn parse(args: &[&str]) -> ArtifactArgs {
        let mut all = vec!["test"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all).unwrap().args
    }

    #[test]
    fn on_by_default_for_arn_targets_only() {
        let defaults = parse(&[]);
        assert!(defaults.validate(true).unwrap().enabled);
        assert!(!defaults.validate(false).unwrap().enabled);
        assert!(
            !parse(&["--artifact-gateway", "false"])
                .validate(true)
                .unwrap()
                .enabled
        );
        assert!(
            parse(&["--artifact-gateway"])
                .validate(true)
                .unwrap()
                .enabled
        );
        assert_eq!(defaults.validate(true).unwrap().part_size, 8 << 20);
    }

    #[test]
    fn explicit_store_and_its_checks() {
        let s = parse(&["--artifact-store-uri", "s3://bucket-a/root/"])
            .validate(true)
            .unwrap();
        assert_eq!(s.store_uri.unwrap(), "s3://bucket-a/root/");
        assert!(parse(&["--artifact-store-uri", "file:///tmp"])
            .validate(true)
            .is_err());
        assert!(parse(&["--artifact-gateway", "true"])
            .validate(false)
            .is_err());
        assert!(
            parse(&[
                "--artifact-gateway",
                "true",
                "--artifact-store-uri",
                "s3://bkt"
            ])
            .validate(false)
            .is_err(),
            "no ARN target, no AWS credentials"
        );
        assert!(parse(&["--artifact-part-size", "1MiB"])
            .validate(true)
            .is_err());
    }

    #[test]
    fn kms_key_for_uploads() {
        assert_eq!(parse(&[]).validate(true).unwrap().kms_key_id, None);
        let arn = "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        assert_eq!(
            parse(&["--artifact-kms-key-id", arn])
                .validate(true)
                .unwrap()
                .kms_key_id
                .as_deref(),
            Some(arn)
        );
        assert_eq!(
            parse(&["--artifact-kms-key-id", " "])
                .validate(true)
                .unwrap()
                .kms_key_id,
            None,
            "empty (as from an unset template parameter): the bucket's default"
        );
        assert!(parse(&["--artifact-kms-key-id", "alias/a b"])
            .validate(true)
            .is_err());
    }
}
