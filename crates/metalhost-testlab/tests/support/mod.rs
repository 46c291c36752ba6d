//! Helpers shared by the tests that run the real `metalhost run --kube` binary against the real
//! control plane: building and running the binary, plain HTTP to Ironic and sushy-tools, a lab
//! shared by the tests of one file, waiting, and the RBAC check of the apiserver's audit log.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use metalhost_testlab::{CONTROLLER_USER, KubeLab, Lab, RequestRecord, repo_root};
use serde_json::Value;

/// The metalhost binary: $METALHOST_BIN, else built (`cargo build -p metalhost`) next to this test,
/// once per test process.
pub fn metalhost_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(build_metalhost).clone()
}

fn build_metalhost() -> PathBuf {
    if let Some(bin) = std::env::var_os("METALHOST_BIN") {
        return bin.into();
    }
    let exe = std::env::current_exe().expect("test executable");
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).expect("target/<profile>");
    let target_dir = profile_dir.parent().expect("target dir");
    let mut cargo = Command::new(env!("CARGO"));
    // without the variables cargo sets for this test, so that build scripts that watch them (ring
    // watches CARGO_PKG_*) do not rebuild half the workspace each time
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key == "CARGO"
            || key == "OUT_DIR"
            || [
                "CARGO_PKG_",
                "CARGO_MANIFEST_",
                "CARGO_CRATE_",
                "CARGO_BIN_",
                "CARGO_TARGET_TMPDIR",
                "CARGO_PRIMARY_",
            ]
            .iter()
            .any(|p| key.starts_with(p))
        {
            cargo.env_remove(&*key);
        }
    }
    let status = cargo
        .args(["build", "-p", "metalhost", "--bin", "metalhost"])
        .env("CARGO_TARGET_DIR", target_dir)
        .current_dir(repo_root())
        .status()
        .expect("run cargo build");
    assert!(status.success(), "cargo build -p metalhost failed");
    profile_dir.join("metalhost")
}

/// A running `metalhost` process, killed (SIGKILL) when the test ends, however it ends.
pub struct Running {
    child: Option<Child>,
    /// Where its stdout and stderr go.
    pub log: PathBuf,
}

impl Running {
    /// Starts `metalhost ARGS` with `envs`, its output in `log`; no inherited Kubernetes, Ironic or
    /// metalhost settings.
    pub fn start(args: &[&str], envs: &[(&str, &str)], log: &Path) -> Running {
        let file = std::fs::File::create(log).expect("log file");
        let mut cmd = Command::new(metalhost_bin());
        cmd.args(args);
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            if key.starts_with("METALHOST_")
                || key.starts_with("IRONIC_")
                || key.starts_with("POD_")
                || key.starts_with("DEPLOY_")
                || key == "KUBECONFIG"
            {
                cmd.env_remove(&*key);
            }
        }
        let child = cmd
            .envs(envs.iter().copied())
            .stdout(file.try_clone().expect("log"))
            .stderr(file)
            .stdin(Stdio::null())
            .spawn()
            .expect("start metalhost");
        Running { child: Some(child), log: log.to_path_buf() }
    }

    /// `metalhost run --kube --ironic URL` as config/'s controller ServiceAccount, with `extra`
    /// arguments.
    pub fn kube(kube: &KubeLab, ironic: &str, extra: &[&str], name: &str) -> Running {
        let mut args = vec!["run", "--kube", "--ironic", ironic];
        args.extend_from_slice(extra);
        let credential = kube.controller_credential(name);
        let kubeconfig = credential.kubeconfig.to_string_lossy().into_owned();
        Running::start(
            &args,
            &[("KUBECONFIG", &kubeconfig), ("METALHOST_LOG", "info")],
            &kube.info.dir.join(format!("{name}.log")),
        )
    }

    /// Its output so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or_default()
    }

    /// SIGKILL, and reap it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether it has exited.
    pub fn exited(&mut self) -> bool {
        self.child.as_mut().is_none_or(|c| c.try_wait().ok().flatten().is_some())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One lab (a real Ironic and sushy-tools with `systems` servers) shared by the tests of a file
/// that run at the same time: each test uses its own server and host names. Stopped when the last
/// test holding it ends.
pub fn shared_lab(systems: usize) -> Arc<Lab> {
    static LAB: Mutex<Weak<Lab>> = Mutex::new(Weak::new());
    let mut held = LAB.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(lab) = held.upgrade() {
        return lab;
    }
    let lab = Arc::new(Lab::start(systems));
    *held = Arc::downgrade(&lab);
    lab
}

/// A plain HTTP/1.0 request (loopback, no TLS): (status, body as JSON or `Null`).
pub fn http(method: &str, url: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    let (status, body) = http_text(method, url, headers);
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// A plain HTTP/1.0 request (loopback, no TLS): (status, body); status 0 when nothing answers.
pub fn http_text(method: &str, url: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let rest = url.strip_prefix("http://").unwrap_or_else(|| panic!("not plain http: {url}"));
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let Ok(mut stream) = TcpStream::connect(authority) else { return (0, String::new()) };
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("read timeout");
    let mut head = format!("{method} {path} HTTP/1.0\r\nHost: {authority}\r\nAccept: application/json\r\n");
    for (k, v) in headers {
        head += &format!("{k}: {v}\r\n");
    }
    head += "Content-Length: 0\r\n\r\n";
    stream.write_all(head.as_bytes()).expect("send");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).expect("read answer");
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, body.to_string())
}

/// GET from Ironic's API at its latest microversion.
pub fn ironic_get(lab: &Lab, path: &str) -> (u16, Value) {
    http(
        "GET",
        &format!("{}{path}", lab.info.ironic_url.trim_end_matches('/')),
        &[("X-OpenStack-Ironic-API-Version", "latest")],
    )
}

/// The Ironic node of host `namespace/name` (metalhost names it `namespace~name`), if any.
pub fn ironic_node(lab: &Lab, name: &str) -> Option<Value> {
    match ironic_get(lab, &format!("/v1/nodes/default~{name}")) {
        (200, node) => Some(node),
        (404, _) => None,
        (code, body) => panic!("Ironic answered {code} for node {name}: {body}"),
    }
}

/// Every Ironic node that drives emulated server `i` (whatever its name).
pub fn ironic_nodes_of_system(lab: &Lab, i: usize) -> Vec<Value> {
    let uuid = &lab.info.systems[i].uuid;
    let (code, nodes) = ironic_get(lab, "/v1/nodes/detail");
    assert_eq!(code, 200, "list Ironic nodes: {nodes}");
    nodes["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|n| {
            n["driver_info"]["redfish_system_id"].as_str().is_some_and(|s| s.ends_with(uuid.as_str()))
        })
        .cloned()
        .collect()
}

/// sushy-tools' view of emulated server `i`: (system, its Cd virtual media).
pub fn bmc(lab: &Lab, i: usize) -> (Value, Value) {
    let uuid = &lab.info.systems[i].uuid;
    let base = lab.info.sushy_url.trim_end_matches('/');
    let (_, system) = http("GET", &format!("{base}/redfish/v1/Systems/{uuid}"), &[]);
    let (_, cd) = http("GET", &format!("{base}/redfish/v1/Systems/{uuid}/VirtualMedia/Cd"), &[]);
    (system, cd)
}

/// Polls `check` every 250 ms until it gives a value; panics after `timeout` with `context()`
/// (the controller's log, say).
pub fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Option<T>,
    context: impl Fn() -> String,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}\n{}", context());
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The port of the address a metalhost process logged it serves at (`metrics served at
/// http://127.0.0.1:PORT/metrics`, `webhook served at https://127.0.0.1:PORT/…`); None until the
/// whole line is there.
pub fn served_port(log: &str) -> Option<u16> {
    let rest = log.split(" served at http").nth(1)?;
    let rest = rest.split_once("://127.0.0.1:")?.1;
    // up to the path, so that a line read half-written gives no port rather than a wrong one
    rest.split_once('/')?.0.parse().ok()
}

/// The requests metalhost (config/'s controller ServiceAccount) sent to the apiserver.
pub fn theirs(kube: &KubeLab) -> Vec<RequestRecord> {
    kube.requests_of(CONTROLLER_USER)
}

/// No request was refused for want of a permission: config/base/rbac.yaml grants everything
/// metalhost does (the real apiserver's RBAC and admission plugins judged each one).
pub fn assert_within_rbac(requests: &[RequestRecord]) {
    let refused: Vec<String> = requests
        .iter()
        .filter(|r| r.code == 403)
        .map(|r| format!("{} {}?{} ({})", r.verb, r.path, r.query, r.user))
        .collect();
    assert!(refused.is_empty(), "requests the apiserver refused with 403: {refused:#?}");
}
