//! The Secrets a host names, for one reconcile: from the Secret watch's store when it holds them as
//! metalhost leaves them (labelled, owned by the host), otherwise read from the API server (as
//! upstream reads unlabelled Secrets past its cache) and adopted. Like upstream, metalhost
//! labels them (`environment.metal3.io: baremetal`, so that its Secret watch sees changes at once)
//! and adds an owner reference to the host. Unlike upstream, it puts no finalizer on them, and it
//! removes the one baremetal-operator left (`baremetalhost.metal3.io/secret`): BMO releases it only
//! when it deletes the host, so after a handover nothing else would, and the Secret would hang in
//! Terminating. metalhost does not need the finalizer's guarantee (the BMC credentials stay in
//! Ironic's node, which is all deprovisioning and deletion need).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use kube::core::Resource;
use kube::runtime::reflector::ObjectRef;
use metalhost_api::BareMetalHost;
use serde_json::json;
use tracing::warn;

use super::{Context, Error};

/// The label upstream puts on the Secrets of BareMetalHosts; the Secret watch selects on it.
pub const SECRET_LABEL: &str = "environment.metal3.io";

/// The finalizer baremetal-operator puts on the Secrets it reads; metalhost removes it.
pub const BMO_SECRET_FINALIZER: &str = "baremetalhost.metal3.io/secret";

/// The Secrets the host names (by (namespace, name)), labelling and owning those that are not
/// yet. Secrets that do not exist are simply absent.
pub async fn fetch(
    ctx: &Context,
    host: &BareMetalHost,
    deleting: bool,
) -> Result<BTreeMap<(String, String), Secret>, Error> {
    let mut found = BTreeMap::new();
    for (namespace, name, _) in metalhost_core::secrets_needed(host, deleting) {
        if found.contains_key(&(namespace.clone(), name.clone())) {
            continue;
        }
        let cached = ctx
            .secret_cache
            .as_ref()
            .and_then(|store| store.get(&ObjectRef::new(&name).within(&namespace)))
            .filter(|secret| adopted(host, secret));
        if let Some(secret) = cached {
            found.insert((namespace, name), Secret::clone(&secret));
            continue;
        }
        let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
        let Some(secret) = api.get_opt(&name).await? else { continue };
        if !adopted(host, &secret) {
            adopt(&api, host, &secret).await;
        }
        found.insert((namespace, name), secret);
    }
    Ok(found)
}

/// Whether the Secret is as metalhost leaves it for this host: labelled, owned by the host, without
/// BMO's finalizer.
fn adopted(host: &BareMetalHost, secret: &Secret) -> bool {
    let labelled =
        secret.metadata.labels.as_ref().and_then(|l| l.get(SECRET_LABEL)).is_some_and(|v| v == "baremetal");
    let uid = host.metadata.uid.as_deref().unwrap_or_default();
    let owned = uid.is_empty() || secret.metadata.owner_references.iter().flatten().any(|o| o.uid == uid);
    let bmo_finalizer = secret.metadata.finalizers.iter().flatten().any(|f| f == BMO_SECRET_FINALIZER);
    labelled && owned && !bmo_finalizer
}

/// Labels the Secret, adds the host as an owner and removes BMO's finalizer.
/// The patch carries the Secret's resourceVersion, so a concurrent change is not overwritten (the
/// next reconcile tries again). Failures are logged: the credentials can be used anyway.
async fn adopt(api: &Api<Secret>, host: &BareMetalHost, secret: &Secret) {
    let uid = host.metadata.uid.clone().unwrap_or_default();
    let mut owners = secret.metadata.owner_references.clone().unwrap_or_default();
    let owned = owners.iter().any(|o| o.uid == uid);
    let finalizers = secret.metadata.finalizers.clone().unwrap_or_default();
    let bmo_finalizer = finalizers.iter().any(|f| f == BMO_SECRET_FINALIZER);
    if !owned && !uid.is_empty() {
        owners.push(k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
            api_version: BareMetalHost::api_version(&()).into_owned(),
            kind: BareMetalHost::kind(&()).into_owned(),
            name: host.metadata.name.clone().unwrap_or_default(),
            uid,
            ..Default::default()
        });
    }
    let mut patch = json!({"metadata": {
        "resourceVersion": secret.metadata.resource_version,
        "labels": {SECRET_LABEL: "baremetal"},
        "ownerReferences": owners,
    }});
    if bmo_finalizer {
        let kept: Vec<&String> = finalizers.iter().filter(|f| *f != BMO_SECRET_FINALIZER).collect();
        patch["metadata"]["finalizers"] = json!(kept);
    }
    let name = secret.metadata.name.as_deref().unwrap_or_default();
    if let Err(e) = api.patch(name, &PatchParams::default(), &Patch::Merge(patch)).await {
        warn!(host = %host.qualified_name(), secret = name, "cannot label the Secret: {e}");
    }
}
