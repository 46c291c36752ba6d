//! The config drive of a live ISO (config-drive extension), built from the Secrets named by
//! `spec.userData`, `spec.networkData` and `spec.metaData`. Both runtimes use it; they differ only
//! in where Secrets come from.

use k8s_openapi::api::core::v1::Secret;
use metalhost_api::secret::secret_text;
use metalhost_api::{BareMetalHost, SecretReference};
use serde_json::Value;

/// The Secrets a host's config drive needs, as (namespace, name), when it asks for one.
pub fn secrets_needed(host: &BareMetalHost) -> Vec<(String, String)> {
    if !metalhost_api::extensions::live_iso_options(host).is_ok_and(|o| o.config_drive) {
        return Vec::new();
    }
    [&host.spec.user_data, &host.spec.network_data, &host.spec.meta_data]
        .into_iter()
        .flatten()
        .map(|r| {
            let namespace = r.namespace.clone().unwrap_or_else(|| host.namespace_or_default().to_string());
            (namespace, r.name.clone().unwrap_or_default())
        })
        .collect()
}

/// Builds the config drive of a host that asks for one (None when it does not), finding Secrets
/// with `lookup(namespace, name)`. Errors name the field and the Secret.
pub fn build<'a>(
    host: &BareMetalHost,
    lookup: impl Fn(&str, &str) -> Option<&'a Secret>,
) -> Option<Result<Value, String>> {
    let options = metalhost_api::extensions::live_iso_options(host).ok()?;
    if !options.config_drive {
        return None;
    }
    let read = |field: &str, reference: &Option<SecretReference>, keys: &[&str]| {
        let Some(reference) = reference else { return Ok(None) };
        let name = reference.name.clone().unwrap_or_default();
        let namespace = reference.namespace.as_deref().unwrap_or(host.namespace_or_default());
        let secret = lookup(namespace, &name)
            .ok_or_else(|| format!("spec.{field}: secret '{name}' not found in namespace '{namespace}'"))?;
        for key in keys {
            if let Some(text) = secret_text(secret, key).map_err(|e| e.to_string())? {
                return Ok(Some(text));
            }
        }
        Err(format!("spec.{field}: secret '{name}' has no key {}", keys[0]))
    };
    let parse = |field: &str, text: String| -> Result<Value, String> {
        serde_yaml_ng::from_str(&text).map_err(|e| format!("spec.{field}: not YAML or JSON: {e}"))
    };
    Some((|| {
        let user = read("userData", &host.spec.user_data, &["userData", "value"])?;
        let network = read("networkData", &host.spec.network_data, &["networkData"])?
            .map(|t| parse("networkData", t))
            .transpose()?;
        let meta = match read("metaData", &host.spec.meta_data, &["metaData"])? {
            Some(t) => match parse("metaData", t)? {
                Value::Object(map) => Some(map),
                _ => return Err("spec.metaData: must be a mapping".to_string()),
            },
            None => None,
        };
        Ok(metalhost_api::extensions::config_drive(host, user, network, meta))
    })())
}
