//! Observing the proxy: logs and traces (`telemetry`), Prometheus and OTLP figures (`metrics`), and the
//! dashboard's per-second window (`stats`).

pub mod metrics;
pub mod stats;
pub mod telemetry;
