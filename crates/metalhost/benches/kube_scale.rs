//! The Kubernetes runtime at scale: `metalhost run --kube` (a real process, as config/'s controller
//! ServiceAccount) against a real control plane (`scripts/kube`: etcd, kube-apiserver,
//! kube-controller-manager; requests counted from the apiserver's audit log) and the lab's real
//! Ironic (fake-hardware, iPXE boot, ramdisk deploy) behind the counting proxy. N live-ISO hosts and their Secrets (one each) are
//! created through the API; the benchmark waits until every host's status says `provisioned`, then keeps
//! watching an idle fleet. Prints API-server requests per host (reads and writes, by kind), status
//! writes per Event (each state change and each error is one, created or patched as a series), Ironic
//! requests per host, the idle rates of both, and metalhost's peak RSS.
//!
//!   cargo bench -p metalhost --bench kube_scale -- [--hosts 100] [--concurrency 32]
//!       [--idle-seconds 300]

use std::time::{Duration, Instant};

use metalhost_testlab::{CONTROLLER_USER, KubeLab, Lab, RequestRecord};

mod support;
use support::side_by_side::by_kind;
use support::{number, spawn_metalhost, start_proxy, to_active, total, usage};

fn mac(i: usize) -> String {
    format!("52:54:{:02x}:{:02x}:{:02x}:{:02x}", (i >> 24) & 255, (i >> 16) & 255, (i >> 8) & 255, i & 255)
}

/// Each host with its own BMC Secret, as metal3's examples have them.
fn manifests(lab: &Lab, hosts: usize) -> String {
    let mut docs = Vec::new();
    for i in 0..hosts {
        docs.push(format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: host-{i}-bmc, namespace: default}}\n\
             stringData: {{username: u, password: p}}\n"
        ));
        docs.push(format!(
            "apiVersion: metal3.io/v1alpha1\nkind: BareMetalHost\nmetadata: {{name: host-{i}, namespace: default}}\n\
             spec:\n  online: true\n  automatedCleaningMode: disabled\n  inspectionMode: disabled\n  \
             bootMACAddress: \"{}\"\n  bmc: {{address: \"fake-hardware://host-{i}\", credentialsName: host-{i}-bmc}}\n  \
             image: {{url: \"{}\", format: live-iso}}\n",
            mac(i),
            lab.info.iso_url
        ));
    }
    docs.join("---\n")
}

/// Hosts whose status says provisioned (the benchmark's own list, not counted as metalhost's).
fn provisioned(kube: &KubeLab) -> usize {
    let list = kube.get("/apis/metal3.io/v1alpha1/namespaces/default/baremetalhosts").json();
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|o| o["status"]["provisioning"]["state"] == "provisioned")
        .count()
}

/// The requests metalhost sent (not the benchmark's own).
fn theirs(kube: &KubeLab) -> Vec<RequestRecord> {
    kube.requests_of(CONTROLLER_USER)
}

fn main() {
    let hosts = number("--hosts", 100) as usize;
    let concurrency = number("--concurrency", 32).max(1);
    let idle_seconds = number("--idle-seconds", 300);
    let rt = tokio::runtime::Runtime::new().unwrap();
    eprintln!(
        "kube scale benchmark: {hosts} live-ISO hosts, fake-hardware/iPXE/ramdisk, concurrency {concurrency}"
    );

    let lab = Lab::start(1);
    let (ironic_url, counts) = rt.block_on(start_proxy(lab.info.ironic_url.clone()));
    let kube = KubeLab::start();
    kube.apply_yaml(&manifests(&lab, hosts));
    let credential = kube.controller_credential("metalhost");
    let apiserver = kube.pid_of("kube-apiserver").expect("the apiserver's pid");
    eprintln!("{hosts} hosts and their Secrets created through the API; starting the controller…");

    let (_, apiserver_cpu_before) = usage(apiserver);
    let start = Instant::now();
    let concurrency = concurrency.to_string();
    let mut child = spawn_metalhost(
        &[
            "run",
            "--kube",
            "--ironic",
            &ironic_url,
            "--concurrency",
            &concurrency,
            "--deploy-kernel",
            &lab.info.deploy_kernel_url,
            "--deploy-ramdisk",
            &lab.info.deploy_ramdisk_url,
        ],
        &[("KUBECONFIG", credential.kubeconfig.as_os_str())],
    );
    let deadline = start + Duration::from_secs(3 * 3600);
    while provisioned(&kube) < hosts {
        assert!(Instant::now() < deadline, "not all hosts provisioned in three hours");
        assert!(child.0.try_wait().unwrap().is_none(), "metalhost exited");
        std::thread::sleep(Duration::from_millis(250));
    }
    let wall = start.elapsed();
    let api = theirs(&kube);
    let ironic = counts.snapshot();
    let (rss_provisioning, cpu) = usage(child.0.id());
    let apiserver_cpu = usage(apiserver).1 - apiserver_cpu_before;
    eprintln!("all provisioned in {:.1} s; idle for {idle_seconds} s…", wall.as_secs_f64());
    std::thread::sleep(Duration::from_secs(idle_seconds));
    let api_idle = theirs(&kube).len() - api.len();
    let ironic_idle = total(&counts.snapshot()) - total(&ironic);
    let (rss, cpu_all) = usage(child.0.id());

    let n = hosts as f64;
    let kinds = by_kind(&api);
    let writes = api.iter().filter(|r| r.is_write()).count() as f64;
    let reads = api.len() as f64 - writes;
    let status_writes = kinds.get("patch baremetalhosts/status").copied().unwrap_or(0) as f64;
    // an Event is created once and patched when it recurs (events.k8s.io series): both are events
    let events =
        ["create events", "patch events"].iter().map(|k| kinds.get(*k).copied().unwrap_or(0)).sum::<u64>()
            as f64;
    let minutes = (idle_seconds as f64 / 60.0).max(f64::MIN_POSITIVE);
    println!(
        "hosts: {hosts}  concurrency: {concurrency}  machine: {} cores",
        std::thread::available_parallelism().map_or(0, |p| p.get())
    );
    println!("{:<52} {:>10.1}", "wall time to provisioned (s)", wall.as_secs_f64());
    println!("{:<52} {:>10.2}", "API-server requests per host to provisioned", api.len() as f64 / n);
    println!("{:<52} {:>10.2}", "  reads (get, list, watch) per host", reads / n);
    println!("{:<52} {:>10.2}", "  writes per host", writes / n);
    for (kind, count) in &kinds {
        println!("    {:<48} {:>10.2}", kind, *count as f64 / n);
    }
    println!(
        "{:<52} {:>10.2}",
        "status writes per Event (state change or error)",
        status_writes / events.max(1.0)
    );
    println!("{:<52} {:>10.2}", "Ironic requests per host to active", to_active(&ironic) as f64 / n);
    for (kind, count) in &ironic {
        println!("    {:<48} {:>10.2}", kind, *count as f64 / n);
    }
    if idle_seconds > 0 {
        let per_minute = |count: usize| count as f64 / n / minutes;
        let label = format!("idle API requests per host per minute ({idle_seconds} s)");
        println!("{:<52} {:>10.3}", label, per_minute(api_idle));
        println!(
            "{:<52} {:>10.3}",
            "idle Ironic requests per host per minute",
            per_minute(ironic_idle as usize)
        );
    }
    println!("{:<52} {:>10.1}", "metalhost peak RSS (MiB)", rss.max(rss_provisioning));
    println!("{:<52} {:>10.2}", "metalhost CPU seconds to provisioned", cpu);
    println!("{:<52} {:>10.2}", "metalhost CPU seconds incl. idle", cpu_all);
    // the apiserver shares the machine's cores with Ironic: its load slows Ironic down
    println!("{:<52} {:>10.2}", "kube-apiserver CPU seconds to provisioned", apiserver_cpu);
}
