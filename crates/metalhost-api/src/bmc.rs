//! BMC addresses: which Ironic driver, interfaces and `driver_info` a host's `spec.bmc.address` means.
//!
//! The table (docs/architecture.md §3, README) is upstream's (baremetal-operator
//! `pkg/hardwareutils/bmc`): the URL scheme picks the driver and the boot interface, the rest of the
//! URL becomes the driver's address fields. Addresses are split as Go's `net/url` splits them, so that
//! exactly the addresses upstream accepts are accepted, with upstream's messages.

use std::fmt;

use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

use crate::gourl;

/// Why a BMC address cannot be used. Messages follow upstream's wording.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BmcError {
    /// `spec.bmc.address` is empty.
    #[error("spec.bmc.address: missing BMC address")]
    MissingAddress,
    /// The scheme is not one metalhost knows.
    #[error("spec.bmc.address: Unknown BMC type '{kind}' for address {address}")]
    UnknownType {
        /// The scheme (lower-cased, as upstream reports it).
        kind: String,
        /// The whole address.
        address: String,
    },
    /// The address does not parse, or its host is neither an IP address nor a DNS name.
    #[error("spec.bmc.address: failed to parse BMC address information: {reason}")]
    Malformed {
        /// What is wrong with it, in upstream's words.
        reason: String,
    },
}

impl BmcError {
    /// The reason without the field path (`spec.bmc.address`): upstream's message.
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

/// Every kind, for tables and tests.
pub const ALL_KINDS: [BmcKind; 10] = [
    BmcKind::Ipmi,
    BmcKind::Libvirt,
    BmcKind::Redfish,
    BmcKind::Ilo5Redfish,
    BmcKind::IdracRedfish,
    BmcKind::RedfishVirtualMedia,
    BmcKind::Ilo5VirtualMedia,
    BmcKind::IdracVirtualMedia,
    BmcKind::RedfishUefiHttp,
    BmcKind::FakeHardware,
];

/// How a kind talks to its BMC: decides `driver_info` and most capabilities.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    Ipmi,
    Redfish,
    Fake,
}

impl BmcKind {
    fn from_scheme(scheme: &str) -> Option<Self> {
        ALL_KINDS.into_iter().find(|k| k.type_name() == scheme)
    }

    fn family(self) -> Family {
        match self {
            BmcKind::Ipmi | BmcKind::Libvirt => Family::Ipmi,
            BmcKind::Redfish
            | BmcKind::Ilo5Redfish
            | BmcKind::IdracRedfish
            | BmcKind::RedfishVirtualMedia
            | BmcKind::Ilo5VirtualMedia
            | BmcKind::IdracVirtualMedia
            | BmcKind::RedfishUefiHttp => Family::Redfish,
            BmcKind::FakeHardware => Family::Fake,
        }
    }

    /// Whether `+http`/`+https` may follow the scheme (upstream: every Redfish kind).
    fn takes_transport_suffix(self) -> bool {
        self.family() == Family::Redfish
    }

    /// Whether this is an iDRAC kind (Dell's own interfaces on top of Redfish).
    fn is_idrac(self) -> bool {
        match self {
            BmcKind::IdracRedfish | BmcKind::IdracVirtualMedia => true,
            BmcKind::Ipmi
            | BmcKind::Libvirt
            | BmcKind::Redfish
            | BmcKind::Ilo5Redfish
            | BmcKind::RedfishVirtualMedia
            | BmcKind::Ilo5VirtualMedia
            | BmcKind::RedfishUefiHttp
            | BmcKind::FakeHardware => false,
        }
    }

    /// The Ironic hardware type (driver).
    pub fn driver(self) -> &'static str {
        match self.family() {
            Family::Ipmi => "ipmi",
            Family::Redfish if self.is_idrac() => "idrac",
            Family::Redfish => "redfish",
            Family::Fake => "fake-hardware",
        }
    }

    /// The Ironic boot interface.
    pub fn boot_interface(self) -> &'static str {
        match self {
            BmcKind::Ipmi
            | BmcKind::Libvirt
            | BmcKind::Redfish
            | BmcKind::Ilo5Redfish
            | BmcKind::IdracRedfish
            | BmcKind::FakeHardware => "ipxe",
            BmcKind::RedfishVirtualMedia | BmcKind::Ilo5VirtualMedia => "redfish-virtual-media",
            BmcKind::IdracVirtualMedia => "idrac-redfish-virtual-media",
            BmcKind::RedfishUefiHttp => "redfish-https",
        }
    }

    /// The scheme naming this kind (without `+http`/`+https`).
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
        match self.family() {
            Family::Ipmi => "no-raid",
            Family::Redfish if self.is_idrac() => "idrac-redfish",
            Family::Redfish => "redfish",
            Family::Fake => "fake",
        }
    }

    /// The Ironic inspect interface for fast (out-of-band) inspection; None: the BMC cannot do it.
    pub fn inspect_interface(self) -> Option<&'static str> {
        match self.family() {
            Family::Ipmi => None,
            // upstream uses redfish for iDRAC too (idrac-redfish is not enabled in its Ironic)
            Family::Redfish => Some("redfish"),
            Family::Fake => Some("fake"),
        }
    }

    /// The Ironic firmware interface; None: firmware cannot be updated through this BMC.
    pub fn firmware_interface(self) -> Option<&'static str> {
        match self.family() {
            Family::Ipmi => None,
            Family::Redfish => Some("redfish"),
            Family::Fake => Some("fake"),
        }
    }

    /// Whether the BMC can turn on UEFI secure boot.
    pub fn supports_secure_boot(self) -> bool {
        match self.family() {
            Family::Ipmi => false,
            Family::Redfish | Family::Fake => true,
        }
    }

    /// Whether the BMC mounts the ISO as virtual media (so a live ISO boots whole, and a second
    /// device could carry a config drive). Upstream's `SupportsISOPreprovisioningImage`.
    pub fn boots_iso_by_virtual_media(self) -> bool {
        matches!(
            self.boot_interface(),
            "redfish-virtual-media" | "idrac-redfish-virtual-media" | "redfish-https"
        )
    }

    /// Whether the host boots from virtual media the BMC mounts (not the network, not UEFI HTTP).
    pub fn boots_from_virtual_media(self) -> bool {
        matches!(self.boot_interface(), "redfish-virtual-media" | "idrac-redfish-virtual-media")
    }

    /// Whether Ironic can attach a config drive next to a live ISO (a second virtual media device;
    /// the boot interface has `ramdisk_boot_configdrive`).
    pub fn attaches_config_drive_to_live_iso(self) -> bool {
        self.boots_from_virtual_media()
    }

    /// Whether `bootMACAddress` is required even when inspection could discover it (upstream's
    /// `NeedsMAC`): libvirt (virtualbmc, whose MAC inspection cannot find) and fake-hardware (no
    /// real inspection). Every kind needs it when inspection is disabled.
    pub fn needs_boot_mac(self) -> bool {
        match self {
            BmcKind::Libvirt | BmcKind::FakeHardware => true,
            BmcKind::Ipmi
            | BmcKind::Redfish
            | BmcKind::Ilo5Redfish
            | BmcKind::IdracRedfish
            | BmcKind::RedfishVirtualMedia
            | BmcKind::Ilo5VirtualMedia
            | BmcKind::IdracVirtualMedia
            | BmcKind::RedfishUefiHttp => false,
        }
    }

    /// Interfaces to set besides the boot interface (the rest take Ironic's defaults).
    pub fn other_interfaces(self) -> &'static [(&'static str, &'static str)] {
        match self.family() {
            Family::Redfish if self.is_idrac() => {
                &[("management_interface", "idrac-redfish"), ("power_interface", "idrac-redfish")]
            }
            Family::Ipmi | Family::Redfish => &[],
            Family::Fake => &[
                ("management_interface", "fake"),
                ("power_interface", "fake"),
                ("inspect_interface", "fake"),
            ],
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
    /// The BMC type as upstream names it in messages: the scheme as written, lower-cased, with any
    /// `+http`/`+https` (e.g. `redfish+http`).
    pub bmc_type: String,
    /// `http` or `https` for Redfish-family BMCs (from a `+http`/`+https` suffix, default https).
    pub transport: &'static str,
    /// Host name or IP (IPv6 without brackets); may be empty, as upstream allows.
    pub host: String,
    /// The host with its port as written (`[fd00::1]:8443`): the Redfish address.
    pub authority: String,
    /// Port, when given (digits as written; IPMI: 623 by default).
    pub port: Option<String>,
    /// The URL path, unescaped (the Redfish system ID).
    pub path: String,
    /// Skip TLS verification towards the BMC.
    pub disable_certificate_verification: bool,
    /// IPMI privilege level from `?privilegelevel=` (default ADMINISTRATOR).
    pub ipmi_priv_level: String,
}

/// Whether `host` is what upstream's `checkDNSValid` accepts: empty, an IP address, or DNS labels
/// (letters, digits, inner hyphens; 1 to 63 characters) joined by dots.
fn host_is_valid(host: &str) -> bool {
    if host.is_empty() || host.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    host.split('.').all(|label| {
        let b = label.as_bytes();
        (1..=63).contains(&b.len())
            && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
            && b[0] != b'-'
            && b[b.len() - 1] != b'-'
    })
}

/// Upstream's `GetParsedURL`: a bare `host` or `host:port` means IPMI, `scheme:host` means
/// `scheme://host`, and the host must be an IP address or a DNS name.
fn parsed_url(address: &str) -> Result<gourl::GoUrl, BmcError> {
    let malformed = |reason: String| BmcError::Malformed { reason };
    let url = match gourl::parse(address) {
        Err(e) => {
            if address.contains(':') && !gourl::net_split_host_port_ok(address) {
                return Err(malformed(e));
            }
            gourl::GoUrl { scheme: "ipmi".into(), host: address.to_string(), ..Default::default() }
        }
        Ok(mut url) => {
            if !url.opaque.is_empty() {
                url = gourl::parse(&address.replacen(':', "://", 1)).map_err(malformed)?;
            }
            if url.scheme.is_empty() && url.hostname().is_empty() {
                url = gourl::parse(&format!("ipmi://{address}")).map_err(malformed)?;
            }
            url
        }
    };
    let hostname = url.hostname();
    if !host_is_valid(hostname) {
        return Err(malformed(format!("BMC address hostname/IP : [{hostname}] is invalid")));
    }
    Ok(url)
}

impl BmcAccess {
    /// Parses `spec.bmc.address` as upstream does. A bare host name means IPMI.
    pub fn parse(address: &str, disable_certificate_verification: bool) -> Result<Self, BmcError> {
        if address.is_empty() {
            return Err(BmcError::MissingAddress);
        }
        let url = parsed_url(address)?;
        let unknown = || BmcError::UnknownType { kind: url.scheme.clone(), address: address.to_string() };
        let (kind_name, transport) = match url.scheme.split_once('+') {
            Some((kind, "http")) => (kind, "http"),
            Some((kind, "https")) => (kind, "https"),
            Some(_) => return Err(unknown()),
            None => (url.scheme.as_str(), "https"),
        };
        let kind = BmcKind::from_scheme(kind_name).ok_or_else(unknown)?;
        if kind_name != url.scheme && !kind.takes_transport_suffix() {
            return Err(unknown());
        }
        let ipmi_priv_level =
            gourl::query_value(&url.raw_query, "privilegelevel").unwrap_or_else(|| "ADMINISTRATOR".into());
        Ok(BmcAccess {
            kind,
            bmc_type: url.scheme.clone(),
            transport,
            host: url.hostname().to_string(),
            authority: url.host.clone(),
            port: Some(url.port().to_string()).filter(|p| !p.is_empty()),
            path: url.path.clone(),
            disable_certificate_verification,
            ipmi_priv_level,
        })
    }

    /// Where Ironic opens its TCP connections to this BMC (host and port), for a Redfish-family
    /// BMC with a host: metalhost looks there itself while Ironic verifies the node, to tell a
    /// port that refuses connections long before Ironic's own retries give up. `None` for IPMI
    /// (UDP) and fake hardware.
    pub fn tcp_endpoint(&self) -> Option<(String, u16)> {
        if self.kind.family() != Family::Redfish || self.host.is_empty() {
            return None;
        }
        let port = match &self.port {
            Some(port) => port.parse().ok()?,
            None if self.transport == "http" => 80,
            None => 443,
        };
        Some((self.host.clone(), port))
    }

    /// The Ironic `driver_info` for this BMC with these credentials (upstream's `DriverInfo`).
    pub fn driver_info(&self, credentials: &Credentials) -> Map<String, Value> {
        let mut info = Map::new();
        match self.kind.family() {
            Family::Redfish => {
                info.insert(
                    "redfish_address".into(),
                    json!(format!("{}://{}", self.transport, self.authority)),
                );
                let trimmed = self.path.trim_matches('/');
                // upstream's UEFI HTTP driver always sends the path; the others skip an empty one
                // and the service root
                if self.kind == BmcKind::RedfishUefiHttp || !(trimmed.is_empty() || trimmed == "redfish/v1") {
                    info.insert("redfish_system_id".into(), json!(self.path));
                }
                info.insert("redfish_username".into(), json!(credentials.username));
                info.insert("redfish_password".into(), json!(credentials.password()));
                if self.disable_certificate_verification {
                    info.insert("redfish_verify_ca".into(), json!(false));
                }
            }
            Family::Fake => {
                // fake-hardware keeps nothing of the BMC; the user name shows which host it is.
                info.insert("fake_username".into(), json!(credentials.username));
            }
            Family::Ipmi => {
                info.insert("ipmi_address".into(), json!(self.host));
                info.insert("ipmi_port".into(), json!(self.port.as_deref().unwrap_or("623")));
                info.insert("ipmi_username".into(), json!(credentials.username));
                info.insert("ipmi_password".into(), json!(credentials.password()));
                info.insert("ipmi_priv_level".into(), json!(self.ipmi_priv_level));
                if self.disable_certificate_verification {
                    info.insert("ipmi_verify_ca".into(), json!(false));
                }
            }
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

    #[test]
    fn the_tcp_endpoint_is_where_ironic_connects() {
        let endpoint = |address: &str| BmcAccess::parse(address, false).unwrap().tcp_endpoint();
        let at = |host: &str, port| Some((host.to_string(), port));
        assert_eq!(
            endpoint("redfish-virtualmedia+http://10.0.0.1:8000/redfish/v1/Systems/1"),
            at("10.0.0.1", 8000)
        );
        assert_eq!(endpoint("redfish://bmc.example.com/redfish/v1/Systems/1"), at("bmc.example.com", 443));
        assert_eq!(endpoint("idrac-virtualmedia+http://[fd00::1]/redfish/v1/Systems/1"), at("fd00::1", 80));
        assert_eq!(endpoint("ipmi://10.0.0.1:623"), None);
        assert_eq!(endpoint("fake-hardware://x"), None);
    }

    /// Upstream's capabilities of each BMC type (pkg/hardwareutils/bmc at 02aa5059), plus the
    /// fake-hardware extension: scheme, driver, boot interface, NeedsMAC, InspectInterface (fast
    /// inspection), RAIDInterface, SupportsSecureBoot, FirmwareInterface,
    /// SupportsISOPreprovisioningImage.
    #[allow(clippy::type_complexity)]
    const CAPABILITIES: &[(&str, &str, &str, bool, Option<&str>, &str, bool, Option<&str>, bool)] = &[
        ("ipmi", "ipmi", "ipxe", false, None, "no-raid", false, None, false),
        ("libvirt", "ipmi", "ipxe", true, None, "no-raid", false, None, false),
        ("redfish", "redfish", "ipxe", false, Some("redfish"), "redfish", true, Some("redfish"), false),
        ("ilo5-redfish", "redfish", "ipxe", false, Some("redfish"), "redfish", true, Some("redfish"), false),
        (
            "idrac-redfish",
            "idrac",
            "ipxe",
            false,
            Some("redfish"),
            "idrac-redfish",
            true,
            Some("redfish"),
            false,
        ),
        (
            "redfish-virtualmedia",
            "redfish",
            "redfish-virtual-media",
            false,
            Some("redfish"),
            "redfish",
            true,
            Some("redfish"),
            true,
        ),
        (
            "ilo5-virtualmedia",
            "redfish",
            "redfish-virtual-media",
            false,
            Some("redfish"),
            "redfish",
            true,
            Some("redfish"),
            true,
        ),
        (
            "idrac-virtualmedia",
            "idrac",
            "idrac-redfish-virtual-media",
            false,
            Some("redfish"),
            "idrac-redfish",
            true,
            Some("redfish"),
            true,
        ),
        (
            "redfish-uefihttp",
            "redfish",
            "redfish-https",
            false,
            Some("redfish"),
            "redfish",
            true,
            Some("redfish"),
            true,
        ),
        ("fake-hardware", "fake-hardware", "ipxe", true, Some("fake"), "fake", true, Some("fake"), false),
    ];

    #[test]
    fn every_scheme_has_upstreams_driver_interfaces_and_capabilities() {
        assert_eq!(CAPABILITIES.len(), ALL_KINDS.len());
        for &(scheme, driver, boot, needs_mac, inspect, raid, secure_boot, firmware, iso) in CAPABILITIES {
            let suffixes: &[&str] = if scheme.contains("redfish") || scheme.contains("virtualmedia") {
                &["", "+http", "+https"]
            } else {
                &[""]
            };
            for suffix in suffixes {
                let address = format!("{scheme}{suffix}://bmc.example:8000/redfish/v1/Systems/1");
                let access = BmcAccess::parse(&address, false).unwrap_or_else(|e| panic!("{address}: {e}"));
                let kind = access.kind;
                assert_eq!(access.bmc_type, format!("{scheme}{suffix}"), "{address}");
                assert_eq!(kind.driver(), driver, "{address}");
                assert_eq!(kind.boot_interface(), boot, "{address}");
                assert_eq!(kind.needs_boot_mac(), needs_mac, "{address}");
                assert_eq!(kind.inspect_interface(), inspect, "{address}");
                assert_eq!(kind.raid_interface(), raid, "{address}");
                assert_eq!(kind.supports_secure_boot(), secure_boot, "{address}");
                assert_eq!(kind.firmware_interface(), firmware, "{address}");
                assert_eq!(kind.boots_iso_by_virtual_media(), iso, "{address}");
            }
            // ipmi, libvirt and fake-hardware take no transport suffix
            if suffixes.len() == 1 {
                let address = format!("{scheme}+https://bmc");
                assert_eq!(
                    BmcAccess::parse(&address, false).unwrap_err().reason(),
                    format!("Unknown BMC type '{scheme}+https' for address {address}")
                );
            }
        }
    }

    #[test]
    fn addresses_upstream_accepts_and_their_driver_info() {
        let redfish = |addr: &str, system: Option<&str>| {
            let mut v =
                json!({"redfish_address": addr, "redfish_username": "admin", "redfish_password": "s3cret"});
            if let Some(system) = system {
                v["redfish_system_id"] = json!(system);
            }
            v
        };
        let ipmi = |host: &str, port: &str| {
            json!({"ipmi_address": host, "ipmi_port": port, "ipmi_username": "admin",
                   "ipmi_password": "s3cret", "ipmi_priv_level": "ADMINISTRATOR"})
        };
        let rows = [
            ("ipmi://10.0.0.1", "ipmi", ipmi("10.0.0.1", "623")),
            ("ipmi://10.0.0.1:6230", "ipmi", ipmi("10.0.0.1", "6230")),
            ("10.0.0.1", "ipmi", ipmi("10.0.0.1", "623")),
            ("bmc-1.example.com", "ipmi", ipmi("bmc-1.example.com", "623")),
            ("192.168.122.1:6233", "ipmi", ipmi("192.168.122.1", "6233")),
            ("[fe80::1]:623", "ipmi", ipmi("fe80::1", "623")),
            ("ipmi:192.168.122.1", "ipmi", ipmi("192.168.122.1", "623")),
            ("IPMI://Host", "ipmi", ipmi("Host", "623")),
            ("ipmi://h:", "ipmi", ipmi("h", "623")),
            ("ipmi://h#frag", "ipmi", ipmi("h", "623")),
            ("ipmi://u:p@h", "ipmi", ipmi("h", "623")),
            ("ipmi://host:99999", "ipmi", ipmi("host", "99999")),
            ("ipmi:/path", "ipmi", ipmi("", "623")),
            ("libvirt://192.168.122.1:6233/", "libvirt", ipmi("192.168.122.1", "6233")),
            ("ipmi://[fd00::1]:623", "ipmi", ipmi("fd00::1", "623")),
            ("redfish://", "redfish", redfish("https://", None)),
            ("redfish://h/redfish/v1/", "redfish", redfish("https://h", None)),
            (
                "redfish://bmc.example/redfish/v1/Systems/1",
                "redfish",
                redfish("https://bmc.example", Some("/redfish/v1/Systems/1")),
            ),
            (
                "redfish+http://bmc.example:8000/redfish/v1/Systems/1",
                "redfish+http",
                redfish("http://bmc.example:8000", Some("/redfish/v1/Systems/1")),
            ),
            (
                "redfish+https://[fd00::2]:8443/redfish/v1/Systems/1/",
                "redfish+https",
                redfish("https://[fd00::2]:8443", Some("/redfish/v1/Systems/1/")),
            ),
            (
                "idrac-virtualmedia://drac/redfish/v1/Systems/1",
                "idrac-virtualmedia",
                redfish("https://drac", Some("/redfish/v1/Systems/1")),
            ),
            ("redfish-uefihttp://h", "redfish-uefihttp", redfish("https://h", Some(""))),
            ("fake-hardware://host-1", "fake-hardware", json!({"fake_username": "admin"})),
        ];
        for (address, bmc_type, info) in rows {
            let access = BmcAccess::parse(address, false).unwrap_or_else(|e| panic!("{address}: {e}"));
            assert_eq!(access.bmc_type, bmc_type, "{address}");
            assert_eq!(Value::Object(access.driver_info(&creds())), info, "{address}");
        }
    }

    #[test]
    fn addresses_upstream_refuses_with_its_messages() {
        let rows = [
            ("foo://10.0.0.1", "Unknown BMC type 'foo' for address foo://10.0.0.1"),
            ("test:127.0.1.1", "Unknown BMC type 'test' for address test:127.0.1.1"),
            ("redfish+ftp://x", "Unknown BMC type 'redfish+ftp' for address redfish+ftp://x"),
            ("host.example.com:623", "Unknown BMC type 'host.example.com' for address host.example.com:623"),
            ("//host", "Unknown BMC type '' for address //host"),
            ("fe80::1", "Unknown BMC type 'fe80' for address fe80::1"),
            (
                "ipmi://-host.example.com",
                "failed to parse BMC address information: BMC address hostname/IP : [-host.example.com] is invalid",
            ),
            (
                "host+1.example.com",
                "failed to parse BMC address information: BMC address hostname/IP : [host+1.example.com] is invalid",
            ),
            ("h_1", "failed to parse BMC address information: BMC address hostname/IP : [h_1] is invalid"),
            (
                " ipmi://x",
                "failed to parse BMC address information: BMC address hostname/IP : [ ipmi://x] is invalid",
            ),
            (
                "ipmi://a b",
                "failed to parse BMC address information: BMC address hostname/IP : [ipmi://a b] is invalid",
            ),
            (
                "ipmi://h/%zz",
                "failed to parse BMC address information: BMC address hostname/IP : [ipmi://h/%zz] is invalid",
            ),
            (
                "ipmi://[fe80::1%25eth0]",
                "failed to parse BMC address information: BMC address hostname/IP : [fe80::1%eth0] is invalid",
            ),
            (
                "ipmi://[::1",
                "failed to parse BMC address information: parse \"ipmi://[::1\": missing ']' in host",
            ),
            (
                "ipmi://host:abc",
                "failed to parse BMC address information: parse \"ipmi://host:abc\": invalid port \":abc\" after host",
            ),
            ("::1", "failed to parse BMC address information: parse \"::1\": missing protocol scheme"),
            (
                "a:b:c",
                "failed to parse BMC address information: parse \"a://b:c\": invalid port \":c\" after host",
            ),
            ("", "missing BMC address"),
        ];
        for (address, want) in rows {
            let err = BmcAccess::parse(address, false).unwrap_err();
            assert_eq!(err.reason(), want, "{address:?}");
            assert_eq!(err.to_string(), format!("spec.bmc.address: {want}"));
        }
    }

    #[test]
    fn idrac_sets_its_own_management_and_power_interfaces() {
        let access = BmcAccess::parse("idrac-virtualmedia://drac/redfish/v1/Systems/1", false).unwrap();
        assert!(access.kind.other_interfaces().contains(&("power_interface", "idrac-redfish")));
        assert!(BmcAccess::parse("redfish://x/y", false).unwrap().kind.other_interfaces().is_empty());
    }

    #[test]
    fn disabling_certificate_verification_sets_verify_ca_false() {
        let access = BmcAccess::parse("redfish://bmc/redfish/v1/Systems/1", true).unwrap();
        assert_eq!(access.driver_info(&creds())["redfish_verify_ca"], json!(false));
        let ipmi = BmcAccess::parse("ipmi://bmc", true).unwrap().driver_info(&creds());
        assert_eq!(ipmi["ipmi_verify_ca"], json!(false));
        assert!(!ipmi.contains_key("redfish_verify_ca"));
        assert!(
            !BmcAccess::parse("ipmi://bmc", false)
                .unwrap()
                .driver_info(&creds())
                .contains_key("ipmi_verify_ca")
        );
    }

    #[test]
    fn ipmi_privilege_level_comes_from_a_well_formed_query() {
        let level = |address: &str| {
            BmcAccess::parse(address, false).unwrap().driver_info(&creds())["ipmi_priv_level"].clone()
        };
        assert_eq!(level("ipmi://bmc?privilegelevel=OPERATOR"), json!("OPERATOR"));
        assert_eq!(level("ipmi://bmc?a=1&privilegelevel=USER&privilegelevel=X"), json!("USER"));
        // a query Go's ParseQuery refuses falls back to the default, as upstream's does
        assert_eq!(level("ipmi://bmc?privilegelevel=OPERATOR&b=%zz"), json!("ADMINISTRATOR"));
    }

    #[test]
    fn credentials_debug_never_shows_the_password() {
        let text = format!("{:?}", creds());
        assert!(text.contains("admin") && !text.contains("s3cret"), "{text}");
    }
}
