//! What a caller may touch, decided here for every entry point: names resolved to what the
//! caller's teams own, and the caller's role and credential checked against what an operation
//! needs ([`Caller::actor`], the core's one rule).
//!
//! Something of a team the caller is not in is "not found", never "forbidden", so names do not
//! leak; a member whose role (or token) falls short of the operation is "forbidden". Only this
//! module makes an [`OwnedService`], [`OwnedProject`] or [`OwnedDeployment`], each carrying the
//! [`Actor`] the store writes with; an operation that takes one states the scope it needs with
//! [`act`](OwnedService::act) before it changes anything.

use std::ops::Deref;

use helvetia_core::account::Team;
use helvetia_core::auth::{Actor, Caller, Denied, Scope, TeamId};
use helvetia_core::deployment::Deployment;
use helvetia_core::name::{ProjectName, ServiceName, TeamName};
use helvetia_core::project::Project;
use helvetia_core::service::Service;
use helvetia_core::validation::FieldErrors;

use super::{App, Result, UseCaseError};

/// `caller` acting in `team` for an operation that needs `scope`; `what` names the thing for
/// a "not found".
pub fn actor(caller: &Caller, team: TeamId, scope: Scope, what: &str) -> Result<Actor> {
    caller
        .actor(team, scope)
        .map_err(|denied| denial(denied, what))
}

/// `caller` in `team`, if a member; `what` names the thing for a "not found".
fn member(caller: &Caller, team: TeamId, what: &str) -> Result<Actor> {
    caller.member(team).map_err(|denied| denial(denied, what))
}

fn denial(denied: Denied, what: &str) -> UseCaseError {
    match denied {
        Denied::NotMember => UseCaseError::NotFound(what.to_owned()),
        Denied::Role { role, needs } => UseCaseError::Forbidden(format!(
            "your role in this team ({role}) does not allow this; it needs a role with `{needs}`"
        )),
        Denied::Scope { needs } => UseCaseError::Forbidden(format!(
            "this operation needs the `{needs}` scope, which your credential does not carry"
        )),
    }
}

/// Checks that `actor` may do what needs `scope`.
pub fn require(actor: &Actor, scope: Scope) -> Result<&Actor> {
    actor.require(scope).map_err(|denied| denial(denied, ""))?;
    Ok(actor)
}

/// A service of a team the caller is in. Only [`service`] makes one, so an operation that
/// takes it cannot skip the ownership check.
#[derive(Debug, Clone)]
pub struct OwnedService {
    service: Service,
    actor: Actor,
}

impl OwnedService {
    pub fn into_service(self) -> Service {
        self.service
    }

    /// The caller acting on this service for an operation that needs `scope`.
    pub fn act(&self, scope: Scope) -> Result<&Actor> {
        require(&self.actor, scope)
    }

    pub fn into_parts(self) -> (Service, Actor) {
        (self.service, self.actor)
    }
}

impl Deref for OwnedService {
    type Target = Service;
    fn deref(&self) -> &Service {
        &self.service
    }
}

/// A project of a team the caller is in.
#[derive(Debug, Clone)]
pub struct OwnedProject {
    pub project: Project,
    actor: Actor,
}

impl OwnedProject {
    pub fn act(&self, scope: Scope) -> Result<&Actor> {
        require(&self.actor, scope)
    }

    pub fn into_parts(self) -> (Project, Actor) {
        (self.project, self.actor)
    }
}

/// A deployment of a team the caller is in.
#[derive(Debug, Clone)]
pub struct OwnedDeployment {
    pub deployment: Deployment,
    actor: Actor,
}

impl OwnedDeployment {
    pub fn act(&self, scope: Scope) -> Result<&Actor> {
        require(&self.actor, scope)
    }
}

/// Parses a team name given by the caller (errors are reported under `team`).
pub fn team_name(raw: &str) -> Result<TeamName> {
    Ok(TeamName::parse(raw).map_err(|e| FieldErrors::single("team", e))?)
}

/// The team called `name` and the caller acting in it for what needs `scope`; a team the
/// caller is not in is "not found", like one that does not exist.
pub async fn team(
    app: &App,
    caller: &Caller,
    name: &TeamName,
    scope: Scope,
) -> Result<(Team, Actor)> {
    let what = format!("team `{name}`");
    let team = app
        .store
        .team_by_name(name)
        .await?
        .ok_or_else(|| UseCaseError::NotFound(what.clone()))?;
    let actor = actor(caller, team.id, scope, &what)?;
    Ok((team, actor))
}

/// Parses a project name given as `{project}` (errors are reported under `project`).
pub fn project_name(raw: &str) -> Result<ProjectName> {
    Ok(ProjectName::parse(raw).map_err(|e| FieldErrors::single("project", e))?)
}

/// The project `project` names, if the caller is in its team.
pub async fn project(app: &App, caller: &Caller, project: &str) -> Result<OwnedProject> {
    let name = project_name(project)?;
    let what = format!("project `{name}`");
    let team = app
        .store
        .project_team(&name)
        .await?
        .ok_or_else(|| UseCaseError::NotFound(what.clone()))?;
    let actor = member(caller, team, &what)?;
    Ok(OwnedProject {
        project: app.store.project(team, &name).await?,
        actor,
    })
}

/// The service `project`/`service` names, if the caller is in its team. Invalid names are
/// reported under `project` and `service`, together.
pub async fn service(
    app: &App,
    caller: &Caller,
    project: &str,
    service: &str,
) -> Result<OwnedService> {
    let mut errors = FieldErrors::new();
    let project = errors.check("project", ProjectName::parse(project));
    let service = errors.check("service", ServiceName::parse(service));
    let (project, name) = errors.finish(|| Some((project?, service?)))?;
    let what = format!("service `{project}/{name}`");
    let team = app
        .store
        .project_team(&project)
        .await?
        .ok_or_else(|| UseCaseError::NotFound(what.clone()))?;
    let actor = member(caller, team, &what)?;
    Ok(OwnedService {
        service: app.store.service(team, &project, &name).await?,
        actor,
    })
}

/// Deployment `id`, if the caller is in its team.
pub async fn deployment(app: &App, caller: &Caller, id: i64) -> Result<OwnedDeployment> {
    let what = format!("deployment #{id}");
    let team = app
        .store
        .deployment_team(id)
        .await?
        .ok_or_else(|| UseCaseError::NotFound(what.clone()))?;
    let actor = member(caller, team, &what)?;
    Ok(OwnedDeployment {
        deployment: app.store.deployment(team, id).await?,
        actor,
    })
}

/// The teams whose things the caller sees in listings (`None`: every team, for the system).
pub fn visible_teams(caller: &Caller) -> Option<Vec<TeamId>> {
    (!caller.is_system()).then(|| caller.teams.keys().copied().collect())
}
