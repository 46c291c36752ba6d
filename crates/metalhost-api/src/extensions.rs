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
    let eject_media = match annotations.get(EJECT_MEDIA_ANNOTATION).map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(v) => {
            return Err(ExtensionError {
                annotation: EJECT_MEDIA_ANNOTATION,
                reason: format!("'{v}' is not one of true, false"),
            });
        }
    };
    Ok(LiveIsoOptions { boot_persistence, download_source, eject_media })
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
            }
        );
        assert_eq!(live_iso_options(&host(&[])).unwrap(), LiveIsoOptions::default());
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
