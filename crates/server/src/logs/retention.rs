//! The deployment-log retention policy ([`LogLimits`]), applied at start and every hour: logs
//! of deployments older than the retention go, except those of each service's most recent
//! deployments. The webhook delivery log's 30 days are applied on the same pace.

use std::sync::Arc;
use std::time::Duration;

use helvetia_core::Timestamp;
use helvetia_core::webhook;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use super::LogLimits;
use crate::platform::Platform;

const PERIOD: Duration = Duration::from_secs(3600);

/// Prunes every hour until `shutdown`, starting at once.
pub async fn run(platform: Arc<Platform>, shutdown: CancellationToken) {
    let LogLimits {
        retention,
        keep_deployments,
        ..
    } = platform.settings.log_limits;
    let mut ticks = tokio::time::interval(PERIOD);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let Ok(older_than) = Timestamp::now().checked_sub(retention) else {
            tracing::warn!(?retention, "the log retention reaches before any timestamp");
            continue;
        };
        match platform
            .store
            .prune_logs(older_than, keep_deployments)
            .await
        {
            Ok(0) => {}
            Ok(lines) => tracing::info!(lines, "deleted deployment logs past their retention"),
            Err(error) => tracing::warn!(%error, "applying the log retention failed"),
        }
        // The webhook delivery log has a retention of its own, applied on the same pace.
        let Ok(deliveries_before) = Timestamp::now().checked_sub(webhook::delivery::RETENTION)
        else {
            continue;
        };
        match platform.store.prune_deliveries(deliveries_before).await {
            Ok(0) => {}
            Ok(deliveries) => tracing::info!(deliveries, "deleted webhook deliveries past 30 days"),
            Err(error) => tracing::warn!(%error, "pruning the webhook delivery log failed"),
        }
    }
}
