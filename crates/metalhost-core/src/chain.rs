//! How one reconcile strings the state machine's steps together (pure): steps that only change the
//! status follow each other at once on the same observation, and after an Ironic write the next
//! registration write follows without a read between. [`crate::reconcile`] does the I/O in between
//! and this module says, from data, what comes next and what the reconcile produced.

use std::sync::Arc;

use metalhost_api::host::{BareMetalHostStatus, OperationalStatus, ProvisioningState};
use metalhost_api::text::Redacted;
use metalhost_ironic::Node;

use crate::error::HostError;
use crate::input::HostInput;
use crate::machine::{self, Decision, Input, error_type_for};
use crate::plan::NodeDefaults;
use crate::policy::{self, HostEvent};
use crate::provisioner::ProvisionError;
use crate::vocab::{Action, ActionKind, Observed, Requeue};

/// The most status-only steps one reconcile takes (registering → preparing → available → …).
const MAX_STATUS_STEPS: usize = 8;

/// The most Ironic writes one reconcile makes: create node, create port, manage.
pub const MAX_CHAINED_ACTIONS: usize = 3;

/// What one reconcile did, for the runtime to store.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The new status.
    pub status: BareMetalHostStatus,
    /// Whether the status changed in more than its time stamp: only then is it written.
    pub changed: bool,
    /// The step taken (`None` when only the status changed, or nothing at all).
    pub action: ActionKind,
    /// What went wrong, if anything (also in the status).
    pub error: Option<HostError>,
    /// When to reconcile again (turn into a delay with [`policy::Schedule`]).
    pub requeue: Requeue,
    /// The host is out of Ironic and its record may be dropped.
    pub forget: bool,
    /// The states passed through, in order, ending with the new one (several when steps that
    /// need no Ironic call followed each other).
    pub states: Vec<ProvisioningState>,
    /// What to tell the user (Kubernetes Events, the standalone event log).
    pub events: Vec<HostEvent>,
}

impl Outcome {
    /// Nothing done and nothing to write.
    pub fn unchanged(previous: &BareMetalHostStatus) -> Self {
        Outcome {
            status: previous.clone(),
            changed: false,
            action: ActionKind::None,
            error: None,
            requeue: Requeue::Never,
            forget: false,
            states: vec![previous.provisioning.state],
            events: Vec::new(),
        }
    }

    /// A new status from a step; `changed` and the events are filled in by [`Outcome::finish`].
    fn stepped(status: BareMetalHostStatus, requeue: Requeue, states: Vec<ProvisioningState>) -> Self {
        let mut outcome = Outcome::unchanged(&status);
        outcome.status = status;
        outcome.requeue = requeue;
        outcome.states = states;
        outcome
    }

    /// Ironic could not be asked about the node: the error is recorded and the host backs off.
    pub fn observe_failed(previous: &BareMetalHostStatus, now: &str, error: ProvisionError) -> Self {
        let mut decided = previous.clone();
        decided.last_updated = Some(now.to_string());
        let error_type = error_type_for(previous.provisioning.state, &Action::None);
        let (status, requeue) =
            machine::failed(previous, &decided, error_type, Redacted::new(&error.to_string()));
        let states = vec![status.provisioning.state];
        Outcome {
            error: Some(HostError::Observe(Arc::new(error))),
            ..Outcome::stepped(status, requeue, states)
        }
    }

    /// The finished outcome: credentials recorded, `changed` and the events derived from the
    /// status before and after. (Errors are [`Redacted`] where they are recorded.)
    pub fn finish(mut self, input: &HostInput, previous: &BareMetalHostStatus) -> Self {
        if !self.forget {
            policy::record_credentials(&input.bmc, &mut self.status);
        }
        self.changed = policy::status_changed(previous, &self.status);
        self.events = policy::events(previous, &self.status, &self.states);
        self
    }
}

/// What every step of one reconcile shares.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The host's resolved input.
    pub record: &'a HostInput,
    /// Operator-wide node settings.
    pub defaults: &'a NodeDefaults,
    /// The time, RFC 3339.
    pub now: &'a str,
}

impl Context<'_> {
    /// The decision that follows a step which ended in `status`, on the same observation:
    /// credentials confirmed by the step just taken are not "changed" for the next one.
    fn decide_after(&self, status: &BareMetalHostStatus, observed: &Observed) -> Decision {
        let mut so_far = status.clone();
        policy::record_credentials(&self.record.bmc, &mut so_far);
        let changed = policy::credentials_changed(&self.record.bmc, &so_far);
        machine::decide(&Input::new(self.record, self.defaults, self.now, changed), &so_far, observed)
    }
}

/// Where the steps that need no Ironic call led: the first decision that acts or waits.
#[derive(Debug, Clone)]
pub struct Settled {
    /// The decision to carry out.
    pub decision: Decision,
    /// The status it starts from (what a failure of its action is recorded on).
    pub base: BareMetalHostStatus,
    /// The furthest status reached before a step that needs a provisioning slot: where the host
    /// waits when there is none (available, not still registering, as upstream's waits).
    pub before_slot: BareMetalHostStatus,
    /// The states passed through, deduplicated, ending with the decision's.
    pub states: Vec<ProvisioningState>,
}

/// Decides, and follows status-only steps (registering → preparing → available → provisioning)
/// at once on the same observation: no Ironic request between them.
pub fn settle(ctx: &Context<'_>, previous: &BareMetalHostStatus, observed: &Observed) -> Settled {
    let changed = policy::credentials_changed(&ctx.record.bmc, previous);
    let input = Input::new(ctx.record, ctx.defaults, ctx.now, changed);
    let mut decision = machine::decide(&input, previous, observed);
    let mut base = previous.clone();
    let mut before_slot = previous.clone();
    let mut states = vec![decision.status.provisioning.state];
    while decision.action == Action::None
        && decision.requeue == Requeue::Now
        && states.len() < MAX_STATUS_STEPS
    {
        if !policy::needs_slot(decision.status.provisioning.state) && before_slot == base {
            before_slot = decision.status.clone();
        }
        let next = ctx.decide_after(&decision.status, observed);
        base = std::mem::replace(&mut decision, next).status;
        states.push(decision.status.provisioning.state);
    }
    states.dedup();
    Settled { decision, base, before_slot, states }
}

impl Settled {
    /// The host waits for a provisioning slot: the status-only steps before the first that needs
    /// the slot are taken, and it polls.
    pub fn delayed(self, now: &str) -> Outcome {
        let status = policy::delayed(&self.before_slot, now);
        let mut states: Vec<_> = self.states.into_iter().take_while(|s| !policy::needs_slot(*s)).collect();
        if states.is_empty() {
            states.push(status.provisioning.state);
        }
        Outcome::stepped(status, Requeue::Poll, states)
    }

    /// Whether the decided step needs a provisioning slot under `limit`.
    pub fn admission(
        &self,
        ctx: &Context<'_>,
        previous: &BareMetalHostStatus,
        limit: Option<usize>,
    ) -> policy::Admission {
        let state = self.decision.status.provisioning.state;
        let starts = state != previous.provisioning.state || self.decision.action != Action::None;
        policy::admission(limit, state, starts, ctx.record.bmc.has_virtual_media())
    }

    /// A slot is free (or none was needed): a host that was waiting for one is no longer delayed
    /// (upstream clears it the same way).
    pub fn admitted(mut self) -> Self {
        if self.decision.status.operational_status == OperationalStatus::Delayed {
            self.decision.status.operational_status = OperationalStatus::Ok;
        }
        self
    }
}

/// What an Ironic write answered: the node it returned, if any, and whether it was created just
/// now (a create that found the name taken returns the existing node, not a new one).
pub type Written = Result<Option<(Node, bool)>, ProvisionError>;

/// What follows an Ironic write.
#[derive(Debug)]
pub enum Next {
    /// The reconcile is over.
    Done(Box<Outcome>),
    /// Another write follows at once (a registration write on a node known without reading).
    Act(Box<Settled>),
}

/// After the write of `settled`'s action answered `written` (the `actions`-th of this
/// reconcile): the outcome, or the next write. A node just created (or given its port) is known
/// without asking Ironic, so the registration writes that follow (port, manage) go out at once;
/// the status is written once at the end (a crash in between finds the node by name).
pub fn after_write(
    ctx: &Context<'_>,
    settled: Settled,
    written: Written,
    observed: &mut Observed,
    actions: usize,
) -> Next {
    let Settled { mut decision, base, mut states, .. } = settled;
    let action = decision.action.kind();
    let node = match written {
        Ok(node) => node,
        Err(e) => {
            let error_type = error_type_for(decision.status.provisioning.state, &decision.action);
            let error = HostError::Action { action, source: Arc::new(e) };
            let message = Redacted::new(&error.to_string());
            let (status, requeue) = machine::action_failed(&base, &decision.status, error_type, message);
            let outcome = Outcome { action, error: Some(error), ..Outcome::stepped(status, requeue, states) };
            return Next::Done(Box::new(outcome));
        }
    };
    let mut status = std::mem::take(&mut decision.status);
    if let Some((node, _)) = &node {
        status.provisioning.id = node.uuid.clone();
    }
    let chained = match (&decision.action, node) {
        (Action::CreateNode(_), Some((created, true))) => {
            *observed = Observed { node: Some(created), port_macs: Some(Vec::new()), ..Default::default() };
            true
        }
        (Action::CreatePort(mac), _) => {
            observed.port_macs.get_or_insert_with(Vec::new).push(mac.clone());
            true
        }
        _ => false,
    };
    if !chained || decision.requeue != Requeue::Now || actions >= MAX_CHAINED_ACTIONS {
        let outcome = Outcome {
            action,
            error: decision.error.map(HostError::Decided),
            forget: decision.action == Action::Forget,
            ..Outcome::stepped(status, decision.requeue, states)
        };
        return Next::Done(Box::new(outcome));
    }
    let next = ctx.decide_after(&status, observed);
    states.push(next.status.provisioning.state);
    states.dedup();
    Next::Act(Box::new(Settled { decision: next, before_slot: status.clone(), base: status, states }))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use metalhost_api::BareMetalHost;
    use metalhost_api::host::ErrorType;
    use serde_json::json;

    use super::*;

    const NOW: &str = "2026-12-04T00:00:00Z";

    /// A live-ISO host with its credentials, on `bmc` (a BMC address).
    fn record(bmc: &str) -> HostInput {
        let host: BareMetalHost = serde_json::from_value(json!({
            "metadata": {"name": "h1", "namespace": "lab"},
            "spec": {"online": true, "bootMACAddress": "52:54:00:00:00:01", "inspectionMode": "disabled",
                     "automatedCleaningMode": "disabled", "bmc": {"address": bmc, "credentialsName": "c"},
                     "image": {"url": "http://images/live.iso", "format": "live-iso"}},
        }))
        .unwrap();
        let secret = serde_json::from_value(json!({
            "metadata": {"name": "c", "namespace": "lab", "resourceVersion": "1"},
            "stringData": {"username": "u", "password": "p"},
        }))
        .unwrap();
        let secrets: BTreeMap<(String, String), _> = [(("lab".to_string(), "c".to_string()), secret)].into();
        HostInput::resolve(host, false, &secrets)
    }

    fn vmedia_host() -> HostInput {
        record("redfish-virtualmedia+http://127.0.0.1:8000/redfish/v1/Systems/1")
    }

    fn status_in(state: ProvisioningState) -> BareMetalHostStatus {
        let mut status = BareMetalHostStatus::default();
        status.provisioning.state = state;
        status.provisioning.id = "n1".into();
        status
    }

    /// The host's registered node, as Ironic shows it (password hidden), in this state.
    fn observed_for(record: &HostInput, provision_state: &str) -> Observed {
        let crate::input::Bmc::Ready { access, credentials, .. } = &record.bmc else { panic!("no BMC") };
        let options = record.options_or_default();
        let fields = crate::plan::node_create_fields(
            &record.host,
            &options,
            access,
            credentials,
            &NodeDefaults::default(),
        );
        let mut node = serde_json::Value::Object(fields);
        node["uuid"] = json!("n1");
        node["provision_state"] = json!(provision_state);
        node["power_state"] = json!("power off");
        node["driver_info"]["redfish_password"] = json!("******");
        Observed { node: Some(serde_json::from_value(node).unwrap()), ..Default::default() }
    }

    fn observed(provision_state: &str) -> Observed {
        observed_for(&vmedia_host(), provision_state)
    }

    #[test]
    fn status_only_steps_follow_each_other_up_to_the_first_write() {
        let record = vmedia_host();
        let defaults = NodeDefaults::default();
        let ctx = Context { record: &record, defaults: &defaults, now: NOW };
        let previous = status_in(ProvisioningState::Preparing);
        let settled = settle(&ctx, &previous, &observed("available"));
        assert_eq!(settled.states, [ProvisioningState::Available, ProvisioningState::Provisioning]);
        assert_eq!(settled.decision.action.kind(), ActionKind::Deploy);
        assert_eq!(settled.base.provisioning.state, ProvisioningState::Provisioning);
        // without a slot the host waits where upstream's does: available
        assert_eq!(settled.before_slot.provisioning.state, ProvisioningState::Available);
        let delayed = settled.delayed(NOW);
        assert_eq!(delayed.status.provisioning.state, ProvisioningState::Available);
        assert_eq!(delayed.status.operational_status, OperationalStatus::Delayed);
        assert_eq!(delayed.states, [ProvisioningState::Available]);
        assert_eq!((delayed.requeue, delayed.action), (Requeue::Poll, ActionKind::None));
    }

    #[test]
    fn a_slot_is_needed_to_start_provisioning_but_never_on_virtual_media() {
        let defaults = NodeDefaults::default();
        let previous = status_in(ProvisioningState::Available);
        let ipmi = record("ipmi://127.0.0.1:6230");
        let vmedia = vmedia_host();
        for (record, limit, expected) in [
            (&ipmi, Some(2), policy::Admission::NeedsSlot { limit: 2 }),
            (&ipmi, None, policy::Admission::Free),
            (&vmedia, Some(2), policy::Admission::Free),
        ] {
            let ctx = Context { record, defaults: &defaults, now: NOW };
            let settled = settle(&ctx, &previous, &observed_for(record, "available"));
            assert_eq!(settled.admission(&ctx, &previous, limit), expected);
        }
        // a host already provisioning (polled, nothing started) needs no new slot
        assert_eq!(
            policy::admission(Some(2), ProvisioningState::Provisioning, false, false),
            policy::Admission::Free
        );
    }

    #[test]
    fn a_created_node_is_given_its_port_without_a_read_and_a_failed_write_backs_off() {
        let record = vmedia_host();
        let defaults = NodeDefaults::default();
        let ctx = Context { record: &record, defaults: &defaults, now: NOW };
        let previous = BareMetalHostStatus::default();
        let mut seen = Observed::default();
        let settled = settle(&ctx, &previous, &seen);
        assert_eq!(settled.decision.action.kind(), ActionKind::CreateNode);
        let created = observed("enroll").node.map(|n| (n, true));
        let Next::Act(next) = after_write(&ctx, settled, Ok(created), &mut seen, 1) else {
            panic!("a port follows a created node")
        };
        assert_eq!(next.decision.action, Action::CreatePort("52:54:00:00:00:01".into()));
        assert_eq!(next.base.provisioning.id, "n1");
        assert_eq!(seen.port_macs, Some(Vec::new()));
        let refused = Err(ProvisionError::Validation("no".into()));
        let Next::Done(outcome) = after_write(&ctx, *next, refused, &mut seen, 2) else {
            panic!("a failed write ends the reconcile")
        };
        assert_eq!(outcome.action, ActionKind::CreatePort);
        assert_eq!(outcome.status.error_type, Some(ErrorType::Registration));
        assert_eq!(outcome.status.error_count, 1);
        assert_eq!(outcome.requeue, Requeue::Backoff(policy::backoff(1)));
        assert!(matches!(outcome.error, Some(HostError::Action { action: ActionKind::CreatePort, .. })));
    }

    /// The node Ironic answers a create with: the fields asked for, enrolled, password hidden.
    fn created(settled: &Settled) -> Option<(Node, bool)> {
        let Action::CreateNode(fields) = &settled.decision.action else { panic!("not a create") };
        let mut node = serde_json::Value::Object(fields.clone());
        node["uuid"] = json!("n1");
        node["provision_state"] = json!("enroll");
        node["driver_info"]["redfish_password"] = json!("******");
        Some((serde_json::from_value(node).unwrap(), true))
    }

    #[test]
    fn no_more_than_three_writes_follow_each_other() {
        let record = vmedia_host();
        let defaults = NodeDefaults::default();
        let ctx = Context { record: &record, defaults: &defaults, now: NOW };
        let mut seen = Observed::default();
        let settled = settle(&ctx, &BareMetalHostStatus::default(), &seen);
        let created = created(&settled);
        let Next::Act(port) = after_write(&ctx, settled, Ok(created), &mut seen, 1) else { panic!() };
        let Next::Act(manage) = after_write(&ctx, *port, Ok(None), &mut seen, 2) else { panic!() };
        assert_eq!(
            manage.decision.action.kind(),
            ActionKind::Provision(metalhost_ironic::ProvisionTarget::Manage)
        );
        let Next::Done(outcome) = after_write(&ctx, *manage, Ok(None), &mut seen, MAX_CHAINED_ACTIONS) else {
            panic!("the third write ends the reconcile")
        };
        assert_eq!(outcome.status.provisioning.state, ProvisioningState::Registering);
        assert!(outcome.error.is_none());
    }
    #[test]
    fn an_inspect_ironic_refused_is_sent_again_not_taken_for_an_inspection_over() {
        let mut record = vmedia_host();
        record.host.spec.inspection_mode = None;
        let defaults = NodeDefaults::default();
        let ctx = Context { record: &record, defaults: &defaults, now: NOW };
        // a re-inspection: the host inspects afresh, its node manageable from the first one
        let previous = status_in(ProvisioningState::Inspecting);
        let mut seen = observed_for(&record, "manageable");
        let settled = settle(&ctx, &previous, &seen);
        let inspect = ActionKind::Provision(metalhost_ironic::ProvisionTarget::Inspect);
        assert_eq!(settled.decision.action.kind(), inspect);
        let locked = metalhost_ironic::Error::Api {
            method: "PUT".into(),
            path: "/v1/nodes/n1/states/provision".into(),
            status: 409,
            message: "Node n1 is locked by host lab-conductor".into(),
            body: String::new(),
        };
        let Next::Done(outcome) =
            after_write(&ctx, settled, Err(ProvisionError::Ironic(locked)), &mut seen, 1)
        else {
            panic!("a failed write ends the reconcile")
        };
        assert_eq!(outcome.status.provisioning.state, ProvisioningState::Inspecting);
        assert_eq!(outcome.status.error_type, Some(ErrorType::Inspection));
        assert_eq!(outcome.status.operation_history.inspect.start, None, "no inspection started");
        // the next look finds the node still manageable: the Inspect goes again
        let again = settle(&ctx, &outcome.status, &seen);
        assert_eq!(again.decision.action.kind(), inspect);
        assert_eq!(again.decision.status.provisioning.state, ProvisioningState::Inspecting);
    }
}
