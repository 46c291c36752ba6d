//! The loopback lab for tests and benchmarks: a real Ironic, a real Redfish BMC emulator
//! (sushy-tools, fake driver) and HTTP servers, started by the repo's `scripts/lab` on free
//! 127.0.0.1 ports and stopped (by PID) when the [`Lab`] is dropped. Also [`KubeLab`], a real
//! Kubernetes control plane (`scripts/kube`: etcd, kube-apiserver, kube-controller-manager) for
//! the Kubernetes runtime, and [`FaultProxy`], a TCP proxy that plays a failing network in front
//! of it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use serde::Deserialize;

pub mod bmo;
mod fault_proxy;
mod kube_lab;
pub mod process;
mod service_router;
pub mod support;
pub use bmo::{BMO_USER, BmoBuild};
pub use fault_proxy::FaultProxy;
pub use kube_lab::{
    CONTROLLER_USER, Credential, KubeLab, KubeLabInfo, PatchType, RequestRecord, Response, USER_AGENT,
    WatchStream,
};
pub use process::Metalhost;
pub use service_router::ServiceRouter;

/// One emulated server of the Redfish BMC.
#[derive(Debug, Clone, Deserialize)]
pub struct System {
    /// Its name in sushy-tools.
    pub name: String,
    /// Its Redfish system UUID.
    pub uuid: String,
    /// Its NIC's MAC address.
    pub mac: String,
    /// A real machine's serial console (a file the VM writes), in a lab started with VMs.
    #[serde(default)]
    pub console: Option<PathBuf>,
    /// A real machine's libvirt domain name, in a lab started with VMs.
    #[serde(default)]
    pub domain: Option<String>,
}

/// Where the lab's services listen, as `scripts/lab start` prints it.
#[derive(Debug, Clone, Deserialize)]
pub struct LabInfo {
    /// The lab's scratch directory.
    pub dir: PathBuf,
    /// Ironic API.
    pub ironic_url: String,
    /// sushy-tools Redfish root.
    pub sushy_url: String,
    /// A small real ISO9660 image.
    pub iso_url: String,
    /// The server holding the ISO (files in `iso_dir` are served here).
    pub iso_base_url: String,
    /// Directory served at `iso_base_url`.
    pub iso_dir: PathBuf,
    /// Ironic's http_root server (where the conductor stages ISOs for BMCs).
    pub httpboot_url: String,
    /// A stand-in agent kernel URL.
    pub deploy_kernel_url: String,
    /// A stand-in agent ramdisk URL.
    pub deploy_ramdisk_url: String,
    /// The emulated servers.
    pub systems: Vec<System>,
    /// In a lab started with VMs: the bootable live ISOs by file name (`live.iso`, `live-2.iso`),
    /// whose boot prints `metalhost-live-iso: booted NAME` on the serial console.
    #[serde(default)]
    pub live_isos: std::collections::BTreeMap<String, String>,
    /// In a lab started with VMs: a kernel and an initramfs whose boot prints
    /// `metalhost-live-iso: booted live-kernel` (for `format: live-kernel`).
    #[serde(default)]
    pub live_kernel: Option<String>,
    /// Its initramfs.
    #[serde(default)]
    pub live_initramfs: Option<String>,
    /// With `start_secure`: the CA that signed Ironic's certificate.
    #[serde(default)]
    pub ironic_ca_file: Option<PathBuf>,
    /// With `start_secure`: Ironic's HTTP basic auth user.
    #[serde(default)]
    pub ironic_user: Option<String>,
    /// With `start_secure`: its password.
    #[serde(default)]
    pub ironic_password: Option<String>,
    /// With `start_with_bmc_auth`: the user the BMC emulator accepts.
    #[serde(default)]
    pub bmc_user: Option<String>,
    /// With `start_with_bmc_auth`: its password.
    #[serde(default)]
    pub bmc_password: Option<String>,
}

/// A running lab; dropped, it stops every process it started.
#[derive(Debug)]
pub struct Lab {
    /// Where things are.
    pub info: LabInfo,
}

/// Runs `scripts/NAME start DIR ARGS` in a fresh directory under the temporary directory and
/// reads what it printed (the started lab's description, JSON); panics with its output if it
/// failed.
pub(crate) fn start_script<T: serde::de::DeserializeOwned>(name: &str, args: &[&str]) -> T {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("metalhost-{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = Command::new(repo_root().join("scripts").join(name))
        .arg("start")
        .arg(&dir)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run scripts/{name}: {e}"));
    assert!(
        out.status.success(),
        "scripts/{name} start failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("scripts/{name}'s description: {e}"))
}

/// The repository root (where `scripts/lab` is).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repo root")
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl Lab {
    /// Starts a lab with `systems` emulated servers. Panics with the lab's own message when it
    /// cannot start (this is test set-up).
    pub fn start(systems: usize) -> Lab {
        Self::start_with(systems, &[])
    }

    /// Starts a lab whose Ironic serves HTTPS (a fresh CA) and requires HTTP basic auth.
    pub fn start_secure(systems: usize) -> Lab {
        Self::start_with(systems, &["--secure"])
    }

    /// Starts a lab whose BMC emulator requires HTTP basic auth (user and password in the info):
    /// a wrong password is refused as a real BMC refuses it.
    pub fn start_with_bmc_auth(systems: usize) -> Lab {
        Self::start_with(systems, &["--bmc-auth"])
    }

    /// Starts a lab whose servers are `vms` real libvirt/QEMU machines behind sushy-tools' libvirt
    /// driver (`scripts/lab start --vms`, docs/vm-lab.md): they boot what they are given.
    pub fn start_vms(vms: usize) -> Lab {
        let vms = vms.to_string();
        Lab { info: start_script("lab", &["--vms", vms.as_str()]) }
    }

    /// Waits until the serial console of VM `i` has a complete line containing `needle` after
    /// byte `from`; returns the line and the offset just past it (where the next wait starts), or
    /// None after `timeout`.
    pub fn wait_console(
        &self,
        i: usize,
        needle: &str,
        from: u64,
        timeout: std::time::Duration,
    ) -> Option<(String, u64)> {
        let path = self.info.systems[i].console.as_ref().expect("a VM lab");
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let text = std::fs::read(path).unwrap_or_default();
            let mut at = (from as usize).min(text.len());
            // complete lines only: the machine may be writing the last one
            while let Some(end) = text[at..].iter().position(|b| *b == b'\n').map(|n| at + n) {
                let line = String::from_utf8_lossy(&text[at..end]).into_owned();
                at = end + 1;
                if line.contains(needle) {
                    return Some((line, at as u64));
                }
            }
            if std::time::Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
    }

    /// The length of VM `i`'s serial console now (where the next boot's lines start).
    pub fn console_len(&self, i: usize) -> u64 {
        let path = self.info.systems[i].console.as_ref().expect("a VM lab");
        std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
    }

    /// What `virsh domblklist --details` shows for VM `i` (its disks and removable media), as
    /// the domain is defined: sushy-tools' libvirt driver changes the definition, which the
    /// running machine takes at its next start.
    pub fn vm_media(&self, i: usize) -> String {
        let domain = self.info.systems[i].domain.as_ref().expect("a VM lab");
        let out = Command::new("virsh")
            .args(["-q", "-c", "qemu:///system", "domblklist", "--details", "--inactive", domain])
            .output()
            .expect("run virsh");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn start_with(systems: usize, flags: &[&str]) -> Lab {
        let systems = systems.to_string();
        let mut args = vec!["--systems", systems.as_str()];
        args.extend_from_slice(flags);
        Lab { info: start_script("lab", &args) }
    }

    /// The Redfish address of system `i` as a BareMetalHost BMC address with this scheme.
    pub fn bmc_address(&self, scheme: &str, i: usize) -> String {
        let host = self.info.sushy_url.trim_start_matches("http://");
        format!("{scheme}+http://{host}/redfish/v1/Systems/{}", self.info.systems[i].uuid)
    }
}

impl Lab {
    fn lab(&self, command: &str) {
        let status = Command::new(repo_root().join("scripts/lab")).arg(command).arg(&self.info.dir).status();
        assert!(status.is_ok_and(|s| s.success()), "scripts/lab {command} failed");
    }

    /// Kills Ironic (SIGKILL): an outage.
    pub fn stop_ironic(&self) {
        self.lab("ironic-stop");
    }

    /// Starts Ironic again on the same port and database; returns once it serves.
    pub fn start_ironic(&self) {
        self.lab("ironic-start");
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = Command::new(repo_root().join("scripts/lab")).arg("stop").arg(&self.info.dir).status();
        if std::env::var_os("METALHOST_KEEP_LAB").is_none() {
            let _ = std::fs::remove_dir_all(&self.info.dir);
        }
    }
}
