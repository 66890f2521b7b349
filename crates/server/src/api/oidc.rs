//! Deploys from CI without a stored secret: `…/services/{service}/trusts` (which OpenID
//! Connect issuers' tokens, for which claims, may deploy the service) and
//! `POST /api/v1/oidc/deploy`, where a CI job presents such a token.
//!
//! The deploy route is public to the auth layer (its credential is not Helvetia's): the use
//! case ([`crate::usecases::oidc::deploy`]) verifies the token and decides.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use helvetia_api_types::{CreateTrust, Deployment, OidcDeploy, Trust};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth;
use super::client::ClientAddr;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::ServicePath;
use super::json::{ApiJson, ApiPath};
use crate::usecases::oidc;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_trusts, add_trust))
        .routes(routes!(remove_trust))
        .routes(routes!(oidc_deploy))
}

/// List the OpenID Connect issuers whose tokens may deploy a service, and for which claims.
#[utoipa::path(
    get, path = "/api/v1/projects/{project}/services/{service}/trusts", tag = "oidc",
    params(
        ("project" = helvetia_core::name::ProjectName, Path, description = "Project name"),
        ("service" = helvetia_core::name::ServiceName, Path, description = "Service name"),
    ),
    security(("token" = ["read"])),
    responses((status = OK, body = Vec<Trust>))
)]
async fn list_trusts(
    State(state): State<AppState>,
    ServicePath(service): ServicePath,
) -> ApiResult<Json<Vec<Trust>>> {
    Ok(Json(oidc::list(&state.app, &service).await?))
}

/// Trust an OpenID Connect issuer (GitHub Actions' by default): a CI job whose token carries
/// the repository and ref (and environment) given may deploy the service, with no stored
/// secret, through `POST /api/v1/oidc/deploy`.
#[utoipa::path(
    post, path = "/api/v1/projects/{project}/services/{service}/trusts", tag = "oidc",
    params(
        ("project" = helvetia_core::name::ProjectName, Path, description = "Project name"),
        ("service" = helvetia_core::name::ServiceName, Path, description = "Service name"),
    ),
    request_body = CreateTrust,
    security(("token" = ["write"])),
    responses((status = CREATED, body = Trust))
)]
async fn add_trust(
    State(state): State<AppState>,
    ServicePath(service): ServicePath,
    ApiJson(body): ApiJson<CreateTrust>,
) -> ApiResult<(StatusCode, Json<Trust>)> {
    let trust = oidc::add(&state.app, &service, body).await?;
    Ok((StatusCode::CREATED, Json(trust)))
}

/// The `{trust}` segment.
#[derive(Deserialize)]
struct TrustId {
    trust: i64,
}

/// Remove a trust: its tokens deploy nothing from now on.
#[utoipa::path(
    delete, path = "/api/v1/projects/{project}/services/{service}/trusts/{trust}", tag = "oidc",
    params(
        ("project" = helvetia_core::name::ProjectName, Path, description = "Project name"),
        ("service" = helvetia_core::name::ServiceName, Path, description = "Service name"),
        ("trust" = i64, Path, description = "Trust id"),
    ),
    security(("token" = ["write"])),
    responses((status = NO_CONTENT))
)]
async fn remove_trust(
    State(state): State<AppState>,
    ServicePath(service): ServicePath,
    ApiPath(TrustId { trust }): ApiPath<TrustId>,
) -> ApiResult<StatusCode> {
    oidc::remove(&state.app, &service, trust).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deploy a service from CI with the job's OpenID Connect token (`Authorization: Bearer
/// <token>`, its audience this server's public URL) instead of a Helvetia credential. One of
/// the service's trusts must cover the token's issuer and claims; the commit deployed is the
/// token's `sha`, on the branch its `ref` names.
#[utoipa::path(
    post, path = "/api/v1/oidc/deploy", tag = "oidc",
    request_body = OidcDeploy,
    responses(
        (status = ACCEPTED, body = Deployment),
        (status = BAD_REQUEST, body = ErrorBody, description = "This server has no public URL, which the tokens' audience must be"),
        (status = UNAUTHORIZED, body = ErrorBody, description = "No token, or one that is not valid: not a JWT, signed by a key its issuer does not publish, expired, not yet valid, for another audience"),
        (status = FORBIDDEN, body = ErrorBody, description = "No trust of the service covers the token: another issuer, repository, ref or environment (a service that does not exist reads the same)"),
        (status = TOO_MANY_REQUESTS, body = ErrorBody, description = "Too many requests from this address"),
    )
)]
async fn oidc_deploy(
    State(state): State<AppState>,
    client: ClientAddr,
    headers: HeaderMap,
    ApiJson(body): ApiJson<OidcDeploy>,
) -> ApiResult<(StatusCode, Json<Deployment>)> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(auth::bearer)
        .ok_or(ApiError::Unauthenticated)?;
    let deployment = oidc::deploy(&state.app, token, body, client.label()).await?;
    Ok((StatusCode::ACCEPTED, Json(deployment)))
}
