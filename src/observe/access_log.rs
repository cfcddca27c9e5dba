//! The access log: one line per request (tracing target `access`), written when the response body ends
//! or the client goes away, and the same figures recorded into `stats` and `metrics`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::observe::stats::Stats;

/// How a request ended, as the access log says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The whole response reached the client.
    Complete,
    /// The client went away before the body ended.
    Aborted,
    /// The proxy answered with its own error (nothing or not all of it came from the upstream).
    ProxyError,
    /// The upstream's body broke off.
    UpstreamError,
    /// The upstream's body stalled longer than `--idle-timeout`.
    UpstreamIdleTimeout,
}

impl Outcome {
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Complete => "complete",
            Outcome::Aborted => "aborted",
            Outcome::ProxyError => "proxy-error",
            Outcome::UpstreamError => "upstream-error",
            Outcome::UpstreamIdleTimeout => "upstream-idle-timeout",
        }
    }
}

/// What the access log says about one request; written once, when dropped.
pub struct AccessLog {
    pub method: http::Method,
    /// The route class (`read`, `write`, ..., `ui`, `unknown`) for metrics.
    pub class: &'static str,
    pub path: std::sync::Arc<str>,
    pub status: u16,
    pub request_id: String,
    pub remote: Option<std::net::SocketAddr>,
    pub started: Instant,
    pub upstream_latency: Option<Duration>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub outcome: Outcome,
    pub stats: Arc<Stats>,
}

impl Drop for AccessLog {
    fn drop(&mut self) {
        let latency = self.started.elapsed();
        self.stats.record(
            self.class,
            &self.method,
            self.status,
            latency,
            self.upstream_latency,
        );
        tracing::info!(
            target: "access",
            method = %self.method,
            path = %self.path,
            status = self.status,
            latency_ms = latency.as_secs_f64() * 1000.0,
            upstream_ms = self.upstream_latency.map(|d| d.as_secs_f64() * 1000.0),
            bytes_in = self.bytes_in,
            bytes_out = self.bytes_out,
            request_id = %self.request_id,
            remote = self.remote.map(|r| r.ip().to_string()),
            outcome = self.outcome.label(),
            "request"
        );
    }
}
