//! The admission webhook over real HTTPS: AdmissionReview JSON in, allow or deny with upstream's
//! messages out.

use std::time::Duration;

use metalhost::webhook::{VALIDATE_PATH, serve_on};
use serde_json::{Value, json};

fn review(operation: &str, object: Value, old: Value) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": "metal3.io", "version": "v1alpha1", "kind": "BareMetalHost"},
            "resource": {"group": "metal3.io", "version": "v1alpha1", "resource": "baremetalhosts"},
            "name": "h1",
            "namespace": "default",
            "operation": operation,
            "userInfo": {"username": "admin"},
            "object": object,
            "oldObject": old,
            "dryRun": false
        }
    })
}

/// Serves the webhook on `listener` with a fresh self-signed certificate for `names`: (its port, a
/// client that trusts it, the directory holding the certificate).
fn serve_self_signed(
    listener: std::net::TcpListener,
    names: &[&str],
) -> (u16, reqwest::Client, tempfile::TempDir) {
    let cert =
        rcgen::generate_simple_self_signed(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert_path, key_path) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { serve_on(listener, &cert_path, &key_path).await.unwrap() });
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    (port, client, dir)
}

fn host(spec: Value) -> Value {
    json!({"apiVersion": "metal3.io/v1alpha1", "kind": "BareMetalHost",
           "metadata": {"name": "h1", "namespace": "default"}, "spec": spec})
}

#[tokio::test]
async fn admission_reviews_over_https() {
    // bound here and kept: no other test can take the port before the webhook serves on it
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (port, client, _dir) = serve_self_signed(listener, &["127.0.0.1", "localhost"]);
    let url = format!("https://127.0.0.1:{port}{VALIDATE_PATH}");
    let send = |body: Value| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            for _ in 0..50 {
                if let Ok(r) = client.post(&url).json(&body).send().await {
                    return r.json::<Value>().await.unwrap();
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!("webhook not answering");
        }
    };

    let good = host(json!({"online": true, "bootMACAddress": "00:11:22:33:44:55",
                           "bmc": {"address": "ipmi://bmc", "credentialsName": "c"}}));
    let answer = send(review("CREATE", good.clone(), Value::Null)).await;
    assert_eq!(answer["kind"], "AdmissionReview");
    assert_eq!(answer["response"]["uid"], "705ab4f5-6393-11e8-b7cc-42010a800002");
    assert_eq!(answer["response"]["allowed"], true);

    let bad = host(json!({"online": false, "disablePowerOff": true,
                          "bmc": {"address": "foo://bmc", "credentialsName": "c"},
                          "image": {"url": "http://h/d.qcow2", "format": "qcow2"}}));
    let answer = send(review("CREATE", bad, Value::Null)).await;
    assert_eq!(answer["response"]["allowed"], false);
    assert_eq!(
        answer["response"]["status"]["message"],
        "spec.bmc.address: Unknown BMC type 'foo' for address foo://bmc; \
         spec.image.checksum: checksum is required for normal images; \
         spec.disablePowerOff: node can't simultaneously have online set to false and have power off disabled"
    );

    let mut moved = good.clone();
    moved["spec"]["bootMACAddress"] = json!("00:11:22:33:44:66");
    moved["status"] = json!({"operationalStatus": "OK", "errorMessage": "", "errorCount": 0,
        "provisioningFailCount": 0, "poweredOn": true, "provisioning": {"state": "provisioned", "ID": "n1"}});
    let answer = send(review("UPDATE", moved, good)).await;
    assert_eq!(answer["response"]["allowed"], false);
    assert_eq!(
        answer["response"]["status"]["message"],
        "spec.bootMACAddress: bootMACAddress can not be changed once it is set"
    );

    // a denial never shows a password written into a BMC address
    let leaky = host(json!({"online": true,
                            "bmc": {"address": "foo://admin:s3cr3t@bmc", "credentialsName": "c"}}));
    let answer = send(review("CREATE", leaky, Value::Null)).await;
    assert_eq!(answer["response"]["allowed"], false);
    let message = answer["response"]["status"]["message"].as_str().unwrap();
    assert!(message.contains("Unknown BMC type 'foo'") && !message.contains("s3cr3t"), "{message}");

    // 200,000 nested brackets in an annotation (far under the API server's 256 KiB limit) are
    // denied with Go's message, and the webhook still answers afterwards (it overflowed its stack
    // and aborted before)
    let fine = host(json!({"online": true, "bootMACAddress": "00:11:22:33:44:55",
                           "bmc": {"address": "ipmi://bmc", "credentialsName": "c"}}));
    let mut deep = fine.clone();
    deep["metadata"]["annotations"] = json!({"reboot.metal3.io/x": "[".repeat(200_000)});
    let answer = send(review("CREATE", deep, Value::Null)).await;
    assert_eq!(answer["response"]["allowed"], false);
    assert_eq!(
        answer["response"]["status"]["message"],
        "metadata.annotations[reboot.metal3.io/x]: failed to unmarshal the data from the reboot.metal3.io \
         annotation: invalid character '[' exceeded max depth"
    );
    assert_eq!(send(review("CREATE", fine, Value::Null)).await["response"]["allowed"], true);

    // plain HTTP is not served, and health answers over HTTPS
    let plain = reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await;
    assert!(!plain.is_ok_and(|r| r.status().is_success()), "no plain HTTP");
    let health = client.get(format!("https://127.0.0.1:{port}/healthz")).send().await.unwrap();
    assert!(health.status().is_success());
}

/// A self-signed certificate for 127.0.0.1: (certificate PEM, key PEM).
fn self_signed() -> (String, String) {
    let cert =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    (cert.cert.pem(), cert.signing_key.serialize_pem())
}

/// Publishes a certificate the way kubelet updates a mounted Secret: the files in a new
/// timestamped directory, then the `..data` symlink swapped atomically (`tls.crt` and `tls.key`
/// are links through `..data`).
fn publish(dir: &std::path::Path, version: &str, cert: &str, key: &str) {
    let versioned = dir.join(format!("..{version}"));
    std::fs::create_dir(&versioned).unwrap();
    std::fs::write(versioned.join("tls.crt"), cert).unwrap();
    std::fs::write(versioned.join("tls.key"), key).unwrap();
    let tmp = dir.join("..data_tmp");
    std::os::unix::fs::symlink(format!("..{version}"), &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
    for file in ["tls.crt", "tls.key"] {
        if std::fs::symlink_metadata(dir.join(file)).is_err() {
            std::os::unix::fs::symlink(format!("..data/{file}"), dir.join(file)).unwrap();
        }
    }
}

/// Whether a new connection trusting only `ca` gets an answer from /healthz.
async fn trusted_by(port: u16, ca: &str) -> bool {
    let client = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).unwrap())
        .build()
        .unwrap();
    client
        .get(format!("https://127.0.0.1:{port}/healthz"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

#[tokio::test]
async fn a_renewed_certificate_is_served_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (a_cert, a_key) = self_signed();
    let (b_cert, b_key) = self_signed();
    publish(dir.path(), "2026_01_01", &a_cert, &a_key);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (c, k) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    tokio::spawn(async move { serve_on(listener, &c, &k).await.unwrap() });
    let mut up = false;
    for _ in 0..50 {
        if trusted_by(port, &a_cert).await {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "webhook not answering with certificate A");
    assert!(!trusted_by(port, &b_cert).await, "B is not served yet");

    // a half-written renewal (a key that does not match) keeps A in service
    publish(dir.path(), "2026_02_01", &b_cert, &a_key);
    assert!(trusted_by(port, &a_cert).await, "A stays while the new pair is inconsistent");

    // the renewal complete: the next connection gets B
    publish(dir.path(), "2026_02_02", &b_cert, &b_key);
    assert!(trusted_by(port, &b_cert).await, "B is served after the swap");
    assert!(!trusted_by(port, &a_cert).await, "A is no longer served");
}

/// The default address ([::]) serves both families: on a single-stack IPv6 cluster the apiserver
/// and the probes reach the webhook on ::1 as they do on 127.0.0.1 elsewhere.
#[tokio::test]
async fn the_default_address_answers_on_ipv6_and_ipv4_loopback() {
    let default: std::net::SocketAddr = metalhost::listen::WEBHOOK_DEFAULT.parse().unwrap();
    assert!(default.ip().is_unspecified() && default.is_ipv6(), "the default is [::]: {default}");
    let listener = metalhost::listen::bind(std::net::SocketAddr::new(default.ip(), 0)).unwrap();
    let (port, client, _dir) = serve_self_signed(listener, &["127.0.0.1", "::1"]);
    for host in ["127.0.0.1", "[::1]"] {
        let mut answered = false;
        for _ in 0..50 {
            if let Ok(r) = client.get(format!("https://{host}:{port}/healthz")).send().await {
                assert!(r.status().is_success(), "{host}");
                answered = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(answered, "no answer on {host}");
    }
}
