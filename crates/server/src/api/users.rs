//! `/api/v1/users` (instance administrators) and the public `/api/v1/auth/signup` and
//! `/api/v1/auth/password-reset`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use helvetia_api_types::{CreateUser, CreatedUser, OneTimeLink, PasswordReset, SignUp, UserView};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Authenticated;
use super::client::ClientAddr;
use super::error::{ApiResult, ErrorBody};
use super::json::{ApiJson, ApiPath};
use crate::usecases::{links, users};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users, create_user))
        .routes(routes!(reset_link))
        .routes(routes!(disable_user))
        .routes(routes!(sign_up))
        .routes(routes!(password_reset))
}

/// Every user account (instance administrators).
#[utoipa::path(
    get, path = "/api/v1/users", tag = "users",
    security(("token" = ["admin"])),
    responses((status = OK, body = Vec<UserView>))
)]
async fn list_users(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> ApiResult<Json<Vec<UserView>>> {
    Ok(Json(users::list(&state.app, &caller).await?))
}

/// Create a user with a personal team (instance administrators). Without a password, the
/// answer carries a single-use link where the user sets one.
#[utoipa::path(
    post, path = "/api/v1/users", tag = "users",
    request_body = CreateUser,
    security(("token" = ["admin"])),
    responses(
        (status = CREATED, body = CreatedUser),
        (status = CONFLICT, body = ErrorBody, description = "An account for the address exists"),
    )
)]
async fn create_user(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiJson(body): ApiJson<CreateUser>,
) -> ApiResult<(StatusCode, Json<CreatedUser>)> {
    let created = users::create(&state.app, &caller, body).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Issue a single-use password reset link for a user, valid for 24 hours (instance
/// administrators).
#[utoipa::path(
    post, path = "/api/v1/users/{user}/reset-link", tag = "users",
    params(("user" = String, Path, description = "The user's id or e-mail address")),
    security(("token" = ["admin"])),
    responses((status = CREATED, body = OneTimeLink))
)]
async fn reset_link(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(user): ApiPath<String>,
) -> ApiResult<(StatusCode, Json<OneTimeLink>)> {
    let link = users::reset_link(&state.app, &caller, &user).await?;
    Ok((StatusCode::CREATED, Json(link)))
}

/// Disable a user: their tokens and sessions stop working at once (instance administrators).
#[utoipa::path(
    post, path = "/api/v1/users/{user}/disable", tag = "users",
    params(("user" = String, Path, description = "The user's id or e-mail address")),
    security(("token" = ["admin"])),
    responses(
        (status = NO_CONTENT),
        (status = CONFLICT, body = ErrorBody, description = "The caller's own account"),
    )
)]
async fn disable_user(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(user): ApiPath<String>,
) -> ApiResult<StatusCode> {
    users::disable(&state.app, &caller, &user).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Create an account: with a sign-up link or an invitation's token (which also joins its
/// team), or without one for an address at a domain the server opened to sign-up.
#[utoipa::path(
    post, path = "/api/v1/auth/signup", tag = "users",
    request_body = SignUp,
    responses(
        (status = CREATED, body = UserView),
        (status = FORBIDDEN, body = ErrorBody, description = "No link, and sign-up is not open to the address's domain"),
        (status = NOT_FOUND, body = ErrorBody, description = "The link is unknown, used, revoked or expired"),
        (status = CONFLICT, body = ErrorBody, description = "The address has an account, or the invitation is for another one"),
    )
)]
async fn sign_up(
    State(state): State<AppState>,
    client: ClientAddr,
    ApiJson(body): ApiJson<SignUp>,
) -> ApiResult<(StatusCode, Json<UserView>)> {
    let domains = &state.app.platform.settings.signup_domains;
    let user = links::sign_up(&state.store, domains, body, client.label()).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// Set a password through a reset link; the user's sessions end.
#[utoipa::path(
    post, path = "/api/v1/auth/password-reset", tag = "users",
    request_body = PasswordReset,
    responses(
        (status = NO_CONTENT),
        (status = NOT_FOUND, body = ErrorBody, description = "The link is unknown, used, revoked or expired"),
    )
)]
async fn password_reset(
    State(state): State<AppState>,
    client: ClientAddr,
    ApiJson(body): ApiJson<PasswordReset>,
) -> ApiResult<StatusCode> {
    links::reset_password(&state.store, body, client.label()).await?;
    Ok(StatusCode::NO_CONTENT)
}
