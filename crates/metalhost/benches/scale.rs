//! Scale benchmark: N live-ISO hosts from manifest to `provisioned` with metalhost's standalone
//! runtime, against the same N nodes driven by a minimal direct Ironic client, on a real Ironic.
//! Both sides talk to Ironic through one counting proxy, so the request counts are exact and
//! classified the same way (register, manage, provide, deploy, polls); both poll with the core's
//! `Schedule` (one per host, from the first step to `active`); the direct client retries transient
//! errors (time-outs, resets) as a correct client must, so a slow Ironic slows the run but never
//! ends it. Each side runs `--repeats` times on a fresh Ironic, in alternating order; min and
//! median are printed.
//!
//! Both sides create the same node (the core's `node_create_fields`) and send the same deploy patch
//! (the core's `deploy_patch`); requests a side makes for a node after the proxy has shown that node
//! `active` are counted apart ("after active"), so hosts finished early do not charge their idle
//! looks to provisioning.
//!
//! Workloads: `fake` (fake-hardware, iPXE boot, ramdisk deploy: operations finish at once, so the
//! figures show the clients' own cost) and `vmedia` (Redfish virtual media through Ironic's redfish
//! driver against sushy-tools' fake systems: every power and media operation is a Redfish call the
//! conductor makes, so operations take longer and polling shows).
//!
//!   cargo bench -p metalhost --bench scale -- [--workload fake|vmedia] [--hosts 200]
//!       [--repeats 3] [--concurrency 32] [--idle-seconds 300] [--only-metalhost]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use metalhost_api::extensions::LiveIsoOptions;
use metalhost_api::{BareMetalHost, BmcAccess, Credentials, DeployImage};
use metalhost_core::Requeue;
use metalhost_core::plan::{NodeDefaults, deploy_patch, node_create_fields};
use metalhost_core::policy::Schedule;
use metalhost_ironic::{Client, ClientConfig, Node, ProvisionState, ProvisionTarget};
use metalhost_testlab::Lab;
use serde_json::json;
use tokio::sync::Semaphore;

mod support;
use support::{Counts, spawn_metalhost, start_proxy, to_active, total, usage};

#[derive(Clone, Copy, PartialEq)]
enum Workload {
    /// fake-hardware/iPXE/ramdisk: Ironic's own pace, operations finish at once.
    Fake,
    /// redfish-virtualmedia on sushy-tools: power and media operations take time.
    Vmedia,
}

struct Args {
    /// Skip the direct client (for a quick memory figure at large N).
    only_metalhost: bool,
    workload: Workload,
    hosts: usize,
    repeats: usize,
    concurrency: usize,
    idle_seconds: u64,
}

fn args() -> Args {
    let argv: Vec<String> = std::env::args().collect();
    let value = |flag: &str| argv.iter().position(|x| x == flag).and_then(|i| argv.get(i + 1)).cloned();
    let number = |flag: &str, default: u64| value(flag).and_then(|v| v.parse().ok()).unwrap_or(default);
    let workload = match value("--workload").as_deref() {
        None | Some("fake") => Workload::Fake,
        Some("vmedia") => Workload::Vmedia,
        Some(other) => panic!("--workload {other}: expected fake or vmedia"),
    };
    let default_hosts = if workload == Workload::Fake { 200 } else { 50 };
    Args {
        only_metalhost: argv.iter().any(|x| x == "--only-metalhost"),
        workload,
        hosts: number("--hosts", default_hosts) as usize,
        repeats: number("--repeats", 3).max(1) as usize,
        concurrency: number("--concurrency", 32).max(1) as usize,
        idle_seconds: number("--idle-seconds", 300),
    }
}

// ---------------------------------------------------------------------------------------------
// The direct client.

fn mac(i: usize) -> String {
    format!("52:54:{:02x}:{:02x}:{:02x}:{:02x}", (i >> 24) & 255, (i >> 16) & 255, (i >> 8) & 255, i & 255)
}

/// What host `i` is: its BMC address and boot MAC, the same for both sides.
fn host_bmc(lab: &Lab, workload: Workload, i: usize) -> (String, String) {
    match workload {
        Workload::Fake => (format!("fake-hardware://host-{i}"), mac(i)),
        Workload::Vmedia => (lab.bmc_address("redfish-virtualmedia", i), lab.info.systems[i].mac.clone()),
    }
}

const USER: &str = "admin";
const PASSWORD: &str = "password";

/// Host `i` as a BareMetalHost, the same for both sides (the direct client only takes the fields
/// of its node from it).
fn host(lab: &Lab, workload: Workload, i: usize) -> BareMetalHost {
    let (address, boot_mac) = host_bmc(lab, workload, i);
    serde_json::from_value(json!({
        "apiVersion": "metal3.io/v1alpha1", "kind": "BareMetalHost",
        "metadata": {"name": format!("host-{i}"), "namespace": "direct"},
        "spec": {"online": true, "automatedCleaningMode": "disabled", "inspectionMode": "disabled",
                 "bootMACAddress": boot_mac, "bmc": {"address": address, "credentialsName": "c"},
                 "image": {"url": lab.info.iso_url, "format": "live-iso"}}
    }))
    .unwrap()
}

/// The longest a direct-client host may take from its first request to `active`.
const HOST_DEADLINE: Duration = Duration::from_secs(3600);

/// How long the direct client keeps retrying one call before giving up on the run.
const GIVE_UP_AFTER: Duration = Duration::from_secs(600);

/// Runs `call` until it succeeds; a transient error (no answer, time-out, 409 locked, 503 busy)
/// is retried with back-off after `landed` has checked whether the call took effect anyway (a
/// time-out does not say it did not).
async fn retrying<T, C, CF, L, LF>(what: &str, mut call: C, mut landed: L) -> T
where
    C: FnMut() -> CF,
    CF: std::future::Future<Output = Result<T, metalhost_ironic::Error>>,
    L: FnMut() -> LF,
    LF: std::future::Future<Output = Option<T>>,
{
    let started = Instant::now();
    let mut backoff = Duration::from_millis(500);
    loop {
        match call().await {
            Ok(v) => return v,
            Err(e) if e.is_transient() && started.elapsed() < GIVE_UP_AFTER => {
                if let Some(v) = landed().await {
                    return v;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
            Err(e) => panic!("direct client: {what}: {e}"),
        }
    }
}

/// The minimal client: create node and port, manage, provide, set `boot_iso`, active, polling
/// each wait with the core's schedule (one per host, as metalhost keeps one per host).
async fn direct(
    lab: &Lab,
    ironic_url: &str,
    workload: Workload,
    hosts: usize,
    concurrency: usize,
) -> Duration {
    let permits = Arc::new(Semaphore::new(concurrency));
    let defaults = NodeDefaults {
        deploy_kernel: Some(lab.info.deploy_kernel_url.clone()),
        deploy_ramdisk: Some(lab.info.deploy_ramdisk_url.clone()),
        ..Default::default()
    };
    // metalhost's wall time includes its start-up and its client's version negotiation: so does this
    let start = Instant::now();
    let client = Client::connect(ClientConfig::new(ironic_url.to_string())).await.unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..hosts {
        let (client, permits) = (client.clone(), permits.clone());
        let host = host(lab, workload, i);
        let (_, boot_mac) = host_bmc(lab, workload, i);
        let image = DeployImage::LiveIso { url: lab.info.iso_url.clone() };
        let defaults = defaults.clone();
        tasks.spawn(async move {
            let started = Instant::now();
            let call = || async { permits.clone().acquire_owned().await.unwrap() };
            let spec_bmc = host.spec.bmc.as_ref().unwrap();
            let access = BmcAccess::parse(&spec_bmc.address, false).unwrap();
            let options = LiveIsoOptions::default();
            let credentials = Credentials::new(USER, PASSWORD);
            let fields = node_create_fields(&host, &options, &access, &credentials, &defaults);
            let name = fields["name"].as_str().unwrap().to_string();

            let node: Node = retrying(
                "create node",
                || async {
                    let _p = call().await;
                    client.create_node(&fields).await
                },
                || async {
                    let _p = call().await;
                    client.get_node(&name).await.ok().flatten()
                },
            )
            .await;
            let uuid = node.uuid.clone();
            retrying(
                "create port",
                || async {
                    let _p = call().await;
                    client.create_port(&uuid, &boot_mac).await.map(|_| ())
                },
                || async {
                    let _p = call().await;
                    client.list_ports(&uuid).await.ok().filter(|p| !p.is_empty()).map(|_| ())
                },
            )
            .await;
            let mut schedule = Schedule::default();
            let steps = [
                (ProvisionTarget::Manage, ProvisionState::Manageable),
                (ProvisionTarget::Provide, ProvisionState::Available),
            ];
            let mut node = node;
            for (target, wanted) in steps {
                change(&client, &uuid, target, wanted.clone(), &call).await;
                node = wait_for(&client, &uuid, wanted, &mut schedule, &call, started).await;
            }
            let patch = deploy_patch(&node, &image, &options);
            retrying(
                "deploy patch",
                || async {
                    let _p = call().await;
                    client.patch_node(&uuid, &patch).await.map(|_| ())
                },
                || async { None },
            )
            .await;
            change(&client, &uuid, ProvisionTarget::Active, ProvisionState::Active, &call).await;
            wait_for(&client, &uuid, ProvisionState::Active, &mut schedule, &call, started).await;
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    start.elapsed()
}

async fn change<F, Fut>(
    client: &Client,
    uuid: &str,
    target: ProvisionTarget,
    wanted: ProvisionState,
    call: &F,
) where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = tokio::sync::OwnedSemaphorePermit>,
{
    retrying(
        target.as_str(),
        || async {
            let _p = call().await;
            client.set_provision_state(uuid, target, None).await
        },
        // a time-out may hide a change that was made: the node is on its way or there
        || async {
            let _p = call().await;
            let node = client.get_node(uuid).await.ok().flatten()?;
            (node.target_provision_state.is_some() || node.provision_state == wanted).then_some(())
        },
    )
    .await;
}

/// Polls the node until it rests in `wanted`; panics (ending the run with the reason) when it
/// rests elsewhere or the host's deadline passes, so the benchmark never hangs.
async fn wait_for<F, Fut>(
    client: &Client,
    uuid: &str,
    wanted: ProvisionState,
    schedule: &mut Schedule,
    call: &F,
    started: Instant,
) -> Node
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = tokio::sync::OwnedSemaphorePermit>,
{
    loop {
        assert!(
            started.elapsed() < HOST_DEADLINE,
            "direct client: node {uuid} not {wanted} within the deadline"
        );
        let delay = schedule.next(Requeue::Poll, Instant::now(), 0.0, Duration::ZERO).unwrap();
        tokio::time::sleep(delay).await;
        let node = retrying(
            "read node",
            || async {
                let _p = call().await;
                client.get_node(uuid).await
            },
            || async { None },
        )
        .await
        .unwrap_or_else(|| panic!("direct client: node {uuid} vanished"));
        if node.target_provision_state.is_none() {
            if node.provision_state == wanted {
                return node;
            }
            assert!(
                !node.provision_state.is_stable(),
                "direct client: node {uuid} rests in {} (wanted {wanted}): {:?}",
                node.provision_state,
                node.last_error
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// metalhost.

fn write_manifests(dir: &Path, lab: &Lab, workload: Workload, hosts: usize) {
    let mut docs = vec![format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: c}}\nstringData: {{username: {USER}, password: {PASSWORD}}}\n"
    )];
    for i in 0..hosts {
        let (address, boot_mac) = host_bmc(lab, workload, i);
        docs.push(format!(
            "apiVersion: metal3.io/v1alpha1\nkind: BareMetalHost\nmetadata: {{name: host-{i}}}\nspec:\n  online: true\n  \
             automatedCleaningMode: disabled\n  inspectionMode: disabled\n  bootMACAddress: \"{boot_mac}\"\n  \
             bmc: {{address: \"{address}\", credentialsName: c}}\n  image: {{url: \"{}\", format: live-iso}}\n",
            lab.info.iso_url
        ));
    }
    std::fs::write(dir.join("hosts.yaml"), docs.join("---\n")).unwrap();
}

fn provisioned(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".status.yaml"))
        .filter(|e| std::fs::read_to_string(e.path()).is_ok_and(|t| t.contains("state: provisioned")))
        .count()
}

/// What one run of one side measured.
struct Run {
    wall: Duration,
    counts: BTreeMap<String, u64>,
    /// metalhost only: peak RSS (MiB), CPU seconds to provisioned.
    rss: f64,
    cpu: f64,
    /// metalhost only, when measured: (idle requests, idle seconds, CPU seconds at the end).
    idle: Option<(u64, u64, f64)>,
}

async fn run_metalhost(lab: &Lab, ironic_url: &str, counts: &Counts, a: &Args, idle_seconds: u64) -> Run {
    let dir = tempfile::tempdir().unwrap();
    write_manifests(dir.path(), lab, a.workload, a.hosts);
    let start = Instant::now();
    let concurrency = a.concurrency.to_string();
    let manifests = dir.path().to_str().expect("a UTF-8 temporary path");
    let mut child = spawn_metalhost(
        &["run", "--manifests", manifests, "--ironic", ironic_url, "--concurrency", &concurrency],
        &[],
    );
    let child = &mut child.0;
    let deadline = start + Duration::from_secs(3 * 3600);
    while provisioned(dir.path()) < a.hosts {
        assert!(Instant::now() < deadline, "not all hosts provisioned in three hours");
        assert!(child.try_wait().unwrap().is_none(), "metalhost exited");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let wall = start.elapsed();
    let provisioning = counts.snapshot();
    let (rss, cpu) = usage(child.id());
    let mut idle = None;
    if idle_seconds > 0 {
        eprintln!("  all provisioned; idle cost over {idle_seconds} s…");
        let before = total(&counts.snapshot());
        tokio::time::sleep(Duration::from_secs(idle_seconds)).await;
        let requests = total(&counts.snapshot()) - before;
        idle = Some((requests, idle_seconds, usage(child.id()).1));
    }
    let rss = rss.max(usage(child.id()).0);
    Run { wall, counts: provisioning, rss, cpu, idle }
}

// ---------------------------------------------------------------------------------------------
// Figures.

fn min_median(values: &mut [f64]) -> (f64, f64) {
    values.sort_by(f64::total_cmp);
    (values[0], values[values.len() / 2])
}

fn per_host(runs: &[Run], n: f64, f: impl Fn(&Run) -> f64) -> (f64, f64) {
    let mut v: Vec<f64> = runs.iter().map(|r| f(r) / n).collect();
    min_median(&mut v)
}

/// Mean count per host of each kind over the runs.
fn kinds(runs: &[Run], n: f64) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for run in runs {
        for (kind, count) in &run.counts {
            *out.entry(kind.clone()).or_default() += *count as f64 / n / runs.len() as f64;
        }
    }
    out
}

fn main() {
    let a = args();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let workload = match a.workload {
        Workload::Fake => "fake-hardware/iPXE/ramdisk",
        Workload::Vmedia => "redfish-virtualmedia on sushy-tools",
    };
    eprintln!(
        "scale benchmark: {} live-ISO hosts, {workload}, concurrency {}, {} repeats",
        a.hosts, a.concurrency, a.repeats
    );
    let systems = if a.workload == Workload::Vmedia { a.hosts } else { 1 };
    let (mut mine, mut theirs) = (Vec::new(), Vec::new());
    for r in 0..a.repeats {
        let direct_first = r % 2 == 0;
        for side in 0..2 {
            let run_direct = (side == 0) == direct_first;
            if run_direct && a.only_metalhost {
                continue;
            }
            let lab = Lab::start(systems);
            let (url, counts) = rt.block_on(start_proxy(lab.info.ironic_url.clone()));
            if run_direct {
                eprintln!("run {}/{}: direct client…", r + 1, a.repeats);
                let wall = rt.block_on(direct(&lab, &url, a.workload, a.hosts, a.concurrency));
                eprintln!("  {:.1} s", wall.as_secs_f64());
                theirs.push(Run { wall, counts: counts.snapshot(), rss: 0.0, cpu: 0.0, idle: None });
            } else {
                eprintln!("run {}/{}: metalhost run…", r + 1, a.repeats);
                let idle = if r + 1 == a.repeats { a.idle_seconds } else { 0 };
                let run = rt.block_on(run_metalhost(&lab, &url, &counts, &a, idle));
                eprintln!("  {:.1} s", run.wall.as_secs_f64());
                mine.push(run);
            }
            drop(lab);
        }
    }

    let n = a.hosts as f64;
    println!(
        "workload: {workload}  hosts: {}  concurrency: {}  repeats: {}  machine: {} cores",
        a.hosts,
        a.concurrency,
        a.repeats,
        std::thread::available_parallelism().map_or(0, |p| p.get())
    );
    let wall = |runs: &[Run]| per_host(runs, 1.0, |r| r.wall.as_secs_f64());
    let requests = |runs: &[Run]| per_host(runs, n, |r| to_active(&r.counts) as f64);
    println!("{:<44} {:>18} {:>18}", "", "metalhost", "direct");
    println!("{:<44} {:>18} {:>18}", "(min / median)", "", "");
    let pair = |(min, med): (f64, f64)| format!("{min:.1} / {med:.1}");
    let side = |runs: &[Run], f: &dyn Fn(&[Run]) -> (f64, f64)| {
        if runs.is_empty() { "-".to_string() } else { pair(f(runs)) }
    };
    println!(
        "{:<44} {:>18} {:>18}",
        "wall time to provisioned (s)",
        side(&mine, &wall),
        side(&theirs, &wall)
    );
    println!(
        "{:<44} {:>18} {:>18}",
        "Ironic requests per host to active",
        side(&mine, &requests),
        side(&theirs, &requests)
    );
    if !theirs.is_empty() {
        println!(
            "{:<44} {:>18.3}",
            "wall-time ratio metalhost/direct (medians)",
            wall(&mine).1 / wall(&theirs).1
        );
        println!(
            "{:<44} {:>18.3}",
            "request ratio metalhost/direct (medians)",
            requests(&mine).1 / requests(&theirs).1
        );
    }
    println!("Ironic requests per host, by kind (mean over runs):");
    let (km, kd) = (kinds(&mine, n), kinds(&theirs, n));
    let mut all: Vec<&String> = km.keys().chain(kd.keys()).collect();
    all.sort();
    all.dedup();
    for kind in all {
        let v = |m: &BTreeMap<String, f64>| m.get(kind).map_or("-".to_string(), |x| format!("{x:.2}"));
        println!("  {:<42} {:>18} {:>18}", kind, v(&km), v(&kd));
    }
    let (rss_min, rss_med) = per_host(&mine, 1.0, |r| r.rss);
    let (cpu_min, cpu_med) = per_host(&mine, 1.0, |r| r.cpu);
    println!("{:<44} {:>18}", "metalhost peak RSS (MiB)", pair((rss_min, rss_med)));
    println!("{:<44} {:>18}", "metalhost CPU seconds to provisioned", format!("{cpu_min:.2} / {cpu_med:.2}"));
    if let Some((idle, seconds, cpu)) = mine.last().and_then(|r| r.idle) {
        let per_min = idle as f64 / n / (seconds as f64 / 60.0);
        println!("{:<44} {:>18.3}", format!("idle requests per host per minute ({seconds} s)"), per_min);
        println!("{:<44} {:>18.2}", "metalhost CPU seconds incl. idle (last run)", cpu);
    }
}
