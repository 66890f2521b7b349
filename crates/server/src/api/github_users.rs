//! Sign in with GitHub (`/api/v1/auth/github…`, public: they are how a browser gets a
//! session), linking the caller's account to GitHub (`/api/v1/me/github`) and what the caller
//! reaches through Helvetia's GitHub App (`/api/v1/github/installations…`). The use cases are
//! in `usecases::github_users`.
//!
//! The browser that starts a sign-in gets the `helvetia_github` cookie (HttpOnly,
//! `SameSite=Lax` so that it comes back with GitHub's top-level redirect, sent only to
//! `/api/v1/auth/github`); the callback is only honoured in that browser.

use axum::Json;
use axum::extract::State;
use axum::http::header::LOCATION;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use helvetia_api_types::{GitHubAuthorize, GitHubInstallation, GitHubRepository};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Authenticated;
use super::auth_routes::{origin, secure, with_cookies};
use super::client::ClientAddr;
use super::cookies;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::json::{ApiPath, ApiQuery};
use crate::usecases::github_repos;
use crate::usecases::github_users::{self, AUTHORIZATION_LIFETIME, Completed, Started};

/// The cookie that binds a sign-in with GitHub to the browser that started it.
const BROWSER_COOKIE: &str = "helvetia_github";
const BROWSER_COOKIE_PATH: &str = "/api/v1/auth/github";

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(start_github_sign_in))
        .routes(routes!(github_callback))
        .routes(routes!(start_github_link))
        .routes(routes!(github_installations))
        .routes(routes!(github_repositories))
}

fn browser_cookie(value: &str, max_age: i64, secure: bool) -> String {
    let mut cookie = format!(
        "{BROWSER_COOKIE}={value}; Path={BROWSER_COOKIE_PATH}; Max-Age={max_age}; \
         SameSite=Lax; HttpOnly"
    );
    if secure {
        cookie.push_str("; Secure");
    }
    cookie
}

fn started_cookie(state: &AppState, headers: &HeaderMap, started: &Started) -> String {
    let max_age = AUTHORIZATION_LIFETIME.as_secs();
    browser_cookie(&started.browser_token, max_age, secure(state, headers))
}

/// Sign in with GitHub: redirects the browser to GitHub to authorize Helvetia's App, which
/// sends it back to the callback. Accounts are matched by GitHub user id; an unknown GitHub
/// user gets an account only if sign-up is open to them (`--signup-domains` for their primary
/// verified e-mail address, or `--signup-github-orgs`).
#[utoipa::path(
    get, path = "/api/v1/auth/github", tag = "auth",
    security(()),
    responses(
        (status = FOUND, description = "To GitHub's authorization page; sets the `helvetia_github` cookie"),
        (status = NOT_FOUND, body = ErrorBody, description = "No GitHub App is configured"),
    )
)]
async fn start_github_sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let started = github_users::start(&state.app, None).await?;
    let cookie = started_cookie(&state, &headers, &started);
    let location = HeaderValue::from_str(&started.authorize_url)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let response = (StatusCode::FOUND, [(LOCATION, location)]).into_response();
    Ok(with_cookies(response, vec![cookie]))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct CallbackQuery {
    /// GitHub's authorization code.
    code: Option<String>,
    /// The `state` Helvetia sent to GitHub.
    state: Option<String>,
    /// Set by GitHub when the user did not authorize the App.
    error: Option<String>,
    error_description: Option<String>,
}

/// Where GitHub sends the browser back. Honoured once, within 10 minutes of the start, in the
/// browser that started the sign-in; signs in (setting the session cookies) or links the
/// account that started it, then redirects to `/`.
#[utoipa::path(
    get, path = "/api/v1/auth/github/callback", tag = "auth",
    params(CallbackQuery),
    security(()),
    responses(
        (status = SEE_OTHER, description = "Signed in (the session cookies are set) or linked; to `/`"),
        (status = BAD_REQUEST, body = ErrorBody, description = "The `state` is missing, unknown, used, expired or another browser's, or GitHub refused the code"),
        (status = UNAUTHORIZED, body = ErrorBody, description = "The account is disabled"),
        (status = FORBIDDEN, body = ErrorBody, description = "An unknown GitHub user to whom sign-up is not open"),
        (status = CONFLICT, body = ErrorBody, description = "The GitHub account is linked to another account, or its e-mail address has an account that is not linked to it"),
        (status = NOT_FOUND, body = ErrorBody, description = "No GitHub App is configured"),
    )
)]
async fn github_callback(
    State(state): State<AppState>,
    client: ClientAddr,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<CallbackQuery>,
) -> ApiResult<Response> {
    if let Some(error) = query.error {
        let why = query.error_description.unwrap_or(error);
        return Err(ApiError::BadRequest(format!(
            "GitHub did not authorize the sign-in: {why}"
        )));
    }
    let (Some(code), Some(github_state)) = (query.code, query.state) else {
        return Err(ApiError::BadRequest(
            "the callback needs GitHub's `code` and `state`: start the sign-in with GitHub again"
                .into(),
        ));
    };
    let browser = cookies::read(&headers, BROWSER_COOKIE);
    let completed = github_users::callback(
        &state.app,
        &code,
        &github_state,
        browser.as_deref(),
        origin(client, &headers),
    )
    .await?;
    let secure = secure(&state, &headers);
    let mut set = vec![browser_cookie("", 0, secure)];
    if let Completed::SignedIn(issued) = completed {
        set.extend(cookies::session_cookies(&issued, secure));
    }
    let response = (
        StatusCode::SEE_OTHER,
        [(LOCATION, HeaderValue::from_static("/"))],
    );
    Ok(with_cookies(response.into_response(), set))
}

/// Link the caller's account to a GitHub account: answers the GitHub page to send the browser
/// to (and sets the `helvetia_github` cookie); the callback then links the GitHub account that
/// authorized to this account — and to no other.
#[utoipa::path(
    post, path = "/api/v1/me/github", tag = "auth",
    security(("token" = ["admin"])),
    responses(
        (status = OK, body = GitHubAuthorize),
        (status = NOT_FOUND, body = ErrorBody, description = "No GitHub App is configured, or the caller is a server-administration token, which has no account"),
    )
)]
async fn start_github_link(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let started = github_users::start(&state.app, Some(&caller)).await?;
    let cookie = started_cookie(&state, &headers, &started);
    let body = GitHubAuthorize {
        authorize_url: started.authorize_url,
    };
    Ok(with_cookies(Json(body).into_response(), vec![cookie]))
}

/// The installations of Helvetia's GitHub App that the caller reaches on GitHub (asked of
/// GitHub at most once a minute per user).
#[utoipa::path(
    get, path = "/api/v1/github/installations", tag = "github",
    security(("token" = ["read"])),
    responses(
        (status = OK, body = Vec<GitHubInstallation>),
        (status = CONFLICT, body = ErrorBody, description = "The caller has not signed in with GitHub or linked GitHub (or that authorization expired)"),
        (status = NOT_FOUND, body = ErrorBody, description = "No GitHub App is configured, or the caller has no account"),
    )
)]
async fn github_installations(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> ApiResult<Json<Vec<GitHubInstallation>>> {
    Ok(Json(
        github_repos::installations(&state.app, &caller).await?,
    ))
}

/// The `{installation}` segment.
#[derive(Deserialize)]
struct InstallationId {
    installation: i64,
}

/// The repositories an installation grants that the caller reaches on GitHub, every page
/// (asked of GitHub at most once a minute per user and installation).
#[utoipa::path(
    get, path = "/api/v1/github/installations/{installation}/repositories", tag = "github",
    params(("installation" = i64, Path, description = "GitHub's installation id")),
    security(("token" = ["read"])),
    responses(
        (status = OK, body = Vec<GitHubRepository>),
        (status = CONFLICT, body = ErrorBody, description = "The caller has not signed in with GitHub or linked GitHub (or that authorization expired)"),
        (status = NOT_FOUND, body = ErrorBody, description = "No such installation reachable by the caller, no GitHub App configured, or the caller has no account"),
    )
)]
async fn github_repositories(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(InstallationId { installation }): ApiPath<InstallationId>,
) -> ApiResult<Json<Vec<GitHubRepository>>> {
    Ok(Json(
        github_repos::repositories(&state.app, &caller, installation).await?,
    ))
}
