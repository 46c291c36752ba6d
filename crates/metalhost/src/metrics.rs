//! Prometheus metrics of both runtimes: hosts per provisioning state, reconciles (count, duration,
//! errors), and Ironic requests by method, endpoint and status code; served with `/healthz` and
//! `/readyz`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::routing::get;
use metalhost_ironic::RequestObserver;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct IronicLabels {
    method: String,
    endpoint: String,
    code: String,
}

/// The metrics registry and its series.
pub struct Metrics {
    registry: Mutex<Registry>,
    hosts: Family<StateLabels, Gauge>,
    reconciles: Family<ResultLabels, Counter>,
    reconcile_seconds: Histogram,
    ironic_requests: Family<IronicLabels, Counter>,
    /// The state of every host, by `namespace/name`: the one count of hosts per state.
    states: Mutex<BTreeMap<String, String>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    /// Registers every series under the prefix `metalhost`.
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("metalhost");
        let hosts = Family::<StateLabels, Gauge>::default();
        registry.register("hosts", "BareMetalHosts per provisioning state", hosts.clone());
        let reconciles = Family::<ResultLabels, Counter>::default();
        registry.register("reconciles", "Reconciles by result (ok, error)", reconciles.clone());
        let reconcile_seconds = Histogram::new(exponential_buckets(0.001, 4.0, 9));
        registry.register("reconcile_duration_seconds", "Time one reconcile took", reconcile_seconds.clone());
        let ironic_requests = Family::<IronicLabels, Counter>::default();
        registry.register(
            "ironic_requests",
            "Ironic HTTP requests by method, endpoint and status code",
            ironic_requests.clone(),
        );
        Arc::new(Metrics {
            states: Mutex::new(BTreeMap::new()),
            registry: Mutex::new(registry),
            hosts,
            reconciles,
            reconcile_seconds,
            ironic_requests,
        })
    }

    /// Records one reconcile.
    pub fn reconciled(&self, took: Duration, error: bool) {
        let result = if error { "error" } else { "ok" };
        self.reconciles.get_or_create(&ResultLabels { result: result.into() }).inc();
        self.reconcile_seconds.observe(took.as_secs_f64());
    }

    /// Records the state of one host (`None`: the host is gone), and with it the number of hosts
    /// per state (states no host is in go). Both runtimes call this after each reconcile.
    pub fn host_state(&self, key: &str, state: Option<&str>) {
        let mut states = self.states.lock().expect("metrics states");
        match state {
            Some(s) => {
                states.insert(key.to_string(), if s.is_empty() { "new".into() } else { s.to_string() })
            }
            None => states.remove(key),
        };
        let mut counts: BTreeMap<&str, i64> = BTreeMap::new();
        for state in states.values() {
            *counts.entry(state.as_str()).or_insert(0) += 1;
        }
        self.hosts.clear();
        for (state, n) in counts {
            self.hosts.get_or_create(&StateLabels { state: state.to_string() }).set(n);
        }
    }

    /// An observer for the Ironic client that counts its requests here.
    pub fn ironic_observer(self: &Arc<Self>) -> RequestObserver {
        let me = Arc::clone(self);
        Arc::new(move |method: &str, endpoint: &str, code: u16| {
            let labels =
                IronicLabels { method: method.into(), endpoint: endpoint.into(), code: code.to_string() };
            me.ironic_requests.get_or_create(&labels).inc();
        })
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().expect("metrics registry");
        prometheus_client::encoding::text::encode(&mut out, &registry).expect("writing to a String");
        out
    }

    /// `/metrics`, `/healthz` and `/readyz`.
    pub fn router(self: &Arc<Self>) -> Router {
        let me = Arc::clone(self);
        Router::new()
            .route(
                "/metrics",
                get(move || {
                    let me = Arc::clone(&me);
                    async move {
                        (
                            [(CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
                            me.render(),
                        )
                    }
                }),
            )
            .route("/healthz", get(|| async { "ok" }))
            .route("/readyz", get(|| async { "ok" }))
    }

    /// Serves the router on `addr` (plain HTTP) until the process ends. The address served at is
    /// logged (`metrics served at http://ADDR/metrics`): with port 0 the system picks a free one.
    pub async fn serve(self: Arc<Self>, addr: SocketAddr) -> std::io::Result<()> {
        self.serve_on(tokio::net::TcpListener::from_std(crate::listen::bind(addr)?)?).await
    }

    /// As `serve`, on a socket already bound (tests bind port 0 and keep it, so no other process
    /// can take the port between choosing and serving).
    pub async fn serve_on(self: Arc<Self>, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        tracing::info!("metrics served at http://{}/metrics", listener.local_addr()?);
        crate::serve::serve(listener, None, self.router()).await
    }
}
