//! `/api/v1/projects`: create, list, show and delete projects.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use helvetia_api_types::{CreateProject, Project};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Authenticated;
use super::error::{ApiResult, ErrorBody};
use super::json::{ApiJson, ApiPath};
use crate::usecases::projects;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_projects, create_project))
        .routes(routes!(get_project, delete_project))
}

/// Create a project.
#[utoipa::path(
    post, path = "/api/v1/projects", tag = "projects",
    request_body = CreateProject,
    security(("token" = ["write"])),
    responses(
        (status = CREATED, body = Project),
        (status = CONFLICT, body = ErrorBody, description = "The name is not available"),
        (status = NOT_FOUND, body = ErrorBody, description = "No such team, or the caller is not in it"),
        (status = UNPROCESSABLE_ENTITY, body = ErrorBody, description = "Invalid name"),
    )
)]
async fn create_project(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiJson(body): ApiJson<CreateProject>,
) -> ApiResult<(StatusCode, Json<Project>)> {
    let project = projects::create(&state.app, &caller, body).await?;
    Ok((StatusCode::CREATED, Json(project)))
}

/// List the caller's projects.
#[utoipa::path(
    get, path = "/api/v1/projects", tag = "projects",
    security(("token" = ["read"])),
    responses((status = OK, body = Vec<Project>))
)]
async fn list_projects(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> ApiResult<Json<Vec<Project>>> {
    Ok(Json(projects::list(&state.app, &caller).await?))
}

/// Show a project.
#[utoipa::path(
    get, path = "/api/v1/projects/{project}", tag = "projects",
    params(("project" = helvetia_core::name::ProjectName, Path, description = "Project name")),
    security(("token" = ["read"])),
    responses((status = OK, body = Project))
)]
async fn get_project(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(project): ApiPath<String>,
) -> ApiResult<Json<Project>> {
    Ok(Json(projects::get(&state.app, &caller, &project).await?))
}

/// Delete an empty project.
#[utoipa::path(
    delete, path = "/api/v1/projects/{project}", tag = "projects",
    params(("project" = helvetia_core::name::ProjectName, Path, description = "Project name")),
    security(("token" = ["write"])),
    responses(
        (status = NO_CONTENT),
        (status = CONFLICT, body = ErrorBody, description = "The project still has services"),
    )
)]
async fn delete_project(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(project): ApiPath<String>,
) -> ApiResult<StatusCode> {
    projects::delete(&state.app, &caller, &project).await?;
    Ok(StatusCode::NO_CONTENT)
}
