//! The server's settings, already parsed and validated by the binary.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use helvetia_core::job::QueueSettings;
use helvetia_engine::outbound::ResolverSetting;
use helvetia_store::Location;

use crate::platform::PlatformSettings;

#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where the server keeps its state: the SQLite database, the admin token file, the lock,
    /// Traefik's configuration.
    pub data_dir: PathBuf,
    pub database: Location,
    pub platform: PlatformSettings,
    pub edge: EdgeConfig,
    pub queue: QueueSettings,
    /// How long shutdown waits for running jobs before abandoning them to the next start.
    pub shutdown_grace: Duration,
    /// The master key for secrets, when given by `HELVETIA_MASTER_KEY` rather than the key
    /// file in the data dir.
    pub master_key: Option<SecretText>,
    /// A loopback address serving the Prometheus exposition without a token (off when `None`).
    pub metrics_listen: Option<SocketAddr>,
    /// The DNS server outbound requests resolve names through.
    pub resolver: ResolverSetting,
    /// Where builds run.
    pub builder: BuilderConfig,
}

/// Where builds run (`--builder`).
#[derive(Debug, Clone)]
pub enum BuilderConfig {
    /// In the host engine's BuildKit, uncapped: it ignores the build API's limits.
    Host,
    /// In Helvetia's own builder engine (`engine::builder`), within the caps of a control
    /// group, one build at a time.
    Isolated {
        /// The `dockerd` executable.
        dockerd: PathBuf,
        /// The builder's bridge address with its prefix, e.g. `10.213.0.1/24`.
        bridge_address: String,
        /// The registry built images go through to the host engine; none: copied directly.
        registry: Option<RegistryConfig>,
    },
}

/// The registry Helvetia runs between build and run (`--registry-address`).
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// The `docker-registry` executable.
    pub binary: PathBuf,
    /// Where it listens.
    pub address: RegistryAddress,
}

/// Where the registry listens: always on loopback (it has no authentication).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistryAddress {
    /// This address.
    Fixed(SocketAddr),
    /// A port of `127.0.0.1` chosen at the installation's first start and kept in its data
    /// dir, so that installations side by side each have their own.
    PerInstallation,
}

/// A secret setting: shown as `***` in debug output and logs.
#[derive(Clone)]
pub struct SecretText(String);

impl SecretText {
    pub fn new(text: String) -> SecretText {
        SecretText(text)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// How Helvetia reaches its edge router.
#[derive(Debug, Clone)]
pub enum EdgeConfig {
    /// Helvetia runs Traefik itself (the default), adopting one it started earlier.
    Managed {
        binary: PathBuf,
        /// Where Traefik accepts traffic, e.g. `:80`.
        entry_address: String,
        /// Loopback address of Traefik's API.
        api_address: String,
        /// Where Traefik accepts HTTPS, serving the domains' certificates; none: HTTP only.
        secure_address: Option<String>,
    },
    /// Helvetia writes dynamic configuration for a Traefik the user runs.
    External {
        dynamic_dir: PathBuf,
        entry_point: String,
        api_url: Option<String>,
    },
}

impl BuilderConfig {
    /// Whether the isolated builder can run on this machine (as root, with the cgroup
    /// controllers it caps builds with); otherwise why not.
    pub fn isolation_available() -> Result<(), String> {
        helvetia_engine::builder::cgroups_for_builds(std::path::Path::new(CGROUP_ROOT)).map(drop)
    }
}

/// Where the cgroup hierarchy is mounted.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

impl ServerConfig {
    pub const DEFAULT_BASE_DOMAIN: &str = "localhost";
    pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
    pub const DEFAULT_ENTRY_ADDRESS: &str = ":80";
    pub const DEFAULT_TRAEFIK_API: &str = "127.0.0.1:7301";
}
