//! A service's life after its first deploy: roll back, restart, stop, start, and its events
//! (the operations are in [`crate::usecases::lifecycle`]).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use helvetia_api_types::{Deployment, Rollback, ServiceEvent};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiResult, ErrorBody};
use super::extract::ServicePath;
use super::json::{ApiJson, ApiQuery};
use crate::usecases::lifecycle;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(rollback))
        .routes(routes!(restart))
        .routes(routes!(stop))
        .routes(routes!(start))
        .routes(routes!(events))
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
    ServicePath(service): ServicePath,
    ApiJson(body): ApiJson<Rollback>,
) -> ApiResult<(StatusCode, Json<Deployment>)> {
    let deployment = lifecycle::rollback(&state.app, &service, body).await?;
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
    ServicePath(service): ServicePath,
) -> ApiResult<(StatusCode, Json<Deployment>)> {
    let deployment = lifecycle::restart(&state.app, &service).await?;
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
    ServicePath(service): ServicePath,
) -> ApiResult<StatusCode> {
    lifecycle::stop(&state.app, &service).await?;
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
    ServicePath(service): ServicePath,
) -> ApiResult<(StatusCode, Json<Deployment>)> {
    let deployment = lifecycle::start(&state.app, &service).await?;
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
    ServicePath(service): ServicePath,
    ApiQuery(page): ApiQuery<EventPage>,
) -> ApiResult<Json<Vec<ServiceEvent>>> {
    Ok(Json(
        lifecycle::events(&state.app, &service, page.limit).await?,
    ))
}
