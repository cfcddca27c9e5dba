//! sagemaker-mlflow-proxy: gives any MLflow client, browser and portal plain HTTP access to Amazon
//! SageMaker managed MLflow, signing every call with AWS SigV4. See `docs/architecture.md`.
//!
//! The modules are private to the crate (so rustc reports what nothing uses); what the binary, the fuzz
//! targets and the integration tests need is re-exported below, and nothing else.
#![forbid(unsafe_code)]

mod app;
mod artifacts;
mod aws;
mod error;
mod gate;
mod mlflow;
mod net;
mod observe;
mod serve;
mod settings;
mod upstream;

/// What `main.rs` runs: settings, telemetry, the workers, the application and its listeners.
pub mod run {
    pub use crate::app::App;
    pub use crate::observe::telemetry::{init as init_telemetry, Telemetry};
    pub use crate::serve::healthcheck;
    pub use crate::serve::server::{serve, serve_admin};
    pub use crate::serve::workers::{main_runtime, WorkerHandles, Workers};
    pub use crate::settings::{AuthMode, Cli, Command, PluginEnv, Settings};
}

/// What the fuzz targets exercise: ARN parsing, path and query checks, route classification, ALB tokens.
pub mod fuzzing {
    pub use crate::gate::auth::alb::parse_and_check;
    pub use crate::mlflow::routes::{classify, is_mlflow_api_path};
    pub use crate::net::form::percent_decode_strict;
    pub use crate::settings::target::{MlflowArn, SigningTarget, Upstream};
    pub use crate::upstream::path::validate_path;
    pub use crate::upstream::query::canonicalize_query;
}

/// Helpers for the integration tests (feature `test-util`; never in the release binary).
#[cfg(feature = "test-util")]
pub mod testing {
    pub use crate::gate::auth::alb::testing::{alb_header, expiry_in, TestSigner};
    pub use crate::mlflow::routes::{classify, is_mlflow_api_path, Class};
    pub use crate::upstream::ui::upstream_path as ui_upstream_path;
}
