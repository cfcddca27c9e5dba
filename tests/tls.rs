//! Direct HTTPS: the proxy serves TLS from PEM files and picks up a renewed certificate without a restart.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn openssl(args: &[&str], dir: &Path) {
    let status = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl");
    assert!(status.success(), "openssl {args:?}");
}

/// A test CA in `dir` (ca.crt, ca.key).
fn make_ca(dir: &Path) -> std::path::PathBuf {
    openssl(
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=test-ca",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
        ],
        dir,
    );
    dir.join("ca.crt")
}

/// A server certificate for 127.0.0.1 signed by the test CA.
fn make_cert(dir: &Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let (key, csr, crt, ext) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.crt"),
        format!("{name}.ext"),
    );
    std::fs::write(
        dir.join(&ext),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            &format!("/CN={name}"),
            "-keyout",
            &key,
            "-out",
            &csr,
        ],
        dir,
    );
    openssl(
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &ext,
            "-out",
            &crt,
        ],
        dir,
    );
    (dir.join(crt), dir.join(key))
}

/// GET /healthz over TLS trusting only `ca`; returns the status line and the certificate the server showed.
fn https_get(addr: std::net::SocketAddr, ca: &Path) -> (String, Vec<u8>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_file(ca).unwrap())
            .unwrap();
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut tls = connector
            .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
            .await
            .expect("TLS handshake");
        let shown = tls.get_ref().1.peer_certificates().unwrap()[0].to_vec();
        tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut response = Vec::new();
        let _ = tls.read_to_end(&mut response).await;
        let text = String::from_utf8_lossy(&response).into_owned();
        (text.lines().next().unwrap_or_default().to_string(), shown)
    })
}

#[test]
fn serves_https_and_reloads_a_renewed_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let ca = make_ca(dir.path());
    let (cert, key) = make_cert(dir.path(), "first");
    let upstream = start_upstream();
    let proxy = start_unsigned_proxy(
        &upstream,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let (status, shown) = https_get(proxy.addr, &ca);
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(
        shown,
        CertificateDer::from_pem_file(&cert).unwrap().to_vec()
    );

    // Renew: new files in place (written to temporary names, then renamed, as cert managers do).
    let (new_cert, new_key) = make_cert(dir.path(), "second");
    // The proxy notices a renewal by the files' modification times. Rather than waiting for the
    // clock to pass a coarse file-system timestamp, the new files are dated a minute later.
    let renewed_at =
        std::fs::metadata(&cert).unwrap().modified().unwrap() + Duration::from_secs(60);
    for (from, to) in [(&new_key, "tmp.key"), (&new_cert, "tmp.crt")] {
        std::fs::copy(from, dir.path().join(to)).unwrap();
        std::fs::File::options()
            .write(true)
            .open(dir.path().join(to))
            .unwrap()
            .set_modified(renewed_at)
            .unwrap();
    }
    std::fs::rename(dir.path().join("tmp.key"), &key).unwrap();
    std::fs::rename(dir.path().join("tmp.crt"), &cert).unwrap();
    let expected = CertificateDer::from_pem_file(&new_cert).unwrap().to_vec();
    // The files are checked every few seconds; each handshake shows which certificate is in force.
    let shown = wait_for(
        "the renewed certificate to be served without a restart",
        Duration::from_secs(10),
        || {
            let (status, shown) = https_get(proxy.addr, &ca);
            assert_eq!(status, "HTTP/1.1 200 OK");
            (shown == expected).then_some(shown)
        },
    );
    assert_eq!(shown, expected);
}

#[test]
fn a_key_that_does_not_fit_stops_the_start_with_a_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    make_ca(dir.path());
    let (cert, _) = make_cert(dir.path(), "a");
    let (_, other_key) = make_cert(dir.path(), "b");
    let output = Command::new(env!("CARGO_BIN_EXE_sagemaker-mlflow-proxy"))
        .args([
            "--signing",
            "none",
            "--upstream-url",
            "http://127.0.0.1:9",
            "--listen",
            "127.0.0.1:0",
        ])
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(&other_key)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--tls-cert") && stderr.contains("do not fit"),
        "{stderr}"
    );
}

/// A POST over HTTP/2 on TLS (ALPN `h2`, as browsers speak to an HTTPS proxy) with `origin`; returns the
/// status and the HTTP version the answer came in.
fn h2_post(
    addr: std::net::SocketAddr,
    ca: &Path,
    path: &str,
    origin: &str,
) -> (u16, http::Version) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_file(ca).unwrap())
            .unwrap();
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        config.alpn_protocols = vec![b"h2".to_vec()];
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let tls = connector
            .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
            .await
            .expect("TLS handshake");
        let (mut sender, connection) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(tls),
        )
        .await
        .expect("h2 handshake");
        tokio::spawn(connection);
        let request = http::Request::post(format!("https://{addr}{path}"))
            .header("origin", origin)
            .header("content-type", "application/json")
            .body(http_body_util::Full::new(bytes::Bytes::from_static(
                br#"{"experiment_id": "0"}"#,
            )))
            .unwrap();
        let response = sender.send_request(request).await.expect("h2 request");
        (response.status().as_u16(), response.version())
    })
}

// Issue 15, item 13: under --tls-cert, browsers speak HTTP/2 (no Host header): their same-origin writes
// are accepted, and the upstream is told the client used https.
#[test]
fn browsers_on_https_and_http2_write_and_are_forwarded_as_https() {
    let dir = tempfile::tempdir().unwrap();
    let ca = make_ca(dir.path());
    let (cert, key) = make_cert(dir.path(), "server");
    let upstream = start_upstream();
    let proxy = start_unsigned_proxy(
        &upstream,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let own = format!("https://{}", proxy.addr);
    for path in [
        "/api/2.0/mlflow/runs/create",
        "/mlflow/ajax-api/2.0/mlflow/runs/create",
    ] {
        let (status, version) = h2_post(proxy.addr, &ca, path, &own);
        assert_eq!((status, version), (200, http::Version::HTTP_2), "{path}");
        let seen = upstream.requests().pop().unwrap();
        assert_eq!(seen.headers["x-forwarded-proto"], "https", "{path}");
        assert_eq!(seen.headers["x-forwarded-host"], proxy.addr.to_string());
    }
    let before = upstream.requests().len();
    let (status, _) = h2_post(
        proxy.addr,
        &ca,
        "/api/2.0/mlflow/runs/create",
        "https://evil.example",
    );
    assert_eq!(status, 403);
    assert_eq!(upstream.requests().len(), before);
}
