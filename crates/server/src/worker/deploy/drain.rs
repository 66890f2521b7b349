//! Drain: after the switch, the previous containers are stopped once nobody is connected to
//! them, and images no recent deployment needs are removed.

use helvetia_core::container::ContainerRecord;

use super::Deploy;
use crate::containers;
use crate::disk::images::prune_service_images;
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

    /// Removes images no recent deployment needs ([`crate::disk::images`]), then wakes the
    /// disk budget's sweep: the build may have grown the cache and the registry.
    pub(super) async fn prune_images(&mut self) {
        let platform = self.platform;
        match prune_service_images(platform, self.service.id).await {
            Ok(0) => {}
            Ok(removed) => self.log.line(format!(
                "Removed {removed} old image tag(s); the images of the last {} builds are kept for rollback",
                platform.settings.images_kept
            )),
            Err(error) => tracing::warn!(%error, "not pruning images"),
        }
        platform.disk_due.notify_one();
    }
}
