//! metalhost's opt-in extensions for live ISOs, as annotations so that upstream clients and the
//! upstream CRD are untouched: boot-device persistence per host and where the BMC gets the ISO.

use crate::host::BareMetalHost;

/// `Default`, `Always` or `Never`: Ironic's `driver_info.force_persistent_boot_device` for this
/// host. Installer ISOs want a one-time boot (`Never`), appliance ISOs a persistent one (`Always`).
pub const BOOT_PERSISTENCE_ANNOTATION: &str = "metalhost.io/boot-device-persistence";
/// `http`: the BMC fetches the ISO from `spec.image.url` itself (Ironic's
/// `instance_info.ramdisk_image_download_source`), for ISOs too large to stage on the conductor;
/// `local` (Ironic's default): the conductor downloads it and serves it to the BMC.
pub const ISO_DOWNLOAD_SOURCE_ANNOTATION: &str = "metalhost.io/iso-download-source";

/// `true`: eject the live ISO's virtual media while the host stays provisioned (and running);
/// removing the annotation (or `false`) inserts it again. The status condition
/// `LiveISOMediaInserted` shows what the BMC reports.
pub const EJECT_MEDIA_ANNOTATION: &str = "metalhost.io/eject-media";

/// `true`: attach a config drive built from `spec.userData`, `spec.networkData` and
/// `spec.metaData` to a live ISO as a second virtual media device (Redfish virtual media BMCs only).
pub const CONFIG_DRIVE_ANNOTATION: &str = "metalhost.io/live-iso-config-drive";

/// Any new value re-provisions a live-ISO host from fresh content at the same URL: the host is
/// deprovisioned and provisioned again, and Ironic is given the URL with
/// `metalhost-reprovision=<value>` added to its query, which it has never cached.
pub const REPROVISION_ANNOTATION: &str = "metalhost.io/reprovision";

/// With `spec.image.format: live-kernel`: the initramfs booted with the kernel at `spec.image.url`.
pub const INITRAMFS_ANNOTATION: &str = "metalhost.io/initramfs-url";
/// With `spec.image.format: live-kernel`: the kernel command line.
pub const KERNEL_ARGUMENTS_ANNOTATION: &str = "metalhost.io/kernel-arguments";

/// The query parameter that carries the reprovision token.
pub const REPROVISION_QUERY: &str = "metalhost-reprovision";

/// The URL Ironic gets for a live ISO: `url`, or with the reprovision token of the host.
pub fn live_iso_url(host: &BareMetalHost, url: &str) -> String {
    match host.annotations().get(REPROVISION_ANNOTATION).map(|t| t.trim()).filter(|t| !t.is_empty()) {
        None => url.to_string(),
        Some(token) => {
            let token: String = url::form_urlencoded::byte_serialize(token.as_bytes()).collect();
            let sep = if url.contains('?') { '&' } else { '?' };
            format!("{url}{sep}{REPROVISION_QUERY}={token}")
        }
    }
}

/// Boot-device persistence, with Ironic's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootPersistence {
    /// The driver's default.
    Default,
    /// Always set the boot device persistently.
    Always,
    /// Always set it for the next boot only.
    Never,
}

impl BootPersistence {
    /// Parses `Default`, `Always` or `Never`.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "Default" => Some(BootPersistence::Default),
            "Always" => Some(BootPersistence::Always),
            "Never" => Some(BootPersistence::Never),
            _ => None,
        }
    }

    /// Ironic's value.
    pub fn as_str(self) -> &'static str {
        match self {
            BootPersistence::Default => "Default",
            BootPersistence::Always => "Always",
            BootPersistence::Never => "Never",
        }
    }
}

/// Where the BMC gets a live ISO, with Ironic's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IsoDownloadSource {
    /// The conductor stages the ISO and serves it (Ironic's default).
    Local,
    /// The BMC downloads the ISO from its URL.
    Http,
}

impl IsoDownloadSource {
    /// Ironic's value.
    pub fn as_str(self) -> &'static str {
        match self {
            IsoDownloadSource::Local => "local",
            IsoDownloadSource::Http => "http",
        }
    }
}

/// The live-ISO options of a host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LiveIsoOptions {
    /// Boot-device persistence asked for (None: the operator-wide default).
    pub boot_persistence: Option<BootPersistence>,
    /// Where the BMC gets the ISO (None: Ironic's default).
    pub download_source: Option<IsoDownloadSource>,
    /// Eject the ISO while the host stays provisioned.
    pub eject_media: bool,
    /// Attach a config drive with the user data.
    pub config_drive: bool,
}

/// A bad extension annotation: the annotation's path and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("metadata.annotations[{annotation}]: {reason}")]
pub struct ExtensionError {
    /// The annotation.
    pub annotation: &'static str,
    /// What is wrong.
    pub reason: String,
}

/// Reads a host's live-ISO options from its annotations.
pub fn live_iso_options(host: &BareMetalHost) -> Result<LiveIsoOptions, ExtensionError> {
    let annotations = host.annotations();
    let boot_persistence = match annotations.get(BOOT_PERSISTENCE_ANNOTATION) {
        None => None,
        Some(v) => Some(BootPersistence::parse(v).ok_or_else(|| ExtensionError {
            annotation: BOOT_PERSISTENCE_ANNOTATION,
            reason: format!("'{v}' is not one of Default, Always, Never"),
        })?),
    };
    let download_source = match annotations.get(ISO_DOWNLOAD_SOURCE_ANNOTATION).map(String::as_str) {
        None => None,
        Some("http") => Some(IsoDownloadSource::Http),
        Some("local") => Some(IsoDownloadSource::Local),
        Some(v) => {
            return Err(ExtensionError {
                annotation: ISO_DOWNLOAD_SOURCE_ANNOTATION,
                reason: format!("'{v}' is not one of http, local"),
            });
        }
    };
    let flag = |annotation: &'static str| match annotations.get(annotation).map(String::as_str) {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(v) => Err(ExtensionError { annotation, reason: format!("'{v}' is not one of true, false") }),
    };
    let eject_media = flag(EJECT_MEDIA_ANNOTATION)?;
    let config_drive = flag(CONFIG_DRIVE_ANNOTATION)?;
    if config_drive {
        let bmc = host.spec.bmc.as_ref().map(|b| b.address.as_str()).unwrap_or("");
        let kind = crate::bmc::BmcAccess::parse(bmc, false).map(|a| a.kind).ok();
        if !kind.is_some_and(|k| k.attaches_config_drive_to_live_iso()) {
            return Err(ExtensionError {
                annotation: CONFIG_DRIVE_ANNOTATION,
                reason: format!(
                    "BMC driver {} cannot attach a config drive to a live ISO (it needs Redfish virtual media)",
                    kind.map_or("(none)", |k| k.type_name())
                ),
            });
        }
        if host.spec.user_data.is_none() && host.spec.network_data.is_none() && host.spec.meta_data.is_none()
        {
            return Err(ExtensionError {
                annotation: CONFIG_DRIVE_ANNOTATION,
                reason: "a config drive needs spec.userData, spec.networkData or spec.metaData".into(),
            });
        }
    }
    Ok(LiveIsoOptions { boot_persistence, download_source, eject_media, config_drive })
}

/// The config drive Ironic builds and attaches (`configdrive` of the `active` request, API
/// ≥ 1.56): user data as text, network data and meta data as JSON. The meta data always names
/// the host, as upstream's does.
pub fn config_drive(
    host: &BareMetalHost,
    user_data: Option<String>,
    network_data: Option<serde_json::Value>,
    meta_data: Option<serde_json::Map<String, serde_json::Value>>,
) -> serde_json::Value {
    let name = host.metadata.name.clone().unwrap_or_default();
    let mut meta = serde_json::Map::new();
    meta.insert("local-hostname".into(), name.clone().into());
    meta.insert("name".into(), name.clone().into());
    meta.insert("metal3-namespace".into(), host.namespace_or_default().into());
    meta.insert("metal3-name".into(), name.into());
    meta.extend(meta_data.unwrap_or_default());
    let mut drive = serde_json::json!({"meta_data": meta});
    if let Some(user) = user_data {
        drive["user_data"] = user.into();
    }
    if let Some(network) = network_data {
        drive["network_data"] = network;
    }
    drive
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(annotations: &[(&str, &str)]) -> BareMetalHost {
        let mut h = BareMetalHost::new("h", Default::default());
        h.metadata.annotations =
            Some(annotations.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
        h
    }

    #[test]
    fn reads_both_options() {
        let h = host(&[(BOOT_PERSISTENCE_ANNOTATION, "Never"), (ISO_DOWNLOAD_SOURCE_ANNOTATION, "http")]);
        assert_eq!(
            live_iso_options(&h).unwrap(),
            LiveIsoOptions {
                boot_persistence: Some(BootPersistence::Never),
                download_source: Some(IsoDownloadSource::Http),
                eject_media: false,
                config_drive: false,
            }
        );
        assert_eq!(live_iso_options(&host(&[])).unwrap(), LiveIsoOptions::default());
    }

    #[test]
    fn config_drive_needs_virtual_media_and_some_data() {
        let mut h = host(&[(CONFIG_DRIVE_ANNOTATION, "true")]);
        h.spec.bmc = Some(crate::host::BmcDetails {
            address: "ipmi://bmc".into(),
            credentials_name: "c".into(),
            disable_certificate_verification: false,
        });
        h.spec.user_data = Some(crate::host::SecretReference { name: Some("ud".into()), namespace: None });
        let err = live_iso_options(&h).unwrap_err();
        assert!(
            err.to_string().contains("BMC driver ipmi cannot attach a config drive to a live ISO"),
            "{err}"
        );
        h.spec.bmc.as_mut().unwrap().address = "redfish-virtualmedia://bmc/redfish/v1/Systems/1".into();
        assert!(live_iso_options(&h).unwrap().config_drive);
        h.spec.user_data = None;
        let err = live_iso_options(&h).unwrap_err();
        assert!(err.to_string().contains("needs spec.userData"), "{err}");
    }

    #[test]
    fn config_drive_names_the_host_and_carries_the_data() {
        let h = host(&[]);
        let meta = serde_json::json!({"role": "installer"}).as_object().cloned();
        let drive =
            config_drive(&h, Some("#cloud-config\n".into()), Some(serde_json::json!({"links": []})), meta);
        assert_eq!(drive["user_data"], "#cloud-config\n");
        assert_eq!(drive["network_data"], serde_json::json!({"links": []}));
        assert_eq!(drive["meta_data"]["local-hostname"], "h");
        assert_eq!(drive["meta_data"]["role"], "installer");
    }

    #[test]
    fn reprovision_token_goes_into_the_query() {
        assert_eq!(live_iso_url(&host(&[]), "http://h/a.iso"), "http://h/a.iso");
        let h = host(&[(REPROVISION_ANNOTATION, "2026-11-24 v2")]);
        assert_eq!(live_iso_url(&h, "http://h/a.iso"), "http://h/a.iso?metalhost-reprovision=2026-11-24+v2");
        assert_eq!(
            live_iso_url(&h, "http://h/a.iso?x=1"),
            "http://h/a.iso?x=1&metalhost-reprovision=2026-11-24+v2"
        );
    }

    #[test]
    fn refuses_unknown_values_naming_the_annotation() {
        let err = live_iso_options(&host(&[(BOOT_PERSISTENCE_ANNOTATION, "sometimes")])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "metadata.annotations[metalhost.io/boot-device-persistence]: 'sometimes' is not one of Default, Always, Never"
        );
        let err = live_iso_options(&host(&[(ISO_DOWNLOAD_SOURCE_ANNOTATION, "ftp")])).unwrap_err();
        assert!(err.to_string().contains("'ftp' is not one of http, local"), "{err}");
    }
}
