//! Forwarding one MLflow request upstream: path and query checks, header hygiene, bounded and hashed
//! body, SigV4 signing, the pooled client with timeouts, one retry after an expired-token answer, and
//! the response streamed back with its headers cleaned.

pub mod body;
pub mod headers;
pub mod path;
pub mod query;
pub mod response;
pub mod ui;
pub mod ui_session;
pub mod upstream_error;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::{Buf, Bytes};
use futures_util::Stream;
use http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use http_body_util::BodyExt;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use warp::Reply;

use crate::aws::credentials::{CachedCredentials, CredentialCache};
use crate::aws::sigv4::{self, Scope};
use crate::error::Error;
use crate::mlflow::routes::{Class, RouteClass};
use crate::net::cidr::Cidr;
use crate::net::http_client::{self, ResponseBody, UpstreamBody, UpstreamClient};
use crate::net::worker;
use crate::observe::access_log::{AccessLog, Outcome};
use crate::observe::metrics::UpstreamErrorKind;
use crate::observe::stats::Stats;
use crate::observe::telemetry::{self, SPAN_TARGET};
use crate::settings::target::Upstream;
use crate::settings::Settings;
use crate::upstream::ui_session::{is_session_rejected, Session, UiSession};
use body::{BodyLimits, PreparedBody};
use headers::ClientInfo;
use response::ResponseStream;

/// Upstream error bodies up to this size are read (to recognise expired tokens and restate AWS errors).
const MAX_ERROR_BODY_INSPECTED: u64 = 64 * 1024;

/// How a forwarded request authenticates to the upstream.
#[derive(Clone)]
pub enum UpstreamAuth<'a> {
    /// SigV4 with these credentials (REST calls; the UI in `sigv4` mode): the proxy's own, or the
    /// caller's with per-user sessions.
    Sign(Arc<CredentialCache>),
    /// The server-side UI session's cookie (the UI in `presigned-session` mode).
    Session(&'a UiSession),
    /// Nothing (a self-hosted MLflow).
    Unsigned,
}

/// A request as received, in the pieces warp extracts.
pub struct Inbound<S> {
    pub method: Method,
    /// Shared, so that the access log and the audit line keep it without copying it.
    pub path: Arc<str>,
    /// The raw query string; `None` when the request has none.
    pub query: Option<Arc<str>>,
    pub headers: HeaderMap,
    pub remote: Option<SocketAddr>,
    pub body: S,
}

impl<S> Inbound<S> {
    /// The same request with its body stream transformed.
    pub fn map_body<T>(self, f: impl FnOnce(S) -> T) -> Inbound<T> {
        let (inbound, body) = self.take_body();
        inbound.with_body(f(body))
    }

    /// Splits off the body stream.
    pub fn take_body(self) -> (Inbound<()>, S) {
        let Inbound {
            method,
            path,
            query,
            headers,
            remote,
            body,
        } = self;
        (
            Inbound {
                method,
                path,
                query,
                headers,
                remote,
                body: (),
            },
            body,
        )
    }
}

impl Inbound<()> {
    pub fn with_body<S>(self, body: S) -> Inbound<S> {
        let Inbound {
            method,
            path,
            query,
            headers,
            remote,
            ..
        } = self;
        Inbound {
            method,
            path,
            query,
            headers,
            remote,
            body,
        }
    }
}

pub struct Forwarder {
    upstream: Upstream,
    /// One pool per worker thread, so a request and its upstream connection share a thread.
    clients: Vec<UpstreamClient>,
    connect_timeout: Duration,
    request_timeout: Duration,
    idle_timeout: Duration,
    max_body_size: u64,
    /// The body limit of read operations (`--max-read-body-size`): searches and gets need little,
    /// so a large body there is refused instead of spooled.
    max_read_body_size: u64,
    memory_body_size: u64,
    spool_dir: PathBuf,
    trusted_proxies: Vec<Cidr>,
    /// `https` with `--tls-cert`, else `http`: the scheme clients used, for `X-Forwarded-Proto`.
    listener_scheme: &'static str,
    stats: Arc<Stats>,
}

impl Forwarder {
    pub fn new(settings: &Settings, stats: Arc<Stats>) -> Self {
        Forwarder {
            upstream: settings.upstream.clone(),
            clients: (0..settings.worker_threads.max(1))
                .map(|_| http_client::build(settings.connect_timeout, settings.idle_timeout))
                .collect(),
            connect_timeout: settings.connect_timeout,
            request_timeout: settings.request_timeout,
            idle_timeout: settings.idle_timeout,
            max_body_size: settings.max_body_size,
            max_read_body_size: settings.max_read_body_size,
            memory_body_size: settings.memory_body_size,
            spool_dir: settings.spool_dir.clone(),
            trusted_proxies: settings.trusted_proxies.clone(),
            listener_scheme: if settings.tls.is_some() {
                "https"
            } else {
                "http"
            },
            stats,
        }
    }

    /// A pooled client for the control-plane, UI-session and key-fetching calls (rare; any thread).
    pub fn client(&self) -> UpstreamClient {
        self.clients[0].clone()
    }

    /// The calling worker's own pool.
    fn worker_client(&self) -> &UpstreamClient {
        &self.clients[worker::current_index() % self.clients.len()]
    }

    /// Forwards `inbound` to `upstream_path` on the upstream and returns the client's response.
    /// Every failure becomes an MLflow-shaped error response; nothing here panics on input.
    /// `upstream_path` must have passed [`path::validate_path`] (the pipeline checks it before anything
    /// routes on it); `class` labels the request in metrics, traces and the access log.
    ///
    /// `admit` is called once the request body has been received, and what it returns is held until
    /// the answer's head is in: the global concurrency slot. Taking it only then keeps clients that
    /// are still sending (slowly, or a large upload) from holding slots others could use.
    pub async fn forward<S, B, E, Slot>(
        &self,
        inbound: Inbound<S>,
        upstream_path: &str,
        auth: UpstreamAuth<'_>,
        class: RouteClass,
        admit: impl FnOnce() -> Result<Slot, Error>,
    ) -> warp::reply::Response
    where
        S: Stream<Item = Result<B, E>> + Send,
        E: std::fmt::Display + Send,
        B: Buf,
    {
        let _in_flight = self.stats.begin();
        let request_id = headers::request_id(&inbound.headers);
        let mut log = self.access_log(&inbound, class, &request_id);
        let span = request_span(&inbound, class, &log.request_id);
        let outcome = self
            .try_forward(
                inbound,
                upstream_path,
                (auth, admit),
                class,
                &request_id,
                &mut log,
            )
            .instrument(span.clone())
            .await;
        let status = match &outcome {
            Ok((parts, _)) => parts.status.as_u16(),
            Err(error) => error.status().as_u16(),
        };
        span.record("http.response.status_code", status);
        log.status = status;
        match outcome {
            Ok((parts, incoming)) => {
                let stream = ResponseStream::new(incoming, self.idle_timeout, log);
                let mut response = warp::reply::stream(stream).into_response();
                *response.status_mut() = parts.status;
                *response.headers_mut() = parts.headers;
                response
            }
            Err(error) => self.error_response(error, log, request_id),
        }
    }

    /// The access-log record of one request, completed as the request goes on.
    fn access_log<S>(
        &self,
        inbound: &Inbound<S>,
        class: RouteClass,
        request_id: &HeaderValue,
    ) -> AccessLog {
        AccessLog {
            method: inbound.method.clone(),
            class: class.label(),
            path: inbound.path.clone(),
            status: 0,
            request_id: request_id.to_str().unwrap_or_default().to_string(),
            remote: inbound.remote,
            started: Instant::now(),
            upstream_latency: None,
            bytes_in: 0,
            bytes_out: 0,
            outcome: Outcome::Complete,
            stats: self.stats.clone(),
        }
    }

    /// A failure of forwarding as the client's response, counted and logged.
    fn error_response(
        &self,
        error: Error,
        mut log: AccessLog,
        request_id: HeaderValue,
    ) -> warp::reply::Response {
        let kind = match &error {
            Error::UpstreamUnreachable(_) => Some(UpstreamErrorKind::Unreachable),
            Error::UpstreamTimeout(_) => Some(UpstreamErrorKind::Timeout),
            Error::NoCredentials(_) => Some(UpstreamErrorKind::NoCredentials),
            _ => None,
        };
        if let Some(kind) = kind {
            self.stats.metrics.upstream_error(kind);
        }
        if matches!(error, Error::Internal(_)) {
            tracing::error!(request_id = %log.request_id, error = %error, "request failed");
        }
        log.outcome = Outcome::ProxyError;
        let mut response = error.into_response();
        response
            .headers_mut()
            .insert(headers::X_REQUEST_ID, request_id);
        response
    }

    /// Reads the body, then sends the request; a second attempt follows only when the first answer
    /// said the credentials expired or the UI session is gone (see [`Attempt`]).
    /// `(auth, admit)`: how to authenticate upstream, and the slot to take once the body is in.
    async fn try_forward<S, B, E, Admit, Slot>(
        &self,
        inbound: Inbound<S>,
        upstream_path: &str,
        (auth, admit): (UpstreamAuth<'_>, Admit),
        class: RouteClass,
        request_id: &HeaderValue,
        log: &mut AccessLog,
    ) -> Result<(http::response::Parts, ResponseBody), Error>
    where
        S: Stream<Item = Result<B, E>> + Send,
        E: std::fmt::Display + Send,
        B: Buf,
        Admit: FnOnce() -> Result<Slot, Error>,
    {
        let query = match inbound.query.as_deref() {
            Some(raw) if !raw.is_empty() => Some(query::canonicalize_query(raw)?),
            _ => None,
        };
        let (inbound, stream) = inbound.take_body();
        let body = self
            .read_body(&inbound.method, &inbound.headers, stream, class)
            .await?;
        log.bytes_in = body.len();
        let _slot = admit()?;
        let outgoing = Outgoing {
            inbound: &inbound,
            upstream_path,
            query: query.as_deref(),
            body: &body,
            request_id,
        };
        let mut attempt = Attempt::First;
        loop {
            let (response, used) = self.send(&outgoing, &auth, &attempt, log).await?;
            match self.judge(response, used, &attempt, request_id, log).await {
                Verdict::Answer(parts, body) => return Ok((parts, body)),
                Verdict::Retry(next) => attempt = next,
            }
        }
    }

    /// Builds, authenticates and sends one attempt; returns the upstream's answer and what it used.
    async fn send(
        &self,
        out: &Outgoing<'_>,
        auth: &UpstreamAuth<'_>,
        attempt: &Attempt,
        log: &mut AccessLog,
    ) -> Result<(http::Response<hyper::body::Incoming>, Used), Error> {
        let mut request_headers = self.request_headers(out);
        let (uri, used) = match auth {
            UpstreamAuth::Session(ui) => {
                let session = match attempt {
                    Attempt::AfterStaleSession(stale) => ui.renew_after_rejection(stale).await?,
                    _ => ui.get().await?,
                };
                request_headers.insert(header::COOKIE, session.cookie.clone());
                let uri = uri_and_host(&session.upstream, out, &mut request_headers)?;
                (uri, Used::Session(session))
            }
            UpstreamAuth::Sign(cache) => {
                let uri = uri_and_host(&self.upstream, out, &mut request_headers)?;
                let rejected = match attempt {
                    Attempt::AfterExpiredCredentials(rejected) => Some(rejected.as_ref()),
                    _ => None,
                };
                let used = self
                    .sign(cache, out, &uri, &mut request_headers, rejected)
                    .await?;
                (uri, Used::Credentials(used))
            }
            UpstreamAuth::Unsigned => {
                let uri = uri_and_host(&self.upstream, out, &mut request_headers)?;
                (uri, Used::Nothing)
            }
        };
        let mut request = http::Request::new(out.body.upstream_body().await?);
        *request.method_mut() = out.inbound.method.clone();
        *request.uri_mut() = uri;
        *request.headers_mut() = request_headers;
        let response = self.send_timed(request, log).await?;
        Ok((response, used))
    }

    /// The forwarded headers, built afresh for each attempt (a retry is rare; a copy per request is
    /// not).
    fn request_headers(&self, out: &Outgoing<'_>) -> HeaderMap {
        let inbound = out.inbound;
        let client_info = ClientInfo {
            remote: inbound.remote,
            host: inbound.headers.get(header::HOST),
            proto: self.listener_scheme,
            trusted_proxies: &self.trusted_proxies,
        };
        let mut built =
            headers::forward_request_headers(&inbound.headers, &client_info, out.request_id);
        let method_has_body = matches!(inbound.method, Method::POST | Method::PUT | Method::PATCH);
        if !out.body.is_empty() || method_has_body {
            built.insert(header::CONTENT_LENGTH, HeaderValue::from(out.body.len()));
        }
        if let Some(signing) = &self.upstream.signing {
            built.insert(
                signing.routing_header.clone(),
                signing.routing_value.clone(),
            );
        }
        built
    }

    /// Sends on the worker's pool within `--request-timeout`, traced as the `upstream` span.
    async fn send_timed(
        &self,
        mut request: http::Request<UpstreamBody>,
        log: &mut AccessLog,
    ) -> Result<http::Response<hyper::body::Incoming>, Error> {
        let upstream_span = tracing::info_span!(
            target: SPAN_TARGET,
            "upstream",
            otel.kind = "client",
            server.address = %request.uri().authority().map(|a| a.as_str()).unwrap_or_default(),
            http.response.status_code = tracing::field::Empty,
        );
        if !upstream_span.is_disabled() {
            telemetry::inject_context(&upstream_span, request.headers_mut());
        }
        let sent = Instant::now();
        let response =
            tokio::time::timeout(self.request_timeout, self.worker_client().request(request))
                .instrument(upstream_span.clone())
                .await
                .map_err(|_| {
                    Error::UpstreamTimeout(format!(
                        "{:?} (--request-timeout)",
                        self.request_timeout
                    ))
                })?
                .map_err(|e| self.classify_client_error(&e))?;
        log.upstream_latency = Some(sent.elapsed());
        upstream_span.record("http.response.status_code", response.status().as_u16());
        Ok(response)
    }

    /// Decides what to do with an upstream answer: pass it on (error bodies restated in MLflow's
    /// shape), or try once more after renewing what the upstream rejected.
    async fn judge(
        &self,
        response: http::Response<hyper::body::Incoming>,
        used: Used,
        attempt: &Attempt,
        request_id: &HeaderValue,
        log: &AccessLog,
    ) -> Verdict {
        let (mut parts, incoming) = response.into_parts();
        let first = matches!(attempt, Attempt::First);
        if let (true, Used::Session(session)) = (first, &used) {
            let rejected = is_session_rejected(parts.status, parts.headers.get(header::LOCATION));
            // 401 and a redirect to the login page mean the session is gone; a 403 on a fresh
            // session is about the request itself (IAM per action) and is passed on.
            let stale = parts.status != StatusCode::FORBIDDEN || session.may_be_stale();
            if rejected && stale {
                tracing::info!(request_id = %log.request_id, status = parts.status.as_u16(), "upstream UI session not accepted; renewing it and retrying once");
                return Verdict::Retry(Attempt::AfterStaleSession(session.clone()));
            }
        }
        headers::clean_response_headers(&mut parts.headers);
        parts
            .headers
            .insert(headers::X_REQUEST_ID, request_id.clone());
        let expired_credentials = |headers: &HeaderMap, body: &[u8]| match (&used, first) {
            (Used::Credentials(used), true)
                if parts.status == StatusCode::FORBIDDEN
                    && upstream_error::is_expired_token(headers, body) =>
            {
                Some(used.clone())
            }
            _ => None,
        };
        if !is_small_error(&parts) {
            if let Some(used) = expired_credentials(&parts.headers, b"") {
                return Verdict::Retry(Attempt::AfterExpiredCredentials(used));
            }
            return Verdict::Answer(parts, incoming.boxed());
        }
        // Error answers are small: read them to recognise an expired token (retry once with fresh
        // credentials) and to restate AWS's own errors in MLflow's shape.
        let body = match tokio::time::timeout(self.idle_timeout, incoming.collect()).await {
            Ok(Ok(collected)) => collected.to_bytes(),
            _ => Bytes::new(),
        };
        if let Some(used) = expired_credentials(&parts.headers, &body) {
            tracing::info!(request_id = %log.request_id, "upstream says the security token expired; refreshing credentials and retrying once");
            return Verdict::Retry(Attempt::AfterExpiredCredentials(used));
        }
        let body = match upstream_error::as_mlflow_error(&body, parts.status) {
            Some(restated) => {
                parts.headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                restated
            }
            None => body,
        };
        parts
            .headers
            .insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        let body = http_body_util::Full::new(body)
            .map_err(|never| match never {})
            .boxed();
        Verdict::Answer(parts, body)
    }

    async fn read_body<S, B, E>(
        &self,
        method: &Method,
        headers: &HeaderMap,
        stream: S,
        class: RouteClass,
    ) -> Result<PreparedBody, Error>
    where
        S: Stream<Item = Result<B, E>> + Send,
        E: std::fmt::Display + Send,
        B: Buf,
    {
        let declared = match headers.get(header::CONTENT_LENGTH) {
            Some(value) => Some(
                value
                    .to_str()
                    .ok()
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .ok_or_else(|| Error::BadRequest("invalid Content-Length".into()))?,
            ),
            None => None,
        };
        let chunked = headers.contains_key(header::TRANSFER_ENCODING);
        let bodyless = matches!(
            *method,
            Method::GET | Method::HEAD | Method::OPTIONS | Method::DELETE
        );
        if declared.unwrap_or(0) == 0 && !chunked && bodyless {
            return Ok(PreparedBody::empty());
        }
        let (max, max_setting) = self.body_limit(class);
        let limits = BodyLimits {
            max,
            max_setting,
            in_memory: self.memory_body_size,
            spool_dir: &self.spool_dir,
            idle_timeout: self.idle_timeout,
        };
        body::read_body(stream, declared, &limits).await
    }

    /// The largest body a request of `class` may send, and the flag that sets it: reads (API and UI)
    /// get `--max-read-body-size`; writes, deletes, admin calls and routes not in the table (new MLflow
    /// endpoints, which may upload) get `--max-body-size`.
    fn body_limit(&self, class: RouteClass) -> (u64, &'static str) {
        match class {
            RouteClass::Operation(Class::Read) | RouteClass::Ui => {
                (self.max_read_body_size, "--max-read-body-size")
            }
            _ => (self.max_body_size, "--max-body-size"),
        }
    }

    /// Signs the request with credentials from `cache` (refreshed first when `rejected` names the
    /// credentials the upstream refused); returns the credentials used.
    async fn sign(
        &self,
        cache: &Arc<CredentialCache>,
        out: &Outgoing<'_>,
        uri: &http::Uri,
        headers: &mut HeaderMap,
        rejected: Option<&CachedCredentials>,
    ) -> Result<Arc<CachedCredentials>, Error> {
        let Some(signing) = &self.upstream.signing else {
            return Err(Error::Internal(
                "signing requested without a signing target".into(),
            ));
        };
        let cached = async {
            match rejected {
                Some(rejected) => cache.refresh_after_rejection(rejected).await,
                None => cache.get().await,
            }
        }
        .instrument(
            tracing::info_span!(target: SPAN_TARGET, "credentials", refresh = rejected.is_some()),
        )
        .await?;
        let _signing =
            tracing::info_span!(target: SPAN_TARGET, "sign", aws.service = signing.service)
                .entered();
        let scope = Scope {
            service: signing.service,
            region: &signing.region,
            extra_signed_header: &signing.routing_header,
        };
        sigv4::sign_request(
            &out.inbound.method,
            uri,
            headers,
            out.body.sha256_hex(),
            sigv4::Signer {
                credentials: &cached.credentials,
                keys: &cached.signing_keys,
            },
            &scope,
            SystemTime::now(),
        )?;
        Ok(cached)
    }

    fn classify_client_error(&self, error: &hyper_util::client::legacy::Error) -> Error {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
        let mut chain = Vec::new();
        while let Some(e) = source {
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                if io.kind() == std::io::ErrorKind::TimedOut {
                    return Error::UpstreamTimeout(format!(
                        "{:?} (--connect-timeout)",
                        self.connect_timeout
                    ));
                }
            }
            let text = e.to_string();
            if chain.last() != Some(&text) {
                chain.push(text);
            }
            source = e.source();
        }
        Error::UpstreamUnreachable(format!(
            "{} ({})",
            chain.join(": "),
            self.upstream.base_url()
        ))
    }
}

/// One request on its way out: what every attempt sends.
struct Outgoing<'a> {
    inbound: &'a Inbound<()>,
    upstream_path: &'a str,
    /// The canonical query (what is signed is what is sent).
    query: Option<&'a str>,
    body: &'a PreparedBody,
    request_id: &'a HeaderValue,
}

/// Which attempt this is. There are at most two: the second only after the upstream rejected the
/// credentials as expired (they are refreshed) or the UI session as gone (it is renewed).
enum Attempt {
    First,
    AfterExpiredCredentials(Arc<CachedCredentials>),
    AfterStaleSession(Arc<Session>),
}

/// What an attempt authenticated with, so a rejection can name it.
enum Used {
    Credentials(Arc<CachedCredentials>),
    Session(Arc<Session>),
    Nothing,
}

/// What to do with an upstream answer.
enum Verdict {
    Answer(http::response::Parts, ResponseBody),
    Retry(Attempt),
}

/// Error answers up to [`MAX_ERROR_BODY_INSPECTED`] bytes are read (expired tokens, AWS errors).
fn is_small_error(parts: &http::response::Parts) -> bool {
    parts.status.as_u16() >= 400
        && parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|len| len <= MAX_ERROR_BODY_INSPECTED)
}

/// The upstream URI for this request, with the matching `Host` header set.
fn uri_and_host(
    upstream: &Upstream,
    out: &Outgoing<'_>,
    headers: &mut HeaderMap,
) -> Result<http::Uri, Error> {
    let uri = upstream
        .uri_for(out.upstream_path, out.query)
        .map_err(|e| Error::BadRequest(format!("cannot build the upstream URL: {e}")))?;
    headers.insert(header::HOST, upstream.host_header.clone());
    Ok(uri)
}

/// The `request` span of one forwarded request, child of the caller's trace context when it sent one.
fn request_span<S>(inbound: &Inbound<S>, class: RouteClass, request_id: &str) -> tracing::Span {
    let span = tracing::info_span!(
        target: SPAN_TARGET,
        "request",
        otel.name = %format_args!("{} {}", inbound.method, class.label()),
        otel.kind = "server",
        http.request.method = %inbound.method,
        url.path = %inbound.path,
        mlflow.route_class = class.label(),
        http.response.status_code = tracing::field::Empty,
        request_id = %request_id,
    );
    if !span.is_disabled() {
        let _ = span.set_parent(telemetry::extract_context(&inbound.headers));
    }
    span
}
