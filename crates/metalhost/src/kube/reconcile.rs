//! One reconcile of one BareMetalHost in Kubernetes: the finalizer, the Secrets, the core's step,
//! then the status write (only when changed, clearing what was cleared), the Events and the next
//! look.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use metalhost_api::{BareMetalHost, BareMetalHostStatus, FINALIZER, INSPECT_ANNOTATION, ProvisioningState};
use metalhost_core::HostInput;
use serde_json::{Value, json};
use tracing::info;

use super::status::merge_patch;
use super::{Context, Error, events, secrets};

/// One reconcile of one host, recorded in the metrics.
pub async fn reconcile(host: Arc<BareMetalHost>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let result = reconcile_host(&host, &ctx).await;
    if let Some(metrics) = &ctx.metrics {
        metrics.reconciled(started.elapsed(), result.is_err());
    }
    result
}

/// The JSON patch that adds our finalizer, failing if someone changed the list meanwhile.
fn add_finalizer(host: &BareMetalHost) -> Result<json_patch::Patch, Error> {
    let finalizers = host.metadata.finalizers.clone().unwrap_or_default();
    let ops = if finalizers.is_empty() {
        // no list to compare: the object's version guards it (a missing key tested against null
        // passes in the API server's json-patch but not in every RFC 6902 implementation)
        let version = host.metadata.resource_version.clone().unwrap_or_default();
        json!([
            {"op": "test", "path": "/metadata/resourceVersion", "value": version},
            {"op": "add", "path": "/metadata/finalizers", "value": [FINALIZER]},
        ])
    } else {
        json!([
            {"op": "test", "path": "/metadata/finalizers", "value": finalizers},
            {"op": "add", "path": "/metadata/finalizers/-", "value": FINALIZER},
        ])
    };
    Ok(serde_json::from_value(ops)?)
}

/// The JSON patch that takes a re-inspection request away once the inspection has started, as
/// upstream does (failing if the annotation changed meanwhile).
fn take_reinspection_request(host: &BareMetalHost) -> Result<json_patch::Patch, Error> {
    let path = format!("/metadata/annotations/{}", INSPECT_ANNOTATION.replace('~', "~0").replace('/', "~1"));
    let value = host.annotations().get(INSPECT_ANNOTATION).cloned().unwrap_or_default();
    Ok(serde_json::from_value(json!([
        {"op": "test", "path": path, "value": value},
        {"op": "remove", "path": path},
    ]))?)
}

/// The JSON patch that removes our finalizer (and only it), failing if it moved meanwhile.
fn remove_finalizer(host: &BareMetalHost, index: usize) -> Result<json_patch::Patch, Error> {
    let path = format!("/metadata/finalizers/{index}");
    Ok(serde_json::from_value(json!([
        {"op": "test", "path": path, "value": FINALIZER},
        {"op": "remove", "path": path},
    ]))?)
    .inspect(|_| tracing::debug!(host = %host.qualified_name(), "removing finalizer"))
}

/// The host's last status: the cached object's, unless this replica wrote a newer one that the
/// cache has not caught up with yet. With it, the status as the server holds it, which the status
/// patch is computed against: `null` when the server has none yet, so that the first write sends
/// every field (the CRD requires `poweredOn`, `errorCount`, ... even when they hold their zero
/// values, and a diff against a default status would leave them out).
fn previous_status(ctx: &Context, host: &BareMetalHost, uid: &str) -> (BareMetalHostStatus, Value) {
    let mut written = ctx.written.lock().expect("written lock");
    let seen = host.metadata.resource_version.as_ref();
    if let Some(w) = written.get(uid) {
        if seen.is_some_and(|rv| w.stale.contains(rv)) {
            return (w.status.clone(), serde_json::to_value(&w.status).unwrap_or(Value::Null));
        }
        // the cache shows our write or something newer: it is the truth again
        written.remove(uid);
    }
    let server = host.status.as_ref().and_then(|s| serde_json::to_value(s).ok()).unwrap_or(Value::Null);
    (host.status.clone().unwrap_or_default(), server)
}

/// Remembers a status write: until the cache shows `after`, objects at the older versions are
/// read with this status.
fn remember_write(
    ctx: &Context,
    uid: &str,
    host: &BareMetalHost,
    after: Option<String>,
    status: BareMetalHostStatus,
) {
    let mut written = ctx.written.lock().expect("written lock");
    let mut stale = written
        .remove(uid)
        .map(|w| {
            let mut stale = w.stale;
            stale.extend(w.after);
            stale
        })
        .unwrap_or_default();
    stale.extend(host.metadata.resource_version.clone());
    written.insert(uid.to_string(), super::Written { stale, after, status });
}

async fn reconcile_host(host: &BareMetalHost, ctx: &Context) -> Result<Action, Error> {
    // inside kube's "reconciling object" span, which names why the host was looked at
    tracing::debug!(host = %host.qualified_name(), "looking at the host");
    let name = host.metadata.name.clone().unwrap_or_default();
    let uid = host.metadata.uid.clone().unwrap_or_else(|| host.qualified_name());
    let api: Api<BareMetalHost> = Api::namespaced(ctx.client.clone(), host.namespace_or_default());
    let deleting = host.metadata.deletion_timestamp.is_some();
    let finalizers = host.metadata.finalizers.clone().unwrap_or_default();
    let ours = finalizers.iter().position(|f| f == FINALIZER);
    let paused = host.annotations().contains_key(metalhost_api::PAUSED_ANNOTATION);
    if paused || (deleting && ours.is_none()) {
        return Ok(Action::await_change());
    }
    if !deleting && host.status.as_ref().is_some_and(|s| s.provisioning.state == ProvisioningState::Unknown) {
        // a newer upstream's state, or one written by hand: this host alone waits for a change
        tracing::warn!(host = %host.qualified_name(), "unknown provisioning state: host left as it is");
        events::publish(&ctx.recorder, host, &[metalhost_core::unknown_state_event()]).await;
        return Ok(Action::await_change());
    }
    if !deleting && ours.is_none() {
        let version = host.metadata.resource_version.clone().unwrap_or_default();
        let stale = ctx.finalized.lock().expect("finalized lock").get(&uid) == Some(&version);
        if stale {
            // this version is the one we added the finalizer to: the cache has not caught up yet,
            // and the watch brings the newer version (and another look) soon
            return Ok(Action::await_change());
        }
        api.patch(&name, &PatchParams::default(), &Patch::<()>::Json(add_finalizer(host)?)).await?;
        ctx.finalized.lock().expect("finalized lock").insert(uid, version);
        return Ok(Action::await_change());
    }
    ctx.finalized.lock().expect("finalized lock").remove(&uid);
    let secrets = secrets::fetch(ctx, host, deleting).await?;
    let mut input = HostInput::resolve(host.clone(), deleting, &secrets);
    let mut firmware_key = None;
    if let Some(store) = &ctx.firmware_store {
        (input.firmware_settings, firmware_key) = super::firmware_settings::wanted(ctx, store, host, &uid);
    }
    let (previous, on_server) = previous_status(ctx, host, &uid);
    let now = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let outcome = ctx.reconciler.reconcile(&input, &previous, &now).await;
    if outcome.forget {
        if let Some(store) = &ctx.data_image_store {
            super::data_image::forget(ctx, store, host).await?;
        }
        let index = ours.expect("checked above");
        api.patch(&name, &PatchParams::default(), &Patch::<()>::Json(remove_finalizer(host, index)?)).await?;
        info!(host = %host.qualified_name(), "deleted from Ironic; finalizer removed");
        ctx.record_state(host, None);
        ctx.schedules.lock().expect("schedules lock").remove(&uid);
        ctx.written.lock().expect("written lock").remove(&uid);
        ctx.hardware_data.lock().expect("hardware data lock").remove(&uid);
        ctx.firmware.lock().expect("firmware lock").remove(&uid);
        ctx.firmware_failed.lock().expect("firmware lock").remove(&uid);
        ctx.firmware_cleaned.lock().expect("firmware lock").remove(&uid);
        return Ok(Action::await_change());
    }
    ctx.record_state(host, Some(outcome.status.provisioning.state.as_str()));
    super::firmware_settings::note_outcome(ctx, &uid, firmware_key, &outcome);
    if outcome.changed {
        let patch = merge_patch(&on_server, &serde_json::to_value(&outcome.status)?);
        let written =
            api.patch_status(&name, &PatchParams::default(), &Patch::Merge(json!({"status": patch}))).await?;
        remember_write(ctx, &uid, host, written.metadata.resource_version, outcome.status.clone());
    }
    events::publish(&ctx.recorder, host, &outcome.events).await;
    if outcome.status.provisioning.state == ProvisioningState::Inspecting && host.reinspection_requested() {
        take_request(&api, &name, host).await?;
    }
    // a HardwareData that cannot be written (its CRD or RBAC missing after an upgrade) is tried
    // again at the host's next look; it never holds up the host or hastens its looks (nor is
    // one the garbage collector took first written again for a host on its way out)
    if let Some(hardware) = &outcome.status.hardware
        && !deleting
        && let Err(e) = keep_hardware_data(ctx, host, &uid, hardware).await
    {
        tracing::warn!(host = %host.qualified_name(), error = %e, "cannot write the host's HardwareData");
    }
    // the same for the host's HostFirmwareSettings and FirmwareSchema; a valid change judged just
    // now for an available host is prepared at its next look, soon
    let prepare = match &ctx.firmware_store {
        Some(store) if !deleting => {
            super::firmware_settings::keep_or_say(ctx, store, host, &uid, &outcome.status).await
        }
        _ => false,
    };
    // the host's DataImage, attached or detached while the host runs what it was given
    let image_again = match &ctx.data_image_store {
        Some(store) if !deleting => super::data_image::keep(ctx, store, host, &outcome.status).await,
        _ => None,
    };
    let requeue =
        if prepare && outcome.error.is_none() { metalhost_core::Requeue::Now } else { outcome.requeue };
    let delay = ctx.schedules.lock().expect("schedules lock").entry(uid).or_default().next(
        requeue,
        (ctx.clock)(),
        fastrand::f64(),
        ctx.idle,
    );
    let delay = match (delay, image_again) {
        (Some(d), Some(again)) => Some(d.min(again)),
        (delay, again) => delay.or(again),
    };
    Ok(match delay {
        Some(d) => Action::requeue(d.max(std::time::Duration::from_millis(10))),
        None => Action::await_change(),
    })
}

/// Takes the re-inspection request away once the inspection it asked for has started. A patch
/// refused because the annotation is gone already (a cache behind the server) is done; another
/// failure is said and the next look, still inspecting, tries again.
async fn take_request(api: &Api<BareMetalHost>, name: &str, host: &BareMetalHost) -> Result<(), Error> {
    let patch = Patch::<()>::Json(take_reinspection_request(host)?);
    match api.patch(name, &PatchParams::default(), &patch).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 422 => Ok(()),
        Err(e) => {
            tracing::warn!(host = %host.qualified_name(), error = %e, "cannot take the re-inspection request away");
            Ok(())
        }
    }
}

/// Applies the host's HardwareData when its hardware differs from what was last applied (a failed
/// apply is not remembered, so the next look tries again).
async fn keep_hardware_data(
    ctx: &Context,
    host: &BareMetalHost,
    uid: &str,
    hardware: &metalhost_api::HardwareDetails,
) -> Result<(), Error> {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    std::hash::Hash::hash(&serde_json::to_string(hardware)?, &mut hasher);
    let hash = std::hash::Hasher::finish(&hasher);
    if ctx.hardware_data.lock().expect("hardware data lock").get(uid) == Some(&hash) {
        return Ok(());
    }
    super::hardware_data::apply(&ctx.client, host, hardware).await?;
    ctx.hardware_data.lock().expect("hardware data lock").insert(uid.to_string(), hash);
    Ok(())
}
