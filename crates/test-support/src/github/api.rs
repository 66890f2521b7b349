//! What a user token (`ghu_…`) and an installation token (`ghs_…`) read: the user, their
//! e-mail addresses and organizations, the installations they reach and those installations'
//! repositories — paginated like GitHub, with `Link` headers.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use super::app::installation_json;
use super::state::{self, Shared, User, account_json, repo_json};
use super::{GitHubError, Page, bearer, with_link};

pub(super) fn routes() -> Router<Shared> {
    Router::new()
        .route("/user", get(user))
        .route("/user/emails", get(user_emails))
        .route("/user/orgs", get(user_orgs))
        .route("/user/installations", get(user_installations))
        .route(
            "/user/installations/{id}/repositories",
            get(user_installation_repositories),
        )
        .route("/installation/repositories", get(installation_repositories))
}

const BAD_CREDENTIALS: GitHubError = GitHubError(StatusCode::UNAUTHORIZED, "Bad credentials");

/// The GitHub user a user token belongs to.
fn authenticate_user<'a>(
    state: &'a state::State,
    headers: &HeaderMap,
) -> Result<&'a User, GitHubError> {
    let token = bearer(headers).ok_or(GitHubError(
        StatusCode::UNAUTHORIZED,
        "Requires authentication",
    ))?;
    let id = state.user_tokens.get(&token).ok_or(BAD_CREDENTIALS)?;
    state.user(*id).ok_or(BAD_CREDENTIALS)
}

async fn user(State(shared): State<Shared>, headers: HeaderMap) -> Result<Response, GitHubError> {
    let state = shared.lock();
    let user = authenticate_user(&state, &headers)?;
    let account = state
        .accounts
        .iter()
        .find(|a| a.id == user.id)
        .ok_or(BAD_CREDENTIALS)?;
    let mut body = account_json(account, &shared.web_url, &shared.api_url());
    body["name"] = json!(user.login);
    body["email"] = json!(user.email);
    Ok(axum::Json(body).into_response())
}

async fn user_emails(
    State(shared): State<Shared>,
    headers: HeaderMap,
) -> Result<Response, GitHubError> {
    let state = shared.lock();
    let user = authenticate_user(&state, &headers)?;
    let body = json!([{
        "email": user.email,
        "primary": true,
        "verified": true,
        "visibility": "private",
    }]);
    Ok(axum::Json(body).into_response())
}

async fn user_orgs(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Query(page): Query<Page>,
) -> Result<Response, GitHubError> {
    let state = shared.lock();
    let user = authenticate_user(&state, &headers)?;
    let api_url = shared.api_url();
    let orgs: Vec<Value> = state
        .accounts
        .iter()
        .filter(|a| user.orgs.contains(&a.login))
        .map(|org| {
            json!({
                "login": org.login,
                "id": org.id,
                "node_id": format!("MDEyOk9yZ2FuaXphdGlvbj{}", org.id),
                "url": format!("{api_url}/orgs/{}", org.login),
                "avatar_url": format!("{}/{}.png", shared.web_url, org.login),
                "description": null,
            })
        })
        .collect();
    let (items, link) = page.of(&orgs, &api_url, "/user/orgs");
    Ok(with_link(StatusCode::OK, Value::Array(items), link))
}

async fn user_installations(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Query(page): Query<Page>,
) -> Result<Response, GitHubError> {
    let state = shared.lock();
    let user = authenticate_user(&state, &headers)?;
    let api_url = shared.api_url();
    let all: Vec<Value> = state
        .user_installations(user.id)
        .into_iter()
        .map(|i| installation_json(&state, i, &shared.web_url, &api_url))
        .collect();
    let (items, link) = page.of(&all, &api_url, "/user/installations");
    let body = json!({"total_count": all.len(), "installations": items});
    Ok(with_link(StatusCode::OK, body, link))
}

/// `{total_count, repository_selection, repositories}` for one page of an installation's
/// repositories (all of them, or those `only` names).
fn repositories_page(
    shared: &Shared,
    installation: &state::Installation,
    only: Option<&Vec<String>>,
    page: &Page,
    path: &str,
) -> Response {
    let api_url = shared.api_url();
    let all: Vec<Value> = installation
        .repos
        .iter()
        .filter(|r| only.is_none_or(|names| names.contains(&r.name)))
        .map(|r| repo_json(installation, r, &shared.web_url, &api_url))
        .collect();
    let (items, link) = page.of(&all, &api_url, path);
    let body = json!({
        "total_count": all.len(),
        "repository_selection": "selected",
        "repositories": items,
    });
    with_link(StatusCode::OK, body, link)
}

async fn user_installation_repositories(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path(installation_id): Path<i64>,
    Query(page): Query<Page>,
) -> Result<Response, GitHubError> {
    let state = shared.lock();
    let user = authenticate_user(&state, &headers)?;
    let installation = state
        .user_installations(user.id)
        .into_iter()
        .find(|i| i.id == installation_id)
        .ok_or(GitHubError(StatusCode::NOT_FOUND, "Not Found"))?;
    let path = format!("/user/installations/{installation_id}/repositories");
    Ok(repositories_page(&shared, installation, None, &page, &path))
}

async fn installation_repositories(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Query(page): Query<Page>,
) -> Result<Response, GitHubError> {
    let state = shared.lock();
    let token = bearer(&headers)
        .and_then(|t| state.token_installation(&t))
        .ok_or(BAD_CREDENTIALS)?;
    let installation = state
        .installation(token.installation_id)
        .ok_or(BAD_CREDENTIALS)?;
    Ok(repositories_page(
        &shared,
        installation,
        token.repositories.as_ref(),
        &page,
        "/installation/repositories",
    ))
}
