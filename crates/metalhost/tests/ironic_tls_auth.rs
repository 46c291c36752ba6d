//! Ironic behind TLS (a self-signed CA) with HTTP basic auth (`auth_strategy=http_basic`, bcrypt
//! htpasswd): metalhost connects with the CA file and credentials, refuses the unknown certificate
//! unless told to accept any, is refused without the right password, and provisions through it.
//! The same through the binary's flags and environment variables, and a certificate issued for
//! another host name is refused even when its CA is trusted.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use metalhost::standalone::{Runtime, Source};
use metalhost_api::ProvisioningState;
use metalhost_ironic::{Client, ClientConfig, Error};
use metalhost_testlab::{Lab, Metalhost};

fn secure_config(lab: &Lab) -> ClientConfig {
    let mut config = ClientConfig::new(lab.info.ironic_url.clone());
    config.ca_file = lab.info.ironic_ca_file.clone();
    config.basic_auth =
        Some((lab.info.ironic_user.clone().unwrap(), lab.info.ironic_password.clone().unwrap()));
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_basic_auth_to_ironic() {
    let lab = Lab::start_secure(1);
    assert!(lab.info.ironic_url.starts_with("https://"));

    // the CA file and the credentials: in
    let client = Client::connect(secure_config(&lab)).await.unwrap();
    assert!(client.list_nodes().await.unwrap().is_empty());

    // the system's trust roots do not know the lab CA: refused, saying why
    let mut no_ca = secure_config(&lab);
    no_ca.ca_file = None;
    let err = Client::connect(no_ca.clone()).await.unwrap_err();
    assert!(matches!(err, Error::Unreachable { .. }), "{err}");
    assert!(err.to_string().to_lowercase().contains("certificate"), "{err}");

    // unless told to accept any certificate
    let mut insecure = no_ca;
    insecure.insecure = true;
    Client::connect(insecure).await.unwrap().list_nodes().await.unwrap();

    // a wrong password is refused by Ironic
    let mut wrong = secure_config(&lab);
    wrong.basic_auth = Some((lab.info.ironic_user.clone().unwrap(), "wrong".into()));
    let outcome = match Client::connect(wrong).await {
        Ok(c) => c.list_nodes().await.map(|_| ()),
        Err(e) => Err(e),
    };
    assert_eq!(outcome.unwrap_err().status(), Some(401));

    // and a live-ISO host provisions through TLS and auth
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "host.yaml",
        &[
            secret("c"),
            host(
                "h1",
                "fake-hardware://h1",
                "c",
                &live_iso(&lab.info.iso_url),
                "  bootMACAddress: \"52:54:00:00:03:01\"\n",
            ),
        ],
    );
    let mut cfg = config(&lab);
    cfg.ironic = secure_config(&lab);
    let mut rt = Runtime::new(cfg, Source::Dir(dir.path().to_path_buf()));
    settle(&mut rt, Duration::from_secs(120)).await;
    assert_eq!(status(&rt, "h1").provisioning.state, ProvisioningState::Provisioned);
    assert_eq!(node(&client, "h1").await.provision_state.as_str(), "active");

    // the binary: CA file, user and password file as flags
    let (ca, user, password) = (
        lab.info.ironic_ca_file.clone().unwrap(),
        lab.info.ironic_user.clone().unwrap(),
        lab.info.ironic_password.clone().unwrap(),
    );
    let password_file = dir.path().join("ironic-password");
    std::fs::write(&password_file, format!("{password}\n")).unwrap();
    let flags = binary_dir("h2");
    let mut proc = run(
        flags.path(),
        &[
            "--ironic",
            &lab.info.ironic_url,
            "--ironic-ca-file",
            ca.to_str().unwrap(),
            "--ironic-user",
            &user,
            "--ironic-password-file",
            password_file.to_str().unwrap(),
        ],
        &[],
    );
    let h2 = wait_status(&mut proc, flags.path(), "h2", |s| !s.provisioning.id.is_empty());
    assert_eq!(node(&client, "h2").await.uuid, h2.provisioning.id, "registered through flags");

    // the same as environment variables
    let env = binary_dir("h3");
    let vars = [
        ("METALHOST_IRONIC_URL", lab.info.ironic_url.as_str()),
        ("METALHOST_IRONIC_CA_FILE", ca.to_str().unwrap()),
        ("METALHOST_IRONIC_USER", user.as_str()),
        ("METALHOST_IRONIC_PASSWORD", password.as_str()),
    ];
    let mut proc = run(env.path(), &[], &vars);
    let h3 = wait_status(&mut proc, env.path(), "h3", |s| !s.provisioning.id.is_empty());
    assert_eq!(node(&client, "h3").await.uuid, h3.provisioning.id, "registered through the environment");

    // a wrong password in the environment: Ironic's 401 in the status, not a node
    let wrong = binary_dir("h4");
    let mut vars_wrong = vars;
    vars_wrong[3] = ("METALHOST_IRONIC_PASSWORD", "wrong");
    let mut proc = run(wrong.path(), &[], &vars_wrong);
    let h4 = wait_status(&mut proc, wrong.path(), "h4", |s| !s.error_message.is_empty());
    assert!(h4.error_message.contains("HTTP 401"), "{}", h4.error_message);
    assert!(client.get_node("default~h4").await.unwrap().is_none());

    // without the CA file: the certificate is refused
    let no_ca = binary_dir("h5");
    let mut proc = run(no_ca.path(), &[], &[vars[0], vars[2], vars[3]]);
    let h5 = wait_status(&mut proc, no_ca.path(), "h5", |s| !s.error_message.is_empty());
    assert!(h5.error_message.to_lowercase().contains("certificate"), "{}", h5.error_message);

    // the password is in no log and no status file
    for dir in [flags.path(), env.path(), wrong.path(), no_ca.path()] {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(!text.contains(&password), "Ironic password in {}", path.display());
        }
    }
}

/// Kills the process when dropped, also when an assertion fails.
/// A manifests directory with one live-ISO-less host `name` (fake hardware).
fn binary_dir(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let n: u8 = name[1..].parse().unwrap();
    let mac = format!("  bootMACAddress: \"52:54:00:00:03:{:02x}\"\n", 0x10 + n);
    write(
        dir.path(),
        "hosts.yaml",
        &[secret("c"), host(name, &format!("fake-hardware://{name}"), "c", "null", &mac)],
    );
    dir
}

/// `metalhost run --manifests DIR` with these flags and environment variables (and none of the
/// METALHOST_IRONIC_* variables of the test's own environment), logging at debug level to
/// DIR/metalhost.log.
fn run(dir: &Path, flags: &[&str], env: &[(&str, &str)]) -> Metalhost {
    let log = dir.join("metalhost.log");
    let mut cmd = metalhost_testlab::process::command(BIN.as_ref());
    cmd.args(["run", "--manifests"]).arg(dir).args(flags);
    cmd.envs(env.iter().copied()).env("METALHOST_LOG", "debug");
    Metalhost::spawn(cmd, &log)
}

/// Waits until the status file of `name` satisfies `pred`; returns its status.
fn wait_status(
    proc: &mut Metalhost,
    dir: &Path,
    name: &str,
    pred: impl Fn(&metalhost_api::BareMetalHostStatus) -> bool,
) -> metalhost_api::BareMetalHostStatus {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(s) = status_file(dir, name).and_then(|h| h.status).filter(|s| pred(s)) {
            return s;
        }
        let log = || std::fs::read_to_string(dir.join("metalhost.log")).unwrap_or_default();
        if let Some(code) = proc.exit_status() {
            panic!("metalhost run exited ({code}); log:\n{}", log());
        }
        assert!(
            Instant::now() < deadline,
            "{name}: not reached; {:#?}\nlog:\n{}",
            status_file(dir, name),
            log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// An HTTPS server with a certificate for `names` (self-signed, so it is its own CA); returns
/// its URL and the certificate's PEM file. It serves the webhook (every Ironic path is a 404),
/// which is enough to tell a TLS refusal from an answer.
async fn tls_server(dir: &Path, names: &[&str]) -> (String, std::path::PathBuf) {
    let cert =
        rcgen::generate_simple_self_signed(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    let tag = names[0];
    let (cert_path, key_path) = (dir.join(format!("{tag}.crt")), dir.join(format!("{tag}.key")));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    // bound here and kept: no parallel test can take the port before the server serves on it
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (c, k) = (cert_path.clone(), key_path);
    tokio::spawn(async move { metalhost::webhook::serve_on(listener, &c, &k).await.unwrap() });
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (format!("https://127.0.0.1:{port}"), cert_path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_for_another_host_name_is_refused() {
    let certs = tempfile::tempdir().unwrap();
    // control: a certificate for 127.0.0.1 from the same kind of CA is accepted (the 404 is the
    // server's answer, so the TLS handshake went through)
    let (right_url, right_ca) = tls_server(certs.path(), &["127.0.0.1"]).await;
    let right = binary_dir("h6");
    let mut proc =
        run(right.path(), &["--ironic", &right_url, "--ironic-ca-file", right_ca.to_str().unwrap()], &[]);
    let ok = wait_status(&mut proc, right.path(), "h6", |s| !s.error_message.is_empty());
    assert!(ok.error_message.contains("Ironic refused GET /: HTTP 404"), "{}", ok.error_message);

    // the same, but the certificate names another host: refused in the handshake
    let (wrong_url, wrong_ca) = tls_server(certs.path(), &["ironic.wrong.example"]).await;
    let wrong = binary_dir("h7");
    let mut proc =
        run(wrong.path(), &["--ironic", &wrong_url, "--ironic-ca-file", wrong_ca.to_str().unwrap()], &[]);
    let refused = wait_status(&mut proc, wrong.path(), "h7", |s| !s.error_message.is_empty());
    let message = refused.error_message.to_lowercase();
    assert!(message.starts_with("ironic unreachable at https://127.0.0.1:"), "{message}");
    assert!(
        message.contains("certificate")
            && (message.contains("not valid for name") || message.contains("notvalidforname")),
        "{message}"
    );
}
