//! What tests set up: users, the signed-in browser, installations, expired tokens. The same
//! operations back [`super::FakeGitHub`]'s methods and, under `{web}/_fake/`, a small JSON API
//! for tests that run the fake as its own process (the `fake-github` binary): `users`,
//! `sign-in`, `installations`, `apps`, `expire-tokens`, `tokens`, `deliveries`.

use std::path::PathBuf;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

use super::state::{self, Account, Installation, Repo, Shared, User};

impl Shared {
    pub(crate) fn add_user(&self, login: &str, email: &str, orgs: &[&str]) -> i64 {
        let mut state = self.lock();
        let id = state.next_id();
        state.accounts.push(Account {
            id,
            login: login.to_owned(),
            organization: false,
        });
        for org in orgs {
            state.account(org);
        }
        state.users.push(User {
            id,
            login: login.to_owned(),
            email: email.to_owned(),
            orgs: orgs.iter().map(|org| (*org).to_owned()).collect(),
        });
        id
    }

    /// False when there is no such user.
    pub(crate) fn sign_in_as(&self, login: &str) -> bool {
        let mut state = self.lock();
        let Some(id) = state.users.iter().find(|u| u.login == login).map(|u| u.id) else {
            return false;
        };
        state.signed_in = Some(id);
        true
    }

    pub(crate) fn add_installation(
        &self,
        account: &str,
        repos: Vec<(String, Option<PathBuf>, bool)>,
    ) -> i64 {
        let mut state = self.lock();
        let account = state.account(account);
        let id = state.next_id();
        let repos = repos
            .into_iter()
            .map(|(name, dir, private)| Repo {
                id: state.next_id(),
                name,
                private,
                dir,
            })
            .collect();
        state.installations.push(Installation {
            id,
            account,
            repos,
            created_at: state::now(),
        });
        id
    }

    pub(crate) fn expire_tokens(&self) {
        let mut state = self.lock();
        let past = state::now() - 1;
        for token in &mut state.installation_tokens {
            token.expires_at = past;
        }
    }
}

pub(super) fn routes() -> Router<Shared> {
    Router::new()
        .route("/users", post(add_user))
        .route("/sign-in", post(sign_in))
        .route("/installations", post(add_installation))
        .route("/expire-tokens", post(expire_tokens))
        .route("/tokens", get(tokens))
        .route("/apps", post(create_app))
        .route("/deliveries", post(deliver))
}

#[derive(Deserialize)]
struct NewUser {
    login: String,
    email: String,
    #[serde(default)]
    orgs: Vec<String>,
}

async fn add_user(State(shared): State<Shared>, axum::Json(user): axum::Json<NewUser>) -> Response {
    let orgs: Vec<&str> = user.orgs.iter().map(String::as_str).collect();
    let id = shared.add_user(&user.login, &user.email, &orgs);
    (StatusCode::CREATED, axum::Json(json!({"id": id}))).into_response()
}

#[derive(Deserialize)]
struct SignIn {
    login: String,
}

async fn sign_in(State(shared): State<Shared>, axum::Json(body): axum::Json<SignIn>) -> StatusCode {
    if shared.sign_in_as(&body.login) {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    }
}

#[derive(Deserialize)]
struct NewRepo {
    name: String,
    dir: Option<PathBuf>,
    #[serde(default)]
    private: bool,
}

#[derive(Deserialize)]
struct NewInstallation {
    account: String,
    repos: Vec<NewRepo>,
}

async fn add_installation(
    State(shared): State<Shared>,
    axum::Json(body): axum::Json<NewInstallation>,
) -> Response {
    let repos = body
        .repos
        .into_iter()
        .map(|r| (r.name, r.dir, r.private))
        .collect();
    let id = shared.add_installation(&body.account, repos);
    (StatusCode::CREATED, axum::Json(json!({"id": id}))).into_response()
}

async fn expire_tokens(State(shared): State<Shared>) -> StatusCode {
    shared.expire_tokens();
    StatusCode::NO_CONTENT
}

async fn tokens(State(shared): State<Shared>) -> Response {
    let state = shared.lock();
    let tokens: Vec<&str> = state
        .installation_tokens
        .iter()
        .map(|t| t.token.as_str())
        .collect();
    axum::Json(json!(tokens)).into_response()
}

#[derive(Deserialize)]
struct NewApp {
    name: String,
}

/// The App's values as an administrator would copy them from GitHub's settings page.
async fn create_app(State(shared): State<Shared>, axum::Json(new): axum::Json<NewApp>) -> Response {
    let app = super::app::create(&shared, super::app::Manifest::named(&new.name), None).await;
    (StatusCode::CREATED, axum::Json(app)).into_response()
}

#[derive(Deserialize)]
struct NewDelivery {
    url: String,
    event: String,
    payload: serde_json::Value,
}

/// Sends a signed webhook delivery; its GUID and the receiver's status.
async fn deliver(
    State(shared): State<Shared>,
    axum::Json(new): axum::Json<NewDelivery>,
) -> Response {
    match shared.deliver(&new.url, &new.event, &new.payload).await {
        Ok((guid, status)) => {
            axum::Json(json!({"guid": guid, "status": status.as_u16()})).into_response()
        }
        Err(error) => (StatusCode::BAD_GATEWAY, error).into_response(),
    }
}
