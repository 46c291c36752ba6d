//! The CLI's offline commands: `metalhost validate` and `metalhost crd`.

use std::process::Command;

fn metalhost(args: &[&str]) -> (i32, String, String) {
    let out = metalhost_testlab::process::command(env!("CARGO_BIN_EXE_metalhost").as_ref())
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn validate_prints_one_line_per_violation_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hosts.yaml");
    std::fs::write(
        &file,
        "kind: BareMetalHost\nmetadata: {name: bad}\nspec:\n  online: false\n  disablePowerOff: true\n  \
         bmc: {address: 'libvirt://bmc', credentialsName: c}\n  image: {url: 'http://h/d.qcow2', format: qcow2}\n---\n\
         kind: BareMetalHost\nmetadata: {name: good}\nspec:\n  online: true\n  \
         bmc: {address: 'redfish-virtualmedia://bmc/redfish/v1/Systems/1', credentialsName: c}\n  \
         image: {url: 'http://h/a.iso', format: live-iso}\n",
    )
    .unwrap();
    let (code, stdout, _) = metalhost(&["validate", file.to_str().unwrap()]);
    assert_eq!(code, 1);
    let f = file.display();
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        [
            format!(
                "{f}: default/bad: spec.bootMACAddress: BMC driver libvirt requires a BootMACAddress value"
            ),
            format!("{f}: default/bad: spec.image.checksum: checksum is required for normal images"),
            format!(
                "{f}: default/bad: spec.disablePowerOff: node can't simultaneously have online set to false and have power off disabled"
            ),
        ]
    );
}

#[test]
fn validate_refuses_what_upstream_refuses_and_passes_a_clean_host() {
    let shared = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../metalhost-api/tests/data/upstream/examples/example-host.yaml"
    );
    let (code, stdout, stderr) = metalhost(&["validate", shared]);
    // upstream's example is an IPMI host without bootMACAddress: upstream's webhook admits it
    // (inspection finds the MAC)
    assert_eq!((code, stdout.as_str()), (0, ""), "{stderr}");
    let dir = tempfile::tempdir().unwrap();
    let libvirt = dir.path().join("libvirt.yaml");
    std::fs::write(&libvirt, "kind: BareMetalHost\nmetadata: {name: vm}\nspec: {online: true, bmc: {address: 'libvirt://192.168.122.1:6233', credentialsName: c}}\n").unwrap();
    let (code, stdout, _) = metalhost(&["validate", libvirt.to_str().unwrap()]);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("spec.bootMACAddress: BMC driver libvirt requires a BootMACAddress value"),
        "{stdout}"
    );
    let dir = tempfile::tempdir().unwrap();
    let clean = dir.path().join("clean.yaml");
    std::fs::write(&clean, "kind: BareMetalHost\nmetadata: {name: ok}\nspec: {online: true, bootMACAddress: '00:11:22:33:44:55', bmc: {address: 'ipmi://bmc', credentialsName: c}}\n").unwrap();
    let (code, stdout, _) = metalhost(&["validate", clean.to_str().unwrap()]);
    assert_eq!((code, stdout.as_str()), (0, ""));
}

#[test]
fn validate_applies_update_rules_against_the_status_file() {
    let dir = tempfile::tempdir().unwrap();
    let status = dir.path().join("h1.status.yaml");
    std::fs::write(
        &status,
        "apiVersion: metal3.io/v1alpha1\nkind: BareMetalHost\nmetadata: {name: h1, namespace: default}\n\
         spec: {online: true, bootMACAddress: '00:11:22:33:44:55', bmc: {address: 'ipmi://bmc', credentialsName: c}}\n\
         status: {operationalStatus: OK, errorMessage: '', errorCount: 0, provisioningFailCount: 0, poweredOn: true, provisioning: {state: provisioned, ID: n1}}\n",
    )
    .unwrap();
    let file = dir.path().join("h1.yaml");
    std::fs::write(&file, "kind: BareMetalHost\nmetadata: {name: h1}\nspec: {online: true, bootMACAddress: '00:11:22:33:44:66', bmc: {address: 'ipmi://bmc2', credentialsName: c}}\n").unwrap();
    let (code, stdout, _) = metalhost(&["validate", file.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(stdout.contains("spec.bmc.address: BMC address can not be changed"), "{stdout}");
    assert!(
        stdout.contains("spec.bootMACAddress: bootMACAddress can not be changed once it is set"),
        "{stdout}"
    );
}

#[test]
fn crd_prints_the_generated_definition_and_upstreams_hardware_data_and_firmware_settings() {
    let (code, stdout, _) = metalhost(&["crd"]);
    assert_eq!(code, 0);
    let crds: Vec<serde_json::Value> = serde_yaml_ng::Deserializer::from_str(&stdout)
        .map(|doc| serde::Deserialize::deserialize(doc).unwrap())
        .collect();
    assert!(crds.iter().all(|crd| crd["kind"] == "CustomResourceDefinition"), "{crds:?}");
    let names: Vec<&str> = crds.iter().map(|crd| crd["metadata"]["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "baremetalhosts.metal3.io",
            "hardwaredata.metal3.io",
            "hostfirmwaresettings.metal3.io",
            "firmwareschemas.metal3.io",
            "dataimages.metal3.io"
        ]
    );
    assert_eq!(crds[0]["spec"]["names"]["shortNames"][0], "bmh");
    assert_eq!(crds[1]["spec"]["names"]["shortNames"][0], "hd");
}

/// A password file that is a device or a FIFO is refused at once with the file's name (it read
/// /dev/zero until memory ran out, and hung on a FIFO); so is one over the size limit.
#[test]
fn a_password_file_that_is_no_regular_file_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let big = dir.path().join("big");
    std::fs::write(&big, vec![b'x'; 2 * 1024 * 1024]).unwrap();
    for (file, reason) in [
        ("/dev/zero", "not a regular file"),
        (fifo.to_str().unwrap(), "not a regular file"),
        (big.to_str().unwrap(), "larger than"),
    ] {
        let started = std::time::Instant::now();
        let (code, _, err) = metalhost(&[
            "run",
            "--manifests",
            dir.path().to_str().unwrap(),
            "--ironic",
            "http://127.0.0.1:9",
            "--ironic-user",
            "u",
            "--ironic-password-file",
            file,
            "--check-config",
        ]);
        assert_ne!(code, 0, "{file}: {err}");
        assert!(err.contains(file) && err.contains(reason), "{file}: {err}");
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "{file}: refused at once");
    }
}

/// SIGTERM while `get -w` and `run` are busy with 10,000 hosts ends them within seconds (signal
/// listeners made anew at each wait lost it: `get -w` ignored it, `run` went on for minutes).
#[test]
fn sigterm_ends_a_busy_run_and_watch_within_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::new();
    for i in 0..10_000 {
        text += &format!(
            "---\nkind: BareMetalHost\nmetadata: {{name: host-{i}}}\nspec: {{online: true, bootMACAddress: '52:54:00:{:02x}:{:02x}:01',\n  \
             bmc: {{address: 'fake-hardware://host-{i}', credentialsName: c}}}}\n",
            i / 256,
            i % 256
        );
    }
    std::fs::write(dir.path().join("hosts.yaml"), text).unwrap();
    // and a status file each, as `run` leaves them: `get -w` reads them all at every look
    for i in 0..10_000 {
        std::fs::write(
            dir.path().join(format!("host-{i}.status.yaml")),
            format!(
                "metadata: {{name: host-{i}}}\nspec: {{online: true}}\nstatus: {{operationalStatus: OK, errorMessage: '', \
                 errorCount: 0, poweredOn: true, provisioning: {{state: provisioned, ID: n{i}}}}}\n"
            ),
        )
        .unwrap();
    }
    let manifests = dir.path().to_str().unwrap();
    for args in [
        vec!["get", "--manifests", manifests, "-w"],
        vec!["run", "--manifests", manifests, "--ironic", "http://127.0.0.1:9"],
    ] {
        let mut child = metalhost_testlab::process::command(env!("CARGO_BIN_EXE_metalhost").as_ref())
            .args(&args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // busy: loading and going through the fleet
        std::thread::sleep(std::time::Duration::from_secs(3));
        assert!(child.try_wait().unwrap().is_none(), "{args:?} still running before the signal");
        assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
        let signalled = std::time::Instant::now();
        let ended = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if signalled.elapsed() > std::time::Duration::from_secs(15) {
                break None;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        };
        let _ = child.kill();
        let _ = child.wait();
        // ended by itself at its next wait (exit 0), not by the signal's default action nor forced
        // out when its grace ran out
        assert!(ended.is_some(), "{args:?} still running 15 s after SIGTERM");
        assert!(ended.is_some_and(|s| s.success()), "{args:?} ended with {ended:?}");
        eprintln!("{:?} ended {:.1} s after SIGTERM", args[0], signalled.elapsed().as_secs_f64());
    }
}

/// A manifest whose `image.format` is 2 MB long: the error quoting it is cut before it reaches
/// the status, so the status file stays readable and `get` still shows the host (the 3 MB status
/// file was refused and the host vanished from `get` and `describe`).
#[test]
fn an_error_quoting_a_huge_field_keeps_the_status_readable() {
    let dir = tempfile::tempdir().unwrap();
    let format = "x".repeat(2 * 1024 * 1024);
    std::fs::write(
        dir.path().join("big.yaml"),
        format!(
            "kind: BareMetalHost\nmetadata: {{name: big}}\nspec: {{online: true, bmc: {{address: 'redfish://127.0.0.1:9/redfish/v1/Systems/1', credentialsName: c}},\n  \
             image: {{url: 'http://127.0.0.1:9/a.iso', format: {format}}}}}\n"
        ),
    )
    .unwrap();
    let manifests = dir.path().to_str().unwrap();
    let mut run = metalhost_testlab::process::command(env!("CARGO_BIN_EXE_metalhost").as_ref())
        .args(["run", "--manifests", manifests, "--ironic", "http://127.0.0.1:9"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let status = dir.path().join("big.status.yaml");
    for _ in 0..100 {
        if status.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    let _ = run.kill();
    let _ = run.wait();
    let size = std::fs::metadata(&status).expect("a status file").len();
    assert!(size < 64 * 1024, "status file of {size} bytes");
    let (code, out, err) = metalhost(&["get", "--manifests", manifests]);
    assert_eq!(code, 0, "{err}");
    assert!(out.lines().any(|l| l.starts_with("big ")), "the host is shown: {out}");
    assert!(out.contains("cut by metalhost") || err.is_empty(), "{out}");
}

/// Control characters from a hostile manifest (consumerRef.name, an unknown image.format that
/// serde's error echoes) and from a status (an error message as Ironic wrote it) reach no terminal
/// raw: get, get -o wide, describe, validate, run's progress and its log escape them (a screen
/// clear, a title, an OSC 52 clipboard write came through before).
#[test]
fn control_characters_from_manifests_and_ironic_are_printed_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let evil = "\\e]52;c;cHduZWQ=\\a\\e[2J\\e]0;owned\\a\\u009b31m";
    std::fs::write(
        dir.path().join("hosts.yaml"),
        format!(
            "kind: BareMetalHost\nmetadata: {{name: h1}}\nspec: {{online: true, consumerRef: {{kind: Machine, name: \"{evil}\"}},\n  \
             bmc: {{address: 'redfish://127.0.0.1:9/redfish/v1/Systems/1', credentialsName: c}}}}\n---\n\
             kind: BareMetalHost\nmetadata: {{name: h2}}\nspec: {{online: true, bmc: {{address: 'redfish://127.0.0.1:9/redfish/v1/Systems/2', credentialsName: c}},\n  \
             image: {{url: 'http://127.0.0.1:9/a.iso', format: \"{evil}\"}}}}\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("h1.status.yaml"),
        format!(
            "metadata: {{name: h1}}\nspec: {{online: true, consumerRef: {{kind: Machine, name: \"{evil}\"}}}}\n\
             status: {{operationalStatus: error, errorType: provisioning error, \
             errorMessage: \"Ironic said {evil}\", errorCount: 1, poweredOn: false, provisioning: {{state: provisioning, ID: n1}}}}\n"
        ),
    )
    .unwrap();
    let manifests = dir.path().to_str().unwrap();
    let raw = |text: &str| text.chars().any(|c| matches!(c as u32, 0x07 | 0x1b | 0x9b));
    for args in [
        vec!["get", "--manifests", manifests],
        vec!["get", "--manifests", manifests, "-o", "wide"],
        vec!["describe", "h1", "--manifests", manifests],
        vec!["validate", &format!("{manifests}/hosts.yaml")],
    ] {
        let (_, out, err) = metalhost(&args);
        assert!(!raw(&out) && !raw(&err), "{args:?} printed control characters raw:\n{out:?}\n{err:?}");
        assert!(
            out.contains("\\u{1b}") || err.contains("\\u{1b}"),
            "{args:?} shows them escaped:\n{out}\n{err}"
        );
    }
    let run = metalhost_testlab::process::command(env!("CARGO_BIN_EXE_metalhost").as_ref())
        .args(["run", "--manifests", manifests, "--ironic", "http://127.0.0.1:9"])
        .env("METALHOST_LOG", "debug")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert!(Command::new("kill").args(["-TERM", &run.id().to_string()]).status().unwrap().success());
    let out = run.wait_with_output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!raw(&stdout) && !raw(&stderr), "run printed control characters raw:\n{stdout:?}\n{stderr:?}");
}

/// `apply --wait` of `file` with an Ironic URL nothing answers at.
fn apply_without_ironic(file: &std::path::Path) -> (i32, String, String) {
    metalhost(&[
        "apply",
        file.to_str().unwrap(),
        "--wait",
        "--timeout",
        "30",
        "--ironic",
        "http://127.0.0.1:9",
    ])
}

#[test]
fn apply_shows_an_error_once_with_its_kind() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("h.yaml");
    std::fs::write(
        &file,
        "apiVersion: v1\nkind: Secret\nmetadata: {name: c}\nstringData: {username: u, password: p}\n---\n\
         apiVersion: metal3.io/v1alpha1\nkind: BareMetalHost\nmetadata: {name: h}\n\
         spec: {online: true, bmc: {address: \"foo://10.0.0.1\", credentialsName: c}}\n",
    )
    .unwrap();
    // an unusable BMC needs no Ironic: the dead URL is never dialled
    let (code, out, err) = apply_without_ironic(&file);
    assert_eq!(code, 1, "{out}{err}");
    assert_eq!(out.matches("Unknown BMC type 'foo'").count(), 1, "the error shown once:\n{out}");
    assert!(
        out.contains("registering — registration error: spec.bmc.address: Unknown BMC type"),
        "with its kind:\n{out}"
    );
    assert!(out.lines().last().is_some_and(|l| l.ends_with("— registration error")), "{out}");
}

#[test]
fn apply_refuses_a_config_drive_on_fake_hardware_before_any_ironic_call() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("h.yaml");
    std::fs::write(
        &file,
        "apiVersion: v1\nkind: Secret\nmetadata: {name: ud}\nstringData: {userData: \"#cloud-config\\n\"}\n---\n\
         apiVersion: v1\nkind: Secret\nmetadata: {name: c}\nstringData: {username: u, password: p}\n---\n\
         apiVersion: metal3.io/v1alpha1\nkind: BareMetalHost\n\
         metadata: {name: h, annotations: {metalhost.io/live-iso-config-drive: \"true\"}}\n\
         spec: {online: true, bootMACAddress: \"52:54:00:00:00:09\", bmc: {address: \"fake-hardware://h\", credentialsName: c},\n  \
         userData: {name: ud}, image: {url: \"http://127.0.0.1/a.iso\", format: live-iso}}\n",
    )
    .unwrap();
    // Ironic's URL is dead: had a node been created first, the error would be that Ironic is
    // unreachable, not the annotation's
    let (code, out, err) = apply_without_ironic(&file);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("metadata.annotations[metalhost.io/live-iso-config-drive]")
            && out.contains("cannot attach a config drive"),
        "{out}"
    );
    assert!(!out.to_lowercase().contains("unreachable"), "no Ironic request was made: {out}");
}
