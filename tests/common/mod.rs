//! Test fixtures with real sockets on 127.0.0.1: a small upstream that behaves like the parts of
//! SageMaker MLflow the tests need (echo, large downloads, slow answers, expired tokens, an ECS-style
//! credentials endpoint), and the proxy binary itself started as a child process.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use sha2::{Digest, Sha256};

pub type TestBody = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;

/// What the test upstream saw.
#[derive(Default)]
pub struct Seen {
    pub requests: Mutex<Vec<SeenRequest>>,
    pub credential_fetches: AtomicU64,
    /// The PEM served at `/alb-key/<kid>` for the kid `test-kid` (an ALB key endpoint stand-in).
    pub alb_pem: Mutex<Option<String>>,
    /// Requests for `/alb-key/<kid>`, of any kid.
    pub alb_key_fetches: AtomicU64,
    /// Set by [`Upstream::release_held`]: `/api/2.0/mlflow/hold` answers only then.
    pub released: std::sync::atomic::AtomicBool,
    pub release: tokio::sync::Notify,
}

#[derive(Clone, Debug)]
pub struct SeenRequest {
    pub method: String,
    pub path_and_query: String,
    pub headers: HashMap<String, String>,
    pub body_sha256: String,
    pub body_len: u64,
}

pub struct Upstream {
    pub addr: SocketAddr,
    pub seen: Arc<Seen>,
}

impl Upstream {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.seen.requests.lock().unwrap().clone()
    }
    /// Lets the requests waiting at `/api/2.0/mlflow/hold` (and later ones) be answered.
    pub fn release_held(&self) {
        self.seen.released.store(true, Ordering::SeqCst);
        self.seen.release.notify_waiters();
    }
}

/// Checks `check` every 20 ms until it gives a value, for at most `timeout`; panics naming `what`.
/// Tests wait on the condition they need, never for a fixed time.
pub fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn full(status: u16, content_type: &str, body: impl Into<Bytes>) -> Response<TestBody> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(
            Full::new(body.into())
                .map_err(|never| match never {})
                .boxed(),
        )
        .unwrap()
}

fn query_param(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == key).then(|| v.to_string())
    })
}

/// The first access key seen at `/expire-once`; it is answered "expired" from then on.
type Expired = Arc<Mutex<Option<String>>>;

async fn handle(
    req: Request<Incoming>,
    seen: Arc<Seen>,
    expired: Expired,
) -> Result<Response<TestBody>, std::convert::Infallible> {
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or_default().to_string();
    let path_and_query = req
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let headers: HashMap<String, String> = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                v.to_str().unwrap_or("<binary>").to_string(),
            )
        })
        .collect();

    // ECS container credentials endpoint: new keys on every call, expiring in `ttl` seconds.
    if path == "/creds" {
        let n = seen.credential_fetches.fetch_add(1, Ordering::SeqCst);
        let ttl: u64 = query_param(&query, "ttl")
            .and_then(|t| t.parse().ok())
            .unwrap_or(3600);
        let expiry =
            humantime::format_rfc3339_seconds(SystemTime::now() + Duration::from_secs(ttl));
        let body = format!(
            r#"{{"AccessKeyId":"ASIATEST{n}","SecretAccessKey":"secret{n}","Token":"token{n}","Expiration":"{expiry}"}}"#
        );
        return Ok(full(200, "application/json", body));
    }

    if let Some(kid) = path.strip_prefix("/alb-key/") {
        seen.alb_key_fetches.fetch_add(1, Ordering::SeqCst);
        // `held-kid`: the same key, served once the test calls `release_held` (at most 30 s).
        if kid == "held-kid" {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            while !seen.released.load(Ordering::SeqCst) && tokio::time::Instant::now() < deadline {
                let released = seen.release.notified();
                if seen.released.load(Ordering::SeqCst) {
                    break;
                }
                let _ = tokio::time::timeout_at(deadline, released).await;
            }
        }
        let pem = seen.alb_pem.lock().unwrap().clone();
        return Ok(match pem {
            Some(pem) if kid == "test-kid" || kid == "held-kid" => full(200, "text/plain", pem),
            _ => full(404, "text/plain", "no such key"),
        });
    }

    // Hash the body as it streams in, without keeping it.
    let mut body = req.into_body();
    let mut hasher = Sha256::new();
    let mut body_len = 0u64;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { break };
        if let Ok(data) = frame.into_data() {
            body_len += data.len() as u64;
            hasher.update(&data);
        }
    }
    let body_sha256 = hex::encode(hasher.finalize());
    let record = SeenRequest {
        method,
        path_and_query,
        headers: headers.clone(),
        body_sha256: body_sha256.clone(),
        body_len,
    };
    seen.requests.lock().unwrap().push(record.clone());

    let response = match path.as_str() {
        // Answers once the test calls `release_held` (at most 30 s): the request is in flight for as
        // long as the test needs, whatever the machine's speed.
        "/api/2.0/mlflow/hold" => {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            loop {
                let released = seen.release.notified();
                if seen.released.load(Ordering::SeqCst) {
                    break full(200, "application/json", r#"{"held":true}"#);
                }
                if tokio::time::timeout_at(deadline, released).await.is_err() {
                    break full(500, "application/json", r#"{"held":"never released"}"#);
                }
            }
        }
        // An upstream slower than the proxy's --request-timeout (the time is the point here).
        "/api/2.0/mlflow/slow" => {
            let ms: u64 = query_param(&query, "ms")
                .and_then(|t| t.parse().ok())
                .unwrap_or(1000);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            full(200, "application/json", r#"{"slow":true}"#)
        }
        "/api/2.0/mlflow/expire-once" => {
            // The first access key seen here counts as expired; any other is fine.
            let auth = headers.get("authorization").cloned().unwrap_or_default();
            let key = auth
                .split("Credential=")
                .nth(1)
                .and_then(|c| c.split('/').next())
                .unwrap_or("")
                .to_string();
            let mut expired = expired.lock().unwrap();
            let expired_key = expired.get_or_insert_with(|| key.clone());
            if *expired_key != key {
                full(
                    200,
                    "application/json",
                    format!(r#"{{"ok":true,"key":"{key}"}}"#),
                )
            } else {
                let mut r = full(
                    403,
                    "application/json",
                    r#"{"__type":"ExpiredTokenException","message":"The security token included in the request is expired"}"#,
                );
                r.headers_mut()
                    .insert("x-amzn-errortype", "ExpiredTokenException".parse().unwrap());
                r
            }
        }
        // MLflow's own 403 whose message quotes a name with "ExpiredToken" in it (not an AWS error).
        "/api/2.0/mlflow/forbidden-quoting" => full(
            403,
            "application/json",
            r#"{"error_code":"PERMISSION_DENIED","message":"no access to experiment ExpiredTokenException"}"#,
        ),
        "/api/2.0/mlflow/forbidden" => full(
            403,
            "application/json",
            r#"{"__type":"AccessDeniedException","message":"not allowed"}"#,
        ),
        "/api/2.0/mlflow-artifacts/artifacts/big" => {
            let size: u64 = query_param(&query, "size")
                .and_then(|t| t.parse().ok())
                .unwrap_or(1 << 20);
            let chunk = Bytes::from(vec![b'x'; 256 * 1024]);
            let chunks = size / chunk.len() as u64;
            let stream = futures_util::stream::iter(0..chunks)
                .map(move |_| Ok::<_, std::io::Error>(Frame::data(chunk.clone())));
            Response::builder()
                .status(200)
                .header("content-type", "application/octet-stream")
                .header("content-length", (chunks * 256 * 1024).to_string())
                .body(BodyExt::boxed(StreamBody::new(stream)))
                .unwrap()
        }
        "/api/2.0/mlflow-artifacts/artifacts/stall" => {
            // Promises 1 MiB, sends 64 KiB, then goes quiet for good.
            let first = futures_util::stream::once(async {
                Ok::<_, std::io::Error>(Frame::data(Bytes::from(vec![b's'; 64 * 1024])))
            });
            let stream = first.chain(futures_util::stream::pending());
            Response::builder()
                .status(200)
                .header("content-type", "application/octet-stream")
                .header("content-length", (1u64 << 20).to_string())
                .body(BodyExt::boxed(StreamBody::new(stream)))
                .unwrap()
        }
        "/" | "/ui-page" => {
            let mut r = full(200, "text/html", "<html>mlflow ui</html>");
            r.headers_mut()
                .insert("x-frame-options", "SAMEORIGIN".parse().unwrap());
            r.headers_mut()
                .insert("set-cookie", "upstream=secret; HttpOnly".parse().unwrap());
            r
        }
        // An upstream that opens itself to every origin (the proxy must not pass this on).
        "/api/2.0/mlflow/cors-open" => {
            let mut r = full(200, "application/json", "{}");
            for (name, value) in [
                ("access-control-allow-origin", "*"),
                ("access-control-allow-credentials", "true"),
                ("access-control-allow-methods", "GET, POST, DELETE"),
                ("access-control-expose-headers", "x-secret"),
            ] {
                r.headers_mut().insert(name, value.parse().unwrap());
            }
            r
        }
        // A redirect whose query holds a URL (its `://` must not make it look absolute).
        "/redirect-next" => {
            let mut r = full(302, "text/plain", "");
            r.headers_mut().insert(
                "location",
                "/login?next=https://elsewhere.example/x".parse().unwrap(),
            );
            r
        }
        "/redirect" => {
            let mut r = full(302, "text/plain", "");
            r.headers_mut()
                .insert("location", "/#/experiments".parse().unwrap());
            r
        }
        _ => {
            let echo = serde_json::json!({
                "method": record.method,
                "path_and_query": record.path_and_query,
                "body_sha256": body_sha256,
                "body_len": body_len,
            });
            let mut r = full(200, "application/json", echo.to_string());
            r.headers_mut()
                .insert("connection", "keep-alive".parse().unwrap());
            r.headers_mut()
                .insert("set-cookie", "AWSALB=sticky".parse().unwrap());
            r
        }
    };
    Ok(response)
}

/// Starts the test upstream on 127.0.0.1 on its own runtime thread.
pub fn start_upstream() -> Upstream {
    let seen = Arc::new(Seen::default());
    let expired: Expired = Arc::default();
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    std_listener.set_nonblocking(true).unwrap();
    let addr = std_listener.local_addr().unwrap();
    let seen_for_server = seen.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let seen = seen_for_server.clone();
                let expired = expired.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        handle(req, seen.clone(), expired.clone())
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
                });
            }
        });
    });
    Upstream { addr, seen }
}

pub const TS_ARN: &str =
    "arn:aws:sagemaker:us-west-2:111122223333:mlflow-tracking-server/test-server";
pub const APP_ARN: &str = "arn:aws:sagemaker:us-west-2:111122223333:mlflow-app/app-TEST12345678";

/// The proxy binary running as a child process.
pub struct Proxy {
    pub child: Child,
    pub addr: SocketAddr,
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Proxy {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
    /// Peak resident set size (VmHWM) in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        proc_status_kib(self.pid(), "VmHWM:")
    }
    pub fn rss_kib(&self) -> u64 {
        proc_status_kib(self.pid(), "VmRSS:")
    }
    pub fn log_lines(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
    /// Waits (at most 10 s) for a log line containing every one of `parts`, and returns it.
    pub fn wait_for_log(&self, parts: &[&str]) -> String {
        wait_for(
            &format!("a log line with {parts:?}"),
            Duration::from_secs(10),
            || {
                self.log_lines()
                    .into_iter()
                    .find(|line| parts.iter().all(|p| line.contains(p)))
            },
        )
    }
    pub fn terminate(&self) {
        Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status()
            .unwrap();
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Starts the proxy with `args` and an environment free of the developer's AWS settings, and waits
/// until it logs its listening address.
pub fn start_proxy(args: &[&str], env: &[(&str, &str)]) -> Proxy {
    start_proxy_logging("json", args, env)
}

/// [`start_proxy`] with the given `--log-format` (`json` or `text`).
pub fn start_proxy_logging(log_format: &str, args: &[&str], env: &[(&str, &str)]) -> Proxy {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sagemaker-mlflow-proxy"));
    command
        .args(["--listen", "127.0.0.1:0", "--log-format", log_format])
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_REGION", "us-west-2")
        // The fake upstream has no S3 and no control plane: these tests exercise forwarding, artifact
        // routes included (the gateway has its own tests against the stand-in's S3).
        .env("MLFLOW_PROXY_ARTIFACT_GATEWAY", "false")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("start the proxy binary");
    let stderr = child.stderr.take().unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let log_writer = log.clone();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if line.contains("sagemaker-mlflow-proxy listening") {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(line.clone());
                }
            }
            log_writer.lock().unwrap().push(line);
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(20))
        .unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("proxy did not start: {:?}", log.lock().unwrap());
        });
    let addr = listen_address(&line);
    Proxy { child, addr, log }
}

/// The address in the "listening" line, JSON (`"listen":"…"`) or text (`listen=…`).
fn listen_address(line: &str) -> SocketAddr {
    if let Ok(json) = serde_json::from_str::<serde_json::Value>(line) {
        return json["listen"].as_str().unwrap().parse().unwrap();
    }
    let field = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("listen="));
    field
        .unwrap_or_else(|| panic!("no listen= in {line}"))
        .parse()
        .unwrap()
}

/// The proxy in front of `upstream` without signing (as for a self-hosted MLflow), with extra flags.
pub fn start_unsigned_proxy(upstream: &Upstream, extra: &[&str]) -> Proxy {
    let url = upstream.url();
    let mut args = vec!["--signing", "none", "--upstream-url", url.as_str()];
    args.extend_from_slice(extra);
    start_proxy(&args, &[])
}

/// Static credentials in the environment, as a CI job or laptop would have.
pub fn static_creds() -> Vec<(&'static str, &'static str)> {
    vec![
        ("AWS_ACCESS_KEY_ID", "AKIDSTATICTEST"),
        ("AWS_SECRET_ACCESS_KEY", "static-secret"),
    ]
}

/// A small blocking HTTP client built on hyper for the tests.
pub struct Client {
    runtime: tokio::runtime::Runtime,
    inner: hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        Full<Bytes>,
    >,
}

pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }
}

/// Reads a whole response into a [`Reply`].
async fn into_reply<B>(response: hyper::Response<B>) -> Reply
where
    B: hyper::body::Body,
{
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    Reply {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body,
    }
}

impl Client {
    pub fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let inner = {
            let _guard = runtime.enter();
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build(hyper_util::client::legacy::connect::HttpConnector::new())
        };
        Client { runtime, inner }
    }

    pub fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Reply {
        let mut builder = Request::builder().method(method).uri(url);
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let request = builder.body(Full::new(body.into())).unwrap();
        self.runtime.block_on(async {
            into_reply(self.inner.request(request).await.expect("request")).await
        })
    }

    /// Sends raw bytes on a fresh connection and returns the response head and body as text.
    pub fn raw(&self, addr: std::net::SocketAddr, request: &str) -> String {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut out = Vec::new();
        let _ = stream.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    pub fn get(&self, url: &str) -> Reply {
        self.send("GET", url, &[], Bytes::new())
    }

    /// Downloads without keeping the body; returns status, byte count and SHA-256.
    pub fn download(&self, url: &str) -> (u16, u64, String) {
        let request = Request::builder()
            .uri(url)
            .body(Full::new(Bytes::new()))
            .unwrap();
        self.runtime.block_on(async {
            let response = self.inner.request(request).await.expect("request");
            let status = response.status().as_u16();
            let mut body = response.into_body();
            let mut hasher = Sha256::new();
            let mut total = 0u64;
            while let Some(frame) = body.frame().await {
                if let Ok(data) = frame.expect("body frame").into_data() {
                    total += data.len() as u64;
                    hasher.update(&data);
                }
            }
            (status, total, hex::encode(hasher.finalize()))
        })
    }

    /// Streams `size` bytes as a chunked request body (no Content-Length).
    pub fn upload_streamed(&self, url: &str, size: u64) -> Reply {
        let runtime_client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build::<_, TestBody>(hyper_util::client::legacy::connect::HttpConnector::new());
        let chunk = Bytes::from(vec![b'u'; 256 * 1024]);
        let chunks = size / chunk.len() as u64;
        let stream = futures_util::stream::iter(0..chunks)
            .map(move |_| Ok::<_, std::io::Error>(Frame::data(chunk.clone())));
        let request = Request::builder()
            .method("PUT")
            .uri(url)
            .body(BodyExt::boxed(StreamBody::new(stream)))
            .unwrap();
        self.runtime.block_on(async {
            into_reply(runtime_client.request(request).await.expect("request")).await
        })
    }
}
