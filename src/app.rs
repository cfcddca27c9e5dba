//! The application: shared state, the MLflow gate, and the warp route table.
//!
//! MLflow API paths (`proxy::path::is_mlflow_api_path`) are handed to [`handle_api_request`] by the
//! server directly. Everything else goes through the warp routes, in order: `/healthz`, `/readyz`,
//! `/metrics`, `/api/proxy/*` (the proxy's own JSON), `/mlflow/*` (the UI, forwarded with the prefix
//! stripped), and the dashboard for every other GET. Anything else is a JSON 404/405.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::{Buf, Bytes};
use futures_util::future::Either;
use futures_util::{Stream, StreamExt};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use opentelemetry::metrics::Meter;
use serde_json::json;
use warp::filters::path::FullPath;
use warp::{Filter, Rejection};

use crate::audit;
use crate::auth::{Authenticator, Identity};
use crate::aws::sagemaker::{self, ControlPlane};
use crate::aws::Aws;
use crate::browser;
use crate::config::{Settings, UiAuth};
use crate::error::{json_error, Error};
use crate::limits::{Limits, Refusal};
use crate::metrics::Gauges;
use crate::ops;
use crate::policy::{self, Policy};
use crate::proxy::{Forwarder, Inbound, UpstreamAuth};
use crate::server::ClientAddr;
use crate::stats::Stats;
use crate::ui;
use crate::ui_session::UiSession;

pub struct App {
    pub settings: Settings,
    pub forwarder: Forwarder,
    /// Present when signing with SigV4.
    pub aws: Option<Aws>,
    pub stats: Arc<Stats>,
    pub started_at: SystemTime,
    pub started: Instant,
    /// Set on SIGTERM: `/readyz` answers 503 so load balancers stop sending new requests.
    pub draining: AtomicBool,
    pub identity_cache: ops::IdentityCache,
    /// `Content-Security-Policy` for pages that may be framed.
    pub frame_policy: HeaderValue,
    /// Present in presigned-session UI mode.
    pub ui_session: Option<Arc<UiSession>>,
    pub authenticator: Authenticator,
    pub policy: Policy,
    pub limits: Limits,
}

impl App {
    /// Builds the application; with SigV4 signing this loads the AWS configuration.
    pub async fn new(settings: Settings) -> Result<Arc<Self>, Error> {
        let aws = match &settings.upstream.signing {
            Some(signing) => Some(Aws::load(&settings, &signing.region).await?),
            None => None,
        };
        let stats = Arc::new(Stats::default());
        let forwarder = Forwarder::new(&settings, stats.clone());
        let authenticator =
            Authenticator::new(&settings.auth, forwarder.client()).map_err(Error::Internal)?;
        let policy = match &settings.policy {
            Some(source) => Policy::load(source).map_err(Error::Internal)?,
            None => Policy::allow_all(),
        };
        let policy = if settings.read_only {
            policy.restricted_to_reads()
        } else {
            policy
        };
        let limits = Limits::new(settings.limits.clone());
        let frame_policy = browser::frame_ancestors_policy(&settings.frame_ancestors);
        let ui_session = match (&aws, &settings.upstream.signing, settings.ui_auth) {
            (Some(aws), Some(signing), Some(UiAuth::PresignedSession)) => {
                let endpoint = settings
                    .sagemaker_endpoint
                    .clone()
                    .unwrap_or_else(|| sagemaker::default_endpoint(&signing.region));
                let control = ControlPlane::new(
                    &endpoint,
                    &signing.region,
                    aws.credentials.clone(),
                    forwarder.client(),
                    settings.request_timeout.min(Duration::from_secs(30)),
                )?;
                Some(UiSession::new(
                    control,
                    signing.arn.clone(),
                    forwarder.client(),
                    settings.ui_session_duration.as_secs(),
                    settings.request_timeout.min(Duration::from_secs(30)),
                ))
            }
            _ => None,
        };
        Ok(Arc::new(App {
            settings,
            forwarder,
            aws,
            stats,
            started_at: SystemTime::now(),
            started: Instant::now(),
            draining: AtomicBool::new(false),
            identity_cache: Default::default(),
            frame_policy,
            ui_session,
            authenticator,
            policy,
            limits,
        }))
    }

    /// Starts background work (credential refresh ahead of expiry).
    pub fn start_background(self: &Arc<Self>) {
        if let Some(aws) = &self.aws {
            tokio::spawn(aws.credentials.clone().run_refresher());
        }
        if let Some(ui_session) = &self.ui_session {
            tokio::spawn(ui_session.clone().run_renewer());
        }
        if let Some(store) = self.authenticator.token_store() {
            tokio::spawn(reload_tokens_on_sighup(store));
        }
    }

    /// The figures owned outside the metrics registry, read at scrape or export time.
    pub fn gauges(&self) -> Gauges {
        Gauges {
            in_flight: self.stats.in_flight(),
            credential_refreshes: self.aws.as_ref().map(|a| a.credentials.status().refreshes),
            ui_session_renewals: self.ui_session.as_ref().map(|s| s.renewals()),
        }
    }

    /// Exports the metrics over OTLP too: the per-request instruments, and the gauges as observable
    /// instruments read at each export.
    pub fn export_metrics(self: &Arc<Self>, meter: &Meter) {
        self.stats.metrics.export_over_otlp(meter);
        // Weak: the meter provider (owned by main) must not keep the application alive.
        let app = Arc::downgrade(self);
        let read = move || app.upgrade().map(|app| app.gauges());
        let reader = read.clone();
        meter
            .i64_observable_up_down_counter("http.server.active_requests")
            .with_description("Requests being handled now.")
            .with_callback(move |observer| {
                if let Some(gauges) = reader() {
                    observer.observe(gauges.in_flight, &[]);
                }
            })
            .build();
        if self.aws.is_some() {
            let reader = read.clone();
            meter
                .u64_observable_counter("mlflow_proxy.credential.refreshes")
                .with_description(
                    "AWS credential fetches (start-up, ahead of expiry, after rejection).",
                )
                .with_callback(move |observer| {
                    if let Some(n) = reader().and_then(|g| g.credential_refreshes) {
                        observer.observe(n, &[]);
                    }
                })
                .build();
        }
        if self.ui_session.is_some() {
            meter
                .u64_observable_counter("mlflow_proxy.ui_session.renewals")
                .with_description("Upstream UI sessions established.")
                .with_callback(move |observer| {
                    if let Some(n) = read().and_then(|g| g.ui_session_renewals) {
                        observer.observe(n, &[]);
                    }
                })
                .build();
        }
    }

    pub fn ui_session_status(&self) -> serde_json::Value {
        match &self.ui_session {
            Some(ui_session) => ui_session.status(),
            None => json!({"state": "none", "expires_at": null}),
        }
    }
}

/// The admin listener's routes: health, readiness and metrics, nothing else.
pub fn admin_routes(
    app: Arc<App>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Infallible> + Clone {
    let with_app = warp::any().map(move || app.clone());
    let healthz = warp::path!("healthz").map(ops::healthz);
    let readyz = warp::path!("readyz")
        .and(with_app.clone())
        .map(|app: Arc<App>| ops::readyz(&app));
    let metrics = warp::path!("metrics")
        .and(with_app)
        .map(|app: Arc<App>| ops::metrics(&app));
    warp::get()
        .and(healthz.or(readyz).unify().or(metrics).unify())
        .recover(|rejection: Rejection| async move {
            Ok::<_, Infallible>(rejection_response(rejection))
        })
        .unify()
}

/// Re-reads the token file on every SIGHUP; a broken file keeps the tokens in force.
async fn reload_tokens_on_sighup(store: Arc<crate::auth::tokens::TokenStore>) {
    #[cfg(unix)]
    {
        let Ok(mut hangups) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            return;
        };
        while hangups.recv().await.is_some() {
            match store.reload() {
                Ok(count) => tracing::info!(tokens = count, "token file reloaded"),
                Err(e) => {
                    tracing::error!(error = %e, "token file not reloaded; keeping the previous tokens")
                }
            }
        }
    }
}

/// The client's address, as the server loop recorded it.
fn client_addr() -> impl Filter<Extract = (Option<SocketAddr>,), Error = Infallible> + Clone {
    warp::ext::optional::<ClientAddr>().map(|addr: Option<ClientAddr>| addr.map(|a| a.0))
}

/// The request pieces every forwarding route needs.
fn inbound_parts() -> impl Filter<
    Extract = (Method, FullPath, String, HeaderMap, Option<SocketAddr>),
    Error = Infallible,
> + Clone {
    let raw_query = warp::query::raw().or(warp::any().map(String::new)).unify();
    warp::method()
        .and(warp::path::full())
        .and(raw_query)
        .and(warp::header::headers_cloned())
        .and(client_addr())
}

/// All routes, each answering with a response (errors included).
pub fn routes(
    app: Arc<App>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Infallible> + Clone {
    let with_app = {
        let app = app.clone();
        warp::any().map(move || app.clone())
    };

    // Each route is boxed: it keeps the composed filter type (and compile times) small.
    let healthz = warp::path!("healthz").map(ops::healthz).boxed();
    // With --admin-listen, metrics are served there only (the main port may face the internet).
    let metrics = warp::path!("metrics")
        .and(warp::get())
        .and(with_app.clone())
        .map(|app: Arc<App>| match app.settings.admin_listen {
            Some(_) => {
                Error::NotFound("/metrics is served on --admin-listen".into()).into_response()
            }
            None => ops::metrics(&app),
        })
        .boxed();
    let readyz = warp::path!("readyz")
        .and(with_app.clone())
        .map(|app: Arc<App>| ops::readyz(&app))
        .boxed();
    let proxy_api = warp::path("api")
        .and(warp::path("proxy"))
        .and(warp::get())
        .and(warp::path::full())
        .and(warp::header::headers_cloned())
        .and(client_addr())
        .and(with_app.clone())
        .then(|path: FullPath, headers: HeaderMap, remote: Option<SocketAddr>, app: Arc<App>| async move {
            if let Err(response) = authenticate(&app, &headers, remote).await {
                return response;
            }
            match path.as_str() {
                "/api/proxy/status" => ops::status(&app),
                "/api/proxy/stats" => ops::stats(&app),
                "/api/proxy/identity" => ops::identity(app.clone()).await,
                other => ops::unknown_proxy_api(other),
            }
        })
        .boxed();

    // `warp::path!` would also match "/mlflow/", so compare the full path.
    let mlflow_ui_redirect = warp::get()
        .or(warp::head())
        .unify()
        .and(warp::path::full())
        .and_then(|path: FullPath| async move {
            if path.as_str() == ui::PREFIX {
                Ok(redirect("/mlflow/"))
            } else {
                Err(warp::reject::not_found())
            }
        })
        .boxed();
    let mlflow_ui = warp::path("mlflow")
        .and(inbound_parts())
        .and(warp::body::stream())
        .and(with_app.clone())
        .then(
            |method, path: FullPath, query, headers, remote, body, app: Arc<App>| async move {
                let full = path.as_str().to_string();
                let Some(upstream_path) = ui::upstream_path(&full).map(str::to_string) else {
                    return Error::NotFound(format!("no route for {full}")).into_response();
                };
                let inbound = Inbound {
                    class: "unknown",
                    method,
                    path: full,
                    query: Some(query),
                    headers,
                    remote,
                    body,
                };
                handle_mlflow(&app, inbound, &upstream_path, true).await
            },
        )
        .boxed();

    let dashboard = warp::get()
        .and(warp::path::full())
        .and(warp::header::headers_cloned())
        .and(client_addr())
        .and(with_app)
        .then(|path: FullPath, headers: HeaderMap, remote: Option<SocketAddr>, app: Arc<App>| async move {
            let path = path.as_str();
            if path.starts_with("/api/") || path.starts_with("/ajax-api/") {
                return Error::NotFound(format!("no route for {path}")).into_response();
            }
            if let Err(response) = authenticate(&app, &headers, remote).await {
                return response;
            }
            crate::dashboard::serve(path, &app.frame_policy)
        })
        .boxed();

    healthz
        .or(readyz)
        .unify()
        .or(metrics)
        .unify()
        .or(proxy_api)
        .unify()
        .or(mlflow_ui_redirect)
        .unify()
        .or(mlflow_ui)
        .unify()
        .or(dashboard)
        .unify()
        .recover(|rejection: Rejection| async move {
            Ok::<_, Infallible>(rejection_response(rejection))
        })
        .unify()
}

/// An MLflow API call (`proxy::path::is_mlflow_api_path`), handed over by the server without going
/// through warp's filter chain: these calls are nearly all the traffic, and the chain would copy the
/// header map and box the route's future on each of them.
pub async fn handle_api_request(
    app: Arc<App>,
    request: http::Request<hyper::body::Incoming>,
) -> warp::reply::Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_string();
    let inbound = Inbound {
        class: "unknown",
        method: parts.method,
        path: path.clone(),
        query: Some(parts.uri.query().unwrap_or_default().to_string()),
        headers: parts.headers,
        remote: parts.extensions.get::<ClientAddr>().map(|a| a.0),
        body: http_body_util::BodyDataStream::new(body),
    };
    handle_mlflow(&app, inbound, &path, false).await
}

/// Largest body read ahead of forwarding for classification (GraphQL) and audit details.
const MAX_INSPECTED_BODY: u64 = 1 << 20;

/// The gate every MLflow request passes, in order: header limits, CORS and cross-origin refusal,
/// authentication, rate and concurrency limits, permission by operation class; then forwarding (with the
/// caller's own AWS session when per-user sessions are on), the audit event, and the UI's header rewrite.
async fn handle_mlflow<S, B, E>(
    app: &App,
    inbound: Inbound<S>,
    upstream_path: &str,
    is_ui: bool,
) -> warp::reply::Response
where
    S: Stream<Item = Result<B, E>> + Send,
    E: std::fmt::Display + Send,
    B: Buf,
{
    if let Err(refusal) = app.limits.check_headers(&inbound.headers) {
        return refusal_response(refusal);
    }
    // Ambiguous paths are refused before anything (classification included) looks at them.
    if let Err(e) = crate::proxy::path::validate_path(upstream_path) {
        return e.into_response();
    }
    let allowed = &app.settings.cors_allowed_origins;
    let origin = browser::classify_origin(&inbound.headers, allowed);
    if let Some(response) = browser::preflight(&inbound.method, &inbound.headers, &origin) {
        return response;
    }
    if let Some(response) = browser::refuse_cross_origin(&inbound.method, &origin) {
        return response;
    }
    // The Origin value is needed after `inbound` moves into the forwarder.
    let origin_value = match origin {
        browser::Origin::Allowed(v) => Some(v.clone()),
        _ => None,
    };
    let identity = match authenticate(app, &inbound.headers, inbound.remote).await {
        Ok(identity) => identity,
        Err(response) => return response,
    };
    if let Err(refusal) = app.limits.check_rate(&identity.name) {
        return refusal_response(refusal);
    }
    let _permit = match app.limits.admit() {
        Ok(permit) => permit,
        Err(refusal) => return refusal_response(refusal),
    };

    // GraphQL (to tell queries from mutations) and small bodies of mutating calls (for the audit
    // event) are read ahead; everything else streams straight into the forwarder.
    let is_graphql = upstream_path.trim_end_matches('/') == "/graphql";
    let query = inbound.query.clone().unwrap_or_default();
    let provisional = policy::classify(&inbound.method, upstream_path, Some(query.as_bytes()));
    let declared_len = inbound
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // The body is read ahead for an audit line or a policy's experiment rules only when one of them
    // will use it (audit lines go to the log at info level, so a stricter log filter drops them).
    let audit_on = audit::enabled();
    let read_ahead = (is_graphql && inbound.method == Method::POST)
        || ((audit_on || app.policy.is_enforced())
            && audit::is_audited(provisional)
            && declared_len.is_some_and(|l| l > 0 && l <= MAX_INSPECTED_BODY));
    let (inbound, body_bytes) = if read_ahead {
        match read_small_body(inbound).await {
            Ok(pair) => pair,
            Err(e) => return e.into_response(),
        }
    } else {
        let to_bytes: ChunkToBytes<B, E> = chunk_to_bytes::<B, E>;
        (
            inbound.map_body(|body| Either::Left(body.map(to_bytes))),
            None,
        )
    };
    let class = if is_graphql {
        let text = body_bytes.clone().unwrap_or_else(|| {
            crate::proxy::path::percent_decode_strict(&query.replace('+', " "))
                .map(|decoded| Bytes::from(decoded.into_owned()))
                .unwrap_or_default()
        });
        policy::classify(&inbound.method, upstream_path, Some(&text))
    } else {
        provisional
    };
    let mut inbound = inbound;
    inbound.class = if is_ui && class == Some(policy::Class::Read) {
        "ui"
    } else {
        class.map(policy::Class::name).unwrap_or("unknown")
    };
    // Only a policy uses the experiment name (prefix rules); skip the body parse otherwise.
    let experiment = app
        .policy
        .is_enforced()
        .then(|| named_experiment(&query, body_bytes.as_deref()))
        .flatten();
    if let Err(denial) = app.policy.check(&identity, class, experiment.as_deref()) {
        tracing::info!(target: "audit", who = %identity.name, path = %inbound.path, method = %inbound.method, reason = %denial, "denied");
        return json_error(
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
            &format!("{denial} (identity {:?})", identity.name),
        );
    }

    let user_credentials = match (&app.aws, app.aws.as_ref().and_then(|a| a.per_user.as_ref())) {
        (Some(_), Some(per_user)) => Some(per_user.for_caller(&identity.name)),
        _ => None,
    };
    let credentials = user_credentials
        .as_ref()
        .or(app.aws.as_ref().map(|a| &a.credentials));
    let upstream_auth = match (is_ui, &app.ui_session, credentials) {
        (true, Some(session), _) => UpstreamAuth::Session(session),
        (_, _, Some(cache)) => UpstreamAuth::Sign(cache),
        _ => UpstreamAuth::Unsigned,
    };
    let audited = audit_on && audit::is_audited(class);
    let (method, path, remote) = (inbound.method.clone(), inbound.path.clone(), inbound.remote);
    let subjects = if audited {
        audit::subjects(&query, body_bytes.as_deref())
    } else {
        String::new()
    };

    // Boxed: forwarding is the largest future here, and without the box every layer that holds this
    // future (the server's dispatch, warp's filters for the UI route) would copy its full size on
    // each move.
    let mut response = Box::pin(app.forwarder.forward(inbound, upstream_path, upstream_auth)).await;

    if audited {
        let request_id = response
            .headers()
            .get(&crate::proxy::headers::X_REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        audit::emit(&audit::AuditEvent {
            identity: &identity,
            remote,
            method: &method,
            path: &path,
            class,
            subjects: &subjects,
            status: response.status().as_u16(),
            request_id: &request_id,
        });
    }
    if let Some(value) = origin_value {
        browser::add_cors_headers(&mut response, &browser::Origin::Allowed(&value));
    }
    if is_ui {
        ui::rewrite_response_headers(
            response.headers_mut(),
            app.settings.upstream.authority.as_str(),
            &app.frame_policy,
        );
    }
    response
}

/// The experiment name a request names: `experiment_name` in the query (get-by-name) or `name` /
/// `new_name` in a JSON body (create, update).
fn named_experiment(query: &str, body: Option<&[u8]>) -> Option<String> {
    for pair in query.split('&') {
        if let Some(value) = pair.strip_prefix("experiment_name=") {
            let spaced = value.replace('+', " ");
            let decoded = crate::proxy::path::percent_decode_strict(&spaced)?;
            return Some(String::from_utf8_lossy(&decoded).into_owned());
        }
    }
    let json: serde_json::Value = serde_json::from_slice(body?).ok()?;
    ["new_name", "name"]
        .iter()
        .find_map(|k| json.get(*k).and_then(|v| v.as_str()).map(str::to_string))
}

type ReadAheadStream<E> = futures_util::stream::Once<std::future::Ready<Result<Bytes, E>>>;

type ChunkToBytes<B, E> = fn(Result<B, E>) -> Result<Bytes, E>;

/// One body chunk as `Bytes` (the chunks are `Bytes` already, so this does not copy).
fn chunk_to_bytes<B: Buf, E>(chunk: Result<B, E>) -> Result<Bytes, E> {
    chunk.map(|mut b| b.copy_to_bytes(b.remaining()))
}

/// Reads a body of at most [`MAX_INSPECTED_BODY`] bytes and hands it on as a one-chunk stream.
async fn read_small_body<S, B, E>(
    inbound: Inbound<S>,
) -> Result<
    (
        Inbound<Either<futures_util::stream::Map<S, ChunkToBytes<B, E>>, ReadAheadStream<E>>>,
        Option<Bytes>,
    ),
    Error,
>
where
    S: Stream<Item = Result<B, E>> + Send,
    E: std::fmt::Display + Send,
    B: Buf,
{
    let (inbound, stream) = inbound.take_body();
    let mut collected = bytes::BytesMut::new();
    let mut stream = std::pin::pin!(stream);
    while let Some(chunk) = stream.next().await {
        let mut chunk = chunk
            .map_err(|e| Error::BadRequest(format!("reading the request body failed: {e}")))?;
        if collected.len() as u64 + chunk.remaining() as u64 > MAX_INSPECTED_BODY {
            return Err(Error::PayloadTooLarge {
                limit: MAX_INSPECTED_BODY,
            });
        }
        while chunk.has_remaining() {
            let piece = chunk.chunk();
            collected.extend_from_slice(piece);
            let n = piece.len();
            chunk.advance(n);
        }
    }
    let bytes = collected.freeze();
    let replay: ReadAheadStream<E> =
        futures_util::stream::once(std::future::ready(Ok(bytes.clone())));
    Ok((inbound.with_body(Either::Right(replay)), Some(bytes)))
}

/// Authenticates for any route but the open ones, answering 401 in MLflow's shape on failure.
async fn authenticate(
    app: &App,
    headers: &HeaderMap,
    remote: Option<SocketAddr>,
) -> Result<Identity, warp::reply::Response> {
    app.authenticator.authenticate(headers, remote).await.map_err(|e| {
        tracing::info!(target: "audit", remote = remote.map(|r| r.ip().to_string()), reason = %e, "authentication failed");
        let mut response = json_error(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", &e.to_string());
        if app.authenticator.uses_bearer_tokens() {
            response.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"mlflow\""),
            );
        }
        response
    })
}

fn refusal_response(refusal: Refusal) -> warp::reply::Response {
    match refusal {
        Refusal::RateLimited { retry_after_secs } => {
            let mut response = json_error(
                StatusCode::TOO_MANY_REQUESTS,
                "REQUEST_LIMIT_EXCEEDED",
                &format!("rate limit exceeded (--rate-limit); retry in {retry_after_secs}s"),
            );
            response.headers_mut().insert(
                http::header::RETRY_AFTER,
                HeaderValue::from(retry_after_secs),
            );
            response
        }
        Refusal::Busy => {
            let mut response = json_error(
                StatusCode::TOO_MANY_REQUESTS,
                "REQUEST_LIMIT_EXCEEDED",
                "too many requests in flight (--max-concurrent-requests); retry shortly",
            );
            response
                .headers_mut()
                .insert(http::header::RETRY_AFTER, HeaderValue::from(1u32));
            response
        }
        Refusal::HeadersTooLarge(message) => json_error(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "BAD_REQUEST",
            &message,
        ),
    }
}

fn redirect(location: &'static str) -> warp::reply::Response {
    let mut response = warp::reply::Response::new(Default::default());
    *response.status_mut() = StatusCode::MOVED_PERMANENTLY;
    response
        .headers_mut()
        .insert(http::header::LOCATION, HeaderValue::from_static(location));
    response
}

fn rejection_response(rejection: Rejection) -> warp::reply::Response {
    if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        return json_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "BAD_REQUEST",
            "method not allowed on this path",
        );
    }
    if rejection.is_not_found() {
        return Error::NotFound("no route for this path".into()).into_response();
    }
    json_error(
        StatusCode::BAD_REQUEST,
        "BAD_REQUEST",
        &format!("{rejection:?}"),
    )
}
