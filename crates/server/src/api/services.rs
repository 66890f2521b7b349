//! `/api/v1/projects/{project}/services` and `/api/v1/services`: a project's services and their
//! settings.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use helvetia_core::auth::TeamId;
use helvetia_core::container::{ContainerRecord, ContainerState, Health, ServiceEvent};
use helvetia_core::deployment::{Deployment, DeploymentCause};
use helvetia_core::name::{ProjectName, ServiceName};
use helvetia_core::runtime::RuntimeSettings;
use helvetia_core::service::{PortInput, Service, ServiceInput, ServiceSettings};
use helvetia_core::validation::FieldErrors;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Authenticated;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::json::{ApiJson, ApiPath, ApiQuery};
use super::projects::project_param;

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

/// The service a route's path names, if `team` owns it.
pub(super) async fn owned_service(
    state: &AppState,
    team: TeamId,
    project: &str,
    service: &str,
) -> Result<Service, ApiError> {
    let (project, name) = service_params(project, service)?;
    Ok(state.store.service(team, &project, &name).await?)
}

/// A service as the API shows it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ServiceView {
    id: i64,
    project: String,
    name: String,
    #[serde(flatten)]
    settings: ServiceSettings,
    /// Health check, deploy timeouts and resource limits.
    runtime: RuntimeSettings,
    /// Where the service is reachable once deployed.
    url: String,
    /// What runs now (only in single-service responses).
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<ServiceStatus>,
    #[schema(value_type = String, format = DateTime)]
    created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    updated_at: Timestamp,
}

/// A service's running state.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ServiceStatus {
    /// The deployment serving traffic now.
    live_deployment: Option<Deployment>,
    /// The worst health among the serving containers; `None` when nothing serves.
    health: Option<Health>,
    /// The containers serving traffic.
    containers: Vec<ContainerRecord>,
    /// The most recent events (health changes, restarts, OOM kills), newest first.
    events: Vec<ServiceEvent>,
    /// The environment changed since the live deployment started; the next deploy applies
    /// it (set when `auto_redeploy` is off).
    env_pending: bool,
}

/// How many events a service's view includes.
const EVENTS_SHOWN: i64 = 10;

impl ServiceView {
    fn new(service: Service, state: &AppState, status: Option<ServiceStatus>) -> ServiceView {
        ServiceView {
            url: state.service_url(&service.project, &service.name),
            id: service.id,
            project: service.project.to_string(),
            name: service.name.to_string(),
            settings: service.settings,
            runtime: service.runtime,
            status,
            created_at: service.created_at,
            updated_at: service.updated_at,
        }
    }

    /// The view with the service's running state.
    pub async fn detailed(service: Service, state: &AppState) -> Result<ServiceView, ApiError> {
        let store = &state.store;
        let containers = store
            .service_containers(service.id, ContainerState::Serving)
            .await?;
        let health = containers
            .iter()
            .map(|c| c.health.unwrap_or(Health::Healthy))
            .max_by_key(|h| health_rank(*h));
        let live_deployment = store.live_deployment(service.id).await?;
        let env_pending = match &live_deployment {
            Some(live) => {
                let current = state.platform.env_digest(&service).await?;
                store
                    .env_digest(live.id)
                    .await?
                    .is_some_and(|started| started != current)
            }
            None => false,
        };
        let status = ServiceStatus {
            live_deployment,
            health,
            events: store.service_events(service.id, EVENTS_SHOWN).await?,
            containers,
            env_pending,
        };
        Ok(ServiceView::new(service, state, Some(status)))
    }
}

/// Orders health from best to worst, to summarise several containers by the worst.
fn health_rank(health: Health) -> u8 {
    match health {
        Health::Healthy => 0,
        Health::Restarting => 1,
        Health::Unhealthy => 2,
        Health::OomKilled => 3,
        Health::Stopped => 4,
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateService {
    /// Unique within the project.
    #[schema(value_type = ServiceName)]
    name: String,
    /// Git repository URL: https, http, ssh, git or `user@host:path`. Never with credentials.
    /// Which locations are accepted is the server's policy (local paths only with
    /// `--allow-local-repos`): a refused one is a 422.
    #[schema(
        min_length = 1,
        max_length = 2048,
        pattern = r"^[^-\s\x00-\x1f\x7f-\x9f][^\s\x00-\x1f\x7f-\x9f]*$"
    )]
    repo: String,
    /// Branch deployed by default. Default: `main`.
    #[schema(value_type = Option<helvetia_core::git::GitRef>)]
    branch: Option<String>,
    /// Dockerfile path inside the repository. Default: `Dockerfile`.
    #[schema(value_type = Option<helvetia_core::service::RepoPath>)]
    dockerfile: Option<String>,
    /// Build context inside the repository. Default: `.`.
    #[schema(value_type = Option<helvetia_core::service::RepoPath>)]
    context: Option<String>,
    /// Port the app listens on (default 8080), or `"none"` for a worker.
    #[schema(value_type = Option<PortInput>)]
    port: Option<PortInput>,
    /// Health check, timeouts and limits; defaults for whatever is left out.
    #[schema(value_type = Option<RuntimeSettings>)]
    runtime: Option<serde_json::Value>,
}

/// Create a service in a project.
#[utoipa::path(
    post, path = "/api/v1/projects/{project}/services", tag = "services",
    params(("project" = helvetia_core::name::ProjectName, Path, description = "Project name")),
    request_body = CreateService,
    security(("token" = ["write"])),
    responses(
        (status = CREATED, body = ServiceView),
        (status = UNPROCESSABLE_ENTITY, body = ErrorBody, description = "Invalid settings, or a repository location the server's policy refuses"),
        (status = CONFLICT, body = ErrorBody),
    )
)]
async fn create_service(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(project): ApiPath<String>,
    ApiJson(body): ApiJson<CreateService>,
) -> ApiResult<(StatusCode, Json<ServiceView>)> {
    let project = project_param(&project)?;
    let input = ServiceInput {
        repo: Some(body.repo),
        branch: body.branch,
        dockerfile: body.dockerfile,
        context: body.context,
        port: body.port,
        runtime: None,
    };
    let mut errors = FieldErrors::new();
    let name = errors.check("name", ServiceName::parse(&body.name));
    let settings = errors.absorb(ServiceSettings::create(
        &input,
        state.settings().repo_policy,
    ));
    let runtime = errors.absorb(RuntimeSettings::default().merged(
        body.runtime.as_ref().unwrap_or(&serde_json::Value::Null),
        &state.settings().runtime_bounds(),
    ));
    let (name, settings, runtime) = errors.finish(|| Some((name?, settings?, runtime?)))?;
    let hostname = state.settings().hostname(project.as_str(), name.as_str());
    let service = state
        .store
        .create_service(&caller, &project, &name, &settings, &runtime, &hostname)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(ServiceView::new(service, &state, None)),
    ))
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
    let project = filter.project.as_deref().map(project_param).transpose()?;
    let services = state
        .store
        .list_services(caller.team, project.as_ref())
        .await?;
    Ok(Json(
        services
            .into_iter()
            .map(|s| ServiceView::new(s, &state, None))
            .collect(),
    ))
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
    let project = project_param(&project)?;
    let services = state
        .store
        .list_services(caller.team, Some(&project))
        .await?;
    Ok(Json(
        services
            .into_iter()
            .map(|s| ServiceView::new(s, &state, None))
            .collect(),
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
    responses((status = OK, body = ServiceView))
)]
async fn get_service(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath((project, service)): ApiPath<(String, String)>,
) -> ApiResult<Json<ServiceView>> {
    let service = owned_service(&state, caller.team, &project, &service).await?;
    Ok(Json(ServiceView::detailed(service, &state).await?))
}

/// Change a service's settings. Fields left out keep their value.
#[utoipa::path(
    patch, path = "/api/v1/projects/{project}/services/{service}", tag = "services",
    params(
        ("project" = helvetia_core::name::ProjectName, Path, description = "Project name"),
        ("service" = helvetia_core::name::ServiceName, Path, description = "Service name"),
    ),
    request_body = ServiceInput,
    security(("token" = ["write"])),
    responses(
        (status = OK, body = UpdatedService),
        (status = UNPROCESSABLE_ENTITY, body = ErrorBody, description = "Invalid settings, or a repository location the server's policy refuses"),
    )
)]
async fn update_service(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath((project, service)): ApiPath<(String, String)>,
    ApiJson(input): ApiJson<ServiceInput>,
) -> ApiResult<Json<UpdatedService>> {
    let service = owned_service(&state, caller.team, &project, &service).await?;
    let mut errors = FieldErrors::new();
    let settings = errors.absorb(
        service
            .settings
            .update(&input, state.settings().repo_policy),
    );
    let runtime = match &input.runtime {
        Some(patch) => errors.absorb(
            service
                .runtime
                .merged(patch, &state.settings().runtime_bounds()),
        ),
        None => Some(service.runtime.clone()),
    };
    let (settings, runtime) = errors.finish(|| Some((settings?, runtime?)))?;
    let updated = state
        .store
        .update_service(&caller, &service, &settings, &runtime)
        .await?;
    // Settings that shape the container never change a running app in place: they are
    // applied by a zero-downtime redeploy of the live image.
    let needs_new_containers =
        settings.port != service.settings.port || service.runtime.needs_new_containers(&runtime);
    // A change of the replica count alone is a scale: no release command runs for it.
    let only_scaled = settings == service.settings
        && RuntimeSettings {
            replicas: runtime.replicas,
            ..service.runtime.clone()
        } == runtime;
    let cause = if only_scaled {
        DeploymentCause::Scale
    } else {
        DeploymentCause::Settings
    };
    let redeployment = match state.store.live_deployment(updated.id).await? {
        Some(live) if needs_new_containers => {
            let deployment =
                super::lifecycle::redeploy_image(&state, &caller, &updated, &live, cause).await?;
            Some(deployment)
        }
        _ => None,
    };
    Ok(Json(UpdatedService {
        service: ServiceView::detailed(updated, &state).await?,
        redeployment,
    }))
}

/// A service after a change, with the redeployment that applies it, if one was needed.
#[derive(Serialize, utoipa::ToSchema)]
pub struct UpdatedService {
    #[serde(flatten)]
    service: ServiceView,
    /// Started when the change needs new containers (port, limits) and the service is live.
    redeployment: Option<Deployment>,
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
    Authenticated(caller): Authenticated,
    ApiPath((project, service)): ApiPath<(String, String)>,
    ApiQuery(options): ApiQuery<DeleteOptions>,
) -> ApiResult<StatusCode> {
    let service = owned_service(&state, caller.team, &project, &service).await?;
    let volumes = state.store.volumes(service.id).await?;
    if !volumes.is_empty() && !options.delete_volumes {
        let names: Vec<&str> = volumes.iter().map(|v| v.name.as_str()).collect();
        return Err(ApiError::Conflict(format!(
            "the service has volumes ({}); deleting it deletes their data too: confirm with `delete_volumes=true` (CLI: `--delete-volumes`)",
            names.join(", ")
        )));
    }
    state.store.delete_service(&caller, &service).await?;
    // Its containers and route go with the next reconciliation, which this starts now.
    state.reconcile.notify_one();
    Ok(StatusCode::NO_CONTENT)
}
