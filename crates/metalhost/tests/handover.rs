//! The handover from baremetal-operator (BMO) to metalhost and back, run step by step with
//! `scripts/handover` (the commands docs/kubernetes.md gives) and kubectl against a real control
//! plane (scripts/kube), whose apiserver calls the validating admission webhooks through their
//! Services (failurePolicy Fail: a webhook nobody serves refuses the write).
//!
//! The cluster starts as a BMO install leaves it: BMO's namespace, Deployment, ConfigMap,
//! Ironic credentials, webhook Service and ValidatingWebhookConfiguration; BareMetalHosts with
//! BMO's finalizer, their BMC Secrets with BMO's Secret finalizer. After every step a
//! BareMetalHost write succeeds, and an invalid one is denied by the webhook that should be
//! answering at that point (so a write never goes unchecked either).
//!
//! The control plane has no nodes, no kubelet and no Deployment controller: a thread here plays
//! them ([`Kubelet`]). For each Deployment with replicas it runs one process with the container's
//! arguments and environment (ConfigMap `envFrom`, `fieldRef`s, a token of the pod's
//! ServiceAccount, so the process acts with exactly config/'s RBAC), its Secret volumes written to
//! a directory, its listen addresses moved to free loopback ports; it publishes a Pod, routes the
//! addresses of the Services selecting it to the process (what kube-proxy would do: the
//! apiserver's calls to Services go through [`ServiceRouter`](metalhost_testlab::ServiceRouter)),
//! and writes the Deployment's status; at 0 replicas (or deleted) it kills the process and
//! withdraws them. metalhost's Deployments run the real `metalhost webhook` and
//! `metalhost run --kube` (Ironic: BMO's IRONIC_ENDPOINT, a dead port); BMO's Deployment runs a
//! stand-in for BMO's webhook (`metalhost webhook`, same rules, BMO's certificate and Service).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use metalhost_testlab::repo_root;
use metalhost_testlab::{KubeLab, PatchType};

use metalhost_testlab::support::served_port;
use metalhost_testlab::{Metalhost, process};
use serde_json::{Value, json};

const BMO_NS: &str = "baremetal-operator-system";
const HOSTS_NS: &str = "metal3";
const BMO_IMAGE: &str = "quay.io/metal3-io/baremetal-operator:v0.9.0";
const BMO_WEBHOOK: &str = "vbaremetalhost.kb.io";
const METALHOST_WEBHOOK: &str = "baremetalhost.metalhost.io";
const BMO_SECRET_FINALIZER: &str = "baremetalhost.metal3.io/secret";
const HOST_FINALIZER: &str = "baremetalhost.metal3.io";
const PAUSED: &str = "baremetalhost.metal3.io/paused";

/// A self-signed serving certificate (its own CA) for a Service's DNS name: (cert PEM, key PEM).
fn certificate(dir: &Path, dns: &str) -> (String, String) {
    let (crt, key) = (dir.join(format!("{dns}.crt")), dir.join(format!("{dns}.key")));
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&crt)
        .args(["-subj", &format!("/CN={dns}"), "-addext", &format!("subjectAltName=DNS:{dns}")])
        .output()
        .expect("run openssl");
    assert!(out.status.success(), "openssl: {}", String::from_utf8_lossy(&out.stderr));
    (std::fs::read_to_string(crt).expect("crt"), std::fs::read_to_string(key).expect("key"))
}

fn base64(data: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn unbase64(text: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let clean: Vec<u8> = text.bytes().filter(|c| !c.is_ascii_whitespace() && *c != b'=').collect();
    let mut out = Vec::new();
    for chunk in clean.chunks(4) {
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            n |= u32::from(val(*c)) << (18 - 6 * i);
        }
        for i in 0..chunk.len().saturating_sub(1) {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    out
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

/// A process playing a Pod.
struct PodProcess {
    child: Metalhost,
    name: String,
    namespace: String,
    labels: BTreeMap<String, String>,
    /// The Deployment's pod template spec (the Pod is published with it: admission, Pod Security
    /// among it, judges it as it would the pod a Deployment controller makes)
    spec: Value,
    /// containerPort -> the loopback port the process listens on
    ports: HashMap<i64, u16>,
    /// containerPort name -> containerPort
    port_names: HashMap<String, i64>,
    log: PathBuf,
}

/// Plays kubelet, the Deployment controller and the Endpoints controller (see the module doc).
struct Kubelet<'a> {
    kube: &'a KubeLab,
    bin: PathBuf,
    dir: PathBuf,
    pods: HashMap<(String, String), PodProcess>,
}

impl Kubelet<'_> {
    fn sync(&mut self) {
        let deployments = self.kube.get("/apis/apps/v1/deployments").json()["items"].as_array().cloned();
        let mut seen = HashSet::new();
        for d in deployments.unwrap_or_default() {
            let key = (
                d["metadata"]["namespace"].as_str().unwrap_or_default().to_string(),
                d["metadata"]["name"].as_str().unwrap_or_default().to_string(),
            );
            seen.insert(key.clone());
            let replicas = d["spec"]["replicas"].as_i64().unwrap_or(1);
            if replicas > 0 && !self.pods.contains_key(&key) {
                let pod = self.start(&d);
                self.publish(&pod, true);
                self.pods.insert(key.clone(), pod);
            } else if replicas == 0 {
                self.stop(&key);
            }
            let running = if self.pods.contains_key(&key) { replicas } else { 0 };
            let path = format!("/apis/apps/v1/namespaces/{}/deployments/{}/status", key.0, key.1);
            let r = self.kube.patch(
                &path,
                PatchType::Merge,
                &json!({"status": {
                    "observedGeneration": d["metadata"]["generation"],
                    "replicas": running, "updatedReplicas": running,
                    "readyReplicas": running, "availableReplicas": running,
                    "conditions": [{"type": "Available", "status": if running == replicas { "True" } else { "False" }}],
                }}),
            );
            assert!(
                r.status < 300 || r.status == 404,
                "deployment status: {}",
                String::from_utf8_lossy(&r.body)
            );
        }
        let gone: Vec<_> = self.pods.keys().filter(|k| !seen.contains(*k)).cloned().collect();
        for key in gone {
            self.stop(&key);
        }
    }

    fn start(&self, d: &Value) -> PodProcess {
        let namespace = d["metadata"]["namespace"].as_str().expect("namespace").to_string();
        let deploy = d["metadata"]["name"].as_str().expect("name").to_string();
        let template = &d["spec"]["template"];
        let container = &template["spec"]["containers"][0];
        let pod_dir = self.dir.join("pods").join(format!("{namespace}-{deploy}"));
        std::fs::create_dir_all(&pod_dir).expect("pod dir");
        let image = container["image"].as_str().unwrap_or_default();
        let mut args: Vec<String> = if image.starts_with("quay.io/metal3-io/baremetal-operator") {
            // the stand-in for BMO's pod: its webhook, with BMO's certificate mount
            [
                "webhook",
                "--listen=[::]:9443",
                "--cert=/tmp/k8s-webhook-server/serving-certs/tls.crt",
                "--key=/tmp/k8s-webhook-server/serving-certs/tls.key",
            ]
            .map(String::from)
            .to_vec()
        } else {
            assert!(image.starts_with("quay.io/metalhost/metalhost"), "unknown image {image}");
            container["args"]
                .as_array()
                .expect("args")
                .iter()
                .map(|a| a.as_str().expect("arg").to_string())
                .collect()
        };
        // Secret volumes, as kubelet mounts them
        let mut mounts = Vec::new();
        for m in container["volumeMounts"].as_array().into_iter().flatten() {
            let mount_path = m["mountPath"].as_str().expect("mountPath").to_string();
            let local = pod_dir.join(mount_path.trim_start_matches('/'));
            std::fs::create_dir_all(&local).expect("mount dir");
            let volume = template["spec"]["volumes"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|v| v["name"] == m["name"])
                .expect("volume");
            if let Some(secret) = volume["secret"]["secretName"].as_str() {
                let r = self.kube.get(&format!("/api/v1/namespaces/{namespace}/secrets/{secret}"));
                let optional = volume["secret"]["optional"] == true;
                assert!(r.status == 200 || optional, "{deploy}: Secret {secret} to mount: {}", r.status);
                if r.status == 200 {
                    for (k, v) in r.json()["data"].as_object().into_iter().flatten() {
                        std::fs::write(local.join(k), unbase64(v.as_str().unwrap_or_default()))
                            .expect("write");
                    }
                }
            }
            mounts.push((mount_path, local));
        }
        // listen addresses: port 0 on loopback, the port taken read from the process's log (a port
        // chosen here could be taken by another test before the process binds it)
        let mut served = Vec::new();
        for arg in &mut args {
            for (mount_path, local) in &mounts {
                if let Some((flag, value)) = arg.split_once('=')
                    && let Some(rest) = value.strip_prefix(mount_path.as_str())
                {
                    *arg = format!("{flag}={}{rest}", local.display());
                }
            }
            if let Some((flag, value)) = arg.split_once('=')
                && let Some(port) = value.strip_prefix("[::]:").or_else(|| value.strip_prefix("0.0.0.0:"))
            {
                served.push(port.parse::<i64>().expect("port"));
                *arg = format!("{flag}=127.0.0.1:0");
            }
        }
        let pod_name = format!("{deploy}-0");
        let mut env: Vec<(String, String)> = Vec::new();
        for from in container["envFrom"].as_array().into_iter().flatten() {
            if let Some(cm) = from["configMapRef"]["name"].as_str() {
                let r = self.kube.get(&format!("/api/v1/namespaces/{namespace}/configmaps/{cm}"));
                assert_eq!(r.status, 200, "{deploy}: ConfigMap {cm}");
                for (k, v) in r.json()["data"].as_object().into_iter().flatten() {
                    env.push((k.clone(), v.as_str().unwrap_or_default().to_string()));
                }
            }
        }
        for e in container["env"].as_array().into_iter().flatten() {
            let value = match e["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
                Some("metadata.name") => pod_name.clone(),
                Some("metadata.namespace") => namespace.clone(),
                _ => e["value"].as_str().unwrap_or_default().to_string(),
            };
            env.push((e["name"].as_str().expect("env name").to_string(), value));
        }
        // BMO's auth files are read under METAL3_AUTH_ROOT_DIR (default /opt/metal3/auth)
        env.push(("METAL3_AUTH_ROOT_DIR".into(), pod_dir.join("opt/metal3/auth").display().to_string()));
        let ca = pod_dir.join("opt/metal3/certs/ca/tls.crt");
        if ca.exists() {
            env.push(("IRONIC_CACERT_FILE".into(), ca.display().to_string()));
        }
        // the pod's ServiceAccount token, unless the pod opts out of it
        let pod_spec = &template["spec"];
        if let Some(account) = pod_spec["serviceAccountName"].as_str()
            && pod_spec["automountServiceAccountToken"] != false
        {
            let credential =
                self.kube.service_account(&namespace, account, &format!("{namespace}-{deploy}"), None);
            env.push(("KUBECONFIG".into(), credential.kubeconfig.display().to_string()));
        }
        let log = pod_dir.join("log");
        // a pod's environment is its template's, nothing of the test's
        let mut cmd = process::command(&self.bin);
        cmd.args(&args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(env)
            .env("RUST_LOG", "info");
        let child = Metalhost::spawn(cmd, &log);
        let mut pod = PodProcess {
            child,
            name: pod_name,
            namespace,
            labels: serde_json::from_value(template["metadata"]["labels"].clone()).unwrap_or_default(),
            spec: template["spec"].clone(),
            ports: HashMap::new(),
            port_names: HashMap::new(),
            log,
        };
        assert!(served.len() <= 1, "{deploy}: one listen address per process is read from its log");
        for container_port in served {
            let mut tries = 0;
            let port = loop {
                let text = std::fs::read_to_string(&pod.log).unwrap_or_default();
                if let Some(port) = served_port(&text) {
                    break port;
                }
                if let Some(status) = pod.child.exit_status() {
                    panic!("{deploy} exited ({status}):\n{text}");
                }
                tries += 1;
                assert!(tries < 1200, "{deploy} never logged where it serves:\n{text}");
                std::thread::sleep(Duration::from_millis(50));
            };
            pod.ports.insert(container_port, port);
        }
        for p in container["ports"].as_array().into_iter().flatten() {
            if let (Some(name), Some(port)) = (p["name"].as_str(), p["containerPort"].as_i64()) {
                pod.port_names.insert(name.to_string(), port);
            }
        }
        // ready once every port it serves accepts connections
        for port in pod.ports.values() {
            let mut tries = 0;
            while TcpStream::connect(("127.0.0.1", *port)).is_err() {
                if let Some(status) = pod.child.exit_status() {
                    panic!(
                        "{deploy} exited ({status}):\n{}",
                        std::fs::read_to_string(&pod.log).unwrap_or_default()
                    );
                }
                tries += 1;
                assert!(tries < 1200, "{deploy} never listened on {port}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        pod
    }

    /// Publishes (or withdraws) the Pod, and routes (or stops routing) the addresses of the
    /// Services that select it to its process.
    fn publish(&self, pod: &PodProcess, up: bool) {
        let pods = format!("/api/v1/namespaces/{}/pods", pod.namespace);
        if up {
            let r = self.kube.create(
                &pods,
                &json!({"metadata": {"name": pod.name, "labels": pod.labels}, "spec": pod.spec}),
            );
            assert!(r.status < 300, "pod: {}", String::from_utf8_lossy(&r.body));
        } else {
            // never scheduled: the apiserver deletes it at once
            self.kube.delete(&format!("{pods}/{}", pod.name));
        }
        let services = self.kube.get(&format!("/api/v1/namespaces/{}/services", pod.namespace)).json();
        for svc in services["items"].as_array().into_iter().flatten() {
            let selector: BTreeMap<String, String> =
                serde_json::from_value(svc["spec"]["selector"].clone()).unwrap_or_default();
            if selector.is_empty() || !selector.iter().all(|(k, v)| pod.labels.get(k) == Some(v)) {
                continue;
            }
            let cluster_ip = svc["spec"]["clusterIP"].as_str().expect("a ClusterIP");
            for p in svc["spec"]["ports"].as_array().into_iter().flatten() {
                let target = match &p["targetPort"] {
                    Value::String(n) => pod.port_names.get(n).copied(),
                    Value::Number(n) => n.as_i64(),
                    _ => p["port"].as_i64(),
                };
                let address = format!("{cluster_ip}:{}", p["port"]);
                match target.and_then(|t| pod.ports.get(&t)) {
                    Some(local) if up => self.kube.services.route(&address, *local),
                    _ => self.kube.services.unroute(&address),
                }
            }
        }
    }

    fn stop(&mut self, key: &(String, String)) {
        if let Some(mut pod) = self.pods.remove(key) {
            pod.child.kill();
            self.publish(&pod, false);
        }
    }

    fn logs(&self) -> String {
        self.pods
            .values()
            .map(|p| format!("--- {}:\n{}", p.name, std::fs::read_to_string(&p.log).unwrap_or_default()))
            .collect()
    }
}

impl Drop for Kubelet<'_> {
    fn drop(&mut self) {
        for pod in self.pods.values_mut() {
            pod.child.kill();
        }
    }
}

/// The test's cluster: the control plane with a BMO install, a scratch directory, the script's
/// settings.
struct Cluster {
    kube: KubeLab,
    dir: PathBuf,
    config: PathBuf,
    bmo_vwc: Value,
}

fn bmo_install(kube: &KubeLab, dir: &Path) -> Value {
    let (bmo_crt, bmo_key) = certificate(dir, &format!("baremetal-operator-webhook-service.{BMO_NS}.svc"));
    let b64 = |s: &str| base64(s.as_bytes());
    kube.apply_yaml(&format!(
        "\
apiVersion: v1
kind: Namespace
metadata: {{name: {BMO_NS}}}
---
apiVersion: v1
kind: Namespace
metadata: {{name: {HOSTS_NS}}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: baremetal-operator-ironic, namespace: {BMO_NS}}}
data:
  IRONIC_ENDPOINT: http://127.0.0.1:9/v1/
  DEPLOY_KERNEL_URL: http://127.0.0.1:9/images/ironic-python-agent.kernel
  DEPLOY_RAMDISK_URL: http://127.0.0.1:9/images/ironic-python-agent.initramfs
---
apiVersion: v1
kind: Secret
metadata: {{name: ironic-credentials, namespace: {BMO_NS}}}
stringData: {{username: ironic-user, password: not-a-real-ironic-password}}
---
apiVersion: v1
kind: Secret
metadata: {{name: baremetal-operator-webhook-server-cert, namespace: {BMO_NS}}}
type: kubernetes.io/tls
data: {{tls.crt: {}, tls.key: {}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: baremetal-operator-controller-manager, namespace: {BMO_NS}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{control-plane: controller-manager}}}}
  template:
    metadata: {{labels: {{control-plane: controller-manager}}}}
    spec:
      containers:
        - name: manager
          image: {BMO_IMAGE}
          ports: [{{containerPort: 9443, name: webhook-server}}]
          envFrom: [{{configMapRef: {{name: baremetal-operator-ironic}}}}]
          volumeMounts:
            - {{name: cert, mountPath: /tmp/k8s-webhook-server/serving-certs, readOnly: true}}
            - {{name: ironic-credentials, mountPath: /opt/metal3/auth/ironic, readOnly: true}}
      volumes:
        - {{name: cert, secret: {{secretName: baremetal-operator-webhook-server-cert}}}}
        - {{name: ironic-credentials, secret: {{secretName: ironic-credentials}}}}
---
apiVersion: v1
kind: Service
metadata: {{name: baremetal-operator-webhook-service, namespace: {BMO_NS}}}
spec:
  selector: {{control-plane: controller-manager}}
  ports: [{{port: 443, targetPort: 9443}}]
",
        b64(&bmo_crt),
        b64(&bmo_key)
    ));
    let vwc = json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "baremetal-operator-validating-webhook-configuration"},
        "webhooks": [{
            "name": BMO_WEBHOOK, "admissionReviewVersions": ["v1"], "sideEffects": "None",
            "failurePolicy": "Fail",
            "clientConfig": {"caBundle": b64(&bmo_crt), "service": {
                "name": "baremetal-operator-webhook-service", "namespace": BMO_NS,
                "path": "/validate-metal3-io-v1alpha1-baremetalhost"}},
            "rules": [{"apiGroups": ["metal3.io"], "apiVersions": ["v1alpha1"],
                       "operations": ["CREATE", "UPDATE"], "resources": ["baremetalhosts"]}],
        }],
    });
    vwc
}

/// BareMetalHosts as BMO leaves them: its finalizer on the host and on the BMC Secret (labelled
/// and owned by the host). `h2` was paused by its user before the handover.
fn bmo_hosts(kube: &KubeLab) {
    for (i, host) in ["h0", "h1", "h2"].iter().enumerate() {
        let created = kube.apply_yaml(&format!(
            "\
apiVersion: metal3.io/v1alpha1
kind: BareMetalHost
metadata:
  name: {host}
  namespace: {HOSTS_NS}
  finalizers: [{HOST_FINALIZER}]
spec:
  online: true
  bootMACAddress: \"52:54:00:00:00:0{i}\"
  bmc:
    address: redfish+http://127.0.0.1:9/redfish/v1/Systems/{i}
    credentialsName: {host}-bmc
"
        ));
        let uid = created[0]["metadata"]["uid"].as_str().expect("uid");
        kube.apply_yaml(&format!(
            "\
apiVersion: v1
kind: Secret
metadata:
  name: {host}-bmc
  namespace: {HOSTS_NS}
  labels: {{environment.metal3.io: baremetal}}
  finalizers: [{BMO_SECRET_FINALIZER}]
  ownerReferences: [{{apiVersion: metal3.io/v1alpha1, kind: BareMetalHost, name: {host}, uid: {uid}}}]
stringData: {{username: admin, password: not-a-real-password}}
"
        ));
    }
    let r =
        kube.patch(&host_path("h2"), PatchType::Merge, &json!({"metadata": {"annotations": {PAUSED: ""}}}));
    assert_eq!(r.status, 200);
}

fn host_path(name: &str) -> String {
    format!("/apis/metal3.io/v1alpha1/namespaces/{HOSTS_NS}/baremetalhosts/{name}")
}

impl Cluster {
    fn new() -> Cluster {
        let kube = KubeLab::start();
        let dir = kube.info.dir.join("handover");
        std::fs::create_dir_all(&dir).expect("dir");
        let config = dir.join("config");
        copy_dir(&repo_root().join("config"), &config);
        let dns = "metalhost-webhook.metalhost-system.svc";
        let (crt, key) = certificate(&dir, dns);
        let tls = config.join("provided-tls");
        std::fs::write(tls.join("tls.crt"), &crt).expect("tls.crt");
        std::fs::write(tls.join("tls.key"), &key).expect("tls.key");
        std::fs::write(tls.join("ca.crt"), &crt).expect("ca.crt");
        let bmo_vwc = bmo_install(&kube, &dir);
        // the hosts first: BMO's webhook is served only once the kubelet thread runs
        bmo_hosts(&kube);
        kube.apply_yaml(&bmo_vwc.to_string());
        Cluster { kube, dir, config, bmo_vwc }
    }

    /// Runs one step of `scripts/handover` with kubectl pointed at the control plane (an
    /// administrator, as the person doing the handover).
    fn step(&self, step: &str, kubelet_logs: impl Fn() -> String) {
        let out = Command::new("bash")
            .arg(repo_root().join("scripts/handover"))
            .arg(step)
            .env("KUBECONFIG", &self.kube.kubeconfig)
            .env("METALHOST_CONFIG", &self.config)
            .env("METALHOST_OVERLAY", "provided-tls")
            .env("HANDOVER_HOSTS", self.dir.join("handover-hosts.txt"))
            .env("TIMEOUT", "300s")
            .output()
            .expect("run scripts/handover");
        assert!(
            out.status.success(),
            "scripts/handover {step} failed:\n{}\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            kubelet_logs()
        );
    }

    /// Whether the address of BMO's webhook Service is routed to BMO's process.
    fn bmo_serves(&self) -> bool {
        let svc = self
            .kube
            .get(&format!("/api/v1/namespaces/{BMO_NS}/services/baremetal-operator-webhook-service"));
        svc.status == 200 && {
            let ip = svc.json()["spec"]["clusterIP"].as_str().unwrap_or_default().to_string();
            self.kube.services.routes(&format!("{ip}:443"))
        }
    }

    fn host(&self, name: &str) -> Value {
        self.kube.get(&host_path(name)).json()
    }

    fn secret(&self, name: &str) -> (u16, Value) {
        let r = self.kube.get(&format!("/api/v1/namespaces/{HOSTS_NS}/secrets/{name}"));
        (r.status, if r.status == 200 { r.json() } else { Value::Null })
    }

    /// After a step: a BareMetalHost write succeeds, and an invalid one is denied by one of the
    /// webhooks expected to answer now (by that one, where only one is).
    fn writes_work(&self, after: &str, checked_by: &[&str]) {
        for host in ["h0", "h1", "h2"] {
            let r = self.kube.patch(
                &host_path(host),
                PatchType::Merge,
                &json!({"metadata": {"annotations": {"handover.test/after": after}}}),
            );
            assert_eq!(r.status, 200, "after {after}: writing {host}: {}", String::from_utf8_lossy(&r.body));
        }
        let r = self.kube.patch(
            &host_path("h0"),
            PatchType::Merge,
            &json!({"spec": {"bmc": {"address": "no-such-driver://127.0.0.1/"}}}),
        );
        let body = String::from_utf8_lossy(&r.body).to_string();
        assert!(
            r.status >= 400 && body.contains("denied the request"),
            "after {after}: invalid write: {body}"
        );
        // the apiserver calls the validating webhooks in parallel and answers with one denial:
        // with two answering, either may be the one shown
        let denied_by = [BMO_WEBHOOK, METALHOST_WEBHOOK]
            .into_iter()
            .find(|w| body.contains(&format!("webhook \\\"{w}\\\" denied")));
        assert!(denied_by.is_some_and(|w| checked_by.contains(&w)), "after {after}: denied by {body}");
        assert!(
            body.contains("Unknown BMC type 'no-such-driver' for address no-such-driver://127.0.0.1/"),
            "upstream's message: {body}"
        );
        assert_eq!(
            self.host("h0")["spec"]["bmc"]["address"],
            "redfish+http://127.0.0.1:9/redfish/v1/Systems/0"
        );
    }
}

fn finalizers(obj: &Value) -> Vec<String> {
    serde_json::from_value(obj["metadata"]["finalizers"].clone()).unwrap_or_default()
}

/// Runs `f` with a [`Kubelet`] syncing in the background.
fn with_kubelet<T>(cluster: &Cluster, f: impl FnOnce(&dyn Fn() -> String) -> T) -> T {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_metalhost"));
    let stop = AtomicBool::new(false);
    let logs = std::sync::Mutex::new(String::new());
    std::thread::scope(|scope| {
        let kubelet = scope.spawn(|| {
            let mut k = Kubelet { kube: &cluster.kube, bin, dir: cluster.dir.clone(), pods: HashMap::new() };
            while !stop.load(Ordering::SeqCst) {
                k.sync();
                *logs.lock().expect("logs") = k.logs();
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let read_logs = || logs.lock().expect("logs").clone();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&read_logs)));
        stop.store(true, Ordering::SeqCst);
        let synced = kubelet.join();
        let result = result.unwrap_or_else(|e| std::panic::resume_unwind(e));
        synced.unwrap_or_else(|e| std::panic::resume_unwind(e));
        result
    })
}

/// Polls (bounded) until `cond` holds.
fn eventually(what: &str, logs: &dyn Fn() -> String, mut cond: impl FnMut() -> bool) {
    for _ in 0..1200 {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("never: {what}\n{}", logs());
}

#[test]
fn handover_to_metalhost_and_back_keeps_every_write_working_and_checked() {
    let cluster = Cluster::new();
    with_kubelet(&cluster, |logs| {
        eventually("BMO's webhook serves", logs, || cluster.bmo_serves());
        cluster.writes_work("BMO install", &[BMO_WEBHOOK]);
        let steps: Vec<String> = String::from_utf8(
            Command::new("bash")
                .arg(repo_root().join("scripts/handover"))
                .arg("steps")
                .output()
                .expect("steps")
                .stdout,
        )
        .expect("utf-8")
        .split_whitespace()
        .map(String::from)
        .collect();
        assert_eq!(
            steps,
            [
                "copy-settings",
                "copy-credentials",
                "pause",
                "deploy",
                "check",
                "remove-bmo-webhook",
                "stop-bmo",
                "drop-finalizers",
                "unpause"
            ]
        );
        for step in &steps {
            cluster.step(step, logs);
            let checked_by: &[&str] = match step.as_str() {
                "copy-settings" | "copy-credentials" | "pause" => &[BMO_WEBHOOK],
                "deploy" | "check" => &[BMO_WEBHOOK, METALHOST_WEBHOOK],
                _ => &[METALHOST_WEBHOOK],
            };
            cluster.writes_work(step, checked_by);
            match step.as_str() {
                "copy-settings" => {
                    let env = std::fs::read_to_string(cluster.config.join("ironic/ironic.env")).expect("env");
                    assert!(env.contains("IRONIC_ENDPOINT=http://127.0.0.1:9/v1/"), "{env}");
                }
                "pause" => {
                    for h in ["h0", "h1"] {
                        assert_eq!(cluster.host(h)["metadata"]["annotations"][PAUSED], "handover");
                    }
                    assert_eq!(
                        cluster.host("h2")["metadata"]["annotations"][PAUSED],
                        "",
                        "h2's own pause kept"
                    );
                }
                "drop-finalizers" => {
                    for h in ["h0-bmc", "h1-bmc", "h2-bmc"] {
                        assert!(
                            !finalizers(&cluster.secret(h).1).contains(&BMO_SECRET_FINALIZER.to_string())
                        );
                    }
                }
                _ => {}
            }
        }

        // metalhost owns h0 and h1: its controller wrote their status and adopted their Secrets;
        // h2 stays paused as its user left it
        for h in ["h0", "h1"] {
            eventually(&format!("metalhost reconciles {h}"), logs, || {
                let host = cluster.host(h);
                host["status"].is_object() && host["metadata"]["annotations"].get(PAUSED).is_none()
            });
            assert_eq!(finalizers(&cluster.host(h)), [HOST_FINALIZER]);
        }
        assert!(cluster.host("h2")["status"].is_null(), "the paused host is left alone");
        let lease = cluster
            .kube
            .get("/apis/coordination.k8s.io/v1/namespaces/metalhost-system/leases/metalhost-leader")
            .json();
        assert!(lease["spec"]["holderIdentity"].as_str().is_some_and(|h| h.starts_with("metalhost-")));
        // a Secret BMO held is deleted at once, not left Terminating
        let r = cluster.kube.delete(&format!("/api/v1/namespaces/{HOSTS_NS}/secrets/h1-bmc"));
        assert_eq!(r.status, 200);
        assert_eq!(cluster.secret("h1-bmc").0, 404, "h1-bmc deleted, not Terminating");

        // ... and back to BMO
        let r = cluster.kube.patch(
            &host_path("h1"),
            PatchType::Merge,
            &json!({"metadata": {"annotations": {"metalhost.io/boot-device-persistence": "Always"}}}),
        );
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let out = Command::new("bash")
            .arg(repo_root().join("scripts/handover"))
            .arg("check-extensions")
            .env("KUBECONFIG", &cluster.kube.kubeconfig)
            .output()
            .expect("check-extensions");
        assert!(!out.status.success(), "a host using metalhost's annotations is reported");
        assert!(String::from_utf8_lossy(&out.stderr).contains("metal3 h1"));
        let r = cluster.kube.patch(
            &host_path("h1"),
            PatchType::Merge,
            &json!({"metadata": {"annotations": {"metalhost.io/boot-device-persistence": null}}}),
        );
        assert_eq!(r.status, 200);
        cluster.step("check-extensions", logs);
        cluster.writes_work("check-extensions", &[METALHOST_WEBHOOK]);
        cluster.step("pause", logs);
        cluster.writes_work("pause (back)", &[METALHOST_WEBHOOK]);
        // the user re-applies BMO's kustomization: its webhook configuration and Deployment
        cluster.kube.apply_yaml(&cluster.bmo_vwc.to_string());
        let r = cluster.kube.patch(
            &format!("/apis/apps/v1/namespaces/{BMO_NS}/deployments/baremetal-operator-controller-manager"),
            PatchType::Merge,
            &json!({"spec": {"replicas": 1}}),
        );
        assert_eq!(r.status, 200);
        eventually("BMO serves again", logs, || cluster.bmo_serves());
        cluster.writes_work("BMO re-applied", &[BMO_WEBHOOK, METALHOST_WEBHOOK]);
        cluster.step("remove-metalhost", logs);
        eventually("metalhost's pods gone", logs, || {
            cluster.kube.get("/api/v1/namespaces/metalhost-system/pods").json()["items"]
                .as_array()
                .is_some_and(|p| p.is_empty())
        });
        cluster.writes_work("remove-metalhost", &[BMO_WEBHOOK]);
        cluster.step("unpause", logs);
        cluster.writes_work("unpause (back)", &[BMO_WEBHOOK]);
        for h in ["h0", "h1"] {
            let host = cluster.host(h);
            assert!(host["metadata"]["annotations"].get(PAUSED).is_none());
            assert_eq!(finalizers(&host), [HOST_FINALIZER], "only the shared finalizer is left for BMO");
        }
    });
}

#[test]
fn stopping_bmo_before_removing_its_webhook_configuration_refuses_every_write() {
    let cluster = Cluster::new();
    with_kubelet(&cluster, |logs| {
        eventually("BMO's webhook serves", logs, || cluster.bmo_serves());
        cluster.writes_work("BMO install", &[BMO_WEBHOOK]);
        cluster.step("stop-bmo", logs);
        let r = cluster.kube.patch(
            &host_path("h0"),
            PatchType::Merge,
            &json!({"metadata": {"annotations": {"handover.test/after": "stop-bmo"}}}),
        );
        let body = String::from_utf8_lossy(&r.body).to_string();
        assert_eq!(r.status, 500, "{body}");
        assert!(body.contains(&format!("failed calling webhook \\\"{BMO_WEBHOOK}\\\"")), "{body}");
        cluster.step("remove-bmo-webhook", logs);
        let r = cluster.kube.patch(
            &host_path("h0"),
            PatchType::Merge,
            &json!({"metadata": {"annotations": {"handover.test/after": "remove-bmo-webhook"}}}),
        );
        assert_eq!(r.status, 200);
    });
}

#[test]
fn the_controller_takes_bmos_finalizer_off_the_secrets_of_the_hosts_it_reconciles() {
    // no handover script here: a Secret that kept BMO's finalizer (e.g. one BMO claimed after
    // step 8) must not hang in Terminating once metalhost owns its host
    let kube = KubeLab::start();
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_metalhost"));
    kube.apply_yaml(&format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {HOSTS_NS}}}\n"));
    bmo_hosts(&kube);
    let child = Metalhost::kube(&bin, &kube, "http://127.0.0.1:9", &[], "metalhost");
    let logs = || child.output();
    let secret = |name: &str| kube.get(&format!("/api/v1/namespaces/{HOSTS_NS}/secrets/{name}"));
    let h0 = kube.get(&host_path("h0")).json();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        eventually("h0-bmc loses BMO's finalizer", &logs, || finalizers(&secret("h0-bmc").json()).is_empty());
        let s = secret("h0-bmc").json();
        assert_eq!(s["metadata"]["labels"]["environment.metal3.io"], "baremetal");
        assert!(
            s["metadata"]["ownerReferences"]
                .as_array()
                .is_some_and(|o| o.iter().any(|o| o["uid"] == h0["metadata"]["uid"])),
            "owned by h0: {s}"
        );
        // the paused host's Secret is left as BMO left it
        assert_eq!(finalizers(&secret("h2-bmc").json()), [BMO_SECRET_FINALIZER]);
        assert_eq!(kube.delete(&format!("/api/v1/namespaces/{HOSTS_NS}/secrets/h0-bmc")).status, 200);
        assert_eq!(secret("h0-bmc").status, 404, "deleted at once, not Terminating");
    }));
    drop(child);
    result.unwrap_or_else(|e| std::panic::resume_unwind(e));
}

#[test]
fn docs_kubernetes_md_lists_the_scripts_steps_in_its_order() {
    let doc = std::fs::read_to_string(repo_root().join("docs/kubernetes.md")).expect("docs/kubernetes.md");
    let in_doc: Vec<String> = doc
        .lines()
        .filter(|l| {
            l.starts_with("| ") && l.split('|').nth(1).is_some_and(|n| n.trim().parse::<u32>().is_ok())
        })
        .filter_map(|l| l.split("`scripts/handover ").nth(1)?.split('`').next().map(String::from))
        .collect();
    let out =
        Command::new("bash").arg(repo_root().join("scripts/handover")).arg("steps").output().expect("steps");
    let in_script: Vec<String> =
        String::from_utf8(out.stdout).expect("utf-8").split_whitespace().map(String::from).collect();
    assert_eq!(in_doc, in_script);
}

/// What only the CRD's schema refuses is refused by the apiserver itself (its structural schema,
/// not a webhook), once config/ is applied with kubectl.
#[test]
fn a_host_only_the_crd_schema_refuses_is_refused_by_the_apiserver() {
    let kube = KubeLab::start();
    let r = kube.create(
        "/apis/metal3.io/v1alpha1/namespaces/default/baremetalhosts",
        &json!({"apiVersion": "metal3.io/v1alpha1", "kind": "BareMetalHost",
                "metadata": {"name": "dashes", "namespace": "default"},
                "spec": {"online": true, "bootMACAddress": "00-11-22-33-44-55",
                         "bmc": {"address": "ipmi://192.0.2.1", "credentialsName": "c"}}}),
    );
    let body = String::from_utf8_lossy(&r.body).to_string();
    assert_eq!(r.status, 422, "{body}");
    assert!(body.contains("spec.bootMACAddress") && body.contains("should match"), "{body}");
    assert!(!body.contains("denied the request"), "no webhook is involved: {body}");
}

/// `scripts/handover check-extensions` finds a host booting a live kernel by its image format
/// alone (it read upstream's Go field name, diskFormat, and never found one), and passes once
/// no host uses an extension.
#[test]
fn check_extensions_finds_a_live_kernel_host() {
    let kube = KubeLab::start();
    kube.apply_yaml(
        "apiVersion: metal3.io/v1alpha1\nkind: BareMetalHost\nmetadata: {name: kernel, namespace: default}\n\
         spec: {online: true, bmc: {address: 'redfish+http://127.0.0.1:9/redfish/v1/Systems/1', credentialsName: c},\n\
         image: {url: 'http://127.0.0.1:9/vmlinuz', format: live-kernel}}\n",
    );
    let check = || {
        Command::new("bash")
            .arg(repo_root().join("scripts/handover"))
            .arg("check-extensions")
            .env("KUBECONFIG", &kube.kubeconfig)
            .output()
            .expect("check-extensions")
    };
    let out = check();
    assert!(!out.status.success(), "a live-kernel host is reported");
    assert!(String::from_utf8_lossy(&out.stderr).contains("default kernel"), "{out:?}");
    assert_eq!(kube.delete("/apis/metal3.io/v1alpha1/namespaces/default/baremetalhosts/kernel").status, 200);
    let out = check();
    assert!(out.status.success(), "{out:?}");
}
