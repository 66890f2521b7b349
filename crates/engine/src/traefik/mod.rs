//! Traefik as Helvetia's edge router: the [`EdgeRouter`] implementation the deploy pipeline
//! steers traffic through.
//!
//! The routing table is rendered whole into Traefik's dynamic configuration ([`render`]),
//! written atomically into the directory Traefik's file provider watches ([`write_atomically`]),
//! and confirmed by reading back what Traefik loaded through its API ([`TraefikApi`]). By default
//! Helvetia runs Traefik itself, as a process that outlives Helvetia ([`start_or_adopt`] and
//! [`Supervisor`]); it can also feed a Traefik the user runs ([`TraefikMode::External`]).
//! Read `render.rs` first, then `api.rs`, then `supervisor.rs` (with `settings.rs`, how Traefik
//! is started, and `pid.rs`, the process seen from outside).

use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;

use futures::future::BoxFuture;
use helvetia_core::routing::RoutingTable;

use crate::routing::{EdgeRouter, RoutingError};

mod api;
mod gate;
mod pid;
mod render;
mod settings;
mod supervisor;

pub use crate::write::{write_atomically, write_private};
pub use api::TraefikApi;
pub use render::{BACKEND_IDLE_CONN_TIMEOUT, Secure, render};
pub use settings::TraefikSettings;
pub use supervisor::{Supervisor, TraefikStatus, start_or_adopt, stop_traefik};

/// The file Helvetia's routes are written to, inside the dynamic configuration directory.
pub const DYNAMIC_CONFIG_FILE: &str = "helvetia.toml";

/// The entry point a Traefik run by Helvetia accepts traffic on.
pub const MANAGED_ENTRY_POINT: &str = "web";
/// The managed Traefik's HTTPS entry point, when it has one.
pub const SECURE_ENTRY_POINT: &str = "websecure";
/// Beside the dynamic configuration: the certificates' files (keys 0600), named by content.
const CERTIFICATES_DIR: &str = "certificates";

/// How long [`Traefik::confirm`] waits for an external Traefik whose API it cannot see:
/// Traefik's file provider applies a change after its `providersThrottleDuration` (2 s by
/// default) and the file watcher's own latency.
pub const EXTERNAL_SETTLE_TIME: Duration = Duration::from_millis(2500);

#[derive(Debug, thiserror::Error)]
pub enum TraefikError {
    #[error("invalid Traefik settings: {0}")]
    InvalidSettings(String),
    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("Traefik exited while starting ({status}): {reason}; see {} and {}", output.display(), log.display())]
    ExitedDuringStart {
        status: ExitStatus,
        /// Traefik's own error, from its log.
        reason: String,
        output: PathBuf,
        log: PathBuf,
    },
    #[error("Traefik's API did not answer within {waited:?}; see {}", log.display())]
    NotReady { waited: Duration, log: PathBuf },
    #[error(transparent)]
    Process(#[from] crate::daemon::DaemonError),
    #[error("cannot build the HTTP client for Traefik's API: {0}")]
    HttpClient(String),
}

/// Which Traefik Helvetia steers.
#[derive(Debug, Clone)]
pub enum TraefikMode {
    /// A Traefik Helvetia runs itself (see [`start_or_adopt`]); its routers listen on
    /// [`MANAGED_ENTRY_POINT`].
    Managed(TraefikSettings),
    /// A Traefik the user runs, whose file provider watches `dynamic_dir`; routers listen on its
    /// entry point named `entry_point`. Without `api_url`, changes cannot be confirmed and
    /// [`Traefik::confirm`] only waits [`EXTERNAL_SETTLE_TIME`].
    External {
        dynamic_dir: PathBuf,
        entry_point: String,
        api_url: Option<String>,
        /// The installation's id, marked in the configuration.
        instance: String,
    },
}

/// The edge router implemented by Traefik's file provider.
#[derive(Debug, Clone)]
pub struct Traefik {
    config_file: PathBuf,
    entry_point: String,
    /// The HTTPS entry point's port and where certificates are written (managed only).
    secure: Option<(u16, PathBuf)>,
    instance: String,
    api: Option<TraefikApi>,
    /// Whether the managed Traefik runs, when a [`Supervisor`] looks after it.
    status: Option<TraefikStatus>,
}

impl Traefik {
    pub fn new(mode: TraefikMode) -> Result<Traefik, TraefikError> {
        let (dynamic_dir, entry_point, api_url, instance, secure_port) = match mode {
            TraefikMode::Managed(settings) => (
                settings.dynamic_dir(),
                MANAGED_ENTRY_POINT.to_owned(),
                Some(settings.api_url()),
                settings.instance.clone(),
                settings.secure_port(),
            ),
            TraefikMode::External {
                dynamic_dir,
                entry_point,
                api_url,
                instance,
            } => (dynamic_dir, entry_point, api_url, instance, None),
        };
        Ok(Traefik {
            config_file: dynamic_dir.join(DYNAMIC_CONFIG_FILE),
            entry_point,
            secure: secure_port.map(|port| (port, dynamic_dir.join(CERTIFICATES_DIR))),
            api: api_url
                .map(|url| {
                    TraefikApi::new(url, &instance).map(|api| api.with_tls(secure_port.is_some()))
                })
                .transpose()?,
            instance,
            status: None,
        })
    }

    /// This router with the status of the managed Traefik it routes through.
    fn watched(self, status: TraefikStatus) -> Traefik {
        Traefik {
            status: Some(status),
            ..self
        }
    }

    /// The file the routing table is written to.
    pub fn config_file(&self) -> &Path {
        &self.config_file
    }
}

impl EdgeRouter for Traefik {
    fn down(&self) -> Option<String> {
        self.status.as_ref().and_then(TraefikStatus::down)
    }

    fn apply<'a>(&'a self, table: &'a RoutingTable) -> BoxFuture<'a, Result<(), RoutingError>> {
        Box::pin(async move {
            let table = table.clone();
            let path = self.config_file.clone();
            let (entry_point, instance) = (self.entry_point.clone(), self.instance.clone());
            let secure = self.secure.clone();
            // fsync blocks; keep it off the async workers.
            tokio::task::spawn_blocking(move || {
                let failed = |path: &Path, error: std::io::Error| {
                    RoutingError::Write(format!("{}: {error}", path.display()))
                };
                let contents = match &secure {
                    Some((port, directory)) => {
                        let files = write_certificates(directory, &table)
                            .map_err(|error| failed(directory, error))?;
                        let secure = Secure {
                            entry_point: SECURE_ENTRY_POINT,
                            port: *port,
                            files: &files,
                        };
                        let contents = render(&table, &entry_point, Some(&secure), &instance);
                        write_atomically(&path, &contents).map_err(|error| failed(&path, error))?;
                        remove_other_files(directory, &files)
                            .map_err(|error| failed(directory, error))?;
                        return Ok(());
                    }
                    None => render(&table, &entry_point, None, &instance),
                };
                write_atomically(&path, &contents).map_err(|error| failed(&path, error))
            })
            .await
            .map_err(|error| RoutingError::Write(error.to_string()))?
        })
    }

    /// Confirms through Traefik's API when there is one. An external Traefik without a known
    /// API cannot be asked, so this only waits [`EXTERNAL_SETTLE_TIME`] (or `timeout`, if
    /// shorter) and then assumes the change was applied.
    fn confirm<'a>(
        &'a self,
        table: &'a RoutingTable,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<(), RoutingError>> {
        Box::pin(async move {
            if let Some(down) = self.down() {
                return Err(RoutingError::Unavailable(down));
            }
            match &self.api {
                Some(api) => api.confirm(table, timeout).await,
                None => {
                    tokio::time::sleep(EXTERNAL_SETTLE_TIME.min(timeout)).await;
                    Ok(())
                }
            }
        })
    }
}

/// Writes `table`'s certificates into `directory` (the chain and the key, 0600, named by
/// their content: a renewed certificate is a new name, which makes Traefik load it) and
/// answers their paths in the table's order.
fn write_certificates(
    directory: &Path,
    table: &RoutingTable,
) -> std::io::Result<Vec<(String, String)>> {
    use sha2::{Digest, Sha256};
    std::fs::create_dir_all(directory)?;
    let mut files = Vec::with_capacity(table.certificates().len());
    for certificate in table.certificates() {
        let mut hash = Sha256::new();
        hash.update(certificate.chain_pem.as_bytes());
        hash.update(certificate.key_pem.as_bytes());
        let name = hex::encode(&hash.finalize()[..16]);
        let chain = directory.join(format!("{name}.crt"));
        let key = directory.join(format!("{name}.key"));
        if !key.exists() {
            write_private(&chain, &certificate.chain_pem)?;
            write_private(&key, &certificate.key_pem)?;
        }
        files.push((
            chain.to_string_lossy().into_owned(),
            key.to_string_lossy().into_owned(),
        ));
    }
    Ok(files)
}

/// Removes the certificate files no longer served.
fn remove_other_files(directory: &Path, files: &[(String, String)]) -> std::io::Result<()> {
    for entry in std::fs::read_dir(directory)? {
        let path = entry?.path();
        let path_text = path.to_string_lossy();
        let kept = files
            .iter()
            .any(|(chain, key)| *chain == path_text || *key == path_text);
        if !kept {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}
