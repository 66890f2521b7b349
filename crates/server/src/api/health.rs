//! Liveness and the OpenAPI document: the public routes.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiResult, ErrorBody};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(openapi_document))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    status: &'static str,
    /// `sqlite` or `postgres`.
    database: &'static str,
    version: &'static str,
}

/// Liveness: answers 200 when the server and its database respond. Public.
#[utoipa::path(
    get, path = "/healthz", tag = "health",
    responses(
        (status = OK, body = Health),
        (status = INTERNAL_SERVER_ERROR, body = ErrorBody, description = "The database does not answer"),
    )
)]
async fn healthz(State(state): State<AppState>) -> ApiResult<Json<Health>> {
    state.store.ping().await?;
    Ok(Json(Health {
        status: "ok",
        database: state.store.backend(),
        version: env!("CARGO_PKG_VERSION"),
    }))
}

/// The OpenAPI 3.1 document of this API. Public.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "health",
    responses((status = OK, description = "The OpenAPI document", content_type = "application/json"))
)]
async fn openapi_document(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        state.openapi.as_str().to_owned(),
    )
}
