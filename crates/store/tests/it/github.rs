use helvetia_core::account::Email;
use helvetia_store::StoreError;
use helvetia_store::audit::AuditBy;
use helvetia_store::github::{GitHubApp, PendingManifest};
use helvetia_store::users::NewUser;
use jiff::{SignedDuration, Timestamp};

use crate::backend::{TestDb, caller};
use crate::projects::{hostname, project, service, settings};

pub async fn the_github_app_is_one_row_and_a_manifest_state_works_once(db: &TestDb) {
    let store = &db.store;
    assert_eq!(store.github_app().await.unwrap(), None);
    let mut app = GitHubApp {
        app_id: 7,
        slug: Some("helvetia".into()),
        client_id: "Iv1.abc".into(),
        sealed_private_key: "sealed-key".into(),
        sealed_client_secret: "sealed-secret".into(),
        sealed_webhook_secret: "sealed-hook".into(),
        created_at: Timestamp::from_millisecond(1_700_000_000_000).unwrap(),
    };
    store
        .save_github_app(&app, AuditBy::default())
        .await
        .unwrap();
    app.app_id = 8;
    app.slug = None;
    store
        .save_github_app(&app, AuditBy::default())
        .await
        .unwrap();
    assert_eq!(store.github_app().await.unwrap(), Some(app.clone()));
    assert!(!format!("{app:?}").contains("sealed"), "{app:?}");

    let user = store
        .create_user(
            AuditBy::default(),
            &NewUser {
                email: Email::parse("ada@example.com").unwrap(),
                name: "Ada".into(),
                password_hash: None,
                instance_admin: true,
            },
        )
        .await
        .unwrap();
    let now = Timestamp::now();
    let later = |secs| now + SignedDuration::from_secs(secs);
    store
        .add_github_manifest_state("h1", Some(user.id), later(600), now)
        .await
        .unwrap();
    store
        .add_github_manifest_state("h2", None, later(600), now)
        .await
        .unwrap();
    assert_eq!(
        store.take_github_manifest_state("nope", now).await.unwrap(),
        None
    );
    assert_eq!(
        store.take_github_manifest_state("h1", now).await.unwrap(),
        Some(PendingManifest {
            user: Some(user.id)
        })
    );
    assert_eq!(
        store.take_github_manifest_state("h1", now).await.unwrap(),
        None
    );
    // Expired: refused, and spent all the same.
    assert_eq!(
        store
            .take_github_manifest_state("h2", later(601))
            .await
            .unwrap(),
        None
    );
}

pub async fn a_service_links_to_an_installation_in_its_team_only(db: &TestDb) {
    let admin = db.admin().await;
    let store = &db.store;
    let (demo, web) = (project("demo"), service("web"));
    store.create_project(&admin, &demo).await.unwrap();
    let created = store
        .create_service(
            &admin,
            &demo,
            &web,
            &settings("https://example.org/a.git"),
            &Default::default(),
            &hostname(&demo, &web),
        )
        .await
        .unwrap();
    assert_eq!(store.service_installation(created.id).await.unwrap(), None);
    store
        .set_service_installation(&admin, &created, Some(42))
        .await
        .unwrap();
    assert_eq!(
        store.service_installation(created.id).await.unwrap(),
        Some(42)
    );
    let other = caller(store.create_team("other").await.unwrap(), 99);
    let theirs = store.set_service_installation(&other, &created, None).await;
    assert!(matches!(theirs, Err(StoreError::NotFound(_))), "{theirs:?}");
    assert_eq!(
        store.service_installation(created.id).await.unwrap(),
        Some(42)
    );
}
