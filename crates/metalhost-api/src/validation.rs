//! The admission rules of upstream's BareMetalHost webhook, as pure functions: what `metalhost
//! validate` and the admission webhook refuse, each with its field path and upstream's wording.

use std::fmt;

use serde_json::Value;

use crate::bmc::BmcAccess;
use crate::host::*;
use crate::image::DeployImage;

/// Annotation with a host's hardware details (requires inspection to be disabled).
pub const HARDWARE_DETAILS_ANNOTATION: &str = "inspect.metal3.io/hardwaredetails";
/// Annotation (or prefix of annotations) requesting a reboot.
pub const REBOOT_ANNOTATION: &str = "reboot.metal3.io";

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Where, e.g. `spec.bmc.address`.
    pub path: String,
    /// Why, in upstream's words where upstream has them.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

fn v(path: impl Into<String>, message: impl Into<String>) -> Violation {
    Violation { path: path.into(), message: message.into() }
}

/// The rules for a host being created (and, with [`validate_update`], updated), in upstream's
/// order.
pub fn validate_host(host: &BareMetalHost) -> Vec<Violation> {
    let mut out = Vec::new();
    let spec = &host.spec;
    let access = match spec.bmc.as_ref().filter(|b| !b.address.is_empty()) {
        Some(bmc) => match BmcAccess::parse(&bmc.address, bmc.disable_certificate_verification) {
            Ok(a) => Some(a),
            Err(e) => {
                // upstream reports a bad address twice (parsing, then its host name check); once here
                out.push(v("spec.bmc.address", e.reason()));
                None
            }
        },
        None => None,
    };
    if spec.firmware.is_some() {
        out.push(v(
            "spec.firmware",
            "the Firmware field is no longer supported, use HostFirmwareSettings resource instead",
        ));
    }
    cross_namespace_secrets(host, &mut out);
    raid(spec, &mut out);
    if let Some(access) = &access {
        bmc_capabilities(host, access, &mut out);
    }
    name(host.metadata.name.as_deref().unwrap_or(""), &mut out);
    root_device_hints(spec.root_device_hints.as_ref(), &mut out);
    image(host, &mut out);
    annotations(host, &mut out);
    if let Err(e) = crate::extensions::live_iso_options(host) {
        out.push(v(format!("metadata.annotations[{}]", e.annotation), e.reason));
    }
    inspection_mode(host, access.as_ref(), &mut out);
    if spec.disable_power_off && !spec.online {
        out.push(v(
            "spec.disablePowerOff",
            "node can't simultaneously have online set to false and have power off disabled",
        ));
    }
    network_interfaces(&spec.network_interfaces, &mut out);
    out
}

/// The rules for an update from `old` to `new` (each with its status as the API server has it),
/// plus every rule of [`validate_host`].
pub fn validate_update(old: &BareMetalHost, new: &BareMetalHost) -> Vec<Violation> {
    let mut out = validate_host(new);
    let old_status = old.status.clone().unwrap_or_default();
    let new_status = new.status.clone().unwrap_or_default();
    let old_address = old.spec.bmc.as_ref().map(|b| b.address.as_str()).unwrap_or("");
    let new_address = new.spec.bmc.as_ref().map(|b| b.address.as_str()).unwrap_or("");
    if !old_address.is_empty()
        && new_address != old_address
        && old_status.operational_status != OperationalStatus::Detached
        && new_status.operational_status != OperationalStatus::Detached
        && old_status.provisioning.state != ProvisioningState::Registering
        && new_status.provisioning.state != ProvisioningState::Registering
    {
        out.push(v(
            "spec.bmc.address",
            "BMC address can not be changed if the BMH is not in the Registering state, or if the BMH is not detached",
        ));
    }
    if let Some(old_mac) = old.spec.boot_mac_address.as_deref().filter(|m| !m.is_empty())
        && !new.spec.boot_mac_address.as_deref().unwrap_or("").eq_ignore_ascii_case(old_mac)
    {
        out.push(v("spec.bootMACAddress", "bootMACAddress can not be changed once it is set"));
    }
    if !old.spec.externally_provisioned
        && new.spec.externally_provisioned
        && old_status.provisioning.state != ProvisioningState::Available
        && new_status.provisioning.state != ProvisioningState::Available
    {
        out.push(v(
            "spec.externallyProvisioned",
            format!(
                "externallyProvisioned can only be enabled when in Available state, currently in {}",
                old_status.provisioning.state.as_str()
            ),
        ));
    }
    out
}

/// Go's `net.ParseMAC`: 6, 8 or 20 bytes as `xx:xx:…`, `xx-xx-…` or `xxxx.xxxx.…`.
fn is_mac(s: &str) -> bool {
    let b = s.as_bytes();
    let hex2 = |x: &[u8]| x.len() >= 2 && x[0].is_ascii_hexdigit() && x[1].is_ascii_hexdigit();
    if b.len() < 14 {
        return false;
    }
    let (group, sep) = if b[2] == b':' || b[2] == b'-' {
        (2, b[2])
    } else if b[4] == b'.' {
        (4, b'.')
    } else {
        return false;
    };
    if !(b.len() + 1).is_multiple_of(group + 1) {
        return false;
    }
    let n = (b.len() + 1) / (group + 1) * group / 2;
    if ![6, 8, 20].contains(&n) {
        return false;
    }
    b.chunks(group + 1)
        .all(|chunk| chunk[..group].chunks(2).all(hex2) && (chunk.len() == group || chunk[group] == sep))
}

fn cross_namespace_secrets(host: &BareMetalHost, out: &mut Vec<Violation>) {
    let namespace = host.namespace_or_default();
    let name = host.metadata.name.as_deref().unwrap_or("");
    for (field, reference) in [
        ("userData", &host.spec.user_data),
        ("networkData", &host.spec.network_data),
        ("metaData", &host.spec.meta_data),
    ] {
        if let Some(ns) = reference.as_ref().and_then(|r| r.namespace.as_deref())
            && !ns.is_empty()
            && ns != namespace
        {
            // upstream's Forbidden status error, as Kubernetes words it
            let resource = if name.is_empty() {
                "baremetalhosts.metal3.io".to_string()
            } else {
                format!("baremetalhosts.metal3.io \"{name}\"")
            };
            out.push(v(
                format!("spec.{field}.namespace"),
                format!(
                    "{resource} is forbidden: {field}: cross-namespace Secret references are not allowed"
                ),
            ));
        }
    }
}

fn raid(spec: &BareMetalHostSpec, out: &mut Vec<Violation>) {
    let Some(raid) = spec.raid.as_ref() else { return };
    let hardware = raid.hardware_raid_volumes.as_deref().unwrap_or_default();
    let software = raid.software_raid_volumes.as_deref().unwrap_or_default();
    if !hardware.is_empty() && !software.is_empty() {
        out.push(v(
            "spec.raid",
            "hardwareRAIDVolumes and softwareRAIDVolumes can not be set at the same time",
        ));
    }
    for (i, volume) in hardware.iter().enumerate() {
        let disks = volume.physical_disks.as_deref().unwrap_or_default();
        let path = format!("spec.raid.hardwareRAIDVolumes[{i}]");
        if !disks.is_empty() && volume.controller.as_deref().unwrap_or("").is_empty() {
            out.push(v(
                &path,
                format!("'physicalDisks' specified without 'controller' in hardware RAID volume {i}"),
            ));
        }
        if let Some(n) = volume.number_of_physical_disks
            && !disks.is_empty()
            && n != disks.len() as i64
        {
            out.push(v(
                &path,
                format!(
                    "the 'numberOfPhysicalDisks'[{n}] and number of 'physicalDisks'[{}] is not same for volume {i}",
                    disks.len()
                ),
            ));
        }
    }
    let roots = software.iter().filter(|s| s.root_volume == Some(true)).count();
    if roots > 1 {
        out.push(v(
            "spec.raid.softwareRAIDVolumes",
            "softwareRAIDVolumes[*].rootVolume can only be set once",
        ));
    }
    if roots == 1 && spec.root_device_hints.is_some() {
        out.push(v(
            "spec.raid.softwareRAIDVolumes",
            "softwareRAIDVolumes[*].rootVolume and rootDeviceHints can not be set at the same time",
        ));
    }
    for (i, volume) in software.iter().enumerate() {
        if volume.root_volume == Some(true) && volume.level != SoftwareRaidLevel::L1 {
            out.push(v(
                format!("spec.raid.softwareRAIDVolumes[{i}]"),
                format!("softwareRAIDVolumes[{i}] with rootVolume set must use RAID level 1"),
            ));
        }
    }
}

fn bmc_capabilities(host: &BareMetalHost, access: &BmcAccess, out: &mut Vec<Violation>) {
    let spec = &host.spec;
    let kind = access.kind;
    let bmc_type = &access.bmc_type;
    let has_hardware_raid =
        spec.raid.as_ref().and_then(|r| r.hardware_raid_volumes.as_ref()).is_some_and(|v| !v.is_empty());
    if has_hardware_raid && kind.raid_interface() == "no-raid" {
        out.push(v(
            "spec.raid.hardwareRAIDVolumes",
            format!("BMC driver {bmc_type} does not support configuring RAID"),
        ));
    }
    // Upstream needs the boot MAC from drivers that cannot discover it (libvirt), and from every
    // driver when inspection (which would discover it) is disabled. Extension: a live ISO or a
    // live kernel on virtual media needs none, as it never boots from the network (Ironic makes
    // an ISO of the kernel and initramfs; UEFI HTTP boot does boot from the network).
    let live_on_vmedia = kind.boots_from_virtual_media()
        && spec
            .image
            .as_ref()
            .is_some_and(|i| matches!(i.format, Some(ImageFormat::LiveIso | ImageFormat::LiveKernel)));
    let requires_mac = kind.needs_boot_mac() || (host.inspection_disabled() && !live_on_vmedia);
    let mac = spec.boot_mac_address.as_deref().unwrap_or("");
    if requires_mac && mac.is_empty() {
        out.push(v("spec.bootMACAddress", format!("BMC driver {bmc_type} requires a BootMACAddress value")));
    }
    if !mac.is_empty() && !is_mac(mac) {
        out.push(v("spec.bootMACAddress", format!("address {mac}: invalid MAC address")));
    }
    if spec.boot_mode == Some(BootMode::UefiSecureBoot) && !kind.supports_secure_boot() {
        out.push(v("spec.bootMode", format!("BMC driver {bmc_type} does not support secure boot")));
    }
}

fn name(name: &str, out: &mut Vec<Violation>) {
    if name.chars().any(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))) {
        out.push(v(
            "metadata.name",
            "BareMetalHost resource name cannot contain characters other than [A-Za-z0-9._-]",
        ));
    }
    if is_uuid(name) {
        out.push(v("metadata.name", "BareMetalHost resource name cannot be a UUID"));
    }
}

/// What Go's `uuid.Parse` accepts: 32 hex digits, or the dashed form, bare, in braces or after
/// `urn:uuid:`.
fn is_uuid(s: &str) -> bool {
    let dashed = |s: &str| {
        s.len() == 36
            && s.char_indices()
                .all(|(i, c)| if [8, 13, 18, 23].contains(&i) { c == '-' } else { c.is_ascii_hexdigit() })
    };
    match s.len() {
        32 => s.chars().all(|c| c.is_ascii_hexdigit()),
        36 => dashed(s),
        // google/uuid drops the first character of a 38-character form and never checks either
        // brace: `a27946b59-…-f3527a1ef094b` is a UUID to upstream too
        38 => s.is_char_boundary(1) && s.is_char_boundary(37) && dashed(&s[1..37]),
        45 => s.is_char_boundary(9) && s[..9].eq_ignore_ascii_case("urn:uuid:") && dashed(&s[9..]),
        _ => false,
    }
}

fn root_device_hints(hints: Option<&RootDeviceHints>, out: &mut Vec<Violation>) {
    let Some(device) = hints.and_then(|h| h.device_name.as_deref()).filter(|d| !d.is_empty()) else { return };
    let path = "spec.rootDeviceHints.deviceName";
    let Some(sub) = device.strip_prefix("/dev/") else {
        out.push(v(path, format!("device name of root device hint must be a /dev/ path, not \"{device}\"")));
        return;
    };
    if sub.strip_prefix("disk/by-path/").unwrap_or(sub).contains('/') {
        out.push(v(
            path,
            format!("device name of root device hint must be path in /dev/ or /dev/disk/by-path/, not \"{device}\""),
        ));
    }
}

/// Upstream's image rules (URL and checksum), then the live-kernel extension's.
fn image(host: &BareMetalHost, out: &mut Vec<Violation>) {
    let Some(image) = host.spec.image.as_ref() else { return };
    let url = &image.url;
    match crate::gourl::parse_request_uri(url) {
        Err(e) => out.push(v("spec.image.url", format!("image URL {url} is invalid: {e}"))),
        Ok(parsed) if !["http", "https", "oci"].contains(&parsed.scheme.as_str()) => out.push(v(
            "spec.image.url",
            format!("image URL {url} is invalid: invalid scheme in URL, \"{}\" not allowed", parsed.scheme),
        )),
        Ok(_) => {}
    }
    let checksum = image.checksum.as_deref().unwrap_or("");
    if url.to_ascii_lowercase().starts_with("oci://") {
        if !checksum.is_empty() {
            out.push(v(
                "spec.image.checksum",
                "spec.image.checksum must be empty for OCI images (oci:// images have embedded checksums)",
            ));
        }
    } else if matches!(image.format, Some(ImageFormat::LiveIso | ImageFormat::LiveKernel)) {
        // live images boot in place: no checksum (live-kernel is an extension)
    } else if checksum.is_empty() {
        out.push(v("spec.image.checksum", "checksum is required for normal images"));
    }
    if image.format == Some(ImageFormat::LiveKernel)
        && let Some(Err(e)) = DeployImage::for_host(host)
    {
        out.push(v(e.field(), e.reason()));
    }
}

fn status_schema() -> &'static Value {
    static SCHEMA: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    SCHEMA.get_or_init(|| {
        let crd = serde_json::to_value(crate::host::crd()).expect("the CRD serializes");
        crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"].clone()
    })
}

/// Decodes annotation JSON as upstream's `json.Decoder` with unknown fields refused does.
fn decode_strict(text: &str, schema: &Value, root: &str) -> Result<Value, String> {
    let value = crate::gojson::decode(text)?;
    crate::gojson::check_fields(&value, schema, root)?;
    Ok(value)
}

/// Upstream's allowed operational statuses and error types in the status annotation (no
/// `servicing`).
const STATUS_OPERATIONAL_ALLOWED: &[&str] = &["", "OK", "discovered", "error", "delayed", "detached"];
const STATUS_ERROR_TYPE_ALLOWED: &[&str] = &[
    "",
    "provisioned registration error",
    "registration error",
    "inspection error",
    "preparation error",
    "provisioning error",
    "power management error",
];

fn status_annotation(value: &str) -> Result<(), String> {
    let status = decode_strict(value, status_schema(), "BareMetalHostStatus")
        .map_err(|e| format!("error decoding status annotation: {e}"))?;
    for (field, allowed) in
        [("operationalStatus", STATUS_OPERATIONAL_ALLOWED), ("errorType", STATUS_ERROR_TYPE_ALLOWED)]
    {
        let got = crate::gojson::get(&status, field).and_then(Value::as_str).unwrap_or("");
        if !allowed.contains(&got) {
            return Err(format!("invalid {field} '{got}' in the {STATUS_ANNOTATION} annotation"));
        }
    }
    Ok(())
}

fn reboot_annotation(value: &str) -> Result<(), String> {
    let fail =
        |e: String| format!("failed to unmarshal the data from the {REBOOT_ANNOTATION} annotation: {e}");
    let args = crate::gojson::unmarshal(value).map_err(fail)?;
    let schema = serde_json::json!({"type": "object", "properties": {
        "mode": {"type": "string", "x-go-type": "v1alpha1.RebootMode"}, "force": {"type": "boolean"}}});
    // unknown fields are fine here (plain json.Unmarshal)
    let known: serde_json::Map<String, Value> = match &args {
        Value::Object(map) => map
            .iter()
            .filter(|(k, _)| ["mode", "force"].iter().any(|f| f.eq_ignore_ascii_case(k)))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        _ => serde_json::Map::new(),
    };
    let checked = if args.is_object() { Value::Object(known) } else { args.clone() };
    crate::gojson::check_fields(&checked, &schema, "RebootAnnotationArguments").map_err(fail)?;
    let mode = crate::gojson::get(&args, "mode").and_then(Value::as_str).unwrap_or("");
    if !["hard", "soft", ""].contains(&mode) {
        return Err(format!(
            "invalid mode in the {REBOOT_ANNOTATION} annotation, allowed are \"hard\", \"soft\" or \"\""
        ));
    }
    Ok(())
}

fn annotations(host: &BareMetalHost, out: &mut Vec<Violation>) {
    for (key, value) in host.annotations() {
        let path = format!("metadata.annotations[{key}]");
        let result = if key == STATUS_ANNOTATION {
            if value.is_empty() { Ok(()) } else { status_annotation(value) }
        } else if key == REBOOT_ANNOTATION || key.starts_with(&format!("{REBOOT_ANNOTATION}/")) {
            if value.is_empty() { Ok(()) } else { reboot_annotation(value) }
        } else if key == INSPECT_ANNOTATION {
            if ["disabled", ""].contains(&value.as_str()) {
                Ok(())
            } else {
                Err(format!(
                    "invalid value for the {INSPECT_ANNOTATION} annotation, allowed are \"disabled\" or \"\""
                ))
            }
        } else if key == HARDWARE_DETAILS_ANNOTATION && !value.is_empty() {
            if !host.inspection_disabled() {
                Err("when hardware details are provided, inspection must be disabled (either via inspect.metal3.io annotation or inspectionMode field)".to_string())
            } else {
                decode_strict(value, &status_schema()["properties"]["hardware"], "HardwareDetails")
                    .map(drop)
                    .map_err(|e| format!("error decoding the {HARDWARE_DETAILS_ANNOTATION} annotation: {e}"))
            }
        } else {
            Ok(())
        };
        if let Err(message) = result {
            out.push(v(path, message));
        }
    }
}

fn inspection_mode(host: &BareMetalHost, access: Option<&BmcAccess>, out: &mut Vec<Violation>) {
    let annotation = host.annotations().get(INSPECT_ANNOTATION).map(String::as_str).unwrap_or("");
    let Some(mode) = host.spec.inspection_mode else { return };
    if !annotation.is_empty() && (annotation == "disabled") != (mode == InspectionMode::Disabled) {
        out.push(v(
            "spec.inspectionMode",
            "inspect.metal3.io annotation and inspectionMode field have contradicting values",
        ));
        return;
    }
    if mode == InspectionMode::Fast
        && let Some(access) = access
        && access.kind.inspect_interface().is_none()
    {
        out.push(v(
            "spec.inspectionMode",
            format!("BMC driver {} does not support fast (out-of-band) inspection", access.bmc_type),
        ));
    }
}

fn network_interfaces(interfaces: &[NetworkInterface], out: &mut Vec<Violation>) {
    let mut seen = std::collections::HashSet::new();
    for (i, iface) in interfaces.iter().enumerate() {
        let name = iface.name.as_deref().unwrap_or("");
        let mac = iface.mac_address.as_deref().unwrap_or("");
        let path = format!("spec.networkInterfaces[{i}]");
        if name.is_empty() && mac.is_empty() {
            out.push(v(path, format!("networkInterfaces[{i}]: must specify either name or macAddress")));
            continue;
        }
        if !name.is_empty() && !mac.is_empty() {
            out.push(v(path, format!("networkInterfaces[{i}]: name and macAddress are mutually exclusive")));
            continue;
        }
        let key = if mac.is_empty() { name } else { mac };
        if !seen.insert(key.to_lowercase()) {
            out.push(v(path, format!("networkInterfaces[{i}]: duplicate interface selector for \"{key}\"")));
        }
    }
}

#[cfg(test)]
mod tests;
