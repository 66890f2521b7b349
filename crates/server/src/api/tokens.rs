//! `/api/v1/tokens` and `/api/v1/me`: API tokens and the caller's own identity.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use helvetia_api_types::{ApiToken, CreateToken, CreatedToken, Me};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Authenticated;
use super::error::ApiResult;
use super::error::ErrorBody;
use super::json::{ApiJson, ApiPath, ApiQuery};
use crate::usecases::tokens;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(revoke_token))
        .routes(routes!(me))
}

/// Create an API token.
#[utoipa::path(
    post, path = "/api/v1/tokens", tag = "tokens",
    request_body = CreateToken,
    security(("token" = ["admin"])),
    responses(
        (status = CREATED, body = CreatedToken),
        (status = NOT_FOUND, body = ErrorBody, description = "No such team, or the caller is not in it"),
    )
)]
async fn create_token(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiJson(body): ApiJson<CreateToken>,
) -> ApiResult<(StatusCode, Json<CreatedToken>)> {
    let created = tokens::create(&state.app, &caller, body).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// List API tokens (never their values).
#[utoipa::path(
    get, path = "/api/v1/tokens", tag = "tokens",
    params(TokenListing),
    security(("token" = ["admin"])),
    responses(
        (status = OK, body = Vec<ApiToken>),
        (status = NOT_FOUND, body = ErrorBody, description = "No such team, or the caller is not in it"),
        (status = UNPROCESSABLE_ENTITY, body = ErrorBody, description = "Invalid team name"),
    )
)]
async fn list_tokens(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiQuery(listing): ApiQuery<TokenListing>,
) -> ApiResult<Json<Vec<ApiToken>>> {
    Ok(Json(
        tokens::list(&state.app, &caller, listing.team.as_deref()).await?,
    ))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct TokenListing {
    /// The tokens that can act in this team (its admins only). Default: the caller's own.
    #[param(value_type = Option<helvetia_core::name::TeamName>)]
    team: Option<String>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct RevokeOptions {
    /// Revoke the caller's own token even when it is the last admin token (default false).
    force: Option<bool>,
}

/// Revoke an API token. It stops working immediately.
#[utoipa::path(
    delete, path = "/api/v1/tokens/{id}", tag = "tokens",
    params(("id" = i64, Path, description = "Token id"), RevokeOptions),
    security(("token" = ["admin"])),
    responses(
        (status = NO_CONTENT),
        (status = CONFLICT, body = ErrorBody, description = "The caller's own token is the last admin token: revoking it would lock everyone out (pass `force=true` to revoke it anyway; `helvetia server admin-token` on the server issues a new one)"),
    )
)]
async fn revoke_token(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(options): ApiQuery<RevokeOptions>,
) -> ApiResult<StatusCode> {
    tokens::revoke(&state.app, &caller, id, options.force.unwrap_or(false)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Who the caller is, what its credential may do and its role in each team.
#[utoipa::path(
    get, path = "/api/v1/me", tag = "tokens",
    security(("token" = ["read"])),
    responses((status = OK, body = Me))
)]
async fn me(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> ApiResult<Json<Me>> {
    Ok(Json(tokens::me(&state.app, &caller).await?))
}
