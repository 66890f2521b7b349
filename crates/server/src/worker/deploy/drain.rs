//! Drain: after the switch, the previous containers are stopped once nobody is connected to
//! them, and images no recent deployment needs are removed.

use helvetia_core::container::ContainerRecord;

use super::Deploy;
use crate::containers;
use crate::failpoint::{self, Failpoint};

impl Deploy<'_> {
    /// Stops the service's previous containers once nobody is connected to them.
    pub(super) async fn drain_previous(&mut self) {
        failpoint::reached(Failpoint::Drain).await;
        let log = self.log;
        let retired = containers::retire_draining(
            self.platform,
            self.service.id,
            &self.service.runtime.timeouts,
            move |container: ContainerRecord, drained: String| async move {
                log.line(format!("Previous container {}: {drained}", container.name));
                log.line(format!("Stopped and removed {}", container.name));
            },
        )
        .await;
        if let Err(error) = retired {
            log.line(format!("Could not list the previous containers: {error}"));
        }
    }

    /// Removes images no recent deployment needs, and build cache nothing refers to.
    ///
    /// Kept: every tag of the images (by id, since redeploys and restarts tag the same image
    /// again) of the service's last `images_kept` distinct successful builds, and whatever a
    /// pending deployment is about to run.
    pub(super) async fn prune_images(&mut self) {
        let platform = self.platform;
        let kept_count = platform.settings.images_kept;
        let (successful, pending) = match platform
            .store
            .deployment_images(self.service.id, 1000)
            .await
        {
            Ok(images) => images,
            Err(error) => {
                tracing::warn!(%error, "not pruning images: listing the ones in use failed");
                return;
            }
        };
        let images = match platform.engine.service_images(self.service.id).await {
            Ok(images) => images,
            Err(error) => {
                tracing::warn!(%error, "not pruning images: listing them failed");
                return;
            }
        };
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
                        platform
                            .store
                            .tag_recorded_by_others(tag, self.service.id)
                            .await,
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
        if removed > 0 {
            self.log.line(format!(
                "Removed {removed} old image tag(s); the images of the last {kept_count} builds are kept for rollback"
            ));
        }
        if let Err(error) = platform.engine.prune_dangling_build_cache().await {
            tracing::warn!(%error, "pruning the build cache failed");
        }
    }
}
