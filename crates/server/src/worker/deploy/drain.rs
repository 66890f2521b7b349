//! Drain: after the switch, the previous containers are stopped once nobody is connected to
//! them, and images no recent deployment needs are removed.

use std::time::{Duration, Instant};

use helvetia_core::container::{ContainerRecord, ContainerState};
use helvetia_engine::probe;

use super::Deploy;
use crate::platform::Platform;

impl Deploy<'_> {
    /// Stops the service's previous containers once nobody is connected to them.
    pub(super) async fn drain_previous(&mut self) {
        let platform = self.platform;
        let draining = match platform
            .store
            .service_containers(self.service.id, ContainerState::Draining)
            .await
        {
            Ok(draining) => draining,
            Err(error) => {
                self.log
                    .line(format!("Could not list the previous containers: {error}"));
                return;
            }
        };
        let drain_timeout = self.service.runtime.timeouts.drain;
        let stop_grace = self.service.runtime.timeouts.stop_grace;
        for container in draining {
            let waited = drain(platform, &container, drain_timeout).await;
            self.log
                .line(format!("Previous container {}: {waited}", container.name));
            retire_container(platform, &container, stop_grace).await;
            self.log
                .line(format!("Stopped and removed {}", container.name));
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
                if platform.engine.remove_image(tag).await.is_ok() {
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

/// Waits until a container has no open connections on its port, at most `timeout`. Says how
/// it went, for the log.
pub(crate) async fn drain(
    platform: &Platform,
    container: &ContainerRecord,
    timeout: Duration,
) -> String {
    /// The connection count must stay at zero this long: a request the edge router routed just
    /// before the switch may still be opening its connection.
    const QUIET: Duration = Duration::from_millis(300);
    const POLL: Duration = Duration::from_millis(50);
    let started = Instant::now();
    let Some(engine_id) = &container.engine_id else {
        return "never started".into();
    };
    let Some(port) = container.port else {
        return "a worker serves no connections: stopped without draining".into();
    };
    let pid = match platform.engine.inspect_container(engine_id).await {
        Ok(status) if status.running => status.pid,
        _ => return "already stopped".into(),
    };
    let Some(pid) = pid else {
        return "already stopped".into();
    };
    let mut quiet_since: Option<Instant> = None;
    loop {
        match probe::open_connections(pid, port) {
            Ok(0) => {
                let since = *quiet_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= QUIET {
                    return format!("drained in {:.2}s", started.elapsed().as_secs_f64());
                }
            }
            Ok(_) => quiet_since = None,
            Err(error) => {
                // Without a view of its connections, wait the whole drain timeout: safe, slow.
                tracing::warn!(%error, "cannot count connections; waiting the full drain timeout");
                tokio::time::sleep(timeout.saturating_sub(started.elapsed())).await;
                return format!("waited the drain timeout ({}s)", timeout.as_secs());
            }
        }
        if started.elapsed() >= timeout {
            return format!(
                "drain timeout ({}s) reached with connections still open",
                timeout.as_secs()
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Stops (SIGTERM, then SIGKILL after the grace period) and removes a container, and records
/// it stopped.
pub(crate) async fn retire_container(
    platform: &Platform,
    container: &ContainerRecord,
    grace: Duration,
) {
    let target = container.engine_id.as_deref().unwrap_or(&container.name);
    if let Err(error) = platform.engine.stop_container(target, grace).await {
        tracing::warn!(container = %container.name, %error, "stopping failed; removing anyway");
    }
    if let Err(error) = platform.engine.remove_container(target).await {
        tracing::error!(container = %container.name, %error, "removing a container failed");
        return;
    }
    if let Err(error) = platform
        .store
        .set_container_state(container.id, ContainerState::Stopped)
        .await
    {
        tracing::error!(container = %container.name, %error, "recording a stopped container failed");
    }
}

/// Removes every container a deployment started and records them failed.
pub(crate) async fn remove_deployment_containers(platform: &Platform, deployment_id: i64) {
    let containers = match platform.store.deployment_containers(deployment_id).await {
        Ok(containers) => containers,
        Err(error) => {
            tracing::error!(deployment = deployment_id, %error, "listing a deployment's containers failed");
            return;
        }
    };
    for container in containers.into_iter().filter(|c| c.state.is_active()) {
        let target = container.engine_id.as_deref().unwrap_or(&container.name);
        if let Err(error) = platform.engine.remove_container(target).await {
            tracing::error!(container = %container.name, %error, "removing a container failed");
        }
        if let Err(error) = platform
            .store
            .set_container_state(container.id, ContainerState::Failed)
            .await
        {
            tracing::error!(container = %container.name, %error, "recording a removed container failed");
        }
    }
}
