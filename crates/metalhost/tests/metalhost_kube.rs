//! The real `metalhost run --kube` binary on the real control plane, as config/'s controller
//! ServiceAccount: it takes the leader Lease, adds its finalizer to a BareMetalHost created as
//! kubectl would, writes a status through the status subresource, publishes an Event, labels and
//! owns the BMC Secret as upstream does (OwnerReferencesPermissionEnforcement on), and the apiserver
//! refuses none of its requests. Ironic is a dead port (127.0.0.1:9): only the Kubernetes side is
//! under test here.

use std::time::Duration;

use metalhost_testlab::Metalhost;
use metalhost_testlab::support::{self, wait_for};
use metalhost_testlab::{FaultProxy, KubeLab, PatchType};
use serde_json::{Value, json};

/// The binary under test.
const BIN: &str = env!("CARGO_BIN_EXE_metalhost");
const HOSTS: &str = "/apis/metal3.io/v1alpha1/namespaces/default/baremetalhosts";
const SECRETS: &str = "/api/v1/namespaces/default/secrets";
const FINALIZER: &str = "baremetalhost.metal3.io";
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
    let kube = KubeLab::start();
    let objects = kube.apply_yaml(MANIFEST);
    let created_rv = objects[1]["metadata"]["resourceVersion"].as_str().expect("rv").to_string();
    let mut host_events = kube.watch(&format!("{HOSTS}?watch=1&resourceVersion={created_rv}"));
    let mut k8s_events = kube.watch(&format!(
        "/apis/events.k8s.io/v1/namespaces/default/events?watch=1&resourceVersion={created_rv}"
    ));

    let credential = kube.controller_credential("metalhost");
    let kubeconfig = credential.kubeconfig.to_string_lossy().into_owned();
    let _metalhost = Metalhost::start(
        BIN.as_ref(),
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
        &kube.info.dir.join("metalhost.log"),
    );
    let log = || std::fs::read_to_string(kube.info.dir.join("metalhost.log")).unwrap_or_default();

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
        kube.get("/apis/coordination.k8s.io/v1/namespaces/metalhost-system/leases/metalhost-leader").json();
    assert!(
        lease["spec"]["holderIdentity"].as_str().is_some_and(|h| h.starts_with("metalhost-")),
        "the binary holds the Lease: {lease}"
    );

    // the BMC Secret is labelled and owned by the host, as upstream's AcquireSecret leaves it
    let secret = kube
        .wait_for_object(&format!("{SECRETS}/h0-bmc"), Duration::from_secs(30), |r| {
            r.json()["metadata"]["ownerReferences"].is_array()
        })
        .json();
    assert_eq!(secret["metadata"]["labels"]["environment.metal3.io"], "baremetal", "{secret}");
    let owners = &secret["metadata"]["ownerReferences"];
    assert_eq!(owners.as_array().map(Vec::len), Some(1), "{owners}");
    assert_eq!(owners[0]["uid"], with_status["metadata"]["uid"], "{owners}");
    assert_eq!(owners[0]["kind"], "BareMetalHost", "{owners}");

    let theirs = support::theirs(&kube);
    support::assert_within_rbac(&theirs);
    let failed = support::refused(&theirs);
    assert!(failed.is_empty(), "requests the apiserver refused: {failed:#?}\nmetalhost's log:\n{}", log());
}

/// A host like h0 (a dead BMC, its Secret `NAME-bmc`).
fn manifest(name: &str) -> String {
    MANIFEST.replace("h0", name)
}

/// `metalhost run --kube` as config/'s controller ServiceAccount through `server` (the apiserver, or
/// a proxy in front of it), Ironic a dead port.
fn controller(kube: &KubeLab, server: Option<&str>) -> Metalhost {
    let credential = kube.service_account("metalhost-system", "metalhost-controller", "metalhost", server);
    let kubeconfig = credential.kubeconfig.to_string_lossy().into_owned();
    Metalhost::start(
        BIN.as_ref(),
        &["run", "--kube", "--ironic", "http://127.0.0.1:9"],
        &[("KUBECONFIG", &kubeconfig), ("METALHOST_LOG", "info")],
        &kube.info.dir.join("metalhost.log"),
    )
}

fn has_finalizer(kube: &KubeLab, name: &str) -> bool {
    let r = kube.get(&format!("{HOSTS}/{name}"));
    r.status == 200
        && r.json()["metadata"]["finalizers"].as_array().is_some_and(|f| f.iter().any(|f| f == FINALIZER))
}

/// A host whose `status.provisioning.state` this build does not know (a newer upstream's, or one
/// written by hand during a handover) is left as it is and reported on that host with a Warning
/// Event; the other hosts are reconciled as ever (a list decoding whole stopped them all before).
#[test]
fn a_host_in_an_unknown_state_is_reported_on_that_host_and_the_others_go_on() {
    let kube = KubeLab::start();
    kube.apply_yaml(&manifest("odd"));
    let r = kube.patch(
        &format!("{HOSTS}/odd/status"),
        PatchType::Merge,
        &json!({"status": {"operationalStatus": "OK", "errorMessage": "", "errorCount": 0, "poweredOn": false,
                           "provisioning": {"state": "a-state-from-the-future", "ID": ""}}}),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let metalhost = controller(&kube, None);
    kube.apply_yaml(&manifest("fine"));
    wait_for(
        "the other host is reconciled",
        Duration::from_secs(60),
        || {
            (has_finalizer(&kube, "fine") && kube.get(&format!("{HOSTS}/fine")).json()["status"].is_object())
                .then_some(())
        },
        || metalhost.output(),
    );
    let event = wait_for(
        "a Warning Event on the host in the unknown state",
        Duration::from_secs(60),
        || support::event_with_reason(&kube, "UnknownProvisioningState"),
        || metalhost.output(),
    );
    assert_eq!(event["regarding"]["name"], "odd", "{event}");
    assert_eq!(event["type"], "Warning", "{event}");
    let odd = kube.get(&format!("{HOSTS}/odd")).json();
    assert_eq!(odd["status"]["provisioning"]["state"], "a-state-from-the-future", "the state is kept: {odd}");
    assert!(!has_finalizer(&kube, "odd"), "nothing is done to it");
    let writes: Vec<String> = support::theirs(&kube)
        .iter()
        .filter(|r| r.resource == "baremetalhosts" && r.name == "odd" && r.is_write())
        .map(|r| format!("{} {}", r.verb, r.path))
        .collect();
    assert!(writes.is_empty(), "writes to the host in the unknown state: {writes:?}");
    support::assert_within_rbac(&support::theirs(&kube));
}

/// The faults a real apiserver will not produce on request, from a proxy in front of it and from
/// etcd: every connection cut (metalhost watches again), then the apiserver unreachable while a
/// host is created and etcd's history compacted, so that the resumed watch gets 410 Gone (the
/// watch cache is off, as it would have moved on too) and metalhost lists again. Each host created
/// meanwhile still gets its finalizer.
#[test]
fn a_dropped_watch_and_a_compacted_history_lose_no_host() {
    let kube = KubeLab::start_with(&["--no-watch-cache"]);
    let proxy = FaultProxy::start(&format!("127.0.0.1:{}", kube.info.port));
    let metalhost = controller(&kube, Some(&proxy.url()));
    let finalized = |name: &str| {
        wait_for(
            &format!("{name} gets the finalizer"),
            Duration::from_secs(90),
            || has_finalizer(&kube, name).then_some(()),
            || metalhost.output(),
        )
    };
    kube.apply_yaml(&manifest("a"));
    finalized("a");

    proxy.drop_connections();
    kube.apply_yaml(&manifest("b"));
    finalized("b");

    let lists = || {
        support::theirs(&kube).iter().filter(|r| r.verb == "list" && r.resource == "baremetalhosts").count()
    };
    let lists_before = lists();
    proxy.set_refusing(true);
    proxy.drop_connections();
    kube.apply_yaml(&manifest("c"));
    // more history past the watch's last version, then forgotten
    for i in 0..5 {
        kube.apply_yaml(&format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: filler-{i}, namespace: default}}\n"
        ));
    }
    kube.compact();
    proxy.set_refusing(false);
    finalized("c");
    assert!(
        lists() > lists_before,
        "metalhost listed the hosts again after 410 Gone\n{}",
        metalhost.output()
    );
    support::assert_within_rbac(&support::theirs(&kube));
}
