//! Acceptance (issue: machines that really boot): on the VM lab (`scripts/lab start --vms`: a
//! libvirt/QEMU machine behind sushy-tools' libvirt driver, docs/vm-lab.md), a live-ISO host
//! driven by the `metalhost run` binary reaches `provisioned` and the machine really boots the ISO:
//! the ISO's marker appears on its serial console. A second ISO with a config drive boots again
//! and shows the user data; a reprovision token boots it once more; `metalhost.io/eject-media`
//! leaves the machine's CD drive empty. The hosts boot as users' do by default: UEFI (OVMF).
//! Legacy boot works too but costs sushy-tools' refused SecureBoot reads, 10 × 3 s each
//! (docs/vm-lab.md).

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use metalhost_api::ProvisioningState;
use metalhost_testlab::{Lab, Metalhost};

const USER_DATA: &str = "hello-from-metalhost";
/// A machine under software emulation takes its time; a deploy and a boot each fit well inside.
const BOOT: Duration = Duration::from_secs(300);

fn manifests(lab: &Lab, iso: &str, annotations: &str) -> Vec<String> {
    let bmc = lab.bmc_address("redfish-virtualmedia", 0);
    let host = host(
        "vm-0",
        &bmc,
        "bmc",
        &live_iso(&lab.info.live_isos[iso]),
        "  userData: {name: vm-0-user-data}\n",
    )
    .replace("metadata: {name: vm-0}", &format!("metadata:\n  name: vm-0\n  annotations: {{{annotations}}}"));
    let user_data = format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: vm-0-user-data}}\nstringData: {{userData: {USER_DATA}}}\n"
    );
    vec![secret("bmc"), user_data, host]
}

/// `metalhost run` on the directory's manifests against the lab's Ironic.
fn run(lab: &Lab, dir: &Path) -> Metalhost {
    let dir_arg = dir.to_str().unwrap();
    let args = ["run", "--manifests", dir_arg, "--ironic", &lab.info.ironic_url];
    Metalhost::start(BIN.as_ref(), &args, &[("METALHOST_LOG", "info")], &dir.join("metalhost.log"))
}

/// Waits until the host's status file satisfies `done`.
fn wait_status(
    dir: &Path,
    what: &str,
    metalhost: &Metalhost,
    done: impl Fn(&metalhost_api::BareMetalHostStatus) -> bool,
) {
    let deadline = Instant::now() + BOOT;
    loop {
        let status = status_file(dir, "vm-0").and_then(|h| h.status);
        if status.as_ref().is_some_and(&done) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {BOOT:?}: {status:#?}\n{}",
            metalhost.output()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn a_live_iso_boots_on_a_real_machine_with_its_config_drive_and_is_ejected() {
    let lab = Lab::start_vms(1);
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "hosts.yaml", &manifests(&lab, "live.iso", ""));
    let metalhost = run(&lab, dir.path());
    let started = Instant::now();
    let provisioned = |iso: &'static str| {
        move |s: &metalhost_api::BareMetalHostStatus| {
            s.provisioning.state == ProvisioningState::Provisioned
                && s.provisioning.image.as_ref().is_some_and(|i| i.url.ends_with(iso))
        }
    };
    wait_status(dir.path(), "provisioned with live.iso", &metalhost, provisioned("/live.iso"));
    let deployed = started.elapsed();
    let (line, seen) = lab
        .wait_console(0, "metalhost-live-iso: booted live.iso", 0, BOOT)
        .unwrap_or_else(|| panic!("no boot of live.iso on the console\n{}", metalhost.output()));
    eprintln!(
        "live.iso: provisioned {:.0} s, on the console {:.0} s after the start: {line}",
        deployed.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    let (line, seen) =
        lab.wait_console(0, "metalhost-live-iso: no config drive", seen, BOOT).expect("no config drive");
    eprintln!("{line}");

    // another ISO with a config drive: deprovisioned, provisioned again, booted again
    let again = Instant::now();
    write(
        dir.path(),
        "hosts.yaml",
        &manifests(&lab, "live-2.iso", "metalhost.io/live-iso-config-drive: 'true'"),
    );
    wait_status(dir.path(), "provisioned with live-2.iso", &metalhost, provisioned("/live-2.iso"));
    let (line, seen) = lab
        .wait_console(0, "metalhost-live-iso: booted live-2.iso", seen, BOOT)
        .unwrap_or_else(|| panic!("no boot of live-2.iso on the console\n{}", metalhost.output()));
    eprintln!("live-2.iso on the console {:.0} s after the change: {line}", again.elapsed().as_secs_f64());
    let (line, seen) = lab
        .wait_console(0, "metalhost-user-data:", seen, BOOT)
        .unwrap_or_else(|| panic!("no user data on the console\n{}", metalhost.output()));
    assert_eq!(line.trim(), format!("metalhost-user-data: {USER_DATA}"));

    // a reprovision (a new token, the same URL) boots the ISO again
    let again = Instant::now();
    let reprovision = "metalhost.io/live-iso-config-drive: 'true', metalhost.io/reprovision: 'again-1'";
    write(dir.path(), "hosts.yaml", &manifests(&lab, "live-2.iso", reprovision));
    let (line, _) = lab
        .wait_console(0, "metalhost-live-iso: booted live-2.iso", seen, BOOT)
        .unwrap_or_else(|| panic!("no boot again after the reprovision token\n{}", metalhost.output()));
    eprintln!("booted again {:.0} s after the reprovision token: {line}", again.elapsed().as_secs_f64());
    wait_status(dir.path(), "provisioned again", &metalhost, provisioned("/live-2.iso"));

    // eject: the machine's CD drive is empty (in its definition: sushy-tools' libvirt driver
    // changes that, which the running machine takes at its next start); the host stays provisioned
    let cd_inserted = |media: &str| metalhost_testlab::support::vm_cd_source(media).is_some();
    let media = lab.vm_media(0);
    assert!(cd_inserted(&media), "the ISO (as Ironic staged it) in the drive: {media}");
    let annotations = format!("{reprovision}, metalhost.io/eject-media: 'true'");
    write(dir.path(), "hosts.yaml", &manifests(&lab, "live-2.iso", &annotations));
    wait_status(dir.path(), "ejected", &metalhost, |s| {
        s.conditions.iter().any(|c| c.type_ == "LiveISOMediaInserted" && c.status == "False")
    });
    let media = lab.vm_media(0);
    assert!(!cd_inserted(&media), "the CD drive still holds media: {media}");
    let st = status_file(dir.path(), "vm-0").and_then(|h| h.status).expect("status");
    assert_eq!(st.provisioning.state, ProvisioningState::Provisioned);
}

/// `virsh` on the system libvirt: its output.
fn virsh(args: &[&str]) -> String {
    let out = std::process::Command::new("virsh")
        .args(["-q", "-c", "qemu:///system"])
        .args(args)
        .output()
        .expect("virsh");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The number in the `virsh` line that starts with `key` (`Max memory:     1048576 KiB`).
fn virsh_number(text: &str, key: &str) -> i64 {
    let line =
        text.lines().find(|l| l.trim_start().starts_with(key)).unwrap_or_else(|| panic!("{key} in {text}"));
    line.split_whitespace().find_map(|w| w.parse().ok()).unwrap_or_else(|| panic!("a number in {line}"))
}

/// Out-of-band inspection (`inspectionMode: fast`: Ironic's Redfish inspection of the machine)
/// fills `status.hardware` with the machine's real RAM, CPU count, NIC MAC and disk size, as
/// libvirt reports them.
#[test]
fn inspection_of_a_real_machine_fills_status_hardware_with_what_libvirt_reports() {
    let lab = Lab::start_vms(1);
    let dir = tempfile::tempdir().unwrap();
    let bmc = lab.bmc_address("redfish-virtualmedia", 0);
    let host =
        host("vm-0", &bmc, "bmc", "null", "").replace("inspectionMode: disabled", "inspectionMode: fast");
    write(dir.path(), "hosts.yaml", &[secret("bmc"), host]);
    let metalhost = run(&lab, dir.path());
    let started = Instant::now();
    wait_status(dir.path(), "inspected and available", &metalhost, |s| {
        s.provisioning.state == ProvisioningState::Available && s.hardware.is_some()
    });
    eprintln!("inspected and available {:.0} s after the start", started.elapsed().as_secs_f64());
    let hardware =
        status_file(dir.path(), "vm-0").and_then(|h| h.status).and_then(|s| s.hardware).expect("hardware");

    let domain = lab.info.systems[0].domain.as_deref().expect("a VM lab");
    let info = virsh(&["dominfo", domain]);
    assert_eq!(hardware.ram_mebibytes, Some(virsh_number(&info, "Max memory:") / 1024), "{info}");
    assert_eq!(hardware.cpu.as_ref().and_then(|c| c.count), Some(virsh_number(&info, "CPU(s):")), "{info}");
    let interfaces = virsh(&["domiflist", domain]);
    let macs: Vec<String> = hardware.nics.iter().flatten().filter_map(|n| n.mac.clone()).collect();
    assert!(
        !macs.is_empty() && macs.iter().all(|m| interfaces.contains(m.as_str())),
        "{macs:?} vs {interfaces}"
    );
    let disk = virsh(&["domblkinfo", domain, "hda"]);
    let sizes: Vec<i64> = hardware.storage.iter().flatten().filter_map(|s| s.size_bytes).collect();
    assert_eq!(sizes, [virsh_number(&disk, "Capacity:")], "{disk}");
    assert_eq!(hardware.cpu.and_then(|c| c.arch).as_deref(), Some("x86_64"));
}

/// A live kernel and initramfs (`format: live-kernel`) on virtual media: Ironic makes an ISO of
/// them (the lab configures its ESP image and isolinux, as README says a user must) and the
/// machine boots it: the initramfs's marker on the serial console.
#[test]
fn a_live_kernel_boots_on_a_real_machine_by_virtual_media() {
    let lab = Lab::start_vms(1);
    let dir = tempfile::tempdir().unwrap();
    let kernel = lab.info.live_kernel.clone().expect("the lab's live kernel");
    let initramfs = lab.info.live_initramfs.clone().expect("the lab's live initramfs");
    let image = format!("{{url: \"{kernel}\", format: live-kernel}}");
    let annotations = format!(
        "metalhost.io/initramfs-url: \"{initramfs}\", metalhost.io/kernel-arguments: \"console=ttyS0,115200\""
    );
    let host = host("vm-0", &lab.bmc_address("redfish-virtualmedia", 0), "bmc", &image, "").replace(
        "metadata: {name: vm-0}",
        &format!("metadata:\n  name: vm-0\n  annotations: {{{annotations}}}"),
    );
    write(dir.path(), "hosts.yaml", &[secret("bmc"), host]);
    let metalhost = run(&lab, dir.path());
    let started = Instant::now();
    wait_status(dir.path(), "provisioned with the live kernel", &metalhost, |s| {
        s.provisioning.state == ProvisioningState::Provisioned
    });
    let (line, _) = lab
        .wait_console(0, "metalhost-live-iso: booted live-kernel", 0, BOOT)
        .unwrap_or_else(|| panic!("no boot of the live kernel on the console\n{}", metalhost.output()));
    eprintln!("live kernel on the console {:.0} s after the start: {line}", started.elapsed().as_secs_f64());
    let (line, _) = lab.wait_console(0, "cmdline", 0, BOOT).expect("the kernel's command line");
    assert!(line.contains("console=ttyS0,115200"), "the kernel arguments reached the kernel: {line}");
}

/// A DataImage manifest beside an externally provisioned host (its CD is free): its ISO goes into
/// the machine's CD drive (the BMC's virtual media and the domain's cdrom), `get dataimages` and
/// `describe` show it from its status file; removing the manifest ejects the ISO, then the status
/// file goes (it is what a finalizer is in Kubernetes). The host stays as it was.
#[test]
fn a_data_image_manifest_puts_its_iso_in_the_machines_cd_drive_until_it_is_removed() {
    use metalhost_testlab::support::{bmc, vm_cd_source, wait_vm_cd};
    let lab = Lab::start_vms(1);
    let dir = tempfile::tempdir().unwrap();
    let bmc_address = lab.bmc_address("redfish-virtualmedia", 0);
    let external = host("vm-0", &bmc_address, "bmc", "null", "  externallyProvisioned: true\n");
    write(dir.path(), "hosts.yaml", &[secret("bmc"), external]);
    let metalhost = run(&lab, dir.path());
    let external = |s: &metalhost_api::BareMetalHostStatus| {
        s.provisioning.state == ProvisioningState::ExternallyProvisioned
    };
    wait_status(dir.path(), "externally provisioned", &metalhost, external);
    assert_eq!(vm_cd_source(&lab.vm_media(0)), None, "an empty drive first");

    let url = lab.info.live_isos["live-2.iso"].clone();
    let image = format!(
        "apiVersion: metal3.io/v1alpha1\nkind: DataImage\nmetadata: {{name: vm-0}}\nspec: {{url: \"{url}\"}}\n"
    );
    write(dir.path(), "data-image.yaml", &[image]);
    let record = dir.path().join("vm-0_DataImage.status.yaml");
    let deadline = Instant::now() + Duration::from_secs(120);
    let inserted = loop {
        let (_, cd) = bmc(&lab, 0);
        let text = std::fs::read_to_string(&record).unwrap_or_default();
        let kept: serde_json::Value = serde_yaml_ng::from_str(&text).unwrap_or_default();
        if cd["Inserted"] == serde_json::json!(true) && kept["status"]["attachedImage"]["url"] == url.as_str()
        {
            break cd;
        }
        assert!(Instant::now() < deadline, "not attached: {cd}\n{text}\n{}", metalhost.output());
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(inserted["Image"].as_str().is_some_and(|i| i.ends_with(".iso")), "{inserted}");
    let source = wait_vm_cd(&lab, 0, true, Duration::from_secs(30)).unwrap_or_default();
    eprintln!("the machine's CD: {source}");
    let cli = |args: &[&str]| cli(dir.path(), args);
    let listed = cli(&["get", "dataimages"]);
    let row = listed.lines().nth(1).unwrap_or_default().split_whitespace().collect::<Vec<_>>();
    assert_eq!(row, ["default", "vm-0", url.as_str(), url.as_str(), "0"], "{listed}");
    let described = cli(&["describe", "vm-0"]);
    assert!(
        described
            .contains(&format!("DataImage:\n  URL:                {url}\n  Attached:           {url}\n")),
        "{described}"
    );

    // the manifest removed: ejected, then the status file goes
    std::fs::remove_file(dir.path().join("data-image.yaml")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while record.exists() {
        assert!(Instant::now() < deadline, "the DataImage status file stays\n{}", metalhost.output());
        std::thread::sleep(Duration::from_millis(500));
    }
    let (_, cd) = bmc(&lab, 0);
    assert_eq!(cd["Inserted"], serde_json::json!(false), "ejected before the record went: {cd}");
    wait_vm_cd(&lab, 0, false, Duration::from_secs(30));
    let status = status_file(dir.path(), "vm-0").and_then(|h| h.status).expect("status");
    assert_eq!(status.provisioning.state, ProvisioningState::ExternallyProvisioned);
}

/// `metalhost ARGS --manifests DIR`'s output; it must succeed.
fn cli(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new(BIN).args(args).arg("--manifests").arg(dir).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Polls the YAML record file `path` (a standalone status file) until `check` likes it.
fn record_where(
    path: &Path,
    what: &str,
    metalhost: &Metalhost,
    check: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + BOOT;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let record: serde_json::Value = serde_yaml_ng::from_str(&text).unwrap_or_default();
        if check(&record) {
            return record;
        }
        assert!(Instant::now() < deadline, "{what}: not within {BOOT:?}: {text}\n{}", metalhost.output());
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn condition<'a>(record: &'a serde_json::Value, type_: &str) -> &'a serde_json::Value {
    record["status"]["conditions"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["type"] == type_))
        .unwrap_or(&serde_json::Value::Null)
}

/// Standalone HostFirmwareSettings on a machine whose BMC keeps BIOS attributes: a registered host
/// gets its settings' status file (the machine's BIOS) and its model's FirmwareSchema file; a
/// HostFirmwareSettings manifest asking a value the schema refuses gets upstream's condition and
/// its `ValidationFailed` event; an allowed value goes through preparing (one manual clean) into
/// the machine's BIOS, and the status file shows it. `get` and `describe` show them.
#[test]
fn a_firmware_settings_manifest_reaches_the_machines_bios_through_preparing() {
    let lab = Lab::start_vms(1);
    let dir = tempfile::tempdir().unwrap();
    let bmc_address = lab.bmc_address("redfish-virtualmedia", 0);
    write(dir.path(), "hosts.yaml", &[secret("bmc"), host("vm-0", &bmc_address, "bmc", "null", "")]);
    let metalhost = run(&lab, dir.path());
    let available =
        |s: &metalhost_api::BareMetalHostStatus| s.provisioning.state == ProvisioningState::Available;
    wait_status(dir.path(), "available", &metalhost, available);
    let settings_path = dir.path().join("vm-0_HostFirmwareSettings.status.yaml");
    let settings = record_where(&settings_path, "the machine's BIOS in the status", &metalhost, |r| {
        r["status"]["settings"]["ProcTurboMode"].is_string()
    });
    assert_eq!(
        (
            condition(&settings, "Valid")["status"].as_str(),
            condition(&settings, "ChangeDetected")["status"].as_str()
        ),
        (Some("True"), Some("False"))
    );
    let reported = settings["status"]["settings"]["ProcTurboMode"].as_str().unwrap().to_string();
    let schema_name = settings["status"]["schema"]["name"].as_str().expect("a schema reference").to_string();
    let schema_text =
        std::fs::read_to_string(dir.path().join(format!("{schema_name}_FirmwareSchema.status.yaml")))
            .expect("the schema's file");
    let schema: serde_json::Value = serde_yaml_ng::from_str(&schema_text).unwrap();
    let allowed: Vec<String> =
        serde_json::from_value(schema["spec"]["schema"]["ProcTurboMode"]["allowable_values"].clone())
            .unwrap_or_else(|e| panic!("allowed values ({e}): {schema_text}"));
    let other = allowed.iter().find(|v| **v != reported).expect("another allowed value").clone();
    let manifest = |value: &str| {
        format!(
            "apiVersion: metal3.io/v1alpha1\nkind: HostFirmwareSettings\nmetadata: {{name: vm-0}}\nspec:\n  settings: {{ProcTurboMode: {value}}}\n"
        )
    };

    // a value the schema refuses: upstream's condition, and its event in the log
    write(dir.path(), "firmware.yaml", &[manifest("Sometimes")]);
    let refused = record_where(&settings_path, "Valid turned False", &metalhost, |r| {
        condition(r, "Valid")["status"] == "False"
    });
    let valid = condition(&refused, "Valid");
    assert_eq!(
        (valid["reason"].as_str(), valid["message"].as_str()),
        (Some("ConfigurationError"), Some("Invalid BIOS setting"))
    );
    assert_eq!(condition(&refused, "ChangeDetected")["status"], "True");
    let cli = |args: &[&str]| cli(dir.path(), args);
    let described = cli(&["describe", "vm-0"]);
    assert!(
        described.contains(
            "Invalid BIOS setting: Setting ProcTurboMode is invalid, unknown enumeration value - Sometimes"
        ),
        "{described}"
    );
    assert!(described.contains("Wanted:             ProcTurboMode=Sometimes"), "{described}");
    let status = status_file(dir.path(), "vm-0").and_then(|h| h.status).expect("status");
    assert_eq!(
        status.provisioning.state,
        ProvisioningState::Available,
        "nothing prepared for a refused value"
    );

    // an allowed value: prepared (a manual clean), in the machine's BIOS, then in the status file
    write(dir.path(), "firmware.yaml", &[manifest(&other)]);
    let applied = record_where(&settings_path, "the change applied and reported", &metalhost, |r| {
        r["status"]["settings"]["ProcTurboMode"] == other.as_str()
            && condition(r, "ChangeDetected")["status"] == "False"
    });
    assert_eq!(condition(&applied, "Valid")["status"], "True");
    let bios_url = format!("{}/redfish/v1/Systems/{}/BIOS", lab.info.sushy_url, lab.info.systems[0].uuid);
    let (code, bios) = metalhost_testlab::support::http_text("GET", &bios_url, &[]);
    assert_eq!(code, 200, "{bios}");
    let bios: serde_json::Value = serde_json::from_str(&bios).unwrap();
    assert_eq!(bios["Attributes"]["ProcTurboMode"], other.as_str(), "the machine's BIOS: {bios}");
    wait_status(dir.path(), "available again", &metalhost, available);
    let events = std::fs::read_to_string(dir.path().join(".metalhost-events.jsonl")).unwrap_or_default();
    let preparing = events.lines().filter(|l| l.contains("available → preparing")).count();
    assert_eq!(preparing, 1, "from available through preparing once: {events}");
    let listed = cli(&["get", "hostfirmwaresettings"]);
    let row: Vec<&str> = listed.lines().nth(1).unwrap_or_default().split_whitespace().collect();
    assert_eq!(
        row.get(1..).map(|r| r.to_vec()),
        Some(vec!["vm-0", schema_name.as_str(), row[3], "True", "False"]),
        "{listed}"
    );
}
