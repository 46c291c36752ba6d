//! The image rules (docs/architecture.md §4): which images need a checksum, which URL schemes are accepted,
//! and whether the host boots the image as a live ISO or gets it written to disk.

use crate::host::{ChecksumType, Image, ImageFormat};

/// The longest image URL accepted.
pub const MAX_URL_LEN: usize = 4096;

/// URL schemes an image may come from.
pub const IMAGE_URL_SCHEMES: &[&str] = &["http", "https", "ftp", "oci"];

/// Why `spec.image` cannot be provisioned. Each message starts with the field path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    /// `spec.image.url` is empty.
    #[error("spec.image.url: must not be empty")]
    EmptyUrl,
    /// `spec.image.url` is longer than anyone needs.
    #[error("spec.image.url: {0} characters is over the limit of 4096")]
    UrlTooLong(usize),
    /// `spec.image.url` is not a URL.
    #[error("spec.image.url: image URL {url} is invalid: {reason}")]
    MalformedUrl {
        /// The URL as written.
        url: String,
        /// Why it does not parse.
        reason: String,
    },
    /// `spec.image.url` uses a scheme Ironic cannot fetch.
    #[error("spec.image.url: scheme '{scheme}' is not supported (use http, https, ftp or oci)")]
    UnsupportedScheme {
        /// The scheme as written.
        scheme: String,
    },
    /// A disk image without a checksum.
    #[error(
        "spec.image.checksum: checksum is required for normal images (a {format} image; only live-iso and oci:// images may omit it)"
    )]
    MissingChecksum {
        /// The format, or "disk" when unset.
        format: String,
    },
    /// A live kernel without its initramfs.
    #[error(
        "metadata.annotations[metalhost.io/initramfs-url]: required with format live-kernel (the initramfs to boot with the kernel at spec.image.url)"
    )]
    MissingInitramfs,
    /// The initramfs URL is not a URL Ironic can fetch.
    #[error("metadata.annotations[metalhost.io/initramfs-url]: image URL {url} is invalid: {reason}")]
    MalformedInitramfs {
        /// The URL as written.
        url: String,
        /// Why.
        reason: String,
    },
    /// A live ISO from an OCI registry with a checksum: the registry's digest is the checksum.
    #[error(
        "spec.image.checksum: must be empty for a live-iso image from an oci:// URL (the digest in the URL is the checksum)"
    )]
    ChecksumWithOciLiveIso,
}

/// What provisioning does with `spec.image`, once the rules hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeployImage {
    /// Boot the ISO in place through Ironic's ramdisk deploy (`instance_info.boot_iso`).
    LiveIso {
        /// Where the ISO is.
        url: String,
    },
    /// Boot a kernel and initramfs in place through Ironic's ramdisk deploy
    /// (`instance_info.kernel`, `ramdisk`, `ramdisk_kernel_arguments`).
    LiveKernel {
        /// The kernel.
        kernel: String,
        /// The initramfs.
        initramfs: String,
        /// Kernel command line.
        kernel_arguments: Option<String>,
    },
    /// Write the image to the root disk (Ironic's default deploy interface).
    Disk {
        /// Where the image is (`instance_info.image_source`).
        url: String,
        /// The checksum or a checksum file URL (absent only for oci:// URLs).
        checksum: Option<String>,
        /// The checksum algorithm; None or `auto` lets Ironic detect it.
        checksum_type: Option<ChecksumType>,
        /// The disk format (`instance_info.image_disk_format`).
        format: Option<ImageFormat>,
    },
}

impl ImageError {
    /// The field the error is about, e.g. `spec.image.url`.
    pub fn field(&self) -> &'static str {
        match self {
            ImageError::EmptyUrl
            | ImageError::UrlTooLong(_)
            | ImageError::MalformedUrl { .. }
            | ImageError::UnsupportedScheme { .. } => "spec.image.url",
            ImageError::MissingChecksum { .. } | ImageError::ChecksumWithOciLiveIso => "spec.image.checksum",
            ImageError::MissingInitramfs | ImageError::MalformedInitramfs { .. } => {
                "metadata.annotations[metalhost.io/initramfs-url]"
            }
        }
    }

    /// The reason without the field path.
    pub fn reason(&self) -> String {
        let text = self.to_string();
        text.strip_prefix(self.field()).and_then(|t| t.strip_prefix(": ")).unwrap_or(&text).to_string()
    }
}

impl DeployImage {
    /// Applies the image rules to `spec.image`.
    pub fn from_spec(image: &Image) -> Result<Self, ImageError> {
        let url = image.url.trim();
        if url.is_empty() {
            return Err(ImageError::EmptyUrl);
        }
        if url.len() > MAX_URL_LEN {
            return Err(ImageError::UrlTooLong(url.len()));
        }
        let parsed = crate::gourl::parse_request_uri(url)
            .map_err(|e| ImageError::MalformedUrl { url: url.to_string(), reason: e })?;
        if !IMAGE_URL_SCHEMES.contains(&parsed.scheme.as_str()) {
            return Err(ImageError::UnsupportedScheme { scheme: parsed.scheme.clone() });
        }
        if parsed.hostname().is_empty() {
            return Err(ImageError::MalformedUrl { url: url.to_string(), reason: "no host name".into() });
        }
        let checksum = image.checksum.as_deref().map(str::trim).filter(|c| !c.is_empty());
        let oci = parsed.scheme == "oci";
        if image.format == Some(ImageFormat::LiveIso) {
            if oci && checksum.is_some() {
                return Err(ImageError::ChecksumWithOciLiveIso);
            }
            return Ok(DeployImage::LiveIso { url: url.to_string() });
        }
        if image.format == Some(ImageFormat::LiveKernel) {
            // the initramfs and arguments come from the host's annotations: see `for_host`
            return Ok(DeployImage::LiveKernel {
                kernel: url.to_string(),
                initramfs: String::new(),
                kernel_arguments: None,
            });
        }
        if checksum.is_none() && !oci {
            let format = image.format.map_or("disk", ImageFormat::as_str).to_string();
            return Err(ImageError::MissingChecksum { format });
        }
        Ok(DeployImage::Disk {
            url: url.to_string(),
            checksum: checksum.map(str::to_string),
            checksum_type: image.checksum_type,
            format: image.format,
        })
    }

    /// What a host deploys: `spec.image` under the image rules, with the host's extensions
    /// applied (a live ISO's reprovision token; a live kernel's initramfs and arguments). None when
    /// the host has no image.
    pub fn for_host(host: &crate::BareMetalHost) -> Option<Result<Self, ImageError>> {
        let image = host.spec.image.as_ref()?;
        Some(Self::from_spec(image).and_then(|deploy| match deploy {
            DeployImage::LiveIso { url } => {
                Ok(DeployImage::LiveIso { url: crate::extensions::live_iso_url(host, &url) })
            }
            DeployImage::LiveKernel { kernel, .. } => {
                let annotations = host.annotations();
                let initramfs = annotations
                    .get(crate::extensions::INITRAMFS_ANNOTATION)
                    .map(|u| u.trim().to_string())
                    .filter(|u| !u.is_empty())
                    .ok_or(ImageError::MissingInitramfs)?;
                match crate::gourl::parse(&initramfs) {
                    Ok(u) if IMAGE_URL_SCHEMES.contains(&u.scheme.as_str()) && !u.hostname().is_empty() => {}
                    Ok(u) => {
                        return Err(ImageError::MalformedInitramfs {
                            url: initramfs.clone(),
                            reason: format!("scheme '{}' or host not usable", u.scheme),
                        });
                    }
                    Err(reason) => {
                        return Err(ImageError::MalformedInitramfs { url: initramfs.clone(), reason });
                    }
                }
                let kernel_arguments = annotations
                    .get(crate::extensions::KERNEL_ARGUMENTS_ANNOTATION)
                    .map(|a| a.trim().to_string())
                    .filter(|a| !a.is_empty());
                Ok(DeployImage::LiveKernel { kernel, initramfs, kernel_arguments })
            }
            disk => Ok(disk),
        }))
    }

    /// The image URL (the kernel's, for a live kernel).
    pub fn url(&self) -> &str {
        match self {
            DeployImage::LiveIso { url } | DeployImage::Disk { url, .. } => url,
            DeployImage::LiveKernel { kernel, .. } => kernel,
        }
    }

    /// Whether this is a live ISO.
    pub fn is_live_iso(&self) -> bool {
        matches!(self, DeployImage::LiveIso { .. })
    }

    /// Whether the image boots in place (live ISO or live kernel): no checksum, no disk writes.
    pub fn is_live(&self) -> bool {
        !matches!(self, DeployImage::Disk { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(url: &str, checksum: Option<&str>, format: Option<ImageFormat>) -> Image {
        Image { url: url.into(), checksum: checksum.map(Into::into), format, ..Default::default() }
    }

    #[test]
    fn live_iso_needs_no_checksum() {
        let got =
            DeployImage::from_spec(&image("http://h/fcos.iso", None, Some(ImageFormat::LiveIso))).unwrap();
        assert_eq!(got, DeployImage::LiveIso { url: "http://h/fcos.iso".into() });
        assert!(got.is_live_iso());
    }

    #[test]
    fn live_iso_accepts_a_checksum_over_http() {
        let got =
            DeployImage::from_spec(&image("https://h/fcos.iso", Some("abc"), Some(ImageFormat::LiveIso)));
        assert_eq!(got.unwrap(), DeployImage::LiveIso { url: "https://h/fcos.iso".into() });
    }

    #[test]
    fn live_iso_from_oci_without_checksum_is_fine_and_with_one_is_an_error() {
        assert!(
            DeployImage::from_spec(&image("oci://quay.io/x/iso:1", None, Some(ImageFormat::LiveIso))).is_ok()
        );
        let err =
            DeployImage::from_spec(&image("oci://quay.io/x/iso:1", Some("abc"), Some(ImageFormat::LiveIso)));
        assert_eq!(err.unwrap_err(), ImageError::ChecksumWithOciLiveIso);
    }

    #[test]
    fn every_disk_format_needs_a_checksum_unless_oci() {
        for format in [
            None,
            Some(ImageFormat::Raw),
            Some(ImageFormat::Qcow2),
            Some(ImageFormat::Vdi),
            Some(ImageFormat::Vmdk),
        ] {
            let err = DeployImage::from_spec(&image("http://h/disk.img", None, format)).unwrap_err();
            let name = format.map_or("disk", ImageFormat::as_str);
            assert_eq!(err, ImageError::MissingChecksum { format: name.into() });
            assert!(
                err.to_string().starts_with("spec.image.checksum: checksum is required for normal images"),
                "{err}"
            );
            assert!(DeployImage::from_spec(&image("oci://quay.io/x/disk:1", None, format)).is_ok());
            let blank = DeployImage::from_spec(&image("http://h/disk.img", Some("  "), format));
            assert!(matches!(blank, Err(ImageError::MissingChecksum { .. })));
        }
    }

    #[test]
    fn disk_image_keeps_checksum_type_and_format() {
        let mut spec = image("http://h/disk.qcow2", Some("deadbeef"), Some(ImageFormat::Qcow2));
        spec.checksum_type = Some(ChecksumType::Sha256);
        let got = DeployImage::from_spec(&spec).unwrap();
        assert_eq!(
            got,
            DeployImage::Disk {
                url: "http://h/disk.qcow2".into(),
                checksum: Some("deadbeef".into()),
                checksum_type: Some(ChecksumType::Sha256),
                format: Some(ImageFormat::Qcow2),
            }
        );
        assert!(!got.is_live_iso());
    }

    #[test]
    fn live_kernel_needs_no_checksum_but_an_initramfs() {
        let spec = image("http://h/vmlinuz", None, Some(ImageFormat::LiveKernel));
        let mut host = crate::BareMetalHost::new("h", Default::default());
        host.spec.image = Some(spec);
        assert_eq!(DeployImage::for_host(&host).unwrap().unwrap_err(), ImageError::MissingInitramfs);
        host.metadata.annotations = Some(
            [
                (crate::extensions::INITRAMFS_ANNOTATION.to_string(), "http://h/initrd.img".to_string()),
                (crate::extensions::KERNEL_ARGUMENTS_ANNOTATION.to_string(), "console=ttyS0".to_string()),
            ]
            .into(),
        );
        let got = DeployImage::for_host(&host).unwrap().unwrap();
        assert_eq!(
            got,
            DeployImage::LiveKernel {
                kernel: "http://h/vmlinuz".into(),
                initramfs: "http://h/initrd.img".into(),
                kernel_arguments: Some("console=ttyS0".into()),
            }
        );
        assert!(got.is_live() && !got.is_live_iso());
        host.metadata.annotations = Some(
            [(crate::extensions::INITRAMFS_ANNOTATION.to_string(), "file:///initrd".to_string())].into(),
        );
        let err = DeployImage::for_host(&host).unwrap().unwrap_err();
        assert!(
            err.to_string().starts_with(
                "metadata.annotations[metalhost.io/initramfs-url]: image URL file:///initrd is invalid"
            ),
            "{err}"
        );
    }

    #[test]
    fn accepted_and_refused_url_schemes() {
        for ok in ["http://h/a.iso", "https://h/a.iso", "ftp://h/a.iso", "oci://h/a:1"] {
            assert!(DeployImage::from_spec(&image(ok, None, Some(ImageFormat::LiveIso))).is_ok(), "{ok}");
        }
        for (bad, scheme) in [("file:///a.iso", "file"), ("nfs://h/a.iso", "nfs"), ("s3://b/a.iso", "s3")] {
            let err = DeployImage::from_spec(&image(bad, None, Some(ImageFormat::LiveIso))).unwrap_err();
            assert_eq!(err, ImageError::UnsupportedScheme { scheme: scheme.into() }, "{bad}");
        }
    }

    #[test]
    fn malformed_and_empty_urls_name_the_field() {
        let err = DeployImage::from_spec(&image("not a url", None, Some(ImageFormat::LiveIso))).unwrap_err();
        assert!(err.to_string().starts_with("spec.image.url: image URL not a url is invalid"), "{err}");
        let err = DeployImage::from_spec(&image("http://", None, Some(ImageFormat::LiveIso))).unwrap_err();
        assert!(matches!(err, ImageError::MalformedUrl { .. }), "{err:?}");
        assert_eq!(DeployImage::from_spec(&image(" ", None, None)).unwrap_err(), ImageError::EmptyUrl);
    }
}
