//! The host state machine (pure): given the host, its last status and the observed Ironic node,
//! decide the new status and the one Ironic action to take next. No I/O, no clock: the caller
//! passes `now` and carries out the action.

use metalhost_api::extensions::LiveIsoOptions;
use metalhost_api::host::*;
use metalhost_api::text::Redacted;
use metalhost_api::{BmcAccess, Credentials, DeployImage};

use metalhost_ironic::{Node, PowerTarget, ProvisionState as Ironic, ProvisionTarget};
use serde_json::{Map, Value};

use std::collections::BTreeMap;

use metalhost_api::firmware::SettingValue;

use crate::error::DecideError;
use crate::firmware;
use crate::input::{Bmc, HostInput};
use crate::plan::{self, NodeDefaults};
use crate::policy::backoff;
use crate::vocab::{
    Action, BMC_REACHABLE_CONDITION, BmcReach, MEDIA_INSERTED_CONDITION, Observed, Requeue, media_ejected,
};

/// Condition type set on live-ISO hosts whose spec has fields a live ISO does not use.
pub const IGNORED_FIELDS_CONDITION: &str = "LiveISOIgnoredFields";

/// What the decision needs besides the status and the node.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// The host's resolved input (image, options, BMC, config drive, deletion).
    pub record: &'a HostInput,
    /// The host as the user wrote it (`record.host`).
    pub host: &'a BareMetalHost,
    /// Operator-wide node settings.
    pub defaults: &'a NodeDefaults,
    /// The current time, RFC 3339.
    pub now: &'a str,
    /// The credentials Secret changed since the credentials last worked: send them to Ironic
    /// again (registration runs again; a provisioned host stays provisioned). See
    /// [`crate::policy::credentials_changed`].
    pub credentials_changed: bool,
}

impl<'a> Input<'a> {
    /// The decision input for a resolved host.
    pub fn new(
        record: &'a HostInput,
        defaults: &'a NodeDefaults,
        now: &'a str,
        credentials_changed: bool,
    ) -> Self {
        Input { record, host: &record.host, defaults, now, credentials_changed }
    }
}

/// The outcome of [`decide`].
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The status once the action has succeeded.
    pub status: BareMetalHostStatus,
    /// What to do.
    pub action: Action,
    /// When to look again.
    pub requeue: Requeue,
    /// Why the host cannot go on, when it cannot (also recorded in the status).
    pub error: Option<DecideError>,
}

/// The error type of a failure in `state` (power actions are power management errors).
pub fn error_type_for(state: ProvisioningState, action: &Action) -> ErrorType {
    if matches!(action, Action::Power(_)) {
        return ErrorType::PowerManagement;
    }
    match state {
        ProvisioningState::None | ProvisioningState::Unmanaged | ProvisioningState::Registering => {
            ErrorType::Registration
        }
        ProvisioningState::Inspecting => ErrorType::Inspection,
        ProvisioningState::Preparing => ErrorType::Preparation,
        _ => ErrorType::Provisioning,
    }
}

/// The status after a failed step: `decided` (what it would have been) with the error recorded
/// and the error count one more than `previous`'s. The message is [`Redacted`] (no URL
/// userinfo; bounded, so that an error quoting a huge field from Ironic leaves the status
/// readable).
pub fn failed(
    previous: &BareMetalHostStatus,
    decided: &BareMetalHostStatus,
    error_type: ErrorType,
    message: Redacted,
) -> (BareMetalHostStatus, Requeue) {
    let mut status = decided.clone();
    status.operational_status = OperationalStatus::Error;
    status.error_type = Some(error_type);
    status.error_message = message.into_string();
    status.error_count = previous.error_count.saturating_add(1);
    let requeue = Requeue::Backoff(backoff(status.error_count));
    (status, requeue)
}

/// The status after `decided`'s Ironic request failed: as [`failed`], and an operation that
/// request would have opened (its start recorded by this decision) has not started. The next
/// look sends it again: an Inspect refused with 409 (node locked) is not an inspection over.
/// A request that timed out may have been taken all the same; then the next look finds the node
/// busy and waits, or at worst sends it once more (a second inspection), which is better than
/// taking an operation that never began for one that is over.
pub fn action_failed(
    previous: &BareMetalHostStatus,
    decided: &BareMetalHostStatus,
    error_type: ErrorType,
    message: Redacted,
) -> (BareMetalHostStatus, Requeue) {
    let (mut status, requeue) = failed(previous, decided, error_type, message);
    let (now, before) = (&mut status.operation_history, &previous.operation_history);
    for (metric, was) in [
        (&mut now.register, &before.register),
        (&mut now.inspect, &before.inspect),
        (&mut now.provision, &before.provision),
        (&mut now.deprovision, &before.deprovision),
    ] {
        if metric.start != was.start {
            metric.clone_from(was);
        }
    }
    (status, requeue)
}

struct Step<'a> {
    input: &'a Input<'a>,
    previous: &'a BareMetalHostStatus,
    observed: &'a Observed,
    status: BareMetalHostStatus,
}

impl Step<'_> {
    /// Progress: the error (if any) is cleared. The error count stays until the host reaches
    /// another state, so that a step failing over and over backs off further each time.
    fn ok(mut self, action: Action, requeue: Requeue) -> Decision {
        self.status.operational_status = OperationalStatus::Ok;
        self.status.error_type = None;
        self.status.error_message.clear();
        Decision { status: self.status, action, requeue, error: None }
    }

    fn goto(mut self, state: ProvisioningState) -> Decision {
        if state != self.previous.provisioning.state {
            self.status.error_count = 0;
        }
        self.status.provisioning.state = state;
        self.ok(Action::None, Requeue::Now)
    }

    fn wait(self) -> Decision {
        self.ok(Action::None, Requeue::Poll)
    }

    /// Records an error Ironic or the input reported, without acting; the next look retries.
    fn error(self, error_type: ErrorType, error: impl Into<DecideError>) -> Decision {
        let error = error.into();
        let (status, requeue) =
            failed(self.previous, &self.status, error_type, Redacted::new(&error.to_string()));
        Decision { status, action: Action::None, requeue, error: Some(error) }
    }

    /// First sight of a failed Ironic operation: record it. Once recorded (and backed off): retry.
    fn failed_then_retry(self, error_type: ErrorType, what: &str, node: &Node, retry: Action) -> Decision {
        if self.previous.error_type.is_none() {
            let reason = node.last_error.clone().unwrap_or_else(|| "no reason given by Ironic".into());
            let mut step = self;
            if error_type == ErrorType::Provisioning && what.starts_with("provisioning") {
                step.status.provisioning_fail_count = step.status.provisioning_fail_count.saturating_add(1);
            }
            return step.error(error_type, DecideError::OperationFailed { operation: what.into(), reason });
        }
        // keep showing the error while the retry runs; the count keeps growing if it fails again
        let mut status = self.status;
        status.error_count = self.previous.error_count;
        Decision { status, action: retry, requeue: Requeue::Poll, error: None }
    }
}

/// Whether two images deploy the same thing (URL, format and checksum).
fn same_image(a: &Image, b: &Image) -> bool {
    a.url == b.url && a.format == b.format && a.checksum == b.checksum && a.checksum_type == b.checksum_type
}

fn set_ignored_fields_condition(status: &mut BareMetalHostStatus, input: &Input<'_>) {
    let host = input.host;
    let live = host
        .spec
        .image
        .as_ref()
        .is_some_and(|i| matches!(i.format, Some(ImageFormat::LiveIso | ImageFormat::LiveKernel)));
    let mut ignored = Vec::new();
    if live && host.spec.root_device_hints.is_some() {
        ignored.push("rootDeviceHints");
    }
    let drive = input.record.options.as_ref().is_ok_and(|o| o.config_drive);
    if live && host.spec.user_data.is_some() && !drive {
        ignored.push("userData");
    }
    let message = (!ignored.is_empty()).then(|| {
        format!("{} not used: a live ISO boots as it is, nothing is written to disk", ignored.join(" and "))
    });
    put_condition(status, IGNORED_FIELDS_CONDITION, "LiveISO", message, input);
}

/// Sets a True condition of this type with this message (kept as it is when the message is the
/// same), or removes it when there is no message.
fn put_condition(
    status: &mut BareMetalHostStatus,
    type_: &str,
    reason: &str,
    message: Option<String>,
    input: &Input<'_>,
) {
    let existing = status.conditions.iter().position(|c| c.type_ == type_);
    let Some(message) = message else {
        if let Some(i) = existing {
            status.conditions.remove(i);
        }
        return;
    };
    let condition = Condition {
        type_: type_.into(),
        status: "True".into(),
        reason: reason.into(),
        message,
        last_transition_time: input.now.into(),
        observed_generation: input.host.metadata.generation,
    };
    match existing {
        Some(i) if status.conditions[i].message == condition.message => {}
        Some(i) => status.conditions[i] = condition,
        None => status.conditions.push(condition),
    }
}

/// Condition type set on a provisioned host whose `metalhost.io/*` settings differ from what the
/// running deployment has and take effect only at its next deploy.
pub const PENDING_CONDITION: &str = "PendingUntilNextDeploy";

/// Which of the host's extension settings the running deployment does not have: the BMC's own
/// ISO download, the config drive, a live kernel's initramfs and arguments. (Boot-device
/// persistence and eject apply to the running host; a reprovision token deploys again.)
fn set_pending_condition(status: &mut BareMetalHostStatus, input: &Input<'_>, node: &Node) {
    use metalhost_api::extensions::{CONFIG_DRIVE_ANNOTATION, ISO_DOWNLOAD_SOURCE_ANNOTATION};
    let options = input.record.options_or_default();
    let mut pending = Vec::new();
    match &input.record.image {
        Some(Ok(DeployImage::LiveIso { .. })) => {
            if node.instance_str(plan::DOWNLOAD_SOURCE_KEY) != options.download_source.map(|s| s.as_str()) {
                pending.push(ISO_DOWNLOAD_SOURCE_ANNOTATION);
            }
            if options.config_drive != node.instance_info.contains_key("configdrive") {
                pending.push(CONFIG_DRIVE_ANNOTATION);
            }
        }
        Some(Ok(image @ DeployImage::LiveKernel { .. })) if !plan::instance_matches(node, image) => {
            pending.push("metalhost.io/initramfs-url or metalhost.io/kernel-arguments");
        }
        _ => {}
    }
    let message = (!pending.is_empty()).then(|| {
        format!(
            "{}: take effect at the next deploy (set or change metalhost.io/reprovision to deploy again now)",
            pending.join(", ")
        )
    });
    put_condition(status, PENDING_CONDITION, "NextDeploy", message, input);
}

/// Decides the next step for a host. Pure: the same inputs always give the same decision.
pub fn decide(input: &Input<'_>, previous: &BareMetalHostStatus, observed: &Observed) -> Decision {
    if previous.provisioning.state == ProvisioningState::Unknown && !input.record.deleting {
        return left_as_it_is(previous);
    }
    let mut status = previous.clone();
    if status.operational_status == OperationalStatus::Unknown {
        status.operational_status = OperationalStatus::Ok;
    }
    status.last_updated = Some(input.now.to_string());
    set_ignored_fields_condition(&mut status, input);
    if let Some(node) = &observed.node {
        status.provisioning.id = node.uuid.clone();
        status.powered_on = node.powered_on();
    }
    let mut step = Step { input, previous, observed, status };

    // A new host may carry a status to restore (upstream's status annotation), e.g. one moved
    // from another cluster: its history says what need not be done again (inspection).
    if previous.provisioning.state == ProvisioningState::None
        && previous.operation_history == OperationHistory::default()
        && let Some(raw) = input.host.annotations().get(STATUS_ANNOTATION)
    {
        return restore_status(step, raw);
    }
    if input.record.deleting {
        // a host in a state this build does not know leaves all the same, through deletion's own
        if step.status.provisioning.state == ProvisioningState::Unknown {
            step.status.provisioning.state = ProvisioningState::Deleting;
        }
        return delete(step, observed.node.as_ref());
    }
    hardware_from_annotation(&mut step);
    let Bmc::Ready { access, credentials, .. } = &input.record.bmc else {
        return without_bmc(step);
    };
    if input.credentials_changed
        && !matches!(
            previous.provisioning.state,
            ProvisioningState::None
                | ProvisioningState::Unmanaged
                | ProvisioningState::Registering
                | ProvisioningState::Deleting
                | ProvisioningState::PoweringOffBeforeDelete
        )
    {
        return resend_credentials(step, access, credentials);
    }
    by_state(step, access, credentials)
}

/// The status from upstream's status annotation, taken as the host's own (or why it cannot be).
fn restore_status(mut step: Step<'_>, raw: &str) -> Decision {
    match serde_json::from_str::<BareMetalHostStatus>(raw) {
        Ok(restored) if restored.provisioning.state == ProvisioningState::Unknown => step.error(
            ErrorType::Registration,
            DecideError::StatusAnnotation("its provisioning state is not one metalhost knows".into()),
        ),
        Ok(mut restored) => {
            restored.last_updated = Some(step.input.now.to_string());
            // written by someone else: no URL userinfo from it in this host's status
            restored.error_message = Redacted::new(&restored.error_message).into_string();
            step.status = restored;
            step.ok(Action::None, Requeue::Now)
        }
        Err(e) => step.error(ErrorType::Registration, DecideError::StatusAnnotation(e.to_string())),
    }
}

/// A host whose BMC is absent (unmanaged, or an error once registered) or unusable.
fn without_bmc(mut step: Step<'_>) -> Decision {
    let state = step.previous.provisioning.state;
    match &step.input.record.bmc {
        Bmc::Absent if matches!(state, ProvisioningState::None | ProvisioningState::Unmanaged) => {
            step.status.provisioning.state = ProvisioningState::Unmanaged;
            step.ok(Action::None, Requeue::Idle)
        }
        Bmc::Absent | Bmc::Ready { .. } => {
            step.error(error_type_for(state, &Action::None), DecideError::BmcRequired)
        }
        Bmc::Unusable(problem) => {
            let error_type = match state {
                ProvisioningState::None | ProvisioningState::Unmanaged => {
                    step.status.provisioning.state = ProvisioningState::Registering;
                    ErrorType::Registration
                }
                ProvisioningState::Provisioned | ProvisioningState::ExternallyProvisioned => {
                    ErrorType::ProvisionedRegistration
                }
                _ => ErrorType::Registration,
            };
            step.error(error_type, problem.clone())
        }
    }
}

/// The credentials changed on a registered host: send them with the move back to registering.
/// Once there, registration completes as usual and the runtime records them as good.
fn resend_credentials(mut step: Step<'_>, access: &BmcAccess, credentials: &Credentials) -> Decision {
    let node = step.observed.node.as_ref();
    // Ironic refuses to update a node in the middle of a state transition (409): a busy node
    // gets the new credentials once it rests (upstream retries the same way, not an error)
    if node.is_some_and(Node::is_settling) {
        return step.wait();
    }
    step.status.provisioning.state = ProvisioningState::Registering;
    let action = match node {
        Some(node) => {
            let desired = desired_fields(step.input, access, credentials);
            Action::Patch(plan::registration_patch(node, &desired, true))
        }
        None => Action::None,
    };
    step.ok(action, Requeue::Now)
}

/// The step of a host with a usable BMC, by the state it is in. States that act on the node get
/// it by construction; a node that vanished from Ironic (deleted by hand, Ironic database reset)
/// is registered again.
fn by_state(mut step: Step<'_>, access: &BmcAccess, credentials: &Credentials) -> Decision {
    let observed = step.observed;
    match (step.previous.provisioning.state, observed.node.as_ref()) {
        (ProvisioningState::None | ProvisioningState::Unmanaged, _) => {
            step.status.operation_history.register =
                OperationMetric { start: Some(step.input.now.into()), end: None };
            step.goto(ProvisioningState::Registering)
        }
        (ProvisioningState::Registering, node) => register(step, node, access, credentials, observed),
        (ProvisioningState::Unknown, _) => left_as_it_is(step.previous),
        (_, None) => {
            step.status.provisioning.id.clear();
            step.status.provisioning.state = ProvisioningState::Registering;
            step.ok(Action::None, Requeue::Now)
        }
        (ProvisioningState::Inspecting, Some(node)) => inspect(step, node),
        (ProvisioningState::Preparing | ProvisioningState::MatchProfile, Some(node)) => prepare(step, node),
        (ProvisioningState::Available | ProvisioningState::Ready, Some(node)) => {
            let desired = desired_fields(step.input, access, credentials);
            available(step, node, &desired)
        }
        (ProvisioningState::Provisioning, Some(node)) => {
            let desired = desired_fields(step.input, access, credentials);
            provision(step, node, &desired)
        }
        (ProvisioningState::Provisioned, Some(node)) => {
            let desired = desired_fields(step.input, access, credentials);
            provisioned(step, node, &desired)
        }
        (ProvisioningState::Deprovisioning, Some(node)) => deprovision(step, node),
        (ProvisioningState::ExternallyProvisioned, Some(node)) => externally_provisioned(step, node),
        (ProvisioningState::PoweringOffBeforeDelete | ProvisioningState::Deleting, Some(_)) => {
            // deletion was called off: start over
            step.goto(ProvisioningState::Registering)
        }
    }
}

/// Upstream's `inspect.metal3.io/hardwaredetails`: hardware details given by hand become
/// `status.hardware` when inspection is disabled and the status has none yet. Admission refuses
/// one that does not decode or comes with inspection enabled; one that slipped past is not used.
fn hardware_from_annotation(step: &mut Step<'_>) {
    let host = step.input.host;
    if !host.inspection_disabled() || step.status.hardware.is_some() {
        return;
    }
    let given = host.annotations().get(metalhost_api::validation::HARDWARE_DETAILS_ANNOTATION);
    if let Some(details) = given.and_then(|raw| serde_json::from_str::<HardwareDetails>(raw).ok()) {
        step.status.hardware = Some(details);
    }
}

/// A host in a state this build does not know (a newer upstream's, or one written by hand): its
/// status is not touched (the state is kept as written) and nothing is done until it changes.
fn left_as_it_is(previous: &BareMetalHostStatus) -> Decision {
    Decision { status: previous.clone(), action: Action::None, requeue: Requeue::Idle, error: None }
}

/// The node fields the host asks for (what registration keeps in line on an existing node).
fn desired_fields(input: &Input<'_>, access: &BmcAccess, credentials: &Credentials) -> Map<String, Value> {
    plan::without_assumed_arch(input.host, create_fields(input, access, credentials))
}

/// The fields of a new node (the desired ones, and the controller's architecture when the host
/// names none, as upstream).
fn create_fields(input: &Input<'_>, access: &BmcAccess, credentials: &Credentials) -> Map<String, Value> {
    plan::node_create_fields(
        input.host,
        &input.record.options_or_default(),
        access,
        credentials,
        input.defaults,
    )
}

fn register(
    mut step: Step<'_>,
    node: Option<&Node>,
    access: &BmcAccess,
    credentials: &Credentials,
    observed: &Observed,
) -> Decision {
    let input = step.input;
    let desired = desired_fields(input, access, credentials);
    let Some(node) = node else {
        // an extension annotation that cannot work (a config drive on a BMC that cannot attach
        // one, say) is refused before anything is created in Ironic
        if let Err(e) = &input.record.options {
            return step.error(ErrorType::Registration, e.clone());
        }
        if step.status.operation_history.register.start.is_none() {
            step.status.operation_history.register.start = Some(input.now.into());
        }
        return step.ok(Action::CreateNode(create_fields(input, access, credentials)), Requeue::Now);
    };
    if let (Some(mac), Some(macs)) = (&input.host.spec.boot_mac_address, &observed.port_macs) {
        let mac = mac.to_ascii_lowercase();
        if !macs.contains(&mac) {
            return step.ok(Action::CreatePort(mac), Requeue::Now);
        }
    }
    note_bmc_reach(&mut step, access, observed);
    if node.is_settling() {
        return step.wait();
    }
    if node.provision_state == Ironic::Enroll && node.last_error.is_some() {
        return verify_failed(step, node, &desired);
    }
    let patch = plan::registration_patch(node, &desired, false);
    if !patch.0.is_empty() {
        return step.ok(Action::Patch(patch), Requeue::Now);
    }
    match &node.provision_state {
        Ironic::Enroll => step.ok(Action::Provision(ProvisionTarget::Manage), Requeue::Poll),
        Ironic::Manageable | Ironic::Available | Ironic::Active => registered(step, node),
        // a node in a failed state from an earlier life: bring it to manageable
        Ironic::CleanFailed | Ironic::InspectFailed | Ironic::AdoptFailed => {
            step.ok(Action::Provision(ProvisionTarget::Manage), Requeue::Poll)
        }
        Ironic::DeployFailed | Ironic::DeployWait => {
            step.ok(Action::Provision(ProvisionTarget::Deleted), Requeue::Poll)
        }
        // under way (or a state metalhost does not act on): wait for Ironic
        #[rustfmt::skip]
        Ironic::Verifying | Ironic::Inspecting | Ironic::InspectWait | Ironic::Cleaning
            | Ironic::CleanWait | Ironic::Deploying | Ironic::Deleting | Ironic::Adopting
            | Ironic::ServiceFailed | Ironic::RescueFailed | Ironic::Error
            | Ironic::Other(_) => step.wait(),
    }
}

/// Ironic could not verify the node's settings (a wrong password, system ID or address). First
/// sight: the error is recorded, and the host backs off. Once recorded (after the back-off, or at
/// once when the host or its Secret changed, which wakes it): the settings go to Ironic again,
/// secrets too, and Ironic verifies them again (upstream registers again the same way). The error
/// stays shown until the next look finds Ironic verifying; a failure again is recorded with a
/// longer back-off, a success moves the host on.
fn verify_failed(step: Step<'_>, node: &Node, desired: &Map<String, Value>) -> Decision {
    if step.previous.error_type.is_none() {
        let reason = node.last_error.clone().unwrap_or_default();
        return step.error(ErrorType::Registration, DecideError::ManageFailed(reason));
    }
    let mut status = step.status;
    status.error_count = step.previous.error_count;
    let patch = plan::registration_patch(node, desired, true);
    Decision { status, action: Action::Reverify(patch), requeue: Requeue::Poll, error: None }
}

/// What metalhost found at the BMC's port while Ironic verifies the node: a refusal shows at once
/// as the `BMCReachable` condition (False, naming the address looked at), long before Ironic's
/// retries give up. It shows only while the latest look found the port refusing: a port that
/// answers, a look that concludes nothing, a verify that ended (Ironic's own error or success
/// then speaks) or another address take it away.
fn note_bmc_reach(step: &mut Step<'_>, access: &BmcAccess, observed: &Observed) {
    let verifying = observed.node.as_ref().is_some_and(|n| n.provision_state == Ironic::Verifying);
    let message =
        format!("the BMC at {} refuses connections; Ironic is still trying to verify it", access.authority);
    match observed.bmc_reach {
        // still verifying, not looked at this time (within the first seconds): kept as it is
        None if verifying => {}
        Some(BmcReach::Refuses) => {
            // another address than the one told: told afresh
            step.status.conditions.retain(|c| c.type_ != BMC_REACHABLE_CONDITION || c.message == message);
            let now = step.input.now;
            set_condition(
                &mut step.status,
                BMC_REACHABLE_CONDITION,
                false,
                "ConnectionRefused",
                &message,
                now,
            );
        }
        Some(BmcReach::Accepts | BmcReach::Unknown) | None => {
            step.status.conditions.retain(|c| c.type_ != BMC_REACHABLE_CONDITION)
        }
    }
}

/// Registration is done (the node is manageable, available or even active): where the host goes
/// from here.
fn registered(mut step: Step<'_>, node: &Node) -> Decision {
    let input = step.input;
    step.status.operation_history.register.end = Some(input.now.into());
    step.status.conditions.retain(|c| c.type_ != BMC_REACHABLE_CONDITION);
    let host = input.host;
    let next = if host.spec.externally_provisioned {
        ProvisioningState::ExternallyProvisioned
    } else if node.provision_state == Ironic::Active {
        // already deployed (e.g. the status was lost): take it back as provisioned
        // only if it runs what the spec asks for, else undo it
        match &input.record.image {
            Some(Ok(image)) if plan::instance_matches(node, image) => {
                step.status.provisioning.image = host.spec.image.clone();
                ProvisioningState::Provisioned
            }
            _ => ProvisioningState::Deprovisioning,
        }
    } else if !host.inspection_disabled()
        && node.provision_state == Ironic::Manageable
        && step.status.operation_history.inspect.end.is_none()
    {
        // an inspection started before (and failed, or the node vanished) is started afresh:
        // `inspect` reads a start with a manageable node as an inspection that is over
        step.status.operation_history.inspect = OperationMetric::default();
        ProvisioningState::Inspecting
    } else {
        ProvisioningState::Preparing
    };
    step.goto(next)
}

fn inspect(mut step: Step<'_>, node: &Node) -> Decision {
    if step.input.host.inspection_disabled() {
        return stop_inspecting(step, node);
    }
    if node.is_busy() {
        return step.wait();
    }
    let now = step.input.now;
    match &node.provision_state {
        // a node made available (by an earlier deploy) is inspected from manageable, as upstream
        Ironic::Available if step.status.operation_history.inspect.start.is_none() => {
            step.ok(Action::Provision(ProvisionTarget::Manage), Requeue::Poll)
        }
        Ironic::Manageable if step.status.operation_history.inspect.start.is_none() => {
            step.status.operation_history.inspect = OperationMetric { start: Some(now.into()), end: None };
            step.ok(Action::Provision(ProvisionTarget::Inspect), Requeue::Poll)
        }
        Ironic::Manageable => {
            step.status.operation_history.inspect.end = Some(now.into());
            // upstream fills status.hardware from the inventory (and HardwareData in Kubernetes)
            if let Some(inventory) = &step.observed.inventory {
                step.status.hardware = Some(crate::hardware::details(inventory));
                step.status.hardware_profile.get_or_insert_with(|| "unknown".into());
            }
            step.goto(ProvisioningState::Preparing)
        }
        Ironic::InspectFailed => step.failed_then_retry(
            ErrorType::Inspection,
            "inspection",
            node,
            Action::Provision(ProvisionTarget::Inspect),
        ),
        // not busy and past inspection (or never to be inspected here): preparing sorts it out
        #[rustfmt::skip]
        Ironic::Enroll | Ironic::Verifying | Ironic::Inspecting | Ironic::InspectWait
            | Ironic::Cleaning | Ironic::CleanWait | Ironic::CleanFailed | Ironic::Available
            | Ironic::Deploying | Ironic::DeployWait | Ironic::DeployFailed | Ironic::Active
            | Ironic::Deleting | Ironic::Adopting | Ironic::AdoptFailed | Ironic::ServiceFailed
            | Ironic::RescueFailed | Ironic::Error
            | Ironic::Other(_) => step.goto(ProvisioningState::Preparing),
    }
}

/// Inspection disabled while the host inspects (a failing inspection retries for ever otherwise):
/// a node waiting for the agent is told to abort, a failed one goes back to `manageable`, one
/// that inspects out of band is waited for; then the host prepares, its inspection error gone.
fn stop_inspecting(mut step: Step<'_>, node: &Node) -> Decision {
    match &node.provision_state {
        Ironic::InspectWait => step.ok(Action::Provision(ProvisionTarget::Abort), Requeue::Poll),
        Ironic::InspectFailed => step.ok(Action::Provision(ProvisionTarget::Manage), Requeue::Poll),
        _ if node.is_busy() => step.wait(),
        _ => {
            step.status.operation_history.inspect.end.get_or_insert_with(|| step.input.now.into());
            step.goto(ProvisioningState::Preparing)
        }
    }
}

/// BIOS settings the host's HostFirmwareSettings asks for that the machine does not have yet (all
/// of them when its BIOS was not read).
fn bios_pending(step: &Step<'_>) -> BTreeMap<String, SettingValue> {
    let wanted = &step.input.record.firmware_settings;
    match &step.observed.bios {
        Some(reported) => firmware::not_yet_applied(wanted, reported),
        None => wanted.clone(),
    }
}

/// Preparing, as upstream's: BIOS settings waiting (valid, for the current spec) are applied by
/// a manual clean of the manageable node (`bios.apply_configuration`), then the host is
/// available; with nothing to apply it is available at once. A clean under way or failed is seen
/// through whatever the settings say meanwhile.
fn prepare(step: Step<'_>, node: &Node) -> Decision {
    if node.is_busy() {
        return step.wait();
    }
    let wanted = !step.input.record.firmware_settings.is_empty();
    match &node.provision_state {
        // Ironic puts a node whose clean failed in maintenance, and cleans none in maintenance
        Ironic::CleanFailed => {
            let retry = match node.maintenance {
                true => Action::Patch(plan::maintenance_patch(false)),
                false => Action::Provision(ProvisionTarget::Manage),
            };
            step.failed_then_retry(ErrorType::Preparation, "preparing", node, retry)
        }
        Ironic::Enroll => step.goto(ProvisioningState::Registering),
        _ if !wanted => step.goto(ProvisioningState::Available),
        Ironic::Available => step.ok(Action::Provision(ProvisionTarget::Manage), Requeue::Poll),
        // its BIOS is read at the next look (the host came here on this one)
        Ironic::Manageable if step.observed.bios.is_none() => step.ok(Action::None, Requeue::Poll),
        Ironic::Manageable => match bios_pending(&step) {
            pending if pending.is_empty() => step.goto(ProvisioningState::Available),
            pending => {
                // the Redfish family's BIOS steps need no agent (upstream boots it anyway)
                let disable_ramdisk = matches!(node.driver.as_str(), "redfish" | "idrac");
                step.ok(
                    Action::Clean { steps: firmware::clean_steps(&pending), disable_ramdisk },
                    Requeue::Poll,
                )
            }
        },
        _ => step.wait(),
    }
}

fn available(mut step: Step<'_>, node: &Node, desired: &Map<String, Value>) -> Decision {
    let host = step.input.host;
    if host.spec.externally_provisioned {
        return step.goto(ProvisioningState::ExternallyProvisioned);
    }
    if host.reinspection_requested() {
        // upstream's re-inspection: afresh, whatever an earlier inspection found
        step.status.operation_history.inspect = OperationMetric::default();
        return step.goto(ProvisioningState::Inspecting);
    }
    // upstream's: changed firmware settings are applied in preparing
    if !bios_pending(&step).is_empty() && !node.is_busy() {
        return step.goto(ProvisioningState::Preparing);
    }
    // settings changed while the host waits (its BMC's address or scheme, persistence, cleaning):
    // into Ironic now, as upstream registers again (secrets go when the Secret changes)
    let patch = plan::registration_patch(node, desired, false);
    if !patch.0.is_empty() && !node.is_settling() {
        return step.ok(Action::Patch(patch), Requeue::Poll);
    }
    match &step.input.record.image {
        // as upstream's actionManageAvailable: until there is something to provision, the
        // host's power follows spec.online
        None => manage_power(step, node),
        Some(Err(e)) => step.error(ErrorType::Provisioning, e.clone()),
        Some(Ok(_)) => {
            let now = step.input.now;
            step.status.operation_history.provision = OperationMetric { start: Some(now.into()), end: None };
            step.status.last_attempted_image = host.spec.image.clone();
            step.goto(ProvisioningState::Provisioning)
        }
    }
}

fn provision(mut step: Step<'_>, node: &Node, desired: &Map<String, Value>) -> Decision {
    let host = step.input.host;
    let image = match &step.input.record.image {
        None => return start_deprovisioning(step),
        Some(Err(e)) => return step.error(ErrorType::Provisioning, e.clone()),
        Some(Ok(image)) => image,
    };
    let options = match &step.input.record.options {
        Ok(o) => *o,
        Err(e) => return step.error(ErrorType::Provisioning, e.clone()),
    };
    if host.spec.image != step.status.last_attempted_image {
        step.status.last_attempted_image = host.spec.image.clone();
    }
    let matches = plan::instance_matches(node, image);
    match &node.provision_state {
        Ironic::Deploying | Ironic::DeployWait | Ironic::Active if !matches && !node.blocks_undeploy() => {
            // the spec changed while deploying: undo, then deploy the new image
            start_deprovisioning(step)
        }
        _ if node.is_settling() => step.wait(),
        Ironic::Manageable => {
            let want_clean = host.automated_cleaning();
            if node.automated_clean != Some(want_clean) {
                let patch = serde_json::from_value(serde_json::json!([
                    {"op": "add", "path": "/automated_clean", "value": want_clean}
                ]))
                .expect("well-formed patch");
                return step.ok(Action::Patch(patch), Requeue::Now);
            }
            step.ok(Action::Provision(ProvisionTarget::Provide), Requeue::Poll)
        }
        Ironic::Available => deploy(step, node, desired, image, options),
        Ironic::Active => {
            let now = step.input.now;
            step.status.operation_history.provision.end = Some(now.into());
            step.status.provisioning.image = host.spec.image.clone();
            step.status.provisioning.boot_mode = host.spec.boot_mode;
            step.status.provisioning.root_device_hints = host.spec.root_device_hints.clone();
            step.goto(ProvisioningState::Provisioned)
        }
        Ironic::DeployFailed => step.failed_then_retry(
            ErrorType::Provisioning,
            "provisioning",
            node,
            Action::Provision(ProvisionTarget::Deleted),
        ),
        Ironic::CleanFailed => step.failed_then_retry(
            ErrorType::Provisioning,
            "cleaning before provisioning",
            node,
            Action::Provision(ProvisionTarget::Manage),
        ),
        Ironic::Enroll => step.goto(ProvisioningState::Registering),
        #[rustfmt::skip]
        Ironic::Verifying | Ironic::Inspecting | Ironic::InspectWait | Ironic::InspectFailed
            | Ironic::Cleaning | Ironic::CleanWait | Ironic::Deploying | Ironic::DeployWait
            | Ironic::Deleting | Ironic::Adopting | Ironic::AdoptFailed | Ironic::ServiceFailed
            | Ironic::RescueFailed | Ironic::Error | Ironic::Other(_) => step.wait(),
    }
}

/// Deploys on an available node: the image (and driver settings that changed since registration,
/// not secrets) patched on, then the deploy, with the config drive when the host asks for one.
fn deploy(
    step: Step<'_>,
    node: &Node,
    desired: &Map<String, Value>,
    image: &DeployImage,
    options: LiveIsoOptions,
) -> Decision {
    let mut patch = plan::registration_patch(node, desired, false);
    patch.0.extend(plan::deploy_patch(node, image, &options).0);
    patch.0.extend(plan::secure_boot_patch(node, step.input.host.spec.boot_mode).0);
    let drive = if options.config_drive && image.is_live_iso() {
        match &step.input.record.config_drive {
            Some(Ok(drive)) => Some(drive.clone()),
            Some(Err(e)) => return step.error(ErrorType::Provisioning, e.clone()),
            None => return step.error(ErrorType::Provisioning, DecideError::ConfigDriveMissing),
        }
    } else {
        None
    };
    step.ok(Action::Deploy(patch, drive), Requeue::Poll)
}

fn start_deprovisioning(mut step: Step<'_>) -> Decision {
    let now = step.input.now;
    step.status.operation_history.deprovision = OperationMetric { start: Some(now.into()), end: None };
    step.goto(ProvisioningState::Deprovisioning)
}

/// Power follows spec.online (upstream's manageHostPower). The status shows the power Ironic
/// reports. A power change Ironic failed (its `last_error`) is first recorded as a power
/// management error, with back-off, then tried again, as upstream does.
fn manage_power(mut step: Step<'_>, node: &Node) -> Decision {
    let host = step.input.host;
    if node.is_settling() {
        return step.wait();
    }
    let on = node.powered_on();
    step.status.powered_on = on;
    let target = if host.spec.online && !on {
        PowerTarget::On
    } else if !host.spec.online && on && !host.spec.disable_power_off {
        PowerTarget::Off
    } else {
        return step.ok(Action::None, Requeue::Idle);
    };
    if node.last_error.is_some() {
        let what = if host.spec.online { "powering on" } else { "powering off" };
        return step.failed_then_retry(ErrorType::PowerManagement, what, node, Action::Power(target));
    }
    step.ok(Action::Power(target), Requeue::Poll)
}

fn set_condition(
    status: &mut BareMetalHostStatus,
    type_: &str,
    value: bool,
    reason: &str,
    message: &str,
    now: &str,
) {
    let state = if value { "True" } else { "False" };
    match status.conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(c) if c.status == state => {}
        Some(c) => {
            c.status = state.into();
            c.reason = reason.into();
            c.message = message.into();
            c.last_transition_time = now.into();
        }
        None => status.conditions.push(Condition {
            type_: type_.into(),
            status: state.into(),
            reason: reason.into(),
            message: message.into(),
            last_transition_time: now.into(),
            observed_generation: None,
        }),
    }
}

/// The eject extension: what the BMC reports, and the action that brings it where the host's
/// annotation points. None when nothing is to be done.
fn manage_media(step: &mut Step<'_>, observed: &Observed) -> Option<Action> {
    let vmedia = observed.vmedia.as_ref()?;
    let host = step.input.host;
    let options = step.input.record.options_or_default();
    let cd = vmedia.iter().find(|m| m.media_types.iter().any(|t| t == "CD" || t == "DVD"));
    let inserted = cd.is_some_and(|m| m.inserted);
    let now = step.input.now;
    if inserted {
        set_condition(
            &mut step.status,
            MEDIA_INSERTED_CONDITION,
            true,
            "Inserted",
            "the live ISO is inserted",
            now,
        );
    } else {
        set_condition(
            &mut step.status,
            MEDIA_INSERTED_CONDITION,
            false,
            "Ejected",
            "the live ISO was ejected on request",
            now,
        );
    }
    match (options.eject_media, inserted) {
        (true, true) => Some(Action::EjectMedia),
        (false, false) => Some(Action::InsertMedia {
            url: host.spec.image.as_ref()?.url.clone(),
            download_source: options.download_source.map(|s| s.as_str()),
        }),
        _ => None,
    }
}

fn provisioned(step: Step<'_>, node: &Node, desired: &Map<String, Value>) -> Decision {
    let host = step.input.host;
    let changed = match (&host.spec.image, &step.status.provisioning.image) {
        (Some(want), Some(have)) => !same_image(want, have),
        (None, _) => true,
        (Some(_), None) => false,
    };
    if changed {
        return start_deprovisioning(step);
    }
    // a new reprovision token: boot fresh content from the same URL
    if let Some(Ok(DeployImage::LiveIso { url })) = &step.input.record.image
        && node.provision_state == Ironic::Active
        && !node.is_busy()
        && node.instance_str("boot_iso").is_some_and(|have| have != url.as_str())
    {
        return start_deprovisioning(step);
    }
    if node.provision_state != Ironic::Active && !node.is_busy() {
        // someone undeployed it behind our back: deploy again
        return step.goto(ProvisioningState::Provisioning);
    }
    let mut step = step;
    set_pending_condition(&mut step.status, step.input, node);
    // settings changed on the running host (boot-device persistence, the BMC's address, cleaning):
    // into Ironic now, not at the next deploy (Ironic would refuse an update while it works)
    let settings = plan::deployed_settings_patch(node, desired);
    if !settings.0.is_empty() && !node.is_settling() {
        return step.ok(Action::Patch(settings), Requeue::Poll);
    }
    let observed = step.observed;
    if let Some(action) = manage_media(&mut step, observed) {
        return step.ok(action, Requeue::Poll);
    }
    let vmedia_bmc = step.input.record.bmc.has_virtual_media();
    let eject = step.input.record.options_or_default().eject_media;
    if vmedia_bmc && observed.vmedia.is_none() && (eject || media_ejected(&step.status)) {
        // the media could not be read (the node is locked while Ironic works on it): look again soon
        return step.wait();
    }
    // the media condition, once set, keeps what the BMC last reported (True after reinsertion)
    manage_power(step, node)
}

fn deprovision(mut step: Step<'_>, node: &Node) -> Decision {
    if node.blocks_undeploy() || node.target_power_state.is_some() {
        return step.wait();
    }
    match &node.provision_state {
        Ironic::Active | Ironic::DeployFailed | Ironic::DeployWait => {
            step.ok(Action::Provision(ProvisionTarget::Deleted), Requeue::Poll)
        }
        Ironic::Available | Ironic::Manageable | Ironic::Enroll => {
            let now = step.input.now;
            step.status.operation_history.deprovision.end = Some(now.into());
            step.status.provisioning.image = None;
            step.status.provisioning.boot_mode = None;
            step.status.provisioning.root_device_hints = None;
            step.goto(ProvisioningState::Available)
        }
        Ironic::CleanFailed => step.failed_then_retry(
            ErrorType::Provisioning,
            "cleaning after deprovisioning",
            node,
            Action::Provision(ProvisionTarget::Manage),
        ),
        #[rustfmt::skip]
        Ironic::Verifying | Ironic::Inspecting | Ironic::InspectWait | Ironic::InspectFailed
            | Ironic::Cleaning | Ironic::CleanWait | Ironic::Deploying | Ironic::Deleting
            | Ironic::Adopting | Ironic::AdoptFailed | Ironic::ServiceFailed | Ironic::RescueFailed
            | Ironic::Error | Ironic::Other(_) => step.wait(),
    }
}

fn externally_provisioned(step: Step<'_>, node: &Node) -> Decision {
    if node.is_busy() {
        return step.wait();
    }
    match &node.provision_state {
        Ironic::Manageable => step.ok(Action::Provision(ProvisionTarget::Adopt), Requeue::Poll),
        Ironic::Available => step.ok(Action::Provision(ProvisionTarget::Manage), Requeue::Poll),
        Ironic::AdoptFailed => step.failed_then_retry(
            ErrorType::Provisioning,
            "adoption",
            node,
            Action::Provision(ProvisionTarget::Adopt),
        ),
        Ironic::Active => manage_power(step, node),
        #[rustfmt::skip]
        Ironic::Enroll | Ironic::Verifying | Ironic::Inspecting | Ironic::InspectWait
            | Ironic::InspectFailed | Ironic::Cleaning | Ironic::CleanWait | Ironic::CleanFailed
            | Ironic::Deploying | Ironic::DeployWait | Ironic::DeployFailed | Ironic::Deleting
            | Ironic::Adopting | Ironic::ServiceFailed | Ironic::RescueFailed | Ironic::Error
            | Ironic::Other(_) => step.wait(),
    }
}

fn delete(mut step: Step<'_>, node: Option<&Node>) -> Decision {
    let Some(node) = node else {
        step.status.provisioning.state = ProvisioningState::Deleting;
        return step.ok(Action::Forget, Requeue::Never);
    };
    if node.blocks_undeploy() || node.target_power_state.is_some() {
        return step.wait();
    }
    match &node.provision_state {
        Ironic::Active | Ironic::DeployFailed | Ironic::DeployWait
            if !step.input.host.spec.externally_provisioned =>
        {
            // started on entering deprovisioning, or again when an undeploy Ironic refused
            // left the state without a start (see action_failed)
            let deprovision = &mut step.status.operation_history.deprovision;
            if step.status.provisioning.state != ProvisioningState::Deprovisioning
                || deprovision.start.is_none()
            {
                *deprovision = OperationMetric { start: Some(step.input.now.into()), end: None };
            }
            step.status.provisioning.state = ProvisioningState::Deprovisioning;
            step.ok(Action::Provision(ProvisionTarget::Deleted), Requeue::Poll)
        }
        Ironic::Available | Ironic::Manageable | Ironic::Enroll | Ironic::Active => {
            if node.powered_on() && !step.input.host.spec.disable_power_off {
                step.status.provisioning.state = ProvisioningState::PoweringOffBeforeDelete;
                return step.ok(Action::Power(PowerTarget::Off), Requeue::Poll);
            }
            step.status.provisioning.state = ProvisioningState::Deleting;
            step.ok(Action::DeleteNode, Requeue::Now)
        }
        Ironic::CleanFailed | Ironic::InspectFailed | Ironic::AdoptFailed => {
            step.ok(Action::Provision(ProvisionTarget::Manage), Requeue::Poll)
        }
        #[rustfmt::skip]
        Ironic::Verifying | Ironic::Inspecting | Ironic::InspectWait | Ironic::Cleaning
            | Ironic::CleanWait | Ironic::Deploying | Ironic::DeployWait | Ironic::DeployFailed
            | Ironic::Deleting | Ironic::Adopting | Ironic::ServiceFailed | Ironic::RescueFailed
            | Ironic::Error | Ironic::Other(_) => step.wait(),
    }
}

#[cfg(test)]
mod tests;
