//! `metalhost validate`: upstream's admission rules applied to manifest files, one line per
//! violation.

use std::path::{Path, PathBuf};

use metalhost_api::validation::{validate_host, validate_update};

use crate::standalone::manifests::Manifests;
use crate::standalone::store;

/// Checks each file; returns one line per violation (`FILE: namespace/name: path: reason`), none
/// when every host passes. A status file beside a manifest (an earlier `metalhost run`) makes the
/// update rules apply against it.
pub fn check_files(files: &[PathBuf]) -> Vec<String> {
    let mut lines = Vec::new();
    for file in files {
        let shown = file.display();
        if !file.is_file() {
            lines.push(format!("{shown}: not a readable file"));
            continue;
        }
        let manifests = Manifests::load(std::slice::from_ref(file));
        lines.extend(manifests.problems.iter().cloned());
        for bad in &manifests.bad_hosts {
            lines.push(bad.reason.clone());
        }
        let dir = file.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        for (key, host) in &manifests.hosts {
            // only this host's status file: reading the directory's for each file made
            // `validate dir/*.yaml` quadratic (133 s for 1,000 hosts)
            let previous = store::read_one(dir, host);
            let violations = match previous {
                Some(mut old) => {
                    // status files hide userinfo in the BMC address: the same address, not a change
                    if let (Some(o), Some(n)) = (old.spec.bmc.as_mut(), host.spec.bmc.as_ref())
                        && o.address == metalhost_api::redact::redact_url_userinfo(&n.address)
                    {
                        o.address.clone_from(&n.address);
                    }
                    let old = &old;
                    let mut new = host.clone();
                    new.status = old.status.clone();
                    validate_update(old, &new)
                }
                None => validate_host(host),
            };
            // a password written into a BMC address is not printed back
            lines.extend(
                violations
                    .iter()
                    .map(|v| metalhost_api::redact::redact_url_userinfo(&format!("{shown}: {key}: {v}"))),
            );
        }
    }
    lines
}
