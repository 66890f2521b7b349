//! `/api/v1/projects/{project}/services` and `/api/v1/services`: a project's services and their
//! settings.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use helvetia_core::deployment::Deployment;
use helvetia_core::name::{ProjectName, ServiceName};
use helvetia_core::service::{Service, ServiceInput, ServiceSettings};
use helvetia_core::validation::FieldErrors;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Authenticated;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::json::ApiJson;
use super::projects::project_param;
use super::{ApiSettings, AppState};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_all_services))
        .routes(routes!(list_services, create_service))
        .routes(routes!(get_service, update_service, delete_service))
}

/// Parses the `{project}` and `{service}` path segments.
pub fn service_params(
    project: &str,
    service: &str,
) -> Result<(ProjectName, ServiceName), ApiError> {
    let mut errors = FieldErrors::new();
    let project = errors.check("project", ProjectName::parse(project));
    let service = errors.check("service", ServiceName::parse(service));
    Ok(errors.finish(|| Some((project?, service?)))?)
}

/// A service as the API shows it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ServiceView {
    id: i64,
    project: String,
    name: String,
    #[serde(flatten)]
    settings: ServiceSettings,
    /// Where the service is reachable once deployed.
    url: String,
    /// The deployment serving traffic now (only in single-service responses).
    #[serde(skip_serializing_if = "Option::is_none")]
    live_deployment: Option<Deployment>,
    #[schema(value_type = String, format = DateTime)]
    created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    updated_at: Timestamp,
}

impl ServiceView {
    fn new(service: Service, settings: &ApiSettings, live: Option<Deployment>) -> ServiceView {
        ServiceView {
            url: settings.service_url(&service.project, &service.name),
            id: service.id,
            project: service.project.to_string(),
            name: service.name.to_string(),
            settings: service.settings,
            live_deployment: live,
            created_at: service.created_at,
            updated_at: service.updated_at,
        }
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateService {
    /// A DNS label, unique within the project.
    name: String,
    /// Git repository URL: https, http, ssh, git or `user@host:path`. Never with credentials.
    repo: String,
    /// Branch deployed by default. Default: `main`.
    branch: Option<String>,
    /// Dockerfile path inside the repository. Default: `Dockerfile`.
    dockerfile: Option<String>,
    /// Build context inside the repository. Default: `.`.
    context: Option<String>,
    /// Port the app listens on. Default: 8080.
    port: Option<i64>,
}

/// Create a service in a project.
#[utoipa::path(
    post, path = "/api/v1/projects/{project}/services", tag = "services",
    params(("project" = String, Path, description = "Project name")),
    request_body = CreateService,
    security(("token" = ["write"])),
    responses(
        (status = CREATED, body = ServiceView),
        (status = NOT_FOUND, body = ErrorBody),
        (status = CONFLICT, body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, body = ErrorBody),
    )
)]
async fn create_service(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(project): Path<String>,
    ApiJson(body): ApiJson<CreateService>,
) -> ApiResult<(StatusCode, Json<ServiceView>)> {
    let project = project_param(&project)?;
    let input = ServiceInput {
        repo: Some(body.repo),
        branch: body.branch,
        dockerfile: body.dockerfile,
        context: body.context,
        port: body.port,
    };
    let mut errors = FieldErrors::new();
    let name = errors.check("name", ServiceName::parse(&body.name));
    let settings = errors.absorb(ServiceSettings::create(
        &input,
        state.settings.repo_policy(),
    ));
    let (name, settings) = errors.finish(|| Some((name?, settings?)))?;
    let hostname = state
        .settings
        .platform
        .hostname(project.as_str(), name.as_str());
    let service = state
        .store
        .create_service(&caller, &project, &name, &settings, &hostname)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(ServiceView::new(service, &state.settings, None)),
    ))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
struct ListFilter {
    /// Only this project's services.
    project: Option<String>,
}

/// List the caller's services, optionally of one project.
#[utoipa::path(
    get, path = "/api/v1/services", tag = "services",
    params(ListFilter),
    security(("token" = ["read"])),
    responses((status = OK, body = Vec<ServiceView>))
)]
async fn list_all_services(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Query(filter): Query<ListFilter>,
) -> ApiResult<Json<Vec<ServiceView>>> {
    let project = filter.project.as_deref().map(project_param).transpose()?;
    let services = state
        .store
        .list_services(caller.team, project.as_ref())
        .await?;
    Ok(Json(
        services
            .into_iter()
            .map(|s| ServiceView::new(s, &state.settings, None))
            .collect(),
    ))
}

/// List a project's services.
#[utoipa::path(
    get, path = "/api/v1/projects/{project}/services", tag = "services",
    params(("project" = String, Path, description = "Project name")),
    security(("token" = ["read"])),
    responses((status = OK, body = Vec<ServiceView>), (status = NOT_FOUND, body = ErrorBody))
)]
async fn list_services(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(project): Path<String>,
) -> ApiResult<Json<Vec<ServiceView>>> {
    let project = project_param(&project)?;
    let services = state
        .store
        .list_services(caller.team, Some(&project))
        .await?;
    Ok(Json(
        services
            .into_iter()
            .map(|s| ServiceView::new(s, &state.settings, None))
            .collect(),
    ))
}

/// Show a service, with its URL and live deployment.
#[utoipa::path(
    get, path = "/api/v1/projects/{project}/services/{service}", tag = "services",
    params(
        ("project" = String, Path, description = "Project name"),
        ("service" = String, Path, description = "Service name"),
    ),
    security(("token" = ["read"])),
    responses((status = OK, body = ServiceView), (status = NOT_FOUND, body = ErrorBody))
)]
async fn get_service(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path((project, service)): Path<(String, String)>,
) -> ApiResult<Json<ServiceView>> {
    let (project, name) = service_params(&project, &service)?;
    let service = state.store.service(caller.team, &project, &name).await?;
    let live = state.store.live_deployment(service.id).await?;
    Ok(Json(ServiceView::new(service, &state.settings, live)))
}

/// Change a service's settings. Fields left out keep their value.
#[utoipa::path(
    patch, path = "/api/v1/projects/{project}/services/{service}", tag = "services",
    params(
        ("project" = String, Path, description = "Project name"),
        ("service" = String, Path, description = "Service name"),
    ),
    request_body = ServiceInput,
    security(("token" = ["write"])),
    responses(
        (status = OK, body = ServiceView),
        (status = NOT_FOUND, body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, body = ErrorBody),
    )
)]
async fn update_service(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path((project, service)): Path<(String, String)>,
    ApiJson(input): ApiJson<ServiceInput>,
) -> ApiResult<Json<ServiceView>> {
    let (project, name) = service_params(&project, &service)?;
    let service = state.store.service(caller.team, &project, &name).await?;
    let settings = service
        .settings
        .update(&input, state.settings.repo_policy())?;
    let updated = state
        .store
        .update_service(&caller, &service, &settings, &service.runtime)
        .await?;
    let live = state.store.live_deployment(updated.id).await?;
    Ok(Json(ServiceView::new(updated, &state.settings, live)))
}

/// Delete a service and its deployment history.
#[utoipa::path(
    delete, path = "/api/v1/projects/{project}/services/{service}", tag = "services",
    params(
        ("project" = String, Path, description = "Project name"),
        ("service" = String, Path, description = "Service name"),
    ),
    security(("token" = ["write"])),
    responses(
        (status = NO_CONTENT),
        (status = NOT_FOUND, body = ErrorBody),
        (status = CONFLICT, body = ErrorBody, description = "A deployment is in progress"),
    )
)]
async fn delete_service(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path((project, service)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let (project, name) = service_params(&project, &service)?;
    let service = state.store.service(caller.team, &project, &name).await?;
    state.store.delete_service(&caller, &service).await?;
    // Its containers and route go with the next reconciliation, which this starts now.
    state.settings.reconcile.notify_one();
    Ok(StatusCode::NO_CONTENT)
}
