//! Status files of the standalone runtime's other resources, beside the hosts' own: one YAML
//! object per file, named `<stem>_<Kind>.status.yaml` where `<stem>` is what a host of that name
//! and namespace would have (`name`, or `namespace~name`), written and read as host status files
//! are (atomically, bounded, never through a symlink). Host names never hold `_` (Kubernetes'
//! rules), so no record can take a host's file, whatever the file system's case rules; none is
//! ever read as a manifest.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use super::bounded::replace_atomically;
use super::manifests::STATUS_SUFFIX;

/// The kinds kept in records, by the end of their file names.
pub const KINDS: &[&str] = &["DataImage", "HostFirmwareSettings", "FirmwareSchema"];

/// The end of a record's file name for `kind`.
pub fn suffix(kind: &str) -> String {
    format!("_{kind}{STATUS_SUFFIX}")
}

/// Whether a file name is one of a record's (of any kind), not a host's status file.
pub fn is_record(file_name: &str) -> bool {
    KINDS.iter().any(|kind| file_name.ends_with(&suffix(kind)))
}

/// The record file of the `kind` object `name` in `namespace`; refused as a host's status file
/// is for a name Kubernetes would refuse.
pub fn path(dir: &Path, kind: &str, name: &str, namespace: &str) -> std::io::Result<PathBuf> {
    let mut host = metalhost_api::BareMetalHost::new(name, Default::default());
    host.metadata.namespace = Some(namespace.to_string());
    let host_file = super::store::status_path(dir, &host)?;
    let file = host_file.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let stem = file.strip_suffix(STATUS_SUFFIX).unwrap_or(file);
    Ok(dir.join(format!("{stem}{}", suffix(kind))))
}

/// Writes `object` (JSON with its metadata) as the record of `kind` `name` in `namespace`.
pub fn write(
    dir: &Path,
    kind: &str,
    name: &str,
    namespace: &str,
    object: &serde_json::Value,
) -> std::io::Result<()> {
    let path = path(dir, kind, name, namespace)?;
    let text = serde_yaml_ng::to_string(object).map_err(std::io::Error::other)?;
    let header = format!("# written by metalhost: the {kind}'s status; edits are overwritten\n");
    replace_atomically(dir, &path, &[header.as_bytes(), text.as_bytes()])
}

/// Reads the record of `kind` `name` in `namespace`, if there is a sound one: a regular file
/// within bounds, one document, naming that object.
pub fn read<T: DeserializeOwned + kube::Resource>(
    dir: &Path,
    kind: &str,
    name: &str,
    namespace: &str,
) -> Result<Option<T>, String> {
    let path = path(dir, kind, name, namespace).map_err(|e| e.to_string())?;
    if std::fs::symlink_metadata(&path).is_err() {
        return Ok(None);
    }
    let corrupt = |e: String| format!("{}: corrupt {kind} status file ignored: {e}", path.display());
    let object: T = super::store::read_status_file(&path).map_err(corrupt)?;
    let meta = object.meta();
    let named =
        meta.name.as_deref() == Some(name) && meta.namespace.as_deref().unwrap_or("default") == namespace;
    if !named {
        return Err(corrupt(format!("it names another {kind}")));
    }
    Ok(Some(object))
}

/// Reads every record of `kind` in `dir` (for `get`); unsound ones are problems.
pub fn read_all<T: DeserializeOwned + kube::Resource>(dir: &Path, kind: &str) -> (Vec<T>, Vec<String>) {
    let (mut objects, mut problems) = (Vec::new(), Vec::new());
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (objects, problems);
    };
    let end = suffix(kind);
    let mut stems: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_suffix(&end)).map(str::to_string))
        .filter(|stem| !stem.starts_with('.'))
        .collect();
    stems.sort();
    for stem in stems {
        let (namespace, name) = stem.split_once('~').unwrap_or(("default", &stem));
        // only the file the object would have (`default~h1` is not where h1's is)
        let file = dir.join(format!("{stem}{end}"));
        if path(dir, kind, name, namespace).ok().as_ref() != Some(&file) {
            problems.push(format!("{}: not a {kind} status file; ignored", file.display()));
            continue;
        }
        match read(dir, kind, name, namespace) {
            Ok(Some(object)) => objects.push(object),
            Ok(None) => {}
            Err(problem) => problems.push(problem),
        }
    }
    (objects, problems)
}

/// Removes the record of `kind` `name` in `namespace`.
pub fn remove(dir: &Path, kind: &str, name: &str, namespace: &str) -> std::io::Result<()> {
    let path = path(dir, kind, name, namespace)?;
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
