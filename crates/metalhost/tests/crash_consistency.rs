//! Crash consistency: `metalhost run` is killed (SIGKILL) at seeded random moments while several
//! live-ISO hosts register, provision, deprovision and are deleted against the real Ironic; after
//! each phase one uninterrupted run must converge: every host in its intended state, exactly one
//! Ironic node per host, no orphan nodes, statuses that agree with Ironic.
//!
//! METALHOST_KILL_SEED picks the seed (printed on failure) to reproduce a run.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use metalhost_api::{BareMetalHost, OperationalStatus, ProvisioningState};
use metalhost_testlab::Lab;

const HOSTS: usize = 4;
const KILLS_PER_PHASE: usize = 6;

fn spawn(dir: &Path, lab: &Lab) -> Child {
    Command::new(env!("CARGO_BIN_EXE_metalhost"))
        .args(["run", "--manifests"])
        .arg(dir)
        .args(["--ironic", &lab.info.ironic_url])
        .env("METALHOST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn manifests(dir: &Path, lab: &Lab, with_image: bool) {
    let image = if with_image { live_iso(&lab.info.iso_url) } else { "null".into() };
    let mut docs = vec![secret("c")];
    for i in 0..HOSTS {
        let mac = format!("  bootMACAddress: \"52:54:00:00:01:{i:02x}\"\n");
        docs.push(host(&format!("host-{i}"), &format!("fake-hardware://host-{i}"), "c", &image, &mac));
    }
    write(dir, "hosts.yaml", &docs);
}

fn statuses(dir: &Path) -> Vec<BareMetalHost> {
    (0..HOSTS).filter_map(|i| status_file(dir, &format!("host-{i}"))).collect()
}

/// Kills `metalhost run` at random moments, `kills` times.
fn kill_repeatedly(dir: &Path, lab: &Lab, rng: &mut fastrand::Rng, kills: usize, log: &mut Vec<u64>) {
    for _ in 0..kills {
        let running = Running(spawn(dir, lab));
        let after = rng.u64(30..1500);
        log.push(after);
        std::thread::sleep(Duration::from_millis(after));
        drop(running); // SIGKILL
    }
}

/// Kills the process when dropped, also when an assertion fails.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs uninterrupted until `done` holds for the status files, then stops.
fn converge(dir: &Path, lab: &Lab, what: &str, seed: u64, done: impl Fn(&[BareMetalHost]) -> bool) {
    let _running = Running(spawn(dir, lab));
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done(&statuses(dir)) {
        assert!(Instant::now() < deadline, "seed {seed}: {what} did not converge: {:#?}", statuses(dir));
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn in_state(hosts: &[BareMetalHost], state: ProvisioningState) -> bool {
    hosts.len() == HOSTS
        && hosts.iter().all(|h| {
            let s = h.status.as_ref().unwrap();
            s.provisioning.state == state && s.operational_status == OperationalStatus::Ok
        })
}

async fn check_ironic(lab: &Lab, dir: &Path, seed: u64, provision_state: &str) {
    let ironic = ironic(lab).await;
    let nodes = ironic.list_nodes().await.unwrap();
    assert_eq!(nodes.len(), HOSTS, "seed {seed}: one node per host, no orphans: {nodes:#?}");
    for i in 0..HOSTS {
        let name = format!("default~host-{i}");
        let matching: Vec<_> = nodes.iter().filter(|n| n.name.as_deref() == Some(name.as_str())).collect();
        assert_eq!(matching.len(), 1, "seed {seed}: {name}");
        let node = ironic.get_node(&matching[0].uuid).await.unwrap().unwrap();
        assert_eq!(node.provision_state, provision_state, "seed {seed}: {name}");
        assert_eq!(ironic.list_ports(&node.uuid).await.unwrap().len(), 1, "seed {seed}: {name} ports");
        let status = status_file(dir, &format!("host-{i}")).unwrap().status.unwrap();
        assert_eq!(status.provisioning.id, node.uuid, "seed {seed}: {name}: status names the node");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_random_points_it_converges_without_duplicates_or_orphans() {
    let seed = std::env::var("METALHOST_KILL_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(20261124);
    let mut rng = fastrand::Rng::with_seed(seed);
    let lab = Lab::start(1);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut kills = Vec::new();

    // registration and provisioning
    manifests(d, &lab, true);
    kill_repeatedly(d, &lab, &mut rng, KILLS_PER_PHASE, &mut kills);
    converge(d, &lab, "provisioning", seed, |h| in_state(h, ProvisioningState::Provisioned));
    check_ironic(&lab, d, seed, "active").await;

    // deprovisioning
    manifests(d, &lab, false);
    kill_repeatedly(d, &lab, &mut rng, KILLS_PER_PHASE, &mut kills);
    converge(d, &lab, "deprovisioning", seed, |h| in_state(h, ProvisioningState::Available));
    check_ironic(&lab, d, seed, "available").await;

    // provisioning again, then deletion
    manifests(d, &lab, true);
    kill_repeatedly(d, &lab, &mut rng, KILLS_PER_PHASE / 2, &mut kills);
    converge(d, &lab, "provisioning again", seed, |h| in_state(h, ProvisioningState::Provisioned));
    check_ironic(&lab, d, seed, "active").await;
    std::fs::remove_file(d.join("hosts.yaml")).unwrap();
    kill_repeatedly(d, &lab, &mut rng, KILLS_PER_PHASE, &mut kills);
    converge(d, &lab, "deletion", seed, |h| h.is_empty());
    let left = ironic(&lab).await.list_nodes().await.unwrap();
    assert!(left.is_empty(), "seed {seed}: nodes left after deletion: {left:#?}");

    assert!(kills.len() >= 20, "only {} kill points", kills.len());
    eprintln!("seed {seed}: {} kills at {kills:?} ms", kills.len());
}
