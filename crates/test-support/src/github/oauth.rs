//! The App's user authorization ("Sign in with GitHub"): `GET {web}/login/oauth/authorize`
//! approves at once as the user the browser is signed in as, and `POST
//! {web}/login/oauth/access_token` exchanges the code, checking the client secret, the
//! redirect URI and the PKCE verifier. Like GitHub, it reports a bad exchange as HTTP 200 with
//! an `error` field.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::same_secret;
use super::state::{self, AuthorizationGrant, Shared};

/// How long an authorization code stays valid, as on GitHub.
const CODE_LIFETIME_SECONDS: i64 = 600;
/// A user token's lifetime when the App's user tokens expire (GitHub's default).
const USER_TOKEN_LIFETIME_SECONDS: i64 = 8 * 3600;

pub(super) fn routes() -> Router<Shared> {
    Router::new()
        .route("/login/oauth/authorize", get(authorize))
        .route("/login/oauth/access_token", post(access_token))
}

#[derive(Deserialize)]
struct AuthorizeQuery {
    client_id: Option<String>,
    redirect_uri: Option<String>,
    state: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

/// `redirect?name=value&…`, keeping a query `redirect` already has.
fn with_parameters(redirect: &str, parameters: &[(&str, &str)]) -> String {
    let separator = if redirect.contains('?') { '&' } else { '?' };
    let query = serde_urlencoded::to_string(parameters).unwrap_or_default();
    format!("{redirect}{separator}{query}")
}

async fn authorize(State(shared): State<Shared>, Query(query): Query<AuthorizeQuery>) -> Response {
    let mut state = shared.lock();
    let Some(app) = state
        .apps
        .iter()
        .find(|a| Some(&a.client_id) == query.client_id.as_ref())
    else {
        return (StatusCode::NOT_FOUND, "no App has this client_id").into_response();
    };
    // Without registered callback URLs (an App made by `create_app`) any redirect goes.
    let registered = app.callback_urls.first().cloned();
    let redirect_uri = match (query.redirect_uri, registered) {
        (Some(uri), None) => uri,
        (Some(uri), Some(registered)) => {
            if !app
                .callback_urls
                .iter()
                .any(|c| uri.starts_with(c.as_str()))
            {
                let mut parameters = vec![
                    ("error", "redirect_uri_mismatch"),
                    (
                        "error_description",
                        "The redirect_uri MUST match the registered callback URL for this application.",
                    ),
                ];
                if let Some(browser_state) = &query.state {
                    parameters.push(("state", browser_state));
                }
                return Redirect::to(&with_parameters(&registered, &parameters)).into_response();
            }
            uri
        }
        (None, Some(registered)) => registered,
        (None, None) => {
            return (
                StatusCode::BAD_REQUEST,
                "no redirect_uri and no callback URL",
            )
                .into_response();
        }
    };
    let client_id = app.client_id.clone();
    if query.code_challenge.is_some() && query.code_challenge_method.as_deref() != Some("S256") {
        let mut parameters = vec![
            ("error", "invalid_request"),
            ("error_description", "code_challenge_method must be S256"),
        ];
        if let Some(browser_state) = &query.state {
            parameters.push(("state", browser_state));
        }
        return Redirect::to(&with_parameters(&redirect_uri, &parameters)).into_response();
    }
    let Some(user_id) = state.signed_in else {
        return (
            StatusCode::UNAUTHORIZED,
            "nobody is signed in to the fake GitHub (FakeGitHub::sign_in_as)",
        )
            .into_response();
    };
    let code = hex::encode(rand::random::<[u8; 10]>());
    state.authorization_codes.insert(
        code.clone(),
        AuthorizationGrant {
            client_id,
            user_id,
            redirect_uri: redirect_uri.clone(),
            code_challenge: query.code_challenge,
            issued_at: state::now(),
        },
    );
    let mut parameters = vec![("code", code.as_str())];
    if let Some(browser_state) = &query.state {
        parameters.push(("state", browser_state));
    }
    // GitHub answers 302 Found here.
    (
        StatusCode::FOUND,
        [(
            header::LOCATION,
            with_parameters(&redirect_uri, &parameters),
        )],
    )
        .into_response()
}

#[derive(Deserialize, Default)]
struct ExchangeParameters {
    client_id: Option<String>,
    client_secret: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
}

impl ExchangeParameters {
    /// Fills what the body left out from the query, as GitHub accepts either.
    fn or(self, other: ExchangeParameters) -> ExchangeParameters {
        ExchangeParameters {
            client_id: self.client_id.or(other.client_id),
            client_secret: self.client_secret.or(other.client_secret),
            code: self.code.or(other.code),
            redirect_uri: self.redirect_uri.or(other.redirect_uri),
            code_verifier: self.code_verifier.or(other.code_verifier),
        }
    }
}

/// GitHub's answer: JSON when asked for it, else form-encoded; always 200.
fn answer(headers: &HeaderMap, body: Value) -> Response {
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    if wants_json {
        return axum::Json(body).into_response();
    }
    let pairs: Vec<(String, String)> = body
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| {
            let v = v
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| v.to_string());
            (k.clone(), v)
        })
        .collect();
    (
        [(header::CONTENT_TYPE, "application/x-www-form-urlencoded")],
        serde_urlencoded::to_string(pairs).unwrap_or_default(),
    )
        .into_response()
}

fn error(headers: &HeaderMap, error: &str, description: &str, anchor: &str) -> Response {
    answer(
        headers,
        json!({
            "error": error,
            "error_description": description,
            "error_uri": format!("https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#{anchor}"),
        }),
    )
}

async fn access_token(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<ExchangeParameters>,
    body: Bytes,
) -> Response {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    let parsed: Option<ExchangeParameters> = if body.is_empty() {
        Some(ExchangeParameters::default())
    } else if is_json {
        serde_json::from_slice(&body).ok()
    } else {
        serde_urlencoded::from_bytes(&body).ok()
    };
    let Some(parameters) = parsed.map(|p| p.or(query)) else {
        return (StatusCode::BAD_REQUEST, "unreadable body").into_response();
    };
    let mut state = shared.lock();
    let app = state.apps.iter().find(|a| {
        Some(&a.client_id) == parameters.client_id.as_ref()
            && parameters
                .client_secret
                .as_deref()
                .is_some_and(|secret| same_secret(secret, &a.client_secret))
    });
    let Some(app) = app else {
        return error(
            &headers,
            "incorrect_client_credentials",
            "The client_id and/or client_secret passed are incorrect.",
            "incorrect-client-credentials",
        );
    };
    let client_id = app.client_id.clone();
    let bad_code = || {
        error(
            &headers,
            "bad_verification_code",
            "The code passed is incorrect or expired.",
            "bad-verification-code",
        )
    };
    // A code is spent by its first exchange, successful or not.
    let Some(grant) = parameters
        .code
        .as_ref()
        .and_then(|code| state.authorization_codes.remove(code))
    else {
        return bad_code();
    };
    if grant.client_id != client_id || state::now() - grant.issued_at > CODE_LIFETIME_SECONDS {
        return bad_code();
    }
    if parameters
        .redirect_uri
        .as_ref()
        .is_some_and(|uri| *uri != grant.redirect_uri)
    {
        return error(
            &headers,
            "redirect_uri_mismatch",
            "The redirect_uri MUST match the registered callback URL for this application.",
            "redirect-uri-mismatch",
        );
    }
    if let Some(challenge) = &grant.code_challenge {
        let verified = parameters.code_verifier.as_ref().is_some_and(|verifier| {
            same_secret(&URL_SAFE_NO_PAD.encode(Sha256::digest(verifier)), challenge)
        });
        if !verified {
            return bad_code();
        }
    }
    let token = state::random_token("ghu_");
    state.user_tokens.insert(token.clone(), grant.user_id);
    answer(
        &headers,
        json!({
            "access_token": token,
            "expires_in": USER_TOKEN_LIFETIME_SECONDS,
            "refresh_token": state::random_token("ghr_"),
            "refresh_token_expires_in": 15_897_600,
            "scope": "",
            "token_type": "bearer",
        }),
    )
}
