//! `/api/v1/github/app…`: the instance's GitHub App (instance administrators) — read, entered
//! by hand, or created through GitHub's manifest flow, whose callback is public (GitHub sends
//! the administrator's browser there; the single-use state it carries is the check).

use axum::Json;
use axum::extract::State;
use helvetia_api_types::{GitHubAppInput, GitHubAppView, GitHubManifestForm, StartGitHubManifest};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Authenticated;
use super::client::ClientAddr;
use super::error::{ApiResult, ErrorBody};
use super::json::{ApiJson, ApiQuery};
use crate::usecases::github;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(github_app, configure_github_app))
        .routes(routes!(start_github_manifest))
        .routes(routes!(github_manifest_callback))
}

/// The instance's GitHub App: its ids and whether its secrets are set — never a secret.
#[utoipa::path(
    get, path = "/api/v1/github/app", tag = "github",
    security(("token" = ["admin"])),
    responses((status = OK, body = GitHubAppView))
)]
async fn github_app(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> ApiResult<Json<GitHubAppView>> {
    Ok(Json(github::app_config(&state.app, &caller).await?))
}

/// Enter the instance's GitHub App by hand (replacing any); its secrets are stored sealed.
#[utoipa::path(
    put, path = "/api/v1/github/app", tag = "github",
    request_body = GitHubAppInput,
    security(("token" = ["admin"])),
    responses((status = OK, body = GitHubAppView))
)]
async fn configure_github_app(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiJson(body): ApiJson<GitHubAppInput>,
) -> ApiResult<Json<GitHubAppView>> {
    Ok(Json(github::configure(&state.app, &caller, body).await?))
}

/// Start creating the GitHub App on GitHub: the form to post there (manifest and a
/// single-use state, good for 10 minutes).
#[utoipa::path(
    post, path = "/api/v1/github/app/manifest", tag = "github",
    request_body = StartGitHubManifest,
    security(("token" = ["admin"])),
    responses((status = OK, body = GitHubManifestForm))
)]
async fn start_github_manifest(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiJson(body): ApiJson<StartGitHubManifest>,
) -> ApiResult<Json<GitHubManifestForm>> {
    Ok(Json(
        github::start_manifest(&state.app, &caller, body).await?,
    ))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ManifestCallback {
    /// The code GitHub made for the new App.
    code: String,
    /// The state of a pending manifest flow.
    state: String,
}

/// Where GitHub sends the browser once the App is created: the code becomes the App, stored
/// sealed.
#[utoipa::path(
    get, path = "/api/v1/github/app/callback", tag = "github",
    params(ManifestCallback),
    responses(
        (status = OK, body = GitHubAppView),
        (status = NOT_FOUND, body = ErrorBody, description = "The state is unknown, used or expired"),
        (status = UNPROCESSABLE_ENTITY, body = ErrorBody, description = "GitHub refused the code"),
    )
)]
async fn github_manifest_callback(
    State(state): State<AppState>,
    client: ClientAddr,
    ApiQuery(query): ApiQuery<ManifestCallback>,
) -> ApiResult<Json<GitHubAppView>> {
    Ok(Json(
        github::finish_manifest(&state.app, &query.code, &query.state, client.label()).await?,
    ))
}
