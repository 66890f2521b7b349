//! Extractors that resolve a route's path for the caller, so a handler receives what the
//! caller may touch or the request ends with the operation's own error: 422 for an invalid
//! name, 404 for what does not exist or belongs to another team.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::Deserialize;

use super::AppState;
use super::auth::Authenticated;
use super::error::ApiError;
use super::json::{ApiPath, ApiQuery};
use crate::usecases::access::{self, OwnedService};
use crate::usecases::env::{self, EnvTarget};

/// The `{project}` and, on service routes, `{service}` segments.
#[derive(Deserialize)]
struct ScopePath {
    project: String,
    service: Option<String>,
}

async fn scope_path(parts: &mut Parts, state: &AppState) -> Result<ScopePath, ApiError> {
    ApiPath::<ScopePath>::from_request_parts(parts, state)
        .await
        .map(|ApiPath(path)| path)
}

/// The service a route's `{project}/{service}` names.
pub struct ServicePath(pub OwnedService);

impl FromRequestParts<AppState> for ServicePath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Authenticated(caller) = Authenticated::from_request_parts(parts, state).await?;
        let path = scope_path(parts, state).await?;
        let service = path.service.unwrap_or_default();
        Ok(ServicePath(
            access::service(&state.app, &caller, &path.project, &service).await?,
        ))
    }
}

/// `?previews=true` on a service's `…/env` and `…/dotenv` routes: its variables for its
/// previews.
#[derive(Deserialize)]
struct PreviewsQuery {
    previews: Option<bool>,
}

/// Whose variables an `…/env` or `…/dotenv` route names: the project's, or on a service route
/// the service's (or, with `?previews=true`, the service's for its previews).
pub struct EnvPath(pub EnvTarget);

impl FromRequestParts<AppState> for EnvPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Authenticated(caller) = Authenticated::from_request_parts(parts, state).await?;
        let path = scope_path(parts, state).await?;
        let target = match path.service {
            Some(service) => {
                let ApiQuery(query) =
                    ApiQuery::<PreviewsQuery>::from_request_parts(parts, state).await?;
                let service = access::service(&state.app, &caller, &path.project, &service).await?;
                match query.previews {
                    Some(true) => env::previews_target(&state.app, service).await?,
                    _ => env::service_target(service),
                }
            }
            None => env::project_target(&state.app, &caller, &path.project).await?,
        };
        Ok(EnvPath(target))
    }
}
