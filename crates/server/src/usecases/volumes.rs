//! A service's persistent volumes. Adding or removing one changes what the containers mount,
//! so on a live service it is applied like any such setting: a redeploy of the live image. A
//! removed volume's data is deleted by the reconciler once no container uses it any more.

use helvetia_api_types::{AddVolume, VolumeChange, VolumeView};
use helvetia_core::auth::{Actor, Scope};
use helvetia_core::deployment::DeploymentCause;
use helvetia_core::service::Service;
use helvetia_core::validation::FieldErrors;
use helvetia_core::volume;

use super::access::OwnedService;
use super::deployments::redeploy_image;
use super::{App, Result, UseCaseError};

/// The service's volumes with their sizes.
pub async fn list(app: &App, service: &OwnedService) -> Result<Vec<VolumeView>> {
    let mut views = vec![];
    for volume in app.store.volumes(service.id).await? {
        let size_bytes = app
            .platform
            .engine
            .volume_size(&volume.engine_name)
            .await
            .map_err(|e| UseCaseError::Internal(e.to_string()))?;
        views.push(VolumeView { volume, size_bytes });
    }
    Ok(views)
}

/// Redeploys the live image, if any, so the containers mount the service's current volumes.
async fn apply(app: &App, actor: &Actor, service: &OwnedService) -> Result<VolumeChange> {
    let redeployment = match app.store.live_deployment(service.id).await? {
        Some(live) => {
            Some(redeploy_image(app, actor, service, &live, DeploymentCause::Settings).await?)
        }
        None => None,
    };
    Ok(VolumeChange {
        volumes: list(app, service).await?,
        redeployment,
    })
}

/// Adds a volume; a live service is redeployed to mount it.
pub async fn add(app: &App, service: &OwnedService, input: AddVolume) -> Result<VolumeChange> {
    let actor = service.act(Scope::Write)?;
    let mut errors = FieldErrors::new();
    let name = errors.check("name", volume::check_name(&input.name));
    let path = errors.check("path", volume::check_path(&input.path));
    errors.finish(|| Some((name?, path?)))?;
    record(app, actor, service, &input.name, &input.path).await?;
    apply(app, actor, service).await
}

/// Removes a volume: a live service is redeployed without it, and its data goes once no
/// container mounts it.
pub async fn remove(app: &App, service: &OwnedService, name: &str) -> Result<VolumeChange> {
    let actor = service.act(Scope::Write)?;
    app.store.remove_volume(actor, service, name).await?;
    let change = apply(app, actor, service).await?;
    app.reconcile.notify_one();
    Ok(change)
}

/// Records volume `name` at `path` of `service` under its engine name (made on first use).
pub(super) async fn record(
    app: &App,
    actor: &Actor,
    service: &Service,
    name: &str,
    path: &str,
) -> Result<()> {
    let engine_name = app.platform.engine.scope().volume(
        service.project.as_str(),
        service.name.as_str(),
        service.id,
        name,
    );
    app.store
        .add_volume(actor, service, name, path, &engine_name)
        .await?;
    Ok(())
}
