//! BMO's `PROVISIONING_LIMIT` against the real Ironic: two PXE-booted Redfish hosts (iPXE boot,
//! `direct` deploy, a disk image) with a limit of one. Nothing answers the PXE boot on the lab's
//! emulated servers, so a deploy waits in `wait call-back` and holds its slot: the other host
//! must wait, delayed, with its node not deploying. Deleting the first host undeploys it at once
//! (Ironic takes `deleted` in `wait call-back`, as upstream's Deprovision sends it, instead of
//! waiting for Ironic's call-back timeout), which frees the slot for the second.

mod common;

use std::time::Duration;

use common::*;
use metalhost::standalone::{Runtime, Source};
use metalhost_api::{OperationalStatus, ProvisioningState};
use metalhost_testlab::Lab;

const WAIT_CALL_BACK: &str = "wait call-back";

fn pxe_host(lab: &Lab, i: usize) -> String {
    let image =
        format!("{{url: \"{}\", format: qcow2, checksum: {SHA256}, checksumType: sha256}}", lab.info.iso_url);
    let mac = &lab.info.systems[i].mac;
    host(
        &format!("pxe-{i}"),
        &lab.bmc_address("redfish", i),
        "c",
        &image,
        &format!("  bootMACAddress: \"{mac}\"\n"),
    )
}

/// The provision state of each node, by name.
async fn node_states(ironic: &metalhost_ironic::Client) -> Vec<(String, String)> {
    let mut states: Vec<_> = ironic
        .list_nodes()
        .await
        .unwrap()
        .into_iter()
        .map(|n| (n.name.unwrap_or_default(), n.provision_state.to_string()))
        .collect();
    states.sort();
    states
}

fn state_of(rt: &Runtime, name: &str) -> (ProvisioningState, OperationalStatus) {
    let s = status(rt, name);
    (s.provisioning.state, s.operational_status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limit_of_one_deploys_one_pxe_host_at_a_time_and_a_deletion_frees_the_slot() {
    let lab = Lab::start(2);
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "hosts.yaml", &[secret("c"), pxe_host(&lab, 0), pxe_host(&lab, 1)]);
    let ironic = ironic(&lab).await;
    let mut config = config(&lab);
    config.provisioning_limit = Some(1);
    let mut rt = Runtime::new(config, Source::Dir(dir.path().to_path_buf()));

    // one host deploys (its node waits for the agent), the other is delayed
    let one_deploying = |rt: &Runtime| {
        let states: Vec<_> = ["pxe-0", "pxe-1"]
            .iter()
            .filter_map(|n| {
                rt.status(&format!("default/{n}")).map(|s| (s.provisioning.state, s.operational_status))
            })
            .collect();
        states
            .iter()
            .filter(|s| s.0 == ProvisioningState::Provisioning && s.1 == OperationalStatus::Ok)
            .count()
            == 1
            && states.iter().filter(|s| s.1 == OperationalStatus::Delayed).count() == 1
    };
    let ok = rt.run_until(Duration::from_secs(180), |c| eprintln!("{c:?}"), one_deploying).await;
    assert!(ok, "{:#?}", rt.statuses().collect::<Vec<_>>());
    let (busy, waiting) = if state_of(&rt, "pxe-0").1 == OperationalStatus::Ok {
        ("pxe-0", "pxe-1")
    } else {
        ("pxe-1", "pxe-0")
    };
    // the deploy reaches wait call-back and holds the slot; the other stays delayed meanwhile
    let nodes = run_until_node_in(&mut rt, &ironic, busy, WAIT_CALL_BACK).await;
    rt.run_until(Duration::from_secs(3), |_| {}, |_| false).await;
    let nodes_later = node_states(&ironic).await;
    for nodes in [&nodes, &nodes_later] {
        let deploying: Vec<_> =
            nodes.iter().filter(|(_, s)| ["deploying", WAIT_CALL_BACK].contains(&s.as_str())).collect();
        assert_eq!(deploying.len(), 1, "one node deploys at a time: {nodes:?}");
    }
    // it waits delayed where BMO's waits, available (registered and prepared, not still
    // registering); or provisioning, when both hosts had their nodes provided before either
    // deployed (a provided node is idle: it holds no slot)
    let (state, operational) = state_of(&rt, waiting);
    assert_eq!(operational, OperationalStatus::Delayed, "{nodes_later:?}");
    assert!(matches!(state, ProvisioningState::Available | ProvisioningState::Provisioning), "{state:?}");

    // the limit tells PXE nodes from virtual-media ones by the boot interface the list returns
    let listed = ironic.list_nodes().await.unwrap();
    assert!(listed.iter().all(|n| n.boot_interface.as_deref() == Some("ipxe")), "{listed:?}");

    // the busy host's manifest goes: it is undeployed from wait call-back and deleted, and the
    // other host takes the slot
    let other = if busy == "pxe-0" { 1 } else { 0 };
    write(dir.path(), "hosts.yaml", &[secret("c"), pxe_host(&lab, other)]);
    let gone = rt
        .run_until(
            Duration::from_secs(120),
            |c| eprintln!("{c:?}"),
            |rt| rt.status(&format!("default/{busy}")).is_none(),
        )
        .await;
    assert!(gone, "{busy} deleted while its node waited for the agent: {:?}", node_states(&ironic).await);
    let nodes = run_until_node_in(&mut rt, &ironic, waiting, WAIT_CALL_BACK).await;
    assert!(
        !nodes.iter().any(|(n, _)| *n == format!("default~{busy}")),
        "the deleted host's node is gone: {nodes:?}"
    );
    assert!(rt.status(&format!("default/{busy}")).is_none());
    assert_eq!(state_of(&rt, waiting), (ProvisioningState::Provisioning, OperationalStatus::Ok));
}

/// Runs the runtime until host `name`'s node is in `state` (panics after a generous while);
/// returns every node's state then.
async fn run_until_node_in(
    rt: &mut Runtime,
    ironic: &metalhost_ironic::Client,
    name: &str,
    state: &str,
) -> Vec<(String, String)> {
    let node = format!("default~{name}");
    for _ in 0..120 {
        let nodes = node_states(ironic).await;
        if nodes.iter().any(|(n, s)| *n == node && s == state) {
            return nodes;
        }
        rt.run_until(Duration::from_secs(1), |c| eprintln!("{c:?}"), |_| false).await;
    }
    panic!(
        "{node} never reached {state}: {:?}, {:#?}",
        node_states(ironic).await,
        rt.statuses().collect::<Vec<_>>()
    );
}
