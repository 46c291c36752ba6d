//! The `metalhost` runtimes and CLI pieces. Both runtimes are storage adapters around the core
//! (docs/architecture.md): [`standalone`] keeps hosts in a directory of manifests with status files
//! beside them, [`kube`] in a Kubernetes cluster. Shared: metrics, the webhook, validation, progress
//! output.

pub mod fleet;
pub mod kube;
pub mod listen;
pub mod metrics;
pub mod progress;
pub mod serve;
pub mod settings;
pub mod standalone;
pub mod stop;
pub mod validate;
pub mod webhook;
