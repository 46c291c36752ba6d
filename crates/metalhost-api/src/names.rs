//! Kubernetes' name rules, checked before a file name or an Ironic node name is derived from a
//! host's name and namespace. The API server applies the same rules (DNS-1123 subdomain for the
//! names of custom resources such as BareMetalHosts, DNS-1123 label for namespaces), so a manifest
//! that passes here would also be accepted by a cluster, and nothing that could escape a directory
//! (`/`, `..`) or collide with the `namespace~name` node naming (`~`) gets through.
//!
//! The messages follow Kubernetes' wording (k8s.io/apimachinery `validation.go`).

/// Longest DNS-1123 label (namespaces).
pub const LABEL_MAX: usize = 63;
/// Longest DNS-1123 subdomain (names of custom resources).
pub const SUBDOMAIN_MAX: usize = 253;

const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', \
                         and must start and end with an alphanumeric character (e.g. 'my-name', or '123-abc')";
const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, \
                             '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com')";

/// A name that breaks a rule: which field, the (shortened, quoted) value, and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: Invalid value: {value}: {reason}")]
pub struct NameError {
    /// The field, e.g. `metadata.name`.
    pub field: String,
    /// The value as shown: quoted, escaped and cut to 80 characters (it comes from untrusted input).
    pub value: String,
    /// The rule broken, in Kubernetes' words.
    pub reason: String,
}

fn shown(value: &str) -> String {
    let cut: String = value.chars().take(80).collect();
    if cut.len() < value.len() { format!("{:?}…", cut) } else { format!("{cut:?}") }
}

fn error(field: &str, value: &str, reason: impl Into<String>) -> NameError {
    NameError { field: field.into(), value: shown(value), reason: reason.into() }
}

fn is_label(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    !b.is_empty() && alnum(&b[0]) && alnum(&b[b.len() - 1]) && b.iter().all(|c| alnum(c) || *c == b'-')
}

/// Checks a DNS-1123 label (at most 63 characters of `[a-z0-9-]`, alphanumeric at both ends), as
/// Kubernetes checks namespace names.
pub fn dns1123_label(field: &str, value: &str) -> Result<(), NameError> {
    if value.len() > LABEL_MAX {
        return Err(error(field, value, format!("must be no more than {LABEL_MAX} characters")));
    }
    if !is_label(value) {
        return Err(error(field, value, LABEL_MSG));
    }
    Ok(())
}

/// Checks a DNS-1123 subdomain (at most 253 characters; labels of `[a-z0-9-]` joined by `.`), as
/// Kubernetes checks the names of custom resources.
pub fn dns1123_subdomain(field: &str, value: &str) -> Result<(), NameError> {
    if value.len() > SUBDOMAIN_MAX {
        return Err(error(field, value, format!("must be no more than {SUBDOMAIN_MAX} characters")));
    }
    if !value.split('.').all(is_label) {
        return Err(error(field, value, SUBDOMAIN_MSG));
    }
    Ok(())
}

/// Checks a BareMetalHost's name (DNS-1123 subdomain) and namespace (DNS-1123 label; `None` means
/// `default`).
pub fn check_host_name(name: &str, namespace: Option<&str>) -> Result<(), NameError> {
    dns1123_subdomain("metadata.name", name)?;
    if let Some(ns) = namespace {
        dns1123_label("metadata.namespace", ns)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubernetes_names_pass() {
        for name in ["a", "h1", "web-01", "rack1.host-2", "0", &"a".repeat(253)] {
            dns1123_subdomain("metadata.name", name).unwrap();
        }
        for ns in ["default", "lab", "a-b", &"n".repeat(63)] {
            dns1123_label("metadata.namespace", ns).unwrap();
        }
    }

    #[test]
    fn names_that_could_escape_or_collide_are_refused() {
        for name in [
            "",
            "../outside/escaped",
            "/etc/passwd",
            "..",
            ".",
            "a/b",
            "lab~web",
            "Web",
            "-a",
            "a-",
            "a..b",
            ".a",
            "a.",
            "a b",
            "a\0b",
            "é",
            &"a".repeat(254),
        ] {
            let err = dns1123_subdomain("metadata.name", name).unwrap_err();
            assert!(err.to_string().starts_with("metadata.name: Invalid value: "), "{err}");
        }
        for ns in ["", "lab/x", "a.b", "Lab", "..", &"n".repeat(64)] {
            assert!(dns1123_label("metadata.namespace", ns).is_err(), "{ns}");
        }
    }

    #[test]
    fn messages_use_kubernetes_wording_and_bound_the_echoed_value() {
        let err = check_host_name("../outside/escaped", None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "metadata.name: Invalid value: \"../outside/escaped\": a lowercase RFC 1123 subdomain must consist \
             of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric \
             character (e.g. 'example.com')"
        );
        let err = check_host_name("web", Some("lab/x")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("metadata.namespace: Invalid value: \"lab/x\": a lowercase RFC 1123 label")
        );
        let long = check_host_name(&"x".repeat(10_000), None).unwrap_err().to_string();
        assert!(long.len() < 200 && long.ends_with("must be no more than 253 characters"), "{long}");
        let escaped = check_host_name("a\u{1b}[2Jb", None).unwrap_err().to_string();
        assert!(!escaped.contains('\u{1b}'), "control characters are escaped: {escaped}");
    }
}
