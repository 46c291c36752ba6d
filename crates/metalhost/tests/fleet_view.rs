//! Seeing the fleet without Kubernetes, on the real lab (Ironic + sushy-tools): what
//! `metalhost get`, `get -w` and `describe` show of the hosts `metalhost apply` and
//! `metalhost run` keep in a manifest directory, and the event log they read.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;
use metalhost::standalone::events;
use metalhost_testlab::Lab;

fn metalhost(args: &[&str]) -> (i32, String, String) {
    let out = metalhost_testlab::process::command(env!("CARGO_BIN_EXE_metalhost").as_ref())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let (stdout, stderr) =
        (String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into());
    assert!(!format!("{stdout}{stderr}").contains(PASSWORD), "a password was shown");
    (out.status.code().unwrap_or(-1), stdout, stderr)
}

/// Two live-ISO hosts on emulated Redfish virtual media; live-0 has a field a live ISO ignores
/// (so it shows the `LiveISOIgnoredFields` condition) and a reprovision token.
fn manifests(lab: &Lab, dir: &Path, iso_url: &str) -> PathBuf {
    let mut docs = vec![secret("bmc")];
    for i in 0..lab.info.systems.len() {
        let extra = if i == 0 { "  rootDeviceHints: {deviceName: /dev/sda}\n" } else { "" };
        let doc = host(
            &format!("live-{i}"),
            &lab.bmc_address("redfish-virtualmedia", i),
            "bmc",
            &live_iso(iso_url),
            extra,
        );
        let token = "metadata: {name: live-0, annotations: {metalhost.io/reprovision: v2}}";
        docs.push(if i == 0 { doc.replace("metadata: {name: live-0}", token) } else { doc });
    }
    write(dir, "hosts.yaml", &docs)
}

fn apply(lab: &Lab, file: &Path) {
    let (code, stdout, stderr) = metalhost(&[
        "apply",
        file.to_str().unwrap(),
        "--wait",
        "--timeout",
        "600",
        "--ironic",
        &lab.info.ironic_url,
    ]);
    assert_eq!(code, 0, "apply failed: {stdout}{stderr}");
}

/// The cells of a table line, cut where the header's columns start.
fn cells(header: &str, line: &str) -> BTreeMap<String, String> {
    let mut starts = Vec::new();
    let mut prev = ' ';
    for (i, c) in header.char_indices() {
        if c != ' ' && prev == ' ' {
            starts.push(i);
        }
        prev = c;
    }
    starts
        .iter()
        .enumerate()
        .map(|(k, &start)| {
            let end = starts.get(k + 1).copied().unwrap_or(usize::MAX);
            let cut = |s: &str| s.get(start..end.min(s.len())).unwrap_or("").trim().to_string();
            (cut(header), cut(line))
        })
        .collect()
}

#[test]
fn get_and_describe_show_hosts_applied_on_the_lab() {
    let lab = Lab::start(2);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let file = manifests(&lab, dir.path(), &lab.info.iso_url);
    apply(&lab, &file);

    // the CRD's printer columns, one line per host
    let (code, stdout, stderr) = metalhost(&["get", "--manifests", d]);
    assert_eq!(code, 0, "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["NAME", "STATE", "CONSUMER", "ONLINE", "ERROR", "AGE"]
    );
    assert_eq!(lines.len(), 3, "{stdout}");
    for (i, line) in lines[1..].iter().enumerate() {
        let row = cells(lines[0], line);
        assert_eq!(row["NAME"], format!("live-{i}"), "{stdout}");
        assert_eq!(row["STATE"], "provisioned", "{stdout}");
        assert_eq!(
            (row["CONSUMER"].as_str(), row["ONLINE"].as_str(), row["ERROR"].as_str()),
            ("", "true", "")
        );
        assert!(row["AGE"].ends_with('s') || row["AGE"].ends_with('m'), "age {:?}", row["AGE"]);
    }

    // wide: the priority-1 columns too
    let (_, stdout, _) = metalhost(&["get", "--manifests", d, "-o", "wide", "live-1"]);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    let row = cells(lines[0], lines[1]);
    assert_eq!(row["STATUS"], "OK");
    assert_eq!(row["BMC"], lab.bmc_address("redfish-virtualmedia", 1));

    // json and yaml: a Kubernetes List that parses
    let (code, stdout, _) = metalhost(&["get", "--manifests", d, "-o", "json"]);
    assert_eq!(code, 0);
    let list: serde_json::Value = serde_json::from_str(&stdout).expect("get -o json parses");
    assert_eq!((list["apiVersion"].as_str(), list["kind"].as_str()), (Some("v1"), Some("List")));
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["kind"], "BareMetalHost");
    assert_eq!(items[0]["status"]["provisioning"]["state"], "provisioned");
    assert_eq!(items[0]["metadata"]["annotations"]["metalhost.io/reprovision"], "v2", "annotations shown");
    let (_, stdout, _) = metalhost(&["get", "--manifests", d, "-o", "yaml"]);
    let yaml: serde_json::Value = serde_yaml_ng::from_str(&stdout).expect("get -o yaml parses");
    assert_eq!(yaml, list);

    // describe: the Ironic node (the one the status names, which is the host's), the live-ISO
    // condition, the events of apply
    let status = status_file(dir.path(), "live-0").unwrap().status.unwrap();
    let (code, stdout, stderr) =
        metalhost(&["describe", "live-0", "--manifests", d, "--ironic", &lab.info.ironic_url]);
    assert_eq!(code, 0, "{stderr}");
    for want in [
        format!("UUID:               {}", status.provisioning.id),
        "Name:               default~live-0".into(),
        "Provision state:    active".into(),
        "Power state:        power on".into(),
        "Deploy interface:   ramdisk".into(),
        "Last error:         <none>".into(),
        "Image format:       live-iso".into(),
        "LiveISOIgnoredFields".into(),
        "rootDeviceHints not used".into(),
        "ProvisioningStateChanged".into(),
        "provisioning → provisioned".into(),
        "    metalhost.io/reprovision: v2".into(),
        format!("Ironic boots:       {}?metalhost-reprovision=v2", lab.info.iso_url),
    ] {
        assert!(stdout.contains(&want), "describe lacks {want:?}:\n{stdout}");
    }
    eprintln!("{stdout}");
    let (_, stdout, _) = metalhost(&["describe", "live-1", "--manifests", d]);
    assert!(stdout.contains("<not asked: give --ironic URL>"), "{stdout}");
    assert!(!stdout.contains("LiveISOIgnoredFields"), "live-1 has no ignored field:\n{stdout}");
    let (code, _, stderr) = metalhost(&["describe", "nobody", "--manifests", d]);
    assert_eq!(code, 2);
    assert!(stderr.contains("not found"), "{stderr}");
}

/// Kills the process when dropped, also when an assertion fails.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `metalhost` with `args`; its stdout lines come through the receiver.
fn spawn(args: &[&str]) -> (Running, mpsc::Receiver<String>) {
    let mut child = metalhost_testlab::process::command(env!("CARGO_BIN_EXE_metalhost").as_ref())
        .args(args)
        .env("METALHOST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (Running(child), rx)
}

/// Lines from `rx` until one satisfies `done` (panics after a generous deadline).
fn lines_until(rx: &mpsc::Receiver<String>, what: &str, done: impl Fn(&str) -> bool) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut lines = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                let stop = done(&line);
                lines.push(line);
                if stop {
                    return lines;
                }
            }
            Err(e) => panic!("no {what} ({e}); got {lines:#?}"),
        }
    }
}

#[test]
fn get_w_prints_each_state_change_of_a_reprovisioning_host_and_events_survive_restarts() {
    let lab = Lab::start(1);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let file = manifests(&lab, dir.path(), &lab.info.iso_url);
    apply(&lab, &file);
    let applied = events::read(dir.path());
    assert!(
        applied.iter().any(|e| e.state == Some(metalhost_api::ProvisioningState::Provisioned)),
        "apply logged events: {applied:#?}"
    );

    let (run, run_out) = spawn(&["run", "--manifests", d, "--ironic", &lab.info.ironic_url]);
    // the run's summary line (plain, as stdout is no terminal)
    lines_until(&run_out, "summary", |l| l == "1 host: 1 provisioned");
    let (mut watch, watch_out) = spawn(&["get", "-w", "--manifests", d, "live-0"]);
    let start = lines_until(&watch_out, "the table", |l| l.starts_with("live-0"));
    assert!(
        start[0].starts_with("NAME") && start[1].split_whitespace().nth(1) == Some("provisioned"),
        "{start:?}"
    );

    // a new image URL: the host is deprovisioned and provisioned again
    let seq_before = events::read(dir.path()).last().unwrap().seq;
    std::fs::copy(lab.info.iso_dir.join("live.iso"), lab.info.iso_dir.join("other.iso")).unwrap();
    let new_url = format!("{}/other.iso", lab.info.iso_base_url.trim_end_matches('/'));
    manifests(&lab, dir.path(), &new_url);
    let rows =
        lines_until(&watch_out, "provisioned again", |l| l.split_whitespace().nth(1) == Some("provisioned"));
    let shown: Vec<&str> = rows.iter().filter_map(|l| l.split_whitespace().nth(1)).collect();
    let mut shown_changes = shown.clone();
    shown_changes.dedup();
    let logged: Vec<String> = events::read(dir.path())
        .into_iter()
        .filter(|e| e.seq > seq_before && e.host == "default/live-0")
        .filter_map(|e| e.state.map(|s| s.to_string()))
        .collect();
    assert_eq!(shown_changes, logged, "one line per state change, in order: {rows:#?}");
    assert!(shown.contains(&"deprovisioning") && shown.contains(&"provisioning"), "{rows:#?}");
    let status = status_file(dir.path(), "live-0").unwrap().status.unwrap();
    assert_eq!(status.provisioning.image.unwrap().url, new_url);

    // get -w stops on SIGTERM, cleanly
    let pid = watch.0.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let exit = watch.0.wait().unwrap();
    assert!(exit.success(), "get -w on SIGTERM: {exit:?}");

    // events survive the run's end and a new run: what apply and the first run logged is still
    // told, and the sequence goes on
    drop(run);
    let (run, run_out) = spawn(&["run", "--manifests", d, "--ironic", &lab.info.ironic_url]);
    lines_until(&run_out, "summary", |l| l == "1 host: 1 provisioned");
    drop(run);
    let after = events::read(dir.path());
    assert!(after.len() >= applied.len() + logged.len());
    assert!(after.windows(2).all(|w| w[0].seq < w[1].seq), "one sequence across processes");
    let (_, stdout, _) = metalhost(&["describe", "live-0", "--manifests", d]);
    assert!(stdout.contains("deprovisioning") && stdout.contains("registering"), "{stdout}");
    let mut log = String::new();
    std::fs::File::open(dir.path().join(events::LOG_FILE)).unwrap().read_to_string(&mut log).unwrap();
    assert!(!log.contains(PASSWORD));
}
