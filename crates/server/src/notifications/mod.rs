//! Notifications at work: [`emit`] queues an event for every channel of its project that
//! subscribes to it (the one call the rest of the server makes), and [`run`], a supervised
//! task, sends what is due — woken by every enqueue and otherwise at the next due time —
//! recording each attempt and trying failures again with the core's back-off
//! (`core::notification::retry_delay`). A receiver that accepts a message (HTTP 2xx, or the
//! SMTP server's acceptance) ends it: it is never sent again. A crash between the acceptance
//! and its record can repeat it once, which the generic webhook's delivery id lets a receiver
//! detect.
//!
//! Every connection goes through [`Platform::outbound`], its host resolved and checked again
//! at each attempt. The channel operations are `usecases::notifications`; `send.rs` speaks
//! HTTP and SMTP.

mod send;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use helvetia_core::notification::{NotificationEvent, deployment_event, retry_delay};
use helvetia_core::service::Service;
use helvetia_store::notifications::{AfterAttempt, Attempt, Channel, Message};
use jiff::Timestamp;
use rand::RngExt;
use tokio_util::sync::CancellationToken;

use crate::logs::DeployLog;
use crate::platform::Platform;

pub use send::WebhookSettings;

/// A new delivery id: the same on every attempt at one message.
pub fn delivery_id() -> String {
    format!("{:032x}", rand::rng().random::<u128>())
}

/// Queues `event` for every enabled channel of project `project_id` that subscribes to its
/// kind, and wakes the sender. Never fails its caller (a deploy does not fail because a
/// notification could not be queued): a failure is logged.
pub async fn emit(platform: &Platform, project_id: i64, event: NotificationEvent) {
    match platform
        .store
        .enqueue_notifications(project_id, &event, delivery_id)
        .await
    {
        Ok(0) => {}
        Ok(queued) => {
            tracing::debug!(kind = %event.kind, queued, "notifications queued");
            platform.notifications_due.notify_one();
        }
        Err(error) => {
            tracing::warn!(kind = %event.kind, %error, "a notification could not be queued");
        }
    }
}

/// Emits what deployment `id` of `service` ended as (read again: its last transition may
/// have been recorded elsewhere), if it makes an event ([`deployment_event`]): the deploy
/// job's one call, after its commit status. A preview's deploy that went live is
/// `preview_ready`, with its pull request and URL.
pub async fn deployment_ended(platform: &Platform, service: &Service, id: i64, log: &DeployLog) {
    let deployment = match platform.store.deployment_by_id(id).await {
        Ok(deployment) => deployment,
        Err(error) => {
            tracing::warn!(deployment = id, %error, "reading the deployment failed");
            return;
        }
    };
    let preview = service.preview.as_ref();
    let Some(kind) = deployment_event(deployment.status, deployment.cause, preview.is_some())
    else {
        return;
    };
    let mut event = NotificationEvent::new(
        kind,
        service.project.as_str(),
        deployment.finished_at.unwrap_or_else(Timestamp::now),
    );
    // A preview is told as its service's, with its pull request.
    event.service = Some(match preview {
        Some(preview) => preview.parent.to_string(),
        None => service.name.to_string(),
    });
    event.pull_request = preview.and_then(|preview| preview.label.pull_request_number());
    event.deployment_id = Some(id);
    event.commit = deployment.commit_sha.or(deployment.requested_commit);
    event.status = Some(deployment.status.to_string());
    event.reason = deployment.status_reason.map(|reason| log.redact(&reason));
    event.url = Some(platform.settings.service_url(service));
    emit(platform, service.project_id, event).await;
}

/// Messages taken from the outbox at once, and sent at the same time at most.
const BATCH: i64 = 32;
const PARALLEL: usize = 8;
/// How long the sender sleeps with nothing due (an enqueue wakes it sooner).
const IDLE: Duration = Duration::from_secs(300);
/// How long it waits after the store failed to answer.
const AFTER_ERROR: Duration = Duration::from_secs(5);

/// How long a message that ended is kept (with its attempts), and how often older ones are
/// removed.
const KEPT: Duration = Duration::from_secs(30 * 24 * 3600);
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Sends due messages until `stop`; removes messages older than [`KEPT`] once an hour.
pub async fn run(platform: Arc<Platform>, stop: CancellationToken) {
    let mut pruned_at: Option<tokio::time::Instant> = None;
    loop {
        if pruned_at.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
            pruned_at = Some(tokio::time::Instant::now());
            let before = Timestamp::now()
                .checked_sub(KEPT)
                .unwrap_or(Timestamp::UNIX_EPOCH);
            if let Err(error) = platform.store.prune_notifications(before).await {
                tracing::warn!(%error, "old notifications could not be removed");
            }
        }
        let wait = match send_due(&platform).await {
            Ok(()) => match platform.store.next_notification_due().await {
                Ok(Some(next)) => {
                    Duration::try_from(next.duration_since(Timestamp::now())).unwrap_or_default()
                }
                Ok(None) => IDLE,
                Err(error) => {
                    tracing::warn!(%error, "the notification outbox could not be read");
                    AFTER_ERROR
                }
            },
            Err(error) => {
                tracing::warn!(%error, "the notification outbox could not be read");
                AFTER_ERROR
            }
        };
        tokio::select! {
            () = stop.cancelled() => return,
            () = platform.notifications_due.notified() => {}
            () = tokio::time::sleep(wait.min(IDLE)) => {}
        }
    }
}

/// Sends every message due now, a batch at a time.
async fn send_due(platform: &Platform) -> Result<(), helvetia_store::StoreError> {
    loop {
        let due = platform
            .store
            .due_notifications(Timestamp::now(), BATCH)
            .await?;
        let full = due.len() as i64 == BATCH;
        futures::stream::iter(due)
            .for_each_concurrent(PARALLEL, |(message, channel)| async move {
                attempt(platform, &message, &channel).await;
            })
            .await;
        if !full {
            return Ok(());
        }
    }
}

/// One attempt at `message`, recorded with what it leaves the message as.
async fn attempt(platform: &Platform, message: &Message, channel: &Channel) {
    let outcome = send::deliver(platform, message, channel).await;
    let at = Timestamp::now();
    let after = if outcome.ok {
        AfterAttempt::Delivered
    } else {
        let base = platform.settings.notification_retry_base;
        match retry_delay(base, message.attempts + 1).filter(|_| !outcome.permanent) {
            Some(delay) => AfterAttempt::RetryAt(at.checked_add(delay).unwrap_or(at)),
            None => AfterAttempt::Failed,
        }
    };
    let attempt = Attempt {
        at,
        ok: outcome.ok,
        http_status: outcome.http_status,
        error: outcome.error,
    };
    if let Err(error) = platform
        .store
        .record_attempt(message.id, &attempt, after)
        .await
    {
        tracing::warn!(message = message.id, %error, "a notification attempt could not be recorded");
    }
}
