//! The real `metalhost run --kube` binary against the API-server double: it takes the leader
//! Lease, adds its finalizer to a BareMetalHost created as kubectl would, writes a status through
//! the status subresource and publishes an Event, and every request it makes is one
//! `config/base/rbac.yaml` grants. Ironic is a dead port (127.0.0.1:9): only the Kubernetes side is
//! under test here.

mod support;

use metalhost_testlab::KubeDouble;
use serde_json::Value;
use support::Running;

const HOSTS: &str = "/apis/metal3.io/v1alpha1/namespaces/default/baremetalhosts";
const MANIFEST: &str = "\
apiVersion: v1
kind: Secret
metadata:
  name: h0-bmc
  namespace: default
stringData:
  username: admin
  password: not-a-real-password
---
apiVersion: metal3.io/v1alpha1
kind: BareMetalHost
metadata:
  name: h0
  namespace: default
spec:
  online: true
  bmc:
    address: redfish+http://127.0.0.1:9/redfish/v1/Systems/1
    credentialsName: h0-bmc
";

#[test]
fn metalhost_run_kube_leads_adds_its_finalizer_writes_status_and_stays_within_rbac() {
    let double = KubeDouble::start();
    let objects = double.apply_yaml(MANIFEST);
    let created_rv = objects[1]["metadata"]["resourceVersion"].as_str().expect("rv").to_string();
    let mut host_events = double.watch(&format!("{HOSTS}?watch=1&resourceVersion={created_rv}"));
    let mut k8s_events = double.watch(&format!(
        "/apis/events.k8s.io/v1/namespaces/default/events?watch=1&resourceVersion={created_rv}"
    ));

    let kubeconfig = double.kubeconfig.to_string_lossy().into_owned();
    let _metalhost = Running::start(
        &[
            "run",
            "--kube",
            "--leader-elect",
            "--lease-namespace",
            "metalhost-system",
            "--ironic",
            "http://127.0.0.1:9",
        ],
        &[("KUBECONFIG", &kubeconfig), ("METALHOST_LOG", "info")],
        &double.info.dir.join("metalhost.log"),
    );
    let log = || std::fs::read_to_string(double.info.dir.join("metalhost.log")).unwrap_or_default();

    // the host as the controller leaves it: finalizer first, then a status
    let mut finalizer_seen = false;
    let with_status = host_events
        .by_ref()
        .map(|e| e["object"].clone())
        .find(|host| {
            let has_finalizer = host["metadata"]["finalizers"]
                .as_array()
                .is_some_and(|f| f.iter().any(|f| f == "baremetalhost.metal3.io"));
            finalizer_seen |= has_finalizer;
            has_finalizer && host["status"].is_object()
        })
        .unwrap_or_else(|| panic!("no status written; metalhost's log:\n{}", log()));
    assert!(finalizer_seen);
    let status = &with_status["status"];
    assert!(status["operationalStatus"].is_string(), "an operational status: {status}");
    assert_eq!(status["triedCredentials"]["credentials"]["name"], "h0-bmc", "the Secret was read: {status}");
    assert_eq!(with_status["metadata"]["generation"], 1, "the controller never changes the spec");

    let event: Value = k8s_events
        .next()
        .unwrap_or_else(|| panic!("no Event published; metalhost's log:\n{}", log()))["object"]
        .clone();
    assert_eq!(event["regarding"]["name"], "h0");
    assert_eq!(event["reportingController"], "metalhost");

    let lease =
        double.get("/apis/coordination.k8s.io/v1/namespaces/metalhost-system/leases/metalhost-leader").json();
    assert!(
        lease["spec"]["holderIdentity"].as_str().is_some_and(|h| h.starts_with("metalhost-")),
        "the binary holds the Lease: {lease}"
    );

    let theirs = support::theirs(&double);
    support::assert_within_rbac(&theirs);
    let failed: Vec<String> = theirs
        .iter()
        .filter(|r| r.code >= 400 && !(r.code == 404 && r.resource == "leases" && r.verb == "get"))
        .map(|r| format!("{} {} {} -> {}", r.method, r.path, r.content_type, r.code))
        .collect();
    assert!(failed.is_empty(), "requests the double refused: {failed:#?}\nmetalhost's log:\n{}", log());
}
