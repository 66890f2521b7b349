//! Projects: create, list, show, delete (when empty).

use helvetia_api_types::{CreateProject, Project};
use helvetia_core::auth::{Caller, Scope, TeamId};
use helvetia_core::name::{ProjectName, TeamName};
use helvetia_core::validation::{FieldErrors, Invalid};

use super::access::{self, visible_teams};
use super::{App, Result, UseCaseError};

/// Creates a project in the team named (the caller must be allowed to `write` there) or in the
/// caller's default team. Project names are unique across the instance (hostnames are made of
/// them): a taken name is "not available", whoever has it.
pub async fn create(app: &App, caller: &Caller, input: CreateProject) -> Result<Project> {
    let mut errors = FieldErrors::new();
    let name = errors.check("name", ProjectName::parse(&input.name));
    let team = errors.check_optional("team", input.team.as_deref(), TeamName::parse);
    let (name, team) = errors.finish(|| Some((name?, team?)))?;
    let actor = match team {
        Some(team) => access::team(app, caller, &team, Scope::Write).await?.1,
        None => access::actor(
            caller,
            default_team(app, caller).await?,
            Scope::Write,
            "team",
        )?,
    };
    Ok(app.store.create_project(&actor, &name).await?)
}

/// Where a project goes when no team is named: the caller's personal team, else the one team
/// the caller's credential is limited to; for the system, the oldest team.
async fn default_team(app: &App, caller: &Caller) -> Result<TeamId> {
    let Some(user) = caller.user() else {
        return app
            .store
            .list_teams()
            .await?
            .into_iter()
            .map(|team| team.id)
            .min()
            .ok_or_else(|| UseCaseError::Conflict("there is no team yet".into()));
    };
    if let Some(personal) = app.store.personal_team(user).await?
        && caller.teams.contains_key(&personal)
    {
        return Ok(personal);
    }
    match caller.teams.keys().collect::<Vec<_>>().as_slice() {
        [only] => Ok(**only),
        _ => Err(FieldErrors::single(
            "team",
            Invalid::new("name the team that will own the project"),
        )
        .into()),
    }
}

pub async fn list(app: &App, caller: &Caller) -> Result<Vec<Project>> {
    Ok(app
        .store
        .list_projects(visible_teams(caller).as_deref())
        .await?)
}

pub async fn get(app: &App, caller: &Caller, project: &str) -> Result<Project> {
    Ok(access::project(app, caller, project).await?.project)
}

/// Deletes a project that has no services left.
pub async fn delete(app: &App, caller: &Caller, project: &str) -> Result<()> {
    let owned = access::project(app, caller, project).await?;
    let actor = owned.act(Scope::Write)?;
    Ok(app.store.delete_project(actor, &owned.project.name).await?)
}
