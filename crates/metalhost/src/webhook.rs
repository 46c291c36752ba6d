//! The validating admission webhook: upstream's BareMetalHost rules (the same as `metalhost
//! validate`) served over HTTPS as Kubernetes AdmissionReviews, plus health endpoints. The serving
//! certificate is re-read when its files change.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use axum::routing::{get, post};
use axum::{Json, Router};
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use metalhost_api::BareMetalHost;
use metalhost_api::validation::{validate_host, validate_update};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// The path upstream's webhook configuration calls.
pub const VALIDATE_PATH: &str = "/validate-metal3-io-v1alpha1-baremetalhost";

/// The webhook's routes: validation, `/healthz` and `/readyz`.
pub fn router() -> Router {
    Router::new()
        // a few reviews read at a time; the probes never wait behind them
        .route(
            VALIDATE_PATH,
            post(validate).layer(tower::limit::ConcurrencyLimitLayer::new(crate::serve::CONCURRENT_REQUESTS)),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(|| async { "ok" }))
}

/// Decides one AdmissionReview: allowed, or denied with every violation (`path: reason`).
pub fn review(review: AdmissionReview<BareMetalHost>) -> AdmissionReview<DynamicObject> {
    let request: AdmissionRequest<BareMetalHost> = match review.try_into() {
        Ok(r) => r,
        Err(e) => return AdmissionResponse::invalid(e.to_string()).into_review(),
    };
    let response = AdmissionResponse::from(&request);
    let violations = match (&request.operation, &request.object, &request.old_object) {
        (Operation::Create, Some(new), _) => validate_host(new),
        (Operation::Update, Some(new), Some(old)) => validate_update(old, new),
        (Operation::Update, Some(new), None) => validate_host(new),
        _ => Vec::new(),
    };
    if violations.is_empty() {
        response.into_review()
    } else {
        let message = violations.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
        // a denial is shown to whoever wrote the object and logged by the API server: never a
        // password from a BMC address
        let message = metalhost_api::redact::redact_url_userinfo(&message);
        response.deny(message).into_review()
    }
}

async fn validate(Json(body): Json<AdmissionReview<BareMetalHost>>) -> Json<AdmissionReview<DynamicObject>> {
    Json(review(body))
}

/// Serves the webhook over HTTPS with this certificate and key (PEM files) until the process ends.
/// The files are re-read when they change (see [`ReloadingCert`]), so a renewed certificate is
/// served without a restart.
/// Until `stop` completes; the reviews in flight are answered first.
pub async fn serve(
    addr: SocketAddr,
    cert: &Path,
    key: &Path,
    stop: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    serve_on_until(crate::listen::bind(addr)?, cert, key, stop).await
}

/// As `serve`, on a socket already bound (tests bind port 0 and keep it, so no other process can
/// take the port between choosing and serving).
pub async fn serve_on(listener: std::net::TcpListener, cert: &Path, key: &Path) -> std::io::Result<()> {
    serve_on_until(listener, cert, key, std::future::pending()).await
}

/// As [`serve_on`], until `stop` completes.
pub async fn serve_on_until(
    listener: std::net::TcpListener,
    cert: &Path,
    key: &Path,
    stop: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let resolver = Arc::new(ReloadingCert::load(cert, key)?);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(std::io::Error::other)?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let tls = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    listener.set_nonblocking(true)?;
    // with port 0 the system picks a free port: the log tells which
    tracing::info!("webhook served at https://{}{VALIDATE_PATH}", listener.local_addr()?);
    crate::serve::serve_until(tokio::net::TcpListener::from_std(listener)?, Some(tls), router(), stop).await
}

/// What identifies a file's version: inode, size and modification time (following symlinks, so
/// that kubelet's swap of a mounted Secret's `..data` link shows as a change).
type Stamp = Option<(u64, u64, SystemTime)>;

fn stamp(path: &Path) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.ino(), meta.len(), meta.modified().ok()?))
}

/// The serving certificate, re-read from its PEM files when they change: each TLS handshake
/// compares the files' stamps with those last loaded and reloads on a difference (two `stat`s per
/// handshake; the API server keeps its connections open). A pair that does not load (missing,
/// half-written, key not matching the certificate) leaves the previous certificate in service and
/// is tried again on the next handshake.
#[derive(Debug)]
pub struct ReloadingCert {
    cert: PathBuf,
    key: PathBuf,
    loaded: Mutex<(Stamp, Stamp, Arc<CertifiedKey>)>,
}

fn load_pair(cert: &Path, key: &Path) -> std::io::Result<Arc<CertifiedKey>> {
    let invalid = |path: &Path, e: &dyn std::fmt::Display| {
        std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{}: {e}", path.display()))
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| invalid(cert, &e))?;
    if chain.is_empty() {
        return Err(invalid(cert, &"no certificate"));
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| invalid(key, &e))?;
    let certified = CertifiedKey::from_der(chain, private, &rustls::crypto::ring::default_provider())
        .map_err(|e| invalid(key, &e))?;
    Ok(Arc::new(certified))
}

impl ReloadingCert {
    /// Loads the pair once; fails if it cannot be used.
    pub fn load(cert: &Path, key: &Path) -> std::io::Result<Self> {
        let stamps = (stamp(cert), stamp(key));
        let certified = load_pair(cert, key)?;
        Ok(ReloadingCert {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            loaded: Mutex::new((stamps.0, stamps.1, certified)),
        })
    }

    /// The certificate to present now, reloaded first if the files changed.
    pub fn current(&self) -> Arc<CertifiedKey> {
        let (cert_stamp, key_stamp) = (stamp(&self.cert), stamp(&self.key));
        let mut loaded = self.loaded.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if (cert_stamp, key_stamp) != (loaded.0, loaded.1) {
            match load_pair(&self.cert, &self.key) {
                Ok(certified) => {
                    tracing::info!(cert = %self.cert.display(), "webhook certificate reloaded");
                    *loaded = (cert_stamp, key_stamp, certified);
                }
                Err(e) => tracing::warn!("webhook certificate not reloaded, the previous one stays: {e}"),
            }
        }
        loaded.2.clone()
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}
