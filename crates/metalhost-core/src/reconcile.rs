//! One reconcile of one host: observe Ironic, decide, act, and produce the new status. Runtimes
//! (standalone and Kubernetes) call this and only handle storage, timing and credentials.

use std::time::Duration;

use metalhost_api::host::{BareMetalHost, BareMetalHostStatus, ProvisioningState};
use metalhost_api::{BmcAccess, Credentials};
use tracing::{debug, warn};

use crate::machine::{self, Action, Input, Requeue, error_type_for};
use crate::plan::NodeDefaults;
use crate::provisioner::IronicProvisioner;

/// The BMC of a host as the runtime resolved it: the parsed address and the Secret's credentials,
/// or why they are not usable (None: the host has no `spec.bmc`).
pub type BmcInput = Option<Result<(BmcAccess, Credentials), String>>;

/// What one reconcile needs to know about a host, as the runtime sees it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The host.
    pub host: &'a BareMetalHost,
    /// Its BMC and credentials.
    pub bmc: &'a BmcInput,
    /// It is being deleted.
    pub deleting: bool,
    /// Its last status.
    pub previous: &'a BareMetalHostStatus,
    /// The current time, RFC 3339.
    pub now: &'a str,
    /// Its config drive, when it asks for one.
    pub config_drive: Option<&'a Result<serde_json::Value, String>>,
    /// Its credentials Secret changed since they last worked.
    pub credentials_changed: bool,
}

/// What one reconcile did.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The new status to store.
    pub status: BareMetalHostStatus,
    /// The action taken (`none` when only the status changed).
    pub action: String,
    /// When to reconcile again.
    pub requeue: Requeue,
    /// The host is out of Ironic and its record may be dropped.
    pub forget: bool,
    /// The states passed through, in order, ending with the new one (several when steps that
    /// need no Ironic call followed each other).
    pub states: Vec<ProvisioningState>,
}

/// Reconciles hosts against one Ironic.
#[derive(Debug, Clone)]
pub struct Reconciler {
    provisioner: IronicProvisioner,
    defaults: NodeDefaults,
}

impl Reconciler {
    /// A reconciler using this provisioner and these node defaults.
    pub fn new(provisioner: IronicProvisioner, defaults: NodeDefaults) -> Self {
        Reconciler { provisioner, defaults }
    }

    /// The provisioner.
    pub fn provisioner(&self) -> &IronicProvisioner {
        &self.provisioner
    }

    /// One step for one host. Never fails: every failure ends up in the returned status.
    pub async fn reconcile(&self, request: Request<'_>) -> Outcome {
        let Request { host, bmc, deleting, previous, now, config_drive, credentials_changed } = request;
        let bmc_ref = bmc.as_ref().map(|r| r.as_ref().map(|(a, c)| (a, c)).map_err(Clone::clone));
        let input = Input {
            host,
            bmc: bmc_ref,
            deleting,
            defaults: &self.defaults,
            now,
            config_drive,
            credentials_changed,
        };
        let needs_ironic = bmc.as_ref().is_some_and(|r| r.is_ok()) || deleting;
        let observed = if needs_ironic {
            let with_ports = previous.provisioning.state == ProvisioningState::Registering
                && host.spec.boot_mac_address.is_some();
            let with_vmedia = previous.provisioning.state == ProvisioningState::Provisioned
                && bmc
                    .as_ref()
                    .is_some_and(|r| r.as_ref().is_ok_and(|(a, _)| a.kind.boots_iso_by_virtual_media()))
                && (metalhost_api::extensions::live_iso_options(host).is_ok_and(|o| o.eject_media)
                    || machine::media_ejected(previous));
            match self.provisioner.observe(host, &previous.provisioning.id, with_ports, with_vmedia).await {
                Ok(o) => o,
                Err(e) => {
                    let mut decided = previous.clone();
                    decided.last_updated = Some(now.to_string());
                    let state = previous.provisioning.state;
                    let (status, requeue) = machine::failed(
                        previous,
                        &decided,
                        error_type_for(state, &Action::None),
                        e.to_string(),
                    );
                    warn!(host = %host.qualified_name(), error = %e, "cannot observe Ironic node");
                    let states = vec![status.provisioning.state];
                    return Outcome { status, action: "observe".into(), requeue, forget: false, states };
                }
            }
        } else {
            Default::default()
        };
        let mut decision = machine::decide(&input, previous, &observed);
        // Steps that only change the status (registering → preparing → available → provisioning)
        // follow at once on the same observation: no Ironic request between them.
        let mut base = previous.clone();
        let mut states = vec![decision.status.provisioning.state];
        while decision.action == Action::None && decision.requeue == Requeue::Now && states.len() < 8 {
            let next = machine::decide(&input, &decision.status, &observed);
            base = std::mem::replace(&mut decision, next).status;
            states.push(decision.status.provisioning.state);
        }
        states.dedup();
        let action_name = decision.action.name();
        debug!(host = %host.qualified_name(), state = %decision.status.provisioning.state, action = %action_name, "decided");
        match self.provisioner.execute(&decision.action, observed.node.as_ref()).await {
            Ok(node) => {
                let mut status = decision.status;
                if let Some(node) = node {
                    status.provisioning.id = node.uuid;
                }
                let forget = decision.action == Action::Forget;
                Outcome { status, action: action_name, requeue: decision.requeue, forget, states }
            }
            Err(e) => {
                let error_type = error_type_for(decision.status.provisioning.state, &decision.action);
                let message = format!("{action_name}: {e}");
                warn!(host = %host.qualified_name(), error = %message, "action failed");
                let (status, requeue) = machine::failed(&base, &decision.status, error_type, message);
                Outcome { status, action: action_name, requeue, forget: false, states }
            }
        }
    }
}

/// Whether a status changed in anything but its `lastUpdated` time: only then is it worth writing.
pub fn status_changed(before: &BareMetalHostStatus, after: &BareMetalHostStatus) -> bool {
    let mut a = before.clone();
    a.last_updated.clone_from(&after.last_updated);
    a != *after
}

/// How long to wait before polling a busy node again: quick at first, slower the longer the
/// operation runs (`waited` is how long this host has been polling).
pub fn poll_interval(waited: Duration) -> Duration {
    match waited.as_secs() {
        0..=2 => Duration::from_millis(250),
        3..=10 => Duration::from_secs(1),
        11..=60 => Duration::from_secs(2),
        _ => Duration::from_secs(5),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_timestamp_changing_is_no_change() {
        let before = BareMetalHostStatus { last_updated: Some("t1".into()), ..Default::default() };
        let mut after = BareMetalHostStatus { last_updated: Some("t2".into()), ..Default::default() };
        assert!(!status_changed(&before, &after));
        after.error_count = 1;
        assert!(status_changed(&before, &after));
    }
}
