//! Acceptance: bad input ends in a status with errorType and a message naming the cause, no Ironic
//! node is created for hosts that cannot be registered, and `metalhost run` keeps running and
//! provisions the good host beside the bad ones. No BMC password appears in any output or status.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use metalhost_api::{BareMetalHost, ErrorType, OperationalStatus, ProvisioningState};
use metalhost_testlab::{Lab, Metalhost};

fn spawn_run(dir: &Path, ironic: &str, extra: &[&str]) -> Metalhost {
    let dir_arg = dir.to_string_lossy();
    let mut args = vec!["run", "--manifests", &dir_arg, "--ironic", ironic];
    args.extend_from_slice(extra);
    Metalhost::start(BIN.as_ref(), &args, &[("METALHOST_LOG", "debug")], &dir.join("metalhost.log"))
}

/// Waits until host `name`'s status file satisfies `pred`; returns it.
async fn wait_status(
    dir: &Path,
    name: &str,
    timeout: Duration,
    pred: impl Fn(&BareMetalHost) -> bool,
) -> BareMetalHost {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(h) = status_file(dir, name).filter(|h| pred(h)) {
            return h;
        }
        if Instant::now() > deadline {
            let log = std::fs::read_to_string(dir.join("metalhost.log")).unwrap_or_default();
            panic!(
                "{name}: status not reached in {timeout:?}; last: {:#?}\nlog:\n{log}",
                status_file(dir, name)
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn errored(h: &BareMetalHost) -> bool {
    h.status.as_ref().is_some_and(|s| s.operational_status == OperationalStatus::Error)
}

fn error_of(h: &BareMetalHost) -> (ProvisioningState, Option<ErrorType>, String) {
    let s = h.status.as_ref().unwrap();
    (s.provisioning.state, s.error_type, s.error_message.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_reported_per_host_and_the_process_keeps_running() {
    let lab = Lab::start(2);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let iso = live_iso(&lab.info.iso_url);
    let vmedia = |i| lab.bmc_address("redfish-virtualmedia", i);
    write(
        d,
        "hosts.yaml",
        &[
            secret("bmc"),
            host("bad-scheme", "foo://10.0.0.1", "bmc", &iso, ""),
            host(
                "no-secret",
                "fake-hardware://x",
                "missing-secret",
                &iso,
                "  bootMACAddress: \"52:54:00:00:00:10\"\n",
            ),
            host(
                "bad-url",
                "fake-hardware://y",
                "bmc",
                &live_iso("http//not a url"),
                "  bootMACAddress: \"52:54:00:00:00:11\"\n",
            ),
            host(
                "no-checksum",
                "fake-hardware://z",
                "bmc",
                "{url: \"http://127.0.0.1/disk.qcow2\", format: qcow2}",
                "  bootMACAddress: \"52:54:00:00:00:12\"\n",
            ),
            host(
                "rejected-iso",
                &vmedia(0),
                "bmc",
                &live_iso(&format!("{}/missing.iso", lab.info.iso_base_url)),
                "",
            ),
            host("bad-field", "fake-hardware://w", "bmc", "{url: \"http://h/a.iso\", format: floppy}", ""),
            host("good", "fake-hardware://good", "bmc", &iso, "  bootMACAddress: \"52:54:00:00:00:13\"\n"),
        ],
    );
    let mut proc = spawn_run(d, &lab.info.ironic_url, &[]);
    let ironic = ironic(&lab).await;
    let t = Duration::from_secs(120);

    let h = wait_status(d, "bad-scheme", t, errored).await;
    let (state, kind, msg) = error_of(&h);
    assert_eq!((state, kind), (ProvisioningState::Registering, Some(ErrorType::Registration)));
    assert_eq!(msg, "spec.bmc.address: Unknown BMC type 'foo' for address foo://10.0.0.1");

    let h = wait_status(d, "no-secret", t, errored).await;
    let (state, kind, msg) = error_of(&h);
    assert_eq!((state, kind), (ProvisioningState::Registering, Some(ErrorType::Registration)));
    assert_eq!(msg, "spec.bmc.credentialsName: secret 'missing-secret' not found in namespace 'default'");

    let h = wait_status(d, "bad-url", t, errored).await;
    let (state, kind, msg) = error_of(&h);
    assert_eq!((state, kind), (ProvisioningState::Available, Some(ErrorType::Provisioning)));
    assert!(msg.starts_with("spec.image.url: image URL http//not a url is invalid"), "{msg}");

    let h = wait_status(d, "no-checksum", t, errored).await;
    let (_, kind, msg) = error_of(&h);
    assert_eq!(kind, Some(ErrorType::Provisioning));
    assert!(
        msg.starts_with("spec.image.checksum: checksum is required for normal images (a qcow2 image"),
        "{msg}"
    );

    let h = wait_status(d, "bad-field", t, errored).await;
    let (_, kind, msg) = error_of(&h);
    assert_eq!(kind, Some(ErrorType::Registration));
    assert!(msg.contains("spec.image.format: unknown variant `floppy`"), "{msg}");

    let h = wait_status(d, "rejected-iso", Duration::from_secs(180), errored).await;
    let (state, kind, msg) = error_of(&h);
    assert_eq!((state, kind), (ProvisioningState::Provisioning, Some(ErrorType::Provisioning)));
    assert!(msg.starts_with("provisioning failed: "), "{msg}");
    assert!(msg.contains("missing.iso"), "Ironic's last_error names the ISO: {msg}");
    assert!(h.status.as_ref().unwrap().provisioning_fail_count >= 1);

    wait_status(d, "good", t, |h| {
        h.status.as_ref().is_some_and(|s| s.provisioning.state == ProvisioningState::Provisioned)
    })
    .await;

    // nothing was registered for the hosts that could not be
    for name in ["bad-scheme", "no-secret", "bad-field"] {
        assert!(ironic.get_node(&format!("default~{name}")).await.unwrap().is_none(), "{name} has a node");
    }
    assert!(proc.exit_status().is_none(), "metalhost run exited");

    // the password is nowhere: not in the log, not in any status file
    for entry in std::fs::read_dir(d).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap() == "hosts.yaml" {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(PASSWORD), "password in {}", path.display());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_ironic_is_reported_and_the_process_keeps_running() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "hosts.yaml",
        &[secret("bmc"), host("h1", "fake-hardware://h1", "bmc", &live_iso("http://127.0.0.1/a.iso"), "")],
    );
    // a port nobody listens on
    let dead = DeadPort::new();
    let url = dead.url();
    let mut proc = spawn_run(d, &url, &[]);
    let h = wait_status(d, "h1", Duration::from_secs(30), errored).await;
    let (_, kind, msg) = error_of(&h);
    assert_eq!(kind, Some(ErrorType::Registration));
    assert!(msg.starts_with(&format!("Ironic unreachable at {url}/")), "{msg}");
    // it keeps trying: the error count grows
    wait_status(d, "h1", Duration::from_secs(30), |h| h.status.as_ref().is_some_and(|s| s.error_count >= 2))
        .await;
    assert!(proc.exit_status().is_none(), "metalhost run exited");
}
