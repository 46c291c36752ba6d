//! `metalhost describe`: one host in full, as `kubectl describe` shows a resource: its spec in
//! short, its status and conditions, its Ironic node, its errors with their times, its operation
//! history and its recent events.

use std::fmt::Write;

use metalhost_api::{BareMetalHost, BareMetalHostStatus, OperationalStatus};

use super::ironic::NodeView;
use crate::standalone::events::LoggedEvent;

/// The most recent events shown.
pub const MAX_EVENTS_SHOWN: usize = 20;

fn or_none(s: &str) -> &str {
    if s.is_empty() { "<none>" } else { s }
}

/// The text `metalhost describe` prints for `host` (already redacted), with the events of the log
/// and what Ironic says of its node.
pub fn describe(host: &BareMetalHost, events: &[LoggedEvent], node: &NodeView) -> String {
    let key = host.qualified_name();
    let events: Vec<&LoggedEvent> = events.iter().filter(|e| e.host == key).collect();
    let status = host.status.clone().unwrap_or_default();
    let mut out = String::new();
    write_spec(&mut out, host);
    write_status(&mut out, &status);
    write_conditions(&mut out, &status);
    write_node(&mut out, host, node);
    write_errors(&mut out, &events);
    write_history(&mut out, &status);
    write_events(&mut out, &events);
    out
}

/// The host's DataImage as `describe` shows it after the host: what is wanted, what is attached,
/// the last error.
pub fn describe_data_image(image: &metalhost_api::data_image::DataImage) -> String {
    let status = image.status.clone().unwrap_or_default();
    let mut out = String::from("DataImage:\n");
    let _ = writeln!(
        out,
        "  URL:                {}",
        metalhost_api::redact::redact_url_userinfo(&image.spec.url)
    );
    let attached = metalhost_api::redact::redact_url_userinfo(status.attached_url());
    let _ = writeln!(out, "  Attached:           {}", or_none(&attached));
    if let Some(error) = status.error.as_ref().filter(|e| e.count > 0) {
        let _ = writeln!(out, "  Errors:             {}", error.count);
        let _ = writeln!(out, "  Last error:         {}", error.message);
    }
    if let Some(at) = &status.last_reconciled {
        let _ = writeln!(out, "  Last reconciled:    {at}");
    }
    out
}

/// The host's HostFirmwareSettings as `describe` shows it after the host: the settings wanted
/// with the values the machine reports, the schema, upstream's conditions.
pub fn describe_firmware_settings(settings: &metalhost_api::firmware::HostFirmwareSettings) -> String {
    let status = settings.status.clone().unwrap_or_default();
    let mut out = String::from("Firmware settings:\n");
    let schema = status.firmware_schema.as_ref().map_or("<none>".to_string(), |s| s.name.clone());
    let _ = writeln!(out, "  Schema:             {schema}");
    let _ = writeln!(out, "  Settings reported:  {}", status.settings.len());
    for (name, value) in &settings.spec.settings {
        let reported = status.settings.get(name).map_or("<not reported>", String::as_str);
        let _ = writeln!(out, "  Wanted:             {name}={value} (the machine: {reported})");
    }
    for c in &status.conditions {
        let _ = writeln!(out, "  {:<20}{} {} {}", format!("{}:", c.type_), c.status, c.reason, c.message);
    }
    out
}

/// Name, namespace and the spec in short.
fn write_spec(w: &mut String, host: &BareMetalHost) {
    let spec = &host.spec;
    let _ = writeln!(w, "Name:         {}", host.metadata.name.as_deref().unwrap_or(""));
    let _ = writeln!(w, "Namespace:    {}", host.namespace_or_default());
    if let Some(t) = &host.metadata.creation_timestamp {
        let _ = writeln!(w, "Created:      {}", t.0);
    }
    let _ = writeln!(w, "Spec:");
    match &spec.bmc {
        Some(bmc) => {
            let _ = writeln!(
                w,
                "  BMC:                {}",
                metalhost_api::redact::redact_url_userinfo(&bmc.address)
            );
            let _ = writeln!(w, "  Credentials:        {}", or_none(&bmc.credentials_name));
        }
        None => {
            let _ = writeln!(w, "  BMC:                <none>");
        }
    }
    if let Some(mac) = &spec.boot_mac_address {
        let _ = writeln!(w, "  Boot MAC:           {mac}");
    }
    let _ = writeln!(w, "  Online:             {}", spec.online);
    match &spec.image {
        Some(image) => {
            let format = image.format.map_or("<unset>", |f| f.as_str());
            let _ = writeln!(
                w,
                "  Image:              {}",
                metalhost_api::redact::redact_url_userinfo(&image.url)
            );
            let _ = writeln!(w, "  Image format:       {format}");
            // what Ironic gets when it differs (a reprovision token in the query)
            if image.format == Some(metalhost_api::ImageFormat::LiveIso) {
                let sent = metalhost_api::extensions::live_iso_url(host, &image.url);
                if sent != image.url {
                    let sent = metalhost_api::redact::redact_url_userinfo(&sent);
                    let _ = writeln!(w, "  Ironic boots:       {sent}");
                }
            }
        }
        None => {
            let _ = writeln!(w, "  Image:              <none>");
        }
    }
    write_annotations(w, host);
    if let Some(consumer) = &spec.consumer_ref {
        let _ = writeln!(w, "  Consumer:           {}", consumer.name.as_deref().unwrap_or(""));
    }
}

/// The host's annotations (the `metalhost.io/*` extensions it uses among them), values redacted.
fn write_annotations(w: &mut String, host: &BareMetalHost) {
    let annotations = host.annotations();
    if annotations.is_empty() {
        let _ = writeln!(w, "  Annotations:        <none>");
        return;
    }
    let _ = writeln!(w, "  Annotations:");
    for (key, value) in annotations {
        let _ = writeln!(w, "    {key}: {}", metalhost_api::text::Redacted::new(value));
    }
}

fn write_status(w: &mut String, status: &BareMetalHostStatus) {
    let _ = writeln!(w, "Status:");
    let _ = writeln!(w, "  State:              {}", or_none(status.provisioning.state.as_str()));
    let _ = writeln!(
        w,
        "  Operational status: {}",
        or_none(
            serde_json::to_value(status.operational_status)
                .ok()
                .as_ref()
                .and_then(|v| v.as_str())
                .unwrap_or("")
        )
    );
    let _ = writeln!(w, "  Powered on:         {}", status.powered_on);
    let _ = writeln!(w, "  Ironic node:        {}", or_none(&status.provisioning.id));
    if let Some(image) = &status.provisioning.image {
        let _ =
            writeln!(w, "  Provisioned image:  {}", metalhost_api::redact::redact_url_userinfo(&image.url));
    }
    let _ = writeln!(w, "  Last updated:       {}", status.last_updated.as_deref().unwrap_or("<never>"));
    if status.operational_status == OperationalStatus::Error {
        let kind = status.error_type.map_or("error", |t| t.as_str());
        let _ = writeln!(
            w,
            "  Error:              {kind}: {}",
            metalhost_api::redact::redact_url_userinfo(&status.error_message)
        );
        let _ = writeln!(w, "  Error count:        {}", status.error_count);
    } else {
        let _ = writeln!(w, "  Error:              <none>");
    }
}

fn write_conditions(w: &mut String, status: &BareMetalHostStatus) {
    let _ = writeln!(w, "Conditions:");
    if status.conditions.is_empty() {
        let _ = writeln!(w, "  <none>");
    } else {
        let mut rows =
            vec![["Type", "Status", "Reason", "Last transition", "Message"].map(String::from).to_vec()];
        for c in &status.conditions {
            rows.push(vec![
                c.type_.clone(),
                c.status.clone(),
                c.reason.clone(),
                c.last_transition_time.clone(),
                metalhost_api::redact::redact_url_userinfo(&c.message),
            ]);
        }
        indented(w, &rows);
    }
}

/// What Ironic says of the host's node.
fn write_node(w: &mut String, host: &BareMetalHost, node: &NodeView) {
    let _ = writeln!(w, "Ironic:");
    match node {
        NodeView::NotAsked => {
            let _ = writeln!(w, "  <not asked: give --ironic URL>");
        }
        NodeView::Unreachable(e) => {
            let _ = writeln!(w, "  <unreachable: {e}>");
        }
        NodeView::NoNode { foreign } => {
            let _ = writeln!(w, "  <no node named {}>", super::ironic::node_name(host));
            if let Some(id) = foreign {
                let _ = writeln!(w, "  (the status names node {id}, which is not this host's: ignored)");
            }
        }
        NodeView::Node(n) => {
            let _ = writeln!(w, "  UUID:               {}", n.uuid);
            let _ = writeln!(w, "  Name:               {}", n.name.as_deref().unwrap_or(""));
            let _ = writeln!(w, "  Driver:             {}", n.driver);
            let target = n.target_provision_state.as_deref().map(|t| format!(" (→ {t})")).unwrap_or_default();
            let _ = writeln!(w, "  Provision state:    {}{target}", n.provision_state);
            let _ = writeln!(w, "  Power state:        {}", n.power_state.as_deref().unwrap_or("<unknown>"));
            if let Some(d) = &n.deploy_interface {
                let _ = writeln!(w, "  Deploy interface:   {d}");
            }
            if n.maintenance {
                let reason = n.maintenance_reason.as_deref().unwrap_or("");
                let _ = writeln!(
                    w,
                    "  Maintenance:        true {}",
                    metalhost_api::redact::redact_url_userinfo(reason)
                );
            }
            let last_error =
                n.last_error.as_deref().map(metalhost_api::redact::redact_url_userinfo).unwrap_or_default();
            let _ = writeln!(w, "  Last error:         {}", or_none(&last_error));
        }
    }
}

/// The warnings among the host's events.
fn write_errors(w: &mut String, events: &[&LoggedEvent]) {
    let _ = writeln!(w, "Errors:");
    let errors: Vec<_> = events.iter().filter(|e| e.kind == "Warning").collect();
    if errors.is_empty() {
        let _ = writeln!(w, "  <none>");
    } else {
        let mut rows = vec![["Time", "Reason", "Message"].map(String::from).to_vec()];
        let start = errors.len().saturating_sub(MAX_EVENTS_SHOWN);
        rows.extend(errors[start..].iter().map(|e| vec![e.time.clone(), e.reason.clone(), e.note.clone()]));
        indented(w, &rows);
    }
}

fn write_history(w: &mut String, status: &BareMetalHostStatus) {
    let _ = writeln!(w, "Operation history:");
    let history = &status.operation_history;
    let mut rows = vec![["Operation", "Start", "End"].map(String::from).to_vec()];
    for (name, op) in [
        ("register", &history.register),
        ("inspect", &history.inspect),
        ("provision", &history.provision),
        ("deprovision", &history.deprovision),
    ] {
        let time = |t: &Option<String>| t.clone().unwrap_or_else(|| "-".into());
        rows.push(vec![name.into(), time(&op.start), time(&op.end)]);
    }
    indented(w, &rows);
}

fn write_events(w: &mut String, events: &[&LoggedEvent]) {
    let _ = writeln!(w, "Events:");
    if events.is_empty() {
        let _ = writeln!(w, "  <none>");
    } else {
        let mut rows = vec![["Time", "Type", "Reason", "Message"].map(String::from).to_vec()];
        let start = events.len().saturating_sub(MAX_EVENTS_SHOWN);
        rows.extend(
            events[start..]
                .iter()
                .map(|e| vec![e.time.clone(), e.kind.clone(), e.reason.clone(), e.note.clone()]),
        );
        indented(w, &rows);
    }
}

fn indented(w: &mut String, rows: &[Vec<String>]) {
    for line in super::table::render(rows, &mut Vec::new()) {
        let _ = writeln!(w, "  {line}");
    }
}
