//! Observing the proxy: logs and traces (`telemetry`), the access log (`access_log`), Prometheus and OTLP figures (`metrics`), and the
//! dashboard's per-second window (`stats`).

pub mod access_log;
pub mod metrics;
pub mod per_worker;
pub mod stats;
pub mod telemetry;
