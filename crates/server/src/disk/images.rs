//! The runtime images a service keeps: every tag of the images (by id, since redeploys and
//! restarts tag the same image again) of its last `images_kept` distinct successful builds,
//! and whatever a pending deployment is about to run. The rest goes.

use crate::platform::Platform;
use helvetia_engine::docker::EngineError;
use helvetia_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum PruneError {
    #[error("listing the images in use: {0}")]
    Store(#[from] StoreError),
    #[error("listing the images: {0}")]
    Engine(#[from] EngineError),
}

/// Removes the images of `service_id` (or of a service deleted since) that no recent
/// deployment needs. Returns how many tags were removed.
pub(crate) async fn prune_service_images(
    platform: &Platform,
    service_id: i64,
) -> Result<usize, PruneError> {
    let kept_count = platform.settings.images_kept;
    let (successful, pending) = platform.store.deployment_images(service_id, 1000).await?;
    let images = platform.engine.service_images(service_id).await?;
    let id_of = |tag: &String| {
        images
            .iter()
            .find(|image| image.tags.contains(tag))
            .map(|image| image.id.clone())
    };
    let mut kept_ids: Vec<String> = vec![];
    for id in successful.iter().filter_map(id_of) {
        if kept_ids.len() >= kept_count {
            break;
        }
        if !kept_ids.contains(&id) {
            kept_ids.push(id);
        }
    }
    kept_ids.extend(pending.iter().filter_map(id_of));
    let mut removed = 0;
    for image in images.iter().filter(|image| !kept_ids.contains(&image.id)) {
        for tag in &image.tags {
            // A preview may run an image this service built, under a tag of its own.
            if image.tags.len() > 1
                && !matches!(
                    platform.store.tag_recorded_by_others(tag, service_id).await,
                    Ok(false)
                )
            {
                continue;
            }
            if let Ok(true) = platform.engine.remove_tag(&image.id, tag).await {
                removed += 1;
            }
        }
    }
    Ok(removed)
}
