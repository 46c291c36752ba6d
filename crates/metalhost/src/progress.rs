//! Progress output: one line per state change or error, and on a terminal a spinner per host
//! showing where it is.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::standalone::Change;
use metalhost_api::text::terminal_safe;

/// Shows hosts' progress on the terminal (spinners) or as plain lines when output is not one.
pub struct Progress {
    bars: Option<(MultiProgress, BTreeMap<String, ProgressBar>)>,
    /// The fleet's one-line summary: its bar on a terminal, and the last line shown.
    summary: (Option<ProgressBar>, String),
    /// The last error shown for each host (not shown twice).
    errors: BTreeMap<String, String>,
}

impl Progress {
    /// Spinners when stderr is a terminal, plain lines otherwise.
    pub fn new() -> Self {
        let bars = std::io::stderr().is_terminal().then(|| (MultiProgress::new(), BTreeMap::new()));
        Progress { bars, summary: (None, String::new()), errors: BTreeMap::new() }
    }

    /// The line printed for a change (control characters from a manifest or Ironic escaped).
    pub fn line(change: &Change) -> String {
        let line = match &change.error {
            Some(error) => format!("{}: {} — {error}", change.key, change.to),
            None if change.from == change.to => format!("{}: {} ({})", change.key, change.to, change.action),
            None => format!("{}: {} → {}", change.key, change.from, change.to),
        };
        terminal_safe(&line).into_owned()
    }

    /// Reports one change.
    pub fn change(&mut self, change: &Change) {
        let line = Self::line(change);
        if let Some(error) = &change.error {
            self.errors.insert(change.key.clone(), error.clone());
        }
        let Some((multi, bars)) = &mut self.bars else {
            println!("{line}");
            return;
        };
        let bar = bars.entry(change.key.clone()).or_insert_with(|| {
            let bar = multi.add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix:.bold} {wide_msg} [{elapsed}]")
                    .expect("valid template"),
            );
            bar.set_prefix(terminal_safe(&change.key).into_owned());
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        bar.set_message(change.to.to_string());
        let _ = multi.println(line);
    }

    /// Shows the fleet's one-line summary (`12 hosts: 10 provisioned, 2 provisioning`): refreshed in
    /// place on a terminal, printed as a line only when it changes otherwise.
    pub fn summary(&mut self, line: String) {
        if self.summary.1 == line {
            return;
        }
        match &self.bars {
            Some((multi, _)) => {
                let bar = self.summary.0.get_or_insert_with(|| {
                    let bar = multi.insert(0, ProgressBar::new_spinner());
                    bar.set_style(ProgressStyle::with_template("{msg:.bold}").expect("valid template"));
                    bar
                });
                bar.set_message(line.clone());
            }
            None => println!("{line}"),
        }
        self.summary.1 = line;
    }

    /// Whether this error (`kind: message`, as a change carries it) was the last one shown for
    /// the host.
    pub fn shown(&self, key: &str, error: &str) -> bool {
        self.errors.get(key).is_some_and(|shown| shown == error)
    }

    /// Marks a host as finished, with a last word.
    pub fn finish(&mut self, key: &str, message: String) {
        let message = terminal_safe(&message).into_owned();
        let key = &*terminal_safe(key);
        match &mut self.bars {
            Some((_, bars)) => match bars.get(key) {
                Some(bar) => bar.finish_with_message(message),
                None => eprintln!("{key}: {message}"),
            },
            None => println!("{key}: {message}"),
        }
    }
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}
