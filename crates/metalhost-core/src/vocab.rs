//! The words the core's modules share: what was observed in Ironic, what to read, what to do and
//! when to look again. A leaf: it depends on no other module of the crate, so the state machine,
//! the policy, the provisioner and the errors can all use it without importing each other.

use std::time::Duration;

use metalhost_api::host::BareMetalHostStatus;
use metalhost_ironic::{Node, Patch, PowerTarget, ProvisionTarget};
use serde_json::{Map, Value};

/// Condition type saying whether the live ISO's virtual media is inserted (eject extension).
pub const MEDIA_INSERTED_CONDITION: &str = "LiveISOMediaInserted";

/// Condition type saying that metalhost found the BMC's port refusing connections while Ironic
/// was still verifying the node (Ironic's own retries take minutes to give up).
pub const BMC_REACHABLE_CONDITION: &str = "BMCReachable";

/// What metalhost found when it opened a TCP connection to the BMC itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BmcReach {
    /// The connection was accepted.
    Accepts,
    /// The connection was refused: nothing listens there (from where metalhost runs).
    Refuses,
    /// No answer in time, or the name did not resolve: nothing is concluded.
    Unknown,
}

/// Whether the host's status says its media was ejected on request.
pub fn media_ejected(status: &BareMetalHostStatus) -> bool {
    status.conditions.iter().any(|c| c.type_ == MEDIA_INSERTED_CONDITION && c.status == "False")
}

/// What was seen in Ironic for this host.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// The host's node, if it exists.
    pub node: Option<Node>,
    /// The node's port MACs (lower case), when they were looked up (only while registering).
    pub port_macs: Option<Vec<String>>,
    /// The node's virtual media, when looked up (only for the eject extension).
    pub vmedia: Option<Vec<metalhost_ironic::VirtualMedia>>,
    /// Whether the BMC's port takes connections, when looked at (only while Ironic verifies it).
    pub bmc_reach: Option<BmcReach>,
    /// What inspection found (`GET …/inventory`), when read: once the node is back in
    /// `manageable` after inspecting.
    pub inventory: Option<Value>,
    /// The node's BIOS settings as Ironic cached them (name → value), when read: only while BIOS
    /// settings wait to be applied.
    pub bios: Option<std::collections::BTreeMap<String, String>>,
}

/// One step towards the desired state, carried out by the provisioner.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Nothing to do now.
    None,
    /// Create the node with these fields.
    CreateNode(Map<String, Value>),
    /// Create a port for the boot MAC.
    CreatePort(String),
    /// Patch the node.
    Patch(Patch),
    /// Change the provision state.
    Provision(ProvisionTarget),
    /// Registration failed and is tried again: patch the node's settings (secrets too, if the
    /// patch is not empty), then ask Ironic to verify them (`manage`).
    Reverify(Patch),
    /// Patch the node (if the patch is not empty), validate its boot and deploy settings, then deploy
    /// (with a config drive, when there is one).
    Deploy(Patch, Option<Value>),
    /// Change the power state.
    Power(PowerTarget),
    /// Eject the virtual CD (the live ISO) while the host stays provisioned.
    EjectMedia,
    /// Insert the live ISO as virtual CD again (`download_source`: `local` or `http`).
    InsertMedia {
        /// The ISO.
        url: String,
        /// Where the BMC gets it.
        download_source: Option<&'static str>,
    },
    /// Delete the node.
    DeleteNode,
    /// Manual cleaning of a manageable node (BIOS settings in preparing).
    Clean {
        /// The clean steps.
        steps: Vec<Value>,
        /// Whether the steps run without booting the agent (they say they need none).
        disable_ramdisk: bool,
    },
    /// The host is gone from Ironic and may be forgotten (deletion finished).
    Forget,
}

/// What an [`Action`] does, without its payload: for logs, progress lines, metrics and typed
/// outcomes (a payload may carry credentials).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionKind {
    /// Nothing.
    None,
    /// Create the node.
    CreateNode,
    /// Create a port.
    CreatePort,
    /// Patch the node.
    UpdateNode,
    /// Change the provision state.
    Provision(ProvisionTarget),
    /// Send the settings again and verify them.
    Reverify,
    /// Validate and deploy.
    Deploy,
    /// Change the power state.
    Power(PowerTarget),
    /// Eject the virtual CD.
    EjectMedia,
    /// Insert the virtual CD.
    InsertMedia,
    /// Delete the node.
    DeleteNode,
    /// Manual cleaning.
    Clean,
    /// Forget the host.
    Forget,
}

impl std::fmt::Display for ActionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ActionKind::None => f.write_str("none"),
            ActionKind::CreateNode => f.write_str("create node"),
            ActionKind::CreatePort => f.write_str("create port"),
            ActionKind::UpdateNode => f.write_str("update node"),
            ActionKind::Provision(t) => write!(f, "provision {}", t.as_str()),
            ActionKind::Reverify => f.write_str("verify again"),
            ActionKind::Deploy => f.write_str("deploy"),
            ActionKind::Power(PowerTarget::On) => f.write_str("power on"),
            ActionKind::Power(PowerTarget::Off) => f.write_str("power off"),
            ActionKind::Power(PowerTarget::Reboot) => f.write_str("reboot"),
            ActionKind::EjectMedia => f.write_str("eject media"),
            ActionKind::InsertMedia => f.write_str("insert media"),
            ActionKind::DeleteNode => f.write_str("delete node"),
            ActionKind::Clean => f.write_str("clean"),
            ActionKind::Forget => f.write_str("forget"),
        }
    }
}

impl Action {
    /// Whether the action changes an existing node (Ironic refuses that, 409, while a task of its
    /// own holds the node's lock).
    pub fn changes_the_node(&self) -> bool {
        !matches!(self, Action::None | Action::Forget | Action::CreateNode(_) | Action::CreatePort(_))
    }

    /// What the action does, without its payload.
    pub fn kind(&self) -> ActionKind {
        match self {
            Action::None => ActionKind::None,
            Action::CreateNode(_) => ActionKind::CreateNode,
            Action::CreatePort(_) => ActionKind::CreatePort,
            Action::Patch(_) => ActionKind::UpdateNode,
            Action::Provision(t) => ActionKind::Provision(*t),
            Action::Reverify(_) => ActionKind::Reverify,
            Action::Deploy(..) => ActionKind::Deploy,
            Action::Power(t) => ActionKind::Power(*t),
            Action::EjectMedia => ActionKind::EjectMedia,
            Action::InsertMedia { .. } => ActionKind::InsertMedia,
            Action::DeleteNode => ActionKind::DeleteNode,
            Action::Clean { .. } => ActionKind::Clean,
            Action::Forget => ActionKind::Forget,
        }
    }

    /// A short name for logs and progress lines.
    pub fn name(&self) -> String {
        self.kind().to_string()
    }

    /// Whether the action changes or removes an existing node (its identity is checked first).
    pub fn is_destructive(&self) -> bool {
        matches!(
            self,
            Action::Provision(_)
                | Action::Reverify(_)
                | Action::Power(_)
                | Action::DeleteNode
                | Action::Deploy(..)
                | Action::Patch(_)
                | Action::Clean { .. }
        )
    }
}

/// When to look at the host again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requeue {
    /// At once: the state changed and the next step can follow.
    Now,
    /// Soon: Ironic is working on the node; poll it.
    Poll,
    /// After an error: back off for this long (before jitter).
    Backoff(Duration),
    /// Nothing to do until something changes; look again after a long while.
    Idle,
    /// Never: the host is gone.
    Never,
}

/// What to read from Ironic for one reconcile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Wants {
    /// The node (by the UUID in the status, else by name).
    pub node: bool,
    /// Its ports (only while registering with a boot MAC).
    pub ports: bool,
    /// Its virtual media (only for a provisioned host using the eject extension).
    pub vmedia: bool,
    /// Whether to look the node up by name when the status names none. Not for a host that
    /// never registered: its create tells the same (a name Ironic has already is a conflict, and
    /// then the node is looked up), one request less per host.
    pub by_name: bool,
    /// Whether to try the BMC's port, should Ironic be verifying the node (only while
    /// registering a Redfish-family BMC).
    pub bmc_reach: bool,
    /// Whether to read the node's inventory, should inspection be over (only while inspecting).
    pub inventory: bool,
    /// Whether to read the node's BIOS settings (only while settings wait to be applied).
    pub bios: bool,
}
