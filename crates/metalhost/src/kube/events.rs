//! Kubernetes Events for what the core reports ([`HostEvent`], already cut to the API's limits).
//! An Event that cannot be published is logged, never a reason to fail a reconcile.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::core::Resource;
use kube::runtime::events::{Event, EventType, Recorder};
use metalhost_api::BareMetalHost;
use metalhost_core::{EventKind, HostEvent};
use tracing::warn;

/// Publishes the events of one reconcile. Failures are logged only.
pub async fn publish(recorder: &Recorder, host: &BareMetalHost, events: &[HostEvent]) {
    publish_about(recorder, &host.object_ref(&()), &host.qualified_name(), events).await;
}

/// Publishes events about any object (`name` for the log). Failures are logged only.
pub async fn publish_about(recorder: &Recorder, about: &ObjectReference, name: &str, events: &[HostEvent]) {
    for event in events {
        let reason = event.reason.clone();
        let published = Event {
            type_: match event.kind {
                EventKind::Normal => EventType::Normal,
                EventKind::Warning => EventType::Warning,
            },
            reason: reason.clone(),
            note: Some(event.note.to_string()),
            action: reason,
            secondary: None,
        };
        if let Err(e) = recorder.publish(&published, about).await {
            warn!(object = %name, reason = %event.reason, "cannot publish event: {e}");
        }
    }
}
