//! The `BareMetalHost` resource (metal3.io/v1alpha1) with upstream's JSON names.
//!
//! Only what metalhost acts on is typed here; the names, enums and defaults follow upstream's CRD
//! so that metal3 manifests deserialize unchanged.

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::Resource;
use kube::{CustomResource, CustomResourceExt};
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
///
/// The derive generates `BareMetalHostSchema`, used only for the CRD; [`BareMetalHost`] is the
/// resource itself, written by hand so that a manifest without `spec` reads as upstream's does.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "metal3.io",
    version = "v1alpha1",
    kind = "BareMetalHost",
    root = "BareMetalHostSchema",
    namespaced,
    status = "BareMetalHostStatus",
    shortname = "bmh",
    shortname = "bmhost",
    printcolumn = r#"{"name":"Status","type":"string","description":"Operational status","jsonPath":".status.operationalStatus","priority":1}"#,
    printcolumn = r#"{"name":"State","type":"string","description":"Provisioning status","jsonPath":".status.provisioning.state"}"#,
    printcolumn = r#"{"name":"Consumer","type":"string","description":"Consumer using this host","jsonPath":".spec.consumerRef.name"}"#,
    printcolumn = r#"{"name":"BMC","type":"string","description":"Address of management controller","jsonPath":".spec.bmc.address","priority":1}"#,
    printcolumn = r#"{"name":"Online","type":"string","description":"Whether the host is online or not","jsonPath":".spec.online"}"#,
    printcolumn = r#"{"name":"Error","type":"string","description":"Type of the most recent error","jsonPath":".status.errorType"}"#,
    printcolumn = r#"{"name":"Age","type":"date","description":"Time duration since creation of BaremetalHost","jsonPath":".metadata.creationTimestamp"}"#
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
    #[schemars(extend("default" = "metadata"))]
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
    /// RAID volumes to configure while preparing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raid: Option<RaidConfig>,
    /// BIOS settings to apply while preparing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firmware: Option<FirmwareConfig>,
    /// A custom deploy step instead of an image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_deploy: Option<CustomDeploy>,
    /// Name of a Secret with network data for the inspection and cleaning ramdisk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preprovisioning_network_data_name: Option<String>,
    /// Taints on the host (kept for consumers; metalhost does not act on them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub taints: Vec<k8s_openapi::api::core::v1::Taint>,
    /// Network interfaces and their attachments (Ironic networking).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub network_interfaces: Vec<NetworkInterface>,
}

/// A custom deploy method (Ironic deploy step) instead of an image.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct CustomDeploy {
    /// The deploy step's name.
    pub method: String,
}

/// BIOS settings upstream can apply.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FirmwareConfig {
    /// Hyper-threading.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = [true, false]))]
    pub simultaneous_multithreading_enabled: Option<bool>,
    /// SR-IOV.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = [true, false]))]
    pub sriov_enabled: Option<bool>,
    /// CPU virtualization extensions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = [true, false]))]
    pub virtualization_enabled: Option<bool>,
}

/// RAID layout.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct RaidConfig {
    /// Hardware RAID volumes (an empty list removes them).
    #[serde(rename = "hardwareRAIDVolumes", default, skip_serializing_if = "Option::is_none")]
    pub hardware_raid_volumes: Option<Vec<HardwareRaidVolume>>,
    /// Software RAID volumes (at most two).
    #[serde(rename = "softwareRAIDVolumes", default, skip_serializing_if = "Option::is_none")]
    pub software_raid_volumes: Option<Vec<SoftwareRaidVolume>>,
}

/// RAID levels a hardware RAID volume may have.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum HardwareRaidLevel {
    /// Striping.
    #[serde(rename = "0")]
    L0,
    /// Mirroring.
    #[serde(rename = "1")]
    L1,
    /// Bit striping with parity.
    #[serde(rename = "2")]
    L2,
    /// Striping with parity.
    #[serde(rename = "5")]
    L5,
    /// Striping with double parity.
    #[serde(rename = "6")]
    L6,
    /// Mirrors striped.
    #[serde(rename = "1+0")]
    L10,
    /// RAID 5 sets striped.
    #[serde(rename = "5+0")]
    L50,
    /// RAID 6 sets striped.
    #[serde(rename = "6+0")]
    L60,
}

/// RAID levels a software RAID volume may have.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum SoftwareRaidLevel {
    /// Striping.
    #[serde(rename = "0")]
    L0,
    /// Mirroring.
    #[serde(rename = "1")]
    L1,
    /// Mirrors striped.
    #[serde(rename = "1+0")]
    L10,
}

/// A hardware RAID volume.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HardwareRaidVolume {
    /// Size in GiB (absent: as large as possible).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub size_gibibytes: Option<i64>,
    /// RAID level.
    pub level: HardwareRaidLevel,
    /// Volume name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub name: Option<String>,
    /// Spinning disks (true) or SSDs (false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotational: Option<bool>,
    /// How many physical disks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub number_of_physical_disks: Option<i64>,
    /// RAID controller name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller: Option<String>,
    /// Names of the physical disks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub physical_disks: Option<Vec<String>>,
}

/// A software RAID volume.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SoftwareRaidVolume {
    /// Size in GiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub size_gibibytes: Option<i64>,
    /// RAID level.
    pub level: SoftwareRaidLevel,
    /// The disks, by root device hints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub physical_disks: Option<Vec<RootDeviceHints>>,
    /// Whether this is the root volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = false))]
    pub root_volume: Option<bool>,
}

/// A network interface of the host and what it is attached to.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NetworkInterface {
    /// Interface name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Interface MAC address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<String>,
    /// The HostNetworkAttachment to apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_network_attachment: Option<NamespacedName>,
    /// The switch port it is cabled to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switch_port: Option<SwitchPort>,
}

/// A name with an optional namespace.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct NamespacedName {
    /// Name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub name: Option<String>,
    /// Namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub namespace: Option<String>,
}

/// A switch port.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct SwitchPort {
    /// Port on the switch.
    #[serde(rename = "portID")]
    pub port_id: String,
    /// The switch's MAC.
    #[serde(rename = "switchID")]
    pub switch_id: String,
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
    /// metalhost extension: a kernel (`url`) and an initramfs (annotation
    /// `metalhost.io/initramfs-url`) booted in place through the ramdisk deploy interface.
    LiveKernel,
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
            ImageFormat::LiveKernel => "live-kernel",
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
    /// The credentials that last worked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub good_credentials: Option<CredentialsStatus>,
    /// The credentials last tried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tried_credentials: Option<CredentialsStatus>,
    /// What inspection found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hardware: Option<HardwareDetails>,
    /// The hardware profile matched (kept for compatibility).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hardware_profile: Option<String>,
}

/// Which credentials Secret (and which version of it) was used.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CredentialsStatus {
    /// The Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<SecretReference>,
    /// Its resourceVersion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_version: Option<String>,
}

/// Hardware inventory from inspection, as upstream reports it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HardwareDetails {
    /// Manufacturer, product and serial number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_vendor: Option<HardwareSystemVendor>,
    /// Firmware versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firmware: Option<Firmware>,
    /// Memory in MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ram_mebibytes: Option<i64>,
    /// Network cards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nics: Option<Vec<Nic>>,
    /// Disks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<Vec<Storage>>,
    /// Processor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Cpu>,
    /// Host name the ramdisk saw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
}

/// Who made the machine.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HardwareSystemVendor {
    /// Manufacturer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manufacturer: Option<String>,
    /// Product name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_name: Option<String>,
    /// Serial number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial_number: Option<String>,
}

/// Firmware details.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct Firmware {
    /// BIOS details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bios: Option<Bios>,
}

/// BIOS details.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct Bios {
    /// Release date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    /// Vendor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
    /// Version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// A network card.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Nic {
    /// Interface name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Vendor and model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// MAC address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// IP address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// Speed in Gb/s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed_gbps: Option<i64>,
    /// VLANs seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vlans: Option<Vec<Vlan>>,
    /// Untagged VLAN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 4094))]
    pub vlan_id: Option<i32>,
    /// Whether it PXE-boots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pxe: Option<bool>,
    /// What LLDP says about the switch port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lldp: Option<Lldp>,
    /// PCI address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pci_address: Option<String>,
}

/// A VLAN.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct Vlan {
    /// VLAN ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 4094))]
    pub id: Option<i32>,
    /// Name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// LLDP data of a NIC.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct Lldp {
    /// Switch chassis ID.
    #[serde(rename = "switchID", default, skip_serializing_if = "Option::is_none")]
    pub switch_id: Option<String>,
    /// Port ID.
    #[serde(rename = "portID", default, skip_serializing_if = "Option::is_none")]
    pub port_id: Option<String>,
    /// Switch system name.
    #[serde(rename = "switchSystemName", default, skip_serializing_if = "Option::is_none")]
    pub switch_system_name: Option<String>,
}

/// Disk kinds.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum DiskType {
    /// Spinning disk.
    #[serde(rename = "HDD")]
    Hdd,
    /// Solid-state disk.
    #[serde(rename = "SSD")]
    Ssd,
    /// NVMe disk.
    #[serde(rename = "NVME")]
    Nvme,
}

/// A disk.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Storage {
    /// Device name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Other names (by-path, by-id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alternate_names: Option<Vec<String>>,
    /// Spinning or not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotational: Option<bool>,
    /// HDD, SSD or NVME.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<DiskType>,
    /// Size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<i64>,
    /// Vendor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
    /// Model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Serial number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial_number: Option<String>,
    /// World Wide Name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wwn: Option<String>,
    /// WWN vendor extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wwn_vendor_extension: Option<String>,
    /// WWN with extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wwn_with_extension: Option<String>,
    /// SCSI address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hctl: Option<String>,
}

/// The processor.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Cpu {
    /// Architecture.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    /// Model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Clock in MHz.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_megahertz: Option<f64>,
    /// CPU flags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flags: Option<Vec<String>>,
    /// Number of CPUs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<i64>,
}

/// The provisioning part of the status.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct ProvisionStatus {
    /// The current provisioning state (a plain string in upstream's schema).
    #[serde(default)]
    #[schemars(with = "String")]
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
    /// RAID layout applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raid: Option<RaidConfig>,
    /// BIOS settings applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firmware: Option<FirmwareConfig>,
    /// Custom deploy used.
    #[serde(rename = "customDeploy", default, skip_serializing_if = "Option::is_none")]
    pub custom_deploy: Option<CustomDeploy>,
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
    /// Old upstream state between inspecting and preparing; treated as preparing.
    #[serde(rename = "match profile")]
    MatchProfile,
    /// Old upstream name of available; treated as available.
    #[serde(rename = "ready")]
    Ready,
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
    /// A state this build does not know (a newer upstream's, or one written by hand): read so that
    /// the host still decodes (a list of hosts is decoded whole), left as it is and reported on
    /// that host alone. It cannot be written (serializing it is an error): the state as it was
    /// written stays where it is.
    #[serde(other, skip_serializing)]
    Unknown,
}

impl ProvisioningState {
    /// The upstream name of the state.
    pub fn as_str(self) -> &'static str {
        match self {
            ProvisioningState::None => "",
            ProvisioningState::Unmanaged => "unmanaged",
            ProvisioningState::Registering => "registering",
            ProvisioningState::MatchProfile => "match profile",
            ProvisioningState::Ready => "ready",
            ProvisioningState::Inspecting => "inspecting",
            ProvisioningState::Preparing => "preparing",
            ProvisioningState::Available => "available",
            ProvisioningState::Provisioning => "provisioning",
            ProvisioningState::Provisioned => "provisioned",
            ProvisioningState::Deprovisioning => "deprovisioning",
            ProvisioningState::ExternallyProvisioned => "externally provisioned",
            ProvisioningState::PoweringOffBeforeDelete => "powering off before delete",
            ProvisioningState::Deleting => "deleting",
            ProvisioningState::Unknown => "(unknown)",
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
    #[schemars(extend("enum" = ["True", "False", "Unknown"]))]
    pub status: String,
    /// Machine-readable reason.
    pub reason: String,
    /// Human-readable message.
    pub message: String,
    /// When the status last changed (RFC 3339).
    #[serde(default)]
    pub last_transition_time: String,
    /// The generation of the host the condition was set for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// A bare-metal host: metadata, desired state and observed state.
#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
pub struct BareMetalHost {
    /// Name, namespace, labels, annotations, …
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Desired state (upstream treats a missing spec as an empty one).
    #[serde(default)]
    pub spec: BareMetalHostSpec,
    /// Observed state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<BareMetalHostStatus>,
}

impl Serialize for BareMetalHost {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Wire<'a> {
            #[serde(rename = "apiVersion")]
            api_version: &'a str,
            kind: &'a str,
            metadata: &'a ObjectMeta,
            spec: &'a BareMetalHostSpec,
            #[serde(skip_serializing_if = "Option::is_none")]
            status: &'a Option<BareMetalHostStatus>,
        }
        Wire {
            api_version: API_VERSION,
            kind: "BareMetalHost",
            metadata: &self.metadata,
            spec: &self.spec,
            status: &self.status,
        }
        .serialize(serializer)
    }
}

/// `metal3.io/v1alpha1`.
pub const API_VERSION: &str = "metal3.io/v1alpha1";

impl Resource for BareMetalHost {
    type DynamicType = ();
    type Scope = k8s_openapi::NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        "BareMetalHost".into()
    }
    fn group(_: &()) -> Cow<'_, str> {
        "metal3.io".into()
    }
    fn version(_: &()) -> Cow<'_, str> {
        "v1alpha1".into()
    }
    fn plural(_: &()) -> Cow<'_, str> {
        "baremetalhosts".into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// Upstream's HardwareData CRD as it is (pinned in `tests/data/upstream/`, Apache 2.0): upstream
/// keeps one HardwareData per host with its inspected hardware, and so does metalhost.
pub const HARDWARE_DATA_CRD: &str = include_str!("../tests/data/upstream/metal3.io_hardwaredata.yaml");

/// The CustomResourceDefinition of BareMetalHost, generated from the Rust types, shaped like
/// upstream's: no required `spec`, apiVersion/kind/metadata listed, and the schema keywords
/// upstream's kubebuilder markers give (see [`upstream_keywords`]).
pub fn crd() -> CustomResourceDefinition {
    let mut crd = BareMetalHostSchema::crd();
    for version in &mut crd.spec.versions {
        let Some(schema) = version.schema.as_mut().and_then(|s| s.open_api_v3_schema.as_mut()) else {
            continue;
        };
        schema.required = schema.required.take().map(|r| r.into_iter().filter(|f| f != "spec").collect());
        if schema.required.as_ref().is_some_and(Vec::is_empty) {
            schema.required = None;
        }
        let props = schema.properties.get_or_insert_with(Default::default);
        for (name, ty) in [("apiVersion", "string"), ("kind", "string"), ("metadata", "object")] {
            props
                .entry(name.to_string())
                .or_insert_with(|| JSONSchemaProps { type_: Some(ty.into()), ..Default::default() });
        }
        let mut value = serde_json::to_value(&*schema).expect("a schema serializes");
        upstream_keywords(&mut value);
        *schema = serde_json::from_value(value).expect("the reshaped schema is a schema");
    }
    crd
}

/// Keywords the generator adds that upstream's schema does not have: `nullable` on every
/// optional field, formats and minimums of Rust integer types, defaults from `#[serde(default)]`.
const GENERATED_KEYWORDS: &[&str] = &["nullable", "default", "format", "minimum", "maximum", "title"];

/// Paths (`.spec.raid` style, `[]` for list items) of the RAID layout, which upstream has twice.
const RAID_AT: &[&str] = &[".spec.raid", ".status.provisioning.raid"];

/// The schema keywords of upstream's kubebuilder markers and Kubernetes types, by path.
fn upstream_keyword_table() -> Vec<(String, &'static str, serde_json::Value)> {
    use serde_json::json;
    const MAC: &str = "[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}";
    const MAC_ANCHORED: &str = "^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$";
    let mut table: Vec<(String, &'static str, serde_json::Value)> = vec![
        (".spec".into(), "required", json!(["online"])),
        (".spec.automatedCleaningMode".into(), "default", json!("metadata")),
        (".spec.bootMACAddress".into(), "pattern", json!(MAC)),
        (".spec.networkInterfaces[].macAddress".into(), "pattern", json!(MAC_ANCHORED)),
        (".spec.networkInterfaces[].name".into(), "pattern", json!("^[a-zA-Z0-9._-]+$")),
        (".spec.networkInterfaces[].switchPort.switchID".into(), "pattern", json!(MAC_ANCHORED)),
        (".spec.rootDeviceHints.minSizeGigabytes".into(), "minimum", json!(0)),
        (".status.provisioning.rootDeviceHints.minSizeGigabytes".into(), "minimum", json!(0)),
        (".spec.taints[].timeAdded".into(), "format", json!("date-time")),
        (
            ".status".into(),
            "required",
            json!([
                "errorCount",
                "errorMessage",
                "operationalStatus",
                "poweredOn",
                "provisioning",
                "provisioningFailCount"
            ]),
        ),
        (".status.errorCount".into(), "default", json!(0)),
        (".status.provisioningFailCount".into(), "default", json!(0)),
        (".status.provisioning".into(), "required", json!(["ID", "state"])),
        (".status.lastUpdated".into(), "format", json!("date-time")),
        (".status.conditions".into(), "x-kubernetes-list-type", json!("map")),
        (".status.conditions".into(), "x-kubernetes-list-map-keys", json!(["type"])),
        (".status.conditions".into(), "maxItems", json!(32)),
        (
            ".status.conditions[]".into(),
            "required",
            json!(["lastTransitionTime", "message", "reason", "status", "type"]),
        ),
        (".status.conditions[].lastTransitionTime".into(), "format", json!("date-time")),
        (".status.conditions[].message".into(), "maxLength", json!(32768)),
        (".status.conditions[].observedGeneration".into(), "format", json!("int64")),
        (".status.conditions[].observedGeneration".into(), "minimum", json!(0)),
        (".status.conditions[].reason".into(), "pattern", json!("^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")),
        (".status.conditions[].reason".into(), "maxLength", json!(1024)),
        (".status.conditions[].reason".into(), "minLength", json!(1)),
        (
            ".status.conditions[].type".into(),
            "pattern",
            json!(
                r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
            ),
        ),
        (".status.conditions[].type".into(), "maxLength", json!(316)),
        (".status.hardware.cpu.clockMegahertz".into(), "format", json!("double")),
        (".status.hardware.nics[].mac".into(), "pattern", json!(MAC)),
        (".status.hardware.storage[].sizeBytes".into(), "format", json!("int64")),
    ];
    add_repeated_keywords(&mut table);
    table
}

/// The keywords that stand at several paths: VLAN ids, atomic maps, operation times, and the
/// RAID layout (which upstream has twice).
fn add_repeated_keywords(table: &mut Vec<(String, &'static str, serde_json::Value)>) {
    use serde_json::json;
    for path in [".status.hardware.nics[].vlanId", ".status.hardware.nics[].vlans[].id"] {
        table.push((path.into(), "format", json!("int32")));
        table.push((path.into(), "minimum", json!(0)));
        table.push((path.into(), "maximum", json!(4094)));
    }
    for path in [".spec.userData", ".spec.networkData", ".spec.metaData", ".spec.consumerRef"]
        .into_iter()
        .chain([".status.goodCredentials.credentials", ".status.triedCredentials.credentials"])
    {
        table.push((path.into(), "x-kubernetes-map-type", json!("atomic")));
    }
    for operation in ["register", "inspect", "provision", "deprovision"] {
        for end in ["start", "end"] {
            let path = format!(".status.operationHistory.{operation}.{end}");
            table.push((path.clone(), "format", json!("date-time")));
            table.push((path, "nullable", json!(true)));
        }
    }
    for raid in RAID_AT {
        table.push((format!("{raid}.hardwareRAIDVolumes"), "nullable", json!(true)));
        table.push((format!("{raid}.softwareRAIDVolumes"), "nullable", json!(true)));
        table.push((format!("{raid}.softwareRAIDVolumes"), "maxItems", json!(2)));
        table.push((format!("{raid}.softwareRAIDVolumes[].physicalDisks"), "minItems", json!(2)));
        table.push((
            format!("{raid}.softwareRAIDVolumes[].physicalDisks[].minSizeGigabytes"),
            "minimum",
            json!(0),
        ));
        table.push((format!("{raid}.softwareRAIDVolumes[].rootVolume"), "default", json!(false)));
        table.push((format!("{raid}.softwareRAIDVolumes[].sizeGibibytes"), "minimum", json!(0)));
        table.push((format!("{raid}.hardwareRAIDVolumes[].sizeGibibytes"), "minimum", json!(0)));
        table.push((format!("{raid}.hardwareRAIDVolumes[].numberOfPhysicalDisks"), "minimum", json!(1)));
    }
}

/// Reshapes the generated schema into upstream's: drops [`GENERATED_KEYWORDS`] everywhere, then
/// sets the keywords of [`upstream_keyword_table`].
fn upstream_keywords(schema: &mut serde_json::Value) {
    fn strip(node: &mut serde_json::Value) {
        let Some(map) = node.as_object_mut() else { return };
        for key in GENERATED_KEYWORDS {
            map.remove(*key);
        }
        if let Some(serde_json::Value::Object(props)) = map.get_mut("properties") {
            props.values_mut().for_each(strip);
        }
        if let Some(items) = map.get_mut("items") {
            strip(items);
        }
    }
    fn at<'a>(node: &'a mut serde_json::Value, path: &str) -> &'a mut serde_json::Value {
        let mut node = node;
        for part in path.split('.').skip(1) {
            let (name, lists) = (part.trim_end_matches("[]"), part.matches("[]").count());
            node = node
                .get_mut("properties")
                .and_then(|p| p.get_mut(name))
                .unwrap_or_else(|| panic!("upstream keyword path {path}: no {name}"));
            for _ in 0..lists {
                node = node
                    .get_mut("items")
                    .unwrap_or_else(|| panic!("upstream keyword path {path}: not a list"));
            }
        }
        node
    }
    strip(schema);
    for (path, key, value) in upstream_keyword_table() {
        at(schema, &path)[key] = value;
    }
}

impl BareMetalHost {
    /// A host with this name and spec, in no namespace.
    pub fn new(name: &str, spec: BareMetalHostSpec) -> Self {
        BareMetalHost {
            metadata: ObjectMeta { name: Some(name.to_string()), ..Default::default() },
            spec,
            status: None,
        }
    }

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

    /// Upstream's re-inspection request: the annotation `inspect.metal3.io` with any value but
    /// `disabled` (admission allows only `""`) asks an available host to inspect again. The
    /// runtime takes the request away once the inspection has started. Never with inspection
    /// disabled (upstream would go round from available to inspecting and back).
    pub fn reinspection_requested(&self) -> bool {
        !self.inspection_disabled() && self.annotations().contains_key(INSPECT_ANNOTATION)
    }

    /// Automated cleaning runs unless `automatedCleaningMode: disabled`.
    pub fn automated_cleaning(&self) -> bool {
        self.spec.automated_cleaning_mode != Some(AutomatedCleaningMode::Disabled)
    }
}
