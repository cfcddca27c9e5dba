//! The pooled upstream client: rustls (native roots, Mozilla roots as fallback), HTTP/1.1 and HTTP/2
//! negotiated by ALPN, TCP keep-alive, connect timeout, idle connections expiring after `--idle-timeout`.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

/// A request body sent by the client (to SageMaker, STS, key and OIDC endpoints).
pub type UpstreamBody = BoxBody<Bytes, std::io::Error>;

/// A response body on its way to the proxy's caller: the upstream's stream, or bytes already read.
pub type ResponseBody = BoxBody<Bytes, hyper::Error>;

pub type UpstreamClient = Client<HttpsConnector<HttpConnector>, UpstreamBody>;

pub fn build(connect_timeout: Duration, idle_timeout: Duration) -> UpstreamClient {
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(idle_timeout)
        .pool_max_idle_per_host(1024)
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .build(https_connector(connect_timeout))
}

/// A connector for `http` and `https` URLs with the TLS setup described above.
pub fn https_connector(connect_timeout: Duration) -> HttpsConnector<HttpConnector> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(connect_timeout));
    http.set_nodelay(true);
    http.set_keepalive(Some(Duration::from_secs(60)));

    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = hyper_rustls::HttpsConnectorBuilder::new();
    let with_roots = match builder.with_provider_and_native_roots(provider.clone()) {
        Ok(with_roots) => with_roots,
        Err(e) => {
            tracing::warn!(error = %e, "no usable system CA certificates; using the bundled Mozilla roots");
            hyper_rustls::HttpsConnectorBuilder::new()
                .with_provider_and_webpki_roots(provider)
                .unwrap_or_else(|_| {
                    // Only fails if the provider supports no safe protocol version, which aws-lc-rs does.
                    hyper_rustls::HttpsConnectorBuilder::new().with_webpki_roots()
                })
        }
    };
    with_roots
        .https_or_http()
        .enable_all_versions()
        .wrap_connector(http)
}
