//! `metalhost get`'s output: the columns of the CRD's `additionalPrinterColumns` (as `kubectl get`
//! prints a BareMetalHost; priority-1 columns with `-o wide`), and the Kubernetes-style List of
//! `-o json` / `-o yaml`.

use metalhost_api::BareMetalHost;
use serde_json::Value;

/// One printer column of the CRD.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// Header, upper case as kubectl prints it.
    pub header: String,
    /// A simple JSONPath (`.status.provisioning.state`).
    pub json_path: String,
    /// `date` columns show an age.
    pub is_date: bool,
}

/// The columns `metalhost get` prints: NAME (and NAMESPACE first when asked), then the CRD's
/// printer columns of priority 0, and with `wide` those of higher priority too, in the CRD's order.
pub fn columns(wide: bool) -> Vec<Column> {
    let crd = metalhost_api::crd();
    let printer = crd
        .spec
        .versions
        .iter()
        .find(|v| v.storage)
        .or(crd.spec.versions.first())
        .and_then(|v| v.additional_printer_columns.clone());
    let mut out = vec![Column { header: "NAME".into(), json_path: ".metadata.name".into(), is_date: false }];
    for c in printer.unwrap_or_default() {
        if wide || c.priority.unwrap_or(0) == 0 {
            out.push(Column {
                header: c.name.to_uppercase(),
                json_path: c.json_path,
                is_date: c.type_ == "date",
            });
        }
    }
    out
}

/// The NAMESPACE column, printed first when the hosts are in more than one namespace.
pub fn namespace_column() -> Column {
    Column { header: "NAMESPACE".into(), json_path: ".metadata.namespace".into(), is_date: false }
}

/// The value at a simple JSONPath (`.a.b.c`), if any.
pub fn lookup<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').filter(|p| !p.is_empty()).try_fold(value, |v, key| v.get(key))
}

/// One host's cells, as kubectl renders them: strings as they are, booleans and numbers as JSON,
/// missing values empty, dates as ages.
pub fn row(host: &BareMetalHost, columns: &[Column], now: k8s_openapi::jiff::Timestamp) -> Vec<String> {
    let value = serde_json::to_value(host).unwrap_or(Value::Null);
    columns
        .iter()
        .map(|c| match (lookup(&value, &c.json_path), c.is_date) {
            (Some(Value::String(s)), true) => super::age(s, now),
            (_, true) => "<unknown>".into(),
            (Some(Value::String(s)), false) => metalhost_api::redact::redact_url_userinfo(s),
            (Some(Value::Null) | None, false) => String::new(),
            (Some(other), false) => other.to_string(),
        })
        .collect()
}

/// Rows aligned in columns three spaces apart, as kubectl prints them; `widths` are kept at least
/// as wide as before (a watch keeps its columns aligned with the header).
pub fn render(rows: &[Vec<String>], widths: &mut Vec<usize>) -> Vec<String> {
    for row in rows {
        widths.resize(widths.len().max(row.len()), 0);
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    rows.iter()
        .map(|row| {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    line.push_str(&format!("{cell:<w$}   ", w = widths[i]));
                }
            }
            line.trim_end().to_string()
        })
        .collect()
}

/// The table of `hosts`: a header, then one line per host.
pub fn table(hosts: &[BareMetalHost], wide: bool, now: k8s_openapi::jiff::Timestamp) -> Vec<String> {
    let cols = columns_for(hosts, wide);
    let mut rows = vec![cols.iter().map(|c| c.header.clone()).collect::<Vec<_>>()];
    rows.extend(hosts.iter().map(|h| row(h, &cols, now)));
    render(&rows, &mut Vec::new())
}

/// [`columns`], with NAMESPACE first when `hosts` span more than one namespace.
pub fn columns_for(hosts: &[BareMetalHost], wide: bool) -> Vec<Column> {
    let mut cols = columns(wide);
    let first = hosts.first().map(|h| h.namespace_or_default());
    if hosts.iter().any(|h| Some(h.namespace_or_default()) != first) {
        cols.insert(0, namespace_column());
    }
    cols
}

/// The table of DataImages (`get dataimages`): a header, then one line per DataImage with its
/// namespace, the URL wanted, the URL attached and its failures in a row.
pub fn data_images(images: &[metalhost_api::data_image::DataImage]) -> Vec<String> {
    let hide = metalhost_api::redact::redact_url_userinfo;
    let mut rows = vec![["NAMESPACE", "NAME", "URL", "ATTACHED", "ERRORS"].map(String::from).to_vec()];
    rows.extend(images.iter().map(|i| {
        let status = i.status.clone().unwrap_or_default();
        vec![
            i.metadata.namespace.clone().unwrap_or_else(|| "default".into()),
            i.metadata.name.clone().unwrap_or_default(),
            hide(&i.spec.url),
            hide(status.attached_url()),
            status.error_count().to_string(),
        ]
    }));
    render(&rows, &mut Vec::new())
}

/// The table of HostFirmwareSettings (`get hostfirmwaresettings`): a header, then one line per
/// host with its schema, the settings reported, and upstream's two conditions.
pub fn firmware_settings(all: &[metalhost_api::firmware::HostFirmwareSettings]) -> Vec<String> {
    let mut rows = vec![
        ["NAMESPACE", "NAME", "SCHEMA", "SETTINGS", "VALID", "CHANGE DETECTED"].map(String::from).to_vec(),
    ];
    rows.extend(all.iter().map(|s| {
        let status = s.status.clone().unwrap_or_default();
        let condition = |type_: &str| {
            status.conditions.iter().find(|c| c.type_ == type_).map_or(String::new(), |c| c.status.clone())
        };
        vec![
            s.metadata.namespace.clone().unwrap_or_else(|| "default".into()),
            s.metadata.name.clone().unwrap_or_default(),
            status.firmware_schema.as_ref().map_or(String::new(), |r| r.name.clone()),
            status.settings.len().to_string(),
            condition("Valid"),
            condition("ChangeDetected"),
        ]
    }));
    render(&rows, &mut Vec::new())
}

/// A Kubernetes `List` (apiVersion v1) of the hosts, as `kubectl get -o json` prints it.
pub fn list(hosts: &[BareMetalHost]) -> Value {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "List",
        "metadata": {"resourceVersion": ""},
        "items": hosts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use metalhost_api::{BareMetalHostStatus, ProvisioningState};

    #[test]
    fn columns_are_the_crds_printer_columns() {
        let headers = |wide| columns(wide).into_iter().map(|c| c.header).collect::<Vec<_>>();
        assert_eq!(headers(false), ["NAME", "STATE", "CONSUMER", "ONLINE", "ERROR", "AGE"]);
        assert_eq!(headers(true), ["NAME", "STATUS", "STATE", "CONSUMER", "BMC", "ONLINE", "ERROR", "AGE"]);
    }

    #[test]
    fn rows_show_state_online_and_a_redacted_bmc() {
        let mut host = BareMetalHost::new("h1", Default::default());
        host.spec.online = true;
        host.spec.bmc = Some(metalhost_api::BmcDetails {
            address: "ipmi://u:secret@10.0.0.1".into(),
            ..Default::default()
        });
        let mut status = BareMetalHostStatus::default();
        status.provisioning.state = ProvisioningState::Provisioned;
        status.operational_status = metalhost_api::OperationalStatus::Ok;
        host.status = Some(status);
        let lines = table(&[host], true, k8s_openapi::jiff::Timestamp::now());
        assert_eq!(lines.len(), 2);
        let cells: Vec<_> = lines[1].split_whitespace().collect();
        assert_eq!(
            cells,
            ["h1", "OK", "provisioned", "ipmi://***@10.0.0.1", "true", "<unknown>"],
            "{lines:?}"
        );
        assert!(lines[0].starts_with("NAME   STATUS   STATE"), "{lines:?}");
    }
}
