//! Kubernetes Events for what the core reports ([`HostEvent`], already cut to the API's limits).
//! An Event that cannot be published is logged, never a reason to fail a reconcile.

use kube::core::Resource;
use kube::runtime::events::{Event, EventType, Recorder};
use metalhost_api::BareMetalHost;
use metalhost_core::{EventKind, HostEvent};
use tracing::warn;

/// Publishes the events of one reconcile. Failures are logged only.
pub async fn publish(recorder: &Recorder, host: &BareMetalHost, events: &[HostEvent]) {
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
        if let Err(e) = recorder.publish(&published, &host.object_ref(&())).await {
            warn!(host = %host.qualified_name(), reason = %event.reason, "cannot publish event: {e}");
        }
    }
}
