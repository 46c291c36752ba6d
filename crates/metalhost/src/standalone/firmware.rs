//! HostFirmwareSettings and FirmwareSchema in the standalone runtime, as the Kubernetes runtime
//! keeps them (`kube/firmware_settings.rs`) with files for objects: a `kind:
//! HostFirmwareSettings` manifest (same name and namespace as its host; none means no change
//! wanted) says what the user wants; `<host>_HostFirmwareSettings.status.yaml` holds what metalhost
//! judged (the spec, a generation counted up at each change of it, the machine's BIOS settings and
//! upstream's conditions), and `<schema>_FirmwareSchema.status.yaml` the BIOS registry of the
//! machine's model, shared by hash. The core judges (`metalhost_core::firmware`); a valid change
//! is applied in preparing by the core's state machine. `ValidationFailed` goes to the event log.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use metalhost_api::firmware::{
    FirmwareSchema, HostFirmwareSettings, HostFirmwareSettingsSpec, HostFirmwareSettingsStatus,
    SchemaReference, SettingSchema, SettingValue, schema_name, stored_schema,
};
use metalhost_api::{BareMetalHost, BareMetalHostStatus, ProvisioningState};
use metalhost_core::firmware::{
    CHANGE_DETECTED, Judgement, VALIDATION_FAILED, bios_report, judge, settings_to_apply,
};
use metalhost_core::{EventKind, HostEvent, Reconciler};
use serde_json::json;
use tracing::warn;

use super::records;

/// The kinds, as their record files are named.
const SETTINGS: &str = "HostFirmwareSettings";
const SCHEMA: &str = "FirmwareSchema";

/// How often the settings of a host are judged again while nothing happens to it, as upstream's
/// 5 minutes (1 while a change waits); as in Kubernetes.
const REJUDGE: Duration = Duration::from_secs(300);
const REJUDGE_CHANGE: Duration = Duration::from_secs(60);
/// How long a host whose BIOS could not be read waits before the next try.
const RETRY: Duration = Duration::from_secs(60);

/// What the runtime keeps of a host's HostFirmwareSettings: the record last written, when and in
/// which host state it was judged, the generation a clean went out for, a failure's time.
#[derive(Debug, Clone, Default)]
pub struct Kept {
    /// As its status file holds it (password values hidden).
    record: Option<HostFirmwareSettings>,
    /// The manifest's spec as last read (in memory only: it may hold passwords), and since when
    /// the manifest has been missing (a file caught while it is rewritten changes nothing).
    last_spec: Option<HostFirmwareSettingsSpec>,
    absence: super::manifests::Absence,
    judged: Option<(Instant, ProvisioningState)>,
    cleaned: Option<i64>,
    failed_at: Option<Instant>,
}

/// The spec as a status file keeps it: the values of password settings hidden (upstream's
/// schema leaves them out too).
fn masked(spec: &HostFirmwareSettingsSpec) -> HostFirmwareSettingsSpec {
    let settings = spec
        .settings
        .iter()
        .map(|(name, value)| match name.to_ascii_lowercase().contains("password") {
            true => (name.clone(), SettingValue::String("<hidden>".into())),
            false => (name.clone(), value.clone()),
        })
        .collect();
    HostFirmwareSettingsSpec { settings }
}

/// What a look judged, for the runtime to store.
#[derive(Debug, Clone)]
pub struct Judged {
    /// The spec and generation judged.
    spec: HostFirmwareSettingsSpec,
    generation: i64,
    /// The new status, whether it differs, the refused settings.
    judgement: Judgement,
    /// The schema (name, what it holds, the machine's vendor and model).
    schema: (SchemaReference, BTreeMap<String, SettingSchema>, String, String),
}

/// A look's result: judged, or why the BIOS could not be read.
pub type Look = Result<Judged, String>;

fn name_of(host: &BareMetalHost) -> (&str, &str) {
    (host.metadata.name.as_deref().unwrap_or_default(), host.namespace_or_default())
}

impl Kept {
    /// What the host's HostFirmwareSettings status file holds (a corrupt one is a problem).
    pub fn load(dir: &Path, host: &BareMetalHost) -> (Kept, Option<String>) {
        let (name, namespace) = name_of(host);
        match records::read(dir, SETTINGS, name, namespace) {
            Ok(record) => (Kept { record, ..Default::default() }, None),
            Err(problem) => (Kept::default(), Some(problem)),
        }
    }

    /// The record as last written, if any.
    pub fn record(&self) -> Option<&HostFirmwareSettings> {
        self.record.as_ref()
    }

    /// The spec the user wants now (the manifest's; none: no change) and its generation: the
    /// record's, one more when the spec changed since.
    pub fn current(&self, manifest: Option<&HostFirmwareSettings>) -> (HostFirmwareSettingsSpec, i64) {
        let spec = manifest.map(|m| m.spec.clone()).unwrap_or_default();
        match &self.record {
            Some(r) if r.spec != masked(&spec) => {
                (spec, r.metadata.generation.unwrap_or(1).saturating_add(1))
            }
            Some(r) => (spec, r.metadata.generation.unwrap_or(1)),
            None => (spec, 1),
        }
    }

    /// Takes in the host's HostFirmwareSettings manifest as a reload read it (`complete`: every
    /// manifest was read). Whether the spec changed (the host is looked at now), and when a
    /// missing manifest counts as gone.
    pub fn seen(
        &mut self,
        manifest: Option<&HostFirmwareSettings>,
        complete: bool,
        now: Instant,
    ) -> (bool, Option<Instant>) {
        let since = self.absence.seen(manifest.is_none() && self.last_spec.is_some(), complete, now);
        let Some(m) = manifest else { return (false, since) };
        self.last_spec = Some(m.spec.clone());
        (self.record.as_ref().is_some_and(|r| r.spec != masked(&m.spec)), since)
    }

    /// The manifest as the host's look takes it: the one read, else the last one read while its
    /// absence does not count yet (`gone_for`, or a reload that could not read every manifest).
    pub fn held(
        &self,
        manifest: Option<&HostFirmwareSettings>,
        now: Instant,
        gone_for: Duration,
    ) -> Option<HostFirmwareSettings> {
        if let Some(m) = manifest {
            return Some(m.clone());
        }
        match self.absence.counts(now, gone_for) {
            true => None,
            false => self.last_spec.clone().map(|spec| HostFirmwareSettings { spec, ..Default::default() }),
        }
    }

    /// The BIOS settings preparing is to apply (a valid change judged for the current spec), as
    /// in Kubernetes, with the generation they are for; once a clean went out for a generation,
    /// nothing more is asked for it.
    pub fn wanted(&self, manifest: Option<&HostFirmwareSettings>) -> (BTreeMap<String, SettingValue>, i64) {
        let (spec, generation) = self.current(manifest);
        let Some(status) = self.record.as_ref().and_then(|r| r.status.as_ref()) else {
            return (BTreeMap::new(), generation);
        };
        if self.cleaned == Some(generation) {
            return (BTreeMap::new(), generation);
        }
        (settings_to_apply(&spec, generation, status).unwrap_or_default(), generation)
    }

    /// Remembers a clean sent for `generation` (the one [`Kept::wanted`] gave the look); forgets
    /// it when preparing failed, so that it is tried again.
    pub fn note_outcome(&mut self, generation: i64, outcome: &metalhost_core::Outcome) {
        if outcome.action == metalhost_core::ActionKind::Clean {
            self.cleaned = Some(generation);
        } else if outcome.status.error_type == Some(metalhost_api::host::ErrorType::Preparation) {
            self.cleaned = None;
        }
    }

    /// Whether the settings are to be judged at this look: registered, not failed a minute ago,
    /// and the last judgement stale (another spec, its time up, or the host come to a state that
    /// follows a refresh of Ironic's BIOS cache), as in Kubernetes.
    fn due(&self, manifest: Option<&HostFirmwareSettings>, state: ProvisioningState, now: Instant) -> bool {
        if self.failed_at.is_some_and(|at| now.saturating_duration_since(at) < RETRY) {
            return false;
        }
        let (Some(record), Some((at, judged_state))) = (&self.record, self.judged) else {
            return true;
        };
        let waiting = record
            .status
            .as_ref()
            .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == CHANGE_DETECTED && c.status == "True"));
        let recent = now.saturating_duration_since(at) < if waiting { REJUDGE_CHANGE } else { REJUDGE };
        let refreshed = judged_state != state
            && matches!(
                state,
                ProvisioningState::Available | ProvisioningState::Ready | ProvisioningState::Preparing
            );
        let same = self.current(manifest).1 == record.metadata.generation.unwrap_or(1);
        !(same && recent && !refreshed)
    }

    /// Judges the host's settings after its look when due (in the reconcile's task): reads the
    /// node's BIOS and the schema of its model. None when not due.
    pub async fn look(
        &self,
        reconciler: &Reconciler,
        dir: &Path,
        host: &BareMetalHost,
        manifest: Option<&HostFirmwareSettings>,
        status: &BareMetalHostStatus,
        now: (Instant, &str),
    ) -> Option<Look> {
        let node = metalhost_core::firmware::registered_node(status)?;
        if !self.due(manifest, status.provisioning.state, now.0) {
            return None;
        }
        let bios = match reconciler.provisioner().client().await {
            Ok(client) => client.bios_settings(node).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let report = match bios {
            Ok(bios) => bios_report(&bios),
            Err(e) => return Some(Err(e)),
        };
        let (spec, generation) = self.current(manifest);
        let name = schema_name(&report.registry);
        let (_, namespace) = name_of(host);
        let reference = SchemaReference { namespace: namespace.to_string(), name: name.clone() };
        // a schema written for another host of the model is the one judged by
        let stored = match records::read::<FirmwareSchema>(dir, SCHEMA, &name, namespace) {
            Ok(Some(schema)) => schema.spec.schema,
            _ => stored_schema(report.registry.clone()),
        };
        let vendor = status.hardware.as_ref().and_then(|h| h.system_vendor.clone());
        let (maker, model) = vendor
            .map(|v| (v.manufacturer.unwrap_or_default(), v.product_name.unwrap_or_default()))
            .unwrap_or_default();
        let previous = self.record.as_ref().and_then(|r| r.status.clone()).unwrap_or_default();
        let judgement =
            judge(&spec, generation, &previous, report.settings, (reference.clone(), &stored), now.1);
        Some(Ok(Judged { spec, generation, judgement, schema: (reference, stored, maker, model) }))
    }

    /// Stores what a look judged: the schema's file when it has none yet, the settings' file when
    /// the status or the spec changed; the `ValidationFailed` events to log (upstream's, for
    /// each refused setting, when the judgement changed). Whether an available host is to prepare
    /// now. A failure to read the BIOS is warned about once and tried again after a minute.
    pub fn apply(
        &mut self,
        dir: &Path,
        host: &BareMetalHost,
        state: ProvisioningState,
        look: Look,
        now: Instant,
    ) -> (Vec<HostEvent>, bool) {
        let (name, namespace) = name_of(host);
        let judged = match look {
            Ok(judged) => judged,
            Err(e) => {
                if self.failed_at.is_none() {
                    warn!(host = %host.qualified_name(), error = %e, "cannot read the host's BIOS settings");
                }
                self.failed_at = Some(now);
                return (Vec::new(), false);
            }
        };
        self.failed_at = None;
        let (reference, stored, maker, model) = &judged.schema;
        let schema_path = records::path(dir, SCHEMA, &reference.name, namespace);
        if schema_path.is_ok_and(|p| std::fs::symlink_metadata(p).is_err()) {
            let schema = json!({
                "apiVersion": "metal3.io/v1alpha1", "kind": SCHEMA,
                "metadata": {"name": reference.name, "namespace": namespace},
                "spec": {"hardwareVendor": maker, "hardwareModel": model, "schema": stored},
            });
            if let Err(e) = records::write(dir, SCHEMA, &reference.name, namespace, &schema) {
                warn!(host = %host.qualified_name(), "cannot write the FirmwareSchema status file: {e}");
            }
        }
        let spec_changed = self.record.as_ref().is_none_or(|r| r.spec != masked(&judged.spec));
        let status: HostFirmwareSettingsStatus = judged.judgement.status.clone();
        if judged.judgement.changed || spec_changed {
            let record = json!({
                "apiVersion": "metal3.io/v1alpha1", "kind": SETTINGS,
                "metadata": {"name": name, "namespace": namespace, "generation": judged.generation},
                "spec": masked(&judged.spec), "status": status,
            });
            match records::write(dir, SETTINGS, name, namespace, &record)
                .and_then(|()| serde_json::from_value(record).map_err(std::io::Error::other))
            {
                Ok(written) => self.record = Some(written),
                Err(e) => {
                    warn!(host = %host.qualified_name(), "cannot write the HostFirmwareSettings status file: {e}");
                    return (Vec::new(), false);
                }
            }
        }
        self.judged = Some((now, state));
        let events = match judged.judgement.changed && !status.settings.is_empty() {
            true => judged
                .judgement
                .invalid
                .iter()
                .map(|why| {
                    HostEvent::new(
                        EventKind::Normal,
                        VALIDATION_FAILED,
                        &format!("Invalid BIOS setting: {why}"),
                    )
                })
                .collect(),
            false => Vec::new(),
        };
        let prepare = matches!(state, ProvisioningState::Available | ProvisioningState::Ready)
            && settings_to_apply(&judged.spec, judged.generation, &status).is_some();
        (events, prepare)
    }

    /// Forgets the settings of a host that left Ironic: their file goes (the schema stays for
    /// other hosts of the model, as a FirmwareSchema with other owners does).
    pub fn forget(&mut self, dir: &Path, host: &BareMetalHost) {
        let (name, namespace) = name_of(host);
        if let Err(e) = records::remove(dir, SETTINGS, name, namespace) {
            warn!(host = %host.qualified_name(), "cannot remove the HostFirmwareSettings status file: {e}");
        }
        *self = Kept::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use metalhost_api::Condition;
    use metalhost_core::firmware::VALID;

    fn manifest(settings: serde_json::Value) -> HostFirmwareSettings {
        serde_json::from_value(json!({"metadata": {"name": "h1"}, "spec": {"settings": settings}})).unwrap()
    }

    fn condition(type_: &str, generation: i64) -> Condition {
        Condition {
            type_: type_.into(),
            status: "True".into(),
            observed_generation: Some(generation),
            ..Default::default()
        }
    }

    /// A record judged at `generation` for `spec`: a valid change detected.
    fn judged(spec: serde_json::Value, generation: i64) -> Kept {
        let mut record = manifest(spec);
        record.spec = masked(&record.spec);
        record.metadata.generation = Some(generation);
        record.status = Some(HostFirmwareSettingsStatus {
            settings: [("ProcTurboMode".to_string(), "Enabled".to_string())].into(),
            conditions: vec![condition(VALID, generation), condition(CHANGE_DETECTED, generation)],
            ..Default::default()
        });
        Kept { record: Some(record), ..Default::default() }
    }

    #[test]
    fn a_changed_spec_is_the_next_generation_and_waits_to_be_judged() {
        let kept = judged(json!({"ProcTurboMode": "Disabled"}), 3);
        let same = manifest(json!({"ProcTurboMode": "Disabled"}));
        assert_eq!(kept.current(Some(&same)).1, 3);
        assert_eq!(
            kept.wanted(Some(&same)),
            ([("ProcTurboMode".to_string(), SettingValue::String("Disabled".into()))].into(), 3)
        );
        let other = manifest(json!({"ProcTurboMode": "Auto"}));
        assert_eq!(kept.current(Some(&other)).1, 4);
        assert!(kept.wanted(Some(&other)).0.is_empty(), "not judged for generation 4 yet");
    }

    #[test]
    fn one_clean_per_generation_the_one_the_look_asked_for() {
        let mut kept = judged(json!({"ProcTurboMode": "Disabled"}), 3);
        let same = manifest(json!({"ProcTurboMode": "Disabled"}));
        let (_, generation) = kept.wanted(Some(&same));
        let clean = metalhost_core::Outcome {
            action: metalhost_core::ActionKind::Clean,
            ..metalhost_core::Outcome::unchanged(&Default::default())
        };
        // the manifest changed while the clean was under way: the clean is still generation 3's
        kept.note_outcome(generation, &clean);
        assert!(kept.wanted(Some(&same)).0.is_empty(), "asked once");
        let next = judged(json!({"ProcTurboMode": "Auto"}), 4);
        let kept = Kept { cleaned: kept.cleaned, ..next };
        let auto = manifest(json!({"ProcTurboMode": "Auto"}));
        assert!(!kept.wanted(Some(&auto)).0.is_empty(), "generation 4 is asked for");
    }

    #[test]
    fn a_manifest_missing_for_an_instant_is_the_last_one_read() {
        let gone_for = Duration::from_secs(1);
        let t0 = Instant::now();
        let mut kept = judged(json!({"ProcTurboMode": "Disabled"}), 3);
        let m = manifest(json!({"ProcTurboMode": "Disabled"}));
        assert_eq!(kept.seen(Some(&m), true, t0), (false, None));
        assert_eq!(kept.seen(None, true, t0), (false, Some(t0)));
        assert_eq!(kept.held(None, t0, gone_for).map(|h| h.spec), Some(m.spec.clone()));
        assert_eq!(kept.held(None, t0 + gone_for, gone_for), None, "gone: no change wanted");
        assert_eq!(kept.seen(None, false, t0 + gone_for), (false, None), "an unread file stops the count");
        assert_eq!(kept.held(None, t0 + gone_for * 3, gone_for).map(|h| h.spec), Some(m.spec));
    }

    #[test]
    fn password_values_never_reach_the_record_and_are_no_change() {
        let kept = judged(json!({"AdminPassword": "hunter2", "ProcTurboMode": "Disabled"}), 2);
        let shown = serde_json::to_string(kept.record().unwrap()).unwrap();
        assert!(!shown.contains("hunter2"), "{shown}");
        let same = manifest(json!({"AdminPassword": "hunter2", "ProcTurboMode": "Disabled"}));
        assert_eq!(kept.current(Some(&same)), (same.spec.clone(), 2));
        assert_eq!(
            kept.wanted(Some(&same)).0.get("AdminPassword"),
            Some(&SettingValue::String("hunter2".into()))
        );
    }

    #[test]
    fn a_tampered_generation_does_not_overflow() {
        let mut kept = judged(json!({}), i64::MAX);
        kept.record.as_mut().unwrap().metadata.generation = Some(i64::MAX);
        assert_eq!(kept.current(Some(&manifest(json!({"X": "1"})))).1, i64::MAX);
    }
}
