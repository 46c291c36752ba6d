//! The standalone runtime: reconciles every BareMetalHost of a manifest directory (or one file)
//! against Ironic, with BMC credentials from Secret manifests beside them, and writes each host's
//! status to a file beside it. A host whose manifest disappears (and stays gone for [`GONE_FOR`])
//! is taken out of Ironic.
//!
//! A storage adapter only (docs/architecture.md): it reads manifests and Secrets, hands the core one
//! resolved [`HostInput`] per reconcile, and stores the status that comes back. Host policy
//! (paused, detached, credentials, timing) is the core's.

pub mod bounded;
pub mod data_images;
pub mod events;
pub mod firmware;
pub mod manifests;
pub mod records;
pub mod store;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use futures::FutureExt;
use metalhost_api::{
    BareMetalHost, BareMetalHostStatus, ErrorType, INSPECT_ANNOTATION, OperationalStatus, ProvisioningState,
};
use metalhost_core::plan::NodeDefaults;
use metalhost_core::presence::Presence;
use metalhost_core::{HostInput, IronicProvisioner, Reconciler, Schedule};
use metalhost_ironic::ClientConfig;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use std::sync::Arc;

use crate::metrics::Metrics;
use manifests::{Manifests, manifest_files};

/// Settings of the runtime.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// How to reach Ironic.
    pub ironic: ClientConfig,
    /// Operator-wide node settings.
    pub defaults: NodeDefaults,
    /// How many hosts are reconciled at once.
    pub concurrency: usize,
    /// How long a host with nothing to do waits before it is looked at again.
    pub idle: Duration,
    /// Where to record metrics, if anywhere.
    pub metrics: Option<Arc<Metrics>>,
    /// BMO's `PROVISIONING_LIMIT`: at most this many nodes inspecting, (de)provisioning at once.
    pub provisioning_limit: Option<usize>,
    /// A host whose manifest is gone is deleted once it has been seen gone this long (see
    /// [`GONE_FOR`]).
    pub gone_for: Duration,
}

/// How long a host's manifest must stay gone, as this runtime sees it, before the host is
/// deleted. A file read at the moment someone rewrites it (an editor truncating it, or saving
/// through a rename) is empty or missing for an instant, and its hosts would be taken out of
/// Ironic; they are back at the next look. A writer slower than this (a generator piping into
/// the file with `>`) should write a temporary file and rename it.
pub const GONE_FOR: Duration = Duration::from_secs(1);

impl RuntimeConfig {
    /// The configuration the resolved settings give (no metrics until a runtime sets them).
    pub fn from_settings(settings: crate::settings::Settings) -> Self {
        let mut config = RuntimeConfig::new(settings.ironic);
        config.defaults = settings.defaults;
        config.concurrency = settings.concurrency;
        config.provisioning_limit = settings.provisioning_limit;
        config
    }

    /// The reconciler both runtimes use: Ironic reached lazily (a runtime started before Ironic
    /// keeps running), its requests counted in the metrics, the provisioning limit applied.
    pub fn reconciler(&self) -> Reconciler {
        let mut ironic = self.ironic.clone();
        if let Some(metrics) = &self.metrics {
            ironic.observer = Some(metrics.ironic_observer());
        }
        Reconciler::new(IronicProvisioner::connect_lazily(ironic), self.defaults.clone())
            .with_provisioning_limit(self.provisioning_limit)
    }

    /// Defaults: 32 hosts at once, idle hosts looked at every 2 minutes.
    pub fn new(ironic: ClientConfig) -> Self {
        RuntimeConfig {
            ironic,
            defaults: NodeDefaults::default(),
            concurrency: 32,
            idle: Duration::from_secs(120),
            metrics: None,
            provisioning_limit: None,
            gone_for: GONE_FOR,
        }
    }
}

/// The progress lines of a stored outcome, from the events it tells (the same state changes and
/// new error a Kubernetes user sees as Events): one per state passed, the error on the last; a
/// new error without a state change on a line of its own.
fn changes_told(
    key: &str,
    mut from: ProvisioningState,
    now: ProvisioningState,
    outcome: &metalhost_core::Outcome,
    error: Option<String>,
) -> Vec<Change> {
    let action = outcome.action.to_string();
    let change = |from, to| Change { key: key.into(), from, to, action: action.clone(), error: None };
    let mut changes = Vec::new();
    for to in outcome.events.iter().filter_map(|e| e.to) {
        changes.push(change(from, to));
        from = to;
    }
    // a warning while the host has no error (the BMC's port refusing connections) is told too
    let warning = outcome.events.iter().find(|e| e.kind == metalhost_core::EventKind::Warning);
    let error = error.or_else(|| warning.map(|w| w.note.as_str().to_string()));
    match changes.last_mut() {
        Some(last) => last.error = error,
        None if warning.is_some() => changes.push(Change { error, ..change(now, now) }),
        None => {}
    }
    changes
}

/// What a look at the manifest directory found.
enum Reread {
    /// A file changed: the manifests as they are now.
    Changed(Manifests),
    /// No file changed since the last look.
    Unchanged,
    /// The directory could not be listed (reported).
    Unlisted,
}

/// Where the hosts come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// Every manifest of a directory (deleting a manifest deletes its host).
    Dir(PathBuf),
    /// The hosts of one file; Secrets may also come from the other manifests of its directory.
    File(PathBuf),
}

impl Source {
    fn dir(&self) -> &Path {
        match self {
            Source::Dir(d) => d,
            Source::File(f) => f.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")),
        }
    }
}

/// A state change or error of one host, for progress output.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// `namespace/name`.
    pub key: String,
    /// State before.
    pub from: ProvisioningState,
    /// State after.
    pub to: ProvisioningState,
    /// What was done.
    pub action: String,
    /// The error now shown, if any.
    pub error: Option<String>,
}

#[derive(Debug)]
struct Tracked {
    host: BareMetalHost,
    status: BareMetalHostStatus,
    /// Whether its manifest is there (and usable).
    presence: Presence,
    due: Instant,
    schedule: Schedule,
    /// The status file is to be written at the next pass (its last write failed, or only the
    /// re-inspection marker changed).
    unsaved: bool,
    /// The manifest changed (or the host is to be deleted) since the last reconcile started: a
    /// reconcile under way did not see it, so the host is looked at again when it finishes.
    changed: bool,
    /// The manifest's re-inspection request (`inspect.metal3.io`) was taken: its inspection has
    /// started. The manifest is the user's and never edited, so the request is taken here (and
    /// in the status file, [`store::REINSPECTION_TAKEN`]) until the user removes it.
    reinspection_taken: bool,
    /// The host's DataImage as last kept (its status file), and since when its manifest is gone.
    data_image: data_images::Kept,
    /// The host's HostFirmwareSettings as last judged (its status file).
    firmware: firmware::Kept,
}

/// What a finished reconcile hands back.
struct Finished {
    /// The host's outcome.
    outcome: metalhost_core::Outcome,
    /// The look at its DataImage, with the DataImage looked at.
    image: Option<(metalhost_api::data_image::DataImage, metalhost_core::data_image::Look)>,
    /// Its HostFirmwareSettings judged, when due.
    firmware: Option<firmware::Look>,
    /// The HostFirmwareSettings generation the look's wanted settings were for.
    firmware_generation: i64,
}

impl Tracked {
    fn new(host: BareMetalHost, status: BareMetalHostStatus, due: Instant) -> Self {
        Tracked {
            host,
            status,
            presence: Presence::Present,
            due,
            schedule: Schedule::default(),
            unsaved: false,
            changed: true,
            reinspection_taken: false,
            data_image: data_images::Kept::default(),
            firmware: firmware::Kept::default(),
        }
    }

    /// Takes in the host's DataImage and HostFirmwareSettings manifests as `read` has them: a
    /// new or changed one brings the host's next look to now, a missing one to when its absence
    /// counts.
    fn take_objects(&mut self, read: &Manifests, key: &str, now: Instant, gone_for: Duration) {
        let complete = read.problems.is_empty();
        let (image_changed, image_missing) = self.data_image.seen(read.data_images.get(key), complete, now);
        let (spec_changed, spec_missing) = self.firmware.seen(read.firmware_settings.get(key), complete, now);
        if image_changed || spec_changed {
            self.due = self.due.min(now);
            self.changed = true;
        }
        for since in [image_missing, spec_missing].into_iter().flatten() {
            self.due = self.due.min(since + gone_for);
        }
    }

    /// The host as the core sees it: without a re-inspection request already taken.
    fn host_for_core(&self) -> BareMetalHost {
        if self.reinspection_taken { without_reinspection_request(&self.host) } else { self.host.clone() }
    }

    /// Writes the status file; a failed write is kept in mind and tried again by the next pass
    /// (logged once, not at each pass).
    fn save(&mut self, dir: &Path, key: &str) {
        let mut record = self.host.clone();
        record.status = Some(self.status.clone());
        // a later run knows the request was taken (never from the manifest: it is metalhost's)
        let annotations = record.metadata.annotations.get_or_insert_default();
        annotations.remove(store::REINSPECTION_TAKEN);
        if self.reinspection_taken {
            annotations.insert(store::REINSPECTION_TAKEN.into(), "true".into());
        }
        let failed_before = self.unsaved;
        self.unsaved = match store::write(dir, &record) {
            Ok(()) => false,
            Err(e) if failed_before => {
                debug!(host = %key, "cannot write status, still: {e}");
                true
            }
            Err(e) => {
                warn!(host = %key, "cannot write status (tried again at each pass): {e}");
                true
            }
        };
    }
}

/// The standalone runtime's state.
pub struct Runtime {
    source: Source,
    reconciler: Reconciler,
    config: RuntimeConfig,
    hosts: BTreeMap<String, Tracked>,
    manifests: Manifests,
    /// What the manifest files looked like at the last load (None: never loaded).
    fingerprint: Option<Vec<(PathBuf, Option<SystemTime>, u64)>>,
    reported: BTreeSet<String>,
    /// The directory's event log (what Kubernetes would show as Events).
    events: events::EventLog,
    /// Reconciles under way; they outlive a pass (see [`Runtime::step`]).
    running: JoinSet<(String, Result<Finished, String>)>,
    /// The hosts being reconciled (never two reconciles of one host at once).
    in_flight: BTreeSet<String>,
    /// Changes of reconciles that finished between passes, for the next pass to report.
    finished: Vec<Change>,
}

/// The host without its re-inspection request (`inspect.metal3.io` but `disabled`), if it has one.
fn without_reinspection_request(host: &BareMetalHost) -> BareMetalHost {
    let mut host = host.clone();
    if host.reinspection_requested()
        && let Some(annotations) = host.metadata.annotations.as_mut()
    {
        annotations.remove(INSPECT_ANNOTATION);
    }
    host
}

fn rfc3339_now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

impl Runtime {
    /// A runtime over `source`; status files already beside the manifests are picked up.
    pub fn new(config: RuntimeConfig, source: Source) -> Self {
        let reconciler = config.reconciler();
        let source_dir = source.dir().to_path_buf();
        let mut rt = Runtime {
            source,
            reconciler,
            config,
            hosts: BTreeMap::new(),
            manifests: Manifests::default(),
            fingerprint: None,
            reported: BTreeSet::new(),
            events: events::EventLog::open(&source_dir),
            running: JoinSet::new(),
            in_flight: BTreeSet::new(),
            finished: Vec::new(),
        };
        store::remove_leftover_temporaries(rt.source.dir(), SystemTime::now());
        let (records, problems) = store::read_all(rt.source.dir());
        for p in problems {
            rt.report(p);
        }
        let now = Instant::now();
        for (_, mut record) in records {
            // the annotations a status file keeps are for display: a host known only from its
            // status file (its manifest gone while metalhost was down) is deleted whatever they
            // said (a paused host whose manifest is gone could never be unpaused)
            let taken = record.annotations().contains_key(store::REINSPECTION_TAKEN);
            record.metadata.annotations = None;
            let key = record.qualified_name();
            let status = record.status.clone().unwrap_or_default();
            let (data_image, problem) = data_images::Kept::load(rt.source.dir(), &record);
            rt.report_some(problem);
            let (firmware, problem) = firmware::Kept::load(rt.source.dir(), &record);
            rt.report_some(problem);
            let tracked = Tracked {
                reinspection_taken: taken,
                data_image,
                firmware,
                ..Tracked::new(record, status, now)
            };
            rt.hosts.insert(key, tracked);
        }
        rt
    }

    fn report_some(&mut self, problem: Option<String>) {
        if let Some(p) = problem {
            self.report(p);
        }
    }

    fn report(&mut self, problem: String) {
        if self.reported.insert(problem.clone()) {
            warn!("{problem}");
        }
    }

    /// The status of every host known, by `namespace/name`.
    pub fn statuses(&self) -> impl Iterator<Item = (&str, &BareMetalHostStatus)> {
        self.hosts.iter().map(|(k, t)| (k.as_str(), &t.status))
    }

    /// The status of one host.
    pub fn status(&self, key: &str) -> Option<&BareMetalHostStatus> {
        self.hosts.get(key).map(|t| &t.status)
    }

    /// The hosts not being deleted (a host whose manifest has just gone is among them until its
    /// absence is confirmed, see [`GONE_FOR`]).
    pub fn present(&self) -> impl Iterator<Item = (&str, &BareMetalHost, &BareMetalHostStatus)> {
        self.hosts
            .iter()
            .filter(|(_, t)| !t.presence.deleting())
            .map(|(k, t)| (k.as_str(), &t.host, &t.status))
    }

    /// When the next host is due (a host being reconciled counts as due until it is done).
    pub fn next_due(&self) -> Option<Instant> {
        self.hosts.values().filter(|t| t.presence.unusable().is_none()).map(|t| t.due).min()
    }

    /// When the next reconcile may start: the hosts being reconciled are not waited for here.
    fn next_start(&self) -> Option<Instant> {
        self.hosts
            .iter()
            .filter(|(k, t)| t.presence.unusable().is_none() && !self.in_flight.contains(*k))
            .map(|(_, t)| t.due)
            .min()
    }

    /// Starts reconciles of the due hosts, the longest due first, up to `concurrency` at once.
    fn start_due(&mut self) {
        let now = Instant::now();
        let mut due: Vec<(Instant, String)> = self
            .hosts
            .iter()
            .filter(|(k, t)| {
                (t.presence == Presence::Present || t.presence.deleting())
                    && t.due <= now
                    && !self.in_flight.contains(*k)
            })
            .map(|(k, t)| (t.due, k.clone()))
            .collect();
        due.sort();
        for (_, key) in due {
            if self.running.len() >= self.config.concurrency.max(1) {
                break;
            }
            let Some(t) = self.hosts.get_mut(&key) else { continue };
            t.changed = false;
            let mut input = HostInput::resolve(t.host_for_core(), t.presence.deleting(), &self.manifests);
            // a paused host (or one in a state this build does not know) is left alone, as the
            // core leaves it: no Ironic call, no file written for its DataImage or its settings
            let unknown = t.status.provisioning.state == ProvisioningState::Unknown;
            let touch_objects = !(t.presence.deleting() || input.paused || unknown);
            let manifest = self.manifests.firmware_settings.get(&key);
            let settings = t.firmware.held(manifest, now, self.config.gone_for);
            let (wanted, firmware_generation) = t.firmware.wanted(settings.as_ref());
            if touch_objects {
                input.firmware_settings = wanted;
            }
            let kept_firmware = touch_objects.then(|| t.firmware.clone());
            let dir = self.source.dir().to_path_buf();
            let image = match !touch_objects {
                true => None,
                false => {
                    t.data_image.to_keep(self.manifests.data_images.get(&key), now, self.config.gone_for)
                }
            };
            let status = t.status.clone();
            let reconciler = self.reconciler.clone();
            let metrics = self.config.metrics.clone();
            self.in_flight.insert(key.clone());
            self.running.spawn(async move {
                let started = Instant::now();
                let now = rfc3339_now();
                let reconcile = reconciler.reconcile(&input, &status, &now);
                // a panic must not lose the host: it is reported and the host tried again
                let outcome = match std::panic::AssertUnwindSafe(reconcile).catch_unwind().await {
                    Ok(outcome) => outcome,
                    Err(_) => return (key, Err("reconcile panicked".to_string())),
                };
                let image = match image.filter(|_| !outcome.forget) {
                    Some(image) => {
                        let look =
                            data_images::look(&reconciler, &image, &input.host, &outcome.status, &now).await;
                        Some((image, look))
                    }
                    None => None,
                };
                let firmware = match kept_firmware.filter(|_| !outcome.forget) {
                    Some(kept) => {
                        let at = (Instant::now(), now.as_str());
                        kept.look(&reconciler, &dir, &input.host, settings.as_ref(), &outcome.status, at)
                            .await
                    }
                    None => None,
                };
                if let Some(m) = metrics {
                    m.reconciled(
                        started.elapsed(),
                        outcome.status.operational_status == OperationalStatus::Error,
                    );
                }
                (key, Ok(Finished { outcome, image, firmware, firmware_generation }))
            });
        }
    }

    /// Takes in a finished reconcile: its status is stored and its changes kept for the pass.
    fn finish(&mut self, joined: Result<(String, Result<Finished, String>), tokio::task::JoinError>) {
        match joined {
            Ok((key, Ok(Finished { outcome, image, firmware, firmware_generation }))) => {
                self.in_flight.remove(&key);
                let state = outcome.status.provisioning.state;
                if let Some(t) = self.hosts.get_mut(&key) {
                    t.firmware.note_outcome(firmware_generation, &outcome);
                }
                let changes = self.apply_outcome(&key, outcome);
                self.apply_data_image(&key, image);
                self.apply_firmware(&key, state, firmware);
                self.finished.extend(changes);
            }
            Ok((key, Err(e))) => {
                warn!(host = %key, "{e}; trying again later");
                self.in_flight.remove(&key);
                if let Some(t) = self.hosts.get_mut(&key) {
                    t.due = Instant::now() + Duration::from_secs(10);
                }
            }
            Err(e) => warn!("reconcile task failed: {e}"),
        }
    }

    /// Reads the manifests again if any file changed, and takes in what they say.
    fn reload(&mut self) {
        let manifests = match self.read_manifests() {
            Reread::Changed(manifests) => manifests,
            Reread::Unchanged => return self.delete_long_gone(Instant::now()),
            // nothing is known of the manifests: no host counts as gone for it
            Reread::Unlisted => return,
        };
        for p in manifests.problems.clone() {
            self.report(p);
        }
        let now = Instant::now();
        let mut present = self.take_hosts(&manifests, now);
        present.extend(self.take_unusable_hosts(&manifests, now));
        // one file: its hosts only, whatever other status files lie beside it
        if matches!(self.source, Source::File(_)) {
            self.hosts.retain(|key, _| present.contains(key));
        }
        // a manifest that is gone means: delete the host, once it has been seen gone a while.
        // Not when some file could not be read: its hosts would look gone.
        if matches!(self.source, Source::Dir(_)) {
            let complete = manifests.problems.is_empty();
            for (key, t) in self.hosts.iter_mut().filter(|(key, _)| !present.contains(*key)) {
                if t.presence.not_seen(now, complete) {
                    debug!(host = %key, "manifest gone: the host is deleted if it stays gone");
                    // nothing starts for it meanwhile; it is looked at again when the wait ends
                    t.due = now + self.config.gone_for;
                }
            }
        }
        self.wake_hosts_whose_objects_changed(&manifests, now);
        self.wake_hosts_whose_secrets_changed(&manifests, now);
        self.manifests = manifests;
        self.delete_long_gone(now);
    }

    /// A host whose DataImage or HostFirmwareSettings is new or changed is looked at at once; one
    /// whose manifest of either went is looked at when its absence counts (a DataImage is then
    /// detached, the settings' spec is empty).
    fn wake_hosts_whose_objects_changed(&mut self, read: &Manifests, now: Instant) {
        for (key, t) in &mut self.hosts {
            t.take_objects(read, key, now, self.config.gone_for);
        }
    }

    /// Takes in a judgement of a host's HostFirmwareSettings: its status files, its events, and
    /// a look at once when an available host is to prepare.
    fn apply_firmware(&mut self, key: &str, state: ProvisioningState, look: Option<firmware::Look>) {
        let dir = self.source.dir().to_path_buf();
        let (Some(look), Some(t)) = (look, self.hosts.get_mut(key)) else { return };
        let now = Instant::now();
        let (events, prepare) = t.firmware.apply(&dir, &t.host, state, look, now);
        if prepare {
            t.due = now;
        }
        self.log_events(key, &events);
    }

    /// Takes in the look at a host's DataImage (if one was made): its status file, and the host's
    /// next look.
    fn apply_data_image(
        &mut self,
        key: &str,
        image: Option<(metalhost_api::data_image::DataImage, metalhost_core::data_image::Look)>,
    ) {
        let dir = self.source.dir().to_path_buf();
        let Some(t) = self.hosts.get_mut(key) else { return };
        let now = Instant::now();
        if let Some((image, look)) = image
            && let Some(again) = t.data_image.apply(&dir, image, look, key)
        {
            t.due = t.due.min(now + again);
        }
        // a look made while a DataImage's or a HostFirmwareSettings' manifest is missing, but
        // before its absence counts, set the host's next look by its own pace: it is brought back
        // to when the absence counts. So is a DataImage removed while its first look ran (it had
        // no record for the reload to miss). A change meanwhile is the reload's: it marked the
        // host changed.
        let complete = self.manifests.problems.is_empty();
        let (_, image_missing) = t.data_image.seen(self.manifests.data_images.get(key), complete, now);
        let (_, spec_missing) = t.firmware.seen(self.manifests.firmware_settings.get(key), complete, now);
        for since in [image_missing, spec_missing].into_iter().flatten() {
            t.due = t.due.min(since + self.config.gone_for);
        }
    }

    /// A host whose Secret changed (a corrected password, say) is looked at at once, not after
    /// its back-off, as the Kubernetes runtime's Secret watch does.
    fn wake_hosts_whose_secrets_changed(&mut self, read: &Manifests, now: Instant) {
        let version =
            |m: &Manifests, key: &str| m.secrets.get(key).map(|s| s.metadata.resource_version.clone());
        for t in self.hosts.values_mut() {
            let needed = metalhost_core::secrets_needed(&t.host, t.presence.deleting());
            let changed = needed.iter().any(|(namespace, name, _)| {
                let key = format!("{namespace}/{name}");
                version(&self.manifests, &key) != version(read, &key)
            });
            if changed {
                t.due = t.due.min(now);
                t.changed = true;
            }
        }
    }

    /// The manifests, when a file changed since the last read.
    fn read_manifests(&mut self) -> Reread {
        let dir = self.source.dir().to_path_buf();
        let files = match manifest_files(&dir) {
            Ok(f) => f,
            Err(e) => {
                self.report(format!("{}: cannot list manifests: {e}", dir.display()));
                return Reread::Unlisted;
            }
        };
        let fingerprint: Vec<_> = files
            .iter()
            .map(|f| {
                let meta = std::fs::metadata(f).ok();
                (f.clone(), meta.as_ref().and_then(|m| m.modified().ok()), meta.map_or(0, |m| m.len()))
            })
            .collect();
        if self.fingerprint.as_ref() == Some(&fingerprint) {
            return Reread::Unchanged;
        }
        self.fingerprint = Some(fingerprint);
        let mut manifests = Manifests::load(&files);
        manifests.keep_versions_of_unchanged_secrets(&self.manifests);
        if let Source::File(file) = &self.source {
            let only = Manifests::load(std::slice::from_ref(file));
            manifests.hosts = only.hosts;
            manifests.bad_hosts = only.bad_hosts;
        }
        Reread::Changed(manifests)
    }

    /// Takes in the usable hosts read; returns their keys.
    fn take_hosts(&mut self, manifests: &Manifests, now: Instant) -> BTreeSet<String> {
        for (key, host) in &manifests.hosts {
            let entry = self.hosts.entry(key.clone()).or_insert_with(|| {
                Tracked::new(with_creation_time(host.clone()), BareMetalHostStatus::default(), now)
            });
            let again = entry.presence.seen(None);
            if again
                || entry.host.spec != host.spec
                || entry.host.metadata.annotations != host.metadata.annotations
            {
                entry.due = now;
                entry.changed = true;
            }
            let created = entry.host.metadata.creation_timestamp.take();
            if entry.reinspection_taken && !host.annotations().contains_key(INSPECT_ANNOTATION) {
                // the user took the request away: it may be made again (also after a restart)
                entry.reinspection_taken = false;
                entry.unsaved = true;
            }
            entry.host = host.clone();
            entry.host.metadata.creation_timestamp = created.or_else(creation_time);
        }
        manifests.hosts.keys().cloned().collect()
    }

    /// Takes in the hosts whose manifests are unusable (reported, nothing done to them); returns
    /// their keys. A document without a name is reported only.
    fn take_unusable_hosts(&mut self, manifests: &Manifests, now: Instant) -> BTreeSet<String> {
        let mut present = BTreeSet::new();
        for bad in &manifests.bad_hosts {
            let Some(key) = &bad.key else {
                self.report(bad.reason.clone());
                continue;
            };
            present.insert(key.clone());
            let (namespace, name) = key.split_once('/').unwrap_or(("default", key));
            let entry = self.hosts.entry(key.clone()).or_insert_with(|| {
                let mut host = with_creation_time(BareMetalHost::new(name, Default::default()));
                host.metadata.namespace = Some(namespace.to_string());
                Tracked::new(host, BareMetalHostStatus::default(), now)
            });
            entry.presence.seen(Some(bad.reason.clone()));
        }
        present
    }

    /// Deletes the hosts whose manifests have been gone for [`RuntimeConfig::gone_for`].
    fn delete_long_gone(&mut self, now: Instant) {
        for (key, t) in &mut self.hosts {
            if t.presence.expire(now, self.config.gone_for) {
                info!(host = %key, "manifest removed: deleting host");
                t.due = now;
                t.changed = true;
            }
        }
    }

    /// One pass: reload manifests if they changed, start reconciles of the due hosts (up to
    /// `concurrency` at a time) and store the statuses that changed. A host that falls due while
    /// the pass runs (a quick poll, a step that follows at once) starts as soon as there is room,
    /// without waiting for the slowest host. The pass ends when nothing is under way or after
    /// [`PASS_WINDOW`], so that manifest edits are noticed and progress is shown; reconciles
    /// still under way go on and are taken in by the next pass or [`Runtime::wait_for_work`].
    pub async fn step(&mut self) -> Vec<Change> {
        self.reload();
        self.save_unsaved();
        let mut changes = std::mem::take(&mut self.finished);
        self.mark_bad_hosts(&mut changes);
        let started = Instant::now();
        loop {
            self.start_due();
            if self.running.is_empty() {
                break;
            }
            let left = PASS_WINDOW.saturating_sub(started.elapsed());
            if left.is_zero() {
                break;
            }
            match tokio::time::timeout(left, self.running.join_next()).await {
                Ok(Some(joined)) => self.finish(joined),
                Ok(None) | Err(_) => break,
            }
        }
        changes.append(&mut self.finished);
        changes
    }

    /// Writes again the status files whose last write failed.
    fn save_unsaved(&mut self) {
        let dir = self.source.dir().to_path_buf();
        for (key, t) in self.hosts.iter_mut().filter(|(_, t)| t.unsaved) {
            t.save(&dir, key);
        }
    }

    fn mark_bad_hosts(&mut self, changes: &mut Vec<Change>) {
        let dir = self.source.dir().to_path_buf();
        let now = rfc3339_now();
        for (key, t) in &mut self.hosts {
            let Some(reason) = t.presence.unusable().map(str::to_string) else { continue };
            let message = metalhost_api::text::Redacted::new(&reason);
            if t.status.error_message == message.as_str() {
                continue;
            }
            let before = t.status.clone();
            t.status.operational_status = OperationalStatus::Error;
            t.status.error_type.get_or_insert(ErrorType::Registration);
            // redacted and bounded: serde's error may quote a huge field of the manifest
            t.status.error_message = message.to_string();
            t.status.last_updated = Some(now.clone());
            t.save(&dir, key);
            let events = metalhost_core::policy::events(&before, &t.status, &[]);
            if let Err(e) = self.events.append(key, &events, &now) {
                warn!(host = %key, "cannot log events: {e}");
            }
            let state = t.status.provisioning.state;
            let kind = t.status.error_type.map_or("error", |k| k.as_str());
            changes.push(Change {
                key: key.clone(),
                from: state,
                to: state,
                action: "none".into(),
                error: Some(format!("{kind}: {message}")),
            });
        }
    }

    fn apply_outcome(&mut self, key: &str, outcome: metalhost_core::Outcome) -> Vec<Change> {
        let dir = self.source.dir().to_path_buf();
        let idle = self.config.idle;
        if let Some(metrics) = &self.config.metrics {
            let state = (!outcome.forget).then(|| outcome.status.provisioning.state.as_str());
            metrics.host_state(key, state);
        }
        let Some(t) = self.hosts.get_mut(key) else { return Vec::new() };
        let before = t.status.clone();
        let now = Instant::now();
        t.due = match t.schedule.next(outcome.requeue, now, fastrand::f64(), idle) {
            Some(delay) => now + delay,
            // gone from Ironic; kept only until forgotten below
            None => now + idle,
        };
        if t.changed {
            // changed while this reconcile was under way: it did not see the change
            t.due = now;
        }
        if let Some(since) = t.presence.missing_since() {
            // the manifest went meanwhile: nothing starts before its absence is confirmed
            t.due = t.due.max(since + self.config.gone_for);
        }
        if outcome.forget {
            let host = t.host.clone();
            t.data_image.forget(&dir, &host);
            t.firmware.forget(&dir, &host);
            self.hosts.remove(key);
            if let Err(e) = store::remove(&dir, &host) {
                warn!(host = %key, "cannot remove status file: {e}");
            }
            info!(host = %key, "deleted");
            return vec![Change {
                key: key.into(),
                from: before.provisioning.state,
                to: ProvisioningState::Deleting,
                action: outcome.action.to_string(),
                error: None,
            }];
        }
        if outcome.status.provisioning.state == ProvisioningState::Inspecting
            && t.host.reinspection_requested()
            && !t.reinspection_taken
        {
            // made while the host inspects or to start an inspection: used up by this one, as
            // upstream removes the annotation then
            t.reinspection_taken = true;
            t.unsaved = true;
        }
        if !outcome.changed {
            self.log_events(key, &outcome.events);
            return Vec::new();
        }
        t.status = outcome.status.clone();
        t.save(&dir, key);
        // the events Kubernetes would publish, logged after the status they tell of is stored
        self.log_events(key, &outcome.events);
        let Some(t) = self.hosts.get(key) else { return Vec::new() };
        let error = (t.status.operational_status == OperationalStatus::Error).then(|| {
            let kind = t.status.error_type.map_or("error", |t| t.as_str());
            format!("{kind}: {}", t.status.error_message)
        });
        changes_told(key, before.provisioning.state, t.status.provisioning.state, &outcome, error)
    }

    fn log_events(&mut self, key: &str, events: &[metalhost_core::HostEvent]) {
        if let Err(e) = self.events.append(key, events, &rfc3339_now()) {
            warn!(host = %key, "cannot log events: {e}");
        }
    }

    /// Ironic HTTP requests this runtime has sent.
    pub fn ironic_requests(&self) -> u64 {
        self.reconciler.provisioner().request_count()
    }

    /// Sleeps until the next host is due or a reconcile under way finishes (at most `max`, so
    /// manifest edits are noticed).
    pub async fn wait_for_work(&mut self, max: Duration) {
        let wake =
            self.next_start().map_or(max, |due| due.saturating_duration_since(Instant::now()).min(max));
        let sleep = tokio::time::sleep(wake.max(Duration::from_millis(20)));
        if self.running.is_empty() {
            return sleep.await;
        }
        tokio::select! {
            _ = sleep => {}
            Some(joined) = self.running.join_next() => self.finish(joined),
        }
    }

    /// Runs passes until `done` holds or `timeout` passes; every change goes to `on_change`.
    /// Returns whether `done` held.
    pub async fn run_until(
        &mut self,
        timeout: Duration,
        mut on_change: impl FnMut(&Change),
        mut done: impl FnMut(&Runtime) -> bool,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            for change in self.step().await {
                on_change(&change);
            }
            if done(self) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            self.wait_for_work(Duration::from_millis(500)).await;
        }
    }
}

/// The longest a pass waits for reconciles under way (see [`Runtime::step`]).
pub const PASS_WINDOW: Duration = Duration::from_secs(2);

/// The time a host is first seen, as its creation time (the AGE `metalhost get` shows).
fn creation_time() -> Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time> {
    Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now()))
}

fn with_creation_time(mut host: BareMetalHost) -> BareMetalHost {
    if host.metadata.creation_timestamp.is_none() {
        host.metadata.creation_timestamp = creation_time();
    }
    host
}

/// Whether a host has reached where its spec points and nothing is under way: provisioned with
/// its image, available without one (powered as spec.online says), adopted, or unmanaged.
pub fn settled(host: &BareMetalHost, status: &BareMetalHostStatus) -> bool {
    use ProvisioningState as S;
    if status.operational_status == OperationalStatus::Error {
        return false;
    }
    match status.provisioning.state {
        S::Provisioned => host.spec.image.is_some() && status.provisioning.image == host.spec.image,
        S::Available => {
            let powered =
                status.powered_on == host.spec.online || (status.powered_on && host.spec.disable_power_off);
            host.spec.image.is_none() && !host.spec.externally_provisioned && powered
        }
        S::ExternallyProvisioned => host.spec.externally_provisioned,
        S::Unmanaged => host.spec.bmc.is_none(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> RuntimeConfig {
        // nobody listens on port 9: Ironic is unreachable, which these tests do not need
        let mut config = RuntimeConfig::new(ClientConfig::new("http://127.0.0.1:9"));
        // a host whose manifest goes is deleted at the next look
        config.gone_for = Duration::ZERO;
        config
    }

    const HOST: &str = "kind: BareMetalHost\nmetadata: {name: NAME}\nspec: {online: true}\n";

    #[tokio::test]
    async fn one_file_means_its_hosts_only() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yaml"), HOST.replace("NAME", "a")).unwrap();
        let mut other = BareMetalHost::new("b", Default::default());
        other.status = Some(BareMetalHostStatus::default());
        store::write(dir.path(), &other).unwrap();
        let mut rt = Runtime::new(config(), Source::File(dir.path().join("a.yaml")));
        rt.step().await;
        assert_eq!(rt.statuses().map(|(k, _)| k.to_string()).collect::<Vec<_>>(), ["default/a"]);
        assert!(dir.path().join("b.status.yaml").exists(), "another host's status is left alone");
    }

    #[tokio::test]
    async fn a_directory_with_an_unreadable_manifest_deletes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yaml"), HOST.replace("NAME", "a")).unwrap();
        let mut rt = Runtime::new(config(), Source::Dir(dir.path().to_path_buf()));
        rt.step().await;
        // the file breaks: its host must not be taken for deleted
        std::fs::write(dir.path().join("a.yaml"), "kind: [unclosed\n").unwrap();
        rt.step().await;
        assert_eq!(rt.present().count(), 1, "host a is not being deleted");
        // the file goes: now the host is deleted
        std::fs::remove_file(dir.path().join("a.yaml")).unwrap();
        rt.step().await;
        assert_eq!(rt.present().count(), 0);
    }

    #[tokio::test]
    async fn a_manifest_caught_while_it_is_written_deletes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.yaml");
        std::fs::write(&file, HOST.replace("NAME", "a")).unwrap();
        let mut config = config();
        config.gone_for = Duration::from_millis(300);
        let mut rt = Runtime::new(config, Source::Dir(dir.path().to_path_buf()));
        rt.step().await;
        assert_eq!(rt.present().count(), 1);
        // an editor has truncated the file and not written it yet: the host is not deleted
        std::fs::write(&file, "").unwrap();
        rt.step().await;
        assert_eq!(rt.present().count(), 1, "a file being written is not taken for the truth");
        // the write completes: the host stays, with its new spec
        std::fs::write(&file, HOST.replace("online: true", "online: false").replace("NAME", "a")).unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        rt.step().await;
        assert_eq!(rt.present().count(), 1);
        assert!(!rt.hosts["default/a"].host.spec.online, "the new spec is taken in");
        // saved through a rename: the file is missing for a moment
        std::fs::rename(&file, dir.path().join("a.yaml~")).unwrap();
        rt.step().await;
        assert!(rt.hosts["default/a"].presence.missing_since().is_some(), "the file is seen gone");
        std::fs::rename(dir.path().join("a.yaml~"), &file).unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        rt.step().await;
        assert_eq!(rt.present().count(), 1);
        // a manifest that stays gone means what it says: the host is deleted
        std::fs::write(&file, "").unwrap();
        rt.step().await;
        assert_eq!(rt.present().count(), 1);
        tokio::time::sleep(Duration::from_millis(300)).await;
        rt.step().await;
        assert_eq!(rt.present().count(), 0, "deleted once gone for the while");
    }

    #[tokio::test]
    async fn a_changed_secret_wakes_the_hosts_that_use_it_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = |password: &str| {
            format!(
                "kind: Secret\napiVersion: v1\nmetadata: {{name: c}}\nstringData: {{username: u, password: {password}}}\n---\n\
                 kind: BareMetalHost\nmetadata: {{name: a}}\n\
                 spec: {{online: true, bmc: {{address: \"redfish://127.0.0.1:9/x\", credentialsName: c}}}}\n---\n{}",
                HOST.replace("NAME", "b")
            )
        };
        std::fs::write(dir.path().join("a.yaml"), manifest("wrong")).unwrap();
        let mut rt = Runtime::new(config(), Source::Dir(dir.path().to_path_buf()));
        rt.step().await;
        // both wait (Ironic is unreachable: a's back-off; b has nothing to do)
        let later = Instant::now() + Duration::from_secs(1);
        for t in rt.hosts.values_mut() {
            t.due = later;
        }
        std::fs::write(dir.path().join("a.yaml"), manifest("corrected")).unwrap();
        rt.reload();
        assert!(rt.hosts["default/a"].due <= Instant::now(), "a uses the Secret: looked at at once");
        assert_eq!(rt.hosts["default/b"].due, later, "b does not");
    }

    #[tokio::test]
    async fn a_directory_that_cannot_be_listed_deletes_no_host() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("manifests");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("a.yaml"), HOST.replace("NAME", "a")).unwrap();
        std::fs::write(dir.join("b.yaml"), HOST.replace("NAME", "b")).unwrap();
        let mut config = config();
        config.gone_for = Duration::from_millis(300);
        let mut rt = Runtime::new(config, Source::Dir(dir.clone()));
        rt.step().await;
        assert_eq!(rt.present().count(), 2);
        // a's manifest goes, then the whole directory is away for longer than the wait (moved
        // aside while it is replaced): nothing is known, so nothing is deleted
        std::fs::remove_file(dir.join("a.yaml")).unwrap();
        rt.step().await;
        assert!(rt.hosts["default/a"].presence.missing_since().is_some());
        std::fs::rename(&dir, root.path().join("aside")).unwrap();
        tokio::time::sleep(Duration::from_millis(400)).await;
        rt.step().await;
        assert!(!rt.hosts["default/a"].presence.deleting(), "deleted while the directory was away");
        // the directory is back with a's manifest: a is there, as it was
        std::fs::rename(root.path().join("aside"), &dir).unwrap();
        std::fs::write(dir.join("a.yaml"), HOST.replace("NAME", "a")).unwrap();
        rt.step().await;
        assert_eq!(rt.hosts["default/a"].presence, Presence::Present);
    }

    #[tokio::test]
    async fn a_status_write_that_failed_is_made_at_the_next_pass() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yaml"), HOST.replace("NAME", "a")).unwrap();
        let mut rt = Runtime::new(config(), Source::Dir(dir.path().to_path_buf()));
        // the status file's place is taken (a directory): the write fails
        let status = dir.path().join("a.status.yaml");
        std::fs::create_dir(&status).unwrap();
        rt.step().await;
        assert!(rt.hosts["default/a"].unsaved, "the failed write is remembered");
        std::fs::remove_dir(&status).unwrap();
        rt.step().await;
        assert!(!rt.hosts["default/a"].unsaved);
        let (records, _) = store::read_all(dir.path());
        assert_eq!(records.len(), 1, "the status file is written at the next pass");
        assert_eq!(
            records[0].1.status.as_ref().unwrap().provisioning.state,
            rt.hosts["default/a"].status.provisioning.state
        );
    }

    #[tokio::test]
    async fn a_killed_writers_leftover_is_removed_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let left = dir.path().join(".a.status.yaml.Xy12Zw.tmp");
        std::fs::write(&left, "half").unwrap();
        let file = std::fs::File::options().write(true).open(&left).unwrap();
        file.set_modified(SystemTime::now() - store::LEFTOVER_AGE).unwrap();
        let _rt = Runtime::new(config(), Source::Dir(dir.path().to_path_buf()));
        assert!(!left.exists());
    }

    #[tokio::test]
    async fn an_edit_made_while_a_reconcile_is_under_way_is_looked_at_when_it_ends() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.yaml");
        let manifest = |online: bool| {
            format!(
                "kind: Secret\nmetadata: {{name: c}}\nstringData: {{username: u, password: p}}\n---\n\
                 kind: BareMetalHost\nmetadata: {{name: a}}\nspec: {{online: {online}, \
                 bootMACAddress: '52:54:00:00:09:01', bmc: {{address: 'ipmi://10.0.0.1', credentialsName: c}}}}\n"
            )
        };
        std::fs::write(&file, manifest(true)).unwrap();
        // an Ironic that takes connections and never answers: a request runs into the time-out
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut config = config();
        config.ironic = ClientConfig::new(format!("http://{}", silent.local_addr().unwrap()));
        config.ironic.timeout = PASS_WINDOW + Duration::from_millis(500);
        let mut rt = Runtime::new(config, Source::Dir(dir.path().to_path_buf()));
        rt.step().await;
        assert!(rt.in_flight.contains("default/a"), "the first reconcile is still under way");
        // the edit lands while it waits for Ironic: it cannot see the edit
        std::fs::write(&file, manifest(false)).unwrap();
        // the reconcile times out within this pass; the host is looked at again at once, not
        // after the time-out's back-off
        rt.step().await;
        assert!(rt.in_flight.contains("default/a"), "the edited host is being reconciled again");
    }
}
