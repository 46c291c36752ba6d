//! Stopping a long-running command (`run`, `run --kube`, `get -w`) on SIGTERM or SIGINT.
//! The signals are listened for once, from the command's start to its end: listeners made anew at
//! each wait lost a signal that came while the command was busy between two waits (a pass over
//! 10,000 hosts), and the command went on for minutes.

use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};

/// How long a command asked to stop may take to reach its next wait before the process ends
/// anyway (every write metalhost makes is atomic, so nothing is left half-written).
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// A request to stop, once a signal came.
pub struct Stop(tokio::sync::watch::Receiver<bool>);

impl Stop {
    /// Listens for SIGTERM and SIGINT from now on. The command stops at its next wait; if it is
    /// still busy [`STOP_GRACE`] after the signal, the process ends.
    pub fn listen() -> Stop {
        let (tx, rx) = tokio::sync::watch::channel(false);
        let mut term = signal(SignalKind::terminate()).expect("signal handler");
        let mut interrupt = signal(SignalKind::interrupt()).expect("signal handler");
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = interrupt.recv() => {}
            }
            let _ = tx.send(true);
            tokio::time::sleep(STOP_GRACE).await;
            tracing::warn!("still busy {} s after the signal: stopping now", STOP_GRACE.as_secs());
            std::process::exit(0);
        });
        Stop(rx)
    }

    /// Returns once a signal has come (at once if one came already).
    pub async fn requested(&mut self) {
        let _ = self.0.wait_for(|stop| *stop).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A signal that comes while nobody waits for it (the command busy) is not lost: the next
    /// wait returns at once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_signal_that_comes_while_busy_is_seen_at_the_next_wait() {
        let mut stop = Stop::listen();
        let status = std::process::Command::new("kill")
            .args(["-INT", &std::process::id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        // busy, not waiting
        std::thread::sleep(Duration::from_millis(300));
        tokio::time::timeout(Duration::from_secs(1), stop.requested()).await.expect("the signal was kept");
    }
}
