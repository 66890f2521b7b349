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
mod write;

pub use api::TraefikApi;
pub use render::{BACKEND_IDLE_CONN_TIMEOUT, render};
pub use settings::TraefikSettings;
pub use supervisor::{Supervisor, TraefikStatus, start_or_adopt, stop_traefik};
pub use write::write_atomically;

/// The file Helvetia's routes are written to, inside the dynamic configuration directory.
pub const DYNAMIC_CONFIG_FILE: &str = "helvetia.toml";

/// The entry point a Traefik run by Helvetia accepts traffic on.
pub const MANAGED_ENTRY_POINT: &str = "web";

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
    #[error("cannot start Traefik ({}): {source}", binary.display())]
    Spawn {
        binary: PathBuf,
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
    #[error("cannot signal Traefik (pid {pid}): {source}")]
    Signal {
        pid: u32,
        #[source]
        source: std::io::Error,
    },
    #[error("Traefik (pid {pid}) did not exit")]
    DidNotExit { pid: u32 },
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
    instance: String,
    api: Option<TraefikApi>,
    /// Whether the managed Traefik runs, when a [`Supervisor`] looks after it.
    status: Option<TraefikStatus>,
}

impl Traefik {
    pub fn new(mode: TraefikMode) -> Result<Traefik, TraefikError> {
        let (dynamic_dir, entry_point, api_url, instance) = match mode {
            TraefikMode::Managed(settings) => (
                settings.dynamic_dir(),
                MANAGED_ENTRY_POINT.to_owned(),
                Some(settings.api_url()),
                settings.instance,
            ),
            TraefikMode::External {
                dynamic_dir,
                entry_point,
                api_url,
                instance,
            } => (dynamic_dir, entry_point, api_url, instance),
        };
        Ok(Traefik {
            config_file: dynamic_dir.join(DYNAMIC_CONFIG_FILE),
            entry_point,
            api: api_url
                .map(|url| TraefikApi::new(url, &instance))
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
            let contents = render(table, &self.entry_point, &self.instance);
            let path = self.config_file.clone();
            // fsync blocks; keep it off the async workers.
            tokio::task::spawn_blocking(move || {
                write_atomically(&path, &contents)
                    .map_err(|error| RoutingError::Write(format!("{}: {error}", path.display())))
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
