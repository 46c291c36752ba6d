//! Status writes that clear what the core cleared: a JSON merge patch (RFC 7386) from the status
//! as the server holds it to the new one, with `null` for every field that went away. A plain
//! merge patch of a struct that skips empty fields would leave stale `errorType`, images or
//! conditions on the server (docs/architecture.md, "Kubernetes").

use serde_json::{Map, Value};

/// The merge patch that turns `old` into `new`: changed keys with their new values, removed keys
/// as `null`, unchanged keys left out. Arrays are replaced whole, as merge patches do.
pub fn merge_patch(old: &Value, new: &Value) -> Value {
    match (old, new) {
        (Value::Object(old), Value::Object(new)) => {
            let mut patch = Map::new();
            for (key, before) in old {
                match new.get(key) {
                    None => {
                        patch.insert(key.clone(), Value::Null);
                    }
                    Some(after) if after != before => {
                        patch.insert(key.clone(), merge_patch(before, after));
                    }
                    Some(_) => {}
                }
            }
            for (key, after) in new {
                if !old.contains_key(key) {
                    patch.insert(key.clone(), after.clone());
                }
            }
            Value::Object(patch)
        }
        _ => new.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use metalhost_api::{BareMetalHostStatus, ErrorType, OperationalStatus};
    use serde_json::json;

    #[test]
    fn cleared_fields_become_nulls_and_unchanged_ones_stay_out() {
        let old = json!({"a": 1, "b": {"c": 2, "d": 3}, "e": [1, 2], "f": "x"});
        let new = json!({"a": 1, "b": {"c": 2}, "e": [1], "g": true});
        let patch = merge_patch(&old, &new);
        assert_eq!(patch, json!({"b": {"d": null}, "e": [1], "f": null, "g": true}));
        let mut applied = old.clone();
        json_patch::merge(&mut applied, &patch);
        assert_eq!(applied, new);
    }

    #[test]
    fn a_recovered_host_loses_its_error_type_on_the_server() {
        let mut failing = BareMetalHostStatus {
            operational_status: OperationalStatus::Error,
            error_type: Some(ErrorType::Registration),
            error_message: "secret 'c' not found".into(),
            error_count: 3,
            ..Default::default()
        };
        failing.provisioning.image = Some(Default::default());
        let ok = BareMetalHostStatus { operational_status: OperationalStatus::Ok, ..Default::default() };
        let server = serde_json::to_value(&failing).unwrap();
        let patch = merge_patch(&server, &serde_json::to_value(&ok).unwrap());
        let mut applied = server;
        json_patch::merge(&mut applied, &patch);
        let back: BareMetalHostStatus = serde_json::from_value(applied).unwrap();
        assert_eq!(back, ok);
        assert_eq!(patch["errorType"], Value::Null);
        assert_eq!(patch["provisioning"]["image"], Value::Null);
    }
}
