//! kube-rs itself (the version the Kubernetes runtime uses) works against the API-server double:
//! watchers (list-then-watch and streaming lists), status merge patches, `get_opt` of a missing
//! object, Events through the Recorder and a Lease through kube-lease-manager.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Config, Resource};
use metalhost_testlab::KubeDouble;
use serde_json::json;

/// Guards against a hang (a bug would otherwise stall the suite); not a timing assertion.
const HANG_GUARD: Duration = Duration::from_secs(60);

async fn client(double: &KubeDouble) -> Client {
    let kubeconfig = Kubeconfig::read_from(&double.kubeconfig).expect("kubeconfig");
    let config =
        Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await.expect("config");
    Client::try_from(config).expect("client")
}

fn hosts(client: &Client) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("metal3.io", "v1alpha1", "BareMetalHost");
    Api::namespaced_with(
        client.clone(),
        "default",
        &ApiResource::from_gvk_with_plural(&gvk, "baremetalhosts"),
    )
}

fn host(name: &str) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "metal3.io/v1alpha1", "kind": "BareMetalHost",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"online": true}
    }))
    .expect("object")
}

async fn first_named(stream_config: watcher::Config, api: Api<DynamicObject>, name: &str) -> DynamicObject {
    let stream = watcher(api, stream_config).applied_objects();
    let mut stream = std::pin::pin!(stream);
    tokio::time::timeout(HANG_GUARD, async {
        loop {
            let obj = stream.try_next().await.expect("watch").expect("stream open");
            if obj.metadata.name.as_deref() == Some(name) {
                return obj;
            }
        }
    })
    .await
    .expect("the watcher saw the object")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_watches_patches_status_and_reads_back() {
    let double = KubeDouble::start();
    let client = client(&double).await;
    let api = hosts(&client);
    api.create(&PostParams::default(), &host("before")).await.expect("create");
    // list-then-watch (the default) sees an object created after the list
    let watching = tokio::spawn(first_named(watcher::Config::default(), api.clone(), "after"));
    let listed = first_named(watcher::Config::default(), api.clone(), "before").await;
    assert_eq!(listed.metadata.generation, Some(1));
    api.create(&PostParams::default(), &host("after")).await.expect("create");
    let seen = watching.await.expect("watch task");
    assert!(seen.metadata.resource_version.is_some());
    // a streaming list (sendInitialEvents) too
    let streamed = first_named(watcher::Config::default().streaming_lists(), api.clone(), "after").await;
    assert_eq!(streamed.metadata.uid, seen.metadata.uid);

    let patched = api
        .patch_status(
            "after",
            &PatchParams::default(),
            // every field the CRD requires of a status (the double, as the API server, refuses less)
            &Patch::Merge(json!({"status": {"poweredOn": true, "errorCount": 0, "errorMessage": "",
                "operationalStatus": "OK", "provisioningFailCount": 0, "provisioning": {"ID": "", "state": ""}}})),
        )
        .await
        .expect("status patch");
    assert_eq!(patched.data["status"]["poweredOn"], true);
    let read = api.get_status("after").await.expect("get status");
    assert_eq!(read.data["status"]["poweredOn"], true);
    assert_eq!(read.metadata.generation, Some(1), "status does not bump generation");
    assert!(api.get_opt("missing").await.expect("get_opt").is_none(), "404 maps to None");

    let recorder = Recorder::new(client.clone(), Reporter { controller: "test".into(), instance: None });
    let event = Event {
        type_: EventType::Normal,
        reason: "Seen".into(),
        note: Some("seen".into()),
        action: "Seen".into(),
        secondary: None,
    };
    let reference = read.object_ref(&ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("metal3.io", "v1alpha1", "BareMetalHost"),
        "baremetalhosts",
    ));
    recorder.publish(&event, &reference).await.expect("first event: create");
    recorder.publish(&event, &reference).await.expect("repeated event: merge patch");
    let events: Vec<_> = double
        .requests()
        .into_iter()
        .filter(|r| r.api_group == "events.k8s.io")
        .map(|r| (r.verb, r.code))
        .collect();
    assert_eq!(events, [("create".to_string(), 201), ("patch".to_string(), 200)]);
    let failed: Vec<_> = double
        .requests()
        .into_iter()
        .filter(|r| r.code >= 400 && r.name != "missing")
        .map(|r| r.path)
        .collect();
    assert!(failed.is_empty(), "kube-rs requests refused: {failed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_lease_manager_acquires_a_lease() {
    let double = KubeDouble::start();
    let client = client(&double).await;
    let manager = kube_lease_manager::LeaseManagerBuilder::new(client.clone(), "metalhost-leader")
        .with_namespace("default")
        .with_identity("replica-1")
        .build()
        .await
        .expect("lease manager");
    let (mut leader, _task) = manager.watch().await;
    tokio::time::timeout(HANG_GUARD, async {
        while !*leader.borrow_and_update() {
            leader.changed().await.expect("lease manager running");
        }
    })
    .await
    .expect("became leader");
    let lease = Api::<Lease>::namespaced(client, "default").get("metalhost-leader").await.expect("lease");
    assert_eq!(lease.spec.and_then(|s| s.holder_identity).as_deref(), Some("replica-1"));
    let verbs: Vec<_> = double
        .requests()
        .into_iter()
        .filter(|r| r.resource == "leases")
        .map(|r| format!("{} {}", r.verb, r.code))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert!(verbs.iter().all(|v| !v.ends_with(" 500")), "{verbs:?}");
}

/// The next object the watcher applies whose name is `name` (errors, which the watcher recovers
/// from by itself, are skipped).
async fn wait_for(
    stream: &mut (impl futures::Stream<Item = Result<DynamicObject, watcher::Error>> + Unpin),
    name: &str,
) {
    tokio::time::timeout(HANG_GUARD, async {
        while let Some(item) = stream.next().await {
            if item.is_ok_and(|o| o.metadata.name.as_deref() == Some(name)) {
                return;
            }
        }
        panic!("watch stream ended");
    })
    .await
    .unwrap_or_else(|_| panic!("the watcher never saw {name}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_rewatches_after_a_closed_stream_and_relists_after_410_gone() {
    let double = KubeDouble::start();
    let client = client(&double).await;
    let api = hosts(&client);
    let mut stream = std::pin::pin!(watcher(api.clone(), watcher::Config::default()).applied_objects());
    api.create(&PostParams::default(), &host("a")).await.expect("create");
    wait_for(&mut stream, "a").await;

    double.close_watches();
    api.create(&PostParams::default(), &host("b")).await.expect("create");
    wait_for(&mut stream, "b").await;

    // the change to "c" is forgotten before the open watch can deliver it: 410, then a new list
    double.pause_watches();
    api.create(&PostParams::default(), &host("c")).await.expect("create");
    double.compact();
    double.resume_watches();
    wait_for(&mut stream, "c").await;
    let lists =
        double.requests().iter().filter(|r| r.verb == "list" && r.resource == "baremetalhosts").count();
    assert_eq!(lists, 2, "one initial list, one after 410 Gone");
}
