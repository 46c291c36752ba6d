//! The real `metalhost run --kube` binary against the API-server double: it takes the leader
//! Lease, adds its finalizer to a BareMetalHost created as kubectl would, writes a status through
//! the status subresource and publishes an Event, and every request it makes is one
//! `config/base/rbac.yaml` grants. Ironic is a dead port (127.0.0.1:9): only the Kubernetes side is
//! under test here.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use metalhost_testlab::{KubeDouble, RbacRules, repo_root};
use serde_json::Value;

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

/// The metalhost binary: $METALHOST_BIN, else built (`cargo build -p metalhost`) next to this test.
fn metalhost_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("METALHOST_BIN") {
        return bin.into();
    }
    let exe = std::env::current_exe().expect("test executable");
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).expect("target/<profile>");
    let target_dir = profile_dir.parent().expect("target dir");
    let mut cargo = Command::new(env!("CARGO"));
    // without the variables cargo sets for this test, so that build scripts that watch them (ring
    // watches CARGO_PKG_*) do not rebuild half the workspace each time
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key == "CARGO"
            || key == "OUT_DIR"
            || [
                "CARGO_PKG_",
                "CARGO_MANIFEST_",
                "CARGO_CRATE_",
                "CARGO_BIN_",
                "CARGO_TARGET_TMPDIR",
                "CARGO_PRIMARY_",
            ]
            .iter()
            .any(|p| key.starts_with(p))
        {
            cargo.env_remove(&*key);
        }
    }
    let status = cargo
        .args(["build", "-p", "metalhost", "--bin", "metalhost"])
        .env("CARGO_TARGET_DIR", target_dir)
        .current_dir(repo_root())
        .status()
        .expect("run cargo build");
    assert!(status.success(), "cargo build -p metalhost failed");
    profile_dir.join("metalhost")
}

/// Kills the binary when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn metalhost_run_kube_leads_adds_its_finalizer_writes_status_and_stays_within_rbac() {
    let double = KubeDouble::start();
    let bin = metalhost_bin();
    let objects = double.apply_yaml(MANIFEST);
    let created_rv = objects[1]["metadata"]["resourceVersion"].as_str().expect("rv").to_string();
    let mut host_events = double.watch(&format!("{HOSTS}?watch=1&resourceVersion={created_rv}"));
    let mut k8s_events = double.watch(&format!(
        "/apis/events.k8s.io/v1/namespaces/default/events?watch=1&resourceVersion={created_rv}"
    ));

    let log = std::fs::File::create(double.info.dir.join("metalhost.log")).expect("log file");
    let _metalhost = Running(
        Command::new(&bin)
            .args(["run", "--kube", "--leader-elect", "--lease-namespace", "metalhost-system"])
            .args(["--ironic", "http://127.0.0.1:9"])
            .env("KUBECONFIG", &double.kubeconfig)
            .env("RUST_LOG", "info")
            .env_remove("POD_NAMESPACE")
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("start metalhost"),
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

    let rules = RbacRules::from_yaml(
        &std::fs::read_to_string(repo_root().join("config/base/rbac.yaml")).expect("config/base/rbac.yaml"),
    );
    let theirs: Vec<_> =
        double.requests().into_iter().filter(|r| r.user_agent != metalhost_testlab::USER_AGENT).collect();
    let refused: Vec<String> = theirs
        .iter()
        .filter(|r| !rules.allows(r))
        .map(|r| {
            format!(
                "{} {}{} ({})",
                r.verb,
                r.resource,
                if r.subresource.is_empty() { String::new() } else { format!("/{}", r.subresource) },
                r.path
            )
        })
        .collect();
    assert!(refused.is_empty(), "requests config/base/rbac.yaml does not grant: {refused:#?}");
    let failed: Vec<String> = theirs
        .iter()
        .filter(|r| r.code >= 400 && !(r.code == 404 && r.resource == "leases" && r.verb == "get"))
        .map(|r| format!("{} {} {} -> {}", r.method, r.path, r.content_type, r.code))
        .collect();
    assert!(failed.is_empty(), "requests the double refused: {failed:#?}\nmetalhost's log:\n{}", log());
}
