//! The installation's certificates (instance administrators).

use axum::Json;
use axum::extract::State;
use helvetia_api_types::CertificateView;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Authenticated;
use super::error::ApiResult;
use crate::usecases::certificates;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_certificates))
}

/// Every certificate Helvetia keeps — custom domains', generated hostnames', wildcards', the
/// public URL's — with its state: issued (issuer, validity), failed (the CA's reason, the next
/// attempt), pending or renewing. Instance administrators only.
#[utoipa::path(
    get, path = "/api/v1/certificates", tag = "domains",
    security(("token" = ["admin"])),
    responses((status = OK, body = Vec<CertificateView>))
)]
async fn list_certificates(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> ApiResult<Json<Vec<CertificateView>>> {
    Ok(Json(certificates::list(&state.app, &caller).await?))
}
