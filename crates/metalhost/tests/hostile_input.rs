//! Hostile input, contained: `metalhost run --manifests DIR` (the real binary) fed what an
//! attacker with write access to the manifests directory would put there. Host names that would
//! leave the directory, planted symlinks, YAML bombs, special files and URLs with passwords: the
//! directory's surroundings stay untouched, the good host beside them is still reconciled, and no
//! password appears in the log (debug level) or in any status file.
//!
//! Most tests point metalhost at a dead port (they are about files, not Ironic); the bomb test
//! uses the lab so that the good host is really registered while the bomb sits beside it, and the
//! node-identity test an Ironic node of someone else that a planted status names.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use metalhost_api::BareMetalHost;
use metalhost_testlab::{Lab, Metalhost};

/// Kills the process when dropped, also when an assertion fails.
/// A scratch root holding `manifests/` (given to metalhost), `outside/` (must stay empty) and
/// the log (kept out of the manifests directory so that the directory checks see only
/// metalhost's own files).
struct Scene {
    _root: tempfile::TempDir,
    root: PathBuf,
    dir: PathBuf,
    outside: PathBuf,
    log: PathBuf,
}

impl Scene {
    fn new() -> Scene {
        let root_dir = tempfile::tempdir().unwrap();
        let root = root_dir.path().to_path_buf();
        let dir = root.join("manifests");
        let outside = root.join("outside");
        std::fs::create_dir(&dir).unwrap();
        std::fs::create_dir(&outside).unwrap();
        Scene { log: root.join("metalhost.log"), _root: root_dir, root, dir, outside }
    }

    /// Starts `metalhost run` at debug level, under a 4 GiB address-space limit so that a
    /// regression (a file read without bound) fails the test instead of the machine.
    fn run(&self, ironic: &str) -> Metalhost {
        // through sh, which sets the limit and then becomes metalhost
        let mut cmd = metalhost_testlab::process::command("sh".as_ref());
        cmd.args(["-c", "ulimit -v 4194304; exec \"$0\" \"$@\""])
            .arg(BIN)
            .args(["run", "--manifests"])
            .arg(&self.dir)
            .args(["--ironic", ironic])
            .env("METALHOST_LOG", "debug");
        Metalhost::spawn(cmd, &self.log)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the status file `file` (in the manifests directory) satisfies `pred`.
    fn wait_status(
        &self,
        proc: &mut Metalhost,
        file: &str,
        pred: impl Fn(&BareMetalHost) -> bool,
    ) -> BareMetalHost {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let host = std::fs::read_to_string(self.dir.join(file))
                .ok()
                .and_then(|t| serde_yaml_ng::from_str::<BareMetalHost>(&t).ok());
            if let Some(h) = host.filter(|h| pred(h)) {
                return h;
            }
            if let Some(code) = proc.exit_status() {
                panic!("metalhost run exited ({code}) before {file} was written; log:\n{}", self.log());
            }
            assert!(Instant::now() < deadline, "{file} not written in time; log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until the log holds `text`; returns how long after `since` it was first seen.
    fn wait_log(&self, proc: &mut Metalhost, text: &str, since: Instant) -> Duration {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if self.log().contains(text) {
                return since.elapsed();
            }
            if let Some(code) = proc.exit_status() {
                panic!("metalhost run exited ({code}); log:\n{}", self.log());
            }
            assert!(Instant::now() < deadline, "log never said {text:?}; log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn bare_host(name: &str, namespace: Option<&str>, bmc: &str) -> String {
    let ns = namespace.map(|n| format!(", namespace: {n:?}")).unwrap_or_default();
    format!(
        "apiVersion: metal3.io/v1alpha1\nkind: BareMetalHost\nmetadata: {{name: {name:?}{ns}}}\nspec:\n  online: true\n  \
         bmc: {{address: \"{bmc}\", credentialsName: c}}\n"
    )
}

fn sorted_entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn has_status(h: &BareMetalHost) -> bool {
    h.status.is_some()
}

#[test]
fn host_names_cannot_leave_the_directory_or_share_a_status_file() {
    let s = Scene::new();
    let absolute = s.root.join("absolute").display().to_string();
    write(
        &s.dir,
        "hosts.yaml",
        &[
            secret("c"),
            bare_host("../outside/escaped", None, "fake-hardware://a"),
            bare_host(&absolute, None, "fake-hardware://b"),
            bare_host("web", Some("lab/../../outside"), "fake-hardware://c"),
            bare_host("lab~web", None, "fake-hardware://d"),
            bare_host("web", Some("lab"), "fake-hardware://e"),
            bare_host("good", None, "fake-hardware://f"),
        ],
    );
    let dead = DeadPort::new();
    let mut proc = s.run(&dead.url());
    s.wait_status(&mut proc, "good.status.yaml", has_status);
    let lab_web = s.wait_status(&mut proc, "lab~web.status.yaml", has_status);
    assert_eq!(lab_web.qualified_name(), "lab/web", "lab~web.status.yaml is lab/web's alone");

    let log = s.log();
    for refused in [
        "metadata.name: Invalid value: \"../outside/escaped\": a lowercase RFC 1123 subdomain must consist of \
         lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
        &format!("metadata.name: Invalid value: {absolute:?}"),
        "metadata.namespace: Invalid value: \"lab/../../outside\": a lowercase RFC 1123 label",
        "metadata.name: Invalid value: \"lab~web\"",
    ] {
        assert!(log.contains(refused), "not reported: {refused}\nlog:\n{log}");
    }
    // nothing outside the directory, and inside only the two legitimate status files and the
    // event log
    assert_eq!(sorted_entries(&s.root), ["manifests", "metalhost.log", "outside"]);
    assert!(sorted_entries(&s.outside).is_empty(), "{:?}", sorted_entries(&s.outside));
    assert_eq!(
        sorted_entries(&s.dir),
        [".metalhost-events.jsonl", "good.status.yaml", "hosts.yaml", "lab~web.status.yaml"]
    );
}

#[test]
fn a_planted_temporary_file_symlink_is_not_followed() {
    let s = Scene::new();
    let victim = s.outside.join("victim");
    std::fs::write(&victim, "precious").unwrap();
    std::os::unix::fs::symlink(&victim, s.dir.join(".good.status.yaml.tmp")).unwrap();
    write(&s.dir, "hosts.yaml", &[secret("c"), bare_host("good", None, "fake-hardware://g")]);
    let dead = DeadPort::new();
    let mut proc = s.run(&dead.url());
    s.wait_status(&mut proc, "good.status.yaml", has_status);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious", "the symlink's target was written");
    let meta = std::fs::symlink_metadata(s.dir.join("good.status.yaml")).unwrap();
    assert!(meta.file_type().is_file(), "the status file is a regular file, not the planted link");
}

/// One anchored list referenced 5,000 times (~25 KB), the kind that cost 800 MB and 20 s.
fn alias_bomb() -> String {
    let mut text = String::from("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bomb}\ndata:\n  a: &a [");
    text.push_str(&vec!["lol"; 1000].join(","));
    text.push_str("]\n  b: [");
    text.push_str(&vec!["*a"; 5000].join(","));
    text.push_str("]\n");
    text
}

#[test]
fn yaml_bombs_are_refused_at_once_while_the_good_host_is_reconciled() {
    let lab = Lab::start(1);
    let s = Scene::new();
    let bomb = alias_bomb();
    assert!(bomb.len() < 30_000, "{}", bomb.len());
    std::fs::write(s.dir.join("bomb.yaml"), bomb).unwrap();
    // deep flow nesting, quadratic to parse: 1 MB of '['
    std::fs::write(s.dir.join("deep.yaml"), format!("a: {}{}\n", "[".repeat(500_000), "]".repeat(500_000)))
        .unwrap();
    write(&s.dir, "hosts.yaml", &[secret("c"), host("good", "fake-hardware://good", "c", "null", "")]);
    let started = Instant::now();
    let mut proc = s.run(&lab.info.ironic_url);
    let bomb_refused = s.wait_log(
        &mut proc,
        "bomb.yaml: line 6: YAML aliases (*name) are not accepted (they can expand a small file into gigabytes)",
        started,
    );
    let deep_refused = s.wait_log(&mut proc, "deep.yaml: line 1: nested deeper than 64 levels", started);
    let good = s.wait_status(&mut proc, "good.status.yaml", |h| {
        h.status.as_ref().is_some_and(|st| !st.provisioning.id.is_empty())
    });
    eprintln!(
        "from start: bomb refused after {bomb_refused:?}, deep nesting after {deep_refused:?}; good host \
         registered as node {} after {:?}",
        good.status.unwrap().provisioning.id,
        started.elapsed()
    );
}

#[test]
fn special_files_are_refused_without_hanging_or_reading_without_bound() {
    let s = Scene::new();
    std::os::unix::fs::symlink("/dev/zero", s.dir.join("zero.yaml")).unwrap();
    let made = Command::new("mkfifo").arg(s.dir.join("fifo.yaml")).status().unwrap();
    assert!(made.success());
    std::os::unix::fs::symlink("/dev/zero", s.dir.join("zero.status.yaml")).unwrap();
    std::fs::write(s.dir.join("big.status.yaml"), "#".repeat(2 * 1024 * 1024)).unwrap();
    write(&s.dir, "hosts.yaml", &[secret("c"), bare_host("good", None, "fake-hardware://g")]);
    let dead = DeadPort::new();
    let mut proc = s.run(&dead.url());
    s.wait_status(&mut proc, "good.status.yaml", has_status);
    let log = s.log();
    for refused in [
        "zero.yaml: not a regular file (a character device); not read",
        "fifo.yaml: not a regular file (a FIFO); not read",
        "zero.status.yaml: corrupt status file ignored: is a symbolic link; not read",
        "big.status.yaml: corrupt status file ignored: 2097152 bytes is over the 1048576-byte limit; not read",
    ] {
        assert!(log.contains(refused), "not reported: {refused}\nlog:\n{log}");
    }
    assert!(proc.exit_status().is_none(), "metalhost run exited");
}

#[test]
fn no_password_from_a_url_reaches_the_log_or_a_status() {
    const IRONIC_PASSWORD: &str = "Ir0nic-pa55-in-url";
    const BMC_PASSWORD: &str = "Bmc-pa55-in-address";
    let s = Scene::new();
    let dead = DeadPort::new();
    let ironic = dead.url().replace("http://", &format!("http://metalhost:{IRONIC_PASSWORD}@"));
    write(
        &s.dir,
        "hosts.yaml",
        &[
            secret("c"),
            bare_host(
                "h1",
                None,
                &format!("redfish://admin:{BMC_PASSWORD}@127.0.0.1:1/redfish/v1/Systems/1"),
            ),
            bare_host("h2", None, &format!("bogus://admin:{BMC_PASSWORD}@10.0.0.1/x")),
        ],
    );
    let mut proc = s.run(&ironic);
    // a few rounds of errors, so every message has been logged and stored
    let h1 = s.wait_status(&mut proc, "h1.status.yaml", |h| {
        h.status.as_ref().is_some_and(|st| st.error_count >= 2)
    });
    let h2 = s.wait_status(&mut proc, "h2.status.yaml", |h| {
        h.status.as_ref().is_some_and(|st| !st.error_message.is_empty())
    });
    let m1 = &h1.status.unwrap().error_message;
    assert!(m1.starts_with("Ironic unreachable at http://127.0.0.1:"), "{m1}");
    let m2 = &h2.status.unwrap().error_message;
    assert!(m2.contains("bogus://***@10.0.0.1/x"), "the address is shown without its userinfo: {m2}");
    let mut places = vec![(s.log.clone(), s.log())];
    for name in sorted_entries(&s.dir).into_iter().filter(|n| n != "hosts.yaml") {
        let path = s.dir.join(&name);
        places.push((path.clone(), std::fs::read_to_string(&path).unwrap()));
    }
    assert!(places.len() >= 3);
    for (path, text) in places {
        for secret in [IRONIC_PASSWORD, BMC_PASSWORD] {
            assert!(!text.contains(secret), "{secret} in {}:\n{text}", path.display());
        }
    }
}

#[test]
fn a_status_naming_another_node_never_makes_metalhost_touch_it() {
    let lab = Lab::start(1);
    let s = Scene::new();
    let rt = tokio::runtime::Runtime::new().unwrap();
    // someone else's node, on and running in Ironic
    let victim = rt.block_on(async {
        let ironic = ironic(&lab).await;
        let fields = serde_json::json!({"name": "other~victim", "driver": "fake-hardware"});
        let node = ironic.create_node(fields.as_object().unwrap()).await.unwrap();
        ironic.set_power_state(&node.uuid, metalhost_ironic::PowerTarget::On).await.unwrap();
        node.uuid
    });
    let before = rt.block_on(async { ironic(&lab).await.get_node(&victim).await.unwrap().unwrap() });
    // a host whose (edited) status says it is provisioned on that node, while its spec has no
    // image: deprovisioning, powering off and deleting are all at hand
    let files =
        write(&s.dir, "hosts.yaml", &[secret("c"), host("web", "fake-hardware://web", "c", "null", "")]);
    let mut planted: BareMetalHost =
        serde_yaml_ng::from_str(&host("web", "fake-hardware://web", "c", "null", "")).unwrap();
    planted.metadata.namespace = Some("default".into());
    let mut status = metalhost_api::BareMetalHostStatus::default();
    status.provisioning.state = metalhost_api::ProvisioningState::Provisioned;
    status.provisioning.id = victim.clone();
    status.powered_on = true;
    planted.status = Some(status);
    metalhost::standalone::store::write(&s.dir, &planted).unwrap();

    let mut proc = s.run(&lab.info.ironic_url);
    s.wait_log(&mut proc, "names an Ironic node of another name; leaving it alone", Instant::now());
    // and the host deleted: still nothing happens to the victim
    std::fs::remove_file(&files).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while s.dir.join("web.status.yaml").exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(proc);
    let after = rt.block_on(async { ironic(&lab).await.get_node(&victim).await.unwrap() });
    let after = after.expect("the unrelated node still exists");
    assert_eq!(
        (after.provision_state.as_str(), after.power_state.as_deref(), after.name.as_deref()),
        (before.provision_state.as_str(), Some("power on"), Some("other~victim")),
        "log:\n{}",
        s.log()
    );
    assert_eq!(after.instance_info, before.instance_info, "not patched");
    assert_eq!(after.driver_info, before.driver_info, "not patched");
}
