//! What the benchmarks share: a counting proxy in front of Ironic (exact, classified request
//! counts for any client, in or out of process), /proc figures of a process, and a child process
//! killed however a run ends.
// each benchmark uses its part
#![allow(dead_code)]

pub mod side_by_side;

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{Method, StatusCode, header};
use axum::response::Response;
use serde_json::Value;

/// Requests seen by the proxy, per kind, and the nodes (by UUID and name) it has seen `active`.
#[derive(Default)]
pub struct Counts {
    kinds: Mutex<BTreeMap<String, u64>>,
    active: Mutex<HashSet<String>>,
    calls: Mutex<Vec<Call>>,
}

/// One request in the order the proxy saw it: the node it names (UUID or name, from the path,
/// the query or the body; empty if none) and its kind.
#[derive(Debug, Clone)]
pub struct Call {
    pub node: String,
    pub kind: String,
}

/// Prefix of the kinds of requests made for a node already shown `active`.
pub const AFTER_ACTIVE: &str = "after active: ";

impl Counts {
    /// Counts one request of this kind.
    pub fn add(&self, kind: String) {
        *self.kinds.lock().unwrap().entry(kind).or_default() += 1;
    }
    /// Logs one request in order.
    pub fn log(&self, node: String, kind: String) {
        self.calls.lock().unwrap().push(Call { node, kind });
    }
    /// The requests that named this node (by UUID or name), in order.
    pub fn calls_of(&self, idents: &[&str]) -> Vec<String> {
        let calls = self.calls.lock().unwrap();
        calls.iter().filter(|c| idents.contains(&c.node.as_str())).map(|c| c.kind.clone()).collect()
    }
    /// The counts so far.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.kinds.lock().unwrap().clone()
    }
    /// Whether the proxy has shown this node (UUID or name) active.
    pub fn is_active(&self, ident: &str) -> bool {
        self.active.lock().unwrap().contains(ident)
    }
    /// Notes a node read that shows the node active with nothing under way.
    pub fn saw(&self, body: &[u8]) {
        let Ok(node) = serde_json::from_slice::<Value>(body) else { return };
        if node["provision_state"] == "active" && node["target_provision_state"].is_null() {
            let mut active = self.active.lock().unwrap();
            for key in ["uuid", "name"] {
                if let Some(v) = node[key].as_str() {
                    active.insert(v.to_string());
                }
            }
        }
    }
}

/// The benchmark's numeric option `flag` (`--hosts 20`), or `default`.
pub fn number(flag: &str, default: u64) -> u64 {
    let argv: Vec<String> = std::env::args().collect();
    argv.iter()
        .position(|x| x == flag)
        .and_then(|i| argv.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Every request.
pub fn total(counts: &BTreeMap<String, u64>) -> u64 {
    counts.values().sum()
}

/// The requests up to each node's `active`.
pub fn to_active(counts: &BTreeMap<String, u64>) -> u64 {
    counts.iter().filter(|(k, _)| !k.starts_with(AFTER_ACTIVE)).map(|(_, v)| v).sum()
}

pub fn is_uuid(s: &str) -> bool {
    s.len() == 36 && s.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

/// The kind of an Ironic request, by the phase of a host's life it serves.
pub fn classify(method: &Method, path: &str, body: &[u8]) -> String {
    let segments: Vec<&str> = path.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    let kind = match (method.as_str(), segments.as_slice()) {
        (_, [] | ["v1"]) => "version negotiation",
        ("POST", ["v1", "nodes"]) => "register: create node",
        ("POST", ["v1", "ports"]) => "register: create port",
        ("GET", ["v1", "ports"]) | ("GET", ["v1", "nodes", _, "ports"]) => "register: read ports",
        ("GET", ["v1", "nodes", id]) if !is_uuid(id) => "register: look up by name",
        ("GET", ["v1", "nodes", _]) => "read node",
        ("GET", ["v1", "nodes"]) => "list nodes",
        ("PATCH", ["v1", "nodes", _]) => "patch node",
        ("GET", ["v1", "nodes", _, "validate"]) => "validate",
        ("PUT", ["v1", "nodes", _, "states", "power"]) => "power",
        ("PUT", ["v1", "nodes", _, "states", "provision"]) => {
            let target = serde_json::from_slice::<Value>(body)
                .ok()
                .and_then(|v| v["target"].as_str().map(str::to_string))
                .unwrap_or_else(|| "?".into());
            return format!("provision: {target}");
        }
        _ => return format!("{} {}", method, metalhost_ironic::endpoint(path)),
    };
    kind.to_string()
}

/// Starts the proxy on a free port; returns its URL and its counters.
pub async fn start_proxy(upstream: String) -> (String, Arc<Counts>) {
    let counts = Arc::new(Counts::default());
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(900))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let c = counts.clone();
    let app = axum::Router::new().fallback(move |req: Request| {
        let (http, upstream, counts) = (http.clone(), upstream.clone(), c.clone());
        async move { forward(&http, &upstream, &counts, req).await }
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, counts)
}

/// Headers of one hop, not forwarded (RFC 9110 §7.6.1), and the ones the proxy sets itself.
pub fn forwarded(name: &header::HeaderName) -> bool {
    ![
        header::HOST,
        header::CONTENT_LENGTH,
        header::CONNECTION,
        header::TRANSFER_ENCODING,
        header::TE,
        header::UPGRADE,
        header::TRAILER,
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
    ]
    .contains(name)
        && name.as_str() != "keep-alive"
        && name.as_str() != "proxy-connection"
}

pub async fn forward(http: &reqwest::Client, upstream: &str, counts: &Counts, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, 64 << 20).await else {
        return status_only(StatusCode::BAD_REQUEST);
    };
    let path = parts.uri.path();
    let node = match path.trim_matches('/').split('/').collect::<Vec<_>>().as_slice() {
        ["v1", "nodes", ident, ..] => Some(ident.to_string()),
        _ => None,
    };
    let kind = classify(&parts.method, path, &body);
    let ident = node.clone().unwrap_or_else(|| node_in(parts.uri.query(), &body));
    counts.log(ident.clone(), kind.clone());
    if counts.is_active(&ident) {
        counts.add(format!("{AFTER_ACTIVE}{kind}"));
    } else {
        counts.add(kind);
    }
    let target = format!("{upstream}{}", parts.uri.path_and_query().map_or("/", |p| p.as_str()));
    let mut request = http.request(parts.method.clone(), target).body(body);
    for (name, value) in parts.headers.iter().filter(|(name, _)| forwarded(name)) {
        request = request.header(name, value);
    }
    // no answer from Ironic is "busy" to the clients (transient), never a made-up permanent error
    let Ok(answer) = request.send().await else {
        return status_only(StatusCode::SERVICE_UNAVAILABLE);
    };
    let status = answer.status();
    let mut response = Response::builder().status(status);
    for (name, value) in answer.headers().iter().filter(|(name, _)| forwarded(name)) {
        response = response.header(name, value);
    }
    let Ok(bytes) = answer.bytes().await else {
        return status_only(StatusCode::SERVICE_UNAVAILABLE);
    };
    let is_node_read = parts.method == Method::GET && node.is_some() && path.matches('/').count() <= 3;
    if is_node_read && status.is_success() {
        counts.saw(&bytes);
    }
    response.body(Body::from(bytes)).unwrap()
}

/// The node a request names outside its path: `node`/`node_uuid` in the query, or `name` or
/// `node_uuid` in a JSON body (a node or port being created).
fn node_in(query: Option<&str>, body: &[u8]) -> String {
    let from_query = query.into_iter().flat_map(|q| q.split('&')).find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        ["node", "node_uuid"].contains(&key).then(|| value.to_string())
    });
    let from_body = || {
        let v = serde_json::from_slice::<Value>(body).ok()?;
        ["node_uuid", "name"].iter().find_map(|k| v[*k].as_str().map(str::to_string))
    };
    from_query.or_else(from_body).unwrap_or_default()
}

pub fn status_only(status: StatusCode) -> Response {
    Response::builder().status(status).body(Body::empty()).unwrap()
}

/// (peak RSS in MiB, CPU seconds) of a running process, from /proc.
pub fn usage(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let hwm_kib: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after_comm = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    let ticks: f64 = fields.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (hwm_kib / 1024.0, ticks / 100.0)
}

/// The metalhost process, killed however the run ends.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the benchmarked binary with `args` in a clean environment (none of the caller's
/// PROVISIONING_LIMIT, DEPLOY_* or METALHOST_* settings) plus `env`, logging warnings only
/// (`METALHOST_BENCH_LOG` sets another filter, e.g. `metalhost=debug,kube_runtime=info` to see why
/// each host was looked at).
pub fn spawn_metalhost(args: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> KillOnDrop {
    let log = std::env::var("METALHOST_BENCH_LOG").unwrap_or_else(|_| "warn".into());
    let child = metalhost_testlab::process::command(env!("CARGO_BIN_EXE_metalhost").as_ref())
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .env("METALHOST_LOG", log)
        .stdout(std::process::Stdio::null())
        .stdin(std::process::Stdio::null())
        .spawn()
        .expect("start metalhost");
    KillOnDrop(child)
}
