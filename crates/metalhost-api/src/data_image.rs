//! DataImage (metal3.io/v1alpha1) as upstream defines it: an ISO to attach as virtual media (a
//! CD) to the BareMetalHost of the same name, e.g. a data ISO the running system reads. Pure:
//! the types, upstream's CRD, and the rule for `spec.url`; the runtimes attach and detach.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

/// Upstream's finalizer on a DataImage: it stays until the image is detached from the host.
pub const FINALIZER: &str = "dataimage.metal3.io";

/// URL schemes Ironic's virtual media API fetches an image from.
pub const URL_SCHEMES: &[&str] = &["http", "https"];

/// What the user wants attached.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataImageSpec {
    /// The ISO's address (http or https).
    #[serde(default)]
    pub url: String,
}

/// The image attached, as upstream records it: the URL metalhost attached (the BMC reports only
/// an address of Ironic's own).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachedImageReference {
    /// The URL attached.
    pub url: String,
}

/// Upstream's error record: how many times in a row attaching or detaching failed, and why.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataImageError {
    /// Failures in a row (0: none).
    pub count: i64,
    /// The last failure ("" when none).
    pub message: String,
}

/// What is attached and what went wrong (upstream's fields).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataImageStatus {
    /// When the status last changed (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_reconciled: Option<String>,
    /// The image attached now, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attached_image: Option<AttachedImageReference>,
    /// The last failure, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<DataImageError>,
}

impl DataImageStatus {
    /// The URL attached, "" when none (upstream's `status.attachedImage.url`).
    pub fn attached_url(&self) -> &str {
        self.attached_image.as_ref().map_or("", |a| a.url.as_str())
    }

    /// How many failures in a row (0: none).
    pub fn error_count(&self) -> i64 {
        self.error.as_ref().map_or(0, |e| e.count)
    }
}

/// Upstream's DataImage: at most one per host, with the host's name and namespace.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DataImage {
    /// Name, namespace, finalizers, owners, deletion.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// What the user wants.
    #[serde(default)]
    pub spec: DataImageSpec,
    /// What is attached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<DataImageStatus>,
}

metal3_resource!(DataImage, "DataImage", "dataimages");

/// Upstream's DataImage CRD as it is (pinned in `tests/data/upstream/`, Apache 2.0).
pub const DATA_IMAGE_CRD: &str = include_str!("../tests/data/upstream/metal3.io_dataimages.yaml");

/// Why `spec.url` cannot be attached. Messages start with the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Empty.
    #[error("spec.url: must not be empty")]
    Empty,
    /// Longer than anyone needs.
    #[error("spec.url: {0} characters is over the limit of 4096")]
    TooLong(usize),
    /// Not a URL.
    #[error("spec.url: {url} is invalid: {reason}")]
    Malformed {
        /// The URL, its user information hidden.
        url: String,
        /// Why.
        reason: String,
    },
    /// A scheme Ironic's virtual media API does not fetch.
    #[error("spec.url: scheme '{0}' is not supported (Ironic attaches http and https images)")]
    Scheme(String),
}

/// Checks `spec.url` as Ironic's virtual media API takes it: an http or https URL with a host.
pub fn check_url(url: &str) -> Result<(), UrlError> {
    let url = url.trim();
    if url.is_empty() {
        return Err(UrlError::Empty);
    }
    if url.len() > crate::image::MAX_URL_LEN {
        return Err(UrlError::TooLong(url.len()));
    }
    let shown = |text: &str| crate::text::bounded(&crate::redact::redact_url_userinfo(text)).into_owned();
    let parsed = crate::gourl::parse_request_uri(url)
        .map_err(|reason| UrlError::Malformed { url: shown(url), reason: shown(&reason) })?;
    if !URL_SCHEMES.contains(&parsed.scheme.as_str()) {
        return Err(UrlError::Scheme(crate::text::bounded(&parsed.scheme).into_owned()));
    }
    if parsed.hostname().is_empty() {
        return Err(UrlError::Malformed { url: shown(url), reason: "no host name".into() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstreams_status_reads_and_writes_back_the_same() {
        let raw = serde_json::json!({
            "lastReconciled": "2026-12-06T03:00:00Z",
            "attachedImage": {"url": "http://images.example/data.iso"},
            "error": {"count": 0, "message": ""},
        });
        let status: DataImageStatus = serde_json::from_value(raw.clone()).unwrap();
        assert_eq!(status.attached_url(), "http://images.example/data.iso");
        assert_eq!(serde_json::to_value(&status).unwrap(), raw);
        assert_eq!(DataImageStatus::default().attached_url(), "");
    }

    #[test]
    fn only_http_and_https_urls_with_a_host_are_attached() {
        assert_eq!(check_url("http://images.example/data.iso"), Ok(()));
        assert_eq!(check_url(" https://10.0.0.1:8080/d.iso "), Ok(()));
        assert_eq!(check_url(""), Err(UrlError::Empty));
        assert_eq!(
            check_url("ftp://images.example/d.iso").unwrap_err().to_string(),
            "spec.url: scheme 'ftp' is not supported (Ironic attaches http and https images)"
        );
        assert!(matches!(check_url("http:///d.iso"), Err(UrlError::Malformed { .. })));
        assert!(matches!(check_url(&format!("http://h/{}", "a".repeat(5000))), Err(UrlError::TooLong(_))));
    }

    #[test]
    fn a_password_in_the_url_is_never_in_the_message() {
        let e = check_url("http://user:s3cret@ho st/d.iso").unwrap_err().to_string();
        assert!(!e.contains("s3cret"), "{e}");
        assert!(e.starts_with("spec.url: "), "{e}");
    }
}
