//! A handle on a real Kubernetes control plane (`scripts/kube`: etcd, kube-apiserver and
//! kube-controller-manager built from Go modules): tests start one, point the real binary at a
//! kubeconfig of the ServiceAccount config/ binds (so it acts with exactly config/'s RBAC), drive
//! objects through the API as kubectl would, and read the apiserver's audit log to count requests.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::repo_root;
use crate::service_router::ServiceRouter;

/// Where the control plane listens and what it wrote, as `scripts/kube start` prints it.
#[derive(Debug, Clone, Deserialize)]
pub struct KubeLabInfo {
    /// Its scratch directory.
    pub dir: PathBuf,
    /// `https://127.0.0.1:PORT`.
    pub url: String,
    /// The apiserver's port.
    pub port: u16,
    /// etcd's client URL.
    pub etcd_url: String,
    /// A kubeconfig of an administrator (group system:masters).
    pub kubeconfig: PathBuf,
    /// The CA that signed the apiserver's certificate.
    pub ca_file: PathBuf,
    /// Its key (tests sign webhook serving certificates with it).
    pub ca_key_file: PathBuf,
    /// The administrator's bearer token.
    pub token: String,
    /// The apiserver's audit log (JSON lines).
    pub audit_log: PathBuf,
    /// Where the apiserver sends its calls to Services (see [`ServiceRouter`]).
    pub egress_socket: PathBuf,
}

/// One request the apiserver answered, from its audit log.
#[derive(Debug, Clone, Default)]
pub struct RequestRecord {
    /// When it was received (RFC 3339).
    pub time: String,
    /// HTTP method, from the verb.
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// The query.
    pub query: String,
    /// The Kubernetes verb (`get`, `list`, `watch`, `create`, `update`, `patch`, `delete`).
    pub verb: String,
    /// API group, empty for core.
    pub api_group: String,
    /// Plural resource, empty for non-resource URLs.
    pub resource: String,
    /// Subresource (`status`), empty if none.
    pub subresource: String,
    /// Namespace, empty if none.
    pub namespace: String,
    /// Object name, empty for collections.
    pub name: String,
    /// The client's User-Agent.
    pub user_agent: String,
    /// The authenticated user name.
    pub user: String,
    /// The id of the credential used (`JTI=…` for a ServiceAccount token), empty if none.
    pub credential: String,
    /// The HTTP status code answered.
    pub code: u16,
    /// The answer's status message (`context canceled` for a request whose client went away).
    pub message: String,
    /// A non-resource URL (`/version`, `/apis`).
    pub non_resource: bool,
}

impl RequestRecord {
    /// A write: create, update, patch or delete.
    pub fn is_write(&self) -> bool {
        matches!(self.verb.as_str(), "create" | "update" | "patch" | "delete" | "deletecollection")
    }

    /// One audit event as a record; None for a stage that does not count (a watch counts when it
    /// starts, anything else when it completes).
    fn from_audit(event: &Value) -> Option<RequestRecord> {
        let verb = event["verb"].as_str().unwrap_or_default();
        let stage = event["stage"].as_str().unwrap_or_default();
        let counted = if verb == "watch" { "ResponseStarted" } else { "ResponseComplete" };
        if stage != counted {
            return None;
        }
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        let uri = text(&event["requestURI"]);
        let (path, query) =
            uri.split_once('?').map_or((uri.clone(), String::new()), |(p, q)| (p.into(), q.into()));
        let object = &event["objectRef"];
        let method = match verb {
            "get" | "list" | "watch" => "GET",
            "create" => "POST",
            "update" => "PUT",
            "patch" => "PATCH",
            "delete" | "deletecollection" => "DELETE",
            _ => "",
        };
        Some(RequestRecord {
            time: text(&event["requestReceivedTimestamp"]),
            method: method.into(),
            path,
            query,
            verb: verb.into(),
            api_group: text(&object["apiGroup"]),
            resource: text(&object["resource"]),
            subresource: text(&object["subresource"]),
            namespace: text(&object["namespace"]),
            name: text(&object["name"]),
            user_agent: text(&event["userAgent"]),
            user: text(&event["user"]["username"]),
            credential: text(&event["user"]["extra"]["authentication.kubernetes.io/credential-id"][0]),
            code: event["responseStatus"]["code"].as_u64().unwrap_or_default() as u16,
            message: text(&event["responseStatus"]["message"]),
            non_resource: object.is_null(),
        })
    }
}

/// An answer of the apiserver.
#[derive(Debug, Clone)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl Response {
    /// The body as JSON (panics if it is not: test set-up).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// The `reason` of a `Status` answer (`NotFound`, `Conflict`, ...), empty if none.
    pub fn reason(&self) -> String {
        serde_json::from_slice::<Value>(&self.body)
            .ok()
            .and_then(|v| v["reason"].as_str().map(str::to_string))
            .unwrap_or_default()
    }
}

/// Patch types, as the apiserver's Content-Types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// RFC 7386 `application/merge-patch+json`.
    Merge,
    /// RFC 6902 `application/json-patch+json`.
    Json,
    /// `application/strategic-merge-patch+json` (refused with 415 on custom resources).
    Strategic,
    /// Server-side apply, `application/apply-patch+yaml` (needs a `fieldManager` query parameter).
    Apply,
}

impl PatchType {
    fn content_type(self) -> &'static str {
        match self {
            PatchType::Merge => "application/merge-patch+json",
            PatchType::Json => "application/json-patch+json",
            PatchType::Strategic => "application/strategic-merge-patch+json",
            PatchType::Apply => "application/apply-patch+yaml",
        }
    }
}

/// A kubeconfig of a ServiceAccount token, and the id the audit log names that token by.
#[derive(Debug, Clone)]
pub struct Credential {
    /// The kubeconfig file.
    pub kubeconfig: PathBuf,
    /// `JTI=…`, as in the audit log's `credential-id`.
    pub id: String,
}

/// The user name config/'s controller ServiceAccount acts as.
pub const CONTROLLER_USER: &str = "system:serviceaccount:metalhost-system:metalhost-controller";

/// A running control plane; dropped, it stops every process (by PID).
#[derive(Debug)]
pub struct KubeLab {
    /// Where it listens and what it wrote.
    pub info: KubeLabInfo,
    /// `https://127.0.0.1:PORT`.
    pub url: String,
    /// The administrator's kubeconfig.
    pub kubeconfig: PathBuf,
    client: reqwest::blocking::Client,
    watch_client: reqwest::blocking::Client,
    /// Routes the apiserver's calls to Services (webhooks) to host processes.
    pub services: ServiceRouter,
}

/// A request that takes longer than this is a bug (the apiserver answers in milliseconds).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a watch stream is read at most: a test waiting for an event that never comes ends.
const WATCH_TIMEOUT: Duration = Duration::from_secs(300);

impl KubeLab {
    /// Starts a control plane with the repo's CRD (`config/crd/`) and config/base's namespace,
    /// ServiceAccounts and RBAC applied with kubectl. Panics with the script's message when it
    /// cannot start (this is test set-up).
    pub fn start() -> KubeLab {
        Self::start_with(&[])
    }

    /// Starts one with extra `scripts/kube start` options (`--no-watch-cache`,
    /// `--etcd-compaction-interval D`).
    pub fn start_with(args: &[&str]) -> KubeLab {
        let lab = Self::start_bare(args);
        lab.install_crds(&[
            &repo_path("config/crd/metal3.io_baremetalhosts.yaml"),
            &repo_path("config/crd/metal3.io_hardwaredata.yaml"),
            &repo_path("config/crd/metal3.io_hostfirmwaresettings.yaml"),
            &repo_path("config/crd/metal3.io_firmwareschemas.yaml"),
            &repo_path("config/crd/metal3.io_dataimages.yaml"),
        ]);
        lab.kubectl_ok(&[
            "apply",
            "-f",
            &repo_path("config/base/namespace.yaml"),
            "-f",
            &repo_path("config/base/rbac.yaml"),
        ]);
        lab
    }

    /// Applies CRDs (files, or directories of YAML files) server-side and waits until each is
    /// Established (polled: `kubectl wait` fails outright while a CRD has no conditions yet).
    pub fn install_crds(&self, paths: &[&str]) {
        let mut args = vec!["apply", "--server-side"];
        for path in paths {
            args.extend(["-f", path]);
        }
        self.kubectl_ok(&args);
        wait_established(self, &crd_names(paths));
    }

    /// Starts one with nothing installed.
    pub(crate) fn start_bare(args: &[&str]) -> KubeLab {
        let info: KubeLabInfo = crate::start_script("kube", args);
        let ca = std::fs::read(&info.ca_file).expect("CA file");
        let client = |timeout| {
            reqwest::blocking::Client::builder()
                .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("CA PEM"))
                .timeout(timeout)
                .user_agent(USER_AGENT)
                .build()
                .expect("HTTP client")
        };
        KubeLab {
            services: ServiceRouter::start(&info.egress_socket),
            url: info.url.clone(),
            kubeconfig: info.kubeconfig.clone(),
            client: client(REQUEST_TIMEOUT),
            watch_client: client(WATCH_TIMEOUT),
            info,
        }
    }

    /// The process id of one of its programs (`etcd`, `kube-apiserver`, `kube-controller-manager`).
    pub fn pid_of(&self, program: &str) -> Option<u32> {
        let pids = std::fs::read_to_string(self.info.dir.join("pids")).ok()?;
        pids.lines().find_map(|l| {
            let (pid, name) = l.split_once(' ')?;
            (name == program).then(|| pid.parse().ok()).flatten()
        })
    }

    /// Runs kubectl with the administrator's kubeconfig.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        Command::new("kubectl")
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .output()
            .expect("run kubectl (it is needed for the Kubernetes tests)")
    }

    /// Runs kubectl and panics with its output when it fails; returns its standard output.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {}:\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A kubeconfig with a fresh token of ServiceAccount `namespace/name` (one day), written as
    /// `DIR/<file>.kubeconfig`, pointing at `server` (the apiserver, or a proxy in front of it).
    pub fn service_account(
        &self,
        namespace: &str,
        name: &str,
        file: &str,
        server: Option<&str>,
    ) -> Credential {
        let path = format!("/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token");
        let request = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                             "spec": {"expirationSeconds": 86400}});
        let r = self.create(&path, &request);
        assert_eq!(r.status, 201, "token request: {}", String::from_utf8_lossy(&r.body));
        let token = r.json()["status"]["token"].as_str().expect("token").to_string();
        let claims = token.split('.').nth(1).expect("a JWT");
        let claims: Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(claims).expect("JWT claims"),
        )
        .expect("JWT claims JSON");
        let id = format!("JTI={}", claims["jti"].as_str().expect("jti"));
        let kubeconfig = self.info.dir.join(format!("{file}.kubeconfig"));
        let config = json!({
            "apiVersion": "v1", "kind": "Config", "current-context": "lab",
            "clusters": [{"name": "lab", "cluster": {
                "server": server.unwrap_or(&self.url), "certificate-authority": self.info.ca_file}}],
            "users": [{"name": name, "user": {"token": token}}],
            "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": name, "namespace": namespace}}],
        });
        std::fs::write(&kubeconfig, serde_json::to_vec_pretty(&config).expect("JSON")).expect("kubeconfig");
        Credential { kubeconfig, id }
    }

    /// A kubeconfig of config/'s controller ServiceAccount (`metalhost-system/metalhost-controller`).
    pub fn controller_credential(&self, file: &str) -> Credential {
        self.service_account("metalhost-system", "metalhost-controller", file, None)
    }

    /// Every request answered so far.
    pub fn requests(&self) -> Vec<RequestRecord> {
        let text = std::fs::read(&self.info.audit_log).unwrap_or_default();
        text.split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            // the last line may be half-written
            .filter_map(|l| serde_json::from_slice::<Value>(l).ok())
            .filter_map(|event| RequestRecord::from_audit(&event))
            .collect()
    }

    /// The requests of one user.
    pub fn requests_of(&self, user: &str) -> Vec<RequestRecord> {
        self.requests().into_iter().filter(|r| r.user == user).collect()
    }

    /// Compacts etcd's history at its current revision: a watch or list from an older
    /// resourceVersion that the apiserver's watch cache does not hold then gets 410 Gone.
    pub fn compact(&self) {
        let http = reqwest::blocking::Client::new();
        let key = base64::engine::general_purpose::STANDARD.encode("\0");
        let range: Value = http
            .post(format!("{}/v3/kv/range", self.info.etcd_url))
            .body(json!({"key": key, "limit": 1}).to_string())
            .send()
            .and_then(|r| r.json())
            .expect("etcd range");
        let revision = range["header"]["revision"].as_str().expect("etcd revision").to_string();
        let r = http
            .post(format!("{}/v3/kv/compaction", self.info.etcd_url))
            .body(json!({"revision": revision, "physical": true}).to_string())
            .send()
            .expect("etcd compaction");
        assert!(r.status().is_success(), "etcd compaction: {}", r.text().unwrap_or_default());
    }

    /// GET `path` (e.g. `/apis/metal3.io/v1alpha1/namespaces/default/baremetalhosts/h`).
    pub fn get(&self, path: &str) -> Response {
        self.request("GET", path, None, None)
    }

    /// POST `obj` to the collection `path`.
    pub fn create(&self, path: &str, obj: &Value) -> Response {
        self.request("POST", path, Some("application/json"), Some(obj.to_string().into_bytes()))
    }

    /// PATCH `path` (add `?fieldManager=...&force=true` to `path` for server-side apply).
    pub fn patch(&self, path: &str, patch_type: PatchType, body: &Value) -> Response {
        self.request("PATCH", path, Some(patch_type.content_type()), Some(body.to_string().into_bytes()))
    }

    /// DELETE `path`.
    pub fn delete(&self, path: &str) -> Response {
        self.request("DELETE", path, None, None)
    }

    /// The API path of an object (or with `name` empty, of its collection), found through discovery
    /// from its apiVersion, kind and namespace.
    pub fn path_of(&self, api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> String {
        let base = if api_version.contains('/') {
            format!("/apis/{api_version}")
        } else {
            format!("/api/{api_version}")
        };
        let list = self.get(&base).json();
        let r = list["resources"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["kind"] == kind && !r["name"].as_str().unwrap_or("/").contains('/'))
            .unwrap_or_else(|| panic!("no resource of kind {kind} in {api_version}"))
            .clone();
        let plural = r["name"].as_str().expect("resource name");
        let mut path = base;
        if r["namespaced"] == true {
            path += &format!("/namespaces/{}", namespace.unwrap_or("default"));
        }
        path += &format!("/{plural}");
        if !name.is_empty() {
            path += &format!("/{name}");
        }
        path
    }

    /// Creates every object of a (multi-document) YAML manifest, or merge-patches it when it
    /// exists (roughly `kubectl apply`); returns the objects as the apiserver answered. Panics on
    /// any other answer.
    pub fn apply_yaml(&self, yaml: &str) -> Vec<Value> {
        let mut out = Vec::new();
        for doc in serde_yaml_ng::Deserializer::from_str(yaml) {
            let obj = Value::deserialize(doc).expect("manifest is YAML");
            if obj.is_null() {
                continue;
            }
            let (api_version, kind) =
                (obj["apiVersion"].as_str().unwrap_or(""), obj["kind"].as_str().unwrap_or(""));
            let ns = obj["metadata"]["namespace"].as_str();
            let name = obj["metadata"]["name"].as_str().unwrap_or("");
            let r = self.create(&self.path_of(api_version, kind, ns, ""), &obj);
            let r = if r.status == 409 && r.reason() == "AlreadyExists" {
                self.patch(&self.path_of(api_version, kind, ns, name), PatchType::Merge, &obj)
            } else {
                r
            };
            assert!(r.status < 300, "apply {kind} {name}: {} {}", r.status, String::from_utf8_lossy(&r.body));
            out.push(r.json());
        }
        out
    }

    /// Opens a watch (`path` with its query, e.g. `...?watch=1&resourceVersion=5`); iterate for
    /// events (`{"type": ..., "object": ...}`) until the stream ends.
    pub fn watch(&self, path: &str) -> WatchStream {
        let r = self
            .watch_client
            .get(format!("{}{path}", self.url))
            .bearer_auth(&self.info.token)
            .send()
            .unwrap_or_else(|e| panic!("watch {path}: {e}"));
        assert_eq!(r.status().as_u16(), 200, "watch {path} answered {}", r.status());
        WatchStream { reader: BufReader::new(r) }
    }

    /// One request to the apiserver as the administrator.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Response {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("HTTP method");
        let mut request =
            self.client.request(method, format!("{}{path}", self.url)).bearer_auth(&self.info.token);
        if let Some(ct) = content_type {
            request = request.header("Content-Type", ct);
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        let r = request.send().unwrap_or_else(|e| panic!("{path}: {e}"));
        let status = r.status().as_u16();
        Response { status, body: r.bytes().map(|b| b.to_vec()).unwrap_or_default() }
    }

    /// Polls `path` until `check` likes the object (or `timeout` passes: panics).
    pub fn wait_for_object(
        &self,
        path: &str,
        timeout: Duration,
        check: impl Fn(&Response) -> bool,
    ) -> Response {
        let deadline = Instant::now() + timeout;
        loop {
            let r = self.get(path);
            if check(&r) {
                return r;
            }
            assert!(Instant::now() < deadline, "{path}: not as wanted within {timeout:?}: {}", r.status);
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

/// The User-Agent of the handle's own requests.
pub const USER_AGENT: &str = "metalhost-testlab";

/// Waits (up to a minute) until each of these CRDs is Established.
fn wait_established(kube: &KubeLab, names: &[String]) {
    for name in names {
        kube.wait_for_object(
            &format!("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"),
            Duration::from_secs(60),
            |r| {
                r.status == 200
                    && r.json()["status"]["conditions"].as_array().is_some_and(|c| {
                        c.iter().any(|c| c["type"] == "Established" && c["status"] == "True")
                    })
            },
        );
    }
}

/// The CRD names (`plural.group`) defined in these files or directories of YAML files.
fn crd_names(paths: &[&str]) -> Vec<String> {
    let mut files = Vec::new();
    for path in paths.iter().map(Path::new) {
        if path.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
                .expect("CRD directory")
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
                .collect();
            entries.sort();
            files.extend(entries);
        } else {
            files.push(path.to_path_buf());
        }
    }
    files
        .iter()
        .filter_map(|f| {
            let text = std::fs::read_to_string(f).ok()?;
            let crd: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).ok()?;
            Some(format!("{}.{}", crd["spec"]["names"]["plural"].as_str()?, crd["spec"]["group"].as_str()?))
        })
        .collect()
}

fn repo_path(path: &str) -> String {
    repo_root().join(path).to_string_lossy().into_owned()
}

/// The events of one watch stream, in order.
pub struct WatchStream {
    reader: BufReader<reqwest::blocking::Response>,
}

impl Iterator for WatchStream {
    type Item = Value;

    fn next(&mut self) -> Option<Value> {
        let mut line = String::new();
        loop {
            line.clear();
            if self.reader.read_line(&mut line).ok()? == 0 {
                return None;
            }
            if !line.trim().is_empty() {
                return Some(serde_json::from_str(&line).expect("watch event is JSON"));
            }
        }
    }
}

impl Drop for KubeLab {
    fn drop(&mut self) {
        self.services.stop();
        let _ = Command::new(repo_root().join("scripts/kube")).arg("stop").arg(&self.info.dir).status();
        if std::env::var_os("METALHOST_KEEP_LAB").is_none() {
            let _ = std::fs::remove_dir_all(&self.info.dir);
        }
    }
}
