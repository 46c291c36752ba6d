//! The host's DataImage (same name and namespace) in Kubernetes, kept at each look at the host as
//! upstream's host controller does: owned by the host, with upstream's finalizer
//! `dataimage.metal3.io` until its image is out of the host's CD, attached and detached by the
//! core's rules (`metalhost_core::data_image`), its status written only when it changed.
//!
//! A watch of DataImages wakes the host when one is created, its spec changes or it is deleted.
//! What cannot be read or written is warned about and tried again at the host's next look; it
//! never fails the host's reconcile.

use std::time::Duration;

use futures::{Stream, StreamExt};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{Predicate, WatchStreamExt, predicates, watcher};
use metalhost_api::data_image::{DataImage, FINALIZER};
use metalhost_api::{BareMetalHost, BareMetalHostStatus, OperationalStatus};
use serde_json::{Value, json};

use super::status::merge_patch;
use super::{Context, owner_reference};

/// Watches DataImages into `writer`; yields those created, deleted or whose spec changed, for
/// the controller to look at the host of the same name. A failing watch (the CRD missing) is
/// warned about once and retried with back-off.
pub fn watch(
    client: &kube::Client,
    namespace: Option<&str>,
    writer: reflector::store::Writer<DataImage>,
) -> impl Stream<Item = Result<DataImage, watcher::Error>> + Send + 'static {
    let api: Api<DataImage> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let mut said = super::errors_said_once(
        "cannot watch DataImages: a DataImage is attached at its host's next change",
        "the DataImage watch failed again",
    );
    watcher(api, watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .filter_map(move |event| std::future::ready(said(event).into_inner().map(Ok)))
        .applied_objects()
        .predicate_filter(predicates::generation.combine(super::deletion), Default::default())
}

/// The host a DataImage belongs to: the one of the same name and namespace.
pub fn host_of(image: &DataImage) -> Option<ObjectRef<BareMetalHost>> {
    let name = image.metadata.name.as_deref()?;
    let namespace = image.metadata.namespace.as_deref()?;
    Some(ObjectRef::new(name).within(namespace))
}

/// The host's DataImage as the watch last saw it.
fn image_of(store: &Store<DataImage>, host: &BareMetalHost) -> Option<DataImage> {
    let name = host.metadata.name.as_deref()?;
    store.get(&ObjectRef::new(name).within(host.namespace_or_default())).map(|i| (*i).clone())
}

/// Keeps the host's DataImage after the host's look: owner and finalizer, the Ironic step, the
/// status, the finalizer's release. When to look at the host again for it (None: at its own
/// pace). Failures are warned about and left to the next look.
pub async fn keep(
    ctx: &Context,
    store: &Store<DataImage>,
    host: &BareMetalHost,
    status: &BareMetalHostStatus,
) -> Option<Duration> {
    let image = image_of(store, host)?;
    match keep_image(ctx, host, status, image).await {
        Ok(again) => again,
        Err(e) => {
            tracing::warn!(host = %host.qualified_name(), error = %e, "cannot keep the host's DataImage");
            Some(Duration::from_secs(60))
        }
    }
}

async fn keep_image(
    ctx: &Context,
    host: &BareMetalHost,
    status: &BareMetalHostStatus,
    mut image: DataImage,
) -> Result<Option<Duration>, super::Error> {
    let api: Api<DataImage> = Api::namespaced(ctx.client.clone(), host.namespace_or_default());
    let deleting = image.metadata.deletion_timestamp.is_some();
    if status.operational_status == OperationalStatus::Detached {
        // upstream: a detached host's DataImage is left alone, but may go
        if deleting {
            release(&api, &image).await?;
        }
        return Ok(None);
    }
    if !deleting && let Some(patch) = claim(host, &image)? {
        let name = image.metadata.name.clone().unwrap_or_default();
        image = api.patch(&name, &PatchParams::default(), &Patch::<()>::Json(patch)).await?;
    }
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let (state, node) = (status.provisioning.state, &status.provisioning.id);
    let look = ctx.reconciler.keep_data_image(&image, host, state, node, &now).await;
    let previous = image.status.clone().unwrap_or_default();
    if look.status != previous {
        if let Some(error) = look.status.error.as_ref().filter(|e| previous.error.as_ref() != Some(e)) {
            tracing::warn!(host = %host.qualified_name(), error = %error.message, "the host's DataImage");
        }
        let on_server =
            image.status.as_ref().map_or(Value::Null, |s| serde_json::to_value(s).unwrap_or_default());
        let mut patch = merge_patch(&on_server, &serde_json::to_value(&look.status)?);
        // whole objects: the CRD requires their fields, and a cache behind the server would
        // otherwise send only the fields it saw change
        let status = serde_json::to_value(&look.status)?;
        for key in ["attachedImage", "error"] {
            if let (Some(whole), Some(fields)) = (status.get(key), patch.as_object_mut()) {
                fields.insert(key.into(), whole.clone());
            }
        }
        let name = image.metadata.name.clone().unwrap_or_default();
        image =
            api.patch_status(&name, &PatchParams::default(), &Patch::Merge(json!({"status": patch}))).await?;
    }
    if look.release {
        release(&api, &image).await?;
    }
    Ok(look.again)
}

/// The JSON patch that makes the host the image's owner and adds upstream's finalizer, as
/// upstream's DataImage controller does; None when both are there. It fails if the image changed
/// meanwhile (the next look tries again).
fn claim(host: &BareMetalHost, image: &DataImage) -> Result<Option<json_patch::Patch>, serde_json::Error> {
    let owner = owner_reference(host);
    let owners = image.metadata.owner_references.clone().unwrap_or_default();
    let finalizers = image.metadata.finalizers.clone().unwrap_or_default();
    let mut ops = vec![
        json!({"op": "test", "path": "/metadata/resourceVersion", "value": image.metadata.resource_version}),
    ];
    if !owners.iter().any(|o| o.uid == owner.uid) {
        let mut owners = owners;
        owners.push(owner);
        ops.push(json!({"op": "add", "path": "/metadata/ownerReferences", "value": owners}));
    }
    if !finalizers.iter().any(|f| f == FINALIZER) {
        let mut finalizers = finalizers;
        finalizers.push(FINALIZER.to_string());
        ops.push(json!({"op": "add", "path": "/metadata/finalizers", "value": finalizers}));
    }
    if ops.len() == 1 {
        return Ok(None);
    }
    serde_json::from_value(Value::Array(ops)).map(Some)
}

/// Removes upstream's finalizer from the image (and only it), failing if it moved meanwhile.
async fn release(api: &Api<DataImage>, image: &DataImage) -> Result<(), super::Error> {
    let finalizers = image.metadata.finalizers.clone().unwrap_or_default();
    let Some(index) = finalizers.iter().position(|f| f == FINALIZER) else {
        return Ok(());
    };
    let path = format!("/metadata/finalizers/{index}");
    let patch = serde_json::from_value(json!([
        {"op": "test", "path": path, "value": FINALIZER},
        {"op": "remove", "path": path},
    ]))?;
    let name = image.metadata.name.clone().unwrap_or_default();
    match api.patch(&name, &PatchParams::default(), &Patch::<()>::Json(patch)).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Lets the DataImage of a host that left Ironic go: its node, and the CD with it, are gone.
/// Called before the host's own finalizer goes, so that a failure is tried again at the host's
/// next look (there is none once the host is gone).
pub async fn forget(
    ctx: &Context,
    store: &Store<DataImage>,
    host: &BareMetalHost,
) -> Result<(), super::Error> {
    let Some(image) = image_of(store, host) else {
        return Ok(());
    };
    let api: Api<DataImage> = Api::namespaced(ctx.client.clone(), host.namespace_or_default());
    release(&api, &image).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> BareMetalHost {
        let mut host = BareMetalHost::new("h", Default::default());
        host.metadata.namespace = Some("ns".into());
        host.metadata.uid = Some("host-uid".into());
        host
    }

    #[test]
    fn an_image_is_claimed_once_with_owner_and_finalizer() {
        let mut image = DataImage::default();
        image.metadata.resource_version = Some("7".into());
        image.metadata.finalizers = Some(vec!["someone.else/keep".into()]);
        let patch = serde_json::to_value(claim(&host(), &image).unwrap().unwrap()).unwrap();
        assert_eq!(patch[0], json!({"op": "test", "path": "/metadata/resourceVersion", "value": "7"}));
        assert_eq!(patch[1]["value"][0]["uid"], "host-uid");
        assert_eq!(patch[2]["value"], json!(["someone.else/keep", FINALIZER]));
        let mut claimed = image.clone();
        claimed.metadata.owner_references = Some(vec![owner_reference(&host())]);
        claimed.metadata.finalizers = Some(vec!["someone.else/keep".into(), FINALIZER.into()]);
        assert!(claim(&host(), &claimed).unwrap().is_none());
    }
}
