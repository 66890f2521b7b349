//! Deployments: request one, follow its history, cancel it.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use helvetia_core::deployment::{Deployment, Transition};
use helvetia_core::git::{CommitSha, GitRef};
use helvetia_core::validation::FieldErrors;
use helvetia_store::deployments::DeploymentRequest;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Authenticated;
use super::error::{ApiResult, ErrorBody};
use super::json::{ApiJson, ApiPath, ApiQuery};
use super::services::{owned_service, service_params};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_deployments, create_deployment))
        .routes(routes!(get_deployment))
        .routes(routes!(cancel_deployment))
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDeployment {
    /// Deploy the head of this branch. Default: the service's branch.
    #[schema(value_type = Option<helvetia_core::git::GitRef>)]
    branch: Option<String>,
    /// Deploy exactly this commit (on `branch`): 7 to 64 hexadecimal digits.
    #[schema(pattern = "^[0-9a-fA-F]{7,64}$")]
    commit: Option<String>,
}

/// Deploy a service: enqueue a build of its branch (or of a given commit).
#[utoipa::path(
    post, path = "/api/v1/projects/{project}/services/{service}/deployments", tag = "deployments",
    params(
        ("project" = helvetia_core::name::ProjectName, Path, description = "Project name"),
        ("service" = helvetia_core::name::ServiceName, Path, description = "Service name"),
    ),
    request_body = CreateDeployment,
    security(("token" = ["deploy"])),
    responses(
        (status = ACCEPTED, body = Deployment, description = "Queued"),
    )
)]
async fn create_deployment(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath((project, service)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<CreateDeployment>,
) -> ApiResult<(StatusCode, Json<Deployment>)> {
    let (project, name) = service_params(&project, &service)?;
    let mut errors = FieldErrors::new();
    let branch = errors.check_optional("branch", body.branch.as_deref(), GitRef::parse);
    let commit = errors.check_optional("commit", body.commit.as_deref(), CommitSha::parse);
    let (branch, commit) = errors.finish(|| Some((branch?, commit?)))?;
    let service = state.store.service(caller.team, &project, &name).await?;
    let request = DeploymentRequest::Build {
        git_ref: branch.unwrap_or_else(|| service.settings.branch.clone()),
        commit,
    };
    let deployment = state
        .store
        .create_deployment(&caller, &service, &request)
        .await?;
    state.worker.wake();
    Ok((StatusCode::ACCEPTED, Json(deployment)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct Page {
    /// At most this many entries (default 20, at most 200).
    limit: Option<i64>,
    /// Only entries older than this id.
    before: Option<i64>,
}

impl Page {
    fn limit(&self) -> i64 {
        self.limit.unwrap_or(20).clamp(1, 200)
    }
}

/// A service's deployments, newest first.
#[utoipa::path(
    get, path = "/api/v1/projects/{project}/services/{service}/deployments", tag = "deployments",
    params(
        ("project" = helvetia_core::name::ProjectName, Path, description = "Project name"),
        ("service" = helvetia_core::name::ServiceName, Path, description = "Service name"),
        Page,
    ),
    security(("token" = ["read"])),
    responses((status = OK, body = Vec<Deployment>))
)]
async fn list_deployments(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath((project, service)): ApiPath<(String, String)>,
    ApiQuery(page): ApiQuery<Page>,
) -> ApiResult<Json<Vec<Deployment>>> {
    let service = owned_service(&state, caller.team, &project, &service).await?;
    let deployments = state
        .store
        .list_deployments(&service, page.before, page.limit())
        .await?;
    Ok(Json(deployments))
}

/// A deployment with every state change it went through.
#[derive(Serialize, utoipa::ToSchema)]
pub struct DeploymentDetail {
    #[serde(flatten)]
    deployment: Deployment,
    transitions: Vec<Transition>,
}

/// Show a deployment and its history.
#[utoipa::path(
    get, path = "/api/v1/deployments/{id}", tag = "deployments",
    params(("id" = i64, Path, description = "Deployment id")),
    security(("token" = ["read"])),
    responses((status = OK, body = DeploymentDetail))
)]
async fn get_deployment(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<DeploymentDetail>> {
    let deployment = state.store.deployment(caller.team, id).await?;
    let transitions = state.store.transitions(id).await?;
    Ok(Json(DeploymentDetail {
        deployment,
        transitions,
    }))
}

/// Cancel a deployment that has not finished. A queued one is cancelled at once; a running
/// one stops at its next step and records `cancelled`.
#[utoipa::path(
    post, path = "/api/v1/deployments/{id}/cancel", tag = "deployments",
    params(("id" = i64, Path, description = "Deployment id")),
    security(("token" = ["deploy"])),
    responses(
        (status = ACCEPTED, body = Deployment),
        (status = CONFLICT, body = ErrorBody, description = "Already finished"),
    )
)]
async fn cancel_deployment(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<(StatusCode, Json<Deployment>)> {
    let deployment = state.store.cancel_deployment(&caller, id).await?;
    state.worker.cancel_deployment(id);
    Ok((StatusCode::ACCEPTED, Json(deployment)))
}
