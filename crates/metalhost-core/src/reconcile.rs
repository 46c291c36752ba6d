//! One reconcile of one host: apply the host policy, observe Ironic, decide, act, and produce the
//! new status with its events. Runtimes (standalone and Kubernetes) call this and only store what
//! comes out. See docs/architecture.md ("The seam").

use std::sync::Arc;

use metalhost_api::host::{BareMetalHostStatus, ProvisioningState};
use tracing::{debug, warn};

use crate::error::HostError;
use crate::input::HostInput;
use crate::machine::{self, Input, error_type_for};
use crate::plan::NodeDefaults;
use crate::policy::{self, Gate, HostEvent};
use crate::provisioner::IronicProvisioner;
use crate::vocab::{Action, ActionKind, Observed, Requeue};

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
    fn unchanged(previous: &BareMetalHostStatus) -> Self {
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
}

/// Reconciles hosts against one Ironic.
#[derive(Debug, Clone)]
pub struct Reconciler {
    provisioner: IronicProvisioner,
    defaults: NodeDefaults,
    provisioning_limit: Option<usize>,
    /// Held from counting the busy nodes until the step that took a slot has been sent, so that
    /// two hosts of this process never both take the last slot (shared by the clones).
    slot_lock: Arc<tokio::sync::Mutex<()>>,
}

impl Reconciler {
    /// A reconciler using this provisioner and these node defaults.
    pub fn new(provisioner: IronicProvisioner, defaults: NodeDefaults) -> Self {
        Reconciler { provisioner, defaults, provisioning_limit: None, slot_lock: Arc::default() }
    }

    /// At most `limit` nodes inspecting, provisioning or deprovisioning at once (BMO's
    /// `PROVISIONING_LIMIT`; see [`policy::has_capacity`]): the others wait, `delayed`.
    pub fn with_provisioning_limit(mut self, limit: Option<usize>) -> Self {
        self.provisioning_limit = limit;
        self
    }

    /// Whether the step decided starts something that needs a provisioning-limit slot.
    fn needs_slot(&self, previous: &BareMetalHostStatus, decision: &machine::Decision) -> bool {
        let state = decision.status.provisioning.state;
        let starts = state != previous.provisioning.state || decision.action != Action::None;
        self.provisioning_limit.is_some() && policy::needs_slot(state) && starts
    }

    /// Whether there is a slot for the host under the provisioning limit. A failure to list
    /// Ironic's nodes counts as no room (the host waits and asks again).
    async fn has_slot(&self, record: &HostInput) -> bool {
        let Some(limit) = self.provisioning_limit else { return true };
        let nodes = match self.provisioner.client().await {
            Ok(client) => client.list_nodes().await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let nodes = match nodes {
            Ok(nodes) => nodes,
            Err(e) => {
                warn!(host = %record.host.qualified_name(), error = %e, "cannot count busy nodes; waiting");
                return false;
            }
        };
        let loads: Vec<policy::NodeLoad> = nodes
            .into_iter()
            .map(|n| policy::NodeLoad {
                name: n.name.unwrap_or_default(),
                provision_state: n.provision_state,
                boot_interface: n.boot_interface.unwrap_or_default(),
            })
            .collect();
        let me = crate::plan::node_name(&record.host);
        policy::has_capacity(&loads, &me, record.bmc.has_virtual_media(), limit)
    }

    /// The provisioner.
    pub fn provisioner(&self) -> &IronicProvisioner {
        &self.provisioner
    }

    /// One step for one host, from its resolved input and last status; `now` is the time,
    /// RFC 3339. Never fails: every failure ends up in the returned status and error.
    pub async fn reconcile(&self, input: &HostInput, previous: &BareMetalHostStatus, now: &str) -> Outcome {
        // a state this build does not know: nothing done, nothing written, said once per look
        // (deletion goes on: the host leaves whatever its state)
        if previous.provisioning.state == ProvisioningState::Unknown && !input.deleting {
            return Outcome { events: vec![policy::unknown_state_event()], ..Outcome::unchanged(previous) };
        }
        match policy::gate(input, previous) {
            Gate::Paused | Gate::Detached(None) => return Outcome::unchanged(previous),
            Gate::Detached(Some(mut status)) => {
                status.last_updated = Some(now.to_string());
                let events = policy::events(previous, &status, &[]);
                return Outcome { status: *status, changed: true, events, ..Outcome::unchanged(previous) };
            }
            Gate::Proceed => {}
        }
        let mut outcome = self.step(input, previous, now).await;
        // errors may quote a BMC address or an Ironic URL: no userinfo in a status or an event
        if outcome.status.error_message.contains('@') {
            outcome.status.error_message =
                metalhost_api::redact::redact_url_userinfo(&outcome.status.error_message);
        }
        if !outcome.forget {
            policy::record_credentials(&input.bmc, &mut outcome.status);
        }
        outcome.changed = policy::status_changed(previous, &outcome.status);
        outcome.events = policy::events(previous, &outcome.status, &outcome.states);
        outcome
    }

    /// The decision that follows a step which ended in `status`, on the same observation:
    /// credentials confirmed by the step just taken are not "changed" for the next one.
    fn decide_after(
        &self,
        record: &HostInput,
        status: &BareMetalHostStatus,
        observed: &Observed,
        now: &str,
    ) -> machine::Decision {
        let mut so_far = status.clone();
        policy::record_credentials(&record.bmc, &mut so_far);
        let changed = policy::credentials_changed(&record.bmc, &so_far);
        machine::decide(&Input::new(record, &self.defaults, now, changed), &so_far, observed)
    }

    async fn step(&self, record: &HostInput, previous: &BareMetalHostStatus, now: &str) -> Outcome {
        let credentials_changed = policy::credentials_changed(&record.bmc, previous);
        let input = Input::new(record, &self.defaults, now, credentials_changed);
        let host = &record.host;
        let wants = policy::wants(record, previous);
        let observed = if wants.node {
            match self.provisioner.observe(host, &previous.provisioning.id, wants).await {
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
                    let error = Some(HostError::Observe(Arc::new(e)));
                    return Outcome {
                        status,
                        changed: true,
                        action: ActionKind::None,
                        error,
                        requeue,
                        forget: false,
                        states,
                        events: Vec::new(),
                    };
                }
            }
        } else {
            Default::default()
        };
        let mut decision = machine::decide(&input, previous, &observed);
        // Steps that only change the status (registering → preparing → available → provisioning)
        // follow at once on the same observation: no Ironic request between them.
        let mut base = previous.clone();
        // the furthest of those steps reached before any that needs a provisioning-limit slot
        let mut before_slot = previous.clone();
        let mut states = vec![decision.status.provisioning.state];
        while decision.action == Action::None && decision.requeue == Requeue::Now && states.len() < 8 {
            if !policy::needs_slot(decision.status.provisioning.state) && before_slot == base {
                before_slot = decision.status.clone();
            }
            let next = self.decide_after(record, &decision.status, &observed, now);
            base = std::mem::replace(&mut decision, next).status;
            states.push(decision.status.provisioning.state);
        }
        states.dedup();
        let action = decision.action.kind();
        debug!(host = %host.qualified_name(), state = %decision.status.provisioning.state, %action, "decided");
        // virtual-media hosts are never limited: no count, no lock
        let needs_slot = self.needs_slot(previous, &decision) && !record.bmc.has_virtual_media();
        // held until this step's requests are sent (the end of this call)
        let _slot = if needs_slot { Some(self.slot_lock.lock().await) } else { None };
        if needs_slot && !self.has_slot(record).await {
            debug!(host = %host.qualified_name(), state = %decision.status.provisioning.state, "delayed: provisioning limit");
            // the status-only steps before the first that needs the slot are taken: the host waits
            // where upstream's waits (available, not still registering)
            let status = policy::delayed(&before_slot, now);
            let mut states: Vec<_> = states.into_iter().take_while(|s| !policy::needs_slot(*s)).collect();
            if states.is_empty() {
                states.push(status.provisioning.state);
            }
            // `reconcile` fills in `changed` and the events from the status and the states
            return Outcome {
                status,
                changed: true,
                action: ActionKind::None,
                error: None,
                requeue: Requeue::Poll,
                forget: false,
                states,
                events: Vec::new(),
            };
        }
        if decision.status.operational_status == metalhost_api::OperationalStatus::Delayed {
            // a slot is free: no longer delayed (upstream clears it the same way)
            decision.status.operational_status = metalhost_api::OperationalStatus::Ok;
        }
        let mut observed = observed;
        let mut actions = 0;
        loop {
            let decided_error = decision.error.take().map(HostError::Decided);
            let action = decision.action.kind();
            let result = match &decision.action {
                Action::CreateNode(fields) => self.provisioner.create_node(fields).await.map(Some),
                other => self
                    .provisioner
                    .execute(other, observed.node.as_ref())
                    .await
                    .map(|n| n.map(|n| (n, false))),
            };
            actions += 1;
            let node = match result {
                Ok(node) => node,
                Err(e) => {
                    let error_type = error_type_for(decision.status.provisioning.state, &decision.action);
                    let error = HostError::Action { action, source: Arc::new(e) };
                    warn!(host = %host.qualified_name(), %error, "action failed");
                    let (status, requeue) =
                        machine::failed(&base, &decision.status, error_type, error.to_string());
                    return Outcome {
                        status,
                        changed: true,
                        action,
                        error: Some(error),
                        requeue,
                        forget: false,
                        states,
                        events: Vec::new(),
                    };
                }
            };
            let mut status = decision.status;
            if let Some((node, _)) = &node {
                status.provisioning.id = node.uuid.clone();
            }
            // A node just created (or given its port) is known without asking Ironic: the
            // registration writes that follow (port, manage) go out at once, with no read between.
            // The status is written once at the end; a crash in between finds the node by name.
            let chained = match (&decision.action, node) {
                (Action::CreateNode(_), Some((created, true))) => {
                    observed = Observed { node: Some(created), port_macs: Some(Vec::new()), vmedia: None };
                    true
                }
                (Action::CreatePort(mac), _) => {
                    observed.port_macs.get_or_insert_with(Vec::new).push(mac.clone());
                    true
                }
                _ => false,
            };
            if !chained || decision.requeue != Requeue::Now || actions >= MAX_CHAINED_ACTIONS {
                let forget = decision.action == Action::Forget;
                return Outcome {
                    status,
                    changed: true,
                    action,
                    error: decided_error,
                    requeue: decision.requeue,
                    forget,
                    states,
                    events: Vec::new(),
                };
            }
            decision = self.decide_after(record, &status, &observed, now);
            base = status;
            states.push(decision.status.provisioning.state);
            states.dedup();
            debug!(host = %host.qualified_name(), state = %decision.status.provisioning.state, action = %decision.action.kind(), "chained");
        }
    }
}

/// The most Ironic writes one reconcile makes: create node, create port, manage.
const MAX_CHAINED_ACTIONS: usize = 3;

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use metalhost_api::BareMetalHost;
    use metalhost_ironic::ClientConfig;

    use super::*;

    #[tokio::test]
    async fn no_password_from_a_bmc_address_reaches_the_status_or_an_event() {
        // an unusable BMC needs no Ironic: the dead URL is never dialled
        let provisioner = IronicProvisioner::connect_lazily(ClientConfig::new("http://127.0.0.1:9"));
        let reconciler = Reconciler::new(provisioner, NodeDefaults::default());
        let host: BareMetalHost = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "h1", "namespace": "lab"},
            "spec": {"online": true, "bmc": {"address": "foo://admin:s3cr3t@bmc", "credentialsName": "c"}},
        }))
        .unwrap();
        let secrets: BTreeMap<(String, String), k8s_openapi::api::core::v1::Secret> = BTreeMap::new();
        let input = HostInput::resolve(host, false, &secrets);
        let outcome =
            reconciler.reconcile(&input, &BareMetalHostStatus::default(), "2026-11-25T00:00:00Z").await;
        let message = &outcome.status.error_message;
        assert!(message.contains("Unknown BMC type 'foo'") && !message.contains("s3cr3t"), "{message}");
        assert!(outcome.events.iter().all(|e| !e.note.contains("s3cr3t")), "{:?}", outcome.events);
        assert_eq!(reconciler.provisioner().request_count(), 0);
    }

    const NODE: &str = "1be26c0b-03f2-4d2e-ae87-c02d7f33c123";

    /// A live-ISO host on virtual media with its credentials, never registered.
    fn fresh_host() -> HostInput {
        let host: BareMetalHost = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "h1", "namespace": "lab"},
            "spec": {"online": true, "bootMACAddress": "52:54:00:00:00:01", "inspectionMode": "disabled",
                     "automatedCleaningMode": "disabled",
                     "bmc": {"address": "redfish-virtualmedia+http://127.0.0.1:8000/redfish/v1/Systems/1",
                             "credentialsName": "c"},
                     "image": {"url": "http://images/live.iso", "format": "live-iso"}},
        }))
        .unwrap();
        let secret: k8s_openapi::api::core::v1::Secret = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "c", "namespace": "lab", "resourceVersion": "1"},
            "stringData": {"username": "u", "password": "p"},
        }))
        .unwrap();
        let secrets: BTreeMap<(String, String), _> = [(("lab".to_string(), "c".to_string()), secret)].into();
        HostInput::resolve(host, false, &secrets)
    }

    /// An Ironic that negotiates a version and accepts ports and provision-state changes.
    async fn ironic() -> wiremock::MockServer {
        use wiremock::matchers::{method, path, path_regex};
        use wiremock::{Mock, ResponseTemplate};
        let server = wiremock::MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/"))
            .respond_with(ResponseTemplate::new(200).set_body_json(
                serde_json::json!({"default_version": {"id": "v1", "min_version": "1.1", "version": "1.99"}}),
            ))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/v1/ports"))
            .respond_with(ResponseTemplate::new(201).set_body_json(
                serde_json::json!({"uuid": "p1", "address": "52:54:00:00:00:01", "node_uuid": NODE}),
            ))
            .mount(&server)
            .await;
        Mock::given(method("PUT"))
            .and(path_regex("^/v1/nodes/[^/]+/states/provision$"))
            .respond_with(ResponseTemplate::new(202))
            .mount(&server)
            .await;
        server
    }

    /// `METHOD path` of every request Ironic received, but the version negotiation.
    async fn calls(server: &wiremock::MockServer) -> Vec<String> {
        let requests = server.received_requests().await.unwrap();
        requests
            .iter()
            .filter(|r| r.url.path() != "/")
            .map(|r| format!("{} {}", r.method, r.url.path()))
            .collect()
    }

    #[tokio::test]
    async fn a_new_host_sends_create_port_and_manage_without_reading_between() {
        use wiremock::matchers::{method, path};
        use wiremock::{Mock, ResponseTemplate};
        let server = ironic().await;
        // Ironic answers a create with the node it made: what was asked, enrolled
        Mock::given(method("POST"))
            .and(path("/v1/nodes"))
            .respond_with(|req: &wiremock::Request| {
                let mut node: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
                node["uuid"] = serde_json::json!(NODE);
                node["provision_state"] = serde_json::json!("enroll");
                node["driver_info"]["redfish_password"] = serde_json::json!("******");
                ResponseTemplate::new(201).set_body_json(node)
            })
            .mount(&server)
            .await;
        let provisioner = IronicProvisioner::connect_lazily(ClientConfig::new(server.uri()));
        let reconciler = Reconciler::new(provisioner, NodeDefaults::default());
        let outcome = reconciler
            .reconcile(&fresh_host(), &BareMetalHostStatus::default(), "2026-11-29T00:00:00Z")
            .await;
        assert!(outcome.error.is_none(), "{:?}", outcome.error);
        assert_eq!(
            calls(&server).await,
            [
                "POST /v1/nodes".to_string(),
                "POST /v1/ports".into(),
                format!("PUT /v1/nodes/{NODE}/states/provision"),
            ]
        );
        let manage: serde_json::Value =
            serde_json::from_slice(&server.received_requests().await.unwrap().last().unwrap().body).unwrap();
        assert_eq!(manage["target"], "manage");
        assert_eq!(outcome.status.provisioning.id, NODE);
        assert_eq!(outcome.status.provisioning.state, ProvisioningState::Registering);
        assert_eq!(outcome.requeue, Requeue::Poll);
    }

    #[tokio::test]
    async fn a_create_that_finds_the_name_taken_takes_that_node_and_looks_again() {
        use wiremock::matchers::{method, path};
        use wiremock::{Mock, ResponseTemplate};
        let server = ironic().await;
        // a node of this name exists: a create whose answer was lost before a crash
        Mock::given(method("POST"))
            .and(path("/v1/nodes"))
            .respond_with(ResponseTemplate::new(409).set_body_json(serde_json::json!({
                "error_message": "{\"faultstring\": \"A node with name lab~h1 already exists.\"}"
            })))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/v1/nodes/lab~h1"))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
                "uuid": NODE, "name": "lab~h1", "driver": "redfish", "provision_state": "manageable"
            })))
            .mount(&server)
            .await;
        let provisioner = IronicProvisioner::connect_lazily(ClientConfig::new(server.uri()));
        let reconciler = Reconciler::new(provisioner, NodeDefaults::default());
        let outcome = reconciler
            .reconcile(&fresh_host(), &BareMetalHostStatus::default(), "2026-11-29T00:00:00Z")
            .await;
        assert!(outcome.error.is_none(), "{:?}", outcome.error);
        // no port and no manage on the strength of a node assumed new: the next reconcile
        // observes the one found
        assert_eq!(calls(&server).await, ["POST /v1/nodes", "GET /v1/nodes/lab~h1"]);
        assert_eq!(outcome.status.provisioning.id, NODE);
        assert_eq!(outcome.requeue, Requeue::Now);
    }
}
