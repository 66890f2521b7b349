//! Projects: create, list, show, delete (when empty).

use helvetia_api_types::{CreateProject, Project};
use helvetia_core::auth::Caller;
use helvetia_core::name::ProjectName;
use helvetia_core::validation::FieldErrors;

use super::access::project_name;
use super::{App, Result};

pub async fn create(app: &App, caller: &Caller, input: CreateProject) -> Result<Project> {
    let name = ProjectName::parse(&input.name).map_err(|e| FieldErrors::single("name", e))?;
    Ok(app.store.create_project(caller, &name).await?)
}

pub async fn list(app: &App, caller: &Caller) -> Result<Vec<Project>> {
    Ok(app.store.list_projects(caller.team).await?)
}

pub async fn get(app: &App, caller: &Caller, project: &str) -> Result<Project> {
    Ok(app
        .store
        .project(caller.team, &project_name(project)?)
        .await?)
}

/// Deletes a project that has no services left.
pub async fn delete(app: &App, caller: &Caller, project: &str) -> Result<()> {
    Ok(app
        .store
        .delete_project(caller, &project_name(project)?)
        .await?)
}
