//! The core of metalhost: it owns host policy. Runtimes hand it one resolved [`HostInput`] per
//! reconcile and store what comes out ([`Outcome`]); everything between is here and, but for the
//! provisioner's Ironic calls, pure. See docs/architecture.md.
//!
//! - [`input`]: the one input record, resolved once from the manifest and its Secrets;
//! - [`policy`]: paused, detached, credentials, what to observe, when to look again, events;
//! - [`machine`]: the state machine (pure): status + node → new status + one action;
//! - [`plan`]: the Ironic node fields and patches (pure; the live-ISO rules);
//! - [`data_image`]: a host's DataImage attached to its virtual CD (pure; upstream's status);
//! - [`firmware`]: HostFirmwareSettings' status judged from Ironic's BIOS (pure; upstream's rules);
//! - [`hardware`]: Ironic's inventory as `status.hardware` (pure; upstream's mapping);
//! - [`provisioner`]: observes the node and carries out actions (the only I/O);
//! - [`reconcile`]: glues them into one step.

pub mod chain;
pub mod data_image;
pub mod error;
pub mod firmware;
pub mod hardware;
pub mod input;
pub mod machine;
pub mod plan;
pub mod policy;
pub mod presence;
pub mod provisioner;
pub mod reconcile;
pub mod vocab;

pub use chain::Outcome;
pub use error::{DecideError, HostError};
pub use input::{Bmc, BmcProblem, ConfigDriveError, HostInput, SecretSource, SecretUse, secrets_needed};
pub use machine::{Decision, Input};
pub use policy::{EventKind, HostEvent, Schedule, unknown_state_event};
pub use provisioner::{IronicProvisioner, MediaError, ProvisionError};
pub use reconcile::Reconciler;
pub use vocab::{Action, ActionKind, Observed, Requeue, Wants};
