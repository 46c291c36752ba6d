//! A host's DataImage: the ISO its user wants in the host's virtual CD, attached and detached
//! through Ironic's virtual media API, with upstream's status (`attachedImage`, `error`). Pure:
//! the runtimes read the DataImage and the node's virtual media, and carry out the step.
//!
//! Upstream's rules, and where metalhost differs (docs/kubernetes.md, "DataImage"):
//! - Only a provisioned or externally provisioned host has its DataImage attached: in every other
//!   state Ironic owns the CD (its agent or the live ISO go there, and Ironic ejects whatever is
//!   in it first).
//! - metalhost attaches and detaches at once; upstream waits for the host's next power-on.
//! - A host booted from a live image through virtual media (live-iso, live-kernel) holds its CD:
//!   a DataImage would take its place at the next boot, so it is refused with an error saying so
//!   (upstream attaches it over the live ISO).
//! - The finalizer `dataimage.metal3.io` stays until the CD is empty; on a host in another state
//!   it goes at once (Ironic empties the CD itself before using it).

use std::time::Duration;

use metalhost_api::data_image::{
    AttachedImageReference, DataImage, DataImageError, DataImageStatus, check_url,
};
use metalhost_api::{DeployImage, ProvisioningState};
use metalhost_ironic::VirtualMedia;

/// What the DataImage needs to know of its host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostSide {
    /// The host's provisioning state.
    pub state: ProvisioningState,
    /// Whether the host boots a live image from its virtual CD (its CD is not free).
    pub cd_held: bool,
}

impl HostSide {
    /// The host's side, from its state, its image and whether its BMC boots through virtual media.
    pub fn new(state: ProvisioningState, image: Option<&DeployImage>, virtual_media: bool) -> Self {
        let live = image.is_some_and(DeployImage::is_live);
        HostSide { state, cd_held: state == ProvisioningState::Provisioned && live && virtual_media }
    }

    /// Whether the CD is the user's to fill: the host runs what it was given, and it is not
    /// booting a live image from the CD.
    pub fn cd_free(&self) -> bool {
        matches!(self.state, ProvisioningState::Provisioned | ProvisioningState::ExternallyProvisioned)
            && !self.cd_held
    }
}

/// The Ironic call a DataImage needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaStep {
    /// Insert this URL into the virtual CD.
    Attach(String),
    /// Eject the virtual CD.
    Detach,
}

/// What to do for a DataImage after one look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Look {
    /// Its new status (written only when it differs from the old one).
    pub status: DataImageStatus,
    /// The Ironic call to make, if any.
    pub step: Option<MediaStep>,
    /// The DataImage is being deleted and nothing of it is left in the CD: its finalizer may go.
    pub release: bool,
    /// When to look again, if something is under way or failed.
    pub again: Option<Duration>,
}

/// How soon to look again after an attach or detach (Ironic does them in the background).
pub const SETTLE: Duration = Duration::from_secs(5);

/// The message when the host's live image holds the CD.
pub const CD_HELD: &str = "not attached: the host boots its live image (spec.image.format live-iso or live-kernel) \
     from the virtual CD, which a DataImage would take over; use a disk image, or a BMC address that \
     boots over the network (redfish://, not redfish-virtualmedia://)";

/// Whether the node's virtual media shows an image in its CD (or DVD) device.
pub fn cd_inserted(vmedia: &[VirtualMedia]) -> bool {
    vmedia.iter().any(|m| m.inserted && m.media_types.iter().any(|t| t == "CD" || t == "DVD"))
}

/// Decides the next step for a DataImage from its host's side and, when the CD is free and the
/// node could be asked, its virtual media (`None`: the node is busy or has none to show yet).
/// `last_error`: the node's, to explain an attach that did not take. `now`: RFC 3339.
pub fn decide(
    image: &DataImage,
    host: HostSide,
    vmedia: Option<&[VirtualMedia]>,
    last_error: Option<&str>,
    now: &str,
) -> Look {
    let previous = image.status.clone().unwrap_or_default();
    let deleting = image.metadata.deletion_timestamp.is_some();
    let mut look = Look { status: previous.clone(), step: None, release: false, again: None };
    if !host.cd_free() {
        // Ironic's CD, or the live image's: nothing of ours is in it
        look.status.attached_image = None;
        if host.cd_held && !deleting {
            look.status.error = Some(DataImageError { count: 1, message: CD_HELD.into() });
        }
        look.release = deleting;
        return stamped(look, &previous, now);
    }
    let Some(vmedia) = vmedia else {
        look.again = Some(SETTLE);
        return look;
    };
    let inserted = cd_inserted(vmedia);
    let attached = previous.attached_url().to_string();
    if deleting {
        match inserted {
            true => (look.step, look.again) = (Some(MediaStep::Detach), Some(SETTLE)),
            false => (look.status.attached_image, look.release) = (None, true),
        }
        return stamped(look, &previous, now);
    }
    if !inserted && !attached.is_empty() {
        // the attach did not take (Ironic failed in the background), or someone ejected it
        look.status.attached_image = None;
        let why = last_error.map_or("the BMC shows an empty CD".into(), metalhost_api::text::bounded);
        let message = format!("{attached} is not inserted: {why}");
        return stamped(failed(look, &message, true), &previous, now);
    }
    let wanted = match check_url(&image.spec.url) {
        Ok(()) => image.spec.url.trim().to_string(),
        Err(e) => {
            look = failed(look, &e.to_string(), false);
            String::new()
        }
    };
    if wanted != attached {
        if !attached.is_empty() {
            (look.step, look.again) = (Some(MediaStep::Detach), Some(SETTLE));
            // upstream keeps the old URL until the next look shows the CD empty
        } else if !wanted.is_empty() {
            look.step = Some(MediaStep::Attach(wanted.clone()));
            look.status.attached_image = Some(AttachedImageReference { url: wanted });
            look.again = Some(SETTLE);
        }
    } else if !wanted.is_empty() {
        look.status.error = None;
    }
    stamped(look, &previous, now)
}

/// Records a failure. `again`: something failed once more (an attach that did not take, a step
/// Ironic refused), and the count goes up; otherwise a standing refusal is said, counted once
/// while its message stays the same (a status is not rewritten at every look). The next look
/// backs off by the count.
pub fn failed(mut look: Look, message: &str, again: bool) -> Look {
    let message = metalhost_api::redact::redact_url_userinfo(&metalhost_api::text::bounded(message));
    let count = match &look.status.error {
        Some(e) if e.message == message && !again => e.count,
        Some(e) => e.count + 1,
        None => 1,
    };
    look.again = Some(crate::policy::backoff(u32::try_from(count).unwrap_or(u32::MAX)).max(SETTLE));
    look.status.error = Some(DataImageError { count, message });
    look
}

/// Records that the step failed (Ironic refused or could not be reached): the status no longer
/// claims what the step was to do.
pub fn step_failed(mut look: Look, previous: &DataImageStatus, message: &str, now: &str) -> Look {
    if matches!(look.step.take(), Some(MediaStep::Attach(_))) {
        look.status.attached_image = previous.attached_image.clone();
    }
    stamped(failed(look, message, true), previous, now)
}

/// Sets `lastReconciled` when the status changed in anything else.
fn stamped(mut look: Look, previous: &DataImageStatus, now: &str) -> Look {
    if look.status != *previous {
        look.status.last_reconciled = Some(now.to_string());
    }
    look
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    const NOW: &str = "2026-12-06T03:00:00Z";
    const URL: &str = "http://images.example/data.iso";

    fn image(url: &str, status: Option<DataImageStatus>, deleting: bool) -> DataImage {
        let mut di = DataImage {
            spec: metalhost_api::data_image::DataImageSpec { url: url.into() },
            status,
            ..Default::default()
        };
        if deleting {
            di.metadata.deletion_timestamp = Some(Time(Default::default()));
        }
        di
    }

    fn attached(url: &str) -> Option<DataImageStatus> {
        Some(DataImageStatus {
            attached_image: Some(AttachedImageReference { url: url.into() }),
            ..Default::default()
        })
    }

    fn cd(inserted: bool) -> Vec<VirtualMedia> {
        vec![VirtualMedia { media_types: vec!["CD".into(), "DVD".into()], inserted, image: String::new() }]
    }

    const PROVISIONED: HostSide = HostSide { state: ProvisioningState::Provisioned, cd_held: false };

    #[test]
    fn a_new_image_is_attached_and_recorded_as_upstream_does() {
        let look = decide(&image(URL, None, false), PROVISIONED, Some(&cd(false)), None, NOW);
        assert_eq!(look.step, Some(MediaStep::Attach(URL.into())));
        assert_eq!(look.status.attached_url(), URL);
        assert_eq!(look.status.last_reconciled.as_deref(), Some(NOW));
        assert_eq!(look.again, Some(SETTLE));
        // once the CD shows it: nothing more, nothing written
        let settled =
            decide(&image(URL, Some(look.status.clone()), false), PROVISIONED, Some(&cd(true)), None, NOW);
        assert_eq!((settled.step, settled.again, &settled.status), (None, None, &look.status));
    }

    #[test]
    fn an_attach_that_did_not_take_is_an_error_and_is_tried_again() {
        let look = decide(
            &image(URL, attached(URL), false),
            PROVISIONED,
            Some(&cd(false)),
            Some("404 Not Found"),
            NOW,
        );
        assert_eq!(look.step, None);
        assert_eq!(look.status.attached_image, None);
        let error = look.status.error.clone().unwrap();
        assert_eq!(
            (error.count, error.message.as_str()),
            (1, "http://images.example/data.iso is not inserted: 404 Not Found")
        );
        let again = decide(&image(URL, Some(look.status), false), PROVISIONED, Some(&cd(false)), None, NOW);
        assert_eq!(again.step, Some(MediaStep::Attach(URL.into())));
        assert_eq!(again.status.error_count(), 1, "the error stays until the image is in");
        let done = decide(&image(URL, Some(again.status), false), PROVISIONED, Some(&cd(true)), None, NOW);
        assert_eq!(done.status.error, None);
    }

    #[test]
    fn a_new_url_detaches_the_old_image_first() {
        let look = decide(
            &image("http://images.example/new.iso", attached(URL), false),
            PROVISIONED,
            Some(&cd(true)),
            None,
            NOW,
        );
        assert_eq!(look.step, Some(MediaStep::Detach));
        assert_eq!(look.status.attached_url(), URL);
        let next = decide(
            &image("http://images.example/new.iso", attached(URL), false),
            PROVISIONED,
            Some(&cd(false)),
            None,
            NOW,
        );
        assert_eq!(next.status.attached_image, None, "the CD shows empty: the old image is gone");
    }

    #[test]
    fn a_deleted_image_is_detached_then_released() {
        let look = decide(&image(URL, attached(URL), true), PROVISIONED, Some(&cd(true)), None, NOW);
        assert_eq!((look.step, look.release), (Some(MediaStep::Detach), false));
        let gone = decide(&image(URL, attached(URL), true), PROVISIONED, Some(&cd(false)), None, NOW);
        assert_eq!((gone.step, gone.release), (None, true));
        let unknown = decide(&image(URL, attached(URL), true), PROVISIONED, None, None, NOW);
        assert_eq!((unknown.step, unknown.release), (None, false), "a busy node is waited for");
    }

    #[test]
    fn a_live_image_on_the_cd_refuses_the_data_image() {
        let live = HostSide::new(
            ProvisioningState::Provisioned,
            Some(&DeployImage::LiveIso { url: "http://x/live.iso".into() }),
            true,
        );
        assert!(live.cd_held);
        let look = decide(&image(URL, None, false), live, Some(&cd(true)), None, NOW);
        assert_eq!(look.step, None);
        assert_eq!(look.status.error.as_ref().map(|e| e.message.as_str()), Some(CD_HELD));
        let again = decide(&image(URL, Some(look.status.clone()), false), live, Some(&cd(true)), None, NOW);
        assert_eq!(again.status, look.status, "a standing refusal is not rewritten");
        assert!(decide(&image(URL, Some(look.status), true), live, None, None, NOW).release);
        // the same image booted over the network leaves the CD free
        let network = HostSide::new(
            ProvisioningState::Provisioned,
            Some(&DeployImage::LiveIso { url: "http://x/l.iso".into() }),
            false,
        );
        assert!(network.cd_free());
    }

    #[test]
    fn only_a_provisioned_host_has_its_cd_touched() {
        for state in
            [ProvisioningState::Available, ProvisioningState::Provisioning, ProvisioningState::Deprovisioning]
        {
            let side = HostSide::new(state, None, true);
            let look = decide(&image(URL, None, false), side, Some(&cd(false)), None, NOW);
            assert_eq!(
                (look.step, look.again, look.status),
                (None, None, DataImageStatus::default()),
                "{state:?}"
            );
            assert!(decide(&image(URL, None, true), side, None, None, NOW).release, "{state:?}");
        }
        let external = HostSide::new(
            ProvisioningState::ExternallyProvisioned,
            Some(&DeployImage::LiveIso { url: "http://x/l.iso".into() }),
            true,
        );
        assert!(external.cd_free(), "an externally provisioned host boots nothing of ours");
    }

    #[test]
    fn a_bad_url_is_an_error_naming_the_field_and_detaches_what_was_there() {
        let look = decide(
            &image("ftp://images.example/d.iso", None, false),
            PROVISIONED,
            Some(&cd(false)),
            None,
            NOW,
        );
        assert_eq!(look.step, None);
        let message = look.status.error.as_ref().unwrap().message.clone();
        assert!(message.starts_with("spec.url: scheme 'ftp'"), "{message}");
        let again = decide(
            &image("ftp://images.example/d.iso", Some(look.status.clone()), false),
            PROVISIONED,
            Some(&cd(false)),
            None,
            NOW,
        );
        assert_eq!(again.status, look.status);
        let was = decide(
            &image("ftp://images.example/d.iso", attached(URL), false),
            PROVISIONED,
            Some(&cd(true)),
            None,
            NOW,
        );
        assert_eq!(was.step, Some(MediaStep::Detach));
    }

    #[test]
    fn a_refused_step_counts_and_backs_off_and_claims_nothing() {
        let previous = DataImageStatus::default();
        let look = decide(&image(URL, None, false), PROVISIONED, Some(&cd(false)), None, NOW);
        let failed_once = step_failed(look, &previous, "Ironic: 409 node locked", NOW);
        assert_eq!(failed_once.status.attached_image, None);
        assert_eq!(failed_once.status.error_count(), 1);
        let look = decide(
            &image(URL, Some(failed_once.status.clone()), false),
            PROVISIONED,
            Some(&cd(false)),
            None,
            NOW,
        );
        let twice = step_failed(look, &failed_once.status, "Ironic: 409 node locked", NOW);
        assert_eq!(twice.status.error_count(), 2, "the same failure again still counts");
        assert_eq!(twice.again, Some(Duration::from_secs(5)));
        assert!(
            step_failed(
                decide(&image(URL, None, false), PROVISIONED, Some(&cd(false)), None, NOW),
                &previous,
                "http://u:pw@h/x",
                NOW
            )
            .status
            .error
            .unwrap()
            .message
            .find("pw")
            .is_none()
        );
    }
}
