//! Helpers shared by the end-to-end tests: manifests, the runtime wired to a lab, and what Ironic
//! and the emulated BMC report.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use metalhost::standalone::{Runtime, RuntimeConfig, Source, settled};
use metalhost_api::{BareMetalHost, BareMetalHostStatus};
use metalhost_core::plan::NodeDefaults;
use metalhost_ironic::{Client, ClientConfig, Node};
use metalhost_testlab::Lab;
use serde_json::Value;

/// The binary under test, started with `metalhost_testlab::Metalhost` or `process::command`.
pub const BIN: &str = env!("CARGO_BIN_EXE_metalhost");

pub const PASSWORD: &str = "Pa55-w0rd-never-logged";

/// A well-formed SHA-256 for disk images the tests never let Ironic download.
pub const SHA256: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

pub fn secret(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}}}\nstringData: {{username: admin, password: {PASSWORD}}}\n"
    )
}

/// A BareMetalHost manifest; `image` is YAML for spec.image (or "null"), `extra` more spec lines.
pub fn host(name: &str, bmc: &str, credentials: &str, image: &str, extra: &str) -> String {
    format!(
        "apiVersion: metal3.io/v1alpha1\nkind: BareMetalHost\nmetadata: {{name: {name}}}\nspec:\n  online: true\n  \
         automatedCleaningMode: disabled\n  inspectionMode: disabled\n  bmc: {{address: \"{bmc}\", credentialsName: {credentials}}}\n  \
         image: {image}\n{extra}"
    )
}

pub fn live_iso(url: &str) -> String {
    format!("{{url: \"{url}\", format: live-iso}}")
}

pub fn write(dir: &Path, file: &str, docs: &[String]) -> PathBuf {
    let path = dir.join(file);
    std::fs::write(&path, docs.join("---\n")).unwrap();
    path
}

pub fn config(lab: &Lab) -> RuntimeConfig {
    let mut config = RuntimeConfig::new(ClientConfig::new(lab.info.ironic_url.clone()));
    config.defaults = NodeDefaults {
        deploy_kernel: Some(lab.info.deploy_kernel_url.clone()),
        deploy_ramdisk: Some(lab.info.deploy_ramdisk_url.clone()),
        ..Default::default()
    };
    config
}

pub fn runtime(lab: &Lab, dir: &Path) -> Runtime {
    Runtime::new(config(lab), Source::Dir(dir.to_path_buf()))
}

/// Runs the runtime until every present host is settled; panics with the statuses if not in time.
pub async fn settle(rt: &mut Runtime, timeout: Duration) {
    let ok = rt
        .run_until(
            timeout,
            |c| eprintln!("{c:?}"),
            |rt| {
                let mut any = false;
                let all = rt.present().all(|(_, h, s)| {
                    any = true;
                    settled(h, s)
                });
                any && all
            },
        )
        .await;
    assert!(ok, "not settled in {timeout:?}: {:#?}", rt.statuses().collect::<Vec<_>>());
}

pub fn status<'a>(rt: &'a Runtime, name: &str) -> &'a BareMetalHostStatus {
    rt.status(&format!("default/{name}")).unwrap_or_else(|| panic!("no status for {name}"))
}

pub async fn ironic(lab: &Lab) -> Client {
    Client::connect(ClientConfig::new(lab.info.ironic_url.clone())).await.unwrap()
}

pub async fn node(client: &Client, name: &str) -> Node {
    client.get_node(&format!("default~{name}")).await.unwrap().unwrap_or_else(|| panic!("no node for {name}"))
}

pub async fn redfish(lab: &Lab, path: &str) -> Value {
    reqwest::get(format!("{}{path}", lab.info.sushy_url)).await.unwrap().json().await.unwrap()
}

/// Polls the emulated BMC until `pred` holds on system `i` and its Cd virtual media (the
/// emulator applies some changes a moment after Ironic reports them).
pub async fn bmc_until(lab: &Lab, i: usize, pred: impl Fn(&Value, &Value) -> bool) -> (Value, Value) {
    let uuid = &lab.info.systems[i].uuid;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let system = redfish(lab, &format!("/redfish/v1/Systems/{uuid}")).await;
        let cd = redfish(lab, &format!("/redfish/v1/Systems/{uuid}/VirtualMedia/Cd")).await;
        if pred(&system, &cd) || Instant::now() > deadline {
            return (system, cd);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Reads a host's status file as `metalhost run` writes it.
pub fn status_file(dir: &Path, name: &str) -> Option<BareMetalHost> {
    let text = std::fs::read_to_string(dir.join(format!("{name}.status.yaml"))).ok()?;
    serde_yaml_ng::from_str(&text).ok()
}

/// A loopback port that refuses every connection and that no other process can take while this
/// lives: a socket bound but never listening (a port chosen and let go could be taken by a
/// parallel test before the child process connects).
pub struct DeadPort(tokio::net::TcpSocket);

impl DeadPort {
    /// Binds a free loopback port without listening on it.
    pub fn new() -> DeadPort {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.bind("127.0.0.1:0".parse().unwrap()).expect("bind");
        DeadPort(socket)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.0.local_addr().expect("addr").port())
    }
}
