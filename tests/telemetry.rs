//! Telemetry end to end: a real OTLP/HTTP receiver (decoding the protobuf export requests) gets the
//! proxy's spans with the right parent/child structure and attributes and its metrics with the right
//! figures, the W3C trace context reaches the upstream, and `/metrics` moves with traffic.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use http_body_util::BodyExt;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{metric::Data, number_data_point, Metric};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

/// What an OTLP receiver got: spans, and the metrics of every export (latest last).
#[derive(Default)]
struct Received {
    spans: Vec<Span>,
    metric_exports: Vec<Vec<Metric>>,
}

/// Starts an OTLP/HTTP receiver for traces and metrics; returns its URL and what it received.
fn start_receiver() -> (String, Arc<Mutex<Received>>) {
    let received: Arc<Mutex<Received>> = Arc::default();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let sink = received.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let sink = sink.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |req: hyper::Request<hyper::body::Incoming>| {
                            let sink = sink.clone();
                            async move {
                                assert_eq!(req.headers()["content-type"], "application/x-protobuf");
                                let path = req.uri().path().to_string();
                                let body = req.into_body().collect().await.unwrap().to_bytes();
                                let mut received = sink.lock().unwrap();
                                match path.as_str() {
                                    "/v1/traces" => {
                                        let export = ExportTraceServiceRequest::decode(body)
                                            .expect("valid OTLP trace protobuf");
                                        for resource in export.resource_spans {
                                            for scope in resource.scope_spans {
                                                received.spans.extend(scope.spans);
                                            }
                                        }
                                    }
                                    "/v1/metrics" => {
                                        let export = ExportMetricsServiceRequest::decode(body)
                                            .expect("valid OTLP metrics protobuf");
                                        let metrics = export
                                            .resource_metrics
                                            .into_iter()
                                            .flat_map(|r| r.scope_metrics)
                                            .flat_map(|s| s.metrics)
                                            .collect();
                                        received.metric_exports.push(metrics);
                                    }
                                    other => panic!("unexpected OTLP path {other}"),
                                }
                                Ok::<_, std::convert::Infallible>(hyper::Response::new(
                                    http_body_util::Full::new(bytes::Bytes::new()),
                                ))
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    });
    (format!("http://{addr}"), received)
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    attribute_of(&span.attributes, key)
}

fn attribute_of(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| match &v.value {
            Some(AnyValue::StringValue(s)) => Some(s.clone()),
            Some(AnyValue::IntValue(i)) => Some(i.to_string()),
            Some(AnyValue::BoolValue(b)) => Some(b.to_string()),
            _ => None,
        })
}

#[test]
fn spans_arrive_over_otlp_with_structure_and_context_propagation() {
    let upstream = start_upstream();
    let (endpoint, received_by_receiver) = start_receiver();
    let proxy = start_proxy(
        &["--arn", TS_ARN, "--upstream-url", &upstream.url()],
        &[
            ("AWS_ACCESS_KEY_ID", "AKIDOTEL"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
            ("OTEL_SERVICE_NAME", "mlflow-proxy-test"),
        ],
    );
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let reply = Client::new().send(
        "POST",
        &proxy.url("/api/2.0/mlflow/runs/search"),
        &[
            ("traceparent", &format!("00-{trace_id}-00f067aa0ba902b7-01")),
            ("content-type", "application/json"),
        ],
        "{}",
    );
    assert_eq!(reply.status, 200);

    // Spans are exported in batches (every 100 ms here): wait for the request's four.
    let received = wait_for(
        "the request's spans at the collector",
        Duration::from_secs(10),
        || {
            let spans = received_by_receiver.lock().unwrap().spans.clone();
            (spans.iter().any(|s| s.name == "POST read") && spans.len() >= 4).then_some(spans)
        },
    );
    let by_name = |name: &str| {
        received
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| {
                panic!(
                    "no span {name} in {:?}",
                    received.iter().map(|s| &s.name).collect::<Vec<_>>()
                )
            })
            .clone()
    };
    let request = by_name("POST read");
    let credentials = by_name("credentials");
    let sign = by_name("sign");
    let upstream_call = by_name("upstream");

    assert_eq!(
        hex::encode(&request.trace_id),
        trace_id,
        "the client's trace continues"
    );
    assert_eq!(hex::encode(&request.parent_span_id), "00f067aa0ba902b7");
    for child in [&credentials, &sign, &upstream_call] {
        assert_eq!(
            child.parent_span_id, request.span_id,
            "{} is a child of the request span",
            child.name
        );
        assert_eq!(child.trace_id, request.trace_id);
    }
    assert_eq!(
        attribute(&request, "http.request.method").as_deref(),
        Some("POST")
    );
    assert_eq!(
        attribute(&request, "url.path").as_deref(),
        Some("/api/2.0/mlflow/runs/search")
    );
    assert_eq!(
        attribute(&request, "http.response.status_code").as_deref(),
        Some("200")
    );
    assert_eq!(
        attribute(&request, "mlflow.route_class").as_deref(),
        Some("read")
    );
    assert_eq!(
        attribute(&upstream_call, "http.response.status_code").as_deref(),
        Some("200")
    );
    assert_eq!(
        attribute(&sign, "aws.service").as_deref(),
        Some("sagemaker-mlflow")
    );

    let seen = upstream.requests().pop().unwrap();
    let traceparent = &seen.headers["traceparent"];
    assert!(
        traceparent.starts_with(&format!("00-{trace_id}-")),
        "{traceparent}"
    );
    assert!(
        traceparent.contains(&hex::encode(&upstream_call.span_id)),
        "the upstream sees the upstream span as parent"
    );
}

/// The latest export's metric of this name.
fn exported<'a>(export: &'a [Metric], name: &str) -> Option<&'a Metric> {
    export.iter().find(|m| m.name == name)
}

/// Metrics go out over OTLP with the figures the traffic produced; traces can be off at the same time.
#[test]
fn metrics_arrive_over_otlp_with_the_traffic_figures() {
    let upstream = start_upstream();
    let (endpoint, received) = start_receiver();
    let proxy = start_proxy(
        &["--arn", TS_ARN, "--upstream-url", &upstream.url()],
        &[
            ("AWS_ACCESS_KEY_ID", "AKIDOTEL"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_TRACES_EXPORTER", "none"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "200"),
        ],
    );
    let client = Client::new();
    for _ in 0..3 {
        let reply = client.get(&proxy.url("/api/2.0/mlflow/experiments/search?max_results=1"));
        assert_eq!(reply.status, 200);
    }

    // Metrics are exported every 200 ms here: wait for an export that counts the three requests.
    let latest: Vec<Metric> = wait_for(
        "an export counting 3 requests",
        Duration::from_secs(10),
        || {
            let latest = received
                .lock()
                .unwrap()
                .metric_exports
                .last()
                .cloned()
                .unwrap_or_default();
            let done = exported(&latest, "http.server.request.duration").is_some_and(|m| {
            matches!(&m.data, Some(Data::Histogram(h)) if h.data_points.iter().map(|p| p.count).sum::<u64>() >= 3)
        });
            done.then_some(latest)
        },
    );
    let names: Vec<&str> = latest.iter().map(|m| m.name.as_str()).collect();
    let server = exported(&latest, "http.server.request.duration")
        .unwrap_or_else(|| panic!("no request duration in {names:?}"));
    assert_eq!(server.unit, "s");
    let Some(Data::Histogram(histogram)) = &server.data else {
        panic!("request duration is not a histogram: {:?}", server.data);
    };
    let point = histogram
        .data_points
        .iter()
        .find(|p| attribute_of(&p.attributes, "mlflow.route_class").as_deref() == Some("read"))
        .expect("a data point for read requests");
    assert_eq!(point.count, 3);
    assert_eq!(
        attribute_of(&point.attributes, "http.request.method").as_deref(),
        Some("GET")
    );
    assert_eq!(
        attribute_of(&point.attributes, "http.response.status_code").as_deref(),
        Some("200")
    );
    assert!(point.sum.is_some_and(|s| s > 0.0));

    let Some(Data::Histogram(client_side)) = &exported(&latest, "http.client.request.duration")
        .unwrap_or_else(|| panic!("no upstream duration in {names:?}"))
        .data
    else {
        panic!("upstream duration is not a histogram");
    };
    assert_eq!(
        client_side.data_points.iter().map(|p| p.count).sum::<u64>(),
        3
    );

    let Some(Data::Sum(refreshes)) = &exported(&latest, "mlflow_proxy.credential.refreshes")
        .unwrap_or_else(|| panic!("no credential refreshes in {names:?}"))
        .data
    else {
        panic!("credential refreshes is not a sum");
    };
    assert!(refreshes.is_monotonic);
    assert!(matches!(
        refreshes.data_points[0].value,
        Some(number_data_point::Value::AsInt(n)) if n >= 1
    ));
    assert!(
        exported(&latest, "http.server.active_requests").is_some(),
        "no in-flight gauge in {names:?}"
    );
    assert!(
        received.lock().unwrap().spans.is_empty(),
        "OTEL_TRACES_EXPORTER=none sends no spans"
    );
}

/// The artifact store's gauges go out over OTLP as at `/metrics`: here a store whose S3 endpoint refuses
/// connections, so the store is down (`up` 0) and exactly one state is in force.
#[test]
fn artifact_store_gauges_arrive_over_otlp() {
    let upstream = start_upstream();
    let (endpoint, received) = start_receiver();
    let proxy = start_proxy(
        &[
            "--arn",
            TS_ARN,
            "--upstream-url",
            &upstream.url(),
            "--artifact-store-uri",
            "s3://otel-bucket/mlflow",
        ],
        &[
            ("AWS_ACCESS_KEY_ID", "AKIDOTEL"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9"),
            ("MLFLOW_PROXY_ARTIFACT_GATEWAY", "true"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_TRACES_EXPORTER", "none"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "200"),
        ],
    );
    let gauge_points = |export: &[Metric], name: &str| -> Option<Vec<(Option<String>, i64)>> {
        let Some(Data::Gauge(gauge)) = exported(export, name).and_then(|m| m.data.as_ref()) else {
            return None;
        };
        Some(
            gauge
                .data_points
                .iter()
                .map(|p| {
                    let value = match p.value {
                        Some(number_data_point::Value::AsInt(n)) => n,
                        other => panic!("{name}: not an integer: {other:?}"),
                    };
                    (attribute_of(&p.attributes, "state"), value)
                })
                .collect(),
        )
    };
    // The check's S3 client retries a refused connection a few times before the store counts as down.
    let (up, mut states) = wait_for(
        "an export with the store down",
        Duration::from_secs(30),
        || {
            let latest = received.lock().unwrap().metric_exports.last().cloned()?;
            let states = gauge_points(&latest, "mlflow_proxy.artifact_store.state")?;
            let down = states.contains(&(Some("unreachable".to_string()), 1));
            down.then_some((
                gauge_points(&latest, "mlflow_proxy.artifact_store.up")?,
                states,
            ))
        },
    );
    assert_eq!(up, vec![(None, 0)]);
    states.sort();
    assert_eq!(
        states,
        [
            (Some("reachable".to_string()), 0),
            (Some("unchecked".to_string()), 0),
            (Some("undiscovered".to_string()), 0),
            (Some("unreachable".to_string()), 1),
        ]
    );
    drop(proxy);
}

fn metric(text: &str, line_prefix: &str) -> u64 {
    text.lines()
        .find(|l| l.starts_with(line_prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .map(|v| v as u64)
        .unwrap_or(0)
}

#[test]
fn metrics_move_with_traffic() {
    let upstream = start_upstream();
    let proxy = start_proxy(
        &["--arn", APP_ARN, "--upstream-url", &upstream.url()],
        &static_creds(),
    );
    let client = Client::new();
    let before = String::from_utf8(client.get(&proxy.url("/metrics")).body.to_vec()).unwrap();
    for _ in 0..3 {
        client.send(
            "POST",
            &proxy.url("/api/2.0/mlflow/runs/log-metric"),
            &[("content-type", "application/json")],
            "{}",
        );
    }
    client.get(&proxy.url("/api/2.0/mlflow/slow?ms=1"));
    let reply = client.get(&proxy.url("/metrics"));
    assert_eq!(reply.status, 200);
    assert!(reply.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let after = String::from_utf8(reply.body.to_vec()).unwrap();
    let writes = "mlflow_proxy_requests_total{class=\"write\",method=\"POST\",status=\"200\"}";
    assert_eq!(metric(&before, writes), 0);
    assert_eq!(metric(&after, writes), 3);
    assert!(
        metric(
            &after,
            "mlflow_proxy_request_duration_seconds_count{class=\"write\"}"
        ) >= 3
    );
    assert!(metric(&after, "mlflow_proxy_credential_refreshes_total") >= 1);
    assert!(after.contains("mlflow_proxy_in_flight_requests"));
}

#[test]
fn metrics_move_to_the_admin_listener_when_one_is_set() {
    let upstream = start_upstream();
    let admin = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let admin_arg = admin.to_string();
    let proxy = start_unsigned_proxy(&upstream, &["--admin-listen", &admin_arg]);
    let client = Client::new();
    // The admin listener may come up just after the main one.
    let admin_metrics = wait_for("the admin listener", Duration::from_secs(10), || {
        let reply = client.get(&format!("http://{admin}/metrics"));
        (reply.status == 200).then_some(reply)
    });
    assert_eq!(admin_metrics.status, 200);
    assert!(
        String::from_utf8_lossy(&admin_metrics.body).contains("mlflow_proxy_in_flight_requests")
    );
    assert_eq!(client.get(&format!("http://{admin}/healthz")).status, 200);
    assert_eq!(client.get(&format!("http://{admin}/readyz")).status, 200);
    assert_eq!(
        client
            .get(&format!("http://{admin}/api/2.0/mlflow/experiments/search"))
            .status,
        404,
        "the admin port proxies nothing"
    );
    assert_eq!(
        client.get(&proxy.url("/metrics")).status,
        404,
        "metrics left the main port"
    );
    assert!(upstream.requests().is_empty());
}
