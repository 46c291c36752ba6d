//! Stopping a long-running command (`run`, `run --kube`, `get -w`) on SIGTERM or SIGINT.
//! The signals are listened for once, from the command's start to its end: listeners made anew at
//! each wait lost a signal that came while the command was busy between two waits (a pass over
//! 10,000 hosts), and the command went on for minutes.

use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};

/// How long the standalone commands may take to reach their next wait after a signal before the
/// process ends anyway (every write metalhost makes is atomic, so nothing is left half-written).
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// The same for the Kubernetes runtime, which first lets the reconciles under way finish and then
/// gives its Lease back: under the 30 s a pod is given to stop.
pub const KUBE_STOP_GRACE: Duration = Duration::from_secs(25);

/// The exit status of a process ended by the grace running out (128 + SIGTERM), so that it is not
/// taken for a clean stop.
pub const FORCED_EXIT: i32 = 143;

/// A request to stop, once a signal came.
pub struct Stop(tokio::sync::watch::Receiver<bool>);

impl Stop {
    /// Listens for SIGTERM and SIGINT from now on. The command stops at its next wait; if it is
    /// still busy `grace` after the signal, the process ends with [`FORCED_EXIT`].
    pub fn listen(grace: Duration) -> Stop {
        let (tx, rx) = tokio::sync::watch::channel(false);
        let mut term = signal(SignalKind::terminate()).expect("signal handler");
        let mut interrupt = signal(SignalKind::interrupt()).expect("signal handler");
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = interrupt.recv() => {}
            }
            let _ = tx.send(true);
            tokio::time::sleep(grace).await;
            tracing::warn!("still busy {} s after the signal: stopping now", grace.as_secs());
            std::process::exit(FORCED_EXIT);
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
        let mut stop = Stop::listen(STOP_GRACE);
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
