//! The Kubernetes runtime: BareMetalHosts reconciled by a kube-rs controller, with the finalizer
//! `baremetalhost.metal3.io`, status through the status subresource, Events for state changes and
//! errors, and BMC credentials from the Secret named by `spec.bmc.credentialsName`.
//!
//! The same state machine and provisioner as the standalone runtime; only storage, credentials
//! and timing differ.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use kube::core::Resource;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use metalhost_api::{
    BareMetalHost, CredentialsStatus, DETACHED_ANNOTATION, FINALIZER, OperationalStatus, PAUSED_ANNOTATION,
    ProvisioningState, SecretReference,
};
use metalhost_core::reconcile::status_changed;
use metalhost_core::{BmcInput, Reconciler, Requeue};
use serde_json::json;
use tracing::info;

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
    /// The last state of every host seen, for the hosts-per-state metric.
    states: std::sync::Mutex<std::collections::BTreeMap<String, String>>,
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
            states: Default::default(),
        }
    }
}

/// Errors of the Kubernetes runtime (the API server refused or could not be reached).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Kubernetes API call failed.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
}

/// The host's BMC with the credentials from its Secret, and which Secret version was read (for
/// `triedCredentials`/`goodCredentials`, as upstream keeps them).
async fn bmc_input(
    ctx: &Context,
    host: &BareMetalHost,
) -> Result<(BmcInput, Option<CredentialsStatus>), Error> {
    let namespace = host.namespace_or_default();
    let name = crate::bmc::credentials_secret_name(host);
    let secret = match name {
        Some(name) => Api::<Secret>::namespaced(ctx.client.clone(), namespace).get_opt(name).await?,
        None => None,
    };
    let tried = secret.as_ref().map(|secret| CredentialsStatus {
        credentials: Some(SecretReference {
            name: name.map(str::to_string),
            namespace: Some(namespace.to_string()),
        }),
        credentials_version: secret.metadata.resource_version.clone(),
    });
    Ok((crate::bmc::bmc_input(host, secret.as_ref()), tried))
}

async fn publish(
    ctx: &Context,
    host: &BareMetalHost,
    type_: EventType,
    reason: &str,
    note: String,
) -> Result<(), Error> {
    let event =
        Event { type_, reason: reason.into(), note: Some(note), action: reason.into(), secondary: None };
    ctx.recorder.publish(&event, &host.object_ref(&())).await?;
    Ok(())
}

/// One reconcile of one host, recorded in the metrics.
pub async fn reconcile(host: Arc<BareMetalHost>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = std::time::Instant::now();
    let result = reconcile_host(Arc::clone(&host), Arc::clone(&ctx)).await;
    if let Some(metrics) = &ctx.metrics {
        metrics.reconciled(started.elapsed(), result.is_err());
    }
    result
}

fn record_state(ctx: &Context, host: &BareMetalHost, state: Option<&str>) {
    let Some(metrics) = &ctx.metrics else { return };
    let mut states = ctx.states.lock().expect("states");
    match state {
        Some(s) => states.insert(host.qualified_name(), s.to_string()),
        None => states.remove(&host.qualified_name()),
    };
    metrics.set_hosts(states.values().map(String::as_str));
}

async fn reconcile_host(host: Arc<BareMetalHost>, ctx: Arc<Context>) -> Result<Action, Error> {
    let name = host.metadata.name.clone().unwrap_or_default();
    let api: Api<BareMetalHost> = Api::namespaced(ctx.client.clone(), host.namespace_or_default());
    let annotations = host.annotations();
    if annotations.contains_key(PAUSED_ANNOTATION) {
        return Ok(Action::await_change());
    }
    let deleting = host.metadata.deletion_timestamp.is_some();
    let finalizers = host.metadata.finalizers.clone().unwrap_or_default();
    let has_finalizer = finalizers.iter().any(|f| f == FINALIZER);
    if !deleting && !has_finalizer {
        let mut with = finalizers.clone();
        with.push(FINALIZER.to_string());
        api.patch(&name, &PatchParams::default(), &Patch::Merge(json!({"metadata": {"finalizers": with}})))
            .await?;
        return Ok(Action::await_change());
    }
    if deleting && !has_finalizer {
        return Ok(Action::await_change());
    }
    let previous = host.status.clone().unwrap_or_default();
    if annotations.contains_key(DETACHED_ANNOTATION) && !deleting {
        if previous.operational_status != OperationalStatus::Detached {
            let mut status = previous.clone();
            status.operational_status = OperationalStatus::Detached;
            api.patch_status(&name, &PatchParams::default(), &Patch::Merge(json!({"status": status})))
                .await?;
            publish(&ctx, &host, EventType::Normal, "Detached", "detached from Ironic by annotation".into())
                .await?;
        }
        return Ok(Action::await_change());
    }
    let (bmc, tried) = if deleting { (None, None) } else { bmc_input(&ctx, &host).await? };
    // credentials that worked before and whose Secret changed since: registration runs again
    let credentials_changed =
        previous.good_credentials.is_some() && tried.is_some() && previous.good_credentials != tried;
    // the config drive extension: fetch the Secrets it names, then build it as the standalone runtime does
    let mut drive_secrets = std::collections::BTreeMap::new();
    if !deleting {
        for (namespace, secret_name) in crate::config_drive::secrets_needed(&host) {
            let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
            if let Some(secret) = api.get_opt(&secret_name).await? {
                drive_secrets.insert((namespace, secret_name), secret);
            }
        }
    }
    let drive =
        crate::config_drive::build(&host, |ns, name| drive_secrets.get(&(ns.to_string(), name.to_string())));
    let now = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let request = metalhost_core::Request {
        host: &host,
        bmc: &bmc,
        deleting,
        previous: &previous,
        now: &now,
        config_drive: drive.as_ref(),
        credentials_changed,
    };
    let mut outcome = ctx.reconciler.reconcile(request).await;
    if let Some(tried) = tried {
        let registered = !matches!(
            outcome.status.provisioning.state,
            ProvisioningState::None | ProvisioningState::Unmanaged | ProvisioningState::Registering
        );
        if registered && outcome.status.operational_status != OperationalStatus::Error {
            outcome.status.good_credentials = Some(tried.clone());
        }
        outcome.status.tried_credentials = Some(tried);
    }
    if outcome.forget {
        let without: Vec<String> = finalizers.into_iter().filter(|f| f != FINALIZER).collect();
        api.patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": without}})),
        )
        .await?;
        info!(host = %host.qualified_name(), "deleted from Ironic; finalizer removed");
        record_state(&ctx, &host, None);
        return Ok(Action::await_change());
    }
    record_state(&ctx, &host, Some(outcome.status.provisioning.state.as_str()));
    if status_changed(&previous, &outcome.status) {
        api.patch_status(&name, &PatchParams::default(), &Patch::Merge(json!({"status": outcome.status})))
            .await?;
    }
    let (from, to) = (previous.provisioning.state, outcome.status.provisioning.state);
    if from != to {
        publish(&ctx, &host, EventType::Normal, "ProvisioningStateChanged", format!("{from} → {to}")).await?;
    }
    if outcome.status.operational_status == OperationalStatus::Error
        && outcome.status.error_message != previous.error_message
    {
        let reason = outcome.status.error_type.map_or("Error", |t| t.as_str());
        publish(
            &ctx,
            &host,
            EventType::Warning,
            &reason.replace(' ', "-"),
            outcome.status.error_message.clone(),
        )
        .await?;
    }
    Ok(match outcome.requeue {
        Requeue::Now => Action::requeue(Duration::from_millis(10)),
        Requeue::Poll => Action::requeue(Duration::from_secs(1)),
        Requeue::Backoff(d) => Action::requeue(d),
        Requeue::Idle => Action::requeue(ctx.idle),
        Requeue::Never => Action::await_change(),
    })
}

/// What the controller does when `reconcile` fails (the API server refused a write).
pub fn error_policy(_host: Arc<BareMetalHost>, _error: &Error, _ctx: Arc<Context>) -> Action {
    Action::requeue(Duration::from_secs(5))
}

/// Runs the controller over every BareMetalHost (of one namespace, or all) until stopped.
pub async fn run(ctx: Context, namespace: Option<String>, concurrency: u16) {
    use futures::StreamExt;
    use kube::runtime::{Controller, watcher};
    let api: Api<BareMetalHost> = match &namespace {
        Some(ns) => Api::namespaced(ctx.client.clone(), ns),
        None => Api::all(ctx.client.clone()),
    };
    Controller::new(api, watcher::Config::default())
        .with_config(kube::runtime::controller::Config::default().concurrency(concurrency))
        .shutdown_on_signal()
        .run(reconcile, error_policy, Arc::new(ctx))
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::warn!("reconcile failed: {e}");
            }
        })
        .await;
}
