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

/// The rules for a host being created (and, with [`validate_update`], updated).
pub fn validate_host(host: &BareMetalHost) -> Vec<Violation> {
    let mut out = Vec::new();
    let spec = &host.spec;
    let access = match spec.bmc.as_ref().filter(|b| !b.address.is_empty()) {
        Some(bmc) => match BmcAccess::parse(&bmc.address, bmc.disable_certificate_verification) {
            Ok(a) => Some(a),
            Err(e) => {
                out.push(v("spec.bmc.address", e.reason()));
                None
            }
        },
        None => None,
    };
    if let Some(bmc) = &spec.bmc
        && bmc.credentials_name.is_empty()
        && !bmc.address.is_empty()
    {
        out.push(v("spec.bmc.credentialsName", "Missing BMC connection detail 'credentialsName'"));
    }
    cross_namespace_secrets(host, &mut out);
    raid(spec.raid.as_ref(), &mut out);
    if let Some(access) = &access {
        bmc_capabilities(host, access, &mut out);
    }
    if let Some(mac) = &spec.boot_mac_address
        && !is_mac(mac)
    {
        out.push(v("spec.bootMACAddress", format!("address {mac}: invalid MAC address")));
    }
    name(host.metadata.name.as_deref().unwrap_or(""), &mut out);
    root_device_hints(spec.root_device_hints.as_ref(), &mut out);
    if let Some(Err(e)) = DeployImage::for_host(host) {
        out.push(v(e.field(), e.reason()));
    }
    annotations(host, &mut out);
    if let Err(e) = crate::extensions::live_iso_options(host) {
        out.push(v(format!("metadata.annotations[{}]", e.annotation), e.reason));
    }
    inspection_mode(host, &mut out);
    if spec.disable_power_off && !spec.online {
        out.push(v(
            "spec.disablePowerOff",
            "node can't simultaneously have online set to false and have power off disabled",
        ));
    }
    out
}

/// The rules for an update from `old` to `new` (`new` carries the current status), plus every
/// rule of [`validate_host`].
pub fn validate_update(old: &BareMetalHost, new: &BareMetalHost) -> Vec<Violation> {
    let mut out = validate_host(new);
    let status = new.status.clone().unwrap_or_default();
    let old_address = old.spec.bmc.as_ref().map(|b| b.address.as_str()).unwrap_or("");
    let new_address = new.spec.bmc.as_ref().map(|b| b.address.as_str()).unwrap_or("");
    if !old_address.is_empty()
        && new_address != old_address
        && status.operational_status != OperationalStatus::Detached
        && status.provisioning.state != ProvisioningState::Registering
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
        && status.provisioning.state != ProvisioningState::Available
    {
        out.push(v(
            "spec.externallyProvisioned",
            format!(
                "externallyProvisioned can only be enabled when in Available state, currently in {}",
                status.provisioning.state.as_str()
            ),
        ));
    }
    out
}

fn is_mac(mac: &str) -> bool {
    let parts: Vec<&str> = mac.split(':').collect();
    parts.len() == 6 && parts.iter().all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()))
}

fn cross_namespace_secrets(host: &BareMetalHost, out: &mut Vec<Violation>) {
    let namespace = host.metadata.namespace.as_deref().unwrap_or("default");
    for (field, reference) in [
        ("userData", &host.spec.user_data),
        ("networkData", &host.spec.network_data),
        ("metaData", &host.spec.meta_data),
    ] {
        if let Some(ns) = reference.as_ref().and_then(|r| r.namespace.as_deref())
            && !ns.is_empty()
            && ns != namespace
        {
            out.push(v(
                format!("spec.{field}.namespace"),
                format!("{field}: cross-namespace Secret references are not allowed"),
            ));
        }
    }
}

fn raid(raid: Option<&RaidConfig>, out: &mut Vec<Violation>) {
    let Some(raid) = raid else { return };
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
    if software.iter().filter(|s| s.root_volume == Some(true)).count() > 1 {
        out.push(v("spec.raid.softwareRAIDVolumes", "only one volume can have isRootVolume"));
    }
    if software.len() > 2 {
        out.push(v("spec.raid.softwareRAIDVolumes", "at most 2 software RAID volumes are supported"));
    }
}

fn bmc_capabilities(host: &BareMetalHost, access: &BmcAccess, out: &mut Vec<Violation>) {
    let spec = &host.spec;
    let kind = access.kind;
    let has_hardware_raid =
        spec.raid.as_ref().and_then(|r| r.hardware_raid_volumes.as_ref()).is_some_and(|v| !v.is_empty());
    if has_hardware_raid && kind.raid_interface() == "no-raid" {
        out.push(v(
            "spec.raid.hardwareRAIDVolumes",
            format!("BMC driver {} does not support configuring RAID", kind.type_name()),
        ));
    }
    if spec.firmware.is_some() && !kind.supports_firmware_settings() {
        out.push(v("spec.firmware", format!("firmware settings for {} are not supported", kind.driver())));
    }
    // Upstream needs the boot MAC from PXE-family drivers, and from every driver when inspection
    // (which would discover it) is disabled. Extension: a live ISO on virtual media needs none.
    let live_iso_on_vmedia = kind.boots_iso_by_virtual_media()
        && spec.image.as_ref().is_some_and(|i| i.format == Some(ImageFormat::LiveIso));
    let requires_mac = kind.needs_boot_mac() || (host.inspection_disabled() && !live_iso_on_vmedia);
    if requires_mac && spec.boot_mac_address.as_deref().unwrap_or("").is_empty() {
        out.push(v(
            "spec.bootMACAddress",
            format!("BMC driver {} requires a BootMACAddress value", kind.type_name()),
        ));
    }
    if spec.boot_mode == Some(BootMode::UefiSecureBoot) && !kind.supports_secure_boot() {
        out.push(v("spec.bootMode", format!("BMC driver {} does not support secure boot", kind.type_name())));
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

fn is_uuid(s: &str) -> bool {
    let hex: String = s.trim_start_matches("urn:uuid:").trim_matches(|c| c == '{' || c == '}').to_string();
    let groups: Vec<&str> = hex.split('-').collect();
    let plain = hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit());
    let dashed = groups.iter().map(|g| g.len()).collect::<Vec<_>>() == [8, 4, 4, 4, 12]
        && groups.iter().all(|g| g.chars().all(|c| c.is_ascii_hexdigit()));
    plain || dashed
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

/// Keys of `input` that `typed` (the same JSON after a trip through a Rust type) lost.
fn unknown_fields(input: &Value, typed: &Value, path: &str, out: &mut Vec<String>) {
    match (input, typed) {
        (Value::Object(i), Value::Object(t)) => {
            for (k, val) in i {
                match t.get(k) {
                    Some(tv) => unknown_fields(val, tv, &format!("{path}.{k}"), out),
                    None if val.is_null() => {}
                    None => out.push(format!("{path}.{k}").trim_start_matches('.').to_string()),
                }
            }
        }
        (Value::Array(i), Value::Array(t)) => {
            for (n, (iv, tv)) in i.iter().zip(t).enumerate() {
                unknown_fields(iv, tv, &format!("{path}[{n}]"), out);
            }
        }
        _ => {}
    }
}

/// Parses JSON strictly into `T`: unknown fields are errors, as upstream decodes annotations.
fn strict<T: serde::de::DeserializeOwned + serde::Serialize>(text: &str) -> Result<T, String> {
    let raw: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let typed: T = serde_json::from_value(raw.clone()).map_err(|e| e.to_string())?;
    let mut unknown = Vec::new();
    unknown_fields(&raw, &serde_json::to_value(&typed).map_err(|e| e.to_string())?, "", &mut unknown);
    match unknown.first() {
        Some(field) => Err(format!("json: unknown field \"{field}\"")),
        None => Ok(typed),
    }
}

fn annotations(host: &BareMetalHost, out: &mut Vec<Violation>) {
    for (key, value) in host.annotations() {
        let path = format!("metadata.annotations[{key}]");
        if key == STATUS_ANNOTATION && !value.is_empty() {
            if let Err(e) = strict::<BareMetalHostStatus>(value) {
                out.push(v(path, format!("error decoding status annotation: {e}")));
            }
        } else if key == REBOOT_ANNOTATION || key.starts_with(&format!("{REBOOT_ANNOTATION}/")) {
            if value.is_empty() {
                continue;
            }
            match serde_json::from_str::<Value>(value) {
                Err(e) => out.push(v(
                    path,
                    format!("failed to unmarshal the data from the {REBOOT_ANNOTATION} annotation: {e}"),
                )),
                Ok(args) => {
                    let mode = args.get("mode").and_then(Value::as_str).unwrap_or("");
                    if !["hard", "soft", ""].contains(&mode)
                        || args.get("mode").is_some_and(|m| !m.is_string())
                    {
                        out.push(v(
                            path,
                            format!("invalid mode in the {REBOOT_ANNOTATION} annotation, allowed are \"hard\", \"soft\" or \"\""),
                        ));
                    }
                }
            }
        } else if key == INSPECT_ANNOTATION {
            if !["disabled", ""].contains(&value.as_str()) {
                out.push(v(
                    path,
                    format!("invalid value for the {INSPECT_ANNOTATION} annotation, allowed are \"disabled\" or \"\""),
                ));
            }
        } else if key == HARDWARE_DETAILS_ANNOTATION && !value.is_empty() {
            if !host.inspection_disabled() {
                out.push(v(
                    path,
                    "when hardware details are provided, inspection must be disabled (either via inspect.metal3.io annotation or inspectionMode field)",
                ));
            } else if let Err(e) = strict::<HardwareDetails>(value) {
                out.push(v(
                    path,
                    format!("error decoding the {HARDWARE_DETAILS_ANNOTATION} annotation: {e}"),
                ));
            }
        }
    }
}

fn inspection_mode(host: &BareMetalHost, out: &mut Vec<Violation>) {
    let annotation = host.annotations().get(INSPECT_ANNOTATION).map(String::as_str).unwrap_or("");
    if let Some(mode) = host.spec.inspection_mode {
        if !annotation.is_empty() && (annotation == "disabled") != (mode == InspectionMode::Disabled) {
            out.push(v(
                "spec.inspectionMode",
                "inspect.metal3.io annotation and inspectionMode field have contradicting values",
            ));
        }
        if mode == InspectionMode::Fast {
            out.push(v(
                "spec.inspectionMode",
                "invalid inspectionMode value: fast, allowed values are 'disabled' or 'agent'",
            ));
        }
    }
}

#[cfg(test)]
mod tests;
