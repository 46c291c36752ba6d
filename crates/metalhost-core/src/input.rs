//! The one input record of a reconcile ([`HostInput`]): everything the core needs to know about a
//! host, resolved once from the manifest and the Secrets it names. Nothing downstream re-parses
//! annotations, image URLs or BMC addresses. See docs/architecture.md ("The seam").
//!
//! Resolution is pure: the runtime fetches the Secrets named by [`secrets_needed`] from wherever it
//! keeps them (the API server, a manifest directory) and hands them over as a [`SecretSource`].

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use metalhost_api::bmc::BmcError;
use metalhost_api::extensions::{self, ExtensionError, LiveIsoOptions};
use metalhost_api::secret::{CredentialsError, credentials_from_secret, secret_text};
use metalhost_api::{
    BareMetalHost, BmcAccess, Credentials, CredentialsStatus, DETACHED_ANNOTATION, DeployImage, ImageError,
    PAUSED_ANNOTATION, SecretReference,
};
use serde_json::Value;

/// Where Secrets come from: the runtime's store, searched by namespace and name.
pub trait SecretSource {
    /// The Secret `name` in `namespace`, if there is one.
    fn secret(&self, namespace: &str, name: &str) -> Option<&Secret>;
}

impl SecretSource for BTreeMap<(String, String), Secret> {
    fn secret(&self, namespace: &str, name: &str) -> Option<&Secret> {
        self.get(&(namespace.to_string(), name.to_string()))
    }
}

/// Why a host's BMC cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BmcProblem {
    /// `spec.bmc.address` does not parse.
    #[error(transparent)]
    Address(#[from] BmcError),
    /// The credentials Secret is missing or incomplete.
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
}

/// A host's BMC as resolved for one reconcile.
// One value per host and reconcile, never stored in bulk: boxing `Ready` would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Bmc {
    /// The host has no `spec.bmc`: it stays unmanaged.
    Absent,
    /// It has one that cannot be used, and why.
    Unusable(BmcProblem),
    /// It can be used.
    Ready {
        /// The parsed address (driver, interfaces, driver_info).
        access: BmcAccess,
        /// The credentials from the Secret.
        credentials: Credentials,
        /// Which Secret and which version of it the credentials came from (upstream's
        /// `triedCredentials`/`goodCredentials`).
        version: CredentialsStatus,
    },
}

impl Bmc {
    /// The address, when the BMC is usable.
    pub fn access(&self) -> Option<&BmcAccess> {
        match self {
            Bmc::Ready { access, .. } => Some(access),
            Bmc::Absent | Bmc::Unusable(_) => None,
        }
    }

    /// Whether the BMC boots ISOs through virtual media (ejecting and inserting is possible).
    pub fn has_virtual_media(&self) -> bool {
        self.access().is_some_and(|a| a.kind.boots_iso_by_virtual_media())
    }
}

/// Why a config drive (config-drive extension) cannot be built. Messages name the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigDriveError {
    /// A Secret the drive needs does not exist.
    #[error("spec.{field}: secret '{name}' not found in namespace '{namespace}'")]
    SecretNotFound {
        /// `userData`, `networkData` or `metaData`.
        field: &'static str,
        /// The Secret's name.
        name: String,
        /// Where it was looked for.
        namespace: String,
    },
    /// The Secret lacks the key.
    #[error("spec.{field}: secret '{name}' has no key {key}")]
    MissingKey {
        /// The field.
        field: &'static str,
        /// The Secret's name.
        name: String,
        /// The key looked for.
        key: &'static str,
    },
    /// The Secret's value is not usable text.
    #[error("spec.{field}: {source}")]
    Unreadable {
        /// The field.
        field: &'static str,
        /// Why.
        source: CredentialsError,
    },
    /// The data is not YAML or JSON (the parser's reason, without the content).
    #[error("spec.{field}: not YAML or JSON: {reason}")]
    NotData {
        /// The field.
        field: &'static str,
        /// The parser's reason.
        reason: String,
    },
    /// `metaData` is not a mapping.
    #[error("spec.metaData: must be a mapping")]
    MetaDataNotMapping,
    /// The Secret lives in another namespace (upstream's words and prefix).
    #[error(
        "baremetalhosts.metal3.io \"{host}\" is forbidden: {field}: cross-namespace Secret references are not allowed"
    )]
    CrossNamespace {
        /// The host's name.
        host: String,
        /// The field.
        field: &'static str,
    },
}

/// Everything one reconcile needs to know about a host, resolved once.
#[derive(Debug, Clone)]
pub struct HostInput {
    /// The host as the user wrote it.
    pub host: BareMetalHost,
    /// What to deploy (None: `spec.image` is unset), or why the image section is unusable.
    pub image: Option<Result<DeployImage, ImageError>>,
    /// The live-ISO extension options, or why an annotation is unusable.
    pub options: Result<LiveIsoOptions, ExtensionError>,
    /// The BMC.
    pub bmc: Bmc,
    /// `baremetalhost.metal3.io/paused`: no Ironic call and no status write.
    pub paused: bool,
    /// `baremetalhost.metal3.io/detached`: status `detached`, Ironic left alone.
    pub detached: bool,
    /// The host is being deleted.
    pub deleting: bool,
    /// The config drive, when the host asks for one (config-drive extension).
    pub config_drive: Option<Result<Value, ConfigDriveError>>,
    /// BIOS settings to apply in preparing (name → wanted value): the runtime's, from the host's
    /// HostFirmwareSettings when its status says a valid change for its current spec; empty when
    /// there are none.
    pub firmware_settings: std::collections::BTreeMap<String, metalhost_api::firmware::SettingValue>,
}

/// The purpose of a Secret a host names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SecretUse {
    /// BMC credentials (`spec.bmc.credentialsName`).
    Credentials,
    /// Config drive data (`spec.userData`, `spec.networkData`, `spec.metaData`).
    ConfigDrive,
}

/// The Secrets a host's input needs, as (namespace, name, use). None for a host that is paused,
/// detached or being deleted (nothing is done with them then). Config-drive Secrets in another
/// namespace are not listed: they are refused, never read.
pub fn secrets_needed(host: &BareMetalHost, deleting: bool) -> Vec<(String, String, SecretUse)> {
    let annotations = host.annotations();
    if deleting
        || annotations.contains_key(PAUSED_ANNOTATION)
        || annotations.contains_key(DETACHED_ANNOTATION)
    {
        return Vec::new();
    }
    let namespace = host.namespace_or_default();
    let mut needed = Vec::new();
    if let Some(name) = credentials_secret_name(host) {
        needed.push((namespace.to_string(), name.to_string(), SecretUse::Credentials));
    }
    if extensions::live_iso_options(host).is_ok_and(|o| o.config_drive) {
        for (_, reference) in drive_references(host) {
            let same = reference.namespace.as_deref().is_none_or(|ns| ns.is_empty() || ns == namespace);
            if same {
                let name = reference.name.clone().unwrap_or_default();
                needed.push((namespace.to_string(), name, SecretUse::ConfigDrive));
            }
        }
    }
    needed
}

/// The name of the BMC credentials Secret: None when the host has no BMC, or when its address or
/// credentials name is unusable anyway (no lookup needed).
fn credentials_secret_name(host: &BareMetalHost) -> Option<&str> {
    let bmc = host.spec.bmc.as_ref()?;
    let name = bmc.credentials_name.trim();
    (BmcAccess::parse(&bmc.address, bmc.disable_certificate_verification).is_ok() && !name.is_empty())
        .then_some(bmc.credentials_name.as_str())
}

fn drive_references(host: &BareMetalHost) -> Vec<(&'static str, &SecretReference)> {
    [
        ("userData", &host.spec.user_data),
        ("networkData", &host.spec.network_data),
        ("metaData", &host.spec.meta_data),
    ]
    .into_iter()
    .filter_map(|(field, r)| r.as_ref().map(|r| (field, r)))
    .collect()
}

impl HostInput {
    /// Resolves a host's input from its manifest and the Secrets at hand. `deleting`: the host is
    /// being deleted (nothing but its node's name and state matter then).
    pub fn resolve(host: BareMetalHost, deleting: bool, secrets: &dyn SecretSource) -> Self {
        let annotations = host.annotations();
        let paused = annotations.contains_key(PAUSED_ANNOTATION);
        let detached = annotations.contains_key(DETACHED_ANNOTATION);
        let image = DeployImage::for_host(&host);
        let options = extensions::live_iso_options(&host);
        let (bmc, config_drive) = if deleting {
            (Bmc::Absent, None)
        } else {
            (resolve_bmc(&host, secrets), build_config_drive(&host, options.as_ref().ok(), secrets))
        };
        let firmware_settings = Default::default();
        HostInput { host, image, options, bmc, paused, detached, deleting, config_drive, firmware_settings }
    }

    /// The options, or the defaults when an annotation is unusable (its error is reported where
    /// the options decide something: provisioning).
    pub fn options_or_default(&self) -> LiveIsoOptions {
        self.options.clone().unwrap_or_default()
    }

    /// `namespace/name`.
    pub fn key(&self) -> String {
        self.host.qualified_name()
    }
}

fn resolve_bmc(host: &BareMetalHost, secrets: &dyn SecretSource) -> Bmc {
    let Some(spec) = host.spec.bmc.as_ref() else { return Bmc::Absent };
    let access = match BmcAccess::parse(&spec.address, spec.disable_certificate_verification) {
        Ok(a) => a,
        Err(e) => return Bmc::Unusable(e.into()),
    };
    if spec.credentials_name.trim().is_empty() {
        return Bmc::Unusable(CredentialsError::MissingName.into());
    }
    let namespace = host.namespace_or_default();
    let Some(secret) = secrets.secret(namespace, &spec.credentials_name) else {
        return Bmc::Unusable(
            CredentialsError::NotFound { name: spec.credentials_name.clone(), namespace: namespace.into() }
                .into(),
        );
    };
    match credentials_from_secret(secret) {
        Ok(credentials) => {
            let version = CredentialsStatus {
                credentials: Some(SecretReference {
                    name: Some(spec.credentials_name.clone()),
                    namespace: Some(namespace.to_string()),
                }),
                credentials_version: secret.metadata.resource_version.clone(),
            };
            Bmc::Ready { access, credentials, version }
        }
        Err(e) => Bmc::Unusable(e.into()),
    }
}

/// Builds the config drive of a host that asks for one (None when it does not).
fn build_config_drive(
    host: &BareMetalHost,
    options: Option<&LiveIsoOptions>,
    secrets: &dyn SecretSource,
) -> Option<Result<Value, ConfigDriveError>> {
    if !options?.config_drive {
        return None;
    }
    let namespace = host.namespace_or_default();
    let read = |field: &'static str, keys: &[&'static str]| -> Result<Option<String>, ConfigDriveError> {
        let Some((_, reference)) = drive_references(host).into_iter().find(|(f, _)| *f == field) else {
            return Ok(None);
        };
        let name = reference.name.clone().unwrap_or_default();
        if reference.namespace.as_deref().is_some_and(|ns| !ns.is_empty() && ns != namespace) {
            return Err(ConfigDriveError::CrossNamespace {
                host: host.metadata.name.clone().unwrap_or_default(),
                field,
            });
        }
        let secret = secrets.secret(namespace, &name).ok_or_else(|| ConfigDriveError::SecretNotFound {
            field,
            name: name.clone(),
            namespace: namespace.to_string(),
        })?;
        for key in keys {
            match secret_text(secret, key) {
                Ok(Some(text)) => return Ok(Some(text)),
                Ok(None) => {}
                Err(source) => return Err(ConfigDriveError::Unreadable { field, source }),
            }
        }
        Err(ConfigDriveError::MissingKey { field, name, key: keys[0] })
    };
    let parse = |field: &'static str, text: String| -> Result<Value, ConfigDriveError> {
        serde_yaml_ng::from_str(&text).map_err(|e| ConfigDriveError::NotData { field, reason: e.to_string() })
    };
    Some((|| {
        let user = read("userData", &["userData", "value"])?;
        let network = read("networkData", &["networkData"])?.map(|t| parse("networkData", t)).transpose()?;
        let meta = match read("metaData", &["metaData"])? {
            Some(t) => match parse("metaData", t)? {
                Value::Object(map) => Some(map),
                _ => return Err(ConfigDriveError::MetaDataNotMapping),
            },
            None => None,
        };
        Ok(extensions::config_drive(host, user, network, meta))
    })())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn host(extra: Value) -> BareMetalHost {
        let mut v = json!({
            "apiVersion": "metal3.io/v1alpha1", "kind": "BareMetalHost",
            "metadata": {"name": "h1", "namespace": "lab"},
            "spec": {"online": true, "bmc": {"address": "redfish-virtualmedia://bmc/redfish/v1/Systems/1", "credentialsName": "c"},
                     "image": {"url": "http://x/live.iso", "format": "live-iso"}},
        });
        json_patch::merge(&mut v, &extra);
        serde_json::from_value(v).unwrap()
    }

    fn secret(ns: &str, name: &str, data: &[(&str, &str)], version: &str) -> ((String, String), Secret) {
        let s: Secret = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": ns, "resourceVersion": version},
            "stringData": data.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
        }))
        .unwrap();
        ((ns.to_string(), name.to_string()), s)
    }

    #[test]
    fn everything_is_resolved_once() {
        let secrets: BTreeMap<_, _> =
            [secret("lab", "c", &[("username", "u"), ("password", "p")], "7")].into();
        let h = host(
            json!({"metadata": {"annotations": {"metalhost.io/eject-media": "true", "baremetalhost.metal3.io/paused": ""}}}),
        );
        let input = HostInput::resolve(h, false, &secrets);
        assert!(input.paused && !input.detached && !input.deleting);
        assert!(matches!(input.image, Some(Ok(DeployImage::LiveIso { .. }))));
        assert!(input.options.as_ref().unwrap().eject_media);
        let Bmc::Ready { version, .. } = &input.bmc else { panic!("{:?}", input.bmc) };
        assert_eq!(version.credentials_version.as_deref(), Some("7"));
        assert!(input.bmc.has_virtual_media());
        assert!(input.config_drive.is_none());
    }

    #[test]
    fn bmc_problems_are_typed() {
        let none = BTreeMap::new();
        let input = HostInput::resolve(host(json!({})), false, &none);
        assert_eq!(
            input.bmc,
            Bmc::Unusable(BmcProblem::Credentials(CredentialsError::NotFound {
                name: "c".into(),
                namespace: "lab".into()
            }))
        );
        let input = HostInput::resolve(host(json!({"spec": {"bmc": {"address": "foo://x"}}})), false, &none);
        assert!(matches!(input.bmc, Bmc::Unusable(BmcProblem::Address(_))), "{:?}", input.bmc);
        let input = HostInput::resolve(host(json!({"spec": {"bmc": null}})), false, &none);
        assert_eq!(input.bmc, Bmc::Absent);
    }

    #[test]
    fn config_drive_secrets_from_another_namespace_are_refused_unread() {
        let h = host(json!({
            "metadata": {"annotations": {"metalhost.io/live-iso-config-drive": "true"}},
            "spec": {"userData": {"name": "ud", "namespace": "other"}},
        }));
        assert_eq!(
            secrets_needed(&h, false).into_iter().collect::<Vec<_>>(),
            [("lab".to_string(), "c".to_string(), SecretUse::Credentials)]
        );
        let secrets: BTreeMap<_, _> = [secret("other", "ud", &[("userData", "#cloud-config")], "1")].into();
        let input = HostInput::resolve(h, false, &secrets);
        let err = input.config_drive.unwrap().unwrap_err();
        assert_eq!(
            err.to_string(),
            "baremetalhosts.metal3.io \"h1\" is forbidden: userData: cross-namespace Secret references are not allowed"
        );
    }

    #[test]
    fn config_drive_is_built_from_the_named_secrets() {
        let h = host(json!({
            "metadata": {"annotations": {"metalhost.io/live-iso-config-drive": "true"}},
            "spec": {"userData": {"name": "ud"}},
        }));
        let needed = secrets_needed(&h, false);
        assert!(needed.contains(&("lab".into(), "ud".into(), SecretUse::ConfigDrive)));
        let secrets: BTreeMap<_, _> = [secret("lab", "ud", &[("value", "#cloud-config")], "1")].into();
        let drive = HostInput::resolve(h, false, &secrets).config_drive.unwrap().unwrap();
        assert_eq!(drive["user_data"], "#cloud-config");
    }

    #[test]
    fn a_deleting_host_needs_no_secrets() {
        let input = HostInput::resolve(host(json!({})), true, &BTreeMap::new());
        assert_eq!(input.bmc, Bmc::Absent);
        assert!(input.deleting);
    }
}
