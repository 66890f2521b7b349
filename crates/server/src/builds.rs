//! The daemons builds need with `--builder isolated`: the builder engine and (unless
//! `--registry-address off`) the registry between build and run — started or adopted at
//! start, watched by supervised tasks while the server runs, left running when it stops.

use std::path::PathBuf;
use std::sync::Arc;

use helvetia_engine::builder::{self, Builder, BuilderDaemon, BuilderError, BuilderSettings};
use helvetia_engine::registry::{RegistryDaemon, RegistrySettings};
use tokio::sync::Mutex;

use crate::config::{BuilderConfig, RegistryAddress, ServerConfig};
use crate::supervisor::Supervisor;

/// Under the data dir: the builder engine's state (data root, socket, pid files, log).
pub const BUILDER_DIR: &str = "builder";
/// Under the data dir: the registry's configuration, storage, pid file and log.
pub const REGISTRY_DIR: &str = "registry";

/// The daemons builds need, which outlive Helvetia and are watched while it runs.
pub(crate) struct Daemons {
    builder: BuilderDaemon,
    registry: Option<RegistryDaemon>,
}

/// The builder engine (and the registry, unless it is off), started (or adopted)
/// with `--builder isolated`. Unlike Traefik's, its
/// failure to start stops the server: builds would otherwise run uncapped, or not at all.
pub(crate) async fn start(
    config: &ServerConfig,
    instance: &str,
) -> Result<Option<(Daemons, Builder)>, BuilderError> {
    match &config.builder {
        BuilderConfig::Host => Ok(None),
        BuilderConfig::Isolated {
            dockerd,
            bridge_address,
            registry,
        } => {
            let registry = match registry {
                Some(registry) => {
                    let state_dir = config.data_dir.join(REGISTRY_DIR);
                    let address = match registry.address {
                        RegistryAddress::Fixed(address) => address,
                        RegistryAddress::PerInstallation => {
                            helvetia_engine::registry::kept_address(&state_dir)?
                        }
                    };
                    let settings = RegistrySettings {
                        binary: registry.binary.clone(),
                        state_dir,
                        address,
                    };
                    let (daemon, registry) = helvetia_engine::registry::start_or_adopt(settings)
                        .await
                        .map_err(BuilderError::from)?;
                    tracing::info!(pid = daemon.pid(), "built images go through the registry");
                    Some((daemon, registry))
                }
                None => None,
            };
            let settings = BuilderSettings {
                dockerd: dockerd.clone(),
                state_dir: config.data_dir.join(BUILDER_DIR),
                instance: instance.to_owned(),
                bridge_address: bridge_address.clone(),
                cgroup_root: PathBuf::from(crate::config::CGROUP_ROOT),
            };
            let (daemon, builder) = builder::start_or_adopt(settings).await?;
            tracing::info!(
                pid = daemon.pid(),
                "builds run in the isolated builder engine"
            );
            let (registry_daemon, registry) = registry.unzip();
            Ok(Some((
                Daemons {
                    builder: daemon,
                    registry: registry_daemon,
                },
                builder.with_registry(registry),
            )))
        }
    }
}

impl Daemons {
    /// Watches the daemons from supervised tasks, starting each again when it dies.
    pub(crate) fn watch(self, tasks: &mut Supervisor) {
        let builder = Arc::new(Mutex::new(self.builder));
        tasks.spawn("builder-watcher", move |stop| {
            let builder = builder.clone();
            async move { builder.lock().await.watch(stop).await }
        });
        if let Some(registry) = self.registry {
            let registry = Arc::new(Mutex::new(registry));
            tasks.spawn("registry-watcher", move |stop| {
                let registry = registry.clone();
                async move { registry.lock().await.watch(stop).await }
            });
        }
    }
}
