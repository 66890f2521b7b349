//! The stop job: take a service off its route, then drain and remove its containers.
//!
//! Stopping twice is stopping: a rerun after a crash finds nothing live and only finishes
//! whatever drain was left.

use helvetia_core::container::{ContainerRecord, ServiceEventKind};
use helvetia_core::deployment::DeploymentStatus;

use super::{JobContext, JobOutcome};
use crate::containers;

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
    let retired = containers::retire_draining(
        platform,
        service_id,
        &service.runtime.timeouts,
        move |container: ContainerRecord, drained: String| async move {
            let message = format!("stopped on request ({drained})");
            if let Err(error) = containers::record_event(
                platform,
                &container,
                ServiceEventKind::Stopped,
                &message,
                None,
            )
            .await
            {
                tracing::error!(%error, "recording an event failed");
            }
        },
    )
    .await;
    if let Err(error) = retired {
        return JobOutcome::Failed(error.to_string());
    }
    JobOutcome::Succeeded
}
