//! Reading manifests: multi-document YAML files holding BareMetalHosts and the Secrets they name.
//! A document that does not parse is reported with its file, position and field path, and never
//! stops the others from being read.
//!
//! Manifests are untrusted input, read defensively: only regular files (FIFOs, devices and
//! sockets are refused, also behind a symlink), at most [`MAX_MANIFEST_BYTES`] read whatever the
//! file claims, no YAML aliases and at most [`MAX_YAML_DEPTH`] levels of nesting (checked with
//! a safe port of libyaml's event parser, the parser serde_yaml_ng uses, before any document is
//! built), and hosts whose name or namespace Kubernetes would refuse are reported, never used.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Secret;
use metalhost_api::BareMetalHost;
use metalhost_api::data_image::DataImage;
use metalhost_api::firmware::HostFirmwareSettings;
use metalhost_api::redact::redact_url_userinfo;
use serde::Deserialize;
use serde_json::Value;

use super::bounded::{Links, read_bounded};

/// Files ending like this are metalhost's status files, not manifests.
pub const STATUS_SUFFIX: &str = ".status.yaml";
/// The largest manifest file read (bigger ones are refused, not loaded).
pub const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;
/// The deepest nesting of mappings and sequences accepted (a BareMetalHost needs about 6).
pub const MAX_YAML_DEPTH: usize = 64;

/// Refuses YAML that could cost far more to load than its size: aliases (`*name`, the stuff of
/// "billion laughs" bombs, where each alias repeats a whole anchored node) and nesting deeper than
/// [`MAX_YAML_DEPTH`]. Walks the text with `libyaml-safer`'s event parser (a safe Rust port of
/// libyaml, the parser serde_yaml_ng is built on, so both see the same structure) and stops at
/// the first offence, before any value is built: linear in the text. A syntax error ends the walk
/// without an error here: everything before it has been checked, and the real parse reports it.
///
/// libyaml-safer 0.3 panics on some malformed YAML (an escape at the very end of a double-quoted
/// scalar, `"\`; its open issues #6 and #7 show others). Such a panic is caught, kept off the
/// terminal, and the text refused with the error the real parser names (or, should that parser
/// accept it, as text that could not be checked).
pub fn check_yaml_shape(text: &str) -> Result<(), String> {
    quiet_checker_panics();
    IN_CHECKER.set(true);
    let walked = std::panic::catch_unwind(|| walk_yaml_shape(text));
    IN_CHECKER.set(false);
    walked.unwrap_or_else(|panic| {
        let said =
            panic.downcast_ref::<&str>().copied().or(panic.downcast_ref::<String>().map(String::as_str));
        tracing::debug!(panic = said.unwrap_or("?"), "the YAML shape checker gave up on a manifest");
        Err(unreadable(text))
    })
}

thread_local! {
    /// Whether this thread is inside [`walk_yaml_shape`], whose panics [`check_yaml_shape`] catches.
    static IN_CHECKER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The walk of [`check_yaml_shape`].
fn walk_yaml_shape(text: &str) -> Result<(), String> {
    use libyaml_safer::{Encoding, EventData, Parser};
    let mut input = text.as_bytes();
    let mut parser = Parser::new();
    parser.set_encoding(Encoding::Utf8);
    parser.set_input_string(&mut input);
    let mut depth = 0usize;
    loop {
        let Ok(event) = parser.parse() else { return Ok(()) };
        let line = event.start_mark.line + 1;
        match event.data {
            EventData::Alias { .. } => {
                return Err(format!(
                    "line {line}: YAML aliases (*name) are not accepted (they can expand a small file into gigabytes)"
                ));
            }
            EventData::SequenceStart { .. } | EventData::MappingStart { .. } => {
                depth += 1;
                if depth > MAX_YAML_DEPTH {
                    return Err(format!("line {line}: nested deeper than {MAX_YAML_DEPTH} levels"));
                }
            }
            EventData::SequenceEnd | EventData::MappingEnd => depth = depth.saturating_sub(1),
            EventData::StreamEnd => return Ok(()),
            _ => {}
        }
    }
}

/// Why a text the checker gave up on is refused: the real parser's syntax error (bounded on its
/// own: serde_yaml_ng limits recursion and alias repetition), else that it could not be checked.
fn unreadable(text: &str) -> String {
    let first_error = serde_yaml_ng::Deserializer::from_str(text)
        .find_map(|doc| serde::de::IgnoredAny::deserialize(doc).err());
    match first_error {
        Some(e) => e.to_string(),
        None => "YAML that could not be checked for aliases and nesting; not read".to_string(),
    }
}

/// Keeps the checker's panics (caught by [`check_yaml_shape`], which reports the text) off
/// stderr; every other panic, on any thread, goes to the hook there was before, unchanged.
/// Installed once.
fn quiet_checker_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !IN_CHECKER.get() {
                previous(info);
            }
        }));
    });
}

/// Parses every document of a YAML stream into JSON values after [`check_yaml_shape`], which
/// bounds what the parse can cost (no aliases, bounded depth: linear in the text). Each item is a
/// document or the syntax error that ended the stream.
pub fn parse_documents(text: &str) -> Result<Vec<Result<Value, String>>, String> {
    check_yaml_shape(text)?;
    let mut docs = Vec::new();
    for doc in serde_yaml_ng::Deserializer::from_str(text) {
        match Value::deserialize(doc) {
            Ok(v) => docs.push(Ok(v)),
            Err(e) => {
                docs.push(Err(e.to_string()));
                // the rest of the stream cannot be trusted after a syntax error
                break;
            }
        }
    }
    Ok(docs)
}

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
    /// DataImages by `namespace/name` (the name of their host).
    pub data_images: BTreeMap<String, DataImage>,
    /// HostFirmwareSettings by `namespace/name` (the name of their host).
    pub firmware_settings: BTreeMap<String, HostFirmwareSettings>,
    /// Hosts whose documents are unusable.
    pub bad_hosts: Vec<BadHost>,
    /// Problems that concern no host (unreadable files, bad YAML, bad Secrets).
    pub problems: Vec<String>,
}

/// Since when the manifest of an object metalhost keeps something of (a DataImage, a
/// HostFirmwareSettings) has been missing. An absence counts only over reloads that read every
/// manifest, and only once it lasted `gone_for`: a file caught while it is rewritten must change
/// nothing (hosts have [`metalhost_core::presence::Presence`] for the same).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Absence(Option<std::time::Instant>);

impl Absence {
    /// Takes in one reload: `missing` (no manifest, while something of it is kept) and
    /// `complete` (every manifest was read). Since when it is missing, while it is.
    pub fn seen(
        &mut self,
        missing: bool,
        complete: bool,
        now: std::time::Instant,
    ) -> Option<std::time::Instant> {
        match missing && complete {
            true => Some(*self.0.get_or_insert(now)),
            false => {
                self.0 = None;
                None
            }
        }
    }

    /// Whether the absence counts at `now`: missing for `gone_for` at least.
    pub fn counts(&self, now: std::time::Instant, gone_for: std::time::Duration) -> bool {
        self.0.is_some_and(|since| now.saturating_duration_since(since) >= gone_for)
    }
}

/// Keeps `object` under `key` in `objects`, saying so in `problems` when another of that key was
/// read before (the last one wins, as for hosts).
fn keep_once<T>(
    objects: &mut BTreeMap<String, T>,
    problems: &mut Vec<String>,
    at: &str,
    kind: &str,
    (key, object): (String, T),
) {
    if objects.insert(key.clone(), object).is_some() {
        problems.push(format!("{at}: {kind} {key} is defined twice; the last one wins"));
    }
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
        let docs =
            read_bounded(file, MAX_MANIFEST_BYTES, Links::Follow).and_then(|text| parse_documents(&text));
        let docs = match docs {
            Ok(docs) => docs,
            Err(e) => {
                self.problems.push(format!("{where_}: {e}"));
                return;
            }
        };
        for (index, doc) in docs.into_iter().enumerate() {
            let at = format!("{where_} (document {})", index + 1);
            match doc {
                Ok(Value::Null) => {}
                Ok(value) => self.add_document(&at, value),
                Err(e) => self.problems.push(redact_url_userinfo(&format!("{at}: not valid YAML: {e}"))),
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
                // before any file or Ironic node name is derived from them; no key: such a host
                // gets no status file and no node, only the report
                if let Err(e) =
                    metalhost_api::names::check_host_name(name.as_deref().unwrap_or(""), namespace.as_deref())
                {
                    self.bad_hosts.push(BadHost { key: None, reason: format!("{at}: {e}") });
                    return;
                }
                match serde_path_to_error::deserialize::<_, BareMetalHost>(value) {
                    Ok(host) => {
                        if self.hosts.insert(key.clone(), host).is_some() {
                            self.problems
                                .push(format!("{at}: host {key} is defined twice; the last one wins"));
                        }
                    }
                    Err(e) => {
                        let path = e.path().to_string();
                        let reason = redact_url_userinfo(&format!("{at}: {path}: {}", e.inner()));
                        self.bad_hosts.push(BadHost { key: Some(key), reason });
                    }
                }
            }
            "DataImage" => {
                let (name, namespace) = (name.as_deref(), namespace.as_deref());
                if let Some(found) = self.named::<DataImage>(at, "DataImage", key, name, namespace, value) {
                    keep_once(&mut self.data_images, &mut self.problems, at, "DataImage", found);
                }
            }
            "HostFirmwareSettings" => {
                let (name, namespace, kind) = (name.as_deref(), namespace.as_deref(), "HostFirmwareSettings");
                if let Some(found) = self.named::<HostFirmwareSettings>(at, kind, key, name, namespace, value)
                {
                    keep_once(&mut self.firmware_settings, &mut self.problems, at, kind, found);
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

    /// An object of a host (a DataImage, a HostFirmwareSettings): named as a host must be (its
    /// status file is named after it), read with the path of a bad field; what is wrong with it
    /// is a problem that concerns no host. Its key and the object, when it is usable.
    fn named<T: serde::de::DeserializeOwned>(
        &mut self,
        at: &str,
        kind: &str,
        key: Option<String>,
        name: Option<&str>,
        namespace: Option<&str>,
        value: Value,
    ) -> Option<(String, T)> {
        let Some(key) = key.filter(|_| name.is_some_and(|n| !n.is_empty())) else {
            self.problems.push(format!("{at}: {kind}: metadata.name: required"));
            return None;
        };
        if let Err(e) = metalhost_api::names::check_host_name(name.unwrap_or_default(), namespace) {
            self.problems.push(format!("{at}: {kind}: {e}"));
            return None;
        }
        match serde_path_to_error::deserialize::<_, T>(value) {
            Ok(object) => Some((key, object)),
            Err(e) => {
                let reason = format!("{at}: {kind} {key}: {}: {}", e.path(), e.inner());
                self.problems.push(redact_url_userinfo(&metalhost_api::text::bounded(&reason)));
                None
            }
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

    /// One anchored list referenced thousands of times: ~25 KB that once cost 800 MB and 20 s.
    pub(crate) fn alias_bomb() -> String {
        let mut text = String::from("kind: ConfigMap\nmetadata: {name: bomb}\ndata:\n  a: &a [");
        text.push_str(&vec!["x"; 1000].join(","));
        text.push_str("]\n  b: &b [");
        text.push_str(&vec!["*a"; 5000].join(","));
        text.push_str("]\n");
        text
    }

    #[test]
    fn aliases_are_refused_before_anything_is_built() {
        let bomb = alias_bomb();
        assert!(bomb.len() < 30_000);
        let started = std::time::Instant::now();
        let m = load(&format!("{bomb}---\n{}", HOST.replace("NAME", "good")));
        eprintln!("bomb refused in {:?}", started.elapsed());
        assert!(m.hosts.is_empty(), "nothing of a refused file is used");
        assert_eq!(m.problems.len(), 1, "{:?}", m.problems);
        assert!(m.problems[0].contains("line 5: YAML aliases (*name) are not accepted"), "{}", m.problems[0]);
    }

    const HOST: &str = "kind: BareMetalHost\nmetadata: {name: NAME}\nspec: {online: true}\n";

    #[test]
    fn deep_nesting_is_refused_and_ordinary_text_with_ampersands_is_not() {
        let deep = format!("{}{}", "[".repeat(1_000_000), "]".repeat(1_000_000));
        assert!(check_yaml_shape(&deep).unwrap_err().contains("nested deeper than 64 levels"));
        let nested = format!("{}{}", "[".repeat(64), "]".repeat(64));
        check_yaml_shape(&nested).unwrap();
        // anchors alone, '&' and '*' in block, quoted and plain scalars, comments: all fine
        let text = "kind: Secret\nmetadata: &m {name: s}\nstringData:\n  userData: |\n    #!/bin/sh\n                        run & wait; ls /tmp/* *.txt &x\n  q: \"*a &b\"\n  p: a & b * c\n# *alias &anchor\n";
        check_yaml_shape(text).unwrap();
        assert!(load(text).problems.is_empty());
        // a syntax error is left to the parser, which names it
        check_yaml_shape("a: [unclosed\n").unwrap();
    }

    #[test]
    fn yaml_the_checker_panics_on_is_refused_with_the_parsers_error() {
        // libyaml-safer 0.3.0 panics on these (scanner.rs:1541, an escape at the end of the
        // input; its issues #7 and #6); found by fuzz_manifests::arbitrary_text_never_panics
        for text in ["a: \"\\", "\"x\\", "[!,", "a: ''|\n 0"] {
            assert!(
                std::panic::catch_unwind(|| walk_yaml_shape(text)).is_err(),
                "no longer panics: {text:?}"
            );
            let refused = check_yaml_shape(text).unwrap_err();
            assert!(refused.contains("line 1") || refused.contains("line 2"), "{text:?}: {refused}");
            let m = load(text);
            assert!(m.hosts.is_empty() && m.problems.len() == 1, "{text:?}: {:?}", m.problems);
            assert!(m.problems[0].contains("hosts.yaml"), "{}", m.problems[0]);
        }
    }

    #[test]
    fn hosts_named_against_kubernetes_rules_are_reported_without_a_key() {
        let m = load(
            &["../outside/escaped", "/abs", "lab~web", "Caps"]
                .iter()
                .map(|n| HOST.replace("NAME", &format!("{n:?}")))
                .chain([HOST.replace("NAME", "web").replace("{name: web}", "{name: web, namespace: a/b}")])
                .chain([HOST.replace("NAME", "fine")])
                .collect::<Vec<_>>()
                .join("---\n"),
        );
        assert_eq!(m.hosts.keys().collect::<Vec<_>>(), ["default/fine"]);
        assert_eq!(m.bad_hosts.len(), 5, "{:?}", m.bad_hosts);
        assert!(m.bad_hosts.iter().all(|b| b.key.is_none()));
        assert!(
            m.bad_hosts[0].reason.ends_with(
                "metadata.name: Invalid value: \"../outside/escaped\": a lowercase RFC 1123 subdomain must \
                 consist of lower case alphanumeric characters, '-' or '.', and must start and end with an \
                 alphanumeric character (e.g. 'example.com')"
            ),
            "{}",
            m.bad_hosts[0].reason
        );
        assert!(
            m.bad_hosts[4].reason.contains("metadata.namespace: Invalid value: \"a/b\""),
            "{:?}",
            m.bad_hosts[4]
        );
    }

    #[test]
    fn only_regular_files_are_read_and_never_past_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let zero = dir.path().join("zero.yaml");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        assert_eq!(
            read_bounded(&zero, 10, Links::Follow).unwrap_err(),
            "not a regular file (a character device); not read"
        );
        let fifo = dir.path().join("fifo.yaml");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(made.success());
        // no writer: opening it blocking would hang here for good
        assert_eq!(
            read_bounded(&fifo, 10, Links::Follow).unwrap_err(),
            "not a regular file (a FIFO); not read"
        );
        assert!(read_bounded(dir.path(), 10, Links::Follow).unwrap_err().contains("a directory"));
        let big = dir.path().join("big.yaml");
        std::fs::write(&big, "x".repeat(11)).unwrap();
        assert!(read_bounded(&big, 10, Links::Follow).unwrap_err().contains("over the 10-byte limit"));
        std::fs::write(&big, "x".repeat(10)).unwrap();
        assert_eq!(read_bounded(&big, 10, Links::Follow).unwrap(), "x".repeat(10));
        let link = dir.path().join("link.yaml");
        std::os::unix::fs::symlink(&big, &link).unwrap();
        assert!(read_bounded(&link, 10, Links::Follow).is_ok());
        assert_eq!(read_bounded(&link, 10, Links::Refuse).unwrap_err(), "is a symbolic link; not read");
        let m = Manifests::load(&[zero, fifo]);
        assert_eq!(m.problems.len(), 2, "{:?}", m.problems);
    }
}
