//! `helvetia server`'s settings: defaults, then an optional TOML file, then `HELVETIA_*`
//! environment variables, then flags — each later source overriding the earlier ones.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use helvetia_core::certificate::GeneratedCertificates;
use helvetia_core::container::SubnetPool;
use helvetia_core::edge::{PublicUrl, TrustedProxies};
use helvetia_core::git::RepoPolicy;
use helvetia_core::job::QueueSettings;
use helvetia_core::metrics::Retention;
use helvetia_core::outbound::DestinationPolicy;
use helvetia_core::runtime::ResourceLimits;
use helvetia_core::units;
use helvetia_core::validation::FieldErrors;
use helvetia_server::logs::LogLimits;
use helvetia_server::metrics::MetricsSettings;
use helvetia_server::platform::{AcmeSettings, PlatformSettings};

use helvetia_server::{
    AcmeDirectory as Directory, EdgeConfig, ResolverSetting, SecretText, ServerConfig,
};
use helvetia_store::Location;

use crate::acme_config::{AcmeArgs, process_env};
use crate::builder_config::BuilderArgs;
use crate::github_config::GitHubArgs;
use crate::logging::LogFormat;
use crate::settings_parsers::find_executable;
pub(crate) use crate::settings_parsers::parse_bytes;

#[derive(Debug, Args, Clone)]
pub struct ServerArgs {
    /// Address the API listens on.
    #[arg(long, env = "HELVETIA_LISTEN", default_value = "127.0.0.1:7300")]
    pub listen: SocketAddr,
    /// Where state lives: the SQLite database, the admin token, the master key for secrets
    /// (`master.key`; or set HELVETIA_MASTER_KEY to 64 hex digits), locks.
    /// [default: /var/lib/helvetia as root, else ~/.local/share/helvetia]
    #[arg(long, env = "HELVETIA_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Use this PostgreSQL database (postgres://…) instead of SQLite in the data dir.
    #[arg(long, env = "DATABASE_URL", value_name = "URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Services are served at <service>.<project>.<base-domain>.
    #[arg(long, env = "HELVETIA_BASE_DOMAIN", default_value = ServerConfig::DEFAULT_BASE_DOMAIN)]
    pub base_domain: String,
    /// Accept repositories on this server's disk (file:// URLs and absolute paths). Off by
    /// default: on a shared server they would expose any repository Helvetia can read.
    #[arg(long, env = "HELVETIA_ALLOW_LOCAL_REPOS")]
    pub allow_local_repos: bool,
    /// Let repositories and every other outbound request reach loopback, private (RFC 1918),
    /// shared (100.64.0.0/10) and unique-local (fc00::/7) addresses. Off by default: they reach
    /// services that trust this host's network. Link-local and cloud metadata addresses are
    /// refused whatever this says.
    #[arg(long, env = "HELVETIA_ALLOW_PRIVATE_DESTINATIONS")]
    pub allow_private_destinations: bool,
    /// Let anyone with an address at these e-mail domains sign up (comma-separated, e.g.
    /// `example.com,example.org`). Default: nobody — accounts come from invitations, from
    /// `helvetia users create`, and the first from the link printed at first start.
    #[arg(long, env = "HELVETIA_SIGNUP_DOMAINS", value_delimiter = ',')]
    pub signup_domains: Vec<String>,
    /// Let members of these GitHub organizations sign up with GitHub (comma-separated).
    /// Default: none — with GitHub, as with a password, only `--signup-domains` opens sign-up.
    #[arg(long, env = "HELVETIA_SIGNUP_GITHUB_ORGS", value_delimiter = ',')]
    pub signup_github_orgs: Vec<String>,
    /// The DNS server (an address, port 53 unless given) through which outbound requests resolve
    /// names before their addresses are checked. [default: the system's]
    #[arg(long, env = "HELVETIA_RESOLVER", value_name = "ADDRESS", value_parser = parse_resolver)]
    pub resolver: Option<SocketAddr>,
    /// Jobs (deployments) run at the same time.
    #[arg(long, env = "HELVETIA_CONCURRENCY", default_value_t = QueueSettings::DEFAULT_CONCURRENCY)]
    pub concurrency: usize,
    /// How long shutdown waits for running deployments, e.g. `30s`.
    #[arg(long, env = "HELVETIA_SHUTDOWN_GRACE", default_value = "30s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
    /// The server's public addresses (comma-separated): a custom domain whose DNS answers
    /// with these (and only these) is verified and routed. Without them a domain is verified
    /// by the HTTP check (a token served through the domain), which also works behind a proxy.
    #[arg(
        long,
        env = "HELVETIA_PUBLIC_ADDRESSES",
        value_delimiter = ',',
        value_name = "IP"
    )]
    pub public_addresses: Vec<std::net::IpAddr>,
    /// Where the managed Traefik accepts HTTPS (domains with a certificate are served there,
    /// and their plain HTTP redirected). Default: `:443` once `--acme-directory` is set.
    #[arg(long, env = "HELVETIA_HTTPS_ADDRESS", value_name = "ADDRESS")]
    pub https_address: Option<String>,
    /// The ACME CA Helvetia orders domains' certificates from: `letsencrypt`,
    /// `letsencrypt-staging`, or a directory URL. Default: none (domains are served over HTTP).
    #[arg(long, env = "HELVETIA_ACME_DIRECTORY", value_name = "CA")]
    pub acme_directory: Option<String>,
    /// The contact address of Helvetia's account at the CA (expiry notices).
    #[arg(long, env = "HELVETIA_ACME_EMAIL")]
    pub acme_email: Option<String>,
    /// PEM certificates to trust for the CA's own API beside the system's (a private CA).
    #[arg(long, env = "HELVETIA_ACME_CA_FILE", value_name = "PEM")]
    pub acme_ca_file: Option<PathBuf>,
    #[command(flatten)]
    pub acme_options: AcmeArgs,
    /// The wait before a failed notification's first retry (each next wait is 4 times longer;
    /// 5 attempts). Hidden: tests shorten it.
    #[arg(long, env = "HELVETIA_NOTIFICATION_RETRY_BASE", default_value = "10s", value_parser = parse_duration, hide = true)]
    pub notification_retry_base: Duration,
    /// Log format.
    #[arg(long, env = "HELVETIA_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Run Traefik ("managed", the default) or only write configuration for a Traefik you run
    /// ("external").
    #[arg(long, env = "HELVETIA_TRAEFIK", value_enum, default_value = "managed")]
    pub traefik: TraefikMode,
    /// The Traefik executable (managed mode). Looked up in PATH when it has no `/`.
    #[arg(long, env = "HELVETIA_TRAEFIK_BIN", default_value = "traefik")]
    pub traefik_bin: PathBuf,
    /// Address Traefik accepts web traffic on (managed mode).
    #[arg(long, env = "HELVETIA_HTTP_ADDRESS", default_value = ServerConfig::DEFAULT_ENTRY_ADDRESS)]
    pub http_address: String,
    /// Loopback address of Traefik's API, used to confirm route changes. In external mode,
    /// leave it unset if your Traefik's API is not reachable.
    #[arg(long, env = "HELVETIA_TRAEFIK_API")]
    pub traefik_api: Option<String>,
    /// Directory your Traefik's file provider watches (external mode).
    #[arg(long, env = "HELVETIA_TRAEFIK_DYNAMIC_DIR", value_name = "DIR")]
    pub traefik_dynamic_dir: Option<PathBuf>,
    /// Your Traefik's entry point for web traffic (external mode).
    #[arg(long, env = "HELVETIA_TRAEFIK_ENTRY_POINT", default_value = "web")]
    pub traefik_entry_point: String,
    /// Address pool project networks are carved from, in /24 subnets.
    #[arg(long, env = "HELVETIA_NETWORK_POOL", default_value = SubnetPool::DEFAULT)]
    pub network_pool: String,
    /// Memory limit of services that set none, e.g. `512M`, `1G`.
    #[arg(long, env = "HELVETIA_DEFAULT_MEMORY", default_value = "512M", value_parser = parse_bytes)]
    pub default_memory: u64,
    /// CPU limit of services that set none, in cores.
    #[arg(long, env = "HELVETIA_DEFAULT_CPUS", default_value_t = 1.0)]
    pub default_cpus: f64,
    /// The most memory a service may ask for.
    #[arg(long, env = "HELVETIA_MAX_MEMORY", default_value = "8G", value_parser = parse_bytes)]
    pub max_memory: u64,
    /// The most CPU a service may ask for, in cores.
    #[arg(long, env = "HELVETIA_MAX_CPUS", default_value_t = 4.0)]
    pub max_cpus: f64,
    /// The most replicas a service may run.
    #[arg(long, env = "HELVETIA_MAX_REPLICAS", default_value_t = PlatformSettings::DEFAULT_MAX_REPLICAS)]
    pub max_replicas: u32,
    /// Images of this many builds (distinct images that went live) per service are kept for
    /// rollback.
    #[arg(long, env = "HELVETIA_IMAGES_KEPT", default_value_t = PlatformSettings::DEFAULT_IMAGES_KEPT)]
    pub images_kept: usize,
    /// The most Helvetia's runtime images, registry and build cache may take on disk
    /// together. Over it, the least recently used build cache goes first; images of live and
    /// rollback-able deployments are never removed.
    #[arg(long, env = "HELVETIA_DISK_BUDGET", default_value = "20G", value_parser = parse_bytes)]
    pub disk_budget: u64,
    /// Deployment log kept per deployment; more is dropped behind a marker.
    #[arg(long, env = "HELVETIA_LOG_MAX_SIZE", default_value = "16M", value_parser = parse_bytes)]
    pub log_max_size: u64,
    /// Deployment logs older than this may be deleted, e.g. `90d`…
    #[arg(long, env = "HELVETIA_LOG_RETENTION", default_value = "90d", value_parser = parse_duration)]
    pub log_retention: Duration,
    /// …but those of each service's last this many deployments are always kept.
    #[arg(long, env = "HELVETIA_LOG_KEEP_DEPLOYMENTS", default_value_t = LogLimits::DEFAULT_KEEP_DEPLOYMENTS)]
    pub log_keep_deployments: i64,
    /// Clients that may follow one service's logs (runtime output and deployment logs) at
    /// once; the next one is answered 429.
    #[arg(long, env = "HELVETIA_MAX_LOG_FOLLOWERS", default_value_t = LogLimits::DEFAULT_MAX_FOLLOWERS)]
    pub max_log_followers: usize,
    /// How often every running container's CPU, memory, network and disk use is sampled
    /// (1 s to 30 s).
    #[arg(long, env = "HELVETIA_METRICS_INTERVAL", default_value = "5s", value_parser = parse_duration)]
    pub metrics_interval: Duration,
    /// How long raw metric samples are kept…
    #[arg(long, env = "HELVETIA_METRICS_RAW_RETENTION", default_value = "24h", value_parser = parse_duration)]
    pub metrics_raw_retention: Duration,
    /// …their 1-minute averages…
    #[arg(long, env = "HELVETIA_METRICS_MINUTE_RETENTION", default_value = "7d", value_parser = parse_duration)]
    pub metrics_minute_retention: Duration,
    /// …and their 1-hour averages.
    #[arg(long, env = "HELVETIA_METRICS_HOUR_RETENTION", default_value = "90d", value_parser = parse_duration)]
    pub metrics_hour_retention: Duration,
    /// Also serve the Prometheus exposition at /metrics without a token on this loopback
    /// address, e.g. 127.0.0.1:9464. Off by default; the API's /metrics needs a `read` token.
    #[arg(long, env = "HELVETIA_METRICS_LISTEN", value_name = "ADDRESS")]
    pub metrics_listen: Option<SocketAddr>,
    /// Where browsers, OAuth callbacks and webhook senders reach Helvetia, e.g.
    /// `https://helvetia.example.com`: the edge router serves Helvetia's API at that host
    /// (for https, with a certificate from --acme-directory when set; else TLS is terminated
    /// in front of it). Links Helvetia prints
    /// use it. [default: none; the API is reached at --listen only]
    #[arg(long, env = "HELVETIA_PUBLIC_URL", value_name = "URL", value_parser = parse_public_url)]
    pub public_url: Option<PublicUrl>,
    /// Proxies whose X-Forwarded-For is believed, as addresses or CIDR blocks separated by
    /// commas, e.g. `10.0.0.0/8,192.0.2.7` (the managed Traefik believes them too). With
    /// --public-url, Helvetia also believes loopback: the edge router on this host relays the
    /// public URL's requests. [default: none]
    #[arg(long, env = "HELVETIA_TRUSTED_PROXIES", value_name = "LIST", value_parser = parse_trusted_proxies)]
    pub trusted_proxies: Option<TrustedProxies>,
    #[command(flatten)]
    pub github: GitHubArgs,
    #[command(flatten)]
    pub builder: BuilderArgs,
    /// A TOML file with any of these settings (keys as the flags, with `_`: `base_domain = …`).
    #[arg(long, env = "HELVETIA_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TraefikMode {
    Managed,
    External,
}

pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    units::parse_duration(text).map_err(|e| e.to_string())
}

pub(crate) fn parse_public_url(text: &str) -> Result<PublicUrl, String> {
    PublicUrl::parse(text).map_err(|e| e.to_string())
}

pub(crate) fn parse_trusted_proxies(text: &str) -> Result<TrustedProxies, String> {
    TrustedProxies::parse(text).map_err(|e| e.to_string())
}

/// A DNS server: `10.0.0.53`, `[::1]:5353` or `127.0.0.1:5353`.
pub(crate) fn parse_resolver(text: &str) -> Result<SocketAddr, String> {
    text.parse::<SocketAddr>()
        .or_else(|_| {
            text.parse::<std::net::IpAddr>()
                .map(|ip| SocketAddr::new(ip, 53))
        })
        .map_err(|_| {
            format!("`{text}` is not a DNS server address (e.g. 10.0.0.53 or 127.0.0.1:5353)")
        })
}

impl ServerArgs {
    /// Where the managed Traefik accepts HTTPS: as given, or `:443` once a CA is named.
    fn secure_address(&self) -> Option<String> {
        self.https_address
            .clone()
            .or_else(|| self.acme_directory.as_ref().map(|_| ":443".to_owned()))
    }

    /// The ACME CA to order certificates from, if one is named, and what it is used for under
    /// `base_domain`.
    fn acme(&self, base_domain: &str) -> anyhow::Result<Option<AcmeSettings>> {
        let Some(named) = &self.acme_directory else {
            self.acme_options.refuse_without_ca()?;
            return Ok(None);
        };
        let directory = match named.as_str() {
            "letsencrypt" => Directory::LetsEncrypt,
            "letsencrypt-staging" => Directory::LetsEncryptStaging,
            url => Directory::Url(url.parse().with_context(|| {
                format!(
                    "--acme-directory: `{url}` is neither `letsencrypt`, `letsencrypt-staging` \
                     nor a URL"
                )
            })?),
        };
        let extra_roots_pem = match &self.acme_ca_file {
            Some(file) => std::fs::read_to_string(file)
                .with_context(|| format!("--acme-ca-file: reading {}", file.display()))?,
            None => String::new(),
        };
        let mut settings = AcmeSettings {
            directory,
            contact: self.acme_email.clone(),
            extra_roots_pem,
            external_account: None,
            dns: None,
            generated: GeneratedCertificates::None,
        };
        (self.acme_options).apply(&mut settings, base_domain, &process_env)?;
        Ok(Some(settings))
    }

    pub fn data_dir(&self) -> anyhow::Result<PathBuf> {
        if let Some(dir) = &self.data_dir {
            return Ok(dir.clone());
        }
        if is_root() {
            return Ok(PathBuf::from("/var/lib/helvetia"));
        }
        match std::env::var_os("HOME") {
            Some(home) => Ok(Path::new(&home).join(".local/share/helvetia")),
            None => bail!("set --data-dir (or HELVETIA_DATA_DIR): there is no HOME to default to"),
        }
    }

    pub fn into_config(self) -> anyhow::Result<ServerConfig> {
        let data_dir = self.data_dir()?;
        let database = match &self.database_url {
            Some(url) if !url.is_empty() => Location::from_url(url)?,
            _ => Location::SqliteFile(data_dir.join("helvetia.db")),
        };
        if self.concurrency == 0 {
            bail!("--concurrency must be at least 1");
        }
        if self.max_log_followers == 0 {
            bail!("--max-log-followers must be at least 1");
        }
        let base_domain = self.base_domain.trim_end_matches('.').to_ascii_lowercase();
        if base_domain.is_empty()
            || !base_domain
                .split('.')
                .all(|label| helvetia_core::name::ProjectName::parse(label).is_ok())
        {
            bail!(
                "--base-domain `{}` is not a valid domain name",
                self.base_domain
            );
        }
        let subnets = SubnetPool::parse(&self.network_pool, SubnetPool::DEFAULT_SUBNET_PREFIX)
            .map_err(|e| anyhow::anyhow!("--network-pool `{}` {e}", self.network_pool))?;
        let default_limits = ResourceLimits {
            memory_bytes: Some(self.default_memory),
            cpus: Some(self.default_cpus),
            pids: PlatformSettings::default_limits().pids,
        };
        let max_limits = ResourceLimits {
            memory_bytes: Some(self.max_memory),
            cpus: Some(self.max_cpus),
            pids: Some(32_768),
        };
        let mut problems = FieldErrors::new();
        default_limits.validate("limits", &max_limits, &mut problems);
        if !problems.is_empty() {
            bail!("the default limits must be valid and within the maximum: {problems}");
        }
        let (edge, public_port) = match self.traefik {
            TraefikMode::Managed => (
                EdgeConfig::Managed {
                    binary: find_executable(
                        &self.traefik_bin,
                        "install Traefik (the installer puts it in a virtual environment) or pass --traefik-bin",
                    )?,
                    entry_address: self.http_address.clone(),
                    secure_address: self.secure_address(),
                    api_address: self
                        .traefik_api
                        .clone()
                        .unwrap_or_else(|| ServerConfig::DEFAULT_TRAEFIK_API.to_owned()),
                },
                port_of(&self.http_address)?,
            ),
            TraefikMode::External => (
                EdgeConfig::External {
                    dynamic_dir: self
                        .traefik_dynamic_dir
                        .clone()
                        .context("--traefik external needs --traefik-dynamic-dir")?,
                    entry_point: self.traefik_entry_point.clone(),
                    api_url: self.traefik_api.clone().map(|api| {
                        if api.contains("://") {
                            api
                        } else {
                            format!("http://{api}")
                        }
                    }),
                },
                port_of(&self.http_address)?,
            ),
        };
        let metrics = MetricsSettings {
            interval: self.metrics_interval,
            retention: Retention {
                raw: self.metrics_raw_retention,
                minute: self.metrics_minute_retention,
                hour: self.metrics_hour_retention,
            },
        };
        metrics
            .validate()
            .map_err(|e| anyhow::anyhow!("the metrics settings are invalid: {e}"))?;
        if let Some(address) = self.metrics_listen
            && !address.ip().is_loopback()
        {
            bail!(
                "--metrics-listen `{address}` must be a loopback address (127.0.0.1 or [::1]): \
                 it serves the metrics without a token"
            );
        }
        let acme = self.acme(&base_domain)?;
        if let Some(public) = &self.public_url {
            public
                .check_base_domain(&base_domain)
                .map_err(|e| anyhow::anyhow!("--public-url {e}"))?;
        }
        let (builder, build_default_limits, build_max_limits) = self.builder.settings()?;
        let stack_images = self.builder.stack_images()?;
        Ok(ServerConfig {
            builder,
            data_dir,
            database,
            platform: PlatformSettings {
                repo_policy: RepoPolicy {
                    allow_local: self.allow_local_repos,
                    destinations: DestinationPolicy {
                        allow_private: self.allow_private_destinations,
                    },
                },
                base_domain,
                public_port,
                subnets,
                default_limits,
                max_limits,
                build_default_limits,
                build_max_limits,
                confirm_timeout: PlatformSettings::DEFAULT_CONFIRM_TIMEOUT,
                images_kept: self.images_kept.max(1),
                disk_budget: self.disk_budget,
                stack_images,
                max_replicas: self.max_replicas.max(1),
                log_limits: LogLimits {
                    max_bytes: usize::try_from(self.log_max_size).unwrap_or(usize::MAX),
                    retention: self.log_retention,
                    keep_deployments: self.log_keep_deployments.max(0),
                    max_followers: self.max_log_followers,
                },
                metrics,
                api_listen: self.listen,
                public_url: self.public_url.clone(),
                trusted_proxies: self.trusted_proxies.clone().unwrap_or_default(),
                signup_domains: self
                    .signup_domains
                    .iter()
                    .map(|domain| domain.trim().trim_start_matches('@').to_lowercase())
                    .filter(|domain| !domain.is_empty())
                    .collect(),
                signup_github_orgs: self
                    .signup_github_orgs
                    .iter()
                    .map(|org| org.trim().to_lowercase())
                    .filter(|org| !org.is_empty())
                    .collect(),
                github: self.github.urls(),
                notification_retry_base: self.notification_retry_base,
                public_addresses: self.public_addresses.clone(),
                acme,
                https_port: self
                    .secure_address()
                    .and_then(|address| port_of(&address).ok().flatten()),
            },
            edge,
            queue: QueueSettings {
                concurrency: self.concurrency,
                ..QueueSettings::default()
            },
            shutdown_grace: self.shutdown_grace,
            // Only from the environment: a key on the command line would show in `ps`.
            master_key: std::env::var("HELVETIA_MASTER_KEY")
                .ok()
                .filter(|key| !key.trim().is_empty())
                .map(SecretText::new),
            metrics_listen: self.metrics_listen,
            resolver: self
                .resolver
                .map_or(ResolverSetting::System, ResolverSetting::Server),
        })
    }
}

/// The port of an address like `:80` or `127.0.0.1:8081`.
fn port_of(address: &str) -> anyhow::Result<Option<u16>> {
    let port = address
        .rsplit_once(':')
        .map(|(_, port)| port)
        .context("--http-address must include a port, e.g. :80")?;
    let port: u16 = port
        .parse()
        .with_context(|| format!("--http-address `{address}` has an invalid port"))?;
    Ok(Some(port))
}

/// `name` as an absolute path: itself when it contains a `/`, else the first match in PATH.
/// Resolved here because Helvetia starts children with a minimal PATH of its own.
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("Uid:"))
                .and_then(|uids| uids.split_whitespace().next().map(|uid| uid == "0"))
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use helvetia_server::platform::GitHubUrls;

    use crate::builder_config::{BuilderMode, RegistryChoice};

    use super::*;

    #[derive(Parser)]
    struct Command {
        #[command(flatten)]
        args: ServerArgs,
    }

    fn config(extra: &[&str]) -> anyhow::Result<ServerConfig> {
        let base = [
            "helvetia",
            "--data-dir",
            "/nonexistent",
            "--traefik",
            "external",
            "--traefik-dynamic-dir",
            "/nonexistent/dynamic",
        ];
        Command::try_parse_from(base.iter().chain(extra))?
            .args
            .into_config()
    }

    #[test]
    fn loopback_is_trusted_only_with_a_public_url() {
        let plain = config(&[
            "--trusted-proxies",
            "10.0.0.0/8",
            "--listen",
            "0.0.0.0:7300",
        ]);
        let plain = plain.unwrap().platform;
        assert_eq!(plain.believed_proxies().to_string(), "10.0.0.0/8");
        assert_eq!(plain.public_url(), None);
        assert_eq!(plain.control_plane_route(), None);
        assert_eq!(plain.link_base().as_str(), "http://127.0.0.1:7300/");
        let public = config(&["--public-url", "https://helvetia.example.com"]).unwrap();
        let route = public.platform.control_plane_route().unwrap();
        assert_eq!(route.hostnames, ["helvetia.example.com"]);
        assert_eq!(route.backends[0].url(), "http://127.0.0.1:7300");
        // Traefik itself is not told to trust loopback: it relays from there, its clients
        // do not.
        assert!(public.platform.trusted_proxies.is_empty());
        assert_eq!(
            public.platform.believed_proxies().to_string(),
            "127.0.0.0/8, ::1/128"
        );
        assert_eq!(
            public.platform.link_base().as_str(),
            "https://helvetia.example.com/"
        );
    }

    /// The arguments `flags` give with the configuration file `file` applied.
    fn read_with_file(file: &std::path::Path, flags: &[&str]) -> ServerArgs {
        use clap::{CommandFactory, FromArgMatches};
        let base = ["helvetia", "--config", file.to_str().unwrap()];
        let matches = Command::command().get_matches_from(base.iter().chain(flags));
        let args = Command::from_arg_matches(&matches).unwrap().args;
        args.apply_file(&matches).unwrap()
    }

    #[test]
    fn the_file_sets_the_public_url_and_proxies_unless_a_flag_does() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("helvetia.toml");
        std::fs::write(
            &file,
            "public_url = \"https://helvetia.example.com\"\n\
             trusted_proxies = [\"10.0.0.0/8\", \"192.0.2.7\"]\n",
        )
        .unwrap();
        let read = |flags: &[&str]| read_with_file(&file, flags);
        let from_file = read(&[]);
        assert_eq!(
            from_file.public_url.unwrap().to_string(),
            "https://helvetia.example.com"
        );
        assert_eq!(
            from_file.trusted_proxies.unwrap().to_string(),
            "10.0.0.0/8, 192.0.2.7/32"
        );
        let flagged = read(&["--trusted-proxies", "192.0.2.9"]);
        assert_eq!(flagged.trusted_proxies.unwrap().to_string(), "192.0.2.9/32");
    }

    #[test]
    fn the_file_sets_the_builder_the_registry_and_the_disk_budget() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("helvetia.toml");
        std::fs::write(
            &file,
            "builder = \"host\"\nregistry_address = \"off\"\nbuild_memory = \"1G\"\n\
             max_build_pids = 100\nbuild_cpus = 0.5\ndisk_budget = \"50G\"\n",
        )
        .unwrap();
        let read = |flags: &[&str]| read_with_file(&file, flags);
        let from_file = read(&[]);
        assert_eq!(from_file.builder.builder, Some(BuilderMode::Host));
        assert_eq!(from_file.builder.registry_address, RegistryChoice::Off);
        assert_eq!(from_file.builder.build_memory, 1 << 30);
        assert_eq!(from_file.builder.build_cpus, 0.5);
        assert_eq!(from_file.builder.max_build_pids, 100);
        assert_eq!(from_file.disk_budget, 50 << 30);
        let flagged = read(&[
            "--disk-budget",
            "2G",
            "--registry-address",
            "127.0.0.1:5055",
        ]);
        assert_eq!(flagged.disk_budget, 2 << 30);
        assert_eq!(
            flagged.builder.registry_address,
            RegistryChoice::Address("127.0.0.1:5055".parse().unwrap())
        );
    }

    #[test]
    fn bad_public_urls_and_proxies_are_refused_with_the_reason() {
        let error = config(&["--public-url", "https://helvetia.example.com/api"]).unwrap_err();
        assert!(error.to_string().contains("origin only"), "{error}");
        let error = config(&["--public-url", "http://web.demo.localhost"]).unwrap_err();
        assert!(error.to_string().contains("service's address"), "{error}");
        let error = config(&["--trusted-proxies", "10.0.0.0/40"]).unwrap_err();
        assert!(error.to_string().contains("CIDR"), "{error}");
    }

    #[test]
    fn sign_up_is_closed_unless_domains_are_named() {
        assert!(config(&[]).unwrap().platform.signup_domains.is_empty());
        let open = config(&["--signup-domains", "Example.COM, @example.org,"]).unwrap();
        assert_eq!(open.platform.signup_domains, ["example.com", "example.org"]);
        let orgs = config(&["--signup-github-orgs", "Acme, helvetia-dev,"]).unwrap();
        assert_eq!(orgs.platform.signup_github_orgs, ["acme", "helvetia-dev"]);
    }

    #[test]
    fn github_defaults_to_github_com_and_takes_enterprise_urls() {
        let plain = config(&[]).unwrap();
        assert_eq!(plain.platform.github, GitHubUrls::default());
        let flagged = config(&[
            "--github-url",
            "https://ghe.example.com",
            "--github-api-url",
            "https://ghe.example.com/api/v3",
        ])
        .unwrap();
        assert_eq!(
            flagged.platform.github.api_url("/app"),
            "https://ghe.example.com/api/v3/app"
        );
        assert_eq!(
            flagged.platform.github.web_url("/settings/apps/new"),
            "https://ghe.example.com/settings/apps/new"
        );
        for bad in ["ftp://x", "https://u:p@x", "https://x/?a=b", "nope"] {
            assert!(config(&["--github-url", bad]).is_err(), "{bad}");
        }
    }
}
