//! sagemaker-mlflow-proxy: gives any MLflow client, browser and portal plain HTTP access to Amazon
//! SageMaker managed MLflow, signing every call with AWS SigV4. See `docs/architecture.md`.
#![forbid(unsafe_code)]

pub mod app;
pub mod artifacts;
pub mod aws;
pub mod error;
pub mod gate;
pub mod mlflow;
pub mod net;
pub mod observe;
pub mod serve;
pub mod settings;
pub mod upstream;
