//! The Ironic node of a host, for `metalhost describe`: the node the status names, but only if
//! its name is the host's (`namespace~name`), as the provisioner decides (docs/architecture.md §2);
//! else the node of that name.

use metalhost_api::BareMetalHost;
use metalhost_ironic::{Client, ClientConfig, Node};

/// What Ironic says about a host.
#[derive(Debug)]
pub enum NodeView {
    /// No Ironic URL given or configured.
    NotAsked,
    /// Ironic could not be asked (the error has no secret: the client never shows credentials).
    Unreachable(String),
    /// Ironic has no node of the host's.
    NoNode {
        /// A node the status names that is not the host's (ignored), if any.
        foreign: Option<String>,
    },
    /// The host's node.
    Node(Box<Node>),
}

/// The name a host's node has in Ironic.
pub fn node_name(host: &BareMetalHost) -> String {
    format!("{}~{}", host.namespace_or_default(), host.metadata.name.as_deref().unwrap_or(""))
}

/// Looks the host's node up in Ironic.
pub async fn lookup(config: ClientConfig, host: &BareMetalHost) -> NodeView {
    let client = match Client::connect(config).await {
        Ok(c) => c,
        Err(e) => return NodeView::Unreachable(metalhost_api::redact::redact_url_userinfo(&e.to_string())),
    };
    let name = node_name(host);
    let id = host.status.as_ref().map(|s| s.provisioning.id.clone()).unwrap_or_default();
    let mut foreign = None;
    if !id.is_empty() {
        match client.get_node(&id).await {
            Ok(Some(node)) if node.name.as_deref() == Some(name.as_str()) => {
                return NodeView::Node(Box::new(node));
            }
            Ok(Some(_)) => foreign = Some(id),
            Ok(None) => {}
            Err(e) => {
                return NodeView::Unreachable(metalhost_api::redact::redact_url_userinfo(&e.to_string()));
            }
        }
    }
    match client.get_node(&name).await {
        Ok(Some(node)) if node.name.as_deref() == Some(name.as_str()) => NodeView::Node(Box::new(node)),
        Ok(_) => NodeView::NoNode { foreign },
        Err(e) => NodeView::Unreachable(metalhost_api::redact::redact_url_userinfo(&e.to_string())),
    }
}
