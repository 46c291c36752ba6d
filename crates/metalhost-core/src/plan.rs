//! Ironic patch planning (pure): the node fields a host needs, and the smallest JSON patch that
//! takes an observed node there. The live-ISO rules (docs/architecture.md §4) are here.

use metalhost_api::extensions::{BootPersistence, LiveIsoOptions};
use metalhost_api::host::{BareMetalHost, BootMode, InspectionMode};
use metalhost_api::{BmcAccess, Credentials, DeployImage};
use metalhost_ironic::{Node, Patch};
use serde_json::{Map, Value, json};

/// Deploy interface that boots an ISO in place.
pub const RAMDISK_DEPLOY: &str = "ramdisk";

/// instance_info keys that describe a disk image; a live ISO must not carry them.
pub const DISK_IMAGE_KEYS: &[&str] =
    &["image_source", "image_checksum", "image_os_hash_algo", "image_os_hash_value", "image_disk_format"];

/// instance_info keys of a live kernel; other images must not carry them.
pub const LIVE_KERNEL_KEYS: &[&str] = &["kernel", "ramdisk", "ramdisk_kernel_arguments"];

/// driver_info keys naming the agent's boot image (kernel and ramdisk, or an ISO).
pub const DEPLOY_IMAGE_KEYS: &[&str] = &["deploy_kernel", "deploy_ramdisk", "deploy_iso"];

/// driver_info key of the agent's kernel parameters, which BMO sets for preprovisioning images
/// and clears otherwise; metalhost never sets it and clears it with the deploy image keys.
pub const DEPLOY_KERNEL_PARAMS_KEY: &str = "kernel_append_params";

/// instance_info key telling Ironic where the BMC gets a live ISO.
pub const DOWNLOAD_SOURCE_KEY: &str = "ramdisk_image_download_source";

/// Operator-wide settings that shape every node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeDefaults {
    /// Agent kernel URL for `driver_info.deploy_kernel` (needed by PXE-family boot of disk images).
    pub deploy_kernel: Option<String>,
    /// Agent ramdisk URL for `driver_info.deploy_ramdisk`.
    pub deploy_ramdisk: Option<String>,
    /// Agent ISO URL for `driver_info.deploy_iso` (BMO's `DEPLOY_ISO_URL`): used instead of the
    /// kernel and ramdisk by BMCs that boot ISOs by virtual media or UEFI HTTP, as BMO does.
    pub deploy_iso: Option<String>,
    /// Operator-wide boot-device persistence (`driver_info.force_persistent_boot_device`),
    /// overridden per host by the `metalhost.io/boot-device-persistence` annotation.
    pub boot_persistence: Option<BootPersistence>,
    /// `properties.cpu_arch` of hosts whose spec and hardware name no architecture (BMO: the
    /// controller's own). Ironic picks an architecture's agent by it (`deploy_kernel_by_arch`).
    pub cpu_arch: Option<String>,
}

/// The CPU architecture the host itself names: `spec.architecture`, else what inspection found.
fn host_cpu_arch(host: &BareMetalHost) -> Option<&String> {
    let inspected = host.status.as_ref().and_then(|s| s.hardware.as_ref()).and_then(|h| h.cpu.as_ref());
    [host.spec.architecture.as_ref(), inspected.and_then(|c| c.arch.as_ref())]
        .into_iter()
        .flatten()
        .find(|a| !a.is_empty())
}

/// The host's CPU architecture for a new node, as upstream chooses it: the host's own, else the
/// operator-wide default.
fn cpu_arch(host: &BareMetalHost, defaults: &NodeDefaults) -> Option<String> {
    host_cpu_arch(host).or(defaults.cpu_arch.as_ref().filter(|a| !a.is_empty())).cloned()
}

/// The Ironic node name of a host: `namespace~name`, as upstream names them.
pub fn node_name(host: &BareMetalHost) -> String {
    format!("{}~{}", host.namespace_or_default(), host.metadata.name.as_deref().unwrap_or(""))
}

fn boot_mode_capability(mode: Option<BootMode>) -> &'static str {
    match mode {
        Some(BootMode::Legacy) => "boot_mode:bios",
        Some(BootMode::UefiSecureBoot) => "boot_mode:uefi,secure_boot:true",
        _ => "boot_mode:uefi",
    }
}

/// The driver_info a host's node should have. The agent boots from `deploy_iso` when one is
/// configured and the BMC boots ISOs (upstream's `SupportsISOPreprovisioningImage`), else from
/// the kernel and ramdisk — BMO's `setDeployImage` without a preprovisioning-image builder.
pub fn driver_info(
    access: &BmcAccess,
    credentials: &Credentials,
    defaults: &NodeDefaults,
) -> Map<String, Value> {
    let mut info = access.driver_info(credentials);
    match &defaults.deploy_iso {
        Some(iso) if access.kind.boots_iso_by_virtual_media() => {
            info.insert("deploy_iso".into(), json!(iso));
        }
        _ => {
            // a kernel without its ramdisk boots nothing: only the pair is set, as BMO
            if let (Some(k), Some(r)) = (&defaults.deploy_kernel, &defaults.deploy_ramdisk) {
                info.insert("deploy_kernel".into(), json!(k));
                info.insert("deploy_ramdisk".into(), json!(r));
            }
        }
    }
    info
}

/// The fields of `POST /v1/nodes` that register a host.
pub fn node_create_fields(
    host: &BareMetalHost,
    options: &LiveIsoOptions,
    access: &BmcAccess,
    credentials: &Credentials,
    defaults: &NodeDefaults,
) -> Map<String, Value> {
    let mut fields = Map::new();
    fields.insert("name".into(), json!(node_name(host)));
    fields.insert("driver".into(), json!(access.kind.driver()));
    fields.insert("boot_interface".into(), json!(access.kind.boot_interface()));
    // upstream: out-of-band inspection for `fast` where the BMC has it, the agent otherwise
    let inspect = match host.spec.inspection_mode {
        Some(InspectionMode::Fast) => access.kind.inspect_interface().unwrap_or("agent"),
        _ => "agent",
    };
    fields.insert("inspect_interface".into(), json!(inspect));
    for (key, value) in access.kind.other_interfaces() {
        fields.insert((*key).into(), json!(value));
    }
    let mut info = driver_info(access, credentials, defaults);
    if let Some(persistence) = options.boot_persistence.or(defaults.boot_persistence) {
        info.insert("force_persistent_boot_device".into(), json!(persistence.as_str()));
    }
    fields.insert("driver_info".into(), Value::Object(info));
    fields.insert("automated_clean".into(), json!(host.automated_cleaning()));
    let mut properties = json!({"capabilities": boot_mode_capability(host.spec.boot_mode)});
    if let Some(arch) = cpu_arch(host, defaults) {
        properties["cpu_arch"] = json!(arch);
    }
    fields.insert("properties".into(), properties);
    if host.spec.disable_power_off {
        fields.insert("disable_power_off".into(), json!(true));
    }
    fields
}

/// The fields registration keeps in line on an existing node: a new node's `fields`, but an
/// architecture the host does not name itself is left out, so a node's own (Ironic's inspection,
/// another operator's) is never overwritten with the controller's guess.
pub fn without_assumed_arch(host: &BareMetalHost, mut fields: Map<String, Value>) -> Map<String, Value> {
    if host_cpu_arch(host).is_none()
        && let Some(Value::Object(properties)) = fields.get_mut("properties")
    {
        properties.remove("cpu_arch");
    }
    fields
}

/// Builds RFC 6902 patches for Ironic from simple operations.
#[derive(Debug, Default)]
struct PatchBuilder(Vec<Value>);

impl PatchBuilder {
    fn set(&mut self, path: &str, value: Value) {
        // Ironic's `add` sets a key whether or not it exists.
        self.0.push(json!({"op": "add", "path": path, "value": value}));
    }
    fn remove(&mut self, path: &str) {
        self.0.push(json!({"op": "remove", "path": path}));
    }
    fn build(self) -> Patch {
        serde_json::from_value(Value::Array(self.0)).expect("patch operations are well-formed")
    }
}

/// The patch that puts a node in maintenance or takes it out (Ironic deletes an active node only
/// in maintenance, and cleans none there).
pub fn maintenance_patch(on: bool) -> Patch {
    serde_json::from_value(json!([{"op": "add", "path": "/maintenance", "value": on}]))
        .expect("well-formed patch")
}

/// The patch that brings a registered node's driver settings in line with the host. Secret
/// driver_info keys (shown as `******` by Ironic) are only sent when `resend_secrets` is set, e.g.
/// after Ironic failed to verify them.
pub fn registration_patch(node: &Node, desired: &Map<String, Value>, resend_secrets: bool) -> Patch {
    let mut patch = PatchBuilder::default();
    interfaces(&mut patch, node, desired);
    settings(&mut patch, node, desired, resend_secrets);
    patch.build()
}

/// The patch that brings a deployed node's settings in line with the host: driver_info (not its
/// secrets) and automated cleaning, which Ironic takes on an active node. The hardware type and
/// interfaces are left as they are: Ironic changes those only on a node at rest (they go with the
/// next deploy).
pub fn deployed_settings_patch(node: &Node, desired: &Map<String, Value>) -> Patch {
    let mut patch = PatchBuilder::default();
    settings(&mut patch, node, desired, false);
    patch.build()
}

/// The hardware type and the interfaces Ironic reports back (the others are set at creation).
fn interfaces(patch: &mut PatchBuilder, node: &Node, desired: &Map<String, Value>) {
    for key in ["driver", "boot_interface", "management_interface", "power_interface", "inspect_interface"] {
        if let Some(want) = desired.get(key) {
            let have = match key {
                "driver" => Some(json!(node.driver)),
                "boot_interface" => node.boot_interface.as_ref().map(|v| json!(v)),
                // as upstream sets it again when inspection starts: a changed inspectionMode
                "inspect_interface" => node.inspect_interface.as_ref().map(|v| json!(v)),
                _ => None, // not read back; set at creation
            };
            if have.is_some() && have.as_ref() != Some(want) {
                patch.set(&format!("/{key}"), want.clone());
            }
        }
    }
}

/// driver_info (secrets only when `resend_secrets`) and automated cleaning.
fn settings(patch: &mut PatchBuilder, node: &Node, desired: &Map<String, Value>, resend_secrets: bool) {
    if let Some(Value::Object(info)) = desired.get("driver_info") {
        for (key, want) in info {
            let secret = BmcAccess::SECRET_KEYS.contains(&key.as_str());
            if (secret && resend_secrets) || (!secret && node.driver_info.get(key) != Some(want)) {
                patch.set(&format!("/driver_info/{key}"), want.clone());
            }
        }
        // the agent boots from an ISO or from a kernel and ramdisk: when the settings name one,
        // the other goes, with any kernel parameters of an earlier preprovisioning image (as
        // BMO); with none configured the node's own are left alone
        if DEPLOY_IMAGE_KEYS.iter().any(|k| info.contains_key(*k)) {
            for key in DEPLOY_IMAGE_KEYS.iter().chain(&[DEPLOY_KERNEL_PARAMS_KEY]) {
                if !info.contains_key(*key) && node.driver_info.contains_key(*key) {
                    patch.remove(&format!("/driver_info/{key}"));
                }
            }
        }
    }
    if let Some(want) = desired.get("automated_clean").and_then(Value::as_bool)
        && node.automated_clean != Some(want)
    {
        patch.set("/automated_clean", json!(want));
    }
    // as upstream, on a registered node and a deployed one alike: a changed architecture reaches
    // the node (Ironic picks the agent of the next boot by it)
    if let Some(want) = desired.get("properties").and_then(|p| p.get("cpu_arch"))
        && node.properties.get("cpu_arch") != Some(want)
    {
        patch.set("/properties/cpu_arch", want.clone());
    }
}

/// The patch that makes a node deploy `image` — the live-ISO rules:
/// - live ISO: `deploy_interface=ramdisk`, `instance_info.boot_iso=<url>`, and no disk-image keys;
/// - disk image: no `boot_iso`, `deploy_interface` back to the default (when it was ramdisk), and
///   `image_source`, the checksum keys and `image_disk_format` set.
pub fn deploy_patch(node: &Node, image: &DeployImage, options: &LiveIsoOptions) -> Patch {
    let wanted = Wanted::of(image, options);
    let mut patch = PatchBuilder::default();
    let ramdisk_now = node.deploy_interface.as_deref() == Some(RAMDISK_DEPLOY);
    match (wanted.ramdisk, ramdisk_now) {
        (true, false) => patch.set("/deploy_interface", json!(RAMDISK_DEPLOY)),
        (false, true) => patch.remove("/deploy_interface"),
        _ => {}
    }
    let has = |key: &str| node.instance_info.contains_key(key);
    for key in wanted.absent {
        if has(key) {
            patch.remove(&format!("/instance_info/{key}"));
        }
    }
    for (key, value) in wanted.keys {
        match value {
            Some(v) if node.instance_str(key) != Some(v.as_str()) => {
                patch.set(&format!("/instance_info/{key}"), json!(v))
            }
            None if has(key) => patch.remove(&format!("/instance_info/{key}")),
            _ => {}
        }
    }
    patch.build()
}

/// What a node must hold to deploy one image: the ramdisk deploy interface or the default, the
/// instance_info keys of other kinds of image gone, and its own keys set (`Some`) or gone (`None`).
struct Wanted {
    ramdisk: bool,
    absent: Vec<&'static str>,
    keys: Vec<(&'static str, Option<String>)>,
}

impl Wanted {
    fn of(image: &DeployImage, options: &LiveIsoOptions) -> Self {
        let not_live_iso = ["boot_iso", DOWNLOAD_SOURCE_KEY];
        match image {
            DeployImage::LiveIso { url } => Wanted {
                ramdisk: true,
                absent: [DISK_IMAGE_KEYS, LIVE_KERNEL_KEYS].concat(),
                keys: vec![
                    ("boot_iso", Some(url.clone())),
                    (DOWNLOAD_SOURCE_KEY, options.download_source.map(|s| s.as_str().to_string())),
                ],
            },
            DeployImage::LiveKernel { kernel, initramfs, kernel_arguments } => Wanted {
                ramdisk: true,
                absent: [&not_live_iso, DISK_IMAGE_KEYS].concat(),
                keys: vec![
                    ("kernel", Some(kernel.clone())),
                    ("ramdisk", Some(initramfs.clone())),
                    ("ramdisk_kernel_arguments", kernel_arguments.clone()),
                ],
            },
            DeployImage::Disk { url, checksum, checksum_type, format } => {
                let mut keys = vec![("image_source", Some(url.clone()))];
                keys.extend(checksum_keys(checksum.as_deref(), *checksum_type));
                keys.push(("image_disk_format", format.map(|f| f.as_str().to_string())));
                Wanted { ramdisk: false, absent: [&not_live_iso, LIVE_KERNEL_KEYS].concat(), keys }
            }
        }
    }
}

/// A disk image's checksum keys: an explicit algorithm goes as `image_os_hash_*`, a checksum of
/// unnamed (or `auto`) kind as `image_checksum`; the other form goes.
fn checksum_keys(
    checksum: Option<&str>,
    kind: Option<metalhost_api::ChecksumType>,
) -> [(&'static str, Option<String>); 3] {
    let explicit = kind.filter(|t| *t != metalhost_api::ChecksumType::Auto);
    let (plain, algo, value) = match (checksum, explicit) {
        (Some(sum), Some(kind)) => (None, Some(kind.as_str().to_string()), Some(sum.to_string())),
        (Some(sum), None) => (Some(sum.to_string()), None, None),
        (None, _) => (None, None, None),
    };
    [("image_checksum", plain), ("image_os_hash_algo", algo), ("image_os_hash_value", value)]
}

/// Ironic turns secure boot on for the deployed instance only when `instance_info.capabilities`
/// asks (`properties.capabilities` says only that the machine can): as upstream, a host in
/// `UEFISecureBoot` mode asks, another does not.
pub fn secure_boot_patch(node: &Node, mode: Option<BootMode>) -> Patch {
    let wanted = json!({"secure_boot": "true"});
    // Ironic takes the capabilities as an object or as its JSON text; it accepts only the strings
    // "true" and "false" as values
    let have = match node.instance_info.get("capabilities") {
        Some(Value::String(text)) => serde_json::from_str::<Value>(text).unwrap_or(Value::Null),
        Some(v) => v.clone(),
        None => Value::Null,
    };
    let mut patch = PatchBuilder::default();
    if mode == Some(BootMode::UefiSecureBoot) {
        if have != wanted {
            patch.set("/instance_info/capabilities", wanted);
        }
    } else if have.get("secure_boot").is_some() {
        patch.remove("/instance_info/capabilities");
    }
    patch.build()
}

/// Whether the node is set up to deploy exactly `image` (nothing left to patch; the live-ISO
/// options are not compared: they apply from the next deploy on).
pub fn instance_matches(node: &Node, image: &DeployImage) -> bool {
    let mut node = node.clone();
    node.instance_info.remove(DOWNLOAD_SOURCE_KEY);
    deploy_patch(&node, image, &LiveIsoOptions::default()).0.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use metalhost_api::{ChecksumType, ImageFormat};

    fn node(deploy: Option<&str>, instance: Value) -> Node {
        Node {
            uuid: "n1".into(),
            deploy_interface: deploy.map(Into::into),
            instance_info: instance.as_object().cloned().unwrap_or_default(),
            ..Default::default()
        }
    }

    fn dp(node: &Node, image: &DeployImage) -> Patch {
        deploy_patch(node, image, &LiveIsoOptions::default())
    }

    fn ops(patch: &Patch) -> Value {
        serde_json::to_value(patch).unwrap()
    }

    fn live(url: &str) -> DeployImage {
        DeployImage::LiveIso { url: url.into() }
    }

    fn disk(checksum_type: Option<ChecksumType>) -> DeployImage {
        DeployImage::Disk {
            url: "http://h/disk.qcow2".into(),
            checksum: Some("abc".into()),
            checksum_type,
            format: Some(ImageFormat::Qcow2),
        }
    }

    #[test]
    fn live_iso_sets_ramdisk_deploy_and_boot_iso() {
        let patch = dp(&node(Some("direct"), json!({})), &live("http://h/a.iso"));
        assert_eq!(
            ops(&patch),
            json!([
                {"op": "add", "path": "/deploy_interface", "value": "ramdisk"},
                {"op": "add", "path": "/instance_info/boot_iso", "value": "http://h/a.iso"},
            ])
        );
    }

    #[test]
    fn live_iso_removes_every_stale_disk_image_key() {
        let n = node(
            Some("direct"),
            json!({"image_source": "s", "image_checksum": "c", "image_os_hash_algo": "sha256",
                   "image_os_hash_value": "v", "image_disk_format": "qcow2", "root_gb": 10}),
        );
        let got = ops(&dp(&n, &live("http://h/a.iso")));
        for key in DISK_IMAGE_KEYS {
            assert!(
                got.as_array()
                    .unwrap()
                    .contains(&json!({"op": "remove", "path": format!("/instance_info/{key}")})),
                "{key} not removed: {got}"
            );
        }
        assert!(!got.to_string().contains("root_gb"), "unrelated keys stay: {got}");
    }

    #[test]
    fn live_iso_already_in_place_needs_no_patch() {
        let n = node(Some("ramdisk"), json!({"boot_iso": "http://h/a.iso"}));
        assert!(instance_matches(&n, &live("http://h/a.iso")));
        assert!(!instance_matches(&n, &live("http://h/b.iso")));
        assert_eq!(ops(&dp(&n, &live("http://h/b.iso"))).as_array().unwrap().len(), 1);
    }

    #[test]
    fn disk_image_after_live_iso_drops_boot_iso_and_ramdisk_deploy() {
        let n = node(Some("ramdisk"), json!({"boot_iso": "http://h/a.iso"}));
        assert_eq!(
            ops(&dp(&n, &disk(Some(ChecksumType::Sha256)))),
            json!([
                {"op": "remove", "path": "/deploy_interface"},
                {"op": "remove", "path": "/instance_info/boot_iso"},
                {"op": "add", "path": "/instance_info/image_source", "value": "http://h/disk.qcow2"},
                {"op": "add", "path": "/instance_info/image_os_hash_algo", "value": "sha256"},
                {"op": "add", "path": "/instance_info/image_os_hash_value", "value": "abc"},
                {"op": "add", "path": "/instance_info/image_disk_format", "value": "qcow2"},
            ])
        );
    }

    #[test]
    fn disk_image_with_auto_or_no_checksum_type_uses_image_checksum() {
        for kind in [None, Some(ChecksumType::Auto)] {
            let n = node(Some("direct"), json!({"image_os_hash_algo": "md5", "image_os_hash_value": "x"}));
            let got = ops(&dp(&n, &disk(kind)));
            let arr = got.as_array().unwrap();
            assert!(
                arr.contains(&json!({"op": "add", "path": "/instance_info/image_checksum", "value": "abc"}))
            );
            assert!(arr.contains(&json!({"op": "remove", "path": "/instance_info/image_os_hash_algo"})));
            assert!(arr.contains(&json!({"op": "remove", "path": "/instance_info/image_os_hash_value"})));
            assert!(!got.to_string().contains("/deploy_interface"), "direct stays: {got}");
        }
    }

    #[test]
    fn disk_image_in_place_needs_no_patch() {
        let n = node(
            None,
            json!({"image_source": "http://h/disk.qcow2", "image_os_hash_algo": "sha512",
                   "image_os_hash_value": "abc", "image_disk_format": "qcow2"}),
        );
        assert!(instance_matches(&n, &disk(Some(ChecksumType::Sha512))));
        assert!(!instance_matches(&n, &disk(Some(ChecksumType::Sha256))));
    }

    fn host() -> BareMetalHost {
        serde_json::from_value(json!({
            "apiVersion": "metal3.io/v1alpha1", "kind": "BareMetalHost",
            "metadata": {"name": "h1", "namespace": "lab"},
            "spec": {"online": true, "automatedCleaningMode": "disabled",
                     "bmc": {"address": "redfish-virtualmedia+http://127.0.0.1:8000/redfish/v1/Systems/1",
                             "credentialsName": "c"}}
        }))
        .unwrap()
    }

    #[test]
    fn node_fields_carry_name_driver_boot_interface_and_cleaning() {
        let h = host();
        let access = BmcAccess::parse(&h.spec.bmc.as_ref().unwrap().address, false).unwrap();
        let defaults = NodeDefaults {
            deploy_kernel: Some("http://k".into()),
            deploy_ramdisk: Some("http://r".into()),
            ..Default::default()
        };
        let fields = node_create_fields(
            &h,
            &LiveIsoOptions::default(),
            &access,
            &Credentials::new("u", "p"),
            &defaults,
        );
        assert_eq!(fields["name"], json!("lab~h1"));
        assert_eq!(fields["driver"], json!("redfish"));
        assert_eq!(fields["boot_interface"], json!("redfish-virtual-media"));
        assert_eq!(fields["automated_clean"], json!(false));
        assert_eq!(fields["driver_info"]["redfish_system_id"], json!("/redfish/v1/Systems/1"));
        assert_eq!(fields["driver_info"]["deploy_kernel"], json!("http://k"));
        assert_eq!(fields["properties"]["capabilities"], json!("boot_mode:uefi"));
    }

    fn deploy_settings() -> NodeDefaults {
        NodeDefaults {
            deploy_kernel: Some("http://k".into()),
            deploy_ramdisk: Some("http://r".into()),
            deploy_iso: Some("http://i.iso".into()),
            ..Default::default()
        }
    }

    /// The operations on the agent's boot image in the registration patch that brings a node with
    /// this driver_info to what the settings want for a host at `address`.
    fn deploy_patch_ops(address: &str, defaults: &NodeDefaults, node_info: Value) -> Value {
        let access = BmcAccess::parse(address, false).unwrap();
        let mut desired = Map::new();
        let info = driver_info(&access, &Credentials::new("u", "p"), defaults);
        desired.insert("driver_info".into(), Value::Object(info));
        let node: Node =
            serde_json::from_value(json!({"uuid": "u", "driver": "redfish", "driver_info": node_info}))
                .unwrap();
        let all = ops(&registration_patch(&node, &desired, false));
        let deploy_keys: Vec<String> = DEPLOY_IMAGE_KEYS
            .iter()
            .chain(&[DEPLOY_KERNEL_PARAMS_KEY])
            .map(|k| format!("/driver_info/{k}"))
            .collect();
        all.as_array()
            .unwrap()
            .iter()
            .filter(|o| deploy_keys.iter().any(|k| o["path"] == *k))
            .cloned()
            .collect()
    }

    const VMEDIA: &str = "redfish-virtualmedia://h/redfish/v1/Systems/1";
    const PXE: &str = "redfish://h/redfish/v1/Systems/1";

    #[test]
    fn the_inspect_interface_is_upstreams_for_each_mode() {
        let creds = Credentials::new("u", "p");
        for (address, mode, want) in [
            (VMEDIA, None, "agent"),
            (VMEDIA, Some("agent"), "agent"),
            (VMEDIA, Some("disabled"), "agent"),
            (VMEDIA, Some("fast"), "redfish"),
            ("ipmi://h", Some("fast"), "agent"),
            ("fake-hardware://h", Some("fast"), "fake"),
        ] {
            let host: BareMetalHost = serde_json::from_value(json!({
                "metadata": {"name": "h1", "namespace": "lab"},
                "spec": {"bmc": {"address": address, "credentialsName": "c"}, "inspectionMode": mode},
            }))
            .unwrap();
            let access = BmcAccess::parse(address, false).unwrap();
            let fields = node_create_fields(
                &host,
                &LiveIsoOptions::default(),
                &access,
                &creds,
                &NodeDefaults::default(),
            );
            assert_eq!(fields["inspect_interface"], json!(want), "{address} {mode:?}");
            // a node with another one (the mode changed, or another operator created it) is patched
            let node = Node {
                driver: fields["driver"].as_str().unwrap().into(),
                boot_interface: fields["boot_interface"].as_str().map(Into::into),
                inspect_interface: Some("no-inspect".into()),
                ..Default::default()
            };
            let patch = serde_json::to_value(registration_patch(&node, &fields, false)).unwrap();
            assert!(
                patch
                    .as_array()
                    .unwrap()
                    .contains(&json!({"op": "add", "path": "/inspect_interface", "value": want})),
                "{patch}"
            );
        }
    }

    #[test]
    fn deploy_iso_replaces_kernel_and_ramdisk_only_where_the_bmc_boots_isos() {
        let creds = Credentials::new("u", "p");
        for (address, iso) in [
            (VMEDIA, true),
            ("idrac-virtualmedia://h/redfish/v1/Systems/1", true),
            ("ilo5-virtualmedia://h/redfish/v1/Systems/1", true),
            ("redfish-uefihttp://h/redfish/v1/Systems/1", true),
            (PXE, false),
            ("ipmi://h", false),
        ] {
            let info = driver_info(&BmcAccess::parse(address, false).unwrap(), &creds, &deploy_settings());
            assert_eq!(info.contains_key("deploy_iso"), iso, "{address}");
            assert_eq!(info.contains_key("deploy_kernel"), !iso, "{address}");
            assert_eq!(info.contains_key("deploy_ramdisk"), !iso, "{address}");
        }
        // without a deploy ISO every kind gets the kernel and ramdisk; half a pair sets nothing
        let access = BmcAccess::parse(VMEDIA, false).unwrap();
        let no_iso = NodeDefaults { deploy_iso: None, ..deploy_settings() };
        let info = driver_info(&access, &creds, &no_iso);
        assert_eq!(info["deploy_kernel"], json!("http://k"));
        assert!(!info.contains_key("deploy_iso"));
        let half = NodeDefaults { deploy_ramdisk: None, ..no_iso };
        let info = driver_info(&access, &creds, &half);
        assert!(DEPLOY_IMAGE_KEYS.iter().all(|k| !info.contains_key(*k)), "{info:?}");
    }

    #[test]
    fn the_deploy_image_on_a_node_follows_the_settings_and_then_stays() {
        let has = |got: &Value, op: &str, path: &str| {
            got.as_array().unwrap().iter().any(|o| o["op"] == op && o["path"] == path)
        };
        // kernel and ramdisk (and BMO's kernel parameters) give way to the ISO
        let got = deploy_patch_ops(
            VMEDIA,
            &deploy_settings(),
            json!({"deploy_kernel": "http://k", "deploy_ramdisk": "http://r", "kernel_append_params": "x"}),
        );
        for key in ["deploy_kernel", "deploy_ramdisk", "kernel_append_params"] {
            assert!(has(&got, "remove", &format!("/driver_info/{key}")), "{got}");
        }
        assert!(has(&got, "add", "/driver_info/deploy_iso"), "{got}");
        // once there, nothing more to send
        let got = deploy_patch_ops(VMEDIA, &deploy_settings(), json!({"deploy_iso": "http://i.iso"}));
        assert_eq!(got, json!([]));
        // a BMC that cannot boot the ISO loses a stale one for the kernel and ramdisk
        let got = deploy_patch_ops(PXE, &deploy_settings(), json!({"deploy_iso": "http://i.iso"}));
        assert!(has(&got, "remove", "/driver_info/deploy_iso"), "{got}");
        assert!(has(&got, "add", "/driver_info/deploy_kernel"), "{got}");
        // nothing configured: the node's own are left alone
        let got = deploy_patch_ops(VMEDIA, &NodeDefaults::default(), json!({"deploy_kernel": "http://own"}));
        assert_eq!(got, json!([]));
    }

    #[test]
    fn registration_patch_sends_secrets_only_when_asked() {
        let h = host();
        let access = BmcAccess::parse(&h.spec.bmc.as_ref().unwrap().address, false).unwrap();
        let fields = node_create_fields(
            &h,
            &LiveIsoOptions::default(),
            &access,
            &Credentials::new("u", "p"),
            &NodeDefaults::default(),
        );
        let mut raw = fields.clone();
        raw.insert("uuid".into(), json!("n1"));
        let mut n: Node = serde_json::from_value(Value::Object(raw)).unwrap();
        n.driver_info.insert("redfish_password".into(), json!("******"));
        assert!(registration_patch(&n, &fields, false).0.is_empty());
        let resent = ops(&registration_patch(&n, &fields, true));
        assert_eq!(resent, json!([{"op": "add", "path": "/driver_info/redfish_password", "value": "p"}]));
        n.driver_info.insert("redfish_username".into(), json!("old"));
        n.automated_clean = Some(true);
        let got = ops(&registration_patch(&n, &fields, false));
        assert_eq!(
            got,
            json!([
                {"op": "add", "path": "/driver_info/redfish_username", "value": "u"},
                {"op": "add", "path": "/automated_clean", "value": false},
            ])
        );
    }

    #[test]
    fn only_a_secure_boot_host_asks_ironic_for_secure_boot_in_instance_info() {
        let with = |caps: Value| node(Some("ramdisk"), json!({"capabilities": caps}));
        let plain = node(Some("ramdisk"), json!({}));
        assert_eq!(
            ops(&secure_boot_patch(&plain, Some(BootMode::UefiSecureBoot))),
            json!([{"op": "add", "path": "/instance_info/capabilities", "value": {"secure_boot": "true"}}])
        );
        assert_eq!(ops(&secure_boot_patch(&plain, Some(BootMode::Uefi))), json!([]));
        assert_eq!(ops(&secure_boot_patch(&plain, None)), json!([]));
        for asks in [json!({"secure_boot": "true"}), json!("{\"secure_boot\": \"true\"}")] {
            assert_eq!(
                ops(&secure_boot_patch(&with(asks.clone()), Some(BootMode::UefiSecureBoot))),
                json!([])
            );
            assert_eq!(
                ops(&secure_boot_patch(&with(asks), Some(BootMode::Uefi))),
                json!([{"op": "remove", "path": "/instance_info/capabilities"}])
            );
        }
        // what Ironic refuses (a boolean, "True") is replaced with what it takes
        for odd in [json!({"secure_boot": true}), json!({"secure_boot": "True"})] {
            assert_eq!(
                ops(&secure_boot_patch(&with(odd), Some(BootMode::UefiSecureBoot))),
                json!([{"op": "add", "path": "/instance_info/capabilities", "value": {"secure_boot": "true"}}])
            );
        }
    }

    #[test]
    fn cpu_arch_is_the_spec_s_else_the_inspected_else_the_default_and_reaches_a_registered_node() {
        let fields_of = |h: &BareMetalHost, default: Option<&str>| {
            let access = BmcAccess::parse(&h.spec.bmc.as_ref().unwrap().address, false).unwrap();
            let defaults = NodeDefaults { cpu_arch: default.map(str::to_string), ..Default::default() };
            node_create_fields(h, &LiveIsoOptions::default(), &access, &Credentials::new("u", "p"), &defaults)
        };
        let mut h = host();
        assert_eq!(fields_of(&h, None)["properties"].get("cpu_arch"), None);
        assert_eq!(fields_of(&h, Some("x86_64"))["properties"]["cpu_arch"], json!("x86_64"));
        h.status = Some(serde_json::from_value(json!({"hardware": {"cpu": {"arch": "ppc64le"}}})).unwrap());
        assert_eq!(fields_of(&h, Some("x86_64"))["properties"]["cpu_arch"], json!("ppc64le"));
        h.spec.architecture = Some("aarch64".into());
        let fields = fields_of(&h, Some("x86_64"));
        assert_eq!(fields["properties"]["cpu_arch"], json!("aarch64"));

        let mut raw = fields.clone();
        raw.insert("uuid".into(), json!("n1"));
        let mut n: Node = serde_json::from_value(Value::Object(raw)).unwrap();
        assert!(registration_patch(&n, &fields, false).0.is_empty());
        n.properties.insert("cpu_arch".into(), json!("x86_64"));
        let changed = json!([{"op": "add", "path": "/properties/cpu_arch", "value": "aarch64"}]);
        assert_eq!(ops(&registration_patch(&n, &fields, false)), changed);
        assert_eq!(ops(&deployed_settings_patch(&n, &fields)), changed);

        // a host that names no architecture leaves the node's own alone: the default is a guess
        let plain = host();
        let access = BmcAccess::parse(&plain.spec.bmc.as_ref().unwrap().address, false).unwrap();
        let defaults = NodeDefaults { cpu_arch: Some("x86_64".into()), ..Default::default() };
        let created = node_create_fields(
            &plain,
            &LiveIsoOptions::default(),
            &access,
            &Credentials::new("u", "p"),
            &defaults,
        );
        assert_eq!(created["properties"]["cpu_arch"], json!("x86_64"));
        let desired = without_assumed_arch(&plain, created);
        assert_eq!(desired["properties"].get("cpu_arch"), None);
        n.properties.insert("cpu_arch".into(), json!("aarch64"));
        n.driver_info = desired["driver_info"].as_object().unwrap().clone();
        assert_eq!(ops(&registration_patch(&n, &desired, false)), json!([]));
    }
}

#[cfg(test)]
mod option_tests {
    use super::*;
    use metalhost_api::extensions::IsoDownloadSource;

    #[test]
    fn download_source_is_set_for_a_live_iso_and_dropped_for_a_disk_image() {
        let node = Node { uuid: "n1".into(), deploy_interface: Some("ramdisk".into()), ..Default::default() };
        let http = LiveIsoOptions { download_source: Some(IsoDownloadSource::Http), ..Default::default() };
        let live = DeployImage::LiveIso { url: "http://h/a.iso".into() };
        let got = serde_json::to_value(deploy_patch(&node, &live, &http)).unwrap();
        assert!(got.as_array().unwrap().contains(
            &json!({"op": "add", "path": "/instance_info/ramdisk_image_download_source", "value": "http"})
        ));
        let mut set = node.clone();
        set.instance_info.insert("boot_iso".into(), json!("http://h/a.iso"));
        set.instance_info.insert(DOWNLOAD_SOURCE_KEY.into(), json!("http"));
        assert!(instance_matches(&set, &live), "options do not make a deployed node stale");
        let plain = serde_json::to_value(deploy_patch(&set, &live, &LiveIsoOptions::default())).unwrap();
        assert_eq!(plain, json!([{"op": "remove", "path": "/instance_info/ramdisk_image_download_source"}]));
        let disk = DeployImage::Disk {
            url: "http://h/d".into(),
            checksum: Some("c".into()),
            checksum_type: None,
            format: None,
        };
        let got = serde_json::to_value(deploy_patch(&set, &disk, &http)).unwrap();
        assert!(
            got.as_array()
                .unwrap()
                .contains(&json!({"op": "remove", "path": "/instance_info/ramdisk_image_download_source"}))
        );
    }

    #[test]
    fn boot_persistence_comes_from_the_annotation_or_the_operator_default() {
        let mut host: BareMetalHost = serde_json::from_value(json!({
            "metadata": {"name": "h1"},
            "spec": {"online": true, "bmc": {"address": "redfish-virtualmedia://b/x", "credentialsName": "c"}}
        }))
        .unwrap();
        let access = BmcAccess::parse("redfish-virtualmedia://b/x", false).unwrap();
        let creds = Credentials::new("u", "p");
        let mut defaults = NodeDefaults::default();
        let info = |h: &BareMetalHost, d: &NodeDefaults| {
            let options = metalhost_api::extensions::live_iso_options(h).unwrap();
            node_create_fields(h, &options, &access, &creds, d)["driver_info"].clone()
        };
        assert_eq!(info(&host, &defaults).get("force_persistent_boot_device"), None);
        defaults.boot_persistence = Some(BootPersistence::Always);
        assert_eq!(info(&host, &defaults)["force_persistent_boot_device"], json!("Always"));
        host.metadata.annotations = Some(
            [(metalhost_api::extensions::BOOT_PERSISTENCE_ANNOTATION.to_string(), "Never".to_string())]
                .into(),
        );
        assert_eq!(info(&host, &defaults)["force_persistent_boot_device"], json!("Never"));
    }
}

#[cfg(test)]
mod live_kernel_tests {
    use super::*;

    fn kernel(args: Option<&str>) -> DeployImage {
        DeployImage::LiveKernel {
            kernel: "http://h/vmlinuz".into(),
            initramfs: "http://h/initrd".into(),
            kernel_arguments: args.map(Into::into),
        }
    }

    #[test]
    fn live_kernel_sets_ramdisk_deploy_kernel_ramdisk_and_arguments_and_drops_the_iso() {
        let node = Node {
            uuid: "n1".into(),
            deploy_interface: Some("ramdisk".into()),
            instance_info: json!({"boot_iso": "http://h/a.iso"}).as_object().cloned().unwrap(),
            ..Default::default()
        };
        let got = serde_json::to_value(deploy_patch(
            &node,
            &kernel(Some("console=ttyS0")),
            &LiveIsoOptions::default(),
        ))
        .unwrap();
        assert_eq!(
            got,
            json!([
                {"op": "remove", "path": "/instance_info/boot_iso"},
                {"op": "add", "path": "/instance_info/kernel", "value": "http://h/vmlinuz"},
                {"op": "add", "path": "/instance_info/ramdisk", "value": "http://h/initrd"},
                {"op": "add", "path": "/instance_info/ramdisk_kernel_arguments", "value": "console=ttyS0"},
            ])
        );
    }

    #[test]
    fn a_live_iso_after_a_live_kernel_drops_the_kernel_keys() {
        let node = Node {
            uuid: "n1".into(),
            deploy_interface: Some("ramdisk".into()),
            instance_info: json!({"kernel": "k", "ramdisk": "r", "ramdisk_kernel_arguments": "a"})
                .as_object()
                .cloned()
                .unwrap(),
            ..Default::default()
        };
        let live = DeployImage::LiveIso { url: "http://h/a.iso".into() };
        let got = serde_json::to_value(deploy_patch(&node, &live, &LiveIsoOptions::default())).unwrap();
        for key in LIVE_KERNEL_KEYS {
            assert!(
                got.as_array()
                    .unwrap()
                    .contains(&json!({"op": "remove", "path": format!("/instance_info/{key}")})),
                "{key}: {got}"
            );
        }
        let mut done = node.clone();
        done.instance_info.clear();
        done.instance_info.insert("kernel".into(), json!("http://h/vmlinuz"));
        done.instance_info.insert("ramdisk".into(), json!("http://h/initrd"));
        assert!(instance_matches(&done, &kernel(None)));
    }
}
