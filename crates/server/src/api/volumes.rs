//! `/api/v1/projects/{project}/services/{service}/volumes`: a service's persistent volumes.
//!
//! Adding or removing a volume changes what the containers mount, so on a live service it is
//! applied like any other such setting: a redeploy of the live image. A removed volume's data
//! is deleted by the reconciler once no container uses it any more.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use helvetia_core::deployment::{Deployment, DeploymentCause};
use helvetia_core::service::Service;
use helvetia_core::validation::FieldErrors;
use helvetia_core::volume::{self, Volume};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Authenticated;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::json::{ApiJson, ApiPath};
use super::lifecycle::redeploy_image;
use super::services::owned_service;
use helvetia_core::auth::Caller;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_volumes, add_volume))
        .routes(routes!(remove_volume))
}

/// A volume with what it holds.
#[derive(Serialize, utoipa::ToSchema)]
pub struct VolumeView {
    #[serde(flatten)]
    volume: Volume,
    /// The volume's name in the engine (`docker volume inspect …`).
    engine_name: String,
    /// Bytes stored; 0 before the first deployment that mounts it.
    size_bytes: u64,
}

/// A change to a service's volumes, with the redeployment that applies it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct VolumeChange {
    volumes: Vec<VolumeView>,
    /// Started when the service is live, so its containers mount the new set.
    redeployment: Option<Deployment>,
}

async fn views(state: &AppState, service: &Service) -> Result<Vec<VolumeView>, ApiError> {
    let mut views = vec![];
    for volume in state.store.volumes(service.id).await? {
        let engine_name = volume::engine_volume_name(
            service.project.as_str(),
            service.name.as_str(),
            service.id,
            &volume.name,
        );
        let size_bytes = state
            .platform
            .engine
            .volume_size(&engine_name)
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        views.push(VolumeView {
            volume,
            engine_name,
            size_bytes,
        });
    }
    Ok(views)
}

/// Redeploys the live image, if any, so the containers mount the service's current volumes.
async fn apply(
    state: &AppState,
    caller: &Caller,
    service: &Service,
) -> Result<VolumeChange, ApiError> {
    let redeployment = match state.store.live_deployment(service.id).await? {
        Some(live) => {
            Some(redeploy_image(state, caller, service, &live, DeploymentCause::Settings).await?)
        }
        None => None,
    };
    Ok(VolumeChange {
        volumes: views(state, service).await?,
        redeployment,
    })
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
    Authenticated(caller): Authenticated,
    ApiPath((project, service)): ApiPath<(String, String)>,
) -> ApiResult<Json<Vec<VolumeView>>> {
    let service = owned_service(&state, caller.team, &project, &service).await?;
    Ok(Json(views(&state, &service).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddVolume {
    /// Unique within the service.
    #[schema(value_type = helvetia_core::volume::VolumeName)]
    name: String,
    /// Absolute path where the containers mount it: not `/`, no `..` component, no `:`, at
    /// most 1024 characters.
    #[schema(
        min_length = 2,
        max_length = 1024,
        pattern = r"^(?!/$)(?!.*/\.\.(/|$))/[^:\x00-\x1f\x7f-\x9f]*$"
    )]
    path: String,
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
    Authenticated(caller): Authenticated,
    ApiPath((project, service)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<AddVolume>,
) -> ApiResult<(StatusCode, Json<VolumeChange>)> {
    let service = owned_service(&state, caller.team, &project, &service).await?;
    let mut errors = FieldErrors::new();
    let name = errors.check("name", volume::check_name(&body.name));
    let path = errors.check("path", volume::check_path(&body.path));
    errors.finish(|| Some((name?, path?)))?;
    state
        .store
        .add_volume(&caller, &service, &body.name, &body.path)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(apply(&state, &caller, &service).await?),
    ))
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
    Authenticated(caller): Authenticated,
    ApiPath((project, service, name)): ApiPath<(String, String, String)>,
) -> ApiResult<Json<VolumeChange>> {
    let service = owned_service(&state, caller.team, &project, &service).await?;
    volume::check_name(&name).map_err(|e| FieldErrors::single("volume", e))?;
    state.store.remove_volume(&caller, &service, &name).await?;
    let change = apply(&state, &caller, &service).await?;
    state.reconcile.notify_one();
    Ok(Json(change))
}
