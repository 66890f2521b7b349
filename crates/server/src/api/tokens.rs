//! `/api/v1/tokens` and `/api/v1/me`: API tokens and the caller's own identity.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use helvetia_core::auth::{ApiToken, Scope, Scopes, TOKEN_PREFIX, token_hash, token_hint};
use helvetia_core::validation::{FieldErrors, Invalid};
use helvetia_store::tokens::NewToken;
use jiff::{SignedDuration, Timestamp};
use rand::RngExt;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Authenticated;
use super::error::ApiResult;
use super::json::{ApiJson, ApiPath};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(revoke_token))
        .routes(routes!(me))
}

/// A new random token: the prefix and 256 bits of randomness, base-62 encoded.
pub fn generate_token() -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::rng();
    let body: String = (0..43)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect();
    format!("{TOKEN_PREFIX}{body}")
}

/// The token and what to store of it.
pub fn mint(name: String, scopes: Scopes, expires_at: Option<Timestamp>) -> (String, NewToken) {
    let token = generate_token();
    let stored = NewToken {
        name,
        hash: token_hash(&token),
        hint: token_hint(&token),
        scopes,
        expires_at,
    };
    (token, stored)
}

const MAX_TOKEN_NAME: usize = 100;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// What the token is for, e.g. `ci`: 1 to 100 printable characters once trimmed.
    #[schema(
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    name: String,
    /// At least one scope.
    #[schema(value_type = Vec<Scope>, min_items = 1)]
    scopes: Vec<String>,
    /// Days until the token expires. Default: never.
    #[schema(minimum = 1, maximum = 3650)]
    expires_in_days: Option<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CreatedToken {
    /// The token itself. Shown this once; only its hash is stored.
    token: String,
    #[serde(flatten)]
    info: ApiToken,
}

/// Create an API token.
#[utoipa::path(
    post, path = "/api/v1/tokens", tag = "tokens",
    request_body = CreateToken,
    security(("token" = ["admin"])),
    responses((status = CREATED, body = CreatedToken))
)]
async fn create_token(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiJson(body): ApiJson<CreateToken>,
) -> ApiResult<(StatusCode, Json<CreatedToken>)> {
    let mut errors = FieldErrors::new();
    let name = body.name.trim();
    if name.is_empty()
        || name.chars().count() > MAX_TOKEN_NAME
        || name.chars().any(char::is_control)
    {
        errors.add(
            "name",
            Invalid::new(format!(
                "must be 1 to {MAX_TOKEN_NAME} printable characters"
            )),
        );
    }
    let scopes = body
        .scopes
        .iter()
        .map(|s| s.parse::<Scope>())
        .collect::<Result<Vec<_>, _>>()
        .and_then(Scopes::new);
    let scopes = errors.check("scopes", scopes);
    let expires_at = match body.expires_in_days {
        None => Some(None),
        Some(days @ 1..=3650) => Timestamp::now()
            .checked_add(SignedDuration::from_hours(days * 24))
            .ok()
            .map(Some),
        Some(_) => {
            errors.add(
                "expires_in_days",
                Invalid::new("must be between 1 and 3650"),
            );
            None
        }
    };
    let (scopes, expires_at) = errors.finish(|| Some((scopes?, expires_at?)))?;
    let (token, stored) = mint(name.to_owned(), scopes, expires_at);
    let info = state.store.create_token(&caller, &stored).await?;
    Ok((StatusCode::CREATED, Json(CreatedToken { token, info })))
}

/// List API tokens (never their values).
#[utoipa::path(
    get, path = "/api/v1/tokens", tag = "tokens",
    security(("token" = ["admin"])),
    responses((status = OK, body = Vec<ApiToken>))
)]
async fn list_tokens(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> ApiResult<Json<Vec<ApiToken>>> {
    Ok(Json(state.store.list_tokens(caller.team).await?))
}

/// Revoke an API token. It stops working immediately.
#[utoipa::path(
    delete, path = "/api/v1/tokens/{id}", tag = "tokens",
    params(("id" = i64, Path, description = "Token id")),
    security(("token" = ["admin"])),
    responses((status = NO_CONTENT))
)]
async fn revoke_token(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    state.store.revoke_token(&caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Me {
    token_id: i64,
    token_name: String,
    scopes: Vec<Scope>,
}

/// Who the presented token belongs to and what it may do.
#[utoipa::path(
    get, path = "/api/v1/me", tag = "tokens",
    security(("token" = ["read"])),
    responses((status = OK, body = Me))
)]
async fn me(Authenticated(caller): Authenticated) -> Json<Me> {
    Json(Me {
        token_id: caller.token_id,
        token_name: caller.token_name.clone(),
        scopes: caller.scopes.iter().collect(),
    })
}
