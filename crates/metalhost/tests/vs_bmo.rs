//! metalhost beside upstream's baremetal-operator (BMO, `scripts/bmo`), small: the side-by-side
//! benchmark (benches/vs_bmo.rs) at N = 2 with one run a side, so it cannot rot, and the node
//! comparison: what each operator leaves in Ironic for the same live-ISO BareMetalHost differs
//! only where docs/vs-bmo.md says, and docs/vs-bmo.md lists no difference that is gone.

use std::collections::BTreeMap;
use std::time::Duration;

use metalhost_testlab::{BmoBuild, repo_root};
use serde_json::Value;

#[path = "../benches/support/mod.rs"]
mod support;
use support::side_by_side::{Operator, Options, Run, run};

/// The parts of a node an operator decides, flattened to `path → value`: the driver and its
/// interfaces, the top-level settings, driver_info, instance_info, properties, and the
/// capabilities (a string of `key:value` pairs in Ironic) one by one.
/// Top-level node fields an operator may set.
const SETTINGS: &[&str] = &[
    "instance_uuid",
    "automated_clean",
    "disable_power_off",
    "resource_class",
    "owner",
    "lessee",
    "conductor_group",
    "retired",
    "description",
];

fn decided(node: &Value) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for (key, value) in node.as_object().into_iter().flatten() {
        if key == "driver" || key.ends_with("_interface") || SETTINGS.contains(&key.as_str()) {
            out.insert(key.clone(), value.clone());
        }
    }
    for section in ["driver_info", "instance_info", "properties"] {
        for (key, value) in node[section].as_object().into_iter().flatten() {
            if section == "properties" && key == "capabilities" {
                for pair in value.as_str().unwrap_or_default().split(',').filter(|p| !p.is_empty()) {
                    let (k, v) = pair.split_once(':').unwrap_or((pair, ""));
                    out.insert(format!("properties.capabilities.{k}"), Value::String(v.to_string()));
                }
            } else {
                out.insert(format!("{section}.{key}"), value.clone());
            }
        }
    }
    out
}

/// The fields whose values differ (or that one side sets and the other does not).
fn differences(ours: &BTreeMap<String, Value>, theirs: &BTreeMap<String, Value>) -> BTreeMap<String, String> {
    let keys: std::collections::BTreeSet<&String> = ours.keys().chain(theirs.keys()).collect();
    keys.into_iter()
        .filter(|k| ours.get(*k) != theirs.get(*k))
        .map(|k| {
            let show = |v: Option<&Value>| v.map_or("(not set)".to_string(), |v| v.to_string());
            (k.clone(), format!("metalhost {} · BMO {}", show(ours.get(k)), show(theirs.get(k))))
        })
        .collect()
}

/// The fields docs/vs-bmo.md's node table lists (rows `| \`path\` | …`).
fn documented() -> std::collections::BTreeSet<String> {
    let text = std::fs::read_to_string(repo_root().join("docs/vs-bmo.md")).expect("docs/vs-bmo.md");
    let table = text.split("<!-- node differences -->").nth(1).expect("the node differences table");
    table
        .lines()
        .take_while(|l| l.starts_with('|') || l.trim().is_empty())
        .filter_map(|l| l.strip_prefix("| `")?.split_once('`').map(|(path, _)| path.to_string()))
        .collect()
}

fn side(operator: Operator, bmo: &BmoBuild, rt: &tokio::runtime::Runtime) -> Run {
    let options = Options { hosts: 2, idle: Duration::from_secs(10), timeout: Duration::from_secs(600) };
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_metalhost"));
    let r = run(operator, bin, bmo, rt, &options).unwrap_or_else(|why| panic!("{why}"));
    eprintln!(
        "{}: wall {:.1} s, {:.1} Ironic requests and {:.1} API requests per host to provisioned, \
         reprovision {:.1} s, delete {:.1} s, CPU {:.2} s, RSS {:.1} MiB\n  Ironic calls for host-0: {}",
        operator.name(),
        r.wall,
        r.ironic_to_provisioned() as f64 / r.n(),
        r.api_total() as f64 / r.n(),
        r.reprovision,
        r.delete,
        r.cpu,
        r.peak_rss_mib,
        r.calls.join(" → ")
    );
    r
}

#[test]
fn beside_bmo_both_provision_and_their_nodes_differ_only_as_documented() {
    let bmo = BmoBuild::get();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ours = side(Operator::Metalhost, &bmo, &rt);
    let theirs = side(Operator::Bmo, &bmo, &rt);
    assert_eq!(ours.node["provision_state"], "active", "metalhost's node: {:#}", ours.node);
    assert_eq!(theirs.node["provision_state"], "active", "BMO's node: {:#}", theirs.node);

    let found = differences(&decided(&ours.node), &decided(&theirs.node));
    let listed = documented();
    let unlisted: Vec<String> =
        found.iter().filter(|(k, _)| !listed.contains(*k)).map(|(k, v)| format!("{k}: {v}")).collect();
    let gone: Vec<&String> = listed.iter().filter(|k| !found.contains_key(*k)).collect();
    assert!(
        unlisted.is_empty() && gone.is_empty(),
        "the live-ISO nodes differ where docs/vs-bmo.md does not say: {unlisted:#?}\n\
         docs/vs-bmo.md lists differences that are gone: {gone:#?}"
    );
}
