//! A service's page (status, health, replicas, resources against limits, events; deploy,
//! redeploy, roll back, restart, stop, start, scale) and adding a service to a project (from
//! one of the viewer's GitHub repositories, a git URL or a registry image).

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use helvetia_api_types::{CreateDeployment, Rollback, ServiceView};
use helvetia_core::auth::Caller;
use helvetia_core::runtime::ResourceLimits;
use helvetia_core::service::ServiceInput;
use helvetia_core::units::human_bytes;
use serde::Deserialize;

use super::form::Checked;
use super::page::{Chrome, PageError, PageResult, Viewer, render};
use super::views::{Badge, DeploymentRow, bytes_or_none, moment, service_href, source_label};
use crate::api::AppState;
use crate::api::auth_routes::see_other;
use crate::api::error::ApiError;
use crate::usecases::services::{self, Version, WhenChanged};
use crate::usecases::{App, UseCaseError, access, deployments, lifecycle, metrics};

/// What a page tells after an action: how it went, and the status the page answers with.
pub struct Flash {
    pub class: &'static str,
    pub message: String,
    pub status: StatusCode,
}

impl Flash {
    pub fn ok(message: impl Into<String>) -> Flash {
        Flash {
            class: "ok",
            message: message.into(),
            status: StatusCode::OK,
        }
    }

    /// A change refused because what it was made from changed meanwhile.
    pub fn conflict(message: impl Into<String>) -> Flash {
        Flash {
            class: "conflict",
            message: message.into(),
            status: StatusCode::CONFLICT,
        }
    }

    /// A use case's refusal, logged as the API logs it.
    pub fn failure(error: UseCaseError) -> Flash {
        let error = ApiError::from(error);
        error.log();
        Flash::error(&error)
    }

    /// A change made (`done`, a sentence), and the redeployments that apply it to the live
    /// service, if any.
    pub fn applied(done: &str, redeployments: &[i64]) -> Flash {
        if redeployments.is_empty() {
            return Flash::ok(format!("{done} It applies from the next deployment."));
        }
        let ids: Vec<String> = redeployments.iter().map(|id| format!("#{id}")).collect();
        Flash::ok(format!(
            "{done} Redeploying to apply it: deployment {}.",
            ids.join(", ")
        ))
    }

    pub fn error(error: &ApiError) -> Flash {
        let status = error.status();
        let class = if matches!(
            status,
            StatusCode::CONFLICT | StatusCode::PRECONDITION_FAILED
        ) {
            "conflict"
        } else {
            "error"
        };
        let fields = error.fields().map(|fields| {
            fields
                .iter()
                .map(|(field, problem)| format!("{field}: {problem}"))
                .collect::<Vec<_>>()
                .join("; ")
        });
        Flash {
            class,
            message: fields.unwrap_or_else(|| error.to_string()),
            status,
        }
    }

    /// `response` answering with this flash's status.
    pub fn answer(flash: Option<&Flash>, mut response: Response) -> Response {
        if let Some(flash) = flash {
            *response.status_mut() = flash.status;
        }
        response
    }
}

/// The live part of a service's page: what runs, how healthy, with what.
#[derive(Template)]
#[template(path = "service_status.html")]
pub struct StatusCard {
    live: Option<DeploymentRow>,
    /// The newest deployment while it is in progress.
    pending: Option<DeploymentRow>,
    health: Option<Badge>,
    serving: usize,
    replicas: u32,
    url: String,
    env_pending: bool,
    containers: Vec<ContainerLine>,
    events: Vec<EventLine>,
    limits: Limits,
}

struct ContainerLine {
    name: String,
    state: String,
    health: Option<Badge>,
    cpu: String,
    memory: String,
    /// Memory used as a share of the limit, 0–100 (for the meter), when limited.
    memory_share: Option<u32>,
}

struct EventLine {
    at: String,
    kind: String,
    message: String,
    container: String,
}

struct Limits {
    memory: String,
    cpus: String,
    pids: String,
}

impl StatusCard {
    /// Whether something is live (to stop) rather than stopped (to start).
    pub fn is_running(&self) -> bool {
        self.live.is_some()
    }

    /// The card of `project/service` as the caller sees it, and what its page shows around it.
    pub async fn read(
        app: &App,
        caller: &Caller,
        project: &str,
        service: &str,
    ) -> PageResult<(StatusCard, ServiceHead)> {
        let owned = access::service(app, caller, project, service).await?;
        let pending = deployments::list(app, &owned, None, Some(1))
            .await?
            .into_iter()
            .find(|d| d.status.is_in_progress())
            .map(|d| DeploymentRow::from(&d));
        let current = metrics::current(app, &owned).await?;
        let (view, version) = services::get(app, owned).await?;
        let head = ServiceHead {
            id: view.id,
            revision: version.revision,
            source: source_label(
                view.settings.repo.as_deref(),
                view.settings.image.as_deref(),
            ),
            branch: view.settings.branch.clone(),
            replicas: view.runtime.replicas,
        };
        let limits = view.runtime.limits.or(app.platform.settings.default_limits);
        Ok((StatusCard::new(view, limits, pending, &current), head))
    }

    /// The card of `view`, whose containers run with `limits` (its own over the server's
    /// defaults).
    fn new(
        view: ServiceView,
        limits: ResourceLimits,
        pending: Option<DeploymentRow>,
        current: &helvetia_api_types::CurrentMetrics,
    ) -> StatusCard {
        let limits = Limits {
            memory: bytes_or_none(limits.memory_bytes),
            cpus: limits
                .cpus
                .map_or_else(|| "none".to_owned(), |cpus| format!("{cpus}")),
            pids: limits
                .pids
                .map_or_else(|| "none".to_owned(), |pids| pids.to_string()),
        };
        let status = view
            .status
            .unwrap_or_else(|| helvetia_api_types::ServiceStatus {
                live_deployment: None,
                health: None,
                containers: vec![],
                events: vec![],
                env_pending: false,
                domains: vec![],
            });
        let containers = status
            .containers
            .iter()
            .map(|container| {
                let sample = current
                    .containers
                    .iter()
                    .find(|sample| sample.container == container.name);
                let memory_share = sample.filter(|s| s.usage.memory_limit_bytes > 0).map(|s| {
                    (s.usage.memory_bytes.saturating_mul(100) / s.usage.memory_limit_bytes).min(100)
                        as u32
                });
                ContainerLine {
                    name: container.name.clone(),
                    state: container.state.as_str().to_owned(),
                    health: container.health.map(Badge::health),
                    cpu: sample.map_or_else(
                        || "—".to_owned(),
                        |s| format!("{:.1} %", s.usage.cpu_percent),
                    ),
                    memory: sample
                        .map_or_else(|| "—".to_owned(), |s| human_bytes(s.usage.memory_bytes)),
                    memory_share,
                }
            })
            .collect();
        let events = status
            .events
            .iter()
            .map(|event| EventLine {
                at: moment(event.at),
                kind: event.kind.as_str().replace('_', " "),
                message: event.message.clone(),
                container: event.container.clone().unwrap_or_default(),
            })
            .collect();
        StatusCard {
            live: status.live_deployment.as_ref().map(DeploymentRow::from),
            pending,
            health: status.health.map(Badge::health),
            serving: status.containers.len(),
            replicas: view.runtime.replicas,
            url: view.url,
            env_pending: status.env_pending,
            containers,
            events,
            limits,
        }
    }
}

/// What a service's page shows besides its status card.
pub struct ServiceHead {
    pub id: i64,
    /// The state the page's forms were made from (a change since is refused).
    revision: i64,
    source: String,
    branch: String,
    replicas: u32,
}

#[derive(Template)]
#[template(path = "service.html")]
struct ServicePage {
    chrome: Chrome,
    nav: ServiceNav,
    source: String,
    branch: String,
    revision: i64,
    replicas: u32,
    card: StatusCard,
    flash: Option<Flash>,
}

/// `GET /p/{project}/s/{service}`.
pub async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((project, service)): Path<(String, String)>,
) -> PageResult {
    service_page(&state.app, &viewer, &project, &service, None).await
}

async fn service_page(
    app: &App,
    viewer: &Viewer,
    project: &str,
    service: &str,
    flash: Option<Flash>,
) -> PageResult {
    let (card, head) = StatusCard::read(app, &viewer.caller, project, service).await?;
    let page = ServicePage {
        chrome: viewer.chrome(format!("{project}/{service}")),
        nav: ServiceNav::new(project, service, "overview"),
        source: head.source,
        branch: head.branch,
        revision: head.revision,
        replicas: head.replicas,
        card,
        flash,
    };
    Ok(Flash::answer(page.flash.as_ref(), render(&page)))
}

#[derive(Deserialize)]
pub struct ActionForm {
    action: String,
    /// For a rollback: the deployment to go back to (default: the previous one).
    deployment: Option<i64>,
}

/// `POST /p/{project}/s/{service}/action`: deploy, redeploy, rollback, restart, stop or start.
/// One that makes a deployment goes on to its page, to watch it.
pub async fn action(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((project, service)): Path<(String, String)>,
    Checked(form): Checked<ActionForm>,
) -> PageResult {
    let app = &state.app;
    let owned = access::service(app, &viewer.caller, &project, &service).await?;
    let started = match form.action.as_str() {
        "deploy" => deployments::create(app, &owned, CreateDeployment::default()).await,
        "redeploy" => redeploy(app, &owned).await,
        "rollback" => {
            let input = Rollback {
                deployment: form.deployment,
            };
            lifecycle::rollback(app, &owned, input).await
        }
        "restart" => lifecycle::restart(app, &owned).await,
        "start" => lifecycle::start(app, &owned).await,
        "stop" => {
            return match lifecycle::stop(app, &owned).await {
                Ok(()) => Ok(see_other(&service_href(&project, &service))),
                Err(error) => failed(app, &viewer, &project, &service, error).await,
            };
        }
        other => {
            return Err(PageError(ApiError::BadRequest(format!(
                "no action `{other}`"
            ))));
        }
    };
    match started {
        Ok(deployment) => Ok(see_other(&format!(
            "{}/deployments/{}",
            service_href(&project, &service),
            deployment.id
        ))),
        Err(error) => failed(app, &viewer, &project, &service, error).await,
    }
}

/// The live commit built and deployed again.
async fn redeploy(
    app: &App,
    owned: &access::OwnedService,
) -> Result<helvetia_core::deployment::Deployment, UseCaseError> {
    let live = app.store.live_deployment(owned.id).await?;
    let Some(commit) = live.and_then(|live| live.commit_sha) else {
        return Err(UseCaseError::Conflict(
            "nothing is live to redeploy: deploy the branch instead".into(),
        ));
    };
    let input = CreateDeployment {
        commit: Some(commit),
        ..CreateDeployment::default()
    };
    deployments::create(app, owned, input).await
}

async fn failed(
    app: &App,
    viewer: &Viewer,
    project: &str,
    service: &str,
    error: UseCaseError,
) -> PageResult {
    service_page(app, viewer, project, service, Some(Flash::failure(error))).await
}

#[derive(Deserialize)]
pub struct ScaleForm {
    replicas: u32,
    /// The service's revision the form was made from: a change made since is not overwritten.
    revision: i64,
}

/// `POST /p/{project}/s/{service}/scale`.
pub async fn scale(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((project, service)): Path<(String, String)>,
    Checked(form): Checked<ScaleForm>,
) -> PageResult {
    let app = &state.app;
    let owned = access::service(app, &viewer.caller, &project, &service).await?;
    if Version::of(&owned).revision != form.revision {
        let flash = Flash::conflict(
            "This service was changed since you opened the page, by someone else or in \
             another tab. Nothing was changed: check its settings below and scale again.",
        );
        return service_page(app, &viewer, &project, &service, Some(flash)).await;
    }
    let input = ServiceInput {
        runtime: Some(serde_json::json!({ "replicas": form.replicas })),
        ..ServiceInput::default()
    };
    match services::update(app, owned, input, WhenChanged::Refuse).await {
        Ok((updated, _)) => Ok(match updated.redeployment {
            Some(deployment) => see_other(&format!(
                "{}/deployments/{}",
                service_href(&project, &service),
                deployment.id
            )),
            None => see_other(&service_href(&project, &service)),
        }),
        Err(error) => failed(app, &viewer, &project, &service, error).await,
    }
}

/// The service's frame shared by its sub-pages: breadcrumbs and tabs.
pub struct ServiceNav {
    pub project: String,
    pub name: String,
    pub href: String,
    /// `overview`, `deployments`, `logs`, `env`, `metrics` or `volumes`.
    pub current: &'static str,
}

impl ServiceNav {
    pub fn new(project: &str, service: &str, current: &'static str) -> ServiceNav {
        ServiceNav {
            project: project.to_owned(),
            name: service.to_owned(),
            href: service_href(project, service),
            current,
        }
    }
}
