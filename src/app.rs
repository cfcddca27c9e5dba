//! The application: shared state, the warp route table, and serving with a graceful drain.
//!
//! Routes, in order: `/healthz`, `/readyz`, `/api/proxy/*` (the proxy's own JSON), MLflow API paths
//! (forwarded), `/mlflow/*` (the UI, forwarded with the prefix stripped), and the dashboard for every
//! other GET. Anything else is a JSON 404/405.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Buf;
use futures_util::Stream;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use serde_json::json;
use warp::filters::path::FullPath;
use warp::{Filter, Rejection};

use crate::aws::sagemaker::{self, ControlPlane};
use crate::aws::Aws;
use crate::browser;
use crate::config::{Settings, UiAuth};
use crate::error::{json_error, Error};
use crate::ops;
use crate::proxy::{path::is_mlflow_api_path, Forwarder, Inbound, UpstreamAuth};
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
}

impl App {
    /// Builds the application; with SigV4 signing this loads the AWS configuration.
    pub async fn new(settings: Settings) -> Result<Arc<Self>, Error> {
        let aws = match &settings.upstream.signing {
            Some(signing) => Some(Aws::load(&settings, &signing.region).await?),
            None => None,
        };
        let stats = Arc::new(Stats::default());
        let forwarder = Forwarder::new(
            &settings,
            aws.as_ref().map(|a| a.credentials.clone()),
            stats.clone(),
        );
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
    }

    pub fn ui_session_status(&self) -> serde_json::Value {
        match &self.ui_session {
            Some(ui_session) => ui_session.status(),
            None => json!({"state": "none", "expires_at": null}),
        }
    }

    /// How REST calls authenticate upstream.
    fn api_auth(&self) -> UpstreamAuth<'_> {
        if self.settings.upstream.signing.is_some() {
            UpstreamAuth::Sign
        } else {
            UpstreamAuth::Unsigned
        }
    }

    /// How UI requests authenticate upstream.
    fn ui_auth(&self) -> UpstreamAuth<'_> {
        match &self.ui_session {
            Some(ui_session) => UpstreamAuth::Session(ui_session),
            None => self.api_auth(),
        }
    }
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
        .and(warp::addr::remote())
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
    let readyz = warp::path!("readyz")
        .and(with_app.clone())
        .map(|app: Arc<App>| ops::readyz(&app))
        .boxed();
    let proxy_api = warp::path("api")
        .and(warp::path("proxy"))
        .and(warp::get())
        .and(warp::path::full())
        .and(with_app.clone())
        .then(|path: FullPath, app: Arc<App>| async move {
            match path.as_str() {
                "/api/proxy/status" => ops::status(&app),
                "/api/proxy/stats" => ops::stats(&app),
                "/api/proxy/identity" => ops::identity(app.clone()).await,
                other => ops::unknown_proxy_api(other),
            }
        })
        .boxed();

    let mlflow_api = warp::path::full()
        .and_then(|path: FullPath| async move {
            if is_mlflow_api_path(path.as_str()) {
                Ok(())
            } else {
                Err(warp::reject::not_found())
            }
        })
        .untuple_one()
        .and(inbound_parts())
        .and(warp::body::stream())
        .and(with_app.clone())
        .then(
            |method, path: FullPath, query, headers, remote, body, app: Arc<App>| async move {
                let inbound = Inbound {
                    method,
                    path: path.as_str().to_string(),
                    query: Some(query),
                    headers,
                    remote,
                    body,
                };
                let upstream_path = inbound.path.clone();
                forward_from_browser_or_client(&app, inbound, &upstream_path, false).await
            },
        )
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
                    method,
                    path: full,
                    query: Some(query),
                    headers,
                    remote,
                    body,
                };
                forward_from_browser_or_client(&app, inbound, &upstream_path, true).await
            },
        )
        .boxed();

    let dashboard = warp::get()
        .and(warp::path::full())
        .and(with_app)
        .map(|path: FullPath, app: Arc<App>| {
            let path = path.as_str();
            if path.starts_with("/api/") || path.starts_with("/ajax-api/") {
                return Error::NotFound(format!("no route for {path}")).into_response();
            }
            crate::dashboard::serve(path, &app.frame_policy)
        })
        .boxed();

    healthz
        .or(readyz)
        .unify()
        .or(proxy_api)
        .unify()
        .or(mlflow_api)
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

/// Applies the browser policy (CORS, cross-origin refusal), forwards, and for the UI rewrites framing
/// and redirects.
async fn forward_from_browser_or_client<S, B>(
    app: &App,
    inbound: Inbound<S>,
    upstream_path: &str,
    is_ui: bool,
) -> warp::reply::Response
where
    S: Stream<Item = Result<B, warp::Error>> + Send,
    B: Buf,
{
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
    let auth = if is_ui { app.ui_auth() } else { app.api_auth() };
    let mut response = app.forwarder.forward(inbound, upstream_path, auth).await;
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

/// Serves until `shutdown` resolves, then drains in-flight requests for at most `--drain-timeout`.
pub async fn serve(
    app: Arc<App>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let drain_timeout = app.settings.drain_timeout;
    let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
    let draining_app = app.clone();
    let signal = async move {
        shutdown.await;
        draining_app.draining.store(true, Ordering::Relaxed);
        tracing::info!(
            drain_timeout_secs = drain_timeout.as_secs_f64(),
            "shutting down: draining in-flight requests"
        );
        let _ = started_tx.send(());
    };
    let server = warp::serve(routes(app))
        .incoming(listener)
        .graceful(signal)
        .run();
    let deadline = async move {
        if started_rx.await.is_ok() {
            tokio::time::sleep(drain_timeout).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        _ = server => tracing::info!("all connections closed"),
        _ = deadline => tracing::warn!("drain deadline reached; closing remaining connections"),
    }
    // Keep-alive connections that stay idle would otherwise hold the process a little longer.
    tokio::time::sleep(Duration::from_millis(10)).await;
}
