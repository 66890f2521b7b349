//! The web dashboard: pages the server renders from typed templates (askama, checked at
//! compile time, in `crates/server/templates/`), made live with htmx and Server-Sent Events.
//!
//! Handlers are entry points like the API's: they resolve the signed-in [`Viewer`], call the
//! same use cases and render. Pages read without JavaScript; scripts add live updates (status
//! fragments over SSE from [`live`], logs and metrics over the API's own streams, which the
//! session cookie authenticates) and nothing else depends on them.
//!
//! Invariants:
//! - Every page answers with [`SECURITY_HEADERS`]: a Content-Security-Policy without inline
//!   script or style and without `eval` (htmx is configured not to need them), not frameable.
//! - Every form that changes something carries the CSRF token ([`form::Checked`] compares it
//!   with the `helvetia_csrf` cookie before the handler runs); htmx sends it as a header.
//! - A page never shows a secret's value unless the viewer asked for it (reveal) and the use
//!   case allowed it.

use axum::Router;
use axum::extract::Request;
use axum::http::HeaderValue;
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};

use crate::api::AppState;

mod assets;
mod audit;
mod deployments;
mod env;
mod form;
mod live;
mod new_service;
mod observe;
mod overview;
mod page;
mod services;
mod signin;
mod tokens;
mod views;
mod volumes;

pub use page::Viewer;

/// The headers every dashboard answer carries.
const SECURITY_HEADERS: [(header::HeaderName, &str); 4] = [
    (
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::REFERRER_POLICY, "same-origin"),
    (header::X_FRAME_OPTIONS, "DENY"),
];

/// The dashboard's routes, for the API router to serve beside its own (outside the API's
/// token layer: pages sign people in with the session cookie and send them to the sign-in
/// page instead of answering 401).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(overview::page))
        .route("/signin", get(signin::page).post(signin::password))
        .route("/signin/token", post(signin::token))
        .route("/signout", post(signin::sign_out))
        .route("/projects", post(overview::create_project))
        .route("/live/overview", get(live::overview))
        .route(
            "/p/{project}/new",
            get(new_service::page).post(new_service::create),
        )
        .route("/p/{project}/s/{service}", get(services::page))
        .route("/p/{project}/s/{service}/live", get(live::service))
        .route("/p/{project}/s/{service}/action", post(services::action))
        .route("/p/{project}/s/{service}/scale", post(services::scale))
        .route(
            "/p/{project}/s/{service}/deployments",
            get(deployments::list),
        )
        .route(
            "/p/{project}/s/{service}/deployments/{id}",
            get(deployments::page),
        )
        .route(
            "/p/{project}/s/{service}/deployments/{id}/phases",
            get(deployments::phases),
        )
        .route("/p/{project}/s/{service}/logs", get(observe::logs))
        .route("/p/{project}/s/{service}/metrics", get(observe::metrics))
        .route(
            "/p/{project}/s/{service}/env",
            get(env::page).post(env::set),
        )
        .route("/p/{project}/s/{service}/env/import", post(env::import))
        .route("/p/{project}/s/{service}/env/unset", post(env::unset))
        .route("/p/{project}/s/{service}/env/reveal", post(env::reveal))
        .route(
            "/p/{project}/s/{service}/volumes",
            get(volumes::page).post(volumes::add),
        )
        .route(
            "/p/{project}/s/{service}/volumes/remove",
            post(volumes::remove),
        )
        .route("/tokens", get(tokens::page).post(tokens::create))
        .route("/audit", get(audit::page))
        .route("/tokens/{id}/revoke", post(tokens::revoke))
        .route("/assets/{file}", get(assets::serve))
        .layer(axum::middleware::from_fn(security_headers))
}

async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}
