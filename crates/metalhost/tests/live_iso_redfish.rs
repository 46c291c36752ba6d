//! Acceptance: two live-ISO hosts on a Redfish virtual-media BMC (sushy-tools) boot the ISO through
//! the real Ironic, then `image: null` deprovisions them: media ejected, and the available hosts'
//! power follows spec.online (one off, one on), as upstream.

mod common;

use std::time::Duration;

use common::*;
use metalhost_api::{OperationalStatus, ProvisioningState};
use metalhost_testlab::Lab;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_iso_boots_on_redfish_virtual_media_then_deprovisions() {
    let lab = Lab::start(2);
    let dir = tempfile::tempdir().unwrap();
    let hosts = |image: &str| {
        let mut docs = vec![secret("bmc")];
        for i in 0..2 {
            docs.push(host(
                &format!("live-{i}"),
                &lab.bmc_address("redfish-virtualmedia", i),
                "bmc",
                image,
                "",
            ));
        }
        docs
    };
    write(dir.path(), "hosts.yaml", &hosts(&live_iso(&lab.info.iso_url)));
    let mut rt = runtime(&lab, dir.path());
    settle(&mut rt, Duration::from_secs(240)).await;

    let ironic = ironic(&lab).await;
    for i in 0..2 {
        let name = format!("live-{i}");
        let st = status(&rt, &name);
        assert_eq!(st.provisioning.state, ProvisioningState::Provisioned);
        assert_eq!(st.operational_status, OperationalStatus::Ok);
        assert!(st.powered_on);
        let node = node(&ironic, &name).await;
        assert_eq!(st.provisioning.id, node.uuid);
        assert_eq!(node.provision_state.as_str(), "active");
        assert_eq!(node.deploy_interface.as_deref(), Some("ramdisk"));
        assert_eq!(node.boot_interface.as_deref(), Some("redfish-virtual-media"));
        assert_eq!(node.instance_str("boot_iso"), Some(lab.info.iso_url.as_str()));
        assert_eq!(node.instance_str("image_source"), None);
        assert_eq!(node.power_state.as_deref(), Some("power on"));
        assert_eq!(node.automated_clean, Some(false));

        let (system, cd) =
            bmc_until(&lab, i, |s, cd| s["PowerState"] == "On" && cd["Inserted"] == json!(true)).await;
        assert_eq!(system["PowerState"], "On");
        assert_eq!(system["Boot"]["BootSourceOverrideTarget"], "Cd");
        assert_eq!(cd["Inserted"], json!(true), "{cd}");
        assert!(cd["Image"].as_str().unwrap().ends_with(".iso"), "{cd}");
        // the status file beside the manifest says the same
        let file = status_file(dir.path(), &name).unwrap();
        assert_eq!(file.status.unwrap().provisioning.state, ProvisioningState::Provisioned);
    }

    // live-0 is to be off once available, live-1 on
    let mut docs = hosts("null");
    docs[1] = docs[1].replace("online: true", "online: false");
    write(dir.path(), "hosts.yaml", &docs);
    settle(&mut rt, Duration::from_secs(240)).await;
    for (i, power) in [(0, "power off"), (1, "power on")] {
        let name = format!("live-{i}");
        let st = status(&rt, &name);
        assert_eq!(st.provisioning.state, ProvisioningState::Available);
        assert!(st.provisioning.image.is_none());
        assert!(st.operation_history.deprovision.end.is_some());
        assert_eq!(st.powered_on, power == "power on");
        let node = node(&ironic, &name).await;
        assert_eq!(node.provision_state.as_str(), "available");
        assert_eq!(node.power_state.as_deref(), Some(power));
        let bmc_power = if power == "power on" { "On" } else { "Off" };
        let (system, cd) =
            bmc_until(&lab, i, |s, cd| s["PowerState"] == bmc_power && cd["Inserted"] == json!(false)).await;
        assert_eq!(system["PowerState"], bmc_power);
        assert_eq!(cd["Inserted"], json!(false), "media ejected: {cd}");
    }
}
