//! Status files of the standalone runtime: one YAML BareMetalHost (spec and status) per host,
//! beside the manifests, written atomically (temporary file, then rename).

use std::path::{Path, PathBuf};

use metalhost_api::BareMetalHost;

use super::manifests::STATUS_SUFFIX;

/// The status file of a host: `<name>.status.yaml`, or `<namespace>~<name>.status.yaml` outside
/// the default namespace.
pub fn status_path(dir: &Path, host: &BareMetalHost) -> PathBuf {
    let name = host.metadata.name.as_deref().unwrap_or("");
    let stem = match host.namespace_or_default() {
        "default" => name.to_string(),
        ns => format!("{ns}~{name}"),
    };
    dir.join(format!("{stem}{STATUS_SUFFIX}"))
}

/// What a status file holds: the host as last seen, with its status.
pub fn record(host: &BareMetalHost) -> BareMetalHost {
    let mut copy = BareMetalHost::new(host.metadata.name.as_deref().unwrap_or(""), host.spec.clone());
    copy.metadata.namespace = Some(host.namespace_or_default().to_string());
    copy.metadata.creation_timestamp.clone_from(&host.metadata.creation_timestamp);
    copy.status = host.status.clone();
    copy
}

/// Writes a host's record atomically: readers see the old file or the new one, never half.
pub fn write(dir: &Path, host: &BareMetalHost) -> std::io::Result<()> {
    let path = status_path(dir, host);
    let text = serde_yaml_ng::to_string(&record(host)).map_err(std::io::Error::other)?;
    let tmp = path
        .with_file_name(format!(".{}.tmp", path.file_name().and_then(|n| n.to_str()).unwrap_or("status")));
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(b"# written by metalhost: the host's status; edits are overwritten\n")?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, &path)
}

/// Reads every status file in `dir`. Unreadable or corrupt ones are returned as problems, not
/// trusted.
pub fn read_all(dir: &Path) -> (Vec<(PathBuf, BareMetalHost)>, Vec<String>) {
    let mut records = Vec::new();
    let mut problems = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (records, problems);
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(STATUS_SUFFIX) && !n.starts_with('.'))
        })
        .collect();
    paths.sort();
    for path in paths {
        let parsed = super::bounded::read_text(&path, super::bounded::MAX_STATUS_BYTES)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_yaml_ng::from_str::<BareMetalHost>(&t).map_err(|e| e.to_string()));
        match parsed {
            Ok(host) if host.metadata.name.as_deref().is_some_and(|n| !n.is_empty()) => {
                records.push((path, host))
            }
            Ok(_) => problems.push(format!("{}: no metadata.name; ignored", path.display())),
            Err(e) => problems.push(format!("{}: corrupt status file ignored: {e}", path.display())),
        }
    }
    (records, problems)
}

/// Removes a host's status file (after its deletion finished).
pub fn remove(dir: &Path, host: &BareMetalHost) -> std::io::Result<()> {
    match std::fs::remove_file(status_path(dir, host)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
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
    fn corrupt_status_files_are_reported_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("h1.status.yaml"), "status: [not, a, host").unwrap();
        let (records, problems) = read_all(dir.path());
        assert!(records.is_empty());
        assert!(problems[0].contains("corrupt status file ignored"), "{problems:?}");
    }
}
