//! The platform: the store plus the adapters that act on the machine (engine, git, edge
//! router), shared by the worker, the reconciler and the API.
//!
//! Routing changes go through one lock ([`Platform::routing`]): each writer renders the whole
//! table from the store, so two writers interleaving could each publish a table missing the
//! other's change. Holding the lock from "read the store" to "commit the switch" makes every
//! published table include every committed change.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use helvetia_core::container::SubnetPool;
use helvetia_core::edge::{PublicUrl, TrustedProxies};
use helvetia_core::git::RepoPolicy;
use helvetia_core::redact::Redactor;
use helvetia_core::runtime::{ResourceLimits, RuntimeBounds};
use helvetia_core::service::Service;
use helvetia_core::stack::StackImages;
use helvetia_engine::builder::Builder;
use helvetia_engine::builder::cgroup::BuildCaps;
use helvetia_engine::docker::Engine;
use helvetia_engine::git::Git;
use helvetia_engine::github::GitHubApi;
pub use helvetia_engine::github::GitHubUrls;
use helvetia_engine::github::tokens::TokenCache;
use helvetia_engine::outbound::Outbound;
use helvetia_engine::routing::{EdgeRouter, RoutingError};
use helvetia_store::{Store, StoreError};
use tokio::sync::{Mutex, MutexGuard, Notify};

use helvetia_store::env::EnvRecord;
use sha2::{Digest, Sha256};

use crate::limits::Limits;
use crate::logs::{Followers, LogHub, LogLimits};
use crate::metrics::MetricsSettings;
use crate::vault::{Vault, VaultError};

mod acme;
mod routes;

pub use acme::{AcmeSettings, DnsProvider, DnsSettings, ExternalAccountBinding};

/// Settings the deploy pipeline and the reconciler follow.
#[derive(Debug, Clone)]
pub struct PlatformSettings {
    /// Which repositories services may use, and where outbound requests may go
    /// (`repo_policy.destinations`, the policy [`Platform::outbound`] applies).
    pub repo_policy: RepoPolicy,
    pub base_domain: String,
    /// Port of the edge router's HTTP entry point, for the URLs shown to users (`None` = 80).
    pub public_port: Option<u16>,
    pub subnets: SubnetPool,
    /// Limits for services that set none.
    pub default_limits: ResourceLimits,
    /// The most any service may ask for.
    pub max_limits: ResourceLimits,
    /// Caps of builds on the isolated builder for services that set none (all three set).
    pub build_default_limits: ResourceLimits,
    /// The most any service's builds may ask for.
    pub build_max_limits: ResourceLimits,
    /// The base images of Dockerfiles generated for repositories without one.
    pub stack_images: StackImages,
    /// The most replicas a service may run.
    pub max_replicas: u32,
    /// How long the edge router may take to load a new table.
    pub confirm_timeout: Duration,
    /// Images of this many successful deployments per service are kept for rollback.
    pub images_kept: usize,
    /// The most Helvetia's images, registry and build cache may take on disk together
    /// ([`crate::disk`]).
    pub disk_budget: u64,
    pub log_limits: LogLimits,
    /// How container metrics are collected and kept.
    pub metrics: MetricsSettings,
    /// Where the API listens (the server fills in the port it got): the CLI on the server
    /// talks to it, and the edge router relays the public URL's requests to it.
    pub api_listen: SocketAddr,
    /// Where browsers, OAuth callbacks and webhook senders reach Helvetia (`--public-url`),
    /// through the edge router.
    pub public_url: Option<PublicUrl>,
    /// Proxies in front of the edge router or of the API (`--trusted-proxies`); see
    /// [`PlatformSettings::believed_proxies`].
    pub trusted_proxies: TrustedProxies,
    /// E-mail domains whose addresses may sign up without an invitation (lower-case; empty:
    /// sign-up is closed).
    pub signup_domains: Vec<String>,
    /// GitHub organizations whose members may sign up with GitHub (`--signup-github-orgs`,
    /// lower-case; empty: none).
    pub signup_github_orgs: Vec<String>,
    /// Where GitHub's web pages and API are (`--github-url`, `--github-api-url`).
    pub github: GitHubUrls,
    /// The wait before a failed notification's first retry; later waits grow from it
    /// (`core::notification::retry_delay`).
    pub notification_retry_base: Duration,
    /// The server's public addresses, which a custom domain's DNS must answer with to be
    /// verified that way.
    pub public_addresses: Vec<IpAddr>,
    /// The CA domains' certificates are ordered from; none: domains are served over HTTP.
    pub acme: Option<AcmeSettings>,
    /// The port of the edge router's HTTPS entry point, when it has one.
    pub https_port: Option<u16>,
}

impl PlatformSettings {
    pub const DEFAULT_CONFIRM_TIMEOUT: Duration = Duration::from_secs(10);
    pub const DEFAULT_IMAGES_KEPT: usize = 10;
    pub const DEFAULT_DISK_BUDGET: u64 = 20 << 30;
    pub const DEFAULT_MAX_REPLICAS: u32 = 20;

    /// The server-wide default limits: 512 MiB of memory, one CPU, 1024 processes.
    pub fn default_limits() -> ResourceLimits {
        ResourceLimits {
            memory_bytes: Some(512 * 1024 * 1024),
            cpus: Some(1.0),
            pids: Some(1024),
        }
    }

    /// The caps of a build on the isolated builder: the service's own build limits, else the
    /// server's defaults.
    pub fn build_caps(&self, own: ResourceLimits) -> BuildCaps {
        let limits = own.or(self.build_default_limits);
        let fallback = PlatformSettings::default_build_limits();
        BuildCaps {
            memory_bytes: limits
                .memory_bytes
                .or(fallback.memory_bytes)
                .unwrap_or(2 << 30),
            cpus: limits.cpus.or(fallback.cpus).unwrap_or(1.0),
            pids: limits.pids.or(fallback.pids).unwrap_or(4096),
        }
    }

    /// The server-wide default build caps: 2 GiB of memory, one CPU, 4096 processes.
    pub fn default_build_limits() -> ResourceLimits {
        ResourceLimits {
            memory_bytes: Some(2 << 30),
            cpus: Some(1.0),
            pids: Some(4096),
        }
    }

    /// What a service's runtime settings may ask for.
    pub fn runtime_bounds(&self) -> RuntimeBounds {
        RuntimeBounds {
            limits: self.max_limits,
            build_limits: self.build_max_limits,
            max_replicas: self.max_replicas,
        }
    }

    /// Where a service is reachable at its generated hostname.
    pub fn service_url(&self, service: &Service) -> String {
        let host = self.service_hostname(service);
        match self.public_port {
            Some(port) if port != 80 => format!("http://{host}:{port}"),
            _ => format!("http://{host}"),
        }
    }

    /// A service's generated hostname; a preview's is under its parent's.
    pub fn service_hostname(&self, service: &Service) -> String {
        let project = service.project.as_str();
        match &service.preview {
            Some(preview) => preview
                .label
                .hostname(&self.hostname(project, preview.parent.as_str())),
            None => self.hostname(project, service.name.as_str()),
        }
    }

    pub fn hostname(&self, project: &str, service: &str) -> String {
        format!("{service}.{project}.{}", self.base_domain)
    }

    /// Whose `X-Forwarded-For` the API believes: the trusted proxies, and loopback when there
    /// is a public URL — the edge router on this host relays its requests from there, having
    /// replaced the forwarded headers of any client it does not trust itself.
    pub fn believed_proxies(&self) -> TrustedProxies {
        match self.public_url {
            Some(_) => self.trusted_proxies.clone().with_loopback(),
            None => self.trusted_proxies.clone(),
        }
    }

    /// Helvetia's public URL, when it has one.
    pub fn public_url(&self) -> Option<&url::Url> {
        self.public_url.as_ref().map(PublicUrl::url)
    }

    /// The base URL of links Helvetia prints or sends (sign-up and reset links, the device
    /// page): the public URL, else the API's own address (reachable on the server only).
    pub fn link_base(&self) -> url::Url {
        match &self.public_url {
            Some(public) => public.url().clone(),
            None => {
                let address = self.control_plane_address();
                url::Url::parse(&format!("http://{address}"))
                    .expect("a socket address makes a valid URL")
            }
        }
    }

    /// Where this host reaches the API: its listening address, or loopback when it listens
    /// on every address.
    fn control_plane_address(&self) -> SocketAddr {
        let ip = match self.api_listen.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        SocketAddr::new(ip, self.api_listen.port())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Vault(#[from] VaultError),
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Routing(#[from] RoutingError),
}

pub struct Platform {
    pub store: Store,
    pub engine: Engine,
    /// Helvetia's own builder engine (`--builder isolated`); none: builds run in `engine`.
    pub builder: Option<Builder>,
    /// Every request to an address a user chose goes through it (git's fetches included).
    pub outbound: Arc<Outbound>,
    pub git: Git,
    /// GitHub's API as the instance's App uses it (through `outbound`).
    pub github: GitHubApi,
    /// Installation tokens minted for the App, until shortly before they expire.
    pub github_tokens: TokenCache,
    pub edge: Arc<dyn EdgeRouter>,
    pub settings: PlatformSettings,
    /// Live deployment logs.
    pub logs: Arc<LogHub>,
    /// Clients following each service's logs, within `settings.log_limits.max_followers`.
    pub followers: Arc<Followers>,
    /// Rate limits on sign-in and credential endpoints, by client address and by account.
    pub limits: Limits,
    /// Secrets of the server itself (database password, admin token), redacted everywhere.
    server_secrets: Vec<String>,
    /// Seals and opens secret variables.
    pub vault: Vault,
    /// Woken when notifications are queued: the sender (`notifications::run`) waits on it.
    pub notifications_due: Notify,
    /// Where checkouts and build contexts live while a build runs: inside the data dir (not
    /// `/tmp`, which may be memory), emptied at every start so a crash leaves nothing behind.
    pub builds_dir: PathBuf,
    /// Each alias domain's primary, as last published: the API answers requests for an alias
    /// with a 308 to it (Traefik's redirects answer a `GET` with 301).
    redirects: std::sync::RwLock<std::collections::HashMap<String, String>>,
    /// HTTP-01 answers of the ACME orders in progress, by token: the API serves them at
    /// `/.well-known/acme-challenge/<token>` on every host.
    pub acme_challenges: std::sync::RwLock<std::collections::HashMap<String, String>>,
    /// Woken when routes are published: the certificates task orders what they now need.
    pub certificates_due: Notify,
    /// Woken after a deployment's drain: the disk budget's sweep ([`crate::disk::run`]).
    pub disk_due: Notify,
    /// When the last sweep ran, and what it found.
    pub last_sweep: std::sync::RwLock<Option<(jiff::Timestamp, helvetia_core::disk::Sweep)>>,
    routing: Mutex<()>,
    networks: Mutex<()>,
}

/// A service's environment, opened and merged, for one deployment.
pub struct ServiceEnvironment {
    /// What the containers get (project variables overridden by the service's).
    pub runtime: Vec<(String, String)>,
    /// What the build gets, as BuildKit secrets.
    pub build: Vec<(String, String)>,
    /// What the build gets as build arguments.
    pub build_args: Vec<(String, String)>,
    /// Identifies the build variables' and arguments' current versions, for the image-reuse
    /// key.
    pub build_fingerprint: String,
    /// Identifies the whole environment's current versions, to tell when it changed.
    pub digest: String,
    /// Every secret value, for the redactor.
    pub secrets: Vec<String>,
}

impl Platform {
    pub fn new(
        store: Store,
        engine: Engine,
        edge: Arc<dyn EdgeRouter>,
        settings: PlatformSettings,
        vault: Vault,
        builds_dir: PathBuf,
        outbound: Arc<Outbound>,
    ) -> Platform {
        Platform {
            store,
            engine,
            builder: None,
            git: Git::new(outbound.clone(), settings.repo_policy.allow_local),
            github: GitHubApi::new(settings.github.clone(), outbound.clone()),
            github_tokens: TokenCache::default(),
            outbound,
            edge,
            followers: Followers::new(settings.log_limits.max_followers),
            limits: Limits::default(),
            settings,
            logs: Arc::new(LogHub::default()),
            server_secrets: vec![],
            vault,
            notifications_due: Notify::new(),
            builds_dir,
            redirects: Default::default(),
            acme_challenges: Default::default(),
            certificates_due: Notify::new(),
            disk_due: Notify::new(),
            last_sweep: Default::default(),
            routing: Mutex::new(()),
            networks: Mutex::new(()),
        }
    }

    /// Builds on `builder` rather than in the host engine.
    pub fn with_builder(mut self, builder: Option<Builder>) -> Platform {
        self.builder = builder;
        self
    }

    /// Adds secrets of the server that must never appear in output.
    pub fn with_server_secrets(mut self, secrets: impl IntoIterator<Item = String>) -> Platform {
        self.server_secrets.extend(secrets);
        self
    }

    /// A redactor for the server's own secrets, for anything not tied to a service.
    pub fn server_redactor(&self) -> Redactor {
        Redactor::new(&self.server_secrets)
    }

    /// A redactor for everything a service's deployments and containers print: its secrets
    /// (project and service) and the server's.
    pub async fn redactor_for(&self, service: &Service) -> Result<Redactor, EnvError> {
        Ok(self.redactor_with(&self.environment(service).await?))
    }

    /// [`Platform::redactor_for`], for an environment already opened.
    pub fn redactor_with(&self, environment: &ServiceEnvironment) -> Redactor {
        Redactor::new(self.server_secrets.iter().chain(&environment.secrets))
    }

    /// The service's environment as its next deployment gets it.
    pub async fn environment(&self, service: &Service) -> Result<ServiceEnvironment, EnvError> {
        let records = self.env_records(service).await?;
        // Service variables come after project ones and replace them.
        let mut merged: std::collections::BTreeMap<String, (String, &EnvRecord)> =
            Default::default();
        let mut secrets = vec![];
        for record in &records {
            let value = if record.secret {
                let value = self.vault.open_record(record)?;
                secrets.push(value.clone());
                value
            } else {
                record.value.clone()
            };
            merged.insert(record.name.clone(), (value, record));
        }
        let mut fingerprint = Sha256::new();
        let mut build = vec![];
        let mut build_args = vec![];
        let mut runtime = vec![];
        for (name, (value, record)) in merged {
            // Build variables' entries are as they were before build arguments existed, so
            // that their images are still reused.
            let version = format!("{}:{}:{}", record.id, record.name, record.version);
            if record.build {
                fingerprint.update(format!("{version}\0"));
                build.push((name.clone(), value.clone()));
            }
            if record.build_arg {
                fingerprint.update(format!("{version}:arg\0"));
                build_args.push((name.clone(), value.clone()));
            }
            runtime.push((name, value));
        }
        Ok(ServiceEnvironment {
            runtime,
            build,
            build_args,
            build_fingerprint: hex::encode(fingerprint.finalize()),
            digest: env_digest(&records),
            secrets,
        })
    }

    /// The digest of the environment the service's next deployment would get
    /// ([`ServiceEnvironment::digest`]), without opening a secret.
    pub async fn env_digest(&self, service: &Service) -> Result<String, StoreError> {
        let records = self.env_records(service).await?;
        Ok(env_digest(&records))
    }

    /// The variables a service's deployment gets, in the order they apply. A preview gets its
    /// parent's: the project's and the service's — secret ones only when its preview settings
    /// allow — then the service's variables for previews.
    async fn env_records(&self, service: &Service) -> Result<Vec<EnvRecord>, StoreError> {
        let Some(preview) = &service.preview else {
            return self
                .store
                .service_env(service.project_id, service.id, false)
                .await;
        };
        let records = self
            .store
            .service_env(service.project_id, preview.parent_id, true)
            .await?;
        let secrets = self
            .store
            .preview_settings(preview.parent_id)
            .await?
            .secrets;
        Ok(records
            .into_iter()
            .filter(|record| secrets || record.preview || !record.secret)
            .collect())
    }

    /// Exclusive right to create project networks until the guard is dropped. The engine
    /// accepts two networks of one name, so two first deploys of one project must not both
    /// find it missing and create it.
    pub async fn network_lock(&self) -> MutexGuard<'_, ()> {
        self.networks.lock().await
    }

    /// Deletes this installation's engine volumes that no service has any more (removed
    /// volumes, deleted services). One still mounted by a container stays until a later call:
    /// its data is only deleted once nothing can be using it.
    pub async fn remove_unused_volumes(&self) -> Result<(), PublishError> {
        let wanted: std::collections::HashSet<String> = self
            .store
            .all_engine_volume_names()
            .await?
            .into_iter()
            .collect();
        let present = match self.engine.managed_volumes().await {
            Ok(present) => present,
            Err(error) => {
                tracing::warn!(%error, "listing the engine's volumes failed");
                return Ok(());
            }
        };
        for name in present.into_iter().filter(|name| !wanted.contains(name)) {
            match self.engine.remove_volume(&name).await {
                Ok(()) => {
                    tracing::info!(volume = %name, "deleted a volume no service has any more")
                }
                Err(error) => {
                    tracing::debug!(volume = %name, %error, "an unused volume is still mounted; retrying later")
                }
            }
        }
        Ok(())
    }
}

/// What identifies an environment's contents: every variable's scope, name, version and
/// flags (a value change bumps the version), so no value is needed to compute it.
fn env_digest(records: &[EnvRecord]) -> String {
    let mut digest = Sha256::new();
    for record in records {
        digest.update(format!(
            "{}:{}:{}:{}:{}\0",
            record.service_id.map_or("project", |_| "service"),
            record.name,
            record.version,
            record.secret,
            record.build
        ));
    }
    hex::encode(digest.finalize())
}
