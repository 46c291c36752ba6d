//! Ironic behind TLS (a self-signed CA) with HTTP basic auth (`auth_strategy=http_basic`, bcrypt
//! htpasswd): metalhost connects with the CA file and credentials, refuses the unknown certificate
//! unless told to accept any, is refused without the right password, and provisions through it.

mod common;

use std::time::Duration;

use common::*;
use metalhost::standalone::{Runtime, Source};
use metalhost_api::ProvisioningState;
use metalhost_ironic::{Client, ClientConfig, Error};
use metalhost_testlab::Lab;

fn secure_config(lab: &Lab) -> ClientConfig {
    let mut config = ClientConfig::new(lab.info.ironic_url.clone());
    config.ca_file = lab.info.ironic_ca_file.clone();
    config.basic_auth =
        Some((lab.info.ironic_user.clone().unwrap(), lab.info.ironic_password.clone().unwrap()));
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_basic_auth_to_ironic() {
    let lab = Lab::start_secure(1);
    assert!(lab.info.ironic_url.starts_with("https://"));

    // the CA file and the credentials: in
    let client = Client::connect(secure_config(&lab)).await.unwrap();
    assert!(client.list_nodes().await.unwrap().is_empty());

    // the system's trust roots do not know the lab CA: refused, saying why
    let mut no_ca = secure_config(&lab);
    no_ca.ca_file = None;
    let err = Client::connect(no_ca.clone()).await.unwrap_err();
    assert!(matches!(err, Error::Unreachable { .. }), "{err}");
    assert!(err.to_string().to_lowercase().contains("certificate"), "{err}");

    // unless told to accept any certificate
    let mut insecure = no_ca;
    insecure.insecure = true;
    Client::connect(insecure).await.unwrap().list_nodes().await.unwrap();

    // a wrong password is refused by Ironic
    let mut wrong = secure_config(&lab);
    wrong.basic_auth = Some((lab.info.ironic_user.clone().unwrap(), "wrong".into()));
    let outcome = match Client::connect(wrong).await {
        Ok(c) => c.list_nodes().await.map(|_| ()),
        Err(e) => Err(e),
    };
    assert_eq!(outcome.unwrap_err().status(), Some(401));

    // and a live-ISO host provisions through TLS and auth
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "host.yaml",
        &[
            secret("c"),
            host(
                "h1",
                "fake-hardware://h1",
                "c",
                &live_iso(&lab.info.iso_url),
                "  bootMACAddress: \"52:54:00:00:03:01\"\n",
            ),
        ],
    );
    let mut cfg = config(&lab);
    cfg.ironic = secure_config(&lab);
    let mut rt = Runtime::new(cfg, Source::Dir(dir.path().to_path_buf()));
    settle(&mut rt, Duration::from_secs(120)).await;
    assert_eq!(status(&rt, "h1").provisioning.state, ProvisioningState::Provisioned);
    assert_eq!(node(&client, "h1").await.provision_state, "active");
}
