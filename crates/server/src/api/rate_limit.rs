//! The routes limited by client address ([`RATE_LIMITED_ROUTES`]), and the layer that
//! counts their requests once authentication has let them through (a route that needs a
//! token answers 401 without one, as its document says; public routes pass straight on).
//! The limits themselves are in [`crate::limits`]; the per-account limit of sign-in is the
//! sign-in use case's.

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::client::ClientAddr;
use super::error::ApiError;
use crate::limits::Group;

/// Routes whose requests count against their group's limit per client address. A route not
/// (yet) served is harmless here: nothing matches it.
pub const RATE_LIMITED_ROUTES: &[(Method, &str, Group)] = &[
    (Method::POST, "/api/v1/auth/signin", Group::SignIn),
    (Method::POST, "/api/v1/auth/signup", Group::SignIn),
    (Method::POST, "/api/v1/auth/password-reset", Group::SignIn),
    // Entering a user code: guessing one would take over someone's pending login (RFC 8628
    // §5.1 asks for a limit).
    (Method::POST, "/api/v1/auth/device/approve", Group::SignIn),
    // A sign-in with GitHub: each start stores a row, each callback calls GitHub.
    (Method::GET, "/api/v1/auth/github/callback", Group::SignIn),
    (Method::GET, "/api/v1/auth/github", Group::Tokens),
    (Method::POST, "/api/v1/auth/refresh", Group::Tokens),
    (Method::POST, "/api/v1/auth/device", Group::Tokens),
    (Method::POST, "/api/v1/auth/device/token", Group::Tokens),
    (Method::POST, "/api/v1/tokens", Group::Tokens),
    // A CI job's deploy: each token may make Helvetia read an issuer's keys.
    (Method::POST, "/api/v1/oidc/deploy", Group::Tokens),
];

fn group(method: &Method, path: &str) -> Option<Group> {
    RATE_LIMITED_ROUTES
        .iter()
        .find(|(limited, limited_path, _)| limited == method && *limited_path == path)
        .map(|(_, _, group)| *group)
}

/// The layer. A request whose client address is unknown (only a request handed to the router
/// in process, without a connection) is not limited by address.
pub async fn enforce(
    State(state): State<AppState>,
    matched: Option<MatchedPath>,
    client: ClientAddr,
    request: Request,
    next: Next,
) -> Response {
    let path = matched.as_ref().map_or("", MatchedPath::as_str);
    if let (Some(group), ClientAddr(Some(address))) = (group(request.method(), path), client)
        && let Err(limited) = state.app.platform.limits.check_address(group, address)
    {
        return ApiError::from(limited).into_response();
    }
    next.run(request).await
}
