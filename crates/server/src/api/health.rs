//! Liveness and the OpenAPI document: the public routes.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
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
    status: HealthStatus,
    /// `sqlite` or `postgres`.
    database: &'static str,
    version: &'static str,
    /// The background tasks that failed and wait to be started again (only when degraded).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tasks_down: Vec<&'static str>,
    /// Why the edge router (the managed Traefik) is not running, in its own words (only when
    /// degraded).
    #[serde(skip_serializing_if = "Option::is_none")]
    edge_router_down: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
enum HealthStatus {
    Ok,
    Degraded,
}

/// Liveness: answers 200 when the server, its database, every background task and the managed
/// edge router respond; 503 while a background task is down (it is restarted after a pause),
/// the managed Traefik is not running (it is restarted too) or the database does not answer
/// (then with an error body, `unavailable`). Public.
#[utoipa::path(
    get, path = "/healthz", tag = "health",
    responses(
        (status = OK, body = Health),
        (status = SERVICE_UNAVAILABLE, body = Health, description = "A background task or the edge router is down; or, with an `ErrorBody`, the database does not answer"),
        (status = INTERNAL_SERVER_ERROR, body = ErrorBody, description = "The database failed otherwise"),
    )
)]
async fn healthz(State(state): State<AppState>) -> ApiResult<(StatusCode, Json<Health>)> {
    state.store.ping().await?;
    let tasks_down = state.tasks.down();
    let edge_router_down = state.app.platform.edge.down();
    let (status, code) = if tasks_down.is_empty() && edge_router_down.is_none() {
        (HealthStatus::Ok, StatusCode::OK)
    } else {
        (HealthStatus::Degraded, StatusCode::SERVICE_UNAVAILABLE)
    };
    Ok((
        code,
        Json(Health {
            status,
            database: state.store.backend(),
            version: env!("CARGO_PKG_VERSION"),
            tasks_down,
            edge_router_down,
        }),
    ))
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
