//! Seeing the fleet without Kubernetes: what `metalhost get` and `metalhost describe` show of the
//! hosts `metalhost run --manifests DIR` keeps, read from its status files and event log. One job
//! per module: [`table`] (get's rows and lists), [`watch`] (get -w), [`describe`], [`summary`]
//! (run's one-line summary), [`ironic`] (the host's own node).

pub mod describe;
pub mod ironic;
pub mod summary;
pub mod table;
pub mod watch;

use std::path::Path;

use metalhost_api::BareMetalHost;

use crate::standalone::store;

/// The hosts recorded in `dir` (status files), by namespace and name, with the problems met
/// (corrupt or oversized files). Secrets are removed: see [`redacted`].
pub fn load(dir: &Path) -> (Vec<BareMetalHost>, Vec<String>) {
    let (records, problems) = store::read_all(dir);
    let mut hosts: Vec<BareMetalHost> = records.into_iter().map(|(_, h)| redacted(h)).collect();
    hosts.sort_by(|a, b| {
        (a.namespace_or_default(), a.metadata.name.as_deref())
            .cmp(&(b.namespace_or_default(), b.metadata.name.as_deref()))
    });
    (hosts, problems)
}

/// Whether `host` is one of `names` (`name` or `namespace/name`); every host when none is given.
pub fn selected(host: &BareMetalHost, names: &[String]) -> bool {
    names.is_empty()
        || names.iter().any(|n| match n.split_once('/') {
            Some((ns, name)) => {
                host.namespace_or_default() == ns && host.metadata.name.as_deref() == Some(name)
            }
            None => host.metadata.name.as_deref() == Some(n.as_str()),
        })
}

/// A host as it may be shown: URL userinfo removed from the BMC address and the image URLs.
pub fn redacted(mut host: BareMetalHost) -> BareMetalHost {
    let clean = metalhost_api::redact::redact_url_userinfo;
    if let Some(bmc) = host.spec.bmc.as_mut() {
        bmc.address = clean(&bmc.address);
    }
    if let Some(image) = host.spec.image.as_mut() {
        image.url = clean(&image.url);
    }
    if let Some(status) = host.status.as_mut() {
        if let Some(image) = status.provisioning.image.as_mut() {
            image.url = clean(&image.url);
        }
        if let Some(image) = status.last_attempted_image.as_mut() {
            image.url = clean(&image.url);
        }
        status.error_message = clean(&status.error_message);
    }
    host
}

/// Kubernetes' short form of a duration (`kubectl get`'s AGE): `45s`, `3m12s`, `2h5m`, `3d4h`.
pub fn human_duration(seconds: i64) -> String {
    let s = seconds.max(0);
    let (m, h, d) = (s / 60, s / 3600, s / 86400);
    match () {
        _ if s < 120 => format!("{s}s"),
        _ if m < 10 && s % 60 == 0 => format!("{m}m"),
        _ if m < 10 => format!("{m}m{}s", s % 60),
        _ if m < 180 => format!("{m}m"),
        _ if h < 8 && m % 60 == 0 => format!("{h}h"),
        _ if h < 8 => format!("{h}h{}m", m % 60),
        _ if h < 48 => format!("{h}h"),
        _ if h < 192 && h % 24 == 0 => format!("{d}d"),
        _ if h < 192 => format!("{d}d{}h", h % 24),
        _ if d < 730 => format!("{d}d"),
        _ if d / 365 < 8 && d % 365 == 0 => format!("{}y", d / 365),
        _ if d / 365 < 8 => format!("{}y{}d", d / 365, d % 365),
        _ => format!("{}y", d / 365),
    }
}

/// How long ago an RFC 3339 time was, as [`human_duration`]; `<unknown>` when it is not one.
pub fn age(time: &str, now: k8s_openapi::jiff::Timestamp) -> String {
    match time.parse::<k8s_openapi::jiff::Timestamp>() {
        Ok(t) => human_duration(now.duration_since(t).as_secs()),
        Err(_) => "<unknown>".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_kubectl_prints_them() {
        let cases = [
            (5, "5s"),
            (119, "119s"),
            (125, "2m5s"),
            (600, "10m"),
            (3 * 3600 + 60, "3h1m"),
            (50 * 3600, "2d2h"),
        ];
        for (s, want) in cases {
            assert_eq!(human_duration(s), want, "{s}");
        }
    }

    #[test]
    fn shown_hosts_carry_no_userinfo() {
        let mut host = BareMetalHost::new("h", Default::default());
        host.spec.bmc = Some(metalhost_api::BmcDetails {
            address: "redfish://admin:pw@10.0.0.1/redfish/v1/Systems/1".into(),
            ..Default::default()
        });
        let shown = serde_json::to_string(&redacted(host)).unwrap();
        assert!(!shown.contains("admin:pw") && shown.contains("redfish://***@10.0.0.1"), "{shown}");
    }
}
