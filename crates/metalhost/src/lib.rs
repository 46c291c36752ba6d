//! The `metalhost` runtimes and CLI pieces. The standalone runtime reconciles a directory of
//! manifests against Ironic and writes each host's status beside it.

pub mod bmc;
pub mod config_drive;
pub mod k8s;
pub mod manifests;
pub mod metrics;
pub mod progress;
pub mod runtime;
pub mod settings;
pub mod store;
pub mod validate;
pub mod webhook;
