//! A service's environment: its variables (a secret's value masked; revealed one at a time,
//! audited, only to a role and credential allowed `secrets:reveal`), setting one, pasting a
//! `.env` file, removing one. A change reaches a live service by the redeploy the use case
//! starts (or stays pending when auto-redeploy is off), as the page then says.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use helvetia_api_types::{EnvChanged, EnvVarView, ImportEnv, SetEnv};
use helvetia_core::env::EnvVarInput;
use serde::Deserialize;

use super::form::Checked;
use super::page::{Chrome, PageResult, Viewer, render};
use super::services::{Flash, ServiceNav};
use crate::api::AppState;
use crate::usecases::env::{self, EnvTarget, Unset};
use crate::usecases::{App, UseCaseError, access};

#[derive(Template)]
#[template(path = "env.html")]
struct EnvPage {
    chrome: Chrome,
    nav: ServiceNav,
    vars: Vec<VarRow>,
    flash: Option<Flash>,
}

struct VarRow {
    name: String,
    /// The value shown: a plain variable's, or a secret's once revealed.
    value: Option<String>,
    secret: bool,
    kind: &'static str,
    inherited: bool,
    overridden: bool,
}

impl VarRow {
    fn of(var: EnvVarView, revealed: Option<&(String, String)>) -> VarRow {
        let kind = if var.build_arg {
            "build argument"
        } else if var.build {
            "runtime and build"
        } else {
            "runtime"
        };
        let shown = revealed
            .filter(|(name, _)| *name == var.name)
            .map(|(_, value)| value.clone());
        VarRow {
            value: shown.or(var.value),
            secret: var.secret,
            kind,
            inherited: matches!(var.scope, helvetia_api_types::VarScope::Project),
            overridden: var.overridden,
            name: var.name,
        }
    }
}

async fn target(app: &App, viewer: &Viewer, project: &str, service: &str) -> PageResult<EnvTarget> {
    let owned = access::service(app, &viewer.caller, project, service).await?;
    Ok(env::service_target(owned))
}

async fn env_page(
    app: &App,
    viewer: &Viewer,
    (project, service): (&str, &str),
    flash: Option<Flash>,
    revealed: Option<(String, String)>,
) -> PageResult {
    let target = target(app, viewer, project, service).await?;
    let vars = env::list(app, &target)
        .await?
        .into_iter()
        .map(|var| VarRow::of(var, revealed.as_ref()))
        .collect();
    let page = EnvPage {
        chrome: viewer.chrome(format!("Environment of {project}/{service}")),
        nav: ServiceNav::new(project, service, "env"),
        vars,
        flash,
    };
    Ok(Flash::answer(page.flash.as_ref(), render(&page)))
}

/// `GET /p/{project}/s/{service}/env`.
pub async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((project, service)): Path<(String, String)>,
) -> PageResult {
    env_page(&state.app, &viewer, (&project, &service), None, None).await
}

/// What the page says after a change: saved, and how it reaches the service.
fn outcome(changed: Result<EnvChanged, UseCaseError>) -> Flash {
    match changed {
        Ok(changed) => {
            let ids: Vec<i64> = changed.redeployments.iter().map(|d| d.id).collect();
            Flash::applied("Saved.", &ids)
        }
        Err(error) => Flash::failure(error),
    }
}

#[derive(Deserialize)]
pub struct SetForm {
    name: String,
    value: String,
    secret: Option<String>,
    /// `runtime`, `build` or `build_arg`.
    kind: Option<String>,
}

/// `POST /p/{project}/s/{service}/env`: one variable.
pub async fn set(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((project, service)): Path<(String, String)>,
    Checked(form): Checked<SetForm>,
) -> PageResult {
    let target = target(&state.app, &viewer, &project, &service).await?;
    let kind = form.kind.as_deref().unwrap_or("runtime");
    let input = SetEnv {
        vars: vec![EnvVarInput {
            name: form.name.trim().to_owned(),
            value: form.value,
            secret: form.secret.is_some(),
            build: kind == "build",
            build_arg: kind == "build_arg",
        }],
    };
    let flash = outcome(env::set(&state.app, &target, input).await);
    env_page(&state.app, &viewer, (&project, &service), Some(flash), None).await
}

#[derive(Deserialize)]
pub struct ImportForm {
    dotenv: String,
    secret: Option<String>,
}

/// `POST /p/{project}/s/{service}/env/import`: a pasted `.env` file.
pub async fn import(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((project, service)): Path<(String, String)>,
    Checked(form): Checked<ImportForm>,
) -> PageResult {
    let target = target(&state.app, &viewer, &project, &service).await?;
    let input = ImportEnv {
        dotenv: form.dotenv,
        secret: form.secret.is_some(),
        build: false,
        build_arg: false,
    };
    let flash = outcome(env::import(&state.app, &target, input).await);
    env_page(&state.app, &viewer, (&project, &service), Some(flash), None).await
}

#[derive(Deserialize)]
pub struct NameForm {
    name: String,
}

/// `POST /p/{project}/s/{service}/env/unset`.
pub async fn unset(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((project, service)): Path<(String, String)>,
    Checked(form): Checked<NameForm>,
) -> PageResult {
    let target = target(&state.app, &viewer, &project, &service).await?;
    let flash = outcome(env::unset(&state.app, &target, Unset::One(&form.name)).await);
    env_page(&state.app, &viewer, (&project, &service), Some(flash), None).await
}

#[derive(Template)]
#[template(path = "env_revealed.html")]
struct Revealed {
    value: String,
}

/// `POST /p/{project}/s/{service}/env/reveal`: one value, audited. htmx swaps it into its
/// row; without JavaScript the page comes back with it shown.
pub async fn reveal(
    State(state): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    Path((project, service)): Path<(String, String)>,
    Checked(form): Checked<NameForm>,
) -> PageResult {
    let target = target(&state.app, &viewer, &project, &service).await?;
    let revealed = match env::reveal(&state.app, &target, &form.name).await {
        Ok(revealed) => revealed,
        Err(error) => {
            let flash = Flash::failure(error);
            return env_page(&state.app, &viewer, (&project, &service), Some(flash), None).await;
        }
    };
    if headers.contains_key("hx-request") {
        return Ok(render(&Revealed {
            value: revealed.value,
        }));
    }
    let shown = Some((revealed.name, revealed.value));
    env_page(&state.app, &viewer, (&project, &service), None, shown).await
}
