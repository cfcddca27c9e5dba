//! Serving: the accept loop for plain HTTP or HTTPS (rustls, certificate reloaded when its files
//! change), HTTP/1.1 and HTTP/2, the client's address handed to the routes, and a graceful drain with a
//! deadline on shutdown. Each accepted connection is handed to the next worker thread (`workers`) and
//! served there to its end.
//!
//! warp's own `serve` cannot take a TLS acceptor whose certificate changes at run time, so connections
//! are served here with hyper directly and passed to the warp routes as a service.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use futures_util::future::Either;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tower_service::Service;

use crate::app::{admin_routes, handle_api_request, routes, App};
use crate::proxy::path::is_mlflow_api_path;
use crate::workers::WorkerHandles;

/// The address of the client that opened the connection (a request extension).
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub SocketAddr);

/// How long a client may take to send its request head, and to finish a TLS handshake.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the certificate files are checked for changes.
const TLS_RELOAD_CHECK: Duration = Duration::from_secs(2);

/// A TLS server configuration reloaded when the certificate or key file changes.
pub struct TlsReloader {
    cert: PathBuf,
    key: PathBuf,
    config: ArcSwap<rustls::ServerConfig>,
    loaded_mtimes: std::sync::Mutex<(Option<SystemTime>, Option<SystemTime>)>,
}

impl TlsReloader {
    pub fn load(cert: PathBuf, key: PathBuf) -> Result<Arc<Self>, String> {
        let config = load_config(&cert, &key)?;
        let mtimes = (mtime(&cert), mtime(&key));
        Ok(Arc::new(TlsReloader {
            cert,
            key,
            config: ArcSwap::from_pointee(config),
            loaded_mtimes: std::sync::Mutex::new(mtimes),
        }))
    }

    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.config.load_full())
    }

    /// Reloads if either file changed; a broken new pair keeps the old configuration in force.
    pub fn reload_if_changed(&self) {
        let now = (mtime(&self.cert), mtime(&self.key));
        let Ok(mut loaded) = self.loaded_mtimes.lock() else {
            return;
        };
        if *loaded == now {
            return;
        }
        match load_config(&self.cert, &self.key) {
            Ok(config) => {
                self.config.store(Arc::new(config));
                *loaded = now;
                tracing::info!(cert = %self.cert.display(), "TLS certificate reloaded");
            }
            Err(e) => {
                tracing::error!(error = %e, "TLS certificate changed but cannot be loaded; keeping the previous one")
            }
        }
    }

    async fn watch(self: Arc<Self>) {
        loop {
            tokio::time::sleep(TLS_RELOAD_CHECK).await;
            self.reload_if_changed();
        }
    }
}

fn mtime(path: &PathBuf) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn load_config(cert: &PathBuf, key: &PathBuf) -> Result<rustls::ServerConfig, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("{}: {e}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate found", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("certificate and key do not fit: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

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
    let drain_timeout = app.settings.drain_timeout;
    let service = warp::service(filter);
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
        let service = service.clone();
        let watcher = graceful.watcher();
        let tls = tls.clone();
        let app = app.clone();
        // The socket is registered with this thread's runtime; the worker registers it with its own.
        let Ok(stream) = stream.into_std() else {
            continue;
        };
        let connection = async move {
            let Ok(stream) = tokio::net::TcpStream::from_std(stream) else {
                return;
            };
            let request_service = hyper::service::service_fn(
                move |mut request: hyper::Request<hyper::body::Incoming>| {
                    request.extensions_mut().insert(ClientAddr(remote));
                    // Clone only what this request uses: the route table is several shared filters.
                    if serve_api && is_mlflow_api_path(request.uri().path()) {
                        let answer = handle_api_request(app.clone(), request);
                        Either::Left(async move { Ok(answer.await) })
                    } else {
                        Either::Right(service.clone().call(request))
                    }
                },
            );
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT);
            match tls {
                None => {
                    let connection = builder
                        .serve_connection_with_upgrades(TokioIo::new(stream), request_service);
                    let _ = watcher.watch(connection.into_owned()).await;
                }
                Some(tls) => {
                    let handshake =
                        tokio::time::timeout(HEADER_READ_TIMEOUT, tls.acceptor().accept(stream))
                            .await;
                    let Ok(Ok(stream)) = handshake else {
                        tracing::debug!(%remote, "TLS handshake failed or timed out");
                        return;
                    };
                    let connection = builder
                        .serve_connection_with_upgrades(TokioIo::new(stream), request_service);
                    let _ = watcher.watch(connection.into_owned()).await;
                }
            }
        };
        match &workers {
            Some(workers) => drop(workers.next().spawn(connection)),
            None => drop(tokio::spawn(connection)),
        }
    }

    drop(listener);
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
