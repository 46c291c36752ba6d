//! Helpers shared by the end-to-end tests: a lab shared by the tests of a file, HTTP to Ironic
//! and sushy-tools, waiting, the port a metalhost process serves at, and the RBAC check of the
//! apiserver's audit log.

use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{CONTROLLER_USER, KubeLab, Lab, RequestRecord};

/// One lab (a real Ironic and sushy-tools with `systems` servers) shared by the tests of a file
/// that run at the same time: each test uses its own server and host names. Stopped when the last
/// test holding it ends.
pub fn shared_lab(systems: usize) -> Arc<Lab> {
    static LAB: Mutex<Weak<Lab>> = Mutex::new(Weak::new());
    let mut held = LAB.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(lab) = held.upgrade() {
        return lab;
    }
    let lab = Arc::new(Lab::start(systems));
    *held = Arc::downgrade(&lab);
    lab
}

/// An HTTP request without a body: (status, body as JSON or `Null`).
pub fn http(method: &str, url: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    let (status, body) = http_text(method, url, headers);
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// An HTTP request without a body: (status, body); status 0 when nothing answers.
pub fn http_text(method: &str, url: &str, headers: &[(&str, &str)]) -> (u16, String) {
    static CLIENT: OnceLock<reqwest::blocking::Client> = OnceLock::new();
    let client = CLIENT.get_or_init(|| {
        reqwest::blocking::Client::builder().timeout(Duration::from_secs(30)).build().expect("HTTP client")
    });
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("HTTP method");
    let mut request = client.request(method, url).header("Accept", "application/json");
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    match request.send() {
        Ok(answer) => (answer.status().as_u16(), answer.text().unwrap_or_default()),
        Err(_) => (0, String::new()),
    }
}

/// GET from Ironic's API at its latest microversion.
pub fn ironic_get(lab: &Lab, path: &str) -> (u16, Value) {
    http(
        "GET",
        &format!("{}{path}", lab.info.ironic_url.trim_end_matches('/')),
        &[("X-OpenStack-Ironic-API-Version", "latest")],
    )
}

/// POST a JSON body to Ironic's API at this microversion (as a ramdisk does:
/// `/v1/continue_inspection`): (status, body).
pub fn ironic_post(lab: &Lab, path: &str, version: &str, body: &Value) -> (u16, Value) {
    let answer = reqwest::blocking::Client::new()
        .post(format!("{}{path}", lab.info.ironic_url.trim_end_matches('/')))
        .header("X-OpenStack-Ironic-API-Version", version)
        .json(body)
        .timeout(Duration::from_secs(30))
        .send();
    match answer {
        Ok(answer) => {
            let status = answer.status().as_u16();
            (status, serde_json::from_str(&answer.text().unwrap_or_default()).unwrap_or(Value::Null))
        }
        Err(_) => (0, Value::Null),
    }
}

/// The Ironic node of host `namespace/name` (metalhost names it `namespace~name`), if any.
pub fn ironic_node(lab: &Lab, name: &str) -> Option<Value> {
    match ironic_get(lab, &format!("/v1/nodes/default~{name}")) {
        (200, node) => Some(node),
        (404, _) => None,
        (code, body) => panic!("Ironic answered {code} for node {name}: {body}"),
    }
}

/// Every Ironic node that drives emulated server `i` (whatever its name).
pub fn ironic_nodes_of_system(lab: &Lab, i: usize) -> Vec<Value> {
    let uuid = &lab.info.systems[i].uuid;
    let (code, nodes) = ironic_get(lab, "/v1/nodes/detail");
    assert_eq!(code, 200, "list Ironic nodes: {nodes}");
    nodes["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|n| {
            n["driver_info"]["redfish_system_id"].as_str().is_some_and(|s| s.ends_with(uuid.as_str()))
        })
        .cloned()
        .collect()
}

/// sushy-tools' view of emulated server `i`: (system, its Cd virtual media).
pub fn bmc(lab: &Lab, i: usize) -> (Value, Value) {
    let uuid = &lab.info.systems[i].uuid;
    let base = lab.info.sushy_url.trim_end_matches('/');
    let (_, system) = http("GET", &format!("{base}/redfish/v1/Systems/{uuid}"), &[]);
    let (_, cd) = http("GET", &format!("{base}/redfish/v1/Systems/{uuid}/VirtualMedia/Cd"), &[]);
    (system, cd)
}

/// The requests the apiserver refused, as `METHOD path?query -> code`, but those metalhost
/// expects and settles by design: reads of what does not exist (yet); watches turned away with
/// 429 while the apiserver's watch cache of a resource (re)initializes ("storage is
/// (re)initializing": the client is to retry, and kube-rs does; seen once in a clean-clone CI run,
/// right after the CRDs went in); and the race of hosts of one model over their shared
/// FirmwareSchema: the second create finds it made (409) and reads it, an owner appended to a
/// list that moved meanwhile (422: its test failed) is appended again (seen in a clean-clone CI
/// run with two hosts registering together).
pub fn refused(requests: &[RequestRecord]) -> Vec<String> {
    let schema_race = |r: &RequestRecord| {
        r.resource == "firmwareschemas"
            && ((r.code == 409 && r.verb == "create") || (r.code == 422 && r.verb == "patch"))
    };
    requests
        .iter()
        .filter(|r| {
            let settled =
                (r.code == 404 && r.verb == "get") || (r.code == 429 && r.verb == "watch") || schema_race(r);
            r.code >= 400 && !settled
        })
        .map(|r| {
            let message: String = r.message.chars().take(200).collect();
            format!("{} {}?{} -> {} {message:?} at {}", r.method, r.path, r.query, r.code, r.time)
        })
        .collect()
}

/// The image in a VM's CD drive, from [`Lab::vm_media`]'s `virsh domblklist --details` output:
/// the source of its `cdrom` line, None when the drive is empty (`-`) or there is none.
pub fn vm_cd_source(media: &str) -> Option<String> {
    media.lines().find_map(|l| {
        let words: Vec<&str> = l.split_whitespace().collect();
        match (words.get(1), words.get(3)) {
            (Some(&"cdrom"), Some(source)) if *source != "-" => Some(source.to_string()),
            _ => None,
        }
    })
}

/// Waits until VM `i`'s CD drive, as its domain is defined, holds media (`holding`) or is empty;
/// the image it holds, if any. The BMC answers before libvirt's definition changes (sushy-tools
/// redefines the domain after the insert or eject it reports), so a check made at once can lag.
pub fn wait_vm_cd(lab: &Lab, i: usize, holding: bool, timeout: Duration) -> Option<String> {
    let what = if holding { "the VM's CD drive holding media" } else { "the VM's CD drive empty" };
    wait_for(
        what,
        timeout,
        || {
            let source = vm_cd_source(&lab.vm_media(i));
            (source.is_some() == holding).then_some(source)
        },
        || lab.vm_media(i),
    )
}

/// Polls `check` every 250 ms until it gives a value; panics after `timeout` with `context()`
/// (the controller's log, say).
pub fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Option<T>,
    context: impl Fn() -> String,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}\n{}", context());
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The port of the address a metalhost process logged it serves at (`metrics served at
/// http://127.0.0.1:PORT/metrics`, `webhook served at https://127.0.0.1:PORT/…`); None until the
/// whole line is there.
pub fn served_port(log: &str) -> Option<u16> {
    let rest = log.split(" served at http").nth(1)?;
    let rest = rest.split_once("://127.0.0.1:")?.1;
    // up to the path, so that a line read half-written gives no port rather than a wrong one
    rest.split_once('/')?.0.parse().ok()
}

/// The requests metalhost (config/'s controller ServiceAccount) sent to the apiserver.
pub fn theirs(kube: &KubeLab) -> Vec<RequestRecord> {
    kube.requests_of(CONTROLLER_USER)
}

/// No request was refused for want of a permission: config/base/rbac.yaml grants everything
/// metalhost does (the real apiserver's RBAC and admission plugins judged each one).
pub fn assert_within_rbac(requests: &[RequestRecord]) {
    let refused: Vec<String> = requests
        .iter()
        .filter(|r| r.code == 403)
        .map(|r| format!("{} {}?{} ({})", r.verb, r.path, r.query, r.user))
        .collect();
    assert!(refused.is_empty(), "requests the apiserver refused with 403: {refused:#?}");
}

/// The first Event in namespace `default` with this reason, if the API server holds one.
pub fn event_with_reason(kube: &KubeLab, reason: &str) -> Option<Value> {
    let events = kube.get("/apis/events.k8s.io/v1/namespaces/default/events").json();
    events["items"].as_array().into_iter().flatten().find(|e| e["reason"] == reason).cloned()
}
