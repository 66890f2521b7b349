//! Environment variables of projects and services.
//!
//! Values of secret variables are sealed before they reach the store and never come back in
//! an answer — except through the `reveal` operation, which needs the `secrets:reveal` scope
//! and is audited. A change reaches running apps only through a zero-downtime redeploy of the
//! live image: at once when the service's `auto_redeploy` is on (the default), else at its next
//! deploy (shown as `env_pending` on the service).

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use helvetia_core::audit::AuditAction;
use helvetia_core::auth::Caller;
use helvetia_core::deployment::{Deployment, DeploymentCause};
use helvetia_core::env::{EnvVarInput, check_name, check_vars, format_dotenv_line, parse_dotenv};
use helvetia_core::service::Service;
use helvetia_core::validation::FieldErrors;
use helvetia_store::env::{EnvRecord, EnvScope, StoredValue};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Authenticated;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::json::{ApiJson, ApiPath};
use super::lifecycle::redeploy_image;
use super::projects::project_param;
use super::services::owned_service;
use crate::vault::binding;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_project_env, set_project_env))
        .routes(routes!(unset_project_env))
        .routes(routes!(import_project_env))
        .routes(routes!(export_project_env))
        .routes(routes!(reveal_project_env))
        .routes(routes!(list_service_env, set_service_env))
        .routes(routes!(unset_service_env))
        .routes(routes!(import_service_env))
        .routes(routes!(export_service_env))
        .routes(routes!(reveal_service_env))
}

/// A variable as the API shows it: a secret's value never.
#[derive(Serialize, utoipa::ToSchema)]
pub struct EnvVarView {
    name: String,
    /// The value of a plain variable; `null` for a secret.
    value: Option<String>,
    secret: bool,
    build: bool,
    /// `project` or `service`.
    scope: &'static str,
    /// For a project variable listed on a service: a service variable of the same name
    /// replaces it.
    overridden: bool,
    #[schema(value_type = String, format = DateTime)]
    updated_at: Timestamp,
}

impl EnvVarView {
    fn new(record: &EnvRecord, overridden: bool) -> EnvVarView {
        EnvVarView {
            name: record.name.clone(),
            value: (!record.secret).then(|| record.value.clone()),
            secret: record.secret,
            build: record.build,
            scope: if record.service_id.is_some() {
                "service"
            } else {
                "project"
            },
            overridden,
            updated_at: record.updated_at,
        }
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetEnv {
    /// Variables to set; others are kept.
    vars: Vec<EnvVarInput>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportEnv {
    /// Variables in the `.env` format.
    dotenv: String,
    /// Store every imported variable as a secret.
    #[serde(default)]
    secret: bool,
    /// Make every imported variable available at build time.
    #[serde(default)]
    build: bool,
}

/// The result of a change.
#[derive(Serialize, utoipa::ToSchema)]
pub struct EnvChanged {
    /// The variables now set on the scope.
    vars: Vec<EnvVarView>,
    /// Redeployments that apply the change to live services (services with `auto_redeploy`
    /// off keep the change pending).
    redeployments: Vec<Deployment>,
}

/// A scope resolved for the caller: whose variables, and which services they reach.
struct Target {
    scope: EnvScope,
    label: String,
    services: Vec<Service>,
}

async fn project_target(
    state: &AppState,
    caller: &Caller,
    project: &str,
) -> Result<Target, ApiError> {
    let name = project_param(project)?;
    let project = state.store.project(caller.team, &name).await?;
    let services = state.store.list_services(caller.team, Some(&name)).await?;
    Ok(Target {
        scope: EnvScope::Project {
            project_id: project.id,
        },
        label: name.to_string(),
        services,
    })
}

async fn service_target(
    state: &AppState,
    caller: &Caller,
    project: &str,
    service: &str,
) -> Result<Target, ApiError> {
    let service = owned_service(state, caller.team, project, service).await?;
    Ok(Target {
        scope: EnvScope::Service {
            project_id: service.project_id,
            service_id: service.id,
        },
        label: format!("{}/{}", service.project, service.name),
        services: vec![service],
    })
}

/// The scope's variables; for a service, with its project's (marked when overridden).
async fn list(state: &AppState, target: &Target) -> Result<Vec<EnvVarView>, ApiError> {
    let own = state.store.env(target.scope).await?;
    let mut views: Vec<EnvVarView> = vec![];
    if let EnvScope::Service { project_id, .. } = target.scope {
        for record in state.store.env(EnvScope::Project { project_id }).await? {
            let overridden = own.iter().any(|o| o.name == record.name);
            views.push(EnvVarView::new(&record, overridden));
        }
    }
    views.extend(own.iter().map(|r| EnvVarView::new(r, false)));
    Ok(views)
}

/// Seals secrets, stores everything in one transaction, then applies the change to live
/// services.
async fn set(
    state: &AppState,
    caller: &Caller,
    target: &Target,
    vars: &[EnvVarInput],
) -> Result<EnvChanged, ApiError> {
    check_vars(vars)?;
    let (project_id, service_id) = match target.scope {
        EnvScope::Project { project_id } => (project_id, None),
        EnvScope::Service {
            project_id,
            service_id,
        } => (project_id, Some(service_id)),
    };
    let vault = &state.platform.vault;
    let stored: Vec<StoredValue> = vars
        .iter()
        .map(|var| StoredValue {
            name: var.name.clone(),
            value: if var.secret {
                vault.seal(&binding(project_id, service_id, &var.name), &var.value)
            } else {
                var.value.clone()
            },
            secret: var.secret,
            build: var.build,
            key_id: var.secret.then(|| vault.key_id().to_owned()),
        })
        .collect();
    state
        .store
        .set_env(caller, target.scope, &target.label, &stored)
        .await?;
    changed(state, caller, target).await
}

async fn changed(
    state: &AppState,
    caller: &Caller,
    target: &Target,
) -> Result<EnvChanged, ApiError> {
    let mut redeployments = vec![];
    for service in &target.services {
        if !service.runtime.auto_redeploy {
            continue;
        }
        if let Some(live) = state.store.live_deployment(service.id).await? {
            redeployments.push(
                redeploy_image(state, caller, service, &live, DeploymentCause::Settings).await?,
            );
        }
    }
    Ok(EnvChanged {
        vars: list(state, target).await?,
        redeployments,
    })
}

async fn unset(
    state: &AppState,
    caller: &Caller,
    target: &Target,
    name: &str,
) -> Result<EnvChanged, ApiError> {
    check_name(name).map_err(|e| FieldErrors::single("name", e))?;
    let removed = state
        .store
        .unset_env(caller, target.scope, &target.label, &[name.to_owned()])
        .await?;
    if removed == 0 {
        return Err(ApiError::NotFound(format!(
            "variable {name} of {}",
            target.label
        )));
    }
    changed(state, caller, target).await
}

fn import_vars(body: &ImportEnv) -> Result<Vec<EnvVarInput>, ApiError> {
    let parsed = parse_dotenv(&body.dotenv).map_err(|e| FieldErrors::single("dotenv", e))?;
    Ok(parsed
        .into_iter()
        .map(|(name, value)| EnvVarInput {
            name,
            value,
            secret: body.secret,
            build: body.build,
        })
        .collect())
}

async fn export(state: &AppState, target: &Target) -> Result<impl IntoResponse + use<>, ApiError> {
    let mut text = format!(
        "# Environment of {} exported by Helvetia; secret values are not exported.\n",
        target.label
    );
    for record in state.store.env(target.scope).await? {
        let value = (!record.secret).then_some(record.value.as_str());
        text.push_str(&format_dotenv_line(&record.name, value));
        text.push('\n');
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct RevealedVar {
    name: String,
    value: String,
}

async fn reveal(
    state: &AppState,
    caller: &Caller,
    target: &Target,
    name: &str,
) -> Result<RevealedVar, ApiError> {
    check_name(name).map_err(|e| FieldErrors::single("name", e))?;
    let record = state
        .store
        .env(target.scope)
        .await?
        .into_iter()
        .find(|r| r.name == name)
        .ok_or_else(|| ApiError::NotFound(format!("variable {name} of {}", target.label)))?;
    let value = if record.secret {
        state
            .platform
            .vault
            .open_record(&record)
            .map_err(|e| ApiError::Internal(format!("opening {name} failed: {e}")))?
    } else {
        record.value
    };
    state
        .store
        .record_audit(
            caller,
            AuditAction::EnvReveal,
            &format!("{} {name}", target.label),
        )
        .await?;
    Ok(RevealedVar {
        name: name.to_owned(),
        value,
    })
}

// --- Project scope ---

/// A project's variables (shared by its services). Secret values are never shown.
#[utoipa::path(
    get, path = "/api/v1/projects/{project}/env", tag = "env",
    params(("project" = helvetia_core::name::ProjectName, Path, description = "Project name")),
    security(("token" = ["read"])),
    responses((status = OK, body = Vec<EnvVarView>))
)]
async fn list_project_env(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(project): ApiPath<String>,
) -> ApiResult<Json<Vec<EnvVarView>>> {
    let target = project_target(&state, &caller, &project).await?;
    Ok(Json(list(&state, &target).await?))
}

/// Set project variables (others are kept). Live services of the project with
/// `auto_redeploy` are redeployed with zero downtime.
#[utoipa::path(
    put, path = "/api/v1/projects/{project}/env", tag = "env",
    params(("project" = helvetia_core::name::ProjectName, Path, description = "Project name")),
    request_body = SetEnv,
    security(("token" = ["write"])),
    responses(
        (status = OK, body = EnvChanged),
        (status = CONFLICT, body = ErrorBody, description = "Too many variables"),
    )
)]
async fn set_project_env(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(project): ApiPath<String>,
    ApiJson(body): ApiJson<SetEnv>,
) -> ApiResult<Json<EnvChanged>> {
    let target = project_target(&state, &caller, &project).await?;
    Ok(Json(set(&state, &caller, &target, &body.vars).await?))
}

/// Remove a project variable.
#[utoipa::path(
    delete, path = "/api/v1/projects/{project}/env/{name}", tag = "env",
    params(("project" = helvetia_core::name::ProjectName, Path, description = "Project name"), ("name" = helvetia_core::env::EnvName, Path, description = "Variable name")),
    security(("token" = ["write"])),
    responses((status = OK, body = EnvChanged))
)]
async fn unset_project_env(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath((project, name)): ApiPath<(String, String)>,
) -> ApiResult<Json<EnvChanged>> {
    let target = project_target(&state, &caller, &project).await?;
    Ok(Json(unset(&state, &caller, &target, &name).await?))
}

/// Set project variables from a `.env` file: all of them or, on any error, none.
#[utoipa::path(
    post, path = "/api/v1/projects/{project}/dotenv", tag = "env",
    params(("project" = helvetia_core::name::ProjectName, Path, description = "Project name")),
    request_body = ImportEnv,
    security(("token" = ["write"])),
    responses((status = OK, body = EnvChanged))
)]
async fn import_project_env(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(project): ApiPath<String>,
    ApiJson(body): ApiJson<ImportEnv>,
) -> ApiResult<Json<EnvChanged>> {
    let target = project_target(&state, &caller, &project).await?;
    Ok(Json(
        set(&state, &caller, &target, &import_vars(&body)?).await?,
    ))
}

/// A project's variables in the `.env` format; secrets appear as comments, without values.
#[utoipa::path(
    get, path = "/api/v1/projects/{project}/dotenv", tag = "env",
    params(("project" = helvetia_core::name::ProjectName, Path, description = "Project name")),
    security(("token" = ["read"])),
    responses((status = OK, description = "A .env file", content_type = "text/plain"))
)]
async fn export_project_env(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath(project): ApiPath<String>,
) -> ApiResult<impl IntoResponse> {
    let target = project_target(&state, &caller, &project).await?;
    export(&state, &target).await
}

/// Read a project variable's value, secret or not. Audited.
#[utoipa::path(
    get, path = "/api/v1/projects/{project}/env/{name}/reveal", tag = "env",
    params(("project" = helvetia_core::name::ProjectName, Path, description = "Project name"), ("name" = helvetia_core::env::EnvName, Path, description = "Variable name")),
    security(("token" = ["secrets:reveal"])),
    responses((status = OK, body = RevealedVar))
)]
async fn reveal_project_env(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath((project, name)): ApiPath<(String, String)>,
) -> ApiResult<Json<RevealedVar>> {
    let target = project_target(&state, &caller, &project).await?;
    Ok(Json(reveal(&state, &caller, &target, &name).await?))
}

// --- Service scope ---

/// A service's variables, with the project's it inherits. Secret values are never shown.
#[utoipa::path(
    get, path = "/api/v1/projects/{project}/services/{service}/env", tag = "env",
    params(("project" = helvetia_core::name::ProjectName, Path, description = "Project name"), ("service" = helvetia_core::name::ServiceName, Path, description = "Service name")),
    security(("token" = ["read"])),
    responses((status = OK, body = Vec<EnvVarView>))
)]
async fn list_service_env(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath((project, service)): ApiPath<(String, String)>,
) -> ApiResult<Json<Vec<EnvVarView>>> {
    let target = service_target(&state, &caller, &project, &service).await?;
    Ok(Json(list(&state, &target).await?))
}

/// Set service variables (others are kept; they override project variables of the same
/// name). A live service with `auto_redeploy` is redeployed with zero downtime.
#[utoipa::path(
    put, path = "/api/v1/projects/{project}/services/{service}/env", tag = "env",
    params(("project" = helvetia_core::name::ProjectName, Path, description = "Project name"), ("service" = helvetia_core::name::ServiceName, Path, description = "Service name")),
    request_body = SetEnv,
    security(("token" = ["write"])),
    responses(
        (status = OK, body = EnvChanged),
        (status = CONFLICT, body = ErrorBody, description = "Too many variables"),
    )
)]
async fn set_service_env(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath((project, service)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<SetEnv>,
) -> ApiResult<Json<EnvChanged>> {
    let target = service_target(&state, &caller, &project, &service).await?;
    Ok(Json(set(&state, &caller, &target, &body.vars).await?))
}

/// Remove a service variable.
#[utoipa::path(
    delete, path = "/api/v1/projects/{project}/services/{service}/env/{name}", tag = "env",
    params(
        ("project" = helvetia_core::name::ProjectName, Path, description = "Project name"),
        ("service" = helvetia_core::name::ServiceName, Path, description = "Service name"),
        ("name" = helvetia_core::env::EnvName, Path, description = "Variable name"),
    ),
    security(("token" = ["write"])),
    responses((status = OK, body = EnvChanged))
)]
async fn unset_service_env(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath((project, service, name)): ApiPath<(String, String, String)>,
) -> ApiResult<Json<EnvChanged>> {
    let target = service_target(&state, &caller, &project, &service).await?;
    Ok(Json(unset(&state, &caller, &target, &name).await?))
}

/// Set service variables from a `.env` file: all of them or, on any error, none.
#[utoipa::path(
    post, path = "/api/v1/projects/{project}/services/{service}/dotenv", tag = "env",
    params(("project" = helvetia_core::name::ProjectName, Path, description = "Project name"), ("service" = helvetia_core::name::ServiceName, Path, description = "Service name")),
    request_body = ImportEnv,
    security(("token" = ["write"])),
    responses((status = OK, body = EnvChanged))
)]
async fn import_service_env(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath((project, service)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<ImportEnv>,
) -> ApiResult<Json<EnvChanged>> {
    let target = service_target(&state, &caller, &project, &service).await?;
    Ok(Json(
        set(&state, &caller, &target, &import_vars(&body)?).await?,
    ))
}

/// A service's own variables in the `.env` format; secrets appear as comments.
#[utoipa::path(
    get, path = "/api/v1/projects/{project}/services/{service}/dotenv", tag = "env",
    params(("project" = helvetia_core::name::ProjectName, Path, description = "Project name"), ("service" = helvetia_core::name::ServiceName, Path, description = "Service name")),
    security(("token" = ["read"])),
    responses((status = OK, description = "A .env file", content_type = "text/plain"))
)]
async fn export_service_env(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath((project, service)): ApiPath<(String, String)>,
) -> ApiResult<impl IntoResponse> {
    let target = service_target(&state, &caller, &project, &service).await?;
    export(&state, &target).await
}

/// Read a service variable's value, secret or not. Audited.
#[utoipa::path(
    get, path = "/api/v1/projects/{project}/services/{service}/env/{name}/reveal", tag = "env",
    params(
        ("project" = helvetia_core::name::ProjectName, Path, description = "Project name"),
        ("service" = helvetia_core::name::ServiceName, Path, description = "Service name"),
        ("name" = helvetia_core::env::EnvName, Path, description = "Variable name"),
    ),
    security(("token" = ["secrets:reveal"])),
    responses((status = OK, body = RevealedVar))
)]
async fn reveal_service_env(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiPath((project, service, name)): ApiPath<(String, String, String)>,
) -> ApiResult<Json<RevealedVar>> {
    let target = service_target(&state, &caller, &project, &service).await?;
    Ok(Json(reveal(&state, &caller, &target, &name).await?))
}
