//! The disk budget: one limit over what Helvetia's builds leave on disk — the runtime images in
//! the host engine, the registry's storage, and the builder engine's images and build cache —
//! kept by a sweep that only ever removes Helvetia's own objects:
//!
//! 1. runtime images beyond each service's rollback window ([`images`]), always;
//! 2. registry manifests no deployment needs any more — one needs it while it is in progress
//!    or while the host still has its image (live or in the rollback window) — then the
//!    registry's garbage collection reclaims their blobs;
//! 3. when the whole is still over the budget, the builder's build cache, least recently used
//!    first, down to what the budget leaves for it.
//!
//! Steps 2 and 3 hold the builder ([`Builder::exclusive`]), so no build or push runs while
//! the registry collects its garbage. What a live or rollback-able deployment needs is never
//! removed, even over the budget: the sweep then says by how much it is over. The host
//! engine's build cache (`--builder host`) carries no owner and is never pruned.
//!
//! The sweep runs at start, every [`SWEEP_EVERY`], and after each deployment's drain (at most
//! once per [`MIN_GAP`]); what it measured and freed goes to the log and to `/metrics`.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use helvetia_engine::builder::Builder;
use helvetia_engine::docker::EngineError;
use helvetia_engine::registry::{Registry, RegistryError};
use helvetia_store::StoreError;
use tokio_util::sync::CancellationToken;

use crate::platform::Platform;

pub use helvetia_core::disk::{DiskUse, Sweep};

pub mod images;

const SWEEP_EVERY: Duration = Duration::from_secs(10 * 60);
/// Deploys in a row wake the sweep once: each sweep asks the engines for their disk usage.
const MIN_GAP: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Sweeps at start, every [`SWEEP_EVERY`] and when woken by a deployment, until `shutdown`.
pub async fn run(platform: Arc<Platform>, shutdown: CancellationToken) {
    loop {
        match sweep(&platform).await {
            Ok(sweep) => report(&platform, &sweep),
            Err(error) => tracing::warn!(%error, "the disk budget's sweep failed"),
        }
        // A deployment that ends meanwhile leaves its wake-up stored for after the gap.
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(MIN_GAP) => {}
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = platform.disk_due.notified() => {}
            () = tokio::time::sleep(SWEEP_EVERY - MIN_GAP) => {}
        }
    }
}

/// Removes what nothing needs, then build cache while over the budget.
pub async fn sweep(platform: &Platform) -> Result<Sweep, DiskError> {
    let mut freed = DiskUse::default();
    let before = platform.engine.owned_disk().await?.images;
    let services: HashSet<i64> = platform
        .engine
        .owned_images()
        .await?
        .iter()
        .filter_map(|image| image.service)
        .collect();
    for service in services {
        if let Err(error) = images::prune_service_images(platform, service).await {
            tracing::warn!(%error, service, "not pruning a service's images");
        }
    }
    let mut used = DiskUse {
        images: platform.engine.owned_disk().await?.images,
        ..DiskUse::default()
    };
    freed.images = before.saturating_sub(used.images);
    if let Some(builder) = &platform.builder {
        sweep_builder(platform, builder, &mut used, &mut freed).await?;
    }
    Ok(Sweep { used, freed })
}

/// Steps 2 and 3, holding the builder.
async fn sweep_builder(
    platform: &Platform,
    builder: &Builder,
    used: &mut DiskUse,
    freed: &mut DiskUse,
) -> Result<(), DiskError> {
    let _exclusive = builder.exclusive().await?;
    // Built images are removed once handed over; one left by a crash goes now.
    builder.engine().remove_owned_images().await?;
    if let Some(registry) = builder.registry() {
        freed.registry = reclaim_registry(platform, registry).await?;
        used.registry = registry.storage_bytes().await?;
    }
    let disk = builder.engine().whole_disk().await?;
    used.builder_images = disk.images;
    used.build_cache = disk.build_cache;
    let budget = platform.settings.disk_budget;
    if used.total() > budget {
        let others = used.total() - used.build_cache;
        let pruned = builder
            .engine()
            .prune_build_cache_to(budget.saturating_sub(others))
            .await?;
        let after = builder.engine().whole_disk().await?;
        freed.build_cache = pruned.max(used.build_cache.saturating_sub(after.build_cache));
        used.builder_images = after.images;
        used.build_cache = after.build_cache;
    }
    Ok(())
}

/// Deletes the registry's manifests no deployment needs and collects the garbage. Returns the
/// bytes the collection freed.
async fn reclaim_registry(platform: &Platform, registry: &Registry) -> Result<u64, DiskError> {
    let tags: HashSet<String> = platform
        .engine
        .owned_images()
        .await?
        .into_iter()
        .flat_map(|image| image.tags)
        .collect();
    let needed: HashSet<String> = platform
        .store
        .recorded_digests()
        .await?
        .into_iter()
        .filter(|recorded| {
            recorded.in_progress
                || recorded
                    .image
                    .as_ref()
                    .is_some_and(|image| tags.contains(image))
        })
        .map(|recorded| recorded.digest)
        .collect();
    let mut deleted = 0;
    for manifest in registry.manifests().await? {
        if !needed.contains(&manifest.digest) {
            registry.delete(&manifest).await?;
            deleted += 1;
        }
    }
    if deleted == 0 {
        return Ok(0);
    }
    tracing::info!(deleted, "deleted registry manifests no deployment needs");
    Ok(registry.collect_garbage().await?)
}

/// Logs what a sweep freed and whether it is still over the budget, and hands its figures to
/// `/metrics` and to the API (`GET /api/v1/disk`).
pub fn report(platform: &Platform, sweep: &Sweep) {
    let budget = platform.settings.disk_budget;
    crate::metrics::exporter().record_disk(sweep, budget);
    let previous = platform
        .last_sweep
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .replace((jiff::Timestamp::now(), *sweep));
    let over = |used: &DiskUse| used.total().saturating_sub(budget);
    // Said again only when it grew by a tenth: each sweep finds the same excess otherwise.
    let said = previous.map(|(_, before)| over(&before.used));
    let Sweep { used, freed } = sweep;
    if freed.total() > 0 {
        tracing::info!(
            freed = freed.total(),
            freed_images = freed.images,
            freed_registry = freed.registry,
            freed_build_cache = freed.build_cache,
            used = used.total(),
            budget,
            "the disk budget's sweep freed {}",
            helvetia_core::units::human_bytes(freed.total())
        );
    }
    if over(used) > 0 && said.is_none_or(|said| over(used) > said + said / 10) {
        tracing::warn!(
            used = used.total(),
            images = used.images,
            registry = used.registry,
            builder = used.builder_images + used.build_cache,
            budget,
            "over the disk budget by {}: what is left is needed by live or rollback-able \
             deployments, or is a base image",
            helvetia_core::units::human_bytes(used.total() - budget)
        );
    }
}
