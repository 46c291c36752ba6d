//! HostFirmwareSettings and FirmwareSchema beside each registered host, as upstream keeps them:
//! the HostFirmwareSettings (same name and namespace, owned by the host) is created at
//! registration, its status holds the BIOS settings Ironic cached for the node, judged against
//! its spec by the FirmwareSchema of the machine's model (shared by hash, owned by every
//! HostFirmwareSettings that uses it), with upstream's conditions, messages and Events.
//!
//! Ironic refreshes its BIOS cache when it verifies the BMC (manage) and after cleaning, both
//! steps of the host's state machine; so the status is judged again when the host comes to
//! preparing or available, when the HostFirmwareSettings' spec changes (a watch of them wakes
//! the host), and every 5 minutes (1 while a change waits) as upstream polls. What cannot be
//! read or written is warned about once and tried again a minute later; it never fails the
//! host's reconcile.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use futures::{Stream, StreamExt};
use kube::Resource;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, predicates, watcher};
use metalhost_api::firmware::{
    FirmwareSchema, HostFirmwareSettings, SchemaReference, SettingSchema, SettingValue, schema_name,
    stored_schema,
};
use metalhost_api::{BareMetalHost, BareMetalHostStatus, ProvisioningState};
use metalhost_core::firmware::{CHANGE_DETECTED, VALIDATION_FAILED, bios_report, judge, settings_to_apply};
use serde_json::json;

use super::status::merge_patch;
use super::{Context, owner_reference};

/// Why a host's HostFirmwareSettings could not be kept this time.
#[derive(Debug, thiserror::Error)]
pub enum FirmwareError {
    /// A Kubernetes API call failed (the CRDs or the RBAC of an older install missing, …).
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// Ironic could not be reached.
    #[error("Ironic: {0}")]
    Provision(#[from] metalhost_core::ProvisionError),
    /// Ironic refused to show the node's BIOS settings.
    #[error("Ironic: {0}")]
    Ironic(#[from] metalhost_ironic::Error),
    /// A patch or an object could not be built or read.
    #[error("encoding: {0}")]
    Patch(#[from] serde_json::Error),
}

/// What was last judged for one host: the HostFirmwareSettings (uid, generation), the host's
/// state then, and the status written (the watch may not show it yet).
#[derive(Debug, Clone)]
pub struct Judged {
    settings: (String, i64),
    state: ProvisioningState,
    status: metalhost_api::firmware::HostFirmwareSettingsStatus,
    /// When (the runtime's clock): judged again after [`REJUDGE`] ([`REJUDGE_CHANGE`] while a
    /// change waits), as upstream polls.
    at: Instant,
}

/// How often the settings of a host are judged again while nothing happens to it (a BIOS changed
/// by hand shows), as upstream's 5 minutes.
const REJUDGE: Duration = Duration::from_secs(300);
/// The same while a change waits to be applied (upstream's 1 minute).
const REJUDGE_CHANGE: Duration = Duration::from_secs(60);
/// How long a host whose settings could not be kept waits before the next try (the CRD or the
/// RBAC of an older install missing costs no request at every look).
const RETRY: Duration = Duration::from_secs(60);

/// Watches HostFirmwareSettings into `writer`; yields those whose spec changed (generation), for
/// the controller to look at the host of the same name. A failing watch (the CRD missing) is
/// warned about once and retried with back-off.
pub fn watch(
    client: &kube::Client,
    namespace: Option<&str>,
    writer: reflector::store::Writer<HostFirmwareSettings>,
) -> impl Stream<Item = Result<HostFirmwareSettings, watcher::Error>> + Send + 'static {
    let api: Api<HostFirmwareSettings> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let mut said = super::errors_said_once(
        "cannot watch HostFirmwareSettings: a changed spec is judged at the host's next change",
        "the HostFirmwareSettings watch failed again",
    );
    watcher(api, watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .filter_map(move |event| std::future::ready(said(event).into_inner().map(Ok)))
        .applied_objects()
        .predicate_filter(predicates::generation, Default::default())
}

/// The host a HostFirmwareSettings belongs to: the one of the same name and namespace.
pub fn host_of(settings: &HostFirmwareSettings) -> Option<ObjectRef<BareMetalHost>> {
    let name = settings.metadata.name.as_deref()?;
    let namespace = settings.metadata.namespace.as_deref()?;
    Some(ObjectRef::new(name).within(namespace))
}

/// Adds `owner` to `object`'s owner references unless it is there (a JSON patch that fails if the
/// list changed meanwhile; the next look tries again).
async fn add_owner<K, O>(api: &Api<K>, object: &K, owner: &O) -> Result<(), FirmwareError>
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    O: Resource<DynamicType = ()>,
{
    let reference = owner_reference(owner);
    let owners = object.meta().owner_references.clone().unwrap_or_default();
    if owners.iter().any(|o| o.uid == reference.uid) {
        return Ok(());
    }
    let ops = match owners.is_empty() {
        true => json!([
            {"op": "test", "path": "/metadata/resourceVersion", "value": object.meta().resource_version},
            {"op": "add", "path": "/metadata/ownerReferences", "value": [reference]},
        ]),
        false => json!([
            {"op": "test", "path": "/metadata/ownerReferences", "value": owners},
            {"op": "add", "path": "/metadata/ownerReferences/-", "value": reference},
        ]),
    };
    let name = object.meta().name.clone().unwrap_or_default();
    api.patch(&name, &PatchParams::default(), &Patch::<()>::Json(serde_json::from_value(ops)?)).await?;
    Ok(())
}

/// Creates `object` (JSON, with apiVersion, kind and namespace).
async fn create<K>(client: &kube::Client, object: serde_json::Value) -> Result<K, FirmwareError>
where
    K: Resource<DynamicType = ()> + serde::de::DeserializeOwned,
{
    let raw: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        object["metadata"]["namespace"].as_str().unwrap_or_default(),
        &ApiResource::erase::<K>(&()),
    );
    let created = raw.create(&PostParams::default(), &serde_json::from_value(object)?).await?;
    Ok(serde_json::from_value(serde_json::to_value(created)?)?)
}

/// The host's HostFirmwareSettings: from the watch's store, else created (empty, owned by the
/// host; one that appeared meanwhile is read).
async fn settings_of(
    client: &kube::Client,
    api: &Api<HostFirmwareSettings>,
    store: &Store<HostFirmwareSettings>,
    host: &BareMetalHost,
) -> Result<HostFirmwareSettings, FirmwareError> {
    let name = host.metadata.name.clone().unwrap_or_default();
    if let Some(found) = store.get(&ObjectRef::new(&name).within(host.namespace_or_default())) {
        return Ok((*found).clone());
    }
    // the watch may not have listed them yet (just started, or taking over as leader)
    if let Some(found) = api.get_opt(&name).await? {
        return Ok(found);
    }
    let object = json!({
        "apiVersion": HostFirmwareSettings::api_version(&()),
        "kind": HostFirmwareSettings::kind(&()),
        "metadata": {"name": name, "namespace": host.namespace_or_default(), "ownerReferences": [owner_reference(host)]},
        "spec": {"settings": {}},
    });
    match create::<HostFirmwareSettings>(client, object).await {
        Ok(created) => {
            tracing::info!(host = %host.qualified_name(), "created the host's HostFirmwareSettings");
            Ok(created)
        }
        Err(FirmwareError::Kube(kube::Error::Api(e))) if e.code == 409 => Ok(api.get(&name).await?),
        Err(e) => Err(e),
    }
}

/// The FirmwareSchema for `registry` in the settings' namespace (created with what the host's
/// inspection says of the machine), with the HostFirmwareSettings among its owners.
async fn schema_for(
    client: &kube::Client,
    host: &BareMetalHost,
    settings: &HostFirmwareSettings,
    registry: &BTreeMap<String, SettingSchema>,
) -> Result<(SchemaReference, BTreeMap<String, SettingSchema>), FirmwareError> {
    let namespace = host.namespace_or_default();
    let api: Api<FirmwareSchema> = Api::namespaced(client.clone(), namespace);
    let name = schema_name(registry);
    let reference = SchemaReference { namespace: namespace.to_string(), name: name.clone() };
    if let Some(found) = api.get_opt(&name).await? {
        return Ok((reference, owned_schema(&api, found, settings).await?));
    }
    let vendor =
        host.status.as_ref().and_then(|s| s.hardware.as_ref()).and_then(|h| h.system_vendor.as_ref());
    let stored = stored_schema(registry.clone());
    let object = json!({
        "apiVersion": FirmwareSchema::api_version(&()),
        "kind": FirmwareSchema::kind(&()),
        "metadata": {"name": name, "namespace": namespace, "ownerReferences": [owner_reference(settings)]},
        "spec": {
            "hardwareVendor": vendor.and_then(|v| v.manufacturer.clone()).unwrap_or_default(),
            "hardwareModel": vendor.and_then(|v| v.product_name.clone()).unwrap_or_default(),
            "schema": stored,
        },
    });
    match create::<FirmwareSchema>(client, object).await {
        Ok(_) => Ok((reference, stored)),
        // another host of the same model created it first
        Err(FirmwareError::Kube(kube::Error::Api(e))) if e.code == 409 => {
            Ok((reference, owned_schema(&api, api.get(&name).await?, settings).await?))
        }
        Err(e) => Err(e),
    }
}

/// Adds the settings to a schema's owners: hosts of one model registering together append
/// themselves to the same list, so a patch refused because the list moved (422: its test failed)
/// is made again on the schema as it is now, a few times.
async fn owned_schema(
    api: &Api<FirmwareSchema>,
    mut schema: FirmwareSchema,
    settings: &HostFirmwareSettings,
) -> Result<BTreeMap<String, SettingSchema>, FirmwareError> {
    for _ in 0..3 {
        match add_owner(api, &schema, settings).await {
            Err(FirmwareError::Kube(kube::Error::Api(e))) if e.code == 422 || e.code == 409 => {
                schema = api.get(&schema.metadata.name.clone().unwrap_or_default()).await?;
            }
            done => return done.map(|()| schema.spec.schema),
        }
    }
    add_owner(api, &schema, settings).await?;
    Ok(schema.spec.schema)
}

/// Keeps the host's HostFirmwareSettings after its look ([`keep`]); a failure is warned about
/// once (then logged at debug) and the host's settings are left alone for [`RETRY`]. Whether a
/// change was judged valid just now for a host that waits in available (its next look should
/// come soon, to prepare).
pub async fn keep_or_say(
    ctx: &Context,
    store: &Store<HostFirmwareSettings>,
    host: &BareMetalHost,
    uid: &str,
    status: &BareMetalHostStatus,
) -> bool {
    let now = (ctx.clock)();
    let failed = ctx.firmware_failed.lock().expect("firmware lock").get(uid).copied();
    if failed.is_some_and(|at| now.saturating_duration_since(at) < RETRY) {
        return false;
    }
    match keep(ctx, store, host, uid, status, now).await {
        Ok(prepare) => {
            ctx.firmware_failed.lock().expect("firmware lock").remove(uid);
            prepare
        }
        Err(e) => {
            if failed.is_none() {
                tracing::warn!(host = %host.qualified_name(), error = %e, "cannot keep the host's HostFirmwareSettings");
            } else {
                tracing::debug!(host = %host.qualified_name(), error = %e, "cannot keep the host's HostFirmwareSettings, again");
            }
            ctx.firmware_failed.lock().expect("firmware lock").insert(uid.to_string(), now);
            false
        }
    }
}

/// Whether the last judgement of the host's settings still holds: the same spec, judged within
/// [`REJUDGE`] ([`REJUDGE_CHANGE`] while a change waits), and the host not come since to a state
/// that follows a refresh of Ironic's BIOS cache (it verifies the BMC and reads the BIOS after
/// manage and after cleaning: preparing and available follow, provisioning does not). The
/// host's state is recorded when it is.
fn still_fresh(
    ctx: &Context,
    uid: &str,
    judged_for: &(String, i64),
    state: ProvisioningState,
    now: Instant,
) -> bool {
    let mut judged = ctx.firmware.lock().expect("firmware lock");
    let Some(last) = judged.get_mut(uid) else { return false };
    let waiting = last.status.conditions.iter().any(|c| c.type_ == CHANGE_DETECTED && c.status == "True");
    let recent = now.saturating_duration_since(last.at) < if waiting { REJUDGE_CHANGE } else { REJUDGE };
    let refreshed = last.state != state
        && matches!(
            state,
            ProvisioningState::Available | ProvisioningState::Ready | ProvisioningState::Preparing
        );
    let fresh = last.settings == *judged_for && recent && !refreshed;
    if fresh {
        // recorded only when no judgement is due: one that fails is due again at the next look
        last.state = state;
    }
    fresh
}

/// Keeps the host's HostFirmwareSettings (and its FirmwareSchema) after the host's look: created
/// once the host is registered, judged again as [`still_fresh`] says.
pub async fn keep(
    ctx: &Context,
    store: &Store<HostFirmwareSettings>,
    host: &BareMetalHost,
    uid: &str,
    status: &BareMetalHostStatus,
    now: Instant,
) -> Result<bool, FirmwareError> {
    let Some(node) = metalhost_core::firmware::registered_node(status) else { return Ok(false) };
    let api: Api<HostFirmwareSettings> = Api::namespaced(ctx.client.clone(), host.namespace_or_default());
    let settings = settings_of(&ctx.client, &api, store, host).await?;
    add_owner(&api, &settings, host).await?;
    let judged_for =
        (settings.metadata.uid.clone().unwrap_or_default(), settings.metadata.generation.unwrap_or(0));
    if still_fresh(ctx, uid, &judged_for, status.provisioning.state, now) {
        return Ok(false);
    }
    let last = ctx.firmware.lock().expect("firmware lock").get(uid).cloned();
    let bios = ctx.reconciler.provisioner().client().await?.bios_settings(node).await?;
    let report = bios_report(&bios);
    let (reference, schema) = schema_for(&ctx.client, host, &settings, &report.registry).await?;
    // the status as the server holds it (`null` before the first write, so that the first patch
    // sends every field the CRD requires, `settings` even when empty)
    let (on_server, previous) = match last {
        Some(l) if l.settings.0 == judged_for.0 => (serde_json::to_value(&l.status)?, l.status),
        _ => (
            settings.status.as_ref().map(serde_json::to_value).transpose()?.unwrap_or_default(),
            settings.status.clone().unwrap_or_default(),
        ),
    };
    let stamp = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let judgement =
        judge(&settings.spec, judged_for.1, &previous, report.settings, (reference, &schema), &stamp);
    if judgement.changed {
        let patch = merge_patch(&on_server, &serde_json::to_value(&judgement.status)?);
        let name = settings.metadata.name.clone().unwrap_or_default();
        api.patch_status(&name, &PatchParams::default(), &Patch::Merge(json!({"status": patch}))).await?;
    }
    // upstream says nothing of invalid settings while the machine reports none
    if !judgement.status.settings.is_empty() {
        for invalid in &judgement.invalid {
            publish_invalid(ctx, &settings, &invalid.to_string()).await;
        }
    }
    let prepare =
        matches!(status.provisioning.state, ProvisioningState::Available | ProvisioningState::Ready)
            && settings_to_apply(&settings.spec, judged_for.1, &judgement.status).is_some();
    let judged =
        Judged { settings: judged_for, state: status.provisioning.state, status: judgement.status, at: now };
    ctx.firmware.lock().expect("firmware lock").insert(uid.to_string(), judged);
    Ok(prepare)
}

/// The BIOS settings preparing is to apply for the host: those of its HostFirmwareSettings'
/// spec when the status (the one this process judged last, else the watch's) says a valid change
/// for the current generation, as upstream's `getHostFirmwareSettings`.
///
/// One spec is applied by one clean: once a clean for it went out, nothing more is asked for it
/// (a machine that reports a value other than the one written, `1` for `true`, would otherwise be
/// cleaned at every look); a failed preparation asks again. Returns the settings with the
/// HostFirmwareSettings' uid and generation they are for.
pub fn wanted(
    ctx: &Context,
    store: &Store<HostFirmwareSettings>,
    host: &BareMetalHost,
    uid: &str,
) -> (BTreeMap<String, SettingValue>, Option<(String, i64)>) {
    let name = host.metadata.name.clone().unwrap_or_default();
    let Some(settings) = store.get(&ObjectRef::new(&name).within(host.namespace_or_default())) else {
        return (BTreeMap::new(), None);
    };
    let key = (settings.metadata.uid.clone().unwrap_or_default(), settings.metadata.generation.unwrap_or(0));
    if ctx.firmware_cleaned.lock().expect("firmware lock").get(uid) == Some(&key) {
        return (BTreeMap::new(), Some(key));
    }
    let judged = ctx.firmware.lock().expect("firmware lock").get(uid).cloned();
    let status = match judged {
        Some(j) if j.settings.0 == key.0 => j.status,
        _ => settings.status.clone().unwrap_or_default(),
    };
    (settings_to_apply(&settings.spec, key.1, &status).unwrap_or_default(), Some(key))
}

/// Remembers a clean sent for the settings `key` (see [`wanted`]); forgets it when preparing
/// failed, so that it is tried again.
pub fn note_outcome(ctx: &Context, uid: &str, key: Option<(String, i64)>, outcome: &metalhost_core::Outcome) {
    let mut cleaned = ctx.firmware_cleaned.lock().expect("firmware lock");
    if outcome.action == metalhost_core::ActionKind::Clean {
        cleaned.extend(key.map(|k| (uid.to_string(), k)));
    } else if outcome.status.error_type == Some(metalhost_api::host::ErrorType::Preparation) {
        cleaned.remove(uid);
    }
}

/// Upstream's `ValidationFailed` Event on the HostFirmwareSettings for one refused setting.
async fn publish_invalid(ctx: &Context, settings: &HostFirmwareSettings, why: &str) {
    let note = format!("Invalid BIOS setting: {why}");
    let event = metalhost_core::HostEvent::new(metalhost_core::EventKind::Normal, VALIDATION_FAILED, &note);
    let name = settings.metadata.name.clone().unwrap_or_default();
    super::events::publish_about(&ctx.recorder, &settings.object_ref(&()), &name, &[event]).await;
}
