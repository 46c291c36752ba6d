//! The host state machine and its Ironic provisioner.
//!
//! Data flows one way: a validated `BareMetalHost` and the observed Ironic node go into the pure
//! [`machine::decide`], which returns the new status and one [`machine::Action`]; the
//! [`provisioner`] turns the action into Ironic calls. [`reconcile`] glues the two for runtimes.

pub mod machine;
pub mod plan;
pub mod provisioner;
pub mod reconcile;

pub use machine::{Action, Decision, Input, Observed, Requeue};
pub use provisioner::{IronicProvisioner, ProvisionError};
pub use reconcile::{BmcInput, Outcome, Reconciler, Request};
