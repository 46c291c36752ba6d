//! The one way tests and benchmarks start the `metalhost` binary: a clean environment (none of the
//! caller's metalhost, Ironic, BMO or Kubernetes settings, so a developer's shell cannot change a
//! test), the given variables, output to a log file, and the process killed when the handle goes.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::KubeLab;

/// Variables a test never inherits: they would configure metalhost behind the test's back.
fn inherited_setting(key: &str) -> bool {
    ["METALHOST_", "IRONIC_", "POD_", "DEPLOY_", "BMO_", "LIVE_ISO_"].iter().any(|p| key.starts_with(p))
        || ["KUBECONFIG", "PROVISIONING_LIMIT", "METAL3_AUTH_ROOT_DIR"].contains(&key)
}

/// `bin` (the metalhost binary: `env!("CARGO_BIN_EXE_metalhost")` in its crate's tests and
/// benchmarks) as a command with a clean environment, for one-shot commands (`.output()`).
pub fn command(bin: &Path) -> Command {
    let mut cmd = Command::new(bin);
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if inherited_setting(&key) {
            cmd.env_remove(&*key);
        }
    }
    cmd.stdin(Stdio::null());
    cmd
}

/// A running `metalhost` process, killed (SIGKILL) when the handle is dropped, however the test
/// ends.
pub struct Metalhost {
    child: Option<Child>,
    /// Where its stdout and stderr go.
    pub log: PathBuf,
}

impl Metalhost {
    /// Starts `bin ARGS` with `envs` (see [`command`]), its output in `log`.
    pub fn start(bin: &Path, args: &[&str], envs: &[(&str, &str)], log: &Path) -> Metalhost {
        let mut cmd = command(bin);
        cmd.args(args).envs(envs.iter().copied());
        Metalhost::spawn(cmd, log)
    }

    /// Starts a command made with [`command`] (and more settings), its output in `log`.
    pub fn spawn(mut cmd: Command, log: &Path) -> Metalhost {
        let file = std::fs::File::create(log).expect("log file");
        let child = cmd.stdout(file.try_clone().expect("log")).stderr(file).spawn().expect("start metalhost");
        Metalhost { child: Some(child), log: log.to_path_buf() }
    }

    /// `metalhost run --kube --ironic URL` as config/'s controller ServiceAccount, with `extra`
    /// arguments; its log is `NAME.log` in the control plane's directory.
    pub fn kube(bin: &Path, kube: &KubeLab, ironic: &str, extra: &[&str], name: &str) -> Metalhost {
        let mut args = vec!["run", "--kube", "--ironic", ironic];
        args.extend_from_slice(extra);
        let credential = kube.controller_credential(name);
        let kubeconfig = credential.kubeconfig.to_string_lossy().into_owned();
        Metalhost::start(
            bin,
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
        self.exit_status().is_some() || self.child.is_none()
    }

    /// How it ended, once it has.
    pub fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.child.as_mut().and_then(|c| c.try_wait().ok().flatten())
    }

    /// Waits for it to exit; its status.
    pub fn wait(&mut self) -> Option<std::process::ExitStatus> {
        self.child.as_mut().and_then(|c| c.wait().ok())
    }
}

impl Drop for Metalhost {
    fn drop(&mut self) {
        self.kill();
    }
}
