use helvetia_core::notification::{ChannelKind, EventKind, MessageStatus, NotificationEvent};
use helvetia_store::StoreError;
use helvetia_store::audit::AuditLog;
use helvetia_store::notifications::{AfterAttempt, Attempt, ChannelConfig};
use jiff::{SignedDuration, Timestamp};

use crate::backend::{TestDb, caller};
use crate::deployments::demo_service;

fn config(events: &[EventKind]) -> ChannelConfig {
    ChannelConfig {
        events: events.to_vec(),
        enabled: true,
        settings: "{}".into(),
        sealed_secret: Some("sealed".into()),
        destination: "https://hooks.example.com/…".into(),
    }
}

pub async fn channels_queue_what_they_subscribe_to_and_record_attempts(db: &TestDb) {
    let admin = db.admin().await;
    let store = &db.store;
    let web = demo_service(db, "web").await;
    let project = store.project(admin.team, &web.project).await.unwrap();
    let deploys = [EventKind::DeploySucceeded, EventKind::DeployFailed];
    let ops = store
        .add_channel(
            &admin,
            &project,
            "ops",
            ChannelKind::Slack,
            &config(&deploys),
        )
        .await
        .unwrap();
    assert_eq!(ops.events, deploys);
    let failures = config(&[EventKind::DeployFailed]);
    store
        .add_channel(&admin, &project, "pager", ChannelKind::Webhook, &failures)
        .await
        .unwrap();
    let again = store
        .add_channel(&admin, &project, "ops", ChannelKind::Discord, &failures)
        .await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    let other = caller(store.create_team("other").await.unwrap(), 99);
    let theirs = store
        .add_channel(&other, &project, "mine", ChannelKind::Slack, &failures)
        .await;
    assert!(matches!(theirs, Err(StoreError::NotFound(_))), "{theirs:?}");

    // A success reaches `ops` only; a disabled channel hears nothing.
    let mut event = NotificationEvent::new(EventKind::DeploySucceeded, "demo", Timestamp::now());
    event.deployment_id = Some(7);
    let mut ids = (1..).map(|n| format!("delivery-{n}"));
    let queued = store
        .enqueue_notifications(project.id, &event, || ids.next().unwrap_or_default())
        .await
        .unwrap();
    assert_eq!(queued, 1);
    let mut muted = failures.clone();
    muted.enabled = false;
    store
        .update_channel(&admin, &project, "pager", &muted)
        .await
        .unwrap();
    event.kind = EventKind::DeployFailed;
    let queued = store
        .enqueue_notifications(project.id, &event, || ids.next().unwrap_or_default())
        .await
        .unwrap();
    assert_eq!(queued, 1);

    let now = Timestamp::now();
    let due = store.due_notifications(now, 10).await.unwrap();
    assert_eq!(due.len(), 2);
    let (first, channel) = &due[0];
    assert_eq!(channel.name, "ops");
    assert_eq!(first.event.deployment_id, Some(7));
    assert_eq!(first.delivery_id, "delivery-1");

    // A failed attempt postpones the message; a success ends it.
    let retry_at = now + SignedDuration::from_secs(60);
    let failed = Attempt {
        at: now,
        ok: false,
        http_status: Some(500),
        error: Some("HTTP 500".into()),
    };
    store
        .record_attempt(first.id, &failed, AfterAttempt::RetryAt(retry_at))
        .await
        .unwrap();
    assert_eq!(store.due_notifications(now, 10).await.unwrap().len(), 1);
    let second = &due[1].0;
    let delivered = Attempt {
        at: now,
        ok: true,
        http_status: Some(200),
        error: None,
    };
    store
        .record_attempt(second.id, &delivered, AfterAttempt::Delivered)
        .await
        .unwrap();
    assert_eq!(
        store
            .next_notification_due()
            .await
            .unwrap()
            .map(|t| t.as_millisecond()),
        Some(retry_at.as_millisecond())
    );
    store
        .record_attempt(first.id, &delivered, AfterAttempt::Delivered)
        .await
        .unwrap();
    // A second success of a finished message records nothing.
    store
        .record_attempt(first.id, &delivered, AfterAttempt::Delivered)
        .await
        .unwrap();
    assert_eq!(store.next_notification_due().await.unwrap(), None);

    let log = store.channel_messages(ops.id, None, 10).await.unwrap();
    assert_eq!(log.len(), 2);
    let (message, attempts) = &log[1];
    assert_eq!(message.status, MessageStatus::Delivered);
    assert_eq!(message.attempts, 2);
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0].http_status, Some(500));
    assert!(attempts[1].ok);

    // Messages that ended are removed once old enough; pending ones stay.
    let later = now + SignedDuration::from_secs(1);
    assert_eq!(
        store
            .prune_notifications(now - SignedDuration::from_secs(1))
            .await
            .unwrap(),
        0
    );
    assert_eq!(store.prune_notifications(later).await.unwrap(), 2);
    assert!(
        store
            .channel_messages(ops.id, None, 10)
            .await
            .unwrap()
            .is_empty()
    );

    let test = NotificationEvent::new(EventKind::Test, "demo", Timestamp::now());
    let pager = store.channel(&project, "pager").await.unwrap();
    store
        .enqueue_test(&admin, &project, &pager, &test, "delivery-test")
        .await
        .unwrap();
    store
        .remove_channel(&admin, &project, "pager")
        .await
        .unwrap();
    assert_eq!(store.due_notifications(now, 10).await.unwrap().len(), 0);
    assert_eq!(store.channels(project.id).await.unwrap().len(), 1);
    let log = store
        .audit_log(AuditLog::Team(admin.team), None, 50)
        .await
        .unwrap();
    let actions: Vec<&str> = log
        .iter()
        .filter(|entry| entry.action.starts_with("notification."))
        .map(|entry| entry.action.as_str())
        .collect();
    assert_eq!(
        actions,
        [
            "notification.channel_remove",
            "notification.test",
            "notification.channel_update",
            "notification.channel_add",
            "notification.channel_add"
        ]
    );
}
