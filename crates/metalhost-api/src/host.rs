//! The `BareMetalHost` resource (metal3.io/v1alpha1) with upstream's JSON names.
//!
//! Only what metalhost acts on is typed here; the names, enums and defaults follow upstream's CRD
//! so that metal3 manifests deserialize unchanged.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The finalizer upstream puts on every host; kept so that both operators agree on deletion.
pub const FINALIZER: &str = "baremetalhost.metal3.io";
/// Annotation that pauses all reconciliation of a host.
pub const PAUSED_ANNOTATION: &str = "baremetalhost.metal3.io/paused";
/// Annotation that detaches a host from Ironic without deprovisioning it.
pub const DETACHED_ANNOTATION: &str = "baremetalhost.metal3.io/detached";
/// Annotation carrying a status to restore (lets a host skip registration-time work).
pub const STATUS_ANNOTATION: &str = "baremetalhost.metal3.io/status";
/// Annotation that requests (or, with value `disabled`, disables) inspection.
pub const INSPECT_ANNOTATION: &str = "inspect.metal3.io";

/// Desired state of a bare-metal host, as in upstream's `BareMetalHostSpec`.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "metal3.io",
    version = "v1alpha1",
    kind = "BareMetalHost",
    namespaced,
    status = "BareMetalHostStatus",
    shortname = "bmh",
    shortname = "bmhost"
)]
#[serde(rename_all = "camelCase")]
pub struct BareMetalHostSpec {
    /// How to reach the host's management controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bmc: Option<BmcDetails>,
    /// MAC address of the NIC the host boots from (required by PXE-family drivers).
    #[serde(rename = "bootMACAddress", default, skip_serializing_if = "Option::is_none")]
    pub boot_mac_address: Option<String>,
    /// Boot mode to use: UEFI (default), UEFISecureBoot or legacy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_mode: Option<BootMode>,
    /// Whether the host should be powered on.
    #[serde(default)]
    pub online: bool,
    /// The image to boot (live-iso) or write to disk (other formats). None means "not provisioned".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<Image>,
    /// Hints for choosing the root disk (unused by live ISOs, which do not write to disk).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_device_hints: Option<RootDeviceHints>,
    /// Secret holding user data (cloud-init/ignition) for the config drive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_data: Option<SecretReference>,
    /// Secret holding network data for the config drive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_data: Option<SecretReference>,
    /// Secret holding extra metadata for the config drive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta_data: Option<SecretReference>,
    /// Whether Ironic erases disks before and after provisioning (`metadata`) or not (`disabled`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automated_cleaning_mode: Option<AutomatedCleaningMode>,
    /// How the host is inspected after registration; `disabled` skips inspection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inspection_mode: Option<InspectionMode>,
    /// The host already runs an OS provisioned by someone else: adopt it, do not provision it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub externally_provisioned: bool,
    /// A free-form description of the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// CPU architecture of the host (e.g. x86_64, aarch64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
    /// Who is using the host (e.g. a Machine).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer_ref: Option<k8s_openapi::api::core::v1::ObjectReference>,
    /// A hint about the host's hardware, kept for compatibility.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hardware_profile: Option<String>,
    /// Never power the host off (Ironic `disable_power_off`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disable_power_off: bool,
}

/// Connection details of the host's management controller.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BmcDetails {
    /// URL of the BMC, e.g. `redfish-virtualmedia://10.0.0.5/redfish/v1/Systems/1`.
    pub address: String,
    /// Name of the Secret (same namespace) holding `username` and `password`.
    pub credentials_name: String,
    /// Skip TLS certificate verification when talking to the BMC.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disable_certificate_verification: bool,
}

/// Boot mode of the host.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum BootMode {
    /// UEFI boot (the default).
    #[serde(rename = "UEFI")]
    Uefi,
    /// UEFI with secure boot.
    #[serde(rename = "UEFISecureBoot")]
    UefiSecureBoot,
    /// Legacy BIOS boot.
    #[serde(rename = "legacy")]
    Legacy,
}

/// The image to provision.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Image {
    /// Where the image is: http, https, ftp or oci URL.
    pub url: String,
    /// The checksum itself or a URL of a checksum file; not needed for live ISOs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
    /// Algorithm of `checksum`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum_type: Option<ChecksumType>,
    /// Image format; `live-iso` boots the ISO instead of writing it to disk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<ImageFormat>,
    /// Secret with credentials for an oci:// registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oci_auth_secret_name: Option<String>,
}

/// Checksum algorithms upstream accepts.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChecksumType {
    /// MD5 (weak; Ironic may refuse it).
    Md5,
    /// SHA-256.
    Sha256,
    /// SHA-512.
    Sha512,
    /// Let Ironic detect the algorithm from the checksum's length.
    Auto,
}

impl ChecksumType {
    /// The name Ironic uses in `image_os_hash_algo`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChecksumType::Md5 => "md5",
            ChecksumType::Sha256 => "sha256",
            ChecksumType::Sha512 => "sha512",
            ChecksumType::Auto => "auto",
        }
    }
}

/// Image formats upstream accepts.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ImageFormat {
    /// A raw disk image.
    Raw,
    /// A qcow2 disk image.
    Qcow2,
    /// A VirtualBox disk image.
    Vdi,
    /// A VMware disk image.
    Vmdk,
    /// A bootable ISO booted in place (Ironic ramdisk deploy), never written to disk.
    LiveIso,
}

impl ImageFormat {
    /// The name used in manifests and Ironic's `image_disk_format`.
    pub fn as_str(self) -> &'static str {
        match self {
            ImageFormat::Raw => "raw",
            ImageFormat::Qcow2 => "qcow2",
            ImageFormat::Vdi => "vdi",
            ImageFormat::Vmdk => "vmdk",
            ImageFormat::LiveIso => "live-iso",
        }
    }
}

/// Hints Ironic uses to pick the root disk.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RootDeviceHints {
    /// A Linux device name such as /dev/sda.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_name: Option<String>,
    /// SCSI address, e.g. 0:0:0:0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hctl: Option<String>,
    /// Vendor-specific model string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Vendor name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
    /// Disk serial number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial_number: Option<String>,
    /// Smallest acceptable size in GiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_size_gigabytes: Option<i64>,
    /// World Wide Name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wwn: Option<String>,
    /// World Wide Name with vendor extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wwn_with_extension: Option<String>,
    /// Vendor extension of the World Wide Name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wwn_vendor_extension: Option<String>,
    /// true for spinning disks, false for SSDs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotational: Option<bool>,
}

/// A reference to a Secret, possibly in another namespace.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct SecretReference {
    /// Name of the Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Namespace of the Secret (default: the host's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// Automated cleaning setting.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AutomatedCleaningMode {
    /// Clean disk metadata before provisioning and after deprovisioning (upstream default).
    Metadata,
    /// No automated cleaning: the fast path for live ISOs.
    Disabled,
}

/// Inspection setting.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum InspectionMode {
    /// Skip inspection.
    Disabled,
    /// In-band inspection with the agent ramdisk.
    Agent,
    /// Out-of-band inspection through the BMC.
    Fast,
}

/// Observed state of a host, as in upstream's `BareMetalHostStatus`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BareMetalHostStatus {
    /// OK, discovered, error, delayed, detached or servicing.
    #[serde(default)]
    pub operational_status: OperationalStatus,
    /// Kind of the last error, empty when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_type: Option<ErrorType>,
    /// The last error, with its cause; empty when there is none.
    #[serde(default)]
    pub error_message: String,
    /// Consecutive errors, drives the back-off.
    #[serde(default)]
    pub error_count: u32,
    /// Failed provisioning attempts.
    #[serde(default)]
    pub provisioning_fail_count: u32,
    /// When the status last changed (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated: Option<String>,
    /// Whether the host is powered on, as last seen in Ironic.
    #[serde(default)]
    pub powered_on: bool,
    /// Provisioning progress.
    #[serde(default)]
    pub provisioning: ProvisionStatus,
    /// The image of the last provisioning attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempted_image: Option<Image>,
    /// Start and end times of each operation.
    #[serde(default)]
    pub operation_history: OperationHistory,
    /// Conditions saying what metalhost noticed but did not act on (e.g. ignored fields).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// The provisioning part of the status.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct ProvisionStatus {
    /// The current provisioning state.
    #[serde(default)]
    pub state: ProvisioningState,
    /// UUID of the Ironic node.
    #[serde(rename = "ID", default)]
    pub id: String,
    /// The image the host was provisioned with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<Image>,
    /// Boot mode used for provisioning.
    #[serde(rename = "bootMode", default, skip_serializing_if = "Option::is_none")]
    pub boot_mode: Option<BootMode>,
    /// Root device hints used for provisioning.
    #[serde(rename = "rootDeviceHints", default, skip_serializing_if = "Option::is_none")]
    pub root_device_hints: Option<RootDeviceHints>,
}

/// Provisioning states, with upstream's names.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum ProvisioningState {
    /// Not yet looked at.
    #[default]
    #[serde(rename = "")]
    None,
    /// No BMC address: nothing can be done.
    #[serde(rename = "unmanaged")]
    Unmanaged,
    /// Creating the Ironic node and checking the BMC credentials.
    #[serde(rename = "registering")]
    Registering,
    /// Ironic inspects the hardware.
    #[serde(rename = "inspecting")]
    Inspecting,
    /// Applying RAID and firmware settings.
    #[serde(rename = "preparing")]
    Preparing,
    /// Ready to be provisioned.
    #[serde(rename = "available")]
    Available,
    /// Writing or booting the image.
    #[serde(rename = "provisioning")]
    Provisioning,
    /// Running the image.
    #[serde(rename = "provisioned")]
    Provisioned,
    /// Undoing provisioning.
    #[serde(rename = "deprovisioning")]
    Deprovisioning,
    /// Adopted: provisioned by someone else.
    #[serde(rename = "externally provisioned")]
    ExternallyProvisioned,
    /// Powering off before the host is deleted.
    #[serde(rename = "powering off before delete")]
    PoweringOffBeforeDelete,
    /// Removing the Ironic node.
    #[serde(rename = "deleting")]
    Deleting,
}

impl ProvisioningState {
    /// The upstream name of the state.
    pub fn as_str(self) -> &'static str {
        match self {
            ProvisioningState::None => "",
            ProvisioningState::Unmanaged => "unmanaged",
            ProvisioningState::Registering => "registering",
            ProvisioningState::Inspecting => "inspecting",
            ProvisioningState::Preparing => "preparing",
            ProvisioningState::Available => "available",
            ProvisioningState::Provisioning => "provisioning",
            ProvisioningState::Provisioned => "provisioned",
            ProvisioningState::Deprovisioning => "deprovisioning",
            ProvisioningState::ExternallyProvisioned => "externally provisioned",
            ProvisioningState::PoweringOffBeforeDelete => "powering off before delete",
            ProvisioningState::Deleting => "deleting",
        }
    }
}

impl std::fmt::Display for ProvisioningState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if *self == ProvisioningState::None { "(new)" } else { self.as_str() })
    }
}

/// Operational status, with upstream's names.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum OperationalStatus {
    /// Not yet known.
    #[default]
    #[serde(rename = "")]
    Unknown,
    /// All is well.
    #[serde(rename = "OK")]
    Ok,
    /// Found without enough information to manage it.
    #[serde(rename = "discovered")]
    Discovered,
    /// The last operation failed; see errorType and errorMessage.
    #[serde(rename = "error")]
    Error,
    /// Waiting (e.g. for a provisioning slot).
    #[serde(rename = "delayed")]
    Delayed,
    /// Detached from Ironic by annotation.
    #[serde(rename = "detached")]
    Detached,
    /// Servicing operations are running.
    #[serde(rename = "servicing")]
    Servicing,
}

/// Error types, with upstream's names.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ErrorType {
    /// Registration of an already provisioned host failed.
    #[serde(rename = "provisioned registration error")]
    ProvisionedRegistration,
    /// The node could not be registered (BMC address, credentials, Ironic).
    #[serde(rename = "registration error")]
    Registration,
    /// Inspection failed.
    #[serde(rename = "inspection error")]
    Inspection,
    /// Preparing (RAID, firmware) failed.
    #[serde(rename = "preparation error")]
    Preparation,
    /// Provisioning or deprovisioning failed.
    #[serde(rename = "provisioning error")]
    Provisioning,
    /// The power state could not be changed.
    #[serde(rename = "power management error")]
    PowerManagement,
    /// Servicing failed.
    #[serde(rename = "servicing error")]
    Servicing,
}

impl ErrorType {
    /// The upstream name of the error type.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorType::ProvisionedRegistration => "provisioned registration error",
            ErrorType::Registration => "registration error",
            ErrorType::Inspection => "inspection error",
            ErrorType::Preparation => "preparation error",
            ErrorType::Provisioning => "provisioning error",
            ErrorType::PowerManagement => "power management error",
            ErrorType::Servicing => "servicing error",
        }
    }
}

/// Start and end of each long-running operation.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct OperationHistory {
    /// Registration.
    #[serde(default)]
    pub register: OperationMetric,
    /// Inspection.
    #[serde(default)]
    pub inspect: OperationMetric,
    /// Provisioning.
    #[serde(default)]
    pub provision: OperationMetric,
    /// Deprovisioning.
    #[serde(default)]
    pub deprovision: OperationMetric,
}

/// When one operation started and ended (RFC 3339, empty when not yet).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct OperationMetric {
    /// Start time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    /// End time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
}

/// A status condition (Kubernetes style).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Condition type, CamelCase.
    #[serde(rename = "type")]
    pub type_: String,
    /// True, False or Unknown.
    pub status: String,
    /// Machine-readable reason.
    pub reason: String,
    /// Human-readable message.
    pub message: String,
    /// When the status last changed (RFC 3339).
    #[serde(default)]
    pub last_transition_time: String,
}

impl BareMetalHost {
    /// `namespace/name` for messages; namespace `default` when unset.
    pub fn qualified_name(&self) -> String {
        format!("{}/{}", self.namespace_or_default(), self.metadata.name.as_deref().unwrap_or(""))
    }

    /// The host's namespace, `default` when the manifest has none.
    pub fn namespace_or_default(&self) -> &str {
        self.metadata.namespace.as_deref().unwrap_or("default")
    }

    /// The host's annotations (empty when none).
    pub fn annotations(&self) -> &BTreeMap<String, String> {
        static EMPTY: BTreeMap<String, String> = BTreeMap::new();
        self.metadata.annotations.as_ref().unwrap_or(&EMPTY)
    }

    /// Inspection is skipped by `inspectionMode: disabled` or the annotation `inspect.metal3.io: disabled`.
    pub fn inspection_disabled(&self) -> bool {
        self.spec.inspection_mode == Some(InspectionMode::Disabled)
            || self.annotations().get(INSPECT_ANNOTATION).map(String::as_str) == Some("disabled")
    }

    /// Automated cleaning runs unless `automatedCleaningMode: disabled`.
    pub fn automated_cleaning(&self) -> bool {
        self.spec.automated_cleaning_mode != Some(AutomatedCleaningMode::Disabled)
    }
}
