//! The route table for everything that is not an MLflow API call (those go from the server straight to
//! `pipeline`): `/healthz`, `/readyz`, `/metrics`, `/api/proxy/*` (the proxy's own JSON), `/mlflow/*`
//! (the UI, forwarded with the prefix stripped), and the dashboard for every other GET. Anything else is
//! a JSON 404/405.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use http::{HeaderMap, HeaderValue, Method, StatusCode};
use warp::filters::path::FullPath;
use warp::{Filter, Rejection};

use crate::app::App;
use crate::error::Error;
use crate::net::client_addr::ClientAddr;
use crate::serve::ops;
use crate::serve::pipeline::{authenticate, handle_mlflow};
use crate::upstream::ui;
use crate::upstream::Inbound;

/// The admin listener's routes: health, readiness and metrics, nothing else.
pub fn admin_routes(
    app: Arc<App>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Infallible> + Clone {
    let with_app = warp::any().map(move || app.clone());
    let healthz = warp::path!("healthz").map(ops::healthz);
    let readyz = warp::path!("readyz")
        .and(with_app.clone())
        .map(|app: Arc<App>| ops::readyz(&app, ops::ReadyzAudience::Admin));
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

/// Shared state for a route.
type WithApp = warp::filters::BoxedFilter<(Arc<App>,)>;

/// A route's answer.
type Route = warp::filters::BoxedFilter<(warp::reply::Response,)>;

/// All routes, each answering with a response (errors included). Each route is boxed: it keeps the
/// composed filter type (and compile times) small.
pub fn routes(
    app: Arc<App>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Infallible> + Clone {
    let with_app: WithApp = warp::any().map(move || app.clone()).boxed();
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
        // Open to anyone who reaches the port: a summary only (the detail is on /api/proxy/status).
        .map(|app: Arc<App>| ops::readyz(&app, ops::ReadyzAudience::Public))
        .boxed();
    healthz
        .or(readyz)
        .unify()
        .or(metrics)
        .unify()
        .or(proxy_api_route(with_app.clone()))
        .unify()
        .or(mlflow_ui_redirect())
        .unify()
        .or(mlflow_ui_route(with_app.clone()))
        .unify()
        .or(dashboard_route(with_app))
        .unify()
        .recover(|rejection: Rejection| async move {
            Ok::<_, Infallible>(rejection_response(rejection))
        })
        .unify()
}

/// `/api/proxy/{status,stats,identity}`: the proxy's own JSON, behind authentication.
fn proxy_api_route(with_app: WithApp) -> Route {
    warp::path("api")
        .and(warp::path("proxy"))
        .and(warp::get())
        .and(warp::path::full())
        .and(warp::header::headers_cloned())
        .and(client_addr())
        .and(with_app)
        .then(|path: FullPath, headers: HeaderMap, remote: Option<SocketAddr>, app: Arc<App>| async move {
            if let Err(refusal) = authenticate(&app, &headers, remote).await {
                return refusal.into_response();
            }
            match path.as_str() {
                "/api/proxy/status" => ops::status(&app),
                "/api/proxy/stats" => ops::stats(&app),
                "/api/proxy/identity" => ops::identity(app.clone()).await,
                other => ops::unknown_proxy_api(other),
            }
        })
        .boxed()
}

/// `/mlflow` without its slash: redirected to `/mlflow/`, where the UI's relative URLs work.
fn mlflow_ui_redirect() -> Route {
    // `warp::path!` would also match "/mlflow/", so compare the full path.
    warp::get()
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
        .boxed()
}

/// `/mlflow/…`: the MLflow UI, through the same pipeline as the API with the prefix stripped.
fn mlflow_ui_route(with_app: WithApp) -> Route {
    warp::path("mlflow")
        .and(inbound_parts())
        .and(warp::body::stream())
        .and(with_app)
        .then(
            |method, path: FullPath, query: String, headers, remote, body, app: Arc<App>| async move {
                let full = path.as_str().to_string();
                let Some(upstream_path) = ui::upstream_path(&full).map(str::to_string) else {
                    return Error::NotFound(format!("no route for {full}")).into_response();
                };
                let inbound = Inbound {
                    method,
                    path: full.into(),
                    query: Some(query.into()),
                    headers,
                    remote,
                    body,
                };
                handle_mlflow(&app, inbound, &upstream_path, true).await
            },
        )
        .boxed()
}

/// Every other GET: the embedded dashboard, behind authentication.
fn dashboard_route(with_app: WithApp) -> Route {
    warp::get()
        .and(warp::path::full())
        .and(warp::header::headers_cloned())
        .and(client_addr())
        .and(with_app)
        .then(|path: FullPath, headers: HeaderMap, remote: Option<SocketAddr>, app: Arc<App>| async move {
            let path = path.as_str();
            if path.starts_with("/api/") || path.starts_with("/ajax-api/") {
                return Error::NotFound(format!("no route for {path}")).into_response();
            }
            if let Err(refusal) = authenticate(&app, &headers, remote).await {
                return refusal.into_response();
            }
            crate::serve::dashboard::serve(path, &app.frame_policy)
        })
        .boxed()
}

/// A permanent redirect to `location`.
fn redirect(location: &'static str) -> warp::reply::Response {
    let mut response = warp::reply::Response::new(Default::default());
    *response.status_mut() = StatusCode::MOVED_PERMANENTLY;
    response
        .headers_mut()
        .insert(http::header::LOCATION, HeaderValue::from_static(location));
    response
}

/// What warp's own rejections become: 405, 404, or a 400 that does not repeat warp's internals.
fn rejection_response(rejection: Rejection) -> warp::reply::Response {
    let error = if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        Error::MethodNotAllowed
    } else if rejection.is_not_found() {
        Error::NotFound("no route for this path".into())
    } else {
        tracing::debug!(?rejection, "request rejected by the route table");
        Error::BadRequest("the request could not be read (headers, query or body)".into())
    };
    error.into_response()
}
