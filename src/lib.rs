//! sagemaker-mlflow-proxy: gives any MLflow client, browser and portal plain HTTP access to Amazon
//! SageMaker managed MLflow, signing every call with AWS SigV4. See `docs/architecture.md`.
#![forbid(unsafe_code)]

pub mod app;
pub mod audit;
pub mod auth;
pub mod aws;
pub mod browser;
pub mod config;
pub mod dashboard;
pub mod error;
pub mod healthcheck;
pub mod limits;
pub mod metrics;
pub mod ops;
pub mod policy;
pub mod proxy;
pub mod server;
pub mod stats;
pub mod target;
pub mod telemetry;
pub mod ui;
pub mod ui_session;
pub mod workers;
