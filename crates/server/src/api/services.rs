//! `/api/v1/projects/{project}/services` and `/api/v1/services`: a project's services and their
//! settings.
//!
//! A service's answers carry an `ETag` naming the state they show; a change sent with
//! `If-Match` applies only to that state (412 otherwise), so two clients changing one service
//! cannot silently undo each other. A change without `If-Match` (a script) applies to the
//! service as it is when the change is written.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use helvetia_api_types::{CreateService, DetectedStack, ServiceInput, ServiceView, UpdatedService};
use helvetia_core::name::ProjectName;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Authenticated;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::ServicePath;
use super::json::{ApiJson, ApiPath, ApiQuery};
use crate::usecases::services::{self, Version, WhenChanged};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_all_services))
        .routes(routes!(list_services, create_service))
        .routes(routes!(get_service, update_service, delete_service))
        .routes(routes!(detect_stack))
}

/// Create a service in a project.
#[utoipa::path(
    post, path = "/api/v1/projects/{project}/services", tag = "services",
    params(("project" = helvetia_core::name::ProjectName, Path, description = "Project name")),
    request_body = CreateService,
    security(("token" = ["write"])),
    responses(
        (status = CREATED, body = ServiceView, headers(("ETag" = String, description = "The service's state this answer shows; send it as `If-Match` to change only that state"))),
        (status = UNPROCESSABLE_ENTITY, body = ErrorBody, description = "Invalid settings, or a repository location the server's policy refuses"),
        (status = CONFLICT, body = ErrorBody),
    )
)]
async fn create_service(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(project): ApiPath<String>,
    ApiJson(body): ApiJson<CreateService>,
) -> ApiResult<(
    StatusCode,
    [(header::HeaderName, HeaderValue); 1],
    Json<ServiceView>,
)> {
    let (service, version) = services::create(&state.app, &caller, &project, body).await?;
    Ok((
        StatusCode::CREATED,
        [(header::ETAG, etag(version))],
        Json(service),
    ))
}

/// The `ETag` of a service's state. It names the service too: one deleted and created again
/// under the same name starts its revisions anew.
fn etag(version: Version) -> HeaderValue {
    let tag = format!("\"{}-{}\"", version.service_id, version.revision);
    HeaderValue::from_str(&tag).unwrap_or(HeaderValue::from_static("\"\""))
}

/// What the request's `If-Match` asks of a change to a service now at `current`: without it
/// (or with `*`) the change applies to whatever the service is when it is written; with the
/// current `ETag` among its tags, only to that state; otherwise it fails. Tags are compared
/// strongly, so a weak one (`W/"…"`) never matches.
fn precondition(headers: &HeaderMap, current: Version) -> Result<WhenChanged, ApiError> {
    let mut values = headers.get_all(header::IF_MATCH).iter().peekable();
    if values.peek().is_none() {
        return Ok(WhenChanged::Reapply);
    }
    let current_tag = etag(current);
    let current_tag = current_tag.to_str().unwrap_or_default();
    let mut named = vec![];
    for value in values {
        let value = String::from_utf8_lossy(value.as_bytes());
        for tag in value.split(',').map(str::trim) {
            if tag == "*" {
                return Ok(WhenChanged::Reapply);
            }
            if tag == current_tag {
                return Ok(WhenChanged::Refuse);
            }
            named.push(tag.to_owned());
        }
    }
    Err(ApiError::PreconditionFailed(format!(
        "the service changed since it was read: its ETag is now {current_tag}, the request's \
         If-Match named {}; read it again and make the change on what it is now",
        named.join(", ")
    )))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListFilter {
    /// Only this project's services.
    #[param(value_type = Option<ProjectName>)]
    project: Option<String>,
}

/// List the caller's services, optionally of one project.
#[utoipa::path(
    get, path = "/api/v1/services", tag = "services",
    params(ListFilter),
    security(("token" = ["read"])),
    responses(
        (status = OK, body = Vec<ServiceView>),
        (status = NOT_FOUND, body = ErrorBody, description = "No project of that name"),
        (status = UNPROCESSABLE_ENTITY, body = ErrorBody, description = "An invalid project name"),
    )
)]
async fn list_all_services(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiQuery(filter): ApiQuery<ListFilter>,
) -> ApiResult<Json<Vec<ServiceView>>> {
    let project = filter.project.as_deref();
    Ok(Json(services::list(&state.app, &caller, project).await?))
}

/// List a project's services.
#[utoipa::path(
    get, path = "/api/v1/projects/{project}/services", tag = "services",
    params(("project" = helvetia_core::name::ProjectName, Path, description = "Project name")),
    security(("token" = ["read"])),
    responses((status = OK, body = Vec<ServiceView>))
)]
async fn list_services(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(project): ApiPath<String>,
) -> ApiResult<Json<Vec<ServiceView>>> {
    Ok(Json(
        services::list(&state.app, &caller, Some(&project)).await?,
    ))
}

/// Show a service, with its URL and live deployment.
#[utoipa::path(
    get, path = "/api/v1/projects/{project}/services/{service}", tag = "services",
    params(
        ("project" = helvetia_core::name::ProjectName, Path, description = "Project name"),
        ("service" = helvetia_core::name::ServiceName, Path, description = "Service name"),
    ),
    security(("token" = ["read"])),
    responses((status = OK, body = ServiceView, headers(("ETag" = String, description = "The service's state this answer shows; send it as `If-Match` to change only that state"))))
)]
async fn get_service(
    State(state): State<AppState>,
    ServicePath(service): ServicePath,
) -> ApiResult<([(header::HeaderName, HeaderValue); 1], Json<ServiceView>)> {
    let (service, version) = services::get(&state.app, service).await?;
    Ok(([(header::ETAG, etag(version))], Json(service)))
}

/// Change a service's settings. Fields left out keep their value. Send the `ETag` of the
/// service as read in `If-Match` to change only that state: if it changed meanwhile, the
/// answer is 412 and nothing changes.
#[utoipa::path(
    patch, path = "/api/v1/projects/{project}/services/{service}", tag = "services",
    params(
        ("project" = helvetia_core::name::ProjectName, Path, description = "Project name"),
        ("service" = helvetia_core::name::ServiceName, Path, description = "Service name"),
        ("If-Match" = Option<String>, Header, description = "The service's `ETag` as read (or `*`); without it the change applies to the service as it is"),
    ),
    request_body = ServiceInput,
    security(("token" = ["write"])),
    responses(
        (status = OK, body = UpdatedService, headers(("ETag" = String, description = "The service's state this answer shows; send it as `If-Match` to change only that state"))),
        (status = PRECONDITION_FAILED, body = ErrorBody, description = "The service changed since the state `If-Match` names; nothing changed"),
        (status = CONFLICT, body = ErrorBody, description = "Without `If-Match`: the service kept changing while the change was made; nothing changed"),
        (status = UNPROCESSABLE_ENTITY, body = ErrorBody, description = "Invalid settings, or a repository location the server's policy refuses"),
    )
)]
async fn update_service(
    State(state): State<AppState>,
    ServicePath(service): ServicePath,
    headers: HeaderMap,
    ApiJson(input): ApiJson<ServiceInput>,
) -> ApiResult<([(header::HeaderName, HeaderValue); 1], Json<UpdatedService>)> {
    let when_changed = precondition(&headers, Version::of(&service))?;
    let (updated, version) = services::update(&state.app, service, input, when_changed).await?;
    Ok(([(header::ETAG, etag(version))], Json(updated)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct DeleteOptions {
    /// Also delete the service's volumes and their data. Required when it has volumes.
    #[serde(default)]
    delete_volumes: bool,
}

/// Delete a service and its deployment history (and its volumes, when confirmed).
#[utoipa::path(
    delete, path = "/api/v1/projects/{project}/services/{service}", tag = "services",
    params(
        ("project" = helvetia_core::name::ProjectName, Path, description = "Project name"),
        ("service" = helvetia_core::name::ServiceName, Path, description = "Service name"),
        DeleteOptions,
    ),
    security(("token" = ["write"])),
    responses(
        (status = NO_CONTENT),
        (status = CONFLICT, body = ErrorBody, description = "A deployment is in progress, or volumes need `delete_volumes=true`"),
    )
)]
async fn delete_service(
    State(state): State<AppState>,
    ServicePath(service): ServicePath,
    ApiQuery(options): ApiQuery<DeleteOptions>,
) -> ApiResult<StatusCode> {
    services::delete(&state.app, service, options.delete_volumes).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What the service's repository would be built with: its own Dockerfile, or the Dockerfile
/// generated for the stack detected at the head of its branch (nothing is deployed).
#[utoipa::path(
    get, path = "/api/v1/projects/{project}/services/{service}/detect", tag = "services",
    params(
        ("project" = helvetia_core::name::ProjectName, Path, description = "Project name"),
        ("service" = helvetia_core::name::ServiceName, Path, description = "Service name"),
    ),
    security(("token" = ["read"])),
    responses(
        (status = OK, body = DetectedStack),
        (status = BAD_REQUEST, body = ErrorBody, description = "The repository could not be fetched"),
    )
)]
async fn detect_stack(
    State(state): State<AppState>,
    ServicePath(service): ServicePath,
) -> ApiResult<Json<DetectedStack>> {
    Ok(Json(
        crate::usecases::detect::detect(&state.app, service).await?,
    ))
}
