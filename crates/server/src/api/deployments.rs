//! Deployments: request one, follow its history, cancel it.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use helvetia_api_types::{CreateDeployment, Deployment, DeploymentDetail};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Authenticated;
use super::error::{ApiResult, ErrorBody};
use super::extract::ServicePath;
use super::json::{ApiJson, ApiPath, ApiQuery};
use crate::usecases::deployments;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_deployments, create_deployment))
        .routes(routes!(get_deployment))
        .routes(routes!(cancel_deployment))
}

/// Deploy a service: enqueue a build of its branch (or of a given commit).
#[utoipa::path(
    post, path = "/api/v1/projects/{project}/services/{service}/deployments", tag = "deployments",
    params(
        ("project" = helvetia_core::name::ProjectName, Path, description = "Project name"),
        ("service" = helvetia_core::name::ServiceName, Path, description = "Service name"),
    ),
    request_body = CreateDeployment,
    security(("token" = ["deploy"])),
    responses(
        (status = ACCEPTED, body = Deployment, description = "Queued"),
    )
)]
async fn create_deployment(
    State(state): State<AppState>,
    ServicePath(service): ServicePath,
    ApiJson(body): ApiJson<CreateDeployment>,
) -> ApiResult<(StatusCode, Json<Deployment>)> {
    let deployment = deployments::create(&state.app, &service, body).await?;
    Ok((StatusCode::ACCEPTED, Json(deployment)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct Page {
    /// At most this many entries (default 20, at most 200).
    pub limit: Option<i64>,
    /// Only entries older than this id.
    pub before: Option<i64>,
}

/// A service's deployments, newest first.
#[utoipa::path(
    get, path = "/api/v1/projects/{project}/services/{service}/deployments", tag = "deployments",
    params(
        ("project" = helvetia_core::name::ProjectName, Path, description = "Project name"),
        ("service" = helvetia_core::name::ServiceName, Path, description = "Service name"),
        Page,
    ),
    security(("token" = ["read"])),
    responses((status = OK, body = Vec<Deployment>))
)]
async fn list_deployments(
    State(state): State<AppState>,
    ServicePath(service): ServicePath,
    ApiQuery(page): ApiQuery<Page>,
) -> ApiResult<Json<Vec<Deployment>>> {
    let deployments = deployments::list(&state.app, &service, page.before, page.limit).await?;
    Ok(Json(deployments))
}

/// Show a deployment and its history.
#[utoipa::path(
    get, path = "/api/v1/deployments/{id}", tag = "deployments",
    params(("id" = i64, Path, description = "Deployment id")),
    security(("token" = ["read"])),
    responses((status = OK, body = DeploymentDetail))
)]
async fn get_deployment(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<DeploymentDetail>> {
    Ok(Json(deployments::get(&state.app, &caller, id).await?))
}

/// Cancel a deployment that has not finished. A queued one is cancelled at once; a running
/// one stops at its next step and records `cancelled`.
#[utoipa::path(
    post, path = "/api/v1/deployments/{id}/cancel", tag = "deployments",
    params(("id" = i64, Path, description = "Deployment id")),
    security(("token" = ["deploy"])),
    responses(
        (status = ACCEPTED, body = Deployment),
        (status = CONFLICT, body = ErrorBody, description = "Already finished"),
    )
)]
async fn cancel_deployment(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<(StatusCode, Json<Deployment>)> {
    let deployment = deployments::cancel(&state.app, &caller, id).await?;
    Ok((StatusCode::ACCEPTED, Json(deployment)))
}
