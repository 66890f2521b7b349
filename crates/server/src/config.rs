//! The server's settings, already parsed and validated by the binary.

use std::path::PathBuf;
use std::time::Duration;

use helvetia_core::git::RepoPolicy;
use helvetia_core::job::QueueSettings;
use helvetia_store::Location;

#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where the server keeps its state: the SQLite database, the admin token file, the lock.
    pub data_dir: PathBuf,
    pub database: Location,
    pub repo_policy: RepoPolicy,
    /// Services are reachable at `<service>.<project>.<base_domain>`.
    pub base_domain: String,
    pub queue: QueueSettings,
    /// How long shutdown waits for running jobs before abandoning them to the next start.
    pub shutdown_grace: Duration,
}

impl ServerConfig {
    pub const DEFAULT_BASE_DOMAIN: &str = "localhost";
    pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
}
