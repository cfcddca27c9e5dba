//! The bench upstream: a minimal, fast stand-in for an MLflow server, so that the figures measure the
//! path to it (direct, nginx, the signing proxy) and not the server.
//!
//! - `GET  /readyz`, `/health`                            200 `OK`
//! - `GET  /api/2.0/mlflow/...`                           a small MLflow-like JSON answer (experiments/search)
//! - `POST /api/2.0/mlflow/...`                           reads the body, answers `{}` (runs/log-metric)
//! - `GET  /api/2.0/mlflow-artifacts/artifacts/<p>/<N>.bin` N bytes, streamed (default `--large-bytes`)
//! - `PUT  /api/2.0/mlflow-artifacts/artifacts/<p>`       reads and counts the body, answers `{"bytes":N}`
//!
//! - `/bench-artifacts/...`                              a minimal S3 endpoint (`s3.rs`, the gateway's bench)
//!
//! Every request header (the proxy's SigV4 headers included) is ignored.
//!
//! Usage: `bench-upstream [--listen 127.0.0.1:0] [--threads N] [--large-bytes N]`; prints
//! `listening ADDR` on stdout once bound.

mod s3;

use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use hyper::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

const SEARCH_JSON: &str = r#"{"experiments":[{"experiment_id":"0","name":"Default","artifact_location":"s3://bench-bucket/0","lifecycle_stage":"active","last_update_time":1700000000000,"creation_time":1700000000000,"tags":[]},{"experiment_id":"1","name":"bench","artifact_location":"s3://bench-bucket/1","lifecycle_stage":"active","last_update_time":1700000000000,"creation_time":1700000000000,"tags":[{"key":"team","value":"ml-platform"}]}],"next_page_token":""}"#;

/// The large-body chunk: 256 KiB, sent over and over without copying.
const CHUNK_LEN: usize = 256 * 1024;
static CHUNK: [u8; CHUNK_LEN] = [b'm'; CHUNK_LEN];

/// A response body: a few bytes, or `remaining` bytes of [`CHUNK`] repeated.
enum Reply {
    Full(Option<Bytes>),
    Repeat { remaining: u64 },
}

impl Body for Reply {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            Reply::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Reply::Repeat { remaining } => {
                if *remaining == 0 {
                    return Poll::Ready(None);
                }
                let n = (*remaining).min(CHUNK_LEN as u64) as usize;
                *remaining -= n as u64;
                Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(&CHUNK[..n])))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Reply::Full(bytes) => bytes.is_none(),
            Reply::Repeat { remaining } => *remaining == 0,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Reply::Full(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            Reply::Repeat { remaining } => SizeHint::with_exact(*remaining),
        }
    }
}

fn reply(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Reply> {
    let mut response = Response::new(Reply::Full(Some(body.clone())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
        .headers_mut()
        .insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    response
}

fn json(body: &'static str) -> Response<Reply> {
    reply(
        StatusCode::OK,
        "application/json",
        Bytes::from_static(body.as_bytes()),
    )
}

/// Reads and discards a request body; returns its length.
async fn consume(mut body: Incoming) -> Result<u64, hyper::Error> {
    let mut total = 0u64;
    loop {
        let frame = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
        match frame {
            None => return Ok(total),
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    total += data.len() as u64;
                }
            }
            Some(Err(e)) => return Err(e),
        }
    }
}

/// `<N>.bin` at the end of an artifact path asks for N bytes.
fn requested_size(path: &str, default: u64) -> u64 {
    path.rsplit('/')
        .next()
        .and_then(|last| last.strip_suffix(".bin"))
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

/// The S3 endpoint's one bucket.
const S3_BUCKET: &str = "/bench-artifacts";

async fn handle(
    req: Request<Incoming>,
    large_bytes: u64,
    store: Arc<s3::Store>,
) -> Result<Response<Reply>, hyper::Error> {
    const ARTIFACTS: &str = "/api/2.0/mlflow-artifacts/artifacts/";
    const API: &str = "/api/2.0/mlflow/";
    let path = req.uri().path().to_owned();
    if path == S3_BUCKET || path.starts_with(&format!("{S3_BUCKET}/")) {
        return store.handle(req).await;
    }
    let method = req.method().clone();
    let response = if path.starts_with(ARTIFACTS) {
        match method {
            Method::GET => {
                let size = requested_size(&path, large_bytes);
                let mut response = Response::new(Reply::Repeat { remaining: size });
                response.headers_mut().insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("application/octet-stream"),
                );
                response
                    .headers_mut()
                    .insert(CONTENT_LENGTH, HeaderValue::from(size));
                response
            }
            Method::PUT => {
                let n = consume(req.into_body()).await?;
                reply(
                    StatusCode::OK,
                    "application/json",
                    Bytes::from(format!("{{\"bytes\":{n}}}")),
                )
            }
            _ => reply(
                StatusCode::METHOD_NOT_ALLOWED,
                "application/json",
                Bytes::from_static(b"{\"error_code\":\"BAD_REQUEST\"}"),
            ),
        }
    } else if path.starts_with(API) {
        match method {
            Method::POST => {
                consume(req.into_body()).await?;
                json("{}")
            }
            _ => json(SEARCH_JSON),
        }
    } else if path == "/readyz" || path == "/health" {
        reply(StatusCode::OK, "text/plain", Bytes::from_static(b"OK"))
    } else {
        reply(
            StatusCode::NOT_FOUND,
            "application/json",
            Bytes::from_static(b"{\"error_code\":\"ENDPOINT_NOT_FOUND\"}"),
        )
    };
    Ok(response)
}

struct Args {
    listen: SocketAddr,
    threads: usize,
    large_bytes: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
        large_bytes: 1 << 30,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--listen" => args.listen = value.parse().map_err(|e| format!("--listen: {e}"))?,
            "--threads" => args.threads = value.parse().map_err(|e| format!("--threads: {e}"))?,
            "--large-bytes" => {
                args.large_bytes = value.parse().map_err(|e| format!("--large-bytes: {e}"))?
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(args)
}

fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("bench-upstream: {e}");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(serve(args));
}

async fn serve(args: Args) {
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .unwrap_or_else(|e| {
            eprintln!("bench-upstream: cannot listen on {}: {e}", args.listen);
            std::process::exit(1);
        });
    let bound = listener.local_addr().expect("local address");
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening {bound}");
        let _ = out.flush();
    }
    let large_bytes = args.large_bytes;
    let store = Arc::new(s3::Store::default());
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors and the like: back off briefly rather than spin.
                eprintln!("bench-upstream: accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let store = store.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(req, large_bytes, store.clone()));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
