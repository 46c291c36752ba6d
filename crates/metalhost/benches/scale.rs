//! Scale benchmark: N live-ISO hosts from manifest to `provisioned` with metalhost's standalone
//! runtime, against the same N nodes driven by a minimal direct Ironic client, on a real Ironic
//! (fake-hardware, iPXE boot, ramdisk deploy, cleaning and inspection off). Prints both side by
//! side: wall time, Ironic requests per host, metalhost's peak RSS and CPU seconds, and the idle
//! polling cost once every host is provisioned.
//!
//!   cargo bench -p metalhost --bench scale -- [--hosts 200] [--concurrency 32] [--idle-seconds 120]
//!                                              [--only-metalhost]

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use metalhost_core::policy::poll_interval;
use metalhost_ironic::{Client, ClientConfig, Patch, ProvisionTarget};
use metalhost_testlab::Lab;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

struct Args {
    /// Skip the direct client (for a quick memory figure at large N).
    only_metalhost: bool,
    hosts: usize,
    concurrency: usize,
    idle_seconds: u64,
}

fn args() -> Args {
    let argv: Vec<String> = std::env::args().collect();
    let mut a = Args {
        only_metalhost: argv.iter().any(|x| x == "--only-metalhost"),
        hosts: 200,
        concurrency: 32,
        idle_seconds: 120,
    };
    let get = |flag: &str| {
        argv.iter().position(|x| x == flag).and_then(|i| argv.get(i + 1)).and_then(|v| v.parse().ok())
    };
    if let Some(n) = get("--hosts") {
        a.hosts = n as usize;
    }
    if let Some(n) = get("--concurrency") {
        a.concurrency = n as usize;
    }
    if let Some(n) = get("--idle-seconds") {
        a.idle_seconds = n;
    }
    a
}

fn mac(i: usize) -> String {
    format!("52:54:{:02x}:{:02x}:{:02x}:{:02x}", (i >> 24) & 255, (i >> 16) & 255, (i >> 8) & 255, i & 255)
}

/// The minimal client: create node, port, manage, provide, set boot_iso, active, and poll each
/// state change with metalhost's own polling schedule.
async fn direct(lab: &Lab, hosts: usize, concurrency: usize) -> (Duration, u64) {
    let client = Client::connect(ClientConfig::new(lab.info.ironic_url.clone())).await.unwrap();
    let permits = Arc::new(Semaphore::new(concurrency));
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..hosts {
        let (client, permits, lab_info) = (client.clone(), permits.clone(), lab.info.clone());
        tasks.spawn(async move {
            let call = || async { permits.clone().acquire_owned().await.unwrap() };
            let fields = json!({
                "name": format!("direct-{i}"), "driver": "fake-hardware", "boot_interface": "ipxe",
                "deploy_interface": "ramdisk", "management_interface": "fake", "power_interface": "fake",
                "automated_clean": false,
                "driver_info": {"deploy_kernel": lab_info.deploy_kernel_url, "deploy_ramdisk": lab_info.deploy_ramdisk_url},
            });
            let node = {
                let _p = call().await;
                client.create_node(fields.as_object().unwrap()).await.unwrap()
            };
            {
                let _p = call().await;
                client.create_port(&node.uuid, &mac(i)).await.unwrap();
            }
            for (target, wanted) in [(ProvisionTarget::Manage, "manageable"), (ProvisionTarget::Provide, "available")] {
                {
                    let _p = call().await;
                    client.set_provision_state(&node.uuid, target, None).await.unwrap();
                }
                wait_for(&client, &node.uuid, wanted, &call).await;
            }
            let patch: Patch = serde_json::from_value(json!([
                {"op": "add", "path": "/instance_info/boot_iso", "value": lab_info.iso_url}
            ]))
            .unwrap();
            {
                let _p = call().await;
                client.patch_node(&node.uuid, &patch).await.unwrap();
            }
            {
                let _p = call().await;
                client.set_provision_state(&node.uuid, ProvisionTarget::Active, None).await.unwrap();
            }
            wait_for(&client, &node.uuid, "active", &call).await;
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    (start.elapsed(), client.request_count())
}

async fn wait_for<F, Fut>(client: &Client, uuid: &str, wanted: &str, call: &F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = tokio::sync::OwnedSemaphorePermit>,
{
    // the same polling schedule as metalhost's, so that the comparison measures the operator
    let started = Instant::now();
    loop {
        tokio::time::sleep(poll_interval(started.elapsed())).await;
        let _p = call().await;
        let node = client.get_node(uuid).await.unwrap().unwrap();
        if node.target_provision_state.is_none() && node.provision_state == wanted {
            return;
        }
        assert!(!node.is_failed(), "direct-client node {uuid} failed: {:?}", node.last_error);
    }
}

fn write_manifests(dir: &Path, lab: &Lab, hosts: usize) {
    let mut docs = vec![
        "apiVersion: v1\nkind: Secret\nmetadata: {name: c}\nstringData: {username: u, password: p}\n"
            .to_string(),
    ];
    for i in 0..hosts {
        docs.push(format!(
            "apiVersion: metal3.io/v1alpha1\nkind: BareMetalHost\nmetadata: {{name: host-{i}}}\nspec:\n  online: true\n  \
             automatedCleaningMode: disabled\n  inspectionMode: disabled\n  bootMACAddress: \"{}\"\n  \
             bmc: {{address: \"fake-hardware://host-{i}\", credentialsName: c}}\n  image: {{url: \"{}\", format: live-iso}}\n",
            mac(i),
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

fn requests(stats: &Path) -> u64 {
    std::fs::read_to_string(stats)
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|v| v["ironic_requests"].as_u64())
        .unwrap_or(0)
}

/// (peak RSS in MiB, CPU seconds) of a running process, from /proc.
fn usage(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let hwm_kib: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after_comm = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    let ticks: f64 = fields.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (hwm_kib / 1024.0, ticks / 100.0)
}

fn main() {
    let a = args();
    let rt = tokio::runtime::Runtime::new().unwrap();
    eprintln!("scale benchmark: {} live-ISO hosts, concurrency {}", a.hosts, a.concurrency);

    let (direct_wall, direct_requests) = if a.only_metalhost {
        (Duration::ZERO, 0)
    } else {
        eprintln!("direct client…");
        let lab = Lab::start(1);
        let figures = rt.block_on(direct(&lab, a.hosts, a.concurrency));
        drop(lab);
        figures
    };

    eprintln!("metalhost run…");
    let lab = Lab::start(1);
    let dir = tempfile::tempdir().unwrap();
    write_manifests(dir.path(), &lab, a.hosts);
    let stats = dir.path().join("stats.json.out");
    let start = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_metalhost"))
        .args(["run", "--manifests"])
        .arg(dir.path())
        .args(["--ironic", &lab.info.ironic_url, "--concurrency", &a.concurrency.to_string()])
        .arg("--stats-file")
        .arg(&stats)
        .env("METALHOST_LOG", "warn")
        .stdout(Stdio::null())
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = start + Duration::from_secs(3600);
    while provisioned(dir.path()) < a.hosts {
        assert!(Instant::now() < deadline, "not all hosts provisioned in an hour");
        assert!(child.try_wait().unwrap().is_none(), "metalhost exited");
        std::thread::sleep(Duration::from_millis(200));
    }
    let metalhost_wall = start.elapsed();
    let metalhost_requests = requests(&stats);
    let (rss_provisioning, cpu_provisioning) = usage(child.id());
    eprintln!("all provisioned; measuring idle cost for {} s…", a.idle_seconds);
    let idle_start = requests(&stats);
    std::thread::sleep(Duration::from_secs(a.idle_seconds));
    let idle_requests = requests(&stats) - idle_start;
    let idle_minutes = (a.idle_seconds as f64 / 60.0).max(f64::MIN_POSITIVE);
    let (rss, cpu) = usage(child.id());
    let _ = child.kill();
    let _ = child.wait();
    drop(lab);

    let n = a.hosts as f64;
    let ratio = metalhost_wall.as_secs_f64() / direct_wall.as_secs_f64();
    if a.only_metalhost {
        println!("hosts: {}  concurrency: {}  (metalhost only)", a.hosts, a.concurrency);
        println!("wall time to provisioned (s)            {:>10.1}", metalhost_wall.as_secs_f64());
        println!("Ironic requests per host (provisioning) {:>10.1}", metalhost_requests as f64 / n);
        println!("metalhost peak RSS (MiB)                {:>10.1}", rss.max(rss_provisioning));
        println!("metalhost CPU seconds                   {:>10.2}", cpu);
        return;
    }
    println!(
        "hosts: {}  concurrency: {}  machine: {} cores",
        a.hosts,
        a.concurrency,
        std::thread::available_parallelism().map_or(0, |p| p.get())
    );
    println!("{:<38} {:>12} {:>12}", "", "metalhost", "direct");
    println!(
        "{:<38} {:>12.1} {:>12.1}",
        "wall time to provisioned (s)",
        metalhost_wall.as_secs_f64(),
        direct_wall.as_secs_f64()
    );
    println!("{:<38} {:>12.3}", "wall-time ratio metalhost/direct", ratio);
    println!(
        "{:<38} {:>12.1} {:>12.1}",
        "Ironic requests per host (provisioning)",
        metalhost_requests as f64 / n,
        direct_requests as f64 / n
    );
    println!(
        "{:<38} {:>12.3}",
        "request ratio metalhost/direct",
        metalhost_requests as f64 / direct_requests as f64
    );
    println!("{:<38} {:>12.3}", "idle requests per host per minute", idle_requests as f64 / n / idle_minutes);
    println!("{:<38} {:>12.1}", "metalhost peak RSS (MiB)", rss.max(rss_provisioning));
    println!("{:<38} {:>12.2}", "metalhost CPU seconds (provisioning)", cpu_provisioning);
    println!("{:<38} {:>12.2}", "metalhost CPU seconds (incl. idle)", cpu);
}
