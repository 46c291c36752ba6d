//! Kubernetes Events for what the core reports ([`HostEvent`]). A note is cut to the API's limit,
//! and an Event that cannot be published is logged, never a reason to fail a reconcile.

use kube::core::Resource;
use kube::runtime::events::{Event, EventType, Recorder};
use metalhost_api::BareMetalHost;
use metalhost_core::{EventKind, HostEvent};
use tracing::warn;

/// The longest note events.k8s.io/v1 accepts (in bytes).
pub const MAX_NOTE_BYTES: usize = 1024;
/// The longest reason it accepts.
pub const MAX_REASON_BYTES: usize = 128;

/// `text` cut to at most `max` bytes on a character boundary, with `…` marking the cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let marker = "…";
    let mut end = max.saturating_sub(marker.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{marker}", &text[..end])
}

/// Publishes the events of one reconcile. Failures are logged only.
pub async fn publish(recorder: &Recorder, host: &BareMetalHost, events: &[HostEvent]) {
    for event in events {
        let reason = truncate(&event.reason, MAX_REASON_BYTES);
        let published = Event {
            type_: match event.kind {
                EventKind::Normal => EventType::Normal,
                EventKind::Warning => EventType::Warning,
            },
            reason: reason.clone(),
            note: Some(truncate(&event.note, MAX_NOTE_BYTES)),
            action: reason,
            secondary: None,
        };
        if let Err(e) = recorder.publish(&published, &host.object_ref(&())).await {
            warn!(host = %host.qualified_name(), reason = %event.reason, "cannot publish event: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_are_cut_to_the_limit_on_a_character_boundary() {
        assert_eq!(truncate("short", MAX_NOTE_BYTES), "short");
        let long = "é".repeat(2000);
        let cut = truncate(&long, MAX_NOTE_BYTES);
        assert!(cut.len() <= MAX_NOTE_BYTES, "{}", cut.len());
        assert!(cut.ends_with('…'));
    }
}
