//! The controller's settings from its flags, its `METALHOST_*` variables and, failing those,
//! baremetal-operator's environment and files, with BMO's meanings — so that a BMO Deployment
//! (its `ironic` ConfigMap, its credentials mounted under `/opt/metal3/auth/ironic`) runs
//! metalhost by changing the image alone. Pure: the environment is a map and files come through a
//! reader, so every rule is tested without a process.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use metalhost_api::extensions::BootPersistence;
use metalhost_core::plan::NodeDefaults;
use metalhost_ironic::ClientConfig;

/// The architecture metalhost runs on, in Ironic's words: what a host whose spec and hardware
/// name none is taken to be (as BMO takes its own).
pub fn controller_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        other => other,
    }
}

/// Ironic's URL when neither `--ironic`, `METALHOST_IRONIC_URL` nor `IRONIC_ENDPOINT` says.
pub const DEFAULT_IRONIC_URL: &str = "http://127.0.0.1:6385";
/// Hosts reconciled at once when neither `--concurrency` nor `BMO_CONCURRENCY` says.
pub const DEFAULT_CONCURRENCY: usize = 32;
/// BMO's root of credential directories (`METAL3_AUTH_ROOT_DIR` overrides it); Ironic's basic-auth
/// `username` and `password` files are in its `ironic` subdirectory.
pub const BMO_AUTH_ROOT: &str = "/opt/metal3/auth";
/// BMO's Ironic CA file when `IRONIC_CACERT_FILE` is not set (used only if it exists).
pub const BMO_CA_FILE: &str = "/opt/metal3/certs/ca/tls.crt";
/// BMO's client certificate for Ironic (mTLS), which metalhost does not support.
pub const BMO_CLIENT_CERT_FILE: &str = "/opt/metal3/certs/client/tls.crt";

/// How to reach Ironic, as the command line (and clap's `METALHOST_*` variables) said: the flags
/// every command that talks to Ironic takes, declared once.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct IronicFlags {
    /// Ironic API URL [default: $IRONIC_ENDPOINT as baremetal-operator reads it, else
    /// http://127.0.0.1:6385]. A trailing /v1 is dropped.
    #[arg(long = "ironic", env = "METALHOST_IRONIC_URL")]
    pub ironic_url: Option<String>,
    /// PEM file of the CA that signed Ironic's certificate [default: $IRONIC_CACERT_FILE, else
    /// /opt/metal3/certs/ca/tls.crt if it exists].
    #[arg(long, env = "METALHOST_IRONIC_CA_FILE")]
    pub ironic_ca_file: Option<PathBuf>,
    /// Accept any certificate from Ironic (testing only; also IRONIC_INSECURE=true).
    #[arg(long)]
    pub ironic_insecure: bool,
    /// Ironic HTTP basic auth user (password from METALHOST_IRONIC_PASSWORD or
    /// --ironic-password-file) [default: the files username and password in
    /// /opt/metal3/auth/ironic, as baremetal-operator reads them, else no auth].
    #[arg(long, env = "METALHOST_IRONIC_USER")]
    pub ironic_user: Option<String>,
    /// File holding the Ironic basic auth password (first line).
    #[arg(long, env = "METALHOST_IRONIC_PASSWORD_FILE")]
    pub ironic_password_file: Option<PathBuf>,
}

/// What the command line (and clap's `METALHOST_*` variables) said of a controller's settings;
/// these win over BMO's variables.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct Flags {
    /// How to reach Ironic.
    #[command(flatten)]
    pub ironic: IronicFlags,
    /// Agent kernel URL set as driver_info.deploy_kernel (needed to write disk images)
    /// [default: $DEPLOY_KERNEL_URL].
    #[arg(long, env = "METALHOST_DEPLOY_KERNEL")]
    pub deploy_kernel: Option<String>,
    /// Agent ramdisk URL set as driver_info.deploy_ramdisk [default: $DEPLOY_RAMDISK_URL].
    #[arg(long, env = "METALHOST_DEPLOY_RAMDISK")]
    pub deploy_ramdisk: Option<String>,
    /// Agent ISO URL set as driver_info.deploy_iso on BMCs that boot ISOs (virtual media, UEFI
    /// HTTP), in place of the kernel and ramdisk [default: $DEPLOY_ISO_URL].
    #[arg(long, env = "METALHOST_DEPLOY_ISO")]
    pub deploy_iso: Option<String>,
    /// Operator-wide boot-device persistence for live ISOs: Default, Always or Never (a host's
    /// `metalhost.io/boot-device-persistence` annotation wins)
    /// [default: $LIVE_ISO_FORCE_PERSISTENT_BOOT_DEVICE].
    #[arg(long, env = "METALHOST_BOOT_DEVICE_PERSISTENCE")]
    pub boot_device_persistence: Option<String>,
    /// Hosts reconciled at once [default: $BMO_CONCURRENCY, else 32].
    #[arg(long, env = "METALHOST_CONCURRENCY")]
    pub concurrency: Option<usize>,
}

/// The process's environment as a map (variables that are not UTF-8 are left out).
pub fn process_env() -> HashMap<String, String> {
    std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))).collect()
}

/// The resolved settings of a controller.
#[derive(Debug)]
pub struct Settings {
    /// How to reach Ironic (URL, CA, basic auth, insecure).
    pub ironic: ClientConfig,
    /// Deploy kernel and ramdisk, deploy ISO, boot-device persistence.
    pub defaults: NodeDefaults,
    /// Hosts reconciled at once.
    pub concurrency: usize,
    /// `PROVISIONING_LIMIT`: at most this many nodes inspecting, provisioning or deprovisioning at
    /// once (virtual-media hosts excepted), as BMO; unset, no limit.
    pub provisioning_limit: Option<usize>,
    /// Where each setting came from: `(setting, source)`, e.g. `("ironic", "IRONIC_ENDPOINT")`.
    pub sources: Vec<(&'static str, &'static str)>,
    /// Things the operator should know (ignored or unsupported settings); never secrets.
    pub warnings: Vec<String>,
}

/// A setting that cannot be used; names the variable or file, never a secret's value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SettingsError {
    /// A variable's value is not of the expected form.
    #[error("{var}='{value}': {expected}")]
    Invalid {
        /// The variable or flag.
        var: &'static str,
        /// Its value (never a secret).
        value: String,
        /// What was expected.
        expected: &'static str,
    },
    /// A file could not be read, or was empty.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// Settings that do not go together.
    #[error("{0}")]
    Conflict(String),
}

/// Reads a file: `Ok(None)` when it does not exist.
pub type FileReader<'a> = &'a dyn Fn(&Path) -> std::io::Result<Option<String>>;

/// The real file system, for [`resolve`]: a regular file of bounded size only (`/dev/zero` or a
/// FIFO is refused at once), as UTF-8.
pub fn read_file(path: &Path) -> std::io::Result<Option<String>> {
    match metalhost_ironic::read_config_file(path) {
        Ok(bytes) => String::from_utf8(bytes).map(Some).map_err(|_| std::io::Error::other("not UTF-8 text")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn var<'a>(env: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    env.get(name).map(String::as_str).filter(|v| !v.is_empty())
}

fn read(files: FileReader<'_>, path: &Path) -> Result<Option<String>, SettingsError> {
    files(path).map_err(|e| SettingsError::File { path: path.display().to_string(), reason: e.to_string() })
}

/// A URL that did not parse, as it may be shown: everything up to its last `@` hidden (the
/// userinfo, however malformed), its scheme kept.
fn without_userinfo(raw: &str) -> String {
    let Some((before, after)) = raw.rsplit_once('@') else { return raw.to_string() };
    let scheme = before.split_once("://").map(|(scheme, _)| format!("{scheme}://")).unwrap_or_default();
    format!("{scheme}***@{after}")
}

/// Resolves the settings: flags first, then BMO's variables and files, then metalhost's defaults.
///
/// BMO's meanings: `IRONIC_ENDPOINT` is Ironic's URL (a trailing `/v1/` is dropped by the client);
/// the files `username` and `password` in `$METAL3_AUTH_ROOT_DIR/ironic` (default
/// `/opt/metal3/auth/ironic`) give HTTP basic auth, and no such files means no auth;
/// `IRONIC_CACERT_FILE` (default `/opt/metal3/certs/ca/tls.crt`) is trusted if it exists;
/// `IRONIC_INSECURE=true` (any case) skips certificate checks; `DEPLOY_KERNEL_URL` and
/// `DEPLOY_RAMDISK_URL` (only together) are the agent's kernel and ramdisk;
/// `LIVE_ISO_FORCE_PERSISTENT_BOOT_DEVICE` is `Default`, `Always` or `Never`; `BMO_CONCURRENCY` is
/// the number of hosts reconciled at once (0 or less: the default); `PROVISIONING_LIMIT` caps the
/// nodes inspecting, provisioning or deprovisioning at once; `DEPLOY_ISO_URL` is the agent as an
/// ISO, used instead of the kernel and ramdisk where the BMC boots ISOs.
pub fn resolve(
    flags: &Flags,
    env: &HashMap<String, String>,
    files: FileReader<'_>,
) -> Result<Settings, SettingsError> {
    let mut r = Resolver { flags, env, files, sources: Vec::new(), warnings: Vec::new() };
    // Ironic's URL; credentials in it become basic auth and leave the URL
    let (url, url_auth) = r.ironic_url()?;
    let mut ironic = ClientConfig::new(url);
    ironic.basic_auth = r.basic_auth(url_auth)?;
    ironic.ca_file = r.ca_file()?;
    ironic.insecure = r.insecure();
    r.warn_of_client_certificate()?;
    let (deploy_kernel, deploy_ramdisk) = r.deploy_kernel_and_ramdisk()?;
    let deploy_iso = r.deploy_iso();
    let boot_persistence = r.boot_persistence()?;
    let concurrency = r.concurrency()?;
    let provisioning_limit = r.provisioning_limit()?;
    Ok(Settings {
        ironic,
        defaults: NodeDefaults {
            deploy_kernel,
            deploy_ramdisk,
            deploy_iso,
            boot_persistence,
            cpu_arch: Some(controller_architecture().to_string()),
        },
        concurrency,
        provisioning_limit,
        sources: r.sources,
        warnings: r.warnings,
    })
}

/// What [`resolve`] reads from, and what it has found out so far.
struct Resolver<'a> {
    flags: &'a Flags,
    env: &'a HashMap<String, String>,
    files: FileReader<'a>,
    sources: Vec<(&'static str, &'static str)>,
    warnings: Vec<String>,
}

impl<'a> Resolver<'a> {
    fn var(&self, name: &str) -> Option<&'a str> {
        var(self.env, name)
    }

    fn read(&self, path: &Path) -> Result<Option<String>, SettingsError> {
        read(self.files, path)
    }

    /// Ironic's URL without userinfo, and the userinfo's credentials.
    fn ironic_url(&mut self) -> Result<(String, Option<(String, String)>), SettingsError> {
        let (raw_url, source) = match (&self.flags.ironic.ironic_url, self.var("IRONIC_ENDPOINT")) {
            (Some(url), _) => (url.clone(), "--ironic/METALHOST_IRONIC_URL"),
            (None, Some(url)) => (url.to_string(), "IRONIC_ENDPOINT"),
            (None, None) => (DEFAULT_IRONIC_URL.to_string(), "default"),
        };
        self.sources.push(("ironic", source));
        let (stripped, auth) =
            metalhost_ironic::split_userinfo(&raw_url).map_err(|_| SettingsError::Invalid {
                var: source,
                value: without_userinfo(&raw_url),
                expected: "an http:// or https:// URL",
            })?;
        // the URL as given unless it held credentials
        Ok(if auth.is_some() { (stripped, auth) } else { (raw_url, None) })
    }

    /// Basic auth: `--ironic-user`, else the URL's userinfo, else BMO's files.
    fn basic_auth(
        &mut self,
        url_auth: Option<(String, String)>,
    ) -> Result<Option<(String, String)>, SettingsError> {
        if let Some(user) = &self.flags.ironic.ironic_user {
            let password = self.flag_password()?;
            self.sources.push(("ironic auth", "--ironic-user/METALHOST_IRONIC_USER"));
            return Ok(Some((user.clone(), password)));
        }
        if let Some((user, password)) = url_auth {
            if password.is_empty() {
                return Err(SettingsError::Conflict(
                    "no password supplied for HTTP Basic Auth in the Ironic URL".into(),
                ));
            }
            self.sources.push(("ironic auth", "URL userinfo"));
            return Ok(Some((user, password)));
        }
        self.auth_files()
    }

    /// The password that goes with `--ironic-user`.
    fn flag_password(&self) -> Result<String, SettingsError> {
        match (&self.flags.ironic.ironic_password_file, self.var("METALHOST_IRONIC_PASSWORD")) {
            (Some(file), _) => Ok(self
                .read(file)?
                .ok_or_else(|| SettingsError::File {
                    path: file.display().to_string(),
                    reason: "no such file (--ironic-password-file)".into(),
                })?
                .lines()
                .next()
                .unwrap_or("")
                .to_string()),
            (None, Some(password)) => Ok(password.to_string()),
            (None, None) => Err(SettingsError::Conflict(
                "--ironic-user needs a password: METALHOST_IRONIC_PASSWORD or --ironic-password-file".into(),
            )),
        }
    }

    /// BMO's `username` and `password` files: both or neither.
    fn auth_files(&mut self) -> Result<Option<(String, String)>, SettingsError> {
        let auth_dir = Path::new(self.var("METAL3_AUTH_ROOT_DIR").unwrap_or(BMO_AUTH_ROOT)).join("ironic");
        let (user_file, password_file) = (auth_dir.join("username"), auth_dir.join("password"));
        let file_error = |path: &Path, reason: &str| SettingsError::File {
            path: path.display().to_string(),
            reason: reason.to_string(),
        };
        match (self.read(&user_file)?, self.read(&password_file)?) {
            (None, None) => Ok(None),
            (Some(user), Some(password)) => {
                let (user, password) = (user.trim().to_string(), password.trim().to_string());
                if user.is_empty() {
                    return Err(file_error(&user_file, "empty HTTP Basic Auth username"));
                }
                if password.is_empty() {
                    return Err(file_error(&password_file, "empty HTTP Basic Auth password"));
                }
                self.sources.push(("ironic auth", "auth files (BMO)"));
                Ok(Some((user, password)))
            }
            (None, Some(_)) => Err(file_error(&user_file, "missing while the password file is there")),
            (Some(_), None) => Err(file_error(&password_file, "missing while the username file is there")),
        }
    }

    /// The CA: the flag; else `IRONIC_CACERT_FILE` or BMO's default path, if the file exists.
    fn ca_file(&mut self) -> Result<Option<PathBuf>, SettingsError> {
        if let Some(ca) = &self.flags.ironic.ironic_ca_file {
            self.sources.push(("ironic CA", "--ironic-ca-file/METALHOST_IRONIC_CA_FILE"));
            return Ok(Some(ca.clone()));
        }
        let (ca, source) = match self.var("IRONIC_CACERT_FILE") {
            Some(path) => (PathBuf::from(path), "IRONIC_CACERT_FILE"),
            None => (PathBuf::from(BMO_CA_FILE), "default CA path (BMO)"),
        };
        if self.read(&ca)?.is_some() {
            self.sources.push(("ironic CA", source));
            return Ok(Some(ca));
        }
        if source == "IRONIC_CACERT_FILE" {
            self.warnings
                .push(format!("IRONIC_CACERT_FILE {}: no such file, ignored (as BMO does)", ca.display()));
        }
        Ok(None)
    }

    fn insecure(&mut self) -> bool {
        let insecure = self.flags.ironic.ironic_insecure
            || self.var("IRONIC_INSECURE").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        if insecure {
            self.warnings
                .push("Ironic's certificate is not checked (--ironic-insecure or IRONIC_INSECURE)".into());
        }
        insecure
    }

    fn warn_of_client_certificate(&mut self) -> Result<(), SettingsError> {
        let client_cert = self.var("IRONIC_CLIENT_CERT_FILE").unwrap_or(BMO_CLIENT_CERT_FILE);
        if self.read(Path::new(client_cert))?.is_some() {
            self.warnings.push(format!(
                "{client_cert}: client certificates (mTLS) to Ironic are not supported, ignored"
            ));
        }
        Ok(())
    }

    /// The agent's kernel and ramdisk: flags, else BMO's pair; only together.
    fn deploy_kernel_and_ramdisk(&mut self) -> Result<(Option<String>, Option<String>), SettingsError> {
        let flags = self.flags;
        if flags.deploy_kernel.is_some() || flags.deploy_ramdisk.is_some() {
            if flags.deploy_kernel.is_some() != flags.deploy_ramdisk.is_some() {
                return Err(SettingsError::Conflict(
                    "--deploy-kernel and --deploy-ramdisk can only be given together".into(),
                ));
            }
            self.sources.push(("deploy kernel/ramdisk", "--deploy-kernel/--deploy-ramdisk"));
            return Ok((flags.deploy_kernel.clone(), flags.deploy_ramdisk.clone()));
        }
        let kernel = self.var("DEPLOY_KERNEL_URL").map(str::to_string);
        let ramdisk = self.var("DEPLOY_RAMDISK_URL").map(str::to_string);
        if kernel.is_some() != ramdisk.is_some() {
            return Err(SettingsError::Conflict(
                "DEPLOY_KERNEL_URL and DEPLOY_RAMDISK_URL can only be set together".into(),
            ));
        }
        if kernel.is_some() {
            self.sources.push(("deploy kernel/ramdisk", "DEPLOY_KERNEL_URL/DEPLOY_RAMDISK_URL"));
        }
        Ok((kernel, ramdisk))
    }

    /// The agent's ISO, for BMCs that boot ISOs (BMO: preferred to the kernel and ramdisk there).
    fn deploy_iso(&mut self) -> Option<String> {
        let (iso, source) = match (&self.flags.deploy_iso, self.var("DEPLOY_ISO_URL")) {
            (Some(iso), _) => (iso.clone(), "--deploy-iso"),
            (None, Some(iso)) => (iso.to_string(), "DEPLOY_ISO_URL"),
            (None, None) => return None,
        };
        self.sources.push(("deploy ISO", source));
        Some(iso)
    }

    fn boot_persistence(&mut self) -> Result<Option<BootPersistence>, SettingsError> {
        let (value, name) =
            match (&self.flags.boot_device_persistence, self.var("LIVE_ISO_FORCE_PERSISTENT_BOOT_DEVICE")) {
                (Some(v), _) => (v.clone(), "--boot-device-persistence"),
                (None, Some(v)) => (v.to_string(), "LIVE_ISO_FORCE_PERSISTENT_BOOT_DEVICE"),
                (None, None) => return Ok(None),
            };
        self.sources.push(("boot-device persistence", name));
        let invalid = || SettingsError::Invalid {
            var: name,
            value: value.clone(),
            expected: "one of Default, Always, Never",
        };
        BootPersistence::parse(&value).map(Some).ok_or_else(invalid)
    }

    /// Hosts reconciled at once: the flag, else `BMO_CONCURRENCY` (0 or less: the default).
    fn concurrency(&mut self) -> Result<usize, SettingsError> {
        let v = match (self.flags.concurrency, self.var("BMO_CONCURRENCY")) {
            (Some(n), _) => {
                self.sources.push(("concurrency", "--concurrency/METALHOST_CONCURRENCY"));
                return Ok(n.max(1));
            }
            (None, Some(v)) => v,
            (None, None) => return Ok(DEFAULT_CONCURRENCY),
        };
        let n: i64 = v.trim().parse().map_err(|_| SettingsError::Invalid {
            var: "BMO_CONCURRENCY",
            value: v.to_string(),
            expected: "an integer",
        })?;
        if n > 0 {
            self.sources.push(("concurrency", "BMO_CONCURRENCY"));
            return Ok(usize::try_from(n).unwrap_or(usize::MAX));
        }
        self.warnings
            .push(format!("BMO_CONCURRENCY={n}: not positive, the default {DEFAULT_CONCURRENCY} is used"));
        Ok(DEFAULT_CONCURRENCY)
    }

    fn provisioning_limit(&self) -> Result<Option<usize>, SettingsError> {
        let Some(v) = self.var("PROVISIONING_LIMIT") else { return Ok(None) };
        let n = v.trim().parse().map_err(|_| SettingsError::Invalid {
            var: "PROVISIONING_LIMIT",
            value: v.to_string(),
            expected: "a non-negative integer",
        })?;
        Ok(Some(n))
    }
}

impl Settings {
    /// One `name: value` line per setting, for `--check-config`; the password is never shown.
    pub fn describe(&self) -> Vec<String> {
        let none = || "-".to_string();
        let mut lines = vec![
            format!("ironic: {}", metalhost_ironic::base_url(&self.ironic.url)),
            format!(
                "ironic auth: {}",
                self.ironic
                    .basic_auth
                    .as_ref()
                    .map_or("none".to_string(), |(user, _)| format!("basic, user {user}"))
            ),
            format!(
                "ironic CA: {}",
                self.ironic.ca_file.as_ref().map_or_else(none, |p| p.display().to_string())
            ),
            format!("ironic insecure: {}", self.ironic.insecure),
            format!("deploy kernel: {}", self.defaults.deploy_kernel.clone().unwrap_or_else(none)),
            format!("deploy ramdisk: {}", self.defaults.deploy_ramdisk.clone().unwrap_or_else(none)),
            format!("deploy ISO: {}", self.defaults.deploy_iso.clone().unwrap_or_else(none)),
            format!(
                "boot-device persistence: {}",
                self.defaults.boot_persistence.map_or("-", BootPersistence::as_str)
            ),
            format!("concurrency: {}", self.concurrency),
            format!("provisioning limit: {}", self.provisioning_limit.map_or_else(none, |n| n.to_string())),
        ];
        lines.extend(self.sources.iter().map(|(what, from)| format!("source of {what}: {from}")));
        lines.extend(self.warnings.iter().map(|w| format!("warning: {w}")));
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn files(pairs: &[(&str, &str)]) -> impl Fn(&Path) -> std::io::Result<Option<String>> {
        let map: HashMap<PathBuf, String> =
            pairs.iter().map(|(k, v)| (PathBuf::from(k), v.to_string())).collect();
        move |p: &Path| Ok(map.get(p).cloned())
    }

    fn bmo_env() -> HashMap<String, String> {
        env(&[
            ("IRONIC_ENDPOINT", "https://172.22.0.2:6385/v1/"),
            ("DEPLOY_KERNEL_URL", "http://172.22.0.2:6180/images/ironic-python-agent.kernel"),
            ("DEPLOY_RAMDISK_URL", "http://172.22.0.2:6180/images/ironic-python-agent.initramfs"),
            ("LIVE_ISO_FORCE_PERSISTENT_BOOT_DEVICE", "Never"),
            ("BMO_CONCURRENCY", "4"),
            ("PROVISIONING_LIMIT", "10"),
        ])
    }

    fn bmo_files() -> impl Fn(&Path) -> std::io::Result<Option<String>> {
        files(&[
            ("/opt/metal3/auth/ironic/username", "admin\n"),
            ("/opt/metal3/auth/ironic/password", "s3cret\n"),
            ("/opt/metal3/certs/ca/tls.crt", "-----BEGIN CERTIFICATE-----"),
        ])
    }

    #[test]
    fn a_bmo_environment_configures_everything() {
        let s = resolve(&Flags::default(), &bmo_env(), &bmo_files()).unwrap();
        assert_eq!(s.ironic.url, "https://172.22.0.2:6385/v1/");
        assert_eq!(s.ironic.basic_auth, Some(("admin".into(), "s3cret".into())));
        assert_eq!(s.ironic.ca_file.as_deref(), Some(Path::new(BMO_CA_FILE)));
        assert!(!s.ironic.insecure);
        assert_eq!(
            s.defaults.deploy_kernel.as_deref(),
            Some("http://172.22.0.2:6180/images/ironic-python-agent.kernel")
        );
        assert_eq!(
            s.defaults.deploy_ramdisk.as_deref(),
            Some("http://172.22.0.2:6180/images/ironic-python-agent.initramfs")
        );
        assert_eq!(s.defaults.boot_persistence, Some(BootPersistence::Never));
        assert_eq!(s.concurrency, 4);
        assert_eq!(s.provisioning_limit, Some(10));
        let shown = s.describe().join("\n");
        assert!(shown.contains("ironic: https://172.22.0.2:6385\n"), "{shown}");
        assert!(shown.contains("ironic auth: basic, user admin"), "{shown}");
        assert!(!shown.contains("s3cret"), "{shown}");
    }

    #[test]
    fn without_bmo_files_there_is_no_auth_and_no_ca() {
        let s = resolve(&Flags::default(), &env(&[("IRONIC_ENDPOINT", "http://ironic:6385")]), &files(&[]))
            .unwrap();
        assert_eq!(s.ironic.url, "http://ironic:6385");
        assert_eq!(s.ironic.basic_auth, None);
        assert_eq!(s.ironic.ca_file, None);
        assert_eq!(s.concurrency, DEFAULT_CONCURRENCY);
        assert_eq!(s.defaults.deploy_kernel, None);
        let s = resolve(&Flags::default(), &env(&[]), &files(&[])).unwrap();
        assert_eq!(s.ironic.url, DEFAULT_IRONIC_URL);
    }

    #[test]
    fn flags_and_metalhost_variables_win() {
        let ironic = IronicFlags {
            ironic_url: Some("https://mine:6385".into()),
            ironic_ca_file: Some("/etc/mine/ca.crt".into()),
            ironic_user: Some("me".into()),
            ..IronicFlags::default()
        };
        let flags = Flags {
            ironic: ironic.clone(),
            deploy_kernel: Some("http://k".into()),
            deploy_ramdisk: Some("http://r".into()),
            boot_device_persistence: Some("Always".into()),
            concurrency: Some(7),
            ..Flags::default()
        };
        let mut e = bmo_env();
        e.insert("METALHOST_IRONIC_PASSWORD".into(), "pw".into());
        let s = resolve(&flags, &e, &bmo_files()).unwrap();
        assert_eq!(s.ironic.url, "https://mine:6385");
        assert_eq!(s.ironic.basic_auth, Some(("me".into(), "pw".into())));
        assert_eq!(s.ironic.ca_file.as_deref(), Some(Path::new("/etc/mine/ca.crt")));
        assert_eq!(s.defaults.deploy_kernel.as_deref(), Some("http://k"));
        assert_eq!(s.defaults.boot_persistence, Some(BootPersistence::Always));
        assert_eq!(s.concurrency, 7);
        // the password file wins over the variable
        let flags = Flags {
            ironic: IronicFlags { ironic_password_file: Some("/p".into()), ..ironic.clone() },
            ..flags
        };
        let s = resolve(&flags, &e, &files(&[("/p", "from-file\nignored")])).unwrap();
        assert_eq!(s.ironic.basic_auth, Some(("me".into(), "from-file".into())));
        let flags = Flags { ironic: IronicFlags { ironic_password_file: None, ..ironic }, ..flags };
        let err = resolve(&flags, &env(&[]), &files(&[])).unwrap_err();
        assert!(err.to_string().contains("needs a password"), "{err}");
    }

    #[test]
    fn bmo_auth_root_ca_file_and_insecure() {
        let e = env(&[
            ("METAL3_AUTH_ROOT_DIR", "/auth"),
            ("IRONIC_CACERT_FILE", "/certs/ca.pem"),
            ("IRONIC_INSECURE", "TRUE"),
        ]);
        let f =
            files(&[("/auth/ironic/username", "u"), ("/auth/ironic/password", "p"), ("/certs/ca.pem", "x")]);
        let s = resolve(&Flags::default(), &e, &f).unwrap();
        assert_eq!(s.ironic.basic_auth, Some(("u".into(), "p".into())));
        assert_eq!(s.ironic.ca_file.as_deref(), Some(Path::new("/certs/ca.pem")));
        assert!(s.ironic.insecure);
        // a CA file that is not there is ignored, as BMO does, with a warning
        let s = resolve(&Flags::default(), &e, &files(&[])).unwrap();
        assert_eq!(s.ironic.ca_file, None);
        assert!(s.warnings.iter().any(|w| w.contains("/certs/ca.pem")), "{:?}", s.warnings);
        let s = resolve(&Flags::default(), &env(&[("IRONIC_INSECURE", "false")]), &files(&[])).unwrap();
        assert!(!s.ironic.insecure);
    }

    #[test]
    fn half_a_credential_or_an_empty_one_is_refused() {
        let e = env(&[]);
        let err =
            resolve(&Flags::default(), &e, &files(&[("/opt/metal3/auth/ironic/username", "u")])).unwrap_err();
        assert!(err.to_string().contains("/opt/metal3/auth/ironic/password"), "{err}");
        let f =
            files(&[("/opt/metal3/auth/ironic/username", "u"), ("/opt/metal3/auth/ironic/password", " \n")]);
        let err = resolve(&Flags::default(), &e, &f).unwrap_err();
        assert!(err.to_string().contains("empty HTTP Basic Auth password"), "{err}");
    }

    #[test]
    fn credentials_in_the_endpoint_move_to_basic_auth() {
        let e = env(&[("IRONIC_ENDPOINT", "https://us%40r:p%3Ass@ironic:6385/v1/")]);
        let s = resolve(&Flags::default(), &e, &files(&[])).unwrap();
        assert_eq!(s.ironic.url, "https://ironic:6385/v1");
        assert_eq!(s.ironic.basic_auth, Some(("us@r".into(), "p:ss".into())));
        assert!(!s.describe().join("\n").contains("p:ss"));
        let e = env(&[("IRONIC_ENDPOINT", "ftp://u:secret@ironic/")]);
        let err = resolve(&Flags::default(), &e, &files(&[])).unwrap_err().to_string();
        assert!(err.starts_with("IRONIC_ENDPOINT='ftp://***@ironic/'"), "{err}");
        let e = env(&[("IRONIC_ENDPOINT", "http://u:pa ss@bad host/")]);
        let err = resolve(&Flags::default(), &e, &files(&[])).unwrap_err().to_string();
        assert!(err.starts_with("IRONIC_ENDPOINT='http://***@bad host/'") && !err.contains("pa ss"), "{err}");
    }

    #[test]
    fn bad_values_name_their_variable() {
        let cases = [
            ("BMO_CONCURRENCY", "many"),
            ("PROVISIONING_LIMIT", "-1"),
            ("LIVE_ISO_FORCE_PERSISTENT_BOOT_DEVICE", "always"),
        ];
        for (name, value) in cases {
            let err = resolve(&Flags::default(), &env(&[(name, value)]), &files(&[])).unwrap_err();
            assert!(err.to_string().starts_with(&format!("{name}='{value}'")), "{err}");
        }
        let err =
            resolve(&Flags::default(), &env(&[("DEPLOY_RAMDISK_URL", "http://r")]), &files(&[])).unwrap_err();
        assert!(err.to_string().contains("only be set together"), "{err}");
        let flags = Flags { deploy_kernel: Some("http://k".into()), ..Flags::default() };
        let err = resolve(&flags, &env(&[]), &files(&[])).unwrap_err();
        assert!(err.to_string().contains("only be given together"), "{err}");
        // BMO: a concurrency of 0 or less means the default
        let s = resolve(&Flags::default(), &env(&[("BMO_CONCURRENCY", "0")]), &files(&[])).unwrap();
        assert_eq!(s.concurrency, DEFAULT_CONCURRENCY);
    }

    #[test]
    fn unsupported_bmo_settings_are_reported() {
        let f = files(&[(BMO_CLIENT_CERT_FILE, "x")]);
        let s = resolve(&Flags::default(), &env(&[]), &f).unwrap();
        let warnings = s.warnings.join("\n");
        assert!(warnings.contains("mTLS"), "{warnings}");
    }

    #[test]
    fn deploy_iso_comes_from_bmo_unless_the_flag_says() {
        let e = env(&[("DEPLOY_ISO_URL", "http://i/agent.iso")]);
        let s = resolve(&Flags::default(), &e, &files(&[])).unwrap();
        assert_eq!(s.defaults.deploy_iso.as_deref(), Some("http://i/agent.iso"));
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
        assert!(s.describe().iter().any(|l| l == "deploy ISO: http://i/agent.iso"));
        let flags = Flags { deploy_iso: Some("http://flag.iso".into()), ..Flags::default() };
        let s = resolve(&flags, &e, &files(&[])).unwrap();
        assert_eq!(s.defaults.deploy_iso.as_deref(), Some("http://flag.iso"));
        assert!(s.sources.contains(&("deploy ISO", "--deploy-iso")));
    }
}
