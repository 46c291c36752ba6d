//! One operator, metalhost or upstream's baremetal-operator (BMO), taking N live-ISO hosts from
//! their manifests to `provisioned` on a lab of its own: a fresh real Ironic (redfish-virtualmedia
//! on sushy-tools, behind the counting proxy) and a fresh real control plane (requests read from
//! the apiserver's audit log), the operator a process started with BMO's environment. The same
//! manifests for both; the operator's own CRDs. Shared by the `vs_bmo` benchmark and the test that
//! runs it small (tests/vs_bmo.rs).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use metalhost_testlab::bmo::operator_env;
use metalhost_testlab::{
    BMO_USER, BmoBuild, CONTROLLER_USER, KubeLab, Lab, Metalhost, RequestRecord, process,
};
use serde_json::{Value, json};

use super::{Counts, start_proxy, to_active, total, usage};

/// Which operator a run drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Metalhost,
    Bmo,
}

impl Operator {
    pub fn name(self) -> &'static str {
        match self {
            Operator::Metalhost => "metalhost",
            Operator::Bmo => "BMO",
        }
    }
}

/// What a run does besides provisioning.
#[derive(Debug, Clone)]
pub struct Options {
    pub hosts: usize,
    /// How long the provisioned fleet is watched idle.
    pub idle: Duration,
    /// A side not done within this is reported with its reason, never waited for longer.
    pub timeout: Duration,
}

/// What one run measured.
#[derive(Debug, Clone)]
pub struct Run {
    pub operator: Operator,
    /// Seconds from the operator's start to all hosts provisioned.
    pub wall: f64,
    /// Each host's seconds to provisioned, sorted.
    pub per_host: Vec<f64>,
    /// Ironic requests by kind until each node was active.
    pub ironic: BTreeMap<String, u64>,
    /// Ironic requests per host per minute while the fleet was idle.
    pub ironic_idle: f64,
    /// API-server requests by `verb resource[/subresource]` until all were provisioned.
    pub api: BTreeMap<String, u64>,
    /// API-server requests per host per minute while the fleet was idle.
    pub api_idle: f64,
    /// Writes of hosts' status (PUT or PATCH of the status subresource) until all were provisioned.
    pub status_writes: u64,
    /// Changes of a host's `status.provisioning.state` seen by a watch, all hosts.
    pub state_changes: u64,
    pub cpu_to_provisioned: f64,
    pub cpu: f64,
    pub peak_rss_mib: f64,
    /// Seconds from an image URL edit to provisioned again (host 0).
    pub reprovision: f64,
    /// Seconds from a host's deletion to its Ironic node gone, median over every host deleted at once.
    pub delete: f64,
    /// Host 0's Ironic node once provisioned, the lab's own addresses and system UUIDs replaced by
    /// words (`{files}`, `{bmc}`, `{system}`, `{host uid}`) so that two labs' nodes compare.
    pub node: Value,
    /// The Ironic calls made for host 0 from its registration to provisioned, in order.
    pub calls: Vec<String>,
}

impl Run {
    pub fn n(&self) -> f64 {
        self.per_host.len().max(1) as f64
    }
    pub fn api_total(&self) -> u64 {
        self.api.values().sum()
    }
    pub fn api_writes(&self) -> u64 {
        let write = |k: &str| ["create", "update", "patch", "delete"].iter().any(|v| k.starts_with(v));
        self.api.iter().filter(|(k, _)| write(k)).map(|(_, v)| v).sum()
    }
    pub fn ironic_to_provisioned(&self) -> u64 {
        to_active(&self.ironic)
    }
    /// The p-th percentile (0..=100) of the hosts' times to provisioned, by nearest rank.
    pub fn percentile(&self, p: f64) -> f64 {
        let rank = ((p / 100.0) * self.per_host.len() as f64).ceil() as usize;
        self.per_host.get(rank.max(1) - 1).copied().unwrap_or(f64::NAN)
    }
}

pub const NAMESPACE: &str = "default";

/// The same manifests for both operators: one Secret and one live-ISO host per server, automated
/// cleaning and inspection disabled (as a live-ISO user has them), nothing metalhost-specific.
pub fn manifests(lab: &Lab, hosts: usize) -> String {
    (0..hosts)
        .map(|i| {
            format!(
                "apiVersion: v1\nkind: Secret\nmetadata: {{name: host-{i}-bmc, namespace: {NAMESPACE}}}\n\
                 stringData: {{username: admin, password: password}}\n---\n\
                 apiVersion: metal3.io/v1alpha1\nkind: BareMetalHost\nmetadata: {{name: host-{i}, namespace: {NAMESPACE}}}\n\
                 spec:\n  online: true\n  automatedCleaningMode: disabled\n  inspectionMode: disabled\n  \
                 bmc: {{address: \"{}\", credentialsName: host-{i}-bmc}}\n  \
                 image: {{url: \"{}\", format: live-iso}}\n",
                lab.bmc_address("redfish-virtualmedia", i),
                lab.info.iso_url
            )
        })
        .collect::<Vec<_>>()
        .join("---\n")
}

/// The audit-log user the operator acts as.
fn user(operator: Operator) -> &'static str {
    match operator {
        Operator::Metalhost => CONTROLLER_USER,
        Operator::Bmo => BMO_USER,
    }
}

fn start_operator(
    operator: Operator,
    bin: &Path,
    bmo: &BmoBuild,
    kube: &KubeLab,
    ironic: &str,
    lab: &Lab,
) -> Metalhost {
    let deploy = [lab.info.deploy_kernel_url.as_str(), lab.info.deploy_ramdisk_url.as_str()];
    match operator {
        Operator::Bmo => bmo.start(kube, ironic, deploy, "bmo"),
        Operator::Metalhost => {
            let credential = kube.controller_credential("metalhost");
            let mut cmd = process::command(bin);
            cmd.args(["run", "--kube"])
                .envs(operator_env(&credential, ironic, deploy))
                .env("METALHOST_LOG", "warn");
            Metalhost::spawn(cmd, &kube.info.dir.join("metalhost.log"))
        }
    }
}

/// Each host's provisioning state as a watch saw it change, with when it first said provisioned.
#[derive(Default)]
struct States {
    now: BTreeMap<String, String>,
    provisioned_at: BTreeMap<String, Instant>,
    changes: u64,
}

impl States {
    /// Notes a host's state as read; a change from what was last seen counts.
    fn see(&mut self, object: &Value) {
        let name = object["metadata"]["name"].as_str().unwrap_or_default().to_string();
        let state = object["status"]["provisioning"]["state"].as_str().unwrap_or_default().to_string();
        if self.now.get(&name) == Some(&state) {
            return;
        }
        if state == "provisioned" {
            self.provisioned_at.entry(name.clone()).or_insert_with(Instant::now);
        }
        // a host's first look (no state yet) is where it starts, not a change
        if self.now.contains_key(&name) || !state.is_empty() {
            self.changes += 1;
        }
        self.now.insert(name, state);
    }

    /// Lists the hosts into the states; the list's resourceVersion (where a watch goes on).
    fn list(&mut self, kube: &KubeLab) -> String {
        let list = kube.get(HOSTS).json();
        for host in list["items"].as_array().into_iter().flatten() {
            self.see(host);
        }
        list["metadata"]["resourceVersion"].as_str().unwrap_or("0").to_string()
    }
}

const HOSTS: &str = "/apis/metal3.io/v1alpha1/namespaces/default/baremetalhosts";

/// Follows every write to the hosts from `version` (a watch, reopened where it ended; listed
/// again after 410 Gone, so a host that changed in the gap is still seen) until `stop` is set.
fn watch_states(kube: Arc<KubeLab>, states: Arc<Mutex<States>>, stop: Arc<AtomicBool>, mut version: String) {
    while !stop.load(Ordering::SeqCst) {
        let stream = kube.watch(&format!("{HOSTS}?watch=1&resourceVersion={version}&timeoutSeconds=10"));
        for event in stream {
            let object = &event["object"];
            if event["type"] == "ERROR" {
                version = states.lock().unwrap().list(&kube);
                break;
            }
            version = object["metadata"]["resourceVersion"].as_str().unwrap_or(&version).to_string();
            states.lock().unwrap().see(object);
        }
    }
}

/// Runs one side; Err says why it did not finish (a side that hangs is reported, never waited
/// for beyond the options' time-out).
pub fn run(
    operator: Operator,
    bin: &Path,
    bmo: &BmoBuild,
    rt: &tokio::runtime::Runtime,
    o: &Options,
) -> Result<Run, String> {
    let lab = Lab::start(o.hosts);
    let (ironic, counts) = rt.block_on(start_proxy(lab.info.ironic_url.clone()));
    let kube = Arc::new(match operator {
        Operator::Metalhost => KubeLab::start(),
        Operator::Bmo => bmo.control_plane(),
    });
    kube.apply_yaml(&manifests(&lab, o.hosts));
    let mut seen = States::default();
    let version = seen.list(&kube);
    let states = Arc::new(Mutex::new(seen));
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (kube, states, stop) = (kube.clone(), states.clone(), stop.clone());
        std::thread::spawn(move || watch_states(kube, states, stop, version))
    };
    let result = drive(operator, bin, bmo, &lab, &ironic, &counts, &kube, &states, &watcher, o);
    stop.store(true, Ordering::SeqCst);
    let _ = watcher.join();
    result
}

#[allow(clippy::too_many_arguments)]
fn drive(
    operator: Operator,
    bin: &Path,
    bmo: &BmoBuild,
    lab: &Lab,
    ironic: &str,
    counts: &Counts,
    kube: &KubeLab,
    states: &Mutex<States>,
    watcher: &std::thread::JoinHandle<()>,
    o: &Options,
) -> Result<Run, String> {
    let started = Instant::now();
    let mut child = start_operator(operator, bin, bmo, kube, ironic, lab);
    let failed = |child: &Metalhost, why: String| {
        let log = child.output();
        let tail: String =
            log.lines().rev().take(15).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
        format!("{}: {why}\nits log ends:\n{tail}", operator.name())
    };
    let provisioned = |s: &States| s.provisioned_at.len();
    loop {
        if provisioned(&states.lock().unwrap()) >= o.hosts {
            break;
        }
        if watcher.is_finished() {
            return Err(failed(
                &child,
                "the benchmark's watch of the hosts failed (see its panic above)".into(),
            ));
        }
        if child.exited() {
            let status = child.exit_status();
            return Err(failed(&child, format!("exited ({status:?})")));
        }
        if started.elapsed() > o.timeout {
            let s = states.lock().unwrap();
            let mut by_state: BTreeMap<&str, usize> = BTreeMap::new();
            for state in s.now.values() {
                *by_state.entry(state.as_str()).or_default() += 1;
            }
            return Err(failed(&child, format!("not all provisioned within {:?}: {by_state:?}", o.timeout)));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let wall = started.elapsed().as_secs_f64();
    let (per_host, changes) = {
        let s = states.lock().unwrap();
        let mut t: Vec<f64> =
            s.provisioned_at.values().map(|at| at.duration_since(started).as_secs_f64()).collect();
        t.sort_by(f64::total_cmp);
        (t, s.changes)
    };
    let api_records = kube.requests_of(user(operator));
    let ironic_counts = counts.snapshot();
    let (_, cpu_to_provisioned) = usage(child.pid());
    let host0 = host(kube, "host-0");
    let uuid = host0["status"]["provisioning"]["ID"].as_str().unwrap_or_default().to_string();
    let node = ironic_node(lab, &uuid);
    let name = node["name"].as_str().unwrap_or_default().to_string();
    let calls = counts.calls_of(&[&uuid, &name]);
    let host_uid = host0["metadata"]["uid"].as_str().unwrap_or_default().to_string();
    let node = lab_neutral(&node, lab, &host_uid);

    let (ironic_before, api_before, idle_started) =
        (total(&counts.snapshot()), kube.requests_of(user(operator)).len(), Instant::now());
    std::thread::sleep(o.idle);
    let ironic_after = total(&counts.snapshot());
    let api_after = kube.requests_of(user(operator)).len();
    let minutes = (idle_started.elapsed().as_secs_f64() / 60.0).max(f64::MIN_POSITIVE);
    let n = o.hosts as f64;
    let ironic_idle = (ironic_after - ironic_before) as f64 / n / minutes;
    let api_idle = (api_after - api_before) as f64 / n / minutes;

    let reprovision = time_reprovision(kube, lab, o.timeout).map_err(|e| failed(&child, e))?;
    let delete = time_delete(kube, lab, o.hosts, o.timeout).map_err(|e| failed(&child, e))?;
    let (peak_rss_mib, cpu) = usage(child.pid());
    Ok(Run {
        operator,
        wall,
        per_host,
        ironic: ironic_counts,
        ironic_idle,
        api: by_kind(&api_records),
        api_idle,
        status_writes: api_records.iter().filter(|r| is_status_write(r)).count() as u64,
        state_changes: changes,
        cpu_to_provisioned,
        cpu,
        peak_rss_mib,
        reprovision,
        delete,
        node,
        calls,
    })
}

fn is_status_write(r: &RequestRecord) -> bool {
    r.resource == "baremetalhosts" && r.subresource == "status" && r.is_write()
}

/// `verb resource[/subresource]` → count.
pub fn by_kind(requests: &[RequestRecord]) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for r in requests {
        let what = match (r.non_resource, r.subresource.is_empty()) {
            (true, _) => format!("{} {}", r.verb, r.path),
            (false, true) => format!("{} {}", r.verb, r.resource),
            (false, false) => format!("{} {}/{}", r.verb, r.resource, r.subresource),
        };
        *out.entry(what).or_default() += 1;
    }
    out
}

fn host_path(name: &str) -> String {
    format!("/apis/metal3.io/v1alpha1/namespaces/{NAMESPACE}/baremetalhosts/{name}")
}

fn host(kube: &KubeLab, name: &str) -> Value {
    kube.get(&host_path(name)).json()
}

/// The node as Ironic has it (asked directly, not through the counting proxy).
pub fn ironic_node(lab: &Lab, ident: &str) -> Value {
    let url = format!("{}/v1/nodes/{ident}", lab.info.ironic_url);
    let r =
        reqwest::blocking::Client::new().get(url).header("X-OpenStack-Ironic-API-Version", "latest").send();
    r.ok().filter(|r| r.status().is_success()).and_then(|r| r.json().ok()).unwrap_or(Value::Null)
}

fn wait(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) -> Result<f64, String> {
    let started = Instant::now();
    while !done() {
        if started.elapsed() > timeout {
            return Err(format!("{what}: not within {timeout:?}"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(started.elapsed().as_secs_f64())
}

/// `node` with this lab's addresses, system UUIDs and the host's UID as words.
fn lab_neutral(node: &Value, lab: &Lab, host_uid: &str) -> Value {
    let mut text = node.to_string();
    let sushy = lab.info.sushy_url.trim_end_matches('/').trim_end_matches("/redfish/v1");
    let kernel = &lab.info.deploy_kernel_url;
    let files = [
        lab.info.iso_base_url.trim_end_matches('/'),
        kernel.rsplit_once('/').map_or(kernel.as_str(), |(base, _)| base),
    ];
    for (from, to) in [
        (files[0], "{files}"),
        (files[1], "{files}"),
        (sushy, "{bmc}"),
        (lab.info.ironic_url.as_str(), "{ironic}"),
    ] {
        if !from.is_empty() {
            text = text.replace(from, to);
        }
    }
    for system in &lab.info.systems {
        text = text.replace(&system.uuid, "{system}");
    }
    if !host_uid.is_empty() {
        text = text.replace(host_uid, "{host uid}");
    }
    serde_json::from_str(&text).expect("still JSON")
}

/// Edits host 0's image URL (the same ISO under another URL) and times it to provisioned again.
fn time_reprovision(kube: &KubeLab, lab: &Lab, timeout: Duration) -> Result<f64, String> {
    let url = format!("{}?edited=1", lab.info.iso_url);
    let r = kube.patch(
        &host_path("host-0"),
        metalhost_testlab::PatchType::Merge,
        &json!({"spec": {"image": {"url": url}}}),
    );
    if r.status != 200 {
        return Err(format!("edit the image URL: {}", r.status));
    }
    wait("provisioned again after the image URL edit", timeout, || {
        let h = host(kube, "host-0");
        h["status"]["provisioning"]["state"] == "provisioned"
            && h["status"]["provisioning"]["image"]["url"] == url.as_str()
    })
}

/// Deletes every host at once and times each until its Ironic node is gone; the median over
/// the hosts. One host's deletion is mostly Ironic's and the BMC's work: sushy-tools' fake driver
/// applies each power change after a random 1 to 11 s, and Ironic polls for it with a back-off,
/// so a single deletion varies from about 3 s to 20 s whatever the operator; over the fleet this
/// evens out, and what is left apart is the operators' own part.
fn time_delete(kube: &KubeLab, lab: &Lab, hosts: usize, timeout: Duration) -> Result<f64, String> {
    let mut left = BTreeMap::new();
    for i in 0..hosts {
        let name = format!("host-{i}");
        let uuid = host(kube, &name)["status"]["provisioning"]["ID"].as_str().unwrap_or_default().to_string();
        let r = kube.delete(&host_path(&name));
        if !(200..300).contains(&r.status) {
            return Err(format!("delete {name}: {}", r.status));
        }
        left.insert(uuid, Instant::now());
    }
    let mut gone = Vec::new();
    let started = Instant::now();
    while !left.is_empty() {
        if started.elapsed() > timeout {
            return Err(format!(
                "{} Ironic nodes still there {timeout:?} after their hosts' deletion",
                left.len()
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
        let there = ironic_node_uuids(lab);
        left.retain(|uuid, deleted: &mut Instant| {
            let still = there.as_ref().is_none_or(|there| there.contains(uuid));
            if !still {
                gone.push(deleted.elapsed().as_secs_f64());
            }
            still
        });
    }
    gone.sort_by(f64::total_cmp);
    Ok(gone.get(gone.len() / 2).copied().unwrap_or(f64::NAN))
}

/// The UUIDs of Ironic's nodes (asked directly), or None when Ironic did not answer.
fn ironic_node_uuids(lab: &Lab) -> Option<std::collections::BTreeSet<String>> {
    let url = format!("{}/v1/nodes?fields=uuid&limit=1000", lab.info.ironic_url);
    let r =
        reqwest::blocking::Client::new().get(url).header("X-OpenStack-Ironic-API-Version", "latest").send();
    let body: Value = r.ok().filter(|r| r.status().is_success())?.json().ok()?;
    let nodes = body["nodes"].as_array()?;
    Some(nodes.iter().filter_map(|n| n["uuid"].as_str().map(str::to_string)).collect())
}
