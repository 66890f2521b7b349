//! A service's volumes with their sizes: adding one (mounted from the next deployment; a live
//! service is redeployed to mount it) and removing one (its data is deleted once no container
//! mounts it — said before it is done).

use askama::Template;
use axum::extract::{Path, State};
use helvetia_api_types::{AddVolume, VolumeChange};
use helvetia_core::units::human_bytes;
use serde::Deserialize;

use super::form::Checked;
use super::page::{Chrome, PageResult, Viewer, render};
use super::services::{Flash, ServiceNav};
use super::views::moment;
use crate::api::AppState;
use crate::usecases::{App, UseCaseError, access, volumes};

#[derive(Template)]
#[template(path = "volumes.html")]
struct VolumesPage {
    chrome: Chrome,
    nav: ServiceNav,
    volumes: Vec<VolumeRow>,
    flash: Option<Flash>,
}

struct VolumeRow {
    name: String,
    path: String,
    size: String,
    created: String,
}

async fn volumes_page(
    app: &App,
    viewer: &Viewer,
    (project, service): (&str, &str),
    flash: Option<Flash>,
) -> PageResult {
    let owned = access::service(app, &viewer.caller, project, service).await?;
    let volumes = volumes::list(app, &owned)
        .await?
        .into_iter()
        .map(|view| VolumeRow {
            size: human_bytes(view.size_bytes),
            created: moment(view.volume.created_at),
            name: view.volume.name,
            path: view.volume.path,
        })
        .collect();
    let page = VolumesPage {
        chrome: viewer.chrome(format!("Volumes of {project}/{service}")),
        nav: ServiceNav::new(project, service, "volumes"),
        volumes,
        flash,
    };
    Ok(Flash::answer(page.flash.as_ref(), render(&page)))
}

/// `GET /p/{project}/s/{service}/volumes`.
pub async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((project, service)): Path<(String, String)>,
) -> PageResult {
    volumes_page(&state.app, &viewer, (&project, &service), None).await
}

/// What the page says after a change: done, and whether a redeploy applies it.
fn outcome(changed: Result<VolumeChange, UseCaseError>, done: &str) -> Flash {
    match changed {
        Ok(change) => {
            let ids: Vec<i64> = change.redeployment.iter().map(|d| d.id).collect();
            Flash::applied(done, &ids)
        }
        Err(error) => Flash::failure(error),
    }
}

#[derive(Deserialize)]
pub struct NewVolume {
    name: String,
    path: String,
}

/// `POST /p/{project}/s/{service}/volumes`.
pub async fn add(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((project, service)): Path<(String, String)>,
    Checked(form): Checked<NewVolume>,
) -> PageResult {
    let app = &state.app;
    let owned = access::service(app, &viewer.caller, &project, &service).await?;
    let input = AddVolume {
        name: form.name.trim().to_owned(),
        path: form.path.trim().to_owned(),
    };
    let flash = outcome(volumes::add(app, &owned, input).await, "Added.");
    volumes_page(app, &viewer, (&project, &service), Some(flash)).await
}

#[derive(Deserialize)]
pub struct VolumeName {
    name: String,
}

/// `POST /p/{project}/s/{service}/volumes/remove`.
pub async fn remove(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((project, service)): Path<(String, String)>,
    Checked(form): Checked<VolumeName>,
) -> PageResult {
    let app = &state.app;
    let owned = access::service(app, &viewer.caller, &project, &service).await?;
    let removed = volumes::remove(app, &owned, &form.name).await;
    let flash = outcome(
        removed,
        "Removed; its data is deleted once no container mounts it.",
    );
    volumes_page(app, &viewer, (&project, &service), Some(flash)).await
}
