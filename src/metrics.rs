//! Prometheus metrics at `/metrics`: requests by route class, method and status; request latency
//! histograms by route class; upstream errors by kind; requests in flight; credential refreshes and UI
//! session renewals (read from their owners when scraped).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Latency histogram bucket bounds in seconds.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
struct Inner {
    requests: BTreeMap<(&'static str, &'static str, u16), u64>,
    latency: BTreeMap<&'static str, Histogram>,
    upstream_errors: BTreeMap<&'static str, u64>,
}

#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

/// Figures owned elsewhere, read at scrape time.
pub struct Gauges {
    pub in_flight: i64,
    pub credential_refreshes: Option<u64>,
    pub ui_session_renewals: Option<u64>,
}

/// The method as a label without allocating (methods outside HTTP's standard set are `OTHER`).
fn method_label(method: &http::Method) -> &'static str {
    const STANDARD: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE",
    ];
    STANDARD
        .iter()
        .find(|m| **m == method.as_str())
        .copied()
        .unwrap_or("OTHER")
}

impl Metrics {
    /// Records one finished request.
    pub fn record(
        &self,
        class: &'static str,
        method: &http::Method,
        status: u16,
        latency: Duration,
    ) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        *inner
            .requests
            .entry((class, method_label(method), status))
            .or_default() += 1;
        let histogram = inner.latency.entry(class).or_default();
        let secs = latency.as_secs_f64();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                histogram.counts[i] += 1;
            }
        }
        histogram.count += 1;
        histogram.sum += secs;
    }

    /// Counts an upstream failure (`unreachable`, `timeout`, `no-credentials`, `body`).
    pub fn upstream_error(&self, kind: &'static str) {
        if let Ok(mut inner) = self.inner.lock() {
            *inner.upstream_errors.entry(kind).or_default() += 1;
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::with_capacity(4096);
        let Ok(inner) = self.inner.lock() else {
            return out;
        };
        out.push_str("# HELP mlflow_proxy_requests_total Requests answered, by route class, method and status.\n");
        out.push_str("# TYPE mlflow_proxy_requests_total counter\n");
        for ((class, method, status), n) in &inner.requests {
            let _ = writeln!(out, "mlflow_proxy_requests_total{{class=\"{class}\",method=\"{method}\",status=\"{status}\"}} {n}");
        }
        out.push_str("# HELP mlflow_proxy_request_duration_seconds Time from request to the end of the response body.\n");
        out.push_str("# TYPE mlflow_proxy_request_duration_seconds histogram\n");
        for (class, h) in &inner.latency {
            for (bound, count) in BUCKETS.iter().zip(h.counts.iter()) {
                let _ = writeln!(out, "mlflow_proxy_request_duration_seconds_bucket{{class=\"{class}\",le=\"{bound}\"}} {count}");
            }
            let _ = writeln!(
                out,
                "mlflow_proxy_request_duration_seconds_bucket{{class=\"{class}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "mlflow_proxy_request_duration_seconds_sum{{class=\"{class}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "mlflow_proxy_request_duration_seconds_count{{class=\"{class}\"}} {}",
                h.count
            );
        }
        out.push_str("# HELP mlflow_proxy_upstream_errors_total Requests that failed on the way to or from the upstream.\n");
        out.push_str("# TYPE mlflow_proxy_upstream_errors_total counter\n");
        for (kind, n) in &inner.upstream_errors {
            let _ = writeln!(
                out,
                "mlflow_proxy_upstream_errors_total{{kind=\"{kind}\"}} {n}"
            );
        }
        out.push_str("# HELP mlflow_proxy_in_flight_requests Requests being handled now.\n");
        out.push_str("# TYPE mlflow_proxy_in_flight_requests gauge\n");
        let _ = writeln!(out, "mlflow_proxy_in_flight_requests {}", gauges.in_flight);
        if let Some(n) = gauges.credential_refreshes {
            out.push_str("# HELP mlflow_proxy_credential_refreshes_total AWS credential fetches (start-up, ahead of expiry, after rejection).\n");
            out.push_str("# TYPE mlflow_proxy_credential_refreshes_total counter\n");
            let _ = writeln!(out, "mlflow_proxy_credential_refreshes_total {n}");
        }
        if let Some(n) = gauges.ui_session_renewals {
            out.push_str(
                "# HELP mlflow_proxy_ui_session_renewals_total Upstream UI sessions established.\n",
            );
            out.push_str("# TYPE mlflow_proxy_ui_session_renewals_total counter\n");
            let _ = writeln!(out, "mlflow_proxy_ui_session_renewals_total {n}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let m = Metrics::default();
        m.record("read", &http::Method::GET, 200, Duration::from_millis(3));
        m.record("read", &http::Method::GET, 200, Duration::from_millis(300));
        m.record("write", &http::Method::POST, 502, Duration::from_millis(1));
        m.upstream_error("unreachable");
        let text = m.render(&Gauges {
            in_flight: 2,
            credential_refreshes: Some(1),
            ui_session_renewals: None,
        });
        assert!(text.contains(
            "mlflow_proxy_requests_total{class=\"read\",method=\"GET\",status=\"200\"} 2"
        ));
        assert!(text.contains(
            "mlflow_proxy_requests_total{class=\"write\",method=\"POST\",status=\"502\"} 1"
        ));
        assert!(text.contains(
            "mlflow_proxy_request_duration_seconds_bucket{class=\"read\",le=\"0.005\"} 1"
        ));
        assert!(text.contains(
            "mlflow_proxy_request_duration_seconds_bucket{class=\"read\",le=\"+Inf\"} 2"
        ));
        assert!(text.contains("mlflow_proxy_upstream_errors_total{kind=\"unreachable\"} 1"));
        assert!(text.contains("mlflow_proxy_in_flight_requests 2"));
        assert!(text.contains("mlflow_proxy_credential_refreshes_total 1"));
        assert!(!text.contains("ui_session_renewals"));
    }
}
