//! `/api/v1/projects/{project}/services/{service}/volumes`: a service's persistent volumes.
//!
//! The operations, and what a change does to a live service, are in
//! [`crate::usecases::volumes`].

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use helvetia_api_types::{AddVolume, VolumeChange, VolumeView};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiResult, ErrorBody};
use super::extract::ServicePath;
use super::json::{ApiJson, ApiPath};
use crate::usecases::volumes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_volumes, add_volume))
        .routes(routes!(remove_volume))
}

/// List a service's volumes with their sizes.
#[utoipa::path(
    get, path = "/api/v1/projects/{project}/services/{service}/volumes", tag = "volumes",
    params(
        ("project" = helvetia_core::name::ProjectName, Path, description = "Project name"),
        ("service" = helvetia_core::name::ServiceName, Path, description = "Service name"),
    ),
    security(("token" = ["read"])),
    responses((status = OK, body = Vec<VolumeView>))
)]
async fn list_volumes(
    State(state): State<AppState>,
    ServicePath(service): ServicePath,
) -> ApiResult<Json<Vec<VolumeView>>> {
    Ok(Json(volumes::list(&state.app, &service).await?))
}

/// Add a volume. A live service is redeployed to mount it; a service with volumes deploys
/// with the `recreate` strategy unless it chose one.
#[utoipa::path(
    post, path = "/api/v1/projects/{project}/services/{service}/volumes", tag = "volumes",
    params(
        ("project" = helvetia_core::name::ProjectName, Path, description = "Project name"),
        ("service" = helvetia_core::name::ServiceName, Path, description = "Service name"),
    ),
    request_body = AddVolume,
    security(("token" = ["write"])),
    responses(
        (status = CREATED, body = VolumeChange),
        (status = CONFLICT, body = ErrorBody, description = "The name or path is taken"),
    )
)]
async fn add_volume(
    State(state): State<AppState>,
    ServicePath(service): ServicePath,
    ApiJson(body): ApiJson<AddVolume>,
) -> ApiResult<(StatusCode, Json<VolumeChange>)> {
    let change = volumes::add(&state.app, &service, body).await?;
    Ok((StatusCode::CREATED, Json(change)))
}

/// The `{volume}` segment.
#[derive(Deserialize)]
struct VolumeName {
    volume: String,
}

/// Remove a volume and delete its data. A live service is redeployed without it first; the
/// data goes once no container mounts it.
#[utoipa::path(
    delete, path = "/api/v1/projects/{project}/services/{service}/volumes/{volume}", tag = "volumes",
    params(
        ("project" = helvetia_core::name::ProjectName, Path, description = "Project name"),
        ("service" = helvetia_core::name::ServiceName, Path, description = "Service name"),
        ("volume" = helvetia_core::volume::VolumeName, Path, description = "Volume name"),
    ),
    security(("token" = ["write"])),
    responses((status = OK, body = VolumeChange))
)]
async fn remove_volume(
    State(state): State<AppState>,
    ServicePath(service): ServicePath,
    ApiPath(VolumeName { volume }): ApiPath<VolumeName>,
) -> ApiResult<Json<VolumeChange>> {
    Ok(Json(volumes::remove(&state.app, &service, &volume).await?))
}
