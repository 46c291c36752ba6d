//! The HardwareData object upstream keeps beside each inspected host: same name and namespace,
//! owned by the host (the garbage collector deletes it with the host), `spec.hardware` the
//! host's `status.hardware`. cluster-api-provider-metal3 reads NIC addresses and the host name
//! from it.

use futures::{Stream, StreamExt};
use kube::Resource;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PartialObjectMeta, Patch, PatchParams};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{WatchStreamExt, watcher};
use metalhost_api::{BareMetalHost, HardwareDetails};
use serde_json::json;

/// The field manager of metalhost's server-side applies.
const MANAGER: &str = "metalhost";

/// HardwareData's group, version and kind (upstream's CRD, `metalhost crd`).
pub fn resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("metal3.io", "v1alpha1", "HardwareData"),
        "hardwaredata",
    )
}

/// The object as metalhost wants it for this host.
pub fn desired(host: &BareMetalHost, hardware: &HardwareDetails) -> serde_json::Value {
    json!({
        "apiVersion": "metal3.io/v1alpha1",
        "kind": "HardwareData",
        "metadata": {
            "name": host.metadata.name,
            "namespace": host.metadata.namespace,
            "ownerReferences": [{
                "apiVersion": BareMetalHost::api_version(&()),
                "kind": BareMetalHost::kind(&()),
                "name": host.metadata.name,
                "uid": host.metadata.uid,
                "controller": true,
            }],
        },
        "spec": {"hardware": hardware},
    })
}

/// Creates or updates the host's HardwareData (one server-side apply; a no-op on the server
/// when it already holds the same).
pub async fn apply(
    client: &kube::Client,
    host: &BareMetalHost,
    hardware: &HardwareDetails,
) -> Result<(), kube::Error> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), host.namespace_or_default(), &resource());
    let name = host.metadata.name.clone().unwrap_or_default();
    api.patch(&name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(desired(host, hardware))).await?;
    Ok(())
}

/// The HardwareData objects deleted (by a user, or with their host), metadata only: a host
/// whose object a user deleted gets it back at once, not at its next change.
pub fn deletions(
    client: &kube::Client,
    namespace: Option<&str>,
) -> impl Stream<Item = Result<PartialObjectMeta<DynamicObject>, watcher::Error>> + Send + 'static {
    // metadata only: the hardware itself is not needed to know that an object went
    let api: Api<PartialObjectMeta<DynamicObject>> = match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource()),
        None => Api::all_with(client.clone(), &resource()),
    };
    // a watch that fails (the CRD or the RBAC of an older install missing) is said once and
    // tried again with back-off; it never fails a host's reconcile
    let mut said = super::errors_said_once(
        "cannot watch HardwareData: one a user deletes is written again only when its host's hardware changes",
        "the HardwareData watch failed again",
    );
    watcher(api, watcher::Config::default()).default_backoff().filter_map(move |event| {
        std::future::ready(match said(event).into_inner() {
            Some(watcher::Event::Delete(gone)) => Some(Ok(gone)),
            _ => None,
        })
    })
}

/// The host a HardwareData object belongs to (its owner reference), with the host's uid.
pub fn owner(data: &PartialObjectMeta<DynamicObject>) -> Option<(String, ObjectRef<BareMetalHost>)> {
    let namespace = data.metadata.namespace.as_deref()?;
    let owners = data.metadata.owner_references.as_deref().unwrap_or_default();
    let host = owners
        .iter()
        .find(|o| o.kind == BareMetalHost::kind(&()) && o.api_version == BareMetalHost::api_version(&()))?;
    Some((host.uid.clone(), ObjectRef::new(&host.name).within(namespace)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_object_is_named_and_owned_as_upstreams() {
        let host: BareMetalHost = serde_json::from_value(json!({
            "metadata": {"name": "worker-0", "namespace": "lab", "uid": "u-1"},
            "spec": {"online": true},
        }))
        .unwrap();
        let hardware = HardwareDetails { ram_mebibytes: Some(1024), ..Default::default() };
        let object = desired(&host, &hardware);
        assert_eq!(
            (object["metadata"]["name"].as_str(), object["metadata"]["namespace"].as_str()),
            (Some("worker-0"), Some("lab"))
        );
        let owner = &object["metadata"]["ownerReferences"][0];
        assert_eq!(
            (
                owner["kind"].as_str(),
                owner["uid"].as_str(),
                owner["apiVersion"].as_str(),
                owner["controller"].as_bool()
            ),
            (Some("BareMetalHost"), Some("u-1"), Some("metal3.io/v1alpha1"), Some(true))
        );
        assert_eq!(object["spec"]["hardware"]["ramMebibytes"], 1024);
    }
}
