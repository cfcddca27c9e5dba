//! Serving: the accept loop for plain HTTP or HTTPS (rustls, certificate reloaded when its files
//! change), HTTP/1.1 and HTTP/2, the client's address handed to the routes, and a graceful drain with a
//! deadline on shutdown. Each accepted connection is handed to the next worker thread (`workers`) and
//! served there to its end.
//!
//! warp's own `serve` cannot take a TLS acceptor whose certificate changes at run time, so connections
//! are served here with hyper directly and passed to the warp routes as a service.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::Either;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tower_service::Service;

use crate::app::App;
use crate::mlflow::routes::is_mlflow_api_path;
use crate::net::client_addr::ClientAddr;
use crate::net::tls::TlsReloader;
use crate::serve::pipeline::handle_api_request;
use crate::serve::routes::{admin_routes, routes};
use crate::serve::workers::WorkerHandles;

/// How long a client may take to send its request head, and to finish a TLS handshake.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves the proxy until `shutdown` resolves, then drains in-flight requests for at most
/// `--drain-timeout`. Connections are spread over `workers`.
pub async fn serve(
    app: Arc<App>,
    listener: tokio::net::TcpListener,
    tls: Option<Arc<TlsReloader>>,
    workers: Arc<WorkerHandles>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let filter = routes(app.clone());
    serve_filter(app, listener, tls, filter, Some(workers), true, shutdown).await
}

/// Serves the admin endpoints (`/healthz`, `/readyz`, `/metrics`) on `--admin-listen`.
pub async fn serve_admin(
    app: Arc<App>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let filter = admin_routes(app.clone());
    serve_filter(app, listener, None, filter, None, false, shutdown).await
}

async fn serve_filter<F>(
    app: Arc<App>,
    listener: tokio::net::TcpListener,
    tls: Option<Arc<TlsReloader>>,
    filter: F,
    workers: Option<Arc<WorkerHandles>>,
    serve_api: bool,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) where
    F: warp::Filter<Extract = (warp::reply::Response,), Error = std::convert::Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
{
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    if let Some(tls) = &tls {
        tokio::spawn(tls.clone().watch());
    }
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::error!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        // The socket is registered with this thread's runtime; the worker registers it with its own.
        let Ok(stream) = stream.into_std() else {
            continue;
        };
        let connection = serve_connection(
            stream,
            remote,
            tls.clone(),
            filter.clone(),
            app.clone(),
            serve_api,
            graceful.watcher(),
        );
        match &workers {
            Some(workers) => drop(workers.next().spawn(connection)),
            None => drop(tokio::spawn(connection)),
        }
    }

    drop(listener);
    drain(&app, graceful).await;
}

/// Stops taking new work (`/readyz` answers 503) and waits for open connections to finish, at most
/// `--drain-timeout`.
async fn drain(app: &App, graceful: hyper_util::server::graceful::GracefulShutdown) {
    let drain_timeout = app.settings.drain_timeout;
    app.draining.store(true, Ordering::Relaxed);
    tracing::info!(
        drain_timeout_secs = drain_timeout.as_secs_f64(),
        "shutting down: draining in-flight requests"
    );
    tokio::select! {
        _ = graceful.shutdown() => tracing::info!("all connections closed"),
        _ = tokio::time::sleep(drain_timeout) => tracing::warn!("drain deadline reached; closing remaining connections"),
    }
}

/// Serves one connection to its end: TLS first when configured, then HTTP/1.1 or HTTP/2, with MLflow
/// API calls going straight to the pipeline and everything else to the route table.
async fn serve_connection<F>(
    stream: std::net::TcpStream,
    remote: std::net::SocketAddr,
    tls: Option<Arc<TlsReloader>>,
    filter: F,
    app: Arc<App>,
    serve_api: bool,
    watcher: hyper_util::server::graceful::Watcher,
) where
    F: warp::Filter<Extract = (warp::reply::Response,), Error = std::convert::Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
{
    let Ok(stream) = tokio::net::TcpStream::from_std(stream) else {
        return;
    };
    let service = warp::service(filter);
    let request_service =
        hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(ClientAddr(remote));
            host_from_authority(&mut request);
            // Clone only what this request uses: the route table is several shared filters.
            if serve_api && is_mlflow_api_path(request.uri().path()) {
                let answer = handle_api_request(app.clone(), request);
                Either::Left(async move { Ok(answer.await) })
            } else {
                Either::Right(service.clone().call(request))
            }
        });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    match tls {
        None => {
            let connection =
                builder.serve_connection_with_upgrades(TokioIo::new(stream), request_service);
            let _ = watcher.watch(connection.into_owned()).await;
        }
        Some(tls) => {
            let handshake =
                tokio::time::timeout(HEADER_READ_TIMEOUT, tls.acceptor().accept(stream)).await;
            let Ok(Ok(stream)) = handshake else {
                tracing::debug!(%remote, "TLS handshake failed or timed out");
                return;
            };
            let connection =
                builder.serve_connection_with_upgrades(TokioIo::new(stream), request_service);
            let _ = watcher.watch(connection.into_owned()).await;
        }
    }
}

/// HTTP/2 carries the address the client used in `:authority` (the URI's authority), not in `Host`:
/// it is copied into `Host` when `Host` is absent, so that everything after (the forwarded
/// `X-Forwarded-Host`, logs) sees one request shape whatever the protocol.
fn host_from_authority<B>(request: &mut hyper::Request<B>) {
    if request.headers().contains_key(http::header::HOST) {
        return;
    }
    let authority = request.uri().authority().map(|a| a.as_str());
    if let Some(value) = authority.and_then(|a| http::HeaderValue::from_str(a).ok()) {
        request.headers_mut().insert(http::header::HOST, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_h2_authority_becomes_the_host() {
        let mut h2 = hyper::Request::builder()
            .uri("https://mlflow.example.com:8443/api/2.0/mlflow/runs/create")
            .version(http::Version::HTTP_2)
            .body(())
            .unwrap();
        host_from_authority(&mut h2);
        assert_eq!(h2.headers()[http::header::HOST], "mlflow.example.com:8443");
        let mut h1 = hyper::Request::builder()
            .uri("http://evil.example/x")
            .header(http::header::HOST, "proxy:8080")
            .body(())
            .unwrap();
        host_from_authority(&mut h1);
        assert_eq!(h1.headers()[http::header::HOST], "proxy:8080");
    }
}
