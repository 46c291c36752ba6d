//! Ironic's resources, with the fields metalhost reads.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::error::truncate;

fn truncated<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(truncate(&String::deserialize(d)?))
}

fn truncated_option<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.map(|s| truncate(&s)))
}

/// An Ironic node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// Node UUID.
    pub uuid: String,
    /// Node name (metalhost uses `namespace~name`, as upstream).
    #[serde(default)]
    pub name: Option<String>,
    /// Hardware type.
    #[serde(default)]
    pub driver: String,
    /// Provision state, e.g. `enroll`, `manageable`, `available`, `active`.
    #[serde(default)]
    pub provision_state: String,
    /// The state Ironic is moving to, while it moves.
    #[serde(default)]
    pub target_provision_state: Option<String>,
    /// `power on`, `power off`, or None when unknown.
    #[serde(default)]
    pub power_state: Option<String>,
    /// The power state Ironic is moving to, while it moves.
    #[serde(default)]
    pub target_power_state: Option<String>,
    /// The last failure Ironic recorded for this node (cut to [`crate::MAX_ERROR_CHARS`]).
    #[serde(default, deserialize_with = "truncated_option")]
    pub last_error: Option<String>,
    /// Whether the node is in maintenance.
    #[serde(default)]
    pub maintenance: bool,
    /// Why it is in maintenance (cut to [`crate::MAX_ERROR_CHARS`]).
    #[serde(default, deserialize_with = "truncated_option")]
    pub maintenance_reason: Option<String>,
    /// The conductor holding the node's lock, if any.
    #[serde(default)]
    pub reservation: Option<String>,
    /// Boot interface.
    #[serde(default)]
    pub boot_interface: Option<String>,
    /// Deploy interface.
    #[serde(default)]
    pub deploy_interface: Option<String>,
    /// Driver settings (passwords shown as `******`).
    #[serde(default)]
    pub driver_info: Map<String, Value>,
    /// What to deploy (image, boot ISO, …).
    #[serde(default)]
    pub instance_info: Map<String, Value>,
    /// Hardware properties and capabilities.
    #[serde(default)]
    pub properties: Map<String, Value>,
    /// Per-node automated cleaning (None: the conductor's default).
    #[serde(default)]
    pub automated_clean: Option<bool>,
    /// Boot mode Ironic detected or was told.
    #[serde(default)]
    pub boot_mode: Option<String>,
}

impl Node {
    /// Whether Ironic is still moving the node between provision states. A node in a failed state
    /// keeps its target (e.g. `deploy failed` → `active`) but nothing is under way.
    pub fn is_busy(&self) -> bool {
        self.target_provision_state.is_some() && !state::is_stable(&self.provision_state)
    }

    /// Whether the node is busy in a way an undeploy must wait for. A node waiting for the
    /// agent's call-back (`wait call-back`) is busy but may be undeployed: Ironic takes `deleted`
    /// there, and upstream's Deprovision sends it, so that a host whose boot never calls back can
    /// be deleted or given another image without waiting for Ironic's call-back timeout.
    pub fn blocks_undeploy(&self) -> bool {
        self.is_busy() && self.provision_state != state::DEPLOY_WAIT
    }

    /// Whether Ironic is moving the node between provision states or changing its power: either
    /// holds the node's lock, so an update now would be refused (409 locked).
    pub fn is_settling(&self) -> bool {
        self.is_busy() || self.target_power_state.is_some()
    }

    /// Whether the node sits in a failed provision state.
    pub fn is_failed(&self) -> bool {
        state::FAILED.contains(&self.provision_state.as_str())
    }

    /// Whether Ironic reports the node powered on.
    pub fn powered_on(&self) -> bool {
        self.power_state.as_deref() == Some("power on")
    }

    /// A string instance_info value, if set.
    pub fn instance_str(&self, key: &str) -> Option<&str> {
        self.instance_info.get(key).and_then(Value::as_str)
    }
}

/// Ironic's provision states that metalhost acts on.
pub mod state {
    /// Just created; credentials not yet verified.
    pub const ENROLL: &str = "enroll";
    /// Checking credentials.
    pub const VERIFYING: &str = "verifying";
    /// Credentials work; under Ironic's management.
    pub const MANAGEABLE: &str = "manageable";
    /// Being inspected.
    pub const INSPECTING: &str = "inspecting";
    /// Waiting for an inspection agent.
    pub const INSPECT_WAIT: &str = "inspect wait";
    /// Inspection failed.
    pub const INSPECT_FAILED: &str = "inspect failed";
    /// Being cleaned.
    pub const CLEANING: &str = "cleaning";
    /// Waiting for a cleaning agent.
    pub const CLEAN_WAIT: &str = "clean wait";
    /// Cleaning failed.
    pub const CLEAN_FAILED: &str = "clean failed";
    /// Ready to deploy.
    pub const AVAILABLE: &str = "available";
    /// Being deployed.
    pub const DEPLOYING: &str = "deploying";
    /// Waiting for a deploy agent.
    pub const DEPLOY_WAIT: &str = "wait call-back";
    /// Deployment failed.
    pub const DEPLOY_FAILED: &str = "deploy failed";
    /// Deployed and running.
    pub const ACTIVE: &str = "active";
    /// Being undeployed.
    pub const DELETING: &str = "deleting";
    /// Being adopted.
    pub const ADOPTING: &str = "adopting";
    /// Adoption failed.
    pub const ADOPT_FAILED: &str = "adopt failed";
    /// Failed while servicing.
    pub const SERVICE_FAILED: &str = "service failed";
    /// Failed while rescuing.
    pub const RESCUE_FAILED: &str = "rescue failed";
    /// A generic error (e.g. a failed undeploy).
    pub const ERROR: &str = "error";

    /// States that mean an operation failed; the node waits for the next request.
    pub const FAILED: &[&str] =
        &[INSPECT_FAILED, CLEAN_FAILED, DEPLOY_FAILED, ADOPT_FAILED, SERVICE_FAILED, RESCUE_FAILED, ERROR];

    /// Whether nothing is under way in this state (Ironic waits for a request).
    pub fn is_stable(state: &str) -> bool {
        FAILED.contains(&state) || [ENROLL, MANAGEABLE, AVAILABLE, ACTIVE].contains(&state)
    }
}

/// One entry of a node's history (API ≥ 1.78): what happened, with errors that `last_error` may
/// no longer show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEvent {
    /// When (RFC 3339).
    #[serde(default)]
    pub created_at: String,
    /// INFO, WARNING or ERROR.
    #[serde(default)]
    pub severity: String,
    /// What happened (cut to [`crate::MAX_ERROR_CHARS`]).
    #[serde(default, deserialize_with = "truncated")]
    pub event: String,
}

/// Targets for `PUT /v1/nodes/{id}/states/provision`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProvisionTarget {
    /// enroll → manageable (verifies credentials).
    Manage,
    /// manageable → available (cleans when automated cleaning is on).
    Provide,
    /// manageable → inspecting → manageable.
    Inspect,
    /// available → active (deploy).
    Active,
    /// active/failed → available (undeploy).
    Deleted,
    /// manageable → active without deploying (externally provisioned hosts).
    Adopt,
    /// Stop a waiting operation.
    Abort,
}

impl ProvisionTarget {
    /// The name in the Ironic API.
    pub fn as_str(self) -> &'static str {
        match self {
            ProvisionTarget::Manage => "manage",
            ProvisionTarget::Provide => "provide",
            ProvisionTarget::Inspect => "inspect",
            ProvisionTarget::Active => "active",
            ProvisionTarget::Deleted => "deleted",
            ProvisionTarget::Adopt => "adopt",
            ProvisionTarget::Abort => "abort",
        }
    }
}

/// Targets for `PUT /v1/nodes/{id}/states/power`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PowerTarget {
    /// Power on.
    #[serde(rename = "power on")]
    On,
    /// Power off.
    #[serde(rename = "power off")]
    Off,
    /// Power cycle.
    #[serde(rename = "rebooting")]
    Reboot,
}

/// An Ironic port (a NIC's MAC, used by network boot).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Port {
    /// Port UUID.
    pub uuid: String,
    /// MAC address.
    pub address: String,
    /// The node it belongs to.
    #[serde(default)]
    pub node_uuid: Option<String>,
}

/// The result of validating one interface of a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceValidation {
    /// true when the interface is usable, false when not, None when not applicable.
    #[serde(default)]
    pub result: Option<bool>,
    /// Why not.
    #[serde(default)]
    pub reason: Option<String>,
}

/// A virtual media device as Ironic reports it (API ≥ 1.93).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VirtualMedia {
    /// Media types of the device (CD, DVD, Floppy, USBStick).
    #[serde(default)]
    pub media_types: Vec<String>,
    /// Whether media is inserted.
    #[serde(default)]
    pub inserted: bool,
    /// The image URL inserted.
    #[serde(default)]
    pub image: String,
}
