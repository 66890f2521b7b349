//! The stop job: take a service off its route, then drain and remove its containers.
//!
//! Stopping twice is stopping: a rerun after a crash finds nothing live and only finishes
//! whatever drain was left.

use helvetia_core::container::{ContainerRecord, ServiceEventKind};
use helvetia_core::deployment::DeploymentStatus;
use helvetia_core::service::Service;

use super::{JobContext, JobOutcome};
use crate::containers;
use crate::platform::Platform;

pub async fn run(context: &JobContext) -> JobOutcome {
    let platform = &context.platform;
    let Some(service_id) = context.job.service_id else {
        return JobOutcome::Failed("stop job without a service".into());
    };
    let service = match platform.store.service_by_id(service_id).await {
        Ok(service) => service,
        Err(error) => return JobOutcome::Failed(error.to_string()),
    };
    match take_down(platform, &service, "stopped on request").await {
        Ok(()) => JobOutcome::Succeeded,
        Err(error) => JobOutcome::Failed(error),
    }
}

/// Retires the service's live deployment and publishes its route without it, then drains and
/// removes its containers, recording each as stopped `why`.
pub(super) async fn take_down(
    platform: &Platform,
    service: &Service,
    why: &str,
) -> Result<(), String> {
    {
        let routing = platform.routing().await;
        let live = platform
            .store
            .live_deployment(service.id)
            .await
            .map_err(|e| e.to_string())?;
        if let Some(live) = live {
            platform
                .store
                .transition_deployment(
                    live.id,
                    DeploymentStatus::Live,
                    DeploymentStatus::Retired,
                    why,
                )
                .await
                .map_err(|e| e.to_string())?;
        }
        platform
            .publish_routes_locked(&routing)
            .await
            .map_err(|error| format!("taking the service off its route failed: {error}"))?;
    }
    containers::retire_draining(
        platform,
        service.id,
        &service.runtime.timeouts,
        move |container: ContainerRecord, drained: String| async move {
            let message = format!("{why} ({drained})");
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
    .await
    .map_err(|error| error.to_string())
}
