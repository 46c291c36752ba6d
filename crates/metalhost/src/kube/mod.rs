//! The Kubernetes runtime: BareMetalHosts reconciled by a kube-rs controller, with the finalizer
//! `baremetalhost.metal3.io`, status through the status subresource, Events for state changes and
//! errors, and BMC credentials from the Secret named by `spec.bmc.credentialsName`.
//!
//! A storage adapter only (docs/architecture.md): it reads hosts and Secrets from the API server,
//! hands the core one resolved input per reconcile, and stores the status that comes back. Its
//! own status writes do not wake it: the watch is filtered to changes of the spec (generation),
//! annotations, labels, finalizers and deletion.

pub mod data_image;
pub(crate) mod events;
pub mod firmware_settings;
pub mod hardware_data;
pub mod leader;
mod reconcile;
mod secrets;
pub mod status;

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Resource;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{Controller, Predicate, WatchStreamExt, predicates, watcher};
use metalhost_api::{BareMetalHost, BareMetalHostStatus};
use metalhost_core::{Reconciler, Schedule};

pub use reconcile::reconcile;
pub use secrets::{SECRET_LABEL, SecretCache};

/// kubectl's annotation holding the last applied object (a second copy of the spec).
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The status this replica last wrote for a host, to bridge the moment before its own write
/// comes back through the watch (the cache may still hold the object as it was before).
#[derive(Debug, Clone)]
struct Written {
    /// resourceVersions of the object from before the write: a cached object at one of these
    /// does not show the write yet.
    stale: Vec<String>,
    /// The resourceVersion the write produced.
    after: Option<String>,
    /// The status written.
    status: BareMetalHostStatus,
}

/// What the controller's reconcile needs.
pub struct Context {
    /// The Kubernetes client.
    pub client: kube::Client,
    /// The Ironic side.
    pub reconciler: Reconciler,
    /// Publishes Events.
    pub recorder: Recorder,
    /// How long a host with nothing to do waits.
    pub idle: Duration,
    /// Where to record metrics, if anywhere.
    pub metrics: Option<Arc<crate::metrics::Metrics>>,
    /// The clock the schedule reads (tests replace it to walk through a long operation).
    pub clock: Arc<dyn Fn() -> std::time::Instant + Send + Sync>,
    /// When each host is looked at again (adaptive polls, jittered waits), by uid.
    schedules: Mutex<HashMap<String, Schedule>>,
    /// The last status written for each host, by uid.
    written: Mutex<HashMap<String, Written>>,
    /// The resourceVersion each host had when this process added its finalizer, by uid: a look at
    /// the host at that version is a look at a cache that has not caught up (a Secret event can
    /// come first), and adding the finalizer again would be refused.
    finalized: Mutex<HashMap<String, String>>,
    /// A hash of the `status.hardware` each host's HardwareData was last applied with, by uid (a
    /// failed apply is made again at the next look; after a restart, once per host).
    /// Shared with the HardwareData watch, which forgets a host's entry when its object is
    /// deleted (so the host's next look writes it again).
    hardware_data: Arc<Mutex<HashMap<String, u64>>>,
    /// What each host's HostFirmwareSettings was last judged for, by host uid (judged again when
    /// the host's state or the settings' spec changed).
    firmware: Mutex<HashMap<String, firmware_settings::Judged>>,
    /// The HostFirmwareSettings (uid, generation) a clean was last sent for, by host uid.
    firmware_cleaned: Mutex<HashMap<String, (String, i64)>>,
    /// When keeping each host's HostFirmwareSettings last failed, by host uid.
    firmware_failed: Mutex<HashMap<String, std::time::Instant>>,
    /// The HostFirmwareSettings as their watch last saw them; `run` fills it, and without it (a
    /// context built by hand) no HostFirmwareSettings is kept.
    pub firmware_store: Option<reflector::Store<metalhost_api::firmware::HostFirmwareSettings>>,
    /// The DataImages as their watch last saw them; `run` fills it, and without it no DataImage
    /// is kept.
    pub data_image_store: Option<reflector::Store<metalhost_api::data_image::DataImage>>,
    /// The labelled Secrets as the Secret watch last saw them: a Secret found here that needs no
    /// adopting is not read again from the API server (an idle look costs no API request). `run`
    /// fills it; without it every Secret is read with a GET.
    pub secret_cache: Option<SecretCache>,
}

impl Context {
    /// A context with the reporter `metalhost`.
    pub fn new(client: kube::Client, reconciler: Reconciler) -> Self {
        let reporter = Reporter { controller: "metalhost".into(), instance: std::env::var("POD_NAME").ok() };
        let recorder = Recorder::new(client.clone(), reporter);
        Context {
            client,
            reconciler,
            recorder,
            idle: Duration::from_secs(120),
            metrics: None,
            clock: Arc::new(std::time::Instant::now),
            schedules: Default::default(),
            written: Default::default(),
            finalized: Default::default(),
            hardware_data: Default::default(),
            firmware: Default::default(),
            firmware_failed: Default::default(),
            firmware_cleaned: Default::default(),
            firmware_store: None,
            data_image_store: None,
            secret_cache: None,
        }
    }

    fn record_state(&self, host: &BareMetalHost, state: Option<&str>) {
        if let Some(metrics) = &self.metrics {
            metrics.host_state(&host.qualified_name(), state);
        }
    }
}

/// Errors of the Kubernetes runtime (the API server refused or could not be reached).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Kubernetes API call failed.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// A patch could not be built.
    #[error("building a patch: {0}")]
    Patch(#[from] serde_json::Error),
}

/// For a watch of what a host's look can do without (HardwareData, HostFirmwareSettings): passes
/// its events on and drops its errors, warning of the first (`warning`, which says what is lost)
/// and logging the next ones at debug (`again`); the watch itself retries with back-off, and an
/// older install missing the CRD or the RBAC is not warned about at every retry.
pub(crate) fn errors_said_once<T>(
    warning: &'static str,
    again: &'static str,
) -> impl FnMut(Result<T, watcher::Error>) -> std::future::Ready<Option<T>> {
    let mut warned = false;
    move |event| {
        std::future::ready(match event {
            Ok(event) => Some(event),
            Err(e) if warned => {
                tracing::debug!(error = %e, "{again}");
                None
            }
            Err(e) => {
                warned = true;
                tracing::warn!(error = %e, "{warning}");
                None
            }
        })
    }
}

/// The owner reference naming `owner` (not a controller reference, as upstream's
/// `SetOwnerReference`).
pub(crate) fn owner_reference<K: Resource<DynamicType = ()>>(owner: &K) -> OwnerReference {
    OwnerReference {
        api_version: K::api_version(&()).into(),
        kind: K::kind(&()).into(),
        name: owner.meta().name.clone().unwrap_or_default(),
        uid: owner.meta().uid.clone().unwrap_or_default(),
        ..Default::default()
    }
}

/// What the controller does when `reconcile` fails (the API server refused a write): try again
/// in a while.
pub fn error_policy(_host: Arc<BareMetalHost>, _error: &Error, _ctx: Arc<Context>) -> Action {
    Action::requeue(Duration::from_secs(5))
}

/// Hashes whether the host is being deleted: a deletion must wake the controller even where the
/// API server does not bump the generation.
fn deletion<K: kube::Resource>(obj: &K) -> Option<u64> {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    obj.meta().deletion_timestamp.is_some().hash(&mut hasher);
    Some(hasher.finish())
}

/// The hosts that name a Secret (credentials or config-drive data), for the Secret watch, but the
/// one (by uid) whose own label patch the change is.
fn hosts_naming(
    hosts: &reflector::Store<BareMetalHost>,
    secret: &Secret,
    labelled_for: Option<&str>,
) -> Vec<ObjectRef<BareMetalHost>> {
    let (Some(namespace), Some(name)) =
        (secret.metadata.namespace.as_deref(), secret.metadata.name.as_deref())
    else {
        return Vec::new();
    };
    hosts
        .state()
        .iter()
        .filter(|h| h.namespace_or_default() == namespace)
        .filter(|h| labelled_for.is_none() || h.metadata.uid.as_deref() != labelled_for)
        .filter(|h| metalhost_core::secrets_needed(h, false).iter().any(|(_, n, _)| n == name))
        .map(|h| ObjectRef::from_obj(h.as_ref()))
        .collect()
}

/// Runs the controller over every BareMetalHost (of one namespace, or all) until `stop` resolves.
pub async fn run(
    mut ctx: Context,
    namespace: Option<String>,
    concurrency: u16,
    stop: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let (hosts, secrets): (Api<BareMetalHost>, Api<Secret>) = match &namespace {
        Some(ns) => (Api::namespaced(ctx.client.clone(), ns), Api::namespaced(ctx.client.clone(), ns)),
        None => (Api::all(ctx.client.clone()), Api::all(ctx.client.clone())),
    };
    let (reader, writer) = reflector::store();
    let changes = predicates::generation
        .combine(predicates::annotations)
        .combine(predicates::labels)
        .combine(predicates::finalizers)
        .combine(deletion);
    let trigger = watcher(hosts, watcher::Config::default())
        .default_backoff()
        // what a reconcile never reads is not kept for every host: the API server's field
        // ownership and kubectl's copy of the last applied object
        .modify(|host: &mut BareMetalHost| {
            host.metadata.managed_fields = None;
            if let Some(annotations) = host.metadata.annotations.as_mut() {
                annotations.remove(LAST_APPLIED);
            }
        })
        .reflect(writer)
        .applied_objects()
        .predicate_filter(changes, Default::default());
    let store = reader.clone();
    // the watched Secrets are kept for the reconciles to read
    let (secret_reader, secret_writer) = reflector::store();
    let cache = SecretCache::new(secret_reader);
    let secret_changes = cache.watch(secrets, secret_writer);
    let labelled_here = cache.clone();
    ctx.secret_cache = Some(cache);
    let (firmware_reader, firmware_writer) = reflector::store();
    let firmware_changes = firmware_settings::watch(&ctx.client, namespace.as_deref(), firmware_writer);
    ctx.firmware_store = Some(firmware_reader);
    let (image_reader, image_writer) = reflector::store();
    let image_changes = data_image::watch(&ctx.client, namespace.as_deref(), image_writer);
    ctx.data_image_store = Some(image_reader);
    let applied = ctx.hardware_data.clone();
    let hardware_data_gone = hardware_data::deletions(&ctx.client, namespace.as_deref());
    Controller::for_stream(trigger, reader)
        .watches_stream(secret_changes, move |secret| {
            let labelled_for = labelled_here.labelled_by(&secret);
            hosts_naming(&store, &secret, labelled_for.as_deref())
        })
        .watches_stream_with(
            hardware_data_gone,
            move |gone| {
                let (uid, host) = hardware_data::owner(&gone)?;
                applied.lock().expect("hardware data lock").remove(&uid);
                Some(host)
            },
            hardware_data::resource(),
        )
        .watches_stream(firmware_changes, |settings| firmware_settings::host_of(&settings))
        .watches_stream(image_changes, |image| data_image::host_of(&image))
        .with_config(kube::runtime::controller::Config::default().concurrency(concurrency))
        .graceful_shutdown_on(stop)
        .run(reconcile, error_policy, Arc::new(ctx))
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::warn!("reconcile failed: {e}");
            }
        })
        .await;
}
