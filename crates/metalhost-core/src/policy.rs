//! Host policy shared by both runtimes (pure): whether a reconcile may touch Ironic at all (paused,
//! detached), whether changed credentials must be re-sent, what to observe in Ironic, when to look
//! again, and which events a step produces. See docs/architecture.md ("Policy").

use std::time::{Duration, Instant};

use metalhost_api::text::{Redacted, truncate_bytes};
use metalhost_api::{BareMetalHostStatus, CredentialsStatus, OperationalStatus, ProvisioningState};

use crate::input::{Bmc, HostInput};
use crate::vocab::{BMC_REACHABLE_CONDITION, MEDIA_INSERTED_CONDITION, Requeue, Wants, media_ejected};

/// What a reconcile may do with a host before anything else.
#[derive(Debug, Clone, PartialEq)]
pub enum Gate {
    /// Paused: no Ironic call, no status write; wait for a change of the host.
    Paused,
    /// Detached: Ironic is left alone; the status says `detached` (Some: write this status).
    Detached(Option<Box<BareMetalHostStatus>>),
    /// Reconcile as usual.
    Proceed,
}

/// Decides the gate for a host given its last status. Deletion overrides detachment (a detached
/// host that is deleted is taken out of Ironic, as upstream does after the annotation goes; here
/// the runtime's finalizer decides), but not pausing.
pub fn gate(input: &HostInput, previous: &BareMetalHostStatus) -> Gate {
    if input.paused {
        return Gate::Paused;
    }
    if input.detached && !input.deleting {
        if previous.operational_status == OperationalStatus::Detached {
            return Gate::Detached(None);
        }
        let mut status = previous.clone();
        status.operational_status = OperationalStatus::Detached;
        return Gate::Detached(Some(Box::new(status)));
    }
    Gate::Proceed
}

/// Whether the credentials Secret changed since the credentials last worked: then they are sent to
/// Ironic once more (registration runs again; a provisioned host stays provisioned).
pub fn credentials_changed(bmc: &Bmc, previous: &BareMetalHostStatus) -> bool {
    match (bmc, &previous.good_credentials) {
        (Bmc::Ready { version, .. }, Some(good)) => good != version,
        _ => false,
    }
}

/// Records which credentials were tried, and that they are good once the host is registered
/// without error (upstream's `triedCredentials`/`goodCredentials`).
pub fn record_credentials(bmc: &Bmc, status: &mut BareMetalHostStatus) {
    let Bmc::Ready { version, .. } = bmc else { return };
    let registered = !matches!(
        status.provisioning.state,
        ProvisioningState::None | ProvisioningState::Unmanaged | ProvisioningState::Registering
    );
    if registered && status.operational_status != OperationalStatus::Error {
        status.good_credentials = Some(version.clone());
    }
    status.tried_credentials = Some(version.clone());
}

/// The credentials recorded as good, for callers that only compare versions.
pub fn good_credentials(status: &BareMetalHostStatus) -> Option<&CredentialsStatus> {
    status.good_credentials.as_ref()
}

/// What a reconcile must observe in Ironic, given the input and the last status.
pub fn wants(input: &HostInput, previous: &BareMetalHostStatus) -> Wants {
    let never_registered = previous.provisioning.state == ProvisioningState::None
        && previous.provisioning.id.is_empty()
        && !input.deleting;
    // a host that cannot be registered (its BMC, or an extension annotation that cannot work
    // with it) needs nothing from Ironic: the error is told without a request
    let usable = matches!(input.bmc, Bmc::Ready { .. }) && !(never_registered && input.options.is_err());
    let node = usable || input.deleting;
    // a host with no status yet (or unmanaged) chains into registering within the same reconcile:
    // its node may exist already (a create whose answer was lost), and its port must be checked
    let registering = node
        && matches!(
            previous.provisioning.state,
            ProvisioningState::None | ProvisioningState::Unmanaged | ProvisioningState::Registering
        );
    let ports = registering && input.host.spec.boot_mac_address.is_some();
    let vmedia = node
        && previous.provisioning.state == ProvisioningState::Provisioned
        && input.bmc.has_virtual_media()
        && (input.options.as_ref().is_ok_and(|o| o.eject_media) || media_ejected(previous));
    // a BMC port that refuses connections is told while Ironic still retries (minutes)
    let bmc_reach = registering && !input.deleting;
    let inventory = node && !input.deleting && previous.provisioning.state == ProvisioningState::Inspecting;
    // BIOS settings waiting: whether the machine has them already decides whether to prepare
    let bios = node
        && !input.deleting
        && !input.firmware_settings.is_empty()
        && matches!(
            previous.provisioning.state,
            ProvisioningState::Available
                | ProvisioningState::Ready
                | ProvisioningState::Preparing
                | ProvisioningState::MatchProfile
        );
    Wants { node, ports, vmedia, by_name: node && !never_registered, bmc_reach, inventory, bios }
}

/// Back-off after the n-th consecutive error: 2^n seconds, at most 5 minutes.
pub fn backoff(error_count: u32) -> Duration {
    Duration::from_secs(2u64.saturating_pow(error_count.min(9)).min(300))
}

/// How long to wait before polling a busy node again: quick at first, slower the longer the
/// operation runs (`waited`: how long this host has been polling without a pause).
pub fn poll_interval(waited: Duration) -> Duration {
    match waited.as_secs() {
        0..=2 => Duration::from_millis(250),
        3..=10 => Duration::from_secs(1),
        11..=60 => Duration::from_secs(2),
        _ => Duration::from_secs(5),
    }
}

/// The most a back-off or idle wait is stretched by jitter (a quarter), so that hosts started
/// together spread out.
pub const JITTER: f64 = 0.25;

/// When to look at a host again, per host: remembers since when the host has been polling so that
/// polls slow down over a long operation. Both runtimes keep one per host; the clock and the random
/// jitter come from the runtime, so the schedule itself is pure.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Schedule {
    polling_since: Option<Instant>,
}

impl Schedule {
    /// The delay before the next look (None: never again, the host is gone). `now` is the time of
    /// the decision; `jitter` a number in [0, 1) stretching back-off and idle waits by up to
    /// [`JITTER`]; `idle` the long wait of a host with nothing to do.
    pub fn next(&mut self, requeue: Requeue, now: Instant, jitter: f64, idle: Duration) -> Option<Duration> {
        let stretch = |d: Duration| d.mul_f64(1.0 + jitter.clamp(0.0, 1.0) * JITTER);
        if requeue != Requeue::Poll {
            self.polling_since = None;
        }
        match requeue {
            Requeue::Now => Some(Duration::ZERO),
            Requeue::Poll => {
                let since = *self.polling_since.get_or_insert(now);
                Some(poll_interval(now.saturating_duration_since(since)))
            }
            Requeue::Backoff(d) => Some(stretch(d)),
            Requeue::Idle => Some(stretch(idle)),
            Requeue::Never => None,
        }
    }
}

/// The status with its error message [`Redacted`] (the message every later status of the host
/// starts from).
pub fn redacted(status: &BareMetalHostStatus) -> BareMetalHostStatus {
    let mut status = status.clone();
    status.error_message = Redacted::new(&status.error_message).into_string();
    status
}

/// Whether a status changed in anything but its `lastUpdated` time: only then is it worth writing.
pub fn status_changed(before: &BareMetalHostStatus, after: &BareMetalHostStatus) -> bool {
    let mut a = before.clone();
    a.last_updated.clone_from(&after.last_updated);
    a != *after
}

/// Normal or warning, as Kubernetes Events have it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// Something went as planned.
    Normal,
    /// Something went wrong.
    Warning,
}

/// The longest note events.k8s.io/v1 accepts (in bytes).
pub const MAX_NOTE_BYTES: usize = 1024;
/// The longest reason it accepts.
pub const MAX_REASON_BYTES: usize = 128;

/// Something that happened to a host, worth telling its user (Kubernetes Events; the standalone
/// event log). Made to fit an Event: the reason and note are cut to the API's limits, and the
/// note is [`Redacted`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostEvent {
    /// Normal or warning.
    pub kind: EventKind,
    /// A CamelCase reason (upstream's where it has one).
    pub reason: String,
    /// What happened.
    pub note: Redacted,
    /// For a state change, the state the host went to.
    pub to: Option<ProvisioningState>,
}

impl HostEvent {
    /// An event with this reason and note, cut to an Event's limits.
    pub fn new(kind: EventKind, reason: &str, note: &str) -> Self {
        let note = Redacted::new(note).truncated(MAX_NOTE_BYTES);
        HostEvent { kind, reason: truncate_bytes(reason, MAX_REASON_BYTES), note, to: None }
    }

    /// The host went from one state to another.
    pub fn state_changed(from: ProvisioningState, to: ProvisioningState) -> Self {
        let event = HostEvent::new(EventKind::Normal, "ProvisioningStateChanged", &format!("{from} → {to}"));
        HostEvent { to: Some(to), ..event }
    }
}

/// What a host whose `status.provisioning.state` this build does not know is told: nothing is
/// done to it (its status is not written, so the state stays as it was) until it changes.
pub fn unknown_state_event() -> HostEvent {
    HostEvent::new(
        EventKind::Warning,
        "UnknownProvisioningState",
        "status.provisioning.state is not a state this metalhost knows (a newer baremetal-operator's, \
         or one written by hand): the host is left as it is until its state is one metalhost knows",
    )
}

/// The events of one step from `before` to `after` (passing through `states`).
pub fn events(
    before: &BareMetalHostStatus,
    after: &BareMetalHostStatus,
    states: &[ProvisioningState],
) -> Vec<HostEvent> {
    let mut out = Vec::new();
    let mut from = before.provisioning.state;
    for &to in states.iter().filter(|s| **s != before.provisioning.state) {
        if to != from {
            out.push(HostEvent::state_changed(from, to));
            from = to;
        }
    }
    if after.operational_status == OperationalStatus::Error && after.error_message != before.error_message {
        let reason = after.error_type.map_or("Error", |t| t.as_str());
        out.push(HostEvent::new(EventKind::Warning, &camel_case(reason), &after.error_message));
    }
    out.extend(media_event(before, after));
    out.extend(bmc_refused_event(before, after));
    if after.operational_status == OperationalStatus::Detached
        && before.operational_status != OperationalStatus::Detached
    {
        out.push(HostEvent::new(EventKind::Normal, "Detached", "detached from Ironic by annotation"));
    }
    out
}

/// The live ISO ejected on request, or inserted again after that (the eject extension's
/// condition turning False, or back to True).
fn media_event(before: &BareMetalHostStatus, after: &BareMetalHostStatus) -> Option<HostEvent> {
    let media = |s: &BareMetalHostStatus| {
        s.conditions.iter().find(|c| c.type_ == MEDIA_INSERTED_CONDITION).map(|c| c.status == "True")
    };
    match (media(before), media(after)) {
        (Some(true) | None, Some(false)) => {
            Some(HostEvent::new(EventKind::Normal, "LiveISOEjected", "the live ISO was ejected on request"))
        }
        (Some(false), Some(true)) => {
            Some(HostEvent::new(EventKind::Normal, "LiveISOInserted", "the live ISO is inserted again"))
        }
        _ => None,
    }
}

/// The BMC's port found refusing connections while Ironic verifies the node (the `BMCReachable`
/// condition turning False): a Warning, so that `apply --wait` and `kubectl get events` tell it
/// long before Ironic's error.
fn bmc_refused_event(before: &BareMetalHostStatus, after: &BareMetalHostStatus) -> Option<HostEvent> {
    let refused = |s: &BareMetalHostStatus| {
        s.conditions.iter().find(|c| c.type_ == BMC_REACHABLE_CONDITION && c.status == "False").cloned()
    };
    match (refused(before), refused(after)) {
        (None, Some(c)) => Some(HostEvent::new(EventKind::Warning, "BMCConnectionRefused", &c.message)),
        _ => None,
    }
}

/// `provisioning error` → `ProvisioningError`: Event reasons are CamelCase.
fn camel_case(words: &str) -> String {
    words
        .split([' ', '-', '_'])
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
        })
        .collect()
}

/// Whether entering (or staying in) this state needs a `PROVISIONING_LIMIT` slot: inspecting,
/// provisioning and deprovisioning, as upstream checks them.
pub fn needs_slot(state: ProvisioningState) -> bool {
    matches!(
        state,
        ProvisioningState::Inspecting | ProvisioningState::Provisioning | ProvisioningState::Deprovisioning
    )
}

/// Whether a step may start at once or must first find a free provisioning slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// No slot needed: no limit, a step that starts nothing limited, or a virtual-media host
    /// (never limited, as upstream's).
    Free,
    /// The step starts inspecting, provisioning or deprovisioning under this limit.
    NeedsSlot {
        /// At most this many nodes busy at once.
        limit: usize,
    },
}

/// Whether a step into `state` needs a provisioning slot under `limit` (BMO's
/// `PROVISIONING_LIMIT`); `starts`: the step changes the state or acts on the node.
pub fn admission(
    limit: Option<usize>,
    state: ProvisioningState,
    starts: bool,
    virtual_media: bool,
) -> Admission {
    match limit {
        Some(limit) if needs_slot(state) && starts && !virtual_media => Admission::NeedsSlot { limit },
        _ => Admission::Free,
    }
}

/// One Ironic node as the provisioning limit sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeLoad {
    /// Node name (`namespace~name`).
    pub name: String,
    /// Its provision state.
    pub provision_state: metalhost_ironic::ProvisionState,
    /// Its boot interface (virtual-media nodes take no slot).
    pub boot_interface: String,
}

/// Whether the host named `me` (its node name) may go on into a state that [`needs_slot`], with
/// at most `limit` busy nodes, as upstream's `HasCapacity`: yes when its BMC boots by virtual media
/// (no PXE/DHCP slot needed), when its own node is busy already, or when fewer than `limit` nodes
/// are busy (nodes booting by virtual media do not count).
pub fn has_capacity(nodes: &[NodeLoad], me: &str, virtual_media: bool, limit: usize) -> bool {
    if virtual_media {
        return true;
    }
    let busy: Vec<&NodeLoad> = nodes
        .iter()
        .filter(|n| n.provision_state.counts_against_limit())
        .filter(|n| !n.boot_interface.contains("virtual-media"))
        .collect();
    busy.iter().any(|n| n.name == me) || busy.len() < limit
}

/// The status of a host kept waiting for a slot: as it was (or as the status-only steps before
/// the one needing the slot left it), with operational status `delayed` (upstream's
/// `recordActionDelayed`).
pub fn delayed(previous: &BareMetalHostStatus, now: &str) -> BareMetalHostStatus {
    let mut status = previous.clone();
    if status.operational_status != OperationalStatus::Delayed {
        status.operational_status = OperationalStatus::Delayed;
        status.last_updated = Some(now.to_string());
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use metalhost_api::{BareMetalHost, SecretReference};
    use std::collections::BTreeMap;

    fn input(annotations: &[(&str, &str)], secret_version: Option<&str>) -> HostInput {
        let mut host: BareMetalHost = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "h1", "namespace": "lab"},
            "spec": {"online": true, "bmc": {"address": "redfish-virtualmedia://bmc/x", "credentialsName": "c"}},
        }))
        .unwrap();
        host.metadata.annotations =
            Some(annotations.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
        let mut secrets = BTreeMap::new();
        if let Some(v) = secret_version {
            let s = serde_json::from_value(serde_json::json!({
                "metadata": {"name": "c", "namespace": "lab", "resourceVersion": v},
                "stringData": {"username": "u", "password": "p"},
            }))
            .unwrap();
            secrets.insert(("lab".to_string(), "c".to_string()), s);
        }
        HostInput::resolve(host, false, &secrets)
    }

    fn provisioned() -> BareMetalHostStatus {
        let mut s = BareMetalHostStatus::default();
        s.provisioning.state = ProvisioningState::Provisioned;
        s.operational_status = OperationalStatus::Ok;
        s
    }

    #[test]
    fn paused_hosts_are_not_touched() {
        let i = input(&[("baremetalhost.metal3.io/paused", "")], Some("1"));
        assert_eq!(gate(&i, &provisioned()), Gate::Paused);
        // paused wins over detached and deletion
        let mut i = input(
            &[("baremetalhost.metal3.io/paused", ""), ("baremetalhost.metal3.io/detached", "")],
            Some("1"),
        );
        i.deleting = true;
        assert_eq!(gate(&i, &provisioned()), Gate::Paused);
    }

    #[test]
    fn detached_hosts_say_so_once_and_leave_ironic_alone() {
        let i = input(&[("baremetalhost.metal3.io/detached", "")], Some("1"));
        let Gate::Detached(Some(status)) = gate(&i, &provisioned()) else { panic!() };
        assert_eq!(status.operational_status, OperationalStatus::Detached);
        assert_eq!(status.provisioning.state, ProvisioningState::Provisioned);
        assert_eq!(gate(&i, &status), Gate::Detached(None), "no second write");
        assert_eq!(events(&provisioned(), &status, &[ProvisioningState::Provisioned]).len(), 1);
        let mut deleting = i.clone();
        deleting.deleting = true;
        assert_eq!(gate(&deleting, &status), Gate::Proceed, "a deleted detached host is cleaned up");
        assert_eq!(gate(&input(&[], Some("1")), &provisioned()), Gate::Proceed);
    }

    #[test]
    fn changed_credentials_are_resent_once() {
        let i = input(&[], Some("1"));
        let mut status = provisioned();
        assert!(!credentials_changed(&i.bmc, &status), "never worked: nothing to re-send");
        record_credentials(&i.bmc, &mut status);
        assert_eq!(
            status.good_credentials.as_ref().and_then(|g| g.credentials_version.as_deref()),
            Some("1")
        );
        assert!(!credentials_changed(&i.bmc, &status));
        let changed = input(&[], Some("2"));
        assert!(credentials_changed(&changed.bmc, &status));
        // while registering again the new version is only tried...
        let mut registering = status.clone();
        registering.provisioning.state = ProvisioningState::Registering;
        record_credentials(&changed.bmc, &mut registering);
        assert_eq!(registering.tried_credentials.as_ref().unwrap().credentials_version.as_deref(), Some("2"));
        assert!(credentials_changed(&changed.bmc, &registering), "still to be confirmed");
        // ...and once registered it is good: not sent again
        registering.provisioning.state = ProvisioningState::Provisioned;
        record_credentials(&changed.bmc, &mut registering);
        assert!(!credentials_changed(&changed.bmc, &registering));
        // a failing step does not confirm them
        let mut failing = provisioned();
        failing.operational_status = OperationalStatus::Error;
        failing.good_credentials = Some(CredentialsStatus {
            credentials: Some(SecretReference { name: Some("c".into()), namespace: Some("lab".into()) }),
            credentials_version: Some("1".into()),
        });
        record_credentials(&changed.bmc, &mut failing);
        assert!(credentials_changed(&changed.bmc, &failing));
    }

    #[test]
    fn only_what_is_needed_is_observed() {
        let none = input(&[], None);
        assert_eq!(wants(&none, &provisioned()), Wants::default(), "unusable BMC: no Ironic call");
        let plain = input(&[], Some("1"));
        assert_eq!(
            wants(&plain, &provisioned()),
            Wants {
                node: true,
                ports: false,
                vmedia: false,
                by_name: true,
                bmc_reach: false,
                inventory: false,
                bios: false
            }
        );
        let eject = input(&[("metalhost.io/eject-media", "true")], Some("1"));
        assert_eq!(
            wants(&eject, &provisioned()),
            Wants {
                node: true,
                ports: false,
                vmedia: true,
                by_name: true,
                bmc_reach: false,
                inventory: false,
                bios: false
            }
        );
        let mut deleting = none.clone();
        deleting.deleting = true;
        assert!(wants(&deleting, &provisioned()).node);
        // a host that never registered creates its node without looking first, unless it is
        // being deleted (its node may exist from a create whose answer was lost)
        assert!(!wants(&plain, &BareMetalHostStatus::default()).by_name);
        let mut deleting = plain.clone();
        deleting.deleting = true;
        assert!(wants(&deleting, &BareMetalHostStatus::default()).by_name);
        let mut named = BareMetalHostStatus::default();
        named.provisioning.id = "uuid".into();
        assert!(wants(&plain, &named).by_name);
        // ports while registering, also from no status at all (the node may exist from a create
        // whose answer was lost in a crash)
        let mut with_mac = input(&[], Some("1"));
        with_mac.host.spec.boot_mac_address = Some("52:54:00:00:00:01".into());
        for state in [ProvisioningState::None, ProvisioningState::Registering] {
            let mut status = BareMetalHostStatus::default();
            status.provisioning.state = state;
            assert!(wants(&with_mac, &status).ports, "{state:?}");
        }
        assert!(!wants(&with_mac, &provisioned()).ports);
    }

    #[test]
    fn the_schedule_adapts_polls_and_stretches_waits() {
        let idle = Duration::from_secs(120);
        let t0 = Instant::now();
        let mut s = Schedule::default();
        let at = |secs: u64| t0 + Duration::from_secs(secs);
        assert_eq!(s.next(Requeue::Poll, at(0), 0.5, idle), Some(Duration::from_millis(250)));
        assert_eq!(s.next(Requeue::Poll, at(2), 0.5, idle), Some(Duration::from_millis(250)));
        assert_eq!(s.next(Requeue::Poll, at(5), 0.5, idle), Some(Duration::from_secs(1)));
        assert_eq!(s.next(Requeue::Poll, at(30), 0.5, idle), Some(Duration::from_secs(2)));
        assert_eq!(s.next(Requeue::Poll, at(61), 0.5, idle), Some(Duration::from_secs(5)));
        assert_eq!(s.next(Requeue::Poll, at(3600), 0.5, idle), Some(Duration::from_secs(5)));
        // any other outcome ends the poll: the next poll starts quick again
        assert_eq!(s.next(Requeue::Now, at(3601), 0.5, idle), Some(Duration::ZERO));
        assert_eq!(s.next(Requeue::Poll, at(3602), 0.5, idle), Some(Duration::from_millis(250)));
        // back-off and idle are stretched by up to a quarter
        assert_eq!(
            s.next(Requeue::Backoff(Duration::from_secs(8)), at(0), 0.0, idle),
            Some(Duration::from_secs(8))
        );
        assert_eq!(
            s.next(Requeue::Backoff(Duration::from_secs(8)), at(0), 0.5, idle),
            Some(Duration::from_secs(9))
        );
        assert_eq!(s.next(Requeue::Idle, at(0), 0.0, idle), Some(idle));
        assert_eq!(s.next(Requeue::Idle, at(0), 1.0, idle), Some(Duration::from_secs(150)));
        assert_eq!(s.next(Requeue::Never, at(0), 0.0, idle), None);
    }

    #[test]
    fn error_back_off_doubles() {
        let delays: Vec<u64> = (1..=10).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(delays, [2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
    }

    #[test]
    fn only_the_timestamp_changing_is_no_change() {
        let before = BareMetalHostStatus { last_updated: Some("t1".into()), ..Default::default() };
        let mut after = BareMetalHostStatus { last_updated: Some("t2".into()), ..Default::default() };
        assert!(!status_changed(&before, &after));
        after.error_count = 1;
        assert!(status_changed(&before, &after));
    }

    #[test]
    fn events_name_state_changes_and_new_errors() {
        let before = provisioned();
        let mut after = before.clone();
        after.provisioning.state = ProvisioningState::Available;
        let e = events(&before, &after, &[ProvisioningState::Deprovisioning, ProvisioningState::Available]);
        assert_eq!(
            e.iter().map(|e| e.note.as_str()).collect::<Vec<_>>(),
            ["provisioned → deprovisioning", "deprovisioning → available"]
        );
        after.operational_status = OperationalStatus::Error;
        after.error_type = Some(metalhost_api::ErrorType::Provisioning);
        after.error_message = "boom".into();
        let e = events(&before, &after, &[]);
        assert_eq!(
            (e[0].kind, e[0].reason.as_str(), e[0].note.as_str()),
            (EventKind::Warning, "ProvisioningError", "boom")
        );
        assert!(events(&after, &after, &[]).is_empty(), "the same error is not told twice");
    }

    #[test]
    fn a_bmc_port_refusing_connections_is_a_warning_told_once() {
        let before = BareMetalHostStatus::default();
        let mut after = before.clone();
        after.conditions.push(metalhost_api::host::Condition {
            type_: BMC_REACHABLE_CONDITION.into(),
            status: "False".into(),
            reason: "ConnectionRefused".into(),
            message: "the BMC at 10.0.0.1:443 refuses connections".into(),
            last_transition_time: "2026-12-05T00:00:00Z".into(),
            observed_generation: None,
        });
        let e = events(&before, &after, &[]);
        assert_eq!(
            e.iter().map(|e| (e.kind, e.reason.as_str(), e.note.as_str())).collect::<Vec<_>>(),
            [(EventKind::Warning, "BMCConnectionRefused", "the BMC at 10.0.0.1:443 refuses connections")]
        );
        assert!(events(&after, &after, &[]).is_empty(), "told once");
    }

    fn node(name: &str, state: &str, boot: &str) -> NodeLoad {
        NodeLoad { name: name.into(), provision_state: state.into(), boot_interface: boot.into() }
    }

    #[test]
    fn the_provisioning_limit_counts_busy_pxe_nodes_other_than_the_host() {
        let nodes = [
            node("ns~a", "deploying", "ipxe"),
            node("ns~b", "clean wait", "ipxe"),
            node("ns~c", "active", "ipxe"),
            node("ns~d", "wait call-back", "redfish-virtual-media"),
            node("ns~e", "manageable", "ipxe"),
        ];
        // two busy PXE nodes: a third host waits with a limit of 2, goes with 3
        assert!(!has_capacity(&nodes, "ns~e", false, 2));
        assert!(has_capacity(&nodes, "ns~e", false, 3));
        // a host whose node is busy already keeps its slot
        assert!(has_capacity(&nodes, "ns~a", false, 2));
        // virtual-media hosts are never limited, and their nodes take no slot
        assert!(has_capacity(&nodes, "ns~e", true, 0));
        assert!(has_capacity(&[node("ns~d", "deploying", "redfish-virtual-media")], "ns~e", false, 1));
        // upstream's loadBusyHosts counts these
        for state in [
            "cleaning",
            "clean wait",
            "inspecting",
            "inspect wait",
            "deploying",
            "wait call-back",
            "deleting",
        ] {
            assert!(!has_capacity(&[node("ns~x", state, "ipxe")], "ns~e", false, 1), "{state} is busy");
        }
        for state in ["enroll", "manageable", "available", "active", "deploy failed", "clean failed"] {
            assert!(has_capacity(&[node("ns~x", state, "ipxe")], "ns~e", false, 1), "{state} is not busy");
        }
    }

    #[test]
    fn slots_are_needed_to_inspect_provision_and_deprovision_only() {
        use ProvisioningState as S;
        for s in [S::Inspecting, S::Provisioning, S::Deprovisioning] {
            assert!(needs_slot(s), "{s:?}");
        }
        for s in [
            S::Registering,
            S::Preparing,
            S::Available,
            S::Provisioned,
            S::Deleting,
            S::ExternallyProvisioned,
        ] {
            assert!(!needs_slot(s), "{s:?}");
        }
    }

    #[test]
    fn a_delayed_host_keeps_its_state() {
        let mut previous = BareMetalHostStatus::default();
        previous.provisioning.state = ProvisioningState::Available;
        let d = delayed(&previous, "2026-01-01T00:00:00Z");
        assert_eq!(d.operational_status, OperationalStatus::Delayed);
        assert_eq!(d.provisioning.state, ProvisioningState::Available);
        assert_eq!(delayed(&d, "2026-01-02T00:00:00Z"), d, "no new time stamp while it stays delayed");
    }
}
