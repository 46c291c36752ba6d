//! One reconcile of one host: apply the host policy, observe Ironic, decide, act, and produce the
//! new status with its events. Runtimes (standalone and Kubernetes) call this and only store what
//! comes out. See docs/architecture.md ("The seam").

use std::sync::Arc;
use std::time::Duration;

use metalhost_api::BareMetalHost;
use metalhost_api::data_image::DataImage;
use metalhost_api::host::{BareMetalHostStatus, ProvisioningState};
use metalhost_ironic::ProvisionState;
use tracing::{debug, warn};

use crate::chain::{self, Context, Next, Outcome, Settled};
use crate::data_image;
use crate::input::{Bmc, HostInput};
use crate::plan::NodeDefaults;
use crate::policy::{self, Admission, Gate};
use crate::provisioner::{self, IronicProvisioner, MediaError};
use crate::vocab::{Action, Observed, Requeue, Wants};

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

    /// Whether there is a slot for the host under the provisioning limit. A failure to list
    /// Ironic's nodes counts as no room (the host waits and asks again).
    async fn has_slot(&self, record: &HostInput, limit: usize) -> bool {
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

    /// One look at a host's DataImage: reads the host's node (and its virtual media when it
    /// matters), decides ([`data_image::decide`]) and makes the Ironic call. Never fails: a failure
    /// is in the returned status, or waited out. `state` and `node_id`: the host's status.
    pub async fn keep_data_image(
        &self,
        image: &DataImage,
        host: &BareMetalHost,
        state: ProvisioningState,
        node_id: &str,
        now: &str,
    ) -> data_image::Look {
        let node = match node_id.is_empty() {
            true => None,
            false => match self.provisioner.media_node(host, node_id).await {
                Ok(node) => node,
                // the host's own look reports the node of another name
                Err(MediaError::NotTheHosts(_)) => None,
                // Ironic out of reach: the host's own look tells it; nothing is decided blind
                Err(e) => {
                    debug!(host = %host.qualified_name(), error = %e, "cannot read the node for the DataImage");
                    return data_image::Look::unchanged(image);
                }
            },
        };
        let node = match node {
            Some((mut media, idle)) => {
                if idle && data_image::wants_vmedia(image, state, &media) {
                    self.provisioner.read_vmedia(node_id, &mut media).await;
                }
                Some(media)
            }
            None => None,
        };
        let look = data_image::decide(image, state, node.as_ref(), now);
        let previous = image.status.clone().unwrap_or_default();
        match &look.step {
            Some(step) => match self.provisioner.media_step(node_id, step).await {
                Ok(()) => look,
                Err(e) => {
                    let transient = matches!(&e, MediaError::Ironic(i) if i.is_transient())
                        || matches!(&e, MediaError::Provision(p) if p.is_transient());
                    data_image::step_failed(look, &previous, &e.to_string(), transient, now)
                }
            },
            None => look,
        }
    }

    /// One step for one host, from its resolved input and last status; `now` is the time,
    /// RFC 3339. Never fails: every failure ends up in the returned status and error.
    pub async fn reconcile(&self, input: &HostInput, previous: &BareMetalHostStatus, now: &str) -> Outcome {
        // a state this build does not know: nothing done, nothing written, said once per look
        // (deletion goes on: the host leaves whatever its state)
        if previous.provisioning.state == ProvisioningState::Unknown && !input.deleting {
            return Outcome { events: vec![policy::unknown_state_event()], ..Outcome::unchanged(previous) };
        }
        // what is written starts from the last status with its error redacted: a message carried
        // over from elsewhere (BMO's status, a hand-edited status file) never shows userinfo
        let start = policy::redacted(previous);
        match policy::gate(input, &start) {
            Gate::Paused | Gate::Detached(None) => Outcome::unchanged(previous),
            Gate::Detached(Some(mut status)) => {
                status.last_updated = Some(now.to_string());
                let events = policy::events(previous, &status, &[]);
                Outcome { status: *status, changed: true, events, ..Outcome::unchanged(previous) }
            }
            Gate::Proceed => self.step(input, &start, now).await.finish(input, previous),
        }
    }

    /// Observes, settles the status-only steps, takes a provisioning slot when one is needed,
    /// and carries out the decided writes.
    async fn step(&self, record: &HostInput, previous: &BareMetalHostStatus, now: &str) -> Outcome {
        let ctx = Context { record, defaults: &self.defaults, now };
        let host = record.host.qualified_name();
        let wants = policy::wants(record, previous);
        let observed = if wants.node {
            match self.provisioner.observe(&record.host, &previous.provisioning.id, wants).await {
                Ok(o) => reach_when_verifying(record, wants, now, o).await,
                Err(e) => {
                    warn!(%host, error = %e, "cannot observe Ironic node");
                    return Outcome::observe_failed(previous, now, e);
                }
            }
        } else {
            Observed::default()
        };
        let settled = chain::settle(&ctx, previous, &observed);
        // Ironic holds the node's lock for a task of its own (attaching a DataImage, which may
        // download a whole ISO, say): a change would be refused (409) and told as the host's
        // error; it waits, and the next look decides again. Not for ever: a lock held longer
        // than LOCK_WAIT (a conductor that died holding it) is told as the refusal it gets.
        let locked = observed.node.as_ref().is_some_and(|n| {
            n.reservation.is_some()
                && n.updated_at
                    .as_deref()
                    .and_then(|at| elapsed(at, now))
                    .is_some_and(|held| held < LOCK_WAIT)
        });
        if locked && settled.decision.action.changes_the_node() {
            debug!(%host, action = %settled.decision.action.kind(), "the node is locked by Ironic; waiting");
            return Outcome { requeue: Requeue::Poll, ..Outcome::unchanged(previous) };
        }
        let state = settled.decision.status.provisioning.state;
        debug!(%host, %state, action = %settled.decision.action.kind(), "decided");
        // held until this step's requests are sent (the end of this call), so that two hosts of
        // this process never both take the last slot
        let _slot = match settled.admission(&ctx, previous, self.provisioning_limit) {
            Admission::Free => None,
            Admission::NeedsSlot { limit } => {
                let guard = self.slot_lock.lock().await;
                if !self.has_slot(record, limit).await {
                    debug!(%host, %state, "delayed: provisioning limit");
                    return settled.delayed(now);
                }
                Some(guard)
            }
        };
        self.write(&ctx, settled.admitted(), observed).await
    }

    /// Carries out the settled decision's write and those that follow it at once.
    async fn write(&self, ctx: &Context<'_>, mut settled: Settled, mut observed: Observed) -> Outcome {
        for actions in 1.. {
            let written = match &settled.decision.action {
                Action::CreateNode(fields) => self.provisioner.create_node(fields).await.map(Some),
                other => self
                    .provisioner
                    .execute(other, observed.node.as_ref())
                    .await
                    .map(|n| n.map(|n| (n, false))),
            };
            if let Err(error) = &written {
                warn!(host = %ctx.record.host.qualified_name(), %error, "action failed");
            }
            settled = match chain::after_write(ctx, settled, written, &mut observed, actions) {
                Next::Done(outcome) => return *outcome,
                Next::Act(next) => *next,
            };
            debug!(host = %ctx.record.host.qualified_name(), action = %settled.decision.action.kind(), "chained");
        }
        unreachable!("the writes of one reconcile are bounded by chain::MAX_CHAINED_ACTIONS")
    }
}

/// How long a host's write waits for a node Ironic holds locked, counted from the node's last
/// change (taking the lock is one); then it is sent, and Ironic's refusal told.
const LOCK_WAIT: Duration = Duration::from_secs(300);

/// How long Ironic verifies a node before metalhost tries the BMC's port itself (a verify that
/// goes well takes a second or two: the BMC is not bothered then).
const VERIFYING_BEFORE_REACH: Duration = Duration::from_secs(5);

/// Tries the BMC's port once Ironic has verified the node for a while (its own retries take
/// minutes to give up on a port that refuses connections).
async fn reach_when_verifying(
    record: &HostInput,
    wants: Wants,
    now: &str,
    mut observed: Observed,
) -> Observed {
    let verifying = observed.node.as_ref().is_some_and(|n| {
        n.provision_state == ProvisionState::Verifying
            && n.provision_updated_at.as_deref().and_then(|since| elapsed(since, now))
                >= Some(VERIFYING_BEFORE_REACH)
    });
    if let (true, true, Bmc::Ready { access, .. }) = (wants.bmc_reach, verifying, &record.bmc)
        && let Some((host, port)) = access.tcp_endpoint()
    {
        observed.bmc_reach = Some(provisioner::reach(&host, port).await);
    }
    observed
}

/// The time from `since` to `now`, both RFC 3339 in UTC (Ironic's `+00:00` or `Z`), to the
/// second; None when either does not parse or `now` is earlier.
fn elapsed(since: &str, now: &str) -> Option<Duration> {
    let seconds = |t: &str| humantime::parse_rfc3339_weak(t.get(..19)?).ok();
    seconds(now)?.duration_since(seconds(since)?).ok()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use metalhost_api::BareMetalHost;
    use metalhost_ironic::ClientConfig;

    use crate::vocab::Requeue;

    use super::*;

    #[test]
    fn elapsed_compares_ironic_and_runtime_times_to_the_second() {
        let at = |since, now| elapsed(since, now).map(|d| d.as_secs());
        assert_eq!(at("2026-12-05T05:06:28.123456+00:00", "2026-12-05T05:06:34Z"), Some(6));
        assert_eq!(at("2026-12-05T05:06:28+00:00", "2026-12-05T05:06:28.900Z"), Some(0));
        assert_eq!(at("2026-12-05T05:06:28+00:00", "2026-12-05T05:06:20Z"), None);
        assert_eq!(at("yesterday", "2026-12-05T05:06:20Z"), None);
        assert_eq!(at("2026-12-05T05:06:28+00:00", "2026-12-05T05:0"), None);
    }

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
        assert!(outcome.events.iter().all(|e| !e.note.as_str().contains("s3cr3t")), "{:?}", outcome.events);
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

    #[tokio::test]
    async fn a_node_ironic_holds_locked_is_waited_for_not_changed() {
        use wiremock::matchers::{method, path};
        use wiremock::{Mock, ResponseTemplate};
        let server = ironic().await;
        let node = |reservation: &str| {
            serde_json::json!({"uuid": NODE, "name": "lab~h1", "driver": "redfish",
                               "provision_state": "enroll", "reservation": reservation,
                               "updated_at": "2026-12-06T00:00:00+00:00"})
        };
        Mock::given(method("GET"))
            .and(path(format!("/v1/nodes/{NODE}")))
            .respond_with(ResponseTemplate::new(200).set_body_json(node("conductor-1")))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/v1/ports"))
            .respond_with(ResponseTemplate::new(200).set_body_json(
                serde_json::json!({"ports": [{"uuid": "p1", "address": "52:54:00:00:00:01", "node_uuid": NODE}]}),
            ))
            .mount(&server)
            .await;
        let provisioner = IronicProvisioner::connect_lazily(ClientConfig::new(server.uri()));
        let reconciler = Reconciler::new(provisioner, NodeDefaults::default());
        let mut registering = BareMetalHostStatus::default();
        registering.provisioning.state = ProvisioningState::Registering;
        registering.provisioning.id = NODE.into();
        let outcome = reconciler.reconcile(&fresh_host(), &registering, "2026-12-06T00:00:05Z").await;
        assert!(calls(&server).await.iter().all(|c| c.starts_with("GET")), "{:?}", calls(&server).await);
        assert_eq!(outcome.status.provisioning.state, ProvisioningState::Registering);
        assert_eq!((outcome.requeue, outcome.error.is_none()), (Requeue::Poll, true), "{:?}", outcome.error);
        // held for longer than anyone waits (a conductor that died holding it): the write goes,
        // and what Ironic answers is told
        reconciler.reconcile(&fresh_host(), &registering, "2026-12-06T00:05:01Z").await;
        let sent = calls(&server).await;
        assert!(sent.iter().any(|c| c.starts_with("PATCH /v1/nodes/")), "{sent:?}");
    }

    #[tokio::test]
    async fn an_error_carried_over_from_an_earlier_status_is_written_redacted() {
        use wiremock::matchers::{method, path};
        use wiremock::{Mock, ResponseTemplate};
        let server = ironic().await;
        // the node's deploy failed; the status (BMO's, or edited by hand) quotes a BMC password
        Mock::given(method("GET"))
            .and(path(format!("/v1/nodes/{NODE}")))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
                "uuid": NODE, "name": "lab~h1", "driver": "redfish", "provision_state": "deploy failed",
                "target_provision_state": "active", "last_error": "boom"
            })))
            .mount(&server)
            .await;
        let mut previous = BareMetalHostStatus::default();
        previous.provisioning.state = ProvisioningState::Provisioning;
        previous.provisioning.id = NODE.into();
        previous.operational_status = metalhost_api::OperationalStatus::Error;
        previous.error_type = Some(metalhost_api::ErrorType::Provisioning);
        previous.error_message = "cannot reach redfish://admin:s3cr3t@10.0.0.1/x".into();
        let provisioner = IronicProvisioner::connect_lazily(ClientConfig::new(server.uri()));
        let reconciler = Reconciler::new(provisioner, NodeDefaults::default());
        let outcome = reconciler.reconcile(&fresh_host(), &previous, "2026-12-04T00:00:00Z").await;
        // the failed deploy is retried while the error stays shown: redacted
        assert_eq!(
            outcome.action,
            crate::vocab::ActionKind::Provision(metalhost_ironic::ProvisionTarget::Deleted)
        );
        assert_eq!(outcome.status.error_message, "cannot reach redfish://***@10.0.0.1/x");
        assert!(outcome.changed, "the redacted message is written");
    }
}
