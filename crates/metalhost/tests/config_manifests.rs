//! The deployment manifests under config/: the CRD there is the one the code generates, every
//! manifest parses, and what `kubectl apply -k` would send (rendered with `kubectl kustomize`) is
//! in an order the API server accepts, names only objects it also creates (or that are optional),
//! and runs containers whose arguments and environment the real binary accepts.
//!
//! kubectl is needed for the rendering tests; without it they say so and pass, unless
//! METALHOST_REQUIRE_KUBECTL=1 (scripts/test sets it), where they fail.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use serde::Deserialize;
use serde_json::Value;

fn config() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../config")
}

const NAMESPACE: &str = "metalhost-system";

#[test]
fn committed_crd_is_the_generated_one() {
    let committed = std::fs::read_to_string(config().join("crd/metal3.io_baremetalhosts.yaml")).unwrap();
    let generated = serde_yaml_ng::to_string(&metalhost_api::crd()).unwrap();
    assert!(
        committed == generated,
        "config/crd is stale: the first document of `metalhost crd` goes to config/crd/metal3.io_baremetalhosts.yaml"
    );
    let hardware_data = std::fs::read_to_string(config().join("crd/metal3.io_hardwaredata.yaml")).unwrap();
    assert!(
        hardware_data == metalhost_api::HARDWARE_DATA_CRD,
        "config/crd/metal3.io_hardwaredata.yaml is not upstream's"
    );
    for (file, upstream) in [
        ("metal3.io_hostfirmwaresettings.yaml", metalhost_api::firmware::HOST_FIRMWARE_SETTINGS_CRD),
        ("metal3.io_firmwareschemas.yaml", metalhost_api::firmware::FIRMWARE_SCHEMA_CRD),
        ("metal3.io_dataimages.yaml", metalhost_api::data_image::DATA_IMAGE_CRD),
    ] {
        let committed = std::fs::read_to_string(config().join("crd").join(file)).unwrap();
        assert!(committed == upstream, "config/crd/{file} is not upstream's");
    }
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            yaml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml") {
            out.push(path);
        }
    }
}

fn documents(text: &str, what: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(text)
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("{what}: {e}")))
        .filter(|v| !v.is_null())
        .collect()
}

#[test]
fn every_manifest_parses_and_names_its_kind() {
    let mut files = Vec::new();
    yaml_files(&config(), &mut files);
    assert!(files.len() >= 8, "{files:?}");
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for doc in documents(&text, &file.display().to_string()) {
            assert!(doc["kind"].is_string(), "{}: no kind", file.display());
        }
    }
}

/// `kubectl kustomize DIR`, or None (with the reason printed) when kubectl is not installed.
fn kustomize(dir: &Path) -> Option<Vec<Value>> {
    match Command::new("kubectl").arg("kustomize").arg(dir).output() {
        Ok(out) => {
            assert!(
                out.status.success(),
                "kubectl kustomize {}: {}",
                dir.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            Some(documents(&String::from_utf8(out.stdout).unwrap(), "kustomize output"))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            assert!(
                std::env::var("METALHOST_REQUIRE_KUBECTL").as_deref() != Ok("1"),
                "kubectl is needed to render config/ (METALHOST_REQUIRE_KUBECTL=1)"
            );
            eprintln!("SKIPPED: kubectl not found, config/ not rendered");
            None
        }
        Err(e) => panic!("kubectl: {e}"),
    }
}

fn kind(o: &Value) -> &str {
    o["kind"].as_str().unwrap_or("")
}

fn name(o: &Value) -> &str {
    o["metadata"]["name"].as_str().unwrap_or("")
}

fn namespace(o: &Value) -> &str {
    o["metadata"]["namespace"].as_str().unwrap_or("")
}

/// The position of the object of this kind and name (and namespace, for namespaced kinds).
fn find(objects: &[Value], k: &str, n: &str, ns: &str) -> Option<usize> {
    objects.iter().position(|o| kind(o) == k && name(o) == n && namespace(o) == ns)
}

fn must_find(objects: &[Value], k: &str, n: &str, ns: &str, by: &str) -> usize {
    find(objects, k, n, ns).unwrap_or_else(|| panic!("{by} names {k} {ns}/{n}, which is not applied"))
}

const CLUSTER_SCOPED: [&str; 5] = [
    "Namespace",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleBinding",
    "ValidatingWebhookConfiguration",
];

fn containers(deployment: &Value) -> Vec<&Value> {
    deployment["spec"]["template"]["spec"]["containers"].as_array().unwrap().iter().collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect()).unwrap_or_default()
}

/// Runs the real binary with a container's arguments plus `--check-config` and the environment
/// the pod would have (literal values, ConfigMaps from the rendered output, field references as
/// placeholders); returns its output as `name: value` pairs.
fn check_config(objects: &[Value], container: &Value) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for from in container["envFrom"].as_array().into_iter().flatten() {
        let map = from["configMapRef"]["name"].as_str().expect("envFrom configMapRef");
        let i = find(objects, "ConfigMap", map, NAMESPACE).expect("envFrom ConfigMap");
        for (k, v) in objects[i]["data"].as_object().unwrap() {
            env.insert(k.clone(), v.as_str().unwrap().to_string());
        }
    }
    for var in container["env"].as_array().into_iter().flatten() {
        let value = match (&var["value"], &var["valueFrom"]["fieldRef"]) {
            (Value::String(v), _) => v.clone(),
            (_, Value::Object(_)) => "from-the-pod".to_string(),
            _ => panic!("env {var}: only values and field references are expected"),
        };
        env.insert(var["name"].as_str().unwrap().to_string(), value);
    }
    let mut args = strings(&container["args"]);
    args.push("--check-config".into());
    let out = metalhost_testlab::process::command(env!("CARGO_BIN_EXE_metalhost").as_ref())
        .args(&args)
        .env_clear()
        .envs(&env)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "metalhost {args:?} with {env:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once(": ").map(|(k, v)| (k.to_string(), v.to_string())))
        .collect()
}

fn port_of(addr: &str) -> u64 {
    addr.rsplit(':').next().unwrap().parse().unwrap()
}

fn container_port(container: &Value, port: &Value) -> u64 {
    match port {
        Value::Number(n) => n.as_u64().unwrap(),
        Value::String(named) => container["ports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == *named)
            .unwrap_or_else(|| panic!("no port named {named} in {}", container["name"]))["containerPort"]
            .as_u64()
            .unwrap(),
        _ => panic!("port {port}"),
    }
}

fn selects(selector: &Value, labels: &Value) -> bool {
    selector.as_object().is_some_and(|s| !s.is_empty() && s.iter().all(|(k, v)| labels[k] == *v))
}

/// The checks every overlay must pass.
fn check_overlay(objects: &[Value]) {
    let at = |k: &str, n: &str, ns: &str, by: &str| must_find(objects, k, n, ns, by);
    let ns = at("Namespace", NAMESPACE, "", "the overlay");
    let crd = at("CustomResourceDefinition", "baremetalhosts.metal3.io", "", "the overlay");
    for (i, o) in objects.iter().enumerate() {
        let what = format!("{} {}/{}", kind(o), namespace(o), name(o));
        if CLUSTER_SCOPED.contains(&kind(o)) {
            assert_eq!(namespace(o), "", "{what} is cluster-scoped");
        } else {
            assert_eq!(namespace(o), NAMESPACE, "{what}");
            assert!(ns < i, "{what} comes before its Namespace");
        }
        if o["apiVersion"].as_str().unwrap().starts_with("metal3.io/") {
            assert!(crd < i, "{what} comes before its CRD");
        }
    }
    // RBAC: bindings name roles and service accounts that are applied
    for (i, o) in objects.iter().enumerate().filter(|(_, o)| kind(o).ends_with("RoleBinding")) {
        let role = &o["roleRef"];
        let role_ns = if role["kind"] == "Role" { namespace(o) } else { "" };
        at(role["kind"].as_str().unwrap(), role["name"].as_str().unwrap(), role_ns, name(o));
        for s in o["subjects"].as_array().unwrap() {
            let sa =
                at("ServiceAccount", s["name"].as_str().unwrap(), s["namespace"].as_str().unwrap(), name(o));
            assert!(sa < i);
        }
    }
    // cert-manager: Issuer before Certificate, CA injection from an applied Certificate
    let secrets_from_certificates: Vec<(&str, usize)> = objects
        .iter()
        .enumerate()
        .filter(|(_, o)| kind(o) == "Certificate")
        .map(|(i, o)| {
            let issuer = &o["spec"]["issuerRef"];
            assert_eq!(issuer["kind"], "Issuer", "{}", name(o));
            let at_issuer = at("Issuer", issuer["name"].as_str().unwrap(), namespace(o), name(o));
            assert!(at_issuer < i, "Issuer after its Certificate {}", name(o));
            (o["spec"]["secretName"].as_str().unwrap(), i)
        })
        .collect();
    // Deployments: service account, Secrets, ConfigMaps, image, probes
    let deployments: Vec<(usize, &Value)> =
        objects.iter().enumerate().filter(|(_, o)| kind(o) == "Deployment").collect();
    assert_eq!(deployments.len(), 2, "a controller and a webhook Deployment");
    for &(i, d) in &deployments {
        let pod = &d["spec"]["template"]["spec"];
        let by = format!("Deployment {}", name(d));
        assert!(selects(&d["spec"]["selector"]["matchLabels"], &d["spec"]["template"]["metadata"]["labels"]));
        assert!(at("ServiceAccount", pod["serviceAccountName"].as_str().unwrap(), NAMESPACE, &by) < i);
        for volume in pod["volumes"].as_array().into_iter().flatten() {
            let Some(secret) = volume["secret"]["secretName"].as_str() else { continue };
            if volume["secret"]["optional"] == true {
                continue;
            }
            let made = find(objects, "Secret", secret, NAMESPACE)
                .or_else(|| secrets_from_certificates.iter().find(|(s, _)| *s == secret).map(|(_, i)| *i))
                .unwrap_or_else(|| {
                    panic!(
                        "{by} mounts Secret {secret}, which neither is applied nor comes from a Certificate"
                    )
                });
            assert!(made < i, "{by} before what makes Secret {secret}");
        }
        for c in containers(d) {
            assert_eq!(
                c["image"],
                format!("quay.io/metalhost/metalhost:{}", env!("CARGO_PKG_VERSION")),
                "{by}: the image is tagged with the workspace version"
            );
            for from in c["envFrom"].as_array().into_iter().flatten() {
                let map = from["configMapRef"]["name"].as_str().unwrap();
                assert!(at("ConfigMap", map, NAMESPACE, &by) < i);
            }
            for probe in ["livenessProbe", "readinessProbe"] {
                let port = &c[probe]["httpGet"]["port"];
                assert!(!port.is_null(), "{by}: {probe}");
                container_port(c, port);
            }
            assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true, "{by}");
        }
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{by}");
        // a PodDisruptionBudget for each
        assert!(
            objects.iter().any(|p| kind(p) == "PodDisruptionBudget"
                && selects(
                    &p["spec"]["selector"]["matchLabels"],
                    &d["spec"]["template"]["metadata"]["labels"]
                )),
            "{by}: no PodDisruptionBudget"
        );
    }
    // the controller: its arguments and environment accepted; it does not need the webhook's TLS
    let (_, controller) =
        deployments.iter().find(|(_, d)| strings(&containers(d)[0]["args"])[0] == "run").unwrap();
    let c = containers(controller)[0];
    for volume in controller["spec"]["template"]["spec"]["volumes"].as_array().into_iter().flatten() {
        assert_eq!(volume["secret"]["optional"], true, "the controller starts without Secret {volume}");
    }
    let settings = check_config(objects, c);
    let metrics = port_of(&settings["metrics, /healthz, /readyz"]);
    assert_eq!(container_port(c, &c["livenessProbe"]["httpGet"]["port"]), metrics);
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert!(!settings["ironic"].ends_with("/v1"), "{settings:?}");
    let ironic_map = &objects[find(objects, "ConfigMap", "metalhost-ironic", NAMESPACE).unwrap()]["data"];
    assert_eq!(settings["source of ironic"], "IRONIC_ENDPOINT");
    assert_eq!(settings["deploy kernel"], ironic_map["DEPLOY_KERNEL_URL"].as_str().unwrap());
    // the webhook: the configuration calls the Service, the Service the pods, on what they serve
    let (webhook_at, webhook) =
        *deployments.iter().find(|(_, d)| strings(&containers(d)[0]["args"])[0] == "webhook").unwrap();
    let w = containers(webhook)[0];
    let served = check_config(objects, w);
    let vwc_at = at("ValidatingWebhookConfiguration", "metalhost", "", "the overlay");
    let vwc = &objects[vwc_at];
    assert_eq!(vwc_at, objects.len() - 1, "the webhook configuration is applied last");
    for hook in vwc["webhooks"].as_array().unwrap() {
        let svc = &hook["clientConfig"]["service"];
        assert_eq!(svc["path"].as_str().unwrap(), served["path"]);
        assert_eq!(served["path"], metalhost::webhook::VALIDATE_PATH);
        let svc_at =
            at("Service", svc["name"].as_str().unwrap(), svc["namespace"].as_str().unwrap(), "the webhook");
        let service = &objects[svc_at];
        assert!(selects(&service["spec"]["selector"], &webhook["spec"]["template"]["metadata"]["labels"]));
        let port = service["spec"]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["port"] == svc["port"].as_u64().unwrap_or(443))
            .expect("the Service has the webhook's port");
        assert_eq!(container_port(w, &port["targetPort"]), port_of(&served["listen"]));
        assert_eq!(container_port(w, &w["readinessProbe"]["httpGet"]["port"]), port_of(&served["listen"]));
        assert_eq!(w["readinessProbe"]["httpGet"]["scheme"], "HTTPS");
        assert!(svc_at < vwc_at && webhook_at < vwc_at);
        // the certificate is mounted where the webhook reads it
        let mounts: Vec<&str> =
            w["volumeMounts"].as_array().unwrap().iter().map(|m| m["mountPath"].as_str().unwrap()).collect();
        for file in [&served["cert"], &served["key"]] {
            assert!(mounts.iter().any(|m| file.starts_with(m)), "{file} is not mounted: {mounts:?}");
        }
    }
}

#[test]
fn default_overlay_applies_in_order_with_everything_it_names() {
    let Some(objects) = kustomize(&config().join("default")) else { return };
    check_overlay(&objects);
    let at = |k: &str, n: &str| find(&objects, k, n, NAMESPACE).unwrap_or_else(|| panic!("{k} {n}"));
    // cert-manager makes the webhook's Secret for the Service's name and injects its CA
    let certificate = &objects[at("Certificate", "metalhost-webhook")];
    assert_eq!(certificate["spec"]["secretName"], "metalhost-webhook-tls");
    let dns = strings(&certificate["spec"]["dnsNames"]);
    assert!(dns.contains(&format!("metalhost-webhook.{NAMESPACE}.svc")), "{dns:?}");
    // from a CA its renewal leaves as it is (a self-signed serving certificate changes the CA in
    // caBundle at each renewal, before the kubelet refreshes the mounted Secret)
    let issuer = &objects[at("Issuer", certificate["spec"]["issuerRef"]["name"].as_str().unwrap())];
    let ca_secret = issuer["spec"]["ca"]["secretName"].as_str().expect("a CA Issuer, not a self-signed one");
    let ca = objects
        .iter()
        .find(|o| kind(o) == "Certificate" && o["spec"]["secretName"] == ca_secret)
        .expect("the CA's Certificate");
    assert_eq!(ca["spec"]["isCA"], true, "{ca}");
    assert_eq!(ca["spec"]["privateKey"]["rotationPolicy"], "Never", "the CA keeps its key: {ca}");
    let vwc = objects.last().unwrap();
    let inject = vwc["metadata"]["annotations"]["cert-manager.io/inject-ca-from"].as_str().unwrap();
    let (ns, name) = inject.split_once('/').unwrap();
    assert!(find(&objects, "Certificate", name, ns).is_some(), "inject-ca-from {inject}");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target)
        } else {
            std::fs::copy(&path, &target).map(drop).unwrap()
        }
    }
}

#[test]
fn provided_tls_overlay_serves_your_certificate_and_bundles_your_ca() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&config(), dir.path());
    let overlay = dir.path().join("provided-tls");
    let ca = rcgen::generate_simple_self_signed(vec![format!("metalhost-webhook.{NAMESPACE}.svc")]).unwrap();
    std::fs::write(overlay.join("tls.crt"), ca.cert.pem()).unwrap();
    std::fs::write(overlay.join("tls.key"), ca.signing_key.serialize_pem()).unwrap();
    std::fs::write(overlay.join("ca.crt"), ca.cert.pem()).unwrap();
    let Some(objects) = kustomize(&overlay) else { return };
    check_overlay(&objects);
    let secret = &objects[find(&objects, "Secret", "metalhost-webhook-tls", NAMESPACE).unwrap()];
    // kustomize wraps base64 at 70 columns; the API server's decoder skips the line breaks
    let decode = |v: &Value| {
        let text: String = v.as_str().unwrap().split_whitespace().collect();
        base64::engine::general_purpose::STANDARD.decode(text).unwrap()
    };
    assert_eq!(secret["type"], "kubernetes.io/tls");
    assert_eq!(decode(&secret["data"]["tls.crt"]), ca.cert.pem().as_bytes());
    assert_eq!(decode(&secret["data"]["tls.key"]), ca.signing_key.serialize_pem().as_bytes());
    let vwc = objects.last().unwrap();
    for hook in vwc["webhooks"].as_array().unwrap() {
        let bundle = decode(&hook["clientConfig"]["caBundle"]);
        assert_eq!(bundle, ca.cert.pem().as_bytes());
    }
    assert!(
        objects.iter().all(|o| kind(o) != "Certificate" && kind(o) != "Issuer"),
        "no cert-manager objects"
    );
}

#[test]
fn the_dockerfile_builds_the_image_the_manifests_run() {
    let root = config().join("..");
    let dockerfile = std::fs::read_to_string(root.join("Dockerfile")).unwrap();
    let image = format!("quay.io/metalhost/metalhost:{}", env!("CARGO_PKG_VERSION"));
    assert!(
        dockerfile.contains(&format!("docker build -t {image} .")),
        "the Dockerfile documents building {image}"
    );
    let runtime = dockerfile.lines().rfind(|l| l.starts_with("FROM ")).unwrap();
    assert!(runtime.contains("distroless/cc") && runtime.contains("nonroot"), "{runtime}");
    assert!(dockerfile.contains("USER 65532:65532"));
    assert!(dockerfile.contains("cargo build --release --locked -p metalhost --bin metalhost"));
    // the build context holds what the build needs
    let ignore = std::fs::read_to_string(root.join(".dockerignore")).unwrap();
    for needed in ["!Cargo.toml", "!Cargo.lock", "!crates/"] {
        assert!(ignore.lines().any(|l| l == needed), ".dockerignore must keep {needed}");
    }
}
