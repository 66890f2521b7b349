//! Adding a service to a project: from one of the viewer's GitHub repositories (those the
//! instance's GitHub App reaches for them), a git URL or a registry image; then, unless asked
//! not to, its first deployment, whose page the browser goes on to.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use helvetia_api_types::{CreateDeployment, CreateService, GitHubSource};
use helvetia_core::auth::Caller;
use helvetia_core::service::PortInput;
use helvetia_core::validation::{FieldErrors, Invalid};
use serde::Deserialize;

use super::form::Checked;
use super::page::{Chrome, PageError, PageResult, Viewer, render};
use super::services::Flash;
use super::views::service_href;
use crate::api::AppState;
use crate::api::auth_routes::see_other;
use crate::api::error::ApiError;
use crate::usecases::{App, access, deployments, github_repos, services};

#[derive(Template)]
#[template(path = "service_new.html")]
struct NewServicePage {
    chrome: Chrome,
    project: String,
    repositories: Vec<RepositoryChoice>,
    /// Why the viewer's GitHub repositories are not listed, when they are not.
    github_note: Option<String>,
    form: NewService,
    flash: Option<Flash>,
}

struct RepositoryChoice {
    value: String,
    label: String,
}

#[derive(Deserialize, Default)]
pub struct NewService {
    #[serde(default)]
    name: String,
    /// `github`, `git` or `image`.
    #[serde(default)]
    source: String,
    /// `installation:owner/name`.
    #[serde(default)]
    github: String,
    #[serde(default)]
    repo: String,
    #[serde(default)]
    image: String,
    #[serde(default)]
    branch: String,
    #[serde(default)]
    port: String,
    #[serde(default)]
    deploy: Option<String>,
}

impl NewService {
    fn source_is(&self, source: &str) -> bool {
        self.source == source || (self.source.is_empty() && source == "git")
    }

    fn input(&self) -> Result<CreateService, ApiError> {
        let given = |value: &str| Some(value.trim().to_owned()).filter(|v| !v.is_empty());
        let mut input = CreateService {
            name: self.name.trim().to_owned(),
            branch: given(&self.branch),
            ..CreateService::default()
        };
        match self.source.as_str() {
            "github" => {
                let (installation, repository) =
                    self.github.split_once(':').unwrap_or(("", &self.github));
                input.github = Some(GitHubSource {
                    repository: repository.to_owned(),
                    installation_id: installation.parse().ok(),
                });
            }
            "image" => input.image = given(&self.image),
            _ => input.repo = given(&self.repo),
        }
        input.port = match self.port.trim() {
            "" => None,
            "none" => Some(PortInput::Keyword("none".into())),
            port => Some(PortInput::Number(port.parse().map_err(|_| {
                ApiError::Invalid(FieldErrors::single(
                    "port",
                    Invalid::new("a number between 1 and 65535, or `none`"),
                ))
            })?)),
        };
        Ok(input)
    }
}

/// `GET /p/{project}/new`.
pub async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(project): Path<String>,
) -> PageResult {
    let form = NewService {
        deploy: Some("on".into()),
        ..NewService::default()
    };
    new_service_page(&state.app, &viewer, &project, form, None).await
}

async fn new_service_page(
    app: &App,
    viewer: &Viewer,
    project: &str,
    form: NewService,
    flash: Option<Flash>,
) -> PageResult {
    access::project(app, &viewer.caller, project).await?;
    let (repositories, github_note) = github_choices(app, &viewer.caller).await;
    let page = NewServicePage {
        chrome: viewer.chrome(format!("New service in {project}")),
        project: project.to_owned(),
        repositories,
        github_note,
        form,
        flash,
    };
    Ok(Flash::answer(page.flash.as_ref(), render(&page)))
}

/// The repositories the viewer reaches through the instance's GitHub App, or why none are
/// listed (no App, an account not linked to GitHub, GitHub not answering).
async fn github_choices(app: &App, caller: &Caller) -> (Vec<RepositoryChoice>, Option<String>) {
    let installations = match github_repos::installations(app, caller).await {
        Ok(installations) => installations,
        Err(error) => return (vec![], Some(ApiError::from(error).to_string())),
    };
    let mut choices = vec![];
    for installation in installations {
        match github_repos::repositories(app, caller, installation.id).await {
            Ok(repositories) => {
                choices.extend(repositories.into_iter().map(|repository| RepositoryChoice {
                    value: format!("{}:{}", installation.id, repository.full_name),
                    label: repository.full_name,
                }))
            }
            Err(error) => return (choices, Some(ApiError::from(error).to_string())),
        }
    }
    let note = choices
        .is_empty()
        .then(|| "the Helvetia GitHub App reaches none of your repositories yet".to_owned());
    (choices, note)
}

/// `POST /p/{project}/new`: the service, then (by default) its first deployment.
pub async fn create(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(project): Path<String>,
    Checked(form): Checked<NewService>,
) -> PageResult {
    let app = &state.app;
    let created = match form.input() {
        Ok(input) => services::create(app, &viewer.caller, &project, input)
            .await
            .map_err(ApiError::from),
        Err(error) => Err(error),
    };
    let view = match created {
        Ok((view, _)) => view,
        Err(error) => {
            error.log();
            let flash = Flash::error(&error);
            return new_service_page(app, &viewer, &project, form, Some(flash)).await;
        }
    };
    let href = service_href(&view.project, &view.name);
    if form.deploy.is_none() {
        return Ok(see_other(&href));
    }
    let owned = access::service(app, &viewer.caller, &view.project, &view.name).await?;
    Ok(
        match deployments::create(app, &owned, CreateDeployment::default()).await {
            Ok(deployment) => see_other(&format!("{href}/deployments/{}", deployment.id)),
            Err(error) => PageError::from(error).into_response(),
        },
    )
}
