//! The Ironic provisioner: observes a host's node and carries out the state machine's actions as
//! Ironic calls. All I/O of the core crate is here.

use std::sync::Arc;

use metalhost_api::BareMetalHost;
use metalhost_ironic::{Client, ClientConfig, Node, ProvisionState, ProvisionTarget};
use serde_json::{Map, Value};
use tokio::sync::OnceCell;
use tracing::{debug, info, warn};

use crate::plan;
use crate::vocab::{Action, BmcReach, Observed, Wants};

/// Why an action or an observation failed. The message is what the host's status shows.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// Ironic could not be reached or refused the call.
    #[error(transparent)]
    Ironic(#[from] metalhost_ironic::Error),
    /// Ironic's validation of the node's settings failed.
    #[error("Ironic validation failed: {0}")]
    Validation(String),
}

impl ProvisionError {
    /// Whether retrying unchanged may succeed (Ironic down, locked or busy).
    pub fn is_transient(&self) -> bool {
        matches!(self, ProvisionError::Ironic(e) if e.is_transient())
    }
}

/// Why a DataImage's virtual media could not be read or changed. The message is what its status
/// shows.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// Ironic could not be reached or refused the call.
    #[error(transparent)]
    Provision(#[from] ProvisionError),
    /// Ironic's answer.
    #[error(transparent)]
    Ironic(#[from] metalhost_ironic::Error),
    /// Ironic shows virtual media from API 1.93 on.
    #[error("Ironic's API {0} cannot show virtual media (1.93 or newer is needed)")]
    TooOld(String),
    /// The node the host's status names has another name: it is left alone.
    #[error("the host's status names Ironic node {0}, which is not the host's: left alone")]
    NotTheHosts(String),
}

/// Interfaces that must validate before a deploy.
const MUST_VALIDATE: &[&str] = &["boot", "deploy", "power", "management"];

/// Carries out actions against one Ironic. Connects on first use and again after a failed
/// connection, so that a runtime started before Ironic keeps running and reports the outage.
#[derive(Debug, Clone)]
pub struct IronicProvisioner {
    config: ClientConfig,
    client: Arc<OnceCell<Client>>,
}

impl IronicProvisioner {
    /// Wraps a connected client.
    pub fn new(client: Client) -> Self {
        let config = ClientConfig::new(client.url());
        IronicProvisioner { config, client: Arc::new(OnceCell::new_with(Some(client))) }
    }

    /// A provisioner that connects (and negotiates the API version) when first needed.
    pub fn connect_lazily(config: ClientConfig) -> Self {
        IronicProvisioner { config, client: Arc::new(OnceCell::new()) }
    }

    /// HTTP requests sent to Ironic so far (0 before the first connection).
    pub fn request_count(&self) -> u64 {
        self.client.get().map_or(0, Client::request_count)
    }

    /// The connected client, connecting first if needed.
    pub async fn client(&self) -> Result<&Client, ProvisionError> {
        Ok(self.client.get_or_try_init(|| Client::connect(self.config.clone())).await?)
    }

    /// Looks up the host's node (by the UUID in its status, else by name) and, when asked, its
    /// ports and virtual media. A node found by UUID is the host's only if its name is the host's
    /// `namespace~name`: a stale or edited status naming another node never makes metalhost act
    /// on that node (it is reported and left alone; the host's own node is looked up by name).
    pub async fn observe(
        &self,
        host: &BareMetalHost,
        node_id: &str,
        wants: Wants,
    ) -> Result<Observed, ProvisionError> {
        let client = self.client().await?;
        let expected = plan::node_name(host);
        let mut node = None;
        if !node_id.is_empty() {
            node = client.get_node(node_id).await?;
            if let Some(n) = node.as_ref().filter(|n| n.name.as_deref() != Some(expected.as_str())) {
                warn!(
                    host = %host.qualified_name(), node = %n.uuid, name = ?n.name,
                    "the status names an Ironic node of another name; leaving it alone"
                );
                node = None;
            }
        }
        if node.is_none() && wants.by_name {
            node = client.get_node(&expected).await?;
        }
        // Ironic clears last_error on the next successful power action (its power sync does that
        // too), so a failure can lose its reason: recover it from the node's history.
        if let Some(n) = node.as_mut().filter(|n| n.is_failed() && n.last_error.is_none()) {
            let history = client.node_history(&n.uuid).await?;
            n.last_error = history.into_iter().rev().find(|e| e.severity == "ERROR").map(|e| e.event);
        }
        // ports matter only until the node is enrolled and verified
        let port_macs = match (&node, wants.ports) {
            (Some(n), true) if n.provision_state == ProvisionState::Enroll && !n.is_busy() => Some(
                client
                    .list_ports(&n.uuid)
                    .await?
                    .into_iter()
                    .map(|p| p.address.to_ascii_lowercase())
                    .collect(),
            ),
            _ => None,
        };
        // virtual media can only be read while nobody holds the node's lock
        let vmedia = match &node {
            Some(n) if wants.vmedia && n.reservation.is_none() && !n.is_busy() && client.supports(1, 93) => {
                Some(client.get_vmedia(&n.uuid).await?)
            }
            _ => None,
        };
        // what inspection found, once it is over
        let inventory = match &node {
            Some(n) if wants.inventory && n.provision_state == ProvisionState::Manageable && !n.is_busy() => {
                client.get_inventory(&n.uuid).await?
            }
            _ => None,
        };
        // the BIOS settings Ironic cached, while settings wait to be applied
        let bios = match &node {
            Some(n) if wants.bios && !n.is_busy() => Some(
                client
                    .bios_settings(&n.uuid)
                    .await?
                    .into_iter()
                    .map(|s| (s.name, s.value.unwrap_or_default()))
                    .collect(),
            ),
            _ => None,
        };
        Ok(Observed { node, port_macs, vmedia, bmc_reach: None, inventory, bios })
    }

    /// What the host's node says of its CD, for its DataImage, and whether Ironic leaves the node
    /// alone now (not busy, not locked); None when Ironic has no such node. A node of another
    /// name is never used: an error says so.
    pub async fn media_node(
        &self,
        host: &BareMetalHost,
        node_id: &str,
    ) -> Result<Option<(crate::data_image::NodeMedia, bool)>, MediaError> {
        let client = self.client().await?;
        let Some(node) = client.get_node(node_id).await? else {
            return Ok(None);
        };
        if node.name.as_deref() != Some(plan::node_name(host).as_str()) {
            return Err(MediaError::NotTheHosts(node.uuid));
        }
        let idle = node.reservation.is_none() && !node.is_busy();
        Ok(Some((crate::data_image::NodeMedia::of(&node), idle)))
    }

    /// Reads the node's virtual media into `media`: the CD as the BMC shows it, nothing while
    /// Ironic holds the node (it runs an attach or detach in the background under its lock), or
    /// why it can never be read here.
    pub async fn read_vmedia(&self, node_id: &str, media: &mut crate::data_image::NodeMedia) {
        let client = match self.client().await {
            Ok(client) => client,
            Err(_) => return,
        };
        if !client.supports(1, 93) {
            media.unusable = Some(MediaError::TooOld(client.api_version().to_string()).to_string());
            return;
        }
        match client.get_vmedia(node_id).await {
            Ok(vmedia) => media.vmedia = Some(vmedia),
            Err(e) if e.is_transient() => {}
            Err(e) => media.unusable = Some(e.to_string()),
        }
    }

    /// Attaches a DataImage's URL to the node's virtual CD, or ejects it (Ironic does both in the
    /// background, holding the node's lock).
    pub async fn media_step(
        &self,
        node_id: &str,
        step: &crate::data_image::MediaStep,
    ) -> Result<(), MediaError> {
        let client = self.client().await?;
        match step {
            crate::data_image::MediaStep::Attach(url) => {
                client.attach_vmedia(node_id, "cdrom", url, None).await?;
                info!(node = node_id, "attached the host's DataImage");
            }
            crate::data_image::MediaStep::Detach => {
                client.detach_vmedia(node_id, &["cdrom"]).await?;
                info!(node = node_id, "detached the host's DataImage");
            }
        }
        Ok(())
    }

    /// Creates the host's node. When Ironic has a node of that name already (a create whose
    /// answer was lost, a status that was lost), that node is returned instead, with `false`: the
    /// caller must then observe it rather than assume a fresh one.
    pub async fn create_node(&self, fields: &Map<String, Value>) -> Result<(Node, bool), ProvisionError> {
        let client = self.client().await?;
        match client.create_node(fields).await {
            Ok(node) => {
                info!(node = %node.uuid, name = ?node.name, "registered node in Ironic");
                Ok((node, true))
            }
            Err(e) if e.status() == Some(409) => {
                let name = fields.get("name").and_then(Value::as_str).unwrap_or_default();
                match client.get_node(name).await? {
                    Some(node) if !name.is_empty() => {
                        info!(node = %node.uuid, name, "found the node registered before");
                        Ok((node, false))
                    }
                    _ => Err(e.into()),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Carries out one action. Returns the node when the action created or changed it.
    pub async fn execute(
        &self,
        action: &Action,
        node: Option<&Node>,
    ) -> Result<Option<Node>, ProvisionError> {
        let id = node.map(|n| n.uuid.as_str()).unwrap_or_default();
        if matches!(action, Action::None | Action::Forget) {
            return Ok(None);
        }
        let client = self.client().await?;
        match action {
            Action::None | Action::Forget => Ok(None),
            Action::CreateNode(fields) => Ok(Some(self.create_node(fields).await?.0)),
            Action::CreatePort(mac) => {
                client.create_port(id, mac).await?;
                Ok(None)
            }
            Action::Patch(patch) => Ok(Some(client.patch_node(id, patch).await?)),
            Action::Provision(target) => {
                client.set_provision_state(id, *target, None).await?;
                Ok(None)
            }
            Action::Reverify(patch) => {
                if !patch.0.is_empty() {
                    client.patch_node(id, patch).await?;
                }
                client.set_provision_state(id, ProvisionTarget::Manage, None).await?;
                info!(node = id, "registration tried again");
                Ok(None)
            }
            Action::Deploy(patch, configdrive) => {
                if !patch.0.is_empty() {
                    client.patch_node(id, patch).await?;
                }
                let report = client.validate(id).await?;
                let failures: Vec<String> = MUST_VALIDATE
                    .iter()
                    .filter_map(|iface| {
                        let entry = report.get(*iface)?;
                        (entry.get("result") == Some(&Value::Bool(false))).then(|| {
                            let reason =
                                entry.get("reason").and_then(Value::as_str).unwrap_or("no reason given");
                            format!("{iface}: {reason}")
                        })
                    })
                    .collect();
                if !failures.is_empty() {
                    return Err(ProvisionError::Validation(failures.join("; ")));
                }
                client.set_provision_state(id, ProvisionTarget::Active, configdrive.as_ref()).await?;
                debug!(node = id, config_drive = configdrive.is_some(), "deploy requested");
                Ok(None)
            }
            Action::EjectMedia => {
                client.detach_vmedia(id, &["cdrom"]).await?;
                info!(node = id, "ejected the live ISO");
                Ok(None)
            }
            Action::InsertMedia { url, download_source } => {
                client.attach_vmedia(id, "cdrom", url, *download_source).await?;
                info!(node = id, "inserted the live ISO");
                Ok(None)
            }
            Action::Power(target) => {
                client.set_power_state(id, *target).await?;
                Ok(None)
            }
            Action::Clean { steps, disable_ramdisk } => {
                client.clean(id, steps, *disable_ramdisk).await?;
                info!(node = id, "manual cleaning started (BIOS settings)");
                Ok(None)
            }
            Action::DeleteNode => {
                let deletable = node.is_none_or(|n| {
                    use ProvisionState::*;
                    n.maintenance
                        || matches!(n.provision_state, Available | Manageable | Enroll | AdoptFailed)
                });
                if !deletable {
                    // Ironic deletes nodes in other states (adopted, active) only in maintenance
                    client.patch_node(id, &plan::maintenance_patch(true)).await?;
                }
                client.delete_node(id).await?;
                info!(node = id, "deleted node from Ironic");
                Ok(None)
            }
        }
    }
}

/// How long metalhost waits for the BMC's port to take a connection (name lookup included).
const REACH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// Opens a TCP connection to the BMC and closes it at once (nothing is sent): a refusal is told
/// while Ironic is still retrying. A time-out or a name that does not resolve concludes nothing
/// (the network may differ from Ironic's).
pub async fn reach(host: &str, port: u16) -> BmcReach {
    match tokio::time::timeout(REACH_TIMEOUT, tokio::net::TcpStream::connect((host, port))).await {
        Ok(Ok(_)) => BmcReach::Accepts,
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => BmcReach::Refuses,
        Ok(Err(_)) | Err(_) => BmcReach::Unknown,
    }
}
