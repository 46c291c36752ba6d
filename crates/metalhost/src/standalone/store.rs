//! Status files of the standalone runtime: one YAML BareMetalHost (spec and status) per host,
//! beside the manifests, written atomically (temporary file, then rename).
//!
//! The directory may be shared with someone hostile, and host names come from manifests: a
//! status file's name is derived only from a name and namespace that pass Kubernetes' rules
//! (so it cannot leave the directory or collide with another host's), temporary files are
//! created fresh under unpredictable names (never through a planted symlink), and status files
//! are read like manifests: regular files only, bounded, no YAML aliases.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use metalhost_api::BareMetalHost;
use metalhost_api::redact::redact_url_userinfo;

use super::bounded::{Links, read_bounded, replace_atomically};
use super::manifests::{STATUS_SUFFIX, parse_documents};

/// The largest status file read back.
pub const MAX_STATUS_BYTES: u64 = 1024 * 1024;

/// The status file of a host: `<name>.status.yaml`, or `<namespace>~<name>.status.yaml` outside
/// the default namespace. Refused (InvalidInput) for a name or namespace Kubernetes would refuse:
/// the path returned is always a plain file name inside `dir`, one per host.
pub fn status_path(dir: &Path, host: &BareMetalHost) -> std::io::Result<PathBuf> {
    let name = host.metadata.name.as_deref().unwrap_or("");
    metalhost_api::names::check_host_name(name, host.metadata.namespace.as_deref())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
    let stem = match host.namespace_or_default() {
        "default" => name.to_string(),
        ns => format!("{ns}~{name}"),
    };
    let file = format!("{stem}{STATUS_SUFFIX}");
    // the name rules already exclude separators, `..` and `~`; checked again where it matters
    let mut parts = Path::new(&file).components();
    match (parts.next(), parts.next()) {
        (Some(std::path::Component::Normal(one)), None) if one == file.as_str() => Ok(dir.join(file)),
        _ => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("status file name {file:?} would leave the directory"),
        )),
    }
}

/// The most annotations a status file keeps (`get -o yaml` and `describe` show them), and the
/// longest value kept (longer ones are cut): a status file stays well within its bound.
pub const MAX_KEPT_ANNOTATIONS: usize = 64;

/// The status file's own annotation saying that the manifest's re-inspection request
/// (`inspect.metal3.io`) was taken (the manifest is the user's and keeps it): a restart does not
/// inspect again. Kept whatever the annotation count.
pub const REINSPECTION_TAKEN: &str = "metalhost.io/reinspection-taken";

/// What a status file holds: the host as last seen, with its annotations and status. Userinfo in
/// the BMC address and in any URL of the error message or an annotation is hidden (a BMC address
/// may carry credentials; the manifest keeps the real one).
pub fn record(host: &BareMetalHost) -> BareMetalHost {
    let mut copy = BareMetalHost::new(host.metadata.name.as_deref().unwrap_or(""), host.spec.clone());
    copy.metadata.namespace = Some(host.namespace_or_default().to_string());
    copy.metadata.creation_timestamp.clone_from(&host.metadata.creation_timestamp);
    copy.metadata.annotations = host.metadata.annotations.as_ref().map(|all| {
        let marker = all.get_key_value(REINSPECTION_TAKEN);
        let kept =
            all.iter().filter(|(k, _)| *k != REINSPECTION_TAKEN).take(MAX_KEPT_ANNOTATIONS).chain(marker);
        kept.map(|(k, v)| (k.clone(), metalhost_api::text::Redacted::new(v).into_string())).collect()
    });
    copy.status = host.status.clone();
    if let Some(bmc) = copy.spec.bmc.as_mut() {
        bmc.address = redact_url_userinfo(&bmc.address);
    }
    if let Some(status) = copy.status.as_mut() {
        status.error_message = redact_url_userinfo(&status.error_message);
    }
    copy
}

/// Writes a host's record atomically: readers see the old file or the new one, never half. The
/// temporary file is created new (O_EXCL, random name) in the same directory, so a symlink
/// planted under any name is never followed; file and directory are synced before and after the
/// rename, which replaces the status file itself, never what a symlink there points to.
pub fn write(dir: &Path, host: &BareMetalHost) -> std::io::Result<()> {
    let path = status_path(dir, host)?;
    let text = serde_yaml_ng::to_string(&record(host)).map_err(std::io::Error::other)?;
    let header = b"# written by metalhost: the host's status; edits are overwritten\n";
    replace_atomically(dir, &path, &[header, text.as_bytes()])?;
    tracing::debug!(path = %path.display(), "status written");
    Ok(())
}

/// Whether a file name is one of [`write`]'s temporary files.
fn is_temporary(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(".tmp") && name.contains(STATUS_SUFFIX)
}

/// A temporary file older than this is a killed writer's leftover (a write takes milliseconds).
pub const LEFTOVER_AGE: Duration = Duration::from_secs(60);

/// Removes the temporary files a killed writer left in `dir`: only those last modified
/// [`LEFTOVER_AGE`] or more before `now`, so that a write under way in another process (`apply`
/// beside `run`) keeps its file. Readers never remove anything: a `get -w` looking twice a
/// second took the file from under the runtime's rename, and that status write was lost.
pub fn remove_leftover_temporaries(dir: &Path, now: SystemTime) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name();
        if !name.to_str().is_some_and(is_temporary) {
            continue;
        }
        // symlink_metadata: the entry itself, never what a link there points to
        let modified = entry.path().symlink_metadata().and_then(|m| m.modified());
        let old = modified.is_ok_and(|m| now.duration_since(m).is_ok_and(|age| age >= LEFTOVER_AGE));
        if old {
            // remove_file never follows a symlink
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Reads every status file in `dir`. Unreadable, corrupt or misplaced ones (a record whose host
/// would not be stored under that file name, or whose name Kubernetes would refuse) are returned
/// as problems, not trusted. Temporary files are left alone (see
/// [`remove_leftover_temporaries`]).
pub fn read_all(dir: &Path) -> (Vec<(PathBuf, BareMetalHost)>, Vec<String>) {
    let mut records = Vec::new();
    let mut problems = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (records, problems);
    };
    let mut paths = Vec::new();
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.ends_with(STATUS_SUFFIX) && !super::records::is_record(name) && !name.starts_with('.') {
            paths.push(entry.path());
        }
    }
    paths.sort();
    for path in paths {
        match read_record(&path) {
            Ok(host) => records.push((path, host)),
            Err(e) => problems.push(format!("{}: {e}", path.display())),
        }
    }
    (records, problems)
}

/// Reads the status file of `host` in `dir`, if it has one (and it is sound): what `validate`
/// needs for one host, without reading the others'.
pub fn read_one(dir: &Path, host: &BareMetalHost) -> Option<BareMetalHost> {
    let path = status_path(dir, host).ok()?;
    std::fs::symlink_metadata(&path).ok()?;
    read_record(&path).ok()
}

/// The one object a status file holds: a regular file within [`MAX_STATUS_BYTES`], never
/// through a symlink, exactly one YAML document, of type `T`; why not, otherwise.
pub fn read_status_file<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, String> {
    let text = read_bounded(path, MAX_STATUS_BYTES, Links::Refuse)?;
    let mut docs = parse_documents(&text)?.into_iter();
    let value = match (docs.next(), docs.next()) {
        (Some(Ok(value)), None) => value,
        (Some(Err(e)), _) => return Err(e),
        _ => return Err("not exactly one document".into()),
    };
    serde_json::from_value(value).map_err(|e| e.to_string())
}

fn read_record(path: &Path) -> Result<BareMetalHost, String> {
    let host: BareMetalHost =
        read_status_file(path).map_err(|e| format!("corrupt status file ignored: {e}"))?;
    if host.metadata.name.as_deref().is_none_or(str::is_empty) {
        return Err("no metadata.name; ignored".into());
    }
    let expected =
        status_path(path.parent().unwrap_or(Path::new(".")), &host).map_err(|e| format!("ignored: {e}"))?;
    if expected != path {
        return Err(format!("holds host {}, which is not stored here; ignored", host.qualified_name()));
    }
    Ok(host)
}

/// Removes a host's status file (after its deletion finished). Refused for a name that could not
/// have a status file.
pub fn remove(dir: &Path, host: &BareMetalHost) -> std::io::Result<()> {
    let path = status_path(dir, host)?;
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => {
            tracing::debug!(path = %path.display(), "status removed");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use metalhost_api::{BareMetalHostSpec, BareMetalHostStatus, ProvisioningState};

    #[test]
    fn write_then_read_round_trips_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut host = BareMetalHost::new("h1", BareMetalHostSpec { online: true, ..Default::default() });
        let mut status = BareMetalHostStatus::default();
        status.provisioning.state = ProvisioningState::Provisioned;
        host.status = Some(status);
        write(dir.path(), &host).unwrap();
        let mut other = host.clone();
        other.metadata.namespace = Some("lab".into());
        write(dir.path(), &other).unwrap();
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 2, "{names:?}");
        let (records, problems) = read_all(dir.path());
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].1.status.as_ref().unwrap().provisioning.state, ProvisioningState::Provisioned);
        assert!(records.iter().any(|(p, _)| p.ends_with("lab~h1.status.yaml")));
    }

    #[test]
    fn the_reinspection_marker_is_kept_beyond_the_annotation_bound() {
        let mut host = named("h1", None);
        let mut annotations: std::collections::BTreeMap<String, String> =
            (0..MAX_KEPT_ANNOTATIONS + 10).map(|i| (format!("a.example/{i:03}"), String::new())).collect();
        annotations.insert(REINSPECTION_TAKEN.into(), "true".into());
        host.metadata.annotations = Some(annotations);
        let kept = record(&host).metadata.annotations.unwrap();
        assert_eq!(kept.len(), MAX_KEPT_ANNOTATIONS + 1);
        assert_eq!(kept.get(REINSPECTION_TAKEN).map(String::as_str), Some("true"));
    }

    #[test]
    fn corrupt_status_files_are_reported_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("h1.status.yaml"), "status: [not, a, host").unwrap();
        let (records, problems) = read_all(dir.path());
        assert!(records.is_empty());
        assert!(problems[0].contains("corrupt status file ignored"), "{problems:?}");
    }

    fn named(name: &str, namespace: Option<&str>) -> BareMetalHost {
        let mut host = BareMetalHost::new(name, Default::default());
        host.metadata.namespace = namespace.map(str::to_string);
        host.status = Some(BareMetalHostStatus::default());
        host
    }

    #[test]
    fn names_that_would_leave_the_directory_or_collide_get_no_status_file() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("manifests");
        std::fs::create_dir(&dir).unwrap();
        for (name, ns) in [
            ("../outside/escaped", None),
            ("/tmp/absolute", None),
            ("web", Some("lab/../..")),
            ("lab~web", None),
            ("Web", None),
            ("", None),
        ] {
            let host = named(name, ns);
            let err = status_path(&dir, &host).unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{name} {ns:?}");
            assert!(err.to_string().contains("Invalid value"), "{err}");
            assert!(write(&dir, &host).is_err() && remove(&dir, &host).is_err());
        }
        let everything: Vec<_> = walk(root.path());
        assert_eq!(everything, std::slice::from_ref(&dir), "nothing written anywhere");
        // default/lab~web (refused) and lab/web cannot share a file any more
        assert_eq!(status_path(&dir, &named("web", Some("lab"))).unwrap(), dir.join("lab~web.status.yaml"));
    }

    fn walk(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            out.push(p.clone());
            if p.is_dir() {
                out.extend(walk(&p));
            }
        }
        out.sort();
        out
    }

    #[test]
    fn a_planted_symlink_is_never_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        // the old fixed temporary name, and the status file itself, as links to the victim
        std::os::unix::fs::symlink(&victim, dir.path().join(".h1.status.yaml.tmp")).unwrap();
        std::os::unix::fs::symlink(&victim, dir.path().join("h1.status.yaml")).unwrap();
        write(dir.path(), &named("h1", None)).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        let meta = std::fs::symlink_metadata(dir.path().join("h1.status.yaml")).unwrap();
        assert!(meta.file_type().is_file(), "the link was replaced by a status file");
        // a symlinked status file is not read either
        std::fs::remove_file(dir.path().join("h1.status.yaml")).unwrap();
        std::os::unix::fs::symlink("/dev/zero", dir.path().join("h2.status.yaml")).unwrap();
        let (records, problems) = read_all(dir.path());
        assert!(records.is_empty(), "{records:?}");
        assert!(problems.iter().any(|p| p.contains("symbolic link")), "{problems:?}");
    }

    #[test]
    fn misplaced_aliased_or_oversized_records_are_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &named("b", None)).unwrap();
        // a.status.yaml claiming to be host b, or a host whose name is refused
        std::fs::copy(dir.path().join("b.status.yaml"), dir.path().join("a.status.yaml")).unwrap();
        std::fs::write(dir.path().join("c.status.yaml"), "metadata: {name: ../c}\nspec: {}\n").unwrap();
        std::fs::write(dir.path().join("d.status.yaml"), "metadata: &m {name: d}\nspec: {x: *m}\n").unwrap();
        std::fs::write(dir.path().join("e.status.yaml"), "#".repeat(MAX_STATUS_BYTES as usize + 1)).unwrap();
        let (records, problems) = read_all(dir.path());
        assert_eq!(records.len(), 1);
        assert!(records[0].0.ends_with("b.status.yaml"));
        let joined = problems.join("\n");
        assert!(joined.contains("a.status.yaml: holds host default/b, which is not stored here"), "{joined}");
        assert!(joined.contains("c.status.yaml: ignored: metadata.name: Invalid value"), "{joined}");
        assert!(
            joined.contains("d.status.yaml: corrupt status file ignored: line 2: YAML aliases"),
            "{joined}"
        );
        assert!(
            joined.contains("e.status.yaml: corrupt status file ignored:") && joined.contains("limit"),
            "{joined}"
        );
    }

    #[test]
    fn temporary_files_of_a_killed_writer_are_cleaned_up_and_fresh_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let left = dir.path().join(".h1.status.yaml.Ab12Cd.tmp");
        let fresh = dir.path().join(".h2.status.yaml.Ef34Gh.tmp");
        std::fs::write(&left, "half").unwrap();
        std::fs::write(&fresh, "being written").unwrap();
        let now = SystemTime::now();
        std::fs::File::options().write(true).open(&left).unwrap().set_modified(now - LEFTOVER_AGE).unwrap();
        let (records, _) = read_all(dir.path());
        assert!(records.is_empty());
        assert!(left.exists() && fresh.exists(), "reading removes nothing");
        remove_leftover_temporaries(dir.path(), now);
        assert!(!left.exists(), "a leftover is removed");
        assert!(fresh.exists(), "a write under way keeps its file");
    }

    #[test]
    fn a_reader_never_makes_a_write_fail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = {
            let (path, stop) = (path.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut looks = 0u32;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let _ = read_all(&path);
                    looks += 1;
                }
                looks
            })
        };
        let failed = (0..300).filter(|_| write(&path, &named("h1", None)).is_err()).count();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let looks = reader.join().unwrap();
        assert!(looks > 0, "the reader looked while the writes went on");
        assert_eq!(failed, 0, "writes failed while a reader looked ({looks} looks)");
    }

    #[test]
    fn stored_error_messages_hide_url_userinfo() {
        let dir = tempfile::tempdir().unwrap();
        let mut host = named("h1", None);
        host.status.as_mut().unwrap().error_message = "cannot reach redfish://admin:s3cret@10.0.0.1/x".into();
        host.spec.bmc = Some(metalhost_api::BmcDetails {
            address: "redfish://admin:s3cret@10.0.0.1/x".into(),
            ..Default::default()
        });
        write(dir.path(), &host).unwrap();
        let text = std::fs::read_to_string(dir.path().join("h1.status.yaml")).unwrap();
        assert!(!text.contains("s3cret") && text.contains("redfish://***@10.0.0.1/x"), "{text}");
    }
}
