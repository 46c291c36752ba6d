//! A host's BMC as both runtimes resolve it: the parsed address and the credentials from its
//! Secret, or why they cannot be used. The runtimes differ only in where the Secret comes from.

use k8s_openapi::api::core::v1::Secret;
use metalhost_api::secret::{CredentialsError, credentials_from_secret};
use metalhost_api::{BareMetalHost, BmcAccess};
use metalhost_core::BmcInput;

/// The name of the Secret to look up for a host's BMC credentials: None when the host has no
/// BMC, or when its address or credentials name is already unusable (no lookup needed).
pub fn credentials_secret_name(host: &BareMetalHost) -> Option<&str> {
    let bmc = host.spec.bmc.as_ref()?;
    let name = bmc.credentials_name.trim();
    (BmcAccess::parse(&bmc.address, bmc.disable_certificate_verification).is_ok() && !name.is_empty())
        .then_some(bmc.credentials_name.as_str())
}

/// The host's BMC input, given the Secret found under [`credentials_secret_name`] in the host's
/// namespace (None: not found).
pub fn bmc_input(host: &BareMetalHost, secret: Option<&Secret>) -> BmcInput {
    let bmc = host.spec.bmc.as_ref()?;
    Some((|| {
        let access = BmcAccess::parse(&bmc.address, bmc.disable_certificate_verification)
            .map_err(|e| e.to_string())?;
        if bmc.credentials_name.trim().is_empty() {
            return Err(CredentialsError::MissingName.to_string());
        }
        let secret = secret.ok_or_else(|| {
            CredentialsError::NotFound {
                name: bmc.credentials_name.clone(),
                namespace: host.namespace_or_default().into(),
            }
            .to_string()
        })?;
        let credentials = credentials_from_secret(secret).map_err(|e| e.to_string())?;
        Ok((access, credentials))
    })())
}
