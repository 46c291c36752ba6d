//! Compatibility with upstream metal3: every manifest of the pinned upstream copy
//! (`tests/data/upstream/`, see its SOURCES.md) round-trips through
//! the Rust types with no field lost, and the CRD generated from the Rust types has every property
//! of upstream's CRD with the same type and enum values.

use std::collections::BTreeSet;
use std::path::PathBuf;

use metalhost_api::BareMetalHost;
use serde::Deserialize;
use serde_json::{Map, Value};

/// The pinned copy of upstream's CRD, sample and examples kept in this repository (tests/data/upstream).
fn pinned_upstream() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/upstream")
}

fn yaml_docs(path: &PathBuf) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

fn upstream_schema() -> Value {
    let crd = yaml_docs(&pinned_upstream().join("metal3.io_baremetalhosts.yaml")).remove(0);
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

fn our_crd() -> Value {
    serde_json::to_value(metalhost_api::crd()).unwrap()
}

/// Every BareMetalHost document of the pinned upstream files.
fn upstream_hosts() -> Vec<(String, Value)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(pinned_upstream().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .chain([pinned_upstream().join("metal3.io_v1alpha1_baremetalhost.yaml")])
        .collect();
    files.sort();
    let mut hosts = Vec::new();
    for file in files {
        for (i, doc) in yaml_docs(&file).into_iter().enumerate() {
            if doc["kind"] == "BareMetalHost" {
                hosts.push((format!("{} #{}", file.file_name().unwrap().to_string_lossy(), i + 1), doc));
            }
        }
    }
    assert!(hosts.len() >= 10, "expected the upstream examples, found {}", hosts.len());
    hosts
}

/// What the API server keeps of a document: fields the schema knows (metadata is kept whole).
fn prune(value: &Value, schema: &Value, path: &str, pruned: &mut Vec<String>) -> Value {
    match value {
        Value::Object(map) if schema.get("properties").is_some() && path != ".metadata" => {
            let props = &schema["properties"];
            let mut out = Map::new();
            for (k, v) in map {
                match props.get(k) {
                    Some(sub) => {
                        out.insert(k.clone(), prune(v, sub, &format!("{path}.{k}"), pruned));
                    }
                    None => pruned.push(format!("{path}.{k}")),
                }
            }
            Value::Object(out)
        }
        Value::Array(items) if schema.get("items").is_some() => {
            items.iter().map(|v| prune(v, &schema["items"], &format!("{path}[]"), pruned)).collect()
        }
        other => other.clone(),
    }
}

/// Asserts every value of `before` is in `after` unchanged; returns what `after` adds.
fn assert_kept(before: &Value, after: &Value, path: &str, added: &mut Vec<String>) {
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => {
            for (k, v) in b {
                match a.get(k) {
                    Some(av) => assert_kept(v, av, &format!("{path}.{k}"), added),
                    None if v.is_null() => {}
                    None => panic!("{path}.{k} lost: was {v}"),
                }
            }
            for k in a.keys().filter(|k| !b.contains_key(*k)) {
                added.push(format!("{path}.{k}={}", a[k]));
            }
        }
        (Value::Array(b), Value::Array(a)) => {
            assert_eq!(b.len(), a.len(), "{path}: list length changed");
            for (i, (bv, av)) in b.iter().zip(a).enumerate() {
                assert_kept(bv, av, &format!("{path}[{i}]"), added);
            }
        }
        (b, a) => assert_eq!(b, a, "{path} changed"),
    }
}

#[test]
fn every_upstream_manifest_round_trips_without_losing_a_field() {
    let schema = upstream_schema();
    for (name, doc) in upstream_hosts() {
        let mut pruned = Vec::new();
        let before = prune(&doc, &schema, "", &mut pruned);
        // the sample's `spec.foo` is not in upstream's schema: the API server drops it too
        assert!(pruned.iter().all(|p| p == ".spec.foo"), "{name}: unexpected unknown fields {pruned:?}");
        let host: BareMetalHost =
            serde_json::from_value(before.clone()).unwrap_or_else(|e| panic!("{name}: does not parse: {e}"));
        let after = serde_json::to_value(&host).unwrap();
        let mut added = Vec::new();
        assert_kept(&before, &after, "", &mut added);
        // only defaults may appear: `online: false` where the manifest has no `online`
        let defaults = [".spec.online=false", r#".spec={"online":false}"#];
        assert!(added.iter().all(|a| defaults.contains(&a.as_str())), "{name}: added {added:?}");
        // and parsing the output again gives the same host
        let again: BareMetalHost = serde_json::from_value(after).unwrap();
        assert_eq!(serde_json::to_value(&again).unwrap(), serde_json::to_value(&host).unwrap(), "{name}");
    }
}

#[test]
fn a_full_status_round_trips() {
    let status = serde_json::json!({
        "operationalStatus": "OK", "errorType": "provisioning error", "errorMessage": "boom",
        "errorCount": 3, "provisioningFailCount": 1, "poweredOn": true,
        "lastUpdated": "2026-11-24T10:00:00Z",
        "provisioning": {"state": "provisioned", "ID": "n1", "bootMode": "UEFI",
            "image": {"url": "http://h/a.iso", "format": "live-iso"},
            "rootDeviceHints": {"deviceName": "/dev/sda"},
            "raid": {"hardwareRAIDVolumes": [{"level": "1+0", "sizeGibibytes": 10}]},
            "firmware": {"sriovEnabled": true}, "customDeploy": {"method": "install_coreos"}},
        "lastAttemptedImage": {"url": "http://h/a.iso", "format": "live-iso"},
        "operationHistory": {"register": {"start": "2026-11-24T09:00:00Z", "end": "2026-11-24T09:01:00Z"},
            "inspect": {}, "provision": {"start": "2026-11-24T09:02:00Z"}, "deprovision": {}},
        "goodCredentials": {"credentials": {"name": "c", "namespace": "ns"}, "credentialsVersion": "42"},
        "triedCredentials": {"credentials": {"name": "c", "namespace": "ns"}, "credentialsVersion": "42"},
        "hardwareProfile": "unknown",
        "hardware": {"systemVendor": {"manufacturer": "m", "productName": "p", "serialNumber": "s"},
            "firmware": {"bios": {"date": "d", "vendor": "v", "version": "1"}}, "ramMebibytes": 4096,
            "nics": [{"name": "eth0", "mac": "00:11:22:33:44:55", "ip": "10.0.0.2", "speedGbps": 10,
                      "vlans": [{"id": 5, "name": "v5"}], "vlanId": 5, "pxe": true, "model": "x",
                      "lldp": {"switchID": "s", "portID": "p", "switchSystemName": "n"}, "pciAddress": "0000:00:01.0"}],
            "storage": [{"name": "/dev/sda", "alternateNames": ["/dev/disk/by-id/x"], "rotational": false,
                         "type": "SSD", "sizeBytes": 1000, "vendor": "v", "model": "m", "serialNumber": "s",
                         "wwn": "w", "wwnVendorExtension": "e", "wwnWithExtension": "we", "hctl": "0:0:0:0"}],
            "cpu": {"arch": "x86_64", "model": "m", "clockMegahertz": 2400.5, "flags": ["vmx"], "count": 8},
            "hostname": "h"},
        "conditions": [{"type": "Ready", "status": "True", "reason": "Done", "message": "m",
                        "lastTransitionTime": "2026-11-24T10:00:00Z", "observedGeneration": 2}]
    });
    let parsed: metalhost_api::BareMetalHostStatus = serde_json::from_value(status.clone()).unwrap();
    let after = serde_json::to_value(&parsed).unwrap();
    let mut added = Vec::new();
    assert_kept(&status, &after, "status", &mut added);
    assert!(added.is_empty(), "{added:?}");
}

/// A property path of a schema with its type and enum values.
type SchemaPath = (String, Option<String>, Option<BTreeSet<String>>);

/// Every property path of a schema with its type and enum.
fn paths(schema: &Value, path: &str, out: &mut Vec<SchemaPath>) {
    let ty = schema.get("type").and_then(Value::as_str).map(str::to_string);
    let en = schema.get("enum").and_then(Value::as_array).map(|e| e.iter().map(|v| v.to_string()).collect());
    out.push((path.to_string(), ty, en));
    if let Some(Value::Object(props)) = schema.get("properties") {
        for (k, sub) in props {
            paths(sub, &format!("{path}.{k}"), out);
        }
    }
    if let Some(items) = schema.get("items") {
        paths(items, &format!("{path}[]"), out);
    }
}

fn lookup<'a>(schema: &'a Value, path: &str) -> Option<&'a Value> {
    let mut node = schema;
    for part in path.split('.').skip(1) {
        let (name, arrays) = (part.trim_end_matches("[]"), part.matches("[]").count());
        node = node.get("properties")?.get(name)?;
        for _ in 0..arrays {
            node = node.get("items")?;
        }
    }
    Some(node)
}

#[test]
fn generated_crd_has_every_upstream_property_with_the_same_type_and_enum() {
    let upstream = upstream_schema();
    let crd = our_crd();
    let ours = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
    let mut theirs = Vec::new();
    paths(&upstream, "", &mut theirs);
    let mut problems = Vec::new();
    for (path, ty, en) in &theirs {
        if path.starts_with(".metadata.") {
            continue;
        }
        let Some(node) = lookup(ours, path) else {
            problems.push(format!("{path}: missing"));
            continue;
        };
        let our_ty = node.get("type").and_then(Value::as_str).map(str::to_string);
        if path != ".metadata" && ty.is_some() && our_ty != *ty {
            problems.push(format!("{path}: type {our_ty:?}, upstream {ty:?}"));
        }
        let mut our_en: Option<BTreeSet<String>> =
            node.get("enum").and_then(Value::as_array).map(|e| e.iter().map(|v| v.to_string()).collect());
        // deliberate extension: the live-kernel image format
        if path.ends_with("image.format") || path.ends_with("Image.format") {
            let extension = our_en.as_mut().map(|e| e.remove("\"live-kernel\""));
            assert_eq!(extension, Some(true), "{path}: the live-kernel extension");
        }
        if en.is_some() && our_en != *en {
            problems.push(format!("{path}: enum {our_en:?}, upstream {en:?}"));
        }
    }
    assert!(problems.is_empty(), "{} differences:\n{}", problems.len(), problems.join("\n"));

    // and nothing beyond upstream's schema, apart from these deliberate extensions
    let extensions: [&str; 0] = [];
    let mut ours_paths = Vec::new();
    paths(ours, "", &mut ours_paths);
    let known: BTreeSet<&str> = theirs.iter().map(|(p, _, _)| p.as_str()).collect();
    let extra: Vec<&str> = ours_paths
        .iter()
        .map(|(p, _, _)| p.as_str())
        .filter(|p| !known.contains(p) && !p.starts_with(".metadata."))
        .collect();
    assert_eq!(extra, extensions, "properties upstream does not have");
}

#[test]
fn generated_crd_keeps_upstream_defaults() {
    let upstream = upstream_schema();
    let crd = our_crd();
    let ours = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
    let mut theirs = Vec::new();
    paths(&upstream, "", &mut theirs);
    for (path, _, _) in theirs {
        let Some(default) = lookup(&upstream, &path).and_then(|n| n.get("default")) else { continue };
        let ours = lookup(ours, &path).and_then(|n| n.get("default"));
        assert_eq!(ours, Some(default), "{path}: default");
    }
}

#[test]
fn generated_crd_has_upstream_names_status_subresource_and_printer_columns() {
    let crd = our_crd();
    let upstream = yaml_docs(&pinned_upstream().join("metal3.io_baremetalhosts.yaml")).remove(0);
    assert_eq!(crd["spec"]["group"], "metal3.io");
    assert_eq!(crd["spec"]["scope"], "Namespaced");
    assert_eq!(crd["spec"]["names"]["shortNames"], upstream["spec"]["names"]["shortNames"]);
    assert_eq!(crd["spec"]["names"]["plural"], "baremetalhosts");
    let version = &crd["spec"]["versions"][0];
    assert_eq!(version["name"], "v1alpha1");
    assert!(version["subresources"]["status"].is_object());
    let columns = |v: &Value| -> Vec<(Value, Value, Value)> {
        v["additionalPrinterColumns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c["name"].clone(), c["jsonPath"].clone(), c["type"].clone()))
            .collect()
    };
    assert_eq!(columns(version), columns(&upstream["spec"]["versions"][0]));
}

#[test]
fn every_upstream_manifest_gets_the_same_verdict_from_both_schemas() {
    let crd = our_crd();
    let schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone();
    let validator = jsonschema::validator_for(&schema).expect("our schema compiles as JSON schema");
    let upstream = jsonschema::validator_for(&upstream_schema()).expect("upstream's schema compiles");
    let errors = |v: &jsonschema::Validator, doc: &Value| -> Vec<String> {
        v.iter_errors(doc).map(|e| format!("{}: {e}", e.instance_path())).collect()
    };
    for (name, doc) in upstream_hosts() {
        // upstream's scaffold sample has no `online`, which upstream's schema requires too
        assert_eq!(errors(&validator, &doc), errors(&upstream, &doc), "{name}");
    }
    // and the schema does reject what upstream's rejects
    let bad = serde_json::json!({"apiVersion": "metal3.io/v1alpha1", "kind": "BareMetalHost",
        "metadata": {"name": "x"}, "spec": {"online": true, "image": {"url": "u", "format": "floppy"}}});
    assert!(!validator.is_valid(&bad));
}

/// Every schema keyword of `theirs` and `ours` other than descriptions, recursively: types, enums,
/// patterns, formats, required lists, list/map types, bounds, defaults, nullability.
fn keyword_differences(theirs: &Value, ours: &Value, path: &str, out: &mut Vec<String>) {
    let (Some(t), Some(o)) = (theirs.as_object(), ours.as_object()) else {
        if theirs != ours {
            out.push(format!("{path}: {ours} vs upstream {theirs}"));
        }
        return;
    };
    let keys: BTreeSet<&String> = t.keys().chain(o.keys()).collect();
    for key in keys {
        if key == "description" {
            continue;
        }
        let (tv, ov) = (t.get(key), o.get(key));
        match key.as_str() {
            "properties" => {
                let empty = Map::new();
                let tp = tv.and_then(Value::as_object).unwrap_or(&empty);
                let op = ov.and_then(Value::as_object).unwrap_or(&empty);
                let names: BTreeSet<&String> = tp.keys().chain(op.keys()).collect();
                for name in names {
                    let sub = format!("{path}.{name}");
                    match (tp.get(name), op.get(name)) {
                        (Some(a), Some(b)) => keyword_differences(a, b, &sub, out),
                        (Some(_), None) => out.push(format!("{sub}: missing")),
                        (None, Some(_)) => out.push(format!("{sub}: not in upstream's schema")),
                        (None, None) => {}
                    }
                }
            }
            "items" | "additionalProperties" if tv.is_some() && ov.is_some() => {
                keyword_differences(tv.unwrap(), ov.unwrap(), &format!("{path}[{key}]"), out)
            }
            "enum" if path.ends_with("mage.format") => {
                // deliberate extension: the live-kernel image format
                let mut ours: Vec<Value> = ov.and_then(Value::as_array).cloned().unwrap_or_default();
                let before = ours.len();
                ours.retain(|v| v != "live-kernel");
                if before == ours.len() || Some(&Value::Array(ours.clone())) != tv {
                    out.push(format!("{path}.enum: {ov:?} vs upstream {tv:?} plus live-kernel"));
                }
            }
            // 0 and 0.0 are the same bound (Kubernetes' schema type holds bounds as floats)
            _ if tv.and_then(Value::as_f64).is_some()
                && tv.and_then(Value::as_f64) == ov.and_then(Value::as_f64) => {}
            _ if tv != ov => out.push(format!("{path}.{key}: {ov:?} vs upstream {tv:?}")),
            _ => {}
        }
    }
}

#[test]
fn generated_schema_matches_upstreams_keyword_for_keyword() {
    let upstream = upstream_schema();
    let crd = our_crd();
    let ours = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
    let mut problems = Vec::new();
    keyword_differences(&upstream, ours, "", &mut problems);
    assert!(problems.is_empty(), "{} differences:\n{}", problems.len(), problems.join("\n"));
}
