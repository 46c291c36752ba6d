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
    /// Provision state.
    #[serde(default)]
    pub provision_state: ProvisionState,
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
    /// Inspect interface.
    #[serde(default)]
    pub inspect_interface: Option<String>,
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
    /// When the provision state last changed (RFC 3339, UTC).
    #[serde(default)]
    pub provision_updated_at: Option<String>,
    /// When the node last changed (RFC 3339, UTC): taking its lock (`reservation`) is a change.
    #[serde(default)]
    pub updated_at: Option<String>,
}

impl Node {
    /// Whether Ironic is still moving the node between provision states. A node in a failed state
    /// keeps its target (e.g. `deploy failed` → `active`) but nothing is under way.
    pub fn is_busy(&self) -> bool {
        self.target_provision_state.is_some() && !self.provision_state.is_stable()
    }

    /// Whether the node is busy in a way an undeploy must wait for. A node waiting for the
    /// agent's call-back (`wait call-back`) is busy but may be undeployed: Ironic takes `deleted`
    /// there, and upstream's Deprovision sends it, so that a host whose boot never calls back can
    /// be deleted or given another image without waiting for Ironic's call-back timeout.
    pub fn blocks_undeploy(&self) -> bool {
        self.is_busy() && self.provision_state != ProvisionState::DeployWait
    }

    /// Whether Ironic is moving the node between provision states or changing its power: either
    /// holds the node's lock, so an update now would be refused (409 locked).
    pub fn is_settling(&self) -> bool {
        self.is_busy() || self.target_power_state.is_some()
    }

    /// Whether the node sits in a failed provision state.
    pub fn is_failed(&self) -> bool {
        self.provision_state.is_failed()
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

/// An Ironic provision state. The states metalhost acts on are named; any other (Ironic has more,
/// and may add some) is kept as it was sent, so a node is never misread.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum ProvisionState {
    /// `enroll`: Just created; credentials not yet verified.
    Enroll,
    /// `verifying`: Checking credentials.
    Verifying,
    /// `manageable`: Credentials work; under Ironic's management.
    Manageable,
    /// `inspecting`: Being inspected.
    Inspecting,
    /// `inspect wait`: Waiting for an inspection agent.
    InspectWait,
    /// `inspect failed`: Inspection failed.
    InspectFailed,
    /// `cleaning`: Being cleaned.
    Cleaning,
    /// `clean wait`: Waiting for a cleaning agent.
    CleanWait,
    /// `clean failed`: Cleaning failed.
    CleanFailed,
    /// `available`: Ready to deploy.
    Available,
    /// `deploying`: Being deployed.
    Deploying,
    /// `wait call-back`: Waiting for a deploy agent.
    DeployWait,
    /// `deploy failed`: Deployment failed.
    DeployFailed,
    /// `active`: Deployed and running.
    Active,
    /// `deleting`: Being undeployed.
    Deleting,
    /// `adopting`: Being adopted.
    Adopting,
    /// `adopt failed`: Adoption failed.
    AdoptFailed,
    /// `service failed`: Failed while servicing.
    ServiceFailed,
    /// `rescue failed`: Failed while rescuing.
    RescueFailed,
    /// `error`: A generic error (e.g. a failed undeploy).
    Error,
    /// A state metalhost does not act on (`servicing`, `rescue`, …), as Ironic sent it.
    Other(String),
}

impl ProvisionState {
    /// The name in the Ironic API.
    pub fn as_str(&self) -> &str {
        match self {
            ProvisionState::Enroll => "enroll",
            ProvisionState::Verifying => "verifying",
            ProvisionState::Manageable => "manageable",
            ProvisionState::Inspecting => "inspecting",
            ProvisionState::InspectWait => "inspect wait",
            ProvisionState::InspectFailed => "inspect failed",
            ProvisionState::Cleaning => "cleaning",
            ProvisionState::CleanWait => "clean wait",
            ProvisionState::CleanFailed => "clean failed",
            ProvisionState::Available => "available",
            ProvisionState::Deploying => "deploying",
            ProvisionState::DeployWait => "wait call-back",
            ProvisionState::DeployFailed => "deploy failed",
            ProvisionState::Active => "active",
            ProvisionState::Deleting => "deleting",
            ProvisionState::Adopting => "adopting",
            ProvisionState::AdoptFailed => "adopt failed",
            ProvisionState::ServiceFailed => "service failed",
            ProvisionState::RescueFailed => "rescue failed",
            ProvisionState::Error => "error",
            ProvisionState::Other(other) => other,
        }
    }

    /// Whether an operation failed here; the node waits for the next request.
    pub fn is_failed(&self) -> bool {
        use ProvisionState::*;
        matches!(
            self,
            InspectFailed | CleanFailed | DeployFailed | AdoptFailed | ServiceFailed | RescueFailed | Error
        )
    }

    /// Whether nothing is under way in this state (Ironic waits for a request).
    pub fn is_stable(&self) -> bool {
        use ProvisionState::*;
        self.is_failed() || matches!(self, Enroll | Manageable | Available | Active)
    }

    /// Whether a node here counts against the provisioning limit: cleaning, inspecting,
    /// deploying or undeploying (upstream counts the same states).
    pub fn counts_against_limit(&self) -> bool {
        use ProvisionState::*;
        matches!(self, Cleaning | CleanWait | Inspecting | InspectWait | Deploying | DeployWait | Deleting)
    }
}

/// None sent: not a state metalhost acts on.
impl Default for ProvisionState {
    fn default() -> Self {
        ProvisionState::Other(String::new())
    }
}

impl From<&str> for ProvisionState {
    fn from(name: &str) -> Self {
        match name {
            "enroll" => ProvisionState::Enroll,
            "verifying" => ProvisionState::Verifying,
            "manageable" => ProvisionState::Manageable,
            "inspecting" => ProvisionState::Inspecting,
            "inspect wait" => ProvisionState::InspectWait,
            "inspect failed" => ProvisionState::InspectFailed,
            "cleaning" => ProvisionState::Cleaning,
            "clean wait" => ProvisionState::CleanWait,
            "clean failed" => ProvisionState::CleanFailed,
            "available" => ProvisionState::Available,
            "deploying" => ProvisionState::Deploying,
            "wait call-back" => ProvisionState::DeployWait,
            "deploy failed" => ProvisionState::DeployFailed,
            "active" => ProvisionState::Active,
            "deleting" => ProvisionState::Deleting,
            "adopting" => ProvisionState::Adopting,
            "adopt failed" => ProvisionState::AdoptFailed,
            "service failed" => ProvisionState::ServiceFailed,
            "rescue failed" => ProvisionState::RescueFailed,
            "error" => ProvisionState::Error,
            other => ProvisionState::Other(other.to_string()),
        }
    }
}

impl From<String> for ProvisionState {
    fn from(name: String) -> Self {
        match ProvisionState::from(name.as_str()) {
            ProvisionState::Other(_) => ProvisionState::Other(name),
            known => known,
        }
    }
}

impl From<ProvisionState> for String {
    fn from(state: ProvisionState) -> Self {
        state.as_str().to_string()
    }
}

impl std::fmt::Display for ProvisionState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
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

/// One BIOS setting as Ironic caches it (`GET /v1/nodes/{id}/bios?detail=True`, API ≥ 1.74):
/// its value and the BIOS registry's word on it (null where the BMC has no registry).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BiosSetting {
    /// The setting's name.
    pub name: String,
    /// Its current value (a string, whatever its type; null when the BMC shows none).
    #[serde(default)]
    pub value: Option<String>,
    /// `Enumeration`, `String`, `Integer`, `Boolean` or `Password`.
    #[serde(default)]
    pub attribute_type: Option<String>,
    /// The values an enumeration takes.
    #[serde(default)]
    pub allowable_values: Option<Vec<String>>,
    /// The lowest integer.
    #[serde(default)]
    pub lower_bound: Option<i64>,
    /// The highest integer.
    #[serde(default)]
    pub upper_bound: Option<i64>,
    /// The shortest string.
    #[serde(default)]
    pub min_length: Option<i64>,
    /// The longest string.
    #[serde(default)]
    pub max_length: Option<i64>,
    /// Whether it cannot be changed.
    #[serde(default)]
    pub read_only: Option<bool>,
    /// Whether a change needs a reboot.
    #[serde(default)]
    pub reset_required: Option<bool>,
    /// Whether the value is the machine's own.
    #[serde(default)]
    pub unique: Option<bool>,
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
