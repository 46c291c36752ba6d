//! BMC addresses: which Ironic driver, interfaces and `driver_info` a host's `spec.bmc.address` means.
//!
//! The table (docs/architecture.md §3, README) is upstream's: the URL scheme picks the driver and the boot interface,
//! the rest of the URL becomes the driver's address fields.

use std::fmt;

use serde_json::{Map, Value, json};
use url::Url;
use zeroize::Zeroizing;

/// Why a BMC address cannot be used. Messages follow upstream's wording.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BmcError {
    /// `spec.bmc.address` is empty.
    #[error("spec.bmc.address: Missing BMC connection detail 'Address'")]
    MissingAddress,
    /// `spec.bmc.address` is longer than any BMC URL.
    #[error("spec.bmc.address: {0} characters is over the limit of 2048")]
    TooLong(usize),
    /// The scheme is not one metalhost knows.
    #[error("spec.bmc.address: Unknown BMC type '{kind}' for address {address}")]
    UnknownType {
        /// The scheme as written.
        kind: String,
        /// The whole address.
        address: String,
    },
    /// The address is not a URL or lacks a host.
    #[error("spec.bmc.address: failed to parse BMC address information: {reason} (address {address})")]
    Malformed {
        /// What is wrong with it.
        reason: String,
        /// The whole address.
        address: String,
    },
}

impl BmcError {
    /// The reason without the field path (`spec.bmc.address`).
    pub fn reason(&self) -> String {
        let text = self.to_string();
        text.strip_prefix("spec.bmc.address: ").unwrap_or(&text).to_string()
    }
}

/// The BMC families metalhost knows, one per address scheme (without `+http`/`+https`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BmcKind {
    /// `ipmi://` (also a bare host name).
    Ipmi,
    /// `libvirt://` (virtualbmc, speaks IPMI).
    Libvirt,
    /// `redfish://`: Redfish power and management, iPXE boot.
    Redfish,
    /// `ilo5-redfish://`: as redfish.
    Ilo5Redfish,
    /// `idrac-redfish://`: Dell iDRAC over Redfish, iPXE boot.
    IdracRedfish,
    /// `redfish-virtualmedia://`: Redfish with virtual media boot.
    RedfishVirtualMedia,
    /// `ilo5-virtualmedia://`: as redfish-virtualmedia.
    Ilo5VirtualMedia,
    /// `idrac-virtualmedia://`: Dell iDRAC virtual media boot.
    IdracVirtualMedia,
    /// `redfish-uefihttp://`: Redfish with UEFI HTTP boot.
    RedfishUefiHttp,
    /// `fake-hardware://` (metalhost extension): Ironic's fake-hardware driver with iPXE boot, for
    /// tests and benchmarks without a BMC.
    FakeHardware,
}

impl BmcKind {
    fn from_scheme(scheme: &str) -> Option<Self> {
        Some(match scheme {
            "ipmi" => BmcKind::Ipmi,
            "libvirt" => BmcKind::Libvirt,
            "redfish" => BmcKind::Redfish,
            "ilo5-redfish" => BmcKind::Ilo5Redfish,
            "idrac-redfish" => BmcKind::IdracRedfish,
            "redfish-virtualmedia" => BmcKind::RedfishVirtualMedia,
            "ilo5-virtualmedia" => BmcKind::Ilo5VirtualMedia,
            "idrac-virtualmedia" => BmcKind::IdracVirtualMedia,
            "redfish-uefihttp" => BmcKind::RedfishUefiHttp,
            "fake-hardware" => BmcKind::FakeHardware,
            _ => return None,
        })
    }

    /// The Ironic hardware type (driver).
    pub fn driver(self) -> &'static str {
        match self {
            BmcKind::Ipmi | BmcKind::Libvirt => "ipmi",
            BmcKind::IdracRedfish | BmcKind::IdracVirtualMedia => "idrac",
            BmcKind::FakeHardware => "fake-hardware",
            _ => "redfish",
        }
    }

    /// The Ironic boot interface.
    pub fn boot_interface(self) -> &'static str {
        match self {
            BmcKind::RedfishVirtualMedia | BmcKind::Ilo5VirtualMedia => "redfish-virtual-media",
            BmcKind::IdracVirtualMedia => "idrac-redfish-virtual-media",
            BmcKind::RedfishUefiHttp => "redfish-https",
            _ => "ipxe",
        }
    }

    /// The BMC type as upstream names it in messages (the scheme without `+http`/`+https`).
    pub fn type_name(self) -> &'static str {
        match self {
            BmcKind::Ipmi => "ipmi",
            BmcKind::Libvirt => "libvirt",
            BmcKind::Redfish => "redfish",
            BmcKind::Ilo5Redfish => "ilo5-redfish",
            BmcKind::IdracRedfish => "idrac-redfish",
            BmcKind::RedfishVirtualMedia => "redfish-virtualmedia",
            BmcKind::Ilo5VirtualMedia => "ilo5-virtualmedia",
            BmcKind::IdracVirtualMedia => "idrac-virtualmedia",
            BmcKind::RedfishUefiHttp => "redfish-uefihttp",
            BmcKind::FakeHardware => "fake-hardware",
        }
    }

    /// The Ironic RAID interface (`no-raid`: RAID cannot be configured).
    pub fn raid_interface(self) -> &'static str {
        match self {
            BmcKind::Ipmi | BmcKind::Libvirt => "no-raid",
            BmcKind::IdracRedfish | BmcKind::IdracVirtualMedia => "idrac-redfish",
            BmcKind::FakeHardware => "fake",
            _ => "redfish",
        }
    }

    /// Whether the BMC can turn on UEFI secure boot.
    pub fn supports_secure_boot(self) -> bool {
        !matches!(self, BmcKind::Ipmi | BmcKind::Libvirt)
    }

    /// Whether BIOS settings (`spec.firmware`) can be applied through this BMC.
    pub fn supports_firmware_settings(self) -> bool {
        self.is_redfish_family() || self == BmcKind::FakeHardware
    }

    /// Whether the BMC mounts the ISO as virtual media (so a live ISO boots whole, and a second
    /// device could carry a config drive).
    pub fn boots_iso_by_virtual_media(self) -> bool {
        matches!(
            self,
            BmcKind::RedfishVirtualMedia
                | BmcKind::Ilo5VirtualMedia
                | BmcKind::IdracVirtualMedia
                | BmcKind::RedfishUefiHttp
        )
    }

    /// Whether Ironic can attach a config drive next to a live ISO (a second virtual media device;
    /// the boot interface has `ramdisk_boot_configdrive`).
    pub fn attaches_config_drive_to_live_iso(self) -> bool {
        matches!(self.boot_interface(), "redfish-virtual-media" | "idrac-redfish-virtual-media")
    }

    /// Whether the host boots from the network and so needs `bootMACAddress` (a port in Ironic).
    pub fn needs_boot_mac(self) -> bool {
        self.boot_interface() == "ipxe"
    }

    fn is_redfish_family(self) -> bool {
        !matches!(self, BmcKind::Ipmi | BmcKind::Libvirt | BmcKind::FakeHardware)
    }

    /// Interfaces to set besides the boot interface (the rest take Ironic's defaults).
    pub fn other_interfaces(self) -> &'static [(&'static str, &'static str)] {
        match self {
            BmcKind::IdracRedfish | BmcKind::IdracVirtualMedia => {
                &[("management_interface", "idrac-redfish"), ("power_interface", "idrac-redfish")]
            }
            BmcKind::FakeHardware => &[
                ("management_interface", "fake"),
                ("power_interface", "fake"),
                ("inspect_interface", "fake"),
            ],
            _ => &[],
        }
    }
}

/// BMC user name and password from the credentials Secret. The password is wiped from memory when
/// dropped and never printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The BMC user.
    pub username: String,
    password: Zeroizing<String>,
}

impl Credentials {
    /// Wraps a user and password.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials { username: username.into(), password: Zeroizing::new(password.into()) }
    }

    /// The password, for building `driver_info` only.
    pub fn password(&self) -> &str {
        &self.password
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// A parsed BMC address: everything Ironic needs except the credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BmcAccess {
    /// The BMC family.
    pub kind: BmcKind,
    /// `http` or `https` for Redfish-family BMCs (from a `+http`/`+https` suffix, default https).
    pub transport: &'static str,
    /// Host name or IP (IPv6 without brackets).
    pub host: String,
    /// Port, when given (IPMI: 623 by default).
    pub port: Option<u16>,
    /// The URL path (the Redfish system ID).
    pub path: String,
    /// Skip TLS verification towards the BMC.
    pub disable_certificate_verification: bool,
    /// IPMI privilege level from `?privilegelevel=` (default ADMINISTRATOR).
    pub ipmi_priv_level: String,
}

impl BmcAccess {
    /// Parses `spec.bmc.address`. A bare host name means IPMI, as upstream.
    pub fn parse(address: &str, disable_certificate_verification: bool) -> Result<Self, BmcError> {
        let address = address.trim();
        if address.is_empty() {
            return Err(BmcError::MissingAddress);
        }
        if address.len() > 2048 {
            return Err(BmcError::TooLong(address.len()));
        }
        let with_scheme =
            if address.contains("://") { address.to_string() } else { format!("ipmi://{address}") };
        let (scheme, _) = with_scheme.split_once("://").unwrap_or(("", ""));
        let (kind_name, transport) = match scheme.split_once('+') {
            Some((kind, "http")) => (kind, "http"),
            Some((kind, "https")) => (kind, "https"),
            Some(_) => {
                return Err(BmcError::UnknownType { kind: scheme.to_string(), address: address.into() });
            }
            None => (scheme, "https"),
        };
        let kind = BmcKind::from_scheme(&kind_name.to_ascii_lowercase())
            .ok_or_else(|| BmcError::UnknownType { kind: kind_name.to_string(), address: address.into() })?;
        let url = Url::parse(&with_scheme)
            .map_err(|e| BmcError::Malformed { reason: e.to_string(), address: address.into() })?;
        let host = match url.host() {
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            Some(host) => host.to_string(),
            None if kind == BmcKind::FakeHardware => String::new(),
            None => {
                return Err(BmcError::Malformed { reason: "no host name".into(), address: address.into() });
            }
        };
        let ipmi_priv_level = url
            .query_pairs()
            .find(|(k, _)| k == "privilegelevel")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_else(|| "ADMINISTRATOR".into());
        let path = url.path().trim_end_matches('/').to_string();
        Ok(BmcAccess {
            kind,
            transport,
            host,
            port: url.port(),
            path,
            disable_certificate_verification,
            ipmi_priv_level,
        })
    }

    fn host_for_url(&self) -> String {
        if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() }
    }

    /// The Ironic `driver_info` for this BMC with these credentials.
    pub fn driver_info(&self, credentials: &Credentials) -> Map<String, Value> {
        let mut info = Map::new();
        if self.kind.is_redfish_family() {
            let port = self.port.map(|p| format!(":{p}")).unwrap_or_default();
            info.insert(
                "redfish_address".into(),
                json!(format!("{}://{}{}", self.transport, self.host_for_url(), port)),
            );
            if !self.path.is_empty() {
                info.insert("redfish_system_id".into(), json!(self.path));
            }
            info.insert("redfish_username".into(), json!(credentials.username));
            info.insert("redfish_password".into(), json!(credentials.password()));
            if self.disable_certificate_verification {
                info.insert("redfish_verify_ca".into(), json!(false));
            }
        } else if self.kind == BmcKind::FakeHardware {
            // fake-hardware keeps nothing of the BMC; the user name shows which host it is.
            info.insert("fake_username".into(), json!(credentials.username));
        } else {
            info.insert("ipmi_address".into(), json!(self.host));
            info.insert("ipmi_port".into(), json!(self.port.unwrap_or(623).to_string()));
            info.insert("ipmi_username".into(), json!(credentials.username));
            info.insert("ipmi_password".into(), json!(credentials.password()));
            info.insert("ipmi_priv_level".into(), json!(self.ipmi_priv_level));
        }
        info
    }

    /// The `driver_info` keys that hold secrets: Ironic shows them as `******`.
    pub const SECRET_KEYS: &'static [&'static str] = &["redfish_password", "ipmi_password"];
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds() -> Credentials {
        Credentials::new("admin", "s3cret")
    }

    struct Row {
        address: &'static str,
        driver: &'static str,
        boot: &'static str,
        vmedia: bool,
        info: Value,
    }

    #[test]
    fn every_scheme_maps_to_its_driver_boot_interface_and_driver_info() {
        let redfish = |addr: &str| {
            json!({"redfish_address": addr, "redfish_system_id": "/redfish/v1/Systems/1",
                   "redfish_username": "admin", "redfish_password": "s3cret"})
        };
        let ipmi = |host: &str, port: &str| {
            json!({"ipmi_address": host, "ipmi_port": port, "ipmi_username": "admin",
                   "ipmi_password": "s3cret", "ipmi_priv_level": "ADMINISTRATOR"})
        };
        let rows = [
            Row {
                address: "ipmi://10.0.0.1",
                driver: "ipmi",
                boot: "ipxe",
                vmedia: false,
                info: ipmi("10.0.0.1", "623"),
            },
            Row {
                address: "ipmi://10.0.0.1:6230",
                driver: "ipmi",
                boot: "ipxe",
                vmedia: false,
                info: ipmi("10.0.0.1", "6230"),
            },
            Row {
                address: "10.0.0.1",
                driver: "ipmi",
                boot: "ipxe",
                vmedia: false,
                info: ipmi("10.0.0.1", "623"),
            },
            Row {
                address: "libvirt://192.168.122.1:6233/",
                driver: "ipmi",
                boot: "ipxe",
                vmedia: false,
                info: ipmi("192.168.122.1", "6233"),
            },
            Row {
                address: "ipmi://[fd00::1]:623",
                driver: "ipmi",
                boot: "ipxe",
                vmedia: false,
                info: ipmi("fd00::1", "623"),
            },
            Row {
                address: "redfish://bmc.example/redfish/v1/Systems/1",
                driver: "redfish",
                boot: "ipxe",
                vmedia: false,
                info: redfish("https://bmc.example"),
            },
            Row {
                address: "redfish+http://bmc.example:8000/redfish/v1/Systems/1",
                driver: "redfish",
                boot: "ipxe",
                vmedia: false,
                info: redfish("http://bmc.example:8000"),
            },
            Row {
                address: "redfish+https://[fd00::2]:8443/redfish/v1/Systems/1",
                driver: "redfish",
                boot: "ipxe",
                vmedia: false,
                info: redfish("https://[fd00::2]:8443"),
            },
            Row {
                address: "ilo5-redfish://ilo/redfish/v1/Systems/1",
                driver: "redfish",
                boot: "ipxe",
                vmedia: false,
                info: redfish("https://ilo"),
            },
            Row {
                address: "idrac-redfish://drac/redfish/v1/Systems/1",
                driver: "idrac",
                boot: "ipxe",
                vmedia: false,
                info: redfish("https://drac"),
            },
            Row {
                address: "redfish-virtualmedia://bmc/redfish/v1/Systems/1",
                driver: "redfish",
                boot: "redfish-virtual-media",
                vmedia: true,
                info: redfish("https://bmc"),
            },
            Row {
                address: "redfish-virtualmedia+http://127.0.0.1:8000/redfish/v1/Systems/1",
                driver: "redfish",
                boot: "redfish-virtual-media",
                vmedia: true,
                info: redfish("http://127.0.0.1:8000"),
            },
            Row {
                address: "ilo5-virtualmedia://ilo/redfish/v1/Systems/1",
                driver: "redfish",
                boot: "redfish-virtual-media",
                vmedia: true,
                info: redfish("https://ilo"),
            },
            Row {
                address: "idrac-virtualmedia://drac/redfish/v1/Systems/1",
                driver: "idrac",
                boot: "idrac-redfish-virtual-media",
                vmedia: true,
                info: redfish("https://drac"),
            },
            Row {
                address: "redfish-uefihttp://bmc/redfish/v1/Systems/1",
                driver: "redfish",
                boot: "redfish-https",
                vmedia: true,
                info: redfish("https://bmc"),
            },
            Row {
                address: "fake-hardware://host-1",
                driver: "fake-hardware",
                boot: "ipxe",
                vmedia: false,
                info: json!({"fake_username": "admin"}),
            },
        ];
        for row in rows {
            let access =
                BmcAccess::parse(row.address, false).unwrap_or_else(|e| panic!("{}: {e}", row.address));
            assert_eq!(access.kind.driver(), row.driver, "{}", row.address);
            assert_eq!(access.kind.boot_interface(), row.boot, "{}", row.address);
            assert_eq!(access.kind.boots_iso_by_virtual_media(), row.vmedia, "{}", row.address);
            assert_eq!(access.kind.needs_boot_mac(), row.boot == "ipxe", "{}", row.address);
            assert_eq!(Value::Object(access.driver_info(&creds())), row.info, "{}", row.address);
        }
    }

    #[test]
    fn idrac_sets_its_own_management_and_power_interfaces() {
        let access = BmcAccess::parse("idrac-virtualmedia://drac/redfish/v1/Systems/1", false).unwrap();
        assert!(access.kind.other_interfaces().contains(&("power_interface", "idrac-redfish")));
        assert!(BmcAccess::parse("redfish://x/y", false).unwrap().kind.other_interfaces().is_empty());
    }

    #[test]
    fn disabling_certificate_verification_sets_redfish_verify_ca_false() {
        let access = BmcAccess::parse("redfish://bmc/redfish/v1/Systems/1", true).unwrap();
        assert_eq!(access.driver_info(&creds())["redfish_verify_ca"], json!(false));
        let ipmi = BmcAccess::parse("ipmi://bmc", true).unwrap();
        assert!(!ipmi.driver_info(&creds()).contains_key("redfish_verify_ca"));
    }

    #[test]
    fn ipmi_privilege_level_comes_from_the_query() {
        let access = BmcAccess::parse("ipmi://bmc?privilegelevel=OPERATOR", false).unwrap();
        assert_eq!(access.driver_info(&creds())["ipmi_priv_level"], json!("OPERATOR"));
    }

    #[test]
    fn redfish_without_a_path_has_no_system_id() {
        let access = BmcAccess::parse("redfish://bmc", false).unwrap();
        assert!(!access.driver_info(&creds()).contains_key("redfish_system_id"));
    }

    #[test]
    fn unknown_scheme_is_named_with_the_address() {
        let err = BmcAccess::parse("foo://10.0.0.1", false).unwrap_err();
        assert_eq!(err.to_string(), "spec.bmc.address: Unknown BMC type 'foo' for address foo://10.0.0.1");
        let err = BmcAccess::parse("redfish+ftp://10.0.0.1", false).unwrap_err();
        assert!(err.to_string().contains("Unknown BMC type 'redfish+ftp'"), "{err}");
    }

    #[test]
    fn empty_and_malformed_addresses_are_refused_with_the_field() {
        assert_eq!(BmcAccess::parse("  ", false).unwrap_err(), BmcError::MissingAddress);
        let err = BmcAccess::parse("redfish://", false).unwrap_err();
        assert!(err.to_string().starts_with("spec.bmc.address: failed to parse BMC address"), "{err}");
        let err = BmcAccess::parse("ipmi://[::1", false).unwrap_err();
        assert!(matches!(err, BmcError::Malformed { .. }), "{err:?}");
    }

    #[test]
    fn credentials_debug_never_shows_the_password() {
        let text = format!("{:?}", creds());
        assert!(text.contains("admin") && !text.contains("s3cret"), "{text}");
    }
}
