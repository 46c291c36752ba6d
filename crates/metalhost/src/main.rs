//! `metalhost`: a metal3-compatible bare-metal host operator with live-ISO boot through Ironic.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use metalhost::progress::Progress;
use metalhost::settings;
use metalhost::standalone::{Runtime, RuntimeConfig, Source, settled};
use metalhost_api::OperationalStatus;

#[derive(Parser)]
#[command(
    name = "metalhost",
    version,
    about = "Bare-metal hosts (metal3 BareMetalHost API) through Ironic, with live-ISO boot"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Reconcile every BareMetalHost in a directory of manifests, for ever. Status files are
    /// written beside the manifests; removing a host's manifest deletes the host.
    Run {
        /// Directory of manifests (BareMetalHosts and the Secrets they name).
        #[arg(long, required_unless_present = "kube", conflicts_with = "kube")]
        manifests: Option<PathBuf>,
        /// Reconcile the BareMetalHosts of a Kubernetes cluster instead (kubeconfig or in-cluster).
        #[arg(long)]
        kube: bool,
        /// With --kube: only this namespace (default: all).
        #[arg(long, requires = "kube")]
        namespace: Option<String>,
        /// With --kube: elect a leader through a Lease so that only one replica reconciles.
        #[arg(long, requires = "kube")]
        leader_elect: bool,
        /// Namespace of the leader Lease (default: $POD_NAMESPACE, else `default`). Used only with
        /// --leader-elect (a pod that sets POD_NAMESPACE without it runs as usual).
        #[arg(long, env = "POD_NAMESPACE")]
        lease_namespace: Option<String>,
        /// Keep a JSON file with counters (Ironic requests sent) up to date, for benchmarks.
        #[arg(long)]
        stats_file: Option<PathBuf>,
        #[command(flatten)]
        common: Common,
    },
    /// Reconcile the hosts of one manifest file; with --wait, until they are provisioned (or
    /// available when they have no image) or one fails.
    Apply {
        /// The manifest file. Secrets may be in it or in the other manifests of its directory.
        file: PathBuf,
        /// Wait until done, showing progress.
        #[arg(long)]
        wait: bool,
        /// Give up waiting after this many seconds.
        #[arg(long, default_value_t = 1800)]
        timeout: u64,
        #[command(flatten)]
        common: Common,
    },
    /// List the hosts of a manifest directory as `kubectl get baremetalhosts` would (the CRD's
    /// printer columns), from the status files `metalhost run` writes.
    Get {
        /// Directory of manifests that `metalhost run` reconciles.
        #[arg(long, default_value = ".")]
        manifests: PathBuf,
        /// After the list, print a line each time a host changes (until SIGINT or SIGTERM).
        #[arg(short = 'w', long)]
        watch: bool,
        /// `wide` (more columns), `json` or `yaml` (a Kubernetes List).
        #[arg(short = 'o', long, value_parser = ["wide", "json", "yaml"])]
        output: Option<String>,
        /// Only these hosts (`name` or `namespace/name`); `dataimages [NAME…]` or
        /// `hostfirmwaresettings [NAME…]` (`hfs`) lists the hosts' DataImages or
        /// HostFirmwareSettings instead (a host of such a name: `default/NAME`).
        names: Vec<String>,
    },
    /// Show one host in full: spec, status, conditions, its Ironic node (with --ironic), errors,
    /// operation history and recent events.
    Describe {
        /// The host (`name` or `namespace/name`).
        name: String,
        /// Directory of manifests that `metalhost run` reconciles.
        #[arg(long, default_value = ".")]
        manifests: PathBuf,
        #[command(flatten)]
        ironic: settings::IronicFlags,
    },
    /// Print the CustomResourceDefinitions (YAML): BareMetalHost, generated from the Rust types, and
    /// upstream's HardwareData, HostFirmwareSettings and FirmwareSchema.
    Crd,
    /// Serve the validating admission webhook (HTTPS) with upstream's BareMetalHost rules.
    Webhook {
        /// Address to listen on.
        #[arg(long, default_value = metalhost::listen::WEBHOOK_DEFAULT)]
        listen: std::net::SocketAddr,
        /// PEM certificate.
        #[arg(long, default_value = "/tmp/k8s-webhook-server/serving-certs/tls.crt")]
        cert: PathBuf,
        /// PEM private key.
        #[arg(long, default_value = "/tmp/k8s-webhook-server/serving-certs/tls.key")]
        key: PathBuf,
        /// Print the address, path and files it would serve with, and exit.
        #[arg(long)]
        check_config: bool,
    },
    /// Check manifests against upstream's admission rules: one line per violation (path: reason);
    /// exits 1 when there is any. A status file beside a manifest adds the update rules.
    Validate {
        /// Manifest files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

/// What `run` and `apply` take besides their own arguments.
#[derive(Args)]
struct Common {
    #[command(flatten)]
    flags: settings::Flags,
    /// Serve Prometheus metrics, /healthz and /readyz (plain HTTP) on this address (port 0: a free
    /// port, named in the log).
    #[arg(long, env = "METALHOST_METRICS_LISTEN")]
    metrics_listen: Option<std::net::SocketAddr>,
    /// Print the settings resolved from the flags, METALHOST_* and baremetal-operator's variables
    /// and files (never a password), and exit without connecting to anything.
    #[arg(long)]
    check_config: bool,
}

impl Common {
    /// The runtime's settings (no side effect: nothing printed, started or connected).
    fn settings(&self) -> anyhow::Result<settings::Settings> {
        Ok(settings::resolve(&self.flags, &settings::process_env(), &settings::read_file)?)
    }

    /// With `--check-config` (after the command's own arguments are checked): the settings as
    /// they would be used, for the operator to read.
    fn check_config(&self) -> anyhow::Result<ExitCode> {
        let settings = self.settings()?;
        for line in settings.describe() {
            println!("{line}");
        }
        if let Some(addr) = self.metrics_listen {
            println!("metrics, /healthz, /readyz: {addr}");
        }
        Ok(ExitCode::SUCCESS)
    }

    /// The runtime's configuration, its warnings logged and its metrics served when asked for.
    fn start(&self) -> anyhow::Result<RuntimeConfig> {
        let settings = self.settings()?;
        for warning in &settings.warnings {
            tracing::warn!("{warning}");
        }
        let mut config = RuntimeConfig::from_settings(settings);
        if let Some(addr) = self.metrics_listen {
            let metrics = metalhost::metrics::Metrics::new();
            config.metrics = Some(metrics.clone());
            tokio::spawn(async move {
                if let Err(e) = metrics.serve(addr).await {
                    tracing::error!("metrics on {addr}: {e}");
                }
            });
        }
        Ok(config)
    }
}

/// How `describe` reaches Ironic: without `--ironic` or `$IRONIC_ENDPOINT`, Ironic is not asked.
fn describe_ironic(flags: &settings::IronicFlags) -> anyhow::Result<Option<metalhost_ironic::ClientConfig>> {
    let env = settings::process_env();
    if flags.ironic_url.is_none() && !env.contains_key("IRONIC_ENDPOINT") {
        return Ok(None);
    }
    let flags = settings::Flags { ironic: flags.clone(), ..Default::default() };
    let mut ironic = settings::resolve(&flags, &env, &settings::read_file)?.ironic;
    ironic.timeout = Duration::from_secs(10);
    Ok(Some(ironic))
}

fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("METALHOST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // colours only on a terminal; tracing-subscriber escapes control characters in what it logs
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

async fn run(manifests: PathBuf, stats_file: Option<PathBuf>, common: Common) -> anyhow::Result<ExitCode> {
    if !manifests.is_dir() {
        bail!("--manifests {}: not a directory", manifests.display());
    }
    if common.check_config {
        return common.check_config();
    }
    let mut stop = metalhost::stop::Stop::listen(metalhost::stop::STOP_GRACE);
    let mut runtime = Runtime::new(common.start()?, Source::Dir(manifests));
    let mut progress = Progress::new();
    let mut reported_requests = None;
    loop {
        tokio::select! {
            changes = runtime.step() => {
                for change in &changes {
                    progress.change(change);
                }
                progress.summary(metalhost::fleet::summary::line(runtime.statuses().map(|(_, s)| s)));
            }
            () = stop.requested() => return Ok(ExitCode::SUCCESS),
        }
        if let Some(path) = &stats_file {
            let requests = runtime.ironic_requests();
            if reported_requests != Some(requests) {
                let stats =
                    serde_json::json!({"ironic_requests": requests, "hosts": runtime.statuses().count()});
                let tmp = path.with_extension("tmp");
                std::fs::write(&tmp, stats.to_string()).and_then(|()| std::fs::rename(&tmp, path))?;
                reported_requests = Some(requests);
            }
        }
        tokio::select! {
            _ = runtime.wait_for_work(Duration::from_secs(2)) => {}
            () = stop.requested() => return Ok(ExitCode::SUCCESS),
        }
    }
}

async fn run_kube(
    namespace: Option<String>,
    lease: Option<String>,
    common: Common,
) -> anyhow::Result<ExitCode> {
    use metalhost::kube::leader::{Leadership, StopReason};
    if common.check_config {
        return common.check_config();
    }
    let mut stop = metalhost::stop::Stop::listen(metalhost::stop::KUBE_STOP_GRACE);
    let config = common.start()?;
    let client = kube::Client::try_default().await.context("connecting to Kubernetes")?;
    // with leader election: wait to lead (or to be stopped)
    let leadership = match lease {
        Some(lease_namespace) => match Leadership::acquire(client.clone(), lease_namespace, &mut stop).await?
        {
            Some(leadership) => Some(leadership),
            None => return Ok(ExitCode::SUCCESS),
        },
        None => None,
    };
    let mut ctx = metalhost::kube::Context::new(client, config.reconciler());
    ctx.metrics = config.metrics.clone();
    ctx.idle = config.idle;
    let concurrency = u16::try_from(config.concurrency).unwrap_or(u16::MAX);
    let Some(leadership) = leadership else {
        metalhost::kube::run(ctx, namespace, concurrency, async move { stop.requested().await }).await;
        return Ok(ExitCode::SUCCESS);
    };
    let reason =
        leadership.lead(stop, |signal| metalhost::kube::run(ctx, namespace, concurrency, signal)).await;
    match reason {
        StopReason::Shutdown => Ok(ExitCode::SUCCESS),
        failure => Err(failure.into()),
    }
}

async fn apply(file: PathBuf, wait: bool, timeout: u64, common: Common) -> anyhow::Result<ExitCode> {
    if !file.is_file() {
        bail!("{}: no such manifest file", file.display());
    }
    if common.check_config {
        return common.check_config();
    }
    let mut runtime = Runtime::new(common.start()?, Source::File(file.clone()));
    let mut progress = Progress::new();
    let failed =
        |rt: &Runtime| rt.present().any(|(_, _, s)| s.operational_status == OperationalStatus::Error);
    let all_settled = |rt: &Runtime| {
        let mut hosts = rt.present().peekable();
        hosts.peek().is_some() && rt.present().all(|(_, h, s)| settled(h, s))
    };
    let finished = if wait {
        runtime
            .run_until(
                Duration::from_secs(timeout),
                |c| progress.change(c),
                |rt| failed(rt) || all_settled(rt),
            )
            .await
    } else {
        // one look at each host: carry out what can be done at once, then leave Ironic to it
        runtime
            .run_until(
                Duration::from_secs(timeout),
                |c| progress.change(c),
                |rt| rt.next_due().is_none_or(|due| due > std::time::Instant::now()),
            )
            .await
    };
    let mut code = ExitCode::SUCCESS;
    let hosts: Vec<_> = runtime.present().map(|(k, _, s)| (k.to_string(), s.clone())).collect();
    if hosts.is_empty() {
        eprintln!("{}: no BareMetalHost found", file.display());
        return Ok(ExitCode::from(2));
    }
    for (key, status) in hosts {
        let message = if status.operational_status == OperationalStatus::Error {
            code = ExitCode::FAILURE;
            let kind = status.error_type.map_or("error", |t| t.as_str());
            let error = format!("{kind}: {}", status.error_message);
            // shown once: the line that reported it already said why
            let shown = progress.shown(&key, &error);
            format!("{} — {}", status.provisioning.state, if shown { kind } else { &error })
        } else {
            format!(
                "{} (Ironic node {})",
                status.provisioning.state,
                if status.provisioning.id.is_empty() { "-" } else { &status.provisioning.id }
            )
        };
        progress.finish(&key, message);
    }
    if wait && !finished {
        eprintln!("gave up waiting after {timeout} s");
        code = ExitCode::from(3);
    }
    Ok(code)
}

/// The hosts of `dir` named in `names` (all when none), with the problems met reported.
fn fleet_hosts(dir: &std::path::Path, names: &[String]) -> anyhow::Result<Vec<metalhost_api::BareMetalHost>> {
    if !dir.is_dir() {
        bail!("--manifests {}: not a directory", dir.display());
    }
    let (hosts, problems) = metalhost::fleet::load(dir);
    for p in problems {
        eprintln!("warning: {}", safe(&p));
    }
    let hosts: Vec<_> = hosts.into_iter().filter(|h| metalhost::fleet::selected(h, names)).collect();
    for name in names {
        if !hosts.iter().any(|h| metalhost::fleet::selected(h, std::slice::from_ref(name))) {
            bail!("baremetalhost {name:?} not found in {}", dir.display());
        }
    }
    Ok(hosts)
}

fn print_objects(output: Option<&str>, hosts: &[metalhost_api::BareMetalHost]) -> anyhow::Result<()> {
    let list = metalhost::fleet::table::list(hosts);
    match output {
        Some("json") => println!("{}", serde_json::to_string_pretty(&list)?),
        _ => print!("{}", serde_yaml_ng::to_string(&list)?),
    }
    Ok(())
}

/// What `get` takes as its first name to list DataImages instead of hosts (as kubectl's kind).
const DATA_IMAGE_KINDS: &[&str] = &["dataimages", "dataimage"];

/// What `get` takes as its first name to list HostFirmwareSettings instead of hosts.
const FIRMWARE_SETTINGS_KINDS: &[&str] = &["hostfirmwaresettings", "hfs"];

/// The records of `kind` in `dir` named in `names` (all when none), as their status files hold
/// them; unsound files are warned about.
fn records_named<T: serde::de::DeserializeOwned + kube::Resource>(
    dir: &std::path::Path,
    kind: &str,
    names: &[String],
) -> anyhow::Result<Vec<T>> {
    if !dir.is_dir() {
        bail!("--manifests {}: not a directory", dir.display());
    }
    let (objects, problems) = metalhost::standalone::records::read_all::<T>(dir, kind);
    for p in problems {
        eprintln!("warning: {}", safe(&p));
    }
    let named = |o: &T, n: &str| {
        let name = o.meta().name.as_deref().unwrap_or_default();
        n == name || n == format!("{}/{name}", o.meta().namespace.as_deref().unwrap_or("default"))
    };
    for n in names {
        if !objects.iter().any(|o| named(o, n)) {
            bail!("{kind} {n:?} not found in {}", dir.display());
        }
    }
    Ok(objects.into_iter().filter(|o| names.is_empty() || names.iter().any(|n| named(o, n))).collect())
}

/// Prints records as `get` does: a List for `-o json|yaml`, else the table `lines` makes.
fn print_records<T: serde::Serialize>(
    dir: &std::path::Path,
    kind: &str,
    output: Option<&str>,
    objects: &[T],
    lines: impl Fn(&[T]) -> Vec<String>,
) -> anyhow::Result<ExitCode> {
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": objects});
    match output {
        Some("json") => println!("{}", serde_json::to_string_pretty(&list)?),
        Some("yaml") => print!("{}", serde_yaml_ng::to_string(&list)?),
        _ if objects.is_empty() => eprintln!("No {kind}s found in {}.", dir.display()),
        _ => {
            for line in lines(objects) {
                println!("{}", safe(&line));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `get dataimages [NAME…]`: the DataImages of the directory as their status files hold them.
fn get_data_images(
    dir: &std::path::Path,
    output: Option<&str>,
    names: &[String],
) -> anyhow::Result<ExitCode> {
    let images: Vec<metalhost_api::data_image::DataImage> = records_named(dir, "DataImage", names)?;
    print_records(dir, "DataImage", output, &images, metalhost::fleet::table::data_images)
}

/// `get hostfirmwaresettings [NAME…]`: the hosts' HostFirmwareSettings as judged.
fn get_firmware_settings(
    dir: &std::path::Path,
    output: Option<&str>,
    names: &[String],
) -> anyhow::Result<ExitCode> {
    let kind = "HostFirmwareSettings";
    let all: Vec<metalhost_api::firmware::HostFirmwareSettings> = records_named(dir, kind, names)?;
    print_records(dir, kind, output, &all, metalhost::fleet::table::firmware_settings)
}

async fn get(
    dir: PathBuf,
    watch: bool,
    output: Option<String>,
    names: Vec<String>,
) -> anyhow::Result<ExitCode> {
    let kind = names.first().map(String::as_str).unwrap_or_default();
    let other_kind = DATA_IMAGE_KINDS.contains(&kind) || FIRMWARE_SETTINGS_KINDS.contains(&kind);
    if other_kind && (watch || output.as_deref() == Some("wide")) {
        bail!("get {kind}: -w and -o wide are for hosts only");
    }
    if DATA_IMAGE_KINDS.contains(&kind) {
        return get_data_images(&dir, output.as_deref(), &names[1..]);
    }
    if names.first().is_some_and(|kind| FIRMWARE_SETTINGS_KINDS.contains(&kind.as_str())) {
        return get_firmware_settings(&dir, output.as_deref(), &names[1..]);
    }
    if watch {
        return watch_hosts(dir, output, names).await;
    }
    let now = k8s_openapi::jiff::Timestamp::now;
    let hosts = fleet_hosts(&dir, &names)?;
    if matches!(output.as_deref(), Some("json" | "yaml")) {
        print_objects(output.as_deref(), &hosts)?;
    } else if hosts.is_empty() {
        eprintln!("No hosts found in {}.", dir.display());
    } else {
        for line in metalhost::fleet::table::table(&hosts, output.as_deref() == Some("wide"), now()) {
            println!("{}", safe(&line));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `get -w`: the hosts, then a line (or an object) per change until a signal.
async fn watch_hosts(dir: PathBuf, output: Option<String>, names: Vec<String>) -> anyhow::Result<ExitCode> {
    use metalhost::fleet::watch::Watch;
    let now = k8s_openapi::jiff::Timestamp::now;
    // listening from the start: the first read of a large fleet takes a while
    let mut stop = metalhost::stop::Stop::listen(metalhost::stop::STOP_GRACE);
    let hosts = fleet_hosts(&dir, &names)?;
    let wide = output.as_deref() == Some("wide");
    let (mut watch, lines) = Watch::start(&dir, &names, wide, now());
    if matches!(output.as_deref(), Some("json" | "yaml")) {
        print_objects(output.as_deref(), &hosts)?;
    } else {
        for line in lines {
            println!("{}", safe(&line));
        }
    }
    loop {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
            () = stop.requested() => return Ok(ExitCode::SUCCESS),
        }
        for shown in watch.poll(now()) {
            match output.as_deref() {
                Some("json") => println!("{}", serde_json::to_string(&shown.host)?),
                Some("yaml") => print!("---\n{}", serde_yaml_ng::to_string(&shown.host)?),
                _ => println!("{}", safe(&shown.line)),
            }
        }
    }
}

async fn describe(dir: PathBuf, name: String, ironic: settings::IronicFlags) -> anyhow::Result<ExitCode> {
    use metalhost::fleet::ironic::{NodeView, lookup};
    let hosts = fleet_hosts(&dir, std::slice::from_ref(&name))?;
    let events = metalhost::standalone::events::read(&dir);
    for host in &hosts {
        let node = match describe_ironic(&ironic)? {
            Some(config) => lookup(config, host).await,
            None => NodeView::NotAsked,
        };
        for line in metalhost::fleet::describe::describe(host, &events, &node).lines() {
            println!("{}", safe(line));
        }
        let name = host.metadata.name.as_deref().unwrap_or_default();
        match metalhost::standalone::data_images::read(&dir, name, host.namespace_or_default()) {
            Ok(Some(image)) => {
                for line in metalhost::fleet::describe::describe_data_image(&image).lines() {
                    println!("{}", safe(line));
                }
            }
            Ok(None) => {}
            Err(problem) => eprintln!("warning: {}", safe(&problem)),
        }
        let kind = "HostFirmwareSettings";
        match metalhost::standalone::records::read(&dir, kind, name, host.namespace_or_default()) {
            Ok(Some(settings)) => {
                for line in metalhost::fleet::describe::describe_firmware_settings(&settings).lines() {
                    println!("{}", safe(line));
                }
            }
            Ok(None) => {}
            Err(problem) => eprintln!("warning: {}", safe(&problem)),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Text from manifests, status files or Ironic as it may reach a terminal: control characters
/// escaped.
fn safe(text: &str) -> std::borrow::Cow<'_, str> {
    metalhost_api::text::terminal_safe(text)
}

fn validate(files: &[PathBuf]) -> ExitCode {
    let lines = metalhost::validate::check_files(files);
    for line in &lines {
        println!("{}", safe(line));
    }
    if lines.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run { manifests, kube, namespace, leader_elect, lease_namespace, stats_file, common } => {
            init_logging("info");
            match (kube, manifests) {
                (true, _) => {
                    let lease = leader_elect.then(|| lease_namespace.unwrap_or_else(|| "default".into()));
                    run_kube(namespace, lease, common).await
                }
                (false, Some(dir)) => run(dir, stats_file, common).await,
                (false, None) => Err(anyhow::anyhow!("--manifests DIR or --kube is needed")),
            }
        }
        Command::Apply { file, wait, timeout, common } => {
            // errors are shown by the progress output
            init_logging("off");
            apply(file, wait, timeout, common).await
        }
        Command::Crd => serde_yaml_ng::to_string(&metalhost_api::crd()).map_err(Into::into).map(|yaml| {
            use metalhost_api::data_image::DATA_IMAGE_CRD;
            use metalhost_api::firmware::{FIRMWARE_SCHEMA_CRD, HOST_FIRMWARE_SETTINGS_CRD};
            print!(
                "{yaml}{}{HOST_FIRMWARE_SETTINGS_CRD}{FIRMWARE_SCHEMA_CRD}{DATA_IMAGE_CRD}",
                metalhost_api::HARDWARE_DATA_CRD
            );
            ExitCode::SUCCESS
        }),
        Command::Validate { files } => Ok(validate(&files)),
        Command::Get { manifests, watch, output, names } => {
            init_logging("off");
            get(manifests, watch, output, names).await
        }
        Command::Describe { name, manifests, ironic } => {
            init_logging("off");
            describe(manifests, name, ironic).await
        }
        Command::Webhook { listen, cert, key, check_config: true } => {
            println!("listen: {listen}");
            println!("path: {}", metalhost::webhook::VALIDATE_PATH);
            println!("cert: {}", cert.display());
            println!("key: {}", key.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Webhook { listen, cert, key, check_config: false } => {
            init_logging("info");
            // on SIGTERM (a rollout) the reviews in flight are answered before the process ends
            let mut stop = metalhost::stop::Stop::listen(metalhost::stop::KUBE_STOP_GRACE);
            metalhost::webhook::serve(listen, &cert, &key, async move { stop.requested().await })
                .await
                .with_context(|| format!("webhook on {listen}"))
                .map(|()| ExitCode::SUCCESS)
        }
    };
    result.unwrap_or_else(|e| failed(&e))
}

/// How a command that could not run ends: its reason on stderr, exit status 2.
fn failed(e: &anyhow::Error) -> ExitCode {
    eprintln!("metalhost: {}", safe(&format!("{e:#}")));
    ExitCode::from(2)
}
