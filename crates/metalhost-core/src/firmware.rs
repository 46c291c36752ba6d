//! HostFirmwareSettings' status as upstream's firmware-settings controller keeps it: what the
//! machine reports (Ironic's cached BIOS settings), the FirmwareSchema it is judged by, and the
//! conditions `ChangeDetected` (the spec asks for something the machine does not have) and
//! `Valid` (what it asks for is allowed), which tell preparing whether there is something to
//! apply. Pure: the runtimes read Ironic and write the resources.

use std::collections::BTreeMap;

use metalhost_api::Condition;
use metalhost_api::firmware::{
    HostFirmwareSettingsSpec, HostFirmwareSettingsStatus, SchemaReference, SettingError, SettingSchema,
    SettingValue, shown_settings, validate_settings,
};
use metalhost_ironic::BiosSetting;
use serde_json::{Value, json};

/// Condition type: the spec differs from what the machine reports.
pub const CHANGE_DETECTED: &str = "ChangeDetected";
/// Condition type: every setting the spec asks for is allowed by the schema.
pub const VALID: &str = "Valid";
/// The Event reason of a setting the schema refuses (upstream's).
pub const VALIDATION_FAILED: &str = "ValidationFailed";

/// The machine's BIOS as Ironic has it: the values and the registry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BiosReport {
    /// Setting name → value (a setting without a value reads as empty, as upstream's).
    pub settings: BTreeMap<String, String>,
    /// Setting name → what the BIOS registry says of it.
    pub registry: BTreeMap<String, SettingSchema>,
}

/// The node whose BIOS a host's HostFirmwareSettings are judged from, when it has one worth
/// reading (upstream skips unmanaged and detached hosts; a node still enrolling has no BIOS
/// cached yet, and a host on its way out needs none).
pub fn registered_node(status: &metalhost_api::BareMetalHostStatus) -> Option<&str> {
    use metalhost_api::{OperationalStatus, ProvisioningState};
    let skipped = matches!(
        status.provisioning.state,
        ProvisioningState::None
            | ProvisioningState::Unmanaged
            | ProvisioningState::Registering
            | ProvisioningState::Deleting
            | ProvisioningState::PoweringOffBeforeDelete
    ) || status.operational_status == OperationalStatus::Detached;
    Some(status.provisioning.id.as_str()).filter(|id| !skipped && !id.is_empty())
}

/// Reads Ironic's `GET /v1/nodes/{id}/bios?detail=True` answer as upstream's provisioner does.
pub fn bios_report(settings: &[BiosSetting]) -> BiosReport {
    let mut report = BiosReport::default();
    for s in settings {
        report.settings.insert(s.name.clone(), s.value.clone().unwrap_or_default());
        let schema = SettingSchema {
            attribute_type: s.attribute_type.clone().unwrap_or_default(),
            allowable_values: s.allowable_values.clone().unwrap_or_default(),
            lower_bound: s.lower_bound,
            upper_bound: s.upper_bound,
            min_length: s.min_length,
            max_length: s.max_length,
            read_only: s.read_only,
            unique: s.unique,
        };
        report.registry.insert(s.name.clone(), schema);
    }
    report
}

/// The status judged afresh, whether it differs from the one stored (then it is written, with
/// `lastUpdated`), and the spec's settings the schema refuses.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    /// The new status.
    pub status: HostFirmwareSettingsStatus,
    /// Whether it must be written: other settings or schema, or a condition that turned.
    pub changed: bool,
    /// Why settings of the spec cannot be applied (upstream's messages), in name order.
    pub invalid: Vec<SettingError>,
}

/// What the spec asks for and the machine does not have.
pub fn pending_changes(
    spec: &HostFirmwareSettingsSpec,
    reported: &BTreeMap<String, String>,
) -> BTreeMap<String, SettingValue> {
    not_yet_applied(&spec.settings, reported)
}

/// The wanted settings the machine does not report (upstream compares the wanted value as text
/// with the reported one; a setting the machine does not report differs too).
pub fn not_yet_applied(
    wanted: &BTreeMap<String, SettingValue>,
    reported: &BTreeMap<String, String>,
) -> BTreeMap<String, SettingValue> {
    wanted
        .iter()
        .filter(|(name, value)| reported.get(*name) != Some(&value.to_string()))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect()
}

/// Ironic's manual clean step that applies BIOS settings (upstream's `bios.apply_configuration`;
/// a number goes as a number, as upstream sends IntOrString).
pub fn clean_steps(settings: &BTreeMap<String, SettingValue>) -> Vec<Value> {
    let settings: Vec<Value> =
        settings.iter().map(|(name, value)| json!({"name": name, "value": value})).collect();
    vec![json!({"interface": "bios", "step": "apply_configuration", "args": {"settings": settings}})]
}

/// Judges `spec` (at `generation`) against what the machine reports and the stored schema, as
/// upstream's `updateStatus`: when the spec asks for a change, `ChangeDetected` is true and
/// `Valid` says whether every asked setting is allowed (false: reason `ConfigurationError`,
/// message `Invalid BIOS setting`); otherwise both say there is nothing to do. A condition keeps
/// its transition time while its status stays (upstream stamps every write).
pub fn judge(
    spec: &HostFirmwareSettingsSpec,
    generation: i64,
    previous: &HostFirmwareSettingsStatus,
    reported: BTreeMap<String, String>,
    schema: (SchemaReference, &BTreeMap<String, SettingSchema>),
    now: &str,
) -> Judgement {
    let (reference, stored) = schema;
    let mut status = HostFirmwareSettingsStatus {
        firmware_schema: Some(reference),
        settings: shown_settings(reported),
        last_updated: previous.last_updated.clone(),
        conditions: Vec::new(),
    };
    let mut changed =
        status.firmware_schema != previous.firmware_schema || status.settings != previous.settings;
    let mut conditions: Vec<(&str, bool, &str, &str)> = Vec::new();
    let mut invalid = Vec::new();
    if pending_changes(spec, &status.settings).is_empty() {
        conditions.push((VALID, true, "Success", ""));
        conditions.push((CHANGE_DETECTED, false, "Success", ""));
    } else {
        conditions.push((CHANGE_DETECTED, true, "Success", ""));
        invalid = validate_settings(&spec.settings, &status.settings, Some(stored));
        conditions.push(match invalid.is_empty() {
            true => (VALID, true, "Success", ""),
            false => (VALID, false, "ConfigurationError", "Invalid BIOS setting"),
        });
    }
    for condition in conditions {
        changed |= set_condition(&mut status, previous, condition, generation, now);
    }
    if changed {
        status.last_updated = Some(now.to_string());
    }
    Judgement { status, changed, invalid }
}

/// Sets one condition on `status` (its transition time kept from `previous` when its status is
/// the same); whether it differs from `previous`'s in anything but that time (upstream reports a
/// turned status only, and then leaves a condition judged for an older generation on the server,
/// which holds its preparing back).
fn set_condition(
    status: &mut HostFirmwareSettingsStatus,
    previous: &HostFirmwareSettingsStatus,
    (type_, holds, reason, message): (&str, bool, &str, &str),
    generation: i64,
    now: &str,
) -> bool {
    let value = if holds { "True" } else { "False" };
    let before = previous.conditions.iter().find(|c| c.type_ == type_);
    let turned = before.is_none_or(|c| c.status != value);
    let since = match before {
        Some(c) if !turned => c.last_transition_time.clone(),
        _ => now.to_string(),
    };
    let changed = turned
        || before.is_some_and(|c| {
            c.observed_generation != Some(generation) || c.reason != reason || c.message != message
        });
    status.conditions.push(Condition {
        type_: type_.to_string(),
        status: value.to_string(),
        reason: reason.to_string(),
        message: message.to_string(),
        last_transition_time: since,
        observed_generation: Some(generation),
    });
    changed
}

/// The settings preparing applies for a host, as upstream's `getHostFirmwareSettings`: only when
/// the status was judged for the spec's current generation with a change detected and valid; the
/// settings whose wanted value differs from the reported one.
pub fn settings_to_apply(
    spec: &HostFirmwareSettingsSpec,
    generation: i64,
    status: &HostFirmwareSettingsStatus,
) -> Option<BTreeMap<String, SettingValue>> {
    let holds = |type_: &str| {
        status
            .conditions
            .iter()
            .any(|c| c.type_ == type_ && c.status == "True" && c.observed_generation == Some(generation))
    };
    if !(holds(CHANGE_DETECTED) && holds(VALID)) || status.settings.is_empty() {
        return None;
    }
    Some(pending_changes(spec, &status.settings)).filter(|c| !c.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: &str = "2026-12-05T20:00:00Z";
    const LATER: &str = "2026-12-05T20:05:00Z";

    fn ironic_bios() -> Vec<BiosSetting> {
        serde_json::from_value(json!([
            {"name": "BootMode", "value": "Uefi", "attribute_type": "Enumeration", "allowable_values": ["Uefi", "Bios"]},
            {"name": "ProcTurboMode", "value": "Enabled", "attribute_type": "Enumeration", "allowable_values": ["Enabled", "Disabled"]},
            {"name": "AdminPassword", "value": null, "attribute_type": "Password"},
            {"name": "NicBoot1", "value": "NetworkBoot"},
        ]))
        .unwrap()
    }

    fn spec(settings: serde_json::Value) -> HostFirmwareSettingsSpec {
        serde_json::from_value(json!({"settings": settings})).unwrap()
    }

    fn judged(
        spec: &HostFirmwareSettingsSpec,
        generation: i64,
        previous: &HostFirmwareSettingsStatus,
        now: &str,
    ) -> Judgement {
        let report = bios_report(&ironic_bios());
        let stored = metalhost_api::firmware::stored_schema(report.registry.clone());
        let reference = SchemaReference {
            namespace: "lab".into(),
            name: metalhost_api::firmware::schema_name(&report.registry),
        };
        judge(spec, generation, previous, report.settings, (reference, &stored), now)
    }

    fn condition<'a>(status: &'a HostFirmwareSettingsStatus, type_: &str) -> &'a Condition {
        status.conditions.iter().find(|c| c.type_ == type_).unwrap()
    }

    #[test]
    fn ironics_bios_becomes_the_status_without_passwords_and_nothing_to_do() {
        let report = bios_report(&ironic_bios());
        assert_eq!(report.settings["NicBoot1"], "NetworkBoot");
        assert_eq!(report.settings["AdminPassword"], "", "a setting without a value reads as empty");
        assert_eq!(report.registry["BootMode"].allowable_values, ["Uefi", "Bios"]);
        let first = judged(&HostFirmwareSettingsSpec::default(), 1, &Default::default(), NOW);
        assert!(first.changed && first.invalid.is_empty());
        assert_eq!(
            first.status.settings.keys().collect::<Vec<_>>(),
            ["BootMode", "NicBoot1", "ProcTurboMode"]
        );
        assert_eq!(first.status.last_updated.as_deref(), Some(NOW));
        assert_eq!(condition(&first.status, VALID).status, "True");
        assert_eq!(condition(&first.status, CHANGE_DETECTED).status, "False");
        // the same again later: nothing to write
        let again = judged(&HostFirmwareSettingsSpec::default(), 1, &first.status, LATER);
        assert!(!again.changed);
        assert_eq!(again.status, first.status);
    }

    #[test]
    fn a_wanted_change_is_detected_and_judged_by_the_schema_with_upstreams_messages() {
        let first = judged(&HostFirmwareSettingsSpec::default(), 1, &Default::default(), NOW);
        let wanted = spec(json!({"ProcTurboMode": "Disabled"}));
        let j = judged(&wanted, 2, &first.status, LATER);
        assert!(j.changed && j.invalid.is_empty());
        assert_eq!(condition(&j.status, CHANGE_DETECTED).status, "True");
        assert_eq!(condition(&j.status, CHANGE_DETECTED).last_transition_time, LATER);
        let valid = condition(&j.status, VALID);
        assert_eq!(
            (valid.status.as_str(), valid.last_transition_time.as_str()),
            ("True", NOW),
            "Valid did not turn"
        );
        assert_eq!(valid.observed_generation, Some(2));
        let apply = settings_to_apply(&wanted, 2, &j.status).unwrap();
        assert_eq!(
            apply,
            BTreeMap::from([("ProcTurboMode".to_string(), SettingValue::String("Disabled".into()))])
        );
        let both: BTreeMap<_, _> =
            apply.into_iter().chain([("NumCores".to_string(), SettingValue::Int(8))]).collect();
        assert_eq!(
            clean_steps(&both),
            [json!({"interface": "bios", "step": "apply_configuration", "args": {"settings": [
                {"name": "NumCores", "value": 8}, {"name": "ProcTurboMode", "value": "Disabled"}
            ]}})]
        );
        assert_eq!(settings_to_apply(&wanted, 3, &j.status), None, "judged for an older generation");
        // another valid change: no condition turns, but they are judged for the new generation
        let other = spec(json!({"ProcTurboMode": "Disabled", "BootMode": "Bios"}));
        let again = judged(&other, 3, &j.status, LATER);
        assert!(again.changed, "conditions of generation 2 left on the server hold preparing back");
        assert_eq!(condition(&again.status, VALID).observed_generation, Some(3));
        assert_eq!(settings_to_apply(&other, 3, &again.status).map(|s| s.len()), Some(2));

        let bad = spec(json!({"ProcTurboMode": "Sometimes", "Missing": 1}));
        let j = judged(&bad, 3, &first.status, LATER);
        let messages: Vec<String> = j.invalid.iter().map(ToString::to_string).collect();
        assert_eq!(
            messages,
            [
                "setting Missing is not in the Status field",
                "Setting ProcTurboMode is invalid, unknown enumeration value - Sometimes"
            ]
        );
        let valid = condition(&j.status, VALID);
        assert_eq!(
            (valid.status.as_str(), valid.reason.as_str(), valid.message.as_str()),
            ("False", "ConfigurationError", "Invalid BIOS setting")
        );
        assert_eq!(settings_to_apply(&bad, 3, &j.status), None, "nothing invalid is applied");
    }

    #[test]
    fn a_change_the_machine_took_is_over() {
        let wanted = spec(json!({"ProcTurboMode": "Disabled", "BootMode": "Uefi"}));
        let pending = judged(&wanted, 2, &Default::default(), NOW);
        let mut bios = ironic_bios();
        bios[1].value = Some("Disabled".into());
        let report = bios_report(&bios);
        let stored = metalhost_api::firmware::stored_schema(report.registry.clone());
        let reference = pending.status.firmware_schema.clone().unwrap();
        let done = judge(&wanted, 2, &pending.status, report.settings, (reference, &stored), LATER);
        assert!(done.changed);
        assert_eq!(condition(&done.status, CHANGE_DETECTED).status, "False");
        assert_eq!(settings_to_apply(&wanted, 2, &done.status), None);
        assert_eq!(SettingValue::Int(1).to_string(), "1");
    }

    fn host_status(state: &str, id: Option<&str>, operational: &str) -> metalhost_api::BareMetalHostStatus {
        serde_json::from_value(json!({
            "provisioning": {"state": state, "ID": id.unwrap_or("")},
            "operationalStatus": operational,
            "poweredOn": false, "errorCount": 0, "errorMessage": "",
        }))
        .unwrap()
    }

    #[test]
    fn only_a_registered_attached_host_has_its_bios_read() {
        let node = |state, id, operational| {
            registered_node(&host_status(state, id, operational)).map(str::to_string)
        };
        assert_eq!(node("available", Some("n-1"), "OK").as_deref(), Some("n-1"));
        assert_eq!(node("provisioned", Some("n-1"), "OK").as_deref(), Some("n-1"));
        assert_eq!(node("registering", Some("n-1"), "OK"), None);
        assert_eq!(node("available", Some("n-1"), "detached"), None);
        assert_eq!(node("available", None, "OK"), None);
        assert_eq!(node("unmanaged", Some("n-1"), "OK"), None);
    }
}
