//! `/api/v1/projects/{project}/services` and `/api/v1/services`: a project's services and their
//! settings.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use helvetia_api_types::{CreateService, ServiceInput, ServiceView, UpdatedService};
use helvetia_core::name::ProjectName;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Authenticated;
use super::error::{ApiResult, ErrorBody};
use super::extract::ServicePath;
use super::json::{ApiJson, ApiPath, ApiQuery};
use crate::usecases::services;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_all_services))
        .routes(routes!(list_services, create_service))
        .routes(routes!(get_service, update_service, delete_service))
}

/// Create a service in a project.
#[utoipa::path(
    post, path = "/api/v1/projects/{project}/services", tag = "services",
    params(("project" = helvetia_core::name::ProjectName, Path, description = "Project name")),
    request_body = CreateService,
    security(("token" = ["write"])),
    responses(
        (status = CREATED, body = ServiceView),
        (status = UNPROCESSABLE_ENTITY, body = ErrorBody, description = "Invalid settings, or a repository location the server's policy refuses"),
        (status = CONFLICT, body = ErrorBody),
    )
)]
async fn create_service(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(project): ApiPath<String>,
    ApiJson(body): ApiJson<CreateService>,
) -> ApiResult<(StatusCode, Json<ServiceView>)> {
    let service = services::create(&state.app, &caller, &project, body).await?;
    Ok((StatusCode::CREATED, Json(service)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListFilter {
    /// Only this project's services.
    #[param(value_type = Option<ProjectName>)]
    project: Option<String>,
}

/// List the caller's services, optionally of one project.
#[utoipa::path(
    get, path = "/api/v1/services", tag = "services",
    params(ListFilter),
    security(("token" = ["read"])),
    responses(
        (status = OK, body = Vec<ServiceView>),
        (status = NOT_FOUND, body = ErrorBody, description = "No project of that name"),
        (status = UNPROCESSABLE_ENTITY, body = ErrorBody, description = "An invalid project name"),
    )
)]
async fn list_all_services(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiQuery(filter): ApiQuery<ListFilter>,
) -> ApiResult<Json<Vec<ServiceView>>> {
    let project = filter.project.as_deref();
    Ok(Json(services::list(&state.app, &caller, project).await?))
}

/// List a project's services.
#[utoipa::path(
    get, path = "/api/v1/projects/{project}/services", tag = "services",
    params(("project" = helvetia_core::name::ProjectName, Path, description = "Project name")),
    security(("token" = ["read"])),
    responses((status = OK, body = Vec<ServiceView>))
)]
async fn list_services(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(project): ApiPath<String>,
) -> ApiResult<Json<Vec<ServiceView>>> {
    Ok(Json(
        services::list(&state.app, &caller, Some(&project)).await?,
    ))
}

/// Show a service, with its URL and live deployment.
#[utoipa::path(
    get, path = "/api/v1/projects/{project}/services/{service}", tag = "services",
    params(
        ("project" = helvetia_core::name::ProjectName, Path, description = "Project name"),
        ("service" = helvetia_core::name::ServiceName, Path, description = "Service name"),
    ),
    security(("token" = ["read"])),
    responses((status = OK, body = ServiceView))
)]
async fn get_service(
    State(state): State<AppState>,
    ServicePath(service): ServicePath,
) -> ApiResult<Json<ServiceView>> {
    Ok(Json(services::get(&state.app, service).await?))
}

/// Change a service's settings. Fields left out keep their value.
#[utoipa::path(
    patch, path = "/api/v1/projects/{project}/services/{service}", tag = "services",
    params(
        ("project" = helvetia_core::name::ProjectName, Path, description = "Project name"),
        ("service" = helvetia_core::name::ServiceName, Path, description = "Service name"),
    ),
    request_body = ServiceInput,
    security(("token" = ["write"])),
    responses(
        (status = OK, body = UpdatedService),
        (status = UNPROCESSABLE_ENTITY, body = ErrorBody, description = "Invalid settings, or a repository location the server's policy refuses"),
    )
)]
async fn update_service(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ServicePath(service): ServicePath,
    ApiJson(input): ApiJson<ServiceInput>,
) -> ApiResult<Json<UpdatedService>> {
    Ok(Json(
        services::update(&state.app, &caller, service, input).await?,
    ))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct DeleteOptions {
    /// Also delete the service's volumes and their data. Required when it has volumes.
    #[serde(default)]
    delete_volumes: bool,
}

/// Delete a service and its deployment history (and its volumes, when confirmed).
#[utoipa::path(
    delete, path = "/api/v1/projects/{project}/services/{service}", tag = "services",
    params(
        ("project" = helvetia_core::name::ProjectName, Path, description = "Project name"),
        ("service" = helvetia_core::name::ServiceName, Path, description = "Service name"),
        DeleteOptions,
    ),
    security(("token" = ["write"])),
    responses(
        (status = NO_CONTENT),
        (status = CONFLICT, body = ErrorBody, description = "A deployment is in progress, or volumes need `delete_volumes=true`"),
    )
)]
async fn delete_service(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ServicePath(service): ServicePath,
    ApiQuery(options): ApiQuery<DeleteOptions>,
) -> ApiResult<StatusCode> {
    services::delete(&state.app, &caller, service, options.delete_volumes).await?;
    Ok(StatusCode::NO_CONTENT)
}
