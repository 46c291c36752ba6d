use super::*;
use serde_json::json;
use std::time::Duration;

const NOW: &str = "2026-11-24T20:00:00Z";

fn host(spec: Value) -> BareMetalHost {
    serde_json::from_value(json!({
        "apiVersion": "metal3.io/v1alpha1", "kind": "BareMetalHost",
        "metadata": {"name": "h1", "namespace": "lab"},
        "spec": spec,
    }))
    .unwrap()
}

fn live_spec() -> Value {
    json!({
        "online": true,
        "automatedCleaningMode": "disabled",
        "inspectionMode": "disabled",
        "bmc": {"address": "redfish-virtualmedia+http://127.0.0.1:8000/redfish/v1/Systems/1", "credentialsName": "c"},
        "image": {"url": "http://127.0.0.1:8081/live.iso", "format": "live-iso"},
    })
}

struct Lab {
    host: BareMetalHost,
    access: BmcAccess,
    creds: Credentials,
    defaults: NodeDefaults,
}

impl Lab {
    fn new(spec: Value) -> Self {
        let host = host(spec);
        let access = BmcAccess::parse(&host.spec.bmc.as_ref().unwrap().address, false).unwrap();
        Lab { host, access, creds: Credentials::new("admin", "pw"), defaults: NodeDefaults::default() }
    }

    fn decide(&self, status: &BareMetalHostStatus, node: Option<&Node>) -> Decision {
        self.decide_with(status, node, false)
    }

    /// The resolved input of the lab's host with this BMC.
    fn record_with(&self, bmc: Bmc, deleting: bool) -> HostInput {
        HostInput {
            host: self.host.clone(),
            image: DeployImage::for_host(&self.host),
            options: metalhost_api::extensions::live_iso_options(&self.host),
            bmc,
            paused: false,
            detached: false,
            deleting,
            config_drive: None,
            firmware_settings: Default::default(),
        }
    }

    fn record(&self, deleting: bool) -> HostInput {
        let bmc = Bmc::Ready {
            access: self.access.clone(),
            credentials: self.creds.clone(),
            version: Default::default(),
        };
        self.record_with(bmc, deleting)
    }

    /// Decides with the credentials Secret changed since the status recorded it.
    fn decide_changed_credentials(&self, status: &BareMetalHostStatus, node: Option<&Node>) -> Decision {
        self.decide_as(status, node, false, true)
    }

    fn decide_with(&self, status: &BareMetalHostStatus, node: Option<&Node>, deleting: bool) -> Decision {
        self.decide_as(status, node, deleting, false)
    }

    fn decide_as(
        &self,
        status: &BareMetalHostStatus,
        node: Option<&Node>,
        deleting: bool,
        credentials_changed: bool,
    ) -> Decision {
        let record = self.record(deleting);
        let input = Input::new(&record, &self.defaults, NOW, credentials_changed);
        decide(
            &input,
            status,
            &Observed { node: node.cloned(), port_macs: Some(vec![]), ..Default::default() },
        )
    }
}

fn status_in(state: ProvisioningState) -> BareMetalHostStatus {
    let mut s = BareMetalHostStatus::default();
    s.provisioning.state = state;
    s.provisioning.id = "n1".into();
    s
}

/// A node registered for `live_spec`'s BMC, in this state.
fn node(provision_state: &str) -> Node {
    let driver_info = json!({
        "redfish_address": "http://127.0.0.1:8000",
        "redfish_system_id": "/redfish/v1/Systems/1",
        "redfish_username": "admin",
        "redfish_password": "******",
    });
    Node {
        uuid: "n1".into(),
        provision_state: provision_state.into(),
        power_state: Some("power off".into()),
        automated_clean: Some(false),
        boot_interface: Some("redfish-virtual-media".into()),
        driver: "redfish".into(),
        driver_info: serde_json::from_value(driver_info).unwrap(),
        ..Default::default()
    }
}

/// A minimal stand-in for Ironic's state changes, to walk the machine through whole journeys in
/// unit tests (the integration tests use the real Ironic).
fn apply(action: &Action, node: &mut Option<Node>) {
    if matches!(
        action,
        Action::None
            | Action::CreatePort(_)
            | Action::Forget
            | Action::EjectMedia
            | Action::InsertMedia { .. }
    ) {
        return;
    }
    let n = node.get_or_insert_with(|| self::node("enroll"));
    match action {
        Action::CreateNode(fields) => {
            let mut raw = fields.clone();
            raw.insert("uuid".into(), json!("n1"));
            *n = serde_json::from_value(Value::Object(raw)).unwrap();
            n.provision_state = "enroll".into();
        }
        Action::Patch(patch) | Action::Deploy(patch, _) | Action::Reverify(patch) => {
            let mut v = serde_json::to_value(&*n).unwrap();
            json_patch::patch(&mut v, patch).unwrap();
            *n = serde_json::from_value(v).unwrap();
            if matches!(action, Action::Deploy(..)) {
                n.provision_state = "active".into();
                n.power_state = Some("power on".into());
            }
            if matches!(action, Action::Reverify(_)) {
                n.provision_state = "manageable".into();
                n.last_error = None;
            }
        }
        Action::Provision(t) => {
            n.provision_state = match t {
                ProvisionTarget::Manage => "manageable",
                ProvisionTarget::Provide => "available",
                ProvisionTarget::Inspect => "manageable",
                ProvisionTarget::Active | ProvisionTarget::Adopt => "active",
                ProvisionTarget::Deleted => {
                    n.power_state = Some("power off".into());
                    "available"
                }
                ProvisionTarget::Abort => "manageable",
            }
            .into()
        }
        Action::Power(t) => {
            n.power_state = Some(if *t == PowerTarget::On { "power on" } else { "power off" }.into())
        }
        Action::DeleteNode => *node = None,
        // the BIOS settings are taken by the machine; the node is manageable again
        Action::Clean { .. } => n.provision_state = "manageable".into(),
        Action::None
        | Action::CreatePort(_)
        | Action::Forget
        | Action::EjectMedia
        | Action::InsertMedia { .. } => {
            unreachable!()
        }
    }
}

/// Runs the machine until it has nothing left to do; returns the states it went through.
fn run(
    lab: &Lab,
    status: &mut BareMetalHostStatus,
    node: &mut Option<Node>,
    deleting: bool,
) -> Vec<ProvisioningState> {
    let mut states = vec![status.provisioning.state];
    for _ in 0..50 {
        let d = lab.decide_with(status, node.as_ref(), deleting);
        apply(&d.action, node);
        *status = d.status;
        if states.last() != Some(&status.provisioning.state) {
            states.push(status.provisioning.state);
        }
        if matches!(d.requeue, Requeue::Idle | Requeue::Never | Requeue::Backoff(_)) {
            return states;
        }
    }
    panic!("no steady state after 50 steps: {states:?}");
}

use ProvisioningState as S;

#[test]
fn live_iso_journey_registers_provisions_and_deprovisions() {
    let mut lab = Lab::new(live_spec());
    let mut status = BareMetalHostStatus::default();
    let mut n = None;
    let states = run(&lab, &mut status, &mut n, false);
    assert_eq!(
        states,
        [S::None, S::Registering, S::Preparing, S::Available, S::Provisioning, S::Provisioned]
    );
    let node = n.clone().unwrap();
    assert_eq!(node.deploy_interface.as_deref(), Some("ramdisk"));
    assert_eq!(node.instance_str("boot_iso"), Some("http://127.0.0.1:8081/live.iso"));
    assert_eq!(status.provisioning.image.as_ref().unwrap().url, "http://127.0.0.1:8081/live.iso");
    assert_eq!(status.operational_status, OperationalStatus::Ok);
    assert!(status.powered_on);
    assert!(
        status.operation_history.provision.end.is_some() && status.operation_history.register.end.is_some()
    );

    lab.host.spec.image = None;
    let states = run(&lab, &mut status, &mut n, false);
    assert_eq!(states, [S::Provisioned, S::Deprovisioning, S::Available]);
    assert_eq!(n.as_ref().unwrap().provision_state.as_str(), "available");
    assert!(status.provisioning.image.is_none() && status.operation_history.deprovision.end.is_some());
}

#[test]
fn a_secure_boot_host_asks_ironic_for_secure_boot_when_it_deploys() {
    let capabilities = |mode: Option<&str>| {
        let mut spec = live_spec();
        if let Some(mode) = mode {
            spec["bootMode"] = json!(mode);
        }
        let lab = Lab::new(spec);
        let (mut status, mut n) = (BareMetalHostStatus::default(), None);
        assert_eq!(run(&lab, &mut status, &mut n, false).last(), Some(&S::Provisioned));
        n.unwrap().instance_info.get("capabilities").cloned()
    };
    assert_eq!(capabilities(Some("UEFISecureBoot")), Some(json!({"secure_boot": "true"})));
    assert_eq!(capabilities(Some("UEFI")), None);
    assert_eq!(capabilities(None), None);
}

#[test]
fn inspection_runs_unless_disabled() {
    let mut spec = live_spec();
    spec.as_object_mut().unwrap().remove("inspectionMode");
    let lab = Lab::new(spec);
    let (mut status, mut n) = (BareMetalHostStatus::default(), None);
    let states = run(&lab, &mut status, &mut n, false);
    assert_eq!(states[..4], [S::None, S::Registering, S::Inspecting, S::Preparing]);
    assert!(
        status.operation_history.inspect.start.is_some() && status.operation_history.inspect.end.is_some()
    );

    let mut spec = live_spec();
    spec.as_object_mut().unwrap().remove("inspectionMode");
    let mut lab = Lab::new(spec);
    lab.host.metadata.annotations = Some([(INSPECT_ANNOTATION.to_string(), "disabled".to_string())].into());
    let (mut status, mut n) = (BareMetalHostStatus::default(), None);
    assert!(!run(&lab, &mut status, &mut n, false).contains(&S::Inspecting));
}

#[test]
fn url_change_deprovisions_then_provisions_the_new_iso() {
    let mut lab = Lab::new(live_spec());
    let (mut status, mut n) = (BareMetalHostStatus::default(), None);
    run(&lab, &mut status, &mut n, false);
    lab.host.spec.image.as_mut().unwrap().url = "http://127.0.0.1:8081/other.iso".into();
    let states = run(&lab, &mut status, &mut n, false);
    assert_eq!(states, [S::Provisioned, S::Deprovisioning, S::Available, S::Provisioning, S::Provisioned]);
    assert_eq!(n.unwrap().instance_str("boot_iso"), Some("http://127.0.0.1:8081/other.iso"));
}

#[test]
fn format_only_change_is_honoured_and_switches_to_a_disk_image() {
    let mut lab = Lab::new(live_spec());
    let (mut status, mut n) = (BareMetalHostStatus::default(), None);
    run(&lab, &mut status, &mut n, false);
    let image = lab.host.spec.image.as_mut().unwrap();
    image.format = Some(ImageFormat::Raw);
    image.checksum = Some("abc".into());
    let states = run(&lab, &mut status, &mut n, false);
    assert_eq!(states, [S::Provisioned, S::Deprovisioning, S::Available, S::Provisioning, S::Provisioned]);
    let node = n.unwrap();
    assert_eq!(node.instance_str("boot_iso"), None);
    assert_eq!(node.instance_str("image_source"), Some("http://127.0.0.1:8081/live.iso"));
    assert_eq!(node.instance_str("image_disk_format"), Some("raw"));
    assert_eq!(node.deploy_interface, None);
}

#[test]
fn power_follows_online_when_provisioned() {
    let mut lab = Lab::new(live_spec());
    let (mut status, mut n) = (BareMetalHostStatus::default(), None);
    run(&lab, &mut status, &mut n, false);
    lab.host.spec.online = false;
    let d = lab.decide(&status, n.as_ref());
    assert_eq!(d.action, Action::Power(PowerTarget::Off));
    apply(&d.action, &mut n);
    let d = lab.decide(&d.status, n.as_ref());
    assert_eq!((d.action, d.requeue), (Action::None, Requeue::Idle));
    assert!(!d.status.powered_on);
    lab.host.spec.disable_power_off = true;
    n.as_mut().unwrap().power_state = Some("power on".into());
    assert_eq!(lab.decide(&d.status, n.as_ref()).action, Action::None);
}

#[test]
fn deletion_deprovisions_powers_off_and_deletes_the_node() {
    let lab = Lab::new(live_spec());
    let (mut status, mut n) = (BareMetalHostStatus::default(), None);
    run(&lab, &mut status, &mut n, false);
    let states = run(&lab, &mut status, &mut n, true);
    assert_eq!(states, [S::Provisioned, S::Deprovisioning, S::Deleting]);
    assert!(n.is_none());
    let d = lab.decide_with(&status, None, true);
    assert_eq!((d.action, d.requeue), (Action::Forget, Requeue::Never));
}

#[test]
fn an_undeploy_ironic_refused_leaves_deprovisioning_to_start_on_the_next_look() {
    let lab = Lab::new(live_spec());
    let provisioned = status_in(S::Provisioned);
    let d = lab.decide_with(&provisioned, Some(&node("active")), true);
    assert_eq!(d.action, Action::Provision(ProvisionTarget::Deleted));
    assert!(d.status.operation_history.deprovision.start.is_some());
    // Ironic refuses the undeploy (node locked): the state stays, the operation has not started
    let (refused, _) =
        action_failed(&provisioned, &d.status, ErrorType::Provisioning, Redacted::new("locked"));
    assert_eq!(refused.provisioning.state, S::Deprovisioning);
    assert_eq!(refused.operation_history.deprovision.start, None);
    // the next look sends the undeploy again, and this time its start is recorded
    let again = lab.decide_with(&refused, Some(&node("active")), true);
    assert_eq!(again.action, Action::Provision(ProvisionTarget::Deleted));
    assert!(again.status.operation_history.deprovision.start.is_some(), "deprovisioning has a start");
}

#[test]
fn deletion_of_a_powered_on_available_host_powers_it_off_first() {
    let lab = Lab::new(live_spec());
    let mut on = node("available");
    on.power_state = Some("power on".into());
    let d = lab.decide_with(&status_in(S::Available), Some(&on), true);
    assert_eq!(d.action, Action::Power(PowerTarget::Off));
    assert_eq!(d.status.provisioning.state, S::PoweringOffBeforeDelete);
}

/// A node whose boot never calls back (no agent came up): Ironic waits in `wait call-back` until
/// its call-back timeout.
fn waiting_for_the_agent() -> Node {
    let mut n = node("wait call-back");
    n.target_provision_state = Some("active".into());
    n.power_state = Some("power on".into());
    n
}

#[test]
fn a_host_whose_boot_never_calls_back_is_deleted_without_waiting_for_ironics_timeout() {
    let lab = Lab::new(live_spec());
    let d = lab.decide_with(&status_in(S::Provisioning), Some(&waiting_for_the_agent()), true);
    assert_eq!(d.action, Action::Provision(ProvisionTarget::Deleted), "undeployed at once, as upstream");
    assert_eq!(d.status.provisioning.state, S::Deprovisioning);
    // a deploy under way (not waiting) cannot be interrupted: the host waits
    let mut deploying = node("deploying");
    deploying.target_provision_state = Some("active".into());
    let d = lab.decide_with(&status_in(S::Provisioning), Some(&deploying), true);
    assert_eq!(d.action, Action::None);
    let d = lab.decide_with(&status_in(S::Deprovisioning), Some(&waiting_for_the_agent()), false);
    assert_eq!(d.action, Action::Provision(ProvisionTarget::Deleted));
}

#[test]
fn a_new_image_while_the_boot_never_calls_back_undoes_the_deploy() {
    let lab = Lab::new(live_spec());
    let mut n = waiting_for_the_agent();
    n.instance_info.insert("boot_iso".into(), "http://127.0.0.1:8081/old.iso".into());
    let d = lab.decide(&status_in(S::Provisioning), Some(&n));
    assert_eq!(d.status.provisioning.state, S::Deprovisioning);
    // still the image asked for: it goes on waiting for the call-back
    n.instance_info.insert("boot_iso".into(), "http://127.0.0.1:8081/live.iso".into());
    n.deploy_interface = Some("ramdisk".into());
    let d = lab.decide(&status_in(S::Provisioning), Some(&n));
    assert_eq!((d.action, d.status.provisioning.state), (Action::None, S::Provisioning));
}

#[test]
fn missing_bmc_is_unmanaged_and_bad_bmc_is_a_registration_error_without_a_node() {
    let mut lab = Lab::new(live_spec());
    lab.host.spec.bmc = None;
    let record = lab.record_with(Bmc::Absent, false);
    let input = Input::new(&record, &lab.defaults, NOW, false);
    let d = decide(&input, &BareMetalHostStatus::default(), &Observed::default());
    assert_eq!((d.status.provisioning.state, d.action), (S::Unmanaged, Action::None));

    let problem = metalhost_api::BmcAccess::parse("foo://x", false).unwrap_err();
    let record = lab.record_with(Bmc::Unusable(problem.into()), false);
    let input = Input::new(&record, &lab.defaults, NOW, false);
    let d = decide(&input, &BareMetalHostStatus::default(), &Observed::default());
    assert_eq!(d.action, Action::None);
    assert_eq!(d.status.provisioning.state, S::Registering);
    assert_eq!(d.status.error_type, Some(ErrorType::Registration));
    assert_eq!(d.status.operational_status, OperationalStatus::Error);
    assert!(d.status.error_message.contains("Unknown BMC type 'foo'"));
    assert_eq!(d.requeue, Requeue::Backoff(Duration::from_secs(2)));
    let again = decide(&input, &d.status, &Observed::default());
    assert_eq!(again.status.error_count, 2);
    assert_eq!(again.requeue, Requeue::Backoff(Duration::from_secs(4)));
}

#[test]
fn disk_image_without_checksum_is_a_provisioning_error_that_names_the_field() {
    let mut spec = live_spec();
    spec["image"] = json!({"url": "http://h/disk.qcow2", "format": "qcow2"});
    let lab = Lab::new(spec);
    let d = lab.decide(&status_in(S::Available), Some(&node("manageable")));
    assert_eq!(d.status.provisioning.state, S::Available);
    assert_eq!(d.status.error_type, Some(ErrorType::Provisioning));
    assert!(
        d.status
            .error_message
            .starts_with("spec.image.checksum: checksum is required for normal images (a qcow2 image"),
        "{}",
        d.status.error_message
    );
    assert_eq!(d.action, Action::None);
}

#[test]
fn failed_credentials_are_reported_then_resent() {
    let lab = Lab::new(live_spec());
    let mut n = node("enroll");
    n.last_error = Some("Unauthorized".into());
    let d = lab.decide(&status_in(S::Registering), Some(&n));
    assert_eq!(d.action, Action::None);
    assert_eq!(d.status.error_type, Some(ErrorType::Registration));
    assert!(d.status.error_message.contains("Unauthorized"));
    // once recorded (after the back-off, or when the Secret changed): the settings, secrets too,
    // go to Ironic again with a new verify, not a patch alone that leaves the node in enroll
    let retry = lab.decide(&d.status, Some(&n));
    match &retry.action {
        Action::Reverify(p) => assert!(serde_json::to_string(p).unwrap().contains("redfish_password")),
        other => panic!("expected the credentials sent again and verified, got {other:?}"),
    }
    assert_eq!((retry.requeue, retry.status.error_count), (Requeue::Poll, d.status.error_count));
    // while Ironic verifies, the old error is no longer shown
    let mut verifying = n.clone();
    (verifying.provision_state, verifying.target_provision_state) =
        ("verifying".into(), Some("manageable".into()));
    let waiting = lab.decide(&retry.status, Some(&verifying));
    assert_eq!((waiting.action, waiting.status.error_type), (Action::None, None));
    // failing again is recorded again, with a longer back-off
    let again = lab.decide(&waiting.status, Some(&n));
    assert_eq!(again.status.error_count, d.status.error_count + 1);
    assert!(matches!(again.requeue, Requeue::Backoff(b) if Requeue::Backoff(b) != d.requeue));
    // verified: registration goes on, the error gone
    let good = node("manageable");
    let done = lab.decide(&again.status, Some(&good));
    assert_eq!((done.status.error_type, done.status.error_message.as_str()), (None, ""));
    assert!(done.error.is_none());
}

#[test]
fn changed_credentials_wait_for_a_busy_node_then_go_out_once() {
    let lab = Lab::new(live_spec());
    let mut deploying = node("wait call-back");
    deploying.target_provision_state = Some("active".into());
    // a Secret changed (e.g. the controller labelled it) while the node deploys: no PATCH now,
    // Ironic would refuse it (409, state transition in progress); the host keeps its state
    let d = lab.decide_changed_credentials(&status_in(S::Provisioning), Some(&deploying));
    assert_eq!(d.action, Action::None);
    assert_eq!(d.status.provisioning.state, S::Provisioning);
    assert_eq!(d.status.error_type, None);
    assert_eq!(d.requeue, Requeue::Poll);
    // resting, the node gets them with the move back to registering
    let d = lab.decide_changed_credentials(&status_in(S::Provisioning), Some(&node("active")));
    assert!(
        matches!(&d.action, Action::Patch(p) if serde_json::to_string(p).unwrap().contains("redfish_password"))
    );
    assert_eq!(d.status.provisioning.state, S::Registering);
}

#[test]
fn deploy_failure_is_recorded_with_ironic_last_error_then_retried() {
    let lab = Lab::new(live_spec());
    let mut n = node("deploy failed");
    n.last_error = Some("Failed to download image http://x/live.iso: 404".into());
    n.deploy_interface = Some("ramdisk".into());
    n.instance_info.insert("boot_iso".into(), json!("http://127.0.0.1:8081/live.iso"));
    let d = lab.decide(&status_in(S::Provisioning), Some(&n));
    assert_eq!(d.action, Action::None);
    assert_eq!(d.status.error_type, Some(ErrorType::Provisioning));
    assert_eq!(d.status.provisioning_fail_count, 1);
    assert!(d.status.error_message.contains("404"), "{}", d.status.error_message);
    let retry = lab.decide(&d.status, Some(&n));
    assert_eq!(retry.action, Action::Provision(ProvisionTarget::Deleted));
    assert_eq!(retry.status.error_type, Some(ErrorType::Provisioning), "error shown while retrying");

    // the retry deploys again and fails again: the back-off grows
    let mut again = n.clone();
    again.provision_state = "available".into();
    let redeploy = lab.decide(&retry.status, Some(&again));
    assert!(matches!(redeploy.action, Action::Deploy(..)));
    assert_eq!(redeploy.status.error_type, None);
    let second = lab.decide(&redeploy.status, Some(&n));
    assert_eq!(second.status.error_count, 2);
    assert_eq!(second.status.provisioning_fail_count, 2);
    assert_eq!(second.requeue, Requeue::Backoff(Duration::from_secs(4)));
}

#[test]
fn failed_nodes_keep_a_target_but_are_not_busy() {
    let mut n = node("deploy failed");
    n.target_provision_state = Some("active".into());
    assert!(!n.is_busy() && n.is_failed());
    n.provision_state = "deploying".into();
    assert!(n.is_busy() && !n.is_failed());
}

#[test]
fn vanished_node_is_registered_again() {
    let lab = Lab::new(live_spec());
    let d = lab.decide(&status_in(S::Provisioned), None);
    assert_eq!(d.status.provisioning.state, S::Registering);
    assert!(d.status.provisioning.id.is_empty());
}

#[test]
fn live_iso_with_user_data_or_root_hints_says_they_are_ignored() {
    let mut spec = live_spec();
    spec["userData"] = json!({"name": "ud"});
    spec["rootDeviceHints"] = json!({"deviceName": "/dev/sda"});
    let lab = Lab::new(spec);
    let d = lab.decide(&status_in(S::Available), Some(&node("available")));
    let c = d.status.conditions.iter().find(|c| c.type_ == IGNORED_FIELDS_CONDITION).expect("condition");
    assert!(c.message.contains("rootDeviceHints and userData not used"), "{}", c.message);
    let plain = Lab::new(live_spec());
    let d = plain.decide(&d.status, Some(&node("available")));
    assert!(d.status.conditions.is_empty());
}

#[test]
fn externally_provisioned_host_is_adopted_not_deployed() {
    let mut spec = live_spec();
    spec["externallyProvisioned"] = json!(true);
    let lab = Lab::new(spec);
    let (mut status, mut n) = (BareMetalHostStatus::default(), None);
    let states = run(&lab, &mut status, &mut n, false);
    assert_eq!(states.last(), Some(&S::ExternallyProvisioned));
    assert_eq!(n.unwrap().provision_state.as_str(), "active");
    assert!(status.provisioning.image.is_none());
}

#[test]
fn busy_node_is_polled_not_acted_on() {
    let lab = Lab::new(live_spec());
    let mut n = node("deploying");
    n.target_provision_state = Some("active".into());
    n.deploy_interface = Some("ramdisk".into());
    n.instance_info.insert("boot_iso".into(), json!("http://127.0.0.1:8081/live.iso"));
    let d = lab.decide(&status_in(S::Provisioning), Some(&n));
    assert_eq!((d.action, d.requeue), (Action::None, Requeue::Poll));
}

#[test]
fn backoff_doubles_and_is_capped() {
    assert_eq!(backoff(1), Duration::from_secs(2));
    assert_eq!(backoff(3), Duration::from_secs(8));
    assert_eq!(backoff(40), Duration::from_secs(300));
}

#[test]
fn status_annotation_restores_history_so_inspection_is_skipped() {
    let mut spec = live_spec();
    spec.as_object_mut().unwrap().remove("inspectionMode");
    let mut lab = Lab::new(spec);
    let restored = json!({"operationalStatus": "OK", "errorMessage": "", "errorCount": 0,
        "provisioningFailCount": 0, "poweredOn": false, "provisioning": {"state": "", "ID": ""},
        "operationHistory": {"inspect": {"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T00:05:00Z"}},
        "hardware": {"ramMebibytes": 4096}});
    lab.host.metadata.annotations = Some([(STATUS_ANNOTATION.to_string(), restored.to_string())].into());
    let (mut status, mut n) = (BareMetalHostStatus::default(), None);
    let states = run(&lab, &mut status, &mut n, false);
    assert!(!states.contains(&S::Inspecting), "{states:?}");
    assert_eq!(states.last(), Some(&S::Provisioned));
    assert_eq!(status.hardware.unwrap().ram_mebibytes, Some(4096));

    lab.host.metadata.annotations = Some([(STATUS_ANNOTATION.to_string(), "{not json".to_string())].into());
    let d = lab.decide(&BareMetalHostStatus::default(), None);
    assert_eq!(d.status.error_type, Some(ErrorType::Registration));
    assert!(d.status.error_message.starts_with("metadata.annotations[baremetalhost.metal3.io/status]"));
}

#[test]
fn eject_annotation_ejects_then_reinserts_the_live_iso() {
    let mut lab = Lab::new(live_spec());
    let (mut status, mut n) = (BareMetalHostStatus::default(), None);
    run(&lab, &mut status, &mut n, false);
    let node = n.unwrap();
    let media = |inserted: bool| {
        Some(vec![metalhost_ironic::VirtualMedia {
            media_types: vec!["CD".into(), "DVD".into()],
            inserted,
            image: String::new(),
        }])
    };
    let decide_with_media = |lab: &Lab, status: &BareMetalHostStatus, inserted: bool| {
        let record = lab.record(false);
        let input = Input::new(&record, &lab.defaults, NOW, false);
        decide(
            &input,
            status,
            &Observed {
                node: Some(node.clone()),
                port_macs: None,
                vmedia: media(inserted),
                ..Default::default()
            },
        )
    };
    lab.host.metadata.annotations =
        Some([(metalhost_api::extensions::EJECT_MEDIA_ANNOTATION.to_string(), "true".to_string())].into());
    let d = decide_with_media(&lab, &status, true);
    assert_eq!(d.action, Action::EjectMedia);
    let d = decide_with_media(&lab, &d.status, false);
    assert_eq!(d.status.provisioning.state, S::Provisioned);
    assert!(media_ejected(&d.status), "{:?}", d.status.conditions);
    assert_eq!(d.action, Action::None);
    lab.host.metadata.annotations = None;
    let again = decide_with_media(&lab, &d.status, false);
    assert_eq!(
        again.action,
        Action::InsertMedia { url: "http://127.0.0.1:8081/live.iso".into(), download_source: None }
    );
    let back = decide_with_media(&lab, &again.status, true);
    assert_eq!(back.action, Action::None);
    assert!(!media_ejected(&back.status));
}

#[test]
fn a_new_reprovision_token_boots_fresh_content_from_the_same_url() {
    let mut lab = Lab::new(live_spec());
    let (mut status, mut n) = (BareMetalHostStatus::default(), None);
    run(&lab, &mut status, &mut n, false);
    lab.host.metadata.annotations =
        Some([(metalhost_api::extensions::REPROVISION_ANNOTATION.to_string(), "v2".to_string())].into());
    let states = run(&lab, &mut status, &mut n, false);
    assert_eq!(states, [S::Provisioned, S::Deprovisioning, S::Available, S::Provisioning, S::Provisioned]);
    assert_eq!(
        n.as_ref().unwrap().instance_str("boot_iso"),
        Some("http://127.0.0.1:8081/live.iso?metalhost-reprovision=v2")
    );
    // the same token again: nothing to do
    let d = lab.decide(&status, n.as_ref());
    assert_eq!((d.action, d.status.provisioning.state), (Action::None, S::Provisioned));
}

#[test]
fn changed_credentials_are_sent_again_and_a_provisioned_host_stays_provisioned() {
    let lab = Lab::new(live_spec());
    let (mut status, mut n) = (BareMetalHostStatus::default(), None);
    run(&lab, &mut status, &mut n, false);
    let node = n.clone().unwrap();
    let record = lab.record(false);
    let input = Input::new(&record, &lab.defaults, NOW, true);
    let observed = Observed { node: Some(node.clone()), port_macs: None, vmedia: None, ..Default::default() };
    let d = decide(&input, &status, &observed);
    assert_eq!(d.status.provisioning.state, S::Registering);
    match &d.action {
        Action::Patch(p) => assert!(serde_json::to_string(p).unwrap().contains("redfish_password")),
        other => panic!("expected the credentials sent again, got {other:?}"),
    }
    // still "changed" until the runtime records them as good, but sent only once: registration
    // completes and the host is provisioned again, with no second patch
    let d = decide(&input, &d.status, &observed);
    assert_eq!(d.status.provisioning.state, S::Provisioned);
    assert_eq!(d.action, Action::None);
}

/// As upstream's actionManageAvailable: an available host with nothing to provision follows
/// spec.online (powered on or off), unless power-off is disabled; once it matches, it rests.
#[test]
fn an_available_host_without_an_image_follows_online() {
    let mut spec = live_spec();
    spec.as_object_mut().unwrap().remove("image");
    let lab = Lab::new(spec.clone());
    let off = node("available");
    let d = lab.decide(&status_in(S::Available), Some(&off));
    assert_eq!((d.action, d.status.provisioning.state), (Action::Power(PowerTarget::On), S::Available));

    let mut on = node("available");
    on.power_state = Some("power on".into());
    let d = lab.decide(&status_in(S::Available), Some(&on));
    assert_eq!((d.action, d.requeue), (Action::None, Requeue::Idle));
    assert!(d.status.powered_on);

    spec["online"] = json!(false);
    let d = Lab::new(spec.clone()).decide(&status_in(S::Available), Some(&on));
    assert_eq!(d.action, Action::Power(PowerTarget::Off));

    spec["disablePowerOff"] = json!(true);
    let d = Lab::new(spec).decide(&status_in(S::Available), Some(&on));
    assert_eq!(d.action, Action::None, "power-off disabled");
}

/// A power change Ironic failed is recorded as a power management error with back-off, then
/// tried again (as upstream); the status shows the power Ironic reports.
#[test]
fn a_failed_power_change_is_an_error_then_retried() {
    let mut spec = live_spec();
    spec.as_object_mut().unwrap().remove("image");
    let lab = Lab::new(spec);
    let mut failed = node("available");
    failed.last_error = Some("Failed to change power state to 'power on': BMC said no".into());
    let mut was_on = status_in(S::Available);
    was_on.powered_on = true;
    let d = lab.decide(&was_on, Some(&failed));
    assert_eq!(d.action, Action::None);
    assert_eq!(d.status.error_type, Some(ErrorType::PowerManagement));
    assert!(d.status.error_message.contains("BMC said no"), "{}", d.status.error_message);
    assert!(matches!(d.requeue, Requeue::Backoff(_)), "{:?}", d.requeue);
    assert!(!d.status.powered_on, "the power Ironic reports");
    let again = lab.decide(&d.status, Some(&failed));
    assert_eq!(again.action, Action::Power(PowerTarget::On));
}

/// A node changing its power holds Ironic's lock: provisioning waits for it instead of sending
/// an update Ironic would refuse.
#[test]
fn provisioning_waits_while_the_power_changes() {
    let lab = Lab::new(live_spec());
    let mut powering = node("manageable");
    powering.target_power_state = Some("power on".into());
    powering.automated_clean = Some(true);
    let d = lab.decide(&status_in(S::Provisioning), Some(&powering));
    assert_eq!((d.action, d.status.provisioning.state), (Action::None, S::Provisioning));
}

/// An error quoting a huge field (a decode error over a 3 MB answer from Ironic) is cut before it
/// reaches the status, which must stay small enough to be stored and read back.
#[test]
fn a_huge_error_message_is_cut_before_the_status() {
    let previous = BareMetalHostStatus::default();
    let (status, _) =
        failed(&previous, &previous, ErrorType::Provisioning, Redacted::new(&"x".repeat(3 * 1024 * 1024)));
    assert!(status.error_message.len() < 5000, "{} bytes", status.error_message.len());
    assert!(status.error_message.ends_with("cut by metalhost]"));
}

/// A state this build does not know: decoded (so lists still decode), left as it is and never
/// written (serializing it is an error); a status annotation carrying one is refused rather than
/// restored; deleting such a host goes through deletion's own states.
#[test]
fn an_unknown_state_is_kept_unwritten_refused_from_the_annotation_and_deleted_all_the_same() {
    let status: BareMetalHostStatus = serde_json::from_value(json!({"operationalStatus": "OK",
        "errorMessage": "", "errorCount": 0, "poweredOn": true,
        "provisioning": {"state": "a-state-from-the-future", "ID": "n1"}}))
    .unwrap();
    assert_eq!(status.provisioning.state, S::Unknown);
    assert!(serde_json::to_value(&status).is_err(), "an unknown state cannot be written");

    let mut lab = Lab::new(live_spec());
    let d = lab.decide(&status, Some(&node("active")));
    assert_eq!((d.status, d.action, d.error), (status.clone(), Action::None, None), "left as it is");

    let d = lab.decide_with(&status, Some(&node("active")), true);
    assert_eq!(d.status.provisioning.state, S::Deprovisioning, "deleted all the same");
    assert!(serde_json::to_value(&d.status).is_ok());

    let annotation = json!({"provisioning": {"state": "a-state-from-the-future", "ID": ""}});
    lab.host.metadata.annotations = Some([(STATUS_ANNOTATION.to_string(), annotation.to_string())].into());
    let d = lab.decide(&BareMetalHostStatus::default(), None);
    assert_eq!(d.status.error_type, Some(ErrorType::Registration));
    assert!(d.status.error_message.contains("not one metalhost knows"), "{}", d.status.error_message);
    assert!(serde_json::to_value(&d.status).is_ok(), "what is written can be written");
}

#[test]
fn settings_that_wait_for_the_next_deploy_are_shown_as_pending() {
    let lab = Lab::new(live_spec());
    let mut status = status_in(S::Provisioned);
    status.provisioning.image = lab.host.spec.image.clone();
    let mut active = node("active");
    active.power_state = Some("power on".into());
    active.instance_info.insert("boot_iso".into(), json!("http://127.0.0.1:8081/live.iso"));
    let pending = |lab: &Lab, status: &BareMetalHostStatus| {
        let d = lab.decide(status, Some(&active));
        let c = d.status.conditions.iter().find(|c| c.type_ == PENDING_CONDITION).cloned();
        (d, c)
    };
    let (d, c) = pending(&lab, &status);
    assert!(c.is_none(), "nothing pending: {c:?}");
    // the BMC is to fetch the ISO itself: only a new deploy does it
    let mut annotated = Lab::new(live_spec());
    annotated.host.metadata.annotations =
        Some([("metalhost.io/iso-download-source".to_string(), "http".to_string())].into());
    let (d2, c) = pending(&annotated, &d.status);
    let c = c.expect("pending");
    assert_eq!(c.status, "True");
    assert!(
        c.message.starts_with("metalhost.io/iso-download-source: take effect at the next deploy"),
        "{}",
        c.message
    );
    assert_eq!(d2.status.provisioning.state, S::Provisioned, "nothing is redeployed for it");
    // annotation gone again: nothing pending any more
    let (_, c) = pending(&lab, &d2.status);
    assert!(c.is_none());
}

#[test]
fn a_bmc_port_refusing_connections_is_shown_while_ironic_verifies_and_goes_when_registered() {
    let lab = Lab::new(live_spec());
    let record = lab.record(false);
    let input = Input::new(&record, &lab.defaults, NOW, false);
    let mut verifying = node("verifying");
    verifying.target_provision_state = Some("manageable".into());
    let look = |status: &BareMetalHostStatus, node: &Node, reach| {
        let observed = Observed {
            node: Some(node.clone()),
            port_macs: Some(vec![]),
            vmedia: None,
            bmc_reach: reach,
            ..Default::default()
        };
        decide(&input, status, &observed)
    };
    let refused = |s: &BareMetalHostStatus| {
        s.conditions
            .iter()
            .find(|c| c.type_ == BMC_REACHABLE_CONDITION)
            .map(|c| (c.status.clone(), c.message.clone()))
    };
    let d = look(&status_in(S::Registering), &verifying, Some(BmcReach::Refuses));
    assert_eq!((d.action.clone(), d.requeue, d.error.is_none()), (Action::None, Requeue::Poll, true));
    let message = "the BMC at 127.0.0.1:8000 refuses connections; Ironic is still trying to verify it";
    assert_eq!(refused(&d.status), Some(("False".into(), message.into())));
    assert_eq!(d.status.operational_status, OperationalStatus::Ok, "not an error: Ironic is the judge");
    // a poll with no look (the first seconds of a verify) keeps it; a port that answers, a look
    // that concludes nothing, or a verify that ended take it away (Ironic's word then stands)
    assert_eq!(refused(&look(&d.status, &verifying, None).status), refused(&d.status));
    assert_eq!(refused(&look(&d.status, &verifying, Some(BmcReach::Accepts)).status), None);
    assert_eq!(refused(&look(&d.status, &verifying, Some(BmcReach::Unknown)).status), None);
    let mut failed = node("enroll");
    failed.last_error = Some("Failed to get power state".into());
    assert_eq!(refused(&look(&d.status, &failed, None).status), None);
    // registered: gone
    let registered = look(&d.status, &node("manageable"), None);
    assert_eq!(registered.status.provisioning.state, S::Preparing);
    assert_eq!(refused(&registered.status), None);
}

#[test]
fn a_failing_inspection_is_left_when_inspection_is_disabled() {
    let mut spec = live_spec();
    spec.as_object_mut().unwrap().remove("inspectionMode");
    let mut lab = Lab::new(spec);
    let mut failing = status_in(S::Inspecting);
    failing.operation_history.inspect.start = Some(NOW.into());
    failing.operational_status = OperationalStatus::Error;
    failing.error_type = Some(ErrorType::Inspection);
    failing.error_message = "inspection failed: The attribute Processors is missing".into();
    failing.error_count = 3;
    let mut failed = node("inspect failed");
    failed.last_error = Some("The attribute Processors is missing".into());
    // still enabled: the failure is retried
    let d = lab.decide(&failing, Some(&failed));
    assert_eq!(d.action, Action::Provision(ProvisionTarget::Inspect));

    lab.host.spec.inspection_mode = Some(InspectionMode::Disabled);
    let d = lab.decide(&failing, Some(&failed));
    assert_eq!((d.action, d.status.error_type), (Action::Provision(ProvisionTarget::Manage), None));
    let mut waiting = node("inspect wait");
    waiting.target_provision_state = Some("manageable".into());
    assert_eq!(lab.decide(&failing, Some(&waiting)).action, Action::Provision(ProvisionTarget::Abort));
    let mut inspecting = node("inspecting");
    inspecting.target_provision_state = Some("manageable".into());
    assert_eq!(lab.decide(&failing, Some(&inspecting)).action, Action::None);
    let d = lab.decide(&failing, Some(&node("manageable")));
    assert_eq!(
        (d.status.provisioning.state, d.status.operational_status),
        (S::Preparing, OperationalStatus::Ok)
    );
    assert!(d.status.error_message.is_empty() && d.status.operation_history.inspect.end.is_some());
}

#[test]
fn hardware_details_given_by_annotation_become_the_status_when_inspection_is_disabled() {
    let mut lab = Lab::new(live_spec());
    let given = r#"{"ramMebibytes": 8192, "cpu": {"count": 4}, "hostname": "by-hand"}"#;
    lab.host.metadata.annotations = Some(
        [(metalhost_api::validation::HARDWARE_DETAILS_ANNOTATION.to_string(), given.to_string())].into(),
    );
    let d = lab.decide(&status_in(S::Available), Some(&node("manageable")));
    let hardware = d.status.hardware.expect("status.hardware");
    assert_eq!((hardware.ram_mebibytes, hardware.hostname.as_deref()), (Some(8192), Some("by-hand")));
    // hardware in the status already is kept; with inspection enabled the annotation is not used
    let mut inspected = status_in(S::Available);
    inspected.hardware = Some(HardwareDetails { ram_mebibytes: Some(1024), ..Default::default() });
    assert_eq!(lab.decide(&inspected, Some(&node("manageable"))).status.hardware, inspected.hardware);
    lab.host.spec.inspection_mode = None;
    assert_eq!(lab.decide(&status_in(S::Available), Some(&node("manageable"))).status.hardware, None);
    // one that does not decode is not used
    lab.host.spec.inspection_mode = Some(InspectionMode::Disabled);
    lab.host.metadata.annotations =
        Some([(metalhost_api::validation::HARDWARE_DETAILS_ANNOTATION.to_string(), "{".to_string())].into());
    assert_eq!(lab.decide(&status_in(S::Available), Some(&node("manageable"))).status.hardware, None);
}

#[test]
fn a_host_registered_again_after_a_failed_inspection_inspects_afresh() {
    let mut spec = live_spec();
    spec.as_object_mut().unwrap().remove("inspectionMode");
    let lab = Lab::new(spec);
    // inspection had started (and failed), then the host registered again (new credentials, a
    // vanished node): the node is manageable with no inventory
    let mut status = status_in(S::Registering);
    status.operation_history.inspect.start = Some(NOW.into());
    let d = lab.decide(&status, Some(&node("manageable")));
    assert_eq!(d.status.provisioning.state, S::Inspecting);
    let d = lab.decide(&d.status, Some(&node("manageable")));
    assert_eq!(d.action, Action::Provision(ProvisionTarget::Inspect), "inspected, not skipped");
}

#[test]
fn a_reinspection_request_inspects_an_available_host_afresh() {
    let mut spec = live_spec();
    spec.as_object_mut().unwrap().remove("inspectionMode");
    spec.as_object_mut().unwrap().remove("image");
    let mut lab = Lab::new(spec);
    let mut inspected = status_in(S::Available);
    inspected.operation_history.inspect = OperationMetric {
        start: Some("2026-11-01T00:00:00Z".into()),
        end: Some("2026-11-01T00:05:00Z".into()),
    };
    // no request: the available host stays
    assert_eq!(lab.decide(&inspected, Some(&node("manageable"))).status.provisioning.state, S::Available);

    lab.host.metadata.annotations = Some([(INSPECT_ANNOTATION.to_string(), String::new())].into());
    let d = lab.decide(&inspected, Some(&node("manageable")));
    assert_eq!(d.status.provisioning.state, S::Inspecting);
    assert_eq!(d.status.operation_history.inspect, OperationMetric::default(), "afresh");
    // the runtime has taken the request away: the inspection is started, not read as over
    lab.host.metadata.annotations = None;
    let d = lab.decide(&d.status, Some(&node("manageable")));
    assert_eq!(d.action, Action::Provision(ProvisionTarget::Inspect));
    // a node an earlier deploy left available is made manageable first, as upstream
    let mut fresh = status_in(S::Inspecting);
    fresh.operation_history.inspect = OperationMetric::default();
    assert_eq!(
        lab.decide(&fresh, Some(&node("available"))).action,
        Action::Provision(ProvisionTarget::Manage)
    );

    // with inspection disabled the request is not one (upstream would go round for ever)
    lab.host.metadata.annotations = Some([(INSPECT_ANNOTATION.to_string(), String::new())].into());
    lab.host.spec.inspection_mode = Some(InspectionMode::Disabled);
    assert_eq!(lab.decide(&inspected, Some(&node("manageable"))).status.provisioning.state, S::Available);
}

/// Issue 27: the BIOS settings a HostFirmwareSettings asks for (valid, for its current spec) are
/// applied in preparing by one manual clean of the manageable node, as upstream's; once the
/// machine reports them the host is available again, with no second clean.
#[test]
fn wanted_bios_settings_are_applied_in_preparing_by_one_manual_clean() {
    use metalhost_api::firmware::SettingValue;
    let mut spec = live_spec();
    spec["image"] = Value::Null;
    let lab = Lab::new(spec);
    let mut record = lab.record(false);
    record.firmware_settings =
        [("ProcTurboMode".to_string(), SettingValue::String("Disabled".into()))].into();
    let decide = |state, node: &Node, bios: Option<&str>| {
        let observed = Observed {
            node: Some(node.clone()),
            bios: bios.map(|v| [("ProcTurboMode".to_string(), v.to_string())].into()),
            ..Default::default()
        };
        decide(&Input::new(&record, &lab.defaults, NOW, false), &status_in(state), &observed)
    };
    let manageable = node("manageable");
    // available, the machine without the setting: to preparing, then the clean step
    let d = decide(ProvisioningState::Available, &manageable, Some("Enabled"));
    assert_eq!((d.status.provisioning.state, &d.action), (ProvisioningState::Preparing, &Action::None));
    let d = decide(ProvisioningState::Preparing, &manageable, Some("Enabled"));
    let step = json!({"interface": "bios", "step": "apply_configuration",
        "args": {"settings": [{"name": "ProcTurboMode", "value": "Disabled"}]}});
    assert_eq!(d.action, Action::Clean { steps: vec![step], disable_ramdisk: true });
    // its BIOS not read on this look (it came to preparing on it): read at the next, soon
    let d = decide(ProvisioningState::Preparing, &manageable, None);
    assert_eq!(
        (&d.action, d.requeue, d.status.provisioning.state),
        (&Action::None, Requeue::Poll, ProvisioningState::Preparing)
    );
    // a node made available by an earlier deploy is made manageable first
    let d = decide(ProvisioningState::Preparing, &node("available"), Some("Enabled"));
    assert_eq!(d.action, Action::Provision(ProvisionTarget::Manage));
    // cleaning: wait; failed: a preparation error, then manageable again
    let mut cleaning = node("clean wait");
    cleaning.target_provision_state = Some("manageable".into());
    let d = decide(ProvisioningState::Preparing, &cleaning, None);
    assert_eq!((&d.action, d.status.provisioning.state), (&Action::None, ProvisioningState::Preparing));
    let mut failed = node("clean failed");
    failed.last_error = Some("BIOS refused".into());
    failed.maintenance = true;
    let d = decide(ProvisioningState::Preparing, &failed, None);
    assert_eq!(d.status.error_type, Some(ErrorType::Preparation), "{:?}", d.status);
    // the retry: out of the maintenance Ironic put the node in (it cleans none there), then manage
    let retry = |node: &Node| {
        let observed = Observed { node: Some(node.clone()), ..Default::default() };
        decide_from(&record, &lab.defaults, &d.status, &observed).action
    };
    let Action::Patch(patch) = retry(&failed) else { panic!("no maintenance patch") };
    assert_eq!(
        serde_json::to_value(&patch).unwrap(),
        json!([{"op": "add", "path": "/maintenance", "value": false}])
    );
    failed.maintenance = false;
    assert_eq!(retry(&failed), Action::Provision(ProvisionTarget::Manage));
    // nothing wanted any more (the HostFirmwareSettings edited, deleted): a clean under way is
    // still waited for, a failed one still told
    let mut nothing = lab.record(false);
    nothing.firmware_settings.clear();
    let observed = Observed { node: Some(cleaning.clone()), ..Default::default() };
    let d = decide_from(&nothing, &lab.defaults, &status_in(ProvisioningState::Preparing), &observed);
    assert_eq!(d.status.provisioning.state, ProvisioningState::Preparing);
    let observed = Observed { node: Some(failed.clone()), ..Default::default() };
    let d = decide_from(&nothing, &lab.defaults, &status_in(ProvisioningState::Preparing), &observed);
    assert_eq!(d.status.error_type, Some(ErrorType::Preparation));
    // the machine took it: available, no clean again (the HostFirmwareSettings may lag behind)
    let d = decide(ProvisioningState::Preparing, &manageable, Some("Disabled"));
    assert_eq!((d.status.provisioning.state, &d.action), (ProvisioningState::Available, &Action::None));
    let d = decide(ProvisioningState::Available, &manageable, Some("Disabled"));
    assert_eq!(d.status.provisioning.state, ProvisioningState::Available);
    assert!(!matches!(d.action, Action::Clean { .. }), "{:?}", d.action);
    // a driver whose BIOS steps need the agent gets it booted, as upstream's
    let mut ilo = node("manageable");
    ilo.driver = "ilo5".into();
    let d = decide(ProvisioningState::Preparing, &ilo, Some("Enabled"));
    assert!(matches!(d.action, Action::Clean { disable_ramdisk: false, .. }), "{:?}", d.action);
}

fn decide_from(
    record: &HostInput,
    defaults: &NodeDefaults,
    status: &BareMetalHostStatus,
    observed: &Observed,
) -> Decision {
    decide(&Input::new(record, defaults, NOW, false), status, observed)
}
