//! `metalhost get -w`: the table once, then a line each time a host's row changes. State changes
//! come from the event log, so that none is missed between two looks at the status files (a host
//! may pass several states in a second); the status files give the other columns' changes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use metalhost_api::BareMetalHost;

use super::table::{self, Column};
use crate::standalone::events;

/// What a watch has shown so far.
pub struct Watch {
    dir: PathBuf,
    names: Vec<String>,
    columns: Vec<Column>,
    widths: Vec<usize>,
    last_seq: u64,
    /// Per host: the state and the row (ages blanked) last shown.
    shown: BTreeMap<String, (String, Vec<String>)>,
    /// Per host: looks for which a new state has waited for its event.
    waiting: BTreeMap<String, u32>,
}

/// Looks a new state in a status file waits for its event before it is shown anyway (an event
/// that could not be logged).
const MAX_WAIT_POLLS: u32 = 5;

/// One change to print: the host as it is now (with the state it went to) and its row.
pub struct Shown {
    /// The host, its state set to the one the change reached.
    pub host: BareMetalHost,
    /// Its row in the table's columns.
    pub line: String,
}

impl Watch {
    /// Starts watching the hosts of `dir` named in `names` (all when empty); returns the table to
    /// print first.
    pub fn start(
        dir: &Path,
        names: &[String],
        wide: bool,
        now: k8s_openapi::jiff::Timestamp,
    ) -> (Self, Vec<String>) {
        // events first: the runtime logs a change's events after it stores the status
        let last_seq = events::read(dir).last().map_or(0, |e| e.seq);
        let (hosts, _) = super::load(dir);
        let hosts: Vec<_> = hosts.into_iter().filter(|h| super::selected(h, names)).collect();
        let columns = table::columns_for(&hosts, wide);
        let mut watch = Watch {
            dir: dir.to_path_buf(),
            names: names.to_vec(),
            columns,
            widths: Vec::new(),
            last_seq,
            shown: BTreeMap::new(),
            waiting: BTreeMap::new(),
        };
        let mut rows = vec![watch.columns.iter().map(|c| c.header.clone()).collect::<Vec<_>>()];
        for host in &hosts {
            let row = table::row(host, &watch.columns, now);
            watch.shown.insert(host.qualified_name(), (state_of(host), watch.key(&row)));
            rows.push(row);
        }
        let lines = table::render(&rows, &mut watch.widths);
        (watch, lines)
    }

    fn key(&self, row: &[String]) -> Vec<String> {
        row.iter()
            .zip(&self.columns)
            .map(|(cell, c)| if c.is_date { String::new() } else { cell.clone() })
            .collect()
    }

    fn show(&mut self, host: BareMetalHost, now: k8s_openapi::jiff::Timestamp, out: &mut Vec<Shown>) {
        let row = table::row(&host, &self.columns, now);
        let entry = (state_of(&host), self.key(&row));
        if self.shown.get(&host.qualified_name()) == Some(&entry) {
            return;
        }
        self.shown.insert(host.qualified_name(), entry);
        let line = table::render(&[row], &mut self.widths).remove(0);
        out.push(Shown { host, line });
    }

    /// Looks again: the changes since the last look, in order.
    pub fn poll(&mut self, now: k8s_openapi::jiff::Timestamp) -> Vec<Shown> {
        let mut out = Vec::new();
        let (hosts, _) = super::load(&self.dir);
        let hosts: BTreeMap<String, BareMetalHost> = hosts
            .into_iter()
            .filter(|h| super::selected(h, &self.names))
            .map(|h| (h.qualified_name(), h))
            .collect();
        let logged = events::read(&self.dir);
        let has_log = !logged.is_empty();
        let seen = self.last_seq;
        for event in logged.into_iter().filter(|e| e.seq > seen) {
            self.last_seq = event.seq;
            let (Some(state), Some(host)) = (event.state, hosts.get(&event.host)) else { continue };
            let mut host = host.clone();
            host.status.get_or_insert_with(Default::default).provisioning.state = state;
            self.show(host, now, &mut out);
        }
        for (key, host) in hosts {
            // with a log, a new state is shown when its event is logged (in order, none missed)
            let new_state = self.shown.get(&key).is_some_and(|(state, _)| *state != state_of(&host));
            if has_log && new_state {
                let polls = self.waiting.entry(key).or_default();
                *polls += 1;
                if *polls <= MAX_WAIT_POLLS {
                    continue;
                }
            } else {
                self.waiting.remove(&key);
            }
            self.show(host, now, &mut out);
        }
        out
    }
}

fn state_of(host: &BareMetalHost) -> String {
    host.status.as_ref().map_or("", |s| s.provisioning.state.as_str()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::standalone::events::EventLog;
    use crate::standalone::store;
    use metalhost_api::{BareMetalHostStatus, ErrorType, OperationalStatus, ProvisioningState};
    use metalhost_core::HostEvent;

    fn write(dir: &Path, state: ProvisioningState, error: Option<ErrorType>) {
        let mut host = BareMetalHost::new("h", Default::default());
        let mut status = BareMetalHostStatus::default();
        status.provisioning.state = state;
        status.error_type = error;
        host.status = Some(status);
        store::write(dir, &host).unwrap();
    }

    fn changed(log: &mut EventLog, from: &str, to: &str) {
        let state = |s: &str| serde_json::from_value(serde_json::json!(s)).unwrap();
        let e = HostEvent::state_changed(state(from), state(to));
        log.append("default/h", &[e], "t").unwrap();
    }

    fn states(shown: &[Shown]) -> Vec<String> {
        shown.iter().map(|s| s.line.split_whitespace().nth(1).unwrap_or("").to_string()).collect()
    }

    #[test]
    fn every_logged_state_is_shown_in_order_and_nothing_twice() {
        let dir = tempfile::tempdir().unwrap();
        let now = k8s_openapi::jiff::Timestamp::now;
        let mut log = EventLog::open(dir.path());
        changed(&mut log, "registering", "provisioned");
        write(dir.path(), ProvisioningState::Provisioned, None);
        let (mut watch, table) = Watch::start(dir.path(), &[], false, now());
        assert_eq!(table.len(), 2, "{table:?}");
        assert!(watch.poll(now()).is_empty(), "nothing changed, the age does not count");
        // three states in one go: the status file shows only the last, the log all of them
        write(dir.path(), ProvisioningState::Provisioning, None);
        assert!(watch.poll(now()).is_empty(), "a new state waits for its event");
        changed(&mut log, "provisioned", "deprovisioning");
        changed(&mut log, "deprovisioning", "available");
        changed(&mut log, "available", "provisioning");
        assert_eq!(states(&watch.poll(now())), ["deprovisioning", "available", "provisioning"]);
        assert!(watch.poll(now()).is_empty());
        // another column changes: one line
        write(dir.path(), ProvisioningState::Provisioning, Some(ErrorType::Provisioning));
        let shown = watch.poll(now());
        assert_eq!(shown.len(), 1);
        assert!(shown[0].line.contains("provisioning error"), "{}", shown[0].line);
        assert_eq!(shown[0].host.status.as_ref().unwrap().operational_status, OperationalStatus::Unknown);
    }
}
