//! The stop job: take a service off its route, then drain and remove its containers.
//!
//! Stopping twice is stopping: a rerun after a crash finds nothing live and only finishes
//! whatever drain was left.

use helvetia_core::container::ContainerState;
use helvetia_core::deployment::DeploymentStatus;

use super::{JobContext, JobOutcome, drain, retire_container};

pub async fn run(context: &JobContext) -> JobOutcome {
    let platform = &context.platform;
    let Some(service_id) = context.job.service_id else {
        return JobOutcome::Failed("stop job without a service".into());
    };
    let service = match platform.store.service_by_id(service_id).await {
        Ok(service) => service,
        Err(error) => return JobOutcome::Failed(error.to_string()),
    };
    {
        let routing = platform.routing().await;
        match platform.store.live_deployment(service_id).await {
            Ok(Some(live)) => {
                if let Err(error) = platform
                    .store
                    .transition_deployment(
                        live.id,
                        DeploymentStatus::Live,
                        DeploymentStatus::Retired,
                        "stopped on request",
                    )
                    .await
                {
                    return JobOutcome::Failed(error.to_string());
                }
            }
            Ok(None) => {}
            Err(error) => return JobOutcome::Failed(error.to_string()),
        }
        if let Err(error) = platform.publish_routes_locked(&routing).await {
            return JobOutcome::Failed(format!("taking the service off its route failed: {error}"));
        }
    }
    let draining = match platform
        .store
        .service_containers(service_id, ContainerState::Draining)
        .await
    {
        Ok(draining) => draining,
        Err(error) => return JobOutcome::Failed(error.to_string()),
    };
    for container in draining {
        let drained = drain(platform, &container, service.runtime.timeouts.drain).await;
        retire_container(platform, &container, service.runtime.timeouts.stop_grace).await;
        let message = format!("stopped on request ({drained})");
        if let Err(error) = platform
            .store
            .record_event(service_id, Some(&container.name), "stopped", &message)
            .await
        {
            tracing::error!(%error, "recording an event failed");
        }
    }
    JobOutcome::Succeeded
}
