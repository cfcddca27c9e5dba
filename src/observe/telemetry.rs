//! Logging, tracing and metrics export: a `tracing` subscriber writing text or JSON lines to stderr,
//! and, when the standard `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT` /
//! `..._METRICS_ENDPOINT`) is set, OpenTelemetry over OTLP http/protobuf: traces (a span per request
//! with child spans for credentials, signing and the upstream call, W3C `traceparent` propagated in
//! both directions) and metrics (the figures of `/metrics`, every `OTEL_METRIC_EXPORT_INTERVAL`).
//!
//! Nothing logged carries credentials: headers are never logged, the signer's headers are marked
//! sensitive, and the access log records the path without its query string.

use std::time::Duration;

use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::observe::log_escape::{EscapedFields, EscapingWriter};
use crate::settings::{LogFormat, OtlpSettings};

/// The tracing target of the request spans (exported to OTLP, never printed).
pub const SPAN_TARGET: &str = "sagemaker_mlflow_proxy::trace";

/// Keeps the exporters alive; `shutdown` flushes spans and metrics still buffered.
pub struct Telemetry {
    tracer_provider: Option<SdkTracerProvider>,
    meter_provider: Option<SdkMeterProvider>,
}

impl Telemetry {
    /// The meter for the proxy's instruments, when metrics are exported over OTLP.
    pub fn meter(&self) -> Option<opentelemetry::metrics::Meter> {
        self.meter_provider
            .as_ref()
            .map(|provider| provider.meter("sagemaker-mlflow-proxy"))
    }

    pub fn shutdown(self) {
        if let Some(provider) = self.tracer_provider {
            if let Err(e) = provider.shutdown() {
                tracing::warn!(error = %e, "OpenTelemetry trace exporter did not shut down cleanly");
            }
        }
        if let Some(provider) = self.meter_provider {
            if let Err(e) = provider.shutdown() {
                tracing::warn!(error = %e, "OpenTelemetry metrics exporter did not shut down cleanly");
            }
        }
    }
}

/// Sends the exporter's requests on the proxy's Tokio runtime (the batch processor runs its own thread).
#[derive(Debug)]
struct RuntimeClient {
    handle: tokio::runtime::Handle,
    inner: opentelemetry_http::hyper::HyperClient<
        hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    >,
}

#[async_trait::async_trait]
impl HttpClient for RuntimeClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let inner = self.inner.clone();
        self.handle
            .spawn(async move { inner.send_bytes(request).await })
            .await
            .map_err(|e| -> HttpError { Box::new(e) })?
    }
}

/// Installs the global subscriber and the OTLP exporters `otlp` asks for; call inside the Tokio
/// runtime (the exporters read the other `OTEL_*` variables themselves).
pub fn init(format: LogFormat, filter: &str, otlp: Option<&OtlpSettings>) -> Telemetry {
    // Request spans are for OTLP only: the log output never shows them, and without an exporter no
    // layer wants them, so they cost nothing.
    let filter = EnvFilter::try_new(filter)
        .unwrap_or_else(|_| EnvFilter::new("info"))
        .add_directive(
            format!("{SPAN_TARGET}=off")
                .parse()
                .expect("a valid directive"),
        );
    let fmt_layer = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            // Colours only on a terminal, never in log files or CloudWatch.
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            // Control characters in field values (request data) escaped: one event, one line.
            .fmt_fields(EscapedFields)
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .with_writer(|| EscapingWriter(std::io::stderr()))
            .boxed(),
    };
    let fmt_layer = fmt_layer.with_filter(filter);
    let provider = otlp
        .filter(|o| o.traces)
        .and_then(|o| build_tracer_provider(&o.service_name));
    let meter_provider = otlp
        .filter(|o| o.metrics)
        .and_then(|o| build_meter_provider(&o.service_name));
    let otel_layer = provider.as_ref().map(|provider| {
        let tracer = provider.tracer("sagemaker-mlflow-proxy");
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_filter(
                tracing_subscriber::filter::Targets::new()
                    .with_target(SPAN_TARGET, tracing::Level::TRACE),
            )
    });
    let _ = tracing_subscriber::registry()
        .with(fmt_layer)
        .with(otel_layer)
        .try_init();
    if provider.is_some() {
        opentelemetry::global::set_text_map_propagator(
            opentelemetry_sdk::propagation::TraceContextPropagator::new(),
        );
        tracing::info!("exporting traces over OTLP (http/protobuf)");
    }
    if meter_provider.is_some() {
        tracing::info!("exporting metrics over OTLP (http/protobuf)");
    }
    Telemetry {
        tracer_provider: provider,
        meter_provider,
    }
}

/// The HTTP client both exporters send with.
fn exporter_client() -> RuntimeClient {
    let connector = crate::net::http_client::https_connector(Duration::from_secs(5));
    RuntimeClient {
        handle: tokio::runtime::Handle::current(),
        inner: opentelemetry_http::hyper::HyperClient::new(
            connector,
            Duration::from_secs(10),
            None,
        ),
    }
}

fn resource(service_name: &str) -> opentelemetry_sdk::Resource {
    opentelemetry_sdk::Resource::builder()
        .with_service_name(service_name.to_string())
        .build()
}

fn build_tracer_provider(service_name: &str) -> Option<SdkTracerProvider> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_http_client(exporter_client())
        .build();
    started("trace", exporter, |exporter| {
        SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource(service_name))
            .build()
    })
}

/// Metrics go out every `OTEL_METRIC_EXPORT_INTERVAL` milliseconds (60 s by default), cumulative.
fn build_meter_provider(service_name: &str) -> Option<SdkMeterProvider> {
    let exporter = opentelemetry_otlp::MetricExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_http_client(exporter_client())
        .build();
    started("metrics", exporter, |exporter| {
        SdkMeterProvider::builder()
            .with_reader(PeriodicReader::builder(exporter).build())
            .with_resource(resource(service_name))
            .build()
    })
}

/// The provider for an exporter that could be built; otherwise says why on stderr (logging may not be
/// up yet) and runs without it.
fn started<E, P>(
    signal: &str,
    exporter: Result<E, opentelemetry_otlp::ExporterBuildError>,
    provider: impl FnOnce(E) -> P,
) -> Option<P> {
    match exporter {
        Ok(exporter) => Some(provider(exporter)),
        Err(e) => {
            eprintln!("sagemaker-mlflow-proxy: OTLP {signal} exporter not started: {e}");
            None
        }
    }
}

/// The trace context a client sent (`traceparent`), for the request span's parent.
pub fn extract_context(headers: &http::HeaderMap) -> opentelemetry::Context {
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&opentelemetry_http::HeaderExtractor(headers))
    })
}

/// Writes the current span's context into upstream request headers (`traceparent`).
pub fn inject_context(span: &tracing::Span, headers: &mut http::HeaderMap) {
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let context = span.context();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut opentelemetry_http::HeaderInjector(headers))
    });
}
