//! Typed errors of a host, as they cross from the core to the runtimes. The status shows their
//! text (`errorMessage`); runtimes and tests match on the variants. See docs/architecture.md.

use std::sync::Arc;

use metalhost_api::extensions::ExtensionError;
use metalhost_api::{ImageError, STATUS_ANNOTATION};

use crate::input::{BmcProblem, ConfigDriveError};
use crate::provisioner::ProvisionError;
use crate::vocab::ActionKind;

/// Why the state machine could not go on with a host (input problems and failures Ironic
/// reported on the node).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecideError {
    /// The BMC address or its credentials are unusable.
    #[error(transparent)]
    Bmc(#[from] BmcProblem),
    /// A registered host lost its `spec.bmc`.
    #[error("spec.bmc: required to manage the host")]
    BmcRequired,
    /// The image section breaks an image rule.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// An extension annotation is unusable.
    #[error(transparent)]
    Extension(#[from] ExtensionError),
    /// The config drive cannot be built.
    #[error(transparent)]
    ConfigDrive(#[from] ConfigDriveError),
    /// The config drive extension is on but no drive was resolved (a runtime bug).
    #[error("config drive requested but not built")]
    ConfigDriveMissing,
    /// The status annotation does not hold a status (the parser's reason).
    #[error("metadata.annotations[{STATUS_ANNOTATION}]: not a valid status: {0}")]
    StatusAnnotation(String),
    /// Ironic could not verify the BMC (manage failed), with Ironic's reason.
    #[error("Failed to manage the node: {0}")]
    ManageFailed(String),
    /// An Ironic operation on the node failed, with Ironic's reason.
    #[error("{operation} failed: {reason}")]
    OperationFailed {
        /// What failed (`provisioning`, `inspection`, …).
        operation: String,
        /// Ironic's `last_error`.
        reason: String,
    },
}

/// Why a reconcile of a host did not go as planned.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HostError {
    /// The state machine stopped at a problem of the input or of the node.
    #[error(transparent)]
    Decided(#[from] DecideError),
    /// Ironic could not be asked about the node.
    #[error(transparent)]
    Observe(Arc<ProvisionError>),
    /// An Ironic call that carries out a step failed.
    #[error("{action}: {source}")]
    Action {
        /// The step.
        action: ActionKind,
        /// Why.
        source: Arc<ProvisionError>,
    },
}

impl HostError {
    /// Whether retrying unchanged may succeed (Ironic down, locked or busy).
    pub fn is_transient(&self) -> bool {
        match self {
            HostError::Decided(_) => false,
            HostError::Observe(e) | HostError::Action { source: e, .. } => e.is_transient(),
        }
    }
}
