//! A baremetal-operator Deployment's environment — `IRONIC_ENDPOINT` ending in `/v1/`, the
//! deploy kernel and ramdisk, the basic-auth files under the auth root — configures metalhost's
//! Ironic client as it configured BMO's: requests go to `/v1/nodes` with the credentials. On the
//! lab, the binary given only BMO's variables puts the agent's images on the nodes as BMO does.

mod common;

use std::collections::HashMap;

use metalhost::settings::{Flags, read_file, resolve};
use metalhost_ironic::Client;
use serde_json::json;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test]
async fn a_bmo_environment_reaches_ironic_as_bmo_did() {
    let ironic = MockServer::start().await;
    // "admin:s3cret", as BMO sends it
    let auth = "Basic YWRtaW46czNjcmV0";
    Mock::given(method("GET"))
        .and(path("/"))
        .and(header("authorization", auth))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(
                json!({"default_version": {"id": "v1", "min_version": "1.1", "version": "1.99"}}),
            ),
        )
        .expect(1)
        .mount(&ironic)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/nodes"))
        .and(header("authorization", auth))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"nodes": []})))
        .expect(1)
        .mount(&ironic)
        .await;

    // BMO's files: /opt/metal3/auth/ironic/{username,password}, here under METAL3_AUTH_ROOT_DIR
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("ironic")).unwrap();
    std::fs::write(root.path().join("ironic/username"), "admin\n").unwrap();
    std::fs::write(root.path().join("ironic/password"), "s3cret\n").unwrap();
    let env: HashMap<String, String> = [
        ("IRONIC_ENDPOINT", format!("{}/v1/", ironic.uri())),
        ("METAL3_AUTH_ROOT_DIR", root.path().display().to_string()),
        ("DEPLOY_KERNEL_URL", "http://172.22.0.2:6180/images/ironic-python-agent.kernel".into()),
        ("DEPLOY_RAMDISK_URL", "http://172.22.0.2:6180/images/ironic-python-agent.initramfs".into()),
        ("BMO_CONCURRENCY", "4".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let settings = resolve(&Flags::default(), &env, &read_file).unwrap();
    assert_eq!(settings.concurrency, 4);
    assert_eq!(
        settings.defaults.deploy_ramdisk.as_deref(),
        Some("http://172.22.0.2:6180/images/ironic-python-agent.initramfs")
    );

    let client = Client::connect(settings.ironic).await.unwrap();
    assert!(client.list_nodes().await.unwrap().is_empty());
    let paths: Vec<String> =
        ironic.received_requests().await.unwrap().iter().map(|r| r.url.path().to_string()).collect();
    assert!(paths.iter().all(|p| !p.contains("/v1/v1")), "{paths:?}");
}

/// The binary with nothing but BMO's variables (no flags, no METALHOST_*): `IRONIC_ENDPOINT` with
/// `/v1/`, `DEPLOY_KERNEL_URL`/`DEPLOY_RAMDISK_URL` and `DEPLOY_ISO_URL`. A virtual-media host's
/// node gets the ISO and no kernel/ramdisk, a PXE host's the kernel and ramdisk and no ISO (BMO's
/// `setDeployImage`); both provision.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bmo_deploy_images_reach_the_nodes_as_bmo_sets_them() {
    let lab = metalhost_testlab::Lab::start(1);
    let dir = tempfile::tempdir().unwrap();
    let image = common::live_iso(&lab.info.iso_url);
    let docs = vec![
        common::secret("bmc"),
        common::host("vm", &lab.bmc_address("redfish-virtualmedia", 0), "bmc", &image, ""),
        common::host(
            "pxe",
            "fake-hardware://pxe",
            "bmc",
            &image,
            "  bootMACAddress: \"52:54:00:bb:00:01\"\n",
        ),
    ];
    let file = common::write(dir.path(), "hosts.yaml", &docs);
    let agent_iso = format!("{}/agent.iso", lab.info.iso_base_url);
    let mut command = metalhost_testlab::process::command(env!("CARGO_BIN_EXE_metalhost").as_ref());
    let out = command
        .args(["apply", file.to_str().unwrap(), "--wait", "--timeout", "600"])
        .env("IRONIC_ENDPOINT", format!("{}/v1/", lab.info.ironic_url))
        .env("DEPLOY_KERNEL_URL", &lab.info.deploy_kernel_url)
        .env("DEPLOY_RAMDISK_URL", &lab.info.deploy_ramdisk_url)
        .env("DEPLOY_ISO_URL", &agent_iso)
        .env("METAL3_AUTH_ROOT_DIR", dir.path().join("no-auth"))
        .output()
        .unwrap();
    let output = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "apply failed: {output}");
    assert!(!output.contains("not used"), "{output}");

    let ironic = common::ironic(&lab).await;
    let vm = common::node(&ironic, "vm").await;
    assert_eq!(vm.provision_state.as_str(), "active");
    assert_eq!(vm.driver_info.get("deploy_iso"), Some(&json!(agent_iso)), "{:?}", vm.driver_info);
    assert!(!vm.driver_info.contains_key("deploy_kernel"), "{:?}", vm.driver_info);
    assert!(!vm.driver_info.contains_key("deploy_ramdisk"), "{:?}", vm.driver_info);
    let pxe = common::node(&ironic, "pxe").await;
    assert_eq!(pxe.provision_state.as_str(), "active");
    assert_eq!(pxe.driver_info.get("deploy_kernel"), Some(&json!(lab.info.deploy_kernel_url)));
    assert_eq!(pxe.driver_info.get("deploy_ramdisk"), Some(&json!(lab.info.deploy_ramdisk_url)));
    assert!(!pxe.driver_info.contains_key("deploy_iso"), "{:?}", pxe.driver_info);
}
