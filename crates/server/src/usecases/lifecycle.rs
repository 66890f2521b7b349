//! A service's life after its first deploy: roll back, restart, stop, start, and its events.
//!
//! Each runs as a job through the same queue (and, for everything that starts containers,
//! the same zero-downtime pipeline) as a deploy, so none overlaps a deploy of the service.

use helvetia_api_types::Rollback;
use helvetia_core::audit::AuditAction;
use helvetia_core::auth::Scope;
use helvetia_core::container::ServiceEvent;
use helvetia_core::deployment::{Deployment, DeploymentCause, DeploymentStatus};
use helvetia_core::job::JobKind;

use super::access::OwnedService;
use super::deployments::redeploy_image;
use super::{App, Result, UseCaseError};

/// Runs an earlier deployment's image again (no rebuild) with the current settings: the one
/// asked for, else the most recent successful deployment of another commit than the live one.
pub async fn rollback(app: &App, service: &OwnedService, input: Rollback) -> Result<Deployment> {
    let actor = service.act(Scope::Deploy)?;
    let target = match input.deployment {
        Some(id) => {
            let target = app.store.deployment(actor.team, id).await?;
            if target.service_id != service.id {
                return Err(UseCaseError::NotFound(format!(
                    "deployment #{id} of {}/{}",
                    service.project, service.name
                )));
            }
            if !matches!(
                target.status,
                DeploymentStatus::Live | DeploymentStatus::Retired
            ) {
                return Err(UseCaseError::Conflict(format!(
                    "deployment #{id} never went live ({}); only a deployment that served can be rolled back to",
                    target.status
                )));
            }
            target
        }
        None => {
            let live = app.store.live_deployment(service.id).await?;
            let current_commit = live.as_ref().and_then(|d| d.commit_sha.as_deref());
            app.store
                .previous_successful_deployment(service.id, current_commit)
                .await?
                .ok_or_else(|| {
                    UseCaseError::Conflict(
                        "there is no earlier successful deployment of another commit to roll back to".into(),
                    )
                })?
        }
    };
    redeploy_image(app, actor, service, &target, DeploymentCause::Rollback).await
}

/// New containers from the live image, switched with zero downtime.
pub async fn restart(app: &App, service: &OwnedService) -> Result<Deployment> {
    let actor = service.act(Scope::Deploy)?;
    let live = app
        .store
        .live_deployment(service.id)
        .await?
        .ok_or_else(|| {
            UseCaseError::Conflict("the service is not running; start or deploy it".into())
        })?;
    redeploy_image(app, actor, service, &live, DeploymentCause::Restart).await
}

/// Takes the service off its route, drains and removes its containers. Its deployments and
/// images stay, for [`start`].
pub async fn stop(app: &App, service: &OwnedService) -> Result<()> {
    let actor = service.act(Scope::Deploy)?;
    app.store
        .enqueue_service_job(actor, service, JobKind::Stop, AuditAction::ServiceStop)
        .await?;
    app.worker.wake();
    Ok(())
}

/// Starts a stopped service from its last successful deployment's image.
pub async fn start(app: &App, service: &OwnedService) -> Result<Deployment> {
    let actor = service.act(Scope::Deploy)?;
    if app.store.live_deployment(service.id).await?.is_some() {
        return Err(UseCaseError::Conflict(
            "the service is already running".into(),
        ));
    }
    let last = app
        .store
        .previous_successful_deployment(service.id, None)
        .await?
        .ok_or_else(|| {
            UseCaseError::Conflict("the service was never deployed; deploy it first".into())
        })?;
    redeploy_image(app, actor, service, &last, DeploymentCause::Start).await
}

/// A service's events, newest first: at most `limit` (default 50, at most 500).
pub async fn events(
    app: &App,
    service: &OwnedService,
    limit: Option<i64>,
) -> Result<Vec<ServiceEvent>> {
    let limit = limit.unwrap_or(50).clamp(1, 500);
    Ok(app.store.service_events(service.id, limit).await?)
}
