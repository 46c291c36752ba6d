//! The HTTP client: one negotiated microversion per process, typed calls, bounded retries of
//! "node locked" (409) and "busy" (503) answers.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use tracing::debug;

use crate::error::{Error, fault_string, truncate};
use crate::types::*;

/// The oldest API version metalhost works with: virtual media attach/detach arrived in 1.89.
pub const MIN_API_VERSION: (u32, u32) = (1, 89);
/// The newest API version metalhost asks for (Ironic 39's newest; what the tests run against).
pub const MAX_API_VERSION: (u32, u32) = (1, 115);

/// The largest answer read from Ironic (a page of 1000 nodes is well under 1 MiB); a larger one is
/// refused with [`Error::TooLarge`], never held in memory whole.
pub const MAX_RESPONSE_BYTES: u64 = 8 * 1024 * 1024;

/// The most pages of the node list read (a million nodes): the list is bounded whatever Ironic says.
pub const MAX_NODE_PAGES: usize = 1000;

const VERSION_HEADER: &str = "X-OpenStack-Ironic-API-Version";
const RETRIES: u32 = 4;

/// Called after every HTTP exchange with Ironic: method, endpoint (the path with node and port
/// identifiers replaced by `{id}`, no query) and status code (0 when there was no answer). For
/// metrics.
pub type RequestObserver = Arc<dyn Fn(&str, &str, u16) + Send + Sync>;

/// The endpoint of a path for metrics: `/v1/nodes/abc/states/power?x=1` → `/v1/nodes/{id}/states/power`.
pub fn endpoint(path: &str) -> String {
    let path = path.split('?').next().unwrap_or("");
    let mut out = Vec::new();
    let mut previous = "";
    for segment in path.split('/') {
        out.push(if matches!(previous, "nodes" | "ports") && !segment.is_empty() { "{id}" } else { segment });
        previous = segment;
    }
    out.join("/")
}

/// The base URL requests are built on: `url` without trailing slashes and without a trailing API
/// version segment, so that baremetal-operator's `IRONIC_ENDPOINT` (`http://ironic:6385/v1/`)
/// reaches `/v1/nodes`, never `/v1/v1/nodes`.
pub fn base_url(url: &str) -> &str {
    let url = url.trim_end_matches('/');
    url.strip_suffix("/v1").map_or(url, |u| u.trim_end_matches('/'))
}

/// How to reach Ironic.
#[derive(Clone)]
pub struct ClientConfig {
    /// Base URL, e.g. `http://127.0.0.1:6385`. Userinfo in it (`http://user:pass@host`) is taken
    /// as basic auth (unless `basic_auth` is set) and removed from the URL the client keeps, so
    /// that no error, log or status can show it.
    pub url: String,
    /// Per-request time-out.
    pub timeout: Duration,
    /// PEM file of a CA to trust for https.
    pub ca_file: Option<PathBuf>,
    /// HTTP basic auth user and password (Ironic `auth_strategy=http_basic`).
    pub basic_auth: Option<(String, String)>,
    /// Accept any TLS certificate (only when asked for explicitly).
    pub insecure: bool,
    /// Told of every request (metrics).
    pub observer: Option<RequestObserver>,
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("url", &redacted(&self.url))
            .field("timeout", &self.timeout)
            .field("ca_file", &self.ca_file)
            .field("basic_auth_user", &self.basic_auth.as_ref().map(|(user, _)| user))
            .field("insecure", &self.insecure)
            .finish()
    }
}

impl ClientConfig {
    /// A config for `url` with a 30 s time-out and no TLS or auth settings.
    pub fn new(url: impl Into<String>) -> Self {
        ClientConfig {
            url: url.into(),
            timeout: Duration::from_secs(30),
            ca_file: None,
            basic_auth: None,
            insecure: false,
            observer: None,
        }
    }
}

/// A connected Ironic client. Cheap to clone; clones share the connection pool and the counter.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    version: String,
    basic_auth: Option<(String, String)>,
    requests: Arc<AtomicU64>,
    observer: Option<RequestObserver>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("base", &self.base).field("version", &self.version).finish()
    }
}

fn parse_version(v: &str) -> Option<(u32, u32)> {
    let (major, minor) = v.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

impl Client {
    /// Connects and negotiates the microversion: the newest both sides know, at least 1.89.
    pub async fn connect(config: ClientConfig) -> Result<Self, Error> {
        // Ironic never redirects; following one could send a request body (BMC credentials) and the
        // basic-auth header to another origin: a 3xx is an error like any other answer
        let mut builder = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none());
        if let Some(path) = &config.ca_file {
            let pem = crate::read_config_file(path)
                .map_err(|e| Error::Config(format!("CA file {}: {e}", path.display())))?;
            let cert = reqwest::Certificate::from_pem(&pem)
                .map_err(|e| Error::Config(format!("CA file {}: {e}", path.display())))?;
            builder = builder.add_root_certificate(cert);
        }
        if config.insecure {
            builder = builder.danger_accept_invalid_certs(true);
        }
        let http = builder.build().map_err(|e| Error::Config(e.to_string()))?;
        let (base, url_auth) = split_userinfo(&config.url)?;
        let base = base_url(&base).to_string();
        let mut client = Client {
            http,
            base,
            version: String::new(),
            basic_auth: config.basic_auth.or(url_auth),
            requests: Arc::new(AtomicU64::new(0)),
            observer: config.observer,
        };
        let root: Value = client.call(Method::GET, "/", None::<&()>).await?;
        let max = root.pointer("/default_version/version").and_then(Value::as_str).ok_or_else(|| {
            Error::Decode { what: "GET /".into(), reason: "no default_version.version".into() }
        })?;
        let server_max = parse_version(max)
            .ok_or_else(|| Error::Decode { what: "GET /".into(), reason: format!("version '{max}'") })?;
        if server_max < MIN_API_VERSION {
            return Err(Error::VersionTooOld {
                url: client.base.clone(),
                max: max.to_string(),
                min: format!("{}.{}", MIN_API_VERSION.0, MIN_API_VERSION.1),
            });
        }
        let chosen = server_max.min(MAX_API_VERSION);
        client.version = format!("{}.{}", chosen.0, chosen.1);
        debug!(url = %client.base, version = %client.version, "negotiated Ironic API version");
        Ok(client)
    }

    /// The negotiated microversion, e.g. `1.115`.
    pub fn api_version(&self) -> &str {
        &self.version
    }

    /// Whether the negotiated version is at least `major.minor`.
    pub fn supports(&self, major: u32, minor: u32) -> bool {
        parse_version(&self.version).is_some_and(|v| v >= (major, minor))
    }

    /// The base URL.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// How many HTTP requests this client (and its clones) sent, retries included.
    pub fn request_count(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, String), Error> {
        let url = format!("{}{}", self.base, path);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut req = self.http.request(method.clone(), &url).header("Accept", "application/json");
            if !self.version.is_empty() {
                req = req.header(VERSION_HEADER, &self.version);
            }
            if let Some((user, password)) = &self.basic_auth {
                req = req.basic_auth(user, Some(password));
            }
            if let Some(body) = body {
                req = req.json(body);
            }
            self.requests.fetch_add(1, Ordering::Relaxed);
            // what was asked and answered, for tracing faults (the crash tests read these lines);
            // never the body, which may hold BMC credentials
            let target = body.and_then(|b| b.get("target")).and_then(Value::as_str).unwrap_or("");
            debug!(method = %method, path, target, "Ironic request");
            let observe = |code: u16| {
                if let Some(observer) = &self.observer {
                    observer(method.as_str(), &endpoint(path), code);
                }
            };
            let resp = req.send().await.map_err(|e| {
                observe(0);
                Error::Unreachable { url: url.clone(), reason: describe(&e) }
            })?;
            let status = resp.status();
            observe(status.as_u16());
            debug!(method = %method, path, status = status.as_u16(), "Ironic answered");
            let text = read_body(resp, &method, path, &url).await?;
            let retry = status == StatusCode::SERVICE_UNAVAILABLE
                || (status == StatusCode::CONFLICT && text.contains("locked"));
            if retry && attempt < RETRIES {
                let delay = Duration::from_millis(100 * 2u64.pow(attempt) + u64::from(attempt) * 37);
                debug!(%method, path, status = status.as_u16(), ?delay, "Ironic busy, retrying");
                tokio::time::sleep(delay).await;
                continue;
            }
            if status.is_success() {
                return Ok((status, text));
            }
            return Err(Error::Api {
                method: method.to_string(),
                path: path.to_string(),
                status: status.as_u16(),
                message: fault_string(&text),
                body: truncate(&text),
            });
        }
    }

    async fn call<T: DeserializeOwned, B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, Error> {
        let body = body.map(serde_json::to_value).transpose().map_err(|e| Error::Decode {
            what: format!("{method} {path} request"),
            reason: truncate(&e.to_string()),
        })?;
        let (_, text) = self.send(method.clone(), path, body.as_ref()).await?;
        let text = if text.trim().is_empty() { "null" } else { text.as_str() };
        serde_json::from_str(text)
            .map_err(|e| Error::Decode { what: format!("{method} {path}"), reason: truncate(&e.to_string()) })
    }

    async fn call_empty<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<(), Error> {
        let _: Value = self.call(method, path, body).await?;
        Ok(())
    }

    /// `GET /v1/nodes/{ident}` by UUID or name; None when there is no such node.
    pub async fn get_node(&self, ident: &str) -> Result<Option<Node>, Error> {
        match self.call(Method::GET, &format!("/v1/nodes/{}", encode(ident)), None::<&()>).await {
            Ok(node) => Ok(Some(node)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `POST /v1/nodes` with the given fields (name, driver, interfaces, driver_info, …).
    pub async fn create_node(&self, fields: &Map<String, Value>) -> Result<Node, Error> {
        self.call(Method::POST, "/v1/nodes", Some(fields)).await
    }

    /// `PATCH /v1/nodes/{ident}` with an RFC 6902 patch; returns the updated node.
    pub async fn patch_node(&self, ident: &str, patch: &json_patch::Patch) -> Result<Node, Error> {
        self.call(Method::PATCH, &format!("/v1/nodes/{}", encode(ident)), Some(patch)).await
    }

    /// `DELETE /v1/nodes/{ident}`; deleting a missing node is not an error.
    pub async fn delete_node(&self, ident: &str) -> Result<(), Error> {
        match self.call_empty(Method::DELETE, &format!("/v1/nodes/{}", encode(ident)), None::<&()>).await {
            Err(e) if e.is_not_found() => Ok(()),
            other => other,
        }
    }

    /// `GET /v1/nodes` (names, UUIDs, states and boot interfaces of every node; follows
    /// pagination). The boot interface tells the provisioning limit which nodes boot by virtual
    /// media (they take no slot).
    /// Paging stops with an error when Ironic hands back a marker it gave before (a page repeated
    /// for ever would otherwise grow the list without end) or past [`MAX_NODE_PAGES`] pages.
    pub async fn list_nodes(&self) -> Result<Vec<Node>, Error> {
        const QUERY: &str = "fields=uuid,name,provision_state,power_state,boot_interface&limit=1000";
        let mut nodes = Vec::new();
        let mut markers = std::collections::HashSet::new();
        let mut path = format!("/v1/nodes?{QUERY}");
        for _ in 0..MAX_NODE_PAGES {
            let page: Value = self.call(Method::GET, &path, None::<&()>).await?;
            let batch: Vec<Node> = serde_json::from_value(page["nodes"].clone()).map_err(|e| {
                Error::Decode { what: "GET /v1/nodes".into(), reason: truncate(&e.to_string()) }
            })?;
            let last = batch.last().map(|n| n.uuid.clone());
            let full = batch.len() >= 1000;
            nodes.extend(batch);
            match (full, last) {
                (true, Some(marker)) if !markers.insert(marker.clone()) => {
                    return Err(Error::Decode {
                        what: "GET /v1/nodes".into(),
                        reason: format!(
                            "the page after marker {} came again: Ironic repeats itself",
                            truncate(&marker)
                        ),
                    });
                }
                (true, Some(marker)) => path = format!("/v1/nodes?{QUERY}&marker={}", encode(&marker)),
                _ => return Ok(nodes),
            }
        }
        Err(Error::Decode {
            what: "GET /v1/nodes".into(),
            reason: format!("more than {MAX_NODE_PAGES} pages of 1000 nodes; not read further"),
        })
    }

    /// `GET /v1/ports?node_uuid=…`.
    pub async fn list_ports(&self, node_uuid: &str) -> Result<Vec<Port>, Error> {
        let page: Value = self
            .call(
                Method::GET,
                &format!("/v1/ports?node_uuid={}&fields=uuid,address,node_uuid", encode(node_uuid)),
                None::<&()>,
            )
            .await?;
        serde_json::from_value(page["ports"].clone())
            .map_err(|e| Error::Decode { what: "GET /v1/ports".into(), reason: truncate(&e.to_string()) })
    }

    /// `POST /v1/ports` for a MAC on a node.
    pub async fn create_port(&self, node_uuid: &str, mac: &str) -> Result<Port, Error> {
        self.call(Method::POST, "/v1/ports", Some(&json!({"node_uuid": node_uuid, "address": mac}))).await
    }

    /// `GET /v1/nodes/{ident}/validate`: per interface, whether the node's settings are usable.
    pub async fn validate(&self, ident: &str) -> Result<Map<String, Value>, Error> {
        self.call(Method::GET, &format!("/v1/nodes/{}/validate", encode(ident)), None::<&()>).await
    }

    /// `PUT /v1/nodes/{ident}/states/provision`, with an optional config drive for `active`.
    pub async fn set_provision_state(
        &self,
        ident: &str,
        target: ProvisionTarget,
        configdrive: Option<&Value>,
    ) -> Result<(), Error> {
        let mut body = json!({"target": target.as_str()});
        if let Some(cd) = configdrive {
            body["configdrive"] = cd.clone();
        }
        self.call_empty(Method::PUT, &format!("/v1/nodes/{}/states/provision", encode(ident)), Some(&body))
            .await
    }

    /// `PUT /v1/nodes/{ident}/states/provision` with `clean`: manual cleaning of a manageable
    /// node with these steps; `disable_ramdisk` (API ≥ 1.70) runs them without booting the agent,
    /// which steps that declare they need none allow (Ironic fails the clean of one that does).
    pub async fn clean(&self, ident: &str, steps: &[Value], disable_ramdisk: bool) -> Result<(), Error> {
        let mut body = json!({"target": "clean", "clean_steps": steps});
        if disable_ramdisk {
            body["disable_ramdisk"] = json!(true);
        }
        self.call_empty(Method::PUT, &format!("/v1/nodes/{}/states/provision", encode(ident)), Some(&body))
            .await
    }

    /// `PUT /v1/nodes/{ident}/states/power`.
    pub async fn set_power_state(&self, ident: &str, target: PowerTarget) -> Result<(), Error> {
        self.call_empty(
            Method::PUT,
            &format!("/v1/nodes/{}/states/power", encode(ident)),
            Some(&json!({"target": target})),
        )
        .await
    }

    /// `POST /v1/nodes/{ident}/vmedia`: insert an image (API ≥ 1.89). `download_source`:
    /// `local` (the conductor stages it) or `http` (the BMC fetches it).
    pub async fn attach_vmedia(
        &self,
        ident: &str,
        device_type: &str,
        image_url: &str,
        download_source: Option<&str>,
    ) -> Result<(), Error> {
        let mut body = json!({"device_type": device_type, "image_url": image_url});
        if let Some(source) = download_source {
            body["image_download_source"] = json!(source);
        }
        self.call_empty(Method::POST, &format!("/v1/nodes/{}/vmedia", encode(ident)), Some(&body)).await
    }

    /// `DELETE /v1/nodes/{ident}/vmedia`: eject virtual media of these device types (`cdrom`,
    /// `floppy`, `disk`), or all when none are named (API ≥ 1.89).
    pub async fn detach_vmedia(&self, ident: &str, device_types: &[&str]) -> Result<(), Error> {
        let query = if device_types.is_empty() {
            String::new()
        } else {
            format!("?device_types={}", device_types.join(","))
        };
        self.call_empty(Method::DELETE, &format!("/v1/nodes/{}/vmedia{query}", encode(ident)), None::<&()>)
            .await
    }

    /// `GET /v1/nodes/{ident}/vmedia` (API ≥ 1.93; fails while the node is locked).
    pub async fn get_vmedia(&self, ident: &str) -> Result<Vec<VirtualMedia>, Error> {
        self.call(Method::GET, &format!("/v1/nodes/{}/vmedia", encode(ident)), None::<&()>).await
    }

    /// `GET /v1/nodes/{ident}/inventory` (API ≥ 1.81): what inspection found, as
    /// `{"inventory": …, "plugin_data": …}`; None when the node has none (never inspected).
    pub async fn get_inventory(&self, ident: &str) -> Result<Option<Value>, Error> {
        match self.call(Method::GET, &format!("/v1/nodes/{}/inventory", encode(ident)), None::<&()>).await {
            Ok(answer) => Ok(Some(answer)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `GET /v1/nodes/{ident}/history`, oldest first (API ≥ 1.78).
    pub async fn node_history(&self, ident: &str) -> Result<Vec<HistoryEvent>, Error> {
        let page: Value =
            self.call(Method::GET, &format!("/v1/nodes/{}/history", encode(ident)), None::<&()>).await?;
        serde_json::from_value(page["history"].clone())
            .map_err(|e| Error::Decode { what: "GET node history".into(), reason: truncate(&e.to_string()) })
    }

    /// `GET /v1/nodes/{ident}/bios?detail=True` (API ≥ 1.74): the machine's BIOS settings as the
    /// conductor last cached them, each with what the BIOS registry says of it.
    pub async fn bios_settings(&self, ident: &str) -> Result<Vec<BiosSetting>, Error> {
        let page: Value = self
            .call(Method::GET, &format!("/v1/nodes/{}/bios?detail=True", encode(ident)), None::<&()>)
            .await?;
        serde_json::from_value(page["bios"].clone()).map_err(|e| Error::Decode {
            what: "GET node BIOS settings".into(),
            reason: truncate(&e.to_string()),
        })
    }

    /// `GET /v1/drivers`: names of the enabled hardware types.
    pub async fn list_drivers(&self) -> Result<Vec<String>, Error> {
        let page: Value = self.call(Method::GET, "/v1/drivers", None::<&()>).await?;
        Ok(page["drivers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|d| d["name"].as_str().map(str::to_string))
            .collect())
    }
}

/// Reads an answer's body by chunks, refusing it once it passes [`MAX_RESPONSE_BYTES`] (also when
/// the server announces more up front).
async fn read_body(
    mut resp: reqwest::Response,
    method: &Method,
    path: &str,
    url: &str,
) -> Result<String, Error> {
    let too_large = || Error::TooLarge { what: format!("{method} {path}"), limit: MAX_RESPONSE_BYTES };
    if resp.content_length().is_some_and(|n| n > MAX_RESPONSE_BYTES) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) =
        resp.chunk().await.map_err(|e| Error::Unreachable { url: url.to_string(), reason: describe(&e) })?
    {
        if (body.len() + chunk.len()) as u64 > MAX_RESPONSE_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// Splits `user:password@` off an Ironic URL (as BMO accepts in `IRONIC_ENDPOINT`): the base URL
/// to keep (no userinfo, no trailing slash) and the credentials, percent-decoded. Errors never
/// repeat the URL's userinfo.
pub fn split_userinfo(raw: &str) -> Result<(String, Option<(String, String)>), Error> {
    let mut url =
        url::Url::parse(raw).map_err(|e| Error::Config(format!("Ironic URL '{}': {e}", redacted(raw))))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::Config(format!(
            "Ironic URL '{}' must start with http:// or https://",
            redacted(raw)
        )));
    }
    let auth = (!url.username().is_empty() || url.password().is_some())
        .then(|| (percent_decode(url.username()), percent_decode(url.password().unwrap_or(""))));
    // cannot fail for http(s) URLs, which have a host
    let _ = url.set_username("");
    let _ = url.set_password(None);
    Ok((url.as_str().trim_end_matches('/').to_string(), auth))
}

/// `%XX` escapes decoded (as a URL's userinfo is written); invalid UTF-8 becomes U+FFFD.
fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// A URL as it may be shown: userinfo replaced by `***` (everything up to the last `@` after the
/// scheme, so a password with a raw `/` is hidden too).
fn redacted(raw: &str) -> String {
    match raw.split_once("://") {
        Some((scheme, rest)) => match rest.rfind('@') {
            Some(at) => format!("{scheme}://***{}", &rest[at..]),
            None => raw.to_string(),
        },
        None => raw.to_string(),
    }
}

fn describe(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    // the client's URLs hold no userinfo, but what the HTTP stack says is not ours to trust
    text.split(' ').map(redacted).collect::<Vec<_>>().join(" ")
}

/// Percent-encodes a path segment (node names may hold `~`, which is fine, but not `/` or `?`).
fn encode(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes()).collect::<String>().replace("%7E", "~")
}

#[cfg(test)]
mod tests {
    use super::*;
    use wiremock::matchers::{header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    async fn server(max: &str) -> MockServer {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/"))
            .respond_with(ResponseTemplate::new(200).set_body_json(
                json!({"default_version": {"id": "v1", "min_version": "1.1", "version": max}}),
            ))
            .mount(&server)
            .await;
        server
    }

    #[test]
    fn base_url_drops_a_trailing_api_version() {
        for url in [
            "http://i:6385",
            "http://i:6385/",
            "http://i:6385/v1",
            "http://i:6385/v1/",
            "http://i:6385//v1//",
        ] {
            assert_eq!(base_url(url), "http://i:6385", "{url}");
        }
        assert_eq!(base_url("https://h/baremetal/v1/"), "https://h/baremetal");
        assert_eq!(base_url("https://h/baremetal"), "https://h/baremetal");
        assert_eq!(base_url("https://h/v10"), "https://h/v10");
    }

    #[tokio::test]
    async fn an_endpoint_ending_in_v1_reaches_v1_nodes() {
        let server = server("1.99").await;
        Mock::given(method("GET"))
            .and(path("/v1/nodes"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"nodes": []})))
            .expect(1)
            .mount(&server)
            .await;
        let client = Client::connect(ClientConfig::new(format!("{}/v1/", server.uri()))).await.unwrap();
        assert!(client.list_nodes().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn every_page_of_the_node_list_asks_for_the_boot_interface() {
        use wiremock::matchers::query_param;
        let server = server("1.99").await;
        let fields = "uuid,name,provision_state,power_state,boot_interface";
        let page: Vec<Value> = (0..1000)
            .map(|i| json!({"uuid": format!("u{i}"), "provision_state": "available", "boot_interface": "ipxe"}))
            .collect();
        Mock::given(method("GET"))
            .and(path("/v1/nodes"))
            .and(query_param("fields", fields))
            .and(query_param("marker", "u999"))
            .respond_with(ResponseTemplate::new(200).set_body_json(
                json!({"nodes": [{"uuid": "last", "provision_state": "deploying", "boot_interface": "redfish-virtual-media"}]}),
            ))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/v1/nodes"))
            .and(query_param("fields", fields))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"nodes": page})))
            .expect(1)
            .mount(&server)
            .await;
        let client = Client::connect(ClientConfig::new(server.uri())).await.unwrap();
        let nodes = client.list_nodes().await.unwrap();
        assert_eq!(nodes.len(), 1001);
        assert_eq!(nodes[1000].boot_interface.as_deref(), Some("redfish-virtual-media"));
    }

    /// An Ironic (or something in its place) that hands back the same full page for ever: the
    /// list ends with an error after the second page instead of growing until memory runs out.
    #[tokio::test]
    async fn a_node_list_that_repeats_itself_ends_with_an_error() {
        let server = server("1.99").await;
        let page: Vec<Value> =
            (0..1000).map(|i| json!({"uuid": format!("u{i}"), "provision_state": "available"})).collect();
        Mock::given(method("GET"))
            .and(path("/v1/nodes"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"nodes": page})))
            .mount(&server)
            .await;
        let client = Client::connect(ClientConfig::new(server.uri())).await.unwrap();
        let e = client.list_nodes().await.unwrap_err();
        assert!(e.to_string().contains("came again"), "{e}");
        let pages =
            server.received_requests().await.unwrap().iter().filter(|r| r.url.path() == "/v1/nodes").count();
        assert_eq!(pages, 2, "the repeat is seen on the second page");
    }

    #[tokio::test]
    async fn a_manual_clean_sends_its_steps_without_the_agent() {
        use wiremock::matchers::body_json;
        let server = server("1.99").await;
        let steps = vec![json!({"interface": "bios", "step": "apply_configuration",
            "args": {"settings": [{"name": "ProcTurboMode", "value": "Disabled"}]}})];
        Mock::given(method("PUT"))
            .and(path("/v1/nodes/n1/states/provision"))
            .and(body_json(json!({"target": "clean", "clean_steps": steps, "disable_ramdisk": true})))
            .respond_with(ResponseTemplate::new(202))
            .expect(1)
            .mount(&server)
            .await;
        let client = Client::connect(ClientConfig::new(server.uri())).await.unwrap();
        client.clean("n1", &steps, true).await.unwrap();
    }

    #[tokio::test]
    async fn bios_settings_come_with_their_registry_fields() {
        use wiremock::matchers::query_param;
        let server = server("1.99").await;
        Mock::given(method("GET"))
            .and(path("/v1/nodes/n1/bios"))
            .and(query_param("detail", "True"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"bios": [
                {"name": "BootMode", "value": "Uefi", "attribute_type": "Enumeration",
                 "allowable_values": ["Uefi", "Bios"], "lower_bound": null, "upper_bound": null,
                 "min_length": null, "max_length": null, "read_only": false, "reset_required": null,
                 "unique": null, "links": []},
                {"name": "SerialNumber", "value": null, "read_only": true},
            ]})))
            .expect(1)
            .mount(&server)
            .await;
        let client = Client::connect(ClientConfig::new(server.uri())).await.unwrap();
        let settings = client.bios_settings("n1").await.unwrap();
        assert_eq!(settings.len(), 2);
        assert_eq!(settings[0].name, "BootMode");
        assert_eq!(settings[0].value.as_deref(), Some("Uefi"));
        assert_eq!(settings[0].attribute_type.as_deref(), Some("Enumeration"));
        assert_eq!(settings[0].allowable_values, Some(vec!["Uefi".to_string(), "Bios".to_string()]));
        assert_eq!(settings[1].value, None);
        assert_eq!(settings[1].read_only, Some(true));
    }

    /// A redirect to another origin is not followed: the request body (BMC credentials) and the
    /// basic-auth header never reach it, and the call fails with the 3xx.
    #[tokio::test]
    async fn a_redirect_is_never_followed() {
        let server = server("1.99").await;
        let elsewhere = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v1/nodes"))
            .respond_with(
                ResponseTemplate::new(307).insert_header("Location", format!("{}/v1/nodes", elsewhere.uri())),
            )
            .mount(&server)
            .await;
        let mut config = ClientConfig::new(server.uri());
        config.basic_auth = Some(("ironic".into(), "ironic-pw".into()));
        let client = Client::connect(config).await.unwrap();
        let mut fields = Map::new();
        fields.insert("driver_info".into(), json!({"redfish_password": "bmc-secret-pw"}));
        let e = client.create_node(&fields).await.unwrap_err();
        assert_eq!(e.status(), Some(307), "{e}");
        assert!(elsewhere.received_requests().await.unwrap().is_empty(), "nothing reached the other origin");
    }

    #[test]
    fn endpoints_hide_identifiers_and_queries() {
        assert_eq!(endpoint("/v1/nodes/abc/states/power"), "/v1/nodes/{id}/states/power");
        assert_eq!(endpoint("/v1/nodes/default~h1"), "/v1/nodes/{id}");
        assert_eq!(endpoint("/v1/nodes?fields=uuid"), "/v1/nodes");
        assert_eq!(endpoint("/v1/ports?node_uuid=x"), "/v1/ports");
        assert_eq!(endpoint("/"), "/");
    }

    #[test]
    fn config_debug_never_shows_the_password() {
        let mut config = ClientConfig::new("https://ironic");
        config.basic_auth = Some(("admin".into(), "hunter2".into()));
        let text = format!("{config:?}");
        assert!(text.contains("admin") && !text.contains("hunter2"), "{text}");
        let text = format!("{:?}", ClientConfig::new("https://admin:hunter2@ironic"));
        assert!(text.contains("https://***@ironic") && !text.contains("hunter2"), "{text}");
    }

    #[tokio::test]
    async fn userinfo_in_the_url_is_basic_auth_and_never_shown() {
        let s = server("1.115").await;
        let with_auth = s.uri().replace("http://", "http://admin:hun%2Fter2@");
        Mock::given(method("GET"))
            .and(path("/v1/nodes/n1"))
            .and(header("Authorization", "Basic YWRtaW46aHVuL3RlcjI=")) // admin:hun/ter2
            .respond_with(ResponseTemplate::new(500).set_body_string("boom"))
            .expect(1)
            .mount(&s)
            .await;
        let c = Client::connect(ClientConfig::new(with_auth)).await.unwrap();
        assert_eq!(c.url(), s.uri());
        let err = c.get_node("n1").await.unwrap_err();
        assert_eq!(err.status(), Some(500), "the credentials were sent: {err}");
        // unreachable, unparsable, wrong scheme: the password is in no message
        for url in ["http://admin:hunter2@127.0.0.1:9", "http://admin:hunter2@[::1", "ftp://admin:hunter2@x"]
        {
            let err = Client::connect(ClientConfig::new(url)).await.unwrap_err();
            let text = format!("{err} {err:?}");
            assert!(!text.contains("hunter2"), "{text}");
        }
    }

    #[tokio::test]
    async fn an_oversized_answer_is_refused_not_read() {
        let s = server("1.115").await;
        let huge = "x".repeat(MAX_RESPONSE_BYTES as usize + 1);
        Mock::given(method("GET"))
            .and(path("/v1/nodes/big"))
            .respond_with(ResponseTemplate::new(200).set_body_string(huge.clone()))
            .mount(&s)
            .await;
        Mock::given(method("GET"))
            .and(path("/v1/nodes/bigerror"))
            .respond_with(ResponseTemplate::new(400).set_body_string(huge))
            .mount(&s)
            .await;
        let c = Client::connect(ClientConfig::new(s.uri())).await.unwrap();
        for ident in ["big", "bigerror"] {
            let err = c.get_node(ident).await.unwrap_err();
            assert!(matches!(err, Error::TooLarge { limit: MAX_RESPONSE_BYTES, .. }), "{err}");
            assert_eq!(
                err.to_string(),
                format!("Ironic's answer to GET /v1/nodes/{ident} is over the 8388608-byte limit; not read")
            );
        }
    }

    #[tokio::test]
    async fn a_huge_faultstring_is_cut_before_it_reaches_a_status() {
        let s = server("1.115").await;
        let fault = "f".repeat(1_000_000);
        Mock::given(method("PUT"))
            .and(path("/v1/nodes/n1/states/provision"))
            .respond_with(
                ResponseTemplate::new(400)
                    .set_body_json(json!({"error_message": json!({"faultstring": fault}).to_string()})),
            )
            .mount(&s)
            .await;
        let c = Client::connect(ClientConfig::new(s.uri())).await.unwrap();
        let err = c.set_provision_state("n1", ProvisionTarget::Active, None).await.unwrap_err();
        let Error::Api { message, body, .. } = &err else { panic!("{err}") };
        assert!(message.len() < 5000 && message.ends_with("cut by metalhost]"), "{}", message.len());
        assert!(body.len() < 5000, "{}", body.len());
    }

    #[tokio::test]
    async fn negotiates_the_newest_common_version() {
        let s = server("1.93").await;
        let c = Client::connect(ClientConfig::new(s.uri())).await.unwrap();
        assert_eq!(c.api_version(), "1.93");
        assert!(c.supports(1, 89) && !c.supports(1, 94));
        let s = server("1.200").await;
        assert_eq!(Client::connect(ClientConfig::new(s.uri())).await.unwrap().api_version(), "1.115");
    }

    #[tokio::test]
    async fn refuses_an_ironic_older_than_1_89() {
        let s = server("1.88").await;
        let err = Client::connect(ClientConfig::new(s.uri())).await.unwrap_err();
        assert!(matches!(err, Error::VersionTooOld { .. }), "{err}");
        assert!(err.to_string().contains("at least 1.89"), "{err}");
    }

    #[tokio::test]
    async fn unreachable_ironic_is_a_clear_error() {
        let err = Client::connect(ClientConfig::new("http://127.0.0.1:9")).await.unwrap_err();
        assert!(err.to_string().starts_with("Ironic unreachable at http://127.0.0.1:9/"), "{err}");
        assert!(err.is_transient());
    }

    #[tokio::test]
    async fn sends_the_version_header_and_maps_404_to_none() {
        let s = server("1.115").await;
        Mock::given(method("GET"))
            .and(path("/v1/nodes/default~h1"))
            .and(header(VERSION_HEADER, "1.115"))
            .respond_with(ResponseTemplate::new(404).set_body_json(
                json!({"error_message": "{\"faultstring\": \"Node default~h1 could not be found.\"}"}),
            ))
            .expect(1)
            .mount(&s)
            .await;
        let c = Client::connect(ClientConfig::new(s.uri())).await.unwrap();
        assert_eq!(c.get_node("default~h1").await.unwrap(), None);
    }

    #[tokio::test]
    async fn keeps_ironic_faultstring_and_status() {
        let s = server("1.115").await;
        Mock::given(method("PUT"))
            .and(path("/v1/nodes/n1/states/provision"))
            .respond_with(ResponseTemplate::new(400).set_body_json(
                json!({"error_message": "{\"faultstring\": \"The requested action \\\"active\\\" can not be performed\"}"}),
            ))
            .mount(&s)
            .await;
        let c = Client::connect(ClientConfig::new(s.uri())).await.unwrap();
        let err = c.set_provision_state("n1", ProvisionTarget::Active, None).await.unwrap_err();
        assert_eq!(err.status(), Some(400));
        assert!(
            err.to_string().contains("HTTP 400: The requested action \"active\" can not be performed"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn retries_a_locked_node_until_it_is_free() {
        let s = server("1.115").await;
        Mock::given(method("PUT"))
            .and(path("/v1/nodes/n1/states/power"))
            .respond_with(ResponseTemplate::new(409).set_body_json(json!({"error_message":
                "{\"faultstring\": \"Node n1 is locked by host c1, please retry after the current operation is completed.\"}"})))
            .up_to_n_times(2)
            .mount(&s)
            .await;
        Mock::given(method("PUT"))
            .and(path("/v1/nodes/n1/states/power"))
            .respond_with(ResponseTemplate::new(202))
            .mount(&s)
            .await;
        let c = Client::connect(ClientConfig::new(s.uri())).await.unwrap();
        c.set_power_state("n1", PowerTarget::On).await.unwrap();
    }

    #[tokio::test]
    async fn a_conflict_that_is_not_a_lock_is_not_retried() {
        let s = server("1.115").await;
        Mock::given(method("POST"))
            .and(path("/v1/nodes"))
            .respond_with(ResponseTemplate::new(409).set_body_json(json!({"error_message":
                "{\"faultstring\": \"A node with name default~h1 already exists.\"}"})))
            .expect(1)
            .mount(&s)
            .await;
        let c = Client::connect(ClientConfig::new(s.uri())).await.unwrap();
        let err = c.create_node(&Map::new()).await.unwrap_err();
        assert_eq!(err.status(), Some(409));
        assert!(err.to_string().contains("already exists"), "{err}");
    }

    #[tokio::test]
    async fn a_slow_answer_past_the_timeout_is_a_transient_error() {
        let s = server("1.115").await;
        Mock::given(method("GET"))
            .and(path("/v1/nodes/n1"))
            .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(3)))
            .mount(&s)
            .await;
        let mut config = ClientConfig::new(s.uri());
        config.timeout = Duration::from_millis(300);
        let c = Client::connect(config).await.unwrap();
        let err = c.get_node("n1").await.unwrap_err();
        assert!(err.is_transient(), "{err}");
        assert!(err.to_string().contains("timed out"), "{err}");
    }

    #[tokio::test]
    async fn retries_busy_answers_then_gives_up() {
        let s = server("1.115").await;
        Mock::given(method("PUT"))
            .and(path("/v1/nodes/n1/states/power"))
            .respond_with(ResponseTemplate::new(503).set_body_string("busy"))
            .expect(u64::from(RETRIES))
            .mount(&s)
            .await;
        let c = Client::connect(ClientConfig::new(s.uri())).await.unwrap();
        let before = c.request_count();
        let err = c.set_power_state("n1", PowerTarget::On).await.unwrap_err();
        assert_eq!(err.status(), Some(503));
        assert_eq!(c.request_count() - before, u64::from(RETRIES));
    }
}
