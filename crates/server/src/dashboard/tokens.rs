//! `/tokens`: the viewer's API tokens (never their values) — making one with scopes, a team
//! and an expiry (its value shown once, to copy), revoking one.

use askama::Template;
use axum::extract::{Path, State};
use helvetia_api_types::CreateToken;
use helvetia_core::auth::{ApiToken, Scope};
use serde::Deserialize;

use super::form::{Checked, NoFields};
use super::page::{Chrome, PageResult, Viewer, render};
use super::services::Flash;
use super::views::moment;
use crate::api::AppState;
use crate::usecases::{App, tokens};

#[derive(Template)]
#[template(path = "tokens.html")]
struct TokensPage {
    chrome: Chrome,
    tokens: Vec<TokenRow>,
    scopes: [Scope; 5],
    /// A token just made: its value, shown this once.
    created: Option<String>,
    flash: Option<Flash>,
}

struct TokenRow {
    id: i64,
    name: String,
    hint: String,
    scopes: String,
    team: String,
    created: String,
    expires: Option<String>,
    last_used: Option<String>,
    revoked: bool,
}

impl From<ApiToken> for TokenRow {
    fn from(token: ApiToken) -> Self {
        TokenRow {
            id: token.id,
            hint: token.hint,
            scopes: token
                .scopes
                .iter()
                .map(Scope::as_str)
                .collect::<Vec<_>>()
                .join(", "),
            team: token.team.unwrap_or_else(|| "all of yours".to_owned()),
            created: moment(token.created_at),
            expires: token.expires_at.map(moment),
            last_used: token.last_used_at.map(moment),
            revoked: token.revoked_at.is_some(),
            name: token.name,
        }
    }
}

async fn tokens_page(
    app: &App,
    viewer: &Viewer,
    created: Option<String>,
    flash: Option<Flash>,
) -> PageResult {
    let tokens = tokens::list(app, &viewer.caller, None)
        .await?
        .into_iter()
        .map(TokenRow::from)
        .collect();
    let page = TokensPage {
        chrome: viewer.chrome("API tokens"),
        tokens,
        scopes: Scope::ALL,
        created,
        flash,
    };
    Ok(Flash::answer(page.flash.as_ref(), render(&page)))
}

/// `GET /tokens`.
pub async fn page(State(state): State<AppState>, viewer: Viewer) -> PageResult {
    tokens_page(&state.app, &viewer, None, None).await
}

/// The new-token form: one checkbox per scope (a form cannot send a list under one name to
/// `serde_urlencoded`), named after the scope.
#[derive(Deserialize)]
pub struct NewToken {
    name: String,
    read: Option<String>,
    deploy: Option<String>,
    write: Option<String>,
    #[serde(rename = "secrets:reveal")]
    secrets_reveal: Option<String>,
    admin: Option<String>,
    /// Days, or empty for never.
    expires_in_days: Option<String>,
    team: Option<String>,
}

impl NewToken {
    fn input(self) -> CreateToken {
        let chosen = [
            (Scope::Read, self.read),
            (Scope::Deploy, self.deploy),
            (Scope::Write, self.write),
            (Scope::SecretsReveal, self.secrets_reveal),
            (Scope::Admin, self.admin),
        ];
        CreateToken {
            name: self.name,
            scopes: chosen
                .into_iter()
                .filter(|(_, checked)| checked.is_some())
                .map(|(scope, _)| scope.as_str().to_owned())
                .collect(),
            expires_in_days: self
                .expires_in_days
                .and_then(|days| days.trim().parse().ok()),
            team: self.team.filter(|team| !team.trim().is_empty()),
        }
    }
}

/// `POST /tokens`: the page again, with the new token's value shown once.
pub async fn create(
    State(state): State<AppState>,
    viewer: Viewer,
    Checked(form): Checked<NewToken>,
) -> PageResult {
    match tokens::create(&state.app, &viewer.caller, form.input()).await {
        Ok(created) => {
            let flash = Flash::ok(format!(
                "Made {}. Copy its value now: it is not shown again.",
                created.info.name
            ));
            tokens_page(&state.app, &viewer, Some(created.token), Some(flash)).await
        }
        Err(error) => tokens_page(&state.app, &viewer, None, Some(Flash::failure(error))).await,
    }
}

/// `POST /tokens/{id}/revoke`: it stops working at once. The viewer's last way in is refused
/// (the API's `force` is not offered here).
pub async fn revoke(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<i64>,
    Checked(NoFields {}): Checked<NoFields>,
) -> PageResult {
    let flash = match tokens::revoke(&state.app, &viewer.caller, id, false).await {
        Ok(()) => Flash::ok(format!("Token #{id} revoked: it no longer works.")),
        Err(error) => Flash::failure(error),
    };
    tokens_page(&state.app, &viewer, None, Some(flash)).await
}
