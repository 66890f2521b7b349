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
        prune_deliveries(&platform).await;
    }
}

/// Applies the delivery log's 30 days, settles as failed the deliveries a restart left
/// `waiting` for a diff that no longer runs, and as not deployed those whose checks did not
/// pass by their deadline.
async fn prune_deliveries(platform: &Platform) {
    let now = Timestamp::now();
    let stale = now.checked_sub(webhook::delivery::STALE_WAITING);
    let expired = now.checked_sub(webhook::delivery::RETENTION);
    let (Ok(stale), Ok(expired)) = (stale, expired) else {
        return;
    };
    match platform.store.fail_stale_deliveries(stale).await {
        Ok(0) => {}
        Ok(deliveries) => tracing::info!(deliveries, "webhook deliveries left waiting: failed"),
        Err(error) => tracing::warn!(%error, "settling stale webhook deliveries failed"),
    }
    match platform.store.expire_check_waits(now).await {
        Ok(0) => {}
        Ok(deliveries) => tracing::info!(deliveries, "pushes whose checks did not pass in time"),
        Err(error) => tracing::warn!(%error, "settling pushes waiting for checks failed"),
    }
    match platform.store.prune_deliveries(expired).await {
        Ok(0) => {}
        Ok(deliveries) => tracing::info!(deliveries, "deleted webhook deliveries past 30 days"),
        Err(error) => tracing::warn!(%error, "pruning the webhook delivery log failed"),
    }
}
