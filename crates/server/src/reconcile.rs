//! Reconciliation: making the engine and the edge router agree with the store again.
//!
//! The store is the source of truth. At start-up (after a crash, an upgrade, or a reboot) and
//! then periodically and after deletions, the reconciler:
//! 1. rewrites generated hostnames for the current base domain (start-up only);
//! 2. refreshes container addresses from the engine (they change when a container restarts);
//! 3. publishes the routing table rendered from the store, and waits for confirmation;
//! 4. finishes drains a crash interrupted (start-up only: at run time drains belong to jobs);
//! 5. removes containers Helvetia created that the store no longer wants (listing the engine
//!    before reading the store, so a deploy running meanwhile keeps its containers), then
//!    volumes no service has any more.
//!
//! Step 3 comes before 4 and 5, so traffic has moved away from anything before it is removed.
//! Deployments left half-way are not handled here: their jobs are recovered by the queue and
//! fail themselves as interrupted.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use helvetia_core::container::{ContainerRecord, ContainerState};
use helvetia_core::runtime::DeployTimeouts;
use helvetia_engine::docker::EngineError;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::containers;
use crate::failpoint::{self, Failpoint};
use crate::platform::{Platform, PublishError};

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error(transparent)]
    Store(#[from] helvetia_store::StoreError),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// How often the reconciler runs when nothing asks for it.
pub const INTERVAL: Duration = Duration::from_secs(60);

/// The first reconciliation of a server process.
pub async fn at_startup(platform: &Platform) -> Result<(), ReconcileError> {
    platform
        .store
        .sync_generated_hostnames(&platform.settings.base_domain)
        .await?;
    // The edge router may be down (an external Traefik not started yet): serve anyway, and
    // let the periodic reconciliation publish the routes once it is back.
    if let Err(error) = converge(platform).await {
        tracing::error!(%error, "start-up reconciliation failed; retrying periodically");
    }
    let mut services: Vec<i64> = platform
        .store
        .active_containers()
        .await?
        .into_iter()
        .filter(|container| container.state == ContainerState::Draining)
        .map(|container| container.service_id)
        .collect();
    services.sort_unstable();
    services.dedup();
    for service_id in services {
        // Each service drains with its own timeouts, as its stop or deploy would have.
        let timeouts = match platform.store.service_by_id(service_id).await {
            Ok(service) => service.runtime.timeouts,
            Err(error) => {
                tracing::warn!(service = service_id, %error, "reading a service failed; draining with the default timeouts");
                DeployTimeouts::default()
            }
        };
        containers::retire_draining(
            platform,
            service_id,
            &timeouts,
            move |container: ContainerRecord, drained: String| async move {
                tracing::info!(container = %container.name, %drained, "finished an interrupted drain");
            },
        )
        .await?;
    }
    Ok(())
}

/// Steps 2, 3 and 5: safe to run at any time, also while deployments run.
pub async fn converge(platform: &Platform) -> Result<(), ReconcileError> {
    let active = platform.store.active_containers().await?;
    for container in &active {
        let Some(engine_id) = &container.engine_id else {
            continue;
        };
        match platform.engine.inspect_container(engine_id).await {
            Ok(status) => {
                if let Some(address) = status.address
                    && platform
                        .store
                        .update_container_address(engine_id, &address)
                        .await?
                {
                    tracing::info!(container = %container.name, %address, "container address changed");
                }
            }
            Err(EngineError::NotFound(_)) if container.state == ContainerState::Serving => {
                tracing::error!(container = %container.name, "a serving container is gone from the engine");
            }
            Err(EngineError::NotFound(_)) => {}
            Err(error) => return Err(error.into()),
        }
    }
    platform.publish_routes().await?;
    failpoint::reached(Failpoint::ReconcileCleanup).await;
    remove_unwanted_containers(platform).await?;
    platform.remove_unused_volumes().await?;
    Ok(())
}

/// Removes this installation's containers that the store does not want.
///
/// The engine is listed before the store is read, never the other way round: a deploy records
/// each container (a replica, a release command) in the store before it creates it in the
/// engine, so whatever the listing holds that a running deploy started is in the store by the
/// time it is read — however long the routing step before this took. Containers of a
/// deployment still in progress stay whatever their state: they are its job's to remove.
async fn remove_unwanted_containers(platform: &Platform) -> Result<(), ReconcileError> {
    let present = platform.engine.managed_containers(&[]).await?;
    let wanted: HashSet<String> = platform
        .store
        .wanted_container_names()
        .await?
        .into_iter()
        .collect();
    for (id, name) in present {
        if !wanted.contains(&name) {
            tracing::info!(container = %name, "removing a container the store does not know");
            platform.engine.remove_container(&id).await?;
        }
    }
    Ok(())
}

/// Runs [`converge`] every [`INTERVAL`] and whenever `trigger` is notified, until shutdown.
pub async fn run_periodically(
    platform: Arc<Platform>,
    trigger: Arc<Notify>,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = trigger.notified() => {}
            () = tokio::time::sleep(INTERVAL) => {}
        }
        if let Err(error) = converge(&platform).await {
            tracing::error!(%error, "reconciliation failed");
        }
    }
}
