//! The artifact gateway: MLflow's artifact API served by the proxy against the S3 artifact store, with the
//! proxy's own AWS credentials, so stock clients need none.
//!
//! SageMaker runs MLflow with an S3 store and `--no-serve-artifacts`: MLflow hands out `s3://` URIs and the
//! client reads and writes S3 itself. With the gateway on, the proxy shows clients `mlflow-artifacts:/`
//! URIs instead ([`rewrite`]), which the stock client resolves to `/api/2.0/mlflow-artifacts/artifacts/…`
//! on the proxy, served here ([`api`]) against keys under the store root only ([`keys`]).
//!
//! This layer sits beside the forwarding one: it uses the error shape, settings and the AWS credential cache,
//! and knows nothing of the gate (authentication and policy happen before a request gets here).

pub mod api;
pub mod discover;
pub mod keys;
pub mod rewrite;
pub mod s3;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwapOption;

use bytes::Bytes;
use http::Method;
use http_body_util::BodyExt;
use serde_json::json;

use crate::aws::sagemaker::ControlPlane;
use crate::error::Error;
use crate::mlflow::routes::artifact_api_rest;
use crate::observe::metrics::StoreGauge;
use crate::settings::artifacts::GatewaySettings;
use crate::settings::target::MlflowArn;
use keys::StoreRoot;

/// Largest JSON response read to rewrite its artifact locations (larger ones are refused with 502 rather
/// than passed on with `s3://` URIs the client cannot use).
const MAX_REWRITTEN_RESPONSE: usize = 64 << 20;

/// What the gateway serves on one path (relative to the MLflow prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    /// `…/mlflow-artifacts/artifacts` with `?path=`: a listing.
    List,
    /// `…/mlflow-artifacts/artifacts/<path>` (still percent-encoded).
    Object(&'a str),
    /// `…/mlflow-artifacts/mpu/{create,complete,abort}/<path>`.
    Multipart,
}

/// The gateway's route for an MLflow path, if it is one of the artifact API's.
pub fn route(path: &str) -> Option<Route<'_>> {
    let rest = artifact_api_rest(path)?;
    if rest == "artifacts" || rest == "artifacts/" {
        return Some(Route::List);
    }
    if let Some(object) = rest.strip_prefix("artifacts/") {
        return Some(Route::Object(object));
    }
    if rest.starts_with("mpu/") {
        return Some(Route::Multipart);
    }
    None
}

/// The store's state as last checked (for `/api/proxy/status` and the metric; never for `/readyz`).
#[derive(Debug, Clone)]
pub struct StoreState {
    /// What the last check found (`None`: not checked yet, or the store is not known).
    pub reachable: Option<bool>,
    pub checked_at: Option<SystemTime>,
    /// What the last check found, in words.
    pub message: String,
    /// The last failure that was the store's or the proxy's identity's (a check's, or an artifact request's
    /// missing permission or S3 outage; not a missing artifact), and when.
    pub last_error: Option<(SystemTime, String)>,
}

/// How the store's root is found when no `--artifact-store-uri` names it: SageMaker's `Describe…` for the ARN.
pub struct Discovery {
    pub control: ControlPlane,
    pub arn: MlflowArn,
}

/// How uploads are written to S3.
#[derive(Debug, Clone)]
pub struct Uploads {
    /// Bodies up to this size go to S3 in one PUT, larger ones in parts of this size (`--artifact-part-size`).
    pub part_size: u64,
    /// Uploads larger than this are refused with 413 (`--max-body-size`, as for forwarded bodies).
    pub max_body_size: u64,
    /// The KMS key every upload asks S3 to encrypt with (`--artifact-kms-key-id`); `None`: the bucket's
    /// default encryption applies.
    pub kms_key_id: Option<String>,
}

pub struct Gateway {
    /// Unknown until discovered (then artifact routes answer 503 and responses pass unchanged).
    root: ArcSwapOption<StoreRoot>,
    discovery: Option<Discovery>,
    s3: aws_sdk_s3::Client,
    uploads: Uploads,
    state: Mutex<StoreState>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("root", &self.root().map(|r| r.uri()))
            .finish_non_exhaustive()
    }
}

/// Back-off between failed discoveries and checks, and how often the store is checked again (a one-key
/// listing: about 1,440 LIST requests a day).
const RETRY_MIN: Duration = Duration::from_secs(2);
const RETRY_MAX: Duration = Duration::from_secs(60);
const RECHECK_EVERY: Duration = Duration::from_secs(60);

impl Gateway {
    /// A gateway on `root`, or on the root `discovery` finds.
    pub fn new(
        root: Option<StoreRoot>,
        discovery: Option<Discovery>,
        s3: aws_sdk_s3::Client,
        uploads: Uploads,
    ) -> Arc<Self> {
        Arc::new(Gateway {
            root: ArcSwapOption::new(root.map(Arc::new)),
            discovery,
            s3,
            uploads,
            state: Mutex::new(StoreState {
                reachable: None,
                checked_at: None,
                message: "not checked yet".into(),
                last_error: None,
            }),
        })
    }

    /// The gateway for the proxy's settings: S3 client from the proxy's AWS configuration and credential
    /// cache; the root from the setting, else found with `discovery`.
    pub fn from_settings(
        settings: &GatewaySettings,
        max_body_size: u64,
        aws: &crate::aws::Aws,
        discovery: Discovery,
    ) -> Result<Arc<Self>, String> {
        // The URI's shape was checked with the settings; the key rules for its prefix live here.
        let store = match &settings.store_uri {
            Some(uri) => Some(StoreRoot::parse(uri).map_err(|e| {
                format!(
                    "invalid setting --artifact-store-uri (MLFLOW_PROXY_ARTIFACT_STORE_URI): {e}"
                )
            })?),
            None => None,
        };
        let sdk = aws.sdk_config();
        let client = s3::client(
            sdk,
            aws.credentials.clone(),
            s3::custom_endpoint_configured(sdk),
        );
        let discovery = store.is_none().then_some(discovery);
        let uploads = Uploads {
            part_size: settings.part_size,
            max_body_size,
            kms_key_id: settings.kms_key_id.clone(),
        };
        Ok(Gateway::new(store, discovery, client, uploads))
    }

    pub fn root(&self) -> Option<Arc<StoreRoot>> {
        self.root.load_full()
    }

    fn set_state(&self, reachable: Option<bool>, message: String) {
        let now = SystemTime::now();
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.checked_at = Some(now);
        if reachable != Some(true) {
            state.last_error = Some((now, message.clone()));
        }
        state.reachable = reachable;
        state.message = message;
    }

    /// Remembers a failure of an artifact request that says something about the store or the proxy's
    /// permissions on it (shown as the store's last error; the state stays what the last check found).
    pub(crate) fn record_failure(&self, message: String) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.last_error = Some((SystemTime::now(), message));
    }

    /// Finds the root if it is not known yet (one `Describe…`); the error says what is missing.
    pub async fn discover(&self) -> Result<Arc<StoreRoot>, String> {
        if let Some(root) = self.root() {
            return Ok(root);
        }
        let Some(discovery) = &self.discovery else {
            return Err("no artifact store configured".into());
        };
        match discover::store_root_from_sagemaker(&discovery.control, &discovery.arn).await {
            Ok(root) => {
                tracing::info!(store = %root.uri(), "artifact store found (ArtifactStoreUri)");
                let root = Arc::new(root);
                self.root.store(Some(root.clone()));
                Ok(root)
            }
            Err(message) => {
                self.set_state(None, format!("artifact store unknown: {message}"));
                Err(message)
            }
        }
    }

    /// Lists the store once with the proxy's credentials; records and returns what is missing if that fails.
    pub async fn check_store(&self) -> Result<(), String> {
        let root = self.discover().await?;
        let result = discover::check_listing(&self.s3, &root).await;
        match &result {
            Ok(()) => self.set_state(Some(true), format!("{} is listable", root.uri())),
            Err(message) => self.set_state(Some(false), message.clone()),
        }
        result
    }

    /// Background: discovers the root (retrying with back-off) and checks the store, logging what is
    /// missing and every change of state; then checks it again every minute, so the status and the metric
    /// follow the store.
    pub async fn run_checks(self: Arc<Self>) {
        let mut retry = RETRY_MIN;
        let mut was_reachable = None;
        loop {
            let reachable = match self.check_store().await {
                Ok(()) => {
                    if was_reachable != Some(true) {
                        tracing::info!(store = ?self.root().map(|r| r.uri()), "artifact store reachable with the proxy's credentials");
                    }
                    true
                }
                Err(message) => {
                    if was_reachable != Some(false) || retry < RETRY_MAX {
                        tracing::error!(error = %message, "artifact gateway: the artifact store is not usable (metadata calls are unaffected)");
                    }
                    false
                }
            };
            was_reachable = Some(reachable);
            let pause = if reachable {
                retry = RETRY_MIN;
                RECHECK_EVERY
            } else {
                let pause = retry;
                retry = (retry * 2).min(RETRY_MAX);
                pause
            };
            tokio::time::sleep(pause).await;
        }
    }

    pub fn state(&self) -> StoreState {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The store's state for the metric and the status.
    pub fn gauge(&self) -> StoreGauge {
        if self.root().is_none() {
            return StoreGauge::Undiscovered;
        }
        match self.state().reachable {
            None => StoreGauge::Unchecked,
            Some(true) => StoreGauge::Reachable,
            Some(false) => StoreGauge::Unreachable,
        }
    }

    /// The gateway's part of `/api/proxy/status`.
    pub fn status(&self) -> serde_json::Value {
        let state = self.state();
        let rfc3339 = |t: SystemTime| humantime::format_rfc3339_seconds(t).to_string();
        let (last_error_at, last_error) = state.last_error.map_or((None, None), |(at, message)| {
            (Some(rfc3339(at)), Some(message))
        });
        json!({
            "store": self.root().map(|r| r.uri()),
            "state": self.gauge().label(),
            "checked_at": state.checked_at.map(rfc3339),
            "message": state.message,
            "last_error": last_error,
            "last_error_at": last_error_at,
        })
    }

    /// Maps `mlflow-artifacts:` locations in a request body back to `s3://`; `Err` is a location that
    /// would leave the store (answer it with [`refused_location`]).
    pub fn rewrite_request(
        &self,
        method: &Method,
        path: &str,
        body: &Bytes,
    ) -> Result<Option<Bytes>, keys::Unsafe> {
        let Some(root) = self
            .root()
            .filter(|_| rewrite::request_applies(method, path))
        else {
            return Ok(None);
        };
        rewrite::rewrite_request_body(&root, body).map(|changed| changed.map(Bytes::from))
    }

    /// Rewrites `s3://` locations under the root in a JSON response on an MLflow API path.
    pub async fn rewrite_response(
        &self,
        path: &str,
        response: warp::reply::Response,
    ) -> warp::reply::Response {
        let is_json = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        let Some(root) = self.root() else {
            return response;
        };
        if !is_json || !response.status().is_success() || !rewrite::response_applies(path) {
            return response;
        }
        let (mut parts, body) = response.into_parts();
        let limited = http_body_util::Limited::new(body, MAX_REWRITTEN_RESPONSE);
        let bytes = match limited.collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) => {
                return Error::BadGateway(format!(
                    "reading MLflow's answer to rewrite its artifact locations failed: {e}"
                ))
                .into_response()
            }
        };
        let bytes = match rewrite::rewrite_response_body(&root, &bytes) {
            Some(rewritten) => Bytes::from(rewritten),
            None => bytes,
        };
        parts.headers.remove(http::header::CONTENT_LENGTH);
        parts.headers.remove(http::header::TRANSFER_ENCODING);
        parts.headers.insert(
            http::header::CONTENT_LENGTH,
            http::HeaderValue::from(bytes.len()),
        );
        warp::reply::Response::from_parts(parts, bytes.into())
    }
}

/// The refusal of a request whose artifact location would leave the store.
pub fn refused_location(reason: &keys::Unsafe) -> Error {
    Error::InvalidParameter(format!("artifact location refused: {reason}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(
            route("/api/2.0/mlflow-artifacts/artifacts"),
            Some(Route::List)
        );
        assert_eq!(
            route("/ajax-api/2.0/mlflow-artifacts/artifacts/"),
            Some(Route::List)
        );
        assert_eq!(
            route("/api/2.0/mlflow-artifacts/artifacts/0/r/artifacts/a%20b"),
            Some(Route::Object("0/r/artifacts/a%20b"))
        );
        assert_eq!(
            route("/api/2.0/mlflow-artifacts/mpu/create/0/r"),
            Some(Route::Multipart)
        );
        assert_eq!(route("/api/2.0/mlflow/runs/get"), None);
        assert_eq!(route("/api/2.0/mlflow-artifacts/other"), None);
        assert_eq!(route("/get-artifact"), None);
    }
}
