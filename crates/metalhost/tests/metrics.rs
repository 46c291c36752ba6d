//! The metrics endpoint: scraped over HTTP and parsed; the runtime's reconciles, hosts per state and
//! Ironic requests by endpoint and code show up, and no BMC password does.

use std::collections::BTreeMap;
use std::time::Duration;

use metalhost::metrics::Metrics;
use metalhost::standalone::{Runtime, RuntimeConfig, Source};
use metalhost_ironic::ClientConfig;
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Parses the exposition text into `name{labels}` → value.
fn parse(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap_or_else(|| panic!("bad line {l}"));
            (series.to_string(), value.parse().unwrap_or_else(|_| panic!("bad value in {l}")))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_scraped_and_parsed() {
    // an Ironic that knows no node and refuses to create one
    let ironic = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"default_version": {"version": "1.115"}})),
        )
        .mount(&ironic)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/nodes"))
        .respond_with(ResponseTemplate::new(400))
        .mount(&ironic)
        .await;

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("hosts.yaml"),
        "kind: Secret\nmetadata: {name: c}\nstringData: {username: admin, password: metrics-secret-pw}\n---\n\
         kind: BareMetalHost\nmetadata: {name: h1}\nspec: {online: true, bootMACAddress: '52:54:00:00:09:01',\n  \
         bmc: {address: 'fake-hardware://h1', credentialsName: c}}\n---\n\
         kind: BareMetalHost\nmetadata: {name: h2}\nspec: {online: true}\n",
    )
    .unwrap();
    let metrics = Metrics::new();
    let mut config = RuntimeConfig::new(ClientConfig::new(ironic.uri()));
    config.metrics = Some(metrics.clone());
    let mut rt = Runtime::new(config, Source::Dir(dir.path().to_path_buf()));
    rt.step().await;

    // the address config/ gives ([::]): both families, so an IPv6-only cluster's probes reach it
    let listener = metalhost::listen::bind("[::]:0".parse().unwrap()).unwrap();
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(metrics.clone().serve_on(listener));
    let mut text = String::new();
    for _ in 0..50 {
        if let Ok(r) = reqwest::get(format!("http://127.0.0.1:{port}/metrics")).await {
            assert!(
                r.headers()["content-type"].to_str().unwrap().starts_with("application/openmetrics-text")
            );
            text = r.text().await.unwrap();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let over_ipv6 = reqwest::get(format!("http://[::1]:{port}/healthz")).await.unwrap();
    assert!(over_ipv6.status().is_success(), "/healthz over ::1");
    let samples = parse(&text);
    assert_eq!(samples.get(r#"metalhost_hosts{state="registering"}"#), Some(&1.0), "{text}");
    assert_eq!(samples.get(r#"metalhost_hosts{state="unmanaged"}"#), Some(&1.0), "{text}");
    assert_eq!(samples.get(r#"metalhost_reconciles_total{result="error"}"#), Some(&1.0), "{text}");
    assert_eq!(samples.get(r#"metalhost_reconciles_total{result="ok"}"#), Some(&1.0), "{text}");
    assert_eq!(samples.get("metalhost_reconcile_duration_seconds_count"), Some(&2.0), "{text}");
    assert_eq!(
        samples.get(r#"metalhost_ironic_requests_total{method="GET",endpoint="/",code="200"}"#),
        Some(&1.0),
        "{text}"
    );
    assert_eq!(
        samples.get(r#"metalhost_ironic_requests_total{method="POST",endpoint="/v1/nodes",code="400"}"#),
        Some(&1.0),
        "{text}"
    );
    assert!(!text.contains("metrics-secret-pw"), "no password in metrics");
    let health = reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await.unwrap();
    assert!(health.status().is_success());
}
