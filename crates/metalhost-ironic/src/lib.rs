//! A typed async client for the OpenStack Ironic REST API: microversion negotiation, nodes, ports,
//! JSON-patch updates, validation, provision and power state changes, and virtual media.
//!
//! Errors keep what Ironic said (the HTTP status and its `faultstring`), so that a host's status can
//! name the cause; a node's own `last_error` is in [`Node::last_error`].

mod client;
mod config_file;
mod error;
mod types;

pub use client::{
    Client, ClientConfig, MAX_API_VERSION, MAX_RESPONSE_BYTES, MIN_API_VERSION, RequestObserver, base_url,
    endpoint, split_userinfo,
};
pub use config_file::{MAX_CONFIG_FILE_BYTES, read_config_file};
pub use error::{Error, MAX_ERROR_CHARS};
pub use json_patch::Patch;
pub use types::*;
