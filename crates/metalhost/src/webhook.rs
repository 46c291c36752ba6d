//! The validating admission webhook: upstream's BareMetalHost rules (the same as `metalhost
//! validate`) served over HTTPS as Kubernetes AdmissionReviews, plus health endpoints.

use std::net::SocketAddr;
use std::path::Path;

use axum::routing::{get, post};
use axum::{Json, Router};
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use metalhost_api::BareMetalHost;
use metalhost_api::validation::{validate_host, validate_update};

/// The path upstream's webhook configuration calls.
pub const VALIDATE_PATH: &str = "/validate-metal3-io-v1alpha1-baremetalhost";

/// The webhook's routes: validation, `/healthz` and `/readyz`.
pub fn router() -> Router {
    Router::new()
        .route(VALIDATE_PATH, post(validate))
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
        response.deny(message).into_review()
    }
}

async fn validate(Json(body): Json<AdmissionReview<BareMetalHost>>) -> Json<AdmissionReview<DynamicObject>> {
    Json(review(body))
}

/// Serves the webhook over HTTPS with this certificate and key (PEM files) until the process ends.
pub async fn serve(addr: SocketAddr, cert: &Path, key: &Path) -> std::io::Result<()> {
    let tls = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key).await?;
    axum_server::bind_rustls(addr, tls).serve(router().into_make_service()).await
}
