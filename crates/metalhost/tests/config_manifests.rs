//! The deployment manifests under config/: the CRD there is the one the code generates, and every
//! manifest parses.

use std::path::PathBuf;

use serde::Deserialize;

fn config() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../config")
}

#[test]
fn committed_crd_is_the_generated_one() {
    let committed = std::fs::read_to_string(config().join("crd/metal3.io_baremetalhosts.yaml")).unwrap();
    let generated = serde_yaml_ng::to_string(&metalhost_api::crd()).unwrap();
    assert!(
        committed == generated,
        "config/crd is stale: run `metalhost crd > config/crd/metal3.io_baremetalhosts.yaml`"
    );
}

#[test]
fn every_manifest_parses_and_names_its_kind() {
    let mut kinds = Vec::new();
    for file in ["rbac.yaml", "deployment.yaml", "webhook.yaml", "crd/metal3.io_baremetalhosts.yaml"] {
        let text = std::fs::read_to_string(config().join(file)).unwrap();
        for doc in serde_yaml_ng::Deserializer::from_str(&text) {
            let value = serde_json::Value::deserialize(doc).unwrap_or_else(|e| panic!("{file}: {e}"));
            kinds.push(value["kind"].as_str().unwrap_or_else(|| panic!("{file}: no kind")).to_string());
        }
    }
    for kind in
        ["ClusterRole", "Role", "Deployment", "ValidatingWebhookConfiguration", "CustomResourceDefinition"]
    {
        assert!(kinds.iter().any(|k| k == kind), "{kind} missing: {kinds:?}");
    }
}
