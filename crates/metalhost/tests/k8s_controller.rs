//! The Kubernetes runtime against kube-rs's mock service (tower-test): the exact API calls of the
//! controller's reconcile. Ironic is a wiremock server here (no real Ironic needed for these
//! calls); the real-Ironic paths are covered by the standalone runtime's end-to-end tests.

use std::sync::Arc;

use http::{Request, Response, StatusCode};
use k8s_openapi::api::core::v1::Secret;
use kube::client::Body;
use kube::runtime::controller::Action;
use metalhost::kube::{Context, SecretCache, reconcile};
use metalhost_core::plan::NodeDefaults;
use metalhost_core::{IronicProvisioner, Reconciler};
use metalhost_ironic::ClientConfig;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

const HOSTS: &str = "/apis/metal3.io/v1alpha1/namespaces/default/baremetalhosts/h1";
const PASSWORD: &str = "k8s-secret-password";

async fn ironic() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"default_version": {"version": "1.115"}})),
        )
        .mount(&server)
        .await;
    server
}

/// Ironic answers `verb at` with `reply`, as often as asked.
async fn answer(ironic: &MockServer, verb: &str, at: &str, reply: ResponseTemplate) {
    Mock::given(method(verb)).and(path(at)).respond_with(reply).mount(ironic).await;
}

fn context(ironic: &MockServer) -> (Arc<Context>, Handle) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "default");
    let provisioner = IronicProvisioner::connect_lazily(ClientConfig::new(ironic.uri()));
    let reconciler = Reconciler::new(provisioner, NodeDefaults::default());
    (Arc::new(Context::new(client, reconciler)), handle)
}

fn host(extra_metadata: Value, spec: Value, status: Value) -> Arc<metalhost_api::BareMetalHost> {
    let mut metadata = json!({"name": "h1", "namespace": "default", "uid": "u1", "resourceVersion": "1"});
    metadata.as_object_mut().unwrap().extend(extra_metadata.as_object().unwrap().clone());
    let mut doc = json!({"apiVersion": "metal3.io/v1alpha1", "kind": "BareMetalHost", "metadata": metadata, "spec": spec});
    if !status.is_null() {
        doc["status"] = status;
    }
    Arc::new(serde_json::from_value(doc).unwrap())
}

fn redfish_spec(credentials: &str) -> Value {
    json!({"online": true, "inspectionMode": "disabled", "automatedCleaningMode": "disabled",
           "bmc": {"address": "redfish-virtualmedia://bmc.example/redfish/v1/Systems/1", "credentialsName": credentials}})
}

/// Takes the next API request, checks its method and path, answers `reply`; returns its body.
async fn expect(
    handle: &mut Handle,
    want_method: &str,
    want_path: &str,
    status: StatusCode,
    reply: Value,
) -> Value {
    let (request, send) =
        handle.next_request().await.unwrap_or_else(|| panic!("no request; wanted {want_method} {want_path}"));
    assert_eq!((request.method().as_str(), request.uri().path()), (want_method, want_path));
    let bytes = request.into_body().collect_bytes().await.unwrap();
    let body: Value = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap() };
    let reply = if reply == json!("echo") { body.clone() } else { reply };
    send.send_response(
        Response::builder().status(status).body(Body::from(serde_json::to_vec(&reply).unwrap())).unwrap(),
    );
    body
}

/// Takes the next request, which must publish an Event; returns the Event.
async fn expect_event(handle: &mut Handle) -> Value {
    expect(
        handle,
        "POST",
        "/apis/events.k8s.io/v1/namespaces/default/events",
        StatusCode::CREATED,
        json!("echo"),
    )
    .await
}

/// Takes the next request, which must patch the host's status; returns the patch.
async fn expect_status_patch(handle: &mut Handle) -> Value {
    expect(handle, "PATCH", &format!("{HOSTS}/status"), StatusCode::OK, json!("echo")).await
}

/// The delay of a requeue (kube-rs keeps it private; its Debug form shows it).
fn requeue_seconds(action: &Action) -> Option<f64> {
    let text = format!("{action:?}");
    let inner = text.split("Some(").nth(1)?.split(')').next()?;
    let d = humantime::parse_duration(&inner.replace("µs", "us")).ok()?;
    Some(d.as_secs_f64())
}

/// Asserts the controller made no further API call.
async fn no_more(ctx: Arc<Context>, mut handle: Handle) {
    drop(ctx);
    if let Some((request, _)) = handle.next_request().await {
        panic!("unexpected {} {}", request.method(), request.uri().path());
    }
}

/// The credentials Secret as the API server serves it: `data`, base64 (never `stringData`).
fn secret() -> Value {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "bmc", "namespace": "default", "resourceVersion": "7"},
           "data": {"username": b64("admin"), "password": b64(PASSWORD)}})
}

/// Takes the next request, which must label the Secret `read` and make the host its owner, with
/// the Secret's resourceVersion as precondition, and answers as the API server does (the Secret
/// patched, at the next version); returns the patch.
async fn expect_secret_adopted(handle: &mut Handle, read: Value) -> Value {
    let version = read["metadata"]["resourceVersion"].clone();
    let patch = expect_secret_patch(handle, read).await;
    assert_eq!(patch["metadata"]["resourceVersion"], version, "the version read is the precondition");
    let owner = &patch["metadata"]["ownerReferences"][0];
    assert_eq!(
        (owner["kind"].as_str(), owner["name"].as_str(), owner["uid"].as_str()),
        (Some("BareMetalHost"), Some("h1"), Some("u1"))
    );
    patch
}

/// The label patch of a config-drive Secret: labelled, not owned by the host (upstream's
/// ObtainSecret; a user-data Secret shared by a fleet must survive its hosts). An owner reference
/// to the host that an older metalhost added is taken off, the others kept, guarded by the version
/// read; with no owner to take off, the label alone (no version: hosts sharing the Secret label it
/// at once without conflicts).
async fn expect_secret_labelled(handle: &mut Handle, read: Value) -> Value {
    let owners = read["metadata"]["ownerReferences"].as_array().cloned().unwrap_or_default();
    let others: Vec<Value> = owners.iter().filter(|o| o["uid"] != "u1").cloned().collect();
    let version = read["metadata"]["resourceVersion"].clone();
    let patch = expect_secret_patch(handle, read).await;
    if others.len() == owners.len() {
        assert!(patch["metadata"].get("ownerReferences").is_none(), "{patch}");
        assert!(patch["metadata"].get("resourceVersion").is_none(), "{patch}");
    } else {
        assert_eq!(patch["metadata"]["ownerReferences"], json!(others), "{patch}");
        assert_eq!(patch["metadata"]["resourceVersion"], version, "{patch}");
    }
    patch
}

/// Answers the next request, a label patch of the Secret `read`, and checks what every one has.
async fn expect_secret_patch(handle: &mut Handle, read: Value) -> Value {
    let name = read["metadata"]["name"].as_str().unwrap().to_string();
    let version = read["metadata"]["resourceVersion"].as_str().unwrap().to_string();
    let (request, send) = handle.next_request().await.expect("the Secret's label patch");
    assert_eq!(
        (request.method().as_str(), request.uri().path()),
        ("PATCH", format!("/api/v1/namespaces/default/secrets/{name}").as_str())
    );
    let patch: Value = serde_json::from_slice(&request.into_body().collect_bytes().await.unwrap()).unwrap();
    let mut patched = read;
    json_patch::merge(&mut patched, &patch);
    patched["metadata"]["resourceVersion"] = json!((version.parse::<u64>().unwrap() + 1).to_string());
    send.send_response(Response::builder().body(Body::from(serde_json::to_vec(&patched).unwrap())).unwrap());
    assert_eq!(patch["metadata"]["labels"], json!({"environment.metal3.io": "baremetal"}));
    assert!(!patch.to_string().contains(PASSWORD), "no password in the label patch");
    patch
}

fn not_found(what: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": format!("{what} not found")})
}

#[tokio::test]
async fn first_reconcile_adds_the_finalizer_and_nothing_else() {
    let ironic = ironic().await;
    let (ctx, mut handle) = context(&ironic);
    let h = host(json!({}), redfish_spec("bmc"), Value::Null);
    let server = tokio::spawn(async move {
        // a JSON patch that fails if the object changed meanwhile: no other finalizer can be lost
        let body = expect(&mut handle, "PATCH", HOSTS, StatusCode::OK, json!({})).await;
        assert_eq!(
            body,
            json!([{"op": "test", "path": "/metadata/resourceVersion", "value": "1"},
                   {"op": "add", "path": "/metadata/finalizers", "value": ["baremetalhost.metal3.io"]}])
        );
        handle
    });
    assert_eq!(reconcile(h, ctx.clone()).await.unwrap(), Action::await_change());
    no_more(ctx, server.await.unwrap()).await;
    assert!(ironic.received_requests().await.unwrap().is_empty(), "Ironic untouched");
}

#[tokio::test]
async fn paused_host_gets_no_writes() {
    let ironic = ironic().await;
    let (ctx, handle) = context(&ironic);
    let h = host(
        json!({"annotations": {"baremetalhost.metal3.io/paused": ""}}),
        redfish_spec("bmc"),
        Value::Null,
    );
    assert_eq!(reconcile(h, ctx.clone()).await.unwrap(), Action::await_change());
    no_more(ctx, handle).await;
    assert!(ironic.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn missing_credentials_secret_is_an_error_status_and_no_node() {
    let ironic = ironic().await;
    Mock::given(method("POST"))
        .and(path("/v1/nodes"))
        .respond_with(ResponseTemplate::new(201))
        .expect(0)
        .mount(&ironic)
        .await;
    let (ctx, mut handle) = context(&ironic);
    let h = host(json!({"finalizers": ["baremetalhost.metal3.io"]}), redfish_spec("missing"), Value::Null);
    let server = tokio::spawn(async move {
        expect(
            &mut handle,
            "GET",
            "/api/v1/namespaces/default/secrets/missing",
            StatusCode::NOT_FOUND,
            not_found("secrets \"missing\""),
        )
        .await;
        let patch = expect_status_patch(&mut handle).await;
        let status = &patch["status"];
        assert_eq!(status["errorType"], "registration error");
        assert_eq!(status["operationalStatus"], "error");
        assert_eq!(
            status["errorMessage"],
            "spec.bmc.credentialsName: secret 'missing' not found in namespace 'default'"
        );
        assert_eq!(status["provisioning"]["state"], "registering");
        let changed = expect_event(&mut handle).await;
        assert_eq!(changed["reason"], "ProvisioningStateChanged");
        let warning = expect_event(&mut handle).await;
        assert_eq!(
            (warning["type"].as_str(), warning["reason"].as_str()),
            (Some("Warning"), Some("RegistrationError"))
        );
        assert!(warning["note"].as_str().unwrap().contains("secret 'missing' not found"));
        handle
    });
    let action = reconcile(h, ctx.clone()).await.unwrap();
    // the first back-off step (2 s), stretched by at most a quarter of jitter
    let delay = requeue_seconds(&action).expect("requeued");
    assert!((2.0..=2.5).contains(&delay), "{action:?}");
    no_more(ctx, server.await.unwrap()).await;
}

#[tokio::test]
async fn a_state_change_patches_the_status_and_publishes_an_event() {
    let ironic = ironic().await;
    // a host never registered is created without a look-up first; Ironic answers with the node
    // it made (what was asked, enrolled), and the manage request follows at once
    Mock::given(method("POST"))
        .and(path("/v1/nodes"))
        .respond_with(|req: &wiremock::Request| {
            let mut node: Value = serde_json::from_slice(&req.body).unwrap();
            node["uuid"] = json!("n1");
            node["provision_state"] = json!("enroll");
            node["driver_info"]["redfish_password"] = json!("******");
            ResponseTemplate::new(201).set_body_json(node)
        })
        .expect(1)
        .mount(&ironic)
        .await;
    Mock::given(method("PUT"))
        .and(path("/v1/nodes/n1/states/provision"))
        .respond_with(ResponseTemplate::new(202))
        .expect(1)
        .mount(&ironic)
        .await;
    let (ctx, mut handle) = context(&ironic);
    let h = host(json!({"finalizers": ["baremetalhost.metal3.io"]}), redfish_spec("bmc"), Value::Null);
    let server = tokio::spawn(async move {
        expect(&mut handle, "GET", "/api/v1/namespaces/default/secrets/bmc", StatusCode::OK, secret()).await;
        expect_secret_adopted(&mut handle, secret()).await;
        let patch = expect_status_patch(&mut handle).await;
        assert_eq!(patch["status"]["provisioning"]["state"], "registering");
        assert_eq!(patch["status"]["provisioning"]["ID"], "n1");
        assert_eq!(patch["status"]["operationalStatus"], "OK");
        assert_eq!(
            patch["status"]["triedCredentials"],
            // the version the label patch made, the one the watch will show
            json!({"credentials": {"name": "bmc", "namespace": "default"}, "credentialsVersion": "8"})
        );
        assert_eq!(patch["status"].get("goodCredentials"), None, "not verified by Ironic yet");
        assert!(!patch.to_string().contains(PASSWORD), "no password in the status");
        let event = expect_event(&mut handle).await;
        assert_eq!(event["reason"], "ProvisioningStateChanged");
        assert_eq!(event["note"], "(new) → registering");
        assert_eq!(event["regarding"]["name"], "h1");
        assert!(!event.to_string().contains(PASSWORD), "no password in the event");
        handle
    });
    reconcile(h, ctx.clone()).await.unwrap();
    no_more(ctx, server.await.unwrap()).await;
}

#[tokio::test]
async fn deletion_removes_the_finalizer_only_once_the_node_is_gone() {
    let ironic = ironic().await;
    let node = json!({"uuid": "n1", "name": "default~h1", "provision_state": "available", "power_state": "power off"});
    Mock::given(method("GET"))
        .and(path("/v1/nodes/n1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(node))
        .up_to_n_times(1)
        .mount(&ironic)
        .await;
    answer(&ironic, "GET", "/v1/nodes/n1", ResponseTemplate::new(404)).await;
    answer(&ironic, "GET", "/v1/nodes/default~h1", ResponseTemplate::new(404)).await;
    Mock::given(method("DELETE"))
        .and(path("/v1/nodes/n1"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&ironic)
        .await;
    let (ctx, mut handle) = context(&ironic);
    let status = json!({"operationalStatus": "OK", "errorMessage": "", "errorCount": 0, "provisioningFailCount": 0,
                        "poweredOn": false, "provisioning": {"state": "available", "ID": "n1"}});
    let deleting = json!({"finalizers": ["other.example/keep", "baremetalhost.metal3.io"], "deletionTimestamp": "2026-11-24T10:00:00Z"});
    let h = host(deleting.clone(), redfish_spec("bmc"), status);
    let server = tokio::spawn(async move {
        // first pass: the node is deleted from Ironic; the finalizer stays
        let patch = expect_status_patch(&mut handle).await;
        assert_eq!(patch["status"]["provisioning"]["state"], "deleting");
        expect_event(&mut handle).await;
        // second pass: the node is gone; now the finalizer goes, and only ours
        let patch = expect(&mut handle, "PATCH", HOSTS, StatusCode::OK, json!({})).await;
        assert_eq!(
            patch,
            json!([{"op": "test", "path": "/metadata/finalizers/1", "value": "baremetalhost.metal3.io"},
                   {"op": "remove", "path": "/metadata/finalizers/1"}])
        );
        handle
    });
    reconcile(h.clone(), ctx.clone()).await.unwrap();
    let mut second = (*h).clone();
    second.status.as_mut().unwrap().provisioning.state = metalhost_api::ProvisioningState::Deleting;
    assert_eq!(reconcile(Arc::new(second), ctx.clone()).await.unwrap(), Action::await_change());
    no_more(ctx, server.await.unwrap()).await;
}

#[tokio::test]
async fn detached_host_reports_detached_and_leaves_ironic_alone() {
    let ironic = ironic().await;
    let (ctx, mut handle) = context(&ironic);
    let h = host(
        json!({"finalizers": ["baremetalhost.metal3.io"], "annotations": {"baremetalhost.metal3.io/detached": ""}}),
        redfish_spec("bmc"),
        Value::Null,
    );
    let server = tokio::spawn(async move {
        let patch = expect_status_patch(&mut handle).await;
        assert_eq!(patch["status"]["operationalStatus"], "detached");
        let event = expect_event(&mut handle).await;
        assert_eq!(event["reason"], "Detached");
        handle
    });
    assert_eq!(reconcile(h, ctx.clone()).await.unwrap(), Action::await_change());
    no_more(ctx, server.await.unwrap()).await;
    assert!(ironic.received_requests().await.unwrap().is_empty(), "Ironic untouched");
}

/// Collects everything logged while a test runs.
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_password_in_logs_status_or_events() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let ironic = ironic().await;
    answer(&ironic, "GET", "/v1/nodes/default~h1", ResponseTemplate::new(404)).await;
    // Ironic refuses the node: the error message travels to the status and an event
    answer(
        &ironic,
        "POST",
        "/v1/nodes",
        ResponseTemplate::new(400)
            .set_body_json(json!({"error_message": "{\"faultstring\": \"bad driver_info\"}"})),
    )
    .await;
    let (ctx, mut handle) = context(&ironic);
    let h = host(json!({"finalizers": ["baremetalhost.metal3.io"]}), redfish_spec("bmc"), Value::Null);
    let server = tokio::spawn(async move {
        let mut seen = Vec::new();
        expect(&mut handle, "GET", "/api/v1/namespaces/default/secrets/bmc", StatusCode::OK, secret()).await;
        seen.push(expect_secret_adopted(&mut handle, secret()).await);
        seen.push(expect_status_patch(&mut handle).await);
        seen.push(expect_event(&mut handle).await);
        seen.push(expect_event(&mut handle).await);
        (handle, seen)
    });
    reconcile(h, ctx.clone()).await.unwrap();
    let (handle, seen) = server.await.unwrap();
    no_more(ctx, handle).await;
    let written: String = seen.iter().map(ToString::to_string).collect();
    assert!(written.contains("bad driver_info"), "the error reached status and events: {written}");
    assert!(!written.contains(PASSWORD), "password in a status or event");
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("action failed"), "logs were captured: {logs}");
    assert!(!logs.contains(PASSWORD), "password in the logs");
    // the password did go to Ironic, and only there
    let requests = ironic.received_requests().await.unwrap();
    assert!(requests.iter().any(|r| String::from_utf8_lossy(&r.body).contains(PASSWORD)));
}

#[tokio::test]
async fn config_drive_secrets_are_read_and_sent_with_the_deploy() {
    let ironic = ironic().await;
    let node = json!({"uuid": "n1", "name": "default~h1", "provision_state": "available", "power_state": "power off",
        "driver": "redfish", "boot_interface": "redfish-virtual-media", "deploy_interface": "ramdisk", "automated_clean": false,
        "driver_info": {"redfish_address": "https://bmc.example", "redfish_system_id": "/redfish/v1/Systems/1",
                        "redfish_username": "admin", "redfish_password": "******"},
        "instance_info": {"boot_iso": "http://h/a.iso"}});
    answer(&ironic, "GET", "/v1/nodes/n1", ResponseTemplate::new(200).set_body_json(node)).await;
    answer(&ironic, "PATCH", "/v1/nodes/n1", ResponseTemplate::new(200).set_body_json(json!({"uuid": "n1"})))
        .await;
    answer(
        &ironic,
        "GET",
        "/v1/nodes/n1/validate",
        ResponseTemplate::new(200)
            .set_body_json(json!({"boot": {"result": true}, "deploy": {"result": true}})),
    )
    .await;
    Mock::given(method("PUT"))
        .and(path("/v1/nodes/n1/states/provision"))
        .respond_with(ResponseTemplate::new(202))
        .expect(1)
        .mount(&ironic)
        .await;
    let (ctx, mut handle) = context(&ironic);
    let mut spec = redfish_spec("bmc");
    spec["image"] = json!({"url": "http://h/a.iso", "format": "live-iso"});
    spec["userData"] = json!({"name": "ud"});
    let status = json!({"operationalStatus": "OK", "errorMessage": "", "errorCount": 0, "provisioningFailCount": 0,
        "poweredOn": false, "provisioning": {"state": "provisioning", "ID": "n1"},
        "lastAttemptedImage": {"url": "http://h/a.iso", "format": "live-iso"},
        "triedCredentials": {"credentials": {"name": "bmc", "namespace": "default"}, "credentialsVersion": "7"},
        "goodCredentials": {"credentials": {"name": "bmc", "namespace": "default"}, "credentialsVersion": "7"}});
    let h = host(
        json!({"finalizers": ["baremetalhost.metal3.io"], "annotations": {"metalhost.io/live-iso-config-drive": "true"}}),
        spec,
        status,
    );
    let server = tokio::spawn(async move {
        // the credentials Secret as an earlier reconcile left it
        let mut bmc = secret();
        bmc["metadata"]["labels"] = json!({"environment.metal3.io": "baremetal"});
        bmc["metadata"]["ownerReferences"] =
            json!([{"apiVersion": "metal3.io/v1alpha1", "kind": "BareMetalHost", "name": "h1", "uid": "u1"}]);
        expect(&mut handle, "GET", "/api/v1/namespaces/default/secrets/bmc", StatusCode::OK, bmc).await;
        use base64::Engine;
        let text = base64::engine::general_purpose::STANDARD.encode("#cloud-config\nhostname: h1\n");
        // owned by this host (as an older metalhost left it) and by another
        let owners = json!([{"apiVersion": "metal3.io/v1alpha1", "kind": "BareMetalHost", "name": "h1", "uid": "u1"},
                            {"apiVersion": "metal3.io/v1alpha1", "kind": "BareMetalHost", "name": "h2", "uid": "u2"}]);
        let user_data = json!({"apiVersion": "v1", "kind": "Secret",
                               "metadata": {"name": "ud", "namespace": "default", "resourceVersion": "9", "ownerReferences": owners},
                               "data": {"userData": text}});
        expect(
            &mut handle,
            "GET",
            "/api/v1/namespaces/default/secrets/ud",
            StatusCode::OK,
            user_data.clone(),
        )
        .await;
        expect_secret_labelled(&mut handle, user_data).await;
        handle
    });
    reconcile(h, ctx.clone()).await.unwrap();
    no_more(ctx, server.await.unwrap()).await;
    let requests = ironic.received_requests().await.unwrap();
    let deploy =
        requests.iter().find(|r| r.url.path() == "/v1/nodes/n1/states/provision").expect("deploy requested");
    let body: Value = serde_json::from_slice(&deploy.body).unwrap();
    assert_eq!(body["target"], "active");
    assert_eq!(body["configdrive"]["user_data"], "#cloud-config\nhostname: h1\n");
    assert_eq!(body["configdrive"]["meta_data"]["local-hostname"], "h1");
}

/// A busy node is polled on the core's adaptive schedule (quick at first, every 5 s after a
/// minute), not every second: over a 10-minute deploy that is ~150 node reads instead of 600.
#[tokio::test]
async fn a_long_deploy_is_polled_on_the_adaptive_schedule() {
    let ironic = ironic().await;
    deploying_node(&ironic).await;
    let (ctx, mut handle) = context(&ironic);
    // a clock the test moves forward by each requeue delay
    let elapsed = Arc::new(std::sync::Mutex::new(std::time::Duration::ZERO));
    let start = std::time::Instant::now();
    let mut ctx = Arc::into_inner(ctx).unwrap();
    let clock = elapsed.clone();
    ctx.clock = Arc::new(move || start + *clock.lock().unwrap());
    let ctx = Arc::new(ctx);
    let (h, labelled) = deploying_host_and_secret("u1");
    // the API server (no Secret cache here): the Secret is already labelled and owned, so
    // reading it is all
    let server = tokio::spawn(async move {
        let labelled = serde_json::to_vec(&labelled).unwrap();
        while let Some((request, send)) = handle.next_request().await {
            assert_eq!(
                request.uri().path(),
                "/api/v1/namespaces/default/secrets/bmc",
                "only the Secret is read"
            );
            send.send_response(Response::builder().body(Body::from(labelled.clone())).unwrap());
        }
    });
    let mut delays = Vec::new();
    let deploy = std::time::Duration::from_secs(600);
    while *elapsed.lock().unwrap() < deploy {
        let action = reconcile(h.clone(), ctx.clone()).await.unwrap();
        let delay = std::time::Duration::from_secs_f64(requeue_seconds(&action).expect("polling"));
        delays.push(delay);
        *elapsed.lock().unwrap() += delay;
    }
    drop(ctx);
    server.await.unwrap();
    let reads =
        ironic.received_requests().await.unwrap().iter().filter(|r| r.url.path() == "/v1/nodes/n1").count();
    assert_eq!(reads, delays.len(), "one node read per look");
    assert_eq!(delays[0], std::time::Duration::from_millis(250), "quick at first");
    assert_eq!(*delays.last().unwrap(), std::time::Duration::from_secs(5), "slow after a minute");
    assert!(delays.windows(2).all(|w| w[0] <= w[1]), "never faster again: {delays:?}");
    // a fixed 1 s poll would read the node 600 times
    assert!((120..=170).contains(&reads), "{reads} node reads over 10 minutes");
}

/// A host whose node is deploying, with credentials already confirmed, and the Secret `bmc` as
/// metalhost leaves it for `owner` (labelled, owned).
fn deploying_host_and_secret(owner: &str) -> (Arc<metalhost_api::BareMetalHost>, Secret) {
    let mut spec = redfish_spec("bmc");
    spec["image"] = json!({"url": "http://h/a.iso", "format": "live-iso"});
    let version = json!({"credentials": {"name": "bmc", "namespace": "default"}, "credentialsVersion": "7"});
    let status = json!({"operationalStatus": "OK", "errorMessage": "", "errorCount": 0, "provisioningFailCount": 0,
        "poweredOn": true, "provisioning": {"state": "provisioning", "ID": "n1"},
        "lastAttemptedImage": {"url": "http://h/a.iso", "format": "live-iso"},
        "operationHistory": {"provision": {"start": "2026-11-24T10:00:00Z"}},
        "triedCredentials": version, "goodCredentials": version});
    let h = host(json!({"finalizers": ["baremetalhost.metal3.io"]}), spec, status);
    let mut labelled = secret();
    labelled["metadata"]["labels"] = json!({"environment.metal3.io": "baremetal"});
    labelled["metadata"]["ownerReferences"] =
        json!([{"apiVersion": "metal3.io/v1alpha1", "kind": "BareMetalHost", "name": owner, "uid": owner}]);
    (h, serde_json::from_value(labelled).unwrap())
}

async fn deploying_node(ironic: &MockServer) {
    let node = json!({"uuid": "n1", "name": "default~h1", "provision_state": "deploying", "target_provision_state": "active",
        "power_state": "power on", "driver": "redfish", "boot_interface": "redfish-virtual-media",
        "instance_info": {"boot_iso": "http://h/a.iso"}});
    answer(ironic, "GET", "/v1/nodes/n1", ResponseTemplate::new(200).set_body_json(node)).await;
}

type SecretWriter = kube::runtime::reflector::store::Writer<Secret>;

/// A context whose Secret cache (the Secret watch's store) holds `secret`, with the store's
/// writer, to play the watch.
fn context_with_cached(ironic: &MockServer, secret: Secret) -> (Arc<Context>, Handle, SecretWriter) {
    let (ctx, handle) = context(ironic);
    let mut ctx = Arc::into_inner(ctx).unwrap();
    let (reader, mut writer) = kube::runtime::reflector::store();
    writer.apply_watcher_event(&kube::runtime::watcher::Event::Apply(secret));
    ctx.secret_cache = Some(SecretCache::new(reader));
    (Arc::new(ctx), handle, writer)
}

/// The Secret watch's store serves a Secret metalhost has adopted: a look at a host whose node is
/// busy (or idle) makes no API-server request at all, only the node read.
#[tokio::test]
async fn a_look_with_the_secret_watched_makes_no_api_request() {
    let ironic = ironic().await;
    deploying_node(&ironic).await;
    let (h, secret) = deploying_host_and_secret("u1");
    let (ctx, mut handle, _) = context_with_cached(&ironic, secret);
    // the API server: records what it is asked (and answers as for the Secret, so a reconcile
    // that does ask completes)
    let served = serde_json::to_vec(&deploying_host_and_secret("u1").1).unwrap();
    let server = tokio::spawn(async move {
        let mut asked = Vec::new();
        while let Some((request, send)) = handle.next_request().await {
            asked.push(format!("{} {}", request.method(), request.uri().path()));
            send.send_response(Response::builder().body(Body::from(served.clone())).unwrap());
        }
        asked
    });
    let action = reconcile(h, ctx.clone()).await.unwrap();
    assert!(requeue_seconds(&action).is_some(), "polling");
    drop(ctx);
    assert_eq!(server.await.unwrap(), Vec::<String>::new(), "no API-server request");
    let reads =
        ironic.received_requests().await.unwrap().iter().filter(|r| r.url.path() == "/v1/nodes/n1").count();
    assert_eq!(reads, 1);
}

/// A watched Secret that is not yet this host's (shared with another host) is read from the API
/// server and adopted, as without the store; the store serves it only once it shows the version
/// the adoption made (an older entry the watch has not caught up from is not used).
#[tokio::test]
async fn a_watched_secret_of_another_host_is_read_adopted_and_then_served_once_current() {
    let ironic = ironic().await;
    deploying_node(&ironic).await;
    let (h, theirs) = deploying_host_and_secret("other");
    // registered with the version the adoption below makes
    let mut h = serde_json::to_value(h.as_ref()).unwrap();
    for field in ["goodCredentials", "triedCredentials"] {
        h["status"][field]["credentialsVersion"] = json!("10");
    }
    let h: Arc<metalhost_api::BareMetalHost> = Arc::new(serde_json::from_value(h).unwrap());
    let (ctx, mut handle, mut writer) = context_with_cached(&ironic, theirs.clone());
    let at = |version: &str, owners: &[&str]| {
        let mut secret = serde_json::to_value(&theirs).unwrap();
        secret["metadata"]["resourceVersion"] = json!(version);
        secret["metadata"]["ownerReferences"] = owners
            .iter()
            .map(|uid| json!({"apiVersion": "metal3.io/v1alpha1", "kind": "BareMetalHost", "name": uid, "uid": uid}))
            .collect();
        secret
    };

    // the store's entry is another host's: read (the server is at 8 meanwhile) and adopt (→ 10)
    let reconciled = tokio::spawn(reconcile(h.clone(), ctx.clone()));
    expect(&mut handle, "GET", "/api/v1/namespaces/default/secrets/bmc", StatusCode::OK, at("8", &["other"]))
        .await;
    let patch = expect(
        &mut handle,
        "PATCH",
        "/api/v1/namespaces/default/secrets/bmc",
        StatusCode::OK,
        at("10", &["other", "u1"]),
    )
    .await;
    assert_eq!(patch["metadata"]["resourceVersion"], "8", "the version read is the precondition");
    let owners: Vec<&str> = patch["metadata"]["ownerReferences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["uid"].as_str().unwrap())
        .collect();
    assert_eq!(owners, ["other", "u1"], "the other owner kept, this host added");
    reconciled.await.unwrap().unwrap();
    // the watch event of the label patch's version need not wake this host; any other version does
    let cache = ctx.secret_cache.as_ref().unwrap();
    let as_secret = |v: Value| serde_json::from_value::<Secret>(v).unwrap();
    assert_eq!(cache.labelled_by(&as_secret(at("10", &["other", "u1"]))).as_deref(), Some("u1"));
    assert_eq!(cache.labelled_by(&as_secret(at("11", &["other", "u1"]))), None);

    // the watch delivers an adopted but older version (9): not used, read again
    let apply = |writer: &mut SecretWriter, secret: Value| {
        writer.apply_watcher_event(&kube::runtime::watcher::Event::Apply(
            serde_json::from_value(secret).unwrap(),
        ));
    };
    apply(&mut writer, at("9", &["other", "u1"]));
    let reconciled = tokio::spawn(reconcile(h.clone(), ctx.clone()));
    expect(
        &mut handle,
        "GET",
        "/api/v1/namespaces/default/secrets/bmc",
        StatusCode::OK,
        at("10", &["other", "u1"]),
    )
    .await;
    reconciled.await.unwrap().unwrap();

    // the watch catches up: served from the store, no request
    apply(&mut writer, at("10", &["other", "u1"]));
    reconcile(h, ctx.clone()).await.unwrap();
    no_more(ctx, handle).await;
}
