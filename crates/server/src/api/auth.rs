//! Authentication and authorisation, applied to every route by one layer.
//!
//! Deny by default: a request passes without a token only if its route is on [`PUBLIC_ROUTES`].
//! Every other route needs a valid credential — an API token or a session's access token, as a
//! bearer token or (browsers) the session cookie with CSRF protection ([`cookies`]) — holding
//! the scope that the route's OpenAPI operation declares (`security(("token" = ["deploy"]))`).
//! The scope table is read from the generated OpenAPI document, so the document a client reads
//! is, by construction, the rule the server enforces; an operation that forgets to declare a
//! scope requires `admin`.

use std::collections::HashMap;

use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use helvetia_core::auth::{Caller, Scope, TOKEN_PREFIX, token_hash};
use jiff::Timestamp;

use super::AppState;
use super::client::ClientAddr;
use super::cookies;
use super::error::ApiError;
use crate::usecases::sessions;

/// Routes anyone may call. Everything else requires a token.
pub const PUBLIC_ROUTES: &[(Method, &str)] = &[
    (Method::GET, "/healthz"),
    (Method::GET, "/api/v1/openapi.json"),
    // A device login starts, and collects its token, before the CLI has a credential; the
    // page only shows a form (what it sends, the approval, needs a signed-in user).
    (Method::POST, "/api/v1/auth/device"),
    // Sign in with GitHub: the browser has no credential yet; the callback is bound to the
    // browser that started it and to a single-use `state`.
    (Method::GET, "/api/v1/auth/github"),
    (Method::GET, "/api/v1/auth/github/callback"),
    (Method::POST, "/api/v1/auth/device/token"),
    (Method::GET, "/device"),
    // GitHub sends the administrator's browser back here after creating the App; the
    // single-use state the flow stored decides.
    (Method::GET, "/api/v1/github/app/callback"),
    // Webhook receivers: a delivery proves its sender by its signature, checked first.
    (Method::POST, "/api/v1/hooks/{hook}/{source}"),
    (Method::POST, "/api/v1/github/webhook"),
    (Method::POST, "/api/v1/auth/signup"),
    (Method::POST, "/api/v1/auth/password-reset"),
    (Method::GET, "/signup"),
    (Method::GET, "/reset"),
    (Method::POST, "/api/v1/auth/signin"),
    (Method::POST, "/api/v1/auth/refresh"),
    (Method::POST, "/api/v1/auth/signout"),
    // Renews a browser's session from its refresh cookie, or sends it to sign in.
    (Method::GET, "/api/v1/auth/renew"),
    // A CI job's deploy: its OpenID Connect token is verified by the use case against the
    // service's trusts (the issuer's signature, audience, expiry and claims).
    (Method::POST, "/api/v1/oidc/deploy"),
    // A custom domain's HTTP check: answers only a token, which proves nothing but that the
    // domain reaches this server.
    (Method::GET, "/.well-known/helvetia/{token}"),
    // A CA fetches the answer to its HTTP-01 challenge without a credential.
    (Method::GET, "/.well-known/acme-challenge/{token}"),
];

/// The name of the bearer-token security scheme in the OpenAPI document.
pub const SECURITY_SCHEME: &str = "token";

/// Which scope each `(method, path template)` requires.
#[derive(Debug, Default)]
pub struct ScopeTable(HashMap<(Method, String), Scope>);

impl ScopeTable {
    /// Builds the table from the `security` requirements of each operation in `openapi`.
    pub fn from_openapi(openapi: &utoipa::openapi::OpenApi) -> ScopeTable {
        let mut table = HashMap::new();
        for (path, method, operation) in operations(openapi) {
            let declared = operation
                .pointer(&format!("/security/0/{SECURITY_SCHEME}/0"))
                .and_then(|scope| scope.as_str())
                .and_then(|scope| scope.parse().ok());
            if let Some(scope) = declared {
                table.insert((method, path), scope);
            }
        }
        ScopeTable(table)
    }

    /// The scope required by a route; `admin` when none was declared.
    pub fn required(&self, method: &Method, path: &str) -> Scope {
        self.0
            .get(&(method.clone(), path.to_owned()))
            .copied()
            .unwrap_or(Scope::Admin)
    }
}

/// Every operation of the document as `(path template, method, operation JSON)`.
pub fn operations(openapi: &utoipa::openapi::OpenApi) -> Vec<(String, Method, serde_json::Value)> {
    let document = serde_json::to_value(openapi).unwrap_or_default();
    let mut found = vec![];
    if let Some(paths) = document.get("paths").and_then(|p| p.as_object()) {
        for (path, item) in paths {
            let Some(item) = item.as_object() else {
                continue;
            };
            for (method, operation) in item {
                if let Ok(method) = method.to_ascii_uppercase().parse::<Method>() {
                    found.push((path.clone(), method, operation.clone()));
                }
            }
        }
    }
    found
}

fn is_public(method: &Method, path: &str) -> bool {
    PUBLIC_ROUTES
        .iter()
        .any(|(public_method, public_path)| public_method == method && *public_path == path)
}

/// The layer: resolves the caller, checks the route's scope, and hands the [`Caller`] to the
/// handler through the request's extensions.
pub async fn require_token(
    State(state): State<AppState>,
    matched: Option<MatchedPath>,
    mut request: Request,
    next: Next,
) -> Response {
    let path = matched.as_ref().map_or("", MatchedPath::as_str).to_owned();
    let method = request.method().clone();
    if is_public(&method, &path) {
        return next.run(request).await;
    }
    let mut caller = match authenticate(&state, &method, request.headers()).await {
        Ok(caller) => caller,
        Err(error) => return error.into_response(),
    };
    caller.client = request
        .extensions()
        .get::<ClientAddr>()
        .copied()
        .unwrap_or_default()
        .label();
    let required = state.scopes.required(&method, &path);
    if !caller.scopes.allows(required) {
        return ApiError::MissingScope(required).into_response();
    }
    request.extensions_mut().insert(caller);
    next.run(request).await
}

/// The caller a request's credential proves: an API token (`hlv_…`) or a session's access token
/// (a JWT) as `Authorization: Bearer`, or either in the `helvetia_session` cookie (the
/// dashboard keeps an API token there when someone signs in with one) — then, for a write,
/// only with the CSRF token echoed ([`cookies::csrf_ok`]).
async fn authenticate(
    state: &AppState,
    method: &Method,
    headers: &axum::http::HeaderMap,
) -> Result<Caller, ApiError> {
    let now = Timestamp::now();
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        let token =
            cookies::read(headers, cookies::SESSION_COOKIE).ok_or(ApiError::Unauthenticated)?;
        let caller = token_caller(state, &token, now)
            .await?
            .ok_or(ApiError::InvalidToken)?;
        if !cookies::csrf_ok(method, headers) {
            return Err(ApiError::Forbidden(format!(
                "a write authenticated by the session cookie needs the `X-CSRF-Token` header \
                 with the value of the `{}` cookie",
                cookies::CSRF_COOKIE
            )));
        }
        return Ok(caller);
    };
    let value = value.to_str().map_err(|_| ApiError::InvalidToken)?;
    let token = bearer(value).ok_or(ApiError::Unauthenticated)?;
    token_caller(state, token, now)
        .await?
        .ok_or(ApiError::InvalidToken)
}

/// The caller `token` proves — an API token (`hlv_…`) or a session's access token — or `None`
/// when it proves nothing (unknown, expired, revoked, forged).
pub(crate) async fn token_caller(
    state: &AppState,
    token: &str,
    now: Timestamp,
) -> Result<Option<Caller>, ApiError> {
    Ok(if token.starts_with(TOKEN_PREFIX) {
        state.store.authenticate(&token_hash(token), now).await?
    } else {
        sessions::caller(&state.app, token, now).await?
    })
}

/// The token of an `Authorization: Bearer <token>` value; `None` for another scheme or none.
pub fn bearer(value: &str) -> Option<&str> {
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))?
        .trim();
    (!token.is_empty()).then_some(token)
}

/// Extracts the authenticated caller that [`require_token`] stored.
pub struct Authenticated(pub Caller);

impl<S: Send + Sync> FromRequestParts<S> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .map(Authenticated)
            .ok_or(ApiError::Unauthenticated)
    }
}
