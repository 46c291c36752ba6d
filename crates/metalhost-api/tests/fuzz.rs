//! Hostile input (proptest): BMC addresses, image specs and annotation JSON never panic the parsers
//! and validators; every refusal names its field; oversized image URLs are refused with a clear error.

use metalhost_api::validation::validate_host;
use metalhost_api::{BareMetalHost, BmcAccess, Credentials, DeployImage, Image, ImageFormat};
use proptest::prelude::*;

const SCHEMES: &[&str] = &[
    "ipmi",
    "libvirt",
    "redfish",
    "redfish+http",
    "redfish+https",
    "ilo5-redfish",
    "idrac-redfish",
    "redfish-virtualmedia",
    "ilo5-virtualmedia",
    "idrac-virtualmedia",
    "redfish-uefihttp",
    "fake-hardware",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn bmc_parsing_never_panics_and_errors_name_the_field(address in ".{0,300}", insecure: bool) {
        match BmcAccess::parse(&address, insecure) {
            Ok(access) => {
                let info = access.driver_info(&Credentials::new("u", "secret-pw"));
                // the password only ever sits under a password key
                for (key, value) in &info {
                    if value.as_str() == Some("secret-pw") {
                        prop_assert!(BmcAccess::SECRET_KEYS.contains(&key.as_str()), "{key}");
                    }
                }
            }
            Err(e) => prop_assert!(e.to_string().starts_with("spec.bmc.address: "), "{e}"),
        }
    }

    #[test]
    fn well_formed_addresses_of_every_scheme_parse(
        scheme in proptest::sample::select(SCHEMES),
        host in "[a-z]([a-z0-9-]{0,20}[a-z0-9])?(\\.[a-z0-9]{1,10}){0,3}",
        port in proptest::option::of(1u16..),
        path in "(/[A-Za-z0-9._-]{1,12}){0,4}",
    ) {
        let port = port.map(|p| format!(":{p}")).unwrap_or_default();
        let address = format!("{scheme}://{host}{port}{path}");
        let access = BmcAccess::parse(&address, false);
        prop_assert!(access.is_ok(), "{address}: {access:?}");
    }

    #[test]
    fn image_rules_never_panic(url in ".{0,200}", checksum in proptest::option::of(".{0,70}"), live: bool) {
        let image = Image {
            url,
            checksum,
            format: live.then_some(ImageFormat::LiveIso),
            ..Default::default()
        };
        if let Err(e) = DeployImage::from_spec(&image) {
            prop_assert!(e.to_string().starts_with(e.field()), "{e}");
        }
    }

    #[test]
    fn annotation_json_never_panics_validation(
        status in ".{0,200}",
        reboot in ".{0,100}",
        details in "\\{(\"[a-zA-Z]{1,12}\": ?(\\d{1,5}|\"[a-z]{0,8}\"|\\{\\}|\\[\\]|null),? ?){0,5}\\}",
    ) {
        let mut host = BareMetalHost::new("h1", Default::default());
        host.metadata.annotations = Some([
            ("baremetalhost.metal3.io/status".to_string(), status),
            ("reboot.metal3.io/x".to_string(), reboot),
            ("inspect.metal3.io".to_string(), "disabled".to_string()),
            ("inspect.metal3.io/hardwaredetails".to_string(), details),
        ].into());
        for violation in validate_host(&host) {
            prop_assert!(violation.path.starts_with("metadata.") || violation.path.starts_with("spec."), "{violation}");
        }
    }
}

#[test]
fn oversized_image_urls_are_refused_with_a_clear_error() {
    let long = format!("http://h/{}", "a".repeat(5000));
    let image = Image { url: long, format: Some(ImageFormat::LiveIso), ..Default::default() };
    let err = DeployImage::from_spec(&image).unwrap_err();
    assert_eq!(err.to_string(), "spec.image.url: 5009 characters is over the limit of 4096");
}

#[test]
fn long_bmc_addresses_parse_as_upstreams_do() {
    // upstream has no length limit on BMC addresses
    let access = BmcAccess::parse(&format!("redfish://h/{}", "x".repeat(3000)), false).unwrap();
    assert_eq!(access.path.len(), 3001);
}
