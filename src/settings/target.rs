//! The upstream: SageMaker MLflow ARN parsing, the data-plane base URL, the SigV4 service name and the
//! routing header (PROTOCOL.md section 1). Pure data, no I/O.

use std::fmt;
use std::str::FromStr;

/// The two kinds of SageMaker managed MLflow, told apart by the ARN's resource type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArnKind {
    TrackingServer,
    App,
}

impl ArnKind {
    /// The SigV4 service name for data-plane requests.
    pub fn signing_service(self) -> &'static str {
        match self {
            ArnKind::TrackingServer => "sagemaker-mlflow",
            ArnKind::App => "sagemaker",
        }
    }

    /// The header that routes a data-plane request to this resource; its value is the full ARN.
    pub fn routing_header(self) -> &'static str {
        match self {
            ArnKind::TrackingServer => "x-mlflow-sm-tracking-server-arn",
            ArnKind::App => "x-sm-mlflow-app-arn",
        }
    }

    /// The name shown in status output and logs.
    pub fn mode_name(self) -> &'static str {
        match self {
            ArnKind::TrackingServer => "tracking-server",
            ArnKind::App => "app",
        }
    }
}

/// A parsed SageMaker MLflow ARN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MlflowArn {
    pub raw: String,
    pub partition: String,
    pub region: String,
    pub account: String,
    pub kind: ArnKind,
    /// The resource id: the tracking server name or the app id.
    pub resource_id: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArnError {
    #[error("not an ARN (expected arn:PARTITION:sagemaker:REGION:ACCOUNT:TYPE/ID): {0:?}")]
    Malformed(String),
    #[error("unsupported partition {0:?}: only \"aws\" and \"aws-us-gov\" serve SageMaker managed MLflow on *.aws hosts")]
    Partition(String),
    #[error("ARN service is {0:?}, expected \"sagemaker\"")]
    Service(String),
    #[error("ARN resource type is {0:?}, expected \"mlflow-tracking-server\" or \"mlflow-app\"")]
    ResourceType(String),
    #[error("ARN field {0} is empty or invalid")]
    Field(&'static str),
}

impl FromStr for MlflowArn {
    type Err = ArnError;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let raw = raw.trim();
        let parts: Vec<&str> = raw.splitn(6, ':').collect();
        if parts.len() != 6 || parts[0] != "arn" {
            return Err(ArnError::Malformed(raw.to_string()));
        }
        let (partition, service, region, account, resource) =
            (parts[1], parts[2], parts[3], parts[4], parts[5]);
        if partition != "aws" && partition != "aws-us-gov" {
            return Err(ArnError::Partition(partition.to_string()));
        }
        if service != "sagemaker" {
            return Err(ArnError::Service(service.to_string()));
        }
        let region_ok = !region.is_empty()
            && region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !region_ok {
            return Err(ArnError::Field("region"));
        }
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ArnError::Field("account"));
        }
        let (resource_type, resource_id) = resource
            .split_once('/')
            .ok_or_else(|| ArnError::ResourceType(resource.to_string()))?;
        let kind = match resource_type {
            "mlflow-tracking-server" => ArnKind::TrackingServer,
            "mlflow-app" => ArnKind::App,
            other => return Err(ArnError::ResourceType(other.to_string())),
        };
        let id_ok = !resource_id.is_empty()
            && resource_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !id_ok {
            return Err(ArnError::Field("resource id"));
        }
        Ok(MlflowArn {
            raw: raw.to_string(),
            partition: partition.to_string(),
            region: region.to_string(),
            account: account.to_string(),
            kind,
            resource_id: resource_id.to_string(),
        })
    }
}

impl fmt::Display for MlflowArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl MlflowArn {
    /// The public data-plane base URL for this resource (both partitions use the `aws` DNS suffix).
    pub fn default_base_url(&self) -> String {
        match self.kind {
            ArnKind::TrackingServer => format!("https://{}.experiments.sagemaker.aws", self.region),
            ArnKind::App => format!("https://mlflow.sagemaker.{}.app.aws", self.region),
        }
    }
}

/// Where requests go and how they are signed.
#[derive(Clone, Debug)]
pub struct Upstream {
    /// `http` or `https`.
    pub scheme: http::uri::Scheme,
    /// host[:port], also used as the `Host` header.
    pub authority: http::uri::Authority,
    /// `authority` as a header value, made once (every request sends it).
    pub host_header: http::HeaderValue,
    /// A path prefix of the base URL without trailing slash ("" for none).
    pub base_path: String,
    /// Present when requests are signed with SigV4.
    pub signing: Option<SigningTarget>,
}

/// What SigV4 needs to know about the upstream.
#[derive(Clone, Debug)]
pub struct SigningTarget {
    pub arn: MlflowArn,
    pub service: &'static str,
    pub region: String,
    pub routing_header: http::HeaderName,
    pub routing_value: http::HeaderValue,
}

impl SigningTarget {
    pub fn for_arn(arn: &MlflowArn) -> Self {
        SigningTarget {
            arn: arn.clone(),
            service: arn.kind.signing_service(),
            region: arn.region.clone(),
            routing_header: http::HeaderName::from_static(arn.kind.routing_header()),
            // The ARN was validated to plain ASCII above, so this cannot fail.
            routing_value: http::HeaderValue::from_str(&arn.raw)
                .unwrap_or_else(|_| http::HeaderValue::from_static("")),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid upstream URL {url:?}: {reason}")]
pub struct UpstreamUrlError {
    pub url: String,
    pub reason: &'static str,
}

impl Upstream {
    /// Builds the upstream from a base URL such as `https://us-west-2.experiments.sagemaker.aws` or
    /// `http://127.0.0.1:5000/prefix`.
    pub fn new(base_url: &str, signing: Option<SigningTarget>) -> Result<Self, UpstreamUrlError> {
        let error = |reason| UpstreamUrlError {
            url: base_url.to_string(),
            reason,
        };
        let uri: http::Uri = base_url.parse().map_err(|_| error("not a URL"))?;
        let scheme = uri
            .scheme()
            .cloned()
            .ok_or_else(|| error("missing scheme"))?;
        if scheme != http::uri::Scheme::HTTP && scheme != http::uri::Scheme::HTTPS {
            return Err(error("scheme must be http or https"));
        }
        let authority = uri
            .authority()
            .cloned()
            .ok_or_else(|| error("missing host"))?;
        if authority.as_str().contains('@') {
            return Err(error("credentials in the URL are not supported"));
        }
        if uri.query().is_some() {
            return Err(error("a query string is not allowed in the base URL"));
        }
        let base_path = uri.path().trim_end_matches('/').to_string();
        let host_header = http::HeaderValue::from_str(authority.as_str())
            .map_err(|_| error("the host is not a valid Host header"))?;
        Ok(Upstream {
            scheme,
            authority,
            host_header,
            base_path,
            signing,
        })
    }

    /// The base URL as configured (for status output).
    pub fn base_url(&self) -> String {
        format!("{}://{}{}", self.scheme, self.authority, self.base_path)
    }

    /// The upstream URI for an already validated MLflow path and canonical query.
    pub fn uri_for(&self, path: &str, query: Option<&str>) -> Result<http::Uri, http::Error> {
        let mut path_and_query = String::with_capacity(self.base_path.len() + path.len() + 64);
        path_and_query.push_str(&self.base_path);
        path_and_query.push_str(path);
        if let Some(query) = query.filter(|q| !q.is_empty()) {
            path_and_query.push('?');
            path_and_query.push_str(query);
        }
        http::Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(path_and_query)
            .build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TS: &str = "arn:aws:sagemaker:us-west-2:111122223333:mlflow-tracking-server/my-server";
    const APP: &str = "arn:aws:sagemaker:us-west-2:111122223333:mlflow-app/app-ANFQ3RACFV2G";

    #[test]
    fn parses_a_tracking_server_arn() {
        let arn: MlflowArn = TS.parse().unwrap();
        assert_eq!(arn.kind, ArnKind::TrackingServer);
        assert_eq!(arn.region, "us-west-2");
        assert_eq!(arn.account, "111122223333");
        assert_eq!(arn.resource_id, "my-server");
        assert_eq!(
            arn.default_base_url(),
            "https://us-west-2.experiments.sagemaker.aws"
        );
        let signing = SigningTarget::for_arn(&arn);
        assert_eq!(signing.service, "sagemaker-mlflow");
        assert_eq!(
            signing.routing_header.as_str(),
            "x-mlflow-sm-tracking-server-arn"
        );
        assert_eq!(signing.routing_value, TS);
    }

    #[test]
    fn parses_an_app_arn() {
        let arn: MlflowArn = APP.parse().unwrap();
        assert_eq!(arn.kind, ArnKind::App);
        assert_eq!(arn.resource_id, "app-ANFQ3RACFV2G");
        assert_eq!(
            arn.default_base_url(),
            "https://mlflow.sagemaker.us-west-2.app.aws"
        );
        let signing = SigningTarget::for_arn(&arn);
        assert_eq!(signing.service, "sagemaker");
        assert_eq!(signing.routing_header.as_str(), "x-sm-mlflow-app-arn");
    }

    #[test]
    fn govcloud_partition_uses_the_aws_suffix() {
        let arn: MlflowArn = "arn:aws-us-gov:sagemaker:us-gov-west-1:111122223333:mlflow-app/app-X"
            .parse()
            .unwrap();
        assert_eq!(
            arn.default_base_url(),
            "https://mlflow.sagemaker.us-gov-west-1.app.aws"
        );
    }

    #[test]
    fn rejects_bad_arns_with_a_reason() {
        let cases: [(&str, ArnError); 9] = [
            ("", ArnError::Malformed(String::new())),
            ("not-an-arn", ArnError::Malformed("not-an-arn".into())),
            (
                "arn:aws-cn:sagemaker:cn-north-1:111122223333:mlflow-app/app-X",
                ArnError::Partition("aws-cn".into()),
            ),
            (
                "arn:aws:s3:us-west-2:111122223333:mlflow-app/app-X",
                ArnError::Service("s3".into()),
            ),
            (
                "arn:aws:sagemaker:us-west-2:111122223333:notebook-instance/x",
                ArnError::ResourceType("notebook-instance".into()),
            ),
            (
                "arn:aws:sagemaker:us-west-2:111122223333:mlflow-app",
                ArnError::ResourceType("mlflow-app".into()),
            ),
            (
                "arn:aws:sagemaker::111122223333:mlflow-app/app-X",
                ArnError::Field("region"),
            ),
            (
                "arn:aws:sagemaker:us-west-2:1234:mlflow-app/app-X",
                ArnError::Field("account"),
            ),
            (
                "arn:aws:sagemaker:us-west-2:111122223333:mlflow-app/",
                ArnError::Field("resource id"),
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(input.parse::<MlflowArn>().unwrap_err(), expected, "{input}");
        }
    }

    #[test]
    fn rejects_header_injection_in_the_resource_id() {
        let bad = "arn:aws:sagemaker:us-west-2:111122223333:mlflow-app/app-X\r\nx: y";
        assert_eq!(
            bad.parse::<MlflowArn>().unwrap_err(),
            ArnError::Field("resource id")
        );
    }

    #[test]
    fn upstream_urls() {
        let up = Upstream::new("http://127.0.0.1:5000/prefix/", None).unwrap();
        assert_eq!(up.base_path, "/prefix");
        assert_eq!(up.authority.as_str(), "127.0.0.1:5000");
        assert_eq!(
            up.uri_for("/api/2.0/mlflow/runs/get", Some("run_id=a%20b"))
                .unwrap()
                .to_string(),
            "http://127.0.0.1:5000/prefix/api/2.0/mlflow/runs/get?run_id=a%20b"
        );
        let up = Upstream::new("https://us-west-2.experiments.sagemaker.aws", None).unwrap();
        assert_eq!(up.base_path, "");
        assert_eq!(up.base_url(), "https://us-west-2.experiments.sagemaker.aws");
        for bad in [
            "",
            "127.0.0.1:5000",
            "ftp://x",
            "http://u:p@host",
            "http://h/?q=1",
        ] {
            assert!(Upstream::new(bad, None).is_err(), "{bad}");
        }
    }
}
