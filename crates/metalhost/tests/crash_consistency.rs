//! Crash consistency: `metalhost run` is killed (SIGKILL) at seeded random moments while several
//! live-ISO hosts register, provision, deprovision and are deleted against the real Ironic; after
//! each phase one uninterrupted run must converge: every host in its intended state, exactly one
//! Ironic node per host, no orphan nodes, statuses that agree with Ironic.
//!
//! Half the kills come at random moments. The other half are placed where crash consistency is
//! tested hardest: metalhost reaches Ironic through a proxy that, once armed, lets the n-th Ironic
//! write through, waits for Ironic's answer, holds it back, and only then is the process killed.
//! Ironic has done the write; metalhost never learnt of it, so no status can record it. The test
//! asserts such a kill in every phase (registration, provisioning, deprovisioning, deletion).
//!
//! METALHOST_KILL_SEED picks the seed (printed on failure) to reproduce a run.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use common::*;
use metalhost_api::{BareMetalHost, OperationalStatus, ProvisioningState};
use metalhost_testlab::Lab;

const HOSTS: usize = 4;
const KILLS_PER_PHASE: usize = 6;

/// Starts `metalhost run` against Ironic at `ironic` (the lab's, or the holding proxy).
fn spawn(dir: &Path, ironic: &str) -> Child {
    metalhost_testlab::process::command(env!("CARGO_BIN_EXE_metalhost").as_ref())
        .args(["run", "--manifests"])
        .arg(dir)
        .args(["--ironic", ironic])
        .env("METALHOST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Writes left before the one to hold, and where to report it.
type Armed = Arc<Mutex<Option<(usize, mpsc::Sender<String>)>>>;
/// The held request, until Ironic answers it.
type Held = Arc<Mutex<Option<(String, mpsc::Sender<String>)>>>;

/// A TCP proxy in front of Ironic. Armed with `n`, it forwards the n-th write request (not a
/// GET) and reports Ironic's answer to it instead of relaying it: the client waits for an answer
/// that never comes.
struct HoldingProxy {
    url: String,
    armed: Armed,
}

impl HoldingProxy {
    fn start(ironic_url: &str) -> HoldingProxy {
        let upstream = ironic_url.trim_start_matches("http://").trim_end_matches('/').to_string();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let armed: Armed = Arc::default();
        let shared = armed.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(&upstream) else { continue };
                let armed = shared.clone();
                std::thread::spawn(move || relay(client, server, armed));
            }
        });
        HoldingProxy { url, armed }
    }

    /// Holds the answer to the n-th write from now on; the request is sent on the channel.
    fn arm(&self, n: usize) -> mpsc::Receiver<String> {
        let (tx, rx) = mpsc::channel();
        *self.armed.lock().unwrap() = Some((n, tx));
        rx
    }

    fn disarm(&self) {
        *self.armed.lock().unwrap() = None;
    }
}

/// One proxied connection: client bytes go to Ironic, Ironic's go back, except the answer to a
/// held request.
fn relay(mut client: TcpStream, server: TcpStream, armed: Armed) {
    let held: Held = Arc::default();
    let (mut from_server, mut to_client) = (server.try_clone().unwrap(), client.try_clone().unwrap());
    let hold = held.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 16384];
        while let Ok(n @ 1..) = from_server.read(&mut buf) {
            if let Some((request, tx)) = hold.lock().unwrap().take() {
                // Ironic answered the held write: report it, relay nothing more
                let _ = tx.send(request);
                return;
            }
            if to_client.write_all(&buf[..n]).is_err() {
                return;
            }
        }
    });
    let mut to_server = server;
    let mut buf = [0u8; 16384];
    while let Ok(n @ 1..) = client.read(&mut buf) {
        let chunk = String::from_utf8_lossy(&buf[..n]).into_owned();
        let is_write = ["PUT ", "POST ", "PATCH ", "DELETE "].iter().any(|m| chunk.starts_with(m));
        if is_write {
            let mut armed = armed.lock().unwrap();
            if let Some((left, _)) = armed.as_mut() {
                *left -= 1;
                if *left == 0 {
                    let (_, tx) = armed.take().unwrap();
                    *held.lock().unwrap() = Some((chunk.clone(), tx));
                }
            }
        }
        if to_server.write_all(&buf[..n]).is_err() {
            return;
        }
    }
}

/// Where one kill landed.
#[derive(Debug)]
struct Kill {
    /// The phase of the test.
    phase: &'static str,
    /// How it was timed: `random` or `answer held`.
    how: &'static str,
    /// The write Ironic carried out and whose answer metalhost never saw (request line and body).
    held: Option<String>,
}

impl Kill {
    /// The phase the kill interrupted: the test's phase, with its first phase split by what the
    /// held write did (enrolling a node and its port, manage, provide: registration).
    fn landed_in(&self) -> &'static str {
        let w = self.held.as_deref().unwrap_or("");
        let registering = w.starts_with("POST /v1/nodes ")
            || w.starts_with("POST /v1/ports ")
            || w.contains("\"manage\"")
            || w.contains("\"provide\"");
        match self.phase {
            "provisioning" if registering => "registration",
            phase => phase,
        }
    }

    /// The request line of the held write.
    fn request(&self) -> &str {
        self.held.as_deref().and_then(|h| h.lines().next()).unwrap_or("")
    }
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

/// Kills `metalhost run` `kills` times: every other time once the proxy holds the answer to its
/// n-th Ironic write (n random, 1 or 2), else at a random moment.
fn kill_repeatedly(
    dir: &Path,
    proxy: &HoldingProxy,
    rng: &mut fastrand::Rng,
    kills: usize,
    phase: &'static str,
    log: &mut Vec<Kill>,
) {
    for k in 0..kills {
        if k % 2 == 0 {
            let held = proxy.arm(rng.usize(1..=2));
            let running = Running(spawn(dir, &proxy.url));
            let held = held.recv_timeout(Duration::from_secs(20)).ok();
            drop(running); // SIGKILL
            proxy.disarm();
            log.push(Kill { phase, how: "answer held", held });
        } else {
            let running = Running(spawn(dir, &proxy.url));
            let mut wait = Duration::from_millis(rng.u64(30..1500));
            if phase == "deletion" {
                // a restarted run deletes a host once it has seen its manifest gone this long:
                // random kills should land in the deletion, not in the wait before it
                wait += metalhost::standalone::GONE_FOR;
            }
            std::thread::sleep(wait);
            drop(running); // SIGKILL
            log.push(Kill { phase, how: "random", held: None });
        }
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
    let _running = Running(spawn(dir, &lab.info.ironic_url));
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
        assert_eq!(node.provision_state.as_str(), provision_state, "seed {seed}: {name}");
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
    let root = tempfile::tempdir().unwrap();
    let d = &root.path().join("manifests");
    std::fs::create_dir(d).unwrap();
    let mut kills = Vec::new();
    let proxy = HoldingProxy::start(&lab.info.ironic_url);

    // registration and provisioning
    manifests(d, &lab, true);
    kill_repeatedly(d, &proxy, &mut rng, KILLS_PER_PHASE, "provisioning", &mut kills);
    converge(d, &lab, "provisioning", seed, |h| in_state(h, ProvisioningState::Provisioned));
    check_ironic(&lab, d, seed, "active").await;

    // deprovisioning
    manifests(d, &lab, false);
    kill_repeatedly(d, &proxy, &mut rng, KILLS_PER_PHASE, "deprovisioning", &mut kills);
    converge(d, &lab, "deprovisioning", seed, |h| in_state(h, ProvisioningState::Available));
    check_ironic(&lab, d, seed, "available").await;

    // provisioning again, then deletion
    manifests(d, &lab, true);
    kill_repeatedly(d, &proxy, &mut rng, KILLS_PER_PHASE / 2, "provisioning", &mut kills);
    converge(d, &lab, "provisioning again", seed, |h| in_state(h, ProvisioningState::Provisioned));
    check_ironic(&lab, d, seed, "active").await;
    std::fs::remove_file(d.join("hosts.yaml")).unwrap();
    kill_repeatedly(d, &proxy, &mut rng, KILLS_PER_PHASE, "deletion", &mut kills);
    converge(d, &lab, "deletion", seed, |h| h.is_empty());
    let left = ironic(&lab).await.list_nodes().await.unwrap();
    assert!(left.is_empty(), "seed {seed}: nodes left after deletion: {left:#?}");

    assert!(kills.len() >= 20, "only {} kill points", kills.len());
    for kill in &kills {
        eprintln!("seed {seed}: {} kill in {}: {}", kill.how, kill.landed_in(), kill.request());
    }
    // the kills interrupted what they were meant to: a write Ironic carried out that metalhost
    // never saw answered, in every phase
    for phase in ["registration", "provisioning", "deprovisioning", "deletion"] {
        let landed: Vec<_> = kills.iter().filter(|k| k.held.is_some() && k.landed_in() == phase).collect();
        assert!(
            !landed.is_empty(),
            "seed {seed}: no kill with an unseen Ironic answer in {phase}: {kills:#?}"
        );
    }
}
