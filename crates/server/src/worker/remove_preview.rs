//! The preview-removal job: a preview's pull request closed (or it was removed, or pushed out
//! by a newer one). Its containers leave the route and stop, as for a stop; then its image
//! tags, its service with its history and hostname, and its volumes go. A rerun after a crash
//! finds less to do; one that finds the service gone is done.

use helvetia_engine::docker::EngineError;
use helvetia_store::StoreError;

use super::stop::take_down;
use super::{JobContext, JobOutcome};

pub async fn run(context: &JobContext) -> JobOutcome {
    let platform = &context.platform;
    let Some(service_id) = context.job.service_id else {
        return JobOutcome::Failed("remove_preview job without a service".into());
    };
    let service = match platform.store.service_by_id(service_id).await {
        Ok(service) => service,
        Err(StoreError::NotFound(_)) => return JobOutcome::Succeeded,
        Err(error) => return JobOutcome::Failed(error.to_string()),
    };
    if service.preview.is_none() {
        return JobOutcome::Failed(format!("service #{service_id} is not a preview"));
    }
    if let Err(error) = take_down(platform, &service, "removed with its preview").await {
        return JobOutcome::Failed(error);
    }
    let tags = match platform.store.service_image_tags(service_id).await {
        Ok(tags) => tags,
        Err(error) => return JobOutcome::Failed(error.to_string()),
    };
    for tag in tags {
        // Only a tag still naming an image of this installation is removed; the image goes
        // with its last tag unless another service's tag holds it.
        let removed = match platform.engine.owned_image(&tag).await {
            Ok(image) => platform.engine.remove_tag(&image, &tag).await.map(|_| ()),
            Err(EngineError::NotFound(_)) => Ok(()),
            Err(error) => Err(error),
        };
        if let Err(error) = removed {
            tracing::warn!(%tag, %error, "removing a preview's image failed");
        }
    }
    // Its route goes with its hostname: the table is published from the store.
    let routing = platform.routing().await;
    if let Err(error) = platform.store.delete_preview_service(service_id).await {
        return JobOutcome::Failed(error.to_string());
    }
    if let Err(error) = platform.publish_routes_locked(&routing).await {
        tracing::warn!(%error, "publishing the routes without a removed preview failed");
    }
    drop(routing);
    if let Err(error) = platform.remove_unused_volumes().await {
        tracing::warn!(%error, "removing a preview's volumes failed");
    }
    JobOutcome::Succeeded
}
