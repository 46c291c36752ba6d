//! Acceptance (issue: machines that really boot — the agent-inspection path): a host inspected by
//! the agent (`inspectionMode: agent`) waits in Ironic's `inspect wait`; the inventory the agent
//! would post (`POST /v1/continue_inspection`, looked up by the boot MAC) is posted here, as
//! no ramdisk runs on the fake BMC; metalhost then reads `GET …/inventory` and fills
//! `status.hardware` with upstream's mapping, and the host goes on to `available`.

mod common;

use std::time::{Duration, Instant};

use common::*;
use metalhost::standalone::{Runtime, Source};
use metalhost_api::ProvisioningState;
use metalhost_testlab::Lab;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inventory_posted_by_the_agent_fills_status_hardware() {
    let lab = Lab::start(1);
    let dir = tempfile::tempdir().unwrap();
    let mac = lab.info.systems[0].mac.clone();
    let manifest = host(
        "h1",
        &lab.bmc_address("redfish-virtualmedia", 0),
        "bmc",
        "null",
        &format!("  bootMACAddress: \"{mac}\"\n"),
    )
    .replace("inspectionMode: disabled", "inspectionMode: agent");
    write(dir.path(), "hosts.yaml", &[secret("bmc"), manifest.clone()]);
    let mut rt = Runtime::new(agent_config(&lab), Source::Dir(dir.path().to_path_buf()));
    let ironic = ironic(&lab).await;

    wait_for_node_state(&mut rt, &ironic, "inspect wait").await;
    assert_eq!(status(&rt, "h1").provisioning.state, ProvisioningState::Inspecting);
    let node = node(&ironic, "h1").await;
    assert_eq!(node.driver_info.get("deploy_iso"), Some(&json!(lab.info.iso_url)));

    // what ironic-python-agent would post
    let inventory = json!({
        "inventory": {
            "interfaces": [{"name": "eth0", "mac_address": mac, "ipv4_address": "192.0.2.10",
                            "speed_mbps": 1000, "vendor": "0x1af4", "product": "0x0001",
                            "pci_address": "0000:00:03.0"}],
            "cpu": {"count": 2, "architecture": "x86_64", "model_name": "QEMU Virtual CPU version 2.5+",
                    "frequency": "2399.998", "flags": ["sse2", "fpu"]},
            "memory": {"physical_mb": 2048, "total": 2147483648u64},
            "disks": [{"name": "/dev/vda", "size": 10737418240u64, "rotational": true, "vendor": "0x1af4",
                       "by_path": "/dev/disk/by-path/pci-0000:00:04.0"}],
            "system_vendor": {"manufacturer": "QEMU", "product_name": "Standard PC (i440FX + PIIX, 1996)",
                              "serial_number": "S-0001",
                              "firmware": {"vendor": "SeaBIOS", "version": "1.16.2", "build_date": "04/01/2014"}},
            "boot": {"current_boot_mode": "bios", "pxe_interface": mac},
            "hostname": "h1-agent"
        },
        "boot_interface": mac,
        "all_interfaces": {"eth0": {"pxe_enabled": true}}
    });
    post_inventory(&lab, &inventory).await;

    settle(&mut rt, Duration::from_secs(120)).await;
    let st = status(&rt, "h1");
    assert_eq!(st.provisioning.state, ProvisioningState::Available, "{st:#?}");
    let hardware = serde_json::to_value(st.hardware.as_ref().expect("status.hardware")).unwrap();
    let want = json!({
        "systemVendor": {"manufacturer": "QEMU", "productName": "Standard PC (i440FX + PIIX, 1996)",
                         "serialNumber": "S-0001"},
        "firmware": {"bios": {"date": "04/01/2014", "vendor": "SeaBIOS", "version": "1.16.2"}},
        "ramMebibytes": 2048,
        "nics": [{"name": "eth0", "model": "0x1af4 0x0001", "mac": mac, "ip": "192.0.2.10", "speedGbps": 1,
                  "pxe": true, "pciAddress": "0000:00:03.0"}],
        "storage": [{"name": "/dev/disk/by-path/pci-0000:00:04.0",
                     "alternateNames": ["/dev/vda", "/dev/disk/by-path/pci-0000:00:04.0"], "rotational": true,
                     "type": "HDD", "sizeBytes": 10737418240u64, "vendor": "0x1af4"}],
        "cpu": {"arch": "x86_64", "model": "QEMU Virtual CPU version 2.5+", "clockMegahertz": 2400.0,
                "flags": ["fpu", "sse2"], "count": 2},
        "hostname": "h1-agent"
    });
    assert_eq!(hardware, want);
    assert_eq!(st.hardware_profile.as_deref(), Some("unknown"));
    assert!(st.operation_history.inspect.end.is_some());
    // the status file a user reads has it too
    let saved = status_file(dir.path(), "h1").expect("status file");
    assert_eq!(saved.status.and_then(|s| s.hardware.and_then(|h| h.ram_mebibytes)), Some(2048));

    // upstream's re-inspection request: the available host inspects again and takes the new
    // inventory; the request is taken once (the manifest is the user's and keeps it), also
    // across a restart
    let requested = manifest
        .replace("metadata: {name: h1}", "metadata: {name: h1, annotations: {inspect.metal3.io: \"\"}}");
    assert_ne!(requested, manifest);
    write(dir.path(), "hosts.yaml", &[secret("bmc"), requested.clone()]);
    wait_for_node_state(&mut rt, &ironic, "inspect wait").await;
    assert_eq!(status(&rt, "h1").provisioning.state, ProvisioningState::Inspecting);
    let mut again = inventory.clone();
    again["inventory"]["memory"]["physical_mb"] = json!(4096);
    again["inventory"]["hostname"] = json!("h1-again");
    post_inventory(&lab, &again).await;
    settle(&mut rt, Duration::from_secs(120)).await;
    let st = status(&rt, "h1");
    assert_eq!(st.provisioning.state, ProvisioningState::Available, "{st:#?}");
    let hardware = st.hardware.as_ref().expect("status.hardware");
    assert_eq!((hardware.ram_mebibytes, hardware.hostname.as_deref()), (Some(4096), Some("h1-again")));
    let saved = status_file(dir.path(), "h1").expect("status file");
    assert_eq!(
        saved.annotations().get("metalhost.io/reinspection-taken").map(String::as_str),
        Some("true"),
        "the status file says the request was taken"
    );
    rt.run_until(Duration::from_secs(5), |c| eprintln!("{c:?}"), |_| false).await;
    drop(rt);
    let mut restarted = Runtime::new(agent_config(&lab), Source::Dir(dir.path().to_path_buf()));
    restarted.run_until(Duration::from_secs(5), |c| eprintln!("{c:?}"), |_| false).await;
    assert_eq!(
        common::node(&ironic, "h1").await.provision_state.as_str(),
        "manageable",
        "inspected once only"
    );
    assert_eq!(status(&restarted, "h1").provisioning.state, ProvisioningState::Available);

    // taken away and made again, with a restart between: the host inspects again
    write(dir.path(), "hosts.yaml", &[secret("bmc"), manifest]);
    restarted.run_until(Duration::from_secs(3), |c| eprintln!("{c:?}"), |_| false).await;
    drop(restarted);
    write(dir.path(), "hosts.yaml", &[secret("bmc"), requested]);
    let mut rt = Runtime::new(agent_config(&lab), Source::Dir(dir.path().to_path_buf()));
    wait_for_node_state(&mut rt, &ironic, "inspect wait").await;
}

/// The lab's configuration with the agent booted from an ISO on virtual media (any ISO: nothing
/// boots on the fake BMC).
fn agent_config(lab: &Lab) -> metalhost::standalone::RuntimeConfig {
    let mut config = config(lab);
    config.defaults.deploy_iso = Some(lab.info.iso_url.clone());
    config
}

/// Runs the runtime until the host's node is in `state` (two minutes at most).
async fn wait_for_node_state(rt: &mut Runtime, ironic: &metalhost_ironic::Client, state: &str) {
    let started = Instant::now();
    let mut now = String::new();
    while now != state && started.elapsed() < Duration::from_secs(120) {
        rt.run_until(Duration::from_millis(500), |c| eprintln!("{c:?}"), |_| false).await;
        now = node(ironic, "h1").await.provision_state.as_str().to_string();
    }
    assert_eq!(now, state, "{:#?}", status(rt, "h1"));
}

/// Posts an inventory as ironic-python-agent does.
async fn post_inventory(lab: &Lab, inventory: &serde_json::Value) {
    let answer = reqwest::Client::new()
        .post(format!("{}/v1/continue_inspection", lab.info.ironic_url))
        .header("X-OpenStack-Ironic-API-Version", "1.84")
        .json(inventory)
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success(), "{:?}", answer.text().await);
}

/// A host whose inspection fails (out-of-band inspection on the fake BMC: "The attribute
/// Processors is missing") keeps retrying with back-off; setting `inspectionMode: disabled`
/// brings it out of `inspecting` to `available`, without the error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_inspection_is_left_when_inspection_is_disabled() {
    let lab = Lab::start(1);
    let dir = tempfile::tempdir().unwrap();
    let manifest = |mode: &str| {
        let host = host("h1", &lab.bmc_address("redfish-virtualmedia", 0), "bmc", "null", "");
        vec![secret("bmc"), host.replace("inspectionMode: disabled", &format!("inspectionMode: {mode}"))]
    };
    write(dir.path(), "hosts.yaml", &manifest("fast"));
    let mut rt = runtime(&lab, dir.path());
    let failed = rt
        .run_until(
            Duration::from_secs(120),
            |c| eprintln!("{c:?}"),
            |rt| {
                rt.status("default/h1")
                    .is_some_and(|s| s.error_type == Some(metalhost_api::ErrorType::Inspection))
            },
        )
        .await;
    let st = status(&rt, "h1").clone();
    assert!(failed, "no inspection error: {st:#?}");
    assert_eq!(st.provisioning.state, ProvisioningState::Inspecting);
    assert!(st.error_message.contains("Processors"), "{}", st.error_message);

    write(dir.path(), "hosts.yaml", &manifest("disabled"));
    let disabled = Instant::now();
    settle(&mut rt, Duration::from_secs(60)).await;
    eprintln!("available {:.1} s after inspection was disabled", disabled.elapsed().as_secs_f64());
    let st = status(&rt, "h1");
    assert_eq!(st.provisioning.state, ProvisioningState::Available, "{st:#?}");
    assert_eq!((st.error_type, st.error_message.as_str()), (None, ""));
    let ironic = ironic(&lab).await;
    // out of `inspect failed` (metalhost provides the node when it deploys)
    assert_eq!(node(&ironic, "h1").await.provision_state.as_str(), "manageable");
}
