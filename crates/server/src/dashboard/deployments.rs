//! A service's deployment history, and one deployment: its phases and its log, live while it
//! runs (the log over the API's stream, the phases refreshed on each status event the log
//! viewer announces).

use askama::Template;
use axum::extract::{Path, State};
use helvetia_core::deployment::{Deployment, DeploymentKind, DeploymentStatus, Transition};

use super::page::{Chrome, PageResult, Viewer, render};
use super::services::ServiceNav;
use super::views::{Badge, DeploymentRow, moment};
use crate::api::AppState;
use crate::api::error::ApiError;
use crate::usecases::{App, access, deployments, logs};

/// How many deployments the history shows.
const HISTORY: i64 = 50;
/// How many lines of a log the page itself holds, for reading without JavaScript.
const STATIC_LINES: i64 = 5000;

#[derive(Template)]
#[template(path = "deployments.html")]
struct HistoryPage {
    chrome: Chrome,
    nav: ServiceNav,
    deployments: Vec<HistoryRow>,
}

struct HistoryRow {
    row: DeploymentRow,
    /// A successful deployment that is not live: one to roll back to.
    can_roll_back_to: bool,
}

/// `GET /p/{project}/s/{service}/deployments`.
pub async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((project, service)): Path<(String, String)>,
) -> PageResult {
    let owned = access::service(&state.app, &viewer.caller, &project, &service).await?;
    let deployments = deployments::list(&state.app, &owned, None, Some(HISTORY)).await?;
    let deployments = deployments
        .iter()
        .map(|deployment| HistoryRow {
            row: DeploymentRow::from(deployment),
            can_roll_back_to: deployment.status == DeploymentStatus::Retired,
        })
        .collect();
    Ok(render(&HistoryPage {
        chrome: viewer.chrome(format!("Deployments of {project}/{service}")),
        nav: ServiceNav::new(&project, &service, "deployments"),
        deployments,
    }))
}

/// The phases a deployment goes through, with where it is: refreshed as its status changes.
#[derive(Template)]
#[template(path = "deployment_phases.html")]
struct Phases {
    href: String,
    status: Badge,
    phases: Vec<Phase>,
    /// How it ended, when it did not go live: the status and why.
    outcome: Option<(Badge, String)>,
    in_progress: bool,
}

struct Phase {
    label: &'static str,
    /// `done`, `current`, `failed` or `` (not reached).
    state: &'static str,
    at: Option<String>,
    reason: String,
}

impl Phases {
    async fn read(app: &App, viewer: &Viewer, id: i64) -> PageResult<(Phases, Deployment)> {
        let detail = deployments::get(app, &viewer.caller, id).await?;
        let deployment = detail.deployment;
        let phases = Phases::of(&deployment, &detail.transitions);
        Ok((phases, deployment))
    }

    fn of(deployment: &Deployment, transitions: &[Transition]) -> Phases {
        use DeploymentStatus::*;
        let pipeline: &[(DeploymentStatus, &str)] = if deployment.kind == DeploymentKind::Build {
            &[
                (Queued, "Queued"),
                (Cloning, "Clone"),
                (Building, "Build"),
                (Starting, "Start"),
                (HealthChecking, "Health check"),
                (Live, "Live"),
            ]
        } else {
            &[
                (Queued, "Queued"),
                (Starting, "Start"),
                (HealthChecking, "Health check"),
                (Live, "Live"),
            ]
        };
        let reached = |status: DeploymentStatus| transitions.iter().rev().find(|t| t.to == status);
        let current = deployment.status;
        let failed = !current.is_in_progress() && !matches!(current, Live | Retired);
        let last_reached = pipeline
            .iter()
            .rposition(|(status, _)| reached(*status).is_some())
            .unwrap_or(0);
        let phases = pipeline
            .iter()
            .enumerate()
            .map(|(index, (status, label))| {
                let transition = reached(*status);
                let state = if failed && index == last_reached {
                    "failed"
                } else if index == last_reached && current.is_in_progress() {
                    "current"
                } else if index <= last_reached {
                    "done"
                } else {
                    ""
                };
                Phase {
                    label,
                    state,
                    at: transition.map(|t| moment(t.at)),
                    reason: transition.map(|t| t.reason.clone()).unwrap_or_default(),
                }
            })
            .collect();
        let outcome = failed.then(|| {
            (
                Badge::status(current),
                deployment.status_reason.clone().unwrap_or_default(),
            )
        });
        Phases {
            href: String::new(),
            status: Badge::status(current),
            phases,
            outcome,
            in_progress: current.is_in_progress(),
        }
    }
}

#[derive(Template)]
#[template(path = "deployment.html")]
struct DeploymentPage {
    chrome: Chrome,
    nav: ServiceNav,
    row: DeploymentRow,
    phases: Phases,
    lines: Vec<String>,
    more_lines: bool,
}

/// `GET /p/{project}/s/{service}/deployments/{id}`.
pub async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((project, service, id)): Path<(String, String, i64)>,
) -> PageResult {
    let app = &state.app;
    let (mut phases, deployment) = Phases::read(app, &viewer, id).await?;
    let owned = access::service(app, &viewer.caller, &project, &service).await?;
    if deployment.service_id != owned.id {
        return Err(ApiError::NotFound(format!("deployment #{id} of {project}/{service}")).into());
    }
    let log = logs::deployment_log(app, &viewer.caller, id, None, Some(STATIC_LINES)).await?;
    let row = DeploymentRow::from(&deployment);
    phases.href = format!("{}/phases", row.href);
    Ok(render(&DeploymentPage {
        chrome: viewer.chrome(format!("Deployment #{id} of {project}/{service}")),
        nav: ServiceNav::new(&project, &service, "deployments"),
        more_lines: log.lines.len() as i64 >= STATIC_LINES,
        lines: log.lines.into_iter().map(|line| line.line).collect(),
        row,
        phases,
    }))
}

/// `GET /p/{project}/s/{service}/deployments/{id}/phases`: the phases alone, for htmx.
pub async fn phases(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((project, service, id)): Path<(String, String, i64)>,
) -> PageResult {
    let (mut phases, deployment) = Phases::read(&state.app, &viewer, id).await?;
    let row = DeploymentRow::from(&deployment);
    if !row
        .href
        .starts_with(&super::views::service_href(&project, &service))
    {
        return Err(ApiError::NotFound(format!("deployment #{id} of {project}/{service}")).into());
    }
    phases.href = format!("{}/phases", row.href);
    Ok(render(&phases))
}
