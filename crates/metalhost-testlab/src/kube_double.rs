//! A handle on `scripts/kube-double`, the stateful Kubernetes API-server double: tests start it,
//! point the real binary (or kube-rs) at its kubeconfig, drive objects through its API as kubectl
//! would, and read its request log to count writes and check every request against RBAC rules.
//!
//! The HTTP client here is a tiny blocking one over `std::net::TcpStream` (plain HTTP on loopback),
//! so this crate stays free of an async runtime.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::repo_root;

/// Where the double listens and what it wrote, as `scripts/kube-double start` prints it.
#[derive(Debug, Clone, Deserialize)]
pub struct KubeDoubleInfo {
    /// The double's scratch directory.
    pub dir: PathBuf,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Its port.
    pub port: u16,
    /// The serving process (stopped by this PID).
    pub pid: u32,
    /// A kubeconfig naming `url` (no TLS, a dummy token): give it to the binary as `KUBECONFIG`.
    pub kubeconfig: PathBuf,
    /// One JSON line per request (see [`RequestRecord`]).
    pub request_log: PathBuf,
    /// The double's own output (tracebacks, if it has a bug).
    pub log: PathBuf,
}

/// One request the double answered, as logged (control requests under `/_double/` are not).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct RequestRecord {
    /// When it arrived (RFC 3339, UTC, microseconds).
    pub time: String,
    /// HTTP method.
    pub method: String,
    /// URL path, without the query.
    pub path: String,
    /// Raw query string.
    #[serde(default)]
    pub query: String,
    /// The RBAC verb: get, list, watch, create, update, patch, delete, deletecollection (for a
    /// non-resource URL, the lower-cased method).
    pub verb: String,
    /// API group (`""` for core).
    #[serde(default)]
    pub api_group: String,
    /// API version.
    #[serde(default)]
    pub api_version: String,
    /// Resource (plural), empty for a non-resource URL.
    #[serde(default)]
    pub resource: String,
    /// Subresource (`status`) or empty.
    #[serde(default)]
    pub subresource: String,
    /// Namespace, empty when cluster-wide.
    #[serde(default)]
    pub namespace: String,
    /// Object name, empty for collections.
    #[serde(default)]
    pub name: String,
    /// The request's Content-Type (the patch type, for patches).
    #[serde(default)]
    pub content_type: String,
    /// The client's User-Agent.
    #[serde(default)]
    pub user_agent: String,
    /// Who sent it: the bearer token of its kubeconfig (the double authenticates no one, so the
    /// token stands for the user; give replicas different tokens to tell their requests apart).
    #[serde(default)]
    pub user: String,
    /// The `fieldManager` query parameter, if any.
    #[serde(default)]
    pub field_manager: String,
    /// HTTP status answered (200 for a watch that started).
    pub code: u16,
    /// Discovery, `/version`, health: not a resource request.
    #[serde(default)]
    pub non_resource: bool,
}

impl RequestRecord {
    /// True for verbs that change state.
    pub fn is_write(&self) -> bool {
        matches!(self.verb.as_str(), "create" | "update" | "patch" | "delete" | "deletecollection")
    }
}

/// What an RBAC rule is checked against: (apiGroup, resource, subresource, verb).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RbacAttributes {
    /// API group (`""` for core).
    pub api_group: String,
    /// Resource (plural).
    pub resource: String,
    /// Subresource or empty.
    pub subresource: String,
    /// RBAC verb.
    pub verb: String,
    /// Namespace, empty when cluster-wide (a namespaced Role only grants inside its namespace).
    pub namespace: String,
}

/// Maps a logged request to the attributes RBAC authorizes; `None` for non-resource URLs
/// (discovery, `/version`), which the default `system:discovery` role grants to everyone.
pub fn rbac_attributes(record: &RequestRecord) -> Option<RbacAttributes> {
    if record.non_resource || record.resource.is_empty() {
        return None;
    }
    Some(RbacAttributes {
        api_group: record.api_group.clone(),
        resource: record.resource.clone(),
        subresource: record.subresource.clone(),
        verb: record.verb.clone(),
        namespace: record.namespace.clone(),
    })
}

#[derive(Debug, Clone, Deserialize)]
struct PolicyRule {
    #[serde(rename = "apiGroups", default)]
    api_groups: Vec<String>,
    #[serde(default)]
    resources: Vec<String>,
    #[serde(default)]
    verbs: Vec<String>,
    #[serde(rename = "resourceNames", default)]
    resource_names: Vec<String>,
}

/// The rules of every ClusterRole and Role in a manifest (e.g. `config/base/rbac.yaml`), to check the
/// double's request log against. Bindings are not followed: every role counts as granted.
#[derive(Debug, Clone, Default)]
pub struct RbacRules {
    /// (namespace of a Role, or `None` for a ClusterRole; its rule)
    rules: Vec<(Option<String>, PolicyRule)>,
}

impl RbacRules {
    /// Parses the roles out of a multi-document YAML manifest.
    pub fn from_yaml(text: &str) -> RbacRules {
        let mut rules = Vec::new();
        for doc in serde_yaml_ng::Deserializer::from_str(text) {
            let doc = Value::deserialize(doc).expect("RBAC manifest is YAML");
            let kind = doc["kind"].as_str().unwrap_or_default();
            if kind != "ClusterRole" && kind != "Role" {
                continue;
            }
            let ns = (kind == "Role")
                .then(|| doc["metadata"]["namespace"].as_str().unwrap_or("default").to_string());
            for rule in doc["rules"].as_array().into_iter().flatten() {
                let rule: PolicyRule = serde_json::from_value(rule.clone()).expect("an RBAC rule");
                rules.push((ns.clone(), rule));
            }
        }
        RbacRules { rules }
    }

    /// Whether some rule grants this request (resource names are honoured for named requests).
    pub fn allows(&self, record: &RequestRecord) -> bool {
        let Some(a) = rbac_attributes(record) else { return true };
        let resource = if a.subresource.is_empty() {
            a.resource.clone()
        } else {
            format!("{}/{}", a.resource, a.subresource)
        };
        self.rules.iter().any(|(ns, rule)| {
            let any = |list: &[String], want: &str| list.iter().any(|x| x == "*" || x == want);
            ns.as_ref().is_none_or(|ns| *ns == a.namespace)
                && any(&rule.api_groups, &a.api_group)
                && any(&rule.resources, &resource)
                && any(&rule.verbs, &a.verb)
                && (rule.resource_names.is_empty() || rule.resource_names.contains(&record.name))
        })
    }
}

/// A plain HTTP answer.
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

/// The patch types the double understands (as the API server's Content-Types).
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

/// One object the double holds, from [`KubeDouble::objects`].
#[derive(Debug, Clone, Deserialize)]
pub struct StoredObject {
    /// `group/version/plural` (`/v1/secrets` for core).
    pub resource: String,
    /// Namespace, empty when cluster-scoped.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// The object as served.
    pub object: Value,
}

/// A running API-server double; dropped, it stops the process (by PID).
#[derive(Debug)]
pub struct KubeDouble {
    /// Where it listens and what it wrote.
    pub info: KubeDoubleInfo,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Its kubeconfig.
    pub kubeconfig: PathBuf,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The User-Agent of the handle's own requests (to tell them apart in the request log).
pub const USER_AGENT: &str = "metalhost-testlab";

/// Reads can block (a watch waiting for an event); this bounds a test that would hang on a bug.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

impl KubeDouble {
    /// Starts a double with the repo's CRDs (`config/crd/`). Panics with the script's message
    /// when it cannot start (this is test set-up).
    pub fn start() -> KubeDouble {
        Self::start_with(&[])
    }

    /// Starts a double with extra `scripts/kube-double start` options (`--crd PATH`,
    /// `--bookmark-interval S`, `--max-events N`, `--no-default-crds`).
    pub fn start_with(args: &[&str]) -> KubeDouble {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("metalhost-kube-double-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let out = Command::new(repo_root().join("scripts/kube-double"))
            .arg("start")
            .arg(&dir)
            .args(args)
            .output()
            .expect("run scripts/kube-double");
        assert!(
            out.status.success(),
            "scripts/kube-double start failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let info: KubeDoubleInfo = serde_json::from_slice(&out.stdout).expect("kube-double.json");
        KubeDouble { url: info.url.clone(), kubeconfig: info.kubeconfig.clone(), info }
    }

    /// Every request answered so far (since the last [`reset_requests`](Self::reset_requests)).
    pub fn requests(&self) -> Vec<RequestRecord> {
        let text = std::fs::read_to_string(&self.info.request_log).unwrap_or_default();
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("request log line {l}: {e}")))
            .collect()
    }

    /// Empties the request log.
    pub fn reset_requests(&self) {
        self.control("requests/reset");
    }

    /// Every object the double holds, with the current global resourceVersion.
    pub fn objects(&self) -> (String, Vec<StoredObject>) {
        #[derive(Deserialize)]
        struct Dump {
            #[serde(rename = "resourceVersion")]
            resource_version: String,
            objects: Vec<StoredObject>,
        }
        let dump: Dump = serde_json::from_value(self.request("GET", "/_double/objects", None, None).json())
            .expect("object dump");
        (dump.resource_version, dump.objects)
    }

    /// Holds back watch events (they are delivered on [`resume_watches`](Self::resume_watches)).
    pub fn pause_watches(&self) {
        self.control("watches/pause");
    }

    /// Delivers held-back watch events and resumes.
    pub fn resume_watches(&self) {
        self.control("watches/resume");
    }

    /// Ends every open watch stream cleanly (as an API server restart would); clients re-watch.
    pub fn close_watches(&self) {
        self.control("watches/close");
    }

    /// Forgets the change history: a watch from an older resourceVersion then gets 410 Gone.
    pub fn compact(&self) {
        self.control("compact");
    }

    fn control(&self, what: &str) {
        let r = self.request("POST", &format!("/_double/{what}"), None, None);
        assert_eq!(r.status, 200, "/_double/{what}: {}", String::from_utf8_lossy(&r.body));
    }

    /// GET `path` (e.g. `/apis/metal3.io/v1alpha1/namespaces/default/baremetalhosts/h`).
    pub fn get(&self, path: &str) -> Response {
        self.request("GET", path, None, None)
    }

    /// POST `obj` to the collection `path`.
    pub fn create(&self, path: &str, obj: &Value) -> Response {
        self.request("POST", path, Some("application/json"), Some(obj.to_string().as_bytes()))
    }

    /// PUT `obj` at `path`.
    pub fn update(&self, path: &str, obj: &Value) -> Response {
        self.request("PUT", path, Some("application/json"), Some(obj.to_string().as_bytes()))
    }

    /// PATCH `path` (add `?fieldManager=...&force=true` to `path` for server-side apply).
    pub fn patch(&self, path: &str, patch_type: PatchType, body: &Value) -> Response {
        self.request("PATCH", path, Some(patch_type.content_type()), Some(body.to_string().as_bytes()))
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
    /// exists (roughly `kubectl apply`); returns the objects as the double answered. Panics on
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
        let mut stream = self.connect();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\nUser-Agent: {USER_AGENT}\r\n\r\n",
            self.info.port
        )
        .expect("send watch");
        let mut reader = BufReader::new(stream);
        let (status, headers) = read_head(&mut reader);
        assert_eq!(status, 200, "watch {path} answered {status}");
        assert!(
            headers.iter().any(|(k, v)| k == "transfer-encoding" && v.contains("chunked")),
            "watch not chunked"
        );
        WatchStream { reader, pending: Vec::new(), done: false }
    }

    fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(("127.0.0.1", self.info.port)).expect("connect to the double");
        stream.set_read_timeout(Some(READ_TIMEOUT)).expect("read timeout");
        stream
    }

    /// One HTTP request to the double.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Option<&[u8]>,
    ) -> Response {
        let mut stream = self.connect();
        let body = body.unwrap_or_default();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\nUser-Agent: {USER_AGENT}\r\n\
             Content-Length: {}\r\n",
            self.info.port,
            body.len()
        );
        if let Some(ct) = content_type {
            head += &format!("Content-Type: {ct}\r\n");
        }
        head += "\r\n";
        stream.write_all(head.as_bytes()).and_then(|_| stream.write_all(body)).expect("send request");
        let mut reader = BufReader::new(stream);
        let (status, headers) = read_head(&mut reader);
        let chunked = headers.iter().any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
        let mut body = Vec::new();
        if chunked {
            while let Some(chunk) = read_chunk(&mut reader) {
                body.extend(chunk);
            }
        } else if let Some((_, n)) = headers.iter().find(|(k, _)| k == "content-length") {
            body.resize(n.parse().expect("content-length"), 0);
            reader.read_exact(&mut body).expect("read body");
        } else {
            reader.read_to_end(&mut body).expect("read body");
        }
        Response { status, body }
    }
}

fn read_head(reader: &mut impl BufRead) -> (u16, Vec<(String, String)>) {
    let mut line = String::new();
    reader.read_line(&mut line).expect("status line");
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status {line:?}"));
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).expect("header line");
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    (status, headers)
}

/// One chunk of a chunked body, `None` at its end (or when the connection closes).
fn read_chunk(reader: &mut impl BufRead) -> Option<Vec<u8>> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let size = usize::from_str_radix(line.trim().split(';').next()?, 16).ok()?;
    if size == 0 {
        return None;
    }
    let mut chunk = vec![0; size + 2];
    reader.read_exact(&mut chunk).ok()?;
    chunk.truncate(size);
    Some(chunk)
}

/// The events of one watch stream, in order.
pub struct WatchStream {
    reader: BufReader<TcpStream>,
    pending: Vec<u8>,
    done: bool,
}

impl Iterator for WatchStream {
    type Item = Value;

    fn next(&mut self) -> Option<Value> {
        loop {
            if let Some(pos) = self.pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=pos).collect();
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return Some(serde_json::from_slice(&line).expect("watch event is JSON"));
            }
            if self.done {
                return None;
            }
            match read_chunk(&mut self.reader) {
                Some(chunk) => self.pending.extend(chunk),
                None => self.done = true,
            }
        }
    }
}

impl Drop for KubeDouble {
    fn drop(&mut self) {
        let _ =
            Command::new(repo_root().join("scripts/kube-double")).arg("stop").arg(&self.info.dir).status();
        if std::env::var_os("METALHOST_KEEP_LAB").is_none() {
            let _ = std::fs::remove_dir_all(&self.info.dir);
        }
    }
}
