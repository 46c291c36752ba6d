//! The Secrets a host names, for one reconcile: from the Secret watch's store when it holds them as
//! metalhost leaves them (labelled, owned by the host), otherwise read from the API server (as
//! upstream reads unlabelled Secrets past its cache) and adopted. Like upstream, metalhost
//! labels them (`environment.metal3.io: baremetal`, so that its Secret watch sees changes at once)
//! and adds an owner reference to the host on the BMC credentials Secret only (upstream's
//! `AcquireSecret`; the config-drive Secrets are only labelled, as its `ObtainSecret` does: a
//! user-data Secret is often shared by a fleet, and an owner reference would let the garbage
//! collector delete it with its last host; one an older metalhost put there is taken off). Unlike
//! upstream, it puts no finalizer on them, and it
//! removes the one baremetal-operator left (`baremetalhost.metal3.io/secret`): BMO releases it only
//! when it deletes the host, so after a handover nothing else would, and the Secret would hang in
//! Terminating. metalhost does not need the finalizer's guarantee (the BMC credentials stay in
//! Ironic's node, which is all deprovisioning and deletion need).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures::{Stream, StreamExt};

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use kube::core::Resource;
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{WatchStreamExt, watcher};
use metalhost_api::BareMetalHost;
use metalhost_core::SecretUse;
use serde_json::json;
use tracing::warn;

use super::{Context, Error};

/// The label upstream puts on the Secrets of BareMetalHosts; the Secret watch selects on it.
pub const SECRET_LABEL: &str = "environment.metal3.io";

/// The finalizer baremetal-operator puts on the Secrets it reads; metalhost removes it.
pub const BMO_SECRET_FINALIZER: &str = "baremetalhost.metal3.io/secret";

/// A Secret by (namespace, name).
type SecretKey = (String, String);

/// The labelled Secrets as the Secret watch delivered them, for reconciles to read instead of the
/// API server. An entry serves a host only while it can be trusted to be current: the watch has
/// had no error since its last complete list, the Secret is adopted for the host, and, if this
/// process read the Secret from the API server, the entry is at that version (an older one the
/// watch has not caught up from would step the credentials back).
#[derive(Clone)]
pub struct SecretCache {
    store: reflector::Store<Secret>,
    /// False from a watch error until the next complete list.
    fresh: Arc<AtomicBool>,
    /// The resourceVersion of each Secret (by namespace, name) as last read or written here.
    read: Arc<Mutex<HashMap<SecretKey, String>>>,
    /// The resourceVersion the last label patch of this process made (by namespace, name), with
    /// the uid of the host it was made for.
    labelled: Arc<Mutex<HashMap<SecretKey, (String, String)>>>,
}

impl SecretCache {
    /// A cache over `store`, trusted until `watch` says otherwise.
    pub fn new(store: reflector::Store<Secret>) -> Self {
        SecretCache {
            store,
            fresh: Arc::new(AtomicBool::new(true)),
            read: Default::default(),
            labelled: Default::default(),
        }
    }

    /// The entry for (namespace, name), when it can serve `host` for `used`.
    fn get(&self, host: &BareMetalHost, namespace: &str, name: &str, used: SecretUse) -> Option<Secret> {
        if !self.fresh.load(Ordering::Acquire) {
            return None;
        }
        let secret = self.store.get(&ObjectRef::new(name).within(namespace))?;
        let read = self.read.lock().expect("read lock");
        let current = match read.get(&(namespace.to_string(), name.to_string())) {
            Some(version) => secret.metadata.resource_version.as_ref() == Some(version),
            None => true,
        };
        (current && adopted(host, &secret, used)).then(|| Secret::clone(&secret))
    }

    /// Notes the version of a Secret read from (or written to) the API server; `None`: it is gone.
    fn note(&self, namespace: &str, name: &str, secret: Option<&Secret>) {
        let mut read = self.read.lock().expect("read lock");
        let key = (namespace.to_string(), name.to_string());
        match secret.and_then(|s| s.metadata.resource_version.clone()) {
            Some(version) => read.insert(key, version),
            None => read.remove(&key),
        };
    }

    /// Notes the version a label patch for `host` made.
    fn note_labelled(&self, namespace: &str, name: &str, version: String, host: &BareMetalHost) {
        let uid = host.metadata.uid.clone().unwrap_or_default();
        let key = (namespace.to_string(), name.to_string());
        self.labelled.lock().expect("labelled lock").insert(key, (version, uid));
    }

    /// The host (uid) whose label patch made this version of the Secret, if one of this process's
    /// did: the watch echoing it changes nothing that host uses, so it need not wake that host
    /// (other hosts naming the Secret are woken as for any change).
    pub fn labelled_by(&self, secret: &Secret) -> Option<String> {
        let (namespace, name) = (secret.metadata.namespace.clone()?, secret.metadata.name.clone()?);
        let labelled = self.labelled.lock().expect("labelled lock");
        let (version, uid) = labelled.get(&(namespace, name))?;
        (secret.metadata.resource_version.as_ref() == Some(version)).then(|| uid.clone())
    }

    /// The Secret watch that fills the store (labelled Secrets only, without managed fields and
    /// annotations, which hold a copy of the data after `kubectl apply`), as a stream of changed
    /// Secrets for the controller to map to hosts. A Secret is passed on only once the store
    /// shows it: after a re-list, at the end of the list (the store swaps the whole list in then).
    pub fn watch(
        &self,
        api: Api<Secret>,
        writer: reflector::store::Writer<Secret>,
    ) -> impl Stream<Item = Result<Secret, watcher::Error>> + Send + 'static {
        let events = watcher(api, watcher::Config::default().labels(&format!("{SECRET_LABEL}=baremetal")))
            .default_backoff()
            .modify(|secret: &mut Secret| {
                secret.metadata.managed_fields = None;
                secret.metadata.annotations = None;
            });
        stored_changes(events, writer, self.fresh.clone())
    }
}

/// Applies watch events to the store and passes on each changed Secret once the store shows it:
/// a listed one at the end of its list, which is also when the store is trusted again after an
/// error.
fn stored_changes(
    events: impl Stream<Item = watcher::Result<watcher::Event<Secret>>> + Send + 'static,
    writer: reflector::store::Writer<Secret>,
    fresh: Arc<AtomicBool>,
) -> impl Stream<Item = Result<Secret, watcher::Error>> + Send + 'static {
    events
        .reflect(writer)
        .scan(Vec::new(), move |listing, event| {
            let ready: Vec<Result<Secret, watcher::Error>> = match event {
                Ok(watcher::Event::Apply(secret) | watcher::Event::Delete(secret)) => vec![Ok(secret)],
                Ok(watcher::Event::Init) => {
                    listing.clear();
                    Vec::new()
                }
                Ok(watcher::Event::InitApply(secret)) => {
                    listing.push(secret);
                    Vec::new()
                }
                Ok(watcher::Event::InitDone) => {
                    fresh.store(true, Ordering::Release);
                    std::mem::take(listing).into_iter().map(Ok).collect()
                }
                Err(e) => {
                    fresh.store(false, Ordering::Release);
                    vec![Err(e)]
                }
            };
            futures::future::ready(Some(futures::stream::iter(ready)))
        })
        .flatten()
}

/// The Secrets the host names (by (namespace, name)), labelling and owning those that are not
/// yet. Secrets that do not exist are simply absent.
pub async fn fetch(
    ctx: &Context,
    host: &BareMetalHost,
    deleting: bool,
) -> Result<BTreeMap<(String, String), Secret>, Error> {
    let mut found = BTreeMap::new();
    // the credentials come first: a Secret used both ways is owned
    for (namespace, name, used) in metalhost_core::secrets_needed(host, deleting) {
        if found.contains_key(&(namespace.clone(), name.clone())) {
            continue;
        }
        let cache = ctx.secret_cache.as_ref();
        if let Some(secret) = cache.and_then(|c| c.get(host, &namespace, &name, used)) {
            found.insert((namespace, name), secret);
            continue;
        }
        let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
        let mut secret = api.get_opt(&name).await?;
        if let Some(read) = &secret
            && !adopted(host, read, used)
            && let Some(adopted) = adopt(&api, host, read, used).await
        {
            // the version the patch made is the one the host is registered with
            if let (Some(cache), Some(version)) = (cache, &adopted.metadata.resource_version) {
                cache.note_labelled(&namespace, &name, version.clone(), host);
            }
            secret = Some(adopted);
        }
        if let Some(cache) = cache {
            cache.note(&namespace, &name, secret.as_ref());
        }
        let Some(secret) = secret else { continue };
        found.insert((namespace, name), secret);
    }
    Ok(found)
}

/// Whether the Secret is as metalhost leaves it for this host: labelled, without BMO's finalizer,
/// owned by the host when it holds the BMC credentials and not owned by it otherwise.
fn adopted(host: &BareMetalHost, secret: &Secret, used: SecretUse) -> bool {
    let labelled =
        secret.metadata.labels.as_ref().and_then(|l| l.get(SECRET_LABEL)).is_some_and(|v| v == "baremetal");
    let uid = host.metadata.uid.as_deref().unwrap_or_default();
    let owned = secret.metadata.owner_references.iter().flatten().any(|o| o.uid == uid);
    let ownership_right = uid.is_empty() || owned == (used == SecretUse::Credentials);
    let bmo_finalizer = secret.metadata.finalizers.iter().flatten().any(|f| f == BMO_SECRET_FINALIZER);
    labelled && ownership_right && !bmo_finalizer
}

/// Labels the Secret, makes the host its owner (credentials) or takes the host off its owners
/// (config drive), and removes BMO's finalizer. The patch carries the Secret's resourceVersion, so
/// a concurrent change is not overwritten (the next reconcile tries again). Failures are logged:
/// the credentials can be used anyway.
async fn adopt(api: &Api<Secret>, host: &BareMetalHost, secret: &Secret, used: SecretUse) -> Option<Secret> {
    let uid = host.metadata.uid.clone().unwrap_or_default();
    let mut owners = secret.metadata.owner_references.clone().unwrap_or_default();
    let owned = owners.iter().any(|o| o.uid == uid);
    let finalizers = secret.metadata.finalizers.clone().unwrap_or_default();
    let bmo_finalizer = finalizers.iter().any(|f| f == BMO_SECRET_FINALIZER);
    let owners_before = owners.len();
    if used == SecretUse::Credentials && !owned && !uid.is_empty() {
        owners.push(k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
            api_version: BareMetalHost::api_version(&()).into_owned(),
            kind: BareMetalHost::kind(&()).into_owned(),
            name: host.metadata.name.clone().unwrap_or_default(),
            uid,
            ..Default::default()
        });
    } else if used == SecretUse::ConfigDrive {
        owners.retain(|o| o.uid != uid);
    }
    // the label alone merges with anything; lists (owners, finalizers) are replaced whole, so a
    // patch that changes one carries the version it was computed from (a Secret shared by a fleet
    // is labelled by many hosts at once without conflicts)
    let mut patch = json!({"metadata": {"labels": {SECRET_LABEL: "baremetal"}}});
    if owners.len() != owners_before {
        patch["metadata"]["ownerReferences"] = json!(owners);
    }
    if bmo_finalizer {
        let kept: Vec<&String> = finalizers.iter().filter(|f| *f != BMO_SECRET_FINALIZER).collect();
        patch["metadata"]["finalizers"] = json!(kept);
    }
    if owners.len() != owners_before || bmo_finalizer {
        patch["metadata"]["resourceVersion"] = json!(secret.metadata.resource_version);
    }
    let name = secret.metadata.name.as_deref().unwrap_or_default();
    match api.patch(name, &PatchParams::default(), &Patch::Merge(patch)).await {
        Ok(patched) => Some(patched),
        Err(e) => {
            warn!(host = %host.qualified_name(), secret = name, "cannot label the Secret: {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use watcher::Event;

    fn secret(name: &str) -> Secret {
        let mut secret = Secret::default();
        secret.metadata.name = Some(name.into());
        secret.metadata.namespace = Some("default".into());
        secret
    }

    /// After a re-list the hosts naming a listed Secret are woken only once the store shows the
    /// list (it swaps the whole list in at its end), and a watch error makes the store untrusted
    /// until a list completes.
    #[tokio::test]
    async fn changes_are_passed_on_once_the_store_shows_them() {
        let (store, writer) = reflector::store();
        let fresh = Arc::new(AtomicBool::new(true));
        let events = futures::stream::iter(vec![
            Err(watcher::Error::NoResourceVersion),
            Ok(Event::Init),
            Ok(Event::InitApply(secret("a"))),
            Ok(Event::InitApply(secret("b"))),
            Ok(Event::InitDone),
            Ok(Event::Apply(secret("c"))),
        ]);
        let seen: Vec<(String, usize, bool)> = stored_changes(events, writer, fresh.clone())
            .map(|change| match change {
                Ok(s) => (s.metadata.name.unwrap(), store.state().len(), fresh.load(Ordering::Acquire)),
                Err(_) => ("error".into(), store.state().len(), fresh.load(Ordering::Acquire)),
            })
            .collect()
            .await;
        assert_eq!(
            seen,
            [
                ("error".to_string(), 0, false),
                ("a".to_string(), 2, true),
                ("b".to_string(), 2, true),
                ("c".to_string(), 3, true),
            ]
        );
    }
}
