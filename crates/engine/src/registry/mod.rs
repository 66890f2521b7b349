//! The image registry between build and run: Debian's `docker-registry` (the CNCF
//! distribution), run by Helvetia on a loopback address with its storage under the data dir,
//! kept running across Helvetia's restarts like the builder engine (`daemon::supervised`). The
//! builder pushes what it built; the host engine pulls it by digest. Loopback registries need
//! no TLS; another node would reach it on a non-loopback address (later).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::daemon::DaemonError;
use crate::daemon::supervised::{self, Daemon, Supervised};
use crate::process::Program;

const WHAT: &str = "the registry";
const PID_FILE: &str = "registry.pid";
const CONFIG_FILE: &str = "config.yml";
const LOG_FILE: &str = "registry.log";
const STORAGE_DIR: &str = "storage";
/// The address an installation's registry listens on, chosen at its first start.
const ADDRESS_FILE: &str = "address";
const START_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// Where and how Helvetia runs its registry.
#[derive(Debug, Clone)]
pub struct RegistrySettings {
    /// The `docker-registry` executable.
    pub binary: PathBuf,
    /// Holds its configuration, storage, pid file and log.
    pub state_dir: PathBuf,
    /// Where it listens: a loopback address (it has no authentication).
    pub address: SocketAddr,
}

mod contents;

pub use contents::{Manifest, RegistryError};

/// The registry as the builds use it: where images are pushed and pulled, and what it holds.
#[derive(Debug, Clone)]
pub struct Registry {
    address: SocketAddr,
    /// Its executable, which also collects its garbage.
    binary: PathBuf,
    /// Holds its configuration and storage.
    state_dir: PathBuf,
}

impl Registry {
    /// The name of `repository` (an image repository of this installation) in the registry.
    pub fn repository(&self, repository: &str) -> String {
        format!("{}/{repository}", self.address)
    }
}

struct RegistryProcess {
    settings: RegistrySettings,
    config: String,
}

/// The registry's configuration: its storage under the state directory (deletes allowed, for
/// its garbage collection), listening on the loopback address only.
fn render_config(settings: &RegistrySettings) -> String {
    format!(
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: \"{}\"\n  \
         delete:\n    enabled: true\nhttp:\n  addr: \"{}\"\n",
        settings.state_dir.join(STORAGE_DIR).display(),
        settings.address
    )
}

impl Daemon for RegistryProcess {
    fn what(&self) -> &'static str {
        WHAT
    }

    fn marker(&self) -> String {
        self.settings
            .state_dir
            .join(CONFIG_FILE)
            .display()
            .to_string()
    }

    fn pid_file(&self) -> PathBuf {
        self.settings.state_dir.join(PID_FILE)
    }

    fn output(&self) -> PathBuf {
        self.settings.state_dir.join(LOG_FILE)
    }

    fn program(&self) -> Program {
        Program::new(&self.settings.binary)
            .arg("serve")
            .arg(self.marker())
            .current_dir(&self.settings.state_dir)
    }

    fn launch_hash(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(self.settings.binary.as_os_str().as_encoded_bytes());
        hasher.update(b"\0");
        hasher.update(self.config.as_bytes());
        hex::encode(hasher.finalize())
    }

    async fn prepare(&self) -> Result<(), String> {
        let storage = self.settings.state_dir.join(STORAGE_DIR);
        std::fs::create_dir_all(&storage)
            .map_err(|e| format!("creating {}: {e}", storage.display()))?;
        let config = self.settings.state_dir.join(CONFIG_FILE);
        crate::write::write_atomically(&config, &self.config)
            .map_err(|e| format!("writing {}: {e}", config.display()))
    }

    /// Its API's base answers 200 (`/v2/`). Plain HTTP/1.0 over a loopback connection: no
    /// client with a TLS stack is needed for that.
    async fn answers(&self) -> bool {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let ask = async {
            let mut stream = tokio::net::TcpStream::connect(self.settings.address).await?;
            stream
                .write_all(b"GET /v2/ HTTP/1.0\r\nHost: registry\r\n\r\n")
                .await?;
            let mut head = [0u8; 12];
            stream.read_exact(&mut head).await?;
            Ok::<_, std::io::Error>(head.starts_with(b"HTTP/1.") && head.ends_with(b"200"))
        };
        matches!(
            tokio::time::timeout(Duration::from_secs(2), ask).await,
            Ok(Ok(true))
        )
    }

    fn start_timeout(&self) -> Duration {
        START_TIMEOUT
    }

    fn stop_timeout(&self) -> Duration {
        STOP_TIMEOUT
    }
}

/// Looks after the registry.
pub struct RegistryDaemon(Supervised<RegistryProcess>);

/// Makes sure the registry runs as `settings` say (adopting one that does, replacing one that
/// does not); returns it and the [`Registry`] builds use.
pub async fn start_or_adopt(
    settings: RegistrySettings,
) -> Result<(RegistryDaemon, Registry), DaemonError> {
    if !settings.address.ip().is_loopback() {
        return Err(DaemonError::Prepare {
            what: WHAT,
            message: format!(
                "{} is not a loopback address; the registry has no authentication",
                settings.address
            ),
        });
    }
    let state_dir = std::path::absolute(&settings.state_dir).map_err(|source| DaemonError::Io {
        action: "resolving",
        path: settings.state_dir.clone(),
        source,
    })?;
    let settings = RegistrySettings {
        state_dir,
        ..settings
    };
    let config = render_config(&settings);
    let registry = Registry {
        address: settings.address,
        binary: settings.binary.clone(),
        state_dir: settings.state_dir.clone(),
    };
    let supervised = Supervised::start_or_adopt(RegistryProcess { settings, config }).await?;
    Ok((RegistryDaemon(supervised), registry))
}

/// The loopback address kept in `state_dir` for this installation's registry: chosen at the
/// first start among the ports free then, and the same at every start after, so a running
/// registry is adopted. Deleting the file picks another.
pub fn kept_address(state_dir: &Path) -> Result<SocketAddr, DaemonError> {
    let file = state_dir.join(ADDRESS_FILE);
    let io = |action, source| DaemonError::Io {
        action,
        path: file.clone(),
        source,
    };
    match std::fs::read_to_string(&file) {
        Ok(text) => {
            if let Ok(address) = text.trim().parse::<SocketAddr>()
                && address.ip().is_loopback()
            {
                return Ok(address);
            }
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(io("reading", error)),
    }
    let address = std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map_err(|error| io("choosing a port for", error))?;
    std::fs::create_dir_all(state_dir).map_err(|error| io("creating the directory of", error))?;
    crate::write::write_atomically(&file, &format!("{address}\n"))
        .map_err(|error| io("writing", error))?;
    Ok(address)
}

/// Stops the registry recorded in `state_dir`. Only for tests and uninstalling.
pub async fn stop_registry(state_dir: &Path) -> Result<(), DaemonError> {
    let marker = state_dir.join(CONFIG_FILE).display().to_string();
    supervised::stop(WHAT, &state_dir.join(PID_FILE), &marker, STOP_TIMEOUT).await
}

impl RegistryDaemon {
    pub fn pid(&self) -> Option<u32> {
        self.0.pid()
    }

    /// Starts the registry again when it died, until `shutdown`; leaves it running then.
    pub async fn watch(&mut self, shutdown: CancellationToken) {
        self.0.watch(shutdown).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_listens_on_loopback_and_stores_under_the_data_dir() {
        let settings = RegistrySettings {
            binary: "docker-registry".into(),
            state_dir: "/var/lib/helvetia/registry".into(),
            address: "127.0.0.1:5055".parse().unwrap(),
        };
        let config = render_config(&settings);
        assert!(config.contains("rootdirectory: \"/var/lib/helvetia/registry/storage\""));
        assert!(config.contains("addr: \"127.0.0.1:5055\""));
        let registry = Registry {
            address: settings.address,
            binary: settings.binary.clone(),
            state_dir: settings.state_dir.clone(),
        };
        assert_eq!(
            registry.repository("helvetia-0a1b-demo-web"),
            "127.0.0.1:5055/helvetia-0a1b-demo-web"
        );
    }
}
