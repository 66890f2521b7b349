//! A thin, typed adapter over the Docker Engine API (bollard): only the operations Helvetia
//! uses, in Helvetia's terms. Everything Helvetia creates carries the [`labels::MANAGED`] label,
//! so start-up reconciliation can find (and remove) what the store no longer wants.
//!
//! The engine here may be old (Debian's 20.10, API 1.41); nothing below needs a newer API.
//! Images are never pulled for builds: there may be no registry, and a build must not change
//! because a base image moved. Only a service run from a registry image is pulled
//! ([`pull`]), with its own login.

use std::collections::HashMap;
use std::path::PathBuf;

use bollard::Docker;
use helvetia_core::scope::Scope;

mod build;
mod containers;
mod context;
mod disk;
mod events;
mod ignore;
mod images;
pub mod labels;
mod networks;
mod pull;
mod session;
mod socket;
mod stats;
mod volumes;

pub use build::{BuildLine, BuildRequest};
pub use containers::{ContainerSpec, ContainerStatus, ImageHealth, Limits, OutputChunk};
pub use disk::EngineDisk;
pub use events::{ContainerAction, ContainerEvent};
pub use networks::NetworkSpec;
pub use pull::RegistryLogin;
pub use stats::{Allotment, StatsReader};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot reach the Docker engine: {0}")]
    Unreachable(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("the subnet {0} is already used by another network")]
    SubnetInUse(String),
    /// An object of the name Helvetia would use exists but is not this installation's: using
    /// it would share it (a volume's data, a network, an image tag) with its owner.
    #[error(
        "the {kind} `{name}` exists but {}; refusing to use it",
        match owner {
            Some(owner) => format!("belongs to another Helvetia installation (io.helvetia.instance={owner})"),
            None => "was not created by Helvetia".to_owned(),
        }
    )]
    NotOurs {
        kind: &'static str,
        name: String,
        owner: Option<String>,
    },
    #[error("build failed: {0}")]
    BuildFailed(String),
    #[error("build stopped by its wall-time cap: it ran longer than {0:?} and was cancelled")]
    BuildTimeout(std::time::Duration),
    /// A build on the builder engine stopped by a cap of its control group, which its
    /// counters showed.
    #[error("build stopped by its {cap} cap ({limit}): {message}")]
    BuildCapped {
        cap: &'static str,
        limit: String,
        message: String,
    },
    #[error("preparing the build context failed: {0}")]
    Context(String),
    #[error(
        "builds need the Docker engine's local unix socket, but DOCKER_HOST is a `{0}` address"
    )]
    BuildNeedsLocalSocket(String),
    #[error("Docker engine error: {0}")]
    Api(String),
}

impl EngineError {
    fn from_bollard(error: bollard::errors::Error) -> EngineError {
        use bollard::errors::Error as B;
        match error {
            B::DockerResponseServerError {
                status_code: 404,
                message,
            } => EngineError::NotFound(message),
            B::DockerResponseServerError { message, .. } => EngineError::Api(message),
            B::HyperResponseError { .. } | B::IOError { .. } | B::RequestTimeoutError => {
                EngineError::Unreachable(error.to_string())
            }
            other => EngineError::Api(other.to_string()),
        }
    }
}

/// bollard's request timeout on a connection made by [`Engine::at_socket`] (its default).
const CONNECT_TIMEOUT_SECONDS: u64 = 120;

pub type Result<T, E = EngineError> = std::result::Result<T, E>;

/// A connection to the Docker engine, scoped to one Helvetia installation: everything it
/// creates carries the installation's id, and everything it lists is filtered by it, so two
/// installations (or parallel test servers) sharing an engine never touch each other's
/// objects. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    docker: Docker,
    /// Names this installation's objects; its instance is what their labels carry.
    scope: Scope,
    /// The engine's unix socket, which builds talk to directly (they serve their own BuildKit
    /// session over it); else the scheme of the `DOCKER_HOST` that is not a unix socket.
    socket: std::result::Result<PathBuf, String>,
}

impl Engine {
    /// Connects through `DOCKER_HOST` if set, else the local socket.
    pub fn connect(instance: &str) -> Result<Engine> {
        let docker =
            Docker::connect_with_defaults().map_err(|e| EngineError::Unreachable(e.to_string()))?;
        Ok(Engine {
            docker,
            scope: Scope::new(instance),
            socket: local_socket(std::env::var("DOCKER_HOST").ok().as_deref()),
        })
    }

    /// Connects to the engine listening on the unix socket `socket` (the builder engine).
    pub fn at_socket(instance: &str, socket: &std::path::Path) -> Result<Engine> {
        let docker = Docker::connect_with_unix(
            &socket.to_string_lossy(),
            CONNECT_TIMEOUT_SECONDS,
            bollard::API_DEFAULT_VERSION,
        )
        .map_err(|e| EngineError::Unreachable(format!("{}: {e}", socket.display())))?;
        Ok(Engine {
            docker,
            scope: Scope::new(instance),
            socket: Ok(socket.to_owned()),
        })
    }

    /// The names of this installation's objects.
    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// The labels every object this engine creates carries.
    fn ownership_labels(&self) -> [(String, String); 2] {
        [
            (labels::MANAGED.to_owned(), "true".to_owned()),
            (
                labels::INSTANCE.to_owned(),
                self.scope.instance().to_owned(),
            ),
        ]
    }

    /// Refuses an existing object (of `kind`, named `name`, with `labels`) that this
    /// installation did not create: every object Helvetia uses without creating it goes
    /// through here.
    fn check_ours(
        &self,
        kind: &'static str,
        name: &str,
        labels: Option<&HashMap<String, String>>,
    ) -> Result<()> {
        let label = |key: &str| {
            labels
                .and_then(|labels| labels.get(key))
                .map(String::as_str)
        };
        if label(labels::MANAGED) == Some("true")
            && label(labels::INSTANCE) == Some(self.scope.instance())
        {
            return Ok(());
        }
        Err(EngineError::NotOurs {
            kind,
            name: name.to_owned(),
            owner: label(labels::INSTANCE)
                .filter(|_| label(labels::MANAGED) == Some("true"))
                .map(str::to_owned),
        })
    }

    /// Label filters selecting this installation's objects, plus `more`.
    fn owned_filters(&self, more: &[(&str, &str)]) -> HashMap<String, Vec<String>> {
        let mut wanted = vec![
            (labels::MANAGED, "true"),
            (labels::INSTANCE, self.scope.instance()),
        ];
        wanted.extend_from_slice(more);
        label_filters(wanted)
    }

    /// Checks the engine answers; returns its version.
    pub async fn ping(&self) -> Result<String> {
        let version = self
            .docker
            .version()
            .await
            .map_err(EngineError::from_bollard)?;
        Ok(version.version.unwrap_or_default())
    }
}

/// The engine's unix socket for a `DOCKER_HOST` value (where bollard connects too): its path
/// for `unix://…`, the default socket when unset; else the address's scheme, for the error.
fn local_socket(docker_host: Option<&str>) -> std::result::Result<PathBuf, String> {
    match docker_host.map(str::trim).filter(|host| !host.is_empty()) {
        None => Ok(PathBuf::from("/var/run/docker.sock")),
        Some(host) => match host.strip_prefix("unix://") {
            Some(path) if !path.is_empty() => Ok(PathBuf::from(path)),
            // Only the scheme: the rest of an address may carry a user name.
            _ => Err(host.split("://").next().unwrap_or_default().to_owned()),
        },
    }
}

/// `label=value` filters in the engine's query format.
fn label_filters<'a>(
    labels: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> HashMap<String, Vec<String>> {
    let values = labels
        .into_iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect();
    HashMap::from([("label".to_owned(), values)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_local_socket_in_docker_host() {
        let default = Ok(PathBuf::from("/var/run/docker.sock"));
        assert_eq!(local_socket(None), default);
        assert_eq!(local_socket(Some("")), default);
        assert_eq!(
            local_socket(Some("unix:///run/user/1000/docker.sock")),
            Ok(PathBuf::from("/run/user/1000/docker.sock"))
        );
        assert_eq!(
            local_socket(Some("tcp://10.0.0.1:2376")),
            Err("tcp".to_owned())
        );
        assert_eq!(local_socket(Some("ssh://me@host")), Err("ssh".to_owned()));
    }
}
