//! App containers: create with limits and labels, inspect, stop, remove, read logs.

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::{
    ContainerCreateBody, ContainerStateStatusEnum, ContainerUpdateBody, EndpointSettings,
    HealthStatusEnum, HostConfig, HostConfigLogConfig, Mount, MountType, NetworkingConfig,
    RestartPolicy, RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    CreateContainerOptions, ListContainersOptions, LogsOptions, RemoveContainerOptions,
    StopContainerOptions,
};
use futures::StreamExt;
use helvetia_core::security::ContainerSecurity;

use super::{Engine, EngineError, Result};

/// Resource limits enforced by the engine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    pub memory_bytes: Option<i64>,
    /// CPU in billionths of a core (`0.5` cores = 500 000 000).
    pub nano_cpus: Option<i64>,
    pub pids: Option<i64>,
}

/// Everything needed to run one app container. Its `Debug` names the variables but hides
/// their values: they carry the service's secrets in plaintext.
#[derive(Clone)]
pub struct ContainerSpec {
    pub name: String,
    pub image: String,
    pub network: String,
    pub port: Option<u16>,
    pub env: Vec<(String, String)>,
    pub labels: HashMap<String, String>,
    pub limits: Limits,
    pub command: Option<Vec<String>>,
    /// How long the app gets between SIGTERM and SIGKILL.
    pub stop_grace: Duration,
    /// Named volumes to mount: `(volume, path in the container)`.
    pub mounts: Vec<(String, String)>,
    /// Capabilities given back and a read-only root; everything else is dropped.
    pub security: ContainerSecurity,
}

impl std::fmt::Debug for ContainerSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Destructured so a field added later cannot be left out (or leak) unnoticed.
        let ContainerSpec {
            name,
            image,
            network,
            port,
            env,
            labels,
            limits,
            command,
            stop_grace,
            mounts,
            security,
        } = self;
        let env: Vec<(&str, &str)> = env.iter().map(|(k, _)| (k.as_str(), "***")).collect();
        f.debug_struct("ContainerSpec")
            .field("name", name)
            .field("image", image)
            .field("network", network)
            .field("port", port)
            .field("env", &env)
            .field("labels", labels)
            .field("limits", limits)
            .field("command", command)
            .field("stop_grace", stop_grace)
            .field("mounts", mounts)
            .field("security", security)
            .finish()
    }
}

/// What the engine reports about a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerStatus {
    pub id: String,
    pub name: String,
    pub running: bool,
    pub restarting: bool,
    /// Exited or dead: will not come back without a restart.
    pub exited: bool,
    pub exit_code: Option<i64>,
    pub oom_killed: bool,
    pub restart_count: i64,
    /// The container's address on its (first) network.
    pub address: Option<String>,
    /// The main process's pid in the host's pid namespace (0 when not running).
    pub pid: Option<i64>,
    pub labels: HashMap<String, String>,
    /// The Dockerfile `HEALTHCHECK` status, when the image defines one.
    pub health: Option<ImageHealth>,
}

/// The status of an image's own `HEALTHCHECK`, as the engine reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageHealth {
    /// Not checked often enough yet to tell.
    Starting,
    Healthy,
    Unhealthy,
}

impl ImageHealth {
    /// The engine's word for a status (`starting`, `healthy`, `unhealthy`); `None` for
    /// anything else, such as `none` for an image without a health check.
    pub(crate) fn parse(status: &str) -> Option<ImageHealth> {
        match status {
            "starting" => Some(ImageHealth::Starting),
            "healthy" => Some(ImageHealth::Healthy),
            "unhealthy" => Some(ImageHealth::Unhealthy),
            _ => None,
        }
    }
}

/// A piece of a container's output.
#[derive(Debug, Clone)]
pub struct OutputChunk {
    pub stderr: bool,
    pub bytes: bytes::Bytes,
}

fn restart_policy(name: RestartPolicyNameEnum) -> RestartPolicy {
    RestartPolicy {
        name: Some(name),
        maximum_retry_count: None,
    }
}

/// Log rotation for app containers: at most 3 files of 10 MB.
const LOG_MAX_SIZE: &str = "10m";
const LOG_MAX_FILES: &str = "3";

/// Setuid binaries and file capabilities never raise a process's privileges.
const NO_NEW_PRIVILEGES: &str = "no-new-privileges";

impl Engine {
    /// Creates and starts a container; returns its id. The container publishes no host port:
    /// the edge router reaches it over the project network. The engine does not restart it
    /// when it exits ([`Engine::restart_on_exit`] turns that on): until an app is ready, its
    /// exit is the deployment's failure, and its state must keep the exit code.
    pub async fn run_container(&self, spec: &ContainerSpec) -> Result<String> {
        let mut labels = spec.labels.clone();
        labels.extend(self.ownership_labels());
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            labels: Some(labels),
            cmd: spec.command.clone(),
            exposed_ports: spec.port.map(|port| vec![format!("{port}/tcp")]),
            stop_timeout: Some(i64::try_from(spec.stop_grace.as_secs()).unwrap_or(i64::MAX)),
            host_config: Some(HostConfig {
                network_mode: Some(spec.network.clone()),
                restart_policy: Some(restart_policy(RestartPolicyNameEnum::NO)),
                mounts: Some(
                    spec.mounts
                        .iter()
                        .map(|(volume, path)| Mount {
                            source: Some(volume.clone()),
                            target: Some(path.clone()),
                            typ: Some(MountType::VOLUME),
                            ..Mount::default()
                        })
                        .collect(),
                ),
                log_config: Some(HostConfigLogConfig {
                    typ: Some("json-file".into()),
                    config: Some(HashMap::from([
                        ("max-size".to_owned(), LOG_MAX_SIZE.to_owned()),
                        ("max-file".to_owned(), LOG_MAX_FILES.to_owned()),
                    ])),
                }),
                memory: spec.limits.memory_bytes,
                // Equal to the memory limit: the container gets no swap on top of it.
                memory_swap: spec.limits.memory_bytes,
                nano_cpus: spec.limits.nano_cpus,
                pids_limit: spec.limits.pids,
                init: Some(true),
                security_opt: Some(vec![NO_NEW_PRIVILEGES.to_owned()]),
                cap_drop: Some(vec!["ALL".to_owned()]),
                cap_add: Some(
                    spec.security
                        .capabilities()
                        .into_iter()
                        .map(str::to_owned)
                        .collect(),
                ),
                readonly_rootfs: Some(spec.security.read_only_root),
                tmpfs: spec.security.read_only_root.then(|| {
                    HashMap::from([(
                        "/tmp".to_owned(),
                        format!("rw,nosuid,nodev,size={}", ContainerSecurity::TMP_SIZE),
                    )])
                }),
                ..HostConfig::default()
            }),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(
                    spec.network.clone(),
                    EndpointSettings::default(),
                )])),
            }),
            ..ContainerCreateBody::default()
        };
        let options = CreateContainerOptions {
            name: Some(spec.name.clone()),
            ..CreateContainerOptions::default()
        };
        let created = self
            .docker
            .create_container(Some(options), body)
            .await
            .map_err(EngineError::from_bollard)?;
        if let Err(error) = self.docker.start_container(&created.id, None).await {
            // A container that cannot start is useless; do not leave it behind.
            let _ = self.remove_container(&created.id).await;
            return Err(EngineError::from_bollard(error));
        }
        Ok(created.id)
    }

    /// From now on the engine restarts the container whenever it exits, until it is stopped.
    /// A container that has already exited stays exited.
    pub async fn restart_on_exit(&self, id: &str) -> Result<()> {
        let update = ContainerUpdateBody {
            restart_policy: Some(restart_policy(RestartPolicyNameEnum::UNLESS_STOPPED)),
            ..ContainerUpdateBody::default()
        };
        self.docker
            .update_container(id, update)
            .await
            .map_err(EngineError::from_bollard)
    }

    pub async fn inspect_container(&self, id: &str) -> Result<ContainerStatus> {
        let inspect = self
            .docker
            .inspect_container(id, None)
            .await
            .map_err(EngineError::from_bollard)?;
        let state = inspect.state.unwrap_or_default();
        let address = inspect
            .network_settings
            .and_then(|settings| settings.networks)
            .and_then(|networks| {
                networks
                    .into_values()
                    .filter_map(|endpoint| endpoint.ip_address)
                    .find(|ip| !ip.is_empty())
            });
        Ok(ContainerStatus {
            id: inspect.id.unwrap_or_default(),
            name: inspect
                .name
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_owned(),
            running: state.running.unwrap_or(false),
            restarting: state.restarting.unwrap_or(false),
            exited: matches!(
                state.status,
                Some(ContainerStateStatusEnum::EXITED | ContainerStateStatusEnum::DEAD)
            ),
            exit_code: state.exit_code,
            oom_killed: state.oom_killed.unwrap_or(false),
            restart_count: inspect.restart_count.unwrap_or(0),
            address,
            pid: state.pid.filter(|pid| *pid > 0),
            labels: inspect
                .config
                .and_then(|config| config.labels)
                .unwrap_or_default(),
            health: state
                .health
                .and_then(|health| health.status)
                .and_then(|status| match status {
                    HealthStatusEnum::STARTING => Some(ImageHealth::Starting),
                    HealthStatusEnum::HEALTHY => Some(ImageHealth::Healthy),
                    HealthStatusEnum::UNHEALTHY => Some(ImageHealth::Unhealthy),
                    HealthStatusEnum::NONE | HealthStatusEnum::EMPTY => None,
                }),
        })
    }

    /// Starts a stopped container again.
    pub async fn start_existing(&self, id: &str) -> Result<()> {
        match self.docker.start_container(id, None).await {
            Ok(()) => Ok(()),
            // Already running.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 304, ..
            }) => Ok(()),
            Err(error) => Err(EngineError::from_bollard(error)),
        }
    }

    /// Stops a container: SIGTERM, then SIGKILL after `grace`. A missing container counts as
    /// stopped.
    pub async fn stop_container(&self, id: &str, grace: Duration) -> Result<()> {
        let options = StopContainerOptions {
            t: Some(i32::try_from(grace.as_secs()).unwrap_or(i32::MAX)),
            signal: None,
        };
        match self.docker.stop_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404 | 304,
                ..
            }) => Ok(()),
            Err(error) => Err(EngineError::from_bollard(error)),
        }
    }

    /// Removes a container, killing it if it still runs. A missing container is not an error.
    pub async fn remove_container(&self, id: &str) -> Result<()> {
        let options = RemoveContainerOptions {
            force: true,
            v: true,
            link: false,
        };
        match self.docker.remove_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            // Already being removed by an earlier call.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 409,
                message,
            }) if message.contains("already in progress") => Ok(()),
            Err(error) => Err(EngineError::from_bollard(error)),
        }
    }

    /// Every container Helvetia created, running or not, as `(id, name)`, optionally narrowed
    /// by more label filters.
    pub async fn managed_containers(
        &self,
        filters: &[(&str, &str)],
    ) -> Result<Vec<(String, String)>> {
        let options = ListContainersOptions {
            all: true,
            filters: Some(self.owned_filters(filters)),
            ..ListContainersOptions::default()
        };
        let containers = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(EngineError::from_bollard)?;
        Ok(containers
            .into_iter()
            .filter_map(|c| {
                let name = c.names?.first()?.trim_start_matches('/').to_owned();
                Some((c.id?, name))
            })
            .collect())
    }

    /// A container's output as the engine kept it: the last `tail` lines (all when `None`)
    /// written since `since` (Unix seconds), and with `follow` everything it writes from now
    /// on. Each chunk's lines start with the engine's RFC 3339 timestamp.
    pub fn container_output(
        &self,
        id: &str,
        tail: Option<usize>,
        since: Option<i64>,
        follow: bool,
    ) -> impl futures::Stream<Item = Result<OutputChunk>> + use<> {
        let options = LogsOptions {
            stdout: true,
            stderr: true,
            timestamps: true,
            follow,
            since: since.and_then(|s| i32::try_from(s).ok()).unwrap_or(0),
            tail: tail.map_or_else(|| "all".to_owned(), |t| t.to_string()),
            ..LogsOptions::default()
        };
        self.docker.logs(id, Some(options)).map(|chunk| {
            let chunk = chunk.map_err(EngineError::from_bollard)?;
            Ok(match chunk {
                bollard::container::LogOutput::StdErr { message } => OutputChunk {
                    stderr: true,
                    bytes: message,
                },
                other => OutputChunk {
                    stderr: false,
                    bytes: other.into_bytes(),
                },
            })
        })
    }

    /// Waits until a container exits; returns its exit code.
    pub async fn wait_container(&self, id: &str) -> Result<i64> {
        let mut waits = self.docker.wait_container(id, None);
        match waits.next().await {
            Some(Ok(done)) => Ok(done.status_code),
            // The engine reports a non-zero exit as an error carrying the code.
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => Ok(code),
            Some(Err(error)) => Err(EngineError::from_bollard(error)),
            None => Err(EngineError::Api(format!(
                "waiting for container {id} ended without an answer"
            ))),
        }
    }

    /// The last `lines` lines a container wrote to stdout and stderr.
    pub async fn container_logs_tail(&self, id: &str, lines: usize) -> Result<Vec<String>> {
        let options = LogsOptions {
            stdout: true,
            stderr: true,
            tail: lines.to_string(),
            ..LogsOptions::default()
        };
        let mut stream = self.docker.logs(id, Some(options));
        let mut text = String::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(EngineError::from_bollard)?;
            text.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
        }
        Ok(text.lines().map(str::to_owned).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_names_the_variables_but_hides_their_values() {
        let spec = ContainerSpec {
            name: "web".into(),
            image: "app:1".into(),
            network: "net".into(),
            port: Some(8080),
            env: vec![("DATABASE_URL".into(), "postgres://u:hunter2@db/x".into())],
            labels: HashMap::new(),
            limits: Limits::default(),
            command: None,
            stop_grace: Duration::from_secs(10),
            mounts: Vec::new(),
            security: ContainerSecurity::default(),
        };
        for shown in [format!("{spec:?}"), format!("{spec:#?}")] {
            assert!(shown.contains("DATABASE_URL"), "{shown}");
            assert!(shown.contains("***"), "{shown}");
            assert!(!shown.contains("hunter2"), "{shown}");
        }
    }
}
