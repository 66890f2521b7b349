//! A service's previews: list them, deploy a branch's, approve a fork's head commit, remove
//! one; and its preview settings. A preview's deployments, logs and metrics are its service's
//! routes (`…/services/<service>--<name>/…`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use helvetia_api_types::{
    ApprovePreview, DeployPreview, PreviewDeployed, PreviewSettings, PreviewSettingsInput,
    PreviewView,
};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiResult, ErrorBody};
use super::extract::ServicePath;
use super::json::{ApiJson, ApiPath};
use crate::usecases::previews;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_previews, deploy_preview))
        .routes(routes!(get_preview_settings, update_preview_settings))
        .routes(routes!(approve_preview))
        .routes(routes!(remove_preview))
}

/// The `{preview}` segment, beside the service's.
#[derive(serde::Deserialize)]
struct PreviewPath {
    preview: String,
}

/// A service's previews, oldest first: what each previews, its commit, URL and deployments.
#[utoipa::path(
    get, path = "/api/v1/projects/{project}/services/{service}/previews", tag = "previews",
    params(
        ("project" = helvetia_core::name::ProjectName, Path, description = "Project name"),
        ("service" = helvetia_core::name::ServiceName, Path, description = "Service name"),
    ),
    security(("token" = ["read"])),
    responses(
        (status = OK, body = Vec<PreviewView>),
        (status = CONFLICT, body = ErrorBody, description = "The service is itself a preview"),
    )
)]
async fn list_previews(
    State(state): State<AppState>,
    ServicePath(service): ServicePath,
) -> ApiResult<Json<Vec<PreviewView>>> {
    Ok(Json(previews::list(&state.app, &service).await?))
}

/// Deploy a preview of a branch as it is now (made on first use, at
/// `<name>.<service>.<project>.<base-domain>`).
#[utoipa::path(
    post, path = "/api/v1/projects/{project}/services/{service}/previews", tag = "previews",
    params(
        ("project" = helvetia_core::name::ProjectName, Path, description = "Project name"),
        ("service" = helvetia_core::name::ServiceName, Path, description = "Service name"),
    ),
    request_body = DeployPreview,
    security(("token" = ["deploy"])),
    responses(
        (status = ACCEPTED, body = PreviewDeployed),
        (status = CONFLICT, body = ErrorBody, description = "The service is itself a preview, or the preview's name is another service's"),
    )
)]
async fn deploy_preview(
    State(state): State<AppState>,
    ServicePath(service): ServicePath,
    ApiJson(body): ApiJson<DeployPreview>,
) -> ApiResult<(StatusCode, Json<PreviewDeployed>)> {
    let deployed = previews::deploy_branch(&state.app, &service, body).await?;
    Ok((StatusCode::ACCEPTED, Json(deployed)))
}

/// A service's preview settings.
#[utoipa::path(
    get, path = "/api/v1/projects/{project}/services/{service}/preview-settings", tag = "previews",
    params(
        ("project" = helvetia_core::name::ProjectName, Path, description = "Project name"),
        ("service" = helvetia_core::name::ServiceName, Path, description = "Service name"),
    ),
    security(("token" = ["read"])),
    responses(
        (status = OK, body = PreviewSettings),
        (status = CONFLICT, body = ErrorBody, description = "The service is itself a preview"),
    )
)]
async fn get_preview_settings(
    State(state): State<AppState>,
    ServicePath(service): ServicePath,
) -> ApiResult<Json<PreviewSettings>> {
    Ok(Json(previews::settings(&state.app, &service).await?))
}

/// Change a service's preview settings (fields left out keep their value): pull-request
/// previews on or off, what previews inherit, how many and how long they live.
#[utoipa::path(
    patch, path = "/api/v1/projects/{project}/services/{service}/preview-settings", tag = "previews",
    params(
        ("project" = helvetia_core::name::ProjectName, Path, description = "Project name"),
        ("service" = helvetia_core::name::ServiceName, Path, description = "Service name"),
    ),
    request_body = PreviewSettingsInput,
    security(("token" = ["write"])),
    responses(
        (status = OK, body = PreviewSettings),
        (status = CONFLICT, body = ErrorBody, description = "The service is itself a preview"),
    )
)]
async fn update_preview_settings(
    State(state): State<AppState>,
    ServicePath(service): ServicePath,
    ApiJson(body): ApiJson<PreviewSettingsInput>,
) -> ApiResult<Json<PreviewSettings>> {
    Ok(Json(
        previews::update_settings(&state.app, &service, body).await?,
    ))
}

/// Approve a fork's pull-request head commit for its preview, and deploy it. A later push
/// needs a new approval.
#[utoipa::path(
    post, path = "/api/v1/projects/{project}/services/{service}/previews/{preview}/approve", tag = "previews",
    params(
        ("project" = helvetia_core::name::ProjectName, Path, description = "Project name"),
        ("service" = helvetia_core::name::ServiceName, Path, description = "Service name"),
        ("preview" = String, Path, description = "The preview's name: `pr-<number>` or a branch preview's name"),
    ),
    request_body = ApprovePreview,
    security(("token" = ["deploy"])),
    responses(
        (status = ACCEPTED, body = PreviewDeployed),
        (status = CONFLICT, body = ErrorBody, description = "The commit is not the pull request's head, or the preview needs no approval"),
    )
)]
async fn approve_preview(
    State(state): State<AppState>,
    ServicePath(service): ServicePath,
    ApiPath(path): ApiPath<PreviewPath>,
    ApiJson(body): ApiJson<ApprovePreview>,
) -> ApiResult<(StatusCode, Json<PreviewDeployed>)> {
    let deployed = previews::approve(&state.app, &service, &path.preview, body).await?;
    Ok((StatusCode::ACCEPTED, Json(deployed)))
}

/// Remove a preview: its containers, images, volumes, route and history go (in the
/// background).
#[utoipa::path(
    delete, path = "/api/v1/projects/{project}/services/{service}/previews/{preview}", tag = "previews",
    params(
        ("project" = helvetia_core::name::ProjectName, Path, description = "Project name"),
        ("service" = helvetia_core::name::ServiceName, Path, description = "Service name"),
        ("preview" = String, Path, description = "The preview's name: `pr-<number>` or a branch preview's name"),
    ),
    security(("token" = ["deploy"])),
    responses(
        (status = ACCEPTED, description = "Removal queued"),
        (status = CONFLICT, body = ErrorBody, description = "The service is itself a preview"),
    )
)]
async fn remove_preview(
    State(state): State<AppState>,
    ServicePath(service): ServicePath,
    ApiPath(path): ApiPath<PreviewPath>,
) -> ApiResult<StatusCode> {
    previews::remove(&state.app, &service, &path.preview).await?;
    Ok(StatusCode::ACCEPTED)
}
