//! The containers of a service as jobs and watchers act on them: draining, retiring and
//! removing them, and recording what happened to them. The deploy and stop jobs, the
//! reconciler and the health monitor share these, so a container leaves the same way whoever
//! retires it.

use std::time::{Duration, Instant};

use helvetia_core::container::{ContainerRecord, ContainerState, Health, ServiceEventKind};
use helvetia_core::runtime::DeployTimeouts;
use helvetia_engine::probe;
use helvetia_store::StoreError;

use crate::platform::Platform;

/// An engine id or image id as the log shows it: its first 12 hex digits.
pub(crate) fn short_id(id: &str) -> &str {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    &id[..id.len().min(12)]
}

/// What the engine knows the container by: its id once started, else the name Helvetia gave it.
pub(crate) fn engine_ref(container: &ContainerRecord) -> &str {
    container.engine_id.as_deref().unwrap_or(&container.name)
}

/// Drains and retires a service's draining containers, one after the other, with the
/// service's own drain timeout and stop grace. `retired` hears of each once it is gone, with
/// how its drain went.
pub(crate) async fn retire_draining<Retired>(
    platform: &Platform,
    service_id: i64,
    timeouts: &DeployTimeouts,
    mut retired: impl FnMut(ContainerRecord, String) -> Retired,
) -> Result<(), StoreError>
where
    Retired: Future<Output = ()>,
{
    let draining = platform
        .store
        .service_containers(service_id, ContainerState::Draining)
        .await?;
    for container in draining {
        let drained = drain(platform, &container, timeouts.drain).await;
        retire_container(platform, &container, timeouts.stop_grace).await;
        retired(container, drained).await;
    }
    Ok(())
}

/// Waits until a container has no open connections on its port, at most `timeout`. Says how
/// it went, for the log.
async fn drain(platform: &Platform, container: &ContainerRecord, timeout: Duration) -> String {
    /// The connection count must stay at zero this long: a request the edge router routed just
    /// before the switch may still be opening its connection.
    const QUIET: Duration = Duration::from_millis(300);
    const POLL: Duration = Duration::from_millis(50);
    let started = Instant::now();
    let Some(engine_id) = &container.engine_id else {
        return "never started".into();
    };
    let Some(port) = container.port else {
        return "a worker serves no connections: stopped without draining".into();
    };
    let pid = match platform.engine.inspect_container(engine_id).await {
        Ok(status) if status.running => status.pid,
        _ => return "already stopped".into(),
    };
    let Some(pid) = pid else {
        return "already stopped".into();
    };
    let mut quiet_since: Option<Instant> = None;
    loop {
        match probe::open_connections(pid, port) {
            Ok(0) => {
                let since = *quiet_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= QUIET {
                    return format!("drained in {:.2}s", started.elapsed().as_secs_f64());
                }
            }
            Ok(_) => quiet_since = None,
            Err(error) => {
                // Without a view of its connections, wait the whole drain timeout: safe, slow.
                tracing::warn!(%error, "cannot count connections; waiting the full drain timeout");
                tokio::time::sleep(timeout.saturating_sub(started.elapsed())).await;
                return format!("waited the drain timeout ({}s)", timeout.as_secs());
            }
        }
        if started.elapsed() >= timeout {
            return format!(
                "drain timeout ({}s) reached with connections still open",
                timeout.as_secs()
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Stops (SIGTERM, then SIGKILL after the grace period) and removes a container, and records
/// it stopped.
async fn retire_container(platform: &Platform, container: &ContainerRecord, grace: Duration) {
    let target = engine_ref(container);
    if let Err(error) = platform.engine.stop_container(target, grace).await {
        tracing::warn!(container = %container.name, %error, "stopping failed; removing anyway");
    }
    if let Err(error) = platform.engine.remove_container(target).await {
        tracing::error!(container = %container.name, %error, "removing a container failed");
        return;
    }
    if let Err(error) = platform
        .store
        .set_container_state(container.id, ContainerState::Stopped)
        .await
    {
        tracing::error!(container = %container.name, %error, "recording a stopped container failed");
    }
}

/// Removes every container a deployment started and records them failed.
pub(crate) async fn remove_deployment_containers(platform: &Platform, deployment_id: i64) {
    let containers = match platform.store.deployment_containers(deployment_id).await {
        Ok(containers) => containers,
        Err(error) => {
            tracing::error!(deployment = deployment_id, %error, "listing a deployment's containers failed");
            return;
        }
    };
    for container in containers.into_iter().filter(|c| c.state.is_active()) {
        if let Err(error) = platform
            .engine
            .remove_container(engine_ref(&container))
            .await
        {
            tracing::error!(container = %container.name, %error, "removing a container failed");
        }
        if let Err(error) = platform
            .store
            .set_container_state(container.id, ContainerState::Failed)
            .await
        {
            tracing::error!(container = %container.name, %error, "recording a removed container failed");
        }
    }
}

/// Records an event of a container in its service's history, and its new health if it
/// changed.
pub(crate) async fn record_event(
    platform: &Platform,
    container: &ContainerRecord,
    kind: ServiceEventKind,
    message: &str,
    health: Option<Health>,
) -> Result<(), StoreError> {
    if let Some(health) = health {
        platform
            .store
            .set_container_health(container.id, health)
            .await?;
    }
    tracing::info!(container = %container.name, %kind, %message, "container event");
    platform
        .store
        .record_event(container.service_id, Some(&container.name), kind, message)
        .await
}
