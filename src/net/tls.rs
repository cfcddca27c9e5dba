//! The listener's TLS configuration: certificate and key loaded from PEM files, and loaded again when
//! either file changes (a renewed certificate needs no restart).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;

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

    /// Checks the files every few seconds, for as long as the listener runs.
    pub async fn watch(self: Arc<Self>) {
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

impl std::fmt::Debug for TlsReloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsReloader")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}
