//! The HTTP API: `/api/v1/…` JSON resources, `/healthz`, and the OpenAPI document.
//!
//! One module per resource, each exposing `routes()`; [`router`] assembles them, derives the
//! OpenAPI document from the same handlers, and wraps everything in the authentication layer
//! ([`auth`]). Handlers only extract (the caller, the service a path names ([`extract`]), the
//! body), call the operation in [`crate::usecases`] and render its answer; the bodies are the
//! types of `helvetia_api_types`. All error-to-status mapping lives in [`error`].

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use helvetia_core::name::{ProjectName, ServiceName};
use helvetia_store::Store;
use tokio::sync::Notify;
use utoipa::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;

mod audit;
pub mod auth;
pub(crate) mod auth_routes;
mod certificates;
pub mod client;
pub mod cookies;
mod deployments;
mod devices;
mod disk;
mod domains;
mod env;
pub mod error;
mod extract;
mod github;
mod github_users;
mod health;
mod hooks;
mod json;
mod lifecycle;
mod link_pages;
mod logs;
mod metrics;
mod notifications;
mod oidc;
mod openapi;
mod previews;
mod projects;
pub mod rate_limit;
mod redirects;
mod services;
pub(crate) mod sse;
mod teams;
mod tokens;
mod users;
mod volumes;

pub use crate::usecases::tokens::mint as mint_token;

use crate::platform::Platform;
use crate::supervisor::TaskHealth;
use crate::usecases::App;
use crate::worker::WorkerHandle;

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    /// What the operations work with.
    pub app: App,
    /// The same store as `app`'s, for what is not an operation (authentication, health).
    pub store: Store,
    /// The supervised background tasks, for `/healthz`.
    tasks: TaskHealth,
    scopes: Arc<auth::ScopeTable>,
    openapi: Arc<String>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Helvetia",
        description = "Self-hosted platform-as-a-service: deploy git repositories as health-checked web services."
    ),
    modifiers(&BearerToken),
    components(schemas(
        error::ErrorBody,
        ProjectName,
        ServiceName,
        helvetia_core::name::TeamName,
        helvetia_core::name::ChannelName,
        helvetia_core::env::EnvName,
        helvetia_core::volume::VolumeName,
        helvetia_core::service::PortInput
    ))
)]
struct ApiDoc;

/// Declares the bearer-token security scheme the operations refer to.
struct BearerToken;

impl utoipa::Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            auth::SECURITY_SCHEME,
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// Every route with its OpenAPI description, before state is attached.
fn documented_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(health::routes())
        .merge(projects::routes())
        .merge(services::routes())
        .merge(deployments::routes())
        .merge(lifecycle::routes())
        .merge(env::routes())
        .merge(logs::routes())
        .merge(metrics::routes())
        .merge(tokens::routes())
        .merge(auth_routes::routes())
        .merge(github_users::routes())
        .merge(audit::routes())
        .merge(volumes::routes())
        .merge(oidc::routes())
        .merge(devices::routes())
        .merge(teams::routes())
        .merge(users::routes())
        .merge(github::routes())
        .merge(hooks::routes())
        .merge(previews::routes())
        .merge(domains::routes())
        .merge(certificates::routes())
        .merge(disk::routes())
        .merge(notifications::routes())
        .merge(link_pages::routes())
}

/// The routes and the complete OpenAPI document describing them.
fn routes_and_document() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (routes, mut document) = documented_routes().split_for_parts();
    openapi::complete(&mut document);
    (routes, document)
}

/// The OpenAPI document of the whole API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes_and_document().1
}

/// The complete API as an axum router, serving `pages` (the dashboard's routes) beside it.
pub fn router(
    platform: Arc<Platform>,
    worker: WorkerHandle,
    reconcile: Arc<Notify>,
    tasks: TaskHealth,
    pages: Router<AppState>,
) -> Router {
    let (routes, openapi) = routes_and_document();
    let redactor = Arc::new(platform.server_redactor());
    let aliases = platform.clone();
    let trusted_proxies = Arc::new(platform.settings.believed_proxies());
    let state = AppState {
        store: platform.store.clone(),
        app: App::new(platform, worker, reconcile),
        tasks,
        scopes: Arc::new(auth::ScopeTable::from_openapi(&openapi)),
        openapi: Arc::new(openapi.to_pretty_json().unwrap_or_default()),
    };
    // Every route comes from `documented_routes`: nothing is added here with `.route`, so the
    // router and the document cannot disagree.
    routes
        // Inside authentication: a route that needs a token answers 401 without one, whatever
        // the count (public routes pass authentication straight through).
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            rate_limit::enforce,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ))
        .route_layer(axum::middleware::from_fn(
            crate::metrics::exposition::track_request,
        ))
        // Pages authenticate themselves (to a sign-in page, not a 401), with the API's
        // client-address, body-limit, error-redaction and alias layers below.
        .merge(pages)
        // A path no route matches gets the error body too (axum's default has none).
        .fallback(|| async { error::ApiError::NotFound("route".into()) })
        .layer(axum::middleware::from_fn_with_state(
            trusted_proxies,
            client::resolve,
        ))
        .layer(DefaultBodyLimit::max(json::MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            redactor,
            error::redact_errors,
        ))
        // Before anything else: an alias domain's request is not an API request.
        .layer(axum::middleware::from_fn_with_state(
            aliases,
            redirects::redirect_aliases,
        ))
        .with_state(state)
}
