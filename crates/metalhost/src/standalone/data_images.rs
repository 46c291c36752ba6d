//! DataImage status files of the standalone runtime: `<host's stem>_DataImage.status.yaml` beside
//! the host's own status file, holding the DataImage as last kept (spec and status), written
//! atomically as host status files are. The file is also what a Kubernetes finalizer is: while it
//! says an image is attached, a DataImage whose manifest went is detached before the file goes.
//! Records are `records.rs`'s: user information is hidden in every URL the file holds.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use metalhost_api::data_image::DataImage;
use metalhost_api::redact::redact_url_userinfo;
use metalhost_api::{BareMetalHost, BareMetalHostStatus, OperationalStatus};
use metalhost_core::Reconciler;
use metalhost_core::data_image::Look;
use serde_json::json;
use tracing::warn;

use super::records;

/// The kind, as its record files are named.
const KIND: &str = "DataImage";

/// The status file of the DataImage of the host named `name` in `namespace`.
pub fn status_path(dir: &Path, name: &str, namespace: &str) -> std::io::Result<PathBuf> {
    records::path(dir, KIND, name, namespace)
}

/// The DataImage as its record holds it: user information hidden in every URL (the URL wanted,
/// the one attached, the error message), as nothing kept by metalhost shows a secret.
pub fn shown(image: &DataImage) -> DataImage {
    let mut shown = image.clone();
    shown.spec.url = redact_url_userinfo(&shown.spec.url);
    if let Some(status) = shown.status.as_mut() {
        if let Some(attached) = status.attached_image.as_mut() {
            attached.url = redact_url_userinfo(&attached.url);
        }
        if let Some(error) = status.error.as_mut() {
            error.message = redact_url_userinfo(&error.message);
        }
    }
    shown
}

/// Writes the DataImage's record ([`shown`]): name, namespace, spec and status.
pub fn write(dir: &Path, image: &DataImage) -> std::io::Result<()> {
    let shown = shown(image);
    let name = shown.metadata.name.as_deref().unwrap_or_default();
    let namespace = shown.metadata.namespace.as_deref().unwrap_or("default");
    let record = json!({
        "apiVersion": "metal3.io/v1alpha1",
        "kind": KIND,
        "metadata": {"name": name, "namespace": namespace},
        "spec": shown.spec,
        "status": shown.status.unwrap_or_default(),
    });
    records::write(dir, KIND, name, namespace, &record)
}

/// Reads the status file of the DataImage of host `name` in `namespace`, if there is a sound one.
pub fn read(dir: &Path, name: &str, namespace: &str) -> Result<Option<DataImage>, String> {
    records::read(dir, KIND, name, namespace)
}

/// Removes the status file of the DataImage of host `name` in `namespace`.
pub fn remove(dir: &Path, name: &str, namespace: &str) -> std::io::Result<()> {
    records::remove(dir, KIND, name, namespace)
}

/// What the runtime keeps of a host's DataImage: the record last written, and since when its
/// manifest has been missing (gone for [`super::RuntimeConfig::gone_for`] means deleted, as for
/// a host: a file caught while it is rewritten must not detach anything).
#[derive(Debug, Default)]
pub struct Kept {
    record: Option<DataImage>,
    absence: super::manifests::Absence,
}

impl Kept {
    /// What the host's DataImage status file holds (a corrupt one is a problem and not trusted).
    pub fn load(dir: &Path, host: &BareMetalHost) -> (Kept, Option<String>) {
        let name = host.metadata.name.as_deref().unwrap_or_default();
        match read(dir, name, host.namespace_or_default()) {
            Ok(record) => (Kept { record, ..Default::default() }, None),
            Err(problem) => (Kept::default(), Some(problem)),
        }
    }

    /// The DataImage as last kept, if any.
    pub fn record(&self) -> Option<&DataImage> {
        self.record.as_ref()
    }

    /// Takes in the host's DataImage manifest as a reload read it (`complete`: every manifest
    /// was read). Whether the host should be looked at now (a new or changed DataImage), and
    /// when a missing one counts as deleted.
    pub fn seen(
        &mut self,
        manifest: Option<&DataImage>,
        complete: bool,
        now: Instant,
    ) -> (bool, Option<Instant>) {
        let since = self.absence.seen(manifest.is_none() && self.record.is_some(), complete, now);
        let changed = manifest.is_some_and(|m| self.record.as_ref().is_none_or(|r| r.spec != shown(m).spec));
        (changed, since)
    }

    /// The DataImage to keep at this look: the manifest's with the status last written, or the
    /// record marked as being deleted once its manifest has been gone for `gone_for`.
    pub fn to_keep(
        &self,
        manifest: Option<&DataImage>,
        now: Instant,
        gone_for: Duration,
    ) -> Option<DataImage> {
        if let Some(m) = manifest {
            let mut image = m.clone();
            image.status = self.record.as_ref().and_then(|r| r.status.clone());
            return Some(image);
        }
        if !self.absence.counts(now, gone_for) {
            return None;
        }
        let mut image = self.record.clone()?;
        image.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::now()));
        Some(image)
    }

    /// Stores what a look decided: the status file written when the status changed, removed
    /// once a deleted DataImage is released. When to look at the host again for it.
    pub fn apply(&mut self, dir: &Path, mut image: DataImage, look: Look, key: &str) -> Option<Duration> {
        let name = image.metadata.name.clone().unwrap_or_default();
        let namespace = image.metadata.namespace.clone().unwrap_or_else(|| "default".into());
        if look.release {
            match remove(dir, &name, &namespace) {
                Ok(()) => *self = Kept::default(),
                Err(e) => warn!(host = %key, "cannot remove the DataImage status file: {e}"),
            }
            return look.again;
        }
        image.metadata.deletion_timestamp = None;
        let unchanged = self.record.as_ref().is_some_and(|r| {
            let now = shown(&DataImage { status: Some(look.status.clone()), ..image.clone() });
            r.spec == now.spec && r.status == now.status
        });
        if let Some(error) = look.status.error.as_ref().filter(|e| {
            self.record.as_ref().and_then(|r| r.status.as_ref()).and_then(|s| s.error.as_ref()) != Some(*e)
        }) {
            warn!(host = %key, error = %error.message, "the host's DataImage");
        }
        image.status = Some(look.status);
        if !unchanged {
            match write(dir, &image) {
                Ok(()) => self.record = Some(shown(&image)),
                // the record stays as it was: the next look writes it
                Err(e) => warn!(host = %key, "cannot write the DataImage status file: {e}"),
            }
        }
        look.again
    }

    /// Forgets the DataImage of a host that left Ironic (its CD went with its node).
    pub fn forget(&mut self, dir: &Path, host: &BareMetalHost) {
        let name = host.metadata.name.as_deref().unwrap_or_default();
        if let Err(e) = remove(dir, name, host.namespace_or_default()) {
            warn!(host = %host.qualified_name(), "cannot remove the DataImage status file: {e}");
        }
        *self = Kept::default();
    }
}

/// One look at a host's DataImage after the host's own look (none while the host is detached,
/// as upstream; a DataImage deleted meanwhile is released).
pub async fn look(
    reconciler: &Reconciler,
    image: &DataImage,
    host: &BareMetalHost,
    status: &BareMetalHostStatus,
    now: &str,
) -> Look {
    if status.operational_status == OperationalStatus::Detached {
        let deleting = image.metadata.deletion_timestamp.is_some();
        return Look { release: deleting, ..Look::unchanged(image) };
    }
    reconciler.keep_data_image(image, host, status.provisioning.state, &status.provisioning.id, now).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use metalhost_api::data_image::{AttachedImageReference, DataImageError, DataImageStatus};

    fn image(name: &str, namespace: &str) -> DataImage {
        let mut image = DataImage::default();
        image.metadata.name = Some(name.into());
        image.metadata.namespace = Some(namespace.into());
        image.spec.url = "http://images.example/d.iso".into();
        image.status = Some(DataImageStatus {
            attached_image: Some(AttachedImageReference { url: image.spec.url.clone() }),
            error: Some(DataImageError { count: 1, message: "http://u:hunter2@h/x failed".into() }),
            ..Default::default()
        });
        image
    }

    #[test]
    fn a_record_round_trips_beside_the_hosts_without_a_password() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &image("h1", "default")).unwrap();
        write(dir.path(), &image("h1", "lab")).unwrap();
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(names.contains(&"h1_DataImage.status.yaml".to_string()), "{names:?}");
        assert!(names.contains(&"lab~h1_DataImage.status.yaml".to_string()), "{names:?}");
        let back = read(dir.path(), "h1", "lab").unwrap().unwrap();
        assert_eq!(back.status.as_ref().unwrap().attached_url(), "http://images.example/d.iso");
        let text = std::fs::read_to_string(dir.path().join("h1_DataImage.status.yaml")).unwrap();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(super::super::manifests::manifest_files(dir.path()).unwrap().is_empty(), "never a manifest");
        let (hosts, problems) = super::super::store::read_all(dir.path());
        assert!(hosts.is_empty() && problems.is_empty(), "never a host's status: {hosts:?} {problems:?}");
        remove(dir.path(), "h1", "lab").unwrap();
        assert_eq!(read(dir.path(), "h1", "lab"), Ok(None));
    }

    #[test]
    fn a_record_of_another_image_or_a_symlink_is_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &image("h1", "default")).unwrap();
        std::fs::rename(
            dir.path().join("h1_DataImage.status.yaml"),
            dir.path().join("h2_DataImage.status.yaml"),
        )
        .unwrap();
        assert!(read(dir.path(), "h2", "default").unwrap_err().contains("names another DataImage"));
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("h3_DataImage.status.yaml")).unwrap();
        assert!(read(dir.path(), "h3", "default").is_err());
        assert!(status_path(dir.path(), "../x", "default").is_err());
    }

    fn manifest(url: &str) -> DataImage {
        let mut image = DataImage::default();
        image.metadata.name = Some("h1".into());
        image.metadata.namespace = Some("default".into());
        image.spec.url = url.into();
        image
    }

    #[test]
    fn a_missing_manifest_counts_only_when_every_manifest_was_read_for_long_enough() {
        let gone_for = Duration::from_secs(1);
        let t0 = Instant::now();
        let mut kept = Kept { record: Some(shown(&image("h1", "default"))), ..Default::default() };
        // a reload that could not read some file: nothing counts
        assert_eq!(kept.seen(None, false, t0), (false, None));
        assert_eq!(kept.to_keep(None, t0 + gone_for * 5, gone_for), None);
        // missing in a complete reload: kept as it is until gone_for passed, then deleted
        assert_eq!(kept.seen(None, true, t0), (false, Some(t0)));
        assert_eq!(kept.to_keep(None, t0, gone_for), None);
        let deleted = kept.to_keep(None, t0 + gone_for, gone_for).expect("the DataImage to detach");
        assert!(deleted.metadata.deletion_timestamp.is_some());
        // a reload that fails meanwhile starts the count again
        assert_eq!(kept.seen(None, false, t0 + gone_for), (false, None));
        assert_eq!(kept.to_keep(None, t0 + gone_for * 2, gone_for), None);
        // back: kept again, with the status last written
        let back = manifest("http://images.example/d.iso");
        assert_eq!(kept.seen(Some(&back), true, t0), (false, None), "the same spec is no change");
        let keep = kept.to_keep(Some(&back), t0, gone_for).unwrap();
        assert_eq!(keep.status.unwrap().attached_url(), "http://images.example/d.iso");
    }

    #[test]
    fn a_url_with_a_password_is_kept_hidden_and_is_no_change() {
        let dir = tempfile::tempdir().unwrap();
        let secret = manifest("http://user:hunter2@images.example/d.iso");
        let mut kept = Kept::default();
        assert!(kept.seen(Some(&secret), true, Instant::now()).0, "new");
        let look = Look {
            status: DataImageStatus {
                attached_image: Some(AttachedImageReference { url: secret.spec.url.clone() }),
                ..Default::default()
            },
            step: None,
            release: false,
            again: None,
        };
        kept.apply(dir.path(), secret.clone(), look, "default/h1");
        let text = std::fs::read_to_string(dir.path().join("h1_DataImage.status.yaml")).unwrap();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(!kept.seen(Some(&secret), true, Instant::now()).0, "the record is the same DataImage");
    }
}
