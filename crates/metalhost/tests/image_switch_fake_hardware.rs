//! Acceptance: one fake-hardware host (iPXE boot, ramdisk deploy, a port for the boot MAC) goes
//! live-iso → qcow2 disk image → live-iso against the real Ironic; Ironic's node fields are
//! checked after each step.

mod common;

use std::time::Duration;

use common::*;
use metalhost_core::plan::DISK_IMAGE_KEYS;
use metalhost_ironic::Node;
use metalhost_testlab::Lab;

const MAC: &str = "52:54:00:aa:bb:01";

fn assert_live_iso(node: &Node, url: &str) {
    assert_eq!(node.provision_state.as_str(), "active");
    assert_eq!(node.deploy_interface.as_deref(), Some("ramdisk"));
    assert_eq!(node.instance_str("boot_iso"), Some(url));
    for key in DISK_IMAGE_KEYS {
        assert!(
            !node.instance_info.contains_key(*key),
            "{key} left on a live-ISO node: {:?}",
            node.instance_info
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_between_live_iso_and_disk_image_rewrites_the_node() {
    let lab = Lab::start(1);
    let dir = tempfile::tempdir().unwrap();
    let manifest = |image: &str| {
        vec![
            secret("c"),
            host("fh1", "fake-hardware://fh1", "c", image, &format!("  bootMACAddress: \"{MAC}\"\n")),
        ]
    };
    let iso = lab.info.iso_url.clone();
    let disk = format!("{}/disk.qcow2", lab.info.iso_base_url);
    let ironic = ironic(&lab).await;

    write(dir.path(), "host.yaml", &manifest(&live_iso(&iso)));
    let mut rt = runtime(&lab, dir.path());
    settle(&mut rt, Duration::from_secs(120)).await;
    let n = node(&ironic, "fh1").await;
    assert_eq!(n.driver, "fake-hardware");
    assert_eq!(n.boot_interface.as_deref(), Some("ipxe"));
    assert_live_iso(&n, &iso);
    let ports = ironic.list_ports(&n.uuid).await.unwrap();
    assert_eq!(ports.iter().map(|p| p.address.as_str()).collect::<Vec<_>>(), [MAC]);

    write(
        dir.path(),
        "host.yaml",
        &manifest(&format!("{{url: \"{disk}\", format: qcow2, checksum: {SHA256}, checksumType: sha256}}")),
    );
    settle(&mut rt, Duration::from_secs(120)).await;
    let n = node(&ironic, "fh1").await;
    assert_eq!(n.provision_state.as_str(), "active");
    assert_ne!(n.deploy_interface.as_deref(), Some("ramdisk"), "back to the default deploy interface");
    assert!(!n.instance_info.contains_key("boot_iso"), "{:?}", n.instance_info);
    assert_eq!(n.instance_str("image_source"), Some(disk.as_str()));
    assert_eq!(n.instance_str("image_os_hash_algo"), Some("sha256"));
    assert_eq!(n.instance_str("image_os_hash_value"), Some(SHA256));
    assert_eq!(n.instance_str("image_disk_format"), Some("qcow2"));
    assert!(!n.instance_info.contains_key("image_checksum"));
    let history = &status(&rt, "fh1").operation_history;
    assert!(history.deprovision.end.is_some(), "the switch went through deprovisioning");

    let iso2 = format!("{}/live.iso?v=2", lab.info.iso_base_url);
    write(dir.path(), "host.yaml", &manifest(&live_iso(&iso2)));
    settle(&mut rt, Duration::from_secs(120)).await;
    assert_live_iso(&node(&ironic, "fh1").await, &iso2);
    assert_eq!(ironic.list_ports(&n.uuid).await.unwrap().len(), 1, "no duplicate port");

    // removing the manifest deletes the host: deprovisioned, node gone, status file gone
    std::fs::remove_file(dir.path().join("host.yaml")).unwrap();
    let gone =
        rt.run_until(Duration::from_secs(120), |c| eprintln!("{c:?}"), |rt| rt.statuses().count() == 0).await;
    assert!(gone, "host not deleted: {:?}", rt.statuses().collect::<Vec<_>>());
    assert!(ironic.get_node("default~fh1").await.unwrap().is_none(), "node left in Ironic");
    assert!(status_file(dir.path(), "fh1").is_none(), "status file left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_kernel_boots_in_place_and_switches_with_a_live_iso() {
    let lab = Lab::start(1);
    let dir = tempfile::tempdir().unwrap();
    let base = lab.info.iso_base_url.clone();
    let kernel_host = |annotations: &str| {
        host(
            "lk",
            "fake-hardware://lk",
            "c",
            &format!("{{url: \"{base}/agent.kernel\", format: live-kernel}}"),
            "  bootMACAddress: \"52:54:00:aa:bb:02\"\n",
        )
        .replace("metadata: {name: lk}", &format!("metadata: {{name: lk, annotations: {{{annotations}}}}}"))
    };
    let annotations = format!(
        "metalhost.io/initramfs-url: \"{base}/agent.initramfs\", metalhost.io/kernel-arguments: \"console=ttyS0 coreos.live.rootfs_url=x\""
    );
    write(dir.path(), "host.yaml", &[secret("c"), kernel_host(&annotations)]);
    let mut rt = runtime(&lab, dir.path());
    settle(&mut rt, Duration::from_secs(120)).await;
    let ironic = ironic(&lab).await;
    let n = node(&ironic, "lk").await;
    assert_eq!(n.provision_state.as_str(), "active");
    assert_eq!(n.deploy_interface.as_deref(), Some("ramdisk"));
    assert_eq!(n.instance_str("kernel"), Some(format!("{base}/agent.kernel").as_str()));
    assert_eq!(n.instance_str("ramdisk"), Some(format!("{base}/agent.initramfs").as_str()));
    assert_eq!(n.instance_str("ramdisk_kernel_arguments"), Some("console=ttyS0 coreos.live.rootfs_url=x"));
    assert!(!n.instance_info.contains_key("boot_iso"));

    // the same host switches to a live ISO: the kernel keys go
    let iso = lab.info.iso_url.clone();
    let doc = kernel_host(&annotations)
        .replace(&format!("{{url: \"{base}/agent.kernel\", format: live-kernel}}"), &live_iso(&iso));
    write(dir.path(), "host.yaml", &[secret("c"), doc]);
    settle(&mut rt, Duration::from_secs(120)).await;
    let n = node(&ironic, "lk").await;
    assert_live_iso(&n, &iso);
    for key in ["kernel", "ramdisk", "ramdisk_kernel_arguments"] {
        assert!(!n.instance_info.contains_key(key), "{key} left: {:?}", n.instance_info);
    }

    // and a live kernel without its initramfs is refused, naming the annotation
    write(dir.path(), "host.yaml", &[secret("c"), kernel_host("")]);
    let refused =
        rt.run_until(Duration::from_secs(60), |_| {}, |rt| !status(rt, "lk").error_message.is_empty()).await;
    assert!(refused);
    assert!(
        status(&rt, "lk").error_message.starts_with(
            "metadata.annotations[metalhost.io/initramfs-url]: required with format live-kernel"
        )
    );
}
