//! Services: create, list, show with their running state, change settings (redeploying the
//! live image when the change needs new containers), delete.

use helvetia_api_types::{CreateService, ServiceStatus, ServiceView, UpdatedService};
use helvetia_core::auth::{Actor, Caller, Scope};
use helvetia_core::container::{ContainerState, Health};
use helvetia_core::deployment::DeploymentCause;
use helvetia_core::image::{check_registry_password, check_registry_user};
use helvetia_core::name::ServiceName;
use helvetia_core::runtime::RuntimeSettings;
use helvetia_core::service::{Service, ServiceInput, ServiceSettings};
use helvetia_core::validation::{FieldErrors, Invalid};
use helvetia_store::StoreError;
use helvetia_store::services::NewService;

use super::access::{self, OwnedService, project_name, visible_teams};
use super::deployments::redeploy_image;
use super::github_repos;
use super::{App, Result, UseCaseError};

/// How many events a service's view includes.
const EVENTS_SHOWN: i64 = 10;

/// How often a change is made again on a service that another change overtook.
const REAPPLY_ATTEMPTS: usize = 5;

/// Which state of a service a view shows. Entry points hand it to clients (the API as an
/// `ETag`), which name it back to change only that state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    pub service_id: i64,
    pub revision: i64,
}

impl Version {
    pub fn of(service: &Service) -> Version {
        Version {
            service_id: service.id,
            revision: service.revision,
        }
    }
}

/// What a change does when the service changed since the caller read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenChanged {
    /// The change was meant for the state the caller read: refuse it.
    Refuse,
    /// Apply the change to the service as it is now.
    Reapply,
}

/// A service as the API shows it, without its running state.
async fn view(app: &App, service: Service, status: Option<ServiceStatus>) -> ServiceView {
    ServiceView {
        url: app.platform.service_address(&service).await,
        id: service.id,
        project: service.project.to_string(),
        name: service.name.to_string(),
        settings: (&service.settings).into(),
        github: service.github.as_ref().map(Into::into),
        registry_user: service.registry_user,
        runtime: service.runtime,
        status,
        created_at: service.created_at,
        updated_at: service.updated_at,
    }
}

/// A service as the API shows it, with its running state.
async fn detailed(app: &App, service: Service) -> Result<ServiceView> {
    let store = &app.store;
    let containers = store
        .service_containers(service.id, ContainerState::Serving)
        .await?;
    let health = worst_health(&containers);
    let live_deployment = store.live_deployment(service.id).await?;
    let env_pending = match &live_deployment {
        Some(live) => {
            let current = app.platform.env_digest(&service).await?;
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
        domains: store.domains(service.id).await?,
    };
    Ok(view(app, service, Some(status)).await)
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

/// Creates a service in `project`; every setting left out takes its default.
pub async fn create(
    app: &App,
    caller: &Caller,
    project: &str,
    input: CreateService,
) -> Result<(ServiceView, Version)> {
    let owned = access::project(app, caller, project).await?;
    let actor = owned.act(Scope::Write)?;
    let project = owned.project.name.clone();
    let (repo, default_branch, github) = match (input.repo, &input.github, &input.image) {
        (Some(repo), None, None) => (Some(repo), None, None),
        (None, Some(source), None) => {
            let found = github_repos::source(app, caller, source).await?;
            (
                Some(found.clone_url),
                found.default_branch,
                Some(found.link),
            )
        }
        (None, None, Some(_)) => (None, None, None),
        (repo, github, _) => {
            let why = match (repo, github) {
                (None, None) => "required: a repository URL, `github` naming one, or `image`",
                _ => "give one of `repo`, `github` or `image`",
            };
            return Err(FieldErrors::single("repo", Invalid::new(why)).into());
        }
    };
    let login = LoginChange::read(
        input.registry_user.as_deref(),
        input.registry_password.as_deref(),
    )?;
    let settings_input = ServiceInput {
        repo,
        image: input.image,
        branch: input.branch.or(default_branch),
        dockerfile: input.dockerfile,
        context: input.context,
        port: input.port,
        runtime: None,
        registry_user: None,
        registry_password: None,
    };
    let platform = &app.platform.settings;
    let mut errors = FieldErrors::new();
    let name = errors.check("name", ServiceName::parse(&input.name));
    let settings = errors.absorb(ServiceSettings::create(
        &settings_input,
        platform.repo_policy,
    ));
    let runtime = errors.absorb(RuntimeSettings::default().merged(
        input.runtime.as_ref().unwrap_or(&serde_json::Value::Null),
        &platform.runtime_bounds(),
    ));
    let (name, settings, runtime) = errors.finish(|| Some((name?, settings?, runtime?)))?;
    if login.is_some() && settings.image().is_none() {
        let why = Invalid::new("a registry login is for a service run from `image`");
        return Err(FieldErrors::single("registry_user", why).into());
    }
    let hostname = platform.hostname(project.as_str(), name.as_str());
    let service = app
        .store
        .create_service(
            actor,
            &NewService {
                project: &project,
                name: &name,
                settings: &settings,
                runtime: &runtime,
                hostname: &hostname,
                github: github.as_ref(),
            },
        )
        .await?;
    let service = match login {
        Some(login) => login.apply(app, actor, service).await?,
        None => service,
    };
    let version = Version::of(&service);
    Ok((view(app, service, None).await, version))
}

/// A change of a service's registry login, as a client asked for it.
enum LoginChange<'a> {
    Set { user: &'a str, password: &'a str },
    Remove,
}

impl<'a> LoginChange<'a> {
    /// The change `user` and `password` ask for: both set one, an empty user removes it.
    fn read(user: Option<&'a str>, password: Option<&'a str>) -> Result<Option<Self>> {
        let invalid = |field: &str, why: &str| -> UseCaseError {
            FieldErrors::single(field, Invalid::new(why)).into()
        };
        match (user, password) {
            (None, None) => Ok(None),
            (Some(""), None) => Ok(Some(LoginChange::Remove)),
            (Some(""), Some(_)) => Err(invalid(
                "registry_password",
                "an empty `registry_user` removes the login: send no password with it",
            )),
            (None, Some(_)) => Err(invalid("registry_user", "is required with a password")),
            (Some(_), None) => Err(invalid("registry_password", "is required with a user")),
            (Some(user), Some(password)) => {
                let mut errors = FieldErrors::new();
                errors.check("registry_user", check_registry_user(user));
                errors.check("registry_password", check_registry_password(password));
                errors.finish(|| Some(()))?;
                Ok(Some(LoginChange::Set { user, password }))
            }
        }
    }

    /// Stores the change (the password sealed for this service); the service as it is now.
    async fn apply(self, app: &App, actor: &Actor, service: Service) -> Result<Service> {
        match self {
            LoginChange::Set { user, password } => {
                let binding = crate::vault::registry_password_binding(service.id);
                let sealed = app.platform.vault.seal(&binding, password);
                app.store
                    .set_registry_login(actor, &service, Some((user, &sealed)))
                    .await?;
            }
            LoginChange::Remove => app.store.set_registry_login(actor, &service, None).await?,
        }
        Ok(app.store.service_by_id(service.id).await?)
    }
}

/// The caller's services, of one project or of all.
pub async fn list(app: &App, caller: &Caller, project: Option<&str>) -> Result<Vec<ServiceView>> {
    let project = project.map(project_name).transpose()?;
    let services = app
        .store
        .list_services(visible_teams(caller).as_deref(), project.as_ref())
        .await?;
    let mut views = Vec::with_capacity(services.len());
    for service in services {
        views.push(view(app, service, None).await);
    }
    Ok(views)
}

/// A service at a glance: what an overview shows of it.
pub struct ServiceSummary {
    pub view: ServiceView,
    /// Its newest deployment, whatever its status (one in progress shows here first).
    pub latest: Option<helvetia_core::deployment::Deployment>,
    /// The worst health of its serving containers; `None` when none serves.
    pub health: Option<Health>,
    pub serving: usize,
}

/// The caller's services at a glance, of one project or of all.
pub async fn summaries(
    app: &App,
    caller: &Caller,
    project: Option<&str>,
) -> Result<Vec<ServiceSummary>> {
    let project = project.map(project_name).transpose()?;
    let services = app
        .store
        .list_services(visible_teams(caller).as_deref(), project.as_ref())
        .await?;
    let mut summaries = Vec::with_capacity(services.len());
    for service in services {
        let latest = app.store.list_deployments(&service, None, 1).await?.pop();
        let serving = app
            .store
            .service_containers(service.id, ContainerState::Serving)
            .await?;
        summaries.push(ServiceSummary {
            health: worst_health(&serving),
            serving: serving.len(),
            latest,
            view: view(app, service, None).await,
        });
    }
    Ok(summaries)
}

/// The worst health among `containers` (one not yet probed counts as healthy).
fn worst_health(containers: &[helvetia_core::container::ContainerRecord]) -> Option<Health> {
    containers
        .iter()
        .map(|c| c.health.unwrap_or(Health::Healthy))
        .max_by_key(|h| health_rank(*h))
}

/// A service with its URL, live deployment, containers and recent events.
pub async fn get(app: &App, service: OwnedService) -> Result<(ServiceView, Version)> {
    let version = Version::of(&service);
    Ok((detailed(app, service.into_service()).await?, version))
}

/// Changes a service's settings; fields left out keep their value. `when_changed` says what
/// happens when another change commits between reading the service and writing it. A change
/// that shapes the containers (port, limits, replicas, …) is applied to a live service by a
/// zero-downtime redeploy of its live image.
pub async fn update(
    app: &App,
    service: OwnedService,
    input: ServiceInput,
    when_changed: WhenChanged,
) -> Result<(UpdatedService, Version)> {
    service.act(Scope::Write)?;
    let login = LoginChange::read(
        input.registry_user.as_deref(),
        input.registry_password.as_deref(),
    )?;
    let (mut service, actor) = service.into_parts();
    let mut attempts = 0;
    let (before, settings, runtime, updated) = loop {
        let (settings, runtime) = changed(app, &service, &input)?;
        if matches!(login, Some(LoginChange::Set { .. })) && settings.image().is_none() {
            let why = Invalid::new("a registry login is for a service run from `image`");
            return Err(FieldErrors::single("registry_user", why).into());
        }
        match app
            .store
            .update_service(&actor, &service, &settings, &runtime)
            .await
        {
            Ok(updated) => break (service, settings, runtime, updated),
            Err(StoreError::Stale(_)) if when_changed == WhenChanged::Reapply => {
                attempts += 1;
                if attempts > REAPPLY_ATTEMPTS {
                    return Err(UseCaseError::Conflict(
                        "the service kept changing while this change was made; try again".into(),
                    ));
                }
                service = app.store.service_by_id(service.id).await?;
            }
            Err(error) => return Err(error.into()),
        }
    };
    // Settings that shape the container never change a running app in place: they are
    // applied by a zero-downtime redeploy of the live image.
    let needs_new_containers =
        settings.port != before.settings.port || before.runtime.needs_new_containers(&runtime);
    // A change of the replica count alone is a scale: no release command runs for it.
    let only_scaled = settings == before.settings
        && RuntimeSettings {
            replicas: runtime.replicas,
            ..before.runtime.clone()
        } == runtime;
    let cause = if only_scaled {
        DeploymentCause::Scale
    } else {
        DeploymentCause::Settings
    };
    let updated = match login {
        Some(login) => login.apply(app, &actor, updated).await?,
        None => updated,
    };
    let redeployment = match app.store.live_deployment(updated.id).await? {
        Some(live) if needs_new_containers => {
            Some(redeploy_image(app, &actor, &updated, &live, cause).await?)
        }
        _ => None,
    };
    let version = Version::of(&updated);
    let updated = UpdatedService {
        service: detailed(app, updated).await?,
        redeployment,
    };
    Ok((updated, version))
}

/// The settings `service` has once `input` is applied to them, or why they would be invalid.
fn changed(
    app: &App,
    service: &Service,
    input: &ServiceInput,
) -> Result<(ServiceSettings, RuntimeSettings)> {
    let platform = &app.platform.settings;
    let mut errors = FieldErrors::new();
    let settings = errors.absorb(service.settings.update(input, platform.repo_policy));
    let runtime = match &input.runtime {
        Some(patch) => errors.absorb(service.runtime.merged(patch, &platform.runtime_bounds())),
        None => Some(service.runtime.clone()),
    };
    Ok(errors.finish(|| Some((settings?, runtime?)))?)
}

/// Deletes a service and its deployment history. A service with volumes is only deleted with
/// `delete_volumes`, since their data goes with it. Its containers and route go with the
/// reconciliation this starts.
pub async fn delete(app: &App, service: OwnedService, delete_volumes: bool) -> Result<()> {
    let actor = service.act(Scope::Write)?;
    if service.preview.is_some() {
        // A preview's volumes are its own, made empty for it: they go with it.
        return super::previews::take_apart(app, actor, &service).await;
    }
    let volumes = app.store.volumes(service.id).await?;
    if !volumes.is_empty() && !delete_volumes {
        let names: Vec<&str> = volumes.iter().map(|v| v.name.as_str()).collect();
        return Err(UseCaseError::Conflict(format!(
            "the service has volumes ({}); deleting it deletes their data too: confirm with `delete_volumes=true` (CLI: `--delete-volumes`)",
            names.join(", ")
        )));
    }
    app.store.delete_service(actor, &service).await?;
    app.reconcile.notify_one();
    Ok(())
}
