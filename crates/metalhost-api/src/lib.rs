//! The metal3.io/v1alpha1 `BareMetalHost` API as metalhost understands it: the resource types,
//! BMC address parsing (address scheme → Ironic driver and interfaces) and the image rules that
//! decide whether a host boots a live ISO or gets an image written to disk.
//!
//! Everything here is pure: no I/O, so every rule is unit-tested without servers.

pub mod bmc;
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
