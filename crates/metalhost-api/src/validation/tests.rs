//! Upstream's admission rules (baremetal-operator 02aa5059, internal/webhooks/metal3.io/v1alpha1),
//! each with a host it admits and one it refuses with upstream's exact message.

use super::*;

/// A host from YAML lines under `spec:`, with optional annotations.
fn host_yaml(name: &str, annotations: &str, spec: &str) -> BareMetalHost {
    let text = format!(
        "apiVersion: metal3.io/v1alpha1\nkind: BareMetalHost\nmetadata:\n  name: {name}\n  namespace: lab\n{annotations}spec:\n{spec}"
    );
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{text}\n{e}"))
}

const OK_SPEC: &str = "  online: true\n  bootMACAddress: 00:11:22:33:44:55\n  bmc: {address: 'redfish://bmc/redfish/v1/Systems/1', credentialsName: c}\n";

fn messages(host: &BareMetalHost) -> Vec<String> {
    validate_host(host).iter().map(ToString::to_string).collect()
}

fn with(extra: &str) -> String {
    format!("{OK_SPEC}{extra}")
}

fn bmc(address: &str, extra: &str) -> String {
    format!("  online: true\n  bmc: {{address: '{address}', credentialsName: c}}\n{extra}")
}

struct Row {
    rule: &'static str,
    host_name: &'static str,
    annotations: &'static str,
    spec: String,
    want: Vec<&'static str>,
}

fn row(rule: &'static str, spec: impl Into<String>, want: Vec<&'static str>) -> Row {
    Row { rule, host_name: "h1", annotations: "", spec: spec.into(), want }
}

fn annotated(rule: &'static str, annotations: &'static str, want: Vec<&'static str>) -> Row {
    Row { rule, host_name: "h1", annotations, spec: OK_SPEC.into(), want }
}

fn named(rule: &'static str, host_name: &'static str, want: Vec<&'static str>) -> Row {
    Row { rule, host_name, annotations: "", spec: OK_SPEC.into(), want }
}

fn check(rows: Vec<Row>) {
    for row in rows {
        let host = host_yaml(row.host_name, row.annotations, &row.spec);
        assert_eq!(messages(&host), row.want, "{}", row.rule);
    }
}

#[test]
fn bmc_address_rules() {
    check(vec![
        row("valid redfish host", OK_SPEC, vec![]),
        row("scheme:host means scheme://host", bmc("ipmi:192.168.122.1", ""), vec![]),
        row("bare host:port is IPMI", bmc("192.168.122.1:6233", ""), vec![]),
        row("empty address is admitted", bmc("", ""), vec![]),
        row(
            "unknown scheme",
            bmc("test:127.0.1.1", ""),
            vec!["spec.bmc.address: Unknown BMC type 'test' for address test:127.0.1.1"],
        ),
        row(
            "host name not a DNS name",
            bmc("ipmi://-host.example.com", ""),
            vec![
                "spec.bmc.address: failed to parse BMC address information: BMC address hostname/IP : [-host.example.com] is invalid",
            ],
        ),
        row(
            "bare host with a plus",
            bmc("host+1.example.com", ""),
            vec![
                "spec.bmc.address: failed to parse BMC address information: BMC address hostname/IP : [host+1.example.com] is invalid",
            ],
        ),
        row(
            "bad port",
            bmc("ipmi://host:abc", ""),
            vec![
                "spec.bmc.address: failed to parse BMC address information: parse \"ipmi://host:abc\": invalid port \":abc\" after host",
            ],
        ),
        // upstream's webhook admits an empty credentialsName; the controller reports it
        row(
            "empty credentials name",
            "  online: true\n  bmc: {address: 'ipmi://bmc', credentialsName: ''}\n",
            vec![],
        ),
    ]);
}

#[test]
fn boot_mac_rules() {
    check(vec![
        row("ipmi without MAC (inspection finds it)", bmc("ipmi://bmc", ""), vec![]),
        row("redfish without MAC", bmc("redfish://bmc/x", ""), vec![]),
        row("idrac-redfish without MAC", bmc("idrac-redfish://bmc/x", ""), vec![]),
        row(
            "libvirt always needs a MAC",
            bmc("libvirt://192.168.122.1:6233", ""),
            vec!["spec.bootMACAddress: BMC driver libvirt requires a BootMACAddress value"],
        ),
        row(
            "inspection disabled needs a MAC",
            bmc("redfish+http://bmc/x", "  inspectionMode: disabled\n"),
            vec!["spec.bootMACAddress: BMC driver redfish+http requires a BootMACAddress value"],
        ),
        row(
            "virtual media with inspection disabled and a disk image needs a MAC",
            bmc(
                "redfish-virtualmedia://bmc/x",
                "  inspectionMode: disabled\n  image: {url: 'http://h/d.img', checksum: abc}\n",
            ),
            vec!["spec.bootMACAddress: BMC driver redfish-virtualmedia requires a BootMACAddress value"],
        ),
        // extension: a live ISO on virtual media never boots from the network
        row(
            "live ISO on virtual media without MAC or inspection",
            bmc(
                "redfish-virtualmedia://bmc/x",
                "  inspectionMode: disabled\n  image: {url: 'http://h/a.iso', format: live-iso}\n",
            ),
            vec![],
        ),
        Row {
            rule: "live kernel on virtual media without MAC or inspection (validate and run agree)",
            host_name: "h1",
            annotations: "  annotations: {metalhost.io/initramfs-url: 'http://h/initrd'}\n",
            spec: bmc(
                "redfish-virtualmedia://bmc/x",
                "  inspectionMode: disabled\n  image: {url: 'http://h/vmlinuz', format: live-kernel}\n",
            ),
            want: vec![],
        },
        row(
            "live ISO by UEFI HTTP boot still needs a MAC, as upstream",
            bmc(
                "redfish-uefihttp://bmc/x",
                "  inspectionMode: disabled\n  image: {url: 'http://h/a.iso', format: live-iso}\n",
            ),
            vec!["spec.bootMACAddress: BMC driver redfish-uefihttp requires a BootMACAddress value"],
        ),
        row("MAC with dashes", OK_SPEC.replace("00:11:22:33:44:55", "00-11-22-33-44-55"), vec![]),
        row(
            "malformed MAC",
            OK_SPEC.replace("00:11:22:33:44:55", "00:11:22:33:44"),
            vec!["spec.bootMACAddress: address 00:11:22:33:44: invalid MAC address"],
        ),
        // upstream checks the MAC only with a usable BMC address
        row("malformed MAC without a BMC", "  online: true\n  bootMACAddress: nope\n", vec![]),
    ]);
    let by_annotation = Row {
        rule: "inspection disabled by annotation needs a MAC",
        host_name: "h1",
        annotations: "  annotations: {inspect.metal3.io: disabled}\n",
        spec: bmc("ipmi://bmc", ""),
        want: vec!["spec.bootMACAddress: BMC driver ipmi requires a BootMACAddress value"],
    };
    check(vec![by_annotation]);
}

#[test]
fn capability_rules() {
    check(vec![
        row("secure boot on Redfish", with("  bootMode: UEFISecureBoot\n"), vec![]),
        row(
            "secure boot on IPMI",
            bmc("ipmi://bmc", "  bootMode: UEFISecureBoot\n"),
            vec!["spec.bootMode: BMC driver ipmi does not support secure boot"],
        ),
        row("hardware RAID on Redfish", with("  raid: {hardwareRAIDVolumes: [{level: '1'}]}\n"), vec![]),
        row(
            "hardware RAID on IPMI",
            bmc("ipmi://bmc", "  raid: {hardwareRAIDVolumes: [{level: '1'}]}\n"),
            vec!["spec.raid.hardwareRAIDVolumes: BMC driver ipmi does not support configuring RAID"],
        ),
        row("fast inspection on Redfish", with("  inspectionMode: fast\n"), vec![]),
        row(
            "fast inspection on IPMI",
            bmc("ipmi://bmc", "  inspectionMode: fast\n"),
            vec!["spec.inspectionMode: BMC driver ipmi does not support fast (out-of-band) inspection"],
        ),
        row("no firmware field", OK_SPEC, vec![]),
        row(
            "firmware field on any driver",
            with("  firmware: {sriovEnabled: true}\n"),
            vec![
                "spec.firmware: the Firmware field is no longer supported, use HostFirmwareSettings resource instead",
            ],
        ),
    ]);
}

/// Upstream's capabilities per BMC type, seen through the admission rules: (address, needs a MAC
/// with inspection on, fast inspection, hardware RAID, secure boot).
#[test]
fn every_scheme_through_the_admission_rules() {
    let schemes = [
        ("ipmi://bmc", true, false, false, false),
        ("libvirt://bmc", false, false, false, false),
        ("redfish://bmc/x", true, true, true, true),
        ("redfish+http://bmc/x", true, true, true, true),
        ("redfish+https://bmc/x", true, true, true, true),
        ("ilo5-redfish://bmc/x", true, true, true, true),
        ("idrac-redfish://bmc/x", true, true, true, true),
        ("redfish-virtualmedia://bmc/x", true, true, true, true),
        ("ilo5-virtualmedia://bmc/x", true, true, true, true),
        ("idrac-virtualmedia+http://bmc/x", true, true, true, true),
        ("redfish-uefihttp://bmc/x", true, true, true, true),
        ("fake-hardware://bmc", false, true, true, true),
    ];
    assert_eq!(schemes.len() - 2, crate::bmc::ALL_KINDS.len(), "every kind, redfish with both suffixes");
    for (address, mac_optional, fast, raid, secure_boot) in schemes {
        let bmc_type = address.split("://").next().unwrap();
        let host = host_yaml("h1", "", &bmc(address, ""));
        let want_mac = format!("spec.bootMACAddress: BMC driver {bmc_type} requires a BootMACAddress value");
        assert_eq!(messages(&host).contains(&want_mac), !mac_optional, "{address}");
        let spec = "  bootMACAddress: 00:11:22:33:44:55\n  inspectionMode: fast\n  bootMode: UEFISecureBoot\n  raid: {hardwareRAIDVolumes: [{level: '1'}]}\n  firmware: {sriovEnabled: true}\n";
        let got = messages(&host_yaml("h1", "", &bmc(address, spec)));
        let mut want = vec![
            "spec.firmware: the Firmware field is no longer supported, use HostFirmwareSettings resource instead"
                .to_string(),
        ];
        if !raid {
            want.push(format!(
                "spec.raid.hardwareRAIDVolumes: BMC driver {bmc_type} does not support configuring RAID"
            ));
        }
        if !secure_boot {
            want.push(format!("spec.bootMode: BMC driver {bmc_type} does not support secure boot"));
        }
        if !fast {
            want.push(format!(
                "spec.inspectionMode: BMC driver {bmc_type} does not support fast (out-of-band) inspection"
            ));
        }
        assert_eq!(got, want, "{address}");
    }
}

#[test]
fn raid_rules() {
    check(vec![
        row(
            "one software RAID root volume of level 1",
            with("  raid: {softwareRAIDVolumes: [{level: '1', rootVolume: true}, {level: '0'}]}\n"),
            vec![],
        ),
        row(
            "hardware and software RAID together",
            with("  raid: {hardwareRAIDVolumes: [{level: '1'}], softwareRAIDVolumes: [{level: '1'}]}\n"),
            vec!["spec.raid: hardwareRAIDVolumes and softwareRAIDVolumes can not be set at the same time"],
        ),
        row(
            "physical disks with a controller and the right count",
            with(
                "  raid: {hardwareRAIDVolumes: [{level: '1', controller: c, numberOfPhysicalDisks: 2, physicalDisks: [a, b]}]}\n",
            ),
            vec![],
        ),
        row(
            "physical disks without controller and a wrong count",
            with(
                "  raid: {hardwareRAIDVolumes: [{level: '1', numberOfPhysicalDisks: 3, physicalDisks: [a, b]}]}\n",
            ),
            vec![
                "spec.raid.hardwareRAIDVolumes[0]: 'physicalDisks' specified without 'controller' in hardware RAID volume 0",
                "spec.raid.hardwareRAIDVolumes[0]: the 'numberOfPhysicalDisks'[3] and number of 'physicalDisks'[2] is not same for volume 0",
            ],
        ),
        row(
            "two root software RAID volumes",
            with(
                "  raid: {softwareRAIDVolumes: [{level: '1', rootVolume: true}, {level: '1', rootVolume: true}]}\n",
            ),
            vec!["spec.raid.softwareRAIDVolumes: softwareRAIDVolumes[*].rootVolume can only be set once"],
        ),
        row(
            "root volume and root device hints",
            with(
                "  rootDeviceHints: {deviceName: /dev/sda}\n  raid: {softwareRAIDVolumes: [{level: '1', rootVolume: true}]}\n",
            ),
            vec![
                "spec.raid.softwareRAIDVolumes: softwareRAIDVolumes[*].rootVolume and rootDeviceHints can not be set at the same time",
            ],
        ),
        row(
            "root volume not RAID-1",
            with("  raid: {softwareRAIDVolumes: [{level: '1'}, {level: '0', rootVolume: true}]}\n"),
            vec![
                "spec.raid.softwareRAIDVolumes[1]: softwareRAIDVolumes[1] with rootVolume set must use RAID level 1",
            ],
        ),
    ]);
}

#[test]
fn name_hints_power_and_secret_rules() {
    check(vec![
        named("name with dots, dashes and underscores", "h-1.rack_2", vec![]),
        named(
            "name with another character",
            "h1@x",
            vec![
                "metadata.name: BareMetalHost resource name cannot contain characters other than [A-Za-z0-9._-]",
            ],
        ),
        named(
            "name that is a UUID",
            "27946b59-9e44-4fa7-8e91-f3527a1ef094",
            vec!["metadata.name: BareMetalHost resource name cannot be a UUID"],
        ),
        named(
            "38 characters around a UUID, which google/uuid takes without checking the ends",
            "a27946b59-9e44-4fa7-8e91-f3527a1ef094b",
            vec!["metadata.name: BareMetalHost resource name cannot be a UUID"],
        ),
        named(
            "name that is a UUID without dashes",
            "27946b599e444fa78e91f3527a1ef094",
            vec!["metadata.name: BareMetalHost resource name cannot be a UUID"],
        ),
        row(
            "root device hint by path",
            with("  rootDeviceHints: {deviceName: /dev/disk/by-path/pci-0}\n"),
            vec![],
        ),
        row(
            "root device hint not under /dev",
            with("  rootDeviceHints: {deviceName: sda}\n"),
            vec![
                "spec.rootDeviceHints.deviceName: device name of root device hint must be a /dev/ path, not \"sda\"",
            ],
        ),
        row(
            "root device hint too deep",
            with("  rootDeviceHints: {deviceName: /dev/disk/by-id/x}\n"),
            vec![
                "spec.rootDeviceHints.deviceName: device name of root device hint must be path in /dev/ or /dev/disk/by-path/, not \"/dev/disk/by-id/x\"",
            ],
        ),
        row("power off disabled while online", with("  disablePowerOff: true\n"), vec![]),
        row(
            "power off disabled while offline",
            OK_SPEC.replace("online: true", "online: false\n  disablePowerOff: true"),
            vec![
                "spec.disablePowerOff: node can't simultaneously have online set to false and have power off disabled",
            ],
        ),
        row("same-namespace user data", with("  userData: {name: ud, namespace: lab}\n"), vec![]),
        row(
            "cross-namespace user data",
            with("  userData: {name: ud, namespace: other}\n  networkData: {name: nd, namespace: lab}\n"),
            vec![
                "spec.userData.namespace: baremetalhosts.metal3.io \"h1\" is forbidden: userData: cross-namespace Secret references are not allowed",
            ],
        ),
    ]);
}

#[test]
fn image_rules() {
    check(vec![
        row(
            "disk image with checksum",
            with("  image: {url: 'https://h/d.qcow2', checksum: abc, format: qcow2}\n"),
            vec![],
        ),
        row(
            "live ISO without checksum",
            with("  image: {url: 'http://h/a.iso', format: live-iso}\n"),
            vec![],
        ),
        row("OCI image without checksum", with("  image: {url: 'oci://r/disk:1'}\n"), vec![]),
        row(
            "disk image without checksum",
            with("  image: {url: 'http://h/d.qcow2', format: qcow2}\n"),
            vec!["spec.image.checksum: checksum is required for normal images"],
        ),
        row(
            "OCI image with a checksum",
            with("  image: {url: 'oci://r/iso:1', format: live-iso, checksum: abc}\n"),
            vec![
                "spec.image.checksum: spec.image.checksum must be empty for OCI images (oci:// images have embedded checksums)",
            ],
        ),
        row(
            "image URL not absolute",
            with("  image: {url: 'not a url', format: live-iso}\n"),
            vec![
                "spec.image.url: image URL not a url is invalid: parse \"not a url\": invalid URI for request",
            ],
        ),
        row(
            "image URL with another scheme",
            with("  image: {url: 'ftp://h/a.iso', format: live-iso}\n"),
            vec![
                "spec.image.url: image URL ftp://h/a.iso is invalid: invalid scheme in URL, \"ftp\" not allowed",
            ],
        ),
        // extension: a live kernel needs its initramfs
        row(
            "live kernel without its initramfs",
            with("  image: {url: 'http://h/vmlinuz', format: live-kernel}\n"),
            vec![
                "metadata.annotations[metalhost.io/initramfs-url]: required with format live-kernel (the initramfs to boot with the kernel at spec.image.url)",
            ],
        ),
    ]);
}

#[test]
fn annotation_rules() {
    check(vec![
        annotated(
            "valid status annotation",
            "  annotations: {baremetalhost.metal3.io/status: '{\"operationalStatus\": \"OK\", \"errorCount\": 1, \"provisioning\": {\"state\": \"x\", \"ID\": \"\"}}'}\n",
            vec![],
        ),
        annotated(
            "status annotation with an unknown field",
            "  annotations: {baremetalhost.metal3.io/status: '{\"operationalStatus\": \"OK\", \"provisioning\": {\"bogus\": 1}}'}\n",
            vec![
                "metadata.annotations[baremetalhost.metal3.io/status]: error decoding status annotation: json: unknown field \"bogus\"",
            ],
        ),
        annotated(
            "status annotation that is not JSON",
            "  annotations: {baremetalhost.metal3.io/status: 'OK'}\n",
            vec![
                "metadata.annotations[baremetalhost.metal3.io/status]: error decoding status annotation: invalid character 'O' looking for beginning of value",
            ],
        ),
        annotated(
            "status annotation cut short",
            "  annotations: {baremetalhost.metal3.io/status: '{\"operationalStatus\": '}\n",
            vec![
                "metadata.annotations[baremetalhost.metal3.io/status]: error decoding status annotation: unexpected EOF",
            ],
        ),
        annotated(
            "status annotation with a wrong type",
            "  annotations: {baremetalhost.metal3.io/status: '{\"errorCount\": \"1\"}'}\n",
            vec![
                "metadata.annotations[baremetalhost.metal3.io/status]: error decoding status annotation: json: cannot unmarshal string into Go struct field BareMetalHostStatus.errorCount of type int",
            ],
        ),
        annotated(
            "status annotation with a bad operational status",
            "  annotations: {baremetalhost.metal3.io/status: '{\"operationalStatus\": \"fine\"}'}\n",
            vec![
                "metadata.annotations[baremetalhost.metal3.io/status]: invalid operationalStatus 'fine' in the baremetalhost.metal3.io/status annotation",
            ],
        ),
        annotated(
            "status annotation with servicing (not in upstream's allowed list)",
            "  annotations: {baremetalhost.metal3.io/status: '{\"operationalStatus\": \"servicing\"}'}\n",
            vec![
                "metadata.annotations[baremetalhost.metal3.io/status]: invalid operationalStatus 'servicing' in the baremetalhost.metal3.io/status annotation",
            ],
        ),
        annotated(
            "status annotation with a bad error type",
            "  annotations: {baremetalhost.metal3.io/status: '{\"errorType\": \"servicing error\"}'}\n",
            vec![
                "metadata.annotations[baremetalhost.metal3.io/status]: invalid errorType 'servicing error' in the baremetalhost.metal3.io/status annotation",
            ],
        ),
        annotated(
            "valid reboot annotation",
            "  annotations: {reboot.metal3.io/x: '{\"mode\": \"soft\", \"extra\": 1}'}\n",
            vec![],
        ),
        annotated("empty reboot annotation", "  annotations: {reboot.metal3.io: ''}\n", vec![]),
        annotated(
            "reboot annotation keys match in any case, as Go's",
            "  annotations: {reboot.metal3.io: '{\"Mode\": \"later\"}'}\n",
            vec![
                "metadata.annotations[reboot.metal3.io]: invalid mode in the reboot.metal3.io annotation, allowed are \"hard\", \"soft\" or \"\"",
            ],
        ),
        annotated(
            "status annotation keys match in any case, as Go's",
            "  annotations: {baremetalhost.metal3.io/status: '{\"OperationalStatus\": \"OK\", \"poweredon\": true}'}\n",
            vec![],
        ),
        annotated(
            "reboot annotation mode of the wrong type names Go's type",
            "  annotations: {reboot.metal3.io: '{\"mode\": 1}'}\n",
            vec![
                "metadata.annotations[reboot.metal3.io]: failed to unmarshal the data from the reboot.metal3.io annotation: json: cannot unmarshal number into Go struct field RebootAnnotationArguments.mode of type v1alpha1.RebootMode",
            ],
        ),
        annotated(
            "reboot annotation with a bad mode",
            "  annotations: {reboot.metal3.io: '{\"mode\": \"gentle\"}'}\n",
            vec![
                "metadata.annotations[reboot.metal3.io]: invalid mode in the reboot.metal3.io annotation, allowed are \"hard\", \"soft\" or \"\"",
            ],
        ),
        annotated(
            "reboot annotation that is not JSON",
            "  annotations: {reboot.metal3.io/a: 'soft'}\n",
            vec![
                "metadata.annotations[reboot.metal3.io/a]: failed to unmarshal the data from the reboot.metal3.io annotation: invalid character 's' looking for beginning of value",
            ],
        ),
        annotated(
            "reboot annotation with trailing text",
            "  annotations: {reboot.metal3.io/a: '{} x'}\n",
            vec![
                "metadata.annotations[reboot.metal3.io/a]: failed to unmarshal the data from the reboot.metal3.io annotation: invalid character 'x' after top-level value",
            ],
        ),
        annotated("inspect annotation disabled", "  annotations: {inspect.metal3.io: disabled}\n", vec![]),
        annotated(
            "inspect annotation with another value",
            "  annotations: {inspect.metal3.io: 'later'}\n",
            vec![
                "metadata.annotations[inspect.metal3.io]: invalid value for the inspect.metal3.io annotation, allowed are \"disabled\" or \"\"",
            ],
        ),
        annotated(
            "hardware details with inspection disabled",
            "  annotations: {inspect.metal3.io: disabled, inspect.metal3.io/hardwaredetails: '{\"ramMebibytes\": 1, \"cpu\": {\"count\": 2}}'}\n",
            vec![],
        ),
        annotated(
            "hardware details while inspection is enabled",
            "  annotations: {inspect.metal3.io/hardwaredetails: '{\"ramMebibytes\": 1}'}\n",
            vec![
                "metadata.annotations[inspect.metal3.io/hardwaredetails]: when hardware details are provided, inspection must be disabled (either via inspect.metal3.io annotation or inspectionMode field)",
            ],
        ),
        annotated(
            "hardware details with an unknown field",
            "  annotations: {inspect.metal3.io: disabled, inspect.metal3.io/hardwaredetails: '{\"cpu\": {\"cores\": 2}}'}\n",
            vec![
                "metadata.annotations[inspect.metal3.io/hardwaredetails]: error decoding the inspect.metal3.io/hardwaredetails annotation: json: unknown field \"cores\"",
            ],
        ),
    ]);
    check(vec![
        Row {
            rule: "annotation and inspectionMode agree",
            host_name: "h1",
            annotations: "  annotations: {inspect.metal3.io: disabled}\n",
            spec: with("  inspectionMode: disabled\n"),
            want: vec![],
        },
        Row {
            rule: "annotation and inspectionMode disagree",
            host_name: "h1",
            annotations: "  annotations: {inspect.metal3.io: disabled}\n",
            spec: with("  inspectionMode: agent\n"),
            want: vec![
                "spec.inspectionMode: inspect.metal3.io annotation and inspectionMode field have contradicting values",
            ],
        },
    ]);
}

#[test]
fn network_interface_rules() {
    check(vec![
        row(
            "one by name, one by MAC",
            with("  networkInterfaces: [{name: eth0}, {macAddress: '00:11:22:33:44:66'}]\n"),
            vec![],
        ),
        row(
            "neither name nor MAC",
            with("  networkInterfaces: [{switchPort: {portID: p1, switchID: '00:11:22:33:44:77'}}]\n"),
            vec!["spec.networkInterfaces[0]: networkInterfaces[0]: must specify either name or macAddress"],
        ),
        row(
            "both name and MAC",
            with("  networkInterfaces: [{name: eth0, macAddress: '00:11:22:33:44:66'}]\n"),
            vec![
                "spec.networkInterfaces[0]: networkInterfaces[0]: name and macAddress are mutually exclusive",
            ],
        ),
        row(
            "the same MAC twice, in different case",
            with(
                "  networkInterfaces: [{macAddress: 'aa:11:22:33:44:66'}, {macAddress: 'AA:11:22:33:44:66'}]\n",
            ),
            vec![
                "spec.networkInterfaces[1]: networkInterfaces[1]: duplicate interface selector for \"AA:11:22:33:44:66\"",
            ],
        ),
    ]);
}

#[test]
fn update_rules() {
    let with_state = |spec: &str, state: ProvisioningState, op: OperationalStatus| {
        let mut h = host_yaml("h1", "", spec);
        let mut status = BareMetalHostStatus { operational_status: op, ..Default::default() };
        status.provisioning.state = state;
        h.status = Some(status);
        h
    };
    let errs = |old: &BareMetalHost, new: &BareMetalHost| {
        validate_update(old, new).iter().map(ToString::to_string).collect::<Vec<_>>()
    };
    let provisioned = with_state(OK_SPEC, ProvisioningState::Provisioned, OperationalStatus::Ok);
    let moved = OK_SPEC.replace("redfish://bmc/", "redfish://bmc2/");
    assert_eq!(
        errs(&provisioned, &with_state(&moved, ProvisioningState::Provisioned, OperationalStatus::Ok)),
        [
            "spec.bmc.address: BMC address can not be changed if the BMH is not in the Registering state, or if the BMH is not detached"
        ]
    );
    let registering = with_state(OK_SPEC, ProvisioningState::Registering, OperationalStatus::Ok);
    assert!(
        errs(&registering, &with_state(&moved, ProvisioningState::Registering, OperationalStatus::Ok))
            .is_empty()
    );
    let detached = with_state(OK_SPEC, ProvisioningState::Provisioned, OperationalStatus::Detached);
    assert!(
        errs(&detached, &with_state(&moved, ProvisioningState::Provisioned, OperationalStatus::Detached))
            .is_empty()
    );
    // either side in Registering (or detached) is enough, as upstream checks old and new
    assert!(
        errs(&registering, &with_state(&moved, ProvisioningState::Inspecting, OperationalStatus::Ok))
            .is_empty()
    );

    let available = with_state(OK_SPEC, ProvisioningState::Available, OperationalStatus::Ok);
    let new_mac = OK_SPEC.replace("00:11:22:33:44:55", "00:11:22:33:44:66");
    assert_eq!(
        errs(&available, &with_state(&new_mac, ProvisioningState::Available, OperationalStatus::Ok)),
        ["spec.bootMACAddress: bootMACAddress can not be changed once it is set"]
    );
    let upper = OK_SPEC.replace("00:11:22:33:44:55", "00:11:22:33:44:55".to_uppercase().as_str());
    assert!(
        errs(&available, &with_state(&upper, ProvisioningState::Available, OperationalStatus::Ok)).is_empty(),
        "case differs only"
    );

    let adopted = format!("{OK_SPEC}  externallyProvisioned: true\n");
    let provisioning = with_state(OK_SPEC, ProvisioningState::Provisioning, OperationalStatus::Ok);
    assert_eq!(
        errs(&provisioning, &with_state(&adopted, ProvisioningState::Provisioning, OperationalStatus::Ok)),
        [
            "spec.externallyProvisioned: externallyProvisioned can only be enabled when in Available state, currently in provisioning"
        ]
    );
    assert!(
        errs(&available, &with_state(&adopted, ProvisioningState::Available, OperationalStatus::Ok))
            .is_empty()
    );
}

/// Go's scanner stops at 10,000 open arrays or objects; so does ours, without recursing: a thread
/// with a 256 KiB stack checks 200,000 nested brackets in two annotations (they overflowed the
/// stack and aborted the webhook before).
#[test]
fn deeply_nested_annotation_json_is_refused_with_gos_message_without_recursion() {
    let deep = "[".repeat(200_000);
    let at_limit = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let one_past = format!("{}{}", "[".repeat(10_001), "]".repeat(10_001));
    let got = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || {
            let mut host = host_yaml("h1", "", OK_SPEC);
            let annotations = host.metadata.annotations.get_or_insert_default();
            annotations.insert("reboot.metal3.io/x".into(), deep.clone());
            annotations.insert("baremetalhost.metal3.io/status".into(), deep);
            let deep_messages = messages(&host);
            let scan = |text: &str| crate::gojson::unmarshal(text).map(drop);
            (deep_messages, scan(&at_limit), scan(&one_past))
        })
        .expect("thread")
        .join()
        .expect("no stack overflow");
    assert_eq!(
        got.0,
        [
            "metadata.annotations[baremetalhost.metal3.io/status]: error decoding status annotation: invalid character '[' exceeded max depth",
            "metadata.annotations[reboot.metal3.io/x]: failed to unmarshal the data from the reboot.metal3.io annotation: invalid character '[' exceeded max depth",
        ]
    );
    assert_eq!(got.1, Ok(()), "10,000 levels are within Go's limit");
    // deeper than serde_json's 128 levels but within Go's: decoded, and refused by the type as Go does
    let mut host = host_yaml("h1", "", OK_SPEC);
    let nested = format!("{{\"conditions\": [{}{}]}}", "[".repeat(300), "]".repeat(300));
    host.metadata.annotations.get_or_insert_default().insert("baremetalhost.metal3.io/status".into(), nested);
    let message = messages(&host).join("\n");
    assert!(message.contains("json: cannot unmarshal array into Go struct field"), "{message}");
    assert_eq!(got.2, Err("invalid character '[' exceeded max depth".to_string()));
}
