//! A service's life after its first deploy: roll back, restart, stop, start, and its events.
//!
//! Each of these runs as a job through the same queue (and, for everything that starts
//! containers, the same zero-downtime pipeline) as a deploy, so they never overlap with a
//! deploy of the same service.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use helvetia_core::audit::AuditAction;
use helvetia_core::auth::Caller;
use helvetia_core::container::ServiceEvent;
use helvetia_core::deployment::{Deployment, DeploymentCause, DeploymentStatus};
use helvetia_core::job::JobKind;
use helvetia_core::service::Service;
use helvetia_store::deployments::DeploymentRequest;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Authenticated;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::json::{ApiJson, ApiPath, ApiQuery};
use super::services::owned_service;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(rollback))
        .routes(routes!(restart))
        .routes(routes!(stop))
        .routes(routes!(start))
        .routes(routes!(events))
}

/// Queues a deployment that runs `source`'s image with the service's current settings.
pub async fn redeploy_image(
    state: &AppState,
    caller: &Caller,
    service: &Service,
    source: &Deployment,
    cause: DeploymentCause,
) -> Result<Deployment, ApiError> {
    let image = source.image.clone().ok_or_else(|| {
        ApiError::Conflict(format!("deployment #{} has no image to run", source.id))
    })?;
    let request = DeploymentRequest::Image {
        source_deployment_id: source.id,
        image,
        cause,
    };
    let deployment = state
        .store
        .create_deployment(caller, service, &request)
        .await?;
    state.worker.wake();
    Ok(deployment)
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rollback {
    /// The deployment whose image to run again. Default: the most recent successful
    /// deployment of another commit than the live one (restarts and redeploys of the live
    /// version are skipped).
    deployment: Option<i64>,
}

/// Roll back: run an earlier deployment's image (no rebuild) with the current settings,
/// through the usual zero-downtime switch.
#[utoipa::path(
    post, path = "/api/v1/projects/{project}/services/{service}/rollback", tag = "services",
    params(
        ("project" = helvetia_core::name::ProjectName, Path, description = "Project name"),
        ("service" = helvetia_core::name::ServiceName, Path, description = "Service name"),
    ),
    request_body = Rollback,
    security(("token" = ["deploy"])),
    responses(
        (status = ACCEPTED, body = Deployment),
        (status = CONFLICT, body = ErrorBody, description = "Nothing to roll back to"),
    )
)]
async fn rollback(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath((project, service)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<Rollback>,
) -> ApiResult<(StatusCode, Json<Deployment>)> {
    let service = owned_service(&state, caller.team, &project, &service).await?;
    let target = match body.deployment {
        Some(id) => {
            let target = state.store.deployment(caller.team, id).await?;
            if target.service_id != service.id {
                return Err(ApiError::NotFound(format!(
                    "deployment #{id} of {}/{}",
                    service.project, service.name
                )));
            }
            if !matches!(
                target.status,
                DeploymentStatus::Live | DeploymentStatus::Retired
            ) {
                return Err(ApiError::Conflict(format!(
                    "deployment #{id} never went live ({}); only a deployment that served can be rolled back to",
                    target.status
                )));
            }
            target
        }
        None => {
            let live = state.store.live_deployment(service.id).await?;
            let current_commit = live.as_ref().and_then(|d| d.commit_sha.as_deref());
            state
                .store
                .previous_successful_deployment(service.id, current_commit)
                .await?
                .ok_or_else(|| {
                    ApiError::Conflict(
                        "there is no earlier successful deployment of another commit to roll back to".into(),
                    )
                })?
        }
    };
    let deployment = redeploy_image(
        &state,
        &caller,
        &service,
        &target,
        DeploymentCause::Rollback,
    )
    .await?;
    Ok((StatusCode::ACCEPTED, Json(deployment)))
}

/// Restart: new containers from the live image, switched with zero downtime.
#[utoipa::path(
    post, path = "/api/v1/projects/{project}/services/{service}/restart", tag = "services",
    params(
        ("project" = helvetia_core::name::ProjectName, Path, description = "Project name"),
        ("service" = helvetia_core::name::ServiceName, Path, description = "Service name"),
    ),
    security(("token" = ["deploy"])),
    responses(
        (status = ACCEPTED, body = Deployment),
        (status = CONFLICT, body = ErrorBody, description = "The service is not running"),
    )
)]
async fn restart(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath((project, service)): ApiPath<(String, String)>,
) -> ApiResult<(StatusCode, Json<Deployment>)> {
    let service = owned_service(&state, caller.team, &project, &service).await?;
    let live = state
        .store
        .live_deployment(service.id)
        .await?
        .ok_or_else(|| {
            ApiError::Conflict("the service is not running; start or deploy it".into())
        })?;
    let deployment =
        redeploy_image(&state, &caller, &service, &live, DeploymentCause::Restart).await?;
    Ok((StatusCode::ACCEPTED, Json(deployment)))
}

/// Stop: take the service off its route, drain and remove its containers. Its deployments
/// and images stay, for `start`.
#[utoipa::path(
    post, path = "/api/v1/projects/{project}/services/{service}/stop", tag = "services",
    params(
        ("project" = helvetia_core::name::ProjectName, Path, description = "Project name"),
        ("service" = helvetia_core::name::ServiceName, Path, description = "Service name"),
    ),
    security(("token" = ["deploy"])),
    responses((status = ACCEPTED))
)]
async fn stop(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath((project, service)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    let service = owned_service(&state, caller.team, &project, &service).await?;
    state
        .store
        .enqueue_service_job(&caller, &service, JobKind::Stop, AuditAction::ServiceStop)
        .await?;
    state.worker.wake();
    Ok(StatusCode::ACCEPTED)
}

/// Start a stopped service: run its last successful deployment's image again.
#[utoipa::path(
    post, path = "/api/v1/projects/{project}/services/{service}/start", tag = "services",
    params(
        ("project" = helvetia_core::name::ProjectName, Path, description = "Project name"),
        ("service" = helvetia_core::name::ServiceName, Path, description = "Service name"),
    ),
    security(("token" = ["deploy"])),
    responses(
        (status = ACCEPTED, body = Deployment),
        (status = CONFLICT, body = ErrorBody, description = "Already running, or never deployed"),
    )
)]
async fn start(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath((project, service)): ApiPath<(String, String)>,
) -> ApiResult<(StatusCode, Json<Deployment>)> {
    let service = owned_service(&state, caller.team, &project, &service).await?;
    if state.store.live_deployment(service.id).await?.is_some() {
        return Err(ApiError::Conflict("the service is already running".into()));
    }
    let last = state
        .store
        .previous_successful_deployment(service.id, None)
        .await?
        .ok_or_else(|| {
            ApiError::Conflict("the service was never deployed; deploy it first".into())
        })?;
    let deployment =
        redeploy_image(&state, &caller, &service, &last, DeploymentCause::Start).await?;
    Ok((StatusCode::ACCEPTED, Json(deployment)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct EventPage {
    /// At most this many events, newest first (default 50, at most 500).
    limit: Option<i64>,
}

/// A service's events: health changes, restarts, exits, OOM kills, address changes.
#[utoipa::path(
    get, path = "/api/v1/projects/{project}/services/{service}/events", tag = "services",
    params(
        ("project" = helvetia_core::name::ProjectName, Path, description = "Project name"),
        ("service" = helvetia_core::name::ServiceName, Path, description = "Service name"),
        EventPage,
    ),
    security(("token" = ["read"])),
    responses((status = OK, body = Vec<ServiceEvent>))
)]
async fn events(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath((project, service)): ApiPath<(String, String)>,
    ApiQuery(page): ApiQuery<EventPage>,
) -> ApiResult<Json<Vec<ServiceEvent>>> {
    let service = owned_service(&state, caller.team, &project, &service).await?;
    let limit = page.limit.unwrap_or(50).clamp(1, 500);
    Ok(Json(state.store.service_events(service.id, limit).await?))
}
