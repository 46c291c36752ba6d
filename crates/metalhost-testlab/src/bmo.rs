//! Upstream's baremetal-operator (BMO) beside metalhost: built from its Go module by
//! `scripts/bmo` (lab/bmo/go.mod pins the version), run as a process outside a cluster as its
//! `make run` does, with the same environment metalhost reads (`IRONIC_ENDPOINT`,
//! `DEPLOY_KERNEL_URL`, `DEPLOY_RAMDISK_URL`). The side-by-side benchmark and the node comparison
//! test use it; it is never part of metalhost.

use std::path::PathBuf;
use std::process::Command;

use serde::Deserialize;

use crate::process::{self, Metalhost};
use crate::{Credential, KubeLab, repo_root};

/// The user name BMO's ServiceAccount acts as (bound to cluster-admin: its own RBAC is not what
/// is compared).
pub const BMO_USER: &str = "system:serviceaccount:bmo-system:bmo-controller";

const BMO_RBAC: &str = "\
apiVersion: v1
kind: Namespace
metadata: {name: bmo-system}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: bmo-controller, namespace: bmo-system}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: bmo-controller}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects: [{kind: ServiceAccount, name: bmo-controller, namespace: bmo-system}]
";

/// What `scripts/bmo build` made.
#[derive(Debug, Clone, Deserialize)]
pub struct BmoBuild {
    /// BMO's manager binary.
    pub manager: PathBuf,
    /// Its CRDs (the module's config/base/crds/bases).
    pub crds: PathBuf,
    /// Its release (`v0.13.2`).
    pub version: String,
}

impl BmoBuild {
    /// Builds BMO once (Go's caches make later calls instant); panics with the script's output
    /// when it cannot (this is test set-up).
    pub fn get() -> BmoBuild {
        let out = Command::new(repo_root().join("scripts/bmo"))
            .arg("build")
            .output()
            .unwrap_or_else(|e| panic!("run scripts/bmo: {e}"));
        assert!(out.status.success(), "scripts/bmo build failed:\n{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("scripts/bmo's description")
    }

    /// A control plane with BMO's CRDs (all of them: its controllers watch each kind) and its
    /// ServiceAccount.
    pub fn control_plane(&self) -> KubeLab {
        let kube = KubeLab::start_bare(&[]);
        kube.install_crds(&[self.crds.to_string_lossy().as_ref()]);
        kube.apply_yaml(BMO_RBAC);
        kube
    }

    /// Starts BMO against `kube` and the Ironic at `ironic_url` (its root: `/v1/` is added as
    /// BMO wants it), its log in the control plane's directory as `NAME.log`.
    pub fn start(&self, kube: &KubeLab, ironic_url: &str, deploy: [&str; 2], name: &str) -> Metalhost {
        let credential = self.credential(kube, name);
        let health = format!("127.0.0.1:{}", free_port());
        let mut cmd = process::command(&self.manager);
        cmd.args(["-dev", "-webhook-port=0", "-metrics-addr=0", &format!("-health-addr={health}")])
            .envs(operator_env(&credential, ironic_url, deploy));
        Metalhost::spawn(cmd, &kube.info.dir.join(format!("{name}.log")))
    }

    /// A kubeconfig of BMO's ServiceAccount.
    pub fn credential(&self, kube: &KubeLab, name: &str) -> Credential {
        kube.service_account("bmo-system", "bmo-controller", name, None)
    }
}

/// The environment both operators read, as BMO's deployment sets it: Ironic's endpoint with
/// `/v1/`, the deploy ramdisk pair, and the kubeconfig of the operator's ServiceAccount.
pub fn operator_env(credential: &Credential, ironic_url: &str, deploy: [&str; 2]) -> Vec<(String, String)> {
    vec![
        ("KUBECONFIG".into(), credential.kubeconfig.to_string_lossy().into_owned()),
        ("IRONIC_ENDPOINT".into(), format!("{}/v1/", ironic_url.trim_end_matches('/'))),
        ("DEPLOY_KERNEL_URL".into(), deploy[0].into()),
        ("DEPLOY_RAMDISK_URL".into(), deploy[1].into()),
    ]
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
