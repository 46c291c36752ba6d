//! "A Kubernetes runtime that holds on a real cluster": the real `metalhost run --kube` binary,
//! acting as config/'s controller ServiceAccount on a real control plane (scripts/kube: etcd,
//! kube-apiserver with RBAC and OwnerReferencesPermissionEnforcement, the garbage collector; the
//! repo's CRD applied with kubectl), driving the lab's real Ironic and sushy-tools. Every test
//! also checks in the apiserver's audit log that no request of metalhost's was refused.
//!
//! The tests share one lab (one emulated server each, distinct host names), but the firmware
//! settings' test, which needs a machine with a BIOS (a VM lab of its own); each has its own
//! control plane and its own controller processes.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use metalhost_testlab::Metalhost;
use metalhost_testlab::support::{
    self, assert_within_rbac, bmc, ironic_node, ironic_nodes_of_system, served_port, shared_lab, wait_for,
};
use metalhost_testlab::{KubeLab, Lab, PatchType, RequestRecord};
use serde_json::{Value, json};

/// The binary under test.
const BIN: &str = env!("CARGO_BIN_EXE_metalhost");
/// Emulated servers in the shared lab: one per test (two for the shared Secret's).
const SYSTEMS: usize = 11;
const FINALIZER: &str = "baremetalhost.metal3.io";
const HOSTS: &str = "/apis/metal3.io/v1alpha1/namespaces/default/baremetalhosts";
const SECRETS: &str = "/api/v1/namespaces/default/secrets";
const PASSWORD: &str = "Pa55-w0rd-never-shown";
/// How long a host may take to provision (or deprovision) on a loaded 2-core machine.
const PROVISIONING: Duration = Duration::from_secs(300);

fn host_manifest(name: &str, bmc: &str, iso: Option<&str>) -> String {
    let image = iso.map_or("null".to_string(), |url| format!("{{url: \"{url}\", format: live-iso}}"));
    format!(
        "apiVersion: metal3.io/v1alpha1\nkind: BareMetalHost\nmetadata: {{name: {name}, namespace: default}}\n\
         spec:\n  online: true\n  automatedCleaningMode: disabled\n  inspectionMode: disabled\n  \
         bmc: {{address: \"{bmc}\", credentialsName: {name}-bmc}}\n  image: {image}\n"
    )
}

fn secret_manifest(name: &str, username: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}-bmc, namespace: default}}\n\
         stringData: {{username: {username}, password: {PASSWORD}}}\n"
    )
}

/// The object at `path` if the server has it and `check` likes it (a `wait_for` step).
fn object_where(kube: &KubeLab, path: &str, check: impl Fn(&Value) -> bool) -> Option<Value> {
    Some(kube.get(path)).filter(|r| r.status == 200).map(|r| r.json()).filter(|o| check(o))
}

/// The host if `check` likes it (a `wait_for` step).
fn host_where(kube: &KubeLab, name: &str, check: impl Fn(&Value) -> bool) -> Option<Value> {
    Some(host(kube, name)).filter(|h| check(h))
}

fn host(kube: &KubeLab, name: &str) -> Value {
    let r = kube.get(&format!("{HOSTS}/{name}"));
    assert_eq!(r.status, 200, "get host {name}: {}", String::from_utf8_lossy(&r.body));
    r.json()
}

/// What a failed wait shows: the host's status as the server holds it, then the controller's log.
fn context(kube: &KubeLab, name: &str, log: String) -> String {
    let r = kube.get(&format!("{HOSTS}/{name}"));
    let status = if r.status == 200 { r.json()["status"].to_string() } else { format!("({})", r.status) };
    format!("status of {name}: {status}\nmetalhost's log:\n{log}")
}

fn state(host: &Value) -> &str {
    host["status"]["provisioning"]["state"].as_str().unwrap_or("")
}

fn finalizers(host: &Value) -> Vec<String> {
    host["metadata"]["finalizers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f.as_str().map(str::to_string))
        .collect()
}

/// `metalhost run --kube` against `kube` and the lab's Ironic, logging to `DIR/<log>.log`.
fn controller(kube: &KubeLab, lab: &Lab, extra: &[&str], log: &str) -> Metalhost {
    let mut args = vec![
        "--deploy-kernel",
        &lab.info.deploy_kernel_url,
        "--deploy-ramdisk",
        &lab.info.deploy_ramdisk_url,
    ];
    args.extend_from_slice(extra);
    Metalhost::kube(BIN.as_ref(), kube, &lab.info.ironic_url, &args, log)
}

fn merge(kube: &KubeLab, path: &str, patch: Value) -> Value {
    let r = kube.patch(path, PatchType::Merge, &patch);
    assert_eq!(r.status, 200, "patch {path}: {}", String::from_utf8_lossy(&r.body));
    r.json()
}

/// Status writes to host `name`.
fn status_patches<'a>(requests: &'a [RequestRecord], name: &str) -> Vec<&'a RequestRecord> {
    requests
        .iter()
        .filter(|r| {
            r.resource == "baremetalhosts" && r.subresource == "status" && r.name == name && r.is_write()
        })
        .collect()
}

/// No request metalhost sent was refused, but those it settles by design ([`support::refused`]).
fn assert_none_refused(requests: &[RequestRecord], log: &str) {
    let failed = support::refused(requests);
    assert!(failed.is_empty(), "requests the apiserver refused: {failed:#?}\nmetalhost's log:\n{log}");
}

/// No password in any object metalhost writes (hosts, Events, Leases), nor in its log.
fn assert_no_password_shown(kube: &KubeLab, log: &str) {
    for list in [
        "/apis/metal3.io/v1alpha1/baremetalhosts",
        "/apis/events.k8s.io/v1/events",
        "/api/v1/events",
        "/apis/coordination.k8s.io/v1/leases",
    ] {
        let r = kube.get(list);
        assert_eq!(r.status, 200, "list {list}");
        assert!(!String::from_utf8_lossy(&r.body).contains(PASSWORD), "password in {list}");
    }
    assert!(!log.contains(PASSWORD), "password in metalhost's log");
}

/// The Ironic requests a controller made, from its metrics: (all, all but GETs).
fn ironic_requests(port: u16) -> (f64, f64) {
    let (code, text) = support::http_text("GET", &format!("http://127.0.0.1:{port}/metrics"), &[]);
    assert_eq!(code, 200, "metrics: {text}");
    let (mut all, mut writes) = (0.0, 0.0);
    for line in text.lines().filter(|l| l.starts_with("metalhost_ironic_requests_total{")) {
        let n: f64 = line.rsplit(' ').next().and_then(|n| n.parse().ok()).unwrap_or(0.0);
        all += n;
        if !line.contains("method=\"GET\"") {
            writes += n;
        }
    }
    (all, writes)
}

/// The port a controller started with `--metrics-listen 127.0.0.1:0` serves its metrics on, from
/// its log.
fn metrics_port(controller: &Metalhost) -> u16 {
    // the controller serves nothing else: its one "served at" line is the metrics'
    wait_for(
        "metrics served",
        Duration::from_secs(30),
        || served_port(&controller.output()),
        || controller.output(),
    )
}

/// A second ISO at another URL (a copy of the lab's, served beside it).
fn second_iso(lab: &Lab, file: &str) -> String {
    std::fs::copy(lab.info.iso_dir.join("live.iso"), lab.info.iso_dir.join(file)).expect("copy the ISO");
    format!("{}/{file}", lab.info.iso_base_url.trim_end_matches('/'))
}

fn lab() -> Arc<Lab> {
    shared_lab(SYSTEMS)
}

/// Priority 1: a live-ISO host created through the API before its BMC Secret provisions (Ironic
/// `active`, `boot_iso` the URL, the BMC's CD inserted), a new URL reprovisions it, and deleting it
/// removes the Ironic node before our finalizer, leaving a foreign finalizer in place.
#[test]
fn live_iso_host_provisions_reprovisions_and_deletes_with_a_foreign_finalizer() {
    let lab = lab();
    let (i, name) = (0, "e2e-live");
    let kube = KubeLab::start();
    let metalhost = controller(&kube, &lab, &[], "metalhost");
    let log = || metalhost.output();

    kube.apply_yaml(&host_manifest(
        name,
        &lab.bmc_address("redfish-virtualmedia", i),
        Some(&lab.info.iso_url),
    ));
    // the Secret comes after the host: the controller has looked for it and not found it
    wait_for(
        "the controller looks for the missing Secret",
        Duration::from_secs(60),
        || {
            support::theirs(&kube)
                .iter()
                .any(|r| r.resource == "secrets" && r.name == format!("{name}-bmc") && r.code == 404)
                .then_some(())
        },
        || context(&kube, name, log()),
    );
    kube.apply_yaml(&secret_manifest(name, "admin"));

    let provisioned = wait_for(
        "provisioned",
        PROVISIONING,
        || host_where(&kube, name, |h| state(h) == "provisioned"),
        || context(&kube, name, log()),
    );
    assert_eq!(provisioned["status"]["operationalStatus"], "OK", "{provisioned}");
    assert_eq!(provisioned["status"]["provisioning"]["image"]["url"], lab.info.iso_url.as_str());
    let node = ironic_node(&lab, name).expect("an Ironic node");
    assert_eq!(node["provision_state"], "active", "{node}");
    assert_eq!(node["instance_info"]["boot_iso"], lab.info.iso_url.as_str(), "{node}");
    assert_eq!(provisioned["status"]["provisioning"]["ID"], node["uuid"]);
    let cd = wait_for(
        "the BMC shows the ISO inserted",
        Duration::from_secs(30),
        || Some(bmc(&lab, i).1).filter(|cd| cd["Inserted"] == json!(true)),
        || format!("{:?}", bmc(&lab, i)),
    );
    assert!(cd["Image"].as_str().is_some_and(|i| i.ends_with(".iso")), "{cd}");

    // a new URL provisions again
    let url = second_iso(&lab, &format!("{name}-2.iso"));
    merge(&kube, &format!("{HOSTS}/{name}"), json!({"spec": {"image": {"url": url}}}));
    let again = wait_for(
        "provisioned with the new URL",
        PROVISIONING,
        || {
            host_where(&kube, name, |h| {
                state(h) == "provisioned" && h["status"]["provisioning"]["image"]["url"] == url.as_str()
            })
        },
        || context(&kube, name, log()),
    );
    let node = ironic_node(&lab, name).expect("an Ironic node");
    assert_eq!(node["provision_state"], "active", "{node}");
    assert_eq!(node["instance_info"]["boot_iso"], url.as_str(), "{node}");
    assert_eq!(again["status"]["provisioning"]["ID"], node["uuid"]);
    assert!(
        again["status"]["operationHistory"]["deprovision"]["end"].is_string(),
        "went through deprovisioning: {}",
        again["status"]
    );

    // deletion behind a foreign finalizer
    let r = kube.patch(
        &format!("{HOSTS}/{name}"),
        PatchType::Json,
        &json!([{"op": "add", "path": "/metadata/finalizers/-", "value": "example.com/keep"}]),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let r = kube.delete(&format!("{HOSTS}/{name}"));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let mut node_seen_while_ours = false;
    let gone = wait_for(
        "our finalizer removed",
        PROVISIONING,
        || {
            let h = host(&kube, name);
            if finalizers(&h).iter().any(|f| f == FINALIZER) {
                node_seen_while_ours |= ironic_node(&lab, name).is_some();
                return None;
            }
            Some(h)
        },
        || context(&kube, name, log()),
    );
    assert!(ironic_node(&lab, name).is_none(), "our finalizer went before the Ironic node");
    assert!(ironic_nodes_of_system(&lab, i).is_empty(), "no node left for the server");
    assert!(node_seen_while_ours, "the node was deleted while our finalizer held the host");
    assert_eq!(finalizers(&gone), ["example.com/keep"], "the foreign finalizer stays");
    assert!(gone["metadata"]["deletionTimestamp"].is_string());

    let theirs = support::theirs(&kube);
    assert_within_rbac(&theirs);
    assert_none_refused(&theirs, &log());
    assert_no_password_shown(&kube, &log());
}

/// Priority 2: a host whose credentials Secret is missing backs off (one status write per step,
/// a small errorCount), and recovers without leftover error fields once the Secret exists.
#[test]
fn failing_host_backs_off_then_recovers_without_leftover_errors() {
    let lab = lab();
    let (i, name) = (1, "e2e-fail");
    let kube = KubeLab::start();
    let metalhost = controller(&kube, &lab, &[], "metalhost");
    let log = || metalhost.output();

    kube.apply_yaml(&host_manifest(name, &lab.bmc_address("redfish", i), None));
    let failing = wait_for(
        "an error status",
        Duration::from_secs(60),
        || host_where(&kube, name, |h| h["status"]["errorType"].as_str().is_some_and(|t| !t.is_empty())),
        || context(&kube, name, log()),
    );
    assert!(failing["status"]["errorMessage"].as_str().is_some_and(|m| m.contains(&format!("{name}-bmc"))));
    std::thread::sleep(Duration::from_secs(20));
    let failing = host(&kube, name);
    let error_count = failing["status"]["errorCount"].as_u64().unwrap_or(0);
    let writes = status_patches(&support::theirs(&kube), name).len() as u64;
    assert!((1..=5).contains(&error_count), "errorCount after ~20 s of back-off: {}", failing["status"]);
    assert!(
        writes <= error_count + 1,
        "{writes} status writes for {error_count} back-off steps\nmetalhost's log:\n{}",
        log()
    );

    kube.apply_yaml(&secret_manifest(name, "admin"));
    let recovered = wait_for(
        "recovered",
        PROVISIONING,
        || host_where(&kube, name, |h| state(h) == "available" && h["status"]["operationalStatus"] == "OK"),
        || context(&kube, name, log()),
    );
    let status = &recovered["status"];
    assert!(status["errorType"].as_str().is_none_or(str::is_empty), "errorType left: {status}");
    assert!(status["errorMessage"].as_str().is_none_or(str::is_empty), "errorMessage left: {status}");
    assert_eq!(status["errorCount"], 0, "{status}");

    let theirs = support::theirs(&kube);
    assert_within_rbac(&theirs);
    assert_none_refused(&theirs, &log());
    assert_no_password_shown(&kube, &log());
}

/// A registration that Ironic could not verify (a wrong Redfish system ID) is fixed in the spec,
/// in place: the node is verified again at once and the host becomes available with no stale
/// error (before, the node stayed in `enroll` for ever).
#[test]
fn a_wrong_system_id_fixed_in_the_spec_registers_at_once() {
    let lab = lab();
    let (i, name) = (8, "e2e-fix");
    let kube = KubeLab::start();
    let metalhost = controller(&kube, &lab, &[], "metalhost");
    let log = || metalhost.output();
    let good = lab.bmc_address("redfish", i);
    let wrong = good.replace(&lab.info.systems[i].uuid, "no-such-system");
    kube.apply_yaml(&secret_manifest(name, "admin"));
    kube.apply_yaml(&host_manifest(name, &wrong, None));
    let failed = wait_for(
        "a registration error",
        Duration::from_secs(120),
        || host_where(&kube, name, |h| h["status"]["errorType"] == "registration error"),
        || context(&kube, name, log()),
    );
    let message = failed["status"]["errorMessage"].as_str().unwrap_or("");
    assert!(message.starts_with("Failed to manage the node: "), "{message}");

    merge(&kube, &format!("{HOSTS}/{name}"), json!({"spec": {"bmc": {"address": good}}}));
    let recovered = wait_for(
        "registered within 30 s of the fix",
        Duration::from_secs(30),
        || host_where(&kube, name, |h| state(h) == "available" && h["status"]["operationalStatus"] == "OK"),
        || context(&kube, name, log()),
    );
    let status = &recovered["status"];
    assert!(status["errorMessage"].as_str().is_none_or(str::is_empty), "stale error: {status}");
    let node = ironic_node(&lab, name).expect("the host's node");
    assert_ne!(node["provision_state"], "enroll", "verified by Ironic");
    let system_id = node["driver_info"]["redfish_system_id"].as_str().unwrap_or("");
    assert!(system_id.ends_with(lab.info.systems[i].uuid.as_str()), "{system_id}");
    assert_within_rbac(&support::theirs(&kube));
}

/// A wrong BMC password, then the Secret fixed (the host untouched): the Secret watch wakes the
/// host and it registers at once, with no stale error. The lab's BMC emulator checks passwords.
#[test]
fn a_wrong_password_fixed_in_its_secret_registers_at_once() {
    let lab = Lab::start_with_bmc_auth(1);
    let name = "e2e-password";
    let kube = KubeLab::start();
    let metalhost = controller(&kube, &lab, &[], "metalhost");
    let log = || metalhost.output();
    // PASSWORD is not the BMC's
    kube.apply_yaml(&secret_manifest(name, "admin"));
    kube.apply_yaml(&host_manifest(name, &lab.bmc_address("redfish-virtualmedia", 0), None));
    let failed = wait_for(
        "a registration error",
        Duration::from_secs(120),
        || host_where(&kube, name, |h| h["status"]["errorType"] == "registration error"),
        || context(&kube, name, log()),
    );
    let message = failed["status"]["errorMessage"].as_str().unwrap_or("");
    assert!(message.starts_with("Failed to manage the node: "), "{message}");

    let good = lab.info.bmc_password.as_deref().expect("the lab's BMC password");
    kube.apply_yaml(&format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}-bmc, namespace: default}}\n\
         stringData: {{username: admin, password: {good}}}\n"
    ));
    let fixed = std::time::Instant::now();
    let recovered = wait_for(
        "registered within 30 s of the fix",
        Duration::from_secs(30),
        || host_where(&kube, name, |h| state(h) == "available" && h["status"]["operationalStatus"] == "OK"),
        || context(&kube, name, log()),
    );
    eprintln!("registered {:.1} s after the fix", fixed.elapsed().as_secs_f64());
    let status = &recovered["status"];
    assert!(status["errorMessage"].as_str().is_none_or(str::is_empty), "stale error: {status}");
    assert_ne!(ironic_node(&lab, name).expect("the host's node")["provision_state"], "enroll");
    assert!(!log().contains(good) && !log().contains(PASSWORD), "a password in metalhost's log");
    assert_within_rbac(&support::theirs(&kube));
}

/// An inspected host gets `status.hardware` and, as upstream, a HardwareData object of the same
/// name owned by the host, which goes with it. The agent's inventory is posted to Ironic the way
/// ironic-python-agent posts it (nothing boots on the fake BMC).
#[test]
fn an_inspected_host_has_its_hardware_data_which_goes_with_it() {
    let lab = lab();
    let (i, name) = (9, "e2e-inspect");
    let kube = KubeLab::start();
    let metalhost = controller(&kube, &lab, &["--deploy-iso", &lab.info.iso_url], "metalhost");
    let log = || metalhost.output();
    let mac = lab.info.systems[i].mac.clone();
    let manifest = host_manifest(name, &lab.bmc_address("redfish-virtualmedia", i), None)
        .replace("inspectionMode: disabled", "inspectionMode: agent")
        + &format!("  bootMACAddress: \"{mac}\"\n");
    kube.apply_yaml(&secret_manifest(name, "admin"));
    kube.apply_yaml(&manifest);
    wait_for(
        "the node waiting for the agent",
        Duration::from_secs(120),
        || ironic_node(&lab, name).filter(|n| n["provision_state"] == "inspect wait"),
        || context(&kube, name, log()),
    );
    let inventory = json!({
        "inventory": {
            "interfaces": [{"name": "eth0", "mac_address": mac, "ipv4_address": "192.0.2.20"}],
            "cpu": {"count": 4, "architecture": "x86_64"},
            "memory": {"physical_mb": 4096},
            "disks": [{"name": "/dev/sda", "size": 21474836480u64, "rotational": false}],
            "system_vendor": {"manufacturer": "QEMU"},
            "hostname": "inspected-0"
        },
        "boot_interface": mac
    });
    let (code, answer) = support::ironic_post(&lab, "/v1/continue_inspection", "1.84", &inventory);
    assert!((200..300).contains(&code), "{code} {answer}");

    let data_path = format!("/apis/metal3.io/v1alpha1/namespaces/default/hardwaredata/{name}");
    let data = wait_for(
        "the HardwareData",
        Duration::from_secs(120),
        || object_where(&kube, &data_path, |_| true),
        || context(&kube, name, log()),
    );
    let hardware = &data["spec"]["hardware"];
    assert_eq!(
        (hardware["ramMebibytes"].as_i64(), hardware["cpu"]["count"].as_i64()),
        (Some(4096), Some(4)),
        "{data}"
    );
    assert_eq!(
        (hardware["nics"][0]["mac"].as_str(), hardware["hostname"].as_str()),
        (Some(mac.as_str()), Some("inspected-0"))
    );
    let bmh = host(&kube, name);
    assert_eq!(&bmh["status"]["hardware"], hardware, "the same as the host's status");
    let owner = &data["metadata"]["ownerReferences"][0];
    assert_eq!((owner["kind"].as_str(), &owner["uid"]), (Some("BareMetalHost"), &bmh["metadata"]["uid"]));

    // deleted by hand, it is written again at once (metalhost watches HardwareData)
    assert!(kube.delete(&data_path).status < 300);
    let first = data["metadata"]["uid"].clone();
    let recreated = wait_for(
        "the HardwareData written again",
        Duration::from_secs(60),
        || object_where(&kube, &data_path, |d| d["metadata"]["uid"] != first),
        || context(&kube, name, log()),
    );
    assert_eq!(&recreated["spec"]["hardware"], hardware);

    // upstream's re-inspection request: the available host inspects again, the request is taken
    // away once the inspection has started, and the new inventory reaches status and HardwareData
    let request = json!({"metadata": {"annotations": {"inspect.metal3.io": ""}}});
    assert!(kube.patch(&format!("{HOSTS}/{name}"), PatchType::Merge, &request).status < 300);
    wait_for(
        "the node waiting for the agent again",
        Duration::from_secs(120),
        || ironic_node(&lab, name).filter(|n| n["provision_state"] == "inspect wait"),
        || context(&kube, name, log()),
    );
    wait_for(
        "the request taken away",
        Duration::from_secs(60),
        || host_where(&kube, name, |h| h["metadata"]["annotations"].get("inspect.metal3.io").is_none()),
        || context(&kube, name, log()),
    );
    let mut again = inventory.clone();
    again["inventory"]["memory"]["physical_mb"] = json!(8192);
    let (code, answer) = support::ironic_post(&lab, "/v1/continue_inspection", "1.84", &again);
    assert!((200..300).contains(&code), "{code} {answer}");
    let data = wait_for(
        "the HardwareData of the new inspection",
        Duration::from_secs(120),
        || object_where(&kube, &data_path, |d| d["spec"]["hardware"]["ramMebibytes"] == 8192),
        || context(&kube, name, log()),
    );
    let bmh = wait_for(
        "the host available again",
        Duration::from_secs(60),
        || host_where(&kube, name, |h| state(h) == "available"),
        || context(&kube, name, log()),
    );
    assert_eq!(bmh["status"]["hardware"], data["spec"]["hardware"]);

    // the host goes, and its HardwareData with it (the garbage collector)
    assert!(kube.delete(&format!("{HOSTS}/{name}")).status < 300);
    wait_for(
        "the HardwareData gone with its host",
        Duration::from_secs(120),
        || (kube.get(&data_path).status == 404).then_some(()),
        || context(&kube, name, log()),
    );
    assert_within_rbac(&support::theirs(&kube));
}

/// A BMC whose port refuses connections is told within 30 s (Ironic's own retries give up after
/// minutes): the `BMCReachable` condition turns False with the address, a Warning Event says it,
/// and the host is not in error (Ironic has not judged yet).
#[test]
fn a_bmc_port_refusing_connections_is_told_within_30_s() {
    let lab = lab();
    let name = "e2e-refused";
    let kube = KubeLab::start();
    let metalhost = controller(&kube, &lab, &[], "metalhost");
    let log = || metalhost.output();
    // bound, never listening: refuses connections, and no other test can take it meanwhile
    let dead = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    dead.bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into()).expect("bind");
    let port = dead.local_addr().ok().and_then(|a| a.as_socket()).expect("bound").port();
    let bmc = format!("redfish-virtualmedia+http://127.0.0.1:{port}/redfish/v1/Systems/1");
    kube.apply_yaml(&secret_manifest(name, "admin"));
    let created = std::time::Instant::now();
    kube.apply_yaml(&host_manifest(name, &bmc, None));
    let refused = |h: &Value| {
        h["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == "BMCReachable")
            .cloned()
    };
    let told = wait_for(
        "the BMCReachable condition within 30 s",
        Duration::from_secs(30),
        || host_where(&kube, name, |h| refused(h).is_some()),
        || context(&kube, name, log()),
    );
    eprintln!("told {:.1} s after the host was created", created.elapsed().as_secs_f64());
    let condition = refused(&told).expect("the condition");
    assert_eq!(
        (condition["status"].as_str(), condition["reason"].as_str()),
        (Some("False"), Some("ConnectionRefused"))
    );
    let message = condition["message"].as_str().unwrap_or_default();
    assert!(message.contains(&format!("127.0.0.1:{port} refuses connections")), "{message}");
    assert_eq!(state(&told), "registering");
    assert_eq!(told["status"]["operationalStatus"], "OK", "{told}");
    let event = wait_for(
        "a Warning Event",
        Duration::from_secs(30),
        || support::event_with_reason(&kube, "BMCConnectionRefused"),
        || context(&kube, name, log()),
    );
    assert_eq!((event["type"].as_str(), event["regarding"]["name"].as_str()), (Some("Warning"), Some(name)));
    assert_within_rbac(&support::theirs(&kube));
}

/// Priority 3: a changed credentials Secret reaches the node's driver_info (the user name, which
/// Ironic shows; it hides passwords).
#[test]
fn changed_credentials_reach_ironic() {
    let lab = lab();
    let (i, name) = (2, "e2e-cred");
    let kube = KubeLab::start();
    let metalhost = controller(&kube, &lab, &[], "metalhost");
    let log = || metalhost.output();

    kube.apply_yaml(&secret_manifest(name, "admin"));
    kube.apply_yaml(&host_manifest(name, &lab.bmc_address("redfish", i), None));
    wait_for(
        "available",
        Duration::from_secs(120),
        || {
            // powered on as spec.online says: nothing under way, the host waits for its idle look
            host_where(&kube, name, |h| {
                state(h) == "available"
                    && h["status"]["goodCredentials"].is_object()
                    && h["status"]["poweredOn"] == true
            })
        },
        || context(&kube, name, log()),
    );
    let node = ironic_node(&lab, name).expect("an Ironic node");
    assert_eq!(node["driver_info"]["redfish_username"], "admin", "{}", node["driver_info"]);

    let secret = merge(
        &kube,
        &format!("{SECRETS}/{name}-bmc"),
        json!({"data": {"username": "b3BlcmF0b3I="}}), // "operator"
    );
    let version = secret["metadata"]["resourceVersion"].as_str().expect("rv").to_string();
    // the idle look is two minutes away: only the Secret watch brings it this soon
    wait_for(
        "the new user name in Ironic",
        Duration::from_secs(90),
        || ironic_node(&lab, name).filter(|n| n["driver_info"]["redfish_username"] == "operator"),
        || context(&kube, name, log()),
    );
    let h = wait_for(
        "the new credentials recorded as good",
        Duration::from_secs(60),
        || {
            host_where(&kube, name, |h| {
                h["status"]["goodCredentials"]["credentialsVersion"] == version.as_str()
            })
        },
        || context(&kube, name, log()),
    );
    assert_eq!(state(&h), "available", "the host stays where it was: {}", h["status"]);

    let theirs = support::theirs(&kube);
    // the Secret is read from the API server while it is not yet adopted and once after it
    // changed; the many looks at the host between are served by the Secret watch
    let secret_reads: Vec<&str> = theirs
        .iter()
        .filter(|r| r.resource == "secrets" && r.verb == "get")
        .map(|r| r.time.as_str())
        .collect();
    let host_patches = status_patches(&theirs, name).len();
    eprintln!("{} Secret reads, {host_patches} status writes", secret_reads.len());
    assert!(secret_reads.len() <= 4, "Secret reads at {secret_reads:?}\n{}", log());
    assert_within_rbac(&theirs);
    assert_none_refused(&theirs, &log());
    assert_no_password_shown(&kube, &log());
}

/// Priority 4: paused, nothing reaches Ironic or the host's status; detached, the status says so
/// and the Ironic node is left as it is.
#[test]
fn paused_host_is_left_alone_and_detached_host_leaves_ironic_untouched() {
    let lab = lab();
    let (i, name) = (3, "e2e-pause");
    let kube = KubeLab::start();
    // port 0: metalhost binds a free port itself and logs it (no port chosen here for it to race for)
    let metalhost = controller(&kube, &lab, &["--metrics-listen", "127.0.0.1:0"], "metalhost");
    let log = || metalhost.output();
    let port = metrics_port(&metalhost);
    let path = format!("{HOSTS}/{name}");

    kube.apply_yaml(&secret_manifest(name, "admin"));
    kube.apply_yaml(&host_manifest(
        name,
        &lab.bmc_address("redfish-virtualmedia", i),
        Some(&lab.info.iso_url),
    ));
    wait_for(
        "provisioned and powered on",
        PROVISIONING,
        || host_where(&kube, name, |h| state(h) == "provisioned" && h["status"]["poweredOn"] == true),
        || context(&kube, name, log()),
    );

    merge(&kube, &path, json!({"metadata": {"annotations": {"baremetalhost.metal3.io/paused": ""}}}));
    std::thread::sleep(Duration::from_secs(3)); // a reconcile already under way may finish
    let ironic_before = ironic_requests(port);
    let writes_before = support::theirs(&kube).iter().filter(|r| r.is_write()).count();
    merge(&kube, &path, json!({"spec": {"online": false}}));
    std::thread::sleep(Duration::from_secs(10));
    assert_eq!(ironic_requests(port), ironic_before, "Ironic requests while paused\n{}", log());
    let writes: Vec<String> = support::theirs(&kube)
        .iter()
        .filter(|r| r.is_write())
        .skip(writes_before)
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(writes.is_empty(), "writes while paused: {writes:#?}");
    let node = ironic_node(&lab, name).expect("an Ironic node");
    assert_eq!(node["power_state"], "power on", "still on while paused");

    // unpaused, the pending change happens: the pause was what held it
    merge(&kube, &path, json!({"metadata": {"annotations": {"baremetalhost.metal3.io/paused": null}}}));
    wait_for(
        "powered off once unpaused",
        Duration::from_secs(90),
        || host_where(&kube, name, |h| h["status"]["poweredOn"] == false),
        || context(&kube, name, log()),
    );
    assert_eq!(ironic_node(&lab, name).expect("node")["power_state"], "power off");

    merge(&kube, &path, json!({"metadata": {"annotations": {"baremetalhost.metal3.io/detached": ""}}}));
    wait_for(
        "detached",
        Duration::from_secs(60),
        || host_where(&kube, name, |h| h["status"]["operationalStatus"] == "detached"),
        || context(&kube, name, log()),
    );
    std::thread::sleep(Duration::from_secs(2));
    let node_before = ironic_node(&lab, name).expect("the node stays in Ironic when detached");
    let (_, ironic_writes_before) = ironic_requests(port);
    merge(&kube, &path, json!({"spec": {"online": true}}));
    std::thread::sleep(Duration::from_secs(10));
    let (_, ironic_writes) = ironic_requests(port);
    assert_eq!(ironic_writes, ironic_writes_before, "Ironic changed while detached\n{}", log());
    let node = ironic_node(&lab, name).expect("the node stays in Ironic when detached");
    // what metalhost did is what counts (its Ironic writes, above): Ironic's own periodic power
    // sync changes the node's updated_at whoever else looks
    assert_eq!(node["power_state"], "power off", "{node}");
    assert_eq!(node["provision_state"], node_before["provision_state"]);
    assert_eq!(node["instance_info"], node_before["instance_info"], "node untouched: {node}");
    assert_eq!(host(&kube, name)["status"]["operationalStatus"], "detached");

    let theirs = support::theirs(&kube);
    assert_within_rbac(&theirs);
    assert_none_refused(&theirs, &log());
}

/// Priority 5: the controller killed (SIGKILL) while a host provisions; a new one finishes it
/// with exactly one Ironic node for the server.
#[test]
fn controller_killed_mid_provisioning_converges_with_one_node() {
    let lab = lab();
    let (i, name) = (4, "e2e-kill");
    let kube = KubeLab::start();
    let mut first = controller(&kube, &lab, &[], "metalhost-1");

    kube.apply_yaml(&secret_manifest(name, "admin"));
    kube.apply_yaml(&host_manifest(
        name,
        &lab.bmc_address("redfish-virtualmedia", i),
        Some(&lab.info.iso_url),
    ));
    wait_for(
        "provisioning",
        PROVISIONING,
        || host_where(&kube, name, |h| state(h) == "provisioning"),
        || context(&kube, name, first.output()),
    );
    first.kill();
    // after the kill (which reaps the process): every request it made was received before this
    let killed_at = SystemTime::now();
    let node_at_kill = ironic_node(&lab, name).map(|n| n["provision_state"].clone());
    assert_eq!(state(&host(&kube, name)), "provisioning", "killed mid-provisioning");
    eprintln!("killed with the status provisioning; the Ironic node was {node_at_kill:?}");

    let second = controller(&kube, &lab, &[], "metalhost-2");
    let log = || format!("{}\n--- after the restart:\n{}", first.output(), second.output());
    let done = wait_for(
        "provisioned after the restart",
        PROVISIONING,
        || host_where(&kube, name, |h| state(h) == "provisioned"),
        || context(&kube, name, log()),
    );
    let nodes = ironic_nodes_of_system(&lab, i);
    assert_eq!(nodes.len(), 1, "one Ironic node for the server: {nodes:#?}");
    assert_eq!(nodes[0]["name"], format!("default~{name}"));
    assert_eq!(nodes[0]["provision_state"], "active");
    assert_eq!(nodes[0]["instance_info"]["boot_iso"], lab.info.iso_url.as_str());
    assert_eq!(done["status"]["provisioning"]["ID"], nodes[0]["uuid"]);
    assert_eq!(finalizers(&done), [FINALIZER]);

    let theirs = not_cut_by_the_kill(support::theirs(&kube), killed_at);
    assert_within_rbac(&theirs);
    assert_none_refused(&theirs, &log());
}

/// The requests but those the killed controller had in flight. The apiserver records a request
/// whose client vanished as 504 (its timeout filter ends it when the connection drops) or, when
/// the storage saw the cancelled context first, as 500 "context canceled" (kubernetes/kubernetes
/// issue 139256). Only such an answer to a request received in the minute before the kill (the
/// apiserver's request time-out) can be one; an older one was real and still counts.
fn not_cut_by_the_kill(requests: Vec<RequestRecord>, killed_at: SystemTime) -> Vec<RequestRecord> {
    let window = killed_at - Duration::from_secs(60);
    let in_window =
        |r: &RequestRecord| humantime::parse_rfc3339(&r.time).is_ok_and(|t| window <= t && t <= killed_at);
    let cut_answer =
        |r: &RequestRecord| r.code == 504 || (r.code == 500 && r.message.contains("context canceled"));
    requests.into_iter().filter(|r| !(cut_answer(r) && in_window(r))).collect()
}

/// Priority 6: two replicas with --leader-elect: only the Lease holder touches hosts; killed, the
/// other takes over once the Lease expires.
#[test]
fn two_replicas_only_the_leader_writes_and_the_other_takes_over() {
    let lab = lab();
    let (i, name) = (5, "e2e-lead");
    let kube = KubeLab::start();
    // one ServiceAccount, as the Deployment's two pods; each replica has its own token, which the
    // audit log names
    let mut credentials = std::collections::HashMap::new();
    let mut replica = |who: &str| {
        let credential = kube.controller_credential(who);
        let kubeconfig = credential.kubeconfig.to_string_lossy().into_owned();
        credentials.insert(who.to_string(), credential.id);
        Metalhost::start(
            BIN.as_ref(),
            &[
                "run",
                "--kube",
                "--leader-elect",
                "--lease-namespace",
                "metalhost-system",
                "--ironic",
                &lab.info.ironic_url,
            ],
            &[("KUBECONFIG", &kubeconfig), ("METALHOST_LOG", "info"), ("POD_NAME", who)],
            &kube.info.dir.join(format!("{who}.log")),
        )
    };
    let mut replicas = [replica("replica-a"), replica("replica-b")];
    let log = |r: &[Metalhost; 2]| format!("replica-a:\n{}\nreplica-b:\n{}", r[0].output(), r[1].output());
    let lease_path = "/apis/coordination.k8s.io/v1/namespaces/metalhost-system/leases/metalhost-leader";
    let holder = || {
        let r = kube.get(lease_path);
        (r.status == 200).then(|| r.json()["spec"]["holderIdentity"].as_str().unwrap_or("").to_string())
    };

    kube.apply_yaml(&secret_manifest(name, "admin"));
    kube.apply_yaml(&host_manifest(
        name,
        &lab.bmc_address("redfish-virtualmedia", i),
        Some(&lab.info.iso_url),
    ));
    wait_for(
        "provisioned and powered on",
        PROVISIONING,
        || host_where(&kube, name, |h| state(h) == "provisioned" && h["status"]["poweredOn"] == true),
        || context(&kube, name, log(&replicas)),
    );
    let leader = holder().expect("a Lease");
    let lead = match leader.as_str() {
        "replica-a" => 0,
        "replica-b" => 1,
        other => panic!("the Lease is held by {other:?}"),
    };
    let follower = if lead == 0 { "replica-b" } else { "replica-a" };
    let requests = support::theirs(&kube);
    let by =
        |who: &str| requests.iter().filter(|r| r.credential == credentials[who]).cloned().collect::<Vec<_>>();
    let strays: Vec<String> = by(follower)
        .iter()
        .filter(|r| !r.non_resource && r.resource != "leases")
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(strays.is_empty(), "the follower touched more than the Lease: {strays:#?}");
    assert!(!status_patches(&by(&leader), name).is_empty(), "the leader wrote the status");
    assert!(
        requests
            .iter()
            .all(|r| r.credential == credentials["replica-a"] || r.credential == credentials["replica-b"]),
        "every request from one of the replicas"
    );

    replicas[lead].kill();
    wait_for(
        "the other replica takes the Lease",
        Duration::from_secs(90),
        || holder().filter(|h| h == follower),
        || context(&kube, name, log(&replicas)),
    );
    merge(&kube, &format!("{HOSTS}/{name}"), json!({"spec": {"online": false}}));
    wait_for(
        "the new leader powers the host off",
        Duration::from_secs(90),
        || host_where(&kube, name, |h| h["status"]["poweredOn"] == false),
        || context(&kube, name, log(&replicas)),
    );
    let requests = support::theirs(&kube);
    let by_follower: Vec<RequestRecord> =
        requests.iter().filter(|r| r.credential == credentials[follower]).cloned().collect();
    assert!(!status_patches(&by_follower, name).is_empty(), "the new leader wrote the status");

    assert_within_rbac(&requests);
    let failed: Vec<RequestRecord> =
        requests.into_iter().filter(|r| !(r.resource == "leases" && r.code == 409)).collect();
    assert_none_refused(&failed, &log(&replicas));
}

/// A user-data Secret shared by two hosts (their config drive) is labelled but owned by neither,
/// as upstream's ObtainSecret leaves it; their BMC Secrets are owned by their host (AcquireSecret).
/// Once both hosts are deleted the garbage collector takes the BMC Secrets and leaves the shared
/// one (it took the fleet's user data with the last host before).
#[test]
fn a_user_data_secret_shared_by_two_hosts_survives_their_deletion() {
    let lab = lab();
    let kube = KubeLab::start();
    let metalhost = controller(&kube, &lab, &[], "metalhost");
    let log = || metalhost.output();
    kube.apply_yaml(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: fleet-user-data, namespace: default}\n\
         stringData: {userData: \"#cloud-config\\n\"}\n",
    );
    let names = ["e2e-share-a", "e2e-share-b"];
    for (i, name) in [(6, names[0]), (7, names[1])] {
        kube.apply_yaml(&secret_manifest(name, "admin"));
        kube.apply_yaml(&format!(
            "apiVersion: metal3.io/v1alpha1\nkind: BareMetalHost\n\
             metadata: {{name: {name}, namespace: default, annotations: {{metalhost.io/live-iso-config-drive: \"true\"}}}}\n\
             spec:\n  online: false\n  automatedCleaningMode: disabled\n  inspectionMode: disabled\n  \
             bmc: {{address: \"{}\", credentialsName: {name}-bmc}}\n  userData: {{name: fleet-user-data}}\n",
            lab.bmc_address("redfish-virtualmedia", i)
        ));
    }
    for name in names {
        wait_for(
            "available",
            PROVISIONING,
            || host_where(&kube, name, |h| state(h) == "available"),
            || context(&kube, name, log()),
        );
    }
    let shared = kube
        .wait_for_object(&format!("{SECRETS}/fleet-user-data"), Duration::from_secs(30), |r| {
            r.json()["metadata"]["labels"]["environment.metal3.io"] == "baremetal"
        })
        .json();
    assert!(shared["metadata"]["ownerReferences"].is_null(), "the shared Secret is owned: {shared}");
    for name in names {
        let bmc = kube.get(&format!("{SECRETS}/{name}-bmc")).json();
        let owners = &bmc["metadata"]["ownerReferences"];
        assert_eq!(owners[0]["name"], name, "the BMC Secret is owned by its host: {bmc}");
    }

    for name in names {
        let r = kube.delete(&format!("{HOSTS}/{name}"));
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    }
    for name in names {
        wait_for(
            "the host is gone",
            PROVISIONING,
            || (kube.get(&format!("{HOSTS}/{name}")).status == 404).then_some(()),
            || context(&kube, name, log()),
        );
        // the garbage collector runs: what the host owned goes
        wait_for(
            "the garbage collector deletes the BMC Secret",
            Duration::from_secs(60),
            || (kube.get(&format!("{SECRETS}/{name}-bmc")).status == 404).then_some(()),
            log,
        );
    }
    let r = kube.get(&format!("{SECRETS}/fleet-user-data"));
    assert_eq!(
        r.status,
        200,
        "the shared user data survives its hosts: {}",
        String::from_utf8_lossy(&r.body)
    );

    let theirs = support::theirs(&kube);
    assert_within_rbac(&theirs);
    assert_none_refused(&theirs, &log());
    assert_no_password_shown(&kube, &log());
}

/// Issue 27 (first part): a registered host on a real machine (the VM lab: sushy-tools' libvirt
/// driver keeps BIOS attributes with their registry) gets upstream's HostFirmwareSettings (owned
/// by the host) whose status holds the machine's BIOS settings as Ironic cached them, judged by a
/// FirmwareSchema (owned by the settings); a value the schema refuses turns `Valid` False with
/// upstream's reason, message and Event; an allowed change is applied in preparing and reaches the
/// VM's BIOS attributes and the status; both resources go with the host.
#[test]
fn a_registered_host_has_its_firmware_settings_judged_by_the_schema_of_its_model() {
    let lab = Lab::start_vms(1);
    let name = "e2e-firmware";
    let kube = KubeLab::start();
    let metalhost = controller(&kube, &lab, &[], "metalhost");
    let log = || metalhost.output();
    kube.apply_yaml(&secret_manifest(name, "admin"));
    kube.apply_yaml(&host_manifest(name, &lab.bmc_address("redfish-virtualmedia", 0), None));
    let settings_path = format!("/apis/metal3.io/v1alpha1/namespaces/default/hostfirmwaresettings/{name}");
    let condition = |s: &Value, type_: &str| -> Value {
        s["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == type_)
            .cloned()
            .unwrap_or_default()
    };
    let settings = wait_for(
        "the HostFirmwareSettings with the machine's BIOS",
        PROVISIONING,
        || object_where(&kube, &settings_path, |s| s["status"]["settings"]["ProcTurboMode"].is_string()),
        || context(&kube, name, log()),
    );
    let bmh = host(&kube, name);
    let owner = &settings["metadata"]["ownerReferences"][0];
    assert_eq!((owner["kind"].as_str(), &owner["uid"]), (Some("BareMetalHost"), &bmh["metadata"]["uid"]));
    assert_eq!(condition(&settings, "Valid")["status"], "True", "{settings}");
    assert_eq!(condition(&settings, "ChangeDetected")["status"], "False", "{settings}");
    let reported = settings["status"]["settings"]["ProcTurboMode"].as_str().unwrap().to_string();
    assert!(
        settings["status"]["settings"].as_object().unwrap().keys().all(|k| !k.contains("Password")),
        "no password setting shown: {settings}"
    );

    let schema_name = settings["status"]["schema"]["name"].as_str().expect("a schema reference").to_string();
    let schema_path = format!("/apis/metal3.io/v1alpha1/namespaces/default/firmwareschemas/{schema_name}");
    let schema = object_where(&kube, &schema_path, |_| true).expect("the FirmwareSchema");
    let allowed: Vec<String> =
        serde_json::from_value(schema["spec"]["schema"]["ProcTurboMode"]["allowable_values"].clone())
            .unwrap_or_else(|e| panic!("ProcTurboMode's allowed values ({e}): {schema}"));
    let other = allowed.iter().find(|v| **v != reported).expect("another allowed value").clone();
    let owner = &schema["metadata"]["ownerReferences"][0];
    assert_eq!(
        (owner["kind"].as_str(), &owner["uid"]),
        (Some("HostFirmwareSettings"), &settings["metadata"]["uid"])
    );

    // a value the schema does not allow: upstream's condition and Event
    merge(&kube, &settings_path, json!({"spec": {"settings": {"ProcTurboMode": "Sometimes"}}}));
    let refused = wait_for(
        "Valid turned False",
        Duration::from_secs(60),
        || object_where(&kube, &settings_path, |s| condition(s, "Valid")["status"] == "False"),
        || context(&kube, name, log()),
    );
    let valid = condition(&refused, "Valid");
    assert_eq!(
        (valid["reason"].as_str(), valid["message"].as_str(), &valid["observedGeneration"]),
        (Some("ConfigurationError"), Some("Invalid BIOS setting"), &refused["metadata"]["generation"])
    );
    assert_eq!(condition(&refused, "ChangeDetected")["status"], "True");
    let event = wait_for(
        "the ValidationFailed Event",
        Duration::from_secs(30),
        || support::event_with_reason(&kube, "ValidationFailed"),
        || context(&kube, name, log()),
    );
    assert_eq!(
        (event["note"].as_str(), event["regarding"]["kind"].as_str()),
        (
            Some(
                "Invalid BIOS setting: Setting ProcTurboMode is invalid, unknown enumeration value - Sometimes"
            ),
            Some("HostFirmwareSettings")
        )
    );

    // an allowed value: a valid change, applied in preparing (a manual clean of the node), after
    // which the machine's BIOS has it and the status says so
    merge(&kube, &settings_path, json!({"spec": {"settings": {"ProcTurboMode": other}}}));
    let applied = wait_for(
        "the change applied and reported",
        PROVISIONING,
        || {
            object_where(&kube, &settings_path, |s| {
                s["status"]["settings"]["ProcTurboMode"] == other.as_str()
                    && condition(s, "ChangeDetected")["status"] == "False"
            })
        },
        || context(&kube, name, log()),
    );
    assert_eq!(condition(&applied, "Valid")["status"], "True");
    assert_eq!(
        condition(&applied, "ChangeDetected")["observedGeneration"],
        applied["metadata"]["generation"]
    );
    let bios_url = format!("{}/redfish/v1/Systems/{}/BIOS", lab.info.sushy_url, lab.info.systems[0].uuid);
    let (code, bios) = support::http_text("GET", &bios_url, &[]);
    assert_eq!(code, 200, "{bios}");
    let bios: Value = serde_json::from_str(&bios).unwrap();
    assert_eq!(bios["Attributes"]["ProcTurboMode"], other.as_str(), "the VM's BIOS: {bios}");
    let cleaned = wait_for(
        "the host available again",
        Duration::from_secs(60),
        || host_where(&kube, name, |h| state(h) == "available"),
        || context(&kube, name, log()),
    );
    assert_eq!(cleaned["status"]["errorType"], Value::Null, "{cleaned}");

    // the host goes, and its settings with it, then the schema they owned (the garbage collector)
    assert!(kube.delete(&format!("{HOSTS}/{name}")).status < 300);
    for path in [&settings_path, &schema_path] {
        wait_for(
            &format!("{path} gone with its owner"),
            Duration::from_secs(120),
            || (kube.get(path).status == 404).then_some(()),
            || context(&kube, name, log()),
        );
    }
    let requests = support::theirs(&kube);
    assert_none_refused(&requests, &log());
    assert_within_rbac(&requests);
}

const DATA_IMAGES: &str = "/apis/metal3.io/v1alpha1/namespaces/default/dataimages";

/// Status writes to DataImage `name`.
fn data_image_writes(kube: &KubeLab, name: &str) -> usize {
    let requests = support::theirs(kube);
    requests
        .iter()
        .filter(|r| r.resource == "dataimages" && r.subresource == "status" && r.name == name && r.is_write())
        .count()
}

/// Long enough for a few of the host's looks that follow an attach (every 5 s, `SETTLE`).
const A_FEW_LOOKS: Duration = Duration::from_secs(12);

fn data_image_manifest(name: &str, url: &str) -> String {
    format!(
        "apiVersion: metal3.io/v1alpha1\nkind: DataImage\nmetadata: {{name: {name}, namespace: default}}\nspec: {{url: \"{url}\"}}\n"
    )
}

/// A DataImage beside an externally provisioned host (its CD is free): its ISO goes into the
/// VM's CD drive (the BMC's virtual media and the domain's cdrom), owned by the host and held by
/// upstream's finalizer; deleting it ejects the ISO, then lets it go.
#[test]
fn a_data_image_is_in_the_vms_cd_drive_until_it_is_deleted() {
    let lab = Lab::start_vms(1);
    let name = "e2e-data-image";
    let kube = KubeLab::start();
    let metalhost = controller(&kube, &lab, &[], "metalhost");
    let log = || metalhost.output();
    kube.apply_yaml(&secret_manifest(name, "admin"));
    let host_yaml = host_manifest(name, &lab.bmc_address("redfish-virtualmedia", 0), None)
        .replace("  online: true\n", "  online: true\n  externallyProvisioned: true\n");
    kube.apply_yaml(&host_yaml);
    wait_for(
        "externally provisioned",
        PROVISIONING,
        || host_where(&kube, name, |h| state(h) == "externally provisioned"),
        || context(&kube, name, log()),
    );
    assert_eq!(support::vm_cd_source(&lab.vm_media(0)), None, "an empty CD drive first: {}", lab.vm_media(0));

    let url = second_iso(&lab, "data.iso");
    kube.apply_yaml(&data_image_manifest(name, &url));
    let path = format!("{DATA_IMAGES}/{name}");
    let attached = wait_for(
        "the DataImage attached",
        Duration::from_secs(120),
        || object_where(&kube, &path, |d| d["status"]["attachedImage"]["url"] == url.as_str()),
        || format!("{}\n{}", kube.get(&path).json(), context(&kube, name, log())),
    );
    let bmh = host(&kube, name);
    assert_eq!(attached["metadata"]["ownerReferences"][0]["uid"], bmh["metadata"]["uid"], "{attached}");
    assert_eq!(attached["metadata"]["finalizers"], json!(["dataimage.metal3.io"]), "{attached}");
    let cd = wait_for(
        "the BMC's CD holding the image",
        Duration::from_secs(60),
        || Some(bmc(&lab, 0).1).filter(|cd| cd["Inserted"] == json!(true)),
        || format!("{:?}\n{}", bmc(&lab, 0), log()),
    );
    assert!(cd["Image"].as_str().is_some_and(|i| i.ends_with(".iso")), "{cd}");
    let source = support::wait_vm_cd(&lab, 0, true, Duration::from_secs(30)).unwrap_or_default();
    eprintln!("the VM's CD: {source}");
    // settled: no error, the image still in, and no status written at every look
    std::thread::sleep(A_FEW_LOOKS);
    let settled = kube.get(&path).json();
    assert_eq!(settled["status"]["error"], Value::Null, "{settled}");
    assert_eq!(settled["status"]["attachedImage"]["url"], url.as_str(), "{settled}");
    assert_eq!(bmc(&lab, 0).1["Inserted"], json!(true));
    let writes = data_image_writes(&kube, name);
    assert!((1..=2).contains(&writes), "{writes} status writes for one attach: {settled}");
    assert_eq!(state(&host(&kube, name)), "externally provisioned", "{settled}");

    // deleted: the ISO is ejected, then the finalizer goes
    assert!(kube.delete(&path).status < 300);
    wait_for(
        "the DataImage gone",
        Duration::from_secs(120),
        || (kube.get(&path).status == 404).then_some(()),
        || format!("{}\n{}", kube.get(&path).json(), log()),
    );
    let (_, cd) = bmc(&lab, 0);
    assert_eq!(cd["Inserted"], json!(false), "ejected before the DataImage went: {cd}");
    support::wait_vm_cd(&lab, 0, false, Duration::from_secs(30));
    let requests = support::theirs(&kube);
    assert_none_refused(&requests, &log());
    assert_within_rbac(&requests);
}

/// A live-ISO host on virtual media boots from its CD: its DataImage is refused with a status
/// saying why, the live ISO stays in the CD, and the DataImage may still go.
#[test]
fn a_data_image_beside_a_live_iso_on_virtual_media_is_refused_and_the_iso_stays() {
    let lab = lab();
    let (i, name) = (10, "e2e-data-live");
    let kube = KubeLab::start();
    let metalhost = controller(&kube, &lab, &[], "metalhost");
    let log = || metalhost.output();
    kube.apply_yaml(&secret_manifest(name, "admin"));
    kube.apply_yaml(&host_manifest(
        name,
        &lab.bmc_address("redfish-virtualmedia", i),
        Some(&lab.info.iso_url),
    ));
    wait_for(
        "provisioned",
        PROVISIONING,
        || host_where(&kube, name, |h| state(h) == "provisioned"),
        || context(&kube, name, log()),
    );
    let (_, before) = bmc(&lab, i);
    assert_eq!(before["Inserted"], json!(true), "{before}");

    kube.apply_yaml(&data_image_manifest(name, &second_iso(&lab, "data-live.iso")));
    let path = format!("{DATA_IMAGES}/{name}");
    let refused = wait_for(
        "the DataImage refused",
        Duration::from_secs(60),
        || object_where(&kube, &path, |d| d["status"]["error"]["count"] == 1),
        || format!("{}\n{}", kube.get(&path).json(), log()),
    );
    let message = refused["status"]["error"]["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("not attached: the host runs a live image"), "{refused}");
    assert_eq!(refused["status"]["attachedImage"], Value::Null, "{refused}");
    // a few looks later: still refused once, written once, the live ISO in place
    std::thread::sleep(A_FEW_LOOKS);
    let still = kube.get(&path).json();
    assert_eq!(still["status"]["error"]["count"], 1, "{still}");
    assert_eq!(data_image_writes(&kube, name), 1, "a standing refusal is written once");
    let (_, after) = bmc(&lab, i);
    assert_eq!(
        (&after["Inserted"], &after["Image"]),
        (&before["Inserted"], &before["Image"]),
        "the live ISO stays"
    );

    assert!(kube.delete(&path).status < 300);
    wait_for(
        "the DataImage gone",
        Duration::from_secs(60),
        || (kube.get(&path).status == 404).then_some(()),
        || format!("{}\n{}", kube.get(&path).json(), log()),
    );
    assert_eq!(state(&host(&kube, name)), "provisioned");
    let (_, gone) = bmc(&lab, i);
    assert_eq!(
        (&gone["Inserted"], &gone["Image"]),
        (&before["Inserted"], &before["Image"]),
        "never detached"
    );
    assert!(kube.delete(&format!("{HOSTS}/{name}")).status < 300);
    let requests = support::theirs(&kube);
    assert_none_refused(&requests, &log());
    assert_within_rbac(&requests);
}
