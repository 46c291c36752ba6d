//! The API-server double keeps the Kubernetes API semantics the end-to-end tests rely on.

use metalhost_testlab::{KubeDouble, PatchType, RbacRules, rbac_attributes};
use serde_json::{Value, json};

const BMHS: &str = "/apis/metal3.io/v1alpha1/namespaces/default/baremetalhosts";

fn bmh(name: &str) -> Value {
    json!({
        "apiVersion": "metal3.io/v1alpha1",
        "kind": "BareMetalHost",
        "metadata": {"name": name, "labels": {"rack": "a"}},
        "spec": {"online": true, "bmc": {"address": "redfish://x/redfish/v1/Systems/1", "credentialsName": "c"}}
    })
}

fn rv(obj: &Value) -> u64 {
    obj["metadata"]["resourceVersion"].as_str().expect("resourceVersion").parse().expect("numeric")
}

fn created(double: &KubeDouble, name: &str) -> Value {
    let r = double.create(BMHS, &bmh(name));
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    r.json()
}

#[test]
fn resource_version_grows_on_every_write_and_generation_only_on_spec_changes() {
    let double = KubeDouble::start_with(&["--no-required-check"]); // partial objects: patch semantics only
    let path = format!("{BMHS}/h");
    let first = created(&double, "h");
    assert_eq!(first["metadata"]["generation"], 1);
    assert!(first["metadata"]["uid"].as_str().is_some_and(|u| !u.is_empty()));
    assert!(first["metadata"]["creationTimestamp"].as_str().is_some());

    let labelled = double.patch(&path, PatchType::Merge, &json!({"metadata": {"labels": {"x": "y"}}})).json();
    assert!(rv(&labelled) > rv(&first));
    assert_eq!(labelled["metadata"]["generation"], 1, "a metadata change does not bump generation");

    let status = double
        .patch(&format!("{path}/status"), PatchType::Merge, &json!({"status": {"poweredOn": true}}))
        .json();
    assert!(rv(&status) > rv(&labelled));
    assert_eq!(status["metadata"]["generation"], 1, "a status change does not bump generation");

    let spec = double.patch(&path, PatchType::Merge, &json!({"spec": {"online": false}})).json();
    assert!(rv(&spec) > rv(&status));
    assert_eq!(spec["metadata"]["generation"], 2, "a spec change bumps generation");

    let same = double.patch(&path, PatchType::Merge, &json!({"spec": {"online": false}})).json();
    assert_eq!(rv(&same), rv(&spec), "a patch that changes nothing writes nothing");

    let list = double.get(BMHS).json();
    assert_eq!(list["kind"], "BareMetalHostList");
    assert_eq!(rv(&list), rv(&spec), "a list carries the current resourceVersion");
    created(&double, "other");
    assert!(rv(&double.get(BMHS).json()) > rv(&spec), "the counter is global");
}

#[test]
fn the_status_subresource_changes_only_status_and_the_main_resource_never_status() {
    let double = KubeDouble::start_with(&["--no-required-check"]); // partial objects: patch semantics only
    let path = format!("{BMHS}/h");
    let mut with_status = bmh("h");
    with_status["status"] = json!({"poweredOn": true});
    assert!(double.create(BMHS, &with_status).json().get("status").is_none(), "create drops status");

    let r = double.patch(
        &format!("{path}/status"),
        PatchType::Merge,
        &json!({"spec": {"online": false}, "metadata": {"labels": {"new": "1"}}, "status": {"poweredOn": true}}),
    );
    let obj = r.json();
    assert_eq!(obj["spec"]["online"], true, "spec ignored through /status");
    assert!(obj["metadata"]["labels"].get("new").is_none(), "metadata ignored through /status");
    assert_eq!(obj["status"]["poweredOn"], true);

    let obj = double
        .patch(&path, PatchType::Merge, &json!({"status": {"poweredOn": false}, "spec": {"online": false}}))
        .json();
    assert_eq!(obj["status"]["poweredOn"], true, "status ignored through the main resource");
    assert_eq!(obj["spec"]["online"], false);

    let mut put = obj.clone();
    put["status"] = json!({"poweredOn": false});
    let obj = double.update(&path, &put).json();
    assert_eq!(obj["status"]["poweredOn"], true, "PUT on the main resource keeps status");
}

#[test]
fn merge_patch_null_deletes_a_key() {
    let double = KubeDouble::start_with(&["--no-required-check"]); // partial objects: patch semantics only
    created(&double, "h");
    let obj = double
        .patch(&format!("{BMHS}/h"), PatchType::Merge, &json!({"spec": {"bmc": {"credentialsName": null}}}))
        .json();
    assert!(obj["spec"]["bmc"].get("credentialsName").is_none());
    assert_eq!(obj["spec"]["bmc"]["address"], "redfish://x/redfish/v1/Systems/1", "siblings stay");
}

#[test]
fn a_json_patch_whose_test_fails_is_refused_and_changes_nothing() {
    let double = KubeDouble::start();
    let before = created(&double, "h");
    let path = format!("{BMHS}/h");
    let r = double.patch(
        &path,
        PatchType::Json,
        &json!([{"op": "test", "path": "/spec/online", "value": false}, {"op": "replace", "path": "/spec/online", "value": false}]),
    );
    assert_eq!((r.status, r.reason().as_str()), (422, "Invalid"));
    assert_eq!(rv(&double.get(&path).json()), rv(&before));
    let r = double.patch(
        &path,
        PatchType::Json,
        &json!([{"op": "test", "path": "/spec/online", "value": true}, {"op": "replace", "path": "/spec/online", "value": false}]),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["spec"]["online"], false);
    // as the API server's json-patch: a missing key passes a test for null, not for a value
    let r = double.patch(
        &path,
        PatchType::Json,
        &json!([{"op": "test", "path": "/metadata/finalizers", "value": ["x"]}, {"op": "add", "path": "/metadata/finalizers", "value": ["a"]}]),
    );
    assert_eq!(r.status, 422);
    let r = double.patch(
        &path,
        PatchType::Json,
        &json!([{"op": "test", "path": "/metadata/finalizers", "value": null}, {"op": "add", "path": "/metadata/finalizers", "value": ["a"]}]),
    );
    assert_eq!((r.status, r.json()["metadata"]["finalizers"].clone()), (200, json!(["a"])));
}

#[test]
fn conflicts_and_not_found_are_status_objects_with_the_api_servers_reasons() {
    let double = KubeDouble::start();
    let first = created(&double, "h");
    let r = double.create(BMHS, &bmh("h"));
    assert_eq!((r.status, r.reason().as_str()), (409, "AlreadyExists"));
    let status = r.json();
    assert_eq!((status["kind"].as_str(), status["apiVersion"].as_str()), (Some("Status"), Some("v1")));

    double.patch(&format!("{BMHS}/h"), PatchType::Merge, &json!({"spec": {"online": false}}));
    let r = double.update(&format!("{BMHS}/h"), &first);
    assert_eq!((r.status, r.reason().as_str()), (409, "Conflict"), "a stale resourceVersion is refused");
    let r =
        double.patch(&format!("{BMHS}/h"), PatchType::Merge, &json!({"metadata": {"resourceVersion": "1"}}));
    assert_eq!(
        (r.status, r.reason().as_str()),
        (409, "Conflict"),
        "a resourceVersion in a patch is a precondition"
    );

    let r = double.get(&format!("{BMHS}/missing"));
    assert_eq!((r.status, r.reason().as_str()), (404, "NotFound"));
    assert_eq!(r.json()["code"], 404);
    let r = double.patch(&format!("{BMHS}/h"), PatchType::Strategic, &json!({"spec": {"online": true}}));
    assert_eq!(r.status, 415, "no strategic merge patch on custom resources");
    let r = double.create("/apis/metal3.io/v1alpha1/namespaces/nowhere/baremetalhosts", &bmh("x"));
    assert_eq!(
        (r.status, r.reason().as_str()),
        (404, "NotFound"),
        "no object in a namespace that does not exist"
    );
}

#[test]
fn finalizers_delay_deletion_until_they_are_removed_then_watchers_see_deleted() {
    let double = KubeDouble::start();
    let mut host = bmh("h");
    host["metadata"]["finalizers"] = json!(["example.com/hold"]);
    let created = double.create(BMHS, &host).json();
    let mut events = double.watch(&format!("{BMHS}?watch=1&resourceVersion={}", rv(&created)));
    let path = format!("{BMHS}/h");

    let r = double.delete(&path);
    assert_eq!(r.status, 200);
    let deleting = r.json();
    assert_eq!(deleting["kind"], "BareMetalHost", "a pending deletion answers the object");
    assert!(deleting["metadata"]["deletionTimestamp"].as_str().is_some());
    assert_eq!(double.get(&path).status, 200, "still there while a finalizer remains");
    let r = double.patch(
        &path,
        PatchType::Merge,
        &json!({"metadata": {"finalizers": ["example.com/hold", "more"]}}),
    );
    assert_eq!(r.status, 422, "no new finalizers on an object being deleted");

    double.patch(&path, PatchType::Merge, &json!({"metadata": {"finalizers": null}}));
    assert_eq!(double.get(&path).status, 404, "gone once the finalizers are empty");

    let seen: Vec<(String, bool)> = events
        .by_ref()
        .take(3)
        .map(|e| {
            (
                e["type"].as_str().unwrap_or("").to_string(),
                e["object"]["metadata"]["deletionTimestamp"].is_string(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [("MODIFIED".to_string(), true), ("MODIFIED".to_string(), true), ("DELETED".to_string(), true)]
    );
    let r = double.delete(&format!("{BMHS}/missing"));
    assert_eq!(r.reason(), "NotFound");
}

#[test]
fn an_object_without_finalizers_goes_at_once_and_delete_answers_a_status() {
    let double = KubeDouble::start();
    created(&double, "h");
    let r = double.delete(&format!("{BMHS}/h"));
    assert_eq!((r.status, r.json()["kind"].as_str()), (200, Some("Status")));
    assert_eq!(double.get(&format!("{BMHS}/h")).status, 404);
}

#[test]
fn a_watch_from_a_resource_version_delivers_only_later_events_and_from_zero_the_state_first() {
    let double = KubeDouble::start();
    let a = created(&double, "a");
    created(&double, "b");
    let mut later = double.watch(&format!("{BMHS}?watch=1&resourceVersion={}", rv(&a)));
    let event = later.next().expect("an event");
    assert_eq!(
        (event["type"].as_str(), event["object"]["metadata"]["name"].as_str()),
        (Some("ADDED"), Some("b"))
    );
    double.patch(&format!("{BMHS}/a"), PatchType::Merge, &json!({"spec": {"online": false}}));
    let event = later.next().expect("an event");
    assert_eq!(
        (event["type"].as_str(), event["object"]["metadata"]["name"].as_str()),
        (Some("MODIFIED"), Some("a"))
    );

    let initial: Vec<String> = double
        .watch(&format!("{BMHS}?watch=true&resourceVersion=0&timeoutSeconds=1"))
        .map(|e| {
            format!(
                "{} {}",
                e["type"].as_str().unwrap_or(""),
                e["object"]["metadata"]["name"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(initial, ["ADDED a", "ADDED b"], "the initial state, then the stream ends at timeoutSeconds");
}

#[test]
fn a_streaming_list_ends_its_initial_events_with_a_bookmark() {
    let double = KubeDouble::start();
    created(&double, "a");
    let mut w = double.watch(&format!(
        "{BMHS}?watch=true&allowWatchBookmarks=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&resourceVersion=0"
    ));
    assert_eq!(w.next().expect("event")["type"], "ADDED");
    let bookmark = w.next().expect("event");
    assert_eq!(bookmark["type"], "BOOKMARK");
    assert_eq!(bookmark["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"], "true");
}

#[test]
fn label_and_field_selectors_filter_lists_and_watches() {
    let double = KubeDouble::start();
    created(&double, "a");
    let mut other = bmh("b");
    other["metadata"]["labels"] = json!({"rack": "b"});
    double.create(BMHS, &other);
    let names = |q: &str| -> Vec<String> {
        double.get(&format!("{BMHS}?{q}")).json()["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|o| o["metadata"]["name"].as_str().unwrap_or("").to_string())
            .collect()
    };
    assert_eq!(names("labelSelector=rack%3Da"), ["a"]);
    assert_eq!(names("labelSelector=rack%21%3Da"), ["b"]);
    assert_eq!(names("labelSelector=rack%20in%20(a,b)"), ["a", "b"]);
    assert_eq!(names("labelSelector=%21rack"), Vec::<String>::new());
    assert_eq!(names("fieldSelector=metadata.name%3Db"), ["b"]);
    let w: Vec<String> = double
        .watch(&format!("{BMHS}?watch=1&resourceVersion=0&timeoutSeconds=1&labelSelector=rack%3Db"))
        .map(|e| e["object"]["metadata"]["name"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(w, ["b"]);
}

#[test]
fn a_watch_from_a_compacted_resource_version_gets_410_gone() {
    let double = KubeDouble::start();
    let a = created(&double, "a");
    created(&double, "b");
    double.compact();
    let event = double.watch(&format!("{BMHS}?watch=1&resourceVersion={}", rv(&a))).next().expect("an event");
    assert_eq!((event["type"].as_str(), event["object"]["code"].as_u64()), (Some("ERROR"), Some(410)));
}

#[test]
fn server_side_apply_of_status_removes_the_fields_the_manager_no_longer_sends() {
    let double = KubeDouble::start_with(&["--no-required-check"]); // partial objects: patch semantics only
    created(&double, "h");
    let apply = |manager: &str, status: Value| {
        let body = json!({"apiVersion": "metal3.io/v1alpha1", "kind": "BareMetalHost", "metadata": {"name": "h"}, "status": status});
        double.patch(&format!("{BMHS}/h/status?fieldManager={manager}&force=true"), PatchType::Apply, &body)
    };
    assert_eq!(apply("metalhost", json!({"poweredOn": true, "errorMessage": "boom"})).status, 200);
    assert_eq!(apply("someone-else", json!({"hardwareProfile": "x"})).status, 200);
    let obj = apply("metalhost", json!({"poweredOn": true})).json();
    assert!(obj["status"].get("errorMessage").is_none(), "a field the manager stopped sending is removed");
    assert_eq!(obj["status"]["hardwareProfile"], "x", "another manager's field stays");
    assert_eq!(obj["spec"]["online"], true, "spec untouched");
    let body = json!({"apiVersion": "metal3.io/v1alpha1", "kind": "BareMetalHost", "metadata": {"name": "h"}, "status": {"poweredOn": false}});
    let r = double.patch(&format!("{BMHS}/h/status?fieldManager=third"), PatchType::Apply, &body);
    assert_eq!(
        (r.status, r.reason().as_str()),
        (409, "Conflict"),
        "without force, another manager's field conflicts"
    );
}

#[test]
fn secrets_fold_string_data_and_accept_strategic_merge_patches() {
    let double = KubeDouble::start();
    let objs = double.apply_yaml(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n  namespace: default\nstringData:\n  password: pw\n",
    );
    assert_eq!(objs[0]["data"]["password"], "cHc=");
    assert!(objs[0].get("stringData").is_none());
    let r = double.patch(
        "/api/v1/namespaces/default/secrets/s",
        PatchType::Strategic,
        &json!({"data": {"user": "dQ=="}}),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["data"]["password"], "cHc=");
}

#[test]
fn the_request_log_names_verbs_resources_and_subresources_for_rbac() {
    let double = KubeDouble::start();
    created(&double, "h");
    double.get(&format!("{BMHS}/h"));
    double.patch(&format!("{BMHS}/h/status"), PatchType::Merge, &json!({"status": {"poweredOn": true}}));
    double.get("/apis/metal3.io/v1alpha1");
    let records = double.requests();
    let attrs: Vec<_> =
        records.iter().filter_map(rbac_attributes).map(|a| (a.verb, a.resource, a.subresource)).collect();
    assert_eq!(
        attrs,
        [
            ("create".to_string(), "baremetalhosts".to_string(), String::new()),
            ("get".to_string(), "baremetalhosts".to_string(), String::new()),
            ("patch".to_string(), "baremetalhosts".to_string(), "status".to_string()),
        ]
    );
    assert_eq!(records.iter().filter(|r| r.is_write()).count(), 2);
    assert!(records.last().expect("discovery logged").non_resource);

    let rules = RbacRules::from_yaml(
        &std::fs::read_to_string(metalhost_testlab::repo_root().join("config/base/rbac.yaml")).expect("rbac"),
    );
    let allowed: Vec<bool> = records.iter().map(|r| rules.allows(r)).collect();
    assert_eq!(
        allowed,
        [false, true, true, true],
        "metalhost may not create hosts; discovery is always allowed"
    );
    double.reset_requests();
    assert!(double.requests().is_empty());
}

#[test]
fn a_dry_run_answers_without_storing_anything() {
    let double = KubeDouble::start();
    let r = double.create(&format!("{BMHS}?dryRun=All"), &bmh("h"));
    assert_eq!(r.status, 201);
    assert_eq!(double.get(&format!("{BMHS}/h")).status, 404);
    let before = created(&double, "h");
    let r =
        double.patch(&format!("{BMHS}/h?dryRun=All"), PatchType::Merge, &json!({"spec": {"online": false}}));
    assert_eq!(r.json()["spec"]["online"], false);
    assert_eq!(double.get(&format!("{BMHS}/h")).json(), before);
}

#[test]
fn managed_fields_written_by_a_client_replace_the_tracked_ownership() {
    let double = KubeDouble::start_with(&["--no-required-check"]); // partial objects: patch semantics only
    created(&double, "h");
    let apply = |manager: &str, powered: bool, force: bool| {
        let body = json!({"apiVersion": "metal3.io/v1alpha1", "kind": "BareMetalHost", "metadata": {"name": "h"},
                          "status": {"poweredOn": powered}});
        double.patch(
            &format!("{BMHS}/h/status?fieldManager={manager}&force={force}"),
            PatchType::Apply,
            &body,
        )
    };
    assert_eq!(apply("a", true, true).status, 200);
    assert_eq!(apply("b", false, false).status, 409, "a owns status.poweredOn");
    let r = double.patch(
        &format!("{BMHS}/h"),
        PatchType::Json,
        &json!([{"op": "replace", "path": "/metadata/managedFields", "value": []}]),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(apply("b", false, false).status, 200, "nobody owns it any more");
}

#[test]
fn a_write_that_leaves_out_a_required_field_is_invalid() {
    let double = KubeDouble::start();
    let mut no_online = bmh("h");
    no_online["spec"].as_object_mut().expect("spec").remove("online");
    let r = double.create(BMHS, &no_online);
    assert_eq!((r.status, r.reason()), (422, "Invalid".to_string()), "{}", String::from_utf8_lossy(&r.body));
    assert!(String::from_utf8_lossy(&r.body).contains("spec.online: Required value"));
    created(&double, "h");
    // a status without the fields the CRD requires, as a diff against a default status would send
    let r = double.patch(
        &format!("{BMHS}/h/status"),
        PatchType::Merge,
        &json!({"status": {"operationalStatus": "OK"}}),
    );
    assert_eq!(r.status, 422, "{}", String::from_utf8_lossy(&r.body));
    assert!(String::from_utf8_lossy(&r.body).contains("status.poweredOn: Required value"));
    let full = json!({"status": {"operationalStatus": "OK", "errorCount": 0, "errorMessage": "", "poweredOn": false,
                                 "provisioningFailCount": 0, "provisioning": {"ID": "", "state": ""}}});
    let r = double.patch(&format!("{BMHS}/h/status"), PatchType::Merge, &full);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    // a metadata write is not refused for what the status lacks (the status is not its part)
    let r =
        double.patch(&format!("{BMHS}/h"), PatchType::Merge, &json!({"metadata": {"labels": {"x": "y"}}}));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
}
