//! `sagemaker-mlflow-proxy healthcheck`: GET /healthz on the local listener, exit 0 on 200. A bare
//! HTTP/1.1 exchange over TCP, or over TLS when `--tls-cert` is set (then the server must present exactly
//! that certificate), so the container image needs no curl.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv6Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

const TIMEOUT: Duration = Duration::from_secs(3);

pub fn run(listen: SocketAddr, tls_cert: Option<&Path>) -> ExitCode {
    let ip = match listen.ip() {
        ip if !ip.is_unspecified() => ip,
        _ if listen.is_ipv4() => IpAddr::from([127, 0, 0, 1]),
        _ => IpAddr::from(Ipv6Addr::LOCALHOST),
    };
    let addr = SocketAddr::new(ip, listen.port());
    match check(addr, tls_cert) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("healthcheck: {addr}/healthz did not answer 200");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("healthcheck: {addr}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn check(addr: SocketAddr, tls_cert: Option<&Path>) -> Result<bool, String> {
    let mut tcp = TcpStream::connect_timeout(&addr, TIMEOUT).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    tcp.set_write_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    let mut head = [0u8; 16];
    let n = match tls_cert {
        None => {
            tcp.write_all(request.as_bytes())
                .map_err(|e| e.to_string())?;
            tcp.read(&mut head).map_err(|e| e.to_string())?
        }
        Some(cert) => {
            let expected = CertificateDer::from_pem_file(cert)
                .map_err(|e| format!("{}: {e}", cert.display()))?;
            let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
            let verifier = Arc::new(PinnedCertificate {
                expected: expected.into_owned(),
                provider: provider.clone(),
            });
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_no_client_auth();
            let name = ServerName::from(addr.ip());
            let mut connection =
                rustls::ClientConnection::new(Arc::new(config), name).map_err(|e| e.to_string())?;
            let mut stream = rustls::Stream::new(&mut connection, &mut tcp);
            stream
                .write_all(request.as_bytes())
                .map_err(|e| e.to_string())?;
            stream.read(&mut head).map_err(|e| e.to_string())?
        }
    };
    Ok(head[..n].starts_with(b"HTTP/1.1 200"))
}

/// Accepts only the certificate the proxy was configured with (the healthcheck talks to itself).
#[derive(Debug)]
struct PinnedCertificate {
    expected: CertificateDer<'static>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for PinnedCertificate {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.expected.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "the listener presents another certificate than --tls-cert".into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
