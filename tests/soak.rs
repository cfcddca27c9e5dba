//! A bounded soak under faults: a few hundred requests per second through the signing proxy while the
//! upstream resets connections, answers 5xx and stalls (before its answer and in the middle of a body).
//! Every answer must be the one the injected fault calls for (nothing lost, nothing invented), and
//! when the load stops the proxy's descriptors must come back and its memory must not have grown with
//! the requests. The figures are printed (`cargo test --test soak -- --nocapture`).

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use futures_util::StreamExt;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;

const TS_ARN: &str = "arn:aws:sagemaker:us-west-2:111122223333:mlflow-tracking-server/soak";
/// At most this long, and at most this many requests, whichever comes first.
const LOAD_SECONDS: u64 = 20;
const MAX_REQUESTS: u64 = 6_000;
const CLIENTS: usize = 48;
const OK_BODY: &str = r#"{"experiments":[{"experiment_id":"1","name":"soak"}]}"#;

/// What the upstream does with a request, chosen by the client through `?fault=`.
#[derive(Clone, Copy, Debug)]
enum Fault {
    None,
    /// The connection is closed without an answer.
    Reset,
    /// 503 with a JSON body.
    Unavailable,
    /// No answer at all, until the proxy gives up (`--request-timeout`).
    StallHead,
    /// The head and half a body, then nothing (the proxy's `--idle-timeout` ends it).
    StallBody,
}

impl Fault {
    fn of_request(n: u64) -> Fault {
        match n % 20 {
            0 | 1 => Fault::Reset,
            2 | 3 => Fault::Unavailable,
            4 => Fault::StallHead,
            5 => Fault::StallBody,
            _ => Fault::None,
        }
    }

    fn query(self) -> &'static str {
        match self {
            Fault::None => "",
            Fault::Reset => "?fault=reset",
            Fault::Unavailable => "?fault=unavailable",
            Fault::StallHead => "?fault=stall-head",
            Fault::StallBody => "?fault=stall-body",
        }
    }

    /// Whether the client's outcome is the one this fault calls for.
    fn expected(self, outcome: &Outcome) -> bool {
        match (self, outcome) {
            (Fault::None, Outcome::Complete(200, body)) => body == OK_BODY,
            (Fault::Reset, Outcome::Complete(502, body)) => body.contains("error_code"),
            (Fault::Unavailable, Outcome::Complete(503, _)) => true,
            (Fault::StallHead, Outcome::Complete(504, body)) => body.contains("error_code"),
            // The head was sent before the stall: the client sees the body cut short.
            (Fault::StallBody, Outcome::BodyCut(200)) => true,
            _ => false,
        }
    }
}

#[derive(Debug)]
enum Outcome {
    Complete(u16, String),
    BodyCut(u16),
    /// No response head (with what the client said).
    #[allow(dead_code)] // read through Debug in the failure message
    NoAnswer(String),
}

type UpstreamBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

async fn fault_upstream(
    request: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<UpstreamBody>, std::io::Error> {
    let query = request.uri().query().unwrap_or_default().to_string();
    let full = |status: u16, body: &'static str| {
        hyper::Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from_static(body.as_bytes())).boxed())
            .unwrap()
    };
    match query.as_str() {
        // An error from the service makes hyper drop the connection without an answer.
        "fault=reset" => Err(std::io::Error::other("injected reset")),
        "fault=unavailable" => Ok(full(
            503,
            r#"{"error_code":"TEMPORARILY_UNAVAILABLE","message":"injected"}"#,
        )),
        "fault=stall-head" => std::future::pending().await,
        "fault=stall-body" => {
            let half = Bytes::from_static(&OK_BODY.as_bytes()[..OK_BODY.len() / 2]);
            let chunks = futures_util::stream::iter([Ok(Frame::data(half))])
                .chain(futures_util::stream::pending());
            let body = BodyExt::boxed(StreamBody::new(chunks));
            Ok(hyper::Response::builder()
                .status(200)
                .header("content-type", "application/json")
                .header("content-length", OK_BODY.len().to_string())
                .body(body)
                .unwrap())
        }
        _ => Ok(full(200, OK_BODY)),
    }
}

/// The faulty upstream, on its own runtime thread for the life of the test process.
fn start_fault_upstream() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(
                            hyper_util::rt::TokioIo::new(stream),
                            hyper::service::service_fn(fault_upstream),
                        )
                        .await;
                });
            }
        });
    });
    addr
}

/// One request through the proxy, and what the client saw of its answer.
async fn send(
    client: &hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        Full<Bytes>,
    >,
    url: &str,
) -> Outcome {
    let request = hyper::Request::builder()
        .uri(url)
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response =
        match tokio::time::timeout(Duration::from_secs(10), client.request(request)).await {
            Ok(Ok(response)) => response,
            Ok(Err(e)) => return Outcome::NoAnswer(e.to_string()),
            Err(_) => return Outcome::NoAnswer("no answer within 10 s".into()),
        };
    let status = response.status().as_u16();
    match tokio::time::timeout(Duration::from_secs(10), response.into_body().collect()).await {
        Ok(Ok(body)) => Outcome::Complete(status, String::from_utf8_lossy(&body.to_bytes()).into()),
        _ => Outcome::BodyCut(status),
    }
}

/// Descriptors the proxy holds open.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

#[test]
fn soak_under_resets_5xx_and_stalls_loses_and_leaks_nothing() {
    let upstream = start_fault_upstream();
    let proxy = start_proxy(
        &[
            "--arn",
            TS_ARN,
            "--upstream-url",
            &format!("http://{upstream}"),
            "--request-timeout",
            "1s",
            "--idle-timeout",
            "1s",
        ],
        &static_creds(),
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build(hyper_util::client::legacy::connect::HttpConnector::new());
    let base = proxy.url("/api/2.0/mlflow/experiments/search");
    // Warm up (pools, first credentials) before the baseline is taken.
    for _ in 0..20 {
        runtime.block_on(send(&client, &base));
    }
    let (rss_before, fds_before) = (proxy.rss_kib(), open_fds(proxy.pid()));

    let sent = Arc::new(AtomicU64::new(0));
    let unexpected = Arc::new(std::sync::Mutex::new(Vec::new()));
    let deadline = Instant::now() + Duration::from_secs(LOAD_SECONDS);
    let started = Instant::now();
    runtime.block_on(async {
        let tasks: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let (client, base) = (client.clone(), base.clone());
                let (sent, unexpected) = (sent.clone(), unexpected.clone());
                tokio::spawn(async move {
                    while Instant::now() < deadline {
                        let n = sent.fetch_add(1, Ordering::Relaxed);
                        if n >= MAX_REQUESTS {
                            break;
                        }
                        let fault = Fault::of_request(n);
                        let outcome = send(&client, &format!("{base}{}", fault.query())).await;
                        if !fault.expected(&outcome) {
                            unexpected
                                .lock()
                                .unwrap()
                                .push(format!("{fault:?}: {outcome:?}"));
                        }
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
    let elapsed = started.elapsed();
    let sent = sent.load(Ordering::Relaxed).min(MAX_REQUESTS);
    drop(client);
    drop(runtime);

    // The client's connections are closed now: the proxy's descriptors come back to the baseline.
    let fds_after = wait_for(
        "the proxy's descriptors to come back",
        Duration::from_secs(15),
        || {
            let fds = open_fds(proxy.pid());
            (fds <= fds_before + 2).then_some(fds)
        },
    );
    let rss_after = proxy.rss_kib();
    let unexpected = unexpected.lock().unwrap();
    println!(
        "soak: {sent} requests in {:.1} s ({:.0}/s), {} unexpected answers; proxy RSS {rss_before} -> {rss_after} KiB, descriptors {fds_before} -> {fds_after}",
        elapsed.as_secs_f64(),
        sent as f64 / elapsed.as_secs_f64(),
        unexpected.len(),
    );
    assert!(
        unexpected.is_empty(),
        "{} unexpected: {:?}",
        unexpected.len(),
        &unexpected[..unexpected.len().min(10)]
    );
    // Leak detection, not a memory target (those are in `make bench`): thousands of requests must not
    // leave their memory behind.
    assert!(
        rss_after < rss_before + 32 * 1024,
        "RSS grew {rss_before} -> {rss_after} KiB"
    );
}
