//! `/`: the viewer's projects and their services at a glance (status, health, address), kept
//! current over SSE ([`super::live::overview`]); creating a project.

use askama::Template;
use axum::extract::State;
use helvetia_api_types::CreateProject;
use helvetia_core::auth::Caller;
use serde::Deserialize;

use super::form::Checked;
use super::page::{Chrome, PageResult, Viewer, render};
use super::views::ServiceRow;
use crate::api::AppState;
use crate::api::auth_routes::see_other;
use crate::api::error::ApiError;
use crate::usecases::{App, projects, services};

/// The projects and their services: the part of the overview that updates live.
#[derive(Template)]
#[template(path = "overview_list.html")]
pub struct OverviewList {
    projects: Vec<ProjectCard>,
}

struct ProjectCard {
    name: String,
    services: Vec<ServiceRow>,
}

impl OverviewList {
    pub async fn read(app: &App, caller: &Caller) -> PageResult<OverviewList> {
        let projects = projects::list(app, caller).await?;
        let mut summaries = services::summaries(app, caller, None).await?;
        let projects = projects
            .into_iter()
            .map(|project| {
                let name = project.name.to_string();
                let (mine, others) = summaries.drain(..).partition(|s| s.view.project == name);
                summaries = others;
                ProjectCard {
                    services: mine.iter().map(ServiceRow::from).collect(),
                    name,
                }
            })
            .collect();
        Ok(OverviewList { projects })
    }
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    chrome: Chrome,
    list: OverviewList,
    project_error: Option<String>,
    project_name: String,
}

/// `GET /`.
pub async fn page(State(state): State<AppState>, viewer: Viewer) -> PageResult {
    let list = OverviewList::read(&state.app, &viewer.caller).await?;
    Ok(render(&OverviewPage {
        chrome: viewer.chrome("Projects"),
        list,
        project_error: None,
        project_name: String::new(),
    }))
}

#[derive(Deserialize)]
pub struct NewProject {
    name: String,
}

/// `POST /projects`: on to adding its first service.
pub async fn create_project(
    State(state): State<AppState>,
    viewer: Viewer,
    Checked(form): Checked<NewProject>,
) -> PageResult {
    let input = CreateProject {
        name: form.name.trim().to_owned(),
        team: None,
    };
    match projects::create(&state.app, &viewer.caller, input).await {
        Ok(project) => Ok(see_other(&format!("/p/{}/new", project.name))),
        Err(error) => {
            let error = ApiError::from(error);
            let message = error
                .fields()
                .and_then(|fields| fields.get("name").cloned())
                .unwrap_or_else(|| error.to_string());
            let list = OverviewList::read(&state.app, &viewer.caller).await?;
            let mut response = render(&OverviewPage {
                chrome: viewer.chrome("Projects"),
                list,
                project_error: Some(message),
                project_name: form.name,
            });
            *response.status_mut() = error.status();
            Ok(response)
        }
    }
}
