//! `/api/v1/disk`: the disk budget (instance administrators).

use axum::Json;
use axum::extract::State;
use helvetia_api_types::DiskView;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Authenticated;
use super::error::ApiResult;
use crate::usecases::disk;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(show_disk))
        .routes(routes!(sweep_disk))
}

/// The disk budget and what Helvetia's images, registry and build cache took after the last
/// sweep, and what it freed. Instance administrators only.
#[utoipa::path(
    get, path = "/api/v1/disk", tag = "health",
    security(("token" = ["admin"])),
    responses((status = OK, body = DiskView))
)]
async fn show_disk(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> ApiResult<Json<DiskView>> {
    Ok(Json(disk::show(&state.app, &caller)?))
}

/// Sweep now: remove what no deployment needs and, over the budget, the least recently used
/// build cache; answers the figures. Instance administrators only.
#[utoipa::path(
    post, path = "/api/v1/disk/sweep", tag = "health",
    security(("token" = ["admin"])),
    responses((status = OK, body = DiskView))
)]
async fn sweep_disk(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> ApiResult<Json<DiskView>> {
    Ok(Json(disk::sweep(&state.app, &caller).await?))
}
