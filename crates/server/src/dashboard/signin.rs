//! Signing in to the dashboard — with a password (and a TOTP or recovery code), with GitHub
//! (the API's flow, which comes back to `/`), or with an API token — and signing out.
//!
//! The sign-in form carries a CSRF token like every other (set with the page when the browser
//! has none), so another site cannot sign a browser in to an account of its choosing.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use helvetia_api_types::SignIn;
use helvetia_core::auth::TOKEN_PREFIX;
use jiff::Timestamp;
use serde::Deserialize;

use super::assets::{self, Urls};
use super::form::{Checked, NoFields};
use super::page::{PageError, Viewer, render};
use crate::api::AppState;
use crate::api::auth::token_caller;
use crate::api::auth_routes::{local_path, origin, secure, see_other, with_cookies};
use crate::api::client::ClientAddr;
use crate::api::cookies;
use crate::api::error::ApiError;
use crate::sessions::random_token;
use crate::usecases::{github_users, sessions, signin};

#[derive(Deserialize)]
pub struct Next {
    next: Option<String>,
}

#[derive(Template)]
#[template(path = "signin.html")]
struct SignInPage {
    assets: &'static Urls,
    csrf: String,
    next: String,
    email: String,
    error: Option<String>,
    needs_code: bool,
    github: bool,
}

impl SignInPage {
    async fn new(
        state: &AppState,
        headers: &HeaderMap,
        next: &str,
    ) -> (SignInPage, Option<String>) {
        let (csrf, set) = match cookies::read(headers, cookies::CSRF_COOKIE) {
            Some(csrf) => (csrf, None),
            None => {
                let csrf = random_token();
                let set = cookies::csrf_cookie(&csrf, secure(state, headers));
                (csrf, Some(set))
            }
        };
        let github = github_users::available(&state.app).await.unwrap_or(false);
        let page = SignInPage {
            assets: assets::urls(),
            csrf,
            next: next.to_owned(),
            email: String::new(),
            error: None,
            needs_code: false,
            github,
        };
        (page, set)
    }

    fn answer(self, status: StatusCode, set: Option<String>) -> Response {
        let mut response = render(&self);
        *response.status_mut() = status;
        with_cookies(response, set.into_iter().collect())
    }
}

/// `GET /signin`.
pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<Next>,
) -> Response {
    let next = local_path(query.next.as_deref());
    let (page, set) = SignInPage::new(&state, &headers, next).await;
    page.answer(StatusCode::OK, set)
}

#[derive(Deserialize)]
pub struct PasswordForm {
    email: String,
    password: String,
    /// A TOTP code (six digits) or a recovery code.
    code: Option<String>,
    next: Option<String>,
}

/// `POST /signin`: a password, and the second factor when the account has one.
pub async fn password(
    State(state): State<AppState>,
    client: ClientAddr,
    headers: HeaderMap,
    Checked(form): Checked<PasswordForm>,
) -> Response {
    let next = local_path(form.next.as_deref()).to_owned();
    let code = form
        .code
        .map(|code| code.trim().to_owned())
        .filter(|c| !c.is_empty());
    let is_totp = code
        .as_deref()
        .is_some_and(|code| code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()));
    let (totp_code, recovery_code) = if is_totp { (code, None) } else { (None, code) };
    let input = SignIn {
        email: form.email.clone(),
        password: form.password,
        totp_code,
        recovery_code,
    };
    match signin::sign_in(&state.app, input, origin(client, &headers)).await {
        Ok(issued) => with_cookies(
            see_other(&next),
            cookies::session_cookies(&issued, secure(&state, &headers)),
        ),
        Err(error) => {
            let error = ApiError::from(error);
            error.log();
            let (mut page, set) = SignInPage::new(&state, &headers, &next).await;
            page.needs_code = matches!(error, ApiError::SecondFactorRequired);
            page.error = Some(if page.needs_code {
                "This account has two-factor authentication: enter the code from your \
                 authenticator app, or a recovery code."
                    .to_owned()
            } else {
                format!("{}.", capitalised(&error.to_string()))
            });
            page.email = form.email;
            page.answer(error.status(), set)
        }
    }
}

#[derive(Deserialize)]
pub struct TokenForm {
    token: String,
    next: Option<String>,
}

/// `POST /signin/token`: an API token (`hlv_…`) stands in for a session; what the dashboard
/// lets it do is what its scopes allow.
pub async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    Checked(form): Checked<TokenForm>,
) -> Response {
    let next = local_path(form.next.as_deref()).to_owned();
    let token = form.token.trim();
    let proved = if token.starts_with(TOKEN_PREFIX) {
        token_caller(&state, token, Timestamp::now()).await
    } else {
        Ok(None)
    };
    match proved {
        Ok(Some(_)) => with_cookies(
            see_other(&next),
            cookies::token_cookies(token, secure(&state, &headers)),
        ),
        Ok(None) => {
            let (mut page, set) = SignInPage::new(&state, &headers, &next).await;
            page.error = Some(format!(
                "That API token is unknown, expired or revoked (tokens start with `{TOKEN_PREFIX}`)."
            ));
            page.answer(StatusCode::UNAUTHORIZED, set)
        }
        Err(error) => PageError(error).into_response(),
    }
}

/// `POST /signout`: ends the session (an API token stays valid: it is only forgotten here).
pub async fn sign_out(
    State(state): State<AppState>,
    viewer: Viewer,
    client: ClientAddr,
    headers: HeaderMap,
    Checked(NoFields {}): Checked<NoFields>,
) -> Response {
    if let Err(error) = sessions::end(&state.app, &viewer.caller, origin(client, &headers)).await {
        return PageError::from(error).into_response();
    }
    with_cookies(
        see_other("/signin"),
        cookies::cleared(secure(&state, &headers)),
    )
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}
