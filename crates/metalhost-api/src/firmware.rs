//! HostFirmwareSettings and FirmwareSchema (metal3.io/v1alpha1) as upstream judges them: a
//! desired BIOS setting is checked against the schema Ironic's BIOS registry gives, with
//! upstream's wording (`Setting NAME is invalid, …`), and a schema is named by a hash of its
//! registry so hosts of one model share it. Pure: the runtimes read Ironic and write resources.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

use crate::Condition;
use sha2::{Digest, Sha256};

/// What Ironic's BIOS registry says about one setting (FirmwareSchema `spec.schema` values; the
/// keys are Ironic's, in snake case, as upstream's JSON tags).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingSchema {
    /// `Enumeration`, `String`, `Integer`, `Boolean` or `Password` (empty: the registry had none).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub attribute_type: String,
    /// The values an `Enumeration` takes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowable_values: Vec<String>,
    /// The lowest `Integer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lower_bound: Option<i64>,
    /// The highest `Integer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upper_bound: Option<i64>,
    /// The shortest `String`, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<i64>,
    /// The longest `String`, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<i64>,
    /// The setting cannot be changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    /// The value is this machine's own (a serial number, say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unique: Option<bool>,
}

/// A desired setting's value: HostFirmwareSettings `spec.settings` holds Kubernetes'
/// IntOrString.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SettingValue {
    /// A number written as a number.
    Int(i64),
    /// Anything written as a string.
    String(String),
}

impl fmt::Display for SettingValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SettingValue::Int(i) => write!(f, "{i}"),
            SettingValue::String(s) => f.write_str(s),
        }
    }
}

impl SettingValue {
    /// The number it stands for, as Go's `IntOrString.IntValue` reads it: a string that is not
    /// a decimal integer is 0.
    fn int_value(&self) -> i64 {
        match self {
            SettingValue::Int(i) => *i,
            SettingValue::String(s) => go_atoi(s).unwrap_or(0),
        }
    }
}

/// Go's `strconv.Atoi`: an optional sign and decimal digits, nothing else, within 64 bits.
fn go_atoi(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Why a desired setting cannot be applied, worded as upstream words it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingError {
    /// The schema refuses the value: `Setting NAME is invalid, REASON`.
    #[error("Setting {name} is invalid, {reason}")]
    Invalid {
        /// The setting.
        name: String,
        /// Upstream's reason.
        reason: String,
    },
    /// A setting with "Password" in its name is never set.
    #[error("cannot set Password field")]
    Password,
    /// The machine does not report the setting.
    #[error("setting {0} is not in the Status field")]
    NotReported(String),
}

fn invalid(name: &str, reason: impl Into<String>) -> SettingError {
    SettingError::Invalid { name: name.to_string(), reason: reason.into() }
}

impl SettingSchema {
    /// Whether `value` may be set for `name`, as upstream's `SettingSchema.Validate`.
    pub fn validate(&self, name: &str, value: &SettingValue) -> Result<(), SettingError> {
        if self.read_only == Some(true) {
            return Err(invalid(name, "it is ReadOnly"));
        }
        if name.contains("Password") {
            return Err(invalid(name, "Password fields can't be set"));
        }
        let text = value.to_string();
        match self.attribute_type.as_str() {
            "Enumeration" if self.allowable_values.contains(&text) => Ok(()),
            "Enumeration" => Err(invalid(name, format!("unknown enumeration value - {text}"))),
            "Integer" => self.validate_integer(name, value),
            "String" => {
                let len = text.len() as i64;
                match (self.min_length, self.max_length) {
                    (Some(min), _) if len < min => {
                        Err(invalid(name, format!("string {text} length is below minimum length {min}")))
                    }
                    (_, Some(max)) if len > max => {
                        Err(invalid(name, format!("string {text} length is above maximum length {max}")))
                    }
                    _ => Ok(()),
                }
            }
            "Boolean" if text == "true" || text == "false" => Ok(()),
            "Boolean" => Err(invalid(name, format!("{text} is not a boolean"))),
            "Password" => Err(invalid(name, "passwords are immutable")),
            // the BIOS registry may not have been available
            "" => Ok(()),
            other => Err(invalid(name, format!("unexpected attribute type {other}"))),
        }
    }

    fn validate_integer(&self, name: &str, value: &SettingValue) -> Result<(), SettingError> {
        if let SettingValue::String(s) = value
            && go_atoi(s).is_none()
        {
            return Err(invalid(name, format!("String {s} entered while integer expected")));
        }
        let n = value.int_value();
        match (self.lower_bound, self.upper_bound) {
            (Some(low), _) if n < low => {
                Err(invalid(name, format!("integer {n} is below minimum value {low}")))
            }
            (_, Some(high)) if n > high => {
                Err(invalid(name, format!("integer {n} is above maximum value {high}")))
            }
            _ => Ok(()),
        }
    }
}

/// The desired settings that cannot be applied, in name order, as upstream's
/// `validateHostFirmwareSettings`: no "Password" setting, only settings the machine reports, and
/// each value within the schema (a setting the schema lacks is refused).
pub fn validate_settings(
    desired: &BTreeMap<String, SettingValue>,
    reported: &BTreeMap<String, String>,
    schema: Option<&BTreeMap<String, SettingSchema>>,
) -> Vec<SettingError> {
    let mut errors = Vec::new();
    for (name, value) in desired {
        if name.contains("Password") {
            errors.push(SettingError::Password);
        } else if !reported.contains_key(name) {
            errors.push(SettingError::NotReported(name.clone()));
        } else if let Some(schema) = schema {
            match schema.get(name) {
                None => errors.push(invalid(name, "it is not in the associated schema")),
                Some(s) => errors.extend(s.validate(name, value).err()),
            }
        }
    }
    errors
}

/// The FirmwareSchema's name for a registry, as upstream's `GetSchemaName`: `schema-` and the
/// first 8 hex digits of the SHA-256 of the sorted names, types, allowed values and bounds
/// (printed as Go prints a string slice), so machines of one model share one schema.
pub fn schema_name(schema: &BTreeMap<String, SettingSchema>) -> String {
    let mut words = Vec::new();
    for (name, s) in schema {
        words.push(name.clone());
        words.push(s.attribute_type.clone());
        words.extend(s.allowable_values.iter().cloned());
        for bound in [s.lower_bound, s.upper_bound, s.min_length, s.max_length].into_iter().flatten() {
            words.push(bound.to_string());
        }
        if let Some(read_only) = s.read_only {
            words.push(read_only.to_string());
        }
    }
    words.sort();
    let digest = Sha256::digest(format!("[{}]", words.join(" ")).as_bytes());
    let hex: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
    format!("schema-{hex}")
}

/// What the machine reports, as HostFirmwareSettings `status.settings` shows it: settings with
/// "Password" in their name are left out (some vendors report encrypted passwords).
pub fn shown_settings(reported: BTreeMap<String, String>) -> BTreeMap<String, String> {
    reported.into_iter().filter(|(name, _)| !name.contains("Password")).collect()
}

/// The schema a FirmwareSchema stores: password settings left out, as upstream.
pub fn stored_schema(registry: BTreeMap<String, SettingSchema>) -> BTreeMap<String, SettingSchema> {
    registry
        .into_iter()
        .filter(|(name, s)| !name.contains("Password") && s.attribute_type != "Password")
        .collect()
}

/// Where a HostFirmwareSettings' schema is: a FirmwareSchema in the host's namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaReference {
    /// The FirmwareSchema's namespace.
    pub namespace: String,
    /// Its name (`schema-` and a hash of the registry, [`schema_name`]).
    pub name: String,
}

/// What a user wants of a host's BIOS.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostFirmwareSettingsSpec {
    /// Setting name → the value wanted.
    #[serde(default)]
    pub settings: BTreeMap<String, SettingValue>,
}

/// What the machine reports, the schema it is judged by, and upstream's conditions `Valid` and
/// `ChangeDetected` (preparing applies the spec when both are true for the current generation).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostFirmwareSettingsStatus {
    /// The FirmwareSchema the settings are judged by.
    #[serde(rename = "schema", default, skip_serializing_if = "Option::is_none")]
    pub firmware_schema: Option<SchemaReference>,
    /// Setting name → the value the machine reports (no password settings).
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
    /// When the status last changed (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated: Option<String>,
    /// `Valid` and `ChangeDetected`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// Upstream's HostFirmwareSettings: one per host, same name and namespace, owned by the host.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostFirmwareSettings {
    /// Name, namespace, generation, owners.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// What the user wants.
    #[serde(default)]
    pub spec: HostFirmwareSettingsSpec,
    /// What the machine has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<HostFirmwareSettingsStatus>,
}

/// What a FirmwareSchema holds: the registry of one hardware model.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FirmwareSchemaSpec {
    /// The machine's vendor, from the inspected hardware, when known.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hardware_vendor: String,
    /// The machine's model, from the inspected hardware, when known.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hardware_model: String,
    /// Setting name → what the registry says of it ([`stored_schema`]).
    #[serde(default)]
    pub schema: BTreeMap<String, SettingSchema>,
}

/// Upstream's FirmwareSchema: shared by the HostFirmwareSettings of machines of one model (each
/// one an owner).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FirmwareSchema {
    /// Name, namespace, owners.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The registry.
    #[serde(default)]
    pub spec: FirmwareSchemaSpec,
}

metal3_resource!(HostFirmwareSettings, "HostFirmwareSettings", "hostfirmwaresettings");
metal3_resource!(FirmwareSchema, "FirmwareSchema", "firmwareschemas");

/// Upstream's HostFirmwareSettings CRD as it is (pinned in `tests/data/upstream/`, Apache 2.0).
pub const HOST_FIRMWARE_SETTINGS_CRD: &str =
    include_str!("../tests/data/upstream/metal3.io_hostfirmwaresettings.yaml");
/// Upstream's FirmwareSchema CRD as it is (pinned in `tests/data/upstream/`, Apache 2.0).
pub const FIRMWARE_SCHEMA_CRD: &str = include_str!("../tests/data/upstream/metal3.io_firmwareschemas.yaml");

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(json: serde_json::Value) -> SettingSchema {
        serde_json::from_value(json).unwrap()
    }

    fn message(s: &SettingSchema, name: &str, value: SettingValue) -> String {
        s.validate(name, &value).err().map(|e| e.to_string()).unwrap_or_default()
    }

    use SettingValue::{Int, String as Str};

    #[test]
    fn values_are_judged_with_upstreams_messages() {
        let e = schema(
            serde_json::json!({"attribute_type": "Enumeration", "allowable_values": ["Enabled", "Disabled"]}),
        );
        assert_eq!(message(&e, "ProcVirtualization", Str("Enabled".into())), "");
        assert_eq!(
            message(&e, "ProcVirtualization", Str("On".into())),
            "Setting ProcVirtualization is invalid, unknown enumeration value - On"
        );
        let i = schema(serde_json::json!({"attribute_type": "Integer", "lower_bound": 0, "upper_bound": 20}));
        assert_eq!(message(&i, "NetworkBootRetryCount", Int(5)), "");
        assert_eq!(message(&i, "NetworkBootRetryCount", Str("+7".into())), "");
        assert_eq!(
            message(&i, "NetworkBootRetryCount", Int(21)),
            "Setting NetworkBootRetryCount is invalid, integer 21 is above maximum value 20"
        );
        assert_eq!(
            message(&i, "NetworkBootRetryCount", Str("-1".into())),
            "Setting NetworkBootRetryCount is invalid, integer -1 is below minimum value 0"
        );
        assert_eq!(
            message(&i, "NetworkBootRetryCount", Str("five".into())),
            "Setting NetworkBootRetryCount is invalid, String five entered while integer expected"
        );
        let s = schema(serde_json::json!({"attribute_type": "String", "min_length": 2, "max_length": 4}));
        assert_eq!(
            message(&s, "AssetTag", Str("abcde".into())),
            "Setting AssetTag is invalid, string abcde length is above maximum length 4"
        );
        assert_eq!(
            message(&s, "AssetTag", Str("a".into())),
            "Setting AssetTag is invalid, string a length is below minimum length 2"
        );
        let b = schema(serde_json::json!({"attribute_type": "Boolean"}));
        assert_eq!(
            message(&b, "L2Cache", Str("yes".into())),
            "Setting L2Cache is invalid, yes is not a boolean"
        );
        assert_eq!(message(&b, "L2Cache", Str("true".into())), "");
        let ro = schema(serde_json::json!({"attribute_type": "String", "read_only": true}));
        assert_eq!(
            message(&ro, "SerialNumber", Str("x".into())),
            "Setting SerialNumber is invalid, it is ReadOnly"
        );
        let p = schema(serde_json::json!({"attribute_type": "Password"}));
        assert_eq!(
            message(&p, "AdminSecret", Str("x".into())),
            "Setting AdminSecret is invalid, passwords are immutable"
        );
        assert_eq!(
            message(&b, "SetupPassword", Str("true".into())),
            "Setting SetupPassword is invalid, Password fields can't be set"
        );
        let odd = schema(serde_json::json!({"attribute_type": "Float"}));
        assert_eq!(message(&odd, "X", Int(1)), "Setting X is invalid, unexpected attribute type Float");
        assert_eq!(message(&SettingSchema::default(), "X", Str("anything".into())), "");
    }

    #[test]
    fn desired_settings_must_be_reported_known_and_valid() {
        let registry: BTreeMap<String, SettingSchema> = [(
            "BootMode".to_string(),
            schema(
                serde_json::json!({"attribute_type": "Enumeration", "allowable_values": ["Uefi", "Bios"]}),
            ),
        )]
        .into();
        let reported: BTreeMap<String, String> =
            [("BootMode", "Uefi"), ("Other", "1")].map(|(k, v)| (k.to_string(), v.to_string())).into();
        let desired: BTreeMap<String, SettingValue> = [
            ("AdminPassword", Str("x".into())),
            ("BootMode", Str("Legacy".into())),
            ("Missing", Int(1)),
            ("Other", Int(2)),
        ]
        .map(|(k, v)| (k.to_string(), v))
        .into();
        let messages: Vec<String> =
            validate_settings(&desired, &reported, Some(&registry)).iter().map(ToString::to_string).collect();
        assert_eq!(
            messages,
            [
                "cannot set Password field",
                "Setting BootMode is invalid, unknown enumeration value - Legacy",
                "setting Missing is not in the Status field",
                "Setting Other is invalid, it is not in the associated schema",
            ]
        );
        assert!(
            validate_settings(&desired, &reported, None).len() == 2,
            "without a schema only the names are checked"
        );
    }

    #[test]
    fn schema_names_follow_the_registry_not_its_order() {
        let a = schema(
            serde_json::json!({"attribute_type": "Integer", "lower_bound": 0, "upper_bound": 20, "read_only": false}),
        );
        let b = schema(
            serde_json::json!({"attribute_type": "Enumeration", "allowable_values": ["Enabled", "Disabled"]}),
        );
        let one: BTreeMap<String, SettingSchema> =
            [("A".to_string(), a.clone()), ("B".to_string(), b.clone())].into();
        let name = schema_name(&one);
        // what upstream's GetSchemaName prints for these (computed with Go: sort.Strings, then
        // fmt.Fprintf(h, "%v", words) into SHA-256)
        assert_eq!(name, "schema-4bc99767");
        let other: BTreeMap<String, SettingSchema> = [("A".to_string(), b), ("B".to_string(), a)].into();
        assert_eq!(schema_name(&other), name, "the same words give the same name, as upstream's sort does");
        let mut changed = one.clone();
        changed.get_mut("A").unwrap().upper_bound = Some(21);
        assert_ne!(schema_name(&changed), name);
    }

    #[test]
    fn passwords_are_never_shown_nor_stored() {
        let reported: BTreeMap<String, String> = [("AdminPassword", "enc"), ("BootMode", "Uefi")]
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .into();
        assert_eq!(shown_settings(reported).keys().collect::<Vec<_>>(), ["BootMode"]);
        let registry: BTreeMap<String, SettingSchema> = [
            ("AdminPassword".to_string(), SettingSchema::default()),
            ("Secret".to_string(), schema(serde_json::json!({"attribute_type": "Password"}))),
            ("BootMode".to_string(), SettingSchema::default()),
        ]
        .into();
        assert_eq!(stored_schema(registry).keys().collect::<Vec<_>>(), ["BootMode"]);
    }

    #[test]
    fn values_read_as_kubernetes_writes_them() {
        let v: BTreeMap<String, SettingValue> = serde_json::from_str(r#"{"a": 5, "b": "Enabled"}"#).unwrap();
        assert_eq!(v["a"], Int(5));
        assert_eq!(v["b"], Str("Enabled".into()));
        assert_eq!(v["a"].to_string(), "5");
    }
}
