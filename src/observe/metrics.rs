//! Prometheus metrics at `/metrics`: requests by route class, method and status; request and upstream
//! latency histograms by route class; upstream errors by kind; requests in flight; credential refreshes
//! and UI session renewals (read from their owners when scraped).
//!
//! When metrics are exported over OTLP as well, each request is also recorded into OpenTelemetry
//! instruments ([`Metrics::export_over_otlp`]), named after OpenTelemetry's HTTP conventions.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::OnceLock;
use std::time::Duration;

use opentelemetry::metrics::{Counter, Histogram as OtelHistogram, Meter};
use opentelemetry::KeyValue;

use crate::observe::per_worker::PerWorker;

/// Latency histogram bucket bounds in seconds.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0,
];

// Descriptions shared by the Prometheus text and the OTLP instruments.
const REQUEST_DURATION_HELP: &str = "Time from request to the end of the response body.";
const UPSTREAM_DURATION_HELP: &str = "Time from sending a request upstream to its response head.";

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, value: Duration) {
        let secs = value.as_secs_f64();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                self.counts[i] += 1;
            }
        }
        self.count += 1;
        self.sum += secs;
    }

    fn add(&mut self, other: &Histogram) {
        for (sum, count) in self.counts.iter_mut().zip(other.counts.iter()) {
            *sum += count;
        }
        self.count += other.count;
        self.sum += other.sum;
    }
}

#[derive(Default)]
struct Inner {
    requests: BTreeMap<(&'static str, &'static str, u16), u64>,
    latency: BTreeMap<&'static str, Histogram>,
    upstream_latency: BTreeMap<&'static str, Histogram>,
    upstream_errors: BTreeMap<&'static str, u64>,
}

impl Inner {
    /// Adds another worker's figures to these.
    fn add(&mut self, other: &Inner) {
        for (key, n) in &other.requests {
            *self.requests.entry(*key).or_default() += n;
        }
        for (class, h) in &other.latency {
            self.latency.entry(class).or_default().add(h);
        }
        for (class, h) in &other.upstream_latency {
            self.upstream_latency.entry(class).or_default().add(h);
        }
        for (kind, n) in &other.upstream_errors {
            *self.upstream_errors.entry(kind).or_default() += n;
        }
    }
}

/// Why a request got no answer from the upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpstreamErrorKind {
    Unreachable,
    Timeout,
    NoCredentials,
}

impl UpstreamErrorKind {
    /// The `kind` / `error.type` label.
    pub fn label(self) -> &'static str {
        match self {
            UpstreamErrorKind::Unreachable => "unreachable",
            UpstreamErrorKind::Timeout => "timeout",
            UpstreamErrorKind::NoCredentials => "no-credentials",
        }
    }
}

pub struct Metrics {
    /// Each worker's own counts, merged when scraped.
    inner: PerWorker<Inner>,
    otlp: OnceLock<OtlpInstruments>,
}

/// The per-request figures as OpenTelemetry instruments.
struct OtlpInstruments {
    request_duration: OtelHistogram<f64>,
    upstream_duration: OtelHistogram<f64>,
    upstream_errors: Counter<u64>,
}

/// Figures owned elsewhere, read at scrape time.
pub struct Gauges {
    pub in_flight: i64,
    pub credential_refreshes: Option<u64>,
    pub ui_session_renewals: Option<u64>,
    /// The artifact store's state, with the artifact gateway on.
    pub artifact_store: Option<StoreGauge>,
}

/// The artifact store's state as the gauges show it (one of [`StoreGauge::STATES`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreGauge {
    /// The store's location is not known yet (SageMaker's `Describe…` has not answered).
    Undiscovered,
    /// Known, not checked yet.
    Unchecked,
    /// The last check listed the store with the proxy's credentials.
    Reachable,
    /// The last check failed (missing permission, no such bucket, S3 unreachable).
    Unreachable,
}

impl StoreGauge {
    pub const STATES: [StoreGauge; 4] = [
        StoreGauge::Undiscovered,
        StoreGauge::Unchecked,
        StoreGauge::Reachable,
        StoreGauge::Unreachable,
    ];

    /// The `state` label (and the status JSON's `state`).
    pub fn label(self) -> &'static str {
        match self {
            StoreGauge::Undiscovered => "undiscovered",
            StoreGauge::Unchecked => "unchecked",
            StoreGauge::Reachable => "reachable",
            StoreGauge::Unreachable => "unreachable",
        }
    }

    /// 1 when the last check found the store usable, else 0.
    pub fn up(self) -> i64 {
        i64::from(self == StoreGauge::Reachable)
    }
}

/// `…_artifact_store_up` (1/0) and `…_artifact_store_state` with one series per state, the one in force
/// at 1 (a state set: a state change never creates or drops a series).
fn render_store_gauges(out: &mut String, store: StoreGauge) {
    out.push_str("# HELP mlflow_proxy_artifact_store_up Whether the artifact gateway's last check could list the artifact store (1) or not (0).\n");
    out.push_str("# TYPE mlflow_proxy_artifact_store_up gauge\n");
    let _ = writeln!(out, "mlflow_proxy_artifact_store_up {}", store.up());
    out.push_str("# HELP mlflow_proxy_artifact_store_state The artifact store's state: 1 for the state in force, 0 for the others.\n");
    out.push_str("# TYPE mlflow_proxy_artifact_store_state gauge\n");
    for state in StoreGauge::STATES {
        let _ = writeln!(
            out,
            "mlflow_proxy_artifact_store_state{{state=\"{}\"}} {}",
            state.label(),
            i64::from(state == store)
        );
    }
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
    /// Metrics for `workers` worker threads.
    pub fn new(workers: usize) -> Self {
        Metrics {
            inner: PerWorker::new(workers),
            otlp: OnceLock::new(),
        }
    }

    /// Records one finished request; `upstream` is the time to the upstream's response head, when the
    /// request got that far.
    pub fn record(
        &self,
        class: &'static str,
        method: &http::Method,
        status: u16,
        latency: Duration,
        upstream: Option<Duration>,
    ) {
        let method = method_label(method);
        self.inner.with_mine(|inner| {
            *inner.requests.entry((class, method, status)).or_default() += 1;
            inner.latency.entry(class).or_default().observe(latency);
            if let Some(upstream) = upstream {
                inner
                    .upstream_latency
                    .entry(class)
                    .or_default()
                    .observe(upstream);
            }
        });
        if let Some(otlp) = self.otlp.get() {
            let attributes = [
                KeyValue::new("mlflow.route_class", class),
                KeyValue::new("http.request.method", method),
                KeyValue::new("http.response.status_code", i64::from(status)),
            ];
            otlp.request_duration
                .record(latency.as_secs_f64(), &attributes);
            if let Some(upstream) = upstream {
                otlp.upstream_duration
                    .record(upstream.as_secs_f64(), &attributes[..2]);
            }
        }
    }

    /// Counts an upstream failure (`unreachable`, `timeout`, `no-credentials`, `body`).
    pub fn upstream_error(&self, kind: UpstreamErrorKind) {
        let kind = kind.label();
        self.inner
            .with_mine(|inner| *inner.upstream_errors.entry(kind).or_default() += 1);
        if let Some(otlp) = self.otlp.get() {
            otlp.upstream_errors
                .add(1, &[KeyValue::new("error.type", kind)]);
        }
    }

    /// Records every request from now on into OpenTelemetry instruments of `meter` as well (the
    /// gauges are registered by the application, which owns their figures).
    pub fn export_over_otlp(&self, meter: &Meter) {
        let boundaries = BUCKETS.to_vec();
        let _ = self.otlp.set(OtlpInstruments {
            request_duration: meter
                .f64_histogram("http.server.request.duration")
                .with_unit("s")
                .with_description(REQUEST_DURATION_HELP)
                .with_boundaries(boundaries.clone())
                .build(),
            upstream_duration: meter
                .f64_histogram("http.client.request.duration")
                .with_unit("s")
                .with_description(UPSTREAM_DURATION_HELP)
                .with_boundaries(boundaries)
                .build(),
            upstream_errors: meter
                .u64_counter("mlflow_proxy.upstream.errors")
                .with_description(
                    "Requests that failed on the way to or from the upstream, by kind.",
                )
                .build(),
        });
    }

    /// The Prometheus text exposition.
    pub fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::with_capacity(4096);
        let mut inner = Inner::default();
        self.inner.for_each(|shard| inner.add(shard));
        out.push_str("# HELP mlflow_proxy_requests_total Requests answered, by route class, method and status.\n");
        out.push_str("# TYPE mlflow_proxy_requests_total counter\n");
        for ((class, method, status), n) in &inner.requests {
            let _ = writeln!(out, "mlflow_proxy_requests_total{{class=\"{class}\",method=\"{method}\",status=\"{status}\"}} {n}");
        }
        render_histograms(
            &mut out,
            "mlflow_proxy_request_duration_seconds",
            REQUEST_DURATION_HELP,
            &inner.latency,
        );
        render_histograms(
            &mut out,
            "mlflow_proxy_upstream_duration_seconds",
            UPSTREAM_DURATION_HELP,
            &inner.upstream_latency,
        );
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
        if let Some(store) = gauges.artifact_store {
            render_store_gauges(&mut out, store);
        }
        out
    }
}

fn render_histograms(
    out: &mut String,
    name: &str,
    help: &str,
    histograms: &BTreeMap<&'static str, Histogram>,
) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} histogram");
    for (class, h) in histograms {
        for (bound, count) in BUCKETS.iter().zip(h.counts.iter()) {
            let _ = writeln!(
                out,
                "{name}_bucket{{class=\"{class}\",le=\"{bound}\"}} {count}"
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{class=\"{class}\",le=\"+Inf\"}} {}",
            h.count
        );
        let _ = writeln!(out, "{name}_sum{{class=\"{class}\"}} {}", h.sum);
        let _ = writeln!(out, "{name}_count{{class=\"{class}\"}} {}", h.count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let m = Metrics::new(1);
        m.record(
            "read",
            &http::Method::GET,
            200,
            Duration::from_millis(3),
            Some(Duration::from_millis(2)),
        );
        m.record(
            "read",
            &http::Method::GET,
            200,
            Duration::from_millis(300),
            Some(Duration::from_millis(20)),
        );
        m.record(
            "write",
            &http::Method::POST,
            502,
            Duration::from_millis(1),
            None,
        );
        m.upstream_error(UpstreamErrorKind::Unreachable);
        let text = m.render(&Gauges {
            in_flight: 2,
            credential_refreshes: Some(1),
            ui_session_renewals: None,
            artifact_store: None,
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
        assert!(text.contains(
            "mlflow_proxy_upstream_duration_seconds_bucket{class=\"read\",le=\"0.0025\"} 1"
        ));
        assert!(text.contains("mlflow_proxy_upstream_duration_seconds_count{class=\"read\"} 2"));
        assert!(!text.contains("mlflow_proxy_upstream_duration_seconds_count{class=\"write\"}"));
        assert!(text.contains("mlflow_proxy_upstream_errors_total{kind=\"unreachable\"} 1"));
        assert!(text.contains("mlflow_proxy_in_flight_requests 2"));
        assert!(text.contains("mlflow_proxy_credential_refreshes_total 1"));
        assert!(!text.contains("ui_session_renewals"));
        assert!(
            !text.contains("artifact_store"),
            "gateway off: no store gauges"
        );
    }

    #[test]
    fn renders_the_artifact_store_state() {
        let gauges = |store| Gauges {
            in_flight: 0,
            credential_refreshes: Some(1),
            ui_session_renewals: None,
            artifact_store: Some(store),
        };
        let m = Metrics::new(1);
        let up = m.render(&gauges(StoreGauge::Reachable));
        assert!(up.contains(
            "# TYPE mlflow_proxy_artifact_store_up gauge\nmlflow_proxy_artifact_store_up 1\n"
        ));
        assert!(up.contains("mlflow_proxy_artifact_store_state{state=\"reachable\"} 1\n"));
        assert!(up.contains("mlflow_proxy_artifact_store_state{state=\"unreachable\"} 0\n"));
        let down = m.render(&gauges(StoreGauge::Unreachable));
        assert!(down.contains("mlflow_proxy_artifact_store_up 0\n"));
        assert!(down.contains("mlflow_proxy_artifact_store_state{state=\"unreachable\"} 1\n"));
        let unknown = m.render(&gauges(StoreGauge::Undiscovered));
        assert!(unknown.contains("mlflow_proxy_artifact_store_up 0\n"));
        let series = |text: &str| {
            text.lines()
                .filter(|l| l.starts_with("mlflow_proxy_artifact_store_state{"))
                .count()
        };
        assert_eq!(series(&up), StoreGauge::STATES.len());
        assert_eq!(
            series(&unknown),
            StoreGauge::STATES.len(),
            "every state, always"
        );
    }

    #[test]
    fn a_scrape_merges_every_worker() {
        let m = Metrics::new(2);
        std::thread::scope(|scope| {
            for worker in 0..2 {
                let m = &m;
                scope.spawn(move || {
                    crate::net::worker::set_current_index(worker);
                    for _ in 0..=worker {
                        m.record(
                            "read",
                            &http::Method::GET,
                            200,
                            Duration::from_millis(3),
                            Some(Duration::from_millis(2)),
                        );
                    }
                    m.upstream_error(UpstreamErrorKind::Timeout);
                });
            }
        });
        let text = m.render(&Gauges {
            in_flight: 0,
            credential_refreshes: None,
            ui_session_renewals: None,
            artifact_store: None,
        });
        assert!(text.contains(
            "mlflow_proxy_requests_total{class=\"read\",method=\"GET\",status=\"200\"} 3"
        ));
        assert!(text.contains("mlflow_proxy_request_duration_seconds_count{class=\"read\"} 3"));
        assert!(text.contains(
            "mlflow_proxy_request_duration_seconds_bucket{class=\"read\",le=\"0.005\"} 3"
        ));
        assert!(text.contains("mlflow_proxy_upstream_errors_total{kind=\"timeout\"} 2"));
    }
}
