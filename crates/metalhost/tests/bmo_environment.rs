//! A baremetal-operator Deployment's environment — `IRONIC_ENDPOINT` ending in `/v1/`, the
//! deploy kernel and ramdisk, the basic-auth files under the auth root — configures metalhost's
//! Ironic client as it configured BMO's: requests go to `/v1/nodes` with the credentials.

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
