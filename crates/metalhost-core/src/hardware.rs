//! Ironic's inventory (`GET /v1/nodes/{id}/inventory`) as `status.hardware`, by upstream's rules
//! (`pkg/provisioner/ironic/hardwaredetails/hardwaredetails.go`): CPU, RAM, NICs (one per address
//! family with an address), storage, system vendor, firmware and host name. Pure: the inventory
//! is JSON read by the provisioner.
//!
//! Go's `omitempty` is kept: an empty string, a zero number, `false` or an empty list is left
//! out (None), while upstream's struct-valued fields (system vendor, firmware, CPU) are always
//! there. One difference on purpose: upstream reads LLDP VLANs with Go type assertions
//! (`[]map[string]any`, `int`) that never match decoded JSON, so its `vlans` and `vlanId` stay
//! empty; metalhost fills them from the parsed LLDP.

use metalhost_api::host::{
    Bios, Cpu, DiskType, Firmware, HardwareDetails, HardwareSystemVendor, Lldp, Nic, Storage, Vlan,
};
use serde_json::Value;

/// `status.hardware` from an inventory answer (`{"inventory": …, "plugin_data": …}`). Missing or
/// mistyped fields are left out, never an error: the inventory is Ironic's (or a ramdisk's) word.
pub fn details(answer: &Value) -> HardwareDetails {
    let inventory = &answer["inventory"];
    let plugin = &answer["plugin_data"];
    let vendor = &inventory["system_vendor"];
    HardwareDetails {
        system_vendor: Some(HardwareSystemVendor {
            manufacturer: text(&vendor["manufacturer"]),
            product_name: text(&vendor["product_name"]),
            serial_number: text(&vendor["serial_number"]),
        }),
        firmware: Some(Firmware {
            bios: Some(Bios {
                date: text(&vendor["firmware"]["build_date"]),
                vendor: text(&vendor["firmware"]["vendor"]),
                version: text(&vendor["firmware"]["version"]),
            }),
        }),
        ram_mebibytes: number(&inventory["memory"]["physical_mb"]),
        nics: list(items(&inventory["interfaces"]).flat_map(|i| nics(i, plugin)).collect()),
        storage: list(items(&inventory["disks"]).map(storage).collect()),
        cpu: Some(cpu(&inventory["cpu"])),
        hostname: text(&inventory["hostname"]),
    }
}

/// The elements of a JSON list (none when it is not one).
fn items(value: &Value) -> impl Iterator<Item = &Value> {
    value.as_array().into_iter().flatten()
}

/// A non-empty string.
fn text(value: &Value) -> Option<String> {
    value.as_str().filter(|s| !s.is_empty()).map(str::to_string)
}

/// A non-zero whole number (a JSON float with no fraction counts, as Go decodes into an int).
fn number(value: &Value) -> Option<i64> {
    let n = value
        .as_i64()
        .or_else(|| value.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9e15).map(|f| f as i64))?;
    (n != 0).then_some(n)
}

/// `true` only (`false` is left out).
fn flag(value: &Value) -> Option<bool> {
    value.as_bool().filter(|b| *b)
}

/// A non-empty list.
fn list<T>(items: Vec<T>) -> Option<Vec<T>> {
    (!items.is_empty()).then_some(items)
}

/// One NIC per address it has (IPv4, IPv6); one without an address when it has none.
fn nics(interface: &Value, plugin: &Value) -> Vec<Nic> {
    let name = interface["name"].as_str().unwrap_or_default();
    let lldp = &plugin["parsed_lldp"][name];
    let vendor = interface["vendor"].as_str().unwrap_or_default();
    let product = interface["product"].as_str().unwrap_or_default();
    let nic = Nic {
        name: text(&interface["name"]),
        model: Some(format!("{vendor} {product}").trim_start_matches(' ').to_string())
            .filter(|m| !m.is_empty()),
        mac: text(&interface["mac_address"]),
        ip: None,
        speed_gbps: number(&interface["speed_mbps"]).map(|mbps| mbps / 1000).filter(|gbps| *gbps != 0),
        vlans: list(items(&lldp["switch_port_vlans"]).map(vlan).collect()),
        vlan_id: vlan_id(&lldp["switch_port_untagged_vlan_id"]),
        pxe: flag(&plugin["all_interfaces"][name]["pxe_enabled"]),
        lldp: self::lldp(lldp),
        pci_address: text(&interface["pci_address"]),
    };
    let v4 = text(&interface["ipv4_address"]);
    let v6 = text(&interface["ipv6_address"]);
    let mut out = Vec::new();
    if v4.is_some() || v6.is_none() {
        out.push(Nic { ip: v4, ..nic.clone() });
    }
    if v6.is_some() {
        out.push(Nic { ip: v6, ..nic });
    }
    out
}

/// A VLAN ID (0 to 4094, as the CRD allows; left out otherwise).
fn vlan_id(value: &Value) -> Option<i32> {
    number(value).filter(|id| (1..=4094).contains(id)).map(|id| id as i32)
}

fn vlan(value: &Value) -> Vlan {
    Vlan { id: vlan_id(&value["id"]), name: text(&value["name"]) }
}

/// The switch port's LLDP data, when there is any.
fn lldp(lldp: &Value) -> Option<Lldp> {
    let data = Lldp {
        switch_id: text(&lldp["switch_chassis_id"]),
        port_id: text(&lldp["switch_port_id"]),
        switch_system_name: text(&lldp["switch_system_name"]),
    };
    (data != Lldp::default()).then_some(data)
}

fn storage(disk: &Value) -> Storage {
    let name = text(&disk["name"]);
    let by_path = text(&disk["by_path"]);
    let alternate: Vec<String> = name.iter().chain(by_path.iter()).cloned().collect();
    let rotational = disk["rotational"].as_bool().unwrap_or(false);
    let type_ = if rotational {
        DiskType::Hdd
    } else if name.as_deref().is_some_and(|n| n.starts_with("/dev/nvme")) {
        DiskType::Nvme
    } else {
        DiskType::Ssd
    };
    Storage {
        name: by_path.or(name),
        alternate_names: list(alternate),
        rotational: rotational.then_some(true),
        type_: Some(type_),
        size_bytes: number(&disk["size"]),
        vendor: text(&disk["vendor"]),
        model: text(&disk["model"]),
        serial_number: text(&disk["serial"]),
        wwn: text(&disk["wwn"]),
        wwn_vendor_extension: text(&disk["wwn_vendor_extension"]),
        wwn_with_extension: text(&disk["wwn_with_extension"]),
        hctl: text(&disk["hctl"]),
    }
}

/// The processor; the frequency (a string such as `"2400.000"`) rounded to whole MHz.
fn cpu(cpu: &Value) -> Cpu {
    let mut flags: Vec<String> =
        items(&cpu["flags"]).filter_map(|f| f.as_str().map(str::to_string)).collect();
    flags.sort();
    let frequency = cpu["frequency"].as_str().and_then(leading_float).map(f64::round).filter(|f| *f != 0.0);
    Cpu {
        arch: text(&cpu["architecture"]),
        model: text(&cpu["model_name"]),
        clock_megahertz: frequency,
        flags: list(flags),
        count: number(&cpu["count"]),
    }
}

/// The number a string starts with, as Go's `Sscanf("%f")` reads it (`"2400.000 MHz"` → 2400).
/// Only the first 64 bytes are looked at (a frequency is short; the inventory is the machine's).
fn leading_float(s: &str) -> Option<f64> {
    let s = s.trim_start();
    let s = &s[..s.char_indices().map(|(i, _)| i).find(|&i| i >= 64).unwrap_or(s.len())];
    let end = s
        .char_indices()
        .find(|&(i, c)| {
            !(c.is_ascii_digit() || c == '.' || ((c == '-' || c == '+') && i == 0) || c == 'e' || c == 'E')
        })
        .map_or(s.len(), |(i, _)| i);
    (0..=end).rev().find_map(|i| s[..i].parse::<f64>().ok()).filter(|f| f.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_agent_inventory_maps_as_upstream_maps_it() {
        let answer = json!({
            "inventory": {
                "hostname": "worker-0",
                "memory": {"physical_mb": 16384, "total": 17179869184u64},
                "cpu": {"architecture": "x86_64", "model_name": "Intel Xeon", "frequency": "2399.996",
                        "count": 8, "flags": ["vmx", "aes", "sse4_2"]},
                "system_vendor": {"manufacturer": "Dell Inc.", "product_name": "PowerEdge R640", "serial_number": "ABC123",
                                  "firmware": {"vendor": "Dell Inc.", "version": "2.10.0", "build_date": "01/01/2024"}},
                "interfaces": [
                    {"name": "eno1", "mac_address": "52:54:00:aa:bb:01", "ipv4_address": "192.0.2.10",
                     "ipv6_address": "2001:db8::10", "vendor": "0x8086", "product": "0x1572", "speed_mbps": 10000,
                     "pci_address": "0000:3b:00.0"},
                    {"name": "eno2", "mac_address": "52:54:00:aa:bb:02", "speed_mbps": 500}
                ],
                "disks": [
                    {"name": "/dev/sda", "by_path": "/dev/disk/by-path/pci-0000:00:1f.2-ata-1", "size": 480103981056u64,
                     "rotational": false, "vendor": "ATA", "model": "SSD 480", "serial": "S1", "wwn": "0x5000",
                     "hctl": "0:0:0:0"},
                    {"name": "/dev/nvme0n1", "size": 1000204886016u64, "rotational": false},
                    {"name": "/dev/sdb", "size": 4000787030016u64, "rotational": true}
                ]
            },
            "plugin_data": {
                "all_interfaces": {"eno1": {"pxe_enabled": true}, "eno2": {"pxe_enabled": false}},
                "parsed_lldp": {"eno1": {"switch_chassis_id": "00:11:22:33:44:55", "switch_port_id": "Ethernet1/1",
                                         "switch_port_vlans": [{"id": 100, "name": "prov"}],
                                         "switch_port_untagged_vlan_id": 100}}
            }
        });
        let got = serde_json::to_value(details(&answer)).unwrap();
        let eno1 = |ip: &str| {
            json!({"name": "eno1", "model": "0x8086 0x1572", "mac": "52:54:00:aa:bb:01", "ip": ip, "speedGbps": 10,
                   "pxe": true, "vlans": [{"id": 100, "name": "prov"}], "vlanId": 100, "pciAddress": "0000:3b:00.0",
                   "lldp": {"switchID": "00:11:22:33:44:55", "portID": "Ethernet1/1"}})
        };
        let want = json!({
            "systemVendor": {"manufacturer": "Dell Inc.", "productName": "PowerEdge R640", "serialNumber": "ABC123"},
            "firmware": {"bios": {"date": "01/01/2024", "vendor": "Dell Inc.", "version": "2.10.0"}},
            "ramMebibytes": 16384,
            "nics": [eno1("192.0.2.10"), eno1("2001:db8::10"), {"name": "eno2", "mac": "52:54:00:aa:bb:02"}],
            "storage": [
                {"name": "/dev/disk/by-path/pci-0000:00:1f.2-ata-1",
                 "alternateNames": ["/dev/sda", "/dev/disk/by-path/pci-0000:00:1f.2-ata-1"], "type": "SSD",
                 "sizeBytes": 480103981056u64, "vendor": "ATA", "model": "SSD 480", "serialNumber": "S1",
                 "wwn": "0x5000", "hctl": "0:0:0:0"},
                {"name": "/dev/nvme0n1", "alternateNames": ["/dev/nvme0n1"], "type": "NVME", "sizeBytes": 1000204886016u64},
                {"name": "/dev/sdb", "alternateNames": ["/dev/sdb"], "rotational": true, "type": "HDD",
                 "sizeBytes": 4000787030016u64}
            ],
            "cpu": {"arch": "x86_64", "model": "Intel Xeon", "clockMegahertz": 2400.0, "flags": ["aes", "sse4_2", "vmx"],
                    "count": 8},
            "hostname": "worker-0"
        });
        assert_eq!(got, want);
    }

    #[test]
    fn an_empty_or_mistyped_inventory_gives_upstreams_empty_structs() {
        let empty = json!({"systemVendor": {}, "firmware": {"bios": {}}, "cpu": {}});
        for answer in [
            json!({}),
            json!(null),
            json!({"inventory": "x", "plugin_data": 3}),
            json!({"inventory": {"interfaces": {"a": 1}, "disks": 7, "memory": {"physical_mb": "1024"}}}),
        ] {
            assert_eq!(serde_json::to_value(details(&answer)).unwrap(), empty, "{answer}");
        }
    }

    /// What Ironic's Redfish inspection of a lab VM stored (sushy-tools' libvirt driver, a 1 GiB
    /// one-vCPU domain with a 10 GiB disk; `scripts/lab start --vms`, kept in lab/vm/).
    #[test]
    fn a_redfish_inventory_of_a_lab_vm_maps_to_its_ram_cpu_nic_and_disk() {
        let answer: Value =
            serde_json::from_str(include_str!("../../../lab/vm/inventory-redfish.json")).unwrap();
        let got = serde_json::to_value(details(&answer)).unwrap();
        let want = json!({
            "systemVendor": {"manufacturer": "Sushy Emulator"},
            "firmware": {"bios": {}},
            "ramMebibytes": 1024,
            "nics": [{"name": "52:54:00:4e:0c:01", "mac": "52:54:00:4e:0c:01"}],
            "storage": [{"name": "vm-1.qcow2", "alternateNames": ["vm-1.qcow2"], "rotational": true, "type": "HDD",
                         "sizeBytes": 10737418240u64, "vendor": "Contoso", "model": "C123", "serialNumber": "1234570"}],
            "cpu": {"arch": "x86_64", "model": "qemu64", "count": 1}
        });
        assert_eq!(got, want);
    }

    #[test]
    fn frequencies_read_as_gos_scanf_reads_them() {
        assert_eq!(leading_float("2400.000"), Some(2400.0));
        assert_eq!(leading_float(" 1999.6 MHz"), Some(1999.6));
        assert_eq!(leading_float("1e3x"), Some(1000.0));
        assert_eq!(leading_float("fast"), None);
        assert_eq!(leading_float(""), None);
        // bounded: only the first 64 bytes are read (a long string is not scanned quadratically)
        let long = "1".repeat(100_000) + &"e".repeat(100_000);
        assert_eq!(leading_float(&long), "1".repeat(64).parse().ok());
    }
}
