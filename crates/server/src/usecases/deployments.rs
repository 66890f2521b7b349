//! Deployments: request one (a build of a branch or commit, or a redeploy of an image that
//! was built before), read their history, cancel one.

use helvetia_api_types::{CreateDeployment, DeploymentDetail};
use helvetia_core::auth::{Actor, Caller, Scope};
use helvetia_core::deployment::{Deployment, DeploymentCause, DeploymentKind};
use helvetia_core::git::{CommitSha, GitRef};
use helvetia_core::service::Service;
use helvetia_core::validation::FieldErrors;
use helvetia_store::deployments::DeploymentRequest;

use super::access::{self, OwnedService};
use super::{App, Result, UseCaseError};

/// Queues a build of the service's branch (or of the branch and commit asked for).
pub async fn create(
    app: &App,
    service: &OwnedService,
    input: CreateDeployment,
) -> Result<Deployment> {
    let actor = service.act(Scope::Deploy)?;
    if let Some(of) = &service.preview {
        return Err(UseCaseError::Conflict(format!(
            "`{}` is a preview of `{}`: it deploys its pull request's or branch's head \
             (`helvetia previews deploy` or `approve`)",
            service.name, of.parent
        )));
    }
    let mut errors = FieldErrors::new();
    let branch = errors.check_optional("branch", input.branch.as_deref(), GitRef::parse);
    let commit = errors.check_optional("commit", input.commit.as_deref(), CommitSha::parse);
    let (branch, commit) = errors.finish(|| Some((branch?, commit?)))?;
    let request = DeploymentRequest::Build {
        git_ref: branch.unwrap_or_else(|| service.settings.branch.clone()),
        commit,
    };
    enqueue(app, actor, service, &request).await
}

/// Queues a build of the service's branch — at `commit` when given — for a verified push or a
/// preview (`actor` is the hook's, or whoever asked). With `cancel_running`, a build of another
/// commit that has started is cancelled: the newest push is what should go live, soonest.
pub(super) async fn deploy_commit(
    app: &App,
    actor: &Actor,
    service: &Service,
    commit: Option<CommitSha>,
    cancel_running: bool,
) -> Result<Deployment> {
    let request = DeploymentRequest::Build {
        git_ref: service.settings.branch.clone(),
        commit: commit.clone(),
    };
    let deployment = enqueue(app, actor, service, &request).await?;
    if cancel_running {
        let recent = app.store.list_deployments(service, None, 20).await?;
        let asked = commit.as_ref().map(CommitSha::as_str);
        let older_builds = recent.iter().filter(|older| {
            older.id < deployment.id
                && older.kind == DeploymentKind::Build
                && older.status.is_in_progress()
                && (asked.is_none() || older.requested_commit.as_deref() != asked)
        });
        for older in older_builds {
            // One that finished meanwhile is not an error: there is nothing left to cancel.
            if app.store.cancel_deployment(actor, older.id).await.is_ok() {
                app.worker.cancel_deployment(older.id);
            }
        }
    }
    Ok(deployment)
}

/// Stores the deployment and its job (superseding queued ones of the service), then wakes
/// the worker.
async fn enqueue(
    app: &App,
    actor: &Actor,
    service: &Service,
    request: &DeploymentRequest,
) -> Result<Deployment> {
    let deployment = app.store.create_deployment(actor, service, request).await?;
    app.worker.wake();
    Ok(deployment)
}

/// Queues a deployment that runs `source`'s image with the service's current settings:
/// what a rollback, a restart, a start and every settings change share.
pub(super) async fn redeploy_image(
    app: &App,
    actor: &Actor,
    service: &Service,
    source: &Deployment,
    cause: DeploymentCause,
) -> Result<Deployment> {
    let image = source.image.clone().ok_or_else(|| {
        UseCaseError::Conflict(format!("deployment #{} has no image to run", source.id))
    })?;
    let request = DeploymentRequest::Image {
        source_deployment_id: source.id,
        image,
        cause,
    };
    enqueue(app, actor, service, &request).await
}

/// A service's deployments, newest first: at most `limit` (default 20, at most 200), older
/// than `before` when given.
pub async fn list(
    app: &App,
    service: &OwnedService,
    before: Option<i64>,
    limit: Option<i64>,
) -> Result<Vec<Deployment>> {
    let limit = limit.unwrap_or(20).clamp(1, 200);
    Ok(app.store.list_deployments(service, before, limit).await?)
}

/// A deployment of the caller's, by id.
pub async fn find(app: &App, caller: &Caller, id: i64) -> Result<Deployment> {
    Ok(access::deployment(app, caller, id).await?.deployment)
}

/// A deployment with every state change it went through.
pub async fn get(app: &App, caller: &Caller, id: i64) -> Result<DeploymentDetail> {
    let deployment = find(app, caller, id).await?;
    let transitions = app.store.transitions(id).await?;
    Ok(DeploymentDetail {
        deployment,
        transitions,
    })
}

/// Cancels a deployment that has not finished: a queued one at once, a running one at its
/// next step.
pub async fn cancel(app: &App, caller: &Caller, id: i64) -> Result<Deployment> {
    let owned = access::deployment(app, caller, id).await?;
    let deployment = app
        .store
        .cancel_deployment(owned.act(Scope::Deploy)?, id)
        .await?;
    app.worker.cancel_deployment(id);
    Ok(deployment)
}
