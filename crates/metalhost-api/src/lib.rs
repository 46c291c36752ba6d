//! The metal3.io/v1alpha1 `BareMetalHost` API as metalhost understands it: the resource types,
//! BMC address parsing (address scheme → Ironic driver and interfaces) and the image rules that
//! decide whether a host boots a live ISO or gets an image written to disk.
//!
//! Everything here is pure: no I/O, so every rule is unit-tested without servers.

/// Implements `kube::Resource` for a namespaced metal3.io/v1alpha1 type written by hand (the
/// resources whose CRDs are upstream's, printed as they are).
macro_rules! metal3_resource {
    ($ty:ty, $kind:literal, $plural:literal) => {
        impl kube::Resource for $ty {
            type DynamicType = ();
            type Scope = k8s_openapi::NamespaceResourceScope;

            fn kind(_: &()) -> std::borrow::Cow<'_, str> {
                $kind.into()
            }
            fn group(_: &()) -> std::borrow::Cow<'_, str> {
                "metal3.io".into()
            }
            fn version(_: &()) -> std::borrow::Cow<'_, str> {
                "v1alpha1".into()
            }
            fn plural(_: &()) -> std::borrow::Cow<'_, str> {
                $plural.into()
            }
            fn meta(&self) -> &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                &self.metadata
            }
            fn meta_mut(&mut self) -> &mut k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                &mut self.metadata
            }
        }
    };
}

pub mod bmc;
pub mod data_image;
pub mod extensions;
pub mod firmware;
mod gojson;
mod gourl;
pub mod host;
pub mod image;
pub mod names;
pub mod redact;
pub mod secret;
pub mod text;
pub mod validation;

pub use bmc::{BmcAccess, BmcKind, Credentials};
pub use host::*;
pub use image::{DeployImage, ImageError};
