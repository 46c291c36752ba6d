//! The webhook and the metrics server under a flood, as real processes: 2,000 connections that
//! send nothing, and a request that trickles in (the metrics: its headers; the webhook: an
//! AdmissionReview body over TLS). Both answer /healthz within seconds, drop the idle and slow
//! connections, and stay within the webhook's memory limit in config/ (64 MiB). Before, 2,000 half-sent requests took the webhook to 67 MB, and 1,100 idle
//! connections to the metrics port used up the process's file descriptors.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use metalhost_testlab::Metalhost;

struct Server {
    child: Metalhost,
}

impl Server {
    fn start(args: &[&str], dir: &std::path::Path) -> (Server, u16) {
        let log = dir.join(format!("{}.log", args[0]));
        let child = Metalhost::start(
            env!("CARGO_BIN_EXE_metalhost").as_ref(),
            args,
            &[("METALHOST_LOG", "info")],
            &log,
        );
        let server = Server { child };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = server.child.output();
            if let Some(port) = text
                .split(" served at http")
                .nth(1)
                .and_then(|r| r.split_once("://127.0.0.1:"))
                .and_then(|(_, r)| r.split_once('/'))
                .and_then(|(p, _)| p.parse().ok())
            {
                return (server, port);
            }
            assert!(Instant::now() < deadline, "{args:?} never served:\n{text}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Peak resident memory (VmHWM), MiB.
    fn peak_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.pid())).unwrap();
        let kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap();
        kib / 1024.0
    }
}

/// Whether the server has closed `stream` (a read sees the end, or a reset).
fn closed(stream: &mut TcpStream) -> bool {
    stream.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
    }
}

/// Floods the server with 2,000 idle connections while `slow` (started on a thread, ending when
/// the server gives up on it) trickles a request in.
fn flood(port: u16, healthz: impl Fn() -> bool, slow: impl FnOnce() + Send + 'static, server: &Server) {
    // the trickle first, so that it holds a connection before the flood fills the rest
    let slow = std::thread::spawn(move || {
        let began = Instant::now();
        slow();
        began.elapsed()
    });
    std::thread::sleep(Duration::from_millis(500));
    let mut idle: Vec<TcpStream> =
        (0..2000).filter_map(|_| TcpStream::connect(("127.0.0.1", port)).ok()).collect();
    let started = Instant::now();
    let answered = (0..150).any(|_| {
        if healthz() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
        false
    });
    assert!(answered, "/healthz unanswered under 2,000 idle connections");
    eprintln!("/healthz answered {:.1} s into the flood", started.elapsed().as_secs_f64());
    // the idle connections are dropped by the server within seconds
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline && !idle.iter_mut().step_by(97).all(closed) {
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(idle.iter_mut().step_by(97).all(closed), "idle connections still open after 20 s");
    while Instant::now() < deadline + Duration::from_secs(10) && !slow.is_finished() {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(slow.is_finished(), "the trickling request is still served");
    let lasted = slow.join().expect("the trickling request ended as it should");
    // the premise: it was served, then cut (not refused at once)
    assert!(lasted > Duration::from_secs(3), "the trickling request ended after {lasted:?}");
    eprintln!("the trickling request was cut after {:.1} s", lasted.as_secs_f64());
    eprintln!("idle and slow connections dropped {:.1} s into the flood", started.elapsed().as_secs_f64());
    assert!(healthz(), "/healthz after the flood");
    let peak = server.peak_mib();
    eprintln!("peak RSS {peak:.1} MiB");
    assert!(peak < 64.0, "peak RSS {peak:.1} MiB, over the 64 MiB limit of config/");
}

/// `metalhost webhook` on a free loopback port with a fresh self-signed certificate in `dir`:
/// (the process, its port, the certificate's PEM to trust).
fn start_webhook(dir: &std::path::Path) -> (Server, u16, String) {
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let (crt, key) = (dir.join("tls.crt"), dir.join("tls.key"));
    std::fs::write(&crt, cert.cert.pem()).unwrap();
    std::fs::write(&key, cert.signing_key.serialize_pem()).unwrap();
    let args = [
        "webhook",
        "--listen",
        "127.0.0.1:0",
        "--cert",
        crt.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ];
    let (server, port) = Server::start(&args, dir);
    (server, port, cert.cert.pem())
}

#[test]
fn the_metrics_server_outlasts_idle_and_slow_connections() {
    let dir = tempfile::tempdir().unwrap();
    let manifests = dir.path().join("hosts");
    std::fs::create_dir(&manifests).unwrap();
    let (server, port) = Server::start(
        &[
            "run",
            "--manifests",
            manifests.to_str().unwrap(),
            "--ironic",
            "http://127.0.0.1:9",
            "--metrics-listen",
            "127.0.0.1:0",
        ],
        dir.path(),
    );
    let healthz = || {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else { return false };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        answer.starts_with("HTTP/1.1 200")
    };
    // headers that trickle in, a byte every 200 ms: cut at the header deadline
    let slow = move || {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let _ = stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n");
        for _ in 0..300 {
            if stream.write_all(b"X").is_err() || closed(&mut stream) {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    flood(port, healthz, slow, &server);
}

/// A body that yields a byte a second, for 2 MB.
struct Trickle(usize);

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.0 == 0 || buf.is_empty() {
            return Ok(0);
        }
        std::thread::sleep(Duration::from_secs(1));
        self.0 -= 1;
        buf[0] = b' ';
        Ok(1)
    }
}

#[test]
fn the_webhook_outlasts_idle_and_slow_connections() {
    let dir = tempfile::tempdir().unwrap();
    let (server, port, ca) = start_webhook(dir.path());
    let client = reqwest::blocking::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).unwrap())
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let healthz = || {
        client.get(format!("https://127.0.0.1:{port}/healthz")).send().is_ok_and(|r| r.status().is_success())
    };
    // an AdmissionReview whose 2 MB body comes a byte a second: cut at the request deadline
    let slow = move || {
        let client = reqwest::blocking::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).unwrap())
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let answer = client
            .post(format!("https://127.0.0.1:{port}/validate-metal3-io-v1alpha1-baremetalhost"))
            .header("Content-Type", "application/json")
            .body(reqwest::blocking::Body::sized(Trickle(2_000_000), 2_000_000))
            .send();
        assert!(answer.is_err() || answer.is_ok_and(|r| !r.status().is_success()), "the trickle was served");
    };
    flood(port, healthz, slow, &server);
}

/// A body given in pieces a second apart.
struct Slowly(Vec<Vec<u8>>);

impl Read for Slowly {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.0.is_empty() {
            return Ok(0);
        }
        std::thread::sleep(Duration::from_secs(1));
        let mut piece = self.0.remove(0);
        let n = piece.len().min(buf.len());
        buf[..n].copy_from_slice(&piece[..n]);
        if n < piece.len() {
            self.0.insert(0, piece.split_off(n));
        }
        Ok(n)
    }
}

/// SIGTERM (a rollout) while a review is being sent: the review is still answered, then the
/// webhook ends by itself (exit 0). Before, the signal's default action ended it mid-review.
#[test]
fn sigterm_lets_the_review_in_flight_finish_then_the_webhook_ends() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, port, ca) = start_webhook(dir.path());
    let review =
        serde_json::json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "u-1", "kind": {"group": "metal3.io", "version": "v1alpha1", "kind": "BareMetalHost"},
        "resource": {"group": "metal3.io", "version": "v1alpha1", "resource": "baremetalhosts"},
        "name": "h1", "namespace": "default", "operation": "CREATE", "userInfo": {"username": "admin"},
        "object": {"apiVersion": "metal3.io/v1alpha1", "kind": "BareMetalHost",
                   "metadata": {"name": "h1", "namespace": "default"},
                   "spec": {"online": true, "bootMACAddress": "00:11:22:33:44:55",
                            "bmc": {"address": "ipmi://bmc", "credentialsName": "c"}}}}})
        .to_string()
        .into_bytes();
    let len = review.len() as u64;
    let pieces: Vec<Vec<u8>> = review.chunks(review.len() / 3 + 1).map(<[u8]>::to_vec).collect();
    let sent = std::thread::spawn(move || {
        let client = reqwest::blocking::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).unwrap())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        client
            .post(format!("https://127.0.0.1:{port}/validate-metal3-io-v1alpha1-baremetalhost"))
            .header("Content-Type", "application/json")
            .body(reqwest::blocking::Body::sized(Slowly(pieces), len))
            .send()
            .and_then(|r| r.json::<serde_json::Value>())
    });
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        Command::new("kill").args(["-TERM", &server.child.pid().to_string()]).status().unwrap().success()
    );
    let answer = sent.join().unwrap().expect("the review in flight is answered");
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = server.child.exit_status() {
            break status;
        }
        assert!(Instant::now() < deadline, "the webhook still runs 15 s after SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "ended by itself, not by the signal: {status:?}");
}
