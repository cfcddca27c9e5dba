//! Serving: the accept loop for plain HTTP or HTTPS (rustls, certificate reloaded when its files
//! change), HTTP/1.1 and HTTP/2, the client's address handed to the routes, and a graceful drain with a
//! deadline on shutdown. Each accepted connection is handed to the next worker thread (`workers`) and
//! served there to its end.
//!
//! Connections are bounded in number and in idleness: at most `--max-connections` are open (beyond
//! it, accepting pauses, with a warning), a connection with no request in flight and no bytes moving
//! for `--keep-alive-timeout` is closed gracefully (HTTP/2: GOAWAY), and an HTTP/1 request head must
//! arrive within [`HEADER_READ_TIMEOUT`] of its first byte. The keep-alive timeout must exceed a load
//! balancer's idle timeout: otherwise the balancer may send a request on a connection the proxy is
//! closing, and answers 502.
//!
//! warp's own `serve` cannot take a TLS acceptor whose certificate changes at run time, so connections
//! are served here with hyper directly and passed to the warp routes as a service.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::Either;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio_util::either::Either as IoEither;
use tower_service::Service;

use crate::app::App;
use crate::mlflow::routes::is_mlflow_api_path;
use crate::net::activity::{Activity, TrackedIo, Verdict};
use crate::net::client_addr::ClientAddr;
use crate::net::tls::TlsReloader;
use crate::serve::pipeline::handle_api_request;
use crate::serve::routes::{admin_routes, routes};
use crate::serve::workers::WorkerHandles;

/// How long a client may take to send a request head once it has begun, and to finish a TLS handshake.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Connections the admin listener (`/healthz`, `/readyz`, `/metrics`) serves at once: its own small
/// allowance, so that health checks do not queue behind a full main listener.
const ADMIN_MAX_CONNECTIONS: usize = 64;

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
    let max_connections = app.settings.max_connections;
    let listener = Listener {
        listener,
        tls,
        max_connections,
    };
    serve_filter(app, listener, filter, Some(workers), true, shutdown).await
}

/// Serves the admin endpoints (`/healthz`, `/readyz`, `/metrics`) on `--admin-listen`.
pub async fn serve_admin(
    app: Arc<App>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let filter = admin_routes(app.clone());
    let listener = Listener {
        listener,
        tls: None,
        max_connections: ADMIN_MAX_CONNECTIONS,
    };
    serve_filter(app, listener, filter, None, false, shutdown).await
}

/// A listening socket, how it speaks (TLS or not), and how many connections it may have open.
struct Listener {
    listener: tokio::net::TcpListener,
    tls: Option<Arc<TlsReloader>>,
    max_connections: usize,
}

async fn serve_filter<F>(
    app: Arc<App>,
    listener: Listener,
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
    // Every connection holds a receiver; `true` asks it to close gracefully, and the drain is over
    // when the last receiver is gone.
    let (closing_tx, closing_rx) = watch::channel(false);
    let tls = listener.tls.clone();
    if let Some(tls) = &tls {
        tokio::spawn(tls.clone().watch());
    }
    let open = Arc::new(Semaphore::new(listener.max_connections.max(1)));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (permit, stream, remote) = tokio::select! {
            accepted = accept(&listener, &open) => match accepted {
                Some(accepted) => accepted,
                None => continue,
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        // The socket is registered with this thread's runtime; the worker registers it with its own.
        let Ok(stream) = stream.into_std() else {
            continue;
        };
        let connection = serve_connection(
            Accepted {
                stream,
                remote,
                permit,
            },
            tls.clone(),
            filter.clone(),
            app.clone(),
            serve_api,
            closing_rx.clone(),
        );
        match &workers {
            Some(workers) => drop(workers.next().spawn(connection)),
            None => drop(tokio::spawn(connection)),
        }
    }

    drop(listener);
    drop(closing_rx);
    drain(&app, closing_tx).await;
}

/// The next connection, once one of `open`'s permits is free: at `--max-connections`, accepting
/// pauses (new connections wait in the kernel's backlog) and a warning says so, once per episode.
/// `None` after a failed accept (out of file descriptors and the like), after a back-off.
async fn accept(
    listener: &Listener,
    open: &Arc<Semaphore>,
) -> Option<(
    OwnedSemaphorePermit,
    tokio::net::TcpStream,
    std::net::SocketAddr,
)> {
    let permit = match open.clone().try_acquire_owned() {
        Ok(permit) => permit,
        Err(_) => {
            tracing::warn!(
                max_connections = listener.max_connections,
                local = ?listener.listener.local_addr().ok(),
                "connection limit reached: new connections wait until one closes (--max-connections)"
            );
            let permit = open.clone().acquire_owned().await.ok()?;
            tracing::info!("below the connection limit again: accepting");
            permit
        }
    };
    match listener.listener.accept().await {
        Ok((stream, remote)) => Some((permit, stream, remote)),
        Err(e) => {
            // Out of file descriptors and the like: back off instead of spinning.
            tracing::error!(error = %e, "accept failed");
            tokio::time::sleep(Duration::from_millis(100)).await;
            None
        }
    }
}

/// Stops taking new work (`/readyz` answers 503), asks every open connection to close gracefully and
/// waits for them to finish, at most `--drain-timeout`.
async fn drain(app: &App, closing: watch::Sender<bool>) {
    let drain_timeout = app.settings.drain_timeout;
    app.draining.store(true, Ordering::Relaxed);
    tracing::info!(
        drain_timeout_secs = drain_timeout.as_secs_f64(),
        "shutting down: draining in-flight requests"
    );
    let _ = closing.send(true);
    tokio::select! {
        _ = closing.closed() => tracing::info!("all connections closed"),
        _ = tokio::time::sleep(drain_timeout) => tracing::warn!("drain deadline reached; closing remaining connections"),
    }
}

/// A connection as accepted: the socket, the peer, and its place under `--max-connections`.
struct Accepted {
    stream: std::net::TcpStream,
    remote: std::net::SocketAddr,
    permit: OwnedSemaphorePermit,
}

/// A client connection's bytes, plain or TLS, with its activity recorded.
type ClientIo = TokioIo<TrackedIo<IoEither<tokio::net::TcpStream, Box<ServerTlsStream>>>>;
type ServerTlsStream = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;

/// Serves one connection to its end: TLS first when configured, then HTTP/1.1 or HTTP/2, with MLflow
/// API calls going straight to the pipeline and everything else to the route table.
async fn serve_connection<F>(
    accepted: Accepted,
    tls: Option<Arc<TlsReloader>>,
    filter: F,
    app: Arc<App>,
    serve_api: bool,
    closing: watch::Receiver<bool>,
) where
    F: warp::Filter<Extract = (warp::reply::Response,), Error = std::convert::Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
{
    let Accepted {
        stream,
        remote,
        permit: _permit,
    } = accepted;
    let Ok(stream) = tokio::net::TcpStream::from_std(stream) else {
        return;
    };
    let stream = match tls {
        None => IoEither::Left(stream),
        Some(tls) => {
            let handshake =
                tokio::time::timeout(HEADER_READ_TIMEOUT, tls.acceptor().accept(stream)).await;
            let Ok(Ok(stream)) = handshake else {
                tracing::debug!(%remote, "TLS handshake failed or timed out");
                return;
            };
            IoEither::Right(Box::new(stream))
        }
    };
    let keep_alive = app.settings.keep_alive_timeout;
    let activity = Activity::new();
    let io: ClientIo = TokioIo::new(TrackedIo::new(stream, activity.clone()));
    let service = warp::service(filter);
    let tracked = activity.clone();
    let request_service =
        hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(ClientAddr(remote));
            host_from_authority(&mut request);
            let in_flight = tracked.request();
            // Clone only what this request uses: the route table is several shared filters.
            let answer = if serve_api && is_mlflow_api_path(request.uri().path()) {
                let answer = handle_api_request(app.clone(), request);
                Either::Left(async move { Ok(answer.await) })
            } else {
                Either::Right(service.clone().call(request))
            };
            async move {
                let answer = answer.await;
                drop(in_flight);
                answer
            }
        });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // hyper's own header timer also runs while a keep-alive connection waits for its next request, so
    // it is set to the keep-alive timeout; the 30 s limit on a head that has begun is the server's
    // (`Activity`), as is the idle limit of HTTP/2 and of connections that never send a byte.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(keep_alive);
    let connection = builder.serve_connection_with_upgrades(io, request_service);
    supervise(connection, &activity, keep_alive, closing, remote).await;
}

/// Drives a connection to its end. It is closed gracefully (HTTP/2: GOAWAY; HTTP/1: after the
/// response in progress) when the server drains, or when it has had no request in flight and no bytes
/// for `keep_alive`; it is dropped when its request head is late, or when it is still open
/// `keep_alive` after being closed for idleness.
async fn supervise<I, S, B>(
    connection: auto::UpgradeableConnection<'_, I, S, TokioExecutor>,
    activity: &Activity,
    keep_alive: Duration,
    mut closing: watch::Receiver<bool>,
    remote: std::net::SocketAddr,
) where
    S: hyper::service::Service<
        hyper::Request<hyper::body::Incoming>,
        Response = hyper::Response<B>,
    >,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    S::Future: Send + 'static,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut connection = std::pin::pin!(connection);
    let mut asked_to_close = *closing.borrow();
    if asked_to_close {
        connection.as_mut().graceful_shutdown();
    }
    let mut hard_deadline = None;
    loop {
        let past_deadline = async {
            match hard_deadline {
                Some(deadline) => tokio::time::sleep_until(deadline).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = connection.as_mut() => return,
            changed = closing.changed(), if !asked_to_close => {
                if changed.is_err() || *closing.borrow() {
                    asked_to_close = true;
                    connection.as_mut().graceful_shutdown();
                }
            }
            verdict = activity.expired(keep_alive, HEADER_READ_TIMEOUT), if !asked_to_close => {
                if verdict == Verdict::SlowHead {
                    tracing::debug!(%remote, "request head too slow; connection dropped");
                    return;
                }
                tracing::debug!(%remote, "closing an idle connection");
                asked_to_close = true;
                hard_deadline = Some(tokio::time::Instant::now() + keep_alive);
                connection.as_mut().graceful_shutdown();
            }
            _ = past_deadline => {
                tracing::debug!(%remote, "still open after being closed for idleness; dropped");
                return;
            }
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
