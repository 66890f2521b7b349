//! Downsampling and retention of the stored metrics, once a minute: complete minutes and
//! hours are averaged (the store's roll-up never counts a sample twice, so a missed or
//! repeated run changes nothing), then rows older than their resolution's retention are
//! deleted, which bounds the table to what the retention holds.

use std::sync::Arc;
use std::time::Duration;

use helvetia_core::Timestamp;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::platform::Platform;

const PERIOD: Duration = Duration::from_secs(60);

/// Rolls up and prunes every minute until `shutdown`, starting at once.
pub async fn run(platform: Arc<Platform>, shutdown: CancellationToken) {
    let retention = platform.settings.metrics.retention;
    let store = &platform.store;
    let mut ticks = tokio::time::interval(PERIOD);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let now = Timestamp::now();
        match store.roll_up_metrics(now).await {
            Ok(rows) => tracing::debug!(rows, "metrics rolled up"),
            Err(error) => tracing::warn!(%error, "rolling up metrics failed"),
        }
        match store.prune_metrics(now, &retention).await {
            Ok(rows) => tracing::debug!(rows, "expired metrics deleted"),
            Err(error) => tracing::warn!(%error, "deleting expired metrics failed"),
        }
        super::exporter().upkeep();
    }
}
