//! Acceptance (issue: what a user fixes in place takes effect): a host whose registration failed
//! in Ironic (a wrong Redfish system ID: Ironic cannot verify the node) is fixed by correcting its
//! manifest, without deleting it. The node is verified again at once and the host goes on to
//! `provisioned`, with no stale error. Before the fix metalhost only PATCHed the node again and
//! again and never asked Ironic to verify it, so the node stayed in `enroll` for ever.

mod common;

use std::time::{Duration, Instant};

use common::*;
use metalhost_api::{ErrorType, OperationalStatus, ProvisioningState};
use metalhost_testlab::Lab;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_system_id_fixed_in_the_manifest_registers_at_once() {
    let lab = Lab::start(1);
    let dir = tempfile::tempdir().unwrap();
    let good = lab.bmc_address("redfish-virtualmedia", 0);
    let wrong = good.replace(&lab.info.systems[0].uuid, "no-such-system");
    let manifest = |bmc: &str| vec![secret("bmc"), host("h1", bmc, "bmc", &live_iso(&lab.info.iso_url), "")];
    write(dir.path(), "hosts.yaml", &manifest(&wrong));
    let mut rt = runtime(&lab, dir.path());

    // Ironic cannot verify the node: a registration error with Ironic's reason
    let failed = rt
        .run_until(
            Duration::from_secs(120),
            |c| eprintln!("{c:?}"),
            |rt| rt.status("default/h1").is_some_and(|s| s.error_type == Some(ErrorType::Registration)),
        )
        .await;
    let before = status(&rt, "h1").clone();
    assert!(failed, "no registration error: {before:#?}");
    assert_eq!(before.provisioning.state, ProvisioningState::Registering);
    assert!(before.error_message.starts_with("Failed to manage the node: "), "{}", before.error_message);
    let ironic = ironic(&lab).await;
    assert_eq!(node(&ironic, "h1").await.provision_state.as_str(), "enroll");

    // the user corrects the address: registration runs again at once, not after the back-off
    write(dir.path(), "hosts.yaml", &manifest(&good));
    let fixed = Instant::now();
    let registered = rt
        .run_until(
            Duration::from_secs(30),
            |c| eprintln!("{c:?}"),
            |rt| {
                rt.status("default/h1").is_some_and(|s| {
                    s.provisioning.state != ProvisioningState::Registering && s.error_type.is_none()
                })
            },
        )
        .await;
    let after = status(&rt, "h1").clone();
    assert!(registered, "not registered within 30 s of the fix: {after:#?}");
    eprintln!("registered {:.1} s after the fix", fixed.elapsed().as_secs_f64());
    settle(&mut rt, Duration::from_secs(240)).await;
    let done = status(&rt, "h1");
    assert_eq!(done.provisioning.state, ProvisioningState::Provisioned);
    assert_eq!((done.operational_status, done.error_message.as_str()), (OperationalStatus::Ok, ""));
    let node = node(&ironic, "h1").await;
    assert_eq!(node.provision_state.as_str(), "active");
    assert!(
        node.driver_info["redfish_system_id"]
            .as_str()
            .is_some_and(|id| id.ends_with(&lab.info.systems[0].uuid)),
        "{:?}",
        node.driver_info
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_fixed_in_its_secret_registers_at_once() {
    let lab = Lab::start_with_bmc_auth(1);
    let dir = tempfile::tempdir().unwrap();
    let bmc = lab.bmc_address("redfish-virtualmedia", 0);
    let good = format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: bmc}}\nstringData: {{username: admin, password: {}}}\n",
        lab.info.bmc_password.as_deref().expect("the lab's BMC password")
    );
    let host = host("h1", &bmc, "bmc", &live_iso(&lab.info.iso_url), "");
    // the BMC refuses the password (secret() has another one)
    write(dir.path(), "hosts.yaml", &[secret("bmc"), host.clone()]);
    let mut rt = runtime(&lab, dir.path());
    let failed = rt
        .run_until(
            Duration::from_secs(120),
            |c| eprintln!("{c:?}"),
            |rt| rt.status("default/h1").is_some_and(|s| s.error_type == Some(ErrorType::Registration)),
        )
        .await;
    let before = status(&rt, "h1").clone();
    assert!(failed, "no registration error: {before:#?}");
    assert!(before.error_message.starts_with("Failed to manage the node: "), "{}", before.error_message);
    assert!(!before.error_message.contains(PASSWORD), "{}", before.error_message);

    // the Secret is corrected (the host's manifest is untouched): registered at once
    write(dir.path(), "hosts.yaml", &[good, host]);
    let fixed = Instant::now();
    let registered = rt
        .run_until(
            Duration::from_secs(30),
            |c| eprintln!("{c:?}"),
            |rt| {
                rt.status("default/h1").is_some_and(|s| {
                    s.provisioning.state != ProvisioningState::Registering && s.error_type.is_none()
                })
            },
        )
        .await;
    assert!(registered, "not registered within 30 s of the fix: {:#?}", status(&rt, "h1"));
    eprintln!("registered {:.1} s after the fix", fixed.elapsed().as_secs_f64());
    settle(&mut rt, Duration::from_secs(240)).await;
    let done = status(&rt, "h1");
    assert_eq!(done.provisioning.state, ProvisioningState::Provisioned);
    assert_eq!((done.operational_status, done.error_message.as_str()), (OperationalStatus::Ok, ""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_bmc_address_reaches_an_available_hosts_node_at_once() {
    let lab = Lab::start(2);
    let dir = tempfile::tempdir().unwrap();
    let manifest = |i: usize| {
        vec![secret("bmc"), host("h1", &lab.bmc_address("redfish-virtualmedia", i), "bmc", "null", "")]
    };
    write(dir.path(), "hosts.yaml", &manifest(0));
    let mut rt = runtime(&lab, dir.path());
    settle(&mut rt, Duration::from_secs(120)).await;
    assert_eq!(status(&rt, "h1").provisioning.state, ProvisioningState::Available);
    let ironic = ironic(&lab).await;
    let system_id = |node: &metalhost_ironic::Node| {
        node.driver_info["redfish_system_id"].as_str().unwrap_or_default().to_string()
    };
    assert!(system_id(&node(&ironic, "h1").await).ends_with(&lab.info.systems[0].uuid));

    // the host moves to another BMC (a replaced board, a corrected address) while it waits
    write(dir.path(), "hosts.yaml", &manifest(1));
    let moved = Instant::now();
    let mut now_at = String::new();
    while !now_at.ends_with(&lab.info.systems[1].uuid) && moved.elapsed() < Duration::from_secs(30) {
        rt.run_until(Duration::from_secs(1), |c| eprintln!("{c:?}"), |_| false).await;
        now_at = system_id(&node(&ironic, "h1").await);
    }
    assert!(
        now_at.ends_with(&lab.info.systems[1].uuid),
        "not in driver_info 30 s after the change: {now_at}"
    );
    eprintln!("in driver_info {:.1} s after the change", moved.elapsed().as_secs_f64());
    let st = status(&rt, "h1");
    assert_eq!((st.provisioning.state, st.error_message.as_str()), (ProvisioningState::Available, ""));
    // once it is there, nothing more is sent
    settle(&mut rt, Duration::from_secs(60)).await;
    let requests = rt.ironic_requests();
    rt.run_until(Duration::from_secs(5), |c| eprintln!("{c:?}"), |_| false).await;
    assert_eq!(rt.ironic_requests(), requests, "Ironic requests while nothing changed");
}

/// A BMC whose port refuses connections is told within 30 s, as a progress line and in the
/// status (the `BMCReachable` condition), while Ironic still retries: its own error comes only
/// after minutes (sushy's 10 × 3 s per connection, Ironic's 5 attempts).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bmc_port_refusing_connections_is_told_within_30_s() {
    let lab = Lab::start(1);
    let dir = tempfile::tempdir().unwrap();
    // bound, never listening: refuses connections, and no other test can take it meanwhile
    let dead = DeadPort::new();
    let port = dead.url().rsplit(':').next().unwrap().to_string();
    let bmc = format!("redfish-virtualmedia+{}/redfish/v1/Systems/1", dead.url());
    write(
        dir.path(),
        "hosts.yaml",
        &[secret("bmc"), host("h1", &bmc, "bmc", &live_iso(&lab.info.iso_url), "")],
    );
    let mut rt = runtime(&lab, dir.path());
    let started = Instant::now();
    let mut lines = Vec::new();
    let told = rt
        .run_until(
            Duration::from_secs(30),
            |c| lines.push(metalhost::progress::Progress::line(c)),
            |rt| {
                rt.status("default/h1").is_some_and(|s| {
                    s.conditions.iter().any(|c| c.type_ == "BMCReachable" && c.status == "False")
                })
            },
        )
        .await;
    let st = status(&rt, "h1").clone();
    assert!(told, "not told within 30 s: {st:#?} {lines:#?}");
    eprintln!("told {:.1} s after the start", started.elapsed().as_secs_f64());
    assert_eq!(
        (st.provisioning.state, st.operational_status),
        (ProvisioningState::Registering, OperationalStatus::Ok)
    );
    let said = format!(
        "default/h1: registering — the BMC at 127.0.0.1:{port} refuses connections; Ironic is still trying to verify it"
    );
    assert!(lines.contains(&said), "{lines:#?}");
}
