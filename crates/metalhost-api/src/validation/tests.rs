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

#[test]
fn admission_rules_table() {
    struct Row {
        name: &'static str,
        host_name: &'static str,
        annotations: &'static str,
        spec: String,
        want: Vec<&'static str>,
    }
    let row = |name, spec: &str, want: Vec<&'static str>| Row {
        name,
        host_name: "h1",
        annotations: "",
        spec: spec.to_string(),
        want,
    };
    let with = |extra: &str| format!("{OK_SPEC}{extra}");
    let rows = vec![
        row("valid redfish host", OK_SPEC, vec![]),
        row(
            "valid live ISO on virtual media without MAC or inspection",
            "  online: true\n  inspectionMode: disabled\n  bmc: {address: 'redfish-virtualmedia://bmc/redfish/v1/Systems/1', credentialsName: c}\n  image: {url: 'http://h/a.iso', format: live-iso}\n",
            vec![],
        ),
        row(
            "unknown BMC scheme",
            "  online: true\n  bmc: {address: 'foo://bmc', credentialsName: c}\n",
            vec!["spec.bmc.address: Unknown BMC type 'foo' for address foo://bmc"],
        ),
        row(
            "missing credentials name",
            "  online: true\n  bootMACAddress: 00:11:22:33:44:55\n  bmc: {address: 'ipmi://bmc', credentialsName: ''}\n",
            vec!["spec.bmc.credentialsName: Missing BMC connection detail 'credentialsName'"],
        ),
        row(
            "PXE-family driver without boot MAC",
            "  online: true\n  bmc: {address: 'ipmi://bmc', credentialsName: c}\n",
            vec!["spec.bootMACAddress: BMC driver ipmi requires a BootMACAddress value"],
        ),
        row(
            "virtual media with inspection disabled and a disk image needs a MAC",
            "  online: true\n  inspectionMode: disabled\n  bmc: {address: 'redfish-virtualmedia://bmc/x', credentialsName: c}\n  image: {url: 'http://h/d.img', checksum: abc}\n",
            vec!["spec.bootMACAddress: BMC driver redfish-virtualmedia requires a BootMACAddress value"],
        ),
        row(
            "malformed MAC",
            &OK_SPEC.replace("00:11:22:33:44:55", "00:11:22:33:44"),
            vec!["spec.bootMACAddress: address 00:11:22:33:44: invalid MAC address"],
        ),
        row(
            "secure boot on IPMI",
            "  online: true\n  bootMode: UEFISecureBoot\n  bootMACAddress: 00:11:22:33:44:55\n  bmc: {address: 'ipmi://bmc', credentialsName: c}\n",
            vec!["spec.bootMode: BMC driver ipmi does not support secure boot"],
        ),
        row("secure boot on Redfish", &with("  bootMode: UEFISecureBoot\n"), vec![]),
        row(
            "hardware RAID on IPMI",
            "  online: true\n  bootMACAddress: 00:11:22:33:44:55\n  bmc: {address: 'ipmi://bmc', credentialsName: c}\n  raid: {hardwareRAIDVolumes: [{level: '1'}]}\n",
            vec!["spec.raid.hardwareRAIDVolumes: BMC driver ipmi does not support configuring RAID"],
        ),
        row(
            "firmware settings on IPMI",
            "  online: true\n  bootMACAddress: 00:11:22:33:44:55\n  bmc: {address: 'ipmi://bmc', credentialsName: c}\n  firmware: {sriovEnabled: true}\n",
            vec!["spec.firmware: firmware settings for ipmi are not supported"],
        ),
        row(
            "hardware and software RAID together",
            &with("  raid: {hardwareRAIDVolumes: [{level: '1'}], softwareRAIDVolumes: [{level: '1'}]}\n"),
            vec!["spec.raid: hardwareRAIDVolumes and softwareRAIDVolumes can not be set at the same time"],
        ),
        row(
            "physical disks without controller and a wrong count",
            &with(
                "  raid: {hardwareRAIDVolumes: [{level: '1', numberOfPhysicalDisks: 3, physicalDisks: [a, b]}]}\n",
            ),
            vec![
                "spec.raid.hardwareRAIDVolumes[0]: 'physicalDisks' specified without 'controller' in hardware RAID volume 0",
                "spec.raid.hardwareRAIDVolumes[0]: the 'numberOfPhysicalDisks'[3] and number of 'physicalDisks'[2] is not same for volume 0",
            ],
        ),
        row(
            "two root software RAID volumes",
            &with(
                "  raid: {softwareRAIDVolumes: [{level: '1', rootVolume: true}, {level: '0', rootVolume: true}]}\n",
            ),
            vec!["spec.raid.softwareRAIDVolumes: only one volume can have isRootVolume"],
        ),
        row(
            "root device hint not under /dev",
            &with("  rootDeviceHints: {deviceName: sda}\n"),
            vec![
                "spec.rootDeviceHints.deviceName: device name of root device hint must be a /dev/ path, not \"sda\"",
            ],
        ),
        row(
            "root device hint too deep",
            &with("  rootDeviceHints: {deviceName: /dev/disk/by-id/x}\n"),
            vec![
                "spec.rootDeviceHints.deviceName: device name of root device hint must be path in /dev/ or /dev/disk/by-path/, not \"/dev/disk/by-id/x\"",
            ],
        ),
        row(
            "root device hint by path",
            &with("  rootDeviceHints: {deviceName: /dev/disk/by-path/pci-0}\n"),
            vec![],
        ),
        row(
            "disk image without checksum",
            &with("  image: {url: 'http://h/d.qcow2', format: qcow2}\n"),
            vec![
                "spec.image.checksum: checksum is required for normal images (a qcow2 image; only live-iso and oci:// images may omit it)",
            ],
        ),
        row(
            "invalid image URL",
            &with("  image: {url: 'not a url', format: live-iso}\n"),
            vec!["spec.image.url: image URL not a url is invalid: relative URL without a base"],
        ),
        row(
            "live ISO from OCI with a checksum",
            &with("  image: {url: 'oci://r/iso:1', format: live-iso, checksum: abc}\n"),
            vec![
                "spec.image.checksum: must be empty for a live-iso image from an oci:// URL (the digest in the URL is the checksum)",
            ],
        ),
        row(
            "live kernel without its initramfs",
            &with("  image: {url: 'http://h/vmlinuz', format: live-kernel}\n"),
            vec![
                "metadata.annotations[metalhost.io/initramfs-url]: required with format live-kernel (the initramfs to boot with the kernel at spec.image.url)",
            ],
        ),
        row(
            "cross-namespace user data",
            &with("  userData: {name: ud, namespace: other}\n  networkData: {name: nd, namespace: lab}\n"),
            vec!["spec.userData.namespace: userData: cross-namespace Secret references are not allowed"],
        ),
        row(
            "power off disabled while offline",
            &OK_SPEC.replace("online: true", "online: false\n  disablePowerOff: true"),
            vec![
                "spec.disablePowerOff: node can't simultaneously have online set to false and have power off disabled",
            ],
        ),
        row(
            "fast inspection",
            &with("  inspectionMode: fast\n"),
            vec![
                "spec.inspectionMode: invalid inspectionMode value: fast, allowed values are 'disabled' or 'agent'",
            ],
        ),
    ];
    let mut rows = rows;
    rows.push(Row {
        name: "name with a slash-like character",
        host_name: "h1@x",
        annotations: "",
        spec: OK_SPEC.into(),
        want: vec![
            "metadata.name: BareMetalHost resource name cannot contain characters other than [A-Za-z0-9._-]",
        ],
    });
    rows.push(Row {
        name: "name that is a UUID",
        host_name: "27946b59-9e44-4fa7-8e91-f3527a1ef094",
        annotations: "",
        spec: OK_SPEC.into(),
        want: vec!["metadata.name: BareMetalHost resource name cannot be a UUID"],
    });
    let annotated =
        |name, annotations, want| Row { name, host_name: "h1", annotations, spec: OK_SPEC.into(), want };
    rows.push(annotated(
        "valid reboot annotation",
        "  annotations: {reboot.metal3.io/x: '{\"mode\": \"soft\"}'}\n",
        vec![],
    ));
    rows.push(annotated(
        "reboot annotation with a bad mode",
        "  annotations: {reboot.metal3.io: '{\"mode\": \"gentle\"}'}\n",
        vec!["metadata.annotations[reboot.metal3.io]: invalid mode in the reboot.metal3.io annotation, allowed are \"hard\", \"soft\" or \"\""],
    ));
    rows.push(annotated(
        "reboot annotation that is not JSON",
        "  annotations: {reboot.metal3.io/a: 'soft'}\n",
        vec!["metadata.annotations[reboot.metal3.io/a]: failed to unmarshal the data from the reboot.metal3.io annotation: expected value at line 1 column 1"],
    ));
    rows.push(annotated(
        "inspect annotation with another value",
        "  annotations: {inspect.metal3.io: 'later'}\n",
        vec!["metadata.annotations[inspect.metal3.io]: invalid value for the inspect.metal3.io annotation, allowed are \"disabled\" or \"\""],
    ));
    rows.push(annotated(
        "status annotation with an unknown field",
        "  annotations: {baremetalhost.metal3.io/status: '{\"operationalStatus\": \"OK\", \"bogus\": 1}'}\n",
        vec!["metadata.annotations[baremetalhost.metal3.io/status]: error decoding status annotation: json: unknown field \"bogus\""],
    ));
    rows.push(annotated(
        "status annotation with a bad operational status",
        "  annotations: {baremetalhost.metal3.io/status: '{\"operationalStatus\": \"fine\"}'}\n",
        vec!["metadata.annotations[baremetalhost.metal3.io/status]: error decoding status annotation: unknown variant `fine`, expected one of ``, `OK`, `discovered`, `error`, `delayed`, `detached`, `servicing`"],
    ));
    rows.push(annotated(
        "hardware details while inspection is enabled",
        "  annotations: {inspect.metal3.io/hardwaredetails: '{\"ramMebibytes\": 1}'}\n",
        vec!["metadata.annotations[inspect.metal3.io/hardwaredetails]: when hardware details are provided, inspection must be disabled (either via inspect.metal3.io annotation or inspectionMode field)"],
    ));
    rows.push(annotated(
        "hardware details with inspection disabled",
        "  annotations: {inspect.metal3.io: disabled, inspect.metal3.io/hardwaredetails: '{\"ramMebibytes\": 1, \"cpu\": {\"count\": 2}}'}\n",
        vec![],
    ));
    rows.push(annotated(
        "hardware details with an unknown field",
        "  annotations: {inspect.metal3.io: disabled, inspect.metal3.io/hardwaredetails: '{\"cpu\": {\"cores\": 2}}'}\n",
        vec!["metadata.annotations[inspect.metal3.io/hardwaredetails]: error decoding the inspect.metal3.io/hardwaredetails annotation: json: unknown field \"cpu.cores\""],
    ));
    let contradicting = Row {
        name: "annotation and inspectionMode disagree",
        host_name: "h1",
        annotations: "  annotations: {inspect.metal3.io: disabled}\n",
        spec: with("  inspectionMode: agent\n"),
        want: vec![
            "spec.inspectionMode: inspect.metal3.io annotation and inspectionMode field have contradicting values",
        ],
    };
    rows.push(contradicting);

    for row in rows {
        let host = host_yaml(row.host_name, row.annotations, &row.spec);
        assert_eq!(messages(&host), row.want, "{}", row.name);
    }
}

#[test]
fn update_rules() {
    let old = host_yaml("h1", "", OK_SPEC);
    let with_state = |spec: &str, state: ProvisioningState, op: OperationalStatus| {
        let mut h = host_yaml("h1", "", spec);
        let mut status = BareMetalHostStatus { operational_status: op, ..Default::default() };
        status.provisioning.state = state;
        h.status = Some(status);
        h
    };
    let moved = OK_SPEC.replace("redfish://bmc/", "redfish://bmc2/");
    let errs =
        |new: &BareMetalHost| validate_update(&old, new).iter().map(ToString::to_string).collect::<Vec<_>>();
    assert_eq!(
        errs(&with_state(&moved, ProvisioningState::Provisioned, OperationalStatus::Ok)),
        [
            "spec.bmc.address: BMC address can not be changed if the BMH is not in the Registering state, or if the BMH is not detached"
        ]
    );
    assert!(errs(&with_state(&moved, ProvisioningState::Registering, OperationalStatus::Ok)).is_empty());
    assert!(
        errs(&with_state(&moved, ProvisioningState::Provisioned, OperationalStatus::Detached)).is_empty()
    );

    let new_mac = OK_SPEC.replace("00:11:22:33:44:55", "00:11:22:33:44:66");
    assert_eq!(
        errs(&with_state(&new_mac, ProvisioningState::Available, OperationalStatus::Ok)),
        ["spec.bootMACAddress: bootMACAddress can not be changed once it is set"]
    );
    let upper = OK_SPEC.replace("00:11:22:33:44:55", "00:11:22:33:44:55".to_uppercase().as_str());
    assert!(
        errs(&with_state(&upper, ProvisioningState::Available, OperationalStatus::Ok)).is_empty(),
        "case differs only"
    );

    let adopted = format!("{OK_SPEC}  externallyProvisioned: true\n");
    assert_eq!(
        errs(&with_state(&adopted, ProvisioningState::Provisioning, OperationalStatus::Ok)),
        [
            "spec.externallyProvisioned: externallyProvisioned can only be enabled when in Available state, currently in provisioning"
        ]
    );
    assert!(errs(&with_state(&adopted, ProvisioningState::Available, OperationalStatus::Ok)).is_empty());
}
