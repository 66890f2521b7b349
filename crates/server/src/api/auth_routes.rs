//! `/api/v1/auth/…`: signing in, refreshing and signing out (public: they are how a caller gets
//! or gives up a credential); `/api/v1/me/password` and `/api/v1/me/totp…`: the caller's own
//! account security; `/api/v1/signing-keys`: rotating the key that signs access tokens.
//!
//! Sign-in and refresh answer the tokens in JSON (for the CLI and API clients) and as cookies
//! (for browsers, [`cookies`]). A refresh or sign-out that takes its refresh token from the
//! cookie rather than the body needs the CSRF header, like every cookie-authenticated write.

use axum::Json;
use axum::extract::State;
use axum::http::header::{LOCATION, SET_COOKIE, USER_AGENT};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use helvetia_api_types::{
    ChangePassword, DisableTotp, RecoveryCodes, RefreshToken, SignIn, SignedIn, SigningKeyRotated,
    TotpCode, TotpEnrolment,
};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Authenticated;
use super::client::ClientAddr;
use super::cookies;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::json::{ApiJson, ApiQuery};
use crate::usecases::account::{Issued, Origin};
use crate::usecases::signin;
use crate::usecases::{sessions, totp};

/// Why an account operation can answer 404.
const NO_ACCOUNT: &str = "The caller is a server-administration token, which has no account";

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(sign_in))
        .routes(routes!(refresh))
        .routes(routes!(sign_out))
        .routes(routes!(renew))
        .routes(routes!(change_password))
        .routes(routes!(start_totp, disable_totp))
        .routes(routes!(confirm_totp))
        .routes(routes!(rotate_signing_key))
}

/// Where a request came from, for the session and the audit log.
pub(crate) fn origin(client: ClientAddr, headers: &HeaderMap) -> Origin {
    Origin {
        client: client.label(),
        user_agent: headers
            .get(USER_AGENT)
            .and_then(|value| value.to_str().ok())
            .map(|agent| agent.chars().take(200).collect()),
    }
}

/// The JSON answer and the cookies of a session's new tokens.
fn issued(state: &AppState, issued: Issued, headers: &HeaderMap) -> Response {
    let secure = secure(state, headers);
    let set = cookies::session_cookies(&issued, secure);
    let body = SignedIn {
        access_token: issued.access_token,
        token_type: "Bearer".into(),
        expires_in: issued.expires_in,
        refresh_token: issued.refresh_token,
    };
    with_cookies(Json(body).into_response(), set)
}

pub(crate) fn secure(state: &AppState, headers: &HeaderMap) -> bool {
    cookies::cookie_secure(state.app.platform.settings.public_url(), headers)
}

pub(crate) fn with_cookies(mut response: Response, set: Vec<String>) -> Response {
    for cookie in set {
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(SET_COOKIE, value);
        }
    }
    response
}

/// The refresh token from the body, else from the cookie (then only with the CSRF header).
fn refresh_token(body: RefreshToken, headers: &HeaderMap) -> ApiResult<String> {
    if let Some(token) = body.refresh_token {
        return Ok(token);
    }
    let token = cookies::read(headers, cookies::REFRESH_COOKIE).ok_or(ApiError::InvalidToken)?;
    if !cookies::csrf_ok(&Method::POST, headers) {
        return Err(ApiError::Forbidden(
            "a refresh cookie needs the `X-CSRF-Token` header".into(),
        ));
    }
    Ok(token)
}

/// Sign in with an e-mail address and password (and a TOTP or recovery code when the account
/// has TOTP enabled). Every refusal answers the same 401 `invalid_credentials`, whether the
/// account is unknown, the password or code wrong, or the account locked after repeated
/// failures (5 in a row lock it for 1 minute, doubling per further failure up to an hour) or
/// disabled. An account with TOTP answers 401 `second_factor_required` to a right password
/// alone.
#[utoipa::path(
    post, path = "/api/v1/auth/signin", tag = "auth",
    request_body = SignIn,
    security(()),
    responses(
        (status = OK, body = SignedIn, description = "Signed in; also sets the session cookies"),
        (status = UNAUTHORIZED, body = ErrorBody, description = "Wrong e-mail address, password or code, a locked or disabled account (`invalid_credentials`), or a second factor needed (`second_factor_required`)"),
        (status = TOO_MANY_REQUESTS, body = ErrorBody, description = "Too many attempts; see `Retry-After`"),
    )
)]
async fn sign_in(
    State(state): State<AppState>,
    client: ClientAddr,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SignIn>,
) -> ApiResult<Response> {
    let tokens = signin::sign_in(&state.app, body, origin(client, &headers)).await?;
    Ok(issued(&state, tokens, &headers))
}

/// Exchange a refresh token (in the body, or the `helvetia_refresh` cookie) for new tokens.
/// Each refresh token works once; one presented again ends its whole session.
#[utoipa::path(
    post, path = "/api/v1/auth/refresh", tag = "auth",
    request_body = RefreshToken,
    security(()),
    responses(
        (status = OK, body = SignedIn, description = "New tokens; also sets the session cookies"),
        (status = UNAUTHORIZED, body = ErrorBody, description = "The refresh token is unknown, used, or its session ended"),
        (status = FORBIDDEN, body = ErrorBody, description = "The refresh token came from the cookie without `X-CSRF-Token`"),
        (status = TOO_MANY_REQUESTS, body = ErrorBody, description = "Too many attempts; see `Retry-After`"),
    )
)]
async fn refresh(
    State(state): State<AppState>,
    client: ClientAddr,
    headers: HeaderMap,
    ApiJson(body): ApiJson<RefreshToken>,
) -> ApiResult<Response> {
    let token = refresh_token(body, &headers)?;
    let tokens = sessions::refresh(&state.app, &token, origin(client, &headers)).await?;
    Ok(issued(&state, tokens, &headers))
}

/// Sign out: end the session of a refresh token (in the body, or the cookie). Its access tokens
/// stop working at once; the cookies are removed.
#[utoipa::path(
    post, path = "/api/v1/auth/signout", tag = "auth",
    request_body = RefreshToken,
    security(()),
    responses(
        (status = NO_CONTENT, description = "Signed out"),
        (status = UNAUTHORIZED, body = ErrorBody, description = "No such refresh token"),
        (status = FORBIDDEN, body = ErrorBody, description = "The refresh token came from the cookie without `X-CSRF-Token`"),
    )
)]
async fn sign_out(
    State(state): State<AppState>,
    client: ClientAddr,
    headers: HeaderMap,
    ApiJson(body): ApiJson<RefreshToken>,
) -> ApiResult<Response> {
    let token = refresh_token(body, &headers)?;
    sessions::sign_out(&state.app, &token, origin(client, &headers)).await?;
    let cleared = cookies::cleared(secure(&state, &headers));
    Ok(with_cookies(
        StatusCode::NO_CONTENT.into_response(),
        cleared,
    ))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct Renewal {
    /// The dashboard page to return to: a path on this server (anything else, and the
    /// default, is `/`).
    next: Option<String>,
}

/// Renew a browser's session and go back to a dashboard page: the refresh cookie (sent only
/// under `/api/v1/auth`) is exchanged for new tokens as `refresh` does, then the browser is
/// sent to `next`; without a usable refresh cookie, to the sign-in page. Dashboard pages send
/// a browser here when its access token has expired.
#[utoipa::path(
    get, path = "/api/v1/auth/renew", tag = "auth",
    params(Renewal),
    security(()),
    responses(
        (status = SEE_OTHER, description = "To `next` with the session cookies renewed, or to `/signin` with them removed"),
    )
)]
async fn renew(
    State(state): State<AppState>,
    client: ClientAddr,
    headers: HeaderMap,
    ApiQuery(renewal): ApiQuery<Renewal>,
) -> Response {
    let next = local_path(renewal.next.as_deref());
    let secure = secure(&state, &headers);
    let renewed = match cookies::read(&headers, cookies::REFRESH_COOKIE) {
        Some(token) => sessions::refresh(&state.app, &token, origin(client, &headers))
            .await
            .ok(),
        None => None,
    };
    match renewed {
        Some(issued) => with_cookies(see_other(next), cookies::session_cookies(&issued, secure)),
        None => with_cookies(see_other(&sign_in_page(next)), cookies::cleared(secure)),
    }
}

/// `next` when it is a path on this server, else `/`: a link cannot send a browser elsewhere.
pub(crate) fn local_path(next: Option<&str>) -> &str {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.starts_with("/\\")
                && !path.chars().any(char::is_control) =>
        {
            path
        }
        _ => "/",
    }
}

/// The dashboard's sign-in page, returning to `next` after.
pub(crate) fn sign_in_page(next: &str) -> String {
    let next: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
    format!("/signin?next={next}")
}

/// A `303 See Other` to `location` (a path of this server).
pub(crate) fn see_other(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(location) => (StatusCode::SEE_OTHER, [(LOCATION, location)]).into_response(),
        Err(_) => (
            StatusCode::SEE_OTHER,
            [(LOCATION, HeaderValue::from_static("/"))],
        )
            .into_response(),
    }
}

/// Change the caller's password. Every other session of the caller ends.
#[utoipa::path(
    post, path = "/api/v1/me/password", tag = "auth",
    request_body = ChangePassword,
    security(("token" = ["admin"])),
    responses(
        (status = NO_CONTENT, description = "Changed"),
        (status = NOT_FOUND, body = ErrorBody, description = NO_ACCOUNT),
    )
)]
async fn change_password(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiJson(body): ApiJson<ChangePassword>,
) -> ApiResult<StatusCode> {
    signin::change_password(&state.app, &caller, body).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Begin TOTP enrolment: a new secret for an authenticator app, shown this once. TOTP is on
/// after `POST /api/v1/me/totp/confirm`.
#[utoipa::path(
    post, path = "/api/v1/me/totp", tag = "auth",
    security(("token" = ["admin"])),
    responses(
        (status = OK, body = TotpEnrolment),
        (status = CONFLICT, body = ErrorBody, description = "TOTP is enabled already"),
        (status = NOT_FOUND, body = ErrorBody, description = NO_ACCOUNT),
    )
)]
async fn start_totp(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> ApiResult<Json<TotpEnrolment>> {
    Ok(Json(totp::start(&state.app, &caller).await?))
}

/// Confirm TOTP enrolment with the app's current code: TOTP is on, and the answer holds the
/// recovery codes, shown this once.
#[utoipa::path(
    post, path = "/api/v1/me/totp/confirm", tag = "auth",
    request_body = TotpCode,
    security(("token" = ["admin"])),
    responses(
        (status = OK, body = RecoveryCodes),
        (status = CONFLICT, body = ErrorBody, description = "No enrolment in progress, or TOTP is enabled already"),
        (status = NOT_FOUND, body = ErrorBody, description = NO_ACCOUNT),
    )
)]
async fn confirm_totp(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiJson(body): ApiJson<TotpCode>,
) -> ApiResult<Json<RecoveryCodes>> {
    Ok(Json(totp::confirm(&state.app, &caller, body).await?))
}

/// Turn TOTP off, with the account's password or a current code.
#[utoipa::path(
    delete, path = "/api/v1/me/totp", tag = "auth",
    request_body = DisableTotp,
    security(("token" = ["admin"])),
    responses(
        (status = NO_CONTENT, description = "TOTP is off; the recovery codes are gone"),
        (status = CONFLICT, body = ErrorBody, description = "TOTP is not enabled"),
        (status = NOT_FOUND, body = ErrorBody, description = NO_ACCOUNT),
    )
)]
async fn disable_totp(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiJson(body): ApiJson<DisableTotp>,
) -> ApiResult<StatusCode> {
    totp::disable(&state.app, &caller, body).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Rotate the key that signs access tokens (instance administrators). Tokens signed by the
/// previous key keep verifying until they expire.
#[utoipa::path(
    post, path = "/api/v1/signing-keys", tag = "auth",
    security(("token" = ["admin"])),
    responses((status = OK, body = SigningKeyRotated))
)]
async fn rotate_signing_key(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> ApiResult<Json<SigningKeyRotated>> {
    Ok(Json(
        sessions::rotate_signing_key(&state.app, &caller).await?,
    ))
}
