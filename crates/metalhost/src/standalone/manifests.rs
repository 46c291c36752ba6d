//! Reading manifests: multi-document YAML files holding BareMetalHosts and the Secrets they name.
//! A document that does not parse is reported with its file, position and field path, and never
//! stops the others from being read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Secret;
use metalhost_api::BareMetalHost;
use serde::Deserialize;
use serde_json::Value;

/// Files ending like this are metalhost's status files, not manifests.
pub const STATUS_SUFFIX: &str = ".status.yaml";
/// The largest manifest file read (bigger ones are refused, not loaded).
pub const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;

/// A host whose manifest could not be used, with the reason (shown in its status).
#[derive(Debug, Clone, PartialEq)]
pub struct BadHost {
    /// `namespace/name`, when the document had a name.
    pub key: Option<String>,
    /// Where it came from and why it is unusable.
    pub reason: String,
}

/// Everything found in a set of manifest files.
#[derive(Debug, Default)]
pub struct Manifests {
    /// Hosts by `namespace/name`.
    pub hosts: BTreeMap<String, BareMetalHost>,
    /// Secrets by `namespace/name`.
    pub secrets: BTreeMap<String, Secret>,
    /// Hosts whose documents are unusable.
    pub bad_hosts: Vec<BadHost>,
    /// Problems that concern no host (unreadable files, bad YAML, bad Secrets).
    pub problems: Vec<String>,
}

fn key_of(namespace: Option<&str>, name: &str) -> String {
    format!("{}/{}", namespace.unwrap_or("default"), name)
}

/// The manifest files of a directory: `*.yaml`, `*.yml` and `*.json`, status files excepted.
pub fn manifest_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            !name.starts_with('.')
                && !name.ends_with(STATUS_SUFFIX)
                && (name.ends_with(".yaml") || name.ends_with(".yml") || name.ends_with(".json"))
        })
        .collect();
    files.sort();
    Ok(files)
}

impl Manifests {
    /// Reads the given files.
    pub fn load(files: &[PathBuf]) -> Self {
        let mut m = Manifests::default();
        for file in files {
            let before: std::collections::BTreeSet<String> = m.secrets.keys().cloned().collect();
            m.read_file(file);
            m.version_secrets(file, &before);
        }
        m
    }

    /// Gives the Secrets just read from `file` (those not in `before`) a version when their
    /// manifest has none: the file's modification time. The core compares versions to notice
    /// changed credentials (`goodCredentials`), as it compares resourceVersions in Kubernetes;
    /// nothing derived from a Secret's content is ever stored.
    fn version_secrets(&mut self, file: &Path, before: &std::collections::BTreeSet<String>) {
        let modified = std::fs::metadata(file).and_then(|m| m.modified()).ok();
        let stamp = modified
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or_else(|| "unknown".to_string(), |d| format!("file-{}", d.as_nanos()));
        for (key, secret) in &mut self.secrets {
            if !before.contains(key) && secret.metadata.resource_version.is_none() {
                secret.metadata.resource_version = Some(stamp.clone());
            }
        }
    }

    /// Keeps the version a Secret had in the previous load when its content did not change: a
    /// rewritten file (another host edited beside it) is not a credentials change, as an update
    /// that changes nothing keeps a resourceVersion in Kubernetes.
    pub fn keep_versions_of_unchanged_secrets(&mut self, previous: &Manifests) {
        for (key, secret) in &mut self.secrets {
            let Some(old) = previous.secrets.get(key) else { continue };
            if old.data == secret.data && old.string_data == secret.string_data {
                secret.metadata.resource_version.clone_from(&old.metadata.resource_version);
            }
        }
    }

    fn read_file(&mut self, file: &Path) {
        let where_ = file.display().to_string();
        match std::fs::metadata(file) {
            Ok(meta) if meta.len() > MAX_MANIFEST_BYTES => {
                self.problems.push(format!(
                    "{where_}: {} bytes is over the {MAX_MANIFEST_BYTES}-byte limit; not read",
                    meta.len()
                ));
                return;
            }
            Err(e) => {
                self.problems.push(format!("{where_}: {e}"));
                return;
            }
            _ => {}
        }
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) => {
                self.problems.push(format!("{where_}: {e}"));
                return;
            }
        };
        for (index, doc) in serde_yaml_ng::Deserializer::from_str(&text).enumerate() {
            let at = format!("{where_} (document {})", index + 1);
            match Value::deserialize(doc) {
                Ok(Value::Null) => {}
                Ok(value) => self.add_document(&at, value),
                Err(e) => {
                    self.problems.push(format!("{at}: not valid YAML: {e}"));
                    // the rest of the stream cannot be trusted after a syntax error
                    break;
                }
            }
        }
    }

    fn add_document(&mut self, at: &str, value: Value) {
        let kind = value.get("kind").and_then(Value::as_str).unwrap_or("").to_string();
        let name = value.pointer("/metadata/name").and_then(Value::as_str).map(str::to_string);
        let namespace = value.pointer("/metadata/namespace").and_then(Value::as_str).map(str::to_string);
        let key = name.as_deref().map(|n| key_of(namespace.as_deref(), n));
        match kind.as_str() {
            "BareMetalHost" => {
                let Some(key) = key.filter(|_| name.as_deref().is_some_and(|n| !n.is_empty())) else {
                    self.bad_hosts
                        .push(BadHost { key: None, reason: format!("{at}: metadata.name: required") });
                    return;
                };
                match serde_path_to_error::deserialize::<_, BareMetalHost>(value) {
                    Ok(host) => {
                        if self.hosts.insert(key.clone(), host).is_some() {
                            self.problems
                                .push(format!("{at}: host {key} is defined twice; the last one wins"));
                        }
                    }
                    Err(e) => {
                        let path = e.path().to_string();
                        self.bad_hosts
                            .push(BadHost { key: Some(key), reason: format!("{at}: {path}: {}", e.inner()) });
                    }
                }
            }
            "Secret" => match (key, serde_path_to_error::deserialize::<_, Secret>(value)) {
                (Some(key), Ok(secret)) => {
                    self.secrets.insert(key, secret);
                }
                (None, _) => self.problems.push(format!("{at}: Secret without metadata.name")),
                // never echo a Secret's content in the message
                (Some(key), Err(e)) => {
                    self.problems.push(format!("{at}: Secret {key}: {}: invalid", e.path()))
                }
            },
            _ => {}
        }
    }

    /// The Secret `name` in `namespace`.
    pub fn secret(&self, namespace: &str, name: &str) -> Option<&Secret> {
        self.secrets.get(&key_of(Some(namespace), name))
    }
}

impl metalhost_core::SecretSource for Manifests {
    fn secret(&self, namespace: &str, name: &str) -> Option<&Secret> {
        Manifests::secret(self, namespace, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Manifests {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hosts.yaml");
        std::fs::write(&file, text).unwrap();
        Manifests::load(&[file])
    }

    #[test]
    fn reads_hosts_and_secrets_from_one_stream() {
        let m = load(
            "apiVersion: v1\nkind: Secret\nmetadata: {name: c}\ndata: {username: YQ==, password: Yg==}\n---\n\
             apiVersion: metal3.io/v1alpha1\nkind: BareMetalHost\nmetadata: {name: h1}\nspec: {online: true}\n---\n\
             kind: ConfigMap\nmetadata: {name: x}\n",
        );
        assert_eq!(m.hosts.keys().collect::<Vec<_>>(), ["default/h1"]);
        assert!(m.secret("default", "c").is_some());
        assert!(m.bad_hosts.is_empty() && m.problems.is_empty());
    }

    #[test]
    fn a_bad_field_names_its_path_and_spares_the_other_hosts() {
        let m = load(
            "kind: BareMetalHost\nmetadata: {name: bad}\nspec: {online: true, image: {url: u, format: floppy}}\n---\n\
             kind: BareMetalHost\nmetadata: {name: good}\nspec: {online: true}\n",
        );
        assert_eq!(m.hosts.keys().collect::<Vec<_>>(), ["default/good"]);
        assert_eq!(m.bad_hosts.len(), 1);
        assert_eq!(m.bad_hosts[0].key.as_deref(), Some("default/bad"));
        assert!(
            m.bad_hosts[0].reason.contains("spec.image.format: unknown variant `floppy`"),
            "{}",
            m.bad_hosts[0].reason
        );
    }

    #[test]
    fn broken_yaml_and_nameless_hosts_are_reported() {
        let m = load("kind: BareMetalHost\nspec: {online: true}\n---\nkind: [unclosed\n");
        assert_eq!(
            m.bad_hosts[0].reason,
            format!(
                "{} (document 1): metadata.name: required",
                m.bad_hosts[0].reason.split(" (").next().unwrap()
            )
        );
        assert!(m.problems.iter().any(|p| p.contains("not valid YAML")), "{:?}", m.problems);
    }

    #[test]
    fn a_bad_secret_is_reported_without_its_content() {
        let m = load("kind: Secret\nmetadata: {name: c}\ndata: {password: '!!notbase64-hunter2'}\n");
        assert_eq!(m.problems.len(), 1);
        assert!(!m.problems[0].contains("hunter2"), "{}", m.problems[0]);
    }

    #[test]
    fn status_files_are_not_manifests() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["a.yaml", "h1.status.yaml", "b.yml", "notes.txt", ".hidden.yaml"] {
            std::fs::write(dir.path().join(f), "").unwrap();
        }
        let names: Vec<_> = manifest_files(dir.path())
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap().to_string())
            .collect();
        assert_eq!(names, ["a.yaml", "b.yml"]);
    }
}
