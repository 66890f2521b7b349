//! Environment variables of projects and services: `…/env` and `…/dotenv` under a project
//! or a service.
//!
//! Every operation exists for both scopes, so the routes come in pairs; each handler is one
//! call with the [`EnvPath`] its path resolves to, and the one code path is in
//! [`crate::usecases::env`].

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use helvetia_api_types::{EnvChanged, EnvVarView, ImportEnv, RevealedVar, SetEnv, UnsetEnv};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiResult, ErrorBody};
use super::extract::EnvPath;
use super::json::{ApiJson, ApiPath};
use crate::usecases::env::{self, EnvTarget};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(
            list_project_env,
            set_project_env,
            unset_many_project_env
        ))
        .routes(routes!(unset_project_env))
        .routes(routes!(import_project_env))
        .routes(routes!(export_project_env))
        .routes(routes!(reveal_project_env))
        .routes(routes!(
            list_service_env,
            set_service_env,
            unset_many_service_env
        ))
        .routes(routes!(unset_service_env))
        .routes(routes!(import_service_env))
        .routes(routes!(export_service_env))
        .routes(routes!(reveal_service_env))
}

/// The `{name}` segment.
#[derive(Deserialize)]
struct VarName {
    name: String,
}

async fn list(state: &AppState, target: &EnvTarget) -> ApiResult<Json<Vec<EnvVarView>>> {
    Ok(Json(env::list(&state.app, target).await?))
}

async fn export(state: &AppState, target: &EnvTarget) -> ApiResult<impl IntoResponse + use<>> {
    let text = env::export(&state.app, target).await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text))
}

// --- Project scope ---

/// A project's variables (shared by its services). Secret values are never shown.
#[utoipa::path(
    get, path = "/api/v1/projects/{project}/env", tag = "env",
    params(("project" = helvetia_core::name::ProjectName, Path, description = "Project name")),
    security(("token" = ["read"])),
    responses((status = OK, body = Vec<EnvVarView>))
)]
async fn list_project_env(
    State(state): State<AppState>,
    EnvPath(target): EnvPath,
) -> ApiResult<Json<Vec<EnvVarView>>> {
    list(&state, &target).await
}

/// Set project variables (others are kept). Live services of the project with
/// `auto_redeploy` are redeployed with zero downtime.
#[utoipa::path(
    put, path = "/api/v1/projects/{project}/env", tag = "env",
    params(("project" = helvetia_core::name::ProjectName, Path, description = "Project name")),
    request_body = SetEnv,
    security(("token" = ["write"])),
    responses(
        (status = OK, body = EnvChanged),
        (status = CONFLICT, body = ErrorBody, description = "Too many variables"),
    )
)]
async fn set_project_env(
    State(state): State<AppState>,
    EnvPath(target): EnvPath,
    ApiJson(body): ApiJson<SetEnv>,
) -> ApiResult<Json<EnvChanged>> {
    Ok(Json(env::set(&state.app, &target, body).await?))
}

/// Remove project variables: all of them in one change (live services redeploy once) or, when
/// one is not set, none.
#[utoipa::path(
    delete, path = "/api/v1/projects/{project}/env", tag = "env",
    params(("project" = helvetia_core::name::ProjectName, Path, description = "Project name")),
    request_body = UnsetEnv,
    security(("token" = ["write"])),
    responses((status = OK, body = EnvChanged))
)]
async fn unset_many_project_env(
    State(state): State<AppState>,
    EnvPath(target): EnvPath,
    ApiJson(body): ApiJson<UnsetEnv>,
) -> ApiResult<Json<EnvChanged>> {
    Ok(Json(
        env::unset(&state.app, &target, env::Unset::Many(&body.names)).await?,
    ))
}

/// Remove a project variable.
#[utoipa::path(
    delete, path = "/api/v1/projects/{project}/env/{name}", tag = "env",
    params(("project" = helvetia_core::name::ProjectName, Path, description = "Project name"), ("name" = helvetia_core::env::EnvName, Path, description = "Variable name")),
    security(("token" = ["write"])),
    responses((status = OK, body = EnvChanged))
)]
async fn unset_project_env(
    State(state): State<AppState>,
    EnvPath(target): EnvPath,
    ApiPath(VarName { name }): ApiPath<VarName>,
) -> ApiResult<Json<EnvChanged>> {
    Ok(Json(
        env::unset(&state.app, &target, env::Unset::One(&name)).await?,
    ))
}

/// Set project variables from a `.env` file: all of them or, on any error, none.
#[utoipa::path(
    post, path = "/api/v1/projects/{project}/dotenv", tag = "env",
    params(("project" = helvetia_core::name::ProjectName, Path, description = "Project name")),
    request_body = ImportEnv,
    security(("token" = ["write"])),
    responses((status = OK, body = EnvChanged))
)]
async fn import_project_env(
    State(state): State<AppState>,
    EnvPath(target): EnvPath,
    ApiJson(body): ApiJson<ImportEnv>,
) -> ApiResult<Json<EnvChanged>> {
    Ok(Json(env::import(&state.app, &target, body).await?))
}

/// A project's variables in the `.env` format; secrets appear as comments, without values.
#[utoipa::path(
    get, path = "/api/v1/projects/{project}/dotenv", tag = "env",
    params(("project" = helvetia_core::name::ProjectName, Path, description = "Project name")),
    security(("token" = ["read"])),
    responses((status = OK, description = "A .env file", content_type = "text/plain"))
)]
async fn export_project_env(
    State(state): State<AppState>,
    EnvPath(target): EnvPath,
) -> ApiResult<impl IntoResponse> {
    export(&state, &target).await
}

/// Read a project variable's value, secret or not. Audited.
#[utoipa::path(
    get, path = "/api/v1/projects/{project}/env/{name}/reveal", tag = "env",
    params(("project" = helvetia_core::name::ProjectName, Path, description = "Project name"), ("name" = helvetia_core::env::EnvName, Path, description = "Variable name")),
    security(("token" = ["secrets:reveal"])),
    responses((status = OK, body = RevealedVar))
)]
async fn reveal_project_env(
    State(state): State<AppState>,
    EnvPath(target): EnvPath,
    ApiPath(VarName { name }): ApiPath<VarName>,
) -> ApiResult<Json<RevealedVar>> {
    Ok(Json(env::reveal(&state.app, &target, &name).await?))
}

// --- Service scope ---

/// A service's variables, with the project's it inherits. Secret values are never shown.
#[utoipa::path(
    get, path = "/api/v1/projects/{project}/services/{service}/env", tag = "env",
    params(("project" = helvetia_core::name::ProjectName, Path, description = "Project name"), ("service" = helvetia_core::name::ServiceName, Path, description = "Service name"),
        ("previews" = Option<bool>, Query, description = "The service's variables for its previews (over its own) rather than its own")),
    security(("token" = ["read"])),
    responses((status = OK, body = Vec<EnvVarView>))
)]
async fn list_service_env(
    State(state): State<AppState>,
    EnvPath(target): EnvPath,
) -> ApiResult<Json<Vec<EnvVarView>>> {
    list(&state, &target).await
}

/// Set service variables (others are kept; they override project variables of the same
/// name). A live service with `auto_redeploy` is redeployed with zero downtime.
#[utoipa::path(
    put, path = "/api/v1/projects/{project}/services/{service}/env", tag = "env",
    params(("project" = helvetia_core::name::ProjectName, Path, description = "Project name"), ("service" = helvetia_core::name::ServiceName, Path, description = "Service name"),
        ("previews" = Option<bool>, Query, description = "The service's variables for its previews (over its own) rather than its own")),
    request_body = SetEnv,
    security(("token" = ["write"])),
    responses(
        (status = OK, body = EnvChanged),
        (status = CONFLICT, body = ErrorBody, description = "Too many variables"),
    )
)]
async fn set_service_env(
    State(state): State<AppState>,
    EnvPath(target): EnvPath,
    ApiJson(body): ApiJson<SetEnv>,
) -> ApiResult<Json<EnvChanged>> {
    Ok(Json(env::set(&state.app, &target, body).await?))
}

/// Remove service variables: all of them in one change (a live service redeploys once) or, when
/// one is not set, none.
#[utoipa::path(
    delete, path = "/api/v1/projects/{project}/services/{service}/env", tag = "env",
    params(("project" = helvetia_core::name::ProjectName, Path, description = "Project name"), ("service" = helvetia_core::name::ServiceName, Path, description = "Service name"),
        ("previews" = Option<bool>, Query, description = "The service's variables for its previews (over its own) rather than its own")),
    request_body = UnsetEnv,
    security(("token" = ["write"])),
    responses((status = OK, body = EnvChanged))
)]
async fn unset_many_service_env(
    State(state): State<AppState>,
    EnvPath(target): EnvPath,
    ApiJson(body): ApiJson<UnsetEnv>,
) -> ApiResult<Json<EnvChanged>> {
    Ok(Json(
        env::unset(&state.app, &target, env::Unset::Many(&body.names)).await?,
    ))
}

/// Remove a service variable.
#[utoipa::path(
    delete, path = "/api/v1/projects/{project}/services/{service}/env/{name}", tag = "env",
    params(
        ("project" = helvetia_core::name::ProjectName, Path, description = "Project name"),
        ("service" = helvetia_core::name::ServiceName, Path, description = "Service name"),
        ("name" = helvetia_core::env::EnvName, Path, description = "Variable name"),
        ("previews" = Option<bool>, Query, description = "The service's variables for its previews (over its own) rather than its own"),
    ),
    security(("token" = ["write"])),
    responses((status = OK, body = EnvChanged))
)]
async fn unset_service_env(
    State(state): State<AppState>,
    EnvPath(target): EnvPath,
    ApiPath(VarName { name }): ApiPath<VarName>,
) -> ApiResult<Json<EnvChanged>> {
    Ok(Json(
        env::unset(&state.app, &target, env::Unset::One(&name)).await?,
    ))
}

/// Set service variables from a `.env` file: all of them or, on any error, none.
#[utoipa::path(
    post, path = "/api/v1/projects/{project}/services/{service}/dotenv", tag = "env",
    params(("project" = helvetia_core::name::ProjectName, Path, description = "Project name"), ("service" = helvetia_core::name::ServiceName, Path, description = "Service name"),
        ("previews" = Option<bool>, Query, description = "The service's variables for its previews (over its own) rather than its own")),
    request_body = ImportEnv,
    security(("token" = ["write"])),
    responses((status = OK, body = EnvChanged))
)]
async fn import_service_env(
    State(state): State<AppState>,
    EnvPath(target): EnvPath,
    ApiJson(body): ApiJson<ImportEnv>,
) -> ApiResult<Json<EnvChanged>> {
    Ok(Json(env::import(&state.app, &target, body).await?))
}

/// A service's own variables in the `.env` format; secrets appear as comments.
#[utoipa::path(
    get, path = "/api/v1/projects/{project}/services/{service}/dotenv", tag = "env",
    params(("project" = helvetia_core::name::ProjectName, Path, description = "Project name"), ("service" = helvetia_core::name::ServiceName, Path, description = "Service name"),
        ("previews" = Option<bool>, Query, description = "The service's variables for its previews (over its own) rather than its own")),
    security(("token" = ["read"])),
    responses((status = OK, description = "A .env file", content_type = "text/plain"))
)]
async fn export_service_env(
    State(state): State<AppState>,
    EnvPath(target): EnvPath,
) -> ApiResult<impl IntoResponse> {
    export(&state, &target).await
}

/// Read a service variable's value, secret or not. Audited.
#[utoipa::path(
    get, path = "/api/v1/projects/{project}/services/{service}/env/{name}/reveal", tag = "env",
    params(
        ("project" = helvetia_core::name::ProjectName, Path, description = "Project name"),
        ("service" = helvetia_core::name::ServiceName, Path, description = "Service name"),
        ("name" = helvetia_core::env::EnvName, Path, description = "Variable name"),
        ("previews" = Option<bool>, Query, description = "The service's variables for its previews (over its own) rather than its own"),
    ),
    security(("token" = ["secrets:reveal"])),
    responses((status = OK, body = RevealedVar))
)]
async fn reveal_service_env(
    State(state): State<AppState>,
    EnvPath(target): EnvPath,
    ApiPath(VarName { name }): ApiPath<VarName>,
) -> ApiResult<Json<RevealedVar>> {
    Ok(Json(env::reveal(&state.app, &target, &name).await?))
}
