//! Observing the proxy: logs and traces (`telemetry`; control characters escaped in `log_escape`), the access log (`access_log`), Prometheus and OTLP figures (`metrics`), and the
//! dashboard's per-second window (`stats`).

pub mod access_log;
pub mod log_escape;
pub mod metrics;
pub mod per_worker;
pub mod stats;
pub mod telemetry;
