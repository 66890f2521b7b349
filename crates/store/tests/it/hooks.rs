use helvetia_core::runtime::RuntimeSettings;
use helvetia_core::service::Service;
use helvetia_core::webhook::{Outcome, PushSettings, Source, Verdict, WatchPaths};
use helvetia_store::StoreError;
use helvetia_store::deliveries::NewDelivery;
use helvetia_store::services::NewService;
use jiff::{SignedDuration, Timestamp};

use crate::backend::{TestDb, caller};
use crate::projects::{hostname, project, service, settings};

async fn web(db: &TestDb) -> Service {
    let admin = db.admin().await;
    let (demo, web) = (project("demo"), service("web"));
    db.store.create_project(&admin, &demo).await.unwrap();
    let settings = settings("https://example.org/a.git");
    let runtime = RuntimeSettings::default();
    let new = NewService {
        project: &demo,
        name: &web,
        settings: &settings,
        runtime: &runtime,
        hostname: &hostname(&demo, &web),
        github: None,
    };
    db.store.create_service(&admin, &new).await.unwrap()
}

pub async fn push_settings_and_the_receiver_belong_to_the_team(db: &TestDb) {
    let store = &db.store;
    let admin = db.admin().await;
    let web = web(db).await;
    let defaults = store.service_hook(&web).await.unwrap();
    assert_eq!(defaults.settings, PushSettings::default());
    assert_eq!(defaults.hook_id, None);
    assert!(store.hook_target("h1").await.unwrap().is_none());

    let settings = PushSettings {
        auto_deploy: false,
        watch_paths: WatchPaths::parse(&["src/**"]).unwrap(),
        cancel_running: true,
        wait_for_ci: true,
    };
    store
        .set_push_settings(&admin, &web, &settings)
        .await
        .unwrap();
    store
        .set_hook_secret(&admin, &web, "h1", "sealed-1")
        .await
        .unwrap();
    let (hook, found, team) = store.hook_target("h1").await.unwrap().unwrap();
    assert_eq!(
        (hook.settings, found.id, team),
        (settings.clone(), web.id, admin.team)
    );
    assert_eq!(hook.sealed_secret.as_deref(), Some("sealed-1"));

    // Rotating replaces the URL and the secret; the settings stay.
    store
        .set_hook_secret(&admin, &web, "h2", "sealed-2")
        .await
        .unwrap();
    assert!(store.hook_target("h1").await.unwrap().is_none());
    assert_eq!(store.service_hook(&web).await.unwrap().settings, settings);

    let other = caller(store.create_team("other").await.unwrap(), 99);
    let theirs = store.set_hook_secret(&other, &web, "h3", "x").await;
    assert!(matches!(theirs, Err(StoreError::NotFound(_))), "{theirs:?}");
    let theirs = store
        .set_push_settings(&other, &web, &PushSettings::default())
        .await;
    assert!(matches!(theirs, Err(StoreError::NotFound(_))), "{theirs:?}");
}

pub async fn the_delivery_log_finds_acted_on_deliveries_and_prunes(db: &TestDb) {
    let store = &db.store;
    let web = web(db).await;
    let delivery = |id: &str, outcome| NewDelivery {
        service_id: Some(web.id),
        source: Some(Source::Gitea),
        event: "push".into(),
        delivery_id: Some(id.into()),
        signature: Some(Verdict::Valid),
        outcome: Some(outcome),
        reason: "because".into(),
        ..NewDelivery::default()
    };
    store
        .record_delivery(&delivery("d1", Outcome::Refused))
        .await
        .unwrap();
    assert!(
        store
            .delivery_acted(web.id, Source::Gitea, "d1")
            .await
            .unwrap()
            .is_none()
    );
    let waiting = store
        .record_delivery(&delivery("d1", Outcome::Waiting))
        .await
        .unwrap();
    store
        .settle_delivery(waiting, Outcome::Ignored, "no watched file", None)
        .await
        .unwrap();
    assert!(
        store
            .delivery_acted(web.id, Source::Gitea, "d1")
            .await
            .unwrap()
            .is_none()
    );
    store
        .record_delivery(&delivery("d2", Outcome::Deployed))
        .await
        .unwrap();
    let acted = store
        .delivery_acted(web.id, Source::Gitea, "d2")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(acted.outcome, Outcome::Deployed);
    assert!(
        store
            .delivery_acted(web.id, Source::Gitlab, "d2")
            .await
            .unwrap()
            .is_none()
    );

    let log = store.deliveries(Some(&web), None, 10).await.unwrap();
    let outcomes: Vec<_> = log.iter().map(|d| d.outcome).collect();
    assert_eq!(
        outcomes,
        [Outcome::Deployed, Outcome::Ignored, Outcome::Refused]
    );
    assert_eq!(log[1].reason, "no watched file");
    assert_eq!(
        store
            .deliveries(Some(&web), Some(log[0].id), 1)
            .await
            .unwrap()[0]
            .id,
        log[1].id
    );

    // A delivery that reached no service is the instance's, not the service's.
    let nowhere = NewDelivery {
        service_id: None,
        ..delivery("n1", Outcome::Refused)
    };
    store.record_delivery(&nowhere).await.unwrap();
    let instance = store.deliveries(None, None, 10).await.unwrap();
    assert_eq!(instance.len(), 1);
    assert_eq!(instance[0].delivery_id.as_deref(), Some("n1"));
    assert_eq!(
        store.deliveries(Some(&web), None, 10).await.unwrap().len(),
        3
    );

    // A delivery a restart left waiting is settled as failed, once it is old enough.
    let hour_ago = Timestamp::now() - SignedDuration::from_hours(1);
    let soon = Timestamp::now() + SignedDuration::from_secs(1);
    store
        .record_delivery(&delivery("d3", Outcome::Waiting))
        .await
        .unwrap();
    assert_eq!(store.fail_stale_deliveries(hour_ago).await.unwrap(), 0);
    assert_eq!(store.fail_stale_deliveries(soon).await.unwrap(), 1);
    let newest = &store.deliveries(Some(&web), None, 1).await.unwrap()[0];
    assert_eq!(newest.outcome, Outcome::Failed);
    assert!(newest.reason.contains("redeliver"), "{}", newest.reason);

    assert_eq!(
        store
            .prune_deliveries(Timestamp::now() - SignedDuration::from_hours(1))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .prune_deliveries(Timestamp::now() + SignedDuration::from_secs(1))
            .await
            .unwrap(),
        5
    );
}

pub async fn a_push_waits_for_its_checks_until_one_event_takes_it_or_its_deadline(db: &TestDb) {
    let store = &db.store;
    let web = web(db).await;
    let sha = "4444444444444444444444444444444444444444";
    let waiting = |id: &str| NewDelivery {
        service_id: Some(web.id),
        source: Some(Source::Github),
        event: "push".into(),
        delivery_id: Some(id.into()),
        signature: Some(Verdict::Valid),
        outcome: Some(Outcome::Waiting),
        reason: "waiting for checks: none reported yet".into(),
        commit: Some(sha.into()),
        pusher: Some("octocat".into()),
        ..NewDelivery::default()
    };
    let now = Timestamp::now();
    let hour = SignedDuration::from_hours(1);
    let first = store.record_delivery(&waiting("c1")).await.unwrap();
    store.await_checks(first, now + hour).await.unwrap();
    let second = store.record_delivery(&waiting("c2")).await.unwrap();
    store.await_checks(second, now + hour).await.unwrap();
    let found = store.awaiting_checks(web.id, sha, now).await.unwrap();
    assert_eq!(
        found.iter().map(|w| (w.id, w.source)).collect::<Vec<_>>(),
        [(first, Source::Github), (second, Source::Github)]
    );
    assert_eq!(found[0].pusher.as_deref(), Some("octocat"));
    assert!(
        store
            .awaiting_checks(web.id, sha, now + hour * 2)
            .await
            .unwrap()
            .is_empty()
    );
    // A push waiting for its checks is not a diff cut short by a restart.
    assert_eq!(store.fail_stale_deliveries(now + hour).await.unwrap(), 0);

    store
        .still_waiting(first, "waiting for checks: test")
        .await
        .unwrap();
    assert!(
        store
            .take_waiting(first, Outcome::Deployed, "passed")
            .await
            .unwrap()
    );
    assert!(
        !store
            .take_waiting(first, Outcome::Ignored, "again")
            .await
            .unwrap()
    );
    let log = store.deliveries(Some(&web), None, 10).await.unwrap();
    let taken = log.iter().find(|d| d.id == first).unwrap();
    assert_eq!(
        (taken.outcome, taken.reason.as_str()),
        (Outcome::Deployed, "passed")
    );

    // The other one's deadline passes.
    assert_eq!(store.expire_check_waits(now).await.unwrap(), 0);
    assert_eq!(store.expire_check_waits(now + hour * 2).await.unwrap(), 1);
    let log = store.deliveries(Some(&web), None, 10).await.unwrap();
    let expired = log.iter().find(|d| d.id == second).unwrap();
    assert_eq!(expired.outcome, Outcome::Ignored);
    assert!(
        store
            .awaiting_checks(web.id, sha, now)
            .await
            .unwrap()
            .is_empty()
    );
}
