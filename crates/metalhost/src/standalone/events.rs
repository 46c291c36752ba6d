//! The standalone event log: the [`HostEvent`]s the Kubernetes runtime publishes as Events (state
//! changes, errors), kept as JSON lines in the manifest directory so that `metalhost describe`
//! and `metalhost get -w` can show them, also after a restart.
//!
//! Bounded: two generations (`.metalhost-events.jsonl`, and `.metalhost-events.1.jsonl` before
//! it), each at most half of [`MAX_EVENTS`] lines and half of [`MAX_BYTES`]; a full generation
//! replaces the older one. Confined: fixed names in the directory, opened with `O_NOFOLLOW` (a
//! symlink in their place is refused, never followed) and only when they are regular files.
//! Appended with `O_APPEND`. No secret: notes come from statuses, and URL userinfo is removed once
//! more before a line is written.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use metalhost_api::ProvisioningState;
use metalhost_core::{EventKind, HostEvent};
use serde::{Deserialize, Serialize};

use super::bounded::open_regular;

/// The current generation of the log, in the manifest directory.
pub const LOG_FILE: &str = ".metalhost-events.jsonl";
/// The previous generation.
pub const OLD_LOG_FILE: &str = ".metalhost-events.1.jsonl";
/// At most this many events are kept (both generations together).
pub const MAX_EVENTS: usize = 1000;
/// At most this many bytes are kept (both generations together).
pub const MAX_BYTES: u64 = 1024 * 1024;

/// One logged event: what a Kubernetes Event of the host would say, with a sequence number that
/// grows across restarts (watchers ask for what came after the last one they saw).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoggedEvent {
    /// Grows by one per event in a directory.
    pub seq: u64,
    /// When it was logged (RFC 3339, seconds).
    pub time: String,
    /// `namespace/name`.
    pub host: String,
    /// `Normal` or `Warning`.
    #[serde(rename = "type")]
    pub kind: String,
    /// CamelCase reason (`ProvisioningStateChanged`, `ProvisioningError`, …).
    pub reason: String,
    /// What happened.
    pub note: String,
    /// For a state change, the state the host went to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<ProvisioningState>,
}

/// Appends events to a directory's log, keeping it within its bounds.
#[derive(Debug)]
pub struct EventLog {
    dir: PathBuf,
    next_seq: u64,
    lines: usize,
    max_events: usize,
    max_bytes: u64,
}

/// The events of one generation file, at most `max_bytes` of it; lines that do not parse are
/// skipped.
fn read_generation(path: &Path, max_bytes: u64) -> Vec<LoggedEvent> {
    let Ok(file) = open_regular(path, OpenOptions::new().read(true)) else { return Vec::new() };
    let mut bytes = Vec::new();
    if file.take(max_bytes).read_to_end(&mut bytes).is_err() {
        return Vec::new();
    }
    String::from_utf8_lossy(&bytes).lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

/// Every event logged in `dir`, oldest first (at most [`MAX_EVENTS`]); none when there is no log.
pub fn read(dir: &Path) -> Vec<LoggedEvent> {
    let mut events = read_generation(&dir.join(OLD_LOG_FILE), MAX_BYTES / 2);
    events.extend(read_generation(&dir.join(LOG_FILE), MAX_BYTES / 2));
    events.sort_by_key(|e| e.seq);
    let extra = events.len().saturating_sub(MAX_EVENTS);
    events.drain(..extra);
    events
}

impl EventLog {
    /// The log of `dir`, continuing the sequence of the events already there.
    pub fn open(dir: &Path) -> Self {
        Self::with_limits(dir, MAX_EVENTS, MAX_BYTES)
    }

    /// The same with other bounds (tests).
    pub fn with_limits(dir: &Path, max_events: usize, max_bytes: u64) -> Self {
        let old = read_generation(&dir.join(OLD_LOG_FILE), max_bytes / 2);
        let current = read_generation(&dir.join(LOG_FILE), max_bytes / 2);
        let next_seq = old.iter().chain(&current).map(|e| e.seq + 1).max().unwrap_or(1);
        EventLog { dir: dir.to_path_buf(), next_seq, lines: current.len(), max_events, max_bytes }
    }

    /// Appends the events of one host (`namespace/name`), logged at `time`.
    pub fn append(&mut self, host: &str, events: &[HostEvent], time: &str) -> std::io::Result<()> {
        for event in events {
            let logged = LoggedEvent {
                seq: self.next_seq,
                time: time.to_string(),
                host: host.to_string(),
                kind: match event.kind {
                    EventKind::Normal => "Normal",
                    EventKind::Warning => "Warning",
                }
                .to_string(),
                reason: event.reason.clone(),
                note: event.note.to_string(),
                state: event.to,
            };
            let mut line = serde_json::to_string(&logged).map_err(std::io::Error::other)?;
            line.push('\n');
            self.write_line(line.as_bytes())?;
            self.next_seq += 1;
        }
        Ok(())
    }

    fn write_line(&mut self, line: &[u8]) -> std::io::Result<()> {
        let path = self.dir.join(LOG_FILE);
        let open = |path: &Path| {
            open_regular(path, OpenOptions::new().read(true).append(true).create(true).mode(0o600))
        };
        let mut file = open(&path)?;
        // the size on disk counts, also what another process appended
        let size = file.metadata()?.len();
        let limit_bytes = self.max_bytes / 2;
        let limit_lines = (self.max_events / 2).max(1);
        if size > 0 && (self.lines >= limit_lines || size + line.len() as u64 > limit_bytes) {
            drop(file);
            std::fs::rename(&path, self.dir.join(OLD_LOG_FILE))?;
            self.lines = 0;
            file = open(&path)?;
        }
        // a line cut short (a process killed while writing) is ended, so that it spoils no other
        let size = file.metadata()?.len();
        let mut last = [0u8];
        if size > 0
            && std::os::unix::fs::FileExt::read_at(&file, &mut last, size - 1)? == 1
            && last[0] != b'\n'
        {
            file.write_all(b"\n")?;
        }
        file.write_all(line)?;
        self.lines += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(note: &str) -> HostEvent {
        HostEvent::new(EventKind::Normal, "ProvisioningStateChanged", note)
    }

    fn size(dir: &Path) -> u64 {
        [LOG_FILE, OLD_LOG_FILE]
            .iter()
            .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
            .map(|m| m.len())
            .sum()
    }

    #[test]
    fn the_log_stays_bounded_keeps_the_newest_and_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = EventLog::open(dir.path());
        for i in 0..2500 {
            log.append("default/h", &[event(&format!("available → provisioning {i}"))], "t").unwrap();
        }
        let events = read(dir.path());
        assert!(events.len() <= MAX_EVENTS && events.len() >= MAX_EVENTS / 2, "{}", events.len());
        assert_eq!(events.last().unwrap().note, "available → provisioning 2499");
        assert!(events.windows(2).all(|w| w[0].seq + 1 == w[1].seq), "no gap, no disorder");
        let lines = |f: &str| std::fs::read_to_string(dir.path().join(f)).unwrap().lines().count();
        assert!(lines(LOG_FILE) + lines(OLD_LOG_FILE) <= MAX_EVENTS);
        // a restart continues the sequence and keeps what was logged
        drop(log);
        let mut log = EventLog::open(dir.path());
        let provisioned =
            HostEvent::state_changed(ProvisioningState::Provisioning, ProvisioningState::Provisioned);
        log.append("default/h", &[provisioned], "t").unwrap();
        let after = read(dir.path());
        assert_eq!(after.last().unwrap().seq, 2501);
        assert!(after.iter().any(|e| e.note == "available → provisioning 2499"));
        assert_eq!(after.last().unwrap().state, Some(ProvisioningState::Provisioned));
    }

    #[test]
    fn big_notes_are_cut_and_the_bytes_stay_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = EventLog::with_limits(dir.path(), 1_000_000, 64 * 1024);
        for _ in 0..500 {
            log.append("default/h", &[event(&"x".repeat(5000))], "t").unwrap();
        }
        assert!(size(dir.path()) <= 64 * 1024, "{}", size(dir.path()));
        assert!(read(dir.path()).iter().all(|e| e.note.len() <= metalhost_core::policy::MAX_NOTE_BYTES));
    }

    #[test]
    fn a_line_cut_short_spoils_no_other() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = EventLog::open(dir.path());
        log.append("default/h", &[event("a → b")], "t").unwrap();
        // killed in the middle of a line
        let mut f = OpenOptions::new().append(true).open(dir.path().join(LOG_FILE)).unwrap();
        f.write_all(b"{\"seq\":2,\"time\":\"t\",\"ho").unwrap();
        let mut log = EventLog::open(dir.path());
        log.append("default/h", &[event("b → c")], "t").unwrap();
        let notes: Vec<_> = read(dir.path()).into_iter().map(|e| e.note).collect();
        assert_eq!(notes, ["a → b", "b → c"]);
    }

    #[test]
    fn symlinks_are_refused_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let target = outside.path().join("victim");
        std::fs::write(&target, "untouched\n").unwrap();
        std::os::unix::fs::symlink(&target, dir.path().join(LOG_FILE)).unwrap();
        let mut log = EventLog::open(dir.path());
        assert!(log.append("default/h", &[event("a → b")], "t").is_err());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "untouched\n");
        std::fs::write(
            outside.path().join("log"),
            "{\"seq\":1,\"time\":\"t\",\"host\":\"x\",\"type\":\"Normal\",\"reason\":\"R\",\"note\":\"n\"}\n",
        )
        .unwrap();
        std::os::unix::fs::symlink(outside.path().join("log"), dir.path().join(OLD_LOG_FILE)).unwrap();
        assert!(read(dir.path()).is_empty(), "a symlinked log is not read");
    }

    #[test]
    fn no_userinfo_reaches_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = EventLog::open(dir.path());
        let e = HostEvent::new(
            EventKind::Warning,
            "RegistrationError",
            "cannot reach redfish://admin:hunter2@10.0.0.1/redfish/v1",
        );
        log.append("default/h", &[e], "t").unwrap();
        let text = std::fs::read_to_string(dir.path().join(LOG_FILE)).unwrap();
        assert!(!text.contains("hunter2") && text.contains("redfish://***@10.0.0.1"), "{text}");
    }
}
