//! Leader election through a Lease (`run --kube --leader-elect`): only the replica holding the
//! Lease reconciles, and it stops on its own when it can no longer confirm that it holds it,
//! well before another replica may take over.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder, LeaseManagerError};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::stop::Stop;

/// The leader Lease's name.
pub const LEASE_NAME: &str = "metalhost-leader";
/// How long a lease lasts.
const LEASE_SECONDS: u64 = 30;
/// How long a leader may go without confirming its Lease before it stops reconciling.
const RENEW_DEADLINE: Duration = Duration::from_secs(20);
/// How long the Lease's release may take when leadership ends.
const RELEASE_WAIT: Duration = Duration::from_secs(5);

/// Why a leader stopped reconciling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StopReason {
    /// Asked to (SIGTERM, SIGINT): a normal end.
    #[error("shutdown")]
    Shutdown,
    /// Another replica holds the Lease.
    #[error("lost leadership")]
    LostLeadership,
    /// The Lease's renewal could not be confirmed within the deadline.
    #[error("lease renewal not confirmed")]
    RenewalNotConfirmed,
}

/// Why leader election could not go on.
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    /// The Lease manager could not start.
    #[error("leader election: {0}")]
    Start(#[from] LeaseManagerError),
    /// The Lease manager ended while waiting to lead.
    #[error("leader election stopped")]
    Stopped,
}

type LeaseTask = JoinHandle<Result<LeaseManager, LeaseManagerError>>;

/// This replica leads: it holds the Lease until [`Leadership::lead`] ends.
pub struct Leadership {
    client: kube::Client,
    namespace: String,
    identity: String,
    leader: watch::Receiver<bool>,
    task: LeaseTask,
}

impl Leadership {
    /// Waits until this replica leads (`Ok(None)`: stopped first). The identity is `$POD_NAME`,
    /// else `metalhost-<pid>`.
    pub async fn acquire(
        client: kube::Client,
        namespace: String,
        stop: &mut Stop,
    ) -> Result<Option<Self>, LeaderError> {
        let identity =
            std::env::var("POD_NAME").unwrap_or_else(|_| format!("metalhost-{}", std::process::id()));
        let manager = LeaseManagerBuilder::new(client.clone(), LEASE_NAME)
            .with_namespace(namespace.clone())
            .with_identity(identity.clone())
            .with_duration(LEASE_SECONDS)
            .with_grace(5)
            .build()
            .await?;
        let (mut leader, task) = manager.watch().await;
        tracing::info!("waiting to become the leader");
        while !*leader.borrow_and_update() {
            tokio::select! {
                changed = leader.changed() => changed.map_err(|_| LeaderError::Stopped)?,
                () = stop.requested() => {
                    drop(leader);
                    let _ = tokio::time::timeout(RELEASE_WAIT, task).await;
                    return Ok(None);
                }
            }
        }
        tracing::info!("leading");
        Ok(Some(Leadership { client, namespace, identity, leader, task }))
    }

    /// Runs `reconcile` (handed the future that says when to stop) while leading: until `stop`,
    /// the loss of the Lease, or a renewal not confirmed in time. Then gives the Lease back at
    /// once, so that another replica leads without waiting for it to expire.
    pub async fn lead<R>(self, mut stop: Stop, reconcile: impl FnOnce(StopSignal) -> R) -> StopReason
    where
        R: Future<Output = ()>,
    {
        let Leadership { client, namespace, identity, mut leader, task } = self;
        let (reason_tx, reason_rx) = tokio::sync::oneshot::channel();
        let watchdog = tokio::spawn(async move {
            let reason = tokio::select! {
                () = stop.requested() => StopReason::Shutdown,
                _ = async { while leader.changed().await.is_ok() && *leader.borrow() {} } => StopReason::LostLeadership,
                () = renewal_unconfirmed(client, namespace, identity) => StopReason::RenewalNotConfirmed,
            };
            let _ = reason_tx.send(reason);
            leader
        });
        let (seen_tx, seen_rx) = tokio::sync::oneshot::channel();
        reconcile(Box::pin(async move {
            let _ = seen_tx.send(reason_rx.await.unwrap_or(StopReason::Shutdown));
        }))
        .await;
        let reason = seen_rx.await.unwrap_or(StopReason::Shutdown);
        if let Ok(leader) = watchdog.await {
            drop(leader);
        }
        match tokio::time::timeout(RELEASE_WAIT, task).await {
            Ok(Ok(Ok(_))) => tracing::info!("leader Lease released"),
            _ => tracing::warn!("could not release the leader Lease; it expires on its own"),
        }
        reason
    }
}

/// The future a reconcile loop is handed: it resolves when the loop must stop.
pub type StopSignal = std::pin::Pin<Box<dyn Future<Output = ()> + Send + Sync>>;

/// Confirms, every few seconds, that this replica still holds the Lease (holder and a renewal
/// within the deadline). Returns when it cannot confirm it within [`RENEW_DEADLINE`]: a leader
/// whose renewals fail must stop before another replica may take over.
async fn renewal_unconfirmed(client: kube::Client, namespace: String, identity: String) {
    let api: kube::Api<Lease> = kube::Api::namespaced(client, &namespace);
    let mut confirmed = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let holds = match api.get_opt(LEASE_NAME).await {
            Ok(Some(lease)) => lease.spec.as_ref().is_some_and(|spec| {
                spec.holder_identity.as_deref() == Some(identity.as_str())
                    && spec.renew_time.as_ref().is_some_and(|t| {
                        let age = k8s_openapi::jiff::Timestamp::now().duration_since(t.0);
                        age.as_secs() < i64::try_from(RENEW_DEADLINE.as_secs()).unwrap_or(i64::MAX)
                    })
            }),
            Ok(None) => false,
            Err(e) => {
                tracing::warn!("cannot read the leader Lease: {e}");
                false
            }
        };
        if holds {
            confirmed = Instant::now();
        } else if confirmed.elapsed() >= RENEW_DEADLINE {
            return;
        }
    }
}
