//! A host's DataImage: the ISO its user wants in the host's virtual CD, attached and detached
//! through Ironic's virtual media API, with upstream's status (`attachedImage`, `error`). Pure:
//! the runtimes read the DataImage and the host's node, and carry out the step.
//!
//! Upstream's rules, and where metalhost differs (docs/kubernetes.md, "DataImage"):
//! - Only a provisioned or externally provisioned host has its DataImage attached; in other
//!   states nothing is attached (Ironic, booting through virtual media, ejects whatever is in the
//!   CD before inserting its own media).
//! - metalhost attaches and detaches at once; upstream waits for the host's next power-on.
//! - A host running a live image Ironic booted from the virtual CD (the node's ramdisk deploy on
//!   a virtual-media boot interface) holds its CD: a DataImage would take its place at the next
//!   boot, so it is refused with an error saying so (upstream attaches it over the live ISO).
//! - What the node says decides, never the host's spec of the moment: a BMC Secret gone for a
//!   while must not make a live host look free.
//! - The finalizer `dataimage.metal3.io` stays until the CD is empty, wherever the host is.

use std::time::Duration;

use metalhost_api::ProvisioningState;
use metalhost_api::data_image::{
    AttachedImageReference, DataImage, DataImageError, DataImageStatus, check_url,
};
use metalhost_ironic::{Node, VirtualMedia};

/// The node's deploy interface for a live image (Ironic boots it; nothing is written to disk).
const RAMDISK_DEPLOY: &str = "ramdisk";

/// What the host's node says of its CD, read for its DataImage.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeMedia {
    /// Ironic boots the node through virtual media (its boot interface): it ejects whatever is
    /// in the CD before inserting its own media.
    pub vmedia_boot: bool,
    /// The node runs a live image Ironic booted from the CD (ramdisk deploy, virtual-media boot).
    pub live_on_cd: bool,
    /// The CD as the BMC shows it; None while Ironic works on the node (busy or locked: it cannot
    /// be read then) or when it was not read.
    pub vmedia: Option<Vec<VirtualMedia>>,
    /// Why the CD can never be read or changed here (Ironic's API too old, a driver without
    /// virtual media): a standing reason, not a failure to retry.
    pub unusable: Option<String>,
    /// The node's last error (an attach that did not take says why there).
    pub last_error: Option<String>,
}

impl NodeMedia {
    /// What `node` says of its CD, before its virtual media is read.
    pub fn of(node: &Node) -> Self {
        let boot = node.boot_interface.as_deref().unwrap_or_default();
        let vmedia_boot = boot.contains("virtual-media") || boot.contains("virtual_media");
        let live = node.deploy_interface.as_deref() == Some(RAMDISK_DEPLOY);
        NodeMedia {
            vmedia_boot,
            live_on_cd: vmedia_boot && live,
            last_error: node.last_error.clone(),
            ..Default::default()
        }
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
    /// When to look again, if something is under way or failed; None: at the host's own pace.
    pub again: Option<Duration>,
}

impl Look {
    /// Nothing done, nothing changed.
    pub fn unchanged(image: &DataImage) -> Self {
        Look { status: image.status.clone().unwrap_or_default(), step: None, release: false, again: None }
    }
}

/// How soon to look again after an attach or detach (Ironic does them in the background).
pub const SETTLE: Duration = Duration::from_secs(5);

/// The message when the host's live image holds the CD.
pub const CD_HELD: &str = "not attached: the host runs a live image (spec.image.format live-iso or live-kernel) \
     booted from the virtual CD, which a DataImage would take over; use a disk image, or a BMC address \
     that boots over the network (redfish://, not redfish-virtualmedia://)";

/// Whether the node's virtual media shows an image in its CD (or DVD) device.
pub fn cd_inserted(vmedia: &[VirtualMedia]) -> bool {
    vmedia.iter().any(|m| m.inserted && m.media_types.iter().any(|t| t == "CD" || t == "DVD"))
}

/// Whether the host runs what it was given, so that its CD is the user's (upstream's states).
pub fn runs_its_image(state: ProvisioningState) -> bool {
    matches!(state, ProvisioningState::Provisioned | ProvisioningState::ExternallyProvisioned)
}

/// Whether the node's virtual media is worth reading: the CD may be the user's now, or hold a
/// deleted DataImage's image that Ironic leaves in place (it never touches the CD of a node it
/// boots over the network).
pub fn wants_vmedia(image: &DataImage, state: ProvisioningState, node: &NodeMedia) -> bool {
    let deleting = image.metadata.deletion_timestamp.is_some();
    let attached = image.status.as_ref().is_some_and(|s| !s.attached_url().is_empty());
    match runs_its_image(state) {
        true => !(state == ProvisioningState::Provisioned && node.live_on_cd),
        false => deleting && attached && !node.vmedia_boot,
    }
}

/// Decides the next step for a DataImage from its host's state and what its node says (None: the
/// host has no node, so nothing can be attached). `now`: RFC 3339.
pub fn decide(image: &DataImage, state: ProvisioningState, node: Option<&NodeMedia>, now: &str) -> Look {
    let previous = image.status.clone().unwrap_or_default();
    let deleting = image.metadata.deletion_timestamp.is_some();
    let mut look = Look::unchanged(image);
    let Some(node) = node else {
        // no node, no CD: nothing of it is attached anywhere
        if deleting {
            (look.status.attached_image, look.release) = (None, true);
        }
        return stamped(look, &previous, now);
    };
    if runs_its_image(state) && state == ProvisioningState::Provisioned && node.live_on_cd {
        // the live image's CD: nothing of ours is in it (Ironic ejected it to boot the image)
        look.status.attached_image = None;
        if !deleting {
            look.status.error = Some(DataImageError { count: 1, message: CD_HELD.into() });
        }
        look.release = deleting;
        return stamped(look, &previous, now);
    }
    if !wants_vmedia(image, state, node) {
        if node.vmedia_boot && !runs_its_image(state) {
            // Ironic takes the CD in these states, and empties it first
            look.status.attached_image = None;
        }
        look.release = deleting && (node.vmedia_boot || previous.attached_url().is_empty());
        return stamped(look, &previous, now);
    }
    if let Some(reason) = &node.unusable {
        // nothing can be seen or done: a deleted DataImage goes (nothing could be attached)
        look.release = deleting;
        if !deleting {
            look = failed(look, reason, false);
        }
        return stamped(look, &previous, now);
    }
    let Some(vmedia) = &node.vmedia else {
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
        let why = node
            .last_error
            .as_deref()
            .map_or("the BMC shows an empty CD".into(), metalhost_api::text::bounded);
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
    // compared as shown: a record that hides the URL's user information (standalone) still
    // names the image attached
    let hide = metalhost_api::redact::redact_url_userinfo;
    if hide(&wanted) != hide(&attached) {
        if !attached.is_empty() {
            // the old image out first; the status no longer claims it (upstream waits to see)
            (look.step, look.again) = (Some(MediaStep::Detach), Some(SETTLE));
            look.status.attached_image = None;
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
/// Ironic refused), the count goes up and the next look backs off by it; otherwise a standing
/// refusal is said, counted once while its message stays the same (a status is not rewritten at
/// every look), and nothing is looked at again for it: a change of the DataImage wakes the host.
pub fn failed(mut look: Look, message: &str, again: bool) -> Look {
    let message = metalhost_api::redact::redact_url_userinfo(&metalhost_api::text::bounded(message));
    let count = match &look.status.error {
        Some(e) if e.message == message && !again => e.count,
        Some(e) => e.count + 1,
        None => 1,
    };
    if again {
        look.again = Some(crate::policy::backoff(u32::try_from(count).unwrap_or(u32::MAX)).max(SETTLE));
    }
    look.status.error = Some(DataImageError { count, message });
    look
}

/// Records that the step failed: the status claims what it claimed before. A node Ironic holds
/// locked (409) or an Ironic out of reach is waited for, not counted.
pub fn step_failed(
    mut look: Look,
    previous: &DataImageStatus,
    message: &str,
    transient: bool,
    now: &str,
) -> Look {
    look.step = None;
    look.status.attached_image = previous.attached_image.clone();
    if transient {
        look.status = previous.clone();
        look.again = Some(SETTLE);
        return look;
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
    use metalhost_api::data_image::DataImageSpec;

    const NOW: &str = "2026-12-06T03:00:00Z";
    const URL: &str = "http://images.example/data.iso";
    const PROVISIONED: ProvisioningState = ProvisioningState::Provisioned;

    fn image(url: &str, status: Option<DataImageStatus>, deleting: bool) -> DataImage {
        let mut di = DataImage { spec: DataImageSpec { url: url.into() }, status, ..Default::default() };
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

    /// A disk-image node on virtual media whose CD shows `inserted`.
    fn cd(inserted: bool) -> NodeMedia {
        let media =
            VirtualMedia { media_types: vec!["CD".into(), "DVD".into()], inserted, image: String::new() };
        NodeMedia { vmedia_boot: true, vmedia: Some(vec![media]), ..Default::default() }
    }

    fn node(boot: &str, deploy: Option<&str>) -> Node {
        serde_json::from_value(serde_json::json!({
            "uuid": "n1", "driver": "redfish", "provision_state": "active",
            "boot_interface": boot, "deploy_interface": deploy,
        }))
        .unwrap()
    }

    #[test]
    fn the_node_says_whether_a_live_image_holds_the_cd() {
        assert!(NodeMedia::of(&node("redfish-virtual-media", Some("ramdisk"))).live_on_cd);
        assert!(NodeMedia::of(&node("idrac-redfish-virtual-media", Some("ramdisk"))).live_on_cd);
        assert!(!NodeMedia::of(&node("redfish-virtual-media", Some("direct"))).live_on_cd);
        // booted over the network or by UEFI HTTP: the CD is free
        assert!(!NodeMedia::of(&node("ipxe", Some("ramdisk"))).live_on_cd);
        assert!(!NodeMedia::of(&node("redfish-https", Some("ramdisk"))).live_on_cd);
    }

    #[test]
    fn a_new_image_is_attached_and_recorded_as_upstream_does() {
        let look = decide(&image(URL, None, false), PROVISIONED, Some(&cd(false)), NOW);
        assert_eq!(look.step, Some(MediaStep::Attach(URL.into())));
        assert_eq!(look.status.attached_url(), URL);
        assert_eq!(look.status.last_reconciled.as_deref(), Some(NOW));
        assert_eq!(look.again, Some(SETTLE));
        // once the CD shows it: nothing more, nothing written
        let settled =
            decide(&image(URL, Some(look.status.clone()), false), PROVISIONED, Some(&cd(true)), NOW);
        assert_eq!((settled.step, settled.again, &settled.status), (None, None, &look.status));
    }

    #[test]
    fn a_busy_node_is_waited_for() {
        let busy = NodeMedia { vmedia: None, ..cd(false) };
        let look = decide(&image(URL, None, false), PROVISIONED, Some(&busy), NOW);
        assert_eq!((look.step, look.again, look.release), (None, Some(SETTLE), false));
        let deleted = decide(&image(URL, attached(URL), true), PROVISIONED, Some(&busy), NOW);
        assert_eq!((deleted.step, deleted.release), (None, false));
    }

    #[test]
    fn an_attach_that_did_not_take_is_an_error_and_is_tried_again_with_back_off() {
        let failed_cd = NodeMedia { last_error: Some("404 Not Found".into()), ..cd(false) };
        let look = decide(&image(URL, attached(URL), false), PROVISIONED, Some(&failed_cd), NOW);
        assert_eq!(look.step, None);
        assert_eq!(look.status.attached_image, None);
        let error = look.status.error.clone().unwrap();
        assert_eq!(
            (error.count, error.message.as_str()),
            (1, "http://images.example/data.iso is not inserted: 404 Not Found")
        );
        assert_eq!(look.again, Some(SETTLE));
        let again = decide(&image(URL, Some(look.status), false), PROVISIONED, Some(&cd(false)), NOW);
        assert_eq!(again.step, Some(MediaStep::Attach(URL.into())));
        assert_eq!(again.status.error_count(), 1, "the error stays until the image is in");
        let second =
            decide(&image(URL, Some(again.status.clone()), false), PROVISIONED, Some(&failed_cd), NOW);
        assert_eq!(second.status.error_count(), 2);
        assert_eq!(second.again, Some(Duration::from_secs(5)));
        let third = decide(
            &image(
                URL,
                Some(DataImageStatus {
                    attached_image: attached(URL).unwrap().attached_image,
                    ..second.status
                }),
                false,
            ),
            PROVISIONED,
            Some(&failed_cd),
            NOW,
        );
        assert_eq!(
            (third.status.error_count(), third.again),
            (3, Some(Duration::from_secs(8))),
            "backing off"
        );
        let done = decide(&image(URL, Some(again.status), false), PROVISIONED, Some(&cd(true)), NOW);
        assert_eq!(done.status.error, None);
    }

    #[test]
    fn an_attached_url_recorded_without_its_password_is_the_same_image() {
        let secret = "http://user:pw@images.example/data.iso";
        let look = decide(
            &image(secret, attached("http://***@images.example/data.iso"), false),
            PROVISIONED,
            Some(&cd(true)),
            NOW,
        );
        assert_eq!((look.step, look.status.error), (None, None));
    }

    #[test]
    fn a_new_url_detaches_the_old_image_first_without_a_spurious_error() {
        let new = "http://images.example/new.iso";
        let look = decide(&image(new, attached(URL), false), PROVISIONED, Some(&cd(true)), NOW);
        assert_eq!(look.step, Some(MediaStep::Detach));
        assert_eq!(look.status.attached_image, None);
        let next = decide(&image(new, Some(look.status), false), PROVISIONED, Some(&cd(false)), NOW);
        assert_eq!(next.step, Some(MediaStep::Attach(new.into())));
        assert_eq!(next.status.error, None);
    }

    #[test]
    fn a_deleted_image_is_detached_then_released() {
        let look = decide(&image(URL, attached(URL), true), PROVISIONED, Some(&cd(true)), NOW);
        assert_eq!((look.step, look.release), (Some(MediaStep::Detach), false));
        let gone = decide(&image(URL, attached(URL), true), PROVISIONED, Some(&cd(false)), NOW);
        assert_eq!((gone.step, gone.release), (None, true));
        assert!(decide(&image(URL, attached(URL), true), PROVISIONED, None, NOW).release, "no node, no CD");
    }

    #[test]
    fn a_live_image_on_the_cd_refuses_the_data_image_once() {
        let live = NodeMedia { live_on_cd: true, vmedia: None, ..cd(true) };
        assert!(!wants_vmedia(&image(URL, None, false), PROVISIONED, &live), "its CD is never read");
        let look = decide(&image(URL, None, false), PROVISIONED, Some(&live), NOW);
        assert_eq!((look.step, look.again), (None, None));
        assert_eq!(look.status.error.as_ref().map(|e| (e.count, e.message.as_str())), Some((1, CD_HELD)));
        let again = decide(&image(URL, Some(look.status.clone()), false), PROVISIONED, Some(&live), NOW);
        assert_eq!(
            (again.status, again.again),
            (look.status.clone(), None),
            "a standing refusal is not rewritten"
        );
        let deleted = decide(&image(URL, Some(look.status), true), PROVISIONED, Some(&live), NOW);
        assert_eq!((deleted.step, deleted.release), (None, true), "deleting never detaches the live image");
        // externally provisioned, the same node runs nothing Ironic booted
        assert!(wants_vmedia(&image(URL, None, false), ProvisioningState::ExternallyProvisioned, &live));
    }

    #[test]
    fn in_other_states_nothing_is_attached_and_the_cd_is_emptied_where_ironic_does_not() {
        let network = NodeMedia { vmedia_boot: false, ..cd(true) };
        for state in
            [ProvisioningState::Available, ProvisioningState::Provisioning, ProvisioningState::Deprovisioning]
        {
            let look = decide(&image(URL, None, false), state, Some(&cd(false)), NOW);
            assert_eq!(
                (look.step, look.again, look.status),
                (None, None, DataImageStatus::default()),
                "{state:?}"
            );
            // Ironic empties a virtual-media CD itself
            let vmedia = decide(&image(URL, attached(URL), true), state, Some(&cd(true)), NOW);
            assert_eq!((vmedia.step, vmedia.release), (None, true), "{state:?}");
            // it never touches the CD of a node it boots over the network: ejected first
            let kept = decide(&image(URL, attached(URL), false), state, Some(&network), NOW);
            assert_eq!(kept.status.attached_url(), URL, "{state:?}");
            let ejected = decide(&image(URL, attached(URL), true), state, Some(&network), NOW);
            assert_eq!((ejected.step, ejected.release), (Some(MediaStep::Detach), false), "{state:?}");
            let never = decide(&image(URL, None, true), state, Some(&network), NOW);
            assert!(never.release, "{state:?}: nothing was attached");
        }
    }

    #[test]
    fn a_bad_url_is_a_standing_error_naming_the_field_and_detaches_what_was_there() {
        let look =
            decide(&image("ftp://images.example/d.iso", None, false), PROVISIONED, Some(&cd(false)), NOW);
        assert_eq!((look.step, look.again), (None, None), "no look again for a refusal");
        let message = look.status.error.as_ref().unwrap().message.clone();
        assert!(message.starts_with("spec.url: scheme 'ftp'"), "{message}");
        let again = decide(
            &image("ftp://images.example/d.iso", Some(look.status.clone()), false),
            PROVISIONED,
            Some(&cd(false)),
            NOW,
        );
        assert_eq!(again.status, look.status);
        let was = decide(
            &image("ftp://images.example/d.iso", attached(URL), false),
            PROVISIONED,
            Some(&cd(true)),
            NOW,
        );
        assert_eq!(was.step, Some(MediaStep::Detach));
    }

    #[test]
    fn virtual_media_that_cannot_be_read_is_said_once_and_lets_a_deleted_image_go() {
        let ipmi = NodeMedia {
            unusable: Some("Ironic: 400 UnsupportedDriverExtension".into()),
            vmedia: None,
            ..cd(false)
        };
        let look = decide(&image(URL, None, false), PROVISIONED, Some(&ipmi), NOW);
        assert_eq!((look.step, look.again, look.status.error_count()), (None, None, 1));
        let again = decide(&image(URL, Some(look.status.clone()), false), PROVISIONED, Some(&ipmi), NOW);
        assert_eq!(again.status, look.status);
        assert!(decide(&image(URL, None, true), PROVISIONED, Some(&ipmi), NOW).release);
    }

    #[test]
    fn a_refused_step_counts_and_a_locked_node_is_only_waited_for() {
        let previous = DataImageStatus::default();
        let look = decide(&image(URL, None, false), PROVISIONED, Some(&cd(false)), NOW);
        let refused = step_failed(look.clone(), &previous, "Ironic: 400 bad image", false, NOW);
        assert_eq!(
            (refused.step, refused.status.attached_image.clone(), refused.status.error_count()),
            (None, None, 1)
        );
        let locked = step_failed(look, &previous, "Ironic: 409 node locked", true, NOW);
        assert_eq!((locked.step, locked.status, locked.again), (None, previous.clone(), Some(SETTLE)));
        let look = decide(&image(URL, None, false), PROVISIONED, Some(&cd(false)), NOW);
        let hidden = step_failed(look, &previous, "http://u:pw@h/x refused", false, NOW);
        assert!(!hidden.status.error.unwrap().message.contains("pw"));
    }
}
