//! Extensions: per-host boot-device persistence and the BMC fetching the ISO itself, on the real
//! Ironic and the Redfish virtual-media BMC emulator.

mod common;

use std::time::Duration;

use common::*;
use metalhost_testlab::Lab;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boot_persistence_and_direct_iso_download_reach_ironic_and_the_bmc() {
    let lab = Lab::start(2);
    let dir = tempfile::tempdir().unwrap();
    let annotated = |name: &str, i: usize, annotations: &str| {
        host(name, &lab.bmc_address("redfish-virtualmedia", i), "c", &live_iso(&lab.info.iso_url), "")
            .replace(
                &format!("metadata: {{name: {name}}}"),
                &format!("metadata: {{name: {name}, annotations: {{{annotations}}}}}"),
            )
    };
    let always_and_http =
        "metalhost.io/boot-device-persistence: Always, metalhost.io/iso-download-source: http";
    let manifests = |installer: &str| {
        [secret("c"), annotated("appliance", 0, always_and_http), annotated("installer", 1, installer)]
    };
    write(dir.path(), "hosts.yaml", &manifests("metalhost.io/boot-device-persistence: Never"));
    let mut rt = runtime(&lab, dir.path());
    settle(&mut rt, Duration::from_secs(240)).await;
    let ironic = ironic(&lab).await;

    let appliance = node(&ironic, "appliance").await;
    assert_eq!(appliance.driver_info["force_persistent_boot_device"], json!("Always"));
    let pending = |rt: &metalhost::standalone::Runtime, name: &str| {
        status(rt, name)
            .conditions
            .iter()
            .find(|c| c.type_ == "PendingUntilNextDeploy")
            .map(|c| c.message.clone())
    };
    assert_eq!((pending(&rt, "appliance"), pending(&rt, "installer")), (None, None), "deployed as asked");
    assert_eq!(appliance.instance_str("ramdisk_image_download_source"), Some("http"));
    // sushy-tools 2.2.0 always reports BootSourceOverrideEnabled=Continuous whatever it is told,
    // so persistence is checked where Ironic reads it (driver_info), not on the emulated BMC
    let (system, cd) =
        bmc_until(&lab, 0, |s, cd| s["PowerState"] == "On" && cd["Inserted"] == json!(true)).await;
    assert_eq!(cd["Image"], json!(lab.info.iso_url), "the BMC mounts the ISO from its own URL");
    assert_eq!(system["Boot"]["BootSourceOverrideTarget"], "Cd");

    let installer = node(&ironic, "installer").await;
    assert_eq!(installer.driver_info["force_persistent_boot_device"], json!("Never"));
    assert_eq!(installer.instance_str("ramdisk_image_download_source"), None);
    let (system, cd) =
        bmc_until(&lab, 1, |s, cd| s["PowerState"] == "On" && cd["Inserted"] == json!(true)).await;
    assert_ne!(cd["Image"], json!(lab.info.iso_url), "staged by the conductor: {cd}");
    assert!(cd["Image"].as_str().unwrap().starts_with(&lab.info.httpboot_url), "{cd}");
    assert_eq!(system["Boot"]["BootSourceOverrideTarget"], "Cd");

    // persistence changed on the running host reaches Ironic at once, with no redeploy
    let deployed = status(&rt, "installer").operation_history.provision.clone();
    write(dir.path(), "hosts.yaml", &manifests(always_and_http));
    let changed = std::time::Instant::now();
    let mut persistence = json!("Never");
    while persistence != json!("Always") && changed.elapsed() < Duration::from_secs(30) {
        rt.run_until(Duration::from_secs(1), |c| eprintln!("{c:?}"), |_| false).await;
        persistence = node(&ironic, "installer").await.driver_info["force_persistent_boot_device"].clone();
    }
    assert_eq!(persistence, json!("Always"), "not in driver_info 30 s after the change");
    eprintln!("in driver_info {:.1} s after the change", changed.elapsed().as_secs_f64());
    let installer = node(&ironic, "installer").await;
    assert_eq!(installer.provision_state.as_str(), "active");
    assert_eq!(status(&rt, "installer").provisioning.state, metalhost_api::ProvisioningState::Provisioned);
    assert_eq!(status(&rt, "installer").operation_history.provision, deployed, "not deployed again");
    // the BMC fetching the ISO itself waits for the next deploy, and says so
    let message = pending(&rt, "installer").unwrap_or_default();
    assert!(
        message.starts_with("metalhost.io/iso-download-source: take effect at the next deploy"),
        "{message}"
    );
    // and once it is there, nothing more is sent
    settle(&mut rt, Duration::from_secs(60)).await;
    let requests = rt.ironic_requests();
    rt.run_until(Duration::from_secs(5), |c| eprintln!("{c:?}"), |_| false).await;
    assert_eq!(rt.ironic_requests(), requests, "Ironic requests while nothing changed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eject_media_on_request_while_the_host_stays_provisioned() {
    use metalhost_core::vocab::media_ejected;
    let lab = Lab::start(1);
    let dir = tempfile::tempdir().unwrap();
    let manifest = |annotation: &str| {
        let doc =
            host("live", &lab.bmc_address("redfish-virtualmedia", 0), "c", &live_iso(&lab.info.iso_url), "");
        vec![
            secret("c"),
            doc.replace("metadata: {name: live}", &format!("metadata: {{name: live{annotation}}}")),
        ]
    };
    write(dir.path(), "host.yaml", &manifest(""));
    let mut rt = runtime(&lab, dir.path());
    settle(&mut rt, Duration::from_secs(180)).await;
    bmc_until(&lab, 0, |_, cd| cd["Inserted"] == json!(true)).await;

    write(dir.path(), "host.yaml", &manifest(", annotations: {metalhost.io/eject-media: \"true\"}"));
    let ejected = rt
        .run_until(Duration::from_secs(120), |c| eprintln!("{c:?}"), |rt| media_ejected(status(rt, "live")))
        .await;
    assert!(ejected, "{:#?}", status(&rt, "live"));
    let (system, cd) = bmc_until(&lab, 0, |_, cd| cd["Inserted"] == json!(false)).await;
    assert_eq!(cd["Inserted"], json!(false), "{cd}");
    assert_eq!(system["PowerState"], "On", "the host keeps running");
    let st = status(&rt, "live");
    assert_eq!(st.provisioning.state, metalhost_api::ProvisioningState::Provisioned);
    let condition = st.conditions.iter().find(|c| c.type_ == "LiveISOMediaInserted").unwrap();
    assert_eq!((condition.status.as_str(), condition.reason.as_str()), ("False", "Ejected"));
    assert_eq!(node(&ironic(&lab).await, "live").await.provision_state.as_str(), "active");

    write(dir.path(), "host.yaml", &manifest(""));
    let inserted = rt
        .run_until(Duration::from_secs(120), |c| eprintln!("{c:?}"), |rt| !media_ejected(status(rt, "live")))
        .await;
    assert!(inserted, "{:#?}", status(&rt, "live"));
    let (_, cd) = bmc_until(&lab, 0, |_, cd| cd["Inserted"] == json!(true)).await;
    assert_eq!(cd["Inserted"], json!(true), "inserted again: {cd}");
    // the condition says so, and keeps saying so once the BMC is no longer read
    let media = |rt: &metalhost::standalone::Runtime| {
        let c = status(rt, "live").conditions.iter().find(|c| c.type_ == "LiveISOMediaInserted").cloned();
        c.map(|c| (c.status, c.reason))
    };
    let shown = rt
        .run_until(
            Duration::from_secs(60),
            |c| eprintln!("{c:?}"),
            |rt| media(rt).is_some_and(|m| m.0 == "True"),
        )
        .await;
    assert!(shown, "{:?}", media(&rt));
    settle(&mut rt, Duration::from_secs(60)).await;
    rt.run_until(Duration::from_secs(3), |c| eprintln!("{c:?}"), |_| false).await;
    assert_eq!(media(&rt), Some(("True".into(), "Inserted".into())));
    // both are told as events (Kubernetes Events; here the directory's event log)
    let reasons: Vec<String> =
        metalhost::standalone::events::read(dir.path()).into_iter().map(|e| e.reason).collect();
    let (ejected, inserted) = (
        reasons.iter().position(|r| r == "LiveISOEjected"),
        reasons.iter().position(|r| r == "LiveISOInserted"),
    );
    assert!(ejected.is_some() && inserted > ejected, "{reasons:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_data_reaches_a_live_iso_as_a_second_virtual_media_device() {
    let lab = Lab::start(1);
    let dir = tempfile::tempdir().unwrap();
    let doc = host("cd", &lab.bmc_address("redfish-virtualmedia", 0), "c", &live_iso(&lab.info.iso_url), "")
        .replace(
            "metadata: {name: cd}",
            "metadata: {name: cd, annotations: {metalhost.io/live-iso-config-drive: \"true\"}}",
        );
    let doc = format!("{doc}  userData: {{name: cd-user-data}}\n  networkData: {{name: cd-network-data}}\n");
    write(
        dir.path(),
        "host.yaml",
        &[
            secret("c"),
            "apiVersion: v1\nkind: Secret\nmetadata: {name: cd-user-data}\nstringData:\n  userData: |\n    #cloud-config\n    hostname: cd\n".into(),
            "apiVersion: v1\nkind: Secret\nmetadata: {name: cd-network-data}\nstringData:\n  networkData: '{\"links\": [], \"networks\": [], \"services\": []}'\n".into(),
            doc,
        ],
    );
    let mut rt = runtime(&lab, dir.path());
    settle(&mut rt, Duration::from_secs(180)).await;
    let st = status(&rt, "cd");
    assert!(
        st.conditions.iter().all(|c| c.type_ != "LiveISOIgnoredFields"),
        "userData is used: {:?}",
        st.conditions
    );
    let node = node(&ironic(&lab).await, "cd").await;
    assert_eq!(node.provision_state.as_str(), "active");
    assert!(node.instance_info.contains_key("configdrive"), "{:?}", node.instance_info.keys());
    assert!(st.conditions.iter().all(|c| c.type_ != "PendingUntilNextDeploy"), "{:?}", st.conditions);

    let uuid = &lab.info.systems[0].uuid;
    let (_, cd) = bmc_until(&lab, 0, |_, cd| cd["Inserted"] == json!(true)).await;
    assert_eq!(cd["Inserted"], json!(true));
    let usb = redfish(&lab, &format!("/redfish/v1/Systems/{uuid}/VirtualMedia/Floppy")).await;
    assert_eq!(usb["Inserted"], json!(true), "the config drive is the second device: {usb}");
    assert!(usb["MediaTypes"].as_array().unwrap().contains(&json!("USBStick")), "{usb}");
}

#[test]
fn config_drive_is_refused_for_bmcs_that_cannot_attach_it() {
    let host: metalhost_api::BareMetalHost = serde_yaml_ng::from_str(
        "kind: BareMetalHost\nmetadata: {name: h, annotations: {metalhost.io/live-iso-config-drive: \"true\"}}\n\
         spec: {online: true, bootMACAddress: '00:11:22:33:44:55', bmc: {address: 'ipmi://bmc', credentialsName: c},\n\
         image: {url: 'http://h/a.iso', format: live-iso}, userData: {name: ud}}\n",
    )
    .unwrap();
    let violations: Vec<String> =
        metalhost_api::validation::validate_host(&host).iter().map(ToString::to_string).collect();
    assert_eq!(
        violations,
        [
            "metadata.annotations[metalhost.io/live-iso-config-drive]: BMC driver ipmi cannot attach a config drive to a live ISO (it needs Redfish virtual media)"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reprovision_token_boots_new_content_from_the_same_url() {
    let lab = Lab::start(1);
    let dir = tempfile::tempdir().unwrap();
    let manifest = |annotation: &str| {
        let doc =
            host("fresh", &lab.bmc_address("redfish-virtualmedia", 0), "c", &live_iso(&lab.info.iso_url), "");
        vec![
            secret("c"),
            doc.replace("metadata: {name: fresh}", &format!("metadata: {{name: fresh{annotation}}}")),
        ]
    };
    write(dir.path(), "host.yaml", &manifest(""));
    let mut rt = runtime(&lab, dir.path());
    settle(&mut rt, Duration::from_secs(180)).await;
    let uuid = node(&ironic(&lab).await, "fresh").await.uuid;
    // what the conductor staged for the BMC
    let staged = lab.info.dir.join(format!("httpboot/redfish/boot-{uuid}.iso"));
    let first = std::fs::read(&staged).unwrap();
    assert_eq!(first, std::fs::read(lab.info.iso_dir.join("live.iso")).unwrap());

    // new content at the same URL (an ISO with more data at its end), and a new token
    let iso = lab.info.iso_dir.join("live.iso");
    let mut content = std::fs::read(&iso).unwrap();
    content.extend(std::iter::repeat_n(b'M', 4096));
    std::fs::write(&iso, &content).unwrap();
    write(dir.path(), "host.yaml", &manifest(", annotations: {metalhost.io/reprovision: \"v2\"}"));
    settle(&mut rt, Duration::from_secs(240)).await;
    let n = node(&ironic(&lab).await, "fresh").await;
    assert_eq!(
        n.instance_str("boot_iso"),
        Some(format!("{}?metalhost-reprovision=v2", lab.info.iso_url).as_str())
    );
    assert_eq!(std::fs::read(&staged).unwrap(), content, "the BMC gets the new content");
    assert!(status(&rt, "fresh").operation_history.deprovision.end.is_some());
}
